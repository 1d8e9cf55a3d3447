"""Events subscriptions (`/events/api/v1/subscriptions`), as altinn-events' SubscriptionController
and App/GenericSubscriptionService check them (altinn-api.md §4.4).

- `endPoint` must be an absolute https URL (400 `Missing or invalid endpoint to push events
  towards`). Local exception: with `allow_http_webhooks` (`--allow-http-webhooks`) an
  `http://` endpoint on a loopback host (127.0.0.0/8, ::1, localhost) is accepted too.
- `sourceFilter` must be an absolute https URL of an app, `{apps base}/{org}/{app}`; the
  platform's own apps base (`http://` + the Host header) counts as https. It gives the
  `resourceFilter` `urn:altinn:resource:app_{org}_{app}`; both given must agree.
- App subscriptions (resourceFilter `urn:altinn:resource:app_…` or a sourceFilter) need no
  scope; an org may subscribe to its own apps, a user only with `subjectFilter` = its own
  `/party/{partyId}`. Others need `altinn:events.subscribe` (else 403 empty).
- `typeFilter` and `subjectFilter` match exactly; `""` is stored and matches nothing.
  `alternativeSubjectFilter` is turned into `subjectFilter=/party/N` and not stored.
- 201 with `Location: /events/api/v1/subscription/{id}` (singular, as the platform writes it),
  the Subscription with null fields left out. Creating an identical subscription (same
  filters, consumer and endpoint) returns the existing one and sends validation again.
- Errors are plain strings except model binding (ProblemDetails). GET/DELETE of another
  consumer's subscription give 403, of an unknown id 404, both with empty bodies.

A new subscription is not `validated` until its endpoint answered the validation event with a
2xx; only validated subscriptions get events, and only events published after that.
"""

import ipaddress
import re
import threading
import urllib.parse

from . import auth, dates, eventstore, web

PREFIX = "/events/api/v1/subscriptions"
SCOPE_SUBSCRIBE = "altinn:events.subscribe"
_URN = re.compile(r"^urn:[a-z0-9-]{1,30}(:[a-z0-9()+,.\-;$_!/]{1,100}){1,10}$")
_FIELDS = ("endPoint", "sourceFilter", "resourceFilter", "subjectFilter",
           "alternativeSubjectFilter", "typeFilter", "includeSubunits")


def valid_urn(value):
    return isinstance(value, str) and _URN.match(value) is not None


def is_loopback(host):
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Subscription:
    def __init__(self, sub_id, endpoint, source_filter, resource_filter, subject_filter,
                 type_filter, consumer, include_subunits, base):
        self.id = sub_id
        self.endpoint = endpoint
        self.source_filter = source_filter
        self.resource_filter = resource_filter
        self.subject_filter = subject_filter
        self.type_filter = type_filter
        self.consumer = consumer
        self.created_by = consumer
        self.include_subunits = include_subunits
        self.created = dates.now_ticks()
        self.validated = False
        self.base = base                  # apps/platform base for what is pushed to it
        self.base_escaped = eventstore.json_escape(base)
        self._source_dir = None
        if source_filter:
            path = urllib.parse.urlsplit(source_filter).path
            self._source_dir = path[:path.rfind("/") + 1]

    def key(self):
        return (self.resource_filter, self.source_filter, self.subject_filter, self.type_filter,
                self.consumer, self.endpoint, self.include_subunits)

    def matches(self, event):
        return (event.resource == self.resource_filter
                and (self.subject_filter is None or self.subject_filter == event.subject)
                and (self.type_filter is None or self.type_filter == event.type)
                and (self._source_dir is None or event.source_path.startswith(self._source_dir)))

    def to_json(self):
        doc = {"id": self.id, "endPoint": self.endpoint}
        for key, value in (("sourceFilter", self.source_filter),
                           ("resourceFilter", self.resource_filter),
                           ("subjectFilter", self.subject_filter),
                           ("typeFilter", self.type_filter)):
            if value is not None:
                doc[key] = value
        doc.update({
            "consumer": self.consumer,
            "createdBy": self.created_by,
            # PostgreSQL keeps microseconds.
            "created": dates.format_ticks(self.created)[:-2] + "Z",
            "validated": self.validated,
            "includeSubunits": self.include_subunits,
        })
        return doc


