"""Correspondence's HTTP API (`/correspondence/api/v1/correspondence...` and `.../attachment...`,
CorrespondenceController.cs and AttachmentController.cs) over correspondence.py's model, and its
admin calls under `/_localtest/correspondence`.

Each endpoint checks in ASP.NET's order: the Accept header (406), the bearer token (401 empty),
the policy's scopes (403 empty: Sender needs altinn:correspondence.write; Recipient
altinn:correspondence.read; SenderOrRecipient either; raw Maskinporten tokens, which would need
altinn:serviceowner too, are opaque here and never reach an API),
the media type (415), model binding (400 AltinnValidationProblemDetails: `validationErrors`
and the legacy `errors` dictionary keyed by the field's path), then the handler's rules, whose
failures are ProblemDetails with `code` CORR-0NNNN, `errorCode` NNNN and a `traceId`
(ProblemDetailsHelper.cs). The caller's organisation is GetCallerOrganizationId's; a person
recipient is the token's `pid`, or the national identity number of its party.
"""

import json
import re
import time
import uuid

from . import brokerapi, corrcheck, corrmodel as cm, multipart, uploads, web

PREFIX = "/correspondence/api/v1/correspondence"
ATTACHMENT = "/correspondence/api/v1/attachment"
WRITE = "altinn:correspondence.write"
READ = "altinn:correspondence.read"
_TITLES = dict(brokerapi._TITLES)
_TITLES.update({408: ("15.5.9", "Request Timeout"), 422: ("15.5.21", "Unprocessable Entity"),
                502: ("15.6.3", "Bad Gateway")})
trace_id = brokerapi.trace_id
check_accept = brokerapi.check_accept
content_type = brokerapi.content_type


def problem(error):
    section, title = _TITLES[error.status]
    doc = {"type": "https://tools.ietf.org/html/rfc9110#section-" + section, "title": title,
           "status": error.status, "detail": error.message,
           "code": "CORR-%05d" % error.code, "traceId": trace_id(),
           "errorCode": error.code}
    return web.Response(error.status, [("Content-Type", web.PROBLEM_JSON)],
                        json.dumps(doc, separators=(",", ":"),
                                   ensure_ascii=False).encode())


def validation(errors):
    """ToValidationProblemResult: validationErrors (paths with '/') and the old `errors`."""
    items = [{"code": "CORR-00000", "detail": message, "paths": ["/" + key.replace(".", "/")]}
             for key, messages in errors.items() for message in messages]
    doc = {"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1", "title": "Bad Request",
           "status": 400, "detail": "One or more validation errors occurred.",
           "code": "STD-00000", "validationErrors": items, "errors": errors,
           "traceId": trace_id()}
    return web.HttpError(web.Response(400, [("Content-Type", web.PROBLEM_JSON)],
                                      json.dumps(doc, ensure_ascii=False).encode()))


def who(req, platform):
    """(caller organisation or None, the identities a recipient may be)."""
    claims = req.principal.claims
    org = cm.broker.caller_org(claims)
    me = {org} if org else set()
    if claims.get("pid"):
        me.add(str(claims["pid"]))
    party_id = req.principal.party_id
    if party_id is not None:
        party = platform.parties.by_id(int(party_id)) if str(party_id).isdigit() else None
        if party is not None and party.ssn:
            me.add(party.ssn)
    return org, me


def require(req, *scopes):
    p = req.principal
    if not any(p.has_scope(s) for s in scopes):
        raise web.HttpError(web.empty(403))


def guid(req, name):
    raw = req.params[name]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise validation({name: ["The value '%s' is not valid." % raw]})


