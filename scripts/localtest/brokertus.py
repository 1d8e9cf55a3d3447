"""Broker's TUS 1.0.0 resumable upload (`/broker/api/v1/filetransfer/upload/tus/{id}`), as
tusdotnet and altinn-broker's TusEndpointExtensions.cs / TusUploadAuthorizationService.cs
answer it. The upload's id is the file transfer's id; the Location is the same URL.

- Every request but OPTIONS needs `Tus-Resumable: 1.0.0` (412 with `Tus-Version` otherwise),
  and all need the Sender policy (token, altinn:broker.write); tusdotnet's own refusals are
  text/plain, as are the Broker errors it passes on through `FailRequest`.
- POST creates: `Upload-Length` required, `Upload-Defer-Length` refused (400); the transfer
  must be the caller's and not beyond UploadStarted (409); the size limits of the resource
  (400 "File size exceeds maximum"). 201 + Location + Upload-Expires; the transfer becomes
  UploadStarted. A second POST starts the upload again from offset 0 (BrokerTusStore).
- HEAD: 200 with Upload-Offset, Upload-Length, Cache-Control: no-store.
- PATCH: `Content-Type: application/offset+octet-stream` (415), `Upload-Offset` equal to the
  server's (409 otherwise), no more than Upload-Length bytes (413); 204 with the new
  Upload-Offset. A PATCH at the offset of a complete upload is 204 again
  (TusIdempotentCompletePatchMiddleware). `Upload-Checksum` always fails (460): the store
  advertises md5 but its VerifyChecksumAsync returns false. What arrived before a client
  went away is kept, so the client resumes from HEAD's offset.
- DELETE terminates an unfinished upload (204).
- When the last byte arrives the checksum check is deferred: UploadProcessing (when a checksum
  was given or the scan is on), then Published, or Failed "Checksum mismatch" with an
  uploadfailed event. Concatenation (Upload-Concat) is not modelled (400).
"""

import email.utils
import time

from . import broker, web

TUS_VERSION = "1.0.0"
OFFSET_TYPE = "application/offset+octet-stream"


def _tus_headers(extra=()):
    return [("Tus-Resumable", TUS_VERSION)] + list(extra)


def _text(status, message, extra=()):
    return web.Response(status, _tus_headers(extra) + [("Content-Type", web.TEXT)],
                        message.encode("utf-8"))


def _expires(t):
    return ("Upload-Expires", email.utils.formatdate(t, usegmt=True))


def _number(req, name):
    raw = req.headers.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit():
        raise web.HttpError(_text(400, "Header %s must be a positive number" % name))
    return int(raw)


