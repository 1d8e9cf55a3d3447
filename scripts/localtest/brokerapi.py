"""Broker's HTTP API (`/broker/api/v1/filetransfer...`, FileTransferController.cs) over
broker.py's model, and its admin calls under `/_localtest/broker`.

Each endpoint checks in the order ASP.NET and the handlers do: the Accept header (406, before
authentication; AcceptHeaderValidationMiddleware), the bearer token (401 empty), the policy's
scopes (403 empty: Sender needs altinn:broker.write, Recipient altinn:broker.read,
SenderOrRecipient either), model binding (400 ValidationProblemDetails with an `errors`
dictionary), then the handler's rules, whose failures are ProblemDetails with Broker's
`code` (`BRO-000NN`, Errors.cs) and a `traceId`. The caller's organisation is
GetCallerOrganizationId's: a system user's organisation, else `urn:altinn:orgNumber`, else
the Maskinporten `consumer`.
"""

import json
import re
import uuid

from . import broker, brokertus, multipart, uploads, web

PREFIX = "/broker/api/v1/filetransfer"
WRITE = "altinn:broker.write"
READ = "altinn:broker.read"
_ORG_PATTERN = re.compile(r"^(?:\d{4}:\d{9}|urn:altinn:organization:identifier-no:\d{9})$")
_RESOURCE_PATTERN = re.compile(r"^(?:urn:altinn:resource:)?[^:]{1,255}$")
_SENDER_MESSAGE = ("Organization numbers should be on the form countrycode:organizationnumber "
                   "(e.g. 0192:910753614) or urn:altinn:organization:identifier-no:"
                   "organizationnumber")
_RECIPIENT_MESSAGE = ("Each recipient should be on the form countrycode:organizationnumber "
                      "(e.g. 0192:910753614) or urn:altinn:organization:identifier-no:"
                      "organizationnumber")
_MEDIA_TYPES = {415: ("https://tools.ietf.org/html/rfc9110#section-15.5.16",
                      "Unsupported Media Type")}


def trace_id():
    return "00-%s-%s-00" % (uuid.uuid4().hex, uuid.uuid4().hex[:16])


_TITLES = {400: ("15.5.1", "Bad Request"), 401: ("15.5.2", "Unauthorized"),
           403: ("15.5.4", "Forbidden"), 404: ("15.5.5", "Not Found"),
           409: ("15.5.10", "Conflict"), 416: ("15.5.17", "Range Not Satisfiable"),
           500: ("15.6.1", "Internal Server Error"), 503: ("15.6.4", "Service Unavailable")}


def problem(error):
    """ProblemDetailsHelper.ToProblemResult for a BrokerError."""
    section, title = _TITLES[error.status]
    doc = {"type": "https://tools.ietf.org/html/rfc9110#section-" + section, "title": title,
           "status": error.status, "detail": error.message,
           "code": "BRO-%05d" % error.code, "traceId": trace_id()}
    return web.Response(error.status, [("Content-Type", web.PROBLEM_JSON)],
                        json.dumps(doc, separators=(",", ":")).encode())


def validation(errors):
    """ASP.NET's automatic 400 for a model that does not bind or validate."""
    return web.HttpError(web.problem(400, "One or more validation errors occurred.",
                                     extra={"errors": errors, "traceId": trace_id()}))


def media_problem(status):
    kind, title = _MEDIA_TYPES[status]
    doc = {"type": kind, "title": title, "status": status, "traceId": trace_id()}
    return web.HttpError(web.Response(status, [("Content-Type", web.PROBLEM_JSON)],
                                      json.dumps(doc).encode()))


def check_accept(req):
    """AcceptHeaderValidationMiddleware for endpoints that produce application/json."""
    accept = req.headers.get_all("Accept") if hasattr(req.headers, "get_all") else None
    if not accept:
        return
    for header in accept:
        for item in header.split(","):
            if item.split(";")[0].strip().lower() in ("application/json", "*/*"):
                return
    raise web.HttpError(web.Response(406, [], (
        "This endpoint does not support the requested Accept header. Supported Accept "
        "headers are: application/json, */*.").encode()))


