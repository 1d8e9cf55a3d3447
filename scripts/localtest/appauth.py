"""Who may do what on the App API, and the checks app-lib runs before it touches data.

- Callers: an org token acts for its own org's apps (any instance owner); a user token acts for
  its own party (`urn:altinn:partyid`) only. Anything else is 403 with an empty body, as the
  app's policy decision point answers. An org token also needs the scope
  `altinn:serviceowner/instances.write` for writes and `.read` for reads (403 ProblemDetails
  "Insufficient scope" otherwise, as app-lib answers Maskinporten-based callers).
- `mutation_problem`/`create_problem`/`delete_problem` follow app-lib's
  DataElementAccessChecker, check for check: `ref-data-as-pdf` is read-only (403); a data type
  with a taskId can only change in that task (409 "Conflict with Current Task"), only when
  `EnforceDataTypeTaskId` is on (`--enforce-data-type-task-id`; app-lib AppSettings.cs:255
  defaults it to false); `actionRequiredToWrite` other than "write" (403: the app's policy
  decides, and this platform has none, so it takes the stricter reading and refuses);
  `allowedContributors` (or app-lib's spelling `allowedContributers`) without an
  `org:<caller's org>` or `orgno:<caller's orgNumber>` entry (403; AllowedContributorsHelper,
  so `app:owned` refuses every caller and users never match); an archived
  or deleted instance is not active (409); maxCount (409 "Max Count Exceeded"); maxSize (400);
  the only element of a form type and disallowUserDelete (400).
"""

import json
import os

from . import auth, web

PDF_TYPE = "ref-data-as-pdf"


def trace_id():
    return "00-%s-%s-00" % (os.urandom(16).hex(), os.urandom(8).hex())


def problem(status, title, detail=None, instance=None, extra=None):
    """ProblemDetails as app-lib writes them (a None title is left out)."""
    doc = {"type": web._PROBLEM_TYPES.get(status, "about:blank")}
    if title is not None:
        doc["title"] = title
    doc["status"] = status
    if detail is not None:
        doc["detail"] = detail
    if instance is not None:
        doc["instance"] = instance
    if extra:
        doc.update(extra)
    doc["traceId"] = trace_id()
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return web.Response(status, [("Content-Type", web.PROBLEM_JSON)], body)


def fail(status, title, detail=None, req=None, extra=None):
    return web.HttpError(problem(status, title, detail, req.path if req else None, extra))


def find_app(store, req):
    app = store.app("%s/%s" % (req.params["org"], req.params["app"]))
    if app is None:
        raise web.HttpError(web.empty(404))
    return app


def check_scope(req, write):
    principal = req.principal
    if principal.is_org:
        scope = auth.WRITE_SCOPE if write else auth.READ_SCOPE
        if not principal.has_scope(scope):
            raise fail(403, "Forbidden", "Insufficient scope", req)


def may_act_for(principal, app, party_id):
    if principal.is_org:
        return principal.same_org(app.org)
    if principal.party_id is not None:
        return str(principal.party_id) == str(party_id)
    return False


def authorize(req, app, party_id, write):
    """The policy check for acting on `party_id`'s instances of `app` (raises 403)."""
    check_scope(req, write)
    if not may_act_for(req.principal, app, party_id):
        raise web.HttpError(auth.forbidden())


def load_instance(store, req, app, write):
    """Authorize, then the instance named by the path (404 ProblemDetails when unknown).
    Call with store.lock held."""
    party_id, guid = req.params["partyId"], req.params["instanceGuid"]
    authorize(req, app, party_id, write)
    inst = store.instance(party_id, guid)
    if inst is None or inst.app_id != app.id:
        raise fail(404, "Instance Not Found", "Did not find instance %s/%s" % (party_id, guid),
                   req)
    return inst


def load_element(store, req, app, write):
    """(instance, element, data type) for .../data/{dataGuid}, with app-lib's 404/400s."""
    inst = load_instance(store, req, app, write)
    element = inst.data_element(req.params["dataGuid"].lower())
    if element is None:
        raise fail(404, "Data Element Not Found", "Did not find data element %s on instance %s"
                   % (req.params["dataGuid"], inst.id), req)
    data_type = app.data_type(element.data_type)
    if data_type is None:
        raise fail(400, "Data Type Not Found", 'Could not find the specified data type: "%s" '
                   "in applicationmetadata.json" % element.data_type, req)
    return inst, element, data_type


