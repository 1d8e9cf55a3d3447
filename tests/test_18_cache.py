"""The data element cache (docs/cache.md): one shared download per element,
reads again from local disk, LRU bound, restart validity, damaged entries,
a full disk, replaced elements; against a platform that ignores Range (as
Storage) and one that honours it (--ranges)."""

import errno
import hashlib
import json
import os
import random
import subprocess
import threading
import time
import uuid

import pytest

from mounts import mount_ctx

MiB = 1 << 20
TILSKUDD = "ttd/tilskudd"
MODES = [pytest.param([], id="no-ranges"), pytest.param(["--ranges"], id="ranges")]


def add_elements(p, sizes, party=50170, random_bytes=False):
    """One new tilskudd instance with one vedlegg element per size: a list
    of dicts with id, size, rel (path below the mount), path (platform)."""
    guid = str(uuid.uuid4())
    data = []
    for i, n in enumerate(sizes):
        d = {"dataType": "vedlegg", "filename": f"f{i}.bin",
             "contentType": "application/octet-stream"}
        if random_bytes:
            import base64
            d["content_b64"] = base64.b64encode(os.urandom(n)).decode()
        else:
            d["pattern_size"] = n
        data.append(d)
    body = {"appId": TILSKUDD, "partyId": str(party), "organisationNumber": "910000001",
            "guid": guid, "data": data}
    r = p.request("POST", "/_localtest/instances", body=body, auth=False)
    assert r.status == 201, r
    out = []
    for el in r.json()["data"]:
        out.append({
            "id": el["id"], "size": el["size"], "party": str(party), "guid": guid,
            "rel": f"apps/{TILSKUDD}/instances/{party}/{guid}/data/vedlegg/{el['filename']}",
            "path": p.data_path(str(party), guid, el["id"]),
        })
    return out


def sha_of(p, el):
    digest, n = p.data_sha256(el["party"], el["guid"], el["id"])
    assert n == el["size"]
    return digest


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


def requests_for(p, mark, el, settle=1.0):
    """Data requests for el since mark (a request is logged when it ends)."""
    time.sleep(settle)
    return [e for e in p.since(mark) if e["path"] == el["path"]]


def status(m):
    return json.loads((m.path / "status.json").read_bytes())


def cache_files(d):
    return sorted(f for f in os.listdir(d)) if os.path.isdir(d) else []


def wait_complete(d, timeout=10):
    """Until no entry in d is partial: an entry is hashed and renamed just
    after its last byte, and the fixtures kill the daemon right after they
    unmount, which may be sooner (a clean unmount waits for it)."""
    deadline = time.monotonic() + timeout
    while any(f.endswith(".part") for f in cache_files(d)):
        assert time.monotonic() < deadline, cache_files(d)
        time.sleep(0.05)


def cache_bytes(d):
    """Bytes of the entries in d; a download's .part renamed to its
    complete name between the listing and the size is counted again."""
    for _ in range(100):
        try:
            return sum(os.path.getsize(os.path.join(d, f)) for f in cache_files(d))
        except FileNotFoundError:
            continue
    raise AssertionError(f"{d} kept changing under the count")


@pytest.mark.parametrize("mode", MODES)
def test_readers_share_one_download(platform_factory, mount, mode):
    p = platform_factory(extra_args=mode)
    [el] = add_elements(p, [32 * MiB])
    want = sha_of(p, el)
    m = mount(localtest=p, cache_ttl=120)
    mark = p.mark()
    got, errors = [], []
    start = threading.Barrier(4)

    def reader():
        try:
            start.wait()
            got.append(file_sha(m.path / el["rel"]))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and got == [want] * 4
    assert int(os.getxattr(m.path / el["rel"], "user.altinn.cached")) == el["size"]
    c = status(m)["cache"]
    assert c["dir"] == str(m.state_dir / "cache")
    assert c["entries"] == 1 and c["used"] == el["size"]
    assert c["bytes_fetched"] == el["size"] and c["misses"] >= 1
    m.stop()
    reqs = requests_for(p, mark, el)
    assert len(reqs) == 1, reqs
    assert reqs[0]["bytes"] == el["size"]
    assert reqs[0]["status"] == (206 if mode else 200)


