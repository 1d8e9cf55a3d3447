"""App API instance endpoints (altinn-api.md 3.1, 3.5) and the registration of the App API
writes: data elements (appdata.py), the process (process.py) and their admin endpoints.

`POST /{org}/{app}/instances` follows app-lib's InstancesController.Post step by step: the
template comes from a JSON body or the `instance` part of a multipart/form-data body (the other
parts are data elements named by data type id; `notification` is ignored); the owner from
`instanceOwnerPartyId` or the template's instanceOwner (partyId, organisationNumber or
personNumber, looked up in parties.py); then the policy check, partyTypesAllowed, the process
start (process.py) and the parts. Its 400/403/404 messages are bare strings as in app-lib;
problems storing a part are ProblemDetails, and then no instance is kept. The instance is
complete before it enters the store, and `app.instance.created` is registered (Store.app_event)
after it.

Owner operations: `POST .../complete` (org only; idempotent), `PUT .../substatus` (org only;
event `app.instance.substatus.changed`) and `DELETE .../{partyId}/{guid}[?hard=true]`.
"""

import json
import uuid

from . import (appauth, appdata, auth, content, dates, model, multipart, parties, process,
               uploads, web)
from .uploads import Rejected

INSTANCE = "/{org}/{app}/instances/{partyId:int}/{instanceGuid:guid}"


def _bad(message):
    return web.HttpError(web.text(400, message))


