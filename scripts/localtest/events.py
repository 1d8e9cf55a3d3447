"""Events API (`/events/api/v1`): polling app events and the generic events feed, plus the
service behind subscriptions and webhooks (`platform.events`).

Polling follows altinn-events' AppController and EventsController (altinn-api.md §4.3):

- `GET /app/{org}/{app}`: org token only (else 401 `Only orgs can call this api`); another
  org's app gives `[]`. One of `after`/`from` is required, `from`/`to` need a timezone,
  `size` >= 1 (default 50; above 1,000 is cut to 1,000 here), `party` xor `unit`/header
  `person`, `unit` 9 digits: a ProblemDetails 400 otherwise. `type` is repeatable and matched
  with ILIKE (`%`, `_`, case-insensitive).
- `GET /events?resource=&after=&subject=&type=&size=` (header `Altinn-AlternativeSubject`):
  scope `altinn:events.subscribe`; `after=0` to start; `size` < 1 gives 50, above 1,000 gives
  1,000; `type` matched with LIKE (case-sensitive).
- The answer is a JSON array in sequence order. A non-empty page carries a `next` header:
  `{base}{path}?after={id of the last event}` followed by every other query parameter as
  `&name=value`, decoded and not re-encoded (as the platform writes it; characters a header
  cannot carry are percent-encoded). An empty page has no `next`.
- Events registered less than `min_event_age` seconds ago (`--min-event-age`, default 30 as
  on the platform) are not returned yet. Webhooks do not wait for that.

Publishing: the service listens to the store (`Store.subscribe`). Where a real app registers
an event (altinn-api.md §4.2) the App API calls `store.app_event(type, instance)` --
`app.instance.created`, `app.instance.process.movedTo.{task}`,
`app.instance.process.completed`, `app.instance.substatus.changed` -- and the admin API does
the same for `POST /_localtest/instances`; each becomes one event. Seeding emits nothing.
`publish_app_event` publishes directly (admin `POST /_localtest/events`).
"""

import uuid

from . import auth, dates, eventstore, subscriptions, web, webhooks

PREFIX = "/events/api/v1"
DEFAULT_SIZE = 50
MAX_SIZE = 1000
VALIDATION_TYPE = "platform.events.validatesubscription"
CLOUDEVENTS_JSON = "application/cloudevents+json; charset=utf-8"


def _trace_id():
    return "00-%s-%s-00" % (uuid.uuid4().hex, uuid.uuid4().hex[:16])


def _problem(detail):
    return web.HttpError(web.problem(400, "Bad Request", detail,
                                     extra={"traceId": _trace_id()}))


def _binding(name, value):
    return web.HttpError(web.validation_problem(name, "The value '%s' is not valid." % value))


def alternative_subject(inst):
    if inst.owner.get("organisationNumber"):
        return "/org/%s" % inst.owner["organisationNumber"]
    if inst.owner.get("personNumber"):
        return "/person/%s" % inst.owner["personNumber"]
    return None


