"""The tree: folders, documents, attributes, xattrs, ENOENT, refused writes,
and the shell tools admins use on it."""

import errno
import json
import os
import random
import stat
import subprocess

import pytest

from localplatform import STORAGE
from mounts import WRITE_REFUSED, listdir_b, mount_ctx, read_bytes
from reference import expected_names, iso_seconds, live_instances

SOKNAD = "apps/ttd/soknad"
TILSKUDD = "apps/ttd/tilskudd"


@pytest.fixture(scope="module")
def mnt(platform, tmp_path_factory):
    with mount_ctx(tmp_path_factory.mktemp("tree"), platform, {"cache_ttl": 120}) as m:
        yield m


@pytest.fixture(scope="module")
def soknad_all(platform):
    return platform.instances("ttd/soknad")[0]


@pytest.fixture(scope="module")
def tilskudd_all(platform):
    return live_instances(platform.instances("ttd/tilskudd")[0])


@pytest.fixture(scope="module")
def sample(soknad_all, tilskudd_all):
    """A few instances of each app, with their documents."""
    rnd = random.Random(7)
    picks = soknad_all[:2] + rnd.sample(soknad_all, 3)
    return [("soknad", i) for i in picks] + [("tilskudd", i) for i in tilskudd_all]


def inst_dir(mnt, app, inst):
    return mnt.path / "apps" / "ttd" / app / "instances" / inst["id"]


def test_root(mnt):
    assert sorted(os.listdir(mnt.path)) == ["README.txt", "apps", "status.json"]
    assert os.listdir(mnt / "apps") == ["ttd"]
    assert sorted(os.listdir(mnt / "apps/ttd")) == ["soknad", "tilskudd"]
    for app in ("soknad", "tilskudd"):
        names = set(os.listdir(mnt / "apps/ttd" / app))
        assert {"application.json", "instances"} <= names, names


def test_readme(mnt):
    text = read_bytes(mnt / "README.txt").decode("utf-8")
    assert os.stat(mnt / "README.txt").st_size == len(text.encode())
    places = [line for line in text.splitlines() if line and not line[0].isspace()]
    # every folder family, in the tree's order, each with an example for
    # the first mounted app
    tree_order = ["README.txt", "status.json", "application.json", "instance.json", "/data/",
                  "/ctl", "inbox/", "outbox/", "sent/", "failed/", "events/"]
    at = [next(i for i, p in enumerate(places) if word in p) for word in tree_order]
    assert at == sorted(at), list(zip(tree_order, at))
    examples = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("$ ")]
    for name in sorted(os.listdir(mnt / SOKNAD)):
        assert any(p.startswith(f"apps/<org>/<app>/{name}") for p in places), name
        assert any(f"{SOKNAD}/{name}" in e for e in examples), name
    # names are shown as text (getfattr's default is base64 for non-ASCII)
    assert any(e.startswith("getfattr -d -e text ") for e in examples), examples


def test_status_json(mnt, platform):
    os.listdir(mnt / SOKNAD / "instances")  # make it talk to the platform once
    raw = read_bytes(mnt / "status.json")
    assert os.stat(mnt / "status.json").st_size == len(raw)
    doc = json.loads(raw)
    p = doc["platform"]
    assert p["url"].rstrip("/") == platform.url
    assert p["reachable"] is True
    assert "last_error" in p and "checked_at" in p
    for key in ("source", "subject", "expires_at"):
        assert key in doc["token"], key
    for key in ("pending", "oldest_pending_at", "retries", "failed"):
        assert key in doc["outbox"], key
    assert set(doc["events"]) == {"ttd/soknad", "ttd/tilskudd"}
    for ev in doc["events"].values():
        for key in ("cursor", "last_poll_at", "pending_files"):
            assert key in ev, key
    assert platform.token().encode() not in raw
    # the signature part alone must not leak either
    assert platform.token().split(".")[-1].encode() not in raw


def test_application_json(mnt, platform):
    for app in ("soknad", "tilskudd"):
        raw = read_bytes(mnt / "apps/ttd" / app / "application.json")
        assert os.stat(mnt / "apps/ttd" / app / "application.json").st_size == len(raw)
        assert json.loads(raw) == platform.application("ttd", app)


def test_instances_lists_every_party(mnt, soknad_all, tilskudd_all):
    assert sorted(os.listdir(mnt / SOKNAD / "instances")) == \
        sorted({i["instanceOwner"]["partyId"] for i in soknad_all})
    assert sorted(os.listdir(mnt / TILSKUDD / "instances")) == \
        sorted({i["instanceOwner"]["partyId"] for i in tilskudd_all})


def test_party_lists_its_instances(mnt, soknad_all):
    for party in ("500100", "500250", "500399"):
        want = sorted(i["id"].split("/")[1] for i in soknad_all
                      if i["instanceOwner"]["partyId"] == party)
        assert want
        assert sorted(os.listdir(mnt / SOKNAD / "instances" / party)) == want


