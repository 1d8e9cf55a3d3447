"""Receiving Altinn Broker transfers (docs/broker.md, "Receiving"): each
transfer Published to the daemon's organisation and not confirmed by it is
broker/<resourceId>/inbox/<fileTransferId>/ with the file and
transfer.json. Listing never downloads (the local platform's request log
says so), reading does, rm confirms the download, durably, across a kill -9
and an outage; a file never read is confirmed after a one-byte probe."""

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
PARTNER = "313000001"     # a sender of the resource
BROKER = "/broker/api/v1/filetransfer"
SCOPES = ("altinn:serviceowner/instances.read altinn:broker.write altinn:broker.read "
          "altinn:events.subscribe")


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    settings(own_platform, rateLimits=False, scanDelay=0.1, malware=0)
    yield own_platform
    own_platform.clear_faults()
    settings(own_platform, rateLimits=False)


def settings(p, **kw):
    r = p.request("PUT", "/_localtest/broker/settings", auth=False, body=kw)
    assert r.status in (200, 204), r


_tokens = {}


def org_token(p, org, number):
    key = (p.port, number)
    if key not in _tokens:
        r = p.get(f"/Home/GetTestOrgToken/{org}", auth=False,
                  query={"orgNumber": number, "scopes": SCOPES})
        assert r.status == 200, r
        _tokens[key] = r.body.decode().strip()
    return _tokens[key]


@pytest.fixture
def token_file(p, tmp_path):
    path = tmp_path / "broker-token"
    write_secret(path, org_token(p, "ttd", ME) + "\n")
    return path


def start_mount(mount, p, token_file, **kw):
    kw.setdefault("broker_poll", 1)
    return mount(localtest=p, token_file=str(token_file), broker_resources=RESOURCE,
                 timeout=3, outbox_retry_max=1, **kw)


@pytest.fixture
def m(mount, p, token_file):
    return start_mount(mount, p, token_file)


def send_to_me(p, name, data, props=None):
    """The partner sends a transfer to us; its id once Published."""
    auth = "Bearer " + org_token(p, "partner", PARTNER)
    body = {"fileName": name, "resourceId": RESOURCE, "sender": "0192:" + PARTNER,
            "recipients": ["0192:" + ME], "sendersFileTransferReference": "ref-" + name[:40],
            "propertyList": props or {"kind": "test"},
            "checksum": hashlib.md5(data).hexdigest()}
    r = p.request("POST", BROKER, body=body, auth=auth)
    assert r.status == 200, r
    tid = r.json()["fileTransferId"]
    r = p.request("POST", f"{BROKER}/{tid}/upload", body=data, auth=auth,
                  content_type="application/octet-stream")
    assert r.status == 200, r
    wait_for(lambda: overview(p, tid)["fileTransferStatus"] == "Published", 10,
             f"transfer {tid} published")
    return tid


def overview(p, tid):
    r = p.get(f"{BROKER}/{tid}", auth="Bearer " + org_token(p, "partner", PARTNER))
    assert r.status == 200, r
    return r.json()


def my_status(p, tid):
    for r in overview(p, tid)["recipients"]:
        if r["recipient"].endswith(ME):
            return r["currentRecipientFileTransferStatusCode"]
    return None


def inbox(m):
    return m.path / "broker" / RESOURCE / "inbox"


def wait_entry(m, tid, timeout=20):
    d = inbox(m) / tid
    wait_for(lambda: (d / "transfer.json").exists(), timeout, f"inbox entry {tid}")
    return d


def data_file(d):
    [name] = [n for n in os.listdir(d) if n != "transfer.json"]
    return d / name


def broker_requests(p, mark, tail):
    return [e for e in p.since(mark) if e["path"].startswith(BROKER) and
            e["path"].endswith(tail)]


def status(m):
    return json.loads((m.path / "broker" / RESOURCE / "status.json").read_bytes())


# ---- listing

