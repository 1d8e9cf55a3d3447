"""multipart/form-data bodies (RFC 7578) for instantiation with data, read as app-lib's
MultipartRequestReader does: every part needs a Content-Disposition and a Content-Type (else
the request is refused with one message naming each bad part); a part's name and filename
come from its Content-Disposition (`filename*` wins, quotes stripped). Part headers are read
as UTF-8, as ASP.NET's MultipartReader does, so a raw UTF-8 filename works here.
"""

from . import uploads


class Part:
    def __init__(self, name, content_type, filename, data):
        self.name = name
        self.content_type = content_type
        self.filename = filename
        self.data = data


class MultipartError(ValueError):
    pass


def boundary(content_type):
    """The boundary parameter of a multipart Content-Type, or None."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"')
    return None


def _headers(block):
    out = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            out[name.strip().lower()] = value.strip()
    return out


def _sections(body, marker):
    delimiter = b"--" + marker.encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0 or (pos > 0 and body[pos - 2:pos] != b"\r\n"):
        raise MultipartError("no multipart boundary in the body")
    pos += len(delimiter)
    while body[pos:pos + 2] != b"--":
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise MultipartError("unexpected end of the multipart body")
        start = eol + 2
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise MultipartError("unexpected end of the multipart body")
        yield body[start:end]
        pos = end + 2 + len(delimiter)


def parse(content_type, body):
    """[Part] of a multipart body; MultipartError with app-lib's messages otherwise."""
    marker = boundary(content_type)
    if marker is None:
        raise MultipartError("Could not retrieve boundary value from Content-Type header")
    parts, errors = [], []
    for number, section in enumerate(_sections(body, marker), start=1):
        if section.startswith(b"\r\n"):
            head, data = b"", section[2:]
        else:
            head, sep, data = section.partition(b"\r\n\r\n")
            if not sep:
                head, data = section, b""
        headers = _headers(head)
        disposition = headers.get("content-disposition")
        try:
            _, params = uploads.parse_content_disposition(disposition or "")
        except ValueError:
            errors.append("Part number %d doesn't have a content disposition" % number)
            continue
        if "content-type" not in headers:
            errors.append("Part number %d doesn't have a content type" % number)
            continue
        name = params.get("name", "").strip('"') or None
        filename = uploads.filename_from_header(disposition, ascii_only=False)
        parts.append(Part(name, headers["content-type"], filename, data))
    if errors:
        raise MultipartError(", ".join(errors))
    return parts
