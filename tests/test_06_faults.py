"""A dead platform, 5xx answers, dropped connections, truncated bodies,
stalls past `timeout`, and tokens that stop working. Nothing may hang; a
single hiccup is retried; a lasting failure is an errno, and the mount
recovers when the platform does."""

import errno
import json
import os
import threading
import time

import pytest

from localplatform import STORAGE, query_pages
from mounts import read_bytes
from procs import free_port, run_bounded

FAIL = (errno.EIO, errno.ETIMEDOUT)
INSTANCES = STORAGE + "/instances"


@pytest.fixture
def plat(own_platform):
    own_platform.clear_faults()
    yield own_platform
    own_platform.clear_faults()


@pytest.fixture(scope="module")
def parties(own_platform):
    return sorted({i["instanceOwner"]["partyId"] for i in own_platform.instances("ttd/soknad")[0]})


def expect_error(fn, limit, errnos=FAIL):
    elapsed, result, exc = run_bounded(fn, limit)
    assert exc is not None, f"expected an error, got {result!r:.200}"
    assert isinstance(exc, OSError) and exc.errno in errnos, repr(exc)
    return elapsed, exc


def test_dead_platform(mount, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    token = tmp_path / "token"
    token.write_text("not-a-real-token\n")
    token.chmod(0o600)  # altinnfs refuses token files others may read
    m = mount(localtest=False, platform=dead, apps_url=dead, token_file=str(token), timeout=2)
    _, _, exc = run_bounded(lambda: read_bytes(m / "README.txt"), 10)
    assert exc is None, exc
    _, raw, exc = run_bounded(lambda: read_bytes(m / "status.json"), 10)
    assert exc is None, exc
    json.loads(raw)
    expect_error(lambda: os.listdir(m / "apps/ttd/soknad/instances"), 2 + 5)
    _, raw, exc = run_bounded(lambda: read_bytes(m / "status.json"), 10)
    assert exc is None, exc
    doc = json.loads(raw)
    assert doc["platform"]["reachable"] is False
    assert doc["platform"]["url"].rstrip("/") == dead
    assert doc["platform"]["last_error"]
    # again: an error is not a hang the second time either
    expect_error(lambda: os.listdir(m / "apps/ttd/soknad/instances"), 2 + 5)


@pytest.mark.parametrize("fault", [
    {"status": 503},
    {"status": 503, "retry_after": 1},
    {"status": 500},
    {"drop": True},
], ids=["503", "503-retry-after", "500", "drop"])
def test_one_hiccup_is_retried(plat, mount, parties, fault):
    m = mount(localtest=plat, cache_ttl=60, timeout=5)
    mark = plat.mark()
    plat.fault(INSTANCES, count=1, **fault)
    _, got, exc = run_bounded(lambda: sorted(os.listdir(m / "apps/ttd/soknad/instances")), 60)
    assert exc is None, exc
    assert got == parties
    pages = query_pages(plat.since(mark), "ttd/soknad")
    # the fault was met (a drop is logged with status 0), then retried
    assert [e["status"] for e in pages][:2] == [fault.get("status", 0), 200]


def test_truncated_listing_is_never_partial(plat, mount, parties):
    m = mount(localtest=plat, cache_ttl=60, timeout=5)
    plat.fault(INSTANCES, count=1, truncate=True)
    _, got, exc = run_bounded(lambda: sorted(os.listdir(m / "apps/ttd/soknad/instances")), 60)
    if exc is not None:
        assert isinstance(exc, OSError) and exc.errno == errno.EIO, repr(exc)
    else:
        assert got == parties


def test_lasting_503_is_eio_and_recovers(plat, mount, parties):
    m = mount(localtest=plat, cache_ttl=1, timeout=5)
    plat.fault(INSTANCES, count=-1, status=503)
    _, exc = expect_error(lambda: os.listdir(m / "apps/ttd/soknad/instances"), 30, (errno.EIO,))
    doc = json.loads(read_bytes(m / "status.json"))
    assert doc["platform"]["last_error"]
    plat.clear_faults()
    time.sleep(2.5)
    _, got, exc = run_bounded(lambda: sorted(os.listdir(m / "apps/ttd/soknad/instances")), 60)
    assert exc is None, exc
    assert got == parties
    doc = json.loads(read_bytes(m / "status.json"))
    assert doc["platform"]["reachable"] is True


def test_stall_longer_than_timeout(plat, mount):
    timeout = 2
    m = mount(localtest=plat, cache_ttl=1, timeout=timeout)
    plat.fault(INSTANCES, count=-1, delay_ms=8000)
    expect_error(lambda: os.listdir(m / "apps/ttd/soknad/instances"), timeout + 5)
    # meanwhile the rest of the tree answers
    _, _, exc = run_bounded(lambda: read_bytes(m / "status.json"), 5)
    assert exc is None, exc


@pytest.fixture(scope="module")
def small_element(own_platform):
    party, guid = "50001", "5a1e0000-0000-4000-8000-000000000001"
    doc = own_platform.instance(party, guid)
    el = next(d for d in doc["data"] if d.get("filename") == "Søknad om støtte – æøå.pdf")
    rel = f"apps/ttd/tilskudd/instances/{party}/{guid}/data/vedlegg/{el['filename']}"
    return party, guid, el, rel, own_platform.data(party, guid, el["id"])


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}], ids=["503", "drop"])
def test_data_read_hiccup_is_retried(plat, mount, small_element, fault):
    party, guid, el, rel, want = small_element
    m = mount(localtest=plat, cache_ttl=60, timeout=5)
    os.stat(m / rel)
    dpath = plat.data_path(party, guid, el["id"])
    mark = plat.mark()
    plat.fault(dpath, count=1, **fault)
    _, got, exc = run_bounded(lambda: read_bytes(m / rel), 60)
    assert exc is None, exc
    assert got == want
    statuses = [e["status"] for e in plat.since(mark) if e["path"] == dpath]
    assert statuses[0] == fault.get("status", 0) and statuses[1] in (200, 206), statuses


