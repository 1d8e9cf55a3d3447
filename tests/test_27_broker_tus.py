"""Large Broker files by TUS (docs/broker.md, "Large files"): a file of
broker_tus_threshold bytes or more is uploaded by the TUS resumable
protocol in PATCHes of broker_tus_chunk bytes; a kill -9, a cut connection
or a lost answer is resumed from the platform's offset (HEAD), and an
upload the platform let expire is made again or, when Broker failed the
transfer, ends in failed/. The threshold and chunk are made small here so
the files stay small. Checked against what the local platform received:
its request log counts the body bytes of every PATCH."""

import hashlib
import json
import os
import time

import pytest

from outbox_util import wait_for
from procs import write_secret


RESOURCE = "altinnfs-demo-broker"
ME = "991825827"          # ttd, the daemon's organisation
PARTNER = "313000001"     # a recipient of the resource
BROKER = "/broker/api/v1/filetransfer"
TUS = BROKER + "/upload/tus/"
SCOPES = "altinn:serviceowner/instances.read altinn:broker.write altinn:broker.read"
CHUNK = 64 << 10
THRESHOLD = 256 << 10


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    before = own_platform.get("/_localtest/broker/settings", auth=False).json()
    settings(own_platform, rateLimits=False, scanDelay=0.2, malware=0)
    yield own_platform
    own_platform.clear_faults()
    settings(own_platform, **{k: before[k] for k in ("tusExpiration", "stuckAfter",
                                                     "stuckActivityWindow", "cutUploadAfter",
                                                     "cutCount", "cutStatus")})


def settings(p, **kw):
    r = p.request("PUT", "/_localtest/broker/settings", auth=False, body=kw)
    assert r.status in (200, 204), r


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


def start_mount(mount, p, token_file, **kw):
    return mount(localtest=p, token_file=str(token_file), broker_resources=RESOURCE,
                 timeout=3, outbox_retry_max=1, broker_tus_threshold=str(THRESHOLD),
                 broker_tus_chunk=str(CHUNK), **kw)


@pytest.fixture
def m(mount, p, token_file):
    return start_mount(mount, p, token_file)


def area(m, name):
    return m.path / "broker" / RESOURCE / name


def sent_by_me(p, name):
    r = p.get("/_localtest/broker/transfers", auth=False, query={"resourceId": RESOURCE})
    assert r.status == 200, r
    return [t for t in r.json() if t["fileName"] == name and t["sender"].endswith(ME)]


def wait_receipt(m, name, timeout=40):
    path = area(m, "sent") / PARTNER / (name + ".json")
    wait_for(path.exists, timeout, f"the receipt {path}")
    return json.loads(path.read_bytes())


def download_as_partner(p, tid):
    tok = org_token(p, "partner", PARTNER)
    r = p.get(f"{BROKER}/{tid}/download", auth="Bearer " + tok)
    assert r.status == 200, r
    return r.body


def drop(m, name, data):
    d = area(m, "outbox") / PARTNER
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(data)


def tus_requests(p, mark, tid, method=None):
    return [e for e in p.since(mark) if e["path"] == TUS + tid and
            (method is None or e["method"] == method)]


def resent(patches, size):
    """Bytes the platform received more than once: what its PATCHes read, less the file."""
    got = sum(e["received"] for e in patches)
    assert got >= size
    return got - size


def arrived_whole(m, p, name, data):
    receipt = wait_receipt(m, name)
    [t] = sent_by_me(p, name)
    md5 = hashlib.md5(data).hexdigest()
    assert t["fileTransferId"] == receipt["fileTransferId"]
    assert receipt["fileTransferStatus"] == "Published"
    assert t["checksum"] == md5 and receipt["checksum"] == md5
    assert receipt["size"] == len(data) and receipt["fileTransferSize"] == len(data)
    assert download_as_partner(p, t["fileTransferId"]) == data
    assert not (area(m, "outbox") / PARTNER / name).exists()
    return t["fileTransferId"]


# ---- tests

def test_large_file_by_tus_arrives_whole(m, p):
    mark = p.mark()
    data = os.urandom(16 * CHUNK + 12345)
    drop(m, "stor.bin", data)
    tid = arrived_whole(m, p, "stor.bin", data)
    reqs = tus_requests(p, mark, tid)
    assert [e["method"] for e in reqs if e["method"] != "PATCH"] == ["POST"]
    patches = [e for e in reqs if e["method"] == "PATCH"]
    # one PATCH per chunk, each at the offset where the last one ended
    assert [int(e["uploadOffset"]) for e in patches] == list(range(0, len(data), CHUNK))
    assert all(e["status"] == 204 for e in patches)
    assert resent(patches, len(data)) == 0
    # not by the one-POST upload
    assert not [e for e in p.since(mark) if e["path"] == f"{BROKER}/{tid}/upload"]

    # a file just below the threshold still goes in one POST
    mark = p.mark()
    small = os.urandom(THRESHOLD - 1)
    drop(m, "mindre.bin", small)
    tid = arrived_whole(m, p, "mindre.bin", small)
    assert [e["method"] for e in p.since(mark) if e["path"] == f"{BROKER}/{tid}/upload"] == \
        ["POST"]
    assert not [e for e in p.since(mark) if e["path"].startswith(TUS)]


