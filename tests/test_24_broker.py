"""Altinn Broker as folders (docs/broker.md): a file dropped into
broker/<resourceId>/outbox/<recipient>/ becomes one Broker file transfer to
that organisation, exactly once; its receipt goes to sent/, a refusal or a
failed transfer to failed/ with .error.json. Checked against the local
platform's Broker: what it stored (bytes, checksum, sender, recipients) and
what the recipient can download."""

import errno
import hashlib
import json
import os
import time

import pytest

from outbox_util import expect_errno, wait_for
from procs import write_secret


RESOURCE = "altinnfs-demo-broker"
ME = "991825827"          # ttd, the daemon's organisation
PARTNER = "313000001"     # a sender and recipient of the resource
BROKER = "/broker/api/v1/filetransfer"
SCOPES = "altinn:serviceowner/instances.read altinn:broker.write altinn:broker.read"


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    r = own_platform.request("PUT", "/_localtest/broker/settings", auth=False,
                             body={"rateLimits": False, "scanDelay": 0.2, "malware": 0})
    assert r.status in (200, 204), r
    yield own_platform
    own_platform.clear_faults()


def org_token(p, org, number):
    r = p.get(f"/Home/GetTestOrgToken/{org}", auth=False,
              query={"orgNumber": number, "scopes": SCOPES})
    assert r.status == 200, r
    return r.body.decode().strip()


@pytest.fixture
def token_file(p, tmp_path):
    path = tmp_path / "broker-token"
    write_secret(path, org_token(p, "ttd", ME) + "\n")
    return path


@pytest.fixture
def m(mount, p, token_file):
    return mount(localtest=p, token_file=str(token_file), broker_resources=RESOURCE,
                 timeout=3, outbox_retry_max=1)


def start_mount(mount, p, token_file, **kw):
    return mount(localtest=p, token_file=str(token_file), broker_resources=RESOURCE,
                 timeout=3, outbox_retry_max=1, **kw)


def area(m, name):
    return m.path / "broker" / RESOURCE / name


def transfers(p):
    """Every transfer of the resource the local platform holds, by file name."""
    r = p.get("/_localtest/broker/transfers", auth=False, query={"resourceId": RESOURCE})
    assert r.status == 200, r
    return r.json()


def sent_by_me(p, name):
    return [t for t in transfers(p) if t["fileName"] == name and t["sender"].endswith(ME)]


def wait_receipt(m, recipient, name, timeout=30):
    path = area(m, "sent") / recipient / (name + ".json")
    wait_for(path.exists, timeout, f"the receipt {path}")
    return json.loads(path.read_bytes())


def download_as_partner(p, tid):
    tok = org_token(p, "partner", PARTNER)
    r = p.get(f"{BROKER}/{tid}/download", auth="Bearer " + tok)
    assert r.status == 200, r
    return r.body


def drop(m, recipient, name, data):
    d = area(m, "outbox") / recipient
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(data)


# ---- the tree

def test_tree_and_readme(m):
    assert "broker" in os.listdir(m.path)
    assert os.listdir(m.path / "broker") == [RESOURCE]
    assert sorted(os.listdir(m.path / "broker" / RESOURCE)) == [
        "events", "failed", "inbox", "outbox", "sent", "status.json"]
    assert (m.state_dir / "broker" / RESOURCE / "outbox").is_dir()
    readme = (m.path / "README.txt").read_text()
    assert "broker/<resourceId>/outbox/<recipient>/<name>" in readme
    # the apps keep their own outbox, and no Broker area appears in them
    assert sorted(os.listdir(m.path / "apps" / "ttd" / "soknad")) == sorted(
        os.listdir(m.path / "apps" / "ttd" / "tilskudd"))


def test_bad_recipient_refused_before_anything_is_sent(m, p):
    before = len(transfers(p))
    out = area(m, "outbox")
    for bad in ("313000002", "31300000", "3130000011", "abcdefghi", "org-313000001"):
        expect_errno(errno.EINVAL, os.mkdir, out / bad)
        assert not (out / bad).exists()
    expect_errno(errno.EPERM, (out / "loose.txt").write_bytes, b"x")
    os.mkdir(out / PARTNER)
    expect_errno(errno.EPERM, os.mkdir, out / PARTNER / "sub")
    time.sleep(1)
    assert len(transfers(p)) == before


# ---- sending

def test_drop_becomes_one_transfer(m, p):
    data = os.urandom(200_000) + b"slutt"
    drop(m, PARTNER, "rapport.bin", data)
    receipt = wait_receipt(m, PARTNER, "rapport.bin")
    [t] = sent_by_me(p, "rapport.bin")
    md5 = hashlib.md5(data).hexdigest()
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert t["checksum"] == md5 and receipt["checksum"] == md5
    assert [r["recipient"] for r in t["recipients"]] == ["0192:" + PARTNER]
    assert receipt["size"] == len(data) and receipt["fileTransferSize"] == len(data)
    assert receipt["fileTransferStatus"] == "Published"
    assert receipt["resourceId"] == RESOURCE and receipt["recipient"] == PARTNER
    assert receipt["name"] == "rapport.bin"
    assert receipt["sendersFileTransferReference"] == t["sendersFileTransferReference"]
    assert receipt["published"] and receipt["created"] and receipt["dropped"]
    [rs] = receipt["recipients"]
    assert rs["recipient"] == "0192:" + PARTNER
    assert rs["currentRecipientFileTransferStatusCode"] == "Initialized"
    assert not (area(m, "outbox") / PARTNER / "rapport.bin").exists()
    assert download_as_partner(p, t["fileTransferId"]) == data


