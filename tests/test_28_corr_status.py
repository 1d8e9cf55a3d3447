"""A sent message's receipt kept current (docs/correspondence.md, "The
receipt"): what a recipient does on the platform (fetch, read, confirm)
shows up in sent/<name>.json, through Correspondence's events and through
the slow reconciling read when events are off; an outage of the feed, or
of the reading, is caught up after; a daemon killed with -9 goes on from
its cursor; each event is one file in correspondence/<resourceId>/events/;
status.json counts the recipients by status and shows the cursor."""

import datetime
import json
import os
import time

import pytest

from outbox_util import wait_for
from procs import write_secret
from test_25_correspondence import (CORR, ME, ORG, PERSON, RESOURCE, area, stored,
                                    wait_receipt, write_message)

SCOPES = ("altinn:serviceowner/instances.read altinn:correspondence.write "
          "altinn:events.subscribe")
RECIPIENT_SCOPES = "altinn:correspondence.read"
EVENTS = "/events/api/v1/events"


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    r = own_platform.request("PUT", "/_localtest/correspondence/settings", auth=False,
                             body={"publishDelay": 0.2, "scanDelay": 0.2, "malware": 0,
                                   "confirmDelay": 0.2, "reserved": [],
                                   "failRecipients": [], "unknownRecipients": []})
    assert r.status in (200, 204), r
    r = own_platform.request("GET", "/_localtest/events/settings", auth=False)
    before = r.json()
    r = own_platform.request("PUT", "/_localtest/events/settings", auth=False,
                             body={"minEventAge": 0})
    assert r.status == 200, r
    yield own_platform
    own_platform.clear_faults()
    own_platform.request("PUT", "/_localtest/events/settings", auth=False,
                         body={"minEventAge": before.get("minEventAge", 0)})


@pytest.fixture
def token_file(p, tmp_path):
    r = p.get("/Home/GetTestOrgToken/ttd", auth=False,
              query={"orgNumber": ME, "scopes": SCOPES})
    assert r.status == 200, r
    path = tmp_path / "corr-token"
    write_secret(path, r.body.decode().strip() + "\n")
    return path


def start(mount, p, token_file, **kw):
    opts = dict(localtest=p, token_file=str(token_file), correspondence_resources=RESOURCE,
                timeout=3, outbox_retry_max=1, poll_interval=1, events_start="all")
    opts.update(kw)
    return mount(**opts)


def recipient_token(p, org):
    r = p.get("/Home/GetTestOrgToken/org" + org, auth=False,
              query={"orgNumber": org, "scopes": RECIPIENT_SCOPES})
    assert r.status == 200, r
    return "Bearer " + r.body.decode().strip()


def due_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.isoformat().replace("+00:00", "Z")


def receipt(m, name):
    """sent/<name>.json, once it is there. It is rewritten (renamed over)
    as statuses change; an open racing that must get the old or the new
    file, never ENOENT."""
    path = area(m, "sent") / (name + ".json")
    return json.loads(path.read_bytes())


def wait_status(m, name, rcp, want, timeout=30):
    def reached():
        try:
            return receipt(m, name)["recipients"][rcp].get("status") == want
        except (OSError, ValueError, KeyError):
            return False
    wait_for(reached, timeout,
             f"{rcp} {want} in sent/{name}.json (log: {m.log_tail(20)})")
    return receipt(m, name)


def status(m):
    return json.loads((m.path / "correspondence" / RESOURCE / "status.json").read_bytes())


def send_published(m, name, recipients=(ORG,)):
    """A message to recipients, its receipt shown Published for each."""
    write_message(m, name, "# Melding %s\nLes og bekreft.\n" % name, list(recipients),
                  meta={"isConfirmationNeeded": True, "dueDateTime": due_in(7 * 86400)})
    wait_receipt(m, name)
    for rcp in recipients:
        doc = wait_status(m, name, rcp, "Published")
    return {r: doc["recipients"][r]["correspondenceId"] for r in recipients}


def fetch(p, cid, who):
    r = p.get(f"{CORR}/{cid}", auth=who)
    assert r.status == 200, r


def act(p, cid, who, action):
    r = p.request("POST", f"{CORR}/{cid}/{action}", auth=who)
    assert r.status == 200, r


def details_reads(p, mark):
    return [e for e in p.since(mark) if e["path"].endswith("/details")]


def event_files(m):
    """The event files, as a watcher takes them (a dot-name is one being written)."""
    return sorted(f for f in os.listdir(area(m, "events")) if not f.startswith("."))


# ---- events