def test_listing_and_stat_never_download(m, p):
    data = os.urandom(300_000)
    mark = p.mark()
    tid = send_to_me(p, "rapport.xml", data, {"saksnr": "2026/17"})
    d = wait_entry(m, tid)
    assert sorted(os.listdir(d)) == ["rapport.xml", "transfer.json"]
    assert os.stat(d / "rapport.xml").st_size == len(data)
    os.listdir(inbox(m))
    doc = json.loads((d / "transfer.json").read_bytes())
    assert doc["fileTransferId"] == tid and doc["resourceId"] == RESOURCE
    assert doc["sender"].endswith(PARTNER)
    assert doc["sendersFileTransferReference"] == "ref-rapport.xml"
    assert doc["propertyList"] == {"saksnr": "2026/17"}
    assert doc["fileTransferStatus"] == "Published"
    assert doc["fileName"] == "rapport.xml" and doc["localName"] == "rapport.xml"
    assert doc["checksum"] == hashlib.md5(data).hexdigest()
    assert doc["fileTransferSize"] == len(data)
    time.sleep(2.5)  # more rounds of searching
    assert broker_requests(p, mark, "/download") == []
    assert my_status(p, tid) == "Initialized"
    # the user makes nothing in inbox/
    expect_errno(errno.EPERM, (d / "new.txt").write_bytes, b"x")
    expect_errno(errno.EPERM, os.mkdir, inbox(m) / "mine")
    st = status(m)["inbox"]
    assert st["entries"] >= 1 and st["searched_at"] and st["last_error"] is None


def cached(m, tid):
    """The cache's files of the transfer (state_dir/cache/<id>-...)."""
    return [n for n in os.listdir(m.state_dir / "cache") if n.startswith(tid)]


def test_read_downloads_once_and_rm_confirms(m, p):
    data = os.urandom(2_000_000) + b"slutt"
    tid = send_to_me(p, "stor.bin", data)
    d = wait_entry(m, tid)
    mark = p.mark()
    assert (d / "stor.bin").read_bytes() == data
    assert (d / "stor.bin").read_bytes() == data  # the second read is the cache's
    assert len(broker_requests(p, mark, "/download")) == 1
    assert my_status(p, tid) == "DownloadStarted"
    assert cached(m, tid), "the bytes are kept in the cache"
    os.unlink(d / "stor.bin")
    wait_for(lambda: my_status(p, tid) == "DownloadConfirmed", 10, "the confirmation")
    wait_for(lambda: not d.exists(), 10, "the entry to go")
    assert not cached(m, tid), "a confirmed transfer's bytes left in the cache"
    [c] = broker_requests(p, mark, "/confirmdownload")
    assert c["method"] == "POST" and c["status"] == 204
    assert len(broker_requests(p, mark, "/download")) == 1  # read: no probe
    time.sleep(2.5)
    assert not d.exists()  # never shown again


