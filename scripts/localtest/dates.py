"""Times the way the Altinn platform (.NET) shows them.

The platform stores times as .NET ticks (100 ns since 0001-01-01) and serialises them as
ISO-8601 UTC with seven fractional digits and a `Z`. Keeping ticks as plain ints makes ordering,
continuation tokens and the `lastChanged=gt:` filters exact, with no float rounding.
"""

import datetime
import email.utils
import re
import threading
import time

TICKS_PER_SECOND = 10_000_000
# .NET ticks at 1970-01-01T00:00:00Z
EPOCH_TICKS = 621_355_968_000_000_000

_now_lock = threading.Lock()
_last_now = 0


def now_ticks():
    """Current UTC time in ticks, strictly increasing within this process.

    Strictly increasing so that two writes in a row never share a `lastChanged`, which keeps
    `lastChanged=gt:<watermark>` polling exact.
    """
    global _last_now
    with _now_lock:
        t = EPOCH_TICKS + time.time_ns() // 100
        if t <= _last_now:
            t = _last_now + 1
        _last_now = t
        return t


def ticks_from_parts(year, month, day, hour=0, minute=0, second=0, fraction_ticks=0):
    dt = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    return EPOCH_TICKS + int(dt.timestamp()) * TICKS_PER_SECOND + fraction_ticks


def format_ticks(ticks):
    """`2026-03-01T10:15:30.1234567Z`"""
    seconds, frac = divmod(ticks - EPOCH_TICKS, TICKS_PER_SECOND)
    dt = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%07dZ" % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, frac)


def http_date(ticks):
    """RFC 9110 IMF-fixdate, for Last-Modified."""
    return email.utils.formatdate((ticks - EPOCH_TICKS) / TICKS_PER_SECOND, usegmt=True)


_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,7})\d*)?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$")


def parse_iso(text):
    """ISO-8601 date or date-time to ticks. A missing offset means UTC (as on the platform,
    which runs in UTC). Raises ValueError on anything else."""
    m = _ISO_RE.match(text.strip())
    if not m:
        raise ValueError("not an ISO-8601 date: %r" % text)
    year, month, day, hour, minute, second, frac, tz = m.groups()
    dt = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                           int(second or 0), tzinfo=datetime.timezone.utc)
    ticks = EPOCH_TICKS + int(dt.timestamp()) * TICKS_PER_SECOND
    if frac:
        ticks += int(frac.ljust(7, "0"))
    if tz and tz not in ("Z", "z"):
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset_min = int(digits[:2]) * 60 + int(digits[2:4] or 0)
        ticks -= sign * offset_min * 60 * TICKS_PER_SECOND
    return ticks


def unix_seconds(ticks):
    return (ticks - EPOCH_TICKS) // TICKS_PER_SECOND