def test_kill9_mid_tus_resumes_from_platform_offset(mount, p, token_file):
    m = start_mount(mount, p, token_file)
    mark = p.mark()
    # the platform takes the third chunk and then holds its answer back:
    # the daemon dies with that PATCH on its way
    # (rules are tried in order: the first two PATCHes pass, the third is held)
    p.fault(TUS + "*", method="PATCH", count=2, delay_ms=1)
    p.fault(TUS + "*", method="PATCH", delay_ms=5000, after=True, count=1)
    data = os.urandom(10 * CHUNK + 777)
    drop(m, "krasj-stor.bin", data)
    wait_for(lambda: any(t["tusOffset"] == 3 * CHUNK for t in sent_by_me(p, "krasj-stor.bin")),
             20, "three chunks on the platform")
    m.kill9()
    [t] = sent_by_me(p, "krasj-stor.bin")
    held = t["tusOffset"]
    assert held == 3 * CHUNK and t["fileTransferStatus"] == "UploadStarted"

    m2 = start_mount(mount, p, token_file, state_dir=str(m.state_dir))
    tid = arrived_whole(m2, p, "krasj-stor.bin", data)
    assert tid == t["fileTransferId"]
    assert f"TUS upload resumes at {held} of {len(data)} bytes" in m2.log()
    reqs = tus_requests(p, mark, tid)
    # one upload made, never made again; the restart asked HEAD first
    assert [e["method"] for e in reqs].count("POST") == 1
    patches = [e for e in reqs if e["method"] == "PATCH"]
    after = [e for e in patches if e["seq"] > max(x["seq"] for x in reqs
                                                  if x["method"] == "HEAD")]
    assert int(after[0]["uploadOffset"]) == held
    assert resent(patches, len(data)) < 2 * CHUNK


def test_cut_patch_and_lost_answer_resume_from_offset(m, p):
    mark = p.mark()
    # the first PATCH is cut off mid-chunk (the platform keeps what came),
    # the answer to a later one is lost after the platform took it
    settings(p, cutUploadAfter=CHUNK // 2 + 100, cutCount=1, cutStatus=None)
    p.fault(TUS + "*", method="PATCH", count=2, delay_ms=1)
    p.fault(TUS + "*", method="PATCH", status=503, after=True, count=1)
    data = os.urandom(6 * CHUNK + 5)
    drop(m, "avbrutt.bin", data)
    tid = arrived_whole(m, p, "avbrutt.bin", data)
    reqs = tus_requests(p, mark, tid)
    patches = [e for e in reqs if e["method"] == "PATCH"]
    offsets = [int(e["uploadOffset"]) for e in patches]
    assert offsets[0] == 0 and offsets[1] == CHUNK // 2 + 100     # resumed mid-chunk
    assert 503 in [e["status"] for e in patches]
    assert [e["method"] for e in reqs].count("HEAD") >= 2
    assert [e["method"] for e in reqs].count("POST") == 1
    # what the cut PATCH carried past the cut, at most
    assert resent(patches, len(data)) < CHUNK


def test_expired_upload_is_made_again(m, p):
    mark = p.mark()
    # the first PATCH is refused for a while; meanwhile the platform lets
    # the idle upload expire
    settings(p, tusExpiration=1.0)
    p.fault(TUS + "*", method="PATCH", status=503, retry_after=3, count=1)
    data = os.urandom(5 * CHUNK)
    drop(m, "utlopt.bin", data)
    tid = arrived_whole(m, p, "utlopt.bin", data)
    reqs = tus_requests(p, mark, tid)
    assert [e["method"] for e in reqs].count("POST") == 2
    assert [e["status"] for e in reqs if e["method"] == "HEAD"][:1] == [404]
    assert "has no TUS upload 1" in m.log()
    assert "TUS upload 2 of" in m.log()


def test_expired_and_failed_goes_to_failed(m, p):
    # as above, but Broker fails the transfer stuck in UploadStarted
    settings(p, tusExpiration=1.0, stuckAfter=1.0, stuckActivityWindow=0.5)
    p.fault(TUS + "*", method="PATCH", status=503, retry_after=3, count=1)
    data = os.urandom(5 * CHUNK)
    drop(m, "sittende.bin", data)
    letter = area(m, "failed") / PARTNER / "sittende.bin.error.json"
    wait_for(letter.exists, 30, "the dead letter")
    doc = json.loads(letter.read_bytes())
    assert doc["error"].startswith("Failed: ") and "stuck" in doc["error"]
    assert (area(m, "failed") / PARTNER / "sittende.bin").read_bytes() == data
    [t] = sent_by_me(p, "sittende.bin")
    assert t["fileTransferStatus"] == "Failed" and doc["fileTransferId"] == t["fileTransferId"]
    assert not (area(m, "outbox") / PARTNER / "sittende.bin").exists()