class EventService:
    """`platform.events`: the event store, subscriptions and webhook delivery together."""

    def __init__(self, platform):
        self.platform = platform
        self.options = platform.options
        self.store = eventstore.EventStore()
        self.store.on_publish = self._dispatch
        self.registry = subscriptions.Registry()
        self.hub = webhooks.Hub(lambda: self.options.webhook_retry_scale,
                                self.registry.set_validated)
        platform.store.subscribe(self._on_store_change)

    # -- publishing -----------------------------------------------------------------------

    def publish_app_event(self, org, app, event_type, party_id, instance_guid=None,
                          alternativesubject=None, count=1):
        """Publish `count` events of `event_type` for an instance (a new random instance guid
        per event when `instance_guid` is None); returns the Events. `alternativesubject`
        defaults to the instance's owner, else the party's number in the party register.
        Safe to call with the store lock held."""
        party_id = str(party_id)
        if alternativesubject is None:
            alternativesubject = self._owner_subject(party_id, instance_guid)
        guids = ([str(instance_guid)] * count if instance_guid is not None
                 else [str(uuid.uuid4()) for _ in range(count)])
        return self.store.publish([
            dict(org=org, app=app, event_type=event_type, party_id=party_id, instance_guid=g,
                 alternativesubject=alternativesubject) for g in guids])

    def _owner_subject(self, party_id, instance_guid):
        inst = (self.platform.store.instance(party_id, instance_guid)
                if instance_guid else None)
        if inst is not None:
            return alternative_subject(inst)
        party = self.platform.parties.by_id(party_id) if party_id.isdigit() else None
        if party is None:
            return None
        return "/org/%s" % party.org_number if party.org_number else "/person/%s" % party.ssn

    def _on_store_change(self, kind, inst, detail):
        """Store listener: the App API (and the admin API) call `store.app_event(type, inst)`
        where the real app registers an event with Events."""
        if kind != "app.event":
            return
        org, app = inst.app_id.split("/", 1)
        self.store.publish([dict(org=org, app=app, event_type=detail,
                                 party_id=inst.party_id, instance_guid=inst.guid,
                                 alternativesubject=alternative_subject(inst))])

    # -- subscriptions and delivery ------------------------------------------------------

    def _dispatch(self, published):
        """EventStore.on_publish: queue the events for every validated subscription."""
        for sub in self.registry.active():
            deliveries = [webhooks.Delivery(e.id, e.type,
                                            e.render(sub.base_escaped).encode("utf-8"))
                          for e in published if sub.matches(e)]
            if deliveries:
                self.hub.deliver(sub.id, deliveries)

    def start_validation(self, sub):
        body = web.json_response({
            "id": str(uuid.uuid4()),
            "source": "%s%s/subscriptions/%d" % (sub.base, PREFIX, sub.id),
            "type": VALIDATION_TYPE,
            "specversion": eventstore.SPECVERSION,
        }).body
        delivery = webhooks.Delivery(None, VALIDATION_TYPE, body, validation=True)
        self.hub.start(sub.id, sub.endpoint, delivery)

    def remove_subscription(self, sub_id):
        self.registry.delete(sub_id)
        self.hub.stop(sub_id)

    def party_for_alternative_subject(self, value):
        """`/org/N`, `/organisation/N` or `/person/N` to a party id (None if unknown)."""
        for prefix, key in (("/org/", "organisationNumber"),
                            ("/organisation/", "organisationNumber"),
                            ("/person/", "personNumber")):
            if value.startswith(prefix):
                return self.party_for(key, value[len(prefix):])
        return None

    def party_for(self, key, number):
        """The party id of an organisationNumber/personNumber in the party register
        (`parties.py`, which knows every owner and takes valid-looking numbers to exist)."""
        register = self.platform.parties
        party = (register.by_org_number(number) if key == "organisationNumber"
                 else register.by_person_number(number))
        return str(party.party_id) if party is not None else None


# -- polling --------------------------------------------------------------------------------

def _int_arg(req, name, default):
    value = req.arg(name)
    if value is None:
        return default
    try:
        return int(value.strip())
    except ValueError:
        raise _binding(name, value)


def _time_arg(req, name):
    """(ticks, has_zone) or (None, False)."""
    value = req.arg(name)
    if value is None or value == "":
        return None, False
    text = value.strip()
    try:
        ticks = dates.parse_iso(text)
    except ValueError:
        raise _binding(name, value)
    has_zone = text.endswith(("Z", "z")) or (len(text) > 10 and (
        "+" in text[10:] or "-" in text[10:]))
    return ticks, has_zone


def _header_safe(text):
    return "".join(c if 0x20 <= ord(c) < 0x7F else
                   "".join("%%%02X" % b for b in c.encode("utf-8")) for c in text)


def _next_header(req, page, extra=""):
    url = "%s%s?after=%s" % (req.base_url, req.path, page[-1].id)
    url += "".join("&%s=%s" % (k, v) for k, v in req.query if k != "after") + extra
    return ("next", _header_safe(url))


def _page_response(req, page, content_type, extra=""):
    body = eventstore.render_page(page, req.base_url)
    headers = [("Content-Type", content_type)]
    if page:
        headers.append(_next_header(req, page, extra))
    return web.Response(200, headers, body)