def json_body(req, param="request"):
    if content_type(req) not in ("application/json", "text/json") and \
            not content_type(req).endswith("+json"):
        raise brokerapi.media_problem(415)
    try:
        return json.loads(req.body().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise validation({"$": [str(e)], param: ["The %s field is required." % param]})


# -- multipart forms ------------------------------------------------------------------------

_NAMES = {n.lower(): n for n in (
    "correspondence", "recipients", "existingAttachments", "idempotentKey", "resourceId",
    "sender", "sendersReference", "messageSender", "content", "language", "messageTitle",
    "messageSummary", "messageBody", "attachments", "fileName", "displayName", "isEncrypted",
    "checksum", "dataLocationType", "expirationInDays", "requestedPublishTime", "dueDateTime",
    "externalReferences", "referenceValue", "referenceType", "propertyList", "replyOptions",
    "linkURL", "linkText", "notification", "notificationTemplate", "notificationChannel",
    "emailSubject", "emailBody", "emailContentType", "smsBody", "sendReminder",
    "reminderEmailSubject", "reminderEmailBody", "reminderEmailContentType", "reminderSmsBody",
    "reminderNotificationChannel", "ignoreReservation", "isConfirmationNeeded",
    "isConfidential", "allowForwarding", "customRecipients", "emailAddress", "mobileNumber",
    "organizationNumber", "nationalIdentityNumber", "overrideRegisteredContactInformation")}
_BOOLS = {"isEncrypted", "sendReminder", "ignoreReservation", "isConfirmationNeeded",
          "isConfidential", "allowForwarding", "overrideRegisteredContactInformation"}


def _put(doc, path, value, errors, name):
    """Set doc[path] from a flattened form key: `a.b[0].c`, `a[0]`, `propertyList.key`."""
    node = doc
    steps = []
    for seg in path:
        m = re.match(r"^([^\[\]]+)((?:\[[^\]]*\])*)$", seg)
        if not m:
            return
        steps.append(m.group(1))
        steps.extend(int(i) if i.isdigit() else i for i in re.findall(r"\[([^\]]*)\]",
                                                                      m.group(2)))
    in_props = False
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, str) and not in_props:
            step = _NAMES.get(step.lower(), step)
        if last:
            if step in _BOOLS and isinstance(value, str):
                if value.strip().lower() not in ("true", "false"):
                    errors[name] = ["The value '%s' is not valid for %s." % (value, step)]
                    return
                value = value.strip().lower() == "true"
            elif step == "expirationInDays" and isinstance(value, str):
                if not value.strip().lstrip("-").isdigit():
                    errors[name] = ["The value '%s' is not valid." % value]
                    return
                value = int(value)
            if isinstance(node, dict):
                node[step] = value
            elif isinstance(step, int):
                while len(node) <= step:
                    node.append(None)
                node[step] = value
            return
        nxt = steps[i + 1]
        if isinstance(node, dict):
            node = node.setdefault(step, [] if isinstance(nxt, int) else {})
        else:
            while len(node) <= step:
                node.append([] if isinstance(nxt, int) else {})
            node = node[step]
        in_props = step == "propertyList"