@pytest.mark.parametrize("mode", MODES)
def test_read_again_after_restart_costs_nothing(platform_factory, tmp_path, mode):
    p = platform_factory(extra_args=mode)
    [el] = add_elements(p, [5 * MiB + 17])
    want = sha_of(p, el)
    state = tmp_path / "state"
    opts = {"cache_ttl": 120, "state_dir": str(state)}
    with mount_ctx(tmp_path / "m1", p, opts) as m:
        assert file_sha(m.path / el["rel"]) == want
        wait_complete(state / "cache")
    mark = p.mark()
    with mount_ctx(tmp_path / "m2", p, opts) as m:
        assert int(os.getxattr(m.path / el["rel"], "user.altinn.cached")) == el["size"]
        assert file_sha(m.path / el["rel"]) == want
        c = status(m)["cache"]
        assert c["hits"] == 1 and c["bytes_fetched"] == 0
    assert requests_for(p, mark, el, settle=0.2) == []


@pytest.mark.parametrize("mode", MODES)
def test_random_reads_cost_at_most_one_transfer(platform_factory, mount, mode):
    p = platform_factory(extra_args=mode)
    [el] = add_elements(p, [64 * MiB])
    rnd = random.Random(17)
    spots = [rnd.randrange(el["size"] - 4096) for _ in range(64)]
    whole = p.get(el["path"]).body
    m = mount(localtest=p, cache_ttl=120)
    mark = p.mark()
    fd = os.open(m.path / el["rel"], os.O_RDONLY)
    try:
        for off in spots:
            assert os.pread(fd, 4096, off) == whole[off:off + 4096], off
    finally:
        os.close(fd)
    m.stop()
    total = sum(e["bytes"] for e in requests_for(p, mark, el))
    # with ranges, reads far ahead of the download take ranges of their
    # own besides it
    # (128 KiB each, or windows of a stream once they look sequential)
    assert total <= el["size"] * (1.25 if mode else 1), total


