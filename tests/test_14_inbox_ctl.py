"""The receiving side: inbox/ of completed, unconfirmed instances (rm
confirms, durably, once) and the ctl file of each instance. Uses a
platform of its own, since it confirms and moves instances."""

import errno
import json
import os
import subprocess
import time
import uuid

import pytest
import sqlite3

from localplatform import STORAGE
from mounts import mount_ctx

TILSKUDD = "/ttd/tilskudd"


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def inbox_expected(p, app_id):
    docs, _ = p.instances(app_id, **{"process.isComplete": "true", "excludeConfirmedBy": "ttd"})
    return docs


def admin_instance(p, party, guid):
    r = p.get("/_localtest/instances", query={"partyId": party}, auth=False)
    assert r.status == 200, r
    return next(i for i in r.json() if i["id"] == f"{party}/{guid}")


def add_complete(p, n, party_base=70000):
    """n completed, unconfirmed instances of ttd/tilskudd."""
    made = []
    for i in range(n):
        guid = str(uuid.uuid4())
        r = p.request("POST", "/_localtest/instances", auth=False, body={
            "appId": "ttd/tilskudd", "partyId": str(party_base + i % 50), "guid": guid,
            "complete": True,
            "data": [{"dataType": "vedlegg", "filename": "svar.txt", "contentType": "text/plain",
                      "content_b64": "aGVp"}]})
        assert r.status == 201, r
        made.append((str(party_base + i % 50), guid))
    return made


def complete_posts(entries):
    return [e for e in entries if e["method"] == "POST" and e["path"].endswith("/complete")]


@pytest.fixture(scope="module")
def plat(own_platform):
    return own_platform


# ---- inbox -----------------------------------------------------------------

def test_inbox_lists_complete_unconfirmed_oldest_first(plat, mount):
    m = mount(localtest=plat, cache_ttl=600)
    inbox = m / "apps/ttd/soknad/inbox"
    want = inbox_expected(plat, "ttd/soknad")
    assert len(want) >= 50
    names = os.listdir(inbox)  # readdir order
    assert sorted(names) == sorted(d["id"].replace("/", "-") for d in want)
    ended = {d["id"].replace("/", "-"): d["process"]["ended"] for d in want}
    assert [ended[n] for n in names] == sorted(ended[n] for n in names)
    first = inbox / names[0]
    party, guid = names[0].split("-", 1)
    assert os.path.islink(first)
    assert os.readlink(first) == f"../instances/{party}/{guid}"
    # the link leads to the instance, whose documents read through it
    doc = json.loads((first / "instance.json").read_text())
    assert doc["id"] == f"{party}/{guid}" and doc["process"]["ended"]
    st = os.lstat(first)
    assert abs(st.st_mtime - time.mktime(time.strptime(ended[names[0]][:19], "%Y-%m-%dT%H:%M:%S"))
               + time.timezone) < 2


def test_inbox_of_500_lists_in_a_handful_of_requests(platform_factory, mount):
    p = platform_factory()
    add_complete(p, 500)
    m = mount(localtest=p, cache_ttl=600, page_size=100)
    mark = p.mark()
    names = os.listdir(m / "apps/ttd/tilskudd/inbox")
    assert len(names) >= 500
    queries = [e for e in p.since(mark) if e["path"] == f"{STORAGE}/instances"]
    assert len(queries) <= len(names) // 100 + 2, queries
    assert all("excludeConfirmedBy=ttd" in e["query"] for e in queries)
    os.listdir(m / "apps/ttd/tilskudd/inbox")  # within the TTL: no new request
    assert [e for e in p.since(mark) if e["path"] == f"{STORAGE}/instances"] == queries


def test_rm_confirms_once_and_the_entry_never_comes_back(plat, mount):
    m = mount(localtest=plat, cache_ttl=1)
    inbox = m / "apps/ttd/soknad/inbox"
    name = sorted(os.listdir(inbox))[0]
    party, guid = name.split("-", 1)
    mark = plat.mark()
    os.unlink(inbox / name)
    assert name not in os.listdir(inbox)          # gone at once
    wait_for(lambda: any(c.get("stakeholderId") == "ttd" for c in
                         admin_instance(plat, party, guid).get("completeConfirmations", [])),
             what="the platform to record the confirmation")
    assert len(complete_posts(plat.since(mark))) == 1
    time.sleep(1.2)                               # past the TTL
    assert name not in os.listdir(inbox)
    with pytest.raises(FileNotFoundError):
        os.unlink(inbox / name)
    # the instance itself is still there, confirmed
    doc = json.loads((m / f"apps/ttd/soknad/instances/{party}/{guid}/instance.json").read_text())
    assert any(c["stakeholderId"] == "ttd" for c in doc["completeConfirmations"])