def test_instance_folder(mnt, platform, sample):
    for app, inst in sample:
        d = inst_dir(mnt, app, inst)
        names = set(os.listdir(d))
        assert {"instance.json", "data"} <= names, names
        raw = read_bytes(d / "instance.json")
        doc = json.loads(raw)
        assert doc["id"] == inst["id"]
        assert doc == platform.instance(*inst["id"].split("/"))
        st = os.stat(d / "instance.json")
        assert st.st_size == len(raw)
        assert int(st.st_mtime) == iso_seconds(inst["lastChanged"])
        st = os.stat(d)
        assert int(st.st_mtime) == iso_seconds(inst["lastChanged"]), inst["id"]
        assert int(st.st_ctime) == iso_seconds(inst["created"]), inst["id"]
        assert sorted(os.listdir(d / "data")) == sorted({e["dataType"] for e in inst["data"]})


def test_data_file_attributes(mnt, sample):
    checked = 0
    for app, inst in sample:
        d = inst_dir(mnt, app, inst) / "data"
        by_id = {e["id"]: e for e in inst["data"]}
        for (dt, name), guid in expected_names(inst["data"]).items():
            path = os.path.join(os.fsencode(d), dt.encode(), name)
            el = by_id[guid]
            st = os.stat(path)
            assert stat.S_ISREG(st.st_mode)
            assert st.st_size == el["size"], path
            assert int(st.st_mtime) == iso_seconds(el["lastChanged"]), path
            assert int(st.st_ctime) == iso_seconds(el["created"]), path
            checked += 1
    assert checked >= 20


def test_modes(mnt, tilskudd_fixed):
    party, guid, doc = tilskudd_fixed
    inst = mnt / TILSKUDD / "instances" / party / guid
    dirs = [mnt.path, mnt / "apps", mnt / "apps/ttd", mnt / TILSKUDD, mnt / TILSKUDD / "instances",
            mnt / TILSKUDD / "instances" / party, inst, inst / "data", inst / "data/vedlegg"]
    files = [mnt / "README.txt", mnt / "status.json", mnt / TILSKUDD / "application.json",
             inst / "instance.json", inst / "data/vedlegg/kvittering-d0000003.pdf"]
    for d in dirs:
        st = os.stat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555, (d, oct(st.st_mode))
    for f in files:
        st = os.stat(f)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444, (f, oct(st.st_mode))


def test_xattrs(mnt, tilskudd_fixed):
    party, guid, doc = tilskudd_fixed
    inst = mnt / TILSKUDD / "instances" / party / guid
    assert os.getxattr(inst, "user.altinn.id") == f"{party}/{guid}".encode()

    el = next(d for d in doc["data"] if d.get("filename") == "Søknad om støtte – æøå.pdf")
    f = inst / "data/vedlegg/Søknad om støtte – æøå.pdf"
    assert os.getxattr(f, "user.altinn.id") == el["id"].encode()
    assert os.getxattr(f, "user.altinn.data_type") == b"vedlegg"
    assert os.getxattr(f, "user.altinn.content_type") == el["contentType"].encode()
    assert os.getxattr(f, "user.altinn.filename") == el["filename"].encode()
    names = set(os.listxattr(f))
    assert {"user.altinn.id", "user.altinn.data_type", "user.altinn.content_type",
            "user.altinn.filename"} <= names

    skjema = next(d for d in doc["data"] if d["dataType"] == "skjema" and not d.get("filename"))
    g = inst / "data/skjema" / f"{skjema['id']}.xml"
    assert os.getxattr(g, "user.altinn.id") == skjema["id"].encode()
    assert os.getxattr(g, "user.altinn.content_type") == b"application/xml"
    assert "user.altinn.filename" not in os.listxattr(g)
    with pytest.raises(OSError) as e:
        os.getxattr(g, "user.altinn.filename")
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.getxattr(f, "user.altinn.nope")
    assert e.value.errno == errno.ENODATA


@pytest.mark.parametrize("rel", [
    "nope",
    "apps/nope",
    "apps/ttd/nope",
    "apps/ttd/soknad/nope",
    "apps/ttd/soknad/instances/999999",
    "apps/ttd/soknad/instances/abc",
    "apps/ttd/tilskudd/instances/50001/00000000-0000-4000-8000-000000000000",
    "apps/ttd/tilskudd/instances/50001/not-a-guid",
    # an instance under another party's folder
    "apps/ttd/tilskudd/instances/50001/b16f0000-0000-4000-8000-000000000002",
    # an instance under the other app
    "apps/ttd/soknad/instances/50001/5a1e0000-0000-4000-8000-000000000001",
    "apps/ttd/tilskudd/instances/50001/5a1e0000-0000-4000-8000-000000000001/nope",
    "apps/ttd/tilskudd/instances/50001/5a1e0000-0000-4000-8000-000000000001/data/nope",
    "apps/ttd/tilskudd/instances/50001/5a1e0000-0000-4000-8000-000000000001/data/vedlegg/kvittering.pdf",
    "apps/ttd/tilskudd/instances/50001/5a1e0000-0000-4000-8000-000000000001/data/vedlegg/../../etc/passwd",
])
def test_enoent(mnt, rel):
    with pytest.raises(OSError) as e:
        os.stat(mnt / rel)
    assert e.value.errno == errno.ENOENT, rel


