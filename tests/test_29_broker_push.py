"""Broker's and Correspondence's events by webhook push (docs/broker.md,
"Push"; docs/correspondence.md): with webhook_listen and webhook_url set,
the daemon subscribes to each Broker resource's events (resourceFilter and
our organisation as subjectFilter), the platform pushes, and a transfer
published to us is in inbox/ within seconds while every poll is an hour
away. A push delivered again makes nothing new; a push that never comes
is caught up by the events poll. A recipient's read of a message we sent
reaches its receipt by push the same way."""

import hashlib
import json
import os
import time
import uuid

import pytest

from conftest import platform_ctx
from outbox_util import wait_for
from procs import free_port, write_secret
from test_11_events import post_webhook, push_options
from test_25_correspondence import ORG as CORR_RECIPIENT
from test_25_correspondence import RESOURCE as CORR_RESOURCE
from test_26_broker_receive import (BROKER, ME, PARTNER, RESOURCE, inbox, org_token,
                                    overview, send_to_me, settings, wait_entry)
from test_28_corr_status import SCOPES as CORR_SCOPES
from test_28_corr_status import (act, details_reads, fetch, recipient_token,
                                 send_published, wait_status)

RESOURCE_URN = "urn:altinn:resource:" + RESOURCE
ME_URN = "urn:altinn:organization:identifier-no:" + ME
SETTLE = 0.3  # the last releases reach the daemon before it stops


@pytest.fixture(scope="module")
def pp(tmp_path_factory):
    """A platform that pushes to http:// on loopback, retries fast, and holds
    polled events back 30 s as Altinn does: an entry within seconds is
    the push's."""
    with platform_ctx(tmp_path_factory.mktemp("push-platform"),
                      extra_args=["--allow-http-webhooks", "--webhook-retry-scale", "0.01"]) as p:
        yield p


@pytest.fixture
def p(pp):
    pp.clear_faults()
    settings(pp, rateLimits=False, scanDelay=0.1, malware=0)
    events_settings(pp, minEventAge=30)
    pp.request("DELETE", "/_localtest/subscriptions", auth=False)
    yield pp
    pp.clear_faults()
    events_settings(pp, minEventAge=30)


def events_settings(p, **kw):
    r = p.request("PUT", "/_localtest/events/settings", auth=False, body=kw)
    assert r.status == 200, r


@pytest.fixture
def token_file(p, tmp_path):
    path = tmp_path / "broker-token"
    write_secret(path, org_token(p, "ttd", ME) + "\n")
    return path


@pytest.fixture
def start(mount, p, token_file):
    """Mounts with push on and the searches an hour apart."""
    def make(**kw):
        port = free_port()
        opts = push_options(port, broker_poll=3600, poll_interval=3600)
        opts.update(kw)
        m = mount(localtest=p, token_file=str(token_file), broker_resources=RESOURCE,
                  timeout=3, **opts)
        m.port = port
        m.code = opts["webhook_url"].split("?")[1]
        return m
    yield make
    time.sleep(SETTLE)


def broker_subs(p):
    return [s for s in p.get_json("/_localtest/subscriptions", auth=False)
            if s.get("resourceFilter") == RESOURCE_URN]


def status(m):
    return json.loads((m.path / "broker" / RESOURCE / "status.json").read_bytes())


def wait_pushing(m, p):
    """Until the platform validated our subscription and the daemon knows it."""
    wait_for(lambda: [s for s in broker_subs(p) if s["validated"]], 20,
             "a validated Broker subscription")
    wait_for(lambda: (status(m)["inbox"]["events_push"] or {}).get("validated"), 20,
             "status.json to say the events are pushed")
    [sub] = broker_subs(p)
    return sub


def shown(m):
    return sorted(n for n in os.listdir(inbox(m)) if not n.startswith("."))


def searches(p, mark):
    return [e for e in p.since(mark) if e["path"] == BROKER and e["method"] == "GET"]