def register(router, platform, base):
    service = platform.broker
    path = base + "/{fileTransferId}"

    def prelude(req, check_version=True):
        if not req.principal.has_scope("altinn:broker.write"):
            raise web.HttpError(web.empty(403))
        if check_version and req.headers.get("Tus-Resumable") != TUS_VERSION:
            raise web.HttpError(web.Response(412, [("Tus-Version", TUS_VERSION)]))
        return broker.caller_org(req.principal.claims)

    def fail(error):
        return web.HttpError(_text(error.status, error.message))

    def transfer(req):
        try:
            return service.get(req.params["fileTransferId"].lower())
        except broker.BrokerError:
            raise web.HttpError(_text(404, "Missing file transfer id"))

    def sender_ok(caller, t, in_progress):
        """TryAuthorizeActiveUploadAsync / ValidateTusGetInfoAsync, simplified: the caller
        must be the transfer's sender (401), and for writes the upload must be in progress
        (409)."""
        resource = service.resource(t.resource_id)
        if not service.may_send(caller, resource, t.sender_org):
            raise fail(broker.BrokerError(6))
        if in_progress and t.status not in ("UploadStarted", "UploadProcessing"):
            raise fail(broker.BrokerError(4))

    def options(req):
        prelude(req, check_version=False)
        return web.empty(204, _tus_headers([
            ("Tus-Version", TUS_VERSION),
            ("Tus-Extension", "creation,creation-with-upload,termination,checksum,"
                              "concatenation,expiration"),
            ("Tus-Checksum-Algorithm", "md5")]))

    def create(req):
        caller = prelude(req)
        if req.headers.get("Upload-Concat") is not None:
            return _text(400, "Upload-Concat is not supported by altinn-localtest")
        if req.headers.get("Upload-Defer-Length") is not None:
            return _text(400, "Upload-Defer-Length is not supported")
        length = _number(req, "Upload-Length")
        if length is None:
            return _text(400, "Missing Upload-Length header")
        transfer(req)
        try:
            t = service.check_upload(caller, req.params["fileTransferId"].lower(), None)
            service.check_size(t, length)
        except broker.BrokerError as e:
            raise fail(e)
        with service.lock:
            if t.tus is not None:
                broker._unlink(t.tus.path)
            t.tus = broker.TusUpload(length, service.new_path(t), time.time(),
                                     service.settings.tus_expiration)
            open(t.tus.path, "wb").close()
            tus = t.tus
        service.start_upload(t)
        headers = [("Location", "%s/%s" % (base, t.id)), _expires(tus.expires)]
        if (req.headers.get("Content-Type") or "").split(";")[0].strip() == OFFSET_TYPE \
                and req.headers.get("Content-Length") not in (None, "0"):
            resp = write(req, caller, t, 0)
            headers.append(("Upload-Offset", resp.header("Upload-Offset")))
        return web.empty(201, _tus_headers(headers))

    def head(req):
        caller = prelude(req)
        t = transfer(req)
        sender_ok(caller, t, in_progress=False)
        tus = t.tus
        if tus is None:
            return web.empty(404, _tus_headers([("Cache-Control", "no-store")]))
        return web.empty(200, _tus_headers([
            ("Upload-Offset", str(tus.offset)), ("Upload-Length", str(tus.length)),
            ("Cache-Control", "no-store"), _expires(tus.expires)]))

    def patch(req):
        caller = prelude(req)
        if (req.headers.get("Content-Type") or "").split(";")[0].strip().lower() != OFFSET_TYPE:
            return _text(415, "Content-Type %s is required" % OFFSET_TYPE)
        offset = _number(req, "Upload-Offset")
        if offset is None:
            return _text(400, "Missing Upload-Offset header")
        t = transfer(req)
        tus = t.tus
        if tus is not None and tus.offset == tus.length and offset == tus.length:
            return web.empty(204, _tus_headers([("Upload-Offset", str(tus.offset))]))
        sender_ok(caller, t, in_progress=True)
        if tus is None:
            return web.empty(404, _tus_headers())
        return write(req, caller, t, offset)

    def write(req, caller, t, offset):
        tus = t.tus
        if req.headers.get("Upload-Checksum") is not None:
            req.finish_body()
            return _text(460, "Header Upload-Checksum does not match the checksum of the "
                              "file")
        with service.lock:
            if tus.busy:
                return _text(409, "File %s is currently being updated. Please try again "
                                  "later" % t.id)
            if offset != tus.offset:
                return _text(409, "Offset does not match file. File offset: %d. Request "
                                  "offset: %d" % (tus.offset, offset))
            declared = req.headers.get("Content-Length")
            if declared and declared.isdigit() and offset + int(declared) > tus.length:
                return _text(413, "Request contains more data than the file's upload "
                                  "length. Request data: %s, upload length: %d."
                             % (declared, tus.length))
            tus.busy = True
        cut = service.take_cut()
        try:
            with open(tus.path, "r+b") as f:
                f.seek(tus.offset)
                for data in req.stream():
                    if cut is not None and tus.offset - offset + len(data) >= cut:
                        data = data[:max(0, cut - (tus.offset - offset))]
                        f.write(data)
                        tus.md5.update(data)
                        tus.offset += len(data)
                        raise ConnectionAbortedError("PATCH cut by cutUploadAfter")
                    if tus.offset + len(data) > tus.length:
                        data = data[:tus.length - tus.offset]
                        f.write(data)
                        tus.md5.update(data)
                        tus.offset += len(data)
                        return _text(413, "Request contains more data than the file's "
                                          "upload length.")
                    f.write(data)
                    tus.md5.update(data)
                    tus.offset += len(data)
        except (ConnectionError, ValueError):
            raise ConnectionAbortedError("the PATCH ended early")
        finally:
            tus.busy = False
            tus.activity = time.time()
            tus.expires = tus.activity + service.settings.tus_expiration
        if tus.offset == tus.length:
            finish(t, tus)
        return web.empty(204, _tus_headers([("Upload-Offset", str(tus.offset)),
                                            _expires(tus.expires)]))

    def finish(t, tus):
        """OnFileCompleteAsync: the bytes are the transfer's; checks are deferred."""
        service.complete_upload(t, tus.path, tus.md5.hexdigest(), tus.length, deferred=True)

    def delete(req):
        caller = prelude(req)
        t = transfer(req)
        try:
            service.check_upload(caller, t.id, None)
        except broker.BrokerError as e:
            raise fail(e)
        with service.lock:
            if t.tus is None:
                return web.empty(404, _tus_headers())
            broker._unlink(t.tus.path)
            t.tus = None
        return web.empty(204, _tus_headers())

    router.add("OPTIONS", path, options)
    router.add("OPTIONS", base, options)
    router.add("POST", path, create)
    router.add("HEAD", path, head)
    router.add("PATCH", path, patch)
    router.add("DELETE", path, delete)
