"""What browsing costs (requests in the platform's log), listing TTLs, and
the kernel page cache for unchanged data. Uses a platform of its own,
because it adds instances and replaces data."""

import errno
import json
import os
import subprocess
import time
import uuid

import pytest

from localplatform import STORAGE, query_pages
from mounts import read_bytes
from reference import iso_seconds


def storage_requests(entries):
    return [e for e in entries if e["path"].startswith(STORAGE)]


def walk_stat(root):
    """stat and getxattr everything below root, as `ls -lR` and
    `getfattr -R` would; returns the number of entries."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            os.lstat(p)
            n += 1
    return n


def ls_lR(path):
    r = subprocess.run(["ls", "-lR", str(path)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.fixture(scope="module")
def n_soknad(own_platform):
    return len(own_platform.instances("ttd/soknad")[0])


@pytest.mark.parametrize("page_size", [100, 50])
def test_ls_lR_costs_one_request_per_page(own_platform, mount, n_soknad, page_size):
    m = mount(localtest=own_platform, cache_ttl=600, page_size=page_size)
    pages = n_soknad // page_size + 1
    mark = own_platform.mark()
    ls_lR(m / "apps/ttd/soknad")
    entries = storage_requests(own_platform.since(mark))
    # inbox/ is listed too: its own query (complete, unconfirmed) is a few
    # pages more, counted apart
    listing = [e for e in query_pages(entries, "ttd/soknad") if "process.isComplete" not in e["query"]]
    inbox = [e for e in query_pages(entries, "ttd/soknad") if "process.isComplete=true" in e["query"]]
    n_inbox = len(own_platform.instances("ttd/soknad", **{"process.isComplete": "true",
                                                          "excludeConfirmedBy": "ttd"})[0])
    assert len(listing) == pages
    assert len(inbox) == n_inbox // page_size + 1
    assert [e for e in entries if e["status"] != 200] == []
    assert len(entries) <= pages + len(inbox) + 4, [(e["path"], e.get("query")) for e in entries]
    assert not [e for e in entries if "/data/" in e["path"] or e["path"].endswith("/dataelements")]

    # Within the TTL, looking again costs nothing: stat, getxattr, readdir.
    mark = own_platform.mark()
    ls_lR(m / "apps/ttd/soknad")
    n = walk_stat(m / "apps/ttd/soknad")
    assert n > n_soknad * 4
    r = subprocess.run(["getfattr", "-R", "-d", str(m / "apps/ttd/soknad/instances/500100")],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and b"user.altinn.id" in r.stdout
    assert storage_requests(own_platform.since(mark)) == []


def per_entry(entries):
    """Requests for one instance or data element (not a query page)."""
    return [e for e in entries if e["path"].startswith(STORAGE + "/instances/")]


def test_stat_needs_no_per_entry_requests(own_platform, mount, n_soknad):
    """A deep stat on a fresh mount, then a walk: query pages, never one
    request per instance; and once listed, stats are free."""
    pages = n_soknad // 100 + 1
    m = mount(localtest=own_platform, cache_ttl=600)
    inst = own_platform.instances("ttd/soknad", party=500333)[0][0]
    mark = own_platform.mark()
    d = m / "apps/ttd/soknad/instances" / inst["id"]
    os.stat(d / "instance.json")
    for dt in os.listdir(d / "data"):
        for name in os.listdir(d / "data" / dt):
            os.stat(d / "data" / dt / name)
    first = storage_requests(own_platform.since(mark))
    assert len(first) <= pages + 4
    assert per_entry(first) == []

    def walk():
        for party in sorted(os.listdir(m / "apps/ttd/soknad/instances"))[:50]:
            for guid in os.listdir(m / "apps/ttd/soknad/instances" / party):
                os.stat(m / "apps/ttd/soknad/instances" / party / guid / "instance.json")
                os.stat(m / "apps/ttd/soknad/instances" / party / guid / "data")

    mark = own_platform.mark()
    walk()
    second = storage_requests(own_platform.since(mark))
    assert len(second) <= pages + 4
    assert per_entry(second) == []
    mark = own_platform.mark()
    walk()
    assert storage_requests(own_platform.since(mark)) == []


def test_new_and_deleted_instances_after_ttl(own_platform, mount):
    ttl = 2
    m = mount(localtest=own_platform, cache_ttl=ttl)
    inst_root = m / "apps/ttd/soknad/instances"
    before = set(os.listdir(inst_root / "500100"))
    assert "509999" not in os.listdir(inst_root)

    g1, g2 = str(uuid.uuid4()), str(uuid.uuid4())
    content = b"<skjema>ny</skjema>\n"
    own_platform.add_instance("ttd/soknad", 500100, guid=g1,
                              data=[("model", None, "application/xml", content)])
    own_platform.add_instance("ttd/soknad", 509999, guid=g2,
                              data=[("attachment", "vedlegg.txt", "text/plain", b"hei\n")])
    try:
        time.sleep(ttl + 1.5)
        assert set(os.listdir(inst_root / "500100")) == before | {g1}
        assert "509999" in os.listdir(inst_root)
        assert os.listdir(inst_root / "509999") == [g2]
        doc = json.loads(read_bytes(inst_root / "500100" / g1 / "instance.json"))
        assert doc["id"] == f"500100/{g1}"
        [el] = doc["data"]
        assert read_bytes(inst_root / "500100" / g1 / "data/model" / f"{el['id']}.xml") == content
        assert read_bytes(inst_root / "509999" / g2 / "data/attachment/vedlegg.txt") == b"hei\n"
    finally:
        # as Storage deletes: marked hard-deleted, lastChanged moves (the
        # index learns of it from its next refresh); then purged
        own_platform.change_instances([f"500100/{g1}", f"509999/{g2}"], hard_delete=True)
    try:
        time.sleep(ttl + 1.5)
        assert set(os.listdir(inst_root / "500100")) == before
        assert "509999" not in os.listdir(inst_root)
        with pytest.raises(OSError) as e:
            os.stat(inst_root / "500100" / g1)
        assert e.value.errno == errno.ENOENT
    finally:
        own_platform.delete_instance(500100, g1)
        own_platform.delete_instance(509999, g2)


def listing_becomes(path, want, within):
    """Lists path (a fresh opendir each time, as ls does) until it shows
    exactly want; a folder that is gone counts as empty."""
    deadline = time.monotonic() + within
    while True:
        try:
            got = sorted(os.listdir(path))
        except FileNotFoundError:
            got = []
        if got == sorted(want) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def complete_tilskudd(p, party):
    guid = str(uuid.uuid4())
    r = p.request("POST", "/_localtest/instances", auth=False, body={
        "appId": "ttd/tilskudd", "partyId": str(party), "guid": guid, "complete": True,
        "data": [{"dataType": "vedlegg", "filename": "svar.txt", "contentType": "text/plain",
                  "content_b64": "aGVp"}]})
    assert r.status == 201, r
    return f"{party}-{guid}"


def test_a_folder_listed_empty_shows_new_entries(platform_factory, mount):
    """The receiving workflow: the inbox is empty in the morning, the
    agency's job confirms everything, citizens submit again. Each change
    shows within cache_ttl however empty the listing before it was."""
    ttl = 2
    p = platform_factory()
    m = mount(localtest=p, cache_ttl=ttl)
    inbox = m / "apps/ttd/tilskudd/inbox"
    for name in os.listdir(inbox):
        os.unlink(inbox / name)
    assert listing_becomes(inbox, [], ttl + 3) == []

    first = [complete_tilskudd(p, 70001), complete_tilskudd(p, 70002)]
    assert listing_becomes(inbox, first, ttl + 3) == sorted(first)

    for name in first:                     # the agency's job confirms all
        os.unlink(inbox / name)
    assert os.listdir(inbox) == []
    later = [complete_tilskudd(p, 70003)]
    assert listing_becomes(inbox, later, ttl + 3) == later


def test_a_party_folder_that_became_empty_shows_new_instances(platform_factory, mount):
    ttl = 2
    p = platform_factory()
    m = mount(localtest=p, cache_ttl=ttl)
    party = m / "apps/ttd/soknad/instances/509997"
    g1, g2 = str(uuid.uuid4()), str(uuid.uuid4())
    p.add_instance("ttd/soknad", 509997, guid=g1)
    assert listing_becomes(party, [g1], ttl + 3) == [g1]
    # a shell whose working folder it is keeps the folder's inode, and
    # opens it anew by that at each ls
    fd = os.open(party, os.O_RDONLY | os.O_DIRECTORY)
    here = f"/proc/self/fd/{fd}"
    try:
        p.change_instances([f"509997/{g1}"], hard_delete=True)    # as Storage deletes
        assert listing_becomes(here, [], ttl + 3) == []
        time.sleep(ttl + 0.5)              # listed empty, and trusted so for a while
        assert listing_becomes(here, [], 0) == []
        p.add_instance("ttd/soknad", 509997, guid=g2)
        assert listing_becomes(here, [g2], ttl + 3) == [g2]
    finally:
        os.close(fd)
    assert listing_becomes(party, [g2], 0) == [g2]


@pytest.fixture
def scratch(own_platform):
    """An instance of our own with one small attachment: (party, guid, element)."""
    guid = str(uuid.uuid4())
    doc = own_platform.add_instance("ttd/tilskudd", 50088, guid=guid,
                                    data=[("vedlegg", "notat.txt", "text/plain",
                                           b"first version of the file\n")])
    yield "50088", guid, doc["data"][0]
    own_platform.delete_instance(50088, guid)


def test_second_cat_uses_page_cache(own_platform, mount, scratch):
    party, guid, el = scratch
    ttl = 1
    m = mount(localtest=own_platform, cache_ttl=ttl)
    path = m / "apps/ttd/tilskudd/instances" / party / guid / "data/vedlegg/notat.txt"
    dpath = own_platform.data_path(party, guid, el["id"])

    mark = own_platform.mark()
    assert read_bytes(path) == b"first version of the file\n"
    assert [e for e in own_platform.since(mark) if e["path"] == dpath], "first read made no request"

    mark = own_platform.mark()
    assert read_bytes(path) == b"first version of the file\n"
    assert [e for e in own_platform.since(mark) if e["path"] == dpath] == []

    # The TTL passes, lastChanged does not change: the cached pages stay.
    time.sleep(ttl + 1.5)
    mark = own_platform.mark()
    os.stat(path)
    assert read_bytes(path) == b"first version of the file\n"
    assert [e for e in own_platform.since(mark) if e["path"] == dpath] == []


@pytest.mark.parametrize("new", [b"second version, longer than the first one\n",
                                 b"SECOND version of the fil\n"],
                         ids=["longer", "same-size"])
def test_replaced_data_is_seen_after_ttl(own_platform, mount, scratch, new):
    party, guid, el = scratch
    ttl = 1
    m = mount(localtest=own_platform, cache_ttl=ttl)
    inst = m / "apps/ttd/tilskudd/instances" / party / guid
    path = inst / "data/vedlegg/notat.txt"
    assert read_bytes(path) == b"first version of the file\n"
    time.sleep(1.1)  # so lastChanged moves by at least a second
    own_platform.put_data(party, guid, el["id"], new)
    [el2] = own_platform.instance(party, guid)["data"]
    assert iso_seconds(el2["lastChanged"]) > iso_seconds(el["lastChanged"])

    time.sleep(ttl + 1.5)
    st = os.stat(path)
    assert st.st_size == len(new)
    assert int(st.st_mtime) == iso_seconds(el2["lastChanged"])
    assert read_bytes(path) == new
    doc = json.loads(read_bytes(inst / "instance.json"))
    assert doc["data"][0]["size"] == len(new)
    assert int(os.stat(inst).st_mtime) == iso_seconds(doc["lastChanged"])
