"""Reading data: exact bytes, ranges of the 256 MiB element without
downloading all of it, the whole element's sha256, concurrent readers."""

import hashlib
import os
import random
import subprocess
import threading
import time

import pytest

from mounts import mount_ctx, read_bytes
from procs import altinnfs_bin, binary_has_asan
from reference import live_instances

MiB = 1 << 20


@pytest.fixture(scope="module")
def rmount(platform, tmp_path_factory):
    with mount_ctx(tmp_path_factory.mktemp("reads"), platform, {"cache_ttl": 120}) as m:
        yield m


def data_requests(platform, mark, path, settle=5.0):
    """Log entries for one data path since `mark`; waits until at least one
    is there (a request in flight is logged when it ends)."""
    deadline = time.monotonic() + settle
    while True:
        got = [e for e in platform.since(mark) if e["path"] == path]
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_small_files_are_the_platforms_bytes(rmount, platform):
    n = 0
    for inst in live_instances(platform.instances("ttd/tilskudd")[0]):
        party, guid = inst["id"].split("/")
        base = rmount.path / "apps/ttd/tilskudd/instances" / party / guid / "data"
        for dt in os.listdir(base):
            for name in os.listdir(base / dt):
                path = base / dt / name
                data_id = os.getxattr(path, "user.altinn.id").decode()
                el = next(e for e in inst["data"] if e["id"] == data_id)
                if el["size"] > 4 * MiB:
                    continue
                got = read_bytes(path)
                assert len(got) == el["size"], path
                assert got == platform.data(party, guid, data_id), path
                n += 1
    assert n >= 12


def test_soknad_files(rmount, platform):
    rnd = random.Random(3)
    insts = rnd.sample(platform.instances("ttd/soknad")[0], 5)
    for inst in insts:
        party, guid = inst["id"].split("/")
        base = rmount.path / "apps/ttd/soknad/instances" / party / guid / "data"
        for dt in os.listdir(base):
            for name in os.listdir(base / dt):
                data_id = os.getxattr(base / dt / name, "user.altinn.id").decode()
                assert read_bytes(base / dt / name) == platform.data(party, guid, data_id)


def _downloaded(platform, mount, big_element, read, want):
    """Bytes the platform sent for the big element while `read(path)` ran
    on a fresh mount (the mount is stopped first, so every request is
    over and logged)."""
    m = mount(localtest=platform, cache_ttl=120)
    mark = platform.mark()
    got = read(m.path / big_element["rel"])
    assert got == want
    m.stop()
    dpath = platform.data_path(big_element["party"], big_element["guid"], big_element["id"])
    entries = data_requests(platform, mark, dpath)
    assert entries, "no data request logged"
    return sum(e["bytes"] for e in entries), entries


def bounded_fetch():
    """What a short read may cost by design: the kernel's 1 MiB read-ahead,
    the download's 8 MiB lead (CACHE_AHEAD), and what the two sockets'
    buffers hold when the reader closes (the platform logs those bytes as
    sent). Under load the buffers fill before the download is stopped."""
    def tcp_max(name):
        with open(f"/proc/sys/net/ipv4/{name}") as f:
            return int(f.read().split()[2])
    return 1 * MiB + 8 * MiB + tcp_max("tcp_rmem") + tcp_max("tcp_wmem")


@pytest.mark.parametrize("cmd,ranges", [("head", False), ("head", True), ("tail", False),
                                        ("tail", True)])