def test_temporary_names_wait(m, p):
    drop(m, PARTNER, "kopi.part", b"halvferdig")
    time.sleep(1.5)
    assert sent_by_me(p, "kopi.part") == []
    os.rename(area(m, "outbox") / PARTNER / "kopi.part", area(m, "outbox") / PARTNER / "kopi.txt")
    receipt = wait_receipt(m, PARTNER, "kopi.txt")
    [t] = sent_by_me(p, "kopi.txt")
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert download_as_partner(p, t["fileTransferId"]) == b"halvferdig"


def test_malware_goes_to_failed(m, p):
    r = p.request("PUT", "/_localtest/broker/settings", auth=False, body={"malware": 1})
    assert r.status in (200, 204), r
    failed_before = status(m)["outbox"]["failed"]
    drop(m, PARTNER, "virus.exe", b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR")
    letter = area(m, "failed") / PARTNER / "virus.exe.error.json"
    wait_for(letter.exists, 30, "the dead letter")
    doc = json.loads(letter.read_bytes())
    assert "Failed" in doc["error"] and "Malware" in doc["error"]
    assert (area(m, "failed") / PARTNER / "virus.exe").read_bytes().startswith(b"X5O!")
    assert not (area(m, "outbox") / PARTNER / "virus.exe").exists()
    [t] = sent_by_me(p, "virus.exe")
    assert doc["fileTransferId"] == t["fileTransferId"]
    assert not (area(m, "sent") / PARTNER / "virus.exe.json").exists()
    assert status(m)["outbox"]["failed"] == failed_before + 1


def test_checksum_mismatch_goes_to_failed(m, p):
    """The platform checks the bytes against the MD5 given at initialize:
    bytes that changed on the way (here the journal's copy is altered while
    the initialize answer is held back) are refused and fail the transfer;
    the file goes to failed/ with Broker's reason."""
    rule = p.fault(BROKER + "$", method="POST", delay_ms=1500, after=True)
    data = os.urandom(40_000)
    drop(m, PARTNER, "endret.bin", data)
    wait_for(lambda: p.fault_hits(rule) > 0, 20, "the initialize")
    spooled = m.state_dir / "broker" / RESOURCE / "outbox" / PARTNER / "endret.bin"
    spooled.write_bytes(bytes(b ^ 0xFF for b in data[:10]) + data[10:])
    letter = area(m, "failed") / PARTNER / "endret.bin.error.json"
    wait_for(letter.exists, 30, "the dead letter")
    doc = json.loads(letter.read_bytes())
    # Broker refuses the upload (400) with the reason and fails the transfer
    assert "checksum of uploaded file did not match" in doc["error"], doc
    [t] = sent_by_me(p, "endret.bin")
    assert t["fileTransferStatus"] == "Failed", t
    assert doc["fileTransferId"] == t["fileTransferId"]
    assert not (area(m, "sent") / PARTNER / "endret.bin.json").exists()


def test_lost_initialize_answer_makes_one_transfer(m, p):
    p.fault(BROKER + "$", method="POST", status=503, after=True)
    data = b"en gang, bare en gang\n" * 100
    drop(m, PARTNER, "en-gang.txt", data)
    receipt = wait_receipt(m, PARTNER, "en-gang.txt")
    [t] = sent_by_me(p, "en-gang.txt")
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert download_as_partner(p, t["fileTransferId"]) == data
    assert "was initialized as" in m.log()


def test_kill9_after_drop_delivered_once(mount, p, token_file):
    m = start_mount(mount, p, token_file)
    # the platform holds the initialize answer back a while: the drop is
    # journaled, and the daemon dies before it knows the outcome
    p.fault(BROKER + "$", method="POST", delay_ms=3000, after=True)
    data = os.urandom(50_000)
    drop(m, PARTNER, "krasj.bin", data)
    time.sleep(1.0)
    m.kill9()
    p.clear_faults()
    m2 = start_mount(mount, p, token_file, state_dir=str(m.state_dir))
    receipt = wait_receipt(m2, PARTNER, "krasj.bin")
    # resolved by asking the platform, not by a second initialize
    assert "was initialized as" in m2.log()
    [t] = sent_by_me(p, "krasj.bin")
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert download_as_partner(p, t["fileTransferId"]) == data


# each step of a transfer, with the platform's request that does it: the
# kill comes while the platform holds that request's answer back after
# doing the work, so the daemon dies not knowing it was done
STEPS = {
    "initialized": (BROKER + "$", "POST"),
    "bytes-uploaded": (BROKER + "/*/upload$", "POST"),
    "following": (BROKER + "/*$", "GET"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_kill9_at_each_step_sends_once(mount, p, token_file, step):
    path, method = STEPS[step]
    m = start_mount(mount, p, token_file)
    mark = p.mark()
    rule = p.fault(path, method=method, delay_ms=4000, after=True)
    name = f"steg-{step}.bin"
    data = os.urandom(70_000)
    drop(m, PARTNER, name, data)
    wait_for(lambda: p.fault_hits(rule) > 0, 20, f"the {step} request")
    time.sleep(0.5)
    m.kill9()
    p.clear_faults()
    m2 = start_mount(mount, p, token_file, state_dir=str(m.state_dir))
    receipt = wait_receipt(m2, PARTNER, name, timeout=60)
    # one transfer, its bytes whole, the receipt naming it
    [t] = sent_by_me(p, name)
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert download_as_partner(p, t["fileTransferId"]) == data
    calls = p.since(mark)
    inits = [e for e in calls if e["method"] == "POST" and e["path"] == BROKER]
    assert len(inits) == 1, [e["status"] for e in inits]
    # the bytes were taken once; a second upload after the kill may be
    # refused (409: they had arrived) and is settled by the status
    uploads = [e for e in calls if e["method"] == "POST" and e["path"].endswith("/upload")]
    assert [e["status"] for e in uploads].count(409) == len(uploads) - 1, \
        [e["status"] for e in uploads]


def status(m):
    return json.loads((m.path / "broker" / RESOURCE / "status.json").read_bytes())


def test_status_json_per_resource(m, p):
    st = status(m)
    assert st["resourceId"] == RESOURCE
    assert st["outbox"]["pending"] == 0 and st["outbox"]["oldest_pending_at"] is None
    sent_before = st["outbox"]["sent"]
    # the platform refuses to initialize for a while: the drop waits
    p.fault(BROKER + "$", method="POST", status=429, retry_after=1, count=-1)
    drop(m, PARTNER, "venter.txt", b"venter litt")
    wait_for(lambda: status(m)["outbox"]["retrying"] == 1, 20, "a retrying transfer")
    st = status(m)["outbox"]
    assert st["pending"] == 1 and st["oldest_pending_at"]
    assert "429" in st["last_error"]
    assert sent_by_me(p, "venter.txt") == []
    p.clear_faults()
    wait_receipt(m, PARTNER, "venter.txt")
    # the receipt is written before the journal says so: a moment later
    wait_for(lambda: status(m)["outbox"]["pending"] == 0, 10, "the item to end")
    st = status(m)["outbox"]
    assert st["pending"] == 0 and st["retrying"] == 0 and st["last_error"] is None
    assert st["sent"] == sent_before + 1
    assert "status.json" in os.listdir(m.path / "broker" / RESOURCE)


def test_lost_upload_answer_settled_by_status(m, p):
    p.fault(BROKER + "/*/upload", method="POST", status=503, after=True)
    data = b"lastet opp, svaret forsvant\n" * 50
    drop(m, PARTNER, "opplastet.txt", data)
    receipt = wait_receipt(m, PARTNER, "opplastet.txt")
    [t] = sent_by_me(p, "opplastet.txt")
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert receipt["fileTransferStatus"] == "Published"
    assert download_as_partner(p, t["fileTransferId"]) == data


def test_file_being_sent_is_busy(m, p):
    p.fault(BROKER + "$", method="POST", delay_ms=1500)
    drop(m, PARTNER, "opptatt.txt", b"first")
    path = area(m, "outbox") / PARTNER / "opptatt.txt"
    wait_for(lambda: os.getxattr(path, "user.altinn.state") == b"initializing", 10,
             "the transfer under way")
    expect_errno(errno.EBUSY, path.write_bytes, b"second")
    expect_errno(errno.EBUSY, os.unlink, path)
    expect_errno(errno.EBUSY, os.rename, path, path.with_name("annet.txt"))
    receipt = wait_receipt(m, PARTNER, "opptatt.txt")
    [t] = sent_by_me(p, "opptatt.txt")
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert download_as_partner(p, t["fileTransferId"]) == b"first"


def test_refused_before_work_is_asked_again_once_settled(m, p):
    # a 503 before any work: the outcome is unknown to the daemon, which
    # looks, finds nothing, waits out the settle time (2 x timeout + 5 s)
    # and only then initializes again
    p.fault(BROKER + "$", method="POST", status=503)
    data = b"andre gang\n"
    drop(m, PARTNER, "andre-gang.txt", data)
    receipt = wait_receipt(m, PARTNER, "andre-gang.txt", timeout=60)
    [t] = sent_by_me(p, "andre-gang.txt")
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert "not found yet" in m.log()
    assert download_as_partner(p, t["fileTransferId"]) == data