def _lookup_party(service, unit, person):
    if unit:
        party = service.party_for("organisationNumber", unit)
    else:
        party = service.party_for("personNumber", person)
    if party is None:
        raise web.HttpError(web.empty(404))      # Register has no such party
    return party


def register(router, platform):
    service = platform.events
    options = platform.options

    def app_events(req):
        after = req.arg("after")
        from_ticks, from_zone = _time_arg(req, "from")
        to_ticks, to_zone = _time_arg(req, "to")
        party = _int_arg(req, "party", 0)
        size = _int_arg(req, "size", DEFAULT_SIZE)
        unit = req.arg("unit")
        person = req.headers.get("person")
        if not req.principal.is_org:
            return web.text(401, "Only orgs can call this api")
        if not after and from_ticks is None:
            raise _problem("The 'From' or 'After' parameter must be defined.")
        if from_ticks is not None and not from_zone:
            raise _problem("The 'From' parameter must specify timezone. "
                           "E.g. 2022-07-07T11:00:53.3917Z for UTC")
        if to_ticks is not None and not to_zone:
            raise _problem("The 'To' parameter must specify timezone. "
                           "E.g. 2022-07-07T11:00:53.3917Z for UTC")
        if size < 1:
            raise _problem("The 'Size' parameter must be a number larger that 0.")
        if person and party > 0:
            raise _problem("Only one of 'Party' or 'Person' can be defined.")
        if unit and party > 0:
            raise _problem("Only one of 'Party' or 'Unit' can be defined.")
        if unit and (len(unit) != 9 or not unit.isdigit()):
            raise _problem("Value of 'Unit' needs to be exactly 9 digits.")
        if (unit or person) and party <= 0:
            party = _lookup_party(service, unit, person)
        org, app = req.params["org"], req.params["app"]
        if not req.principal.same_org(org):
            return _page_response(req, [], web.JSON)   # filtered out by authorization
        types = [eventstore.like_matcher(t, True) for t in req.args("type")] or None
        query = eventstore.Query(eventstore.app_resource(org, app), after=after,
                                 from_ticks=from_ticks, to_ticks=to_ticks,
                                 subject="/party/%s" % party if party else None,
                                 types=types, size=min(size, MAX_SIZE))
        page = service.store.find(query, options.min_event_age)
        return _page_response(req, page, web.JSON)

    def generic_events(req):
        size = _int_arg(req, "size", 0)
        resource = req.arg("resource")
        if resource is None:
            raise web.HttpError(web.validation_problem(
                "resource", "The resource field is required."))
        if not req.principal.has_scope(subscriptions.SCOPE_SUBSCRIBE):
            return auth.forbidden()
        size = DEFAULT_SIZE if size < 1 else min(size, MAX_SIZE)
        after = req.arg("after")
        subject = req.arg("subject")            # "" is a filter that matches nothing
        alt = req.headers.get("Altinn-AlternativeSubject") or None
        if not resource.startswith("urn:altinn:resource:"):
            raise _problem("The 'resource' parameter must begin with `urn:altinn:resource:`")
        if not after:
            raise _problem("The 'after' parameter must be defined.")
        if subject and alt:
            raise _problem("Only one of 'subject' or 'alternativeSubject' can be defined.")
        principal = req.principal

        def visible(event):
            own_rule = getattr(event, "visible_to", None)     # Broker's events
            if own_rule is not None:
                return own_rule(principal)
            if principal.is_org:
                return principal.same_org(event.org)
            return principal.party_id is not None and str(principal.party_id) == event.party_id

        types = [eventstore.like_matcher(t, False) for t in req.args("type")] or None
        query = eventstore.Query(resource, after=after, subject=subject,
                                 alternativesubject=alt, types=types, size=size)
        page = service.store.find(query, options.min_event_age, visible)
        extra = "&subject=%s" % page[0].subject if page and alt and not subject else ""
        return _page_response(req, page, CLOUDEVENTS_JSON, extra)

    router.add("GET", PREFIX + "/app/{org}/{app}", app_events)
    router.add("GET", PREFIX + "/events", generic_events)
    subscriptions.register(router, platform)


