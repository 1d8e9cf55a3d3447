"""The Events store: CloudEvents in publish order, and the queries the polling endpoints run.

Each event gets a GUID id, a UTC `time` and an internal sequence number when it is published;
sequence numbers grow for the life of the process (also across `clear`). As in altinn-events'
`getappevents`/`getevents` SQL, a query resolves `after` to the sequence number of that id (an
unknown id resolves to 0, which replays from the oldest retained event), returns events with a
larger sequence number in sequence order, and hides events registered less than `min_age`
seconds ago. Events older than 90 days are dropped.

Events are kept per `resource` (every query names one), in parallel lists of sequence numbers,
times and events, so a page is two bisects and a short scan. `source` holds the apps base URL of
whoever reads the event, so each event keeps its JSON pre-rendered around that gap and a page of
1,000 costs a string join. Publishing calls `on_publish(events)` with the lock held, so
listeners (webhook delivery) see events in sequence order; they must not call back in here.
"""

import bisect
import json
import re
import threading
import uuid

from . import dates

SPECVERSION = "1.0"
RETENTION_SECONDS = 90 * 86400
APP_RESOURCE_PREFIX = "urn:altinn:resource:app_"


def app_resource(org, app):
    return "%s%s_%s" % (APP_RESOURCE_PREFIX, org, app)


def _js(value):
    return json.dumps(value, ensure_ascii=False)


def json_escape(text):
    """`text` as it appears inside a JSON string (no quotes)."""
    return _js(text)[1:-1]


def like_matcher(pattern, ignore_case):
    """SQL LIKE (or ILIKE) as a predicate: `%` any run, `_` any one character, `\\` escapes
    the next one; the whole value must match."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    regex = re.compile("".join(out) + r"\Z", re.S | (re.I if ignore_case else 0))
    return lambda value: regex.match(value) is not None


class Event:
    """One app event. `render(base)` is its JSON with `source` under that apps base."""

    __slots__ = ("seq", "id", "time", "type", "subject", "alternativesubject", "resource",
                 "resourceinstance", "org", "app", "party_id", "source_path", "_head", "_tail")

    def __init__(self, seq, time, org, app, event_type, party_id, instance_guid,
                 alternativesubject=None, event_id=None):
        self.seq = seq
        self.id = event_id or str(uuid.uuid4())
        self.time = time
        self.type = event_type
        self.org = org
        self.app = app
        self.party_id = str(party_id)
        self.subject = "/party/%s" % party_id
        self.alternativesubject = alternativesubject
        self.resource = app_resource(org, app)
        self.resourceinstance = "%s/%s" % (party_id, instance_guid)
        self.source_path = "/%s/%s/instances/%s/%s" % (org, app, party_id, instance_guid)
        self._head = '{"specversion":"%s","id":%s,"time":%s,"source":"' % (
            SPECVERSION, _js(self.id), _js(dates.format_ticks(time)))
        tail = ['%s,"subject":%s,"type":%s' % (_js(self.source_path)[1:], _js(self.subject),
                                               _js(event_type))]
        if alternativesubject is not None:
            tail.append(',"alternativesubject":%s' % _js(alternativesubject))
        tail.append(',"resource":%s,"resourceinstance":%s}' % (
            _js(self.resource), _js(self.resourceinstance)))
        self._tail = "".join(tail)

    def render(self, base_escaped):
        """JSON text; `base_escaped` is the apps base URL through `json_escape`."""
        return self._head + base_escaped + self._tail

    def to_json(self, base):
        return json.loads(self.render(json_escape(base)))


def render_page(events, base):
    base_escaped = json_escape(base)
    return ("[" + ",".join(e.render(base_escaped) for e in events) + "]").encode("utf-8")


class _Log:
    """The events of one resource, oldest first."""

    __slots__ = ("seqs", "times", "events")

    def __init__(self):
        self.seqs = []
        self.times = []
        self.events = []

    def drop_before(self, ticks, by_id):
        n = bisect.bisect_left(self.times, ticks)
        if n:
            for e in self.events[:n]:
                by_id.pop(e.id, None)
            del self.seqs[:n], self.times[:n], self.events[:n]


class Query:
    """What a poll asks for. `types` are predicates (from `like_matcher`); None means all."""

    def __init__(self, resource, after=None, from_ticks=None, to_ticks=None, subject=None,
                 alternativesubject=None, types=None, size=50):
        self.resource = resource
        self.after = after
        self.from_ticks = from_ticks
        self.to_ticks = to_ticks
        self.subject = subject
        self.alternativesubject = alternativesubject
        self.types = types
        self.size = size


class EventStore:
    def __init__(self, clock=dates.now_ticks, retention_seconds=RETENTION_SECONDS):
        self.lock = threading.Lock()
        self.clock = clock
        self.retention_ticks = retention_seconds * dates.TICKS_PER_SECOND
        self.on_publish = None        # callback(list of Event), called with the lock held
        self._next_seq = 1
        self._by_id = {}              # event id -> Event
        self._logs = {}               # resource -> _Log

    def publish(self, specs):
        """Store events; `specs` are dicts of Event's keyword arguments (org, app, event_type,
        party_id, instance_guid, alternativesubject), or of another class's given as
        `event_class` (broker.BrokerEvent). Returns the Events."""
        out = []
        with self.lock:
            for spec in specs:
                now = self.clock()
                cls = spec.pop("event_class", Event)    # Broker's events (broker.py)
                event = cls(self._next_seq, now, **spec)
                self._next_seq += 1
                log = self._logs.get(event.resource)
                if log is None:
                    log = self._logs[event.resource] = _Log()
                elif log.times and log.times[0] < now - self.retention_ticks:
                    self._prune(log, now)
                log.seqs.append(event.seq)
                log.times.append(now)
                log.events.append(event)
                self._by_id[event.id] = event
                out.append(event)
            if self.on_publish is not None and out:
                self.on_publish(out)
        return out

    def _prune(self, log, now):
        log.drop_before(now - self.retention_ticks, self._by_id)

    def find(self, query, min_age_seconds=0, visible=None):
        """The page of events for `query`, oldest first (at most query.size)."""
        with self.lock:
            log = self._logs.get(query.resource)
            if log is None:
                return []
            now = self.clock()
            if log.times and log.times[0] < now - self.retention_ticks:
                self._prune(log, now)
            start = 0
            if query.after:
                known = self._by_id.get(query.after)
                start = bisect.bisect_right(log.seqs, known.seq if known else 0)
            if query.from_ticks is not None:
                start = max(start, bisect.bisect_left(log.times, query.from_ticks))
            end = bisect.bisect_right(log.times, now - int(min_age_seconds *
                                                           dates.TICKS_PER_SECOND))
            if query.to_ticks is not None:
                end = min(end, bisect.bisect_right(log.times, query.to_ticks))
            page = []
            events = log.events
            for i in range(start, end):
                e = events[i]
                if query.subject is not None and e.subject != query.subject:
                    continue
                if (query.alternativesubject is not None
                        and e.alternativesubject != query.alternativesubject):
                    continue
                if query.types is not None and not any(m(e.type) for m in query.types):
                    continue
                if visible is not None and not visible(e):
                    continue
                page.append(e)
                if len(page) >= query.size:
                    break
            return page

    def get(self, event_id):
        with self.lock:
            return self._by_id.get(event_id)

    def clear(self):
        """Drop every event; sequence numbers keep growing."""
        with self.lock:
            self._by_id = {}
            self._logs = {}

    def count(self):
        with self.lock:
            return sum(len(log.events) for log in self._logs.values())

    @property
    def last_seq(self):
        with self.lock:
            return self._next_seq - 1
