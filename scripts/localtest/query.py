"""`GET /storage/api/v1/instances`: the instance query with its filters and keyset paging.

Mirrors Storage's InstancesController/InstanceQueryHelper (altinn-api.md §2.1): who may ask
what, the filters and their 400s, `order`, `size`, and a `continuationToken` that encodes the
(lastChanged ticks, row id) of the last instance on the page, so paging is stable while
instances change and ties on lastChanged are broken by the row id. `next` is present only on a
full page, so the last page can be empty.
"""

import base64
import binascii
import heapq
import itertools
import urllib.parse

from . import auth, dates, web

DEFAULT_SIZE = 100
DATE_OPERATORS = (("gte:", ">="), ("lte:", "<="), ("gt:", ">"), ("lt:", "<"), ("eq:", "=="))
_COMPARE = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
}

# Date filters: query name -> function giving the instance's ticks (or None).
DATE_FIELDS = {
    "lastChanged": lambda i: i.last_changed,
    "created": lambda i: i.created,
    "process.ended": lambda i: i.process.ended if i.process else None,
    "dueBefore": lambda i: i.due_before,
    "visibleAfter": lambda i: i.visible_after,
}
BOOL_FIELDS = {
    "process.isComplete": None,   # special: ended vs. has a current task
    "status.isArchived": lambda i: i.is_archived,
    "status.isSoftDeleted": lambda i: i.is_soft_deleted,
    "status.isHardDeleted": lambda i: i.is_hard_deleted,
}


def encode_token(ticks, row_id):
    raw = ("%d;%d" % (ticks, row_id)).encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        ticks, row_id = raw.split(";")
        return int(ticks), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise web.HttpError(web.text(400, "Invalid continuation token: %s" % token))


def _parse_bool(name, value):
    v = value.strip().lower()
    if v == "true":
        return True
    if v == "false":
        return False
    raise web.HttpError(web.validation_problem(name, "The value '%s' is not valid." % value))


def _date_filter(name, value):
    op = "=="
    rest = value
    for prefix, symbol in DATE_OPERATORS:
        if value.startswith(prefix):
            op, rest = symbol, value[len(prefix):]
            break
    try:
        # A '+' in an unencoded offset arrives as a space.
        ticks = dates.parse_iso(rest.replace(" ", "+"))
    except ValueError:
        raise web.HttpError(web.text(400, "Unable to parse %s value '%s'" % (name, value)))
    getter = DATE_FIELDS[name]
    compare = _COMPARE[op]

    def keep(inst):
        t = getter(inst)
        return t is not None and compare(t, ticks)
    return keep


def _authorize(req, principal):
    """Returns the org whose apps are searched (None for a party-scoped user query)."""
    org = req.arg("org") or None
    app_ids = [a for a in req.args("appId") if a]
    if principal.is_org:
        if not principal.has_scope(auth.READ_SCOPE):
            raise web.HttpError(auth.forbidden())
        if not org and not app_ids:
            raise web.HttpError(web.text(400, "Org or AppId must be defined."))
        target = org or app_ids[0].split("/")[0]
        if not principal.same_org(target):
            if not app_ids:
                raise web.HttpError(web.text(400, "AppId must be defined."))
            # Storage asks the PDP here; the local platform never grants cross-org reads.
            raise web.HttpError(auth.forbidden())
        return target
    if principal.is_user:
        if not req.has_arg("instanceOwner.partyId"):
            raise web.HttpError(web.text(
                400, "Either InstanceOwnerPartyId or InstanceOwnerIdentifier need to be defined."))
        return org
    raise web.HttpError(web.empty(400))


