"""Delayed calls on one thread, in time order: the local stand-in for Hangfire's scheduled jobs.

Correspondence schedules a publication, a due-date check, a scan or a confirmation per
correspondence; a thread per call (threading.Timer) would cost 1,000 sleeping threads for 500
recipients with due dates. Here a heap and one daemon thread run them; a call that raises is
reported on stderr and the next one still runs.
"""

import heapq
import itertools
import sys
import threading
import time
import traceback


class Jobs:
    def __init__(self, name="jobs"):
        self._cond = threading.Condition()
        self._heap = []
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def later(self, delay, fn, *args):
        """Run fn(*args) on the jobs thread `delay` seconds from now."""
        when = time.monotonic() + max(0.0, delay)
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), fn, args))
            self._cond.notify()

    def pending(self):
        with self._cond:
            return len(self._heap)

    def _run(self):
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                _, _, fn, args = heapq.heappop(self._heap)
            try:
                fn(*args)
            except Exception:
                traceback.print_exc(file=sys.stderr)
