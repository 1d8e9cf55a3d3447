"""Hostile mode: answers a wrong or compromised platform could give, switchable at run time.

Faults (faults.py) break the transport; these break the content. A scenario rewrites the
answers to matching requests (path prefix as in faults, `*` within one segment, a final `$`
for the whole path) until it is
cleared, so tests can check that the daemon's memory and time stay bounded and that one bad
record does not hide the others. Scenarios, with their parameters:

  deep_nesting   {"depth": 1900}  each instance in a query page or instance answer gets a
                                  field nested `depth` arrays deep (jansson accepts 2048)
  next_loop      {}               query pages link to each other in a circle: A -> B -> A ...
  next_growing   {"per_page": 1000}  every query page brings `per_page` new instances and a
                                  `next` link, without end
  bad_record     {"kind": "nul" | "surrogate" | "utf8" | "bigint" | "structure"}  the first
                                  instance of a query page gets one bad value: \\u0000 or a
                                  lone surrogate in a data element's filename, a raw 0xff
                                  byte in it, or a size beyond int64; "structure" cuts the
                                  page's JSON in half (no repair can save that)
  party_mix      {}               a query for one party also returns another party's instance
  same_event     {}               an events page always holds the same event, whatever the
                                  cursor asked for
  big_event      {"pad": 2097152} each event of an events page carries `pad` bytes more
  same_instance  {}               every instance creation after the first is answered with
                                  the first one's instance (POST .../instances)

  PUT /_localtest/hostile {"scenario": ..., "path": "/storage/api/v1/instances", ...}
  GET /_localtest/hostile    the scenarios in force
  DELETE /_localtest/hostile clears them
"""

import json
import re
import threading
import time
import urllib.parse
import uuid

from . import faults, web

SCENARIOS = {
    "deep_nesting": {"depth"},
    "next_loop": set(),
    "next_growing": {"per_page"},
    "bad_record": {"kind"},
    "party_mix": set(),
    "same_event": set(),
    "big_event": {"pad"},
    "same_instance": set(),
}
BAD_KINDS = ("nul", "surrogate", "utf8", "bigint", "structure")
MARK = "\u2603HOSTILE\u2603"


class Scenario:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a hostile scenario is a JSON object")
        name = spec.get("scenario")
        if name not in SCENARIOS:
            raise ValueError("scenario must be one of: %s" % ", ".join(sorted(SCENARIOS)))
        unknown = set(spec) - {"scenario", "path"} - SCENARIOS[name]
        if unknown:
            raise ValueError("unknown field(s) for %s: %s" % (name, ", ".join(sorted(unknown))))
        self.name = name
        self.spec = dict(spec)
        self.path = spec.get("path") or "/"
        if isinstance(self.path, str):
            faults.refuse_regex(self.path)
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError("path must be a string starting with /")
        exact = self.path.endswith("$")
        pattern = "[^/]*".join(re.escape(p) for p in self.path.rstrip("$").split("*"))
        self._regex = re.compile(pattern + ("$" if exact else ""))
        self.depth = spec.get("depth", 1900)
        self.per_page = spec.get("per_page", 1000)
        self.kind = spec.get("kind", "nul")
        self.pad = spec.get("pad", 2 << 20)
        if not isinstance(self.depth, int) or not 1 <= self.depth <= 100000:
            raise ValueError("depth must be an integer from 1 to 100000")
        if not isinstance(self.per_page, int) or not 1 <= self.per_page <= 10000:
            raise ValueError("per_page must be an integer from 1 to 10000")
        if not isinstance(self.pad, int) or not 0 <= self.pad <= 64 << 20:
            raise ValueError("pad must be an integer from 0 to 67108864")
        if self.kind not in BAD_KINDS:
            raise ValueError("kind must be one of: %s" % ", ".join(BAD_KINDS))
        self.served = 0
        self.first = None

    def matches(self, path):
        return self._regex.match(path) is not None

    def to_json(self):
        return dict(self.spec, served=self.served)


def _json_body(response):
    if response.status != 200 or response.content is not None:
        return None
    if "json" not in (response.header("Content-Type") or ""):
        return None
    try:
        return json.loads(response.body)
    except ValueError:
        return None


def _answer(doc, raw=None):
    body = raw if raw is not None else json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return web.Response(200, [("Content-Type", "application/json; charset=utf-8")], body)


def _with_token(req, token):
    pairs = [(k, v) for k, v in req.query if k != "continuationToken"]
    pairs.append(("continuationToken", token))
    return req.base_url + req.path + "?" + urllib.parse.urlencode(pairs)


def _instances(doc):
    if isinstance(doc, dict) and isinstance(doc.get("instances"), list):
        return doc["instances"]
    if isinstance(doc, dict) and "id" in doc and "instanceOwner" in doc:
        return [doc]
    return []


def _fake_instance(template, party):
    guid = str(uuid.uuid4())
    inst = json.loads(json.dumps(template))
    inst["id"] = "%s/%s" % (party, guid)
    inst.setdefault("instanceOwner", {})["partyId"] = str(party)
    for el in inst.get("data") or []:
        el["id"] = str(uuid.uuid4())
        el["instanceGuid"] = guid
    return inst


