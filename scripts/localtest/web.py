"""Small HTTP vocabulary shared by the endpoint modules: the request as handlers see it, the
response they return, a route table, and Range parsing.

Handlers never touch the socket. They return a `Response` whose body is either bytes or a
content object that yields chunks, and the server decides how to send it (whole, truncated by a
fault, or not at all for HEAD). That keeps the request log and fault injection in one place.
"""

import json
import re
import urllib.parse

JSON = "application/json; charset=utf-8"
PROBLEM_JSON = "application/problem+json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

# Request bodies larger than this are refused (413) by `Request.body()`; streaming readers
# (`Request.stream()`) are not limited.
MAX_BUFFERED_BODY = 64 << 20


class HttpError(Exception):
    """Raise from a handler to answer with `response`."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


class _BodyReader:
    """Reads a request body framed by Content-Length or chunked transfer coding."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        self.remaining = 0
        self.done = False
        self.total = 0          # body bytes read so far ...
        self.entry = None       # ... kept in this request log entry's "received" as they come
        if not self.chunked:
            try:
                self.remaining = max(0, int(headers.get("Content-Length") or 0))
            except ValueError:
                raise HttpError(text(400, "Bad Content-Length"))
            self.done = self.remaining == 0

    def _count(self, data):
        self.total += len(data)
        if self.entry is not None:
            self.entry["received"] = self.total

    def read(self, n=1 << 20):
        """Up to n bytes; b"" at the end of the body."""
        if self.done:
            return b""
        if self.chunked:
            if self.remaining == 0:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionResetError("body ended early")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    self.done = True
                    return b""
                self.remaining = size
            data = self.rfile.read(min(n, self.remaining))
            if not data:
                raise ConnectionResetError("body ended early")
            self.remaining -= len(data)
            self._count(data)
            if self.remaining == 0:
                self.rfile.readline(16)
            return data
        data = self.rfile.read(min(n, self.remaining))
        if not data:
            raise ConnectionResetError("body ended early")
        self.remaining -= len(data)
        self._count(data)
        if self.remaining == 0:
            self.done = True
        return data


class Request:
    def __init__(self, method, raw_path, query_string, headers, base_url, rfile):
        self.method = method
        self.path = raw_path                  # as sent, percent-encoded, no query
        self.query_string = query_string      # raw, "" when none
        self.query = urllib.parse.parse_qsl(query_string, keep_blank_values=True)
        self.headers = headers
        self.base_url = base_url              # "http://host:port" from the Host header
        self.params = {}                      # path parameters from the route
        self.principal = None                 # auth.Principal when authenticated
        self._body = _BodyReader(rfile, headers)
        self._cached_body = None

    def args(self, name):
        return [v for k, v in self.query if k == name]

    def arg(self, name, default=None):
        for k, v in self.query:
            if k == name:
                return v
        return default

    def has_arg(self, name):
        return any(k == name for k, _ in self.query)

    def count_into(self, entry):
        """Keep entry["received"] equal to the body bytes read from the client."""
        self._body.entry = entry

    def stream(self):
        """Iterate over the body in chunks without buffering it."""
        while True:
            data = self._body.read()
            if not data:
                return
            yield data

    def body(self):
        if self._cached_body is None:
            declared = self.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_BUFFERED_BODY:
                raise HttpError(text(413, "Request body too large"))
            parts = []
            total = 0
            for data in self.stream():
                total += len(data)
                if total > MAX_BUFFERED_BODY:
                    raise HttpError(text(413, "Request body too large"))
                parts.append(data)
            self._cached_body = b"".join(parts)
        return self._cached_body

    def json(self):
        try:
            return json.loads(self.body().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise HttpError(text(400, "Invalid JSON body: %s" % e))

    def finish_body(self, limit=16 << 20):
        """Read and discard what the handler left of the body so the connection can carry
        the next request. Returns False when that would mean reading more than `limit`."""
        if self._body.done:
            return True
        if not self._body.chunked and self._body.remaining > limit:
            return False
        read = 0
        for data in self.stream():
            read += len(data)
            if read > limit:
                return False
        return True


class Response:
    """Status, headers and a body: `body` bytes, or `content` (an object with
    `chunks(start, end)`) sent from `start` to `end` (exclusive)."""

    def __init__(self, status, headers=None, body=b"", content=None, start=0, end=None):
        self.status = status
        self.headers = list(headers or [])
        self.body = body
        self.content = content
        self.start = start
        self.end = end if end is not None else (content.size if content is not None else 0)

    @property
    def length(self):
        if self.content is not None:
            return self.end - self.start
        return len(self.body)

    def chunks(self, limit=None):
        """The body in pieces, at most `limit` bytes in all."""
        if self.content is None:
            data = self.body if limit is None else self.body[:limit]
            if data:
                yield data
            return
        end = self.end if limit is None else min(self.end, self.start + limit)
        yield from self.content.chunks(self.start, end)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def json_response(obj, status=200, headers=None):
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, [("Content-Type", JSON)] + list(headers or []), body)