def _lists(value):
    """Sparse lists built from [i] keys, as dicts of index -> value, made into lists."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lists(v) for v in value]
    return value


def read_form(req):
    """(the model as JSON, [(file name, bytes)]) of an initialize-and-upload form."""
    marker = multipart.boundary(req.headers.get("Content-Type") or "")
    if marker is None:
        raise validation({"": ["Failed to read the request form. Missing content-type "
                               "boundary."]})
    try:
        sections = list(multipart._sections(req.body(), marker))
    except multipart.MultipartError as e:
        raise validation({"": ["Failed to read the request form. %s" % e]})
    doc, files, errors = {}, [], {}
    for section in sections:
        head, _, body = section.partition(b"\r\n\r\n")
        headers = multipart._headers(head)
        try:
            _, params = uploads.parse_content_disposition(headers.get("content-disposition",
                                                                      ""))
        except ValueError:
            continue
        name = params.get("name", "").strip('"')
        if "filename" in params or "filename*" in params:
            if name.lower() == "attachments":
                filename = uploads.filename_from_header(headers["content-disposition"],
                                                        ascii_only=False)
                files.append((filename, body))
            continue
        value = body.decode("utf-8", "replace")
        key = name[len("request."):] if name.lower().startswith("request.") else name
        if key.lower() in ("recipients", "existingattachments"):
            doc.setdefault(_NAMES[key.lower()], []).append(value)
            continue
        _put(doc, key.split("."), value, errors, name)
    if errors:
        raise validation(errors)
    return _lists(doc), files


# -- endpoints ------------------------------------------------------------------------------

def register(router, platform):
    service = platform.correspondence

    def call(fn, *args):
        try:
            return fn(*args)
        except cm.CorrError as e:
            raise web.HttpError(problem(e))

    def bind(doc):
        try:
            return corrcheck.validate_initialize(doc)
        except corrcheck.Invalid as e:
            raise validation(e.errors)

    def initialized(out, attachment_ids, model):
        rows = []
        for c in out:
            notes = [{"orderId": o, "isReminder": r, "status": "Success"}
                     for o, r in c.orders] or None
            status = "Reserved" if c.ever("Reserved") else "Initialized"    # at creation
            rows.append({"correspondenceId": c.id, "status": status,
                         "recipient": c.recipient, "notifications": notes})
        return web.json_response({"correspondences": rows, "attachmentIds": attachment_ids})

    def initialize(req):
        check_accept(req)
        require(req, WRITE)
        org, _ = who(req, platform)
        model = bind(json_body(req))
        out, ids = call(service.initialize, org, model)
        return initialized(out, ids, model)

    def initialize_upload(req):
        check_accept(req)
        require(req, WRITE)
        org, _ = who(req, platform)
        if content_type(req) != "multipart/form-data":
            raise brokerapi.media_problem(415)
        doc, files = read_form(req)
        model = bind(doc)
        metas = model["correspondence"]["content"]["attachments"]
        by_name = {}
        for name, data in files:
            by_name.setdefault(name, []).append(data)
        pairs = []
        for meta in metas:
            datas = by_name.get(meta.get("fileName")) or []
            pairs.append((meta, datas.pop(0) if datas else None))
        if len(files) != len(metas) or any(data is None for _, data in pairs):
            pairs = None                       # 1005, in the handler's order
        out, ids = call(service.initialize, org, model, pairs)
        return initialized(out, ids, model)

    def overview(req, details=False):
        check_accept(req)
        require(req, READ, WRITE)
        org, me = who(req, platform)
        cid = guid(req, "correspondenceId")
        with service.lock:
            c, as_recipient = call(service.view, org, me, cid, details)
            return web.json_response(c.overview(details, as_recipient))

    def content(req):
        accept = req.headers.get("Accept")
        if accept and not any(x.split(";")[0].strip().lower() in ("text/plain", "*/*")
                              for x in accept.split(",")):
            return web.text(406, "This endpoint does not support the requested Accept header. "
                                 "Supported Accept headers are: text/plain, */*.")
        require(req, READ)
        _, me = who(req, platform)
        body = call(service.content, me, guid(req, "correspondenceId"))
        return web.text(200, body, content_type="text/plain; charset=utf-8")

    def action(fn, policy):
        def handler(req):
            check_accept(req)
            require(req, *policy)
            org, me = who(req, platform)
            cid = guid(req, "correspondenceId")
            if fn == service.purge:
                c = call(fn, org, me, cid)
            else:
                c = call(fn, me, cid)
            return web.json_response(c.id)
        return handler

    def download(req):
        require(req, READ)
        _, me = who(req, platform)
        a = call(service.download, me, guid(req, "correspondenceId"),
                 guid(req, "attachmentId"))
        return attachment_file(a, inline=True)

    def search(req):
        check_accept(req)
        require(req, READ, WRITE)
        org, me = who(req, platform)
        errors = {}
        role = req.arg("role")
        roles = ("Recipient", "Sender", "RecipientAndSender")
        if not role:
            errors["role"] = ["The role field is required."]
        else:
            match = [r for i, r in enumerate(roles)
                     if role.strip().lower() == r.lower() or role.strip() == str(i)]
            if not match:
                errors["role"] = ["The value '%s' is not valid." % role]
            role = match[0] if match else None
        status = req.arg("status")
        if status:
            match = [s for i, s in enumerate(cm.STATUSES)
                     if status.strip().lower() == s.lower() or status.strip() == str(i)]
            if not match:
                errors["status"] = ["The value '%s' is not valid." % status]
            status = match[0] if match else None
        else:
            status = None

        def when(name):
            raw = req.arg(name)
            if not raw:
                return None
            try:
                ticks = cm.dates.parse_iso(raw)
            except ValueError:
                errors[name] = ["The value '%s' is not valid." % raw]
                return None
            return (ticks - cm.dates.EPOCH_TICKS) / cm.dates.TICKS_PER_SECOND

        start, end = when("from"), when("to")
        key = req.arg("idempotentKey")
        if key:
            try:
                key = str(uuid.UUID(key))
            except ValueError:
                errors["idempotentKey"] = ["The value '%s' is not valid." % key]
        else:
            key = None
        if errors:
            raise validation(errors)
        rid = req.arg("resourceId")
        rid = cm.without_prefix(rid) if rid else rid
        ids = call(service.search, org, me, rid, role, start, end, status,
                   req.arg("sendersReference"), key)
        return web.json_response({"ids": ids})

    # -- attachments (sender) --

    def new_attachment(req):
        check_accept(req)
        require(req, WRITE)
        org, _ = who(req, platform)
        doc = json_body(req, "attachment")
        if not isinstance(doc, dict):
            raise validation({"attachment": ["The attachment field is required."]})
        errors = {}
        if corrcheck._required(errors, "ResourceId", doc.get("resourceId")):
            corrcheck._length(errors, "ResourceId", doc.get("resourceId"), 1, 255)
        corrcheck.attachment_model(errors, doc)
        if errors:
            raise validation(errors)
        doc = dict(doc, resourceId=cm.without_prefix(doc["resourceId"]))
        with service.lock:
            call(service.sender_resource, org, doc["resourceId"], True)
            code = corrcheck.file_name_error(doc.get("fileName"))
            if code:
                raise web.HttpError(problem(cm.CorrError(code)))
            days = doc.get("expirationInDays")
            minimum = service.settings.min_expiration_days
            if days is not None and days < minimum:
                raise web.HttpError(problem(cm.CorrError(2017, minimum)))
            a = call(service.new_attachment, org, doc)
        return web.json_response(a.id)

    def upload_attachment(req):
        check_accept(req)
        require(req, WRITE)
        org, _ = who(req, platform)
        aid = guid(req, "attachmentId")
        if content_type(req) != "application/octet-stream":
            raise brokerapi.media_problem(415)
        a = call(service.attachment_for_sender, org, aid)
        length = req.headers.get("Content-Length")
        call(service.begin_upload, a, int(length) if length and length.isdigit() else None)
        try:
            call(service.store_upload, a, req.stream())
        except (ConnectionError, ValueError):
            raise ConnectionAbortedError("the upload ended early")
        with service.lock:
            return web.json_response(a.overview())

    def attachment_overview(req, details=False):
        check_accept(req)
        require(req, WRITE)
        org, _ = who(req, platform)
        a = call(service.attachment_for_sender, org, guid(req, "attachmentId"))
        with service.lock:
            return web.json_response(a.overview(details))

    def purge_attachment(req):
        check_accept(req)
        require(req, WRITE)
        org, _ = who(req, platform)
        a = call(service.purge_attachment, org, guid(req, "attachmentId"))
        return web.json_response(a.id)

    def sender_download(req):
        require(req, WRITE)
        org, _ = who(req, platform)
        with service.lock:
            a = call(service.attachment_for_sender, org, guid(req, "attachmentId"))
            if any(service.correspondences[c].published for c in a.correspondences):
                raise web.HttpError(problem(cm.CorrError(2016)))
            if not a.path:
                raise web.HttpError(problem(cm.CorrError(2001)))
        return attachment_file(a, inline=False)

    def get(template, handler):
        """ASP.NET's [HttpGet] does not answer HEAD (405): a HEAD never fetches or reads."""
        def wrapped(req):
            if req.method == "HEAD":
                return web.empty(405, [("Allow", "GET")])
            return handler(req)
        router.add("GET", template, wrapped)

    router.add("POST", PREFIX, initialize)
    get(PREFIX, search)
    router.add("POST", PREFIX + "/upload", initialize_upload)
    get(PREFIX + "/{correspondenceId}", overview)
    get(PREFIX + "/{correspondenceId}/details", lambda r: overview(r, True))
    get(PREFIX + "/{correspondenceId}/content", content)
    router.add("POST", PREFIX + "/{correspondenceId}/markasread",
               action(service.mark_as_read, (READ,)))
    router.add("POST", PREFIX + "/{correspondenceId}/confirm",
               action(service.confirm, (READ,)))
    router.add("DELETE", PREFIX + "/{correspondenceId}/purge",
               action(service.purge, (READ, WRITE)))
    get(PREFIX + "/{correspondenceId}/attachment/{attachmentId}/download",
               download)
    router.add("POST", ATTACHMENT, new_attachment)
    router.add("POST", ATTACHMENT + "/{attachmentId}/upload", upload_attachment)
    get(ATTACHMENT + "/{attachmentId}", attachment_overview)
    get(ATTACHMENT + "/{attachmentId}/details",
               lambda r: attachment_overview(r, True))
    router.add("DELETE", ATTACHMENT + "/{attachmentId}", purge_attachment)
    get(ATTACHMENT + "/{attachmentId}/download", sender_download)


