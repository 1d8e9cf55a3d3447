"""Data file names: filename or <guid>.<ext>, sanitized, deduplicated with
the first 8 hex digits of the data guid, and stable across remounts."""

import os

import pytest

from mounts import listdir_b, read_bytes
from reference import expected_names, live_instances

FIXED = "apps/ttd/tilskudd/instances/50001/5a1e0000-0000-4000-8000-000000000001/data"
LONG = "Langt navn " + "ø" * 120 + ".txt"
EXPECTED = {
    "skjema": {"d0000001-0000-4000-8000-000000000001.xml"},
    "vedlegg": {
        "Søknad om støtte – æøå.pdf",
        "kvittering-d0000003.pdf",
        "kvittering-d0000004.pdf",
        ".._.._etc_passwd",
        "rapport_2026_mars.txt",
        LONG,
        "linje_skift_.txt",
        "__",
        "d0000010-0000-4000-8000-000000000010.png",
    },
}
# expected name -> the element's original filename (None: no filename)
ORIGINAL = {
    "d0000001-0000-4000-8000-000000000001.xml": None,
    "Søknad om støtte – æøå.pdf": "Søknad om støtte – æøå.pdf",
    ".._.._etc_passwd": "../../etc/passwd",
    "rapport_2026_mars.txt": "rapport/2026/mars.txt",
    LONG: "Langt navn " + "ø" * 150 + ".txt",
    "linje_skift_.txt": "linje\nskift\t.txt",
    "__": "..",
    "d0000010-0000-4000-8000-000000000010.png": None,
}


@pytest.fixture(scope="module")
def names_mount(platform, tmp_path_factory):
    from mounts import mount_ctx
    with mount_ctx(tmp_path_factory.mktemp("names"), platform, {"cache_ttl": 120}) as m:
        yield m


def listing(m):
    d = m.path / FIXED
    return {dt: set(os.listdir(d / dt)) for dt in os.listdir(d)}


def test_fixed_instance_names(names_mount):
    assert listing(names_mount) == EXPECTED


def test_long_name_is_255_bytes(names_mount):
    assert len(LONG.encode()) == 255
    path = names_mount.path / FIXED / "vedlegg" / LONG
    assert os.stat(path).st_size > 0
    read_bytes(path)


def test_each_name_is_the_right_element(names_mount, platform, tilskudd_fixed):
    party, guid, doc = tilskudd_fixed
    by_filename = {}
    for el in doc["data"]:
        by_filename.setdefault(el.get("filename"), []).append(el)
    seen = set()
    for dt, names in EXPECTED.items():
        for name in names:
            path = names_mount.path / FIXED / dt / name
            data_id = os.getxattr(path, "user.altinn.id").decode()
            [el] = [e for e in doc["data"] if e["id"] == data_id]
            seen.add(data_id)
            assert el["dataType"] == dt
            assert os.getxattr(path, "user.altinn.data_type").decode() == dt
            if name.startswith("kvittering-"):
                assert el["filename"] == "kvittering.pdf"
                assert name == f"kvittering-{data_id[:8]}.pdf"
            else:
                orig = ORIGINAL[name]
                assert el.get("filename") == orig, name
                if orig is None:
                    assert name.startswith(data_id)
                    with pytest.raises(OSError):
                        os.getxattr(path, "user.altinn.filename")
                else:
                    assert os.getxattr(path, "user.altinn.filename") == orig.encode()
            assert read_bytes(path) == platform.data(party, guid, data_id), name
    assert seen == {e["id"] for e in doc["data"]}


def test_names_follow_rules_in_every_tilskudd_instance(names_mount, platform):
    for inst in live_instances(platform.instances("ttd/tilskudd")[0]):
        d = os.fsencode(names_mount.path / "apps/ttd/tilskudd/instances" / inst["id"] / "data")
        got = {(dt.decode(), n) for dt in listdir_b(d) for n in listdir_b(os.path.join(d, dt))}
        assert got == set(expected_names(inst["data"])), inst["id"]
        for (dt, name), data_id in expected_names(inst["data"]).items():
            assert os.getxattr(os.path.join(d, dt.encode(), name), "user.altinn.id") == \
                data_id.encode()


def test_big_file_name(names_mount, big_element):
    assert os.stat(names_mount.path / big_element["rel"]).st_size == 268435456


def test_names_stable_across_remounts(names_mount, mount):
    first = listing(names_mount)
    ids = {(dt, n): os.getxattr(names_mount.path / FIXED / dt / n, "user.altinn.id")
           for dt, names in first.items() for n in names}
    for _ in range(2):
        m = mount(cache_ttl=120)
        assert listing(m) == first
        for (dt, n), data_id in ids.items():
            assert os.getxattr(m.path / FIXED / dt / n, "user.altinn.id") == data_id


def test_names_of_a_new_instance(own_platform, mount):
    """Collisions made by sanitizing, names without an extension, long
    duplicates, and the content-type extensions."""
    import uuid
    guid = str(uuid.uuid4())
    data = [
        ("vedlegg", "a/b.txt", "text/plain", b"one"),
        ("vedlegg", "a_b.txt", "text/plain", b"two"),
        ("vedlegg", "README", "text/plain", b"three"),
        ("vedlegg", "README", "text/plain", b"four"),
        ("vedlegg", ".", "text/plain", b"five"),
        ("vedlegg", "del\x7f.txt", "text/plain", b"six"),
        ("vedlegg", "x" * 300 + ".pdf", "application/pdf", b"seven"),
        ("vedlegg", "x" * 300 + ".pdf", "application/pdf", b"eight"),
        ("vedlegg", None, "image/jpeg", b"nine"),
        ("vedlegg", None, "application/x-unheard-of", b"ten"),
        ("vedlegg", None, "text/plain", b"eleven"),
        ("skjema", None, "application/json", b"{}"),
        ("skjema", "README", "text/plain", b"twelve"),
    ]
    doc = own_platform.add_instance("ttd/tilskudd", 50099, guid=guid, data=data)
    try:
        by_content = {}
        assert len(doc["data"]) == len(data)
        for el, (dt, fn, _, content) in zip(doc["data"], data):
            assert (el["dataType"], el.get("filename"), el["size"]) == (dt, fn, len(content))
            by_content[el["id"]] = content
        want = expected_names(doc["data"])
        ids = {el["id"]: el for el in doc["data"]}
        # spot checks of the reference itself
        readme = sorted(n for (dt, n) in want if dt == "vedlegg" and n.startswith(b"README"))
        assert readme == sorted(f"README-{i[:8]}".encode() for i, e in ids.items()
                                if e.get("filename") == "README" and e["dataType"] == "vedlegg")
        assert ("skjema", b"README") in want
        assert ("vedlegg", b"_") in want and ("vedlegg", b"del_.txt") in want
        assert sum(1 for (_, n) in want if n.startswith(b"a_b-")) == 2
        assert all(len(n) <= 255 for (_, n) in want)
        assert sum(1 for (_, n) in want if len(n) == 255 and n.endswith(b".pdf")) == 2

        m = mount(localtest=own_platform, cache_ttl=120)
        d = os.fsencode(m.path / "apps/ttd/tilskudd/instances/50099" / guid / "data")
        got = {(dt.decode(), n) for dt in listdir_b(d) for n in listdir_b(os.path.join(d, dt))}
        assert got == set(want)
        for (dt, name), data_id in want.items():
            assert read_bytes(os.path.join(d, dt.encode(), name)) == by_content[data_id], name
    finally:
        own_platform.delete_instance(50099, guid)