# -- admin ----------------------------------------------------------------------------------

MAX_BURST = 1_000_000
_SETTINGS = {"minEventAge": ("min_event_age", (int, float)),
             "webhookRetryScale": ("webhook_retry_scale", (int, float)),
             "allowHttpWebhooks": ("allow_http_webhooks", bool)}


def _admin_bad(message):
    return web.HttpError(web.text(400, message))


def _event_specs(doc):
    """Publish specs from the admin body (see README.md)."""
    if not isinstance(doc, dict):
        raise _admin_bad("body must be a JSON object")
    for key in ("org", "app", "type"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise _admin_bad("%s must be a non-empty string" % key)
    party = str(doc.get("partyId") or "")
    if not party.isdigit():
        raise _admin_bad("partyId must be a number")
    count = doc.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BURST:
        raise _admin_bad("count must be an integer from 1 to %d" % MAX_BURST)
    guid = doc.get("instanceGuid")
    if guid is not None:
        try:
            guid = str(uuid.UUID(str(guid)))
        except ValueError:
            raise _admin_bad("instanceGuid is not a GUID: %r" % (guid,))
    alt = doc.get("alternativeSubject")
    if alt is not None and not isinstance(alt, str):
        raise _admin_bad("alternativeSubject must be a string")
    return doc["org"], doc["app"], doc["type"], party, guid, alt, count


def register_admin(router, platform):
    service = platform.events
    options = platform.options
    prefix = "/_localtest"

    def publish(req):
        org, app, event_type, party, guid, alt, count = _event_specs(req.json())
        published = service.publish_app_event(org, app, event_type, party, guid, alt, count)
        return web.json_response({"count": len(published), "ids": [e.id for e in published]},
                                 status=201)

    def summary(req):
        return web.json_response({"count": service.store.count(),
                                  "lastSequence": service.store.last_seq})

    def clear(req):
        service.store.clear()
        return web.empty(204)

    def get_settings(req):
        return web.json_response({k: getattr(options, attr)
                                  for k, (attr, _) in _SETTINGS.items()})

    def put_settings(req):
        doc = req.json()
        if not isinstance(doc, dict) or set(doc) - set(_SETTINGS):
            raise _admin_bad("body must be an object with some of: " + ", ".join(_SETTINGS))
        for key, value in doc.items():
            attr, kind = _SETTINGS[key]
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)) \
                    or (kind is not bool and value < 0):
                raise _admin_bad("%s has a bad value: %r" % (key, value))
        for key, value in doc.items():
            setattr(options, _SETTINGS[key][0], value)
        return get_settings(req)

    def webhook_log(req):
        try:
            since = int(req.arg("since") or 0)
            sub_id = int(req.arg("subscription")) if req.arg("subscription") else None
        except ValueError:
            raise _admin_bad("since and subscription must be numbers")
        return web.json_response(service.hub.attempts(since, sub_id))

    def clear_webhook_log(req):
        service.hub.clear_log()
        return web.empty(204)

    def all_subscriptions(req):
        pending = service.hub.pending()
        out = []
        for sub in service.registry.all():
            doc = sub.to_json()
            doc["pending"] = pending.get(sub.id, 0)
            out.append(doc)
        return web.json_response(out)

    def delete_subscriptions(req):
        for sub in service.registry.all():
            service.remove_subscription(sub.id)
        return web.empty(204)

    router.add("POST", prefix + "/events", publish, auth=False)
    router.add("GET", prefix + "/events", summary, auth=False)
    router.add("DELETE", prefix + "/events", clear, auth=False)
    router.add("GET", prefix + "/events/settings", get_settings, auth=False)
    router.add("PUT", prefix + "/events/settings", put_settings, auth=False)
    router.add("GET", prefix + "/webhooks", webhook_log, auth=False)
    router.add("DELETE", prefix + "/webhooks", clear_webhook_log, auth=False)
    router.add("GET", prefix + "/subscriptions", all_subscriptions, auth=False)
    router.add("DELETE", prefix + "/subscriptions", delete_subscriptions, auth=False)
