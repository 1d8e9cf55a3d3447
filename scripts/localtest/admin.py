"""Admin API under /_localtest/: test control that the daemon never calls.

No auth, never in the request log, never faulted. Tests use it to read the request log, inject
faults, add or change applications and instances behind the daemon's back (to check caching
and invalidation), and to expire every token.
"""

import base64
import binascii
import uuid

from . import content, dates, model, web


def _bad(message):
    return web.HttpError(web.text(400, message))


def _optional_time(doc, key):
    if doc.get(key) is None:
        return None
    try:
        return dates.parse_iso(str(doc[key]))
    except ValueError:
        raise _bad("%s must be an ISO-8601 time" % key)


def _parse_guid(value, what):
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise _bad("%s is not a GUID: %r" % (what, value))


def _data_content(item, index):
    if "pattern_size" in item:
        size = item["pattern_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _bad("data[%d].pattern_size must be a non-negative integer" % index)
        return content.PatternContent(size)
    try:
        return content.BytesContent(base64.b64decode(item.get("content_b64") or "",
                                                     validate=True))
    except (binascii.Error, ValueError):
        raise _bad("data[%d].content_b64 is not base64" % index)


def build_instance(store, doc):
    """An Instance from the admin JSON (see README.md); raises HttpError on bad input."""
    if not isinstance(doc, dict):
        raise _bad("body must be a JSON object")
    app_id = doc.get("appId")
    app = store.app(app_id) if isinstance(app_id, str) else None
    if app is None:
        raise web.HttpError(web.text(404, "unknown appId %r (add it with POST /_localtest/apps)"
                                     % (app_id,)))
    party_id = str(doc.get("partyId") or "")
    if not party_id.isdigit():
        raise _bad("partyId must be a number")
    owner = {}
    for key in ("organisationNumber", "personNumber"):
        if doc.get(key) is not None:
            owner[key] = str(doc[key])
    if len(owner) > 1:
        raise _bad("give organisationNumber or personNumber, not both")
    guid = _parse_guid(doc["guid"], "guid") if doc.get("guid") else str(uuid.uuid4())
    now = dates.now_ticks()
    created = _optional_time(doc, "created") or now
    last_changed = _optional_time(doc, "lastChanged") or max(created, now)
    if last_changed < created:
        raise _bad("lastChanged is before created")
    by = party_id
    inst = model.Instance(guid, party_id, app.id, owner, created=created, created_by=by,
                          last_changed=last_changed, last_changed_by=by)
    inst.start_process(created)
    if doc.get("complete"):
        inst.end_process(last_changed)
    for org in doc.get("confirmedBy") or []:
        inst.confirmations.append((str(org), last_changed))
    items = doc.get("data") or []
    if not isinstance(items, list):
        raise _bad("data must be a list")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("dataType"), str):
            raise _bad("data[%d] needs a dataType" % index)
        if app.data_type(item["dataType"]) is None:
            raise _bad("data[%d].dataType %r is not a data type of %s" %
                       (index, item["dataType"], app.id))
        data_guid = _parse_guid(item["id"], "data[%d].id" % index) if item.get("id") \
            else str(uuid.uuid4())
        inst.data.append(model.DataElement(
            data_guid, item["dataType"], item.get("contentType") or "application/octet-stream",
            _data_content(item, index), filename=item.get("filename"),
            created=created, created_by=by, last_changed=last_changed, last_changed_by=by,
            locked=bool(item.get("locked")), content_hash=item.get("contentHash")))
    return inst