def overviews(p, mark, tid):
    return [e for e in p.since(mark) if e["path"] == f"{BROKER}/{tid}" and e["method"] == "GET"]


def pushes_of(p, tid_events):
    log = p.get_json("/_localtest/webhooks", auth=False)
    return [e for e in log if e["eventId"] in tid_events]


def published_events(p, tid):
    """Ids of the `published` events about us for tid, from the events feed."""
    events_settings(p, minEventAge=0)
    try:
        r = p.get("/events/api/v1/events", query={"resource": RESOURCE_URN, "after": "0",
                                                  "subject": ME_URN, "size": "1000"},
                  auth="Bearer " + org_token(p, "ttd", ME))
        assert r.status == 200, r
        return [e for e in r.json() if e["resourceinstance"] == tid and
                e["type"] == "no.altinn.broker.published"]
    finally:
        events_settings(p, minEventAge=30)


# --------------------------------------------------------------------------

def test_a_pushed_transfer_is_in_the_inbox_within_seconds(start, p):
    m = start()
    sub = wait_pushing(m, p)
    # what the platform was asked for: the resource's events about us
    assert sub["resourceFilter"] == RESOURCE_URN
    assert sub["subjectFilter"] == ME_URN
    assert "sourceFilter" not in sub and "typeFilter" not in sub
    assert sub["endPoint"] == f"http://127.0.0.1:{m.port}/altinn/events?{m.code}"
    assert sub["consumer"] == "/org/ttd"
    assert status(m)["inbox"]["events_push"] == {"subscription": sub["id"], "validated": True}

    mark = p.mark()
    data = os.urandom(10_000)
    tid = send_to_me(p, "pushed.xml", data)
    t0 = time.monotonic()
    d = wait_entry(m, tid, timeout=15)
    took = time.monotonic() - t0
    assert took < 5, took
    assert sorted(os.listdir(d)) == ["pushed.xml", "transfer.json"]
    assert (d / "pushed.xml").read_bytes() == data
    # neither a search nor the events poll (which holds events back 30 s)
    assert searches(p, mark) == []
    ids = {e["id"] for e in published_events(p, tid)}
    assert [e["outcome"] for e in pushes_of(p, ids)] == ["delivered"]

    # a restart reuses the subscription
    time.sleep(SETTLE)
    m.stop()
    m2 = start(state_dir=str(m.state_dir), webhook_listen=f"127.0.0.1:{m.port}",
               webhook_url=f"http://127.0.0.1:{m.port}/altinn/events?{m.code}")
    wait_for(lambda: "existing subscription" in m2.log(), 20, "the subscription reused")
    assert [s["id"] for s in broker_subs(p)] == [sub["id"]]


def test_a_push_delivered_again_makes_one_entry(start, p):
    m = start()
    wait_pushing(m, p)
    tid = send_to_me(p, "twice.txt", b"twice\n")
    d = wait_entry(m, tid, timeout=15)
    [event] = published_events(p, tid)
    listed, entries = shown(m), status(m)["inbox"]["entries"]
    assert tid in listed
    mark = p.mark()
    # the platform's retries, and one with a new id, as after a re-publish
    again = dict(event, id=str(uuid.uuid4()))
    for body in (event, event, again):
        assert post_webhook(m.port, f"/altinn/events?{m.code}", body) == 200
    # pushes are shown in order by one worker: once a later one is in
    # inbox/, these three were handled
    later = send_to_me(p, "later.txt", b"later\n")
    wait_entry(m, later, timeout=15)
    assert shown(m) == sorted(listed + [later])
    assert sorted(os.listdir(d)) == ["transfer.json", "twice.txt"]
    assert status(m)["inbox"]["entries"] == entries + 1
    assert overviews(p, mark, tid) == []  # known: not even looked up
    assert m.log().count(f"transfer {tid} from") == 1  # shown once


