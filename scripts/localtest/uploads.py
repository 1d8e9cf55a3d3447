"""The rules an app applies to the bytes of a data element before it stores them.

Attachments (data types without appLogic) go through app-lib's DataRestrictionValidation, in
its order: Content-Disposition present; Content-Length within maxSize; a filename
(`filename*` wins over `filename`, surrounding quotes stripped, `/` and NUL become `_`) that
has an extension; and, when the data type lists allowedContentTypes, a Content-Type that is
`application/octet-stream` or the MIME type of the extension (or an alias, case-insensitive),
and that is in the list (case-insensitive) unless the list holds `application/octet-stream`.
Then the body is read (413 past maxSize when no Content-Length said so up front) and an empty
one is refused. Each failure is a 400 whose description is returned as a bare string, which
is what the legacy upload endpoint answers; callers choose the status and body shape.

Form data (appLogic) is parsed instead: `application/xml` must be well-formed XML and
`application/json` valid JSON (the model class itself is not checked); other types are 415.
"""

import base64
import json
import urllib.parse
import xml.etree.ElementTree as ElementTree

from . import appauth, web

ERROR = "Invalid data provided. Error:"
OCTET_STREAM = "application/octet-stream"
# The App API's request size limit (RequestSizeLimit on DataController): 2000 MiB.
REQUEST_SIZE_LIMIT = 2000 * 1024 * 1024
MIB = 1024 * 1024

# Extension -> MIME type and its aliases (a subset of app-lib's MimeTypeMap; unknown
# extensions map to application/octet-stream). app-lib's map has no .log, .md or .msg
# (app-lib-dotnet Helpers/MimeTypeMap.cs), so those are octet-stream here too.
MIME_TYPES = {
    ".7z": ("application/x-7z-compressed",), ".bmp": ("image/bmp",),
    ".csv": ("text/csv",), ".doc": ("application/msword",),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
    ".dot": ("application/msword",), ".eml": ("message/rfc822",), ".gif": ("image/gif",),
    ".gz": ("application/x-gzip",), ".htm": ("text/html",), ".html": ("text/html",),
    ".ico": ("image/x-icon",), ".jpe": ("image/jpeg",), ".jpeg": ("image/jpeg",),
    ".jpg": ("image/jpeg",), ".js": ("application/javascript",), ".json": ("application/json",),
    ".m4a": ("audio/m4a", "audio/x-m4a"),
    ".mp3": ("audio/mpeg",), ".mp4": ("video/mp4",),
    ".odp": ("application/vnd.oasis.opendocument.presentation",),
    ".ods": ("application/vnd.oasis.opendocument.spreadsheet",),
    ".odt": ("application/vnd.oasis.opendocument.text",), ".p7s": ("application/pkcs7-signature",),
    ".pdf": ("application/pdf",), ".png": ("image/png",),
    ".ppt": ("application/vnd.ms-powerpoint",),
    ".pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation",),
    ".rtf": ("application/rtf",), ".svg": ("image/svg+xml",), ".tar": ("application/x-tar",),
    ".tif": ("image/tiff",), ".tiff": ("image/tiff",), ".txt": ("text/plain",),
    ".wav": ("audio/wav",), ".webp": ("image/webp",), ".xls": ("application/vnd.ms-excel",),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",),
    ".xml": ("application/xml", "text/xml"), ".xsd": ("text/xml",), ".xsl": ("text/xml",),
    ".zip": ("application/zip", "application/x-zip-compressed", "application/zip-compressed"),
    ".bin": (OCTET_STREAM,), ".dat": (OCTET_STREAM,), ".exe": (OCTET_STREAM,),
}


