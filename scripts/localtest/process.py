"""The app process: each app's tasks in order (`model.Application.process`, default one data
task `Task_1`), then the end event; and the App API's process endpoints (altinn-api.md 3.4).

What app-lib's process engine does, reduced to a straight line of tasks:

- Start (at instantiation): the process is at the first task; form data types of that task
  with `appLogic.autoCreate` get an empty model element if they have none (after the data
  parts of a multipart instantiation are stored).
- `PUT .../process/next` checks the process is running (409 "Process is ended."), that the
  caller may do the action (default by task type: data/feedback -> write, confirmation ->
  confirm, signing -> sign; others 403), and validates the task as app-lib's default task
  validator does (each data type of the task within minCount..maxCount; 409 "Validation failed
  for task" naming the number of errors). Then the data elements of the task's data types are
  locked and the process moves on: to the next task (its data types' elements are unlocked
  and auto-created; event `app.instance.process.movedTo.<task>`), or to the end event
  (`process.ended`, `endEvent`, no `currentTask`, the instance archived, every element locked;
  event `app.instance.process.completed`). Events go through `Store.app_event`.
- `PUT .../process/completeProcess` repeats next with the default action until the end.
"""

import uuid

from . import appauth, content, dates, model, uploads, web

DEFAULT_ACTIONS = {"data": "write", "feedback": "write", "pdf": "write", "eFormidling": "write",
                   "fiksArkiv": "write", "confirmation": "confirm", "signing": "sign"}
TASK_ACTIONS = {"confirmation": ["confirm"], "signing": ["sign", "reject"],
                "payment": ["pay", "confirm", "reject"]}
END_EVENT = "EndEvent_1"
VALIDATOR = "Altinn.App.Core.Features.Validation.Default.DefaultTaskValidator"


def default_action(task_type):
    return DEFAULT_ACTIONS.get(task_type, task_type)


def _index(app, task_id):
    for n, task in enumerate(app.process):
        if task["id"] == task_id:
            return n
    return None


def _connected(app, task_id):
    return [t for t in app.doc["dataTypes"] if t.get("taskId") == task_id]


def _task(app, index, at, flow):
    task = app.process[index]
    return model.Task(task["id"], task["name"], task["altinnTaskType"], at, flow=flow)


def _enter(app, inst, index, at, flow, by):
    inst.process.current_task = _task(app, index, at, flow)
    initialize_task(app, inst, at, by)


def initialize_task(app, inst, at, by):
    """What starting the current task does: unlock its data types' elements and auto-create
    the form elements it lacks."""
    for data_type in _connected(app, inst.process.current_task.element_id):
        elements = [e for e in inst.data if e.data_type == data_type["id"]]
        for element in elements:
            element.locked = False
        app_logic = data_type.get("appLogic") or {}
        if not elements and app_logic.get("autoCreate") and app_logic.get("classRef"):
            inst.data.append(model.DataElement(
                str(uuid.uuid4()), data_type["id"], "application/xml",
                content.BytesContent(uploads.empty_form(data_type)),
                created=at, created_by=by))


def start(app, inst, at):
    """Put a new instance's process at the app's first task. Instantiation stores the data
    parts and then calls `initialize_task`, as app-lib does."""
    inst.process = model.Process(at, current_task=_task(app, 0, at, 2))


def state_problem(inst):
    """(title, detail) when the process cannot move, else None."""
    if inst.process is None:
        return None, "The instance is missing process information."
    if inst.process.ended is not None:
        return None, "Process is ended."
    if inst.process.current_task is None:
        return None, "Process is not started. Use start!"
    return None


def validate(app, inst, task_id):
    """Validation issues (errors) of app-lib's default task validator for `task_id`."""
    issues = []
    for data_type in _connected(app, task_id):
        count = sum(1 for e in inst.data if e.data_type == data_type["id"])
        max_count, min_count = data_type.get("maxCount") or 0, data_type.get("minCount") or 0
        if 0 < max_count < count:
            issues.append(_issue("TooManyDataElementsOfType", data_type["id"]))
        if min_count > 0 and min_count > count:
            issues.append(_issue("TooFewDataElementsOfType", data_type["id"]))
    return issues


def _issue(code, field):
    return {"severity": 1, "field": field, "code": code, "description": code,
            "source": VALIDATOR, "noIncrementalUpdates": False}


