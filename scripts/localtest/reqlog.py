"""The request log: one entry per non-admin request, in arrival order, for tests to assert on
("listing 1,200 instances took 13 requests", "this read used a Range").

An entry is added when the request arrives and completed as it is answered: `status` is set
before the first byte goes out and `bytes` grows before each body chunk is written, so by the
time a client has the whole response its entry is final. Sequence numbers keep growing across
`clear()`, so `since=` stays meaningful. `received` counts the request body bytes the
server read so far (also of a body whose client went away), and
`uploadOffset` a TUS PATCH's Upload-Offset: together they show what an upload sent again. Only the newest MAX_ENTRIES are kept, so a long
benchmark cannot grow the server without bound.
"""

import threading

from . import dates

MAX_ENTRIES = 200_000


class RequestLog:
    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []
        self._next_seq = 1

    def start(self, method, path, query, range_header, has_auth, upload_offset=None):
        entry = {
            "seq": 0,
            "time": dates.format_ticks(dates.now_ticks()),
            "method": method,
            "path": path,
            "query": query,
            "range": range_header,
            "status": None,
            "bytes": 0,
            "auth": has_auth,
            "uploadOffset": upload_offset,   # a TUS PATCH's Upload-Offset header
            "received": 0,                   # request body bytes read so far
        }
        with self._lock:
            entry["seq"] = self._next_seq
            self._next_seq += 1
            self._entries.append(entry)
            if len(self._entries) > MAX_ENTRIES:
                del self._entries[:len(self._entries) - MAX_ENTRIES]
        return entry

    def entries(self, since=0):
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > since]

    def clear(self):
        with self._lock:
            self._entries = []