class Rejected(Exception):
    """An upload rule failed: `status` and a plain `message` (the ValidationIssue
    description, or the ProblemDetails detail with `title`)."""

    def __init__(self, status, message, title=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title


def mime_type(extension):
    """(type, *aliases) for an extension such as ".pdf" (case-insensitive)."""
    return MIME_TYPES.get(extension.lower(), (OCTET_STREAM,))


def extension(filename):
    """Path.GetExtension: from the last dot, "" when there is none or it ends the name."""
    dot = filename.rfind(".")
    if dot < 0 or dot == len(filename) - 1:
        return ""
    return filename[dot:]


# -- Content-Disposition ------------------------------------------------------------------

_TOKEN_CHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _token(text, i):
    j = i
    while j < len(text) and text[j] in _TOKEN_CHARS:
        j += 1
    return text[i:j], j


def _quoted(text, i):
    """A quoted-string starting at text[i] == '"'; returns (value, next index)."""
    out = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return '"' + "".join(out) + '"', i + 1
        else:
            out.append(ch)
            i += 1
    raise ValueError("unterminated quoted string")


def parse_content_disposition(value):
    """(type, {lower-case name: value}) or raise ValueError, like .NET's TryParse. Quoted
    values keep their quotes (the caller strips them, as app-lib does)."""
    text = value.strip()
    kind, i = _token(text, 0)
    if not kind:
        raise ValueError("no disposition type")
    params = {}
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i == len(text):
            return kind.lower(), params
        if text[i] != ";":
            raise ValueError("expected ';'")
        i += 1
        while i < len(text) and text[i] in " \t":
            i += 1
        if i == len(text):
            return kind.lower(), params
        name, i = _token(text, i)
        if not name or i >= len(text) or text[i] != "=":
            raise ValueError("bad parameter")
        i += 1
        if i < len(text) and text[i] == '"':
            val, i = _quoted(text, i)
        else:
            val, i = _token(text, i)
            if not val:
                raise ValueError("empty parameter value")
        params[name.lower()] = val


def _decode_ext_value(value):
    """RFC 8187 `charset'lang'pct-encoded` (None when it cannot be decoded)."""
    parts = value.strip('"').split("'", 2)
    if len(parts) != 3 or parts[0].lower() not in ("utf-8", "iso-8859-1"):
        return None
    try:
        return urllib.parse.unquote(parts[2], encoding=parts[0].lower(), errors="strict")
    except UnicodeDecodeError:
        return None


def _decode_mime(value):
    """Microsoft.Net.Http.Headers TryDecodeMime: a quoted `"=?charset?B?base64?="`, else
    None (only B encoding, one encoded word)."""
    if len(value) < 10 or not (value.startswith('"') and value.endswith('"')):
        return None
    parts = value.split("?")
    if len(parts) != 5 or parts[0] != '"=' or parts[4] != '="' or parts[2].lower() != "b":
        return None
    try:
        return base64.b64decode(parts[3], validate=True).decode(parts[1], errors="replace")
    except (ValueError, LookupError):
        return None


def _plain_filename(params):
    """ContentDispositionHeaderValue.FileName (Microsoft.Net.Http.Headers GetName): an RFC
    2047 B-encoded word is decoded, otherwise the bounding quotes are removed."""
    raw = params.get("filename")
    if raw is None:
        return None
    decoded = _decode_mime(raw)
    if decoded is not None:
        return decoded
    return raw[1:-1] if len(raw) > 1 and raw[0] == raw[-1] == '"' else raw


def filename_from_header(value, ascii_only=True, plain=False):
    """The filename a Content-Disposition header names, sanitized as app-lib does, or None.
    plain: the replace (PUT) path, which reads only `filename` (app-lib DataController
    `contentDispositionHeader.FileName`); otherwise `filename*` wins (upload, POST)."""
    if not value:
        return None
    if ascii_only and any(ord(ch) > 127 for ch in value):
        return None         # Kestrel takes ASCII headers only; use filename*=UTF-8''...
    try:
        _, params = parse_content_disposition(value)
    except ValueError:
        return None
    name = None
    if "filename*" in params and not plain:
        name = _decode_ext_value(params["filename*"])
    if name is None:
        name = _plain_filename(params)
    if name is None:
        return None
    name = name.strip('"').replace("/", "_").replace("\0", "_")
    return name or None


def url_decode(text):
    """System.Web.HttpUtility.UrlDecode: `+` is a space, `%xx` a UTF-8 byte, `%uXXXX` a
    UTF-16 unit; a `%` that starts neither is kept."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "+":
            out += b" "
        elif ch == "%" and i + 6 <= n and text[i + 1] in "uU" and _is_hex(text[i + 2:i + 6]):
            out += chr(int(text[i + 2:i + 6], 16)).encode("utf-8", "surrogatepass")
            i += 6
            continue
        elif ch == "%" and i + 3 <= n and _is_hex(text[i + 1:i + 3]):
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
            continue
        else:
            out += ch.encode("utf-8", "surrogatepass")
        i += 1
    return out.decode("utf-8", errors="replace")


def _is_hex(text):
    return all(c in _HEX for c in text)


_HEX = set("0123456789abcdefABCDEF")


def storage_filename(name):
    """The name Storage keeps for the name the app sends it: decoded twice, once in
    DataElementHelper.GetStream and again in DataController (altinn-storage
    Helpers/DataElementHelper.cs:125,141; Controllers/DataController.cs:489 POST, :660 PUT).
    "a+b.pdf" becomes "a b.pdf"; "a%252B.pdf" becomes "a+.pdf"."""
    return None if name is None else url_decode(url_decode(name))


def check_header_filename(name):
    """app-lib hands the name to DataClient, whose System.Net.Http ContentDispositionHeaderValue
    setter throws for a quote inside it ("Only bounding quotes are allowed"): the app answers
    500. Raises Rejected(500)."""
    if name is not None and '"' in name:
        raise Rejected(500, "An error occurred while processing your request.",
                       title="Internal Server Error")


# -- attachments --------------------------------------------------------------------------

def _max_bytes(data_type):
    size = data_type.get("maxSize")
    return int(size) * MIB if isinstance(size, (int, float)) and size > 0 else None


def check_attachment(headers, data_type, plain=False):
    """DataRestrictionValidation for an attachment upload. Returns the filename; raises
    Rejected(400, description) on the first rule that fails. plain: the replace path
    (filename= only)."""
    disposition = headers.get("Content-Disposition")
    if disposition is None:
        raise Rejected(400, "%s The request must include a Content-Disposition header" % ERROR)
    limit = _max_bytes(data_type)
    length = headers.get("Content-Length")
    if limit is not None and length and length.strip().isdigit() and int(length) > limit:
        raise Rejected(400, "%s Binary attachment exceeds limit of %d" % (ERROR, limit))
    filename = filename_from_header(disposition, plain=plain)
    if filename is None:
        raise Rejected(400, "%s The Content-Disposition header must contain a valid filename"
                       % ERROR)
    if len(filename.split(".")) < 2:
        raise Rejected(400, "%s Invalid format for filename: %s. Filename is expected to end "
                       "with '.{filetype}'." % (ERROR, filename))
    allowed = data_type.get("allowedContentTypes") or []
    if not allowed:
        return filename
    mime = mime_type(extension(filename))
    content_type = headers.get("Content-Type")
    if content_type is None:
        raise Rejected(400, "%s Content-Type header must be included in request." % ERROR)
    if content_type != OCTET_STREAM and content_type.lower() not in (m.lower() for m in mime):
        raise Rejected(400, "%s Content type header %s does not match mime type %s for "
                       "uploaded file. Please fix header or upload another file."
                       % (ERROR, content_type, mime[0]))
    if content_type.lower() not in (a.lower() for a in allowed) and OCTET_STREAM not in allowed:
        raise Rejected(400, "%s Invalid content type: %s. Please try another file. Permitted "
                       "content types include: %s" % (ERROR, mime[0], ", ".join(allowed)))
    return filename


def check_request_size(req):
    """[RequestSizeLimit(2000 MiB)] on app-lib's InstancesController and DataController
    (REQUEST_SIZE_LIMIT, InstancesController.cs:83, DataController.cs:57): Kestrel refuses a
    Content-Length over it with 413 before the action runs."""
    length = req.headers.get("Content-Length")
    if length and length.strip().isdigit() and int(length) > REQUEST_SIZE_LIMIT:
        raise web.HttpError(web.text(413, "Request body too large. The max request body size "
                                     "is %d bytes." % REQUEST_SIZE_LIMIT))


def read_body(req, data_type=None):
    """The request body, refusing more than the data type's maxSize (413) or the request
    size limit. Reads straight from the socket, so it is not bound by web.MAX_BUFFERED_BODY."""
    limit = min((_max_bytes(data_type) if data_type else None) or REQUEST_SIZE_LIMIT,
                REQUEST_SIZE_LIMIT)
    body = bytearray()
    for chunk in req.stream():
        body += chunk
        if len(body) > limit:
            raise Rejected(413, "The request body is too large. The content length is %d bytes, "
                           "which exceeds the limit of %s MB" % (
                               len(body), (data_type or {}).get("maxSize", limit // MIB)),
                           title="Request too large")
    return bytes(body)


def check_not_empty(body):
    if not body:
        raise Rejected(400, "%s The file is zero bytes." % ERROR, title="Invalid data")


# -- form data ----------------------------------------------------------------------------

def check_form(content_type, body):
    """Parse a form-data body as the app's model deserializer would. Returns the content type
    to store; raises Rejected (400 bad XML/JSON, 415 another type)."""
    if content_type is None or "application/xml" in content_type:
        try:
            ElementTree.fromstring(body)
        except ElementTree.ParseError as e:
            raise Rejected(400, "There is an error in XML document: %s" % e,
                           title="Failed to deserialize XML")
        return "application/xml"
    if "application/json" in content_type:
        try:
            json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise Rejected(400, str(e), title="Failed to deserialize JSON")
        return "application/json"
    raise Rejected(415, "Content type %s is not supported for deserialization" % content_type,
                   title="Unsupported content type")


def empty_form(data_type):
    """The XML of a new, empty model of a form data type (what autoCreate stores)."""
    class_ref = ((data_type.get("appLogic") or {}).get("classRef") or "Model")
    root = class_ref.rsplit(".", 1)[-1] or "Model"
    return ('<?xml version="1.0" encoding="utf-8"?>\n<%s xmlns:xsi="http://www.w3.org/2001/'
            'XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" />\n'
            % root).encode("utf-8")


def is_form(data_type):
    return bool((data_type.get("appLogic") or {}).get("classRef"))


def as_http_error(rejected, legacy, path):
    """The answer for a Rejected rule. `legacy`: the upload endpoint's shape, where a 400 is
    a bare string; otherwise (and for other statuses) ProblemDetails."""
    if legacy and rejected.status == 400:
        return web.HttpError(web.text(400, rejected.message))
    return web.HttpError(appauth.problem(rejected.status, rejected.title or "Bad Request",
                                         rejected.message, path))
