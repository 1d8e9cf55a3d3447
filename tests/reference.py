"""The reference rules the tree must follow, written again in Python so
the daemon is checked against a second implementation: time stamps as
the platform writes them, and the data file names of docs/tree.md."""

import calendar
import re
import unicodedata


_ISO = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?"
    r"(Z|[+-]\d\d:?\d\d)?$"
)


def iso_seconds(text):
    """Whole seconds since the epoch of an ISO-8601 time (as the platform
    writes them: 7 fraction digits, Z or an offset)."""
    m = _ISO.match(text.strip())
    if not m:
        raise ValueError(f"not an ISO-8601 time: {text!r}")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    zone = m.group(8)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        zone = zone[1:].replace(":", "")
        secs -= sign * (int(zone[:2]) * 3600 + int(zone[2:]) * 60)
    return secs


EXTENSIONS = {
    "application/xml": "xml",
    "text/xml": "xml",
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "text/plain": "txt",
    "application/json": "json",
    "application/octet-stream": "bin",
}
NAME_MAX = 255


def live_instances(docs):
    """What the tree shows of a listing: no hard-deleted instances and no elements a user
    deleted (Storage lists both to the app owner; docs/tree.md)."""
    out = []
    for inst in docs:
        if inst["status"]["isHardDeleted"]:
            continue
        inst = dict(inst)
        inst["data"] = [e for e in inst["data"]
                        if not (e.get("deleteStatus") or {}).get("isHardDeleted")]
        out.append(inst)
    return out


def _split_ext(name):
    """(stem, ".ext") of a byte name; a leading dot is not an extension."""
    i = name.rfind(b".")
    if i <= 0:
        return name, b""
    return name[:i], name[i:]


def _cut_utf8(b, limit):
    b = b[:limit]
    while b:
        try:
            b.decode("utf-8")
            return b
        except UnicodeDecodeError:
            b = b[:-1]
    return b


def _fit(stem, tail):
    """stem + tail, with the stem cut on a UTF-8 boundary to fit NAME_MAX."""
    if len(stem) + len(tail) <= NAME_MAX:
        return stem + tail
    return _cut_utf8(stem, NAME_MAX - len(tail)) + tail


def base_name(element):
    """The unsanitized name: the filename, else <guid>.<ext>."""
    if element.get("filename"):
        return element["filename"]
    ct = (element.get("contentType") or "").split(";")[0].strip().lower()
    return f"{element['id']}.{EXTENSIONS.get(ct, 'bin')}"


def sanitize(name):
    """Bytes of a safe single path component."""
    chars = []
    for ch in name:
        if ch == "/" or unicodedata.category(ch) == "Cc" or 0xD800 <= ord(ch) <= 0xDFFF:
            chars.append("_")
        else:
            chars.append(ch)
    s = "".join(chars)
    if s == ".":
        s = "_"
    elif s == "..":
        s = "__"
    b = s.encode("utf-8")
    stem, ext = _split_ext(b)
    return _fit(stem, ext)


def expected_names(elements):
    """{(dataType, name bytes): data guid} for one instance's elements."""
    named = [(e["dataType"], sanitize(base_name(e)), e["id"]) for e in elements]
    counts = {}
    for dt, name, _ in named:
        counts[(dt, name)] = counts.get((dt, name), 0) + 1
    out = {}
    for dt, name, guid in named:
        if counts[(dt, name)] > 1:
            stem, ext = _split_ext(name)
            name = _fit(stem, b"-" + guid[:8].encode() + ext)
        out[(dt, name)] = guid
    return out