def _build_filters(req, principal):
    filters = []
    org = req.arg("org") or None
    app_ids = [a for a in req.args("appId") if a]
    if org:
        filters.append(lambda i: i.org == org)
    if app_ids:
        wanted = set(app_ids)
        filters.append(lambda i: i.app_id in wanted)
    parties = req.args("instanceOwner.partyId")
    if parties:
        for p in parties:
            if not p.strip().lstrip("-").isdigit():
                raise web.HttpError(web.validation_problem(
                    "instanceOwner.partyId", "The value '%s' is not valid." % p))
        wanted_parties = {str(int(p)) for p in parties}
        filters.append(lambda i: i.party_id in wanted_parties)
    if principal.is_user:
        filters.append(principal.may_read_instance)
        # ApplyHardDeleteFilter: only the app owner sees hard-deleted instances
        # (altinn-storage InstancesController.cs:1187-1210)
        filters.append(lambda i: not i.is_hard_deleted)
    for name, value in req.query:
        if name in DATE_FIELDS:
            filters.append(_date_filter(name, value))
        elif name in BOOL_FIELDS:
            flag = _parse_bool(name, value)
            if name == "process.isComplete":
                if flag:
                    filters.append(lambda i: i.is_complete)
                else:
                    filters.append(lambda i: i.process is not None
                                   and i.process.current_task is not None)
            else:
                getter = BOOL_FIELDS[name]
                filters.append(lambda i, g=getter, f=flag: g(i) == f)
        elif name == "process.currentTask":
            filters.append(lambda i, t=value: i.process is not None
                           and i.process.current_task is not None
                           and i.process.current_task.element_id == t)
        elif name == "excludeConfirmedBy":
            filters.append(lambda i, o=value: not i.confirmed_by(o))
    return filters


def _order_key(inst):
    return (inst.last_changed, inst.row_id)


def _last_changed_range(req):
    """The lastChanged filters as an inclusive (low, high) range of ticks (None: open), for
    the scale app's bisection; the filters themselves are applied as well."""
    low = high = None
    for name, value in req.query:
        if name != "lastChanged":
            continue
        op, rest = "==", value
        for prefix, symbol in DATE_OPERATORS:
            if value.startswith(prefix):
                op, rest = symbol, value[len(prefix):]
                break
        ticks = dates.parse_iso(rest.replace(" ", "+"))
        lo = {">": ticks + 1, ">=": ticks, "==": ticks}.get(op)
        hi = {"<": ticks - 1, "<=": ticks, "==": ticks}.get(op)
        if lo is not None:
            low = lo if low is None else max(low, lo)
        if hi is not None:
            high = hi if high is None else min(high, hi)
    return low, high


def _page_size(req):
    value = req.arg("size")
    if value is None or value == "":
        return DEFAULT_SIZE
    try:
        size = int(value.strip())
    except ValueError:
        raise web.HttpError(web.validation_problem("size", "The value '%s' is not valid." % value))
    if size < 1:
        raise web.HttpError(web.text(400, "Size must be a positive number."))
    return size


def _link(req, token):
    """Storage's BuildRequestLink: the request verbatim when no token is involved, else its
    parameters (minus any continuationToken) with the token appended."""
    url = req.base_url + req.path
    if token is None:
        return url + ("?" + req.query_string if req.query_string else "")
    pairs = [(k, v) for k, v in req.query if k != "continuationToken"]
    pairs.append(("continuationToken", token))
    return url + "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe="")


def search(req, store):
    principal = req.principal
    org = _authorize(req, principal)
    size = _page_size(req)
    descending = (req.arg("order") or "desc:lastChanged").startswith("desc:")
    token = req.arg("continuationToken") or None
    after = decode_token(token) if token else None
    include_data = True
    if req.has_arg("includeDataElements"):
        include_data = _parse_bool("includeDataElements", req.arg("includeDataElements"))
    filters = _build_filters(req, principal)

    with store.lock:
        app_ids = [a.id for a in store.apps(org)] if org else [a.id for a in store.apps()]
        rows = [i for i in store.instances(app_ids) if all(f(i) for f in filters)]
        rows.sort(key=_order_key, reverse=descending)
        if after is not None:
            if descending:
                rows = [i for i in rows if (i.last_changed, i.row_id) < after]
            else:
                rows = [i for i in rows if (i.last_changed, i.row_id) > after]
        lazy = [store.lazy(a) for a in app_ids if store.lazy(a) is not None]
        if lazy:
            # the scale app's instances are made as the page needs them (scale.py)
            parties = req.args("instanceOwner.partyId") or None
            lc_range = _last_changed_range(req)
            streams = [rows] + [z.ordered(descending, after, lc_range, parties, filters)
                                for z in lazy]
            page = list(itertools.islice(
                heapq.merge(*streams, key=_order_key, reverse=descending), size))
        else:
            page = rows[:size]
        instances = [i.to_json(req.base_url, include_data, app_owner=principal.is_org)
                     for i in page]
        next_token = (encode_token(page[-1].last_changed, page[-1].row_id)
                      if len(page) == size else None)

    doc = {"count": len(instances), "self": _link(req, token)}
    if next_token is not None:
        doc["next"] = _link(req, next_token)
    doc["instances"] = instances
    return web.json_response(doc)