def test_4k_of_big_file_downloads_little(mount, platform, ranged_platform, big_element, cmd,
                                         ranges):
    """`head -c 4096` / `tail -c 4096` of the 256 MiB element. Where the
    platform ignores Range (as Storage does), the tail costs one transfer of
    the element at most; where it honours Range, a little."""
    platform = ranged_platform if ranges else platform
    size = big_element["size"]
    off = 0 if cmd == "head" else size - 4096
    want = platform.data(big_element["party"], big_element["guid"], big_element["id"],
                         off, off + 4095)

    def read(path):
        r = subprocess.run([cmd, "-c", "4096", str(path)], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    total, entries = _downloaded(platform, mount, big_element, read, want)
    limit = bounded_fetch() if cmd == "head" or "--ranges" in platform.extra_args else size + 1
    assert total < limit, f"{total} bytes downloaded to read 4 KiB: {entries}"


def test_4k_of_big_file_held_open_stays_bounded(mount, platform, big_element):
    """A reader that reads a header and keeps the file open: read-ahead
    may fetch a bounded window, never the file."""
    want = platform.data(big_element["party"], big_element["guid"], big_element["id"], 0, 4095)

    def read(path):
        with open(path, "rb") as f:
            got = f.read(4096)
            time.sleep(1.0)
        return got

    total, entries = _downloaded(platform, mount, big_element, read, want)
    assert total < 32 * MiB, f"{total} bytes downloaded to read 4 KiB: {entries}"


def test_random_offsets(rmount, platform, big_element):
    size = big_element["size"]
    rnd = random.Random(1234)
    spots = [(0, 1), (size - 1, 1), (size - 100, 4096), (MiB - 3, 7), (128 * MiB, MiB)]
    spots += [(rnd.randrange(size), rnd.choice([1, 100, 4096, 65536, 300000, MiB]))
              for _ in range(20)]
    fd = os.open(rmount.path / big_element["rel"], os.O_RDONLY)
    try:
        for off, n in spots:
            got = os.pread(fd, n, off)
            want = platform.data(big_element["party"], big_element["guid"], big_element["id"],
                                 off, min(off + n, size) - 1)
            assert len(got) == min(n, size - off), (off, n)
            assert got == want, (off, n)
        assert os.pread(fd, 10, size) == b""
        assert os.pread(fd, 10, size + 12345) == b""
    finally:
        os.close(fd)


def _vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def test_whole_big_file(mount, platform, big_element, big_sha256):
    m = mount(cache_ttl=120)
    mark = platform.mark()
    h, n = hashlib.sha256(), 0
    with open(m.path / big_element["rel"], "rb") as f:
        while True:
            chunk = f.read(MiB)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    assert n == big_element["size"]
    assert h.hexdigest() == big_sha256
    hwm = _vm(m.pid(), "VmHWM")
    m.stop()
    dpath = platform.data_path(big_element["party"], big_element["guid"], big_element["id"])
    total = sum(e["bytes"] for e in data_requests(platform, mark, dpath))
    assert total <= 1.25 * n, f"{total} bytes downloaded for a {n}-byte file"
    if not binary_has_asan(altinnfs_bin()):
        assert hwm < 64 * MiB, f"daemon peak RSS {hwm / MiB:.1f} MiB while reading 256 MiB"


def test_concurrent_readers(rmount, platform, big_element):
    size = big_element["size"]
    regions = [(i * 37 * MiB + 1234, 3 * MiB) for i in range(6)]
    results, errors = {}, []

    def reader(off, n):
        try:
            with open(rmount.path / big_element["rel"], "rb") as f:
                f.seek(off)
                buf = b""
                while len(buf) < n:
                    chunk = f.read(min(256 * 1024, n - len(buf)))
                    if not chunk:
                        break
                    buf += chunk
                results[off] = buf
        except OSError as e:
            errors.append((off, e))

    threads = [threading.Thread(target=reader, args=r) for r in regions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "reader hung"
    assert errors == []
    for off, n in regions:
        want = platform.data(big_element["party"], big_element["guid"], big_element["id"],
                             off, min(off + n, size) - 1)
        assert results[off] == want, off


def test_shared_fd_preads(rmount, platform, big_element):
    """Several threads reading one open file at different places."""
    fd = os.open(rmount.path / big_element["rel"], os.O_RDONLY)
    offsets = [7 * MiB * i + 99 for i in range(8)]
    got, errors = {}, []

    def worker(off):
        try:
            got[off] = os.pread(fd, 200000, off)
        except OSError as e:
            errors.append(e)

    try:
        threads = [threading.Thread(target=worker, args=(o,)) for o in offsets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
            assert not t.is_alive(), "pread hung"
    finally:
        os.close(fd)
    assert errors == []
    for off in offsets:
        assert got[off] == platform.data(big_element["party"], big_element["guid"],
                                         big_element["id"], off, off + 199999)


def mount_device(path):
    """major:minor of the mount at `path`, from mountinfo (not from stat)."""
    path = os.path.realpath(path)
    dev = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                dev = fields[2]
    return dev


def test_mount_reads_ahead_one_mib(rmount):
    """The daemon widens the kernel's read-ahead window of its own mount
    to 1 MiB (128 KiB is the kernel's default) at the first open, found
    without stat-ing the mount point."""
    read_bytes(rmount.path / "README.txt")
    dev = mount_device(rmount.path)
    assert dev, "the mount is not in mountinfo"
    knob = f"/sys/class/bdi/{dev}/read_ahead_kb"
    deadline = time.monotonic() + 5
    while True:
        with open(knob) as f:
            value = f.read().strip()
        if value == "1024" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert value == "1024", (value, rmount.log_tail())
