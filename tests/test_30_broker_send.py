"""Sending Broker transfers with more than a file (docs/broker.md, "More
recipients, properties, a reference" and "Receipts kept current"): a
sidecar outbox/<recipient>/<name>.meta.json names more recipients, a
propertyList and the sender's own reference, checked before anything is
asked of the platform; after Published the receipt follows the transfer
(each recipient's status, AllConfirmedDownloaded, Purged) by Broker's events
and a reconciling read, across a kill -9. Checked against what the local
platform's Broker stored and what its recipients can do."""

import errno
import hashlib
import json
import os
import time

import pytest

from outbox_util import wait_for
from procs import free_port, write_secret
from test_11_events import push_options
from test_29_broker_push import events_settings, pp, wait_pushing  # noqa: F401 (fixture)


RESOURCE = "altinnfs-demo-broker"
ME = "991825827"          # ttd, the daemon's organisation
PARTNER = "313000001"     # a recipient of the resource
OTHER = "314000005"       # another recipient of the resource
BROKER = "/broker/api/v1/filetransfer"
SCOPES = ("altinn:serviceowner/instances.read altinn:broker.write altinn:broker.read "
          "altinn:events.subscribe")


def settings(p, **kw):
    r = p.request("PUT", "/_localtest/broker/settings", auth=False, body=kw)
    assert r.status in (200, 204), r


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    settings(own_platform, rateLimits=False, scanDelay=0.1, malware=0)
    yield own_platform
    own_platform.clear_faults()


@pytest.fixture
def pe(platform_factory):
    """A platform whose Events answer at once (the real one holds events back 30 s)."""
    p = platform_factory(extra_args=["--min-event-age", "0"])
    settings(p, rateLimits=False, scanDelay=0.1, malware=0)
    return p


_tokens = {}


def org_token(p, org, number, scopes=SCOPES):
    key = (p.port, number, scopes)
    if key not in _tokens:
        r = p.get(f"/Home/GetTestOrgToken/{org}", auth=False,
                  query={"orgNumber": number, "scopes": scopes})
        assert r.status == 200, r
        _tokens[key] = r.body.decode().strip()
    return _tokens[key]


def token_path(p, tmp_path, scopes=SCOPES):
    path = tmp_path / f"token-{p.port}"
    write_secret(path, org_token(p, "ttd", ME, scopes) + "\n")
    return path


def start(mount, p, tmp_path, scopes=SCOPES, **kw):
    kw.setdefault("broker_poll", 3600)
    return mount(localtest=p, token_file=str(token_path(p, tmp_path, scopes)),
                 broker_resources=RESOURCE, timeout=3, outbox_retry_max=1, **kw)


def area(m, name):
    return m.path / "broker" / RESOURCE / name


def transfers(p, name):
    r = p.get("/_localtest/broker/transfers", auth=False, query={"resourceId": RESOURCE})
    assert r.status == 200, r
    return [t for t in r.json() if t["fileName"] == name and t["sender"].endswith(ME)]


def drop(m, name, data, meta=None, recipient=PARTNER):
    d = area(m, "outbox") / recipient
    d.mkdir(exist_ok=True)
    if meta is not None:
        text = meta if isinstance(meta, (str, bytes)) else json.dumps(meta)
        (d / (name + ".meta.json")).write_bytes(text.encode() if isinstance(text, str)
                                                else text)
    (d / name).write_bytes(data)


def receipt_path(m, name, recipient=PARTNER):
    return area(m, "sent") / recipient / (name + ".json")


def read_receipt(m, name):
    """The receipt as it is now; a read racing its rewrite is tried again."""
    try:
        return json.loads(receipt_path(m, name).read_bytes())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def wait_receipt(m, name, pred=lambda r: True, timeout=30, what="the receipt"):
    found = {}

    def ok():
        r = read_receipt(m, name)
        if r is not None and pred(r):
            found["r"] = r
            return True
        return False
    wait_for(ok, timeout, what)
    return found["r"]


def recipient_status(receipt, org):
    for r in receipt["recipients"]:
        if r["recipient"].endswith(org):
            return r["currentRecipientFileTransferStatusCode"]
    return None


def as_partner(p, org):
    return "Bearer " + org_token(p, "partner", org)


