"""The local platform's Events API (altinn-api.md section 4): polling with
after/next, the minimum event age, type wildcards, auth; subscriptions,
their validation and webhook delivery with retries; and the speed the
daemon's event tests and benchmarks rely on.

Runs against a platform of its own (own_platform), switched to
minEventAge 0, webhookRetryScale 0.01 and http webhooks on loopback
through the admin settings (the same as the CLI flags, checked once)."""

import http.server
import json
import re
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

from localplatform import LOCALTEST, entry_query
from procs import PYTHON, reap
from reference import iso_seconds

EVENTS = "/events/api/v1"
SUBS = EVENTS + "/subscriptions"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
SETTINGS = {"minEventAge": 0, "webhookRetryScale": 0.01, "allowHttpWebhooks": True}


@pytest.fixture(scope="module")
def lt(own_platform):
    r = own_platform.request("PUT", "/_localtest/events/settings", body=SETTINGS, auth=False)
    assert r.status == 200, r
    assert r.json() == SETTINGS
    return own_platform


@pytest.fixture
def app_name():
    """A fresh app name: its events resource is empty."""
    return "ev" + uuid.uuid4().hex[:10]


@pytest.fixture
def settings(lt):
    """Change event settings for one test; they are put back afterwards."""
    def change(**kw):
        r = lt.request("PUT", "/_localtest/events/settings", body=kw, auth=False)
        assert r.status == 200, r
    yield change
    change(**SETTINGS)


@pytest.fixture
def receiver(lt):
    rec = Receiver()
    yield rec
    r = lt.request("DELETE", "/_localtest/subscriptions", auth=False)
    assert r.status == 204
    rec.close()


def publish(p, app, type_="app.instance.created", party="500100", count=1, guid=None,
            org="ttd"):
    body = {"org": org, "app": app, "type": type_, "partyId": party, "count": count}
    if guid:
        body["instanceGuid"] = guid
    r = p.request("POST", "/_localtest/events", body=body, auth=False)
    assert r.status == 201, r
    ids = r.json()["ids"]
    assert len(ids) == count
    return ids


def poll(p, app, token=None, headers=None, org="ttd", **query):
    hdrs = dict(headers or {})
    auth = True if token is None else "Bearer " + token
    return p.get(f"{EVENTS}/app/{org}/{app}", query=query or None, headers=hdrs, auth=auth)


def path_of(url):
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def token(p, path):
    r = p.get(path, auth=False)
    assert r.status == 200, r
    return r.body.decode().strip()


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Receiver:
    """A webhook endpoint on 127.0.0.1: records each POST; `fail` makes the
    next N answers 500."""

    def __init__(self):
        self.cond = threading.Condition()
        self.posts = []
        self.fail = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.cond:
                    status = 500 if outer.fail > 0 else 200
                    outer.fail = max(0, outer.fail - 1)
                    outer.posts.append({"at": time.time(), "path": self.path,
                                        "headers": dict(self.headers), "raw": body,
                                        "json": json.loads(body), "status": status})
                    outer.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/hook?code=s3cret" % self.server.server_address[1]

    def events(self):
        with self.cond:
            return [p["json"] for p in self.posts
                    if p["json"].get("type") != "platform.events.validatesubscription"]

    def wait(self, pred, timeout=20.0, what="webhook posts"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.posts):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}: {len(self.posts)} posts")
                self.cond.wait(left)
            return list(self.posts)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def attempts(p, event_id, at_least=1):
    """The webhook log entries for one event (validation: None), or None
    while there are fewer than `at_least`."""
    log = [e for e in p.get_json("/_localtest/webhooks", auth=False) if e["eventId"] == event_id]
    return log if len(log) >= at_least else None


def subscribe(p, body, token_=None, expect=201):
    auth = True if token_ is None else "Bearer " + token_
    r = p.request("POST", SUBS, body=body, auth=auth)
    assert r.status == expect, r
    return r


def validated_subscription(p, rec, app, **filters):
    body = {"endPoint": rec.url, "resourceFilter": f"urn:altinn:resource:app_ttd_{app}"}
    body.update(filters)
    sub = subscribe(p, body).json()
    wait_for(lambda: p.get_json(f"{SUBS}/{sub['id']}")["validated"], what="validation")
    return sub


# -- the command line -------------------------------------------------------------