def test_a_read_again_is_of_the_file_as_it_is_on_disk(mount, p, token_file):
    """A read again may be served from the kernel's pages of the last one,
    only while the local file is the same: one changed in place (same size,
    a new mtime) or replaced by a rename (another inode, the old mtime) is
    read anew. Without a cache the transfer is fetched to the entry's file
    on disk, which is what is read."""
    m = start_mount(mount, p, token_file, cache_max=0)
    data = os.urandom(1_500_000)
    tid = send_to_me(p, "igjen.bin", data)
    d = wait_entry(m, tid)
    mark = p.mark()
    assert (d / "igjen.bin").read_bytes() == data
    assert (d / "igjen.bin").read_bytes() == data
    assert len(broker_requests(p, mark, "/download")) == 1
    disk = m.state_dir / "broker" / RESOURCE / "inbox" / tid / "igjen.bin"
    st = os.stat(disk)
    changed = bytes(b ^ 0xFF for b in data[:4096]) + data[4096:]
    with open(disk, "r+b") as f:
        f.write(changed[:4096])
    os.utime(disk, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert (d / "igjen.bin").read_bytes() == changed
    again = os.urandom(len(data))
    tmp = disk.with_name(".erstatning")
    tmp.write_bytes(again)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    os.rename(tmp, disk)
    assert (d / "igjen.bin").read_bytes() == again
    assert len(broker_requests(p, mark, "/download")) == 1


def test_rm_r_of_the_folder_confirms(m, p):
    tid = send_to_me(p, "mappe.txt", b"hei\n")
    d = wait_entry(m, tid)
    assert (d / "mappe.txt").read_bytes() == b"hei\n"
    for n in os.listdir(d):
        os.unlink(d / n)
    os.rmdir(d)
    wait_for(lambda: my_status(p, tid) == "DownloadConfirmed", 10, "the confirmation")
    time.sleep(2.5)
    assert not d.exists()


def test_never_read_then_rm_probes_one_byte(m, p):
    data = os.urandom(500_000)
    tid = send_to_me(p, "ulest.bin", data)
    d = wait_entry(m, tid)
    mark = p.mark()
    os.unlink(d / "ulest.bin")
    wait_for(lambda: my_status(p, tid) == "DownloadConfirmed", 10, "the confirmation")
    downloads = broker_requests(p, mark, "/download")
    assert len(downloads) == 1 and downloads[0]["range"] == "bytes=0-0", downloads
    assert downloads[0]["bytes"] <= 1
    wait_for(lambda: not d.exists(), 10, "the entry to go")


# ---- reading through the content cache

def download_sent(p, mark):
    """Bytes the platform has sent for each download since mark (they grow
    as the answer goes out)."""
    return [e["bytes"] for e in broker_requests(p, mark, "/download")]


def test_first_read_streams_as_the_download_proceeds(m, p):
    """The open does not wait for the whole transfer: the first bytes are
    read while the platform is still sending (here slowly, at 1 MiB/s), and
    the whole file is the one download's bytes."""
    data = os.urandom(8 << 20)
    tid = send_to_me(p, "strom.bin", data)
    d = wait_entry(m, tid)
    mark = p.mark()
    p.fault(f"{BROKER}/{tid}/download", trickle_bps=1 << 20)
    with open(d / "strom.bin", "rb") as f:
        assert f.read(65536) == data[:65536]
        [sent] = download_sent(p, mark)
        assert sent < len(data), "the first read waited for the whole download"
        assert f.read() == data[65536:]
    p.assert_faults_fired()
    assert len(download_sent(p, mark)) == 1
    assert (d / "strom.bin").read_bytes() == data  # the cache's copy: no request
    assert len(download_sent(p, mark)) == 1


def test_partial_read_then_close_stops_the_download(m, p):
    """head of a large transfer fetches a few MiB, not the file; reading it
    all later resumes from there with a Range (Broker honours it)."""
    data = os.urandom(48 << 20)
    tid = send_to_me(p, "hode.bin", data)
    d = wait_entry(m, tid)
    mark = p.mark()
    with open(d / "hode.bin", "rb") as f:
        assert f.read(65536) == data[:65536]
    last = [None, 0.0]

    def settled():   # the bytes sent unchanged for a second
        now, sent = time.monotonic(), download_sent(p, mark)
        if sent != last[0]:
            last[:] = [sent, now]
        return now - last[1] >= 1.0
    wait_for(settled, 30, "the download to stop")
    [sent] = last[0]
    assert sent < len(data) // 2, f"{sent} bytes of {len(data)} fetched for a 64 KiB read"
    assert (d / "hode.bin").read_bytes() == data
    downloads = broker_requests(p, mark, "/download")
    assert len(downloads) == 2, downloads
    first = int(downloads[1]["range"].split("=")[1].split("-")[0])
    assert 0 < first <= sent, downloads[1]["range"]


@pytest.mark.parametrize("cache_max", ["auto", "0"])
def test_a_file_not_matching_its_checksum_is_refused(mount, p, token_file, cache_max):
    """Bytes whose MD5 is not Broker's checksum never make a whole file:
    streamed through the cache, the read of the end fails with EIO; fetched
    whole (no cache), the open does. Every open tries again, and fails
    again while the platform's bytes stay wrong."""
    kw = {} if cache_max == "auto" else {"cache_max": 0}
    m = start_mount(mount, p, token_file, **kw)
    data = os.urandom(3_000_000)
    tid = send_to_me(p, "feil.bin", data)
    d = wait_entry(m, tid)
    r = p.request("POST", f"/_localtest/broker/transfers/{tid}/corrupt", auth=False)
    assert r.status == 204, r
    mark = p.mark()
    expect_errno(errno.EIO, (d / "feil.bin").read_bytes)
    expect_errno(errno.EIO, (d / "feil.bin").read_bytes)
    assert len(broker_requests(p, mark, "/download")) == 2
    assert "MD5" in m.log()


def test_expired_transfer_leaves_the_inbox(m, p):
    tid = send_to_me(p, "utlopt.txt", b"utlopt\n")
    d = wait_entry(m, tid)
    assert (d / "utlopt.txt").read_bytes() == b"utlopt\n"
    assert cached(m, tid)
    r = p.request("POST", f"/_localtest/broker/transfers/{tid}/expire", auth=False)
    assert r.status == 200 and r.json()["fileTransferStatus"] == "Purged", r
    wait_for(lambda: not d.exists(), 15, "the purged transfer to leave inbox/")
    assert not cached(m, tid), "a purged transfer's bytes left in the cache"
    assert "no longer Published to us" in m.log()


# ---- durability

def test_confirm_survives_kill9(mount, p, token_file):
    m = start_mount(mount, p, token_file)
    tid = send_to_me(p, "krasj.txt", b"krasj\n")
    d = wait_entry(m, tid)
    assert (d / "krasj.txt").read_bytes() == b"krasj\n"
    # Broker holds every confirmation's answer back: the daemon dies waiting
    p.fault(BROKER + "/*/confirmdownload", count=-1, hang=True)
    os.unlink(d / "krasj.txt")
    time.sleep(0.5)
    m.kill9()
    p.clear_faults()
    assert my_status(p, tid) == "DownloadStarted"
    m2 = start_mount(mount, p, token_file, state_dir=str(m.state_dir))
    wait_for(lambda: my_status(p, tid) == "DownloadConfirmed", 15, "the confirmation")
    d2 = inbox(m2) / tid
    wait_for(lambda: not d2.exists(), 10, "the entry to go")


def test_confirm_waits_out_an_outage(m, p):
    tid = send_to_me(p, "nede.txt", b"nede\n")
    d = wait_entry(m, tid)
    p.fault(BROKER + "/*/confirmdownload", count=-1, status=503)
    os.unlink(d / "nede.txt")
    wait_for(lambda: status(m)["inbox"]["confirming"] >= 1, 10, "confirming in status.json")
    time.sleep(2)
    assert my_status(p, tid) == "DownloadStarted"  # probed, not confirmed
    assert (d / "transfer.json").exists()  # the folder stays until Broker has it
    p.clear_faults()
    wait_for(lambda: my_status(p, tid) == "DownloadConfirmed", 30, "the confirmation")
    wait_for(lambda: not d.exists(), 10, "the entry to go")
    assert status(m)["inbox"]["confirming"] == 0


# ---- hostile names

@pytest.mark.parametrize("name,want", [
    ("../../etc/passwd", "_._.._etc_passwd"),
    ("a\x01b\x7fc.txt", "a_b_c.txt"),
    ("..", "__"),
    (".skjult", "_skjult"),
    ("transfer.json", "_transfer.json"),
    ("æøå \u202e.pdf", "æøå \u202e.pdf"),
])
def test_hostile_names(m, p, name, want):
    tid = send_to_me(p, name, b"innhold")
    d = wait_entry(m, tid)
    assert sorted(os.listdir(d)) == sorted([want, "transfer.json"])
    doc = json.loads((d / "transfer.json").read_bytes())
    assert doc["fileName"] == name and doc["localName"] == want
    assert (d / want).read_bytes() == b"innhold"
    assert os.listdir(m.state_dir / "broker" / RESOURCE / "inbox" / tid) != []


def test_long_name_keeps_extension(m, p):
    name = "x" * 250 + ".pdf"
    tid = send_to_me(p, name, b"lang")
    d = wait_entry(m, tid)
    f = data_file(d)
    assert f.name.endswith(".pdf") and len(f.name.encode()) <= 255
    assert f.read_bytes() == b"lang"


# ---- events

@pytest.fixture
def pe(platform_factory, tmp_path):
    """A platform whose Events answer at once (the real one holds events back 30 s)."""
    p = platform_factory(extra_args=["--min-event-age", "0"])
    settings(p, rateLimits=False, scanDelay=0.1, malware=0)
    return p


@pytest.fixture
def pe_token(pe, tmp_path):
    path = tmp_path / "events-token"
    write_secret(path, org_token(pe, "ttd", ME) + "\n")
    return path


def test_published_event_shows_a_transfer_before_the_next_search(mount, pe, pe_token):
    p = pe
    m = start_mount(mount, p, pe_token, broker_poll=3600)
    wait_for(lambda: status(m)["inbox"]["searched_at"], 10, "the first search")
    time.sleep(3.5)  # the first events round starts at the end of what Events holds
    assert status(m)["inbox"]["events_error"] is None
    mark = p.mark()
    tid = send_to_me(p, "fort.txt", b"fort\n")
    d = wait_entry(m, tid, timeout=10)
    assert (d / "fort.txt").read_bytes() == b"fort\n"
    assert not [e for e in p.since(mark) if e["path"] == BROKER and e["method"] == "GET"]
    ev_dir = m.path / "broker" / RESOURCE / "events"
    [name] = [n for n in os.listdir(ev_dir) if "_published_" in n]
    ev = json.loads((ev_dir / name).read_bytes())
    assert ev["resourceinstance"] == tid and ev["subject"].endswith(ME)
    assert ev["type"] == "no.altinn.broker.published"
    assert status(m)["inbox"]["events_cursor"] == ev["id"]
    os.unlink(d / "fort.txt")
    wait_for(lambda: [n for n in os.listdir(ev_dir) if "_downloadconfirmed_" in n], 10,
             "the downloadconfirmed event file")
    os.unlink(ev_dir / name)  # event files are the user's to remove


def test_without_the_events_scope_the_search_still_serves(mount, p, tmp_path):
    r = p.get("/Home/GetTestOrgToken/ttd", auth=False, query={
        "orgNumber": ME, "scopes": "altinn:broker.write altinn:broker.read"})
    path = tmp_path / "no-events-token"
    write_secret(path, r.body.decode().strip() + "\n")
    m = start_mount(mount, p, path)
    wait_for(lambda: status(m)["inbox"]["events_error"], 10, "events turned off")
    tid = send_to_me(p, "uten.txt", b"uten\n")
    d = wait_entry(m, tid)
    assert (d / "uten.txt").read_bytes() == b"uten\n"


# ---- limits

def test_searches_stay_within_ten_a_minute(m, p):
    mark = p.mark()
    time.sleep(8)  # broker_poll = 1: the daemon would search twice a second
    searches = [e for e in p.since(mark) if e["path"] == BROKER and e["method"] == "GET"]
    assert 2 <= len(searches) <= 10, len(searches)


def test_429_retry_after_is_honoured(mount, p, token_file):
    settings(p, rateLimits=True)
    auth = "Bearer " + org_token(p, "ttd", ME)
    # the daemon's organisation spends its searches for this minute
    for _ in range(12):
        r = p.get(BROKER, auth=auth, query={"resourceId": RESOURCE})
    assert r.status == 429 and int(r.header("Retry-After")) > 10
    mark = p.mark()
    m = start_mount(mount, p, token_file)
    wait_for(lambda: status(m)["inbox"]["last_error"], 10, "the 429 in status.json")
    assert "429" in status(m)["inbox"]["last_error"]
    time.sleep(6)
    searches = [e for e in p.since(mark) if e["path"] == BROKER and e["method"] == "GET"]
    assert 1 <= len(searches) <= 3, searches  # asked, refused, then waited
    assert all(e["status"] == 429 for e in searches)
