"""The in-memory platform: applications, instances and data elements, and the store that
holds them.

Every object keeps times as .NET ticks and renders itself in the platform's JSON shape
(altinn-api.md §2.3-2.5): null properties are left out, dates have seven fractional digits.
Links are absolute and built from the base URL of the request being answered, so the same
store serves clients that reach it under different host names.

The store has one re-entrant lock. Readers that render several objects (a query page) hold it
while rendering so they never see half of a write. Writers bump `version`, which lets callers
cache derived views (sorted query order). Listeners registered with `subscribe` hear about every
change (the Events module hooks in there).
"""

import threading

from . import dates


class DataElement:
    def __init__(self, guid, data_type, content_type, content, *, filename=None,
                 created, created_by, last_changed=None, last_changed_by=None,
                 locked=False, is_read=False, tags=None, refs=None, hard_deleted=None,
                 content_hash=None):
        self.guid = guid
        # contentHash as a test gave it (Storage fills it only for some uploads), or None
        self.content_hash = content_hash
        self.data_type = data_type
        self.content_type = content_type
        self.content = content
        self.filename = filename
        self.created = created
        self.created_by = created_by
        self.last_changed = last_changed if last_changed is not None else created
        self.last_changed_by = last_changed_by if last_changed_by is not None else created_by
        self.locked = locked
        self.is_read = is_read
        self.tags = list(tags or [])
        self.refs = list(refs or [])
        # deleteStatus: the ticks a user deleted it (DataController.Delete with delay), or None
        self.hard_deleted = hard_deleted

    @property
    def size(self):
        return self.content.size

    def to_json(self, inst, base, apps=False):
        path = "instances/%s/%s/data/%s" % (inst.party_id, inst.guid, self.guid)
        links = {}
        if apps:
            links["apps"] = "%s/%s/%s" % (base, inst.app_id, path)
        links["platform"] = "%s/storage/api/v1/%s" % (base, path)
        out = {
            "id": self.guid,
            "instanceGuid": inst.guid,
            "dataType": self.data_type,
        }
        if self.filename is not None:
            out["filename"] = self.filename
        out.update({
            "contentType": self.content_type,
            "blobStoragePath": "%s/%s/data/%s" % (inst.app_id, inst.guid, self.guid),
            "selfLinks": links,
            "size": self.size,
            "locked": self.locked,
            "refs": list(self.refs),
            "isRead": self.is_read,
            "tags": list(self.tags),
            "fileScanResult": "NotApplicable",
            "created": dates.format_ticks(self.created),
            "createdBy": self.created_by,
            "lastChanged": dates.format_ticks(self.last_changed),
            "lastChangedBy": self.last_changed_by,
        })
        if self.content_hash is not None:
            out["contentHash"] = self.content_hash
        if self.hard_deleted is not None:
            out["deleteStatus"] = {"isHardDeleted": True,
                                   "hardDeleted": dates.format_ticks(self.hard_deleted)}
        return out


class Task:
    def __init__(self, element_id, name, altinn_task_type, started, flow=2,
                 flow_type="CompleteCurrentMoveToNext"):
        self.element_id = element_id
        self.name = name
        self.altinn_task_type = altinn_task_type
        self.started = started
        self.flow = flow
        self.flow_type = flow_type

    def to_json(self):
        return {
            "flow": self.flow,
            "started": dates.format_ticks(self.started),
            "elementId": self.element_id,
            "name": self.name,
            "altinnTaskType": self.altinn_task_type,
            "flowType": self.flow_type,
        }


class Process:
    def __init__(self, started, start_event="StartEvent_1", current_task=None, ended=None,
                 end_event=None):
        self.started = started
        self.start_event = start_event
        self.current_task = current_task
        self.ended = ended
        self.end_event = end_event

    @property
    def is_complete(self):
        return self.ended is not None

    def to_json(self):
        out = {"started": dates.format_ticks(self.started), "startEvent": self.start_event}
        if self.current_task is not None:
            out["currentTask"] = self.current_task.to_json()
        if self.ended is not None:
            out["ended"] = dates.format_ticks(self.ended)
            out["endEvent"] = self.end_event
        return out