def test_head_of_a_large_element_stops_its_download(platform_factory, mount):
    p = platform_factory()
    [el] = add_elements(p, [256 * MiB])
    m = mount(localtest=p, cache_ttl=120)
    mark = p.mark()
    r = subprocess.run(["head", "-c", "4096", str(m.path / el["rel"])], capture_output=True,
                       timeout=60)
    assert r.returncode == 0 and len(r.stdout) == 4096
    cache = m.state_dir / "cache"
    # the download stopped; what came is kept, with its record
    part, rec = wait_record(cache)
    kept = int((cache / rec).read_text())
    assert 4096 <= kept < 16 * MiB
    assert int(os.getxattr(m.path / el["rel"], "user.altinn.cached")) == kept
    # a read of what came costs nothing (without the kernel's read-ahead,
    # which would ask past the kept bytes when the close came early; and
    # within whole pages, as the kernel asks a page at least: what was kept
    # when the download stopped need not end at a page's end)
    end = kept // 4096 * 4096
    fd = os.open(m.path / el["rel"], os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        got = os.pread(fd, 4096, end - 4096)
    finally:
        os.close(fd)
    m.stop()
    reqs = requests_for(p, mark, el)
    assert len(reqs) == 1, reqs
    assert reqs[0]["bytes"] < 16 * MiB, reqs
    assert got == p.data(el["party"], el["guid"], el["id"], end - 4096, end - 1)


def test_lru_eviction_keeps_the_bound(platform_factory, tmp_path):
    p = platform_factory()
    els = add_elements(p, [MiB] * 5)
    state = tmp_path / "state"
    cache = state / "cache"
    opts = {"cache_ttl": 120, "state_dir": str(state), "cache_max": "3M"}
    with mount_ctx(tmp_path / "m1", p, opts) as m:
        for el in els:
            with open(m.path / el["rel"], "rb") as f:
                assert len(f.read()) == MiB
            assert cache_bytes(cache) <= 3 * MiB
            wait_complete(cache)
            time.sleep(0.02)  # distinct mtimes: the order after a restart
        c = status(m)["cache"]
        assert c["entries"] == 3 and c["used"] == 3 * MiB and c["max"] == 3 * MiB
        cached = [int(os.getxattr(m.path / el["rel"], "user.altinn.cached")) for el in els]
        assert cached == [0, 0, MiB, MiB, MiB]
    # a new mount (the kernel's page cache would answer the old one): the
    # most recent comes from disk; the first was evicted and is fetched
    # again, pushing out the least recently used (els[2])
    mark = p.mark()
    with mount_ctx(tmp_path / "m2", p, opts) as m:
        assert (m.path / els[4]["rel"]).read_bytes() == p.get(els[4]["path"]).body
        mark = p.mark()
        assert (m.path / els[0]["rel"]).read_bytes() == p.get(els[0]["path"]).body
        assert cache_bytes(cache) <= 3 * MiB
        cached = [int(os.getxattr(m.path / el["rel"], "user.altinn.cached")) for el in els]
        assert cached == [MiB, 0, 0, MiB, MiB]
    paths = [e["path"] for e in requests_for(p, mark, els[0], settle=0.3)]
    assert len(paths) == 2  # the mount's read and our own p.get


def wait_record(d, timeout=10):
    """Until a partial entry in d has its record: (part, filled) names."""
    deadline = time.monotonic() + timeout
    while not any(f.endswith(".filled") for f in cache_files(d)):
        assert time.monotonic() < deadline, cache_files(d)
        time.sleep(0.05)
    files = cache_files(d)
    [part] = [f for f in files if f.endswith(".part")]
    [rec] = [f for f in files if f.endswith(".filled")]
    return part, rec


@pytest.mark.parametrize("mode", MODES)
def test_restart_with_a_partial_entry(platform_factory, tmp_path, mode):
    p = platform_factory(extra_args=mode)
    [el] = add_elements(p, [64 * MiB])
    want = sha_of(p, el)
    state = tmp_path / "state"
    cache = state / "cache"
    opts = {"cache_ttl": 120, "state_dir": str(state)}
    with mount_ctx(tmp_path / "m1", p, opts) as m:
        fd = os.open(m.path / el["rel"], os.O_RDONLY)
        try:
            assert len(os.pread(fd, 4096, 0)) == 4096
            # the download idles past the read: it records what came,
            # then the daemon dies while the file is still open
            part, rec = wait_record(cache)
            kept = int((cache / rec).read_text())
            m.kill9()
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
    assert 4096 <= kept < el["size"] and os.path.getsize(cache / part) >= kept
    body = p.get(el["path"]).body
    mark = p.mark()
    with mount_ctx(tmp_path / "m2", p, opts) as m:
        path = m.path / el["rel"]
        assert int(os.getxattr(path, "user.altinn.cached")) == kept
        # what was fetched before the crash costs no request (half of it:
        # the kernel reads ahead of a reader, up to 1 MiB)
        with open(path, "rb") as f:
            assert f.read(kept // 2) == body[:kept // 2]
        assert requests_for(p, mark, el, settle=0.3) == []
        assert file_sha(path) == want
        assert int(os.getxattr(path, "user.altinn.cached")) == el["size"]
        wait_complete(cache)
    reqs = requests_for(p, mark, el, settle=0.2)
    assert len(reqs) == 1
    if mode:  # the rest only
        assert reqs[0]["status"] == 206 and reqs[0]["bytes"] == el["size"] - kept
    else:  # Storage sends it all; the kept bytes are skipped
        assert reqs[0]["status"] == 200 and reqs[0]["bytes"] == el["size"]
    assert [f for f in cache_files(cache) if not f.endswith(want)] == []


def test_partial_entry_without_a_record_is_dropped(platform_factory, tmp_path):
    p = platform_factory()
    [el] = add_elements(p, [2 * MiB])
    want = sha_of(p, el)
    state = tmp_path / "state"
    cache = state / "cache"
    opts = {"cache_ttl": 120, "state_dir": str(state)}
    with mount_ctx(tmp_path / "m1", p, opts) as m:
        assert file_sha(m.path / el["rel"]) == want
        wait_complete(cache)
    [name] = cache_files(cache)
    base = name.rsplit("-", 1)[0]
    os.rename(cache / name, cache / (base + ".part"))  # as if killed mid-download
    (cache / (base + "x.filled")).write_text("5\n")     # a record of nothing
    mark = p.mark()
    with mount_ctx(tmp_path / "m2", p, opts) as m:
        assert cache_files(cache) == []
        assert int(os.getxattr(m.path / el["rel"], "user.altinn.cached")) == 0
        assert file_sha(m.path / el["rel"]) == want
        wait_complete(cache)
    assert len(requests_for(p, mark, el, settle=0.2)) == 1


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_damaged_entry_is_fetched_again(platform_factory, tmp_path, damage):
    p = platform_factory()
    [el] = add_elements(p, [MiB + 3], random_bytes=True)
    want = p.get(el["path"]).body
    state = tmp_path / "state"
    cache = state / "cache"
    opts = {"cache_ttl": 120, "state_dir": str(state)}
    with mount_ctx(tmp_path / "m1", p, opts) as m:
        assert (m.path / el["rel"]).read_bytes() == want
        wait_complete(cache)
    [name] = cache_files(cache)
    with open(cache / name, "r+b") as f:
        if damage == "flipped":
            f.seek(500000)
            b = f.read(1)
            f.seek(500000)
            f.write(bytes([b[0] ^ 0xff]))
        else:
            f.truncate(1000)
    mark = p.mark()
    with mount_ctx(tmp_path / "m2", p, opts) as m:
        assert (m.path / el["rel"]).read_bytes() == want
        assert "damaged" in m.log() or damage == "truncated"
    reqs = requests_for(p, mark, el, settle=0.2)
    assert len(reqs) == 1 and reqs[0]["bytes"] == el["size"]
    [name2] = cache_files(cache)
    assert (cache / name2).read_bytes() == want


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs for cache_dir (skipped where tmpfs cannot be mounted)."""
    d = tmp_path / "smallfs"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_full_disk_reads_uncached(platform_factory, mount, small_fs):
    p = platform_factory()
    els = add_elements(p, [8 * MiB, MiB, MiB])
    big, small, other = els
    want_big = sha_of(p, big)
    m = mount(localtest=p, cache_ttl=120, cache_dir=str(small_fs / "cache"))
    # larger than the file system: read uncached, right
    assert file_sha(m.path / big["rel"]) == want_big
    assert int(os.getxattr(m.path / big["rel"], "user.altinn.cached")) == 0
    # fits: cached
    assert file_sha(m.path / small["rel"]) == sha_of(p, small)
    assert int(os.getxattr(m.path / small["rel"], "user.altinn.cached")) == MiB
    # the disk fills up (someone else's file): even with the unused entry
    # evicted there is no room; read uncached, right
    with pytest.raises(OSError) as e, open(small_fs / "filler", "wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 65536)
    assert e.value.errno == errno.ENOSPC
    assert file_sha(m.path / other["rel"]) == sha_of(p, other)
    assert int(os.getxattr(m.path / other["rel"], "user.altinn.cached")) == 0
    # small went to make room, unless its release (asynchronous after
    # close) had not yet come: then it stays and other is uncached anyway
    assert status(m)["cache"]["entries"] <= 1


def test_replaced_element_is_a_new_entry(platform_factory, mount):
    p = platform_factory()
    [el] = add_elements(p, [MiB], random_bytes=True)
    old = p.get(el["path"]).body
    m = mount(localtest=p, cache_ttl=0)
    assert (m.path / el["rel"]).read_bytes() == old
    new = os.urandom(MiB)
    time.sleep(0.05)
    p.put_data(el["party"], el["guid"], el["id"], new)
    deadline = time.monotonic() + 10
    while (m.path / el["rel"]).read_bytes() != new:
        assert time.monotonic() < deadline, "the replaced bytes never showed"
        time.sleep(0.2)
    c = status(m)["cache"]
    assert c["entries"] == 2 and c["misses"] >= 2


def test_cache_off(platform_factory, mount):
    p = platform_factory()
    [el] = add_elements(p, [2 * MiB])
    m = mount(localtest=p, cache_ttl=120, cache_max=0)
    assert file_sha(m.path / el["rel"]) == sha_of(p, el)
    c = status(m)["cache"]
    assert c["dir"] is None and c["max"] == 0 and c["entries"] == 0
    assert not (m.state_dir / "cache").exists()


def test_cache_max_default_is_a_quarter_of_the_free_space(platform_factory, mount, small_fs):
    p = platform_factory()
    small, big = add_elements(p, [512 * 1024, 2 * MiB])
    # something else already on that file system: 1 MiB of its 4
    (small_fs / "other").write_bytes(b"\0" * MiB)
    m = mount(localtest=p, cache_ttl=120, cache_dir=str(small_fs / "cache"))
    c = status(m)["cache"]
    assert c["max"] == 3 * MiB // 4  # a quarter of the 3 MiB free
    assert file_sha(m.path / small["rel"]) == sha_of(p, small)
    assert int(os.getxattr(m.path / small["rel"], "user.altinn.cached")) == small["size"]
    # larger than that bound: read right, uncached
    assert file_sha(m.path / big["rel"]) == sha_of(p, big)
    assert int(os.getxattr(m.path / big["rel"], "user.altinn.cached")) == 0
    assert status(m)["cache"]["entries"] == 1


def test_cache_max_default_on_a_large_disk(platform_factory, mount, tmp_path):
    p = platform_factory()
    sv = os.statvfs(tmp_path)
    m = mount(localtest=p, cache_ttl=120)
    want = min(sv.f_bavail * sv.f_frsize // 4, 16 << 30)
    got = status(m)["cache"]["max"]
    assert abs(got - want) <= max(want // 50, 64 * MiB), (got, want)
    assert f"cache_max not set: {got >> 20} MiB" in m.log()


def add_hashed(p, body, content_hash):
    """One new tilskudd instance with one element of body, its contentHash
    given as content_hash (right or wrong)."""
    import base64
    guid = str(uuid.uuid4())
    doc = {"appId": TILSKUDD, "partyId": "50170", "organisationNumber": "910000001",
           "guid": guid, "data": [{"dataType": "vedlegg", "filename": "h.bin",
                                   "contentType": "application/octet-stream",
                                   "content_b64": base64.b64encode(body).decode(),
                                   "contentHash": content_hash}]}
    r = p.request("POST", "/_localtest/instances", body=doc, auth=False)
    assert r.status == 201, r
    el = r.json()["data"][0]
    return {"id": el["id"], "size": el["size"], "party": "50170", "guid": guid,
            "rel": f"apps/{TILSKUDD}/instances/50170/{guid}/data/vedlegg/h.bin",
            "path": p.data_path("50170", guid, el["id"])}


@pytest.mark.parametrize("mode", MODES)
def test_content_hash_is_checked(platform_factory, mount, mode):
    p = platform_factory(extra_args=mode)
    body = os.urandom(3 * MiB + 5)
    right = add_hashed(p, body, hashlib.sha256(body).hexdigest().upper())
    wrong = add_hashed(p, body, hashlib.sha256(body + b"x").hexdigest())
    m = mount(localtest=p, cache_ttl=120)
    cache = m.state_dir / "cache"
    assert (m.path / right["rel"]).read_bytes() == body
    assert int(os.getxattr(m.path / right["rel"], "user.altinn.cached")) == right["size"]
    # the bytes are not what the platform says they are: EIO, not served,
    # not kept; and so again on the next open
    mark = p.mark()
    for _ in range(2):
        with pytest.raises(OSError) as e, open(m.path / wrong["rel"], "rb") as f:
            f.read()
        assert e.value.errno == errno.EIO
        with pytest.raises(OSError) as e, open(m.path / wrong["rel"], "rb") as f:
            f.read(4096)
        assert e.value.errno == errno.EIO
    assert int(os.getxattr(m.path / wrong["rel"], "user.altinn.cached")) == 0
    assert [f for f in cache_files(cache) if f.startswith(wrong["id"])] == []
    assert "not served" in m.log()
    # each open fetched it again (it was never kept)
    assert len(requests_for(p, mark, wrong, settle=0.2)) >= 2


def test_content_hash_base64_right(platform_factory, mount):
    import base64
    p = platform_factory()
    body = os.urandom(MiB)
    el = add_hashed(p, body, base64.b64encode(hashlib.sha256(body).digest()).decode())
    m = mount(localtest=p, cache_ttl=120)
    assert (m.path / el["rel"]).read_bytes() == body
    assert int(os.getxattr(m.path / el["rel"], "user.altinn.cached")) == el["size"]


@pytest.mark.parametrize("mode", MODES)
def test_download_cut_mid_body_is_resumed_without_duplicate_bytes(platform_factory, mount, mode):
    """The platform closes the connection after half the body (half of 3 MiB
    + 12345 bytes: not at a MiB, so bytes are staged in memory when it
    breaks); the download's retry must skip exactly the bytes it has."""
    p = platform_factory(extra_args=mode)
    [el] = add_elements(p, [3 * MiB + 12345], random_bytes=True)
    whole = p.get(el["path"]).body
    m = mount(localtest=p, cache_ttl=120)
    p.fault(el["path"], count=1, truncate=True)
    got = (m.path / el["rel"]).read_bytes()
    assert len(got) == len(whole)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(whole).hexdigest()
    wait_complete(m.state_dir / "cache")
    names = [f for f in cache_files(m.state_dir / "cache") if not f.endswith(".part")]
    assert any(f.endswith("-" + hashlib.sha256(whole).hexdigest()) for f in names), names
