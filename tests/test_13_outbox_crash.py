"""The outbox across crashes, restarts and a full disk: kill -9 of the daemon
at each step of a delivery (the platform held at that step with a delayed
answer), a restart on the same state_dir, and then exactly one instance with
exactly one data element, the process moved exactly once, and a receipt;
files half written when the daemon died are held, not sent; a full state_dir
refuses the write with ENOSPC and enqueues nothing."""

import errno
import json
import os
import subprocess
import time

import pytest

from outbox_util import (FAST, PDF, SOKNAD, area, attachments, calls, instances_of, new_org,
                         owner_dir, stored_bytes, wait_for, wait_receipt, xattr)


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    yield own_platform
    own_platform.clear_faults()


def kill9(m):
    """The daemon dies at once; the dead mount is unmounted. A thread of it
    that was writing through its own mount (a receipt) may be left waiting
    for an answer no one will give: the connection is then aborted, as an
    admin would with umount -f."""
    m.kill9()


def in_flight(p, mark, method, suffix):
    return [e for e in p.since(mark) if e["method"] == method and e["path"].endswith(suffix)
            and e["status"] is None]


def task_of(p, number):
    [inst] = instances_of(p, SOKNAD, number)
    return (inst["process"].get("currentTask") or {}).get("elementId")


