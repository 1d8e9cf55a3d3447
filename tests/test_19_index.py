"""The instance index (docs/index.md): what a user sees of an app of thousands of instances,
and what the platform is asked. A platform of its own per test (`--seed scale:N`, the app
ttd/skala: instance n is 5ca1e000-0000-4000-8000-<n in hex> of party 700000 + n mod N/3,
lastChanged 2025-01-01 + (n // 3) * 10 s)."""

import json
import os
import time
import urllib.parse

import pytest

from localplatform import STORAGE, entry_query
from mounts import read_bytes

SKALA = "ttd/skala"
INSTANCES = STORAGE + "/instances"
BASE = 700000


def guid(n):
    return "5ca1e000-0000-4000-8000-%012x" % n


def party_of(n, total):
    return str(BASE + n % (total // 3))


def every_party(total):
    return sorted(str(BASE + r) for r in range(total // 3))


@pytest.fixture
def scale(platform_factory):
    def make(n, **kw):
        return platform_factory(seed=f"scale:{n}", quiet=True, **kw)
    return make


def skala_mount(mount, plat, **options):
    opts = {"apps": SKALA, "cache_ttl": 600}
    opts.update(options)
    return mount(localtest=plat, **opts)


def queries(plat, mark):
    """The instance queries since mark (walk pages, refreshes, party queries)."""
    return [e for e in plat.since(mark) if e["method"] == "GET" and e["path"] == INSTANCES]


def walk_pages(entries):
    return [e for e in entries if "lastChanged" not in entry_query(e)
            and "instanceOwner.partyId" not in entry_query(e)]


def refreshes(entries):
    return [e for e in entries if "lastChanged" in entry_query(e)]


def status(m):
    return json.loads(read_bytes(m / "status.json"))["apps"][SKALA]


def wait_for(cond, within, step=0.1):
    deadline = time.monotonic() + within
    while True:
        got = cond()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(step)


def test_first_ls_walks_once_then_lists_for_nothing(scale, mount):
    n = 3000
    plat = scale(n)
    m = skala_mount(mount, plat)
    root = m / "apps/ttd/skala/instances"
    mark = plat.mark()
    assert sorted(os.listdir(root)) == every_party(n)
    pages = queries(plat, mark)
    assert len(walk_pages(pages)) == len(pages) == n // 100 + 1
    st = status(m)
    assert st["index"]["state"] == "complete" and st["index"]["partial"] is False
    assert st["index"]["instances"] == st["instances_listed"] == n
    assert st["index"]["pages"] == n // 100 + 1

    mark = plat.mark()
    assert sorted(os.listdir(root)) == every_party(n)
    party = party_of(7, n)
    assert sorted(os.listdir(root / party)) == sorted(guid(k) for k in (7, 7 + 1000, 7 + 2000))
    doc = json.loads(read_bytes(root / party / guid(7) / "instance.json"))
    assert doc["id"] == f"{party}/{guid(7)}"
    assert os.listdir(root / party / guid(7) / "data" / "vedlegg") == ["vedlegg-7.txt"]
    assert plat.since(mark) == []                 # all of it from the index


def test_refresh_costs_what_changed_and_shows_it(scale, mount):
    n = 3000
    plat = scale(n)
    ttl = 1
    m = skala_mount(mount, plat, cache_ttl=ttl)
    root = m / "apps/ttd/skala/instances"
    assert sorted(os.listdir(root)) == every_party(n)

    changed = [f"{party_of(k, n)}/{guid(k)}" for k in range(100, 250)]     # 150 instances
    plat.change_instances(changed)
    gone = 2999                                   # party 700999's newest
    plat.change_instances([f"{party_of(gone, n)}/{guid(gone)}"], hard_delete=True)
    new = plat.add_instance(SKALA, 799999, data=[("vedlegg", "ny.txt", "text/plain", b"ny\n")])
    time.sleep(ttl + 0.5)

    mark = plat.mark()
    names = sorted(os.listdir(root))
    cost = queries(plat, mark)
    assert refreshes(cost) == cost and len(cost) == 2      # 152 changes: two pages of 100
    assert names == sorted(every_party(n) + ["799999"])
    assert guid(gone) not in os.listdir(root / party_of(gone, n))
    assert os.listdir(root / "799999") == [new["id"].split("/")[1]]
    doc = json.loads(read_bytes(root / party_of(100, n) / guid(100) / "instance.json"))
    assert doc["lastChanged"] == plat.instance(party_of(100, n), guid(100))["lastChanged"]

    # nothing changed: the next refresh is one request that brings only the overlap
    time.sleep(ttl + 0.5)
    mark = plat.mark()
    assert sorted(os.listdir(root)) == names
    assert len(queries(plat, mark)) <= 2
    assert status(m)["index"]["refreshes"] >= 2


def test_equal_timestamps_are_not_missed(scale, mount):
    """Two instances changed at one stamp are seen; a third given the same stamp after
    that refresh (it was on no page yet) is seen by the next one: the overlap."""
    n = 300
    plat = scale(n)
    ttl = 1
    m = skala_mount(mount, plat, cache_ttl=ttl)
    root = m / "apps/ttd/skala/instances"
    assert len(os.listdir(root)) == n // 3
    stamp = "2026-12-01T12:00:00.0000000Z"
    a, b, c = 30, 31, 32                          # parties 700030..700032
    plat.change_instances([f"{party_of(k, n)}/{guid(k)}" for k in (a, b)], last_changed=stamp,
                          hard_delete=True)
    time.sleep(ttl + 0.5)
    assert guid(a) not in os.listdir(root / party_of(a, n))
    assert guid(b) not in os.listdir(root / party_of(b, n))
    assert guid(c) in os.listdir(root / party_of(c, n))
    plat.change_instances([f"{party_of(c, n)}/{guid(c)}"], last_changed=stamp, hard_delete=True)
    time.sleep(ttl + 0.5)
    assert guid(c) not in os.listdir(root / party_of(c, n))


def test_kill_mid_walk_resumes_without_asking_again(scale, mount):
    n = 20000
    plat = scale(n)
    plat.fault(INSTANCES + "$", count=-1, delay_ms=150)          # a slow platform
    m = skala_mount(mount, plat, timeout=3)       # a listing waits that long for the walk
    root = m / "apps/ttd/skala/instances"
    read_bytes(m / "apps/ttd/skala/application.json")  # its created time: the walk's floor
    mark = plat.mark()
    t0 = time.monotonic()
    partial = os.listdir(root)
    assert time.monotonic() - t0 < 15
    st = status(m)
    assert st["index"]["state"] == "walking" and st["index"]["partial"] is True
    # the newest instances come first; each party has one among the newest third
    assert partial and set(partial) <= set(every_party(n))
    assert 0 < st["index"]["instances"] < n
    assert st["index"]["started_at"] and st["index"]["estimated_completion"]
    # a path not indexed yet answers by a direct look: the party's query
    old = 0                                       # the oldest instance: the walk's last page
    before = plat.mark()
    assert json.loads(read_bytes(root / party_of(old, n) / guid(old) / "instance.json"))["id"] \
        == f"{party_of(old, n)}/{guid(old)}"
    direct = [e for e in plat.since(before) if e["path"] != INSTANCES
              or "instanceOwner.partyId" in entry_query(e)]
    assert len(direct) == 1, direct

    m.kill9()
    first = walk_pages(queries(plat, mark))
    assert first
    plat.clear_faults()
    mark = plat.mark()
    m.start()                                     # the walk goes on at start, unasked
    assert wait_for(lambda: status(m)["index"]["state"] == "complete", 60)
    assert sorted(os.listdir(root)) == every_party(n)
    second = walk_pages(queries(plat, mark))
    assert second and "continuationToken" in entry_query(second[0])
    tokens = [entry_query(e).get("continuationToken", [""])[0] for e in first + second]
    # every page once; those in flight at the kill (the one being stored and the one
    # asked for ahead of it) at most twice
    assert len(tokens) - len(set(tokens)) <= 2
    assert len(set(tokens)) == n // 100 + 1
    assert status(m)["index"]["instances"] == n


def test_index_since_lists_only_recent_instances(scale, mount):
    n = 3000
    plat = scale(n)
    # instance k changed at 2025-01-01 + (k // 3) * 10 s: after 02:00 are k >= 2163
    m = skala_mount(mount, plat, index_since="2025-01-01T02:00:00Z")
    root = m / "apps/ttd/skala/instances"
    mark = plat.mark()
    assert sorted(os.listdir(root)) == sorted(str(BASE + r) for r in range(163, 1000))
    assert all("lastChanged=gt%3A2025-01-01T02%3A00%3A00" in e["query"]
               or "lastChanged=gt:2025-01-01T02:00:00" in urllib.parse.unquote(e["query"])
               for e in queries(plat, mark))
    assert status(m)["index"]["since"] == "2025-01-01T02:00:00Z"
    assert status(m)["index"]["instances"] == n - 2163
    # an older instance is still there by its path
    assert json.loads(read_bytes(root / party_of(5, n) / guid(5) / "instance.json"))["id"] \
        == f"{party_of(5, n)}/{guid(5)}"


def test_a_damaged_index_is_built_again(scale, mount):
    n = 900
    plat = scale(n)
    m = skala_mount(mount, plat)
    root = m / "apps/ttd/skala/instances"
    assert sorted(os.listdir(root)) == every_party(n)
    m.stop()
    db = m.state_dir / "index" / "ttd" / "skala.db"
    size = db.stat().st_size
    assert size > 4096
    with open(db, "r+b") as f:                    # scribble over its pages, keep its header
        f.seek(4096)
        f.write(os.urandom(size - 4096))
    mark = plat.mark()
    m.start()
    assert sorted(os.listdir(root)) == every_party(n)
    assert "damaged" in m.log()
    assert len(walk_pages(queries(plat, mark))) == n // 100 + 1
    assert status(m)["index"]["instances"] == n


def test_a_restart_with_the_index_on_disk_asks_little(scale, mount):
    n = 3000
    plat = scale(n)
    m = skala_mount(mount, plat)
    root = m / "apps/ttd/skala/instances"
    assert sorted(os.listdir(root)) == every_party(n)
    m.stop()
    mark = plat.mark()
    m.start()
    t0 = time.monotonic()
    assert sorted(os.listdir(root)) == every_party(n)
    took = time.monotonic() - t0
    cost = queries(plat, mark)
    assert refreshes(cost) == cost and len(cost) <= 2, cost
    assert took < 10, took


def iso_seconds(stamp):
    """Seconds since the epoch of an ISO-8601 UTC stamp (Storage's 7 fraction digits)."""
    from datetime import datetime, timezone
    head, _, frac = stamp.rstrip("Z").partition(".")
    t = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def test_a_party_folder_follows_its_instances(scale, mount):
    """The parties' facts (kept by each commit, not counted at a listing): a party whose
    instances are all hard-deleted leaves instances/, and a change moves its folder's
    mtime to the newest lastChanged."""
    n = 3000
    plat = scale(n)
    ttl = 1
    m = skala_mount(mount, plat, cache_ttl=ttl)
    root = m / "apps/ttd/skala/instances"
    assert sorted(os.listdir(root)) == every_party(n)
    emptied = party_of(5, n)                        # 700005 holds instances 5, 1005, 2005
    plat.change_instances([f"{emptied}/{guid(k)}" for k in (5, 1005, 2005)], hard_delete=True)
    moved = party_of(7, n)
    stamp = plat.change_instances([f"{moved}/{guid(7)}"])[0]
    time.sleep(ttl + 0.5)

    names = sorted(os.listdir(root))
    assert names == sorted(set(every_party(n)) - {emptied})
    with pytest.raises(FileNotFoundError):
        os.stat(root / emptied)
    assert abs(os.stat(root / moved).st_mtime - iso_seconds(stamp)) < 1
    assert sorted(os.listdir(root / moved)) == sorted(guid(k) for k in (7, 1007, 2007))


def test_an_index_file_from_before_the_party_table_is_listed_whole(scale, mount):
    """A file written before the parties' facts had a table of their own gets the table
    filled once at start: the listing after the restart shows every party, no walk."""
    import sqlite3
    n = 900
    plat = scale(n)
    m = skala_mount(mount, plat)
    root = m / "apps/ttd/skala/instances"
    assert sorted(os.listdir(root)) == every_party(n)
    m.stop()
    db = sqlite3.connect(m.state_dir / "index" / "ttd" / "skala.db")
    with db:
        db.execute("DROP TABLE catalog_groups")
        db.execute("DELETE FROM catalog_meta WHERE key = 'catalog.groups'")
    db.close()
    mark = plat.mark()
    m.start()
    assert sorted(os.listdir(root)) == every_party(n)
    assert walk_pages(queries(plat, mark)) == []
    assert sorted(os.listdir(root / party_of(4, n))) == sorted(guid(k) for k in (4, 304, 604))


class Dir:
    """opendir/readdir/telldir/seekdir/rewinddir of libc (Python has no seekdir)."""
    def __init__(self, path):
        import ctypes

        class Dirent(ctypes.Structure):
            _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                        ("d_reclen", ctypes.c_uint16), ("d_type", ctypes.c_uint8),
                        ("d_name", ctypes.c_char * 256)]
        self.libc = libc = ctypes.CDLL(None, use_errno=True)
        libc.opendir.restype = ctypes.c_void_p
        libc.readdir.restype = ctypes.POINTER(Dirent)
        libc.readdir.argtypes = [ctypes.c_void_p]
        libc.telldir.restype = ctypes.c_long
        libc.telldir.argtypes = [ctypes.c_void_p]
        libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
        libc.rewinddir.argtypes = [ctypes.c_void_p]
        libc.closedir.argtypes = [ctypes.c_void_p]
        self.d = libc.opendir(os.fsencode(path))
        assert self.d, os.strerror(ctypes.get_errno())

    def read(self, count=None):
        out = []
        while count is None or len(out) < count:
            e = self.libc.readdir(self.d)
            if not e:
                break
            name = e.contents.d_name.decode()
            if name not in (".", ".."):
                out.append(name)
        return out

    def close(self):
        self.libc.closedir(self.d)


def test_instances_read_a_page_at_a_time_lists_each_party_once(scale, mount):
    """instances/ of an indexed app is read from the index a page at a time (not built
    whole at open): 1,000 parties over several pages come in numeric order, each once;
    telldir/seekdir back into an earlier page and rewinddir give the same names again."""
    n = 3000
    plat = scale(n)
    m = skala_mount(mount, plat)
    root = m / "apps/ttd/skala/instances"
    want = every_party(n)
    assert os.listdir(root) == want            # in order, as the index keeps it
    d = Dir(root)
    try:
        first = d.read(300)
        spot = d.libc.telldir(d.d)
        rest = d.read()
        assert first + rest == want
        d.libc.seekdir(d.d, spot)              # back into an earlier page
        assert d.read() == rest
        d.libc.rewinddir(d.d)
        assert d.read() == want
    finally:
        d.close()
    # a party changed while a listing is open (its facts rewritten) keeps its place
    d = Dir(root)
    try:
        head = d.read(700)
        plat.change_instances([f"{party_of(1, n)}/{guid(1)}"])
        tail = d.read()
        names = head + tail
        assert len(names) == len(set(names)) and set(names) == set(want)
    finally:
        d.close()