def download_and_confirm(p, tid, org=PARTNER):
    r = p.get(f"{BROKER}/{tid}/download", auth=as_partner(p, org))
    assert r.status == 200, r
    r = p.request("POST", f"{BROKER}/{tid}/confirmdownload", auth=as_partner(p, org))
    assert 200 <= r.status < 300, r
    return r


# ---- more recipients, properties, a reference

def test_sidecar_sends_to_several_with_properties_and_reference(mount, p, tmp_path):
    m = start(mount, p, tmp_path)
    data = os.urandom(30_000) + b"til to"
    props = {"saksnummer": "2026/4711", "æøå": "ünïcødé " + "😀" * 10}
    drop(m, "vedtak.pdf", data, {"recipients": [OTHER, PARTNER],
                                 "propertyList": props,
                                 "sendersFileTransferReference": "sak-2026/4711"})
    receipt = wait_receipt(m, "vedtak.pdf")
    [t] = transfers(p, "vedtak.pdf")
    assert t["fileTransferId"] == receipt["fileTransferId"]
    # the folder's recipient first, the sidecar's after it, each once
    assert [r["recipient"] for r in t["recipients"]] == ["0192:" + PARTNER, "0192:" + OTHER]
    assert t["propertyList"] == props
    assert t["sendersFileTransferReference"] == "sak-2026/4711"
    assert t["checksum"] == hashlib.md5(data).hexdigest()
    assert receipt["sendersFileTransferReference"] == "sak-2026/4711"
    assert receipt["propertyList"] == props
    assert {recipient_status(receipt, o) for o in (PARTNER, OTHER)} == {"Initialized"}
    for org in (PARTNER, OTHER):
        r = p.get(f"{BROKER}/{t['fileTransferId']}/download", auth=as_partner(p, org))
        assert r.status == 200 and r.body == data, (org, r)
    # the sidecar went with its file
    assert sorted(os.listdir(area(m, "outbox") / PARTNER)) == []


BAD = [
    ({"recipients": ["313000002"]}, "recipients[0]"),
    ({"recipients": "313000001"}, "recipients"),
    ({"propertyList": {str(i): "v" for i in range(11)}}, "propertyList"),
    ({"propertyList": {"k" * 51: "v"}}, "propertyList"),
    ({"propertyList": {"k": 42}}, "propertyList.k"),
    # 1501 characters outside the BMP are 3002 UTF-16 units: over 3000
    ({"propertyList": {"k": "😀" * 1501}}, "propertyList.k"),
    ({"sendersFileTransferReference": ""}, "sendersFileTransferReference"),
    ({"sendersFileTransferReference": "r" * 4097}, "sendersFileTransferReference"),
    ({"propertylist": {"k": "v"}}, "propertylist"),
    ("{\"recipients\": [", "not JSON"),
]


@pytest.mark.parametrize("meta,field", BAD, ids=[f for _, f in BAD])
def test_bad_sidecar_refused_before_anything_is_made(mount, p, tmp_path, meta, field):
    m = start(mount, p, tmp_path)
    mark = p.mark()
    drop(m, "feil.txt", b"aldri sendt\n", meta)
    letter = area(m, "failed") / PARTNER / "feil.txt.error.json"
    wait_for(letter.exists, 20, "the dead letter")
    doc = json.loads(letter.read_bytes())
    assert doc["error"].startswith("feil.txt.meta.json: " + field), doc["error"]
    assert doc["fileTransferId"] is None
    # the file and its sidecar together in failed/, to be fixed and dropped again
    assert (area(m, "failed") / PARTNER / "feil.txt").read_bytes() == b"aldri sendt\n"
    assert (area(m, "failed") / PARTNER / "feil.txt.meta.json").exists()
    assert os.listdir(area(m, "outbox") / PARTNER) == []
    assert transfers(p, "feil.txt") == []
    # not asked to make anything (the inbox's searches go on beside it)
    assert not [e for e in p.since(mark) if e["path"].startswith(BROKER) and
                e["method"] != "GET"]


