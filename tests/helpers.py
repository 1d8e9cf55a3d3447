"""Helpers for the altinnfs pytest suite: the local platform, a mount, and
the reference rules the tree must follow (data file names, timestamps).

Everything here is stdlib only; run with /usr/bin/python3 (Debian).

The two process wrappers, Platform and Mount, own what they start: stop()
always reaps the process, and Mount.stop() always lazily unmounts first, so
a failing test never leaves a mount or a daemon behind."""

import calendar
import contextlib
import errno
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unicodedata
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
LOCALTEST = REPO / "scripts" / "altinn-localtest"
STORAGE = "/storage/api/v1"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")

# Errors a read-only tree may give for a write (tests run as root, where
# the kernel's permission check is skipped and the daemon answers).
WRITE_REFUSED = (errno.EROFS, errno.EACCES)


def altinnfs_bin():
    return os.environ.get("ALTINNFS_BIN", str(REPO / "build" / "altinnfs"))


def binary_has_asan(path):
    """True when the daemon was built with AddressSanitizer (its memory
    figures are then not the product's)."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def write_secret(path, text):
    """Write a token or key file the way secrets must be kept: mode 0600.
    altinnfs refuses a token or key file that group or others may read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def free_port():
    """A TCP port that nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reap(proc, grace=5.0, on_stuck=None):
    """SIGTERM, then SIGKILL after `grace` seconds; always waits. Returns
    the exit status. on_stuck() runs when even SIGKILL does not end it
    within `grace` (a FUSE daemon whose own thread waits on its mount)."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            kill_and_wait(proc, grace, on_stuck)
    return proc.returncode


def kill_and_wait(proc, grace=5.0, on_stuck=None):
    proc.kill()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        if on_stuck is None:
            raise
        on_stuck()
        proc.wait()
    return proc.returncode


FUSECTL = Path("/sys/fs/fuse/connections")


