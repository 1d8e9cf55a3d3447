"""Bytes of data elements, served in chunks so no body is ever built whole in memory.

Two kinds: `BytesContent` holds small payloads; `PatternContent` makes arbitrarily large ones on
the fly from one shared buffer of a prime length, so byte i is PATTERN[i % len(PATTERN)] and any
offset mistake in a client shows up as wrong bytes.

The pattern is reproducible without this code: it is SHA-256 in counter mode,
  concat(sha256(b"altinn-localtest-pattern" + n.to_bytes(4, "big")) for n = 0, 1, ...)
cut to PATTERN_LENGTH (1,048,573, the largest prime below 2**20) bytes.
"""

import hashlib

PATTERN_LENGTH = 1_048_573
CHUNK_SIZE = 1 << 20

_pattern_doubled = None


def pattern():
    """The pattern buffer twice over, so any window of up to PATTERN_LENGTH bytes starting
    anywhere in the first copy is one contiguous slice (no copying when sending)."""
    global _pattern_doubled
    if _pattern_doubled is None:
        blocks = []
        n = 0
        total = 0
        while total < PATTERN_LENGTH:
            block = hashlib.sha256(b"altinn-localtest-pattern" + n.to_bytes(4, "big")).digest()
            blocks.append(block)
            total += len(block)
            n += 1
        one = b"".join(blocks)[:PATTERN_LENGTH]
        _pattern_doubled = one + one
    return _pattern_doubled


def pattern_slice(offset, length):
    """Bytes [offset, offset+length) of the endless pattern (for tests and checks)."""
    buf = pattern()
    out = bytearray()
    while length > 0:
        start = offset % PATTERN_LENGTH
        n = min(length, PATTERN_LENGTH)
        out += buf[start:start + n]
        offset += n
        length -= n
    return bytes(out)


class BytesContent:
    """Small content held in memory."""

    kind = "bytes"

    def __init__(self, data):
        self.data = bytes(data)
        self.size = len(self.data)

    def chunks(self, start, end):
        """Yield buffers covering [start, end)."""
        view = memoryview(self.data)
        while start < end:
            n = min(CHUNK_SIZE, end - start)
            yield view[start:start + n]
            start += n

    def read(self):
        return self.data


class PatternContent:
    """`size` bytes of the shared pattern, generated while sending."""

    kind = "pattern"

    def __init__(self, size):
        self.size = size

    def chunks(self, start, end):
        view = memoryview(pattern())
        while start < end:
            n = min(PATTERN_LENGTH, end - start)
            p = start % PATTERN_LENGTH
            yield view[p:p + n]
            start += n

    def read(self):
        return pattern_slice(0, self.size)