def test_cli_flags(tmp_path):
    out = subprocess.run([PYTHON, str(LOCALTEST), "--help"], capture_output=True, text=True)
    for flag in ("--min-event-age", "--allow-http-webhooks", "--webhook-retry-scale"):
        assert flag in out.stdout
    proc = subprocess.Popen([PYTHON, str(LOCALTEST), "--port", "0", "--seed", "none", "--quiet",
                             "--min-event-age", "2.5", "--allow-http-webhooks",
                             "--webhook-retry-scale", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        url = proc.stdout.readline().split()[-1]
        with __import__("urllib.request").request.urlopen(url + "/_localtest/events/settings",
                                                          timeout=10) as r:
            assert json.load(r) == {"minEventAge": 2.5, "webhookRetryScale": 0.01,
                                    "allowHttpWebhooks": True}
    finally:
        reap(proc)


# -- polling ----------------------------------------------------------------------

def test_event_shape(lt, app_name):
    guid = str(uuid.uuid4())
    [eid] = publish(lt, app_name, party="500100", guid=guid)
    r = poll(lt, app_name, after="0")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json")
    [ev] = r.json()
    assert ev["id"] == eid and GUID.match(eid)
    assert ev["specversion"] == "1.0"
    assert TIME7.match(ev["time"]) and abs(iso_seconds(ev["time"]) - time.time()) < 60
    assert ev["source"] == f"{lt.url}/ttd/{app_name}/instances/500100/{guid}"
    assert ev["type"] == "app.instance.created"
    assert ev["subject"] == "/party/500100"
    # seed party 500100 is an organisation (even parties)
    assert re.match(r"^/(org|person)/\d+$", ev["alternativesubject"])
    assert ev["resource"] == f"urn:altinn:resource:app_ttd_{app_name}"
    assert ev["resourceinstance"] == f"500100/{guid}"
    assert "data" not in ev and "datacontenttype" not in ev


def test_paging_after_and_next(lt, app_name):
    ids = publish(lt, app_name, count=7)
    r = poll(lt, app_name, after=str(uuid.uuid4()), size="3")   # unknown id: from the start
    pages, nexts = [], []
    while True:
        assert r.status == 200, r
        page = r.json()
        pages.append([e["id"] for e in page])
        nexts.append(r.header("next"))
        if not page:
            break
        nxt = r.header("next")
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)
        assert nxt.startswith(f"{lt.url}{EVENTS}/app/ttd/{app_name}?after=")
        assert q["after"] == [page[-1]["id"]] and q["size"] == ["3"]
        r = lt.get(path_of(nxt))
    assert pages == [ids[0:3], ids[3:6], ids[6:7], []]
    assert all(nexts[:3]) and nexts[3] is None        # the last page has next, empty has not

    # after a known id continues after it; after the last id gives an empty page
    assert [e["id"] for e in poll(lt, app_name, after=ids[4]).json()] == ids[5:]
    r = poll(lt, app_name, after=ids[-1])
    assert r.status == 200 and r.json() == [] and r.header("next") is None
    assert r.body == b"[]"
    # default size is 50
    many = publish(lt, app_name, count=60)
    assert len(poll(lt, app_name, after=ids[-1]).json()) == 50
    assert [e["id"] for e in poll(lt, app_name, after=many[49]).json()] == many[50:]


def test_next_repeats_other_parameters_unencoded(lt, app_name):
    publish(lt, app_name, count=2)
    r = poll(lt, app_name, after="0", size="1", type=["app.instance.%", "x y"])
    nxt = r.header("next")
    assert nxt.endswith("&size=1&type=app.instance.%&type=x y"), nxt


def test_from_to_and_party(lt, app_name):
    a = publish(lt, app_name, party="500100", count=2)
    b = publish(lt, app_name, party="500101", count=2)
    r = poll(lt, app_name, after="0", party="500101")
    assert [e["id"] for e in r.json()] == b
    assert poll(lt, app_name, after="0", unit="123456789").status == 404   # no such party
    owner = poll(lt, app_name, after="0").json()[0]["alternativesubject"]   # party 500100's
    kind, number = owner.strip("/").split("/")
    q = {"unit": number} if kind == "org" else {}
    hdr = {"person": number} if kind == "person" else {}
    assert [e["id"] for e in poll(lt, app_name, after="0", headers=hdr, **q).json()] == a
    first, last = (poll(lt, app_name, after="0").json()[i]["time"] for i in (0, -1))
    r = poll(lt, app_name, **{"from": first})
    assert [e["id"] for e in r.json()] == a + b
    r = poll(lt, app_name, **{"from": "2020-01-01T00:00:00Z", "to": first})
    assert [e["id"] for e in r.json()] == a[:1]
    r = poll(lt, app_name, **{"from": last.replace("Z", "+00:00")})
    assert [e["id"] for e in r.json()] == b[-1:]


def test_type_filter_ilike(lt, app_name):
    types = ["app.instance.created", "app.instance.process.movedTo.Task_2",
             "app.instance.process.completed", "app.instance.substatus.changed", "custom.thing"]
    ids = {t: publish(lt, app_name, type_=t)[0] for t in types}

    def got(*patterns):
        r = poll(lt, app_name, after="0", type=list(patterns))
        assert r.status == 200, r
        return {e["type"] for e in r.json()}

    assert got("app.instance.process.%") == set(types[1:3])
    assert got("APP.INSTANCE.CREATED") == {types[0]}
    assert got("app.instance.created", "custom.%") == {types[0], types[4]}
    assert got("%movedto.task\\_2") == {types[1]}
    assert got("app.instance.su_status.changed") == {types[3]}
    assert got("app.instance") == set()
    assert len(ids) == 5


def test_min_event_age(lt, app_name, settings):
    settings(minEventAge=0.5)
    old = publish(lt, app_name)
    time.sleep(0.6)
    new = publish(lt, app_name)
    r = poll(lt, app_name, after="0")
    assert [e["id"] for e in r.json()] == old
    wait_for(lambda: [e["id"] for e in poll(lt, app_name, after=old[0]).json()] == new,
             timeout=5, what="the young event")


def test_auth(lt, app_name):
    publish(lt, app_name)
    assert poll(lt, app_name, after="0", token="not-a-token").status == 401
    r = lt.get(f"{EVENTS}/app/ttd/{app_name}", query={"after": "0"}, auth=False)
    assert r.status == 401 and r.header("WWW-Authenticate") == "Bearer"
    user = token(lt, "/Home/GetTestUserToken/1337?partyId=500100")
    r = poll(lt, app_name, after="0", token=user)
    assert r.status == 401 and r.body == b"Only orgs can call this api"
    other = token(lt, "/Home/GetTestOrgToken/digdir")
    r = poll(lt, app_name, after="0", token=other)
    assert r.status == 200 and r.json() == [] and r.header("next") is None
    assert len(poll(lt, app_name, after="0").json()) == 1


@pytest.mark.parametrize("query,detail", [
    ({}, "The 'From' or 'After' parameter must be defined."),
    ({"after": ""}, "The 'From' or 'After' parameter must be defined."),
    ({"from": "2024-01-01T00:00:00"}, "The 'From' parameter must specify timezone."),
    ({"after": "0", "to": "2024-01-01"}, "The 'To' parameter must specify timezone."),
    ({"after": "0", "size": "0"}, "The 'Size' parameter must be a number larger that 0."),
    ({"after": "0", "party": "5", "unit": "123456789"},
     "Only one of 'Party' or 'Unit' can be defined."),
    ({"after": "0", "unit": "12345"}, "Value of 'Unit' needs to be exactly 9 digits."),
    ({"after": "0", "size": "abc"}, None),
    ({"after": "0", "party": "x"}, None),
    ({"from": "yesterday"}, None),
])
def test_bad_poll_is_400(lt, query, detail):
    r = lt.get(f"{EVENTS}/app/ttd/soknad", query=query)
    assert r.status == 400, r
    assert r.header("Content-Type").startswith("application/problem+json")
    doc = r.json()
    assert doc["status"] == 400
    if detail:
        assert doc["detail"].startswith(detail) and doc["traceId"].startswith("00-")
    else:
        assert doc["errors"]


def test_generic_events_endpoint(lt, app_name):
    ids = publish(lt, app_name, count=3)
    resource = f"urn:altinn:resource:app_ttd_{app_name}"
    r = lt.get(f"{EVENTS}/events", query={"resource": resource, "after": "0"})
    assert r.status == 403                      # needs altinn:events.subscribe
    tok = token(lt, "/Home/GetTestOrgToken/ttd?scopes=altinn:events.subscribe")
    auth = "Bearer " + tok
    r = lt.get(f"{EVENTS}/events", query={"resource": resource, "after": "0", "size": "2"},
               auth=auth)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/cloudevents+json")
    assert [e["id"] for e in r.json()] == ids[:2]
    r = lt.get(path_of(r.header("next")), auth=auth)
    assert [e["id"] for e in r.json()] == ids[2:]
    r = lt.get(f"{EVENTS}/events", query={"resource": resource, "after": "0", "size": "0",
                                          "type": "APP.%"}, auth=auth)
    assert r.json() == []                       # LIKE here is case-sensitive
    for query in ({"after": "0"}, {"resource": resource}, {"resource": "x", "after": "0"}):
        assert lt.get(f"{EVENTS}/events", query=query, auth=auth).status == 400


def test_retention_90_days():
    """In-process, with a clock: events older than 90 days are gone, and an
    `after` that pointed at one of them replays from the oldest kept."""
    import sys
    sys.path.insert(0, str(LOCALTEST.parent))
    from localtest import dates, eventstore

    now = [dates.now_ticks()]
    store = eventstore.EventStore(clock=lambda: now[0])
    spec = dict(org="ttd", app="a", event_type="t", party_id="1", instance_guid=str(uuid.uuid4()))
    old = store.publish([spec, spec])
    now[0] += 89 * 86400 * dates.TICKS_PER_SECOND
    mid = store.publish([spec])
    now[0] += 2 * 86400 * dates.TICKS_PER_SECOND
    new = store.publish([spec])
    q = eventstore.Query("urn:altinn:resource:app_ttd_a", after=old[0].id)
    assert [e.id for e in store.find(q)] == [e.id for e in mid + new]
    assert store.get(old[1].id) is None and store.count() == 2


def test_polls_are_in_the_request_log(lt, app_name):
    mark = lt.mark()
    poll(lt, app_name, after="0", size="5")
    [e] = [e for e in lt.since(mark) if e["path"].startswith(EVENTS)]
    assert e["path"] == f"{EVENTS}/app/ttd/{app_name}" and e["status"] == 200
    assert entry_query(e)["size"] == ["5"]


def test_admin_instance_creation_emits_created(lt):
    inst = lt.add_instance("ttd/tilskudd", 50077, org_number="910000077")
    party, guid = inst["id"].split("/")
    try:
        r = poll(lt, "tilskudd", after="0", party=party)
        evs = [e for e in r.json() if e["resourceinstance"] == inst["id"]]
        assert [e["type"] for e in evs] == ["app.instance.created"]
        assert evs[0]["alternativesubject"] == "/org/910000077"
    finally:
        lt.delete_instance(party, guid)


def test_app_api_emits_events(lt, receiver):
    validated_subscription(lt, receiver, "soknad", subjectFilter="/party/500102")
    r = lt.request("POST", "/ttd/soknad/instances",
                   body={"instanceOwner": {"partyId": "500102"}})
    assert r.status == 201, r
    path = "/ttd/soknad/instances/" + r.json()["id"]
    assert lt.request("PUT", path + "/process/next").status == 200
    assert lt.request("PUT", path + "/substatus", body={"label": "mottatt"}).status == 200
    assert lt.request("PUT", path + "/process/next").status == 200
    want = ["app.instance.created", "app.instance.process.movedTo.Task_2",
            "app.instance.substatus.changed", "app.instance.process.completed"]
    evs = [e for e in poll(lt, "soknad", after="0", party="500102").json()
           if e["resourceinstance"] == r.json()["id"]]
    assert [e["type"] for e in evs] == want
    receiver.wait(lambda posts: len(posts) >= 5)
    assert receiver.events() == evs


def test_clear_events(platform_factory):
    p = platform_factory(seed="none")
    p.request("PUT", "/_localtest/events/settings", body=SETTINGS, auth=False)
    ids = publish(p, "x", count=2)
    assert p.get_json("/_localtest/events", auth=False)["count"] == 2
    assert p.request("DELETE", "/_localtest/events", auth=False).status == 204
    assert poll(p, "x", after="0").json() == []
    new = publish(p, "x")
    assert [e["id"] for e in poll(p, "x", after=ids[0]).json()] == new


# -- subscriptions ----------------------------------------------------------------

def test_subscription_create_get_list_delete(lt, receiver, app_name):
    body = {"endPoint": receiver.url, "sourceFilter": f"{lt.url}/ttd/{app_name}",
            "typeFilter": "app.instance.created"}
    r = subscribe(lt, body)
    sub = r.json()
    assert r.header("Location") == f"{SUBS[:-1]}/{sub['id']}"     # singular, as the platform
    assert isinstance(sub["id"], int)
    assert sub["endPoint"] == receiver.url
    assert sub["sourceFilter"] == body["sourceFilter"]
    assert sub["resourceFilter"] == f"urn:altinn:resource:app_ttd_{app_name}"
    assert sub["typeFilter"] == "app.instance.created"
    assert "subjectFilter" not in sub
    assert sub["consumer"] == sub["createdBy"] == "/org/ttd"
    assert sub["validated"] is False and sub["includeSubunits"] is False
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", sub["created"])

    assert subscribe(lt, body).json()["id"] == sub["id"]              # identical: the same
    listing = lt.get_json(SUBS)
    assert listing["count"] == len(listing["subscriptions"]) >= 1
    assert sub["id"] in [s["id"] for s in listing["subscriptions"]]
    other = "Bearer " + token(lt, "/Home/GetTestOrgToken/digdir")
    assert lt.get(SUBS, auth=other).json() == {"count": 0, "subscriptions": []}
    assert lt.get(f"{SUBS}/{sub['id']}", auth=other).status == 403
    assert lt.request("DELETE", f"{SUBS}/{sub['id']}", auth=other).status == 403
    assert lt.get(f"{SUBS}/999999").status == 404
    assert lt.get(f"{SUBS}/abc").status == 400
    r = lt.request("DELETE", f"{SUBS}/{sub['id']}")
    assert r.status == 200 and r.body == b""
    assert lt.get(f"{SUBS}/{sub['id']}").status == 404


@pytest.mark.parametrize("body,status,message", [
    ({"endPoint": "https://example.com/hook"}, 403, None),       # no filter: not an app
    ({"resourceFilter": "urn:altinn:resource:app_ttd_a"}, 400,
     "Missing or invalid endpoint to push events towards"),
    ({"endPoint": "http://example.com/hook", "resourceFilter": "urn:altinn:resource:app_ttd_a"},
     400, "Missing or invalid endpoint to push events towards"),
    ({"endPoint": "/relative", "resourceFilter": "urn:altinn:resource:app_ttd_a"},
     400, "Missing or invalid endpoint to push events towards"),
    ({"endPoint": "https://example.com/h", "sourceFilter": "http://example.com/ttd/a"},
     400, "SourceFilter must be an absolute URL with the https scheme."),
    ({"endPoint": "https://example.com/h", "sourceFilter": "https://ttd.apps.example.com/ttd/a/"},
     400, "A valid app id is required in source filter {environment}/{org}/{app}"),
    ({"endPoint": "https://example.com/h", "sourceFilter": "https://ttd.apps.example.com/ttd/a",
      "resourceFilter": "urn:altinn:resource:app_ttd_b"},
     400, "Provided resource filter and source filter are not compatible"),
    ({"endPoint": "https://example.com/h", "resourceFilter": "urn:altinn:resource:App_TTD"},
     400, "Resource filter must be a valid urn"),
    ({"endPoint": "https://example.com/h", "resourceFilter": "urn:altinn:resource:app_digdir_a"},
     403, "Not authorized to create a subscription for resource "
          "urn:altinn:resource:app_digdir_a."),
])
def test_subscription_rules(lt, body, status, message):
    r = subscribe(lt, body, expect=status)
    if message is None:
        assert r.body == b""
    else:
        assert r.header("Content-Type").startswith("text/plain")
        assert r.body.decode() == message


def test_http_endpoints_need_the_flag(lt, settings):
    body = {"endPoint": "http://127.0.0.1:9/hook", "resourceFilter":
            "urn:altinn:resource:app_ttd_flagtest"}
    settings(allowHttpWebhooks=False)
    assert subscribe(lt, body, expect=400).body.startswith(b"Missing or invalid endpoint")
    settings(allowHttpWebhooks=True)
    sub = subscribe(lt, body).json()
    assert lt.request("DELETE", f"{SUBS}/{sub['id']}").status == 200


def test_user_subscriptions_need_their_own_subject(lt):
    user = token(lt, "/Home/GetTestUserToken/1337?partyId=500100")
    base = {"endPoint": "http://127.0.0.1:9/h", "resourceFilter": "urn:altinn:resource:app_ttd_a"}
    r = subscribe(lt, base, token_=user, expect=400)
    assert r.body == b"A valid subject to the authenticated identity is required"
    subscribe(lt, dict(base, subjectFilter="/party/500101"), token_=user, expect=403)
    sub = subscribe(lt, dict(base, subjectFilter="/party/500100"), token_=user).json()
    assert sub["consumer"] == "/user/1337" and sub["subjectFilter"] == "/party/500100"
    assert lt.request("DELETE", f"{SUBS}/{sub['id']}", auth="Bearer " + user).status == 200
    # an alternative subject is looked up and becomes the subject filter
    owner = lt.instances("ttd/soknad", party=500100)[0][0]["instanceOwner"]
    alt = ("/org/" + owner["organisationNumber"] if "organisationNumber" in owner
           else "/person/" + owner["personNumber"])
    sub = subscribe(lt, dict(base, alternativeSubjectFilter=alt), token_=user).json()
    assert sub["subjectFilter"] == "/party/500100" and "alternativeSubjectFilter" not in sub
    assert lt.request("DELETE", f"{SUBS}/{sub['id']}", auth="Bearer " + user).status == 200
    r = subscribe(lt, dict(base, alternativeSubjectFilter="/org/123"), token_=user, expect=400)
    assert r.body == b"A valid subject to the authenticated identity is required"


# -- webhooks ---------------------------------------------------------------------

def test_validation_then_one_event_per_post(lt, receiver, app_name):
    sub = subscribe(lt, {"endPoint": receiver.url,
                         "resourceFilter": f"urn:altinn:resource:app_ttd_{app_name}"}).json()
    [v] = receiver.wait(lambda posts: posts, what="validation")
    assert v["path"] == "/hook?code=s3cret"
    assert v["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert "Authorization" not in v["headers"]
    assert set(v["json"]) == {"id", "source", "type", "specversion"}
    assert v["json"]["type"] == "platform.events.validatesubscription"
    assert v["json"]["source"] == f"{lt.url}{SUBS}/{sub['id']}"
    assert v["json"]["specversion"] == "1.0" and GUID.match(v["json"]["id"])
    wait_for(lambda: lt.get_json(f"{SUBS}/{sub['id']}")["validated"], what="validated")

    ids = publish(lt, app_name, count=3)
    publish(lt, "other" + app_name)                       # another resource: not pushed
    posts = receiver.wait(lambda posts: len(posts) >= 4)
    time.sleep(0.2)
    assert len(receiver.posts) == 4
    for post, eid in zip(posts[1:], ids):
        assert isinstance(post["json"], dict)             # one CloudEvent, not an array
        assert post["json"]["id"] == eid
        assert post["headers"]["Content-Type"] == "application/json; charset=utf-8"
    polled = poll(lt, app_name, after="0").json()
    assert [p["json"] for p in posts[1:]] == polled      # the same documents as polling


def test_nothing_before_validation(lt, receiver, app_name):
    receiver.fail = 3
    sub = subscribe(lt, {"endPoint": receiver.url,
                         "resourceFilter": f"urn:altinn:resource:app_ttd_{app_name}"}).json()
    early = publish(lt, app_name)
    posts = receiver.wait(lambda posts: len(posts) >= 4, what="validation retries")
    assert [p["status"] for p in posts] == [500, 500, 500, 200]
    assert {p["json"]["type"] for p in posts} == {"platform.events.validatesubscription"}
    assert len({p["json"]["id"] for p in posts}) == 1
    wait_for(lambda: lt.get_json(f"{SUBS}/{sub['id']}")["validated"], what="validated")
    late = publish(lt, app_name)
    receiver.wait(lambda posts: len(posts) >= 5)
    time.sleep(0.2)
    assert [e["id"] for e in receiver.events()] == late
    assert early != late
    log = lt.get_json("/_localtest/webhooks", query={"subscription": sub["id"]}, auth=False)
    log = [e for e in log if e["eventId"] is None]
    assert [(e["attempt"], e["status"], e["outcome"]) for e in log] == [
        (1, 500, "retry"), (2, 500, "retry"), (3, 500, "retry"), (4, 200, "delivered")]


def test_retries_on_500_then_success(lt, receiver, app_name):
    sub = validated_subscription(lt, receiver, app_name)
    receiver.fail = 2
    [eid] = publish(lt, app_name)
    posts = receiver.wait(lambda posts: len(posts) >= 4)
    tries = [p for p in posts if p["json"].get("id") == eid]
    assert [p["status"] for p in tries] == [500, 500, 200]
    assert tries[1]["at"] - tries[0]["at"] >= 0.09            # 10 s x 0.01
    assert tries[2]["at"] - tries[1]["at"] >= 0.29            # 30 s x 0.01
    log = wait_for(lambda: attempts(lt, eid, at_least=3), what="the third attempt logged")
    assert [(e["subscriptionId"], e["attempt"], e["status"], e["outcome"]) for e in log] == [
        (sub["id"], 1, 500, "retry"), (sub["id"], 2, 500, "retry"),
        (sub["id"], 3, 200, "delivered")]
    assert all(TIME7.match(e["time"]) for e in log)


def test_dead_letter_after_twelve_attempts(lt, receiver, app_name, settings):
    validated_subscription(lt, receiver, app_name)
    settings(webhookRetryScale=0)
    receiver.fail = 1000
    [eid] = publish(lt, app_name)
    log = wait_for(lambda: attempts(lt, eid, at_least=12), what="twelve attempts")
    assert [e["attempt"] for e in log] == list(range(1, 13))
    assert [e["outcome"] for e in log] == ["retry"] * 11 + ["dead-letter"]
    time.sleep(0.1)
    assert len([p for p in receiver.posts if p["json"].get("id") == eid]) == 12


def test_type_and_subject_filters(lt, receiver, app_name):
    validated_subscription(lt, receiver, app_name, typeFilter="app.instance.process.completed",
                           subjectFilter="/party/500101")
    validated_subscription(lt, receiver, app_name, typeFilter="")     # matches nothing
    publish(lt, app_name, type_="app.instance.created", party="500101")
    publish(lt, app_name, type_="app.instance.process.completed", party="500100")
    [want] = publish(lt, app_name, type_="app.instance.process.completed", party="500101")
    receiver.wait(lambda posts: len(posts) >= 3)
    time.sleep(0.2)
    assert [e["id"] for e in receiver.events()] == [want]


def test_burst_throughput_and_latency(lt, receiver, app_name):
    validated_subscription(lt, receiver, app_name)
    # latency: publish one event, time its arrival against its `time`
    lat = []
    for _ in range(20):
        n = len(receiver.posts)
        [eid] = publish(lt, app_name)
        post = receiver.wait(lambda posts: len(posts) > n)[n]
        assert post["json"]["id"] == eid
        lat.append(post["at"] - iso_seconds(post["json"]["time"]) -
                   int(post["json"]["time"][20:27]) / 1e7)
    lat.sort()

    n0 = len(receiver.posts)
    t0 = time.monotonic()
    ids = publish(lt, app_name, count=10_000)
    t_pub = time.monotonic() - t0
    receiver.wait(lambda posts: len(posts) >= n0 + 10_000, timeout=120)
    t_push = time.monotonic() - t0
    pushed = [p["json"]["id"] for p in receiver.posts[n0:]]
    assert pushed == ids

    t0 = time.monotonic()
    got, pages = [], 0
    r = poll(lt, app_name, after=ids[0], size="1000")
    got.append(ids[0])
    while True:
        page = r.json()
        pages += 1
        if not page:
            break
        got.extend(e["id"] for e in page)
        r = lt.get(path_of(r.header("next")))
    t_poll = time.monotonic() - t0
    assert got == ids and pages == 11
    rate = 10_000 / t_poll
    print(f"\nburst: publish {t_pub:.2f} s, push {10_000 / t_push:.0f} events/s, "
          f"poll {rate:.0f} events/s; latency median {lat[10] * 1000:.1f} ms, "
          f"max {lat[-1] * 1000:.1f} ms")
    assert rate >= 3000, f"polling {rate:.0f} events/s"
    assert lat[10] < 0.05, f"median publish-to-POST latency {lat[10] * 1000:.1f} ms"
