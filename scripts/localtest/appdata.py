"""App API data elements: upload, replace, delete and read (altinn-api.md 3.2, 3.3).

`POST .../data?dataType=ID` is the legacy endpoint the widest range of apps serve: 201 with
`Location` and the DataElement. The order of checks is app-lib v8's: the instance (404) and
data type (400), the access checks (403 `ref-data-as-pdf`, 409 "Conflict with Current Task",
409 "Instance Not Active", 409 "Max Count Exceeded", 400 "User Create Disallowed", 409 "No
current task"), then the bytes (uploads.py: the attachment header rules, 413 past maxSize,
400 empty; or the form-data parse). Answers keep app-lib's shapes: on this endpoint every 400
is a bare string (`text/plain`, the ValidationIssue descriptions joined by ";"), everything
else ProblemDetails. `PUT .../data/{guid}` answers its access checks with ProblemDetails and
its attachment rules with bare strings, and a locked element gives 409; `DELETE` answers
ProblemDetails only and 200 with the v8 `{instance, validationIssues, newDataModels}`.

The body is read outside the store lock (uploads can be large) and the checks run again under
the lock before the element is stored, so a racing upload cannot exceed maxCount.
"""

import uuid

from . import appauth, content, dates, model, storage, uploads, web
from .uploads import Rejected


def _raise_problem(found, req, legacy):
    status, title, detail = found
    if legacy and status == 400:
        raise web.HttpError(web.text(400, detail))
    raise appauth.fail(status, title, detail, req)


def _created(req, inst, element):
    doc = element.to_json(inst, req.base_url, apps=True)
    return web.json_response(doc, status=201, headers=[("Location", doc["selfLinks"]["apps"])])


def _read_form(req, data_type, empty_when_untyped):
    """(bytes, content type to store) of a form-data body."""
    content_type = req.headers.get("Content-Type")
    if content_type is None and empty_when_untyped:
        return uploads.empty_form(data_type), "application/xml"
    body = uploads.read_body(req, data_type)
    return body, uploads.check_form(content_type, body)


def _read_attachment(req, data_type, legacy_too_large):
    """(bytes, content type, filename) of an attachment body after the upload rules. A
    replace (legacy_too_large) reads the plain filename= parameter, as app-lib's PUT does."""
    filename = uploads.check_attachment(req.headers, data_type, plain=legacy_too_large)
    content_type = req.headers.get("Content-Type")
    if content_type is None:
        raise Rejected(400, "The request is missing a content type header.",
                       title="Missing content type")
    try:
        body = uploads.read_body(req, data_type)
    except Rejected as e:
        if legacy_too_large:
            e.status = 400
        raise
    uploads.check_not_empty(body)
    return body, content_type, filename


def register(router, platform):
    store = platform.store
    enforce = platform.options.enforce_data_type_task_id
    base = "/{org}/{app}/instances/{partyId:int}/{instanceGuid:guid}/data"

    def create_checks(req, app, type_id):
        inst = appauth.load_instance(store, req, app, write=True)
        data_type = app.data_type(type_id)
        if data_type is None:
            raise web.HttpError(web.text(400, 'Could not find the specified data type: "%s" in '
                                         "applicationmetadata.json" % type_id))
        found = appauth.create_problem(inst, data_type, req.principal, enforce_task=enforce)
        if found:
            _raise_problem(found, req, legacy=True)
        if appauth.current_task_id(inst) is None:
            raise appauth.fail(409, "No current task",
                               "Cannot create data element without a current task", req)
        return inst, data_type

    def post_data(req):
        app = appauth.find_app(store, req)
        type_id = req.arg("dataType")
        if not type_id:
            raise web.HttpError(web.validation_problem("dataType",
                                                       "The dataType field is required."))
        with store.lock:
            _, data_type = create_checks(req, app, type_id)
        uploads.check_request_size(req)
        filename = None
        try:
            if uploads.is_form(data_type):
                body, content_type = _read_form(req, data_type, empty_when_untyped=True)
            else:
                body, content_type, filename = _read_attachment(req, data_type, False)
            uploads.check_header_filename(filename)
        except Rejected as e:
            raise uploads.as_http_error(e, legacy=True, path=req.path)
        filename = uploads.storage_filename(filename)
        with store.lock:
            inst, data_type = create_checks(req, app, type_id)
            now = dates.now_ticks()
            by = req.principal.subject
            element = model.DataElement(
                str(uuid.uuid4()), data_type["id"], content_type, content.BytesContent(body),
                filename=filename, created=now, created_by=by,
                is_read=not req.principal.is_org)
            inst.data.append(element)
            store.touch(inst, by=by, ticks=now)
            return _created(req, inst, element)

    def update_checks(req, app):
        inst, element, data_type = appauth.load_element(store, req, app, write=True)
        found = appauth.mutation_problem(inst, data_type, req.principal, enforce)
        if found:
            _raise_problem(found, req, legacy=False)
        return inst, element, data_type

    def put_data(req):
        app = appauth.find_app(store, req)
        with store.lock:
            _, _, data_type = update_checks(req, app)
        uploads.check_request_size(req)
        filename = None
        try:
            if uploads.is_form(data_type):
                body, content_type = _read_form(req, data_type, empty_when_untyped=False)
            else:
                body, content_type, filename = _read_attachment(req, data_type, True)
            uploads.check_header_filename(filename)
        except Rejected as e:
            raise uploads.as_http_error(e, legacy=not uploads.is_form(data_type),
                                        path=req.path)
        filename = uploads.storage_filename(filename)
        with store.lock:
            inst, element, data_type = update_checks(req, app)
            if uploads.is_form(data_type) and appauth.current_task_id(inst) is None:
                raise appauth.fail(409, "No current task",
                                   "Cannot update data element without a current task", req)
            if element.locked:
                raise appauth.fail(409, "Conflict", "Data element %s is locked and cannot be "
                                   "updated" % element.guid, req)
            element.content_type = content_type
            if filename is not None:
                element.filename = filename
            store.replace_content(inst, element, content.BytesContent(body),
                                  by=req.principal.subject)
            return _created(req, inst, element)

    def delete_data(req):
        app = appauth.find_app(store, req)
        with store.lock:
            inst, element, data_type = appauth.load_element(store, req, app, write=True)
            found = appauth.delete_problem(inst, data_type, req.principal, enforce)
            if found:
                _raise_problem(found, req, legacy=False)
            if element.locked:
                raise appauth.fail(409, "Conflict", "Data element %s is locked and cannot be "
                                   "updated or deleted." % element.guid, req)
            inst.data.remove(element)
            store.touch(inst, by=req.principal.subject)
            return web.json_response({"instance": inst.to_json(req.base_url, apps=True),
                                      "validationIssues": [], "newDataModels": []})

    def get_data(req):
        app = appauth.find_app(store, req)
        with store.lock:
            inst, element, _ = appauth.load_element(store, req, app, write=False)
            # The app streams the blob with File(): no range processing.
            return storage.data_response(req, inst, element, ranges=False)

    router.add("POST", base, post_data)
    router.add("GET", base + "/{dataGuid:guid}", get_data)
    router.add("PUT", base + "/{dataGuid:guid}", put_data)
    router.add("DELETE", base + "/{dataGuid:guid}", delete_data)