def fuse_connection(path):
    """The FUSE connection number of the mount at path (from mountinfo,
    which never blocks on the mount), or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == str(path):
                    return fields[2].split(":")[1]
    except OSError:
        pass
    return None


def abort_fuse_connection(conn):
    """What `umount -f` does: fail every request of the connection, so a
    killed daemon whose own thread waits on its mount can exit."""
    if conn is None:
        return
    if not (FUSECTL / conn).exists():
        subprocess.run(["mount", "-t", "fusectl", "fusectl", str(FUSECTL)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (FUSECTL / conn / "abort").write_text("1")
    except OSError:
        pass


def run_bounded(fn, limit):
    """Run fn() in a thread; return (elapsed, result, exception). Fails the
    test if fn is still running after `limit` seconds (a hang). The stuck
    thread is released when the mount's teardown kills the daemon."""
    box = {}

    def body():
        t0 = time.monotonic()
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: B902 - reported to the caller
            box["exc"] = e
        box["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        raise AssertionError(f"operation still blocked after {limit:.0f} s (hang)")
    return box["elapsed"], box.get("result"), box.get("exc")


# --------------------------------------------------------------------------
# Time stamps

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


# --------------------------------------------------------------------------
# Data file names: the reference for DESIGN.md's rules

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


# --------------------------------------------------------------------------
# The local platform

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {len(self.body)} bytes {self.body[:200]!r}>"


class Platform:
    """scripts/altinn-localtest on a free port, with its output in files."""

    def __init__(self, workdir, seed="demo", token_lifetime=None, quiet=False, extra_args=()):
        self.workdir = Path(workdir)
        self.extra_args = list(extra_args)  # more localtest flags, e.g. --min-event-age 0
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.seed = seed
        self.token_lifetime = token_lifetime
        self.quiet = quiet
        self.proc = None
        self.url = None
        self.host = None
        self.port = None
        self.out_path = self.workdir / "localtest.out"
        self.log_path = self.workdir / "localtest.log"
        self._token = None
        self._seen = 0
        self._whole = {}  # (party, guid, data guid) -> bytes, from 200s to Range requests
        self.token_file = self.workdir / "token"

    # process ---------------------------------------------------------------
    def start(self, ready_timeout=60):
        if not LOCALTEST.exists():
            raise AssertionError(f"{LOCALTEST} does not exist (the local platform is not written yet)")
        cmd = [PYTHON, str(LOCALTEST), "--port", "0", "--seed", self.seed]
        if self.token_lifetime is not None:
            cmd += ["--token-lifetime", str(self.token_lifetime)]
        if self.quiet:
            cmd.append("--quiet")
        cmd += self.extra_args
        with open(self.out_path, "wb") as out, open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        pat = re.compile(rb"^altinn-localtest listening on (http://127\.0\.0\.1:(\d+))\s*$", re.M)
        while True:
            m = pat.search(self.out_path.read_bytes())
            if m:
                self.url = m.group(1).decode()
                self.host, self.port = "127.0.0.1", int(m.group(2))
                break
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"altinn-localtest exited with {self.proc.returncode} before it was ready:\n"
                    f"{tail(self.out_path)}\n{tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"altinn-localtest not ready after {ready_timeout} s:\n"
                                     f"{tail(self.out_path)}\n{tail(self.log_path)}")
            time.sleep(0.05)
        write_secret(self.token_file, self.token() + "\n")
        return self

    def stop(self):
        if self.proc is not None:
            reap(self.proc)

    def log_tail(self, lines=40):
        return tail(self.out_path, 10) + "\n" + tail(self.log_path, lines)

    # HTTP ------------------------------------------------------------------
    def request(self, method, path, query=None, body=None, headers=None, auth=True,
                timeout=60, content_type=None):
        if query:
            path = path + "?" + urllib.parse.urlencode(query, doseq=True)
        hdrs = dict(headers or {})
        if auth is True:
            hdrs["Authorization"] = "Bearer " + self.token()
        elif isinstance(auth, str):
            hdrs["Authorization"] = auth
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
            content_type = content_type or "application/json"
        if content_type:
            hdrs["Content-Type"] = content_type
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        except ConnectionRefusedError:
            self._check_alive()
            raise
        finally:
            conn.close()

    def _check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"altinn-localtest has exited ({self.proc.returncode}):\n"
                                 f"{self.log_tail()}")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def get_json(self, path, **kw):
        r = self.get(path, **kw)
        assert r.status == 200, f"GET {path}: {r!r}"
        return r.json()

    def token(self):
        if self._token is None:
            r = self.get("/Home/GetTestOrgToken/ttd", auth=False)
            assert r.status == 200, f"token: {r!r}"
            self._token = r.body.decode().strip()
        return self._token

    def new_token(self):
        self._token = None
        return self.token()

    # Storage ---------------------------------------------------------------
    def instances(self, app_id, party=None, size=100, **filters):
        """Every instance of a query, following `next`; returns (instances, pages)."""
        q = {"appId": app_id, "size": str(size)}
        if party is not None:
            q["instanceOwner.partyId"] = str(party)
        q.update(filters)
        path = STORAGE + "/instances?" + urllib.parse.urlencode(q)
        out, pages = [], 0
        while path:
            r = self.get(path)
            assert r.status == 200, f"GET {path}: {r!r}"
            doc = r.json()
            pages += 1
            out.extend(doc["instances"])
            nxt = doc.get("next")
            if nxt:
                u = urllib.parse.urlsplit(nxt)
                path = u.path + ("?" + u.query if u.query else "")
            else:
                path = None
            assert pages < 10000
        return out, pages

    def instance(self, party, guid):
        return self.get_json(f"{STORAGE}/instances/{party}/{guid}")

    def application(self, org, app):
        return self.get_json(f"{STORAGE}/applications/{org}/{app}", auth=False)

    def data_path(self, party, guid, data_guid):
        return f"{STORAGE}/instances/{party}/{guid}/data/{data_guid}"

    def data(self, party, guid, data_guid, start=None, end=None):
        """Bytes of a data element, or of [start, end] (inclusive)."""
        headers = {}
        key = (party, guid, data_guid)
        if start is not None and key in self._whole:
            return self._whole[key][start:None if end is None else end + 1]
        if start is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        r = self.get(self.data_path(party, guid, data_guid), headers=headers)
        assert r.status in (200, 206), f"data {data_guid}: {r!r}"
        if r.status == 200 and start is not None:
            # a platform that ignores Range (the default, as Storage): the
            # whole body, kept for the next range of it
            self._whole[key] = r.body
            return r.body[start:None if end is None else end + 1]
        return r.body

    def data_sha256(self, party, guid, data_guid):
        """Stream a (large) element and hash it."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.request("GET", self.data_path(party, guid, data_guid),
                         headers={"Authorization": "Bearer " + self.token()})
            r = conn.getresponse()
            assert r.status == 200, r.status
            h, n = hashlib.sha256(), 0
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
            return h.hexdigest(), n
        finally:
            conn.close()

    # admin -----------------------------------------------------------------
    def requests(self, since=None):
        q = {"since": str(since)} if since is not None else None
        r = self.get("/_localtest/requests", query=q, auth=False)
        assert r.status == 200, r
        entries = r.json()
        if isinstance(entries, dict):  # tolerate {"requests": [...]}
            entries = entries.get("requests", [])
        if since is not None:
            entries = [e for e in entries if e["seq"] > since]
        return entries

    def mark(self):
        """The newest request sequence number so far; pass it to since()."""
        entries = self.requests(since=self._seen)
        if entries:
            self._seen = max(e["seq"] for e in entries)
        return self._seen

    def since(self, mark):
        entries = self.requests(since=mark)
        if entries:
            self._seen = max(self._seen, max(e["seq"] for e in entries))
        return entries

    def clear_requests(self):
        r = self.request("DELETE", "/_localtest/requests", auth=False)
        assert r.status in (200, 204), r
        self._seen = 0

    def fault(self, path, count=1, **kind):
        body = {"path": path, "count": count}
        body.update(kind)
        r = self.request("POST", "/_localtest/faults", body=body, auth=False)
        assert r.status in (200, 201, 204), r
        return r

    def clear_faults(self):
        r = self.request("DELETE", "/_localtest/faults", auth=False)
        assert r.status in (200, 204), r

    def add_instance(self, app_id, party_id, data=(), guid=None, org_number="910000001",
                     person_number=None):
        """data: [(dataType, filename or None, contentType, bytes)]."""
        body = {"appId": app_id, "partyId": str(party_id)}
        if person_number:
            body["personNumber"] = person_number
        else:
            body["organisationNumber"] = org_number
        if guid:
            body["guid"] = guid
        body["data"] = []
        for dt, fn, ct, content in data:
            d = {"dataType": dt, "contentType": ct,
                 "content_b64": __import__("base64").b64encode(content).decode()}
            if fn is not None:
                d["filename"] = fn
            body["data"].append(d)
        r = self.request("POST", "/_localtest/instances", body=body, auth=False)
        assert r.status == 201, f"add instance: {r!r}"
        return r.json()

    def delete_instance(self, party, guid):
        r = self.request("DELETE", f"/_localtest/instances/{party}/{guid}", auth=False)
        assert r.status in (200, 204), r

    def put_data(self, party, guid, data_guid, content):
        r = self.request("PUT", f"/_localtest/instances/{party}/{guid}/data/{data_guid}",
                         body=bytes(content), auth=False,
                         content_type="application/octet-stream")
        assert r.status in (200, 201, 204), r
        return r


def entry_query(entry):
    """A request-log entry's query as {name: [values]}."""
    q = entry.get("query") or {}
    if isinstance(q, str):
        return urllib.parse.parse_qs(q.lstrip("?"), keep_blank_values=True)
    return {k: (v if isinstance(v, list) else [v]) for k, v in q.items()}