def text(status, message, content_type=TEXT):
    return Response(status, [("Content-Type", content_type)], message.encode("utf-8"))


def empty(status, headers=None):
    return Response(status, headers)


_PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    403: "https://tools.ietf.org/html/rfc9110#section-15.5.4",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    409: "https://tools.ietf.org/html/rfc9110#section-15.5.10",
    413: "https://tools.ietf.org/html/rfc9110#section-15.5.14",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
    502: "https://tools.ietf.org/html/rfc9110#section-15.6.3",
    503: "https://tools.ietf.org/html/rfc9110#section-15.6.4",
    504: "https://tools.ietf.org/html/rfc9110#section-15.6.5",
}


def problem(status, title, detail=None, instance=None, headers=None, extra=None):
    """An RFC 7807 ProblemDetails answer as ASP.NET writes it."""
    doc = {"type": _PROBLEM_TYPES.get(status, "about:blank"), "title": title, "status": status}
    if detail is not None:
        doc["detail"] = detail
    if instance is not None:
        doc["instance"] = instance
    if extra:
        doc.update(extra)
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, [("Content-Type", PROBLEM_JSON)] + list(headers or []), body)


def validation_problem(field, message):
    """ASP.NET's answer when a query value does not bind (e.g. size=abc)."""
    return problem(400, "One or more validation errors occurred.",
                   extra={"errors": {field: [message]}})


# -- routing ------------------------------------------------------------------------------

_SEGMENT_PATTERNS = {
    "int": r"-?\d+",
    "guid": r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
    "seg": r"[^/]+",
    "rest": r".*",
}


class Route:
    def __init__(self, method, template, handler, auth):
        self.method = method
        self.template = template
        self.handler = handler
        self.auth = auth
        self.regex = re.compile("^" + re.sub(r"\{(\w+)(?::(\w+))?\}", self._group, template) + "$")

    @staticmethod
    def _group(m):
        return "(?P<%s>%s)" % (m.group(1), _SEGMENT_PATTERNS[m.group(2) or "seg"])


class Router:
    """Routes in registration order; the first whose template matches wins. Templates use
    `{name}` for one path segment, `{name:int}`, `{name:guid}` or `{name:rest}`."""

    def __init__(self):
        self.routes = []

    def add(self, method, template, handler, auth=True):
        """auth=True: a valid bearer token is required (401 otherwise); False: anonymous."""
        self.routes.append(Route(method, template, handler, auth))

    def match(self, method, path):
        """(route, params) or (None, allowed methods for that path)."""
        allowed = []
        for route in self.routes:
            m = route.regex.match(path)
            if not m:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                return route, params
            allowed.append(route.method)
        return None, allowed


# -- ranges -------------------------------------------------------------------------------

UNSATISFIABLE = "unsatisfiable"


def parse_range(header, size):
    """Interpret a Range header for a body of `size` bytes.

    Returns None to send the whole body (no header, a multi-range, another unit or anything
    malformed: RFC 9110 lets a server ignore those), UNSATISFIABLE for a 416, or
    (start, end_exclusive) for a 206.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:
        if not last:
            return None
        n = int(last)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return (max(0, size - n), size)
    start = int(first)
    end = int(last) + 1 if last else size
    if last and end <= start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return (start, min(end, size))