def test_a_push_for_another_resource_or_type_makes_nothing(start, p):
    m = start()
    wait_pushing(m, p)
    mark = p.mark()
    tid = str(uuid.uuid4())
    base = {"specversion": "1.0", "source": f"{p.url}/broker/api/v1/filetransfer",
            "subject": ME_URN, "resourceinstance": tid, "data": {"Role": "Recipient"}}
    other = dict(base, id=str(uuid.uuid4()), type="no.altinn.broker.published",
                 resource="urn:altinn:resource:not-mounted")
    not_published = dict(base, id=str(uuid.uuid4()), type="no.altinn.broker.filepurged",
                         resource=RESOURCE_URN)
    for body in (other, not_published):
        assert post_webhook(m.port, f"/altinn/events?{m.code}", body) == 200
    assert post_webhook(m.port, "/altinn/events?code=wrong", other) == 403
    later = send_to_me(p, "after.txt", b"after\n")  # handled after those, in order
    wait_entry(m, later, timeout=15)
    assert overviews(p, mark, tid) == []
    assert not (inbox(m) / tid).exists()


def test_a_push_about_a_transfer_we_sent_is_not_looked_up(start, p):
    """Broker publishes `published` to the sender too (data.Role Sender):
    that transfer is not for inbox/, and costs no request."""
    m = start()
    wait_pushing(m, p)
    mark = p.mark()
    auth = "Bearer " + org_token(p, "ttd", ME)
    data = b"from us\n"
    r = p.request("POST", BROKER, auth=auth, body={
        "fileName": "ut.txt", "resourceId": RESOURCE, "sender": "0192:" + ME,
        "recipients": ["0192:" + PARTNER], "sendersFileTransferReference": "ut",
        "checksum": hashlib.md5(data).hexdigest()})
    assert r.status == 200, r
    tid = r.json()["fileTransferId"]
    r = p.request("POST", f"{BROKER}/{tid}/upload", body=data, auth=auth,
                  content_type="application/octet-stream")
    assert r.status == 200, r
    mine = 0  # the test's own looks at it
    while True:
        mine += 1
        if overview(p, tid)["fileTransferStatus"] == "Published":
            break
        time.sleep(0.1)
    later = send_to_me(p, "etter.txt", b"after ours\n")  # pushed after ours, shown in order
    wait_entry(m, later, timeout=15)
    assert len(overviews(p, mark, tid)) == mine
    assert not (inbox(m) / tid).exists()
    assert "pushed: transfer " + tid not in m.log()


def test_a_lost_push_is_caught_up_by_the_events_poll(start, p):
    m = start(poll_interval=1)
    wait_pushing(m, p)
    # the platform forgets the subscription: nothing is pushed any more
    r = p.request("DELETE", "/_localtest/subscriptions", auth=False)
    assert r.status == 204, r
    events_settings(p, minEventAge=0)
    mark = p.mark()
    tid = send_to_me(p, "lost.txt", b"no push came\n")
    d = wait_entry(m, tid, timeout=20)
    assert (d / "lost.txt").read_bytes() == b"no push came\n"
    assert searches(p, mark) == []  # the search is an hour away: the poll did it
    ids = {e["id"] for e in published_events(p, tid)}
    assert pushes_of(p, ids) == []
    # and the poll wrote the event's file, once
    ev_dir = m.path / "broker" / RESOURCE / "events"
    wait_for(lambda: [n for n in os.listdir(ev_dir) if any(i in n for i in ids)], 10,
             "the published event's file")
    assert len([n for n in os.listdir(ev_dir) if any(i in n for i in ids)]) == 1


# ---- Correspondence