def move_next(store, app, inst, by):
    """Leave the current task (validated already) for the next task or the end event.
    Returns the event type it registered. Call with store.lock held."""
    at = dates.now_ticks()
    current = inst.process.current_task
    for data_type in _connected(app, current.element_id):
        for element in inst.data:
            if element.data_type == data_type["id"]:
                element.locked = True
    index = _index(app, current.element_id)
    if index is not None and index + 1 < len(app.process):
        _enter(app, inst, index + 1, at, current.flow + 1, by)
        event = "app.instance.process.movedTo." + app.process[index + 1]["id"]
    else:
        inst.end_process(at, END_EVENT)
        for element in inst.data:
            element.locked = True
        event = "app.instance.process.completed"
    store.touch(inst, by=by, ticks=at)
    store.app_event(event, inst)
    return event


def allowed_actions(task_type):
    return {default_action(task_type)}


def state_json(app, inst):
    """AppProcessState: the process plus, for the current task, the caller's actions, and
    the app's tasks."""
    out = inst.process.to_json() if inst.process is not None else {}
    task = inst.process.current_task if inst.process is not None else None
    if task is not None:
        names = ["read", "write"] + TASK_ACTIONS.get(task.altinn_task_type, [])
        allowed = {"read"} | allowed_actions(task.altinn_task_type)
        out["currentTask"].update({
            "actions": {name: name in allowed for name in names},
            "userActions": [{"id": name, "authorized": name in allowed, "type": "ProcessAction"}
                            for name in names],
            "read": True,
            "write": "write" in allowed,
            "elementType": "Task",
        })
    out["processTasks"] = [{"altinnTaskType": t["altinnTaskType"], "elementId": t["id"],
                            "elementType": "Task"} for t in app.process]
    return out


def _requested_action(req):
    body = req.body()
    if not body.strip():
        return None
    try:
        doc = req.json()
    except web.HttpError:
        raise web.HttpError(web.validation_problem("processNext", "The JSON value is invalid."))
    if doc is None:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("action"), (str, type(None))):
        raise web.HttpError(web.validation_problem("processNext",
                                                   "action must be a string or null"))
    return doc.get("action")


def _validation_failed(req, task_id, issues):
    return appauth.fail(409, "Validation failed for task", "%d validation errors found for task %s"
                        % (len(issues), task_id), req, {"validationIssues": issues})


def register(router, platform):
    store = platform.store
    base = "/{org}/{app}/instances/{partyId:int}/{instanceGuid:guid}/process"

    def get_process(req):
        app = appauth.find_app(store, req)
        with store.lock:
            inst = appauth.load_instance(store, req, app, write=False)
            return web.json_response(state_json(app, inst))

    def next_(req):
        app = appauth.find_app(store, req)
        action = _requested_action(req)
        with store.lock:
            inst = appauth.load_instance(store, req, app, write=True)
            found = state_problem(inst)
            if found:
                raise appauth.fail(409, found[0], found[1], req, {"validationIssues": None})
            task = inst.process.current_task
            if (action or default_action(task.altinn_task_type)) not in \
                    allowed_actions(task.altinn_task_type):
                raise appauth.fail(403, "Unauthorized", (
                    "User is not authorized to perform process next. Task ID: %s. Task type: "
                    "%s. Action: %s." % (task.element_id, task.altinn_task_type,
                                         action or "none")), req)
            issues = validate(app, inst, task.element_id)
            if issues:
                raise _validation_failed(req, task.element_id, issues)
            move_next(store, app, inst, req.principal.subject)
            return web.json_response(state_json(app, inst))

    def complete_process(req):
        app = appauth.find_app(store, req)
        with store.lock:
            inst = appauth.load_instance(store, req, app, write=True)
            if inst.process is None:
                raise appauth.fail(409, "Process is not started. Use start!", None, req)
            if inst.process.ended is not None:
                return web.text(409, "Process is ended. It cannot be restarted.")
            for _ in range(len(app.process) + 1):
                task = inst.process.current_task
                if task is None:
                    break
                issues = validate(app, inst, task.element_id)
                if issues:
                    raise _validation_failed(req, task.element_id, issues)
                move_next(store, app, inst, req.principal.subject)
            return web.json_response(state_json(app, inst))

    router.add("GET", base, get_process)
    router.add("PUT", base + "/next", next_)
    router.add("PUT", base + "/completeProcess", complete_process)