class Registry:
    def __init__(self):
        self._lock = threading.Lock()
        self._subs = {}
        self._next_id = 1
        self._active = ()             # validated subscriptions, replaced on every change

    def _refresh(self):
        self._active = tuple(s for s in self._subs.values() if s.validated)

    def create(self, fields):
        """(subscription, created): an identical existing one, or a new one."""
        with self._lock:
            probe = Subscription(0, **fields)
            for sub in self._subs.values():
                if sub.key() == probe.key():
                    return sub, False
            probe.id = self._next_id
            self._next_id += 1
            self._subs[probe.id] = probe
            return probe, True

    def get(self, sub_id):
        with self._lock:
            return self._subs.get(sub_id)

    def delete(self, sub_id):
        with self._lock:
            sub = self._subs.pop(sub_id, None)
            self._refresh()
            return sub

    def by_consumer(self, consumer):
        with self._lock:
            return [s for s in self._subs.values() if s.consumer == consumer]

    def all(self):
        with self._lock:
            return list(self._subs.values())

    def set_validated(self, sub_id):
        with self._lock:
            sub = self._subs.get(sub_id)
            if sub is not None and not sub.validated:
                sub.validated = True
                self._refresh()

    def active(self):
        """Validated subscriptions (a snapshot; safe to read without the lock)."""
        return self._active


def consumer_of(principal):
    if principal.is_org:
        return "/org/%s" % principal.org
    if principal.user_id is not None:
        return "/user/%s" % principal.user_id
    if principal.org_number:
        return "/organisation/%s" % principal.org_number
    return None


def _binding_error(field, message):
    return web.HttpError(web.validation_problem(field, message))


def _read_request(req):
    """The SubscriptionRequestModel as a dict, or HttpError as model binding gives it."""
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise web.HttpError(web.problem(415, "Unsupported Media Type"))
    try:
        doc = req.json()
    except web.HttpError:
        doc = None
    if not isinstance(doc, dict):
        raise _binding_error("subscriptionRequest",
                             "The subscriptionRequest field is required.")
    lowered = {k.lower(): v for k, v in doc.items()}       # System.Text.Json web defaults
    out = {}
    for name in _FIELDS:
        value = lowered.get(name.lower())
        if name == "includeSubunits":
            if value is None:
                value = False
            if not isinstance(value, bool):
                raise _binding_error("$." + name, "The JSON value could not be converted to "
                                     "System.Boolean. Path: $.%s" % name)
        elif value is not None and not isinstance(value, str):
            raise _binding_error("$." + name, "The JSON value could not be converted to "
                                 "System.%s. Path: $.%s" % (
                                     "Uri" if name in ("endPoint", "sourceFilter") else "String",
                                     name))
        out[name] = value
    return out


def _absolute(url):
    parts = urllib.parse.urlsplit(url or "")
    return parts if parts.scheme and parts.netloc else None


def _base_of(parts):
    return ("%s://%s" % (parts.scheme, parts.netloc)).lower()


