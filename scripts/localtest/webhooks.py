"""Webhook delivery: one worker thread per subscription POSTs its events to the endpoint.

As altinn-events does (altinn-api.md §4.5): one CloudEvent per request, `Content-Type:
application/json; charset=utf-8`, no auth header; any 2xx within the timeout is success.
Anything else (another status, a refused or dropped connection, a timeout) is retried after
10 s, 30 s, 1 m, 5 m, 10 m, 30 m, 1 h, 3 h, 6 h, 12 h and 12 h, each multiplied by the
platform's `webhook_retry_scale`, and then dead-lettered (logged, never sent again). A retry
waits in a schedule while later events go out, so delivery is at-least-once and can be out of
order, as on the real platform. The first delivery of a subscription is its validation event;
the hub's `on_validated` hears about its 2xx.

Each worker keeps one keep-alive connection to its endpoint, with Nagle off, so a burst is a
stream of small POSTs with no 40 ms stalls and a single event arrives a few ms after it was
published. A reused connection that the receiver closed while idle is reopened once at no cost
to the attempt count. Every attempt goes to a bounded log (`GET /_localtest/webhooks`).
"""

import collections
import heapq
import http.client
import socket
import ssl
import threading
import time
import urllib.parse

from . import dates

SCHEDULE = (10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 12 * 3600)
# Validation events have their own, short policy (altinn-events appsettings.json
# ValidationQueuePolicy: cooldown 1, 5, 10 s, then 30 s, 1, 2, 2, 2 min; then the error
# queue): nine attempts over about eight minutes, then the subscription stays unvalidated
# until it is posted again.
VALIDATION_SCHEDULE = (1, 5, 10, 30, 60, 120, 120, 120)
TIMEOUT = 10.0
CONTENT_TYPE = "application/json; charset=utf-8"
MAX_LOG = 200_000
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
          ConnectionAbortedError)


class Delivery:
    __slots__ = ("event_id", "event_type", "body", "attempt", "validation")

    def __init__(self, event_id, event_type, body, validation=False):
        self.event_id = event_id
        self.event_type = event_type
        self.body = body
        self.attempt = 0
        self.validation = validation


class _NoDelayHTTP(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _NoDelayHTTPS(http.client.HTTPSConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Worker:
    """Delivers one subscription's events in order, rescheduling failures."""

    def __init__(self, hub, sub_id, endpoint):
        self.hub = hub
        self.sub_id = sub_id
        self.endpoint = endpoint
        parts = urllib.parse.urlsplit(endpoint)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        self.cond = threading.Condition()
        self.ready = collections.deque()
        self.later = []                 # heap of (due monotonic time, n, Delivery)
        self._n = 0
        self.stopped = False
        self.conn = None
        self.thread = threading.Thread(target=self._run, name="webhook-%d" % sub_id,
                                       daemon=True)
        self.thread.start()

    def enqueue(self, deliveries):
        with self.cond:
            self.ready.extend(deliveries)
            self.cond.notify()

    def stop(self):
        with self.cond:
            self.stopped = True
            self.ready.clear()
            self.later = []
            self.cond.notify()

    def pending(self):
        with self.cond:
            return len(self.ready) + len(self.later)

    def _next(self):
        with self.cond:
            while not self.stopped:
                now = time.monotonic()
                while self.later and self.later[0][0] <= now:
                    self.ready.append(heapq.heappop(self.later)[2])
                if self.ready:
                    return self.ready.popleft()
                self.cond.wait(self.later[0][0] - now if self.later else None)
            return None

    def _run(self):
        try:
            while True:
                delivery = self._next()
                if delivery is None:
                    return
                self._attempt(delivery)
        finally:
            self._close()

    def _attempt(self, delivery):
        delivery.attempt += 1
        started = time.monotonic()
        status, error = self._post(delivery.body)
        ms = (time.monotonic() - started) * 1000
        ok = 200 <= status < 300
        retry_in = None
        schedule = VALIDATION_SCHEDULE if delivery.validation else SCHEDULE
        if ok:
            outcome = "delivered"
        elif delivery.attempt > len(schedule):
            outcome = "dead-letter"
        else:
            outcome = "retry"
            retry_in = schedule[delivery.attempt - 1] * self.hub.retry_scale()
        self.hub.record(self, delivery, status, error, outcome, ms, retry_in)
        if ok and delivery.validation:
            self.hub.validated(self.sub_id)
        if retry_in is not None:
            with self.cond:
                if not self.stopped:
                    self._n += 1
                    heapq.heappush(self.later, (time.monotonic() + retry_in, self._n, delivery))

    def _connect(self):
        if self.https:
            return _NoDelayHTTPS(self.host, self.port, timeout=TIMEOUT,
                                 context=ssl.create_default_context())
        return _NoDelayHTTP(self.host, self.port, timeout=TIMEOUT)

    def _close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _post(self, body):
        """(status, error): status 0 when there was no HTTP answer."""
        for fresh in (False, True):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request("POST", self.target, body=body,
                                  headers={"Content-Type": CONTENT_TYPE})
                response = self.conn.getresponse()
                response.read()
                if response.will_close:
                    self._close()
                return response.status, None
            except _STALE as e:
                self._close()
                if reused and not fresh:
                    continue            # the receiver closed an idle keep-alive connection
                return 0, "%s: %s" % (type(e).__name__, e)
            except (OSError, http.client.HTTPException) as e:
                self._close()
                if isinstance(e, socket.timeout):
                    return 0, "timeout after %g s" % TIMEOUT
                return 0, "%s: %s" % (type(e).__name__, e)
        return 0, "connection lost"


class Hub:
    """The workers and the attempt log. `retry_scale()` is read at each failure;
    `on_validated(sub_id)` is called from a worker thread after a 2xx to validation."""

    def __init__(self, retry_scale, on_validated):
        self.retry_scale = retry_scale
        self.on_validated = on_validated
        self._lock = threading.Lock()
        self._workers = {}            # subscription id -> Worker
        self._log = collections.deque(maxlen=MAX_LOG)
        self._seq = 0

    def start(self, sub_id, endpoint, validation):
        """A worker for a new subscription, its first delivery the validation event."""
        with self._lock:
            worker = self._workers.get(sub_id)
            if worker is None:
                worker = self._workers[sub_id] = Worker(self, sub_id, endpoint)
        worker.enqueue([validation])

    def stop(self, sub_id):
        with self._lock:
            worker = self._workers.pop(sub_id, None)
        if worker is not None:
            worker.stop()

    def deliver(self, sub_id, deliveries):
        with self._lock:
            worker = self._workers.get(sub_id)
        if worker is not None:
            worker.enqueue(deliveries)

    def validated(self, sub_id):
        self.on_validated(sub_id)

    def pending(self):
        with self._lock:
            workers = list(self._workers.items())
        return {sub_id: w.pending() for sub_id, w in workers}

    def record(self, worker, delivery, status, error, outcome, ms, retry_in):
        entry = {
            "seq": 0,
            "time": dates.format_ticks(dates.now_ticks()),
            "subscriptionId": worker.sub_id,
            "endPoint": worker.endpoint,
            "eventId": delivery.event_id,
            "type": delivery.event_type,
            "attempt": delivery.attempt,
            "status": status,
            "error": error,
            "outcome": outcome,
            "ms": round(ms, 2),
            "retryIn": retry_in,
        }
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._log.append(entry)

    def attempts(self, since=0, sub_id=None):
        with self._lock:
            return [dict(e) for e in self._log
                    if e["seq"] > since and (sub_id is None or e["subscriptionId"] == sub_id)]

    def clear_log(self):
        with self._lock:
            self._log.clear()