class Instance:
    def __init__(self, guid, party_id, app_id, owner, *, created, created_by,
                 last_changed=None, last_changed_by=None, process=None):
        self.guid = guid
        self.party_id = str(party_id)
        self.app_id = app_id
        self.org = app_id.split("/", 1)[0]
        # {"organisationNumber": "..."} or {"personNumber": "..."}
        self.owner = dict(owner)
        self.process = process
        self.created = created
        self.created_by = created_by
        self.last_changed = last_changed if last_changed is not None else created
        self.last_changed_by = last_changed_by if last_changed_by is not None else created_by
        self.due_before = None
        self.visible_after = None
        self.is_archived = False
        self.archived = None
        self.is_soft_deleted = False
        self.soft_deleted = None
        self.is_hard_deleted = False
        self.hard_deleted = None
        self.read_status = "Read"
        self.substatus = None          # {"label": ..., "description": ...}
        self.confirmations = []        # [(stakeholderId, ticks)]
        self.data = []                 # [DataElement]
        self.row_id = 0                # set by the store; tie-break in query order

    @property
    def id(self):
        return "%s/%s" % (self.party_id, self.guid)

    @property
    def is_complete(self):
        return self.process is not None and self.process.is_complete

    def confirmed_by(self, org):
        return any(stakeholder == org for stakeholder, _ in self.confirmations)

    def start_process(self, at, task_id="Task_1", task_name="Utfylling", task_type="data"):
        """Put the process at its first task, as instantiation does."""
        self.process = Process(at, current_task=Task(task_id, task_name, task_type, at))
        self.is_archived = False
        self.archived = None

    def end_process(self, at, end_event="EndEvent_1"):
        """End the process; the platform archives the instance when its process ends."""
        started = self.process.started if self.process else at
        self.process = Process(started, ended=at, end_event=end_event)
        self.is_archived = True
        self.archived = at

    def data_element(self, guid):
        for element in self.data:
            if element.guid == guid:
                return element
        return None

    def visible_data(self, owner):
        """Storage hides user-deleted elements from everyone but the app owner
        (FilterOutDeletedDataElements, skipped when User.GetOrg() == instance.Org)."""
        return [e for e in self.data if owner or e.hard_deleted is None]

    def to_json(self, base, include_data=True, apps=False, app_owner=True):
        links = {}
        if apps:
            links["apps"] = "%s/%s/instances/%s" % (base, self.app_id, self.id)
        links["platform"] = "%s/storage/api/v1/instances/%s" % (base, self.id)
        owner = {"partyId": self.party_id}
        owner.update(self.owner)
        out = {
            "id": self.id,
            "instanceOwner": owner,
            "appId": self.app_id,
            "org": self.org,
            "selfLinks": links,
        }
        if self.due_before is not None:
            out["dueBefore"] = dates.format_ticks(self.due_before)
        if self.visible_after is not None:
            out["visibleAfter"] = dates.format_ticks(self.visible_after)
        if self.process is not None:
            out["process"] = self.process.to_json()
        status = {"isArchived": self.is_archived}
        if self.archived is not None:
            status["archived"] = dates.format_ticks(self.archived)
        status["isSoftDeleted"] = self.is_soft_deleted
        if self.soft_deleted is not None:
            status["softDeleted"] = dates.format_ticks(self.soft_deleted)
        status["isHardDeleted"] = self.is_hard_deleted
        if self.hard_deleted is not None:
            status["hardDeleted"] = dates.format_ticks(self.hard_deleted)
        status["readStatus"] = self.read_status
        if self.substatus is not None:
            status["substatus"] = dict(self.substatus)
        out["status"] = status
        if self.confirmations:
            out["completeConfirmations"] = [
                {"stakeholderId": who, "confirmedOn": dates.format_ticks(when)}
                for who, when in self.confirmations]
        out["data"] = ([e.to_json(self, base, apps) for e in self.visible_data(app_owner)]
                       if include_data else [])
        out.update({
            "created": dates.format_ticks(self.created),
            "createdBy": self.created_by,
            "lastChanged": dates.format_ticks(self.last_changed),
            "lastChangedBy": self.last_changed_by,
        })
        return out


# An app's process when it names none: one data task, then the end event.
DEFAULT_PROCESS = [{"id": "Task_1", "name": "Utfylling", "altinnTaskType": "data"}]


def _process_tasks(tasks):
    if not isinstance(tasks, list) or not tasks:
        raise ValueError("_process must be a non-empty list of tasks")
    out = []
    for task in tasks:
        if not isinstance(task, dict) or not isinstance(task.get("id"), str) or \
                not isinstance(task.get("altinnTaskType"), str):
            raise ValueError("each _process task needs a string id and altinnTaskType")
        out.append({"id": task["id"], "name": str(task.get("name") or task["id"]),
                    "altinnTaskType": task["altinnTaskType"]})
    if len({t["id"] for t in out}) != len(out):
        raise ValueError("_process task ids must be unique")
    return out


