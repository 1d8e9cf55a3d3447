"""Helpers for the events suite and scripts/bench-events: an inotify
watcher (ctypes, stdlib only) and publishing events on the local platform.

The watcher records what a user's `inotifywait -m` would see on one
folder, with the time each event was read, from a thread of its own."""

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import threading
import time

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCH_MASK = IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_HEADER = struct.Struct("iIII")


def event_id_of(name):
    """The event id at the end of an event file name
    (<seq>_<type>_<id>.json; Altinn's ids are GUIDs, kept as they are)."""
    return name[:-len(".json")].rsplit("_", 1)[1]


class Watcher:
    """inotify on one folder. `events` is a list of (time.monotonic(),
    mask, name) in the order the kernel reported them."""

    def __init__(self, path, mask=WATCH_MASK, on_event=None):
        """on_event(mask, name), if given, runs in the watcher's thread
        as each event is read, before the next is: a test can look at a
        file the moment its event arrives."""
        self.path = str(path)
        self.on_event = on_event
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if _libc.inotify_add_watch(self.fd, os.fsencode(self.path), mask) < 0:
            e = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(e, f"inotify_add_watch {self.path}")
        self.events = []
        self.overflow = False
        self.cond = threading.Condition()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            ready = [fd for fd, _ in poller.poll()]
            if self._stop_r in ready:
                return
            try:
                buf = os.read(self.fd, 1 << 20)
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    continue
                raise
            now = time.monotonic()
            got, off = [], 0
            while off + _HEADER.size <= len(buf):
                _, mask, _, n = _HEADER.unpack_from(buf, off)
                name = buf[off + _HEADER.size:off + _HEADER.size + n].split(b"\0", 1)[0]
                off += _HEADER.size + n
                if mask & IN_Q_OVERFLOW:
                    self.overflow = True
                got.append((now, mask, os.fsdecode(name)))
                if self.on_event:
                    self.on_event(mask, os.fsdecode(name))
            with self.cond:
                self.events.extend(got)
                self.cond.notify_all()

    def close(self):
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(5)
            self._thread = None
            for fd in (self.fd, self._stop_r, self._stop_w):
                os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def names(self, mask=IN_MOVED_TO | IN_CLOSE_WRITE, dotfiles=False):
        """Names of the events matching mask, in order (duplicates kept)."""
        with self.cond:
            return [n for _, m, n in self.events
                    if m & mask and (dotfiles or not n.startswith("."))]

    def arrivals(self):
        """{event id: monotonic time} of the first IN_MOVED_TO of each
        event file."""
        out = {}
        with self.cond:
            for t, m, n in self.events:
                if m & IN_MOVED_TO and not n.startswith(".") and n.endswith(".json"):
                    out.setdefault(event_id_of(n), t)
        return out

    def wait(self, pred, timeout):
        """Waits until pred(self) is true; returns its last value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred(self)
                left = deadline - time.monotonic()
                if v or left <= 0:
                    return v
                self.cond.wait(min(left, 0.5))

    def wait_files(self, n, timeout):
        """Waits until n event files appeared; returns their names."""
        self.wait(lambda w: len(w.names(IN_MOVED_TO)) >= n, timeout)
        return self.names(IN_MOVED_TO)


def publish(platform, app_id, type_="app.instance.created", party="50003", count=1,
            guid=None):
    """Publishes events on the local platform; returns their ids in order."""
    org, app = app_id.split("/")
    body = {"org": org, "app": app, "type": type_, "partyId": str(party), "count": count}
    if guid:
        body["instanceGuid"] = guid
    r = platform.request("POST", "/_localtest/events", body=body, auth=False)
    assert r.status == 201, r
    return r.json()["ids"]


def platform_events(platform, app_id, after="0"):
    """Every event of app_id the platform returns to polling, in its
    order (following pages by the last id, as the daemon does)."""
    org, app = app_id.split("/")
    out = []
    while True:
        r = platform.get(f"/events/api/v1/app/{org}/{app}",
                         query={"after": after, "size": "1000"})
        assert r.status == 200, r
        page = r.json()
        if not page:
            return out
        out.extend(page)
        after = page[-1]["id"]


def subscriptions_validated(platform, n):
    """True once n subscriptions exist and all are validated."""
    subs = platform.get_json("/_localtest/subscriptions", auth=False)
    subs = subs.get("subscriptions", subs) if isinstance(subs, dict) else subs
    return len(subs) >= n and all(s.get("validated") for s in subs)