def deep_nesting(sc, req, doc):
    insts = _instances(doc)
    for inst in insts:
        inst["hostile"] = MARK
    raw = json.dumps(doc, ensure_ascii=False)
    nest = "[" * sc.depth + "]" * sc.depth
    return _answer(None, raw.replace(json.dumps(MARK, ensure_ascii=False), nest).encode())


def next_loop(sc, req, doc):
    token = getattr(req, "hostile_token", None)
    doc["next"] = _with_token(req, "loop-B" if token == "loop-A" else "loop-A")
    return _answer(doc)


def next_growing(sc, req, doc):
    template = _instances(doc)[0] if _instances(doc) else {
        "instanceOwner": {}, "appId": "ttd/soknad", "org": "ttd", "data": []}
    doc["instances"] = [_fake_instance(template, 900000 + i % 97) for i in range(sc.per_page)]
    doc["count"] = sc.per_page
    doc["next"] = _with_token(req, "grow-%d" % (sc.served + 1))
    return _answer(doc)


def bad_record(sc, req, doc):
    insts = _instances(doc)
    if not insts:
        return None
    bad = insts[0]
    if sc.kind == "structure":
        raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        return _answer(None, raw[:len(raw) // 2])
    if sc.kind == "bigint":
        bad["size"] = MARK
        for el in bad.get("data") or []:
            el["size"] = MARK
        raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        return _answer(None, raw.replace(json.dumps(MARK, ensure_ascii=False).encode("utf-8"),
                                         b"99999999999999999999999"))
    els = bad.get("data") or []
    if els:
        els[0]["filename"] = "bad" + MARK + ".txt"
    else:
        bad["hostileNote"] = "bad" + MARK
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    evil = {"nul": b"\\u0000", "surrogate": b"\\ud800", "utf8": b"\xff"}[sc.kind]
    return _answer(None, raw.replace(MARK.encode("utf-8"), evil))


def party_mix(sc, req, doc):
    party = req.arg("instanceOwner.partyId")
    insts = _instances(doc)
    if not party or not insts or "instances" not in doc:
        return None
    doc["instances"].append(_fake_instance(insts[0], int(party) + 1))
    doc["count"] = len(doc["instances"])
    return _answer(doc)


def same_event(sc, req, response):
    ev = {"specversion": "1.0", "id": "0ddba11e-0000-4000-8000-000000000001",
          "source": req.base_url + "/ttd/soknad/instances/50001/"
                    "0ddba11e-0000-4000-8000-0000000000ff",
          "type": "app.instance.created", "subject": "/party/50001",
          "time": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())}
    ctype = response.header("Content-Type") or "application/cloudevents+json"
    return web.Response(200, [("Content-Type", ctype)], json.dumps([ev]).encode("utf-8"))


REWRITE = {"deep_nesting": deep_nesting, "next_loop": next_loop,
           "next_growing": next_growing, "bad_record": bad_record, "party_mix": party_mix}
def big_event(sc, req, doc):
    if not isinstance(doc, list):
        return None
    for ev in doc:
        if isinstance(ev, dict):
            ev["data"] = {"pad": "x" * sc.pad}
    return web.Response(200, [("Content-Type", "application/cloudevents+json")],
                        json.dumps(doc).encode("utf-8"))


REWRITE["big_event"] = big_event
def same_instance(sc, req, response):
    if req.method != "POST" or response.status != 201:
        return response
    if sc.first is None:
        sc.first = response
    return sc.first


RAW = {"same_event": same_event, "same_instance": same_instance}  # these take the platform's answer as it is


class Hostile:
    def __init__(self):
        self._lock = threading.Lock()
        self._scenarios = []

    def put(self, spec):
        sc = Scenario(spec)
        with self._lock:
            self._scenarios.append(sc)
        return sc

    def list(self):
        with self._lock:
            return [s.to_json() for s in self._scenarios]

    def clear(self):
        with self._lock:
            self._scenarios = []

    def route(self, req, handle):
        """handle(req)'s answer as the scenario in force for this request would have it."""
        with self._lock:
            sc = next((s for s in self._scenarios if s.matches(req.path)), None)
        if sc is None:
            return handle(req)
        token = req.arg("continuationToken") or ""
        if token.startswith(("loop-", "grow-")):
            # our own links: the platform would not know them, so answer
            # its first page and let the scenario link on
            req.query = [(k, v) for k, v in req.query if k != "continuationToken"]
            req.query_string = urllib.parse.urlencode(req.query)
            req.hostile_token = token
        response = handle(req)
        if sc.name in RAW:
            out = RAW[sc.name](sc, req, response)
            with self._lock:
                sc.served += 1
            return out
        doc = _json_body(response)
        if doc is None:
            return response
        out = REWRITE[sc.name](sc, req, doc)
        if out is None:
            return response
        with self._lock:
            sc.served += 1
        return out


def register(router, platform, prefix):
    def get(req):
        return web.json_response(platform.hostile.list())

    def put(req):
        try:
            sc = platform.hostile.put(req.json())
        except ValueError as e:
            return web.problem(400, "Bad hostile scenario", str(e))
        return web.json_response(sc.to_json(), status=201)

    def clear(req):
        platform.hostile.clear()
        return web.empty(204)

    router.add("GET", prefix + "/hostile", get, auth=False)
    router.add("PUT", prefix + "/hostile", put, auth=False)
    router.add("DELETE", prefix + "/hostile", clear, auth=False)