_INLINE = (".pdf", ".png", ".jpg", ".jpeg", ".gif", ".bmp")


def attachment_file(a, inline):
    body = cm.broker.FileContent(a.path, a.size)
    disposition = brokerapi.content_disposition(a.file_name or a.id)
    if inline and (a.file_name or "").lower().endswith(_INLINE):
        disposition = "inline" + disposition[len("attachment"):]
    return web.Response(200, [("Content-Type", a.data_type),
                              ("Content-Disposition", disposition)], content=body)


# -- admin ----------------------------------------------------------------------------------

def register_admin(router, platform):
    service = platform.correspondence
    prefix = "/_localtest/correspondence"

    def bad(message):
        return web.HttpError(web.text(400, message))

    def put_resource(req):
        try:
            resource = service.put_resource(req.json())
        except ValueError as e:
            raise bad(str(e))
        return web.json_response(resource.to_json(), status=201)

    def list_resources(req):
        with service.lock:
            return web.json_response([r.to_json() for r in service.resources.values()])

    def delete_resource(req):
        with service.lock:
            gone = service.resources.pop(req.params["resourceId"], None)
        return web.empty(204 if gone is not None else 404)

    def correspondences(req):
        rid = req.arg("resourceId")
        with service.lock:
            out = []
            for c in service.correspondences.values():
                if rid and c.resource_id != rid:
                    continue
                doc = c.overview(details=True)
                doc["idempotentKey"] = c.idempotent_key
                doc["fetches"] = len(c.fetched)
                out.append(doc)
        return web.json_response(out)

    def attachments(req):
        with service.lock:
            return web.json_response([a.overview(details=True)
                                      for a in service.attachments.values()])

    def expire(req):
        """Move an attachment's expiration time to now, as if its days had passed."""
        with service.lock:
            a = service.attachments.get(req.params["attachmentId"])
            if a is None:
                return web.empty(404)
            a.expiration = min(a.expiration, time.time())
            service.expire_due(a)
            return web.json_response(a.overview(details=True))

    def get_settings(req):
        return web.json_response(service.settings.to_json())

    def put_settings(req):
        try:
            service.settings.update(req.json())
        except ValueError as e:
            raise bad(str(e))
        return get_settings(req)

    router.add("POST", prefix + "/resources", put_resource, auth=False)
    router.add("GET", prefix + "/resources", list_resources, auth=False)
    router.add("DELETE", prefix + "/resources/{resourceId}", delete_resource, auth=False)
    router.add("GET", prefix + "/correspondences", correspondences, auth=False)
    router.add("GET", prefix + "/attachments", attachments, auth=False)
    router.add("POST", prefix + "/attachments/{attachmentId}/expire", expire, auth=False)
    router.add("GET", prefix + "/settings", get_settings, auth=False)
    router.add("PUT", prefix + "/settings", put_settings, auth=False)