def is_active(inst):
    return inst.archived is None and inst.soft_deleted is None and inst.hard_deleted is None


def current_task_id(inst):
    task = inst.process.current_task if inst.process is not None else None
    return task.element_id if task is not None else None


def allowed_contributors(data_type):
    """The data type's contributor list (either spelling), or None when it has none."""
    found = data_type.get("allowedContributors")
    if found is None:
        found = data_type.get("allowedContributers")
    return found or None


def is_valid_contributor(data_type, principal):
    """app-lib AllowedContributorsHelper.IsValidContributor: no list, or an `org:` entry
    naming the caller's org, or an `orgno:` entry naming its organisation number (both
    case-insensitive). A user matches neither."""
    listed = allowed_contributors(data_type)
    if not listed:
        return True
    org = principal.org if principal is not None and principal.is_org else None
    org_no = principal.org_number if principal is not None and principal.is_org else None
    for item in listed:
        key, _, value = str(item).partition(":")
        if key.lower() == "org" and org and value.lower() == str(org).lower():
            return True
        if key.lower() == "orgno" and org_no and value.lower() == str(org_no).lower():
            return True
    return False


def mutation_problem(inst, data_type, principal=None, enforce_task=False):
    """(status, title, detail) of the first common check that fails, else None."""
    if data_type["id"].lower() == PDF_TYPE:
        return 403, "Forbidden", "Data element of type %s cannot be modified" % data_type["id"]
    expected = data_type.get("taskId")
    current = current_task_id(inst)
    if enforce_task and expected is not None and expected != current:
        return 409, "Conflict with Current Task", (
            "Data element of type %s can only be modified in %s (current task %s)"
            % (data_type["id"], expected, current or ""))
    action = data_type.get("actionRequiredToWrite")
    if action and action != "write":
        return 403, "Forbidden", ("User is not authorized to perform %s on data element of "
                                  "type %s" % (action, data_type["id"]))
    if not is_valid_contributor(data_type, principal):
        return 403, "Forbidden", "User is not a valid contributor to the data type %s" % (
            data_type["id"])
    if not is_active(inst):
        return 409, "Instance Not Active", (
            "Cannot update data element of archived or deleted instance %s" % inst.id)
    return None


def create_problem(inst, data_type, principal, size=None, enforce_task=False):
    found = mutation_problem(inst, data_type, principal, enforce_task)
    if found:
        return found
    max_count = data_type.get("maxCount") or 0
    existing = sum(1 for e in inst.data if e.data_type == data_type["id"])
    if max_count > 0 and existing >= max_count:
        return 409, "Max Count Exceeded", ("Cannot create more than %d data elements of type %s"
                                           % (max_count, data_type["id"]))
    max_size = data_type.get("maxSize")
    if size is not None and max_size and size > max_size * 1024 * 1024:
        return 400, "Max Size Exceeded", (
            "Cannot create data element of size %d which exceeds the max size of %s for %s"
            % (size, max_size, data_type["id"]))
    if (data_type.get("appLogic") or {}).get("disallowUserCreate") and not principal.is_org:
        return 400, "User Create Disallowed", (
            "Cannot create data element of type %s as it is disallowed by app logic"
            % data_type["id"])
    return None


def delete_problem(inst, data_type, principal, enforce_task=False):
    found = mutation_problem(inst, data_type, principal, enforce_task)
    if found:
        return found
    app_logic = data_type.get("appLogic") or {}
    if app_logic.get("classRef") and data_type.get("maxCount") == 1 and \
            data_type.get("minCount") == 1:
        return 400, "Cannot Delete main data element", (
            "Cannot delete the only data element of a class with app logic")
    if app_logic.get("disallowUserDelete") and not principal.is_org:
        return 400, "User Delete Disallowed", (
            "Cannot delete data element of type %s as it is disallowed by app logic"
            % data_type["id"])
    return None