def register(router, platform):
    store = platform.store
    prefix = "/_localtest"

    def health(req):
        return web.json_response({"ok": True, "apps": [a.id for a in store.apps()]})

    def get_requests(req):
        try:
            since = int(req.arg("since") or 0)
        except ValueError:
            return web.text(400, "since must be a number")
        return web.json_response(platform.log.entries(since))

    def clear_requests(req):
        platform.log.clear()
        return web.empty(204)

    def get_faults(req):
        every = (req.arg("all") or "").lower() in ("1", "true", "yes")
        return web.json_response(platform.faults.list(every))

    def get_fault(req):
        rule = platform.faults.get(int(req.params["id"]))
        return web.json_response(rule) if rule is not None else web.empty(404)

    def add_fault(req):
        try:
            rule = platform.faults.add(req.json())
        except ValueError as e:
            return web.text(400, str(e))
        return web.json_response(rule.to_json(), status=201)

    def clear_faults(req):
        return web.json_response({"unfired": platform.faults.clear()})

    def add_app(req):
        doc = req.json()
        if not isinstance(doc, dict):
            return web.text(400, "body must be application metadata (a JSON object)")
        try:
            app = model.Application(doc)
        except ValueError as e:
            return web.text(400, str(e))
        store.add_app(app)
        return web.json_response(app.to_json(), status=201)

    def add_instance(req):
        inst = build_instance(store, req.json())
        try:
            store.add_instance(inst)
        except ValueError as e:
            return web.text(409, str(e))
        store.app_event("app.instance.created", inst)     # as if the app instantiated it
        with store.lock:
            doc = inst.to_json(req.base_url)
        return web.json_response(doc, status=201,
                                 headers=[("Location", doc["selfLinks"]["platform"])])

    def delete_instance(req):
        inst = store.remove_instance(req.params["partyId"], req.params["instanceGuid"])
        if inst is None:
            return web.text(404, "no such instance")
        return web.empty(204)

    def change_instances(req):
        """{"ids": ["party/guid", ...], "lastChanged": ISO or absent (now),
        "hardDelete": bool}: behind-the-back changes, in bulk (the scale tests change
        hundreds). A given lastChanged is the same for all, so ties can be made."""
        doc = req.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("ids"), list):
            return web.text(400, "body must be {\"ids\": [\"party/guid\", ...]}")
        at = _optional_time(doc, "lastChanged")
        changed = []
        with store.lock:
            for ident in doc["ids"]:
                party, _, guid = str(ident).partition("/")
                inst = store.instance(party, guid) if guid else None
                if inst is None:
                    return web.text(404, "no instance %s" % ident)
                ticks = at if at is not None else dates.now_ticks()
                if doc.get("hardDelete"):
                    inst.is_soft_deleted, inst.soft_deleted = True, ticks
                    inst.is_hard_deleted, inst.hard_deleted = True, ticks
                store.touch(inst, by="991825827", ticks=ticks)
                changed.append(dates.format_ticks(ticks))
        return web.json_response({"lastChanged": changed})

    def put_data(req):
        body = req.body()
        with store.lock:
            inst = store.instance(req.params["partyId"], req.params["instanceGuid"])
            element = inst.data_element(req.params["dataGuid"].lower()) if inst else None
            if element is None:
                return web.text(404, "no such instance or data element")
            store.replace_content(inst, element, content.BytesContent(body))
            return web.json_response(element.to_json(inst, req.base_url))

    def expire_tokens(req):
        platform.tokens.expire_all()
        return web.empty(204)

    inst_path = prefix + "/instances/{partyId:int}/{instanceGuid:guid}"
    router.add("GET", prefix, health, auth=False)
    router.add("GET", prefix + "/", health, auth=False)
    router.add("GET", prefix + "/requests", get_requests, auth=False)
    router.add("DELETE", prefix + "/requests", clear_requests, auth=False)
    router.add("GET", prefix + "/faults", get_faults, auth=False)
    router.add("POST", prefix + "/faults", add_fault, auth=False)
    router.add("GET", prefix + "/faults/{id:int}", get_fault, auth=False)
    router.add("DELETE", prefix + "/faults", clear_faults, auth=False)
    router.add("POST", prefix + "/apps", add_app, auth=False)
    router.add("POST", prefix + "/instances", add_instance, auth=False)
    router.add("POST", prefix + "/instances/change", change_instances, auth=False)
    router.add("DELETE", inst_path, delete_instance, auth=False)
    router.add("PUT", inst_path + "/data/{dataGuid:guid}", put_data, auth=False)
    router.add("POST", prefix + "/tokens/expire-all", expire_tokens, auth=False)