# (what the platform is held at, the fault's path, method, whether the work is
# done before the hold, and what shows it was done)
STEPS = {
    "create-done": ("/ttd/soknad/instances$", "POST", True, "/instances"),
    "create-not-done": ("/ttd/soknad/instances$", "POST", False, "/instances"),
    "upload-done": ("/ttd/soknad/instances/*/*/data", "POST", True, "/data"),
    "next-done": ("/ttd/soknad/instances/*/*/process/next", "PUT", True, "/process/next"),
    "next-not-done": ("/ttd/soknad/instances/*/*/process/next", "PUT", False, "/process/next"),
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_kill_9_mid_delivery_then_restart(p, mount, step):
    path, method, after, suffix = STEPS[step]
    m1 = mount(localtest=p, **FAST)
    owner, number = new_org()
    d = owner_dir(m1, SOKNAD, owner)
    p.fault(path, method=method, delay_ms=6000, after=after, count=1)
    mark = p.mark()
    (d / "vedtak.pdf").write_bytes(PDF)
    wait_for(lambda: in_flight(p, mark, method, suffix), what=f"{method} {suffix} held")
    if step == "create-done":
        wait_for(lambda: instances_of(p, SOKNAD, number), what="the instance")
    elif step == "upload-done":
        wait_for(lambda: attachments(instances_of(p, SOKNAD, number)[0]), what="the upload")
    elif step == "next-done":
        wait_for(lambda: task_of(p, number) == "Task_2", what="the process to move")
    kill9(m1)
    assert (area(m1, SOKNAD, "outbox") / owner / "vedtak.pdf").exists() is False  # unmounted
    assert (m1.state_dir / "apps/ttd/soknad/outbox" / owner / "vedtak.pdf").read_bytes() == PDF

    m2 = mount(localtest=p, state_dir=str(m1.state_dir), **FAST)
    receipt = wait_receipt(m2, SOKNAD, owner, "vedtak.pdf", timeout=40)
    [inst] = instances_of(p, SOKNAD, number)
    [el] = attachments(inst)
    assert stored_bytes(p, el["id"]) == PDF
    assert receipt["instance_id"] == inst["id"] and receipt["data"][0]["data_id"] == el["id"]
    # soknad is Task_1 -> Task_2 -> end: a second process/next would have ended it
    assert task_of(p, number) == "Task_2"
    assert receipt["process"]["task"] == "Task_2"
    assert not (d.exists() and os.listdir(area(m2, SOKNAD, "outbox") / owner))
    assert len(calls(p, mark, "POST", "/instances")) == (2 if step == "create-not-done" else 1)


def test_creates_of_one_owner_are_one_at_a_time(p, mount):
    """One item's look-up after a lost answer must not find the instance
    another item's create has just made and not yet recorded (both then
    used it). So creates and look-ups of one owner go one at a time: while
    one create is held, the other file's waits."""
    m1 = mount(localtest=p, outbox_uploaders=4, **FAST)
    owner, number = new_org()
    d = owner_dir(m1, SOKNAD, owner)
    p.fault("/ttd/soknad/instances$", method="POST", delay_ms=4000, after=True, count=2)
    mark = p.mark()
    (d / "a.pdf").write_bytes(PDF)
    (d / "b.pdf").write_bytes(PDF + b"b")
    wait_for(lambda: in_flight(p, mark, "POST", "/instances"), what="a create held")
    time.sleep(1.5)
    assert len(in_flight(p, mark, "POST", "/instances")) == 1
    wait_for(lambda: len(instances_of(p, SOKNAD, number)) == 1, what="the first instance")
    kill9(m1)                              # its answer is lost
    m2 = mount(localtest=p, state_dir=str(m1.state_dir), outbox_uploaders=4, **FAST)
    ra = wait_receipt(m2, SOKNAD, owner, "a.pdf", timeout=40)
    rb = wait_receipt(m2, SOKNAD, owner, "b.pdf", timeout=40)
    assert ra["instance_id"] != rb["instance_id"]
    insts = instances_of(p, SOKNAD, number)
    assert len(insts) == 2
    assert sorted(len(attachments(i)) for i in insts) == [1, 1]


def test_file_half_written_when_the_daemon_died_is_held(p, mount):
    m1 = mount(localtest=p, **FAST)
    owner, number = new_org()
    d = owner_dir(m1, SOKNAD, owner)
    f = open(d / "halv.pdf", "wb", buffering=0)
    f.write(PDF[:10])
    kill9(m1)
    try:
        f.close()
    except OSError:
        pass
    m2 = mount(localtest=p, state_dir=str(m1.state_dir), **FAST)
    d2 = area(m2, SOKNAD, "outbox") / owner
    assert xattr(d2 / "halv.pdf", "user.altinn.state") == "held"
    assert "stopped" in xattr(d2 / "halv.pdf", "user.altinn.last_error")
    time.sleep(1)
    assert instances_of(p, SOKNAD, number) == []
    status = json.loads((m2.path / "status.json").read_bytes())["outbox"]
    assert status["pending"] == 0
    (d2 / "halv.pdf").write_bytes(PDF)  # written again, whole: now it goes
    wait_receipt(m2, SOKNAD, owner, "halv.pdf")
    [inst] = instances_of(p, SOKNAD, number)
    assert stored_bytes(p, attachments(inst)[0]["id"]) == PDF


def test_outage_across_a_clean_restart(p, mount):
    m1 = mount(localtest=p, **FAST)
    owner, number = new_org()
    d = owner_dir(m1, SOKNAD, owner)
    p.fault("/ttd/soknad/instances$", method="POST", status=503, count=-1)
    (d / "a.pdf").write_bytes(PDF)
    (d / "b.pdf").write_bytes(PDF + b"b")
    wait_for(lambda: "503" in (xattr(d / "b.pdf", "user.altinn.last_error") or ""),
             what="a 503 for b.pdf")
    m1.stop()
    p.clear_faults()
    m2 = mount(localtest=p, state_dir=str(m1.state_dir), **FAST)
    ra = wait_receipt(m2, SOKNAD, owner, "a.pdf", timeout=30)
    rb = wait_receipt(m2, SOKNAD, owner, "b.pdf", timeout=30)
    assert ra["instance_id"] != rb["instance_id"]
    assert ra["attempts"] >= 2
    assert len(instances_of(p, SOKNAD, number)) == 2


# The journal of a version before core/queue.c: tables of its own.
OLD_SPOOL_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, app TEXT NOT NULL, rel TEXT NOT NULL,"
    " is_dir INTEGER NOT NULL, state TEXT NOT NULL, received_at INTEGER NOT NULL,"
    " next_at INTEGER NOT NULL, attempt_at INTEGER NOT NULL,"
    " first_attempt_at INTEGER NOT NULL, finished_at INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, instance_id TEXT, task TEXT, last_error TEXT,"
    " outcome_name TEXT, outcome_doc TEXT);"
    "CREATE INDEX IF NOT EXISTS items_rel ON items(org, app, rel);"
    "CREATE INDEX IF NOT EXISTS items_instance ON items(instance_id);"
    "CREATE TABLE IF NOT EXISTS elements ("
    " item_id INTEGER NOT NULL, idx INTEGER NOT NULL, path TEXT NOT NULL,"
    " filename TEXT NOT NULL, content_type TEXT NOT NULL, data_type TEXT NOT NULL,"
    " size INTEGER NOT NULL, sha256 TEXT NOT NULL, state TEXT NOT NULL,"
    " attempt_at INTEGER NOT NULL, data_id TEXT, PRIMARY KEY (item_id, idx));"
    "CREATE INDEX IF NOT EXISTS elements_data ON elements(data_id);"
    "CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, value TEXT NOT NULL);")