def require(req, *scopes):
    """The caller's organisation, once APIM's rate limit and the policy's scopes pass."""
    if not any(req.principal.has_scope(s) for s in scopes):
        raise web.HttpError(web.empty(403))
    return broker.caller_org(req.principal.claims)


def transfer_id(req):
    """The route's Guid, or the 400 its model binding gives."""
    raw = req.params["fileTransferId"]
    try:
        if raw.lower().startswith("urn:"):
            raise ValueError(raw)
        return str(uuid.UUID(raw[1:-1] if raw[:1] in "({" else raw))
    except ValueError:
        raise validation({"fileTransferId": ["The value '%s' is not valid." % raw]})


def content_type(req):
    return (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()


# -- the initialize model -------------------------------------------------------------------

def net_len(s):
    """A string's length as .NET counts it (string.Length: UTF-16 code units), which
    the model's [StringLength] and PropertyListAttribute compare: a character outside
    the BMP counts twice."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def _length(errors, doc, key, name, low, high):
    value = doc.get(key)
    if value is None:
        return
    if not low <= net_len(value) <= high:
        errors.setdefault(name, []).append(
            "The field %s must be a string with a minimum length of %d and a maximum length "
            "of %d." % (name, low, high))


def validate_initialize(doc):
    """FileTransferInitalizeExt's attributes; returns the model with the defaults a missing
    field gets (an omitted sendersFileTransferReference is "" and fails its length)."""
    if not isinstance(doc, dict):
        raise validation({"initializeExt": ["The initializeExt field is required."]})
    model = {"fileName": "", "resourceId": "", "sendersFileTransferReference": "",
             "sender": "", "recipients": [], "propertyList": {}, "checksum": "",
             "disableVirusScan": False}
    kinds = {"fileName": str, "resourceId": str, "sendersFileTransferReference": str,
             "sender": str, "recipients": list, "propertyList": dict, "checksum": str,
             "disableVirusScan": bool}
    errors = {}
    for key, value in doc.items():
        if key not in kinds:
            continue                                  # unknown members are ignored
        ok = value is None or isinstance(value, kinds[key])
        if ok and key == "recipients" and value is not None:
            ok = all(isinstance(v, str) for v in value)
        if ok and key == "propertyList" and value is not None:
            ok = all(isinstance(v, str) for v in value.values())
        if not ok:
            errors["$." + key] = ["The JSON value could not be converted to %s. Path: $.%s"
                                  % (kinds[key].__name__, key)]
        model[key] = value
    if errors:
        errors["initializeExt"] = ["The initializeExt field is required."]
        raise validation(errors)
    for key, name in (("fileName", "FileName"), ("resourceId", "ResourceId"),
                      ("sender", "Sender"), ("recipients", "Recipients")):
        if model[key] is None or model[key] == "":
            errors.setdefault(name, []).append("The %s field is required." % name)
    _length(errors, model, "fileName", "FileName", 1, 255)
    _length(errors, model, "resourceId", "ResourceId", 1, 255)
    _length(errors, model, "sendersFileTransferReference", "SendersFileTransferReference",
            1, 4096)
    rid = model["resourceId"]
    if rid and not _RESOURCE_PATTERN.match(rid):
        errors.setdefault("ResourceId", []).append("Invalid Resource identifier format")
    if model["sender"] and not _ORG_PATTERN.match(model["sender"]):
        errors.setdefault("Sender", []).append(_SENDER_MESSAGE)
    recipients = model["recipients"]
    if recipients is not None:
        if any(not _ORG_PATTERN.match(r) for r in recipients):
            errors.setdefault("Recipients", []).append(_RECIPIENT_MESSAGE)
        if len(recipients) < 1:
            errors.setdefault("Recipients", []).append("One or more recipients are required")
    props = model["propertyList"]
    if props:
        message = None
        if len(props) > 10:
            message = "PropertyList can contain at most 10 properties"
        else:
            for k, v in props.items():
                if net_len(k) > 50:
                    message = ("PropertyList Key can not be longer than 50. Length:%d, "
                               "KeyValue:%s" % (net_len(k), k))
                    break
                if net_len(v) > 3000:
                    message = ("PropertyList Value can not be longer than 3000. Length:%d, "
                               "Value:%s" % (net_len(v), v))
                    break
        if message:
            errors.setdefault("PropertyList", []).append(message)
    checksum = model["checksum"]
    if checksum and checksum.strip():
        if len(checksum) != 32:
            errors.setdefault("Checksum", []).append(
                "The checksum, if used, must be a MD5 hash with a length of 32 characters")
        elif checksum.lower() != checksum:
            errors.setdefault("Checksum", []).append(
                "The checksum, if used, must be a MD5 hash in lower case")
    if errors:
        raise validation(errors)
    model["resourceId"] = broker.without_prefix(rid)       # InitializeFileTransferMapper
    return model


def form_metadata(fields):
    """FileTransferInitializeAndUploadExt's Metadata.* form fields as the JSON model."""
    doc = {}
    recipients = {}
    props = {}
    for name, value in fields:
        key = name.lower()
        if not key.startswith("metadata."):
            continue
        key = key[len("metadata."):]
        m = re.match(r"^recipients\[(\d+)\]$", key)
        if m:
            recipients[int(m.group(1))] = value
        elif key == "recipients":
            recipients[len(recipients)] = value
        elif key.startswith("propertylist."):
            props[name[len("metadata.propertylist."):]] = value
        elif key.startswith("propertylist[") and key.endswith("]"):
            props[name[len("metadata.propertylist["):-1]] = value
        else:
            for field in ("fileName", "resourceId", "sendersFileTransferReference", "sender",
                          "checksum"):
                if key == field.lower():
                    doc[field] = value
            if key == "disablevirusscan":
                if value.strip().lower() not in ("true", "false"):
                    raise validation({"Metadata.DisableVirusScan": [
                        "The value '%s' is not valid for DisableVirusScan." % value]})
                doc["disableVirusScan"] = value.strip().lower() == "true"
    if recipients:
        doc["recipients"] = [recipients[i] for i in sorted(recipients)]
    if props:
        doc["propertyList"] = props
    return doc


def form_parts(req):
    """(fields [(name, text)], file bytes or None) of a multipart/form-data body."""
    marker = multipart.boundary(req.headers.get("Content-Type") or "")
    if marker is None:
        raise validation({"": ["Failed to read the request form. Missing content-type "
                               "boundary."]})
    fields, data = [], None
    try:
        sections = list(multipart._sections(req.body(), marker))
    except multipart.MultipartError as e:
        raise validation({"": ["Failed to read the request form. %s" % e]})
    for section in sections:
        head, _, body = section.partition(b"\r\n\r\n")
        disposition = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon and name.strip().lower() == "content-disposition":
                disposition = value.strip()
        try:
            _, params = uploads.parse_content_disposition(disposition or "")
        except ValueError:
            continue
        name = params.get("name", "").strip('"')
        if "filename" in params or "filename*" in params:
            if name.lower() == "filetransfer":
                data = body
        else:
            fields.append((name, body.decode("utf-8", "replace")))
    return fields, data


# -- endpoints ------------------------------------------------------------------------------

def register(router, platform):
    service = platform.broker

    def get_only(handler):
        """ASP.NET's [HttpGet] does not answer HEAD (405), so a HEAD never starts a
        download here either."""
        def wrapped(req):
            if req.method == "HEAD":
                return web.empty(405, [("Allow", "GET")])
            return handler(req)
        return wrapped

    def limit(req, kind="default"):
        """APIM in front of Broker: 429 with Retry-After past the rate limit."""
        wait = service.rate_limited(req.principal, kind)
        if wait:
            raise web.HttpError(web.json_response(
                {"statusCode": 429, "message": "Rate limit is exceeded. Try again in %d "
                 "seconds." % wait}, status=429, headers=[("Retry-After", str(wait))]))

    def call(fn, *args):
        try:
            return fn(*args)
        except broker.BrokerError as e:
            raise web.HttpError(problem(e))

    def initialize(req):
        limit(req)
        check_accept(req)
        caller = require(req, WRITE)
        if content_type(req) not in ("application/json", "text/json") and \
                not content_type(req).endswith("+json"):
            raise media_problem(415)
        try:
            doc = json.loads(req.body().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise validation({"$": [str(e)],
                              "initializeExt": ["The initializeExt field is required."]})
        model = validate_initialize(doc)
        t = call(service.initialize, caller, model)
        return web.json_response({"fileTransferId": t.id})

    def upload(req):
        limit(req)
        check_accept(req)
        caller = require(req, WRITE)
        tid = transfer_id(req)
        if content_type(req) != "application/octet-stream":
            raise media_problem(415)
        length = req.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        t = call(service.check_upload, caller, tid, length)
        return _store(t, req.stream())

    def _store(t, chunks):
        service.start_upload(t)
        cut = service.take_cut()
        try:
            path, md5, size = service.stream_upload(t, chunks, cut)
        except broker.UploadCut as e:
            if e.status is None:
                raise ConnectionAbortedError("upload cut by the cutUploadAfter switch")
            return web.problem(e.status, "Injected by altinn-localtest",
                               "the upload was cut off after %d bytes" % cut)
        except broker.BrokerError as e:
            return problem(e)
        except (ConnectionError, ValueError):
            raise ConnectionAbortedError("the upload ended early")
        call(service.complete_upload, t, path, md5, size)
        return web.json_response({"fileTransferId": t.id})

    def initialize_and_upload(req):
        limit(req)
        check_accept(req)
        caller = require(req, WRITE)
        if content_type(req) != "multipart/form-data":
            raise media_problem(415)
        fields, data = form_parts(req)
        errors = {}
        if data is None:
            errors["FileTransfer"] = ["The FileTransfer field is required."]
        try:
            model = validate_initialize(form_metadata(fields))
        except web.HttpError as e:
            if not errors:
                raise
            errors.update(json.loads(e.response.body)["errors"])
            model = None
        if errors:
            raise validation(errors)
        t = call(service.initialize, caller, model)
        call(service.check_upload, caller, t.id, len(data))
        return _store(t, iter([data]))

    def overview(req, details=False):
        limit(req, "details" if details else "default")
        check_accept(req)
        caller = require(req, WRITE, READ)
        tid = transfer_id(req)
        with service.lock:
            t = call(service.get, tid)
            if not service.may_see(caller, t):
                raise web.HttpError(problem(broker.BrokerError(6)))
            return web.json_response(t.overview(details))

    def search(req):
        limit(req, "search")
        check_accept(req)
        caller = require(req, WRITE, READ)
        errors = {}

        def enum(name, values):
            raw = req.arg(name)
            if raw is None or raw == "":
                return None
            for i, v in enumerate(values):
                if raw.strip().lower() == v.lower() or raw.strip() == str(i):
                    return v
            errors[name] = ["The value '%s' is not valid." % raw]
            return None

        def when(name):
            raw = req.arg(name)
            if raw is None or raw == "":
                return None
            try:
                ticks = broker.dates.parse_iso(raw)
            except ValueError:
                errors[name] = ["The value '%s' is not valid." % raw]
                return None
            return (ticks - broker.dates.EPOCH_TICKS) / broker.dates.TICKS_PER_SECOND

        status = enum("status", broker.STATUSES)
        recipient_status = enum("recipientStatus", broker.RECIPIENT_STATUSES)
        role = enum("role", ("Recipient", "Sender"))
        start, end = when("from"), when("to")
        ascending = req.arg("orderAscending")
        if ascending not in (None, ""):
            if ascending.strip().lower() not in ("true", "false"):
                errors["orderAscending"] = ["The value '%s' is not valid." % ascending]
            ascending = ascending.strip().lower() == "true"
        else:
            ascending = None
        rid = req.arg("resourceId")
        if not rid:
            errors["resourceId"] = ["The resourceId field is required."]
        if errors:
            raise validation(errors)
        ids = call(service.search, caller, rid, status, recipient_status, start, end,
                   ascending, role)
        return web.json_response(ids)

    def download(req):
        limit(req)
        caller = require(req, READ)
        tid = transfer_id(req)
        t, body = call(service.download, caller, tid)
        rng = web.parse_range(req.headers.get("Range"), body.size)
        if rng == web.UNSATISFIABLE:
            return problem(broker.BrokerError(29))
        service.download_started(caller, t, ranged=rng is not None)
        headers = [("Content-Type", "application/octet-stream"),
                   ("Content-Disposition", content_disposition(t.file_name)),
                   ("Accept-Ranges", "bytes")]
        if rng is None:
            return web.Response(200, headers, content=body)
        start, end = rng
        headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end - 1, body.size)))
        return web.Response(206, headers, content=body, start=start, end=end)

    def confirm(req):
        limit(req)
        check_accept(req)
        caller = require(req, READ)
        tid = transfer_id(req)
        call(service.confirm, caller, tid)
        return web.empty(204)

    router.add("POST", PREFIX, initialize)
    router.add("GET", PREFIX, get_only(search))
    router.add("POST", PREFIX + "/upload", initialize_and_upload)
    brokertus.register(router, platform, PREFIX + "/upload/tus")
    router.add("GET", PREFIX + "/{fileTransferId}", get_only(overview))
    router.add("GET", PREFIX + "/{fileTransferId}/details",
               get_only(lambda r: overview(r, True)))
    router.add("POST", PREFIX + "/{fileTransferId}/upload", upload)
    router.add("GET", PREFIX + "/{fileTransferId}/download", get_only(download))
    router.add("POST", PREFIX + "/{fileTransferId}/confirmdownload", confirm)


