"""The local platform (scripts/altinn-localtest) for the pytest suite:
one on a free port, its requests and its answers, and the query pages a
listing must cost. Platform.stop() always reaps what it started."""

import hashlib
import http.client
import json
import os
import re
import subprocess
import time
import urllib.parse
from pathlib import Path

from procs import PYTHON, REPO, reap, tail, write_secret


LOCALTEST = REPO / "scripts" / "altinn-localtest"
STORAGE = "/storage/api/v1"


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
        """Adds a fault rule (path is a glob: the platform refuses regex syntax);
        the answer's JSON has the rule's id for fault_hits."""
        body = {"path": path, "count": count}
        body.update(kind)
        r = self.request("POST", "/_localtest/faults", body=body, auth=False)
        assert r.status in (200, 201, 204), r
        return r

    def fault_hits(self, rule):
        """How many requests the rule (its id, or fault()'s answer) has matched."""
        rule_id = rule if isinstance(rule, int) else rule.json()["id"]
        r = self.request("GET", f"/_localtest/faults/{rule_id}", auth=False)
        assert r.status == 200, r
        return r.json()["hits"]

    def unfired_faults(self):
        """The rules added since the last clear that no request has matched."""
        r = self.request("GET", "/_localtest/faults", query={"all": "1"}, auth=False)
        assert r.status == 200, r
        return [rule for rule in r.json() if rule["hits"] == 0]

    def assert_faults_fired(self):
        """Fails when a fault added since the last clear never fired: a test
        whose fault matched nothing has not tested what it says."""
        unfired = self.unfired_faults()
        assert not unfired, f"fault rule(s) that never fired: {unfired}"

    def clear_faults(self):
        """Clears the rules; returns those that never fired. With FAULT_AUDIT=FILE
        in the environment each clear appends them, with the test's name, to FILE:
        an audit of a whole run for faults that tested nothing."""
        r = self.request("DELETE", "/_localtest/faults", auth=False)
        assert r.status in (200, 204), r
        unfired = r.json()["unfired"] if r.status == 200 else []
        if unfired and os.environ.get("FAULT_AUDIT"):
            with open(os.environ["FAULT_AUDIT"], "a") as f:
                f.write(f"{os.environ.get('PYTEST_CURRENT_TEST')}: {unfired}\n")
        return unfired

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

    def change_instances(self, ids, last_changed=None, hard_delete=False):
        """Behind the daemon's back: each "party/guid" in ids gets a new lastChanged (now,
        or last_changed for all: ties) and, with hard_delete, Storage's hard-delete marks.
        Returns the lastChanged values given."""
        body = {"ids": list(ids), "hardDelete": bool(hard_delete)}
        if last_changed is not None:
            body["lastChanged"] = last_changed
        r = self.request("POST", "/_localtest/instances/change", body=body, auth=False)
        assert r.status == 200, r
        return r.json()["lastChanged"]

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