def _refused(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno in WRITE_REFUSED, (fn, args, e.value)


def test_writes_are_refused(mnt, platform, tilskudd_fixed):
    party, guid, doc = tilskudd_fixed
    inst = mnt / TILSKUDD / "instances" / party / guid
    data_file = inst / "data/vedlegg/kvittering-d0000003.pdf"
    before = read_bytes(data_file)
    mark = platform.mark()

    for f in (mnt / "README.txt", mnt / "status.json", mnt / TILSKUDD / "application.json",
              inst / "instance.json"):
        for mode in ("r+b", "wb", "ab"):
            _refused(open, f, mode)
        _refused(os.truncate, f, 0)
        _refused(os.setxattr, f, "user.altinn.id", b"x")
        _refused(os.setxattr, f, "user.note", b"x")
        _refused(os.unlink, f)
    # data files are replaced whole, created and removed (test_15_instance_writes.py,
    # on a platform of its own); what would patch one is refused
    for mode in ("r+b", "ab"):
        with pytest.raises(OSError) as e:
            open(data_file, mode)
        assert e.value.errno == errno.EOPNOTSUPP, (mode, e.value)
    with pytest.raises(OSError) as e:
        os.truncate(data_file, 0)
    assert e.value.errno == errno.EOPNOTSUPP, e.value
    _refused(os.setxattr, data_file, "user.altinn.id", b"x")
    _refused(os.setxattr, data_file, "user.note", b"x")
    _refused(os.open, inst / "new.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    _refused(os.open, mnt / "new.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    _refused(os.mkdir, mnt / SOKNAD / "instances" / "12345")
    _refused(os.mkdir, inst / "data" / "newtype")
    _refused(os.rmdir, inst / "data" / "skjema")
    _refused(os.rename, data_file, inst / "data/vedlegg/other.pdf")
    _refused(os.rename, inst / "instance.json", inst / "x.json")
    _refused(os.symlink, "target", inst / "link")
    _refused(os.link, data_file, inst / "data/vedlegg/hard.pdf")
    _refused(os.setxattr, inst, "user.altinn.id", b"x")
    _refused(os.removexattr, data_file, "user.altinn.id")

    assert read_bytes(data_file) == before
    assert not os.path.exists(inst / "data/vedlegg/other.pdf")
    writes = [e for e in platform.since(mark) if e["method"] != "GET"]
    assert writes == []


def _run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, shell=isinstance(cmd, str), capture_output=True, timeout=120)
    assert r.returncode == 0 and r.stderr == b"", (cmd, r.returncode, r.stderr[-2000:])
    return r.stdout


def test_shell_tools(mnt, tilskudd_all):
    out = _run(["find", TILSKUDD], mnt.path)
    files = _run(["find", TILSKUDD, "-type", "f"], mnt.path).splitlines()
    # application.json; per instance: instance.json, ctl, and the data files
    want = 1 + sum(2 + len(i["data"]) for i in tilskudd_all)
    assert len(files) == want, (len(files), want)
    assert len(out.splitlines()) > want
    lsr = _run(["ls", "-lR", TILSKUDD], mnt.path)
    assert b"stor-fil.bin" in lsr and b"268435456" in lsr
    _run("find apps/ttd/tilskudd -type f -size -2M -exec cat {} + > /dev/null", mnt.path)
    attrs = _run(["getfattr", "-R", "-d", TILSKUDD], mnt.path)
    assert b'user.altinn.id="50001/5a1e0000-0000-4000-8000-000000000001"' in attrs
    assert b'user.altinn.data_type="vedlegg"' in attrs
    _run(["du", "-s", TILSKUDD], mnt.path)


def test_soknad_files_match_platform(mnt, soknad_all):
    """Every soknad instance has exactly its data files (names per the rules)."""
    rnd = random.Random(11)
    for inst in rnd.sample(soknad_all, 40):
        d = os.fsencode(mnt / SOKNAD / "instances" / inst["id"] / "data")
        got = {(dt.decode(), n) for dt in listdir_b(d) for n in listdir_b(os.path.join(d, dt))}
        assert got == set(expected_names(inst["data"])), inst["id"]