def query_pages(entries, app_id, party=None):
    """Instance-query requests for app_id in a slice of the request log
    (party=None: those without an instanceOwner.partyId filter)."""
    out = []
    for e in entries:
        if e["method"] != "GET" or e["path"].rstrip("/") != STORAGE + "/instances":
            continue
        q = entry_query(e)
        if q.get("appId") != [app_id]:
            continue
        if q.get("instanceOwner.partyId", [None])[0] != (None if party is None else str(party)):
            continue
        out.append(e)
    return out


# --------------------------------------------------------------------------
# The daemon

def mounted(path):
    """True when path is a mount point (from /proc, never touching the fs)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mp)
            if mp == path:
                return True
    return False


ACTIVE_MOUNTS = []


class Mount:
    """altinnfs -f --config CONF MOUNT, stdout and stderr in a log file."""

    def __init__(self, workdir, platform=None, options=None, args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / "mnt"
        self.path.mkdir(exist_ok=True)
        self.log_path = self.workdir / "altinnfs.log"
        self.conf_path = self.workdir / "altinnfs.conf"
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir(exist_ok=True)
        self.args = list(args)
        self.proc = None
        self.conn = None  # the FUSE connection number, once mounted
        self.status = None
        opts = {}
        if platform is not None:
            opts.update(platform=platform.url, apps_url=platform.url,
                        token_file=str(platform.token_file))
        opts.update({
            "apps": "ttd/soknad ttd/tilskudd",
            "state_dir": str(self.state_dir),
            "timeout": 10,
            "poll_interval": 3600,
        })
        opts.update(options or {})
        self.options = {k: v for k, v in opts.items() if v is not None}

    def write_config(self):
        lines = ["# written by tests/helpers.py"]
        lines += [f"{k} = {v}" for k, v in self.options.items()]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self, ready_timeout=10):
        self.write_config()
        cmd = [altinnfs_bin(), "-f", "--config", str(self.conf_path)] + self.args + [str(self.path)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        ACTIVE_MOUNTS.append(self)
        deadline = time.monotonic() + ready_timeout
        while not mounted(self.path):
            if self.proc.poll() is not None:
                raise AssertionError(f"altinnfs exited with {self.proc.returncode} before mounting:\n"
                                     f"{tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"altinnfs did not mount within {ready_timeout} s:\n"
                                     f"{tail(self.log_path)}")
            time.sleep(0.05)
        self.conn = fuse_connection(self.path)
        return self

    def kill9(self):
        """kill -9 of the daemon; if one of its threads is stuck on its own
        mount (a request of its own in flight), abort the connection as
        `umount -f` would, so it can exit. Then unmount."""
        kill_and_wait(self.proc, 5.0, lambda: abort_fuse_connection(self.conn))
        return self.stop()

    def __truediv__(self, rel):
        return self.path / rel

    def abort(self):
        """Watchdog: unblock anything stuck on the mount."""
        abort_fuse_connection(getattr(self, "conn", None))
        subprocess.run(["fusermount3", "-u", "-z", str(self.path)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def stop(self):
        """Unmount (lazily) and reap the daemon; returns its exit status."""
        try:
            if mounted(self.path):
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        finally:
            if self.proc is not None:
                self.status = reap(self.proc,
                                   on_stuck=lambda: abort_fuse_connection(self.conn))
            if self in ACTIVE_MOUNTS:
                ACTIVE_MOUNTS.remove(self)
        return self.status

    def log(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_report(self):
        text = self.log()
        return [m for m in SANITIZER_MARKS if m in text]

    def log_tail(self, lines=60):
        return tail(self.log_path, lines)

    def pid(self):
        return self.proc.pid


@contextlib.contextmanager
def mount_ctx(workdir, platform=None, options=None, args=()):
    """A started Mount that is always unmounted and reaped; fails on a
    sanitizer report in the daemon's log."""
    m = Mount(workdir, platform, options, args)
    try:
        m.start()
        yield m
    finally:
        m.stop()
    found = m.sanitizer_report()
    if found:
        raise AssertionError(f"sanitizer report ({', '.join(found)}) in {m.log_path}:\n"
                             f"{m.log_tail(120)}")


def listdir_b(path):
    """Directory entries as bytes (names need not be valid UTF-8)."""
    return sorted(os.listdir(os.fsencode(path)))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()