def to_old_spool(db_path):
    """Rewrites an outbox.db into the earlier version's tables, row for row,
    as that version would have left the same items."""
    import sqlite3
    db = sqlite3.connect(db_path)
    items = db.execute("SELECT id, state, tries, created_at, due_at, attempt_at, done_at,"
                       " last_error, payload FROM queue_items WHERE queue = 'outbox'").fetchall()
    els = db.execute("SELECT grp, ord, at, payload FROM records"
                     " WHERE store = 'outbox_elements'").fetchall()
    facts = db.execute("SELECT key, payload FROM records WHERE store = 'outbox_facts'").fetchall()
    db.executescript("DROP TABLE queue_items; DROP TABLE records;" + OLD_SPOOL_SCHEMA)
    for id_, state, tries, created, due, attempt, done, error, payload in items:
        f = json.loads(payload)
        db.execute("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (id_, f["org"], f["app"], f["rel"], int(f["is_dir"]), state, created, due,
                    attempt, int(f["first_attempt_at"]), done, tries, f.get("instance_id"),
                    f.get("task"), error, f.get("outcome_name"), f.get("outcome_doc")))
    for grp, ord_, at, payload in els:
        f = json.loads(payload)
        db.execute("INSERT INTO elements VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (int(grp), ord_, f["path"], f["filename"], f["content_type"], f["data_type"],
                    int(f["size"]), f["sha256"], f["state"], at, f.get("data_id")))
    for key, payload in facts:
        db.execute("INSERT INTO facts VALUES (?, ?)", (key, json.loads(payload)["value"]))
    db.commit()
    db.close()
    return len(items), len(els)


def test_an_earlier_versions_spool_is_delivered(p, mount):
    m1 = mount(localtest=p, **FAST)
    owner, number = new_org()
    d = owner_dir(m1, SOKNAD, owner)
    p.fault("/ttd/soknad/instances$", method="POST", status=503, count=-1)
    (d / "gammel.pdf").write_bytes(PDF)
    wait_for(lambda: "503" in (xattr(d / "gammel.pdf", "user.altinn.last_error") or ""),
             what="a 503 for gammel.pdf")
    m1.stop()
    p.clear_faults()
    n_items, n_els = to_old_spool(m1.state_dir / "outbox.db")
    assert n_items == 1 and n_els == 1
    m2 = mount(localtest=p, state_dir=str(m1.state_dir), **FAST)
    receipt = wait_receipt(m2, SOKNAD, owner, "gammel.pdf", timeout=30)
    assert receipt["attempts"] >= 2  # the failed try of the earlier version counts
    [inst] = instances_of(p, SOKNAD, number)
    assert receipt["instance_id"] == inst["id"]
    [el] = attachments(inst)
    assert stored_bytes(p, el["id"]) == PDF
    import sqlite3
    db = sqlite3.connect(m1.state_dir / "outbox.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert not tables & {"items", "elements", "facts"}


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs for state_dir, unmounted afterwards."""
    path = tmp_path / "small-state"
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_state_dir_refuses_the_write_with_enospc(p, mount, small_disk):
    m = mount(localtest=p, state_dir=str(small_disk), **FAST)
    try:
        owner, number = new_org()
        d = owner_dir(m, SOKNAD, owner)
        mark = p.mark()
        names = ["stor.pdf", "stor2.pdf", "stor3.pdf"]  # the first fills the disk
        for i, name in enumerate(names):
            fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with pytest.raises(OSError) as exc:
                for _ in range(8):
                    os.write(fd, PDF + os.urandom(1 << 20))
            assert exc.value.errno == errno.ENOSPC
            keep = os.dup(fd) if i == 1 else None  # then the release comes late
            os.close(fd)
            # what did arrive is not sent: a write failed, so the file is held,
            # decided by the time close() returns (no wait here on purpose)
            assert xattr(d / name, "user.altinn.state") == "held", name
            assert "No space" in xattr(d / name, "user.altinn.last_error")
            if keep is not None:
                os.close(keep)
                assert xattr(d / name, "user.altinn.state") == "held", name
        time.sleep(1)
        assert calls(p, mark, "POST", "/instances") == []
        assert instances_of(p, SOKNAD, number) == []
        for name in names:
            os.unlink(d / name)  # space again: the outbox goes on
        (d / "liten.pdf").write_bytes(PDF)
        wait_receipt(m, SOKNAD, owner, "liten.pdf")
        assert len(instances_of(p, SOKNAD, number)) == 1
    finally:
        m.stop()