def test_read_and_confirm_reach_the_receipt_by_events(mount, p, token_file):
    m = start(mount, p, token_file)
    [cid] = send_published(m, "hendelser").values()
    mark = p.mark()
    me = recipient_token(p, ORG)
    fetch(p, cid, me)
    act(p, cid, me, "markasread")
    wait_status(m, "hendelser", ORG, "Read", timeout=15)
    act(p, cid, me, "confirm")
    doc = wait_status(m, "hendelser", ORG, "Confirmed", timeout=15)
    assert doc["recipients"][ORG]["correspondenceId"] == cid
    # the events did it: no reconciling read came (correspondence_reconcile 3600 s)
    assert details_reads(p, mark) == []
    # each event of the correspondence is a file, in order, the CloudEvent as sent
    files = event_files(m)
    mine = []
    for f in files:
        ev = json.loads((area(m, "events") / f).read_bytes())
        assert f.endswith("_" + ev["id"] + ".json"), f
        assert f[13:].startswith(ev["type"].rsplit(".", 1)[1] + "_"), f
        if ev.get("resourceinstance") == cid:
            mine.append(ev["type"].rsplit(".", 1)[1])
    assert mine == ["correspondenceinitialized", "correspondencepublished",
                    "correspondencereceiverread", "correspondencereceiverconfirmed"], mine
    assert [int(f[:12]) for f in files] == list(range(1, len(files) + 1))
    # status.json: the recipients by status, and the cursor at the last event
    st = status(m)
    assert st["recipients"]["by_status"] == {"Confirmed": 1}, st
    assert st["recipients"]["following"] == 0, st
    last = json.loads((area(m, "events") / files[-1]).read_bytes())
    assert st["events"]["enabled"] is True and st["events"]["cursor"] == last["id"], st
    assert st["events"]["last_error"] is None
    # events/ is read and rm only
    os.unlink(area(m, "events") / files[0])
    assert files[0] not in event_files(m)
    with pytest.raises(PermissionError):
        (area(m, "events") / "mine.json").write_text("{}")


def test_events_from_before_the_first_start_are_not_files(mount, p, token_file):
    """events_start = now (the default): the generic feed has no "from", so
    the first poll reads from its beginning, but what happened before the
    daemon first started is not made files."""
    sender = "Bearer " + token_file.read_text().strip()
    r = p.request("POST", CORR, auth=sender, body={
        "correspondence": {"resourceId": RESOURCE, "sendersReference": "tidligere",
                           "content": {"language": "nb", "messageTitle": "Tidligere",
                                       "messageBody": "Sendt uten altinnfs."}},
        "recipients": ["urn:altinn:organization:identifier-no:" + ORG]})
    assert r.status == 200, r
    earlier = r.json()["correspondences"][0]["correspondenceId"]
    time.sleep(1.1)
    m = start(mount, p, token_file, events_start=None)
    [cid] = send_published(m, "etter-start").values()
    about = lambda f: json.loads((area(m, "events") / f).read_bytes()).get("resourceinstance")
    wait_for(lambda: cid in [about(f) for f in event_files(m)], 10, "the new events as files")
    assert earlier not in [about(f) for f in event_files(m)]


# ---- the reconciling read

def test_reconciling_read_without_events(mount, p, token_file):
    m = start(mount, p, token_file, correspondence_events="no", correspondence_reconcile=1)
    ids = send_published(m, "avstemming", [ORG, PERSON])
    me = recipient_token(p, ORG)
    fetch(p, ids[ORG], me)
    # Fetched has no event: only a read of /details shows it
    wait_status(m, "avstemming", ORG, "Fetched", timeout=15)
    act(p, ids[ORG], me, "markasread")
    doc = wait_status(m, "avstemming", ORG, "Read", timeout=15)
    assert doc["recipients"][PERSON]["status"] == "Published"
    assert event_files(m) == []
    mark = p.mark()
    wait_for(lambda: len(details_reads(p, mark)) >= 2, 10, "more reconciling reads")
    assert [e for e in p.since(mark) if e["path"] == EVENTS] == []
    st = status(m)
    assert st["events"]["enabled"] is False
    assert st["recipients"]["by_status"] == {"Read": 1, "Published": 1}, st
    assert st["recipients"]["following"] == 1 and st["recipients"]["next_reconcile_at"]


def test_reconciling_read_honours_retry_after(mount, p, token_file):
    # Retry-After 5 s is past the request's own budget (timeout 3 s): the
    # daemon's reconciling read hears the 429 and waits it out
    m = start(mount, p, token_file, correspondence_events="no", correspondence_reconcile=1)
    send_published(m, "sakte")
    mark = p.mark()
    p.fault(CORR + "/*/details$", method="GET", status=429, retry_after=5, count=1)
    wait_for(lambda: any(e["status"] == 429 for e in details_reads(p, mark)), 15, "a 429")
    refused = time.monotonic()
    t429 = max(e["seq"] for e in details_reads(p, mark) if e["status"] == 429)
    wait_for(lambda: details_reads(p, t429), 20, "a read after the 429")
    assert time.monotonic() - refused >= 4.0
    assert [e["status"] for e in details_reads(p, t429)][:1] == [200]