def absolute_uri(url):
    """.NET's Uri.AbsoluteUri, which the platform stores as the endpoint
    (altinn-events SubscriptionRepository.cs:51,75): scheme and host in lower case, the
    scheme's default port left out, an empty path as "/"."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = "[%s]" % host
    port = parts.port
    if port is not None and not ((parts.scheme.lower() == "https" and port == 443) or
                                 (parts.scheme.lower() == "http" and port == 80)):
        host += ":%d" % port
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + host
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, parts.path or "/",
                                    parts.query, parts.fragment))


def register(router, platform):
    events = platform.events
    registry = events.registry
    options = platform.options

    def endpoint_ok(url):
        parts = _absolute(url)
        if parts is None:
            return False
        if parts.scheme.lower() == "https":
            return True
        return (parts.scheme.lower() == "http" and options.allow_http_webhooks
                and is_loopback(parts.hostname))

    def source_ok(req, url):
        parts = _absolute(url)
        return parts is not None and (parts.scheme.lower() == "https"
                                      or _base_of(parts) == req.base_url.lower())

    def is_app_source(req, url):
        parts = _absolute(url)
        return parts is not None and (_base_of(parts) == req.base_url.lower()
                                      or ".apps." in (parts.hostname or ""))

    def resource_from_source(url):
        segments = urllib.parse.urlsplit(url).path.split("/")
        return eventstore.app_resource(segments[1], segments[2])

    def check_app(req, m):
        """App subscription rules; returns an error message or None."""
        principal = req.principal
        if not m["subjectFilter"] and m["alternativeSubjectFilter"]:
            party = events.party_for_alternative_subject(m["alternativeSubjectFilter"])
            m["subjectFilter"] = "/party/%s" % party if party else None
        if not m["subjectFilter"] and not principal.is_org:
            return "A valid subject to the authenticated identity is required"
        if m["alternativeSubjectFilter"] and not m["subjectFilter"]:
            return "A valid subject to the authenticated identity is required"
        if m["includeSubunits"] and not m["subjectFilter"]:
            return "IncludeSubunits requires a subject filter."
        if m["sourceFilter"] is not None:
            if len(urllib.parse.urlsplit(m["sourceFilter"]).path.split("/")) != 3:
                return "A valid app id is required in source filter {environment}/{org}/{app}"
            if m["resourceFilter"] and \
                    resource_from_source(m["sourceFilter"]) != m["resourceFilter"]:
                return "Provided resource filter and source filter are not compatible"
        if m["resourceFilter"] is None:
            m["resourceFilter"] = resource_from_source(m["sourceFilter"])
        return None

    def check_generic(m):
        if not m["resourceFilter"]:
            return "Resource filter is required."
        if m["sourceFilter"] is not None:
            return "Source filter is not supported for subscriptions on this resource."
        if m["alternativeSubjectFilter"]:
            return "AlternativeSubject filter is not supported for subscriptions on this resource."
        if m["includeSubunits"] and not m["subjectFilter"]:
            return "IncludeSubunits requires a subject filter."
        return None

    def authorized(principal, m, is_app):
        if not is_app:
            # no resource registry here: any resource may be subscribed to, but Broker's
            # (broker.py) only by its service owner or with the caller's own subject
            return platform.broker.may_subscribe(principal, m["resourceFilter"],
                                                 m["subjectFilter"])
        if principal.is_org:
            own = eventstore.APP_RESOURCE_PREFIX + principal.org + "_"
            return m["resourceFilter"].lower().startswith(own.lower())
        return (principal.party_id is not None
                and m["subjectFilter"] == "/party/%s" % principal.party_id)

    def create(req):
        m = _read_request(req)
        principal = req.principal
        if not endpoint_ok(m["endPoint"]):
            return web.text(400, "Missing or invalid endpoint to push events towards")
        if m["sourceFilter"] is not None and not source_ok(req, m["sourceFilter"]):
            return web.text(400, "SourceFilter must be an absolute URL with the https scheme.")
        is_app = ((m["resourceFilter"] or "").lower().startswith(
            eventstore.APP_RESOURCE_PREFIX) or
            (bool(m["sourceFilter"]) and is_app_source(req, m["sourceFilter"])))
        if not is_app and not principal.has_scope(SCOPE_SUBSCRIBE):
            return auth.forbidden()
        if m["resourceFilter"] is not None and not valid_urn(m["resourceFilter"]):
            return web.text(400, "Resource filter must be a valid urn")
        consumer = consumer_of(principal)
        error = check_app(req, m) if is_app else check_generic(m)
        if error is None and consumer is None:
            error = "Missing event consumer"
        if error is not None:
            return web.text(400, error)
        if not authorized(principal, m, is_app):
            return web.text(403, "Not authorized to create a subscription for resource %s." %
                            m["resourceFilter"])
        sub, _ = registry.create(dict(
            endpoint=absolute_uri(m["endPoint"]), source_filter=m["sourceFilter"],
            resource_filter=m["resourceFilter"], subject_filter=m["subjectFilter"],
            type_filter=m["typeFilter"], consumer=consumer,
            include_subunits=m["includeSubunits"], base=req.base_url))
        events.start_validation(sub)
        return web.json_response(sub.to_json(), status=201, headers=[
            ("Location", "/events/api/v1/subscription/%d" % sub.id)])

    def own(req):
        raw = req.params["id"]
        try:
            sub_id = int(raw)
        except ValueError:
            raise _binding_error("id", "The value '%s' is not valid." % raw)
        sub = registry.get(sub_id)
        if sub is None:
            raise web.HttpError(web.empty(404))
        if sub.created_by != consumer_of(req.principal):
            raise web.HttpError(auth.forbidden())
        return sub

    def get_one(req):
        return web.json_response(own(req).to_json())

    def get_all(req):
        subs = registry.by_consumer(consumer_of(req.principal))
        return web.json_response({"count": len(subs),
                                  "subscriptions": [s.to_json() for s in subs]})

    def delete(req):
        sub = own(req)
        events.remove_subscription(sub.id)
        return web.empty(200)

    router.add("POST", PREFIX, create)
    router.add("GET", PREFIX, get_all)
    router.add("GET", PREFIX + "/{id}", get_one)
    router.add("DELETE", PREFIX + "/{id}", delete)