def test_data_read_truncated_is_never_wrong(plat, mount, small_element):
    party, guid, el, rel, want = small_element
    m = mount(localtest=plat, cache_ttl=60, timeout=5)
    os.stat(m / rel)
    plat.fault(plat.data_path(party, guid, el["id"]), count=1, truncate=True)
    _, got, exc = run_bounded(lambda: read_bytes(m / rel), 60)
    if exc is not None:
        assert isinstance(exc, OSError) and exc.errno == errno.EIO, repr(exc)
    else:
        assert got == want


def test_data_read_416_inside_the_element_is_eio_not_an_empty_file(plat, mount, small_element):
    """A 416 at offset 0 of an element whose document gives its size is a
    broken answer: cp must fail, not exit 0 with a 0-byte copy."""
    party, guid, el, rel, want = small_element
    m = mount(localtest=plat, cache_ttl=60, timeout=5)
    assert os.stat(m / rel).st_size == len(want) > 0
    plat.fault(plat.data_path(party, guid, el["id"]), count=-1, status=416)
    expect_error(lambda: read_bytes(m / rel), 30, (errno.EIO,))
    plat.clear_faults()
    _, got, exc = run_bounded(lambda: read_bytes(m / rel), 60)
    assert exc is None, exc
    assert got == want


def test_data_read_lasting_503_is_eio(plat, mount, small_element):
    party, guid, el, rel, want = small_element
    m = mount(localtest=plat, cache_ttl=60, timeout=5)
    os.stat(m / rel)
    plat.fault(plat.data_path(party, guid, el["id"]), count=-1, status=503)
    expect_error(lambda: read_bytes(m / rel), 30, (errno.EIO,))
    plat.clear_faults()
    _, got, exc = run_bounded(lambda: read_bytes(m / rel), 60)
    assert exc is None, exc
    assert got == want


def test_data_read_stall(plat, mount, small_element):
    party, guid, el, rel, want = small_element
    timeout = 2
    m = mount(localtest=plat, cache_ttl=60, timeout=timeout)
    os.stat(m / rel)
    plat.fault(plat.data_path(party, guid, el["id"]), count=-1, delay_ms=8000)
    expect_error(lambda: read_bytes(m / rel), timeout + 5)


# One user operation, one deadline: a platform that hangs, stalls mid-body,
# trickles or never ends its answer costs one `timeout`, not two, and the
# request that timed out is not sent again for the same operation.
ONE_TIMEOUT = 4