# ---- outage, kill -9

def test_outage_of_the_feed_then_recovery(mount, p, token_file):
    m = start(mount, p, token_file)
    [cid] = send_published(m, "avbrudd").values()
    p.fault(EVENTS + "$", method="GET", status=503, count=-1)
    mark = p.mark()
    me = recipient_token(p, ORG)
    fetch(p, cid, me)
    act(p, cid, me, "markasread")
    wait_for(lambda: status(m)["events"]["last_error"], 20, "the feed's error in status.json")
    assert "503" in status(m)["events"]["last_error"]
    assert receipt(m, "avbrudd")["recipients"][ORG]["status"] == "Published"
    p.clear_faults()
    wait_status(m, "avbrudd", ORG, "Read", timeout=20)
    wait_for(lambda: status(m)["events"]["last_error"] is None, 10, "the error cleared")
    assert [e for e in p.since(mark) if e["path"] == EVENTS and e["status"] == 503]


def test_outage_of_the_reconciling_read_then_recovery(mount, p, token_file):
    m = start(mount, p, token_file, correspondence_events="no", correspondence_reconcile=1)
    [cid] = send_published(m, "avbrudd-lesing").values()
    p.fault(CORR + "/*/details$", method="GET", status=503, count=-1)
    mark = p.mark()
    me = recipient_token(p, ORG)
    fetch(p, cid, me)
    act(p, cid, me, "markasread")
    wait_for(lambda: len([e for e in details_reads(p, mark) if e["status"] == 503]) >= 3, 20,
             "reads refused")
    assert receipt(m, "avbrudd-lesing")["recipients"][ORG]["status"] == "Published"
    p.clear_faults()
    wait_status(m, "avbrudd-lesing", ORG, "Read", timeout=30)


def test_kill9_then_restart_keeps_following(mount, p, token_file):
    m = start(mount, p, token_file)
    ids = send_published(m, "krasj-folg", [ORG, PERSON])
    wait_for(lambda: len(event_files(m)) >= 4, 10, "the first events as files")
    before = event_files(m)
    m.kill9()
    me = recipient_token(p, ORG)
    fetch(p, ids[ORG], me)
    act(p, ids[ORG], me, "markasread")
    m2 = start(mount, p, token_file, state_dir=str(m.state_dir))
    doc = wait_status(m2, "krasj-folg", ORG, "Read", timeout=20)
    assert doc["recipients"][PERSON]["status"] == "Published"
    # the receipt may have its Read from the fast read (a kill before the
    # end of publication was saved) while the feed still catches up: the
    # event's file comes all the same
    def read_files():
        return [f for f in event_files(m2) if "_correspondencereceiverread_" in f and
                json.loads((area(m2, "events") / f).read_bytes())["resourceinstance"]
                == ids[ORG]]
    wait_for(read_files, 20, "the read event's file")
    after = event_files(m2)
    # every event once: the files from before stay, new ones follow in number
    ids_seen = [f.split("_", 2)[2] for f in after]
    assert len(ids_seen) == len(set(ids_seen)), after
    assert after[:len(before)] == before
    read = read_files()
    assert len(read) == 1 and int(read[0][:12]) > int(before[-1][:12])
    assert len(stored(p, "krasj-folg")) == 2


def test_a_reader_never_meets_a_missing_receipt_while_it_is_rewritten(mount, p, token_file):
    """The receipt is renamed over at each status change; a script reading
    it in a loop meanwhile gets the old or the new file, never ENOENT."""
    import threading
    m = start(mount, p, token_file)
    cids = send_published(m, "omskrevet", recipients=(ORG, PERSON))
    path = area(m, "sent") / "omskrevet.json"
    errors, reads, stop = [], [0], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                json.loads(path.read_bytes())
                reads[0] += 1
            except (OSError, ValueError) as e:
                errors.append(repr(e))
    t = threading.Thread(target=reader)
    t.start()
    try:
        for rcp, cid in cids.items():
            who = recipient_token(p, rcp) if rcp == ORG else None
            if who is None:
                continue
            fetch(p, cid, who)
            act(p, cid, who, "markasread")
            wait_status(m, "omskrevet", rcp, "Read", timeout=15)
            act(p, cid, who, "confirm")
            wait_status(m, "omskrevet", rcp, "Confirmed", timeout=15)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    assert reads[0] > 0
    assert errors == [], errors[:5]