class Application:
    """Application metadata as a document (the platform returns what the app deployed).

    `process` is the app's process (BPMN) as its tasks in order, each {"id", "name",
    "altinnTaskType"}, followed by the end event. It is not part of the metadata document:
    it comes from the non-standard key "_process", which is taken out of the document.
    """

    def __init__(self, doc):
        if not isinstance(doc.get("id"), str) or doc["id"].count("/") != 1:
            raise ValueError("application id must be 'org/app'")
        self.doc = dict(doc)
        self.process = _process_tasks(self.doc.pop("_process", DEFAULT_PROCESS))
        self.doc.setdefault("org", self.id.split("/")[0])
        self.doc.setdefault("dataTypes", [])

    @property
    def id(self):
        return self.doc["id"]

    @property
    def org(self):
        return self.doc["org"]

    @property
    def name(self):
        return self.id.split("/")[1]

    def data_type(self, type_id):
        for data_type in self.doc["dataTypes"]:
            if data_type.get("id") == type_id:
                return data_type
        return None

    def to_json(self):
        return self.doc


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.version = 0
        self._apps = {}            # "org/app" -> Application
        self._instances = {}       # instance guid -> Instance
        self._by_app = {}          # "org/app" -> {guid: Instance}
        self._next_row = 1
        self._listeners = []
        self._lazy = {}            # "org/app" -> scale.ScaleApp (instances made on demand)

    # -- change notification -------------------------------------------------------------

    def subscribe(self, callback):
        """callback(kind, instance, detail) after every change; kind is one of
        "instance.created", "instance.deleted", "instance.changed", "data.changed", or
        "app.event": the App API did something after which an app registers an event with
        Events (altinn-api.md 4.2); detail is the CloudEvent type ("app.instance.created",
        "app.instance.process.movedTo.Task_2", "app.instance.process.completed",
        "app.instance.substatus.changed") and the instance is as it is after the change.
        Callbacks run with the store lock held: record what happened and return (do network
        work such as webhook delivery on another thread)."""
        with self.lock:
            self._listeners.append(callback)

    def _changed(self, kind, instance, detail=None):
        self._materialise(instance)
        self.version += 1
        self._notify(kind, instance, detail)

    def _notify(self, kind, instance, detail):
        for callback in list(self._listeners):
            callback(kind, instance, detail)

    def app_event(self, event_type, instance):
        """Tell listeners that the app would now register `event_type` for `instance`."""
        with self.lock:
            self._notify("app.event", instance, event_type)

    # -- applications --------------------------------------------------------------------

    def add_app(self, app):
        with self.lock:
            self._apps[app.id] = app
            self._by_app.setdefault(app.id, {})
            self.version += 1
        return app

    def app(self, app_id):
        with self.lock:
            return self._apps.get(app_id)

    def apps(self, org=None):
        with self.lock:
            return [a for a in self._apps.values() if org is None or a.org == org]

    # -- instances made on demand (scale.py) ----------------------------------------------

    def add_lazy(self, lazy):
        with self.lock:
            self._lazy[lazy.app_id] = lazy
            self._next_row = max(self._next_row, lazy.n + 1)

    def lazy(self, app_id):
        return self._lazy.get(app_id)

    def _materialise(self, inst):
        """A generated instance that changes is kept from then on (with the lock held)."""
        n = getattr(inst, "lazy_index", None)
        if n is None or inst.guid in self._instances:
            return
        self._lazy[inst.app_id].overridden.add(n)
        self._instances[inst.guid] = inst
        self._by_app[inst.app_id][inst.guid] = inst

    # -- instances -----------------------------------------------------------------------

    def add_instance(self, inst):
        with self.lock:
            if inst.app_id not in self._apps:
                raise KeyError("unknown app %s" % inst.app_id)
            if inst.guid in self._instances:
                raise ValueError("instance %s exists" % inst.guid)
            inst.row_id = self._next_row
            self._next_row += 1
            self._instances[inst.guid] = inst
            self._by_app[inst.app_id][inst.guid] = inst
            self._changed("instance.created", inst)
        return inst

    def remove_instance(self, party_id, guid):
        with self.lock:
            inst = self.instance(party_id, guid)
            if inst is None:
                return None
            if getattr(inst, "lazy_index", None) is not None:
                self._lazy[inst.app_id].overridden.add(inst.lazy_index)
                if inst.guid not in self._instances:
                    self.version += 1
                    self._notify("instance.deleted", inst, None)
                    return inst
            del self._instances[inst.guid]
            del self._by_app[inst.app_id][inst.guid]
            self._changed("instance.deleted", inst)
            return inst

    def instance(self, party_id, guid):
        """The instance, or None when unknown or owned by another party."""
        with self.lock:
            inst = self._instances.get(guid.lower())
            if inst is None:
                for lazy in self._lazy.values():
                    inst = lazy.get(guid)
                    if inst is not None:
                        break
            if inst is None or (party_id is not None and inst.party_id != str(party_id)):
                return None
            return inst

    def instances(self, app_ids):
        """All instances of the given apps (unordered); of a scale app only those that
        changed (query.search asks lazy() for the rest)."""
        with self.lock:
            out = []
            for app_id in app_ids:
                out.extend(self._by_app.get(app_id, {}).values())
            return out

    def touch(self, inst, by=None, ticks=None):
        """Record a change to `inst` (its lastChanged moves to now)."""
        with self.lock:
            inst.last_changed = ticks if ticks is not None else dates.now_ticks()
            if by is not None:
                inst.last_changed_by = by
            self._changed("instance.changed", inst)

    def replace_content(self, inst, element, content, by=None):
        """New bytes for a data element; its and the instance's lastChanged move to now."""
        with self.lock:
            now = dates.now_ticks()
            element.content = content
            element.last_changed = now
            inst.last_changed = now
            if by is not None:
                element.last_changed_by = by
                inst.last_changed_by = by
            self._changed("data.changed", inst, element)