def _template(parts):
    """(template dict or None, the data parts), as ExtractInstanceTemplate (and
    ExtractInstantiationNotification, whose part is dropped)."""
    found = next((p for p in parts if p.name == "instance"), None)
    if found is None and len(parts) == 1 and parts[0].name is None:
        found = parts[0]
    rest = [p for p in parts if p is not found and p.name != "notification"]
    if found is None:
        return None, rest
    if not found.data or "application/json" not in found.content_type:
        return None, rest
    try:
        doc = json.loads(found.data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _bad("Invalid instance template: %s" % e)
    if not isinstance(doc, dict):
        raise _bad("Invalid instance template: expected a JSON object")
    return doc, rest


def _read_parts(req):
    content_type = req.headers.get("Content-Type")
    if content_type is None:
        return []
    uploads.check_request_size(req)
    body = uploads.read_body(req)
    if "multipart/" in content_type.lower():
        try:
            return multipart.parse(content_type, body)
        except multipart.MultipartError as e:
            raise appauth.fail(400, "Error reading request", str(e), req)
    return [multipart.Part(None, content_type, None, body)]


def _validate_parts(app, parts):
    """RequestPartValidator: the first problem with a data part, as a message, or None."""
    for part in parts:
        data_type = app.data_type(part.name) if part.name else None
        if data_type is None:
            return ("Multipart section named, '%s' does not correspond to an element type in "
                    "application metadata" % part.name)
        allowed = data_type.get("allowedContentTypes") or []
        if allowed and part.content_type.split(";")[0] not in allowed:
            return ("The multipart section named %s has a Content-Type '%s' which is invalid "
                    "for element type '%s'" % (part.name, part.content_type, data_type["id"]))
        if not part.data:
            return ("The multipart section named %s has no data. Cannot process empty part."
                    % part.name)
        max_size = data_type.get("maxSize")
        if max_size and len(part.data) > max_size * uploads.MIB:
            return ("The multipart section named %s exceeds the size limit of element type '%s'"
                    % (part.name, data_type["id"]))
    for data_type in app.doc["dataTypes"]:
        max_count = data_type.get("maxCount") or 0
        if max_count > 0 and sum(1 for p in parts if p.name == data_type["id"]) > max_count:
            return ("The list of parts contains more elements of type '%s' than the element "
                    "type allows." % data_type["id"])
    return None


def _lookup_party(register, owner):
    """The party, or raise 404 "Cannot lookup party: ..."."""
    party, what = None, None
    if owner.get("partyId") is not None:
        what = "partyId: %s" % owner["partyId"]
        if str(owner["partyId"]).isdigit():
            party = register.by_id(int(owner["partyId"]))
    elif owner.get("personNumber"):
        what = "personNumber: %s" % owner["personNumber"]
        party = register.by_person_number(str(owner["personNumber"]))
    elif owner.get("organisationNumber"):
        what = "organisationNumber: %s" % owner["organisationNumber"]
        party = register.by_org_number(str(owner["organisationNumber"]))
    else:
        what = "instanceOwner"
    if party is None:
        raise web.HttpError(web.text(404, "Cannot lookup party: Failed to lookup party by %s. "
                                     "The exception was: party not found" % what))
    return party


def _template_time(template, key):
    if template.get(key) is None:
        return None
    try:
        return dates.parse_iso(str(template[key]))
    except ValueError:
        raise _bad("Invalid instance template: %s is not a date" % key)


def _owner(req, template):
    """The instanceOwner to look up, with app-lib's 400s."""
    query = req.arg("instanceOwnerPartyId")
    if query is not None and not query.strip().lstrip("-").isdigit():
        raise web.HttpError(web.validation_problem("instanceOwnerPartyId",
                                                   "The value '%s' is not valid." % query))
    if query is None and template is None:
        raise _bad("Cannot create an instance without an instanceOwner.partyId. Either provide "
                   "instanceOwner party Id as a query parameter or an instanceTemplate object "
                   "in the body.")
    owner = (template or {}).get("instanceOwner")
    if query is not None and isinstance(owner, dict) and owner.get("partyId") is not None:
        raise _bad("You cannot provide an instanceOwnerPartyId as a query param as well as an "
                   "instance template in the body. Choose one or the other.")
    if template is None:
        return {"partyId": str(int(query))}
    keys = ("personNumber", "organisationNumber", "partyId", "externalIdentifier", "username")
    if not isinstance(owner, dict) or all(owner.get(k) is None for k in keys):
        raise _bad("Error: instanceOwnerPartyId query parameter is empty and InstanceOwner is "
                   "missing from instance template. You must populate instanceOwnerPartyId or "
                   "InstanceOwner")
    return owner


def _store_part(req, app, inst, part, at, by, enforce=False):
    """Add one data part to the new instance (raises a ProblemDetails HttpError)."""
    data_type = app.data_type(part.name)
    found = appauth.create_problem(inst, data_type, req.principal, size=len(part.data),
                                   enforce_task=enforce)
    if found:
        raise appauth.fail(found[0], found[1], found[2], req)
    content_type, filename = part.content_type, part.filename
    if uploads.is_form(data_type):
        try:
            content_type = uploads.check_form(part.content_type, part.data)
        except Rejected as e:
            raise uploads.as_http_error(e, legacy=False, path=req.path)
        filename = None
    try:
        uploads.check_header_filename(filename)
    except Rejected as e:
        raise uploads.as_http_error(e, legacy=False, path=req.path)
    filename = uploads.storage_filename(filename)
    inst.data.append(model.DataElement(
        str(uuid.uuid4()), data_type["id"], content_type, content.BytesContent(part.data),
        filename=filename, created=at, created_by=by, is_read=not req.principal.is_org))


def instance_response(req, inst, party):
    """InstanceResponse: the instance with both self links and instanceOwner.party."""
    doc = inst.to_json(req.base_url, apps=True)
    if party is not None:
        doc["instanceOwner"]["party"] = party.to_json()
    return doc


def register(router, platform):
    store, register_ = platform.store, platform.parties

    def create(req):
        app = appauth.find_app(store, req)
        principal = req.principal
        appauth.check_scope(req, write=True)
        if app.doc.get("disallowUserInstantiation") and not principal.is_org:
            return web.text(403, "User instantiation is disabled for this application %s" % app.id)
        try:
            template, parts = _template(_read_parts(req))
        except Rejected as e:
            raise uploads.as_http_error(e, legacy=True, path=req.path)
        owner = _owner(req, template)
        problem = _validate_parts(app, parts)
        if problem:
            raise _bad("Error when comparing content to application metadata: " + problem)
        party = _lookup_party(register_, owner)
        if not appauth.may_act_for(principal, app, party.party_id):
            return auth.forbidden()
        if not party.allowed_by(app.doc.get("partyTypesAllowed")):
            return web.text(403, "Party %d is not allowed to instantiate this application %s"
                            % (party.party_id, app.id))
        now, by = dates.now_ticks(), principal.subject
        inst = model.Instance(str(uuid.uuid4()), party.party_id, app.id, party.owner_fields(),
                              created=now, created_by=by)
        inst.due_before = _template_time(template or {}, "dueBefore")
        inst.visible_after = _template_time(template or {}, "visibleAfter")
        inst.read_status = "Unread" if principal.is_org else "Read"
        process.start(app, inst, now)
        for part in parts:
            _store_part(req, app, inst, part, now, by,
                        platform.options.enforce_data_type_task_id)
        process.initialize_task(app, inst, now, by)
        with store.lock:
            store.add_instance(inst)
            store.app_event("app.instance.created", inst)
            doc = instance_response(req, inst, party)
        return web.json_response(doc, status=201,
                                 headers=[("Location", doc["selfLinks"]["apps"])])

    def get_instance(req):
        app = appauth.find_app(store, req)
        with store.lock:
            inst = appauth.load_instance(store, req, app, write=False)
            return web.json_response(instance_response(req, inst, register_.by_id(
                int(inst.party_id))))

    def complete(req):
        app = appauth.find_app(store, req)
        with store.lock:
            inst = appauth.load_instance(store, req, app, write=True)
            if not req.principal.is_org:
                return auth.forbidden()
            if not inst.confirmed_by(req.principal.org):
                now = dates.now_ticks()
                inst.confirmations.append((req.principal.org, now))
                store.touch(inst, by=req.principal.subject, ticks=now)
            return web.json_response(inst.to_json(req.base_url, apps=True))

    def substatus(req):
        app = appauth.find_app(store, req)
        doc = req.json() if req.body().strip() else None
        if not isinstance(doc, dict) or not isinstance(doc.get("label"), str) or \
                not doc["label"]:
            raise _bad("Invalid sub status: %s. Substatus must be defined and include a label."
                       % json.dumps(doc))
        with store.lock:
            inst = appauth.load_instance(store, req, app, write=True)
            if not req.principal.is_org:
                return auth.forbidden()
            inst.substatus = {"label": doc["label"]}
            if doc.get("description") is not None:
                inst.substatus["description"] = str(doc["description"])
            store.touch(inst, by=req.principal.subject)
            store.app_event("app.instance.substatus.changed", inst)
            # app-lib sets the app self link on its copy, not on the instance it returns
            return web.json_response(inst.to_json(req.base_url))

    def delete(req):
        app = appauth.find_app(store, req)
        hard = (req.arg("hard") or "false").strip().lower()
        if hard not in ("true", "false"):
            raise web.HttpError(web.validation_problem("hard", "The value '%s' is not valid."
                                                       % req.arg("hard")))
        with store.lock:
            inst = appauth.load_instance(store, req, app, write=True)
            now = dates.now_ticks()
            inst.is_soft_deleted = True
            if inst.soft_deleted is None:
                inst.soft_deleted = now
            if hard == "true":
                inst.is_hard_deleted = True
                inst.hard_deleted = now
            store.touch(inst, by=req.principal.subject, ticks=now)
            return web.json_response(inst.to_json(req.base_url, apps=True))

    router.add("POST", "/{org}/{app}/instances", create)
    router.add("GET", INSTANCE, get_instance)
    router.add("DELETE", INSTANCE, delete)
    router.add("POST", INSTANCE + "/complete", complete)
    router.add("PUT", INSTANCE + "/substatus", substatus)
    appdata.register(router, platform)
    process.register(router, platform)
    _register_admin(platform)


def _register_admin(platform):
    """GET /_localtest/instances and /_localtest/data/{dataGuid}; POST/GET /_localtest/parties."""
    store, router = platform.store, platform.admin_router

    def list_instances(req):
        app_id, party_id = req.arg("appId"), req.arg("partyId")
        with store.lock:
            app_ids = [app_id] if app_id else [a.id for a in store.apps()]
            rows = [i for i in store.instances(app_ids)
                    if party_id is None or i.party_id == party_id]
            rows.sort(key=lambda i: i.row_id)
            return web.json_response([i.to_json(req.base_url, apps=True) for i in rows])

    def get_data(req):
        guid = req.params["dataGuid"].lower()
        with store.lock:
            for inst in store.instances([a.id for a in store.apps()]):
                element = inst.data_element(guid)
                if element is not None:
                    return web.Response(200, [("Content-Type", element.content_type)],
                                        content=element.content)
        return web.text(404, "no data element %s" % guid)

    router.add("GET", "/_localtest/instances", list_instances, auth=False)
    router.add("GET", "/_localtest/data/{dataGuid:guid}", get_data, auth=False)
    parties.register_admin(router, platform)