def test_confirmation_survives_an_outage_and_a_restart(plat, mount):
    m = mount(localtest=plat, cache_ttl=1)
    inbox = m / "apps/ttd/soknad/inbox"
    name = sorted(os.listdir(inbox))[-1]
    party, guid = name.split("-", 1)
    r = plat.request("POST", "/_localtest/faults", auth=False,
                     body={"path": "/ttd/*/instances/*/*/complete", "status": 503, "count": -1})
    assert r.status in (200, 201), r
    try:
        mark = plat.mark()
        os.unlink(inbox / name)
        assert name not in os.listdir(inbox)
        wait_for(lambda: complete_posts(plat.since(mark)), what="a first attempt")
        # the daemon goes down with the confirmation still pending
        m.stop()
        assert not admin_instance(plat, party, guid).get("completeConfirmations")
    finally:
        plat.request("DELETE", "/_localtest/faults", auth=False)
    m.start()
    assert name not in os.listdir(inbox)          # still hidden after the restart
    wait_for(lambda: any(c.get("stakeholderId") == "ttd" for c in
                         admin_instance(plat, party, guid).get("completeConfirmations", [])),
             timeout=30, what="the confirmation after the restart")
    status = json.loads((m / "status.json").read_text())
    assert status["platform"]["reachable"] is True


def test_a_citizen_submission_reaches_the_inbox(plat, mount):
    m = mount(localtest=plat, cache_ttl=1)
    r = plat.get("/Home/GetTestUserToken/1337", query={"partyId": "50005"}, auth=False)
    assert r.status == 200, r
    user = "Bearer " + r.body.decode().strip()
    r = plat.request("POST", f"{TILSKUDD}/instances", auth=user,
                     body={"instanceOwner": {"partyId": "50005"}})
    assert r.status == 201, r
    party, guid = r.json()["id"].split("/")
    r = plat.request("POST", f"{TILSKUDD}/instances/{party}/{guid}/data", auth=user,
                     query={"dataType": "vedlegg"}, body=b"takk for hjelpa\n",
                     content_type="text/plain",
                     headers={"Content-Disposition": 'attachment; filename="svar.txt"'})
    assert r.status == 201, r
    r = plat.request("PUT", f"{TILSKUDD}/instances/{party}/{guid}/process/next", auth=user)
    assert r.status == 200, r
    entry = m / f"apps/ttd/tilskudd/inbox/{party}-{guid}"
    wait_for(lambda: entry.is_symlink(), timeout=5, what="the submission in the inbox")
    assert (entry / "data/vedlegg/svar.txt").read_bytes() == b"takk for hjelpa\n"


# The journal of a version before core/queue.c: its own table.
OLD_INBOX_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS confirmations ("
    " org TEXT NOT NULL, app TEXT NOT NULL, party TEXT NOT NULL, guid TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " requested_at INTEGER NOT NULL,"
    " next_try_at INTEGER NOT NULL DEFAULT 0,"
    " done_at INTEGER,"
    " PRIMARY KEY (org, app, party, guid));")