def test_within_limits_is_sent(mount, p, tmp_path):
    """The limits' edges pass: 10 properties, a 50-character key, 3000 UTF-16
    units (1500 characters outside the BMP), a 4096-character reference."""
    m = start(mount, p, tmp_path)
    props = {("k%d" % i).ljust(50, "x"): "v" for i in range(9)}
    props["stor"] = "😀" * 1500
    drop(m, "kant.txt", b"kant\n", {"propertyList": props,
                                    "sendersFileTransferReference": "r" * 4096})
    receipt = wait_receipt(m, "kant.txt")
    [t] = transfers(p, "kant.txt")
    assert t["propertyList"] == props and receipt["propertyList"] == props
    assert t["sendersFileTransferReference"] == "r" * 4096


def test_lost_initialize_with_a_reused_reference_takes_its_own(mount, p, tmp_path):
    """The user's reference is not unique: the search that settles a lost
    initialize passes over the transfer another item holds."""
    m = start(mount, p, tmp_path)
    meta = {"sendersFileTransferReference": "samme-ref"}
    drop(m, "igjen.txt", b"samme bytes\n", meta)
    first = wait_receipt(m, "igjen.txt")
    os.unlink(receipt_path(m, "igjen.txt"))
    p.fault(BROKER + "$", method="POST", status=503, after=True)
    drop(m, "igjen.txt", b"samme bytes\n", meta)
    second = wait_receipt(m, "igjen.txt")
    ids = sorted(t["fileTransferId"] for t in transfers(p, "igjen.txt"))
    assert len(ids) == 2 and second["fileTransferId"] != first["fileTransferId"]
    assert sorted([first["fileTransferId"], second["fileTransferId"]]) == ids
    assert "was initialized as " + second["fileTransferId"] in m.log()


# ---- receipts kept current

def test_receipt_follows_to_confirmed_and_purged_by_reconciling(mount, p, tmp_path):
    # no events scope: the reconciling read alone keeps the receipt current
    m = start(mount, p, tmp_path, scopes=SCOPES.replace(" altinn:events.subscribe", ""),
              broker_reconcile=1)
    drop(m, "folges.txt", b"folges\n", {"recipients": [OTHER]})
    receipt = wait_receipt(m, "folges.txt")
    tid = receipt["fileTransferId"]
    assert receipt["fileTransferStatus"] == "Published"
    download_and_confirm(p, tid, PARTNER)
    receipt = wait_receipt(m, "folges.txt",
                           lambda r: recipient_status(r, PARTNER) == "DownloadConfirmed",
                           what="DownloadConfirmed in the receipt")
    assert recipient_status(receipt, OTHER) == "Initialized"
    assert receipt["fileTransferStatus"] == "Published"
    download_and_confirm(p, tid, OTHER)
    wait_receipt(m, "folges.txt", lambda r: r["fileTransferStatus"] == "AllConfirmedDownloaded",
                 what="AllConfirmedDownloaded in the receipt")
    r = p.request("POST", f"/_localtest/broker/transfers/{tid}/expire", auth=False)
    assert r.status == 200 and r.json()["fileTransferStatus"] == "Purged", r
    receipt = wait_receipt(m, "folges.txt", lambda r: r["fileTransferStatus"] == "Purged",
                           what="Purged in the receipt")
    assert receipt["fileTransferId"] == tid and receipt["name"] == "folges.txt"
    # a final state: no more reads of the transfer (one a second before)
    wait_for(lambda: "no longer followed: Purged" in m.log(), 10, "the end of following")
    mark = p.mark()
    time.sleep(3)
    assert not [e for e in p.since(mark) if e["path"] == f"{BROKER}/{tid}"]


def test_a_429_on_the_reconciling_read_is_waited_out(mount, p, tmp_path):
    m = start(mount, p, tmp_path, scopes=SCOPES.replace(" altinn:events.subscribe", ""),
              broker_reconcile=1)
    drop(m, "vent.txt", b"vent\n")
    tid = wait_receipt(m, "vent.txt")["fileTransferId"]
    rule = p.fault(f"{BROKER}/{tid}$", method="GET", status=429, retry_after=4)
    t0 = time.monotonic()
    download_and_confirm(p, tid)
    wait_receipt(m, "vent.txt", lambda r: r["fileTransferStatus"] == "AllConfirmedDownloaded",
                 what="AllConfirmedDownloaded after the 429")
    # the 429 came within a second of the fault (a look a second), then 4 s of quiet
    assert p.fault_hits(rule) == 1
    assert time.monotonic() - t0 >= 3.5
    assert "following \"" in m.log() and "429" in m.log()