def requests_to(plat, mark, path):
    return [e for e in plat.since(mark) if e["path"].startswith(path)]


@pytest.mark.parametrize("fault", [
    {"hang": True},
    {"stall": True},
    {"trickle_bps": 2},
    {"endless": 503},
], ids=["hang", "stall", "trickle", "endless-error-body"])
def test_data_read_fails_within_one_timeout(plat, mount, small_element, fault):
    party, guid, el, rel, want = small_element
    m = mount(localtest=plat, cache_ttl=60, timeout=ONE_TIMEOUT)
    os.stat(m / rel)  # seen, never read
    dpath = plat.data_path(party, guid, el["id"])
    mark = plat.mark()
    plat.fault(dpath, count=-1, **fault)
    elapsed, _ = expect_error(lambda: read_bytes(m / rel), ONE_TIMEOUT + 30)
    assert elapsed < ONE_TIMEOUT + 3, f"cat took {elapsed:.1f} s"
    # a 503 may be retried twice within the deadline: its endless body is
    # cut at its cap each time; a request that timed out is never retried
    tries = len(requests_to(plat, mark, dpath))
    assert tries == 1 or ("endless" in fault and tries <= 3), requests_to(plat, mark, dpath)
    # a new open tries again
    plat.clear_faults()
    _, got, exc = run_bounded(lambda: read_bytes(m / rel), 30)
    assert exc is None, exc
    assert got == want


@pytest.mark.parametrize("what", ["ls-party", "stat-instance"])
@pytest.mark.parametrize("fault", [{"hang": True}, {"trickle_bps": 2}], ids=["hang", "trickle"])
def test_lookup_fails_within_one_timeout(plat, mount, fault, what):
    party, guid = "50001", "5a1e0000-0000-4000-8000-000000000001"
    m = mount(localtest=plat, cache_ttl=60, timeout=ONE_TIMEOUT)
    mark = plat.mark()
    plat.fault(INSTANCES, count=-1, **fault)
    folder = m / "apps/ttd/tilskudd/instances" / party
    op = (lambda: os.listdir(folder)) if what == "ls-party" else (lambda: os.stat(folder / guid))
    elapsed, _ = expect_error(op, ONE_TIMEOUT + 30)
    assert elapsed < ONE_TIMEOUT + 3, f"{what} took {elapsed:.1f} s"
    assert len(requests_to(plat, mark, INSTANCES)) == 1, requests_to(plat, mark, INSTANCES)


def test_stream_read_trickled_fails_within_one_timeout(platform_factory, mount):
    """A read served by a stream fails within a timeout when the stream's
    next window trickles, instead of holding a FUSE thread for good. The
    windowed stream is the uncached path on a platform that honours Range
    (the cache fetches an element with one request, tested above)."""
    plat = platform_factory(extra_args=["--ranges"])
    party, guid = "50002", "b16f0000-0000-4000-8000-000000000002"
    [el] = [d for d in plat.instance(party, guid)["data"] if d.get("filename") == "stor-fil.bin"]
    m = mount(localtest=plat, cache_ttl=60, timeout=ONE_TIMEOUT, cache_max=0)
    fd = os.open(m / f"apps/ttd/tilskudd/instances/{party}/{guid}/data/{el['dataType']}"
                 / "stor-fil.bin", os.O_RDONLY)
    took = []

    def read_on():
        while True:
            t0 = time.monotonic()
            try:
                if not os.read(fd, 1 << 20):
                    return
            finally:
                took.append(time.monotonic() - t0)

    try:
        os.read(fd, 1 << 20)  # sequential: a stream is under way
        plat.fault(plat.data_path(party, guid, el["id"]), count=-1, trickle_bps=2)
        expect_error(read_on, 60)
    finally:
        os.close(fd)
    assert took[-1] < ONE_TIMEOUT + 3, f"the failing read took {took[-1]:.1f} s"


def test_rejected_token_is_eacces_until_the_file_changes(plat, mount, tmp_path, parties):
    token = tmp_path / "token"
    token.write_text("not-a-valid-token\n")
    token.chmod(0o600)  # altinnfs refuses token files others may read
    m = mount(localtest=plat, cache_ttl=1, timeout=5, token_file=str(token))
    expect_error(lambda: os.listdir(m / "apps/ttd/soknad/instances"), 30, (errno.EACCES,))
    time.sleep(1.1)  # a new mtime even at one-second resolution
    token.write_text(plat.token() + "\n")
    time.sleep(2.5)
    _, got, exc = run_bounded(lambda: sorted(os.listdir(m / "apps/ttd/soknad/instances")), 60)
    assert exc is None, exc
    assert got == parties