def test_an_earlier_versions_journal_is_kept(plat, tmp_path):
    (a_party, a_guid), (b_party, b_guid) = add_complete(plat, 2, party_base=71000)
    state = tmp_path / "old" / "state"
    state.mkdir(parents=True)
    db = sqlite3.connect(state / "inbox.db")
    db.executescript(OLD_INBOX_SCHEMA)
    now = int(time.time())
    db.execute("INSERT INTO confirmations VALUES ('ttd', 'tilskudd', ?, ?, 'pending', 2,"
               " '503', ?, 0, NULL)", (a_party, a_guid, now - 60))
    db.execute("INSERT INTO confirmations VALUES ('ttd', 'tilskudd', ?, ?, 'done', 1,"
               " NULL, ?, 0, ?)", (b_party, b_guid, now - 60, now - 30))
    db.commit()
    db.close()
    mark = plat.mark()
    with mount_ctx(tmp_path / "old", plat, {"cache_ttl": 1}) as m:
        names = os.listdir(m / "apps/ttd/tilskudd/inbox")
        # both stay hidden: the pending one and the one confirmed before
        assert f"{a_party}-{a_guid}" not in names and f"{b_party}-{b_guid}" not in names
        wait_for(lambda: any(c.get("stakeholderId") == "ttd" for c in
                             admin_instance(plat, a_party, a_guid).get("completeConfirmations",
                                                                        [])),
                 what="the pending confirmation of the old journal")
        posts = complete_posts(plat.since(mark))
        assert [e["path"] for e in posts] == [
            f"/ttd/tilskudd/instances/{a_party}/{a_guid}/complete"], posts
    db = sqlite3.connect(state / "inbox.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert "confirmations" not in tables


# ---- ctl -----------------------------------------------------------------

def ctl_write(path, text):
    """One write(2) of text; returns 0 or the errno."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, text.encode())
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def report(path):
    lines = path.read_text().splitlines()
    return dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "")
                for line in lines)


def active_soknad(p):
    docs, _ = p.instances("ttd/soknad", **{"process.isComplete": "false"})
    return [d for d in docs if d["process"].get("currentTask", {}).get("elementId") == "Task_1"]


def test_ctl_next_moves_the_process_and_reports(plat, mount):
    m = mount(localtest=plat, cache_ttl=600)
    doc = active_soknad(plat)[0]
    party, guid = doc["id"].split("/")
    inst = m / f"apps/ttd/soknad/instances/{party}/{guid}"
    assert report(inst / "ctl") == {} or "command" not in report(inst / "ctl")
    assert ctl_write(inst / "ctl", "next\n") == 0
    rep = report(inst / "ctl")
    assert rep["command"] == "next" and rep["status"] == "200" and rep["result"] == "ok"
    assert rep["message"] == "process at Task_2"
    assert plat.instance(party, guid)["process"]["currentTask"]["elementId"] == "Task_2"
    # the tree shows the new state at once, not after the TTL
    now = json.loads((inst / "instance.json").read_text())
    assert now["process"]["currentTask"]["elementId"] == "Task_2"
    # shell redirection works the same
    r = subprocess.run(["sh", "-c", f"echo next > '{inst}/ctl'"], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert report(inst / "ctl")["message"] == "process ended"
    # the process has ended: the platform says 409, the write EBUSY
    assert ctl_write(inst / "ctl", "next") == errno.EBUSY
    rep = report(inst / "ctl")
    assert rep["status"] == "409" and "Process is ended" in rep["message"]


def test_ctl_substatus_and_complete(plat, mount):
    m = mount(localtest=plat, cache_ttl=600)
    doc = active_soknad(plat)[1]
    party, guid = doc["id"].split("/")
    ctl = m / f"apps/ttd/soknad/instances/{party}/{guid}/ctl"
    assert ctl_write(ctl, "substatus venter Venter på vedlegg fra søker\n") == 0
    sub = plat.instance(party, guid)["status"]["substatus"]
    assert sub == {"label": "venter", "description": "Venter på vedlegg fra søker"}
    mark = plat.mark()
    assert ctl_write(ctl, "complete") == 0
    assert len(complete_posts(plat.since(mark))) == 1
    assert any(c["stakeholderId"] == "ttd" for c in plat.instance(party, guid)["completeConfirmations"])


@pytest.mark.parametrize("text", ["\n", "bogus", "next a b", "substatus", "complete now",
                                  "next\ncomplete\n"])
def test_ctl_refuses_what_is_not_one_command(plat, mount, text):
    m = mount(localtest=plat, cache_ttl=600)
    doc = active_soknad(plat)[2]
    party, guid = doc["id"].split("/")
    ctl = m / f"apps/ttd/soknad/instances/{party}/{guid}/ctl"
    mark = plat.mark()
    assert ctl_write(ctl, text) == errno.EINVAL
    assert [e for e in plat.since(mark) if e["method"] != "GET"] == []


@pytest.mark.parametrize("status,want", [(503, errno.EIO), (403, errno.EACCES),
                                         (404, errno.ENOENT), (400, errno.EINVAL)])
def test_ctl_maps_the_platform_answer(plat, mount, status, want):
    m = mount(localtest=plat, cache_ttl=600)
    doc = active_soknad(plat)[3]
    party, guid = doc["id"].split("/")
    ctl = m / f"apps/ttd/soknad/instances/{party}/{guid}/ctl"
    r = plat.request("POST", "/_localtest/faults", auth=False,
                     body={"path": "/ttd/*/instances/*/*/substatus", "status": status, "count": -1})
    assert r.status in (200, 201), r
    try:
        assert ctl_write(ctl, "substatus x") == want
    finally:
        plat.request("DELETE", "/_localtest/faults", auth=False)
    assert report(ctl)["status"] == str(status)


def test_ctl_is_the_only_writable_file_in_an_instance(plat, mount):
    m = mount(localtest=plat, cache_ttl=600)
    doc = active_soknad(plat)[4]
    party, guid = doc["id"].split("/")
    inst = m / f"apps/ttd/soknad/instances/{party}/{guid}"
    with pytest.raises(OSError) as e:
        open(inst / "instance.json", "w")
    assert e.value.errno in (errno.EROFS, errno.EACCES)
    assert os.access(inst / "ctl", os.W_OK)
    assert not os.access(inst / "instance.json", os.W_OK)