def test_events_make_the_receipt_current_at_once(mount, pe, tmp_path):
    p = pe
    m = start(mount, p, tmp_path)   # broker_reconcile 3600: only events can do it soon
    drop(m, "hendelse.txt", b"hendelse\n")
    tid = wait_receipt(m, "hendelse.txt")["fileTransferId"]
    time.sleep(3.5)  # the first events round starts at the end of what Events holds
    download_and_confirm(p, tid)
    receipt = wait_receipt(m, "hendelse.txt",
                           lambda r: r["fileTransferStatus"] == "AllConfirmedDownloaded",
                           timeout=15, what="AllConfirmedDownloaded from the events")
    assert recipient_status(receipt, PARTNER) == "DownloadConfirmed"
    ev_dir = area(m, "events")
    assert [n for n in os.listdir(ev_dir) if "_downloadconfirmed_" in n]


def test_a_pushed_event_makes_the_receipt_current_at_once(mount, pp, tmp_path):
    p = pp
    p.clear_faults()
    settings(p, rateLimits=False, scanDelay=0.1, malware=0)
    events_settings(p, minEventAge=30)   # polled events come 30 s late: only a push is quick
    p.request("DELETE", "/_localtest/subscriptions", auth=False)
    opts = push_options(free_port(), broker_poll=3600, poll_interval=3600)
    m = start(mount, p, tmp_path, **opts)   # broker_reconcile 3600 as well
    wait_pushing(m, p)
    drop(m, "dytta.txt", b"dytta\n")
    tid = wait_receipt(m, "dytta.txt")["fileTransferId"]
    download_and_confirm(p, tid)
    receipt = wait_receipt(m, "dytta.txt",
                           lambda r: r["fileTransferStatus"] == "AllConfirmedDownloaded",
                           timeout=10, what="AllConfirmedDownloaded from a push")
    assert recipient_status(receipt, PARTNER) == "DownloadConfirmed"
    time.sleep(0.3)  # the last pushes reach the daemon before it stops


def test_kill9_while_following_then_restart_keeps_following(mount, p, tmp_path):
    m = start(mount, p, tmp_path, broker_reconcile=1)
    drop(m, "krasj.txt", b"krasj\n")
    tid = wait_receipt(m, "krasj.txt")["fileTransferId"]
    m.kill9()
    download_and_confirm(p, tid)
    m2 = start(mount, p, tmp_path, broker_reconcile=1, state_dir=str(m.state_dir))
    receipt = wait_receipt(m2, "krasj.txt",
                           lambda r: recipient_status(r, PARTNER) == "DownloadConfirmed",
                           what="DownloadConfirmed after the restart")
    assert receipt["fileTransferStatus"] == "AllConfirmedDownloaded"
    assert [t["fileTransferId"] for t in transfers(p, "krasj.txt")] == [tid]


def test_removing_the_receipt_stops_following(mount, p, tmp_path):
    m = start(mount, p, tmp_path, broker_reconcile=1)
    drop(m, "fjernet.txt", b"fjernet\n")
    tid = wait_receipt(m, "fjernet.txt")["fileTransferId"]
    os.unlink(receipt_path(m, "fjernet.txt"))
    wait_for(lambda: "no longer followed: its receipt was removed" in m.log(), 10,
             "the end of following")
    download_and_confirm(p, tid)
    time.sleep(2.5)
    assert not receipt_path(m, "fjernet.txt").exists()


def test_sidecar_is_busy_while_its_file_is_sent(mount, p, tmp_path):
    m = start(mount, p, tmp_path)
    p.fault(BROKER + "$", method="POST", delay_ms=1500)
    drop(m, "opptatt.txt", b"opptatt\n", {"propertyList": {"k": "v"}})
    d = area(m, "outbox") / PARTNER
    wait_for(lambda: os.getxattr(d / "opptatt.txt", "user.altinn.state") == b"initializing",
             10, "the transfer under way")
    meta = d / "opptatt.txt.meta.json"
    for op in (lambda: meta.write_bytes(b"{}"), lambda: os.unlink(meta),
               lambda: os.rename(meta, d / "annet.meta.json")):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno == errno.EBUSY
    receipt = wait_receipt(m, "opptatt.txt")
    assert receipt["propertyList"] == {"k": "v"}
    assert not meta.exists()