@pytest.fixture
def corr_token_file(p, tmp_path):
    r = p.request("PUT", "/_localtest/correspondence/settings", auth=False,
                  body={"publishDelay": 0.2, "scanDelay": 0.2, "malware": 0,
                        "confirmDelay": 0.2, "reserved": [], "failRecipients": [],
                        "unknownRecipients": []})
    assert r.status in (200, 204), r
    r = p.get("/Home/GetTestOrgToken/ttd", auth=False,
              query={"orgNumber": ME, "scopes": CORR_SCOPES})
    assert r.status == 200, r
    path = tmp_path / "corr-token"
    write_secret(path, r.body.decode().strip() + "\n")
    return path


def test_a_pushed_read_reaches_the_receipt_within_seconds(mount, p, corr_token_file):
    port = free_port()
    opts = push_options(port, poll_interval=3600, events_start="all")
    m = mount(localtest=p, token_file=str(corr_token_file),
              correspondence_resources=CORR_RESOURCE, timeout=3, **opts)
    urn = "urn:altinn:resource:" + CORR_RESOURCE
    wait_for(lambda: [s for s in p.get_json("/_localtest/subscriptions", auth=False)
                      if s.get("resourceFilter") == urn and s["validated"]], 20,
             "a validated Correspondence subscription")
    [sub] = [s for s in p.get_json("/_localtest/subscriptions", auth=False)
             if s.get("resourceFilter") == urn]
    # the service owner's subscription: the resource, nothing else
    assert "subjectFilter" not in sub and "sourceFilter" not in sub
    assert "typeFilter" not in sub and sub["consumer"] == "/org/ttd"
    st = lambda: json.loads((m.path / "correspondence" / CORR_RESOURCE /
                             "status.json").read_bytes())["events"]["push"]
    wait_for(lambda: st()["validated"], 10, "status.json to say the events are pushed")
    assert st() == {"subscription": sub["id"], "validated": True}

    [cid] = send_published(m, "dytta").values()
    mark = p.mark()
    me = recipient_token(p, CORR_RECIPIENT)
    fetch(p, cid, me)
    act(p, cid, me, "markasread")
    t0 = time.monotonic()
    wait_status(m, "dytta", CORR_RECIPIENT, "Read", timeout=15)
    took = time.monotonic() - t0
    assert took < 5, took
    # neither the feed (an hour away, and 30 s behind) nor a reconciling read
    assert details_reads(p, mark) == []
    assert [e for e in p.since(mark) if e["path"] == "/events/api/v1/events"] == []
    log = p.get_json("/_localtest/webhooks", auth=False)
    assert [e["outcome"] for e in log if e["subscriptionId"] == sub["id"] and
            e["type"].endswith("correspondencereceiverread")] == ["delivered"]
    time.sleep(SETTLE)


# ---- altinnfs --check

def test_check_subscribes_to_each_resource_and_leaves_nothing(p, tmp_path):
    from test_22_doctor import check, find
    r = p.get("/Home/GetTestOrgToken/ttd", auth=False,
              query={"orgNumber": ME, "scopes": CORR_SCOPES + " altinn:broker.read "
                     "altinn:broker.write altinn:serviceowner/instances.write"})
    assert r.status == 200, r
    token = tmp_path / "all-token"
    write_secret(token, r.body.decode().strip() + "\n")
    port = free_port()
    opts = push_options(port)
    rc, lines, err = check(tmp_path, p, f"webhook_listen={opts['webhook_listen']}",
                           f"webhook_url={opts['webhook_url']}",
                           f"broker_resources={RESOURCE}",
                           f"correspondence_resources={CORR_RESOURCE}", token=token)
    assert rc == 0, "\n".join(lines) + err
    for what in (f"broker/{RESOURCE}", f"correspondence/{CORR_RESOURCE}"):
        line = find(lines, f"ok    subscription {what}: the platform allows it")
        assert "made for this check and deleted after it" in line, line
    find(lines, "ok    webhook: the platform reached "
         f"http://127.0.0.1:{port}/altinn/events: the validation of 4 subscription(s)")
    assert p.get_json("/_localtest/subscriptions", auth=False) == []