def content_disposition(name):
    """ASP.NET's File(stream, type, name): `attachment; filename=...; filename*=UTF-8''...`
    (non-ASCII and control characters in the plain form become `_`)."""
    plain = "".join(c if 0x20 <= ord(c) < 0x7F else "_" for c in name)
    if re.search(r'[\s"();,<>@\[\]\\/:?={}]', plain):
        plain = '"%s"' % plain.replace("\\", "\\\\").replace('"', '\\"')
    star = "".join(c if (c.isascii() and (c.isalnum() or c in "!#$&+-.^_`|~")) else
                   "".join("%%%02X" % b for b in c.encode("utf-8")) for c in name)
    return "attachment; filename=%s; filename*=UTF-8''%s" % (plain, star)


# -- admin ----------------------------------------------------------------------------------

def register_admin(router, platform):
    service = platform.broker
    prefix = "/_localtest/broker"

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

    def transfers(req):
        rid = req.arg("resourceId")
        with service.lock:
            service.sweep()
            out = []
            for t in service.transfers.values():
                if rid and t.resource_id != rid:
                    continue
                doc = t.overview(details=True)
                doc["tusOffset"] = t.tus.offset if t.tus is not None else None
                out.append(doc)
        return web.json_response(out)

    def stored(req):
        with service.lock:
            t = service.transfers.get(req.params["fileTransferId"])
            if t is None or not t.path:
                return web.empty(404)
            body = broker.FileContent(t.path, t.size)
        return web.Response(200, [("Content-Type", "application/octet-stream")], content=body)

    def corrupt(req):
        """Flips the stored file's last byte: downloads no longer match the
        checksum (what a client must refuse)."""
        with service.lock:
            t = service.transfers.get(req.params["fileTransferId"])
            if t is None or not t.path or not t.size:
                return web.empty(404)
            with open(t.path, "r+b") as f:
                f.seek(t.size - 1)
                last = f.read(1)
                f.seek(t.size - 1)
                f.write(bytes([last[0] ^ 0xFF]))
        return web.empty(204)

    def expire(req):
        with service.lock:
            t = service.transfers.get(req.params["fileTransferId"])
            if t is None:
                return web.empty(404)
            t.expiration = 0
            service.sweep()
            return web.json_response(t.overview(details=True))

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
    router.add("GET", prefix + "/transfers", transfers, auth=False)
    router.add("GET", prefix + "/transfers/{fileTransferId}/content", stored, auth=False)
    router.add("POST", prefix + "/transfers/{fileTransferId}/expire", expire, auth=False)
    router.add("POST", prefix + "/transfers/{fileTransferId}/corrupt", corrupt, auth=False)
    router.add("GET", prefix + "/settings", get_settings, auth=False)
    router.add("PUT", prefix + "/settings", put_settings, auth=False)