def test_expired_token_is_replaced_from_file(platform_factory, mount, tmp_path):
    p = platform_factory(token_lifetime=3)
    token = tmp_path / "token"
    token.write_text(p.token() + "\n")
    token.chmod(0o600)  # altinnfs refuses token files others may read
    m = mount(localtest=p, cache_ttl=1, timeout=5, token_file=str(token))
    assert "50001" in os.listdir(m / "apps/ttd/tilskudd/instances")
    time.sleep(4)
    token.write_text(p.new_token() + "\n")
    _, got, exc = run_bounded(lambda: os.listdir(m / "apps/ttd/tilskudd/instances"), 60)
    assert exc is None, exc
    assert "50001" in got


# A slow platform may hold only a bounded share of the FUSE workers (caps.h:
# ALT_PLATFORM_OPS): with more reads hanging on it than there are FUSE
# threads, the local files still answer at once.
MANY_READERS = 96   # more than fs/mount.c's FUSE threads


def test_a_hanging_platform_leaves_local_files_answering(plat, mount):
    party, guid = "50098", "5a1e0000-0000-4000-8000-0000000000a1"
    doc = plat.add_instance("ttd/tilskudd", party, guid=guid, data=[
        ("vedlegg", f"v{i:03d}.pdf", "application/pdf", b"%PDF-" + bytes([i]) * 100)
        for i in range(MANY_READERS)])
    try:
        m = mount(localtest=plat, cache_ttl=60, timeout=10)
        folder = m / f"apps/ttd/tilskudd/instances/{party}/{guid}/data/vedlegg"
        names = sorted(os.listdir(folder))
        assert len(names) == MANY_READERS
        for name in names:
            os.stat(folder / name)  # seen, never read
        outbox = m / "apps/ttd/soknad/outbox"
        os.mkdir(outbox / "party-50001")
        dpath = plat.data_path(party, guid, "")
        mark = plat.mark()
        plat.fault(dpath, count=-1, hang=True)
        results = []

        def cat(name):
            # os.read, not a file object: Python's buffered read turns
            # EAGAIN into None
            try:
                fd = os.open(folder / name, os.O_RDONLY)
                try:
                    results.append(os.read(fd, 1 << 16))
                finally:
                    os.close(fd)
            except OSError as e:
                results.append(e.errno)

        readers = [threading.Thread(target=cat, args=(n,), daemon=True) for n in names]
        for t in readers:
            t.start()
        # the platform holds as many of them as reach it
        t_end = time.monotonic() + 5
        while time.monotonic() < t_end and len(requests_to(plat, mark, dpath)) < 16:
            time.sleep(0.05)
        assert len(requests_to(plat, mark, dpath)) >= 16
        time.sleep(0.5)

        def local_work():
            json.loads(read_bytes(m / "status.json"))
            read_bytes(m / "README.txt")
            os.listdir(outbox)
            os.listdir(m / "apps/ttd/soknad/sent")
            with open(outbox / "party-50001" / ".brev.txt", "wb") as f:
                f.write(b"hello")
            os.unlink(outbox / "party-50001" / ".brev.txt")

        elapsed, _, exc = run_bounded(local_work, 30)
        assert exc is None, exc
        assert elapsed < 3, f"local files took {elapsed:.1f} s behind a hanging platform"
        # the platform's share: ALT_PLATFORM_OPS files' reads reached it, no
        # more (a slot whose request timed out may ask again, uncached)
        assert len({e["path"] for e in requests_to(plat, mark, dpath)}) <= 32
        plat.clear_faults()
        for t in readers:
            t.join(30)
        # those that waited on the platform failed; none got wrong bytes
        assert len(results) == MANY_READERS
        assert all(r in (errno.EIO, errno.ETIMEDOUT, errno.EAGAIN) or r[:5] == b"%PDF-"
                   for r in results), results
        os.rmdir(outbox / "party-50001")
    finally:
        plat.delete_instance(party, guid)
