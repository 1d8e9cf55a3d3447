"""Events: platform events become files that inotify watchers see, by
poll and by webhook; exactly one file per event, across redeliveries,
restarts, crashes and outages; rm acknowledges; retention; instance
events refresh listings (docs/events.md)."""

import errno
import http.client
import json
import os
import re
import socket
import sqlite3
import time

import pytest

from events_util import (IN_CLOSE_WRITE, IN_DELETE, IN_MODIFY, IN_MOVED_TO, Watcher,
                         event_id_of, platform_events, publish, subscriptions_validated)
from procs import free_port

EV_ARGS = ["--min-event-age", "0", "--allow-http-webhooks", "--webhook-retry-scale", "0.01"]
SOKNAD, TILSKUDD = "ttd/soknad", "ttd/tilskudd"
NAME = re.compile(r"^(\d{12})_([A-Za-z0-9._-]+)_([A-Za-z0-9._-]+)\.json$")
POLL_PATH = "/events/api/v1/app/ttd/soknad"


# The kernel releases a closed file or folder asynchronously; a handle
# whose release has not reached the daemon when it stops is never freed,
# and LeakSanitizer reports it. Give releases this long before a stop.
SETTLE = 0.3


@pytest.fixture
def evplat(platform_factory):
    return platform_factory(extra_args=EV_ARGS)


@pytest.fixture
def evmount(mount):
    """mount(), and a moment for the last releases before the daemons stop."""
    yield mount
    time.sleep(SETTLE)


def stop(m):
    time.sleep(SETTLE)
    m.stop()


def name_part(type_):
    """The type as a file name shows it: bytes other than ASCII letters,
    digits and ._- become '-'."""
    return re.sub(rb"[^A-Za-z0-9._-]", b"-", type_.encode()).decode()


def events_dir(m, app=SOKNAD):
    return m.path / "apps" / app / "events"


def files(m, app=SOKNAD):
    return sorted(n for n in os.listdir(events_dir(m, app)) if not n.startswith("."))


def ids_of(names):
    return [event_id_of(n) for n in names]


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def wait_files(m, n, timeout=30, app=SOKNAD):
    return wait_for(lambda: len(files(m, app)) >= n and files(m, app), timeout,
                    f"{n} event files")


def status(m):
    with open(m.path / "status.json") as f:
        return json.load(f)


def push_options(port, **kw):
    opts = {"webhook_listen": f"127.0.0.1:{port}",
            "webhook_url": f"http://127.0.0.1:{port}/altinn/events?code=s3cret-{port}-0123456789"}
    opts.update(kw)
    return opts


def post_webhook(port, path, body, method="POST"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request(method, path, body=data if method == "POST" else None,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def set_cursor(state_dir, app, after):
    """What an unknown `after` does: the platform replays from the oldest."""
    db = sqlite3.connect(str(state_dir / "events.db"))
    try:
        n = db.execute("UPDATE records SET payload = json_set(payload, '$.after', ?,"
                       " '$.from_time', NULL) WHERE store = 'events_cursors' AND grp = ?",
                       (after, app)).rowcount
        assert n == 1, "no cursor to set"
        db.commit()
    finally:
        db.close()


# --------------------------------------------------------------------------

def test_each_event_is_one_complete_file_in_platform_order(evplat, evmount):
    before = publish(evplat, SOKNAD, "app.instance.created", "500100", count=3)
    m = evmount(localtest=evplat, poll_interval=1, events_start="all")
    wait_files(m, 3)
    contents = {}

    def look(mask, name):  # the moment the watcher hears of it
        if mask & IN_MOVED_TO and not name.startswith("."):
            with open(events_dir(m) / name, "rb") as f:
                contents[name] = f.read()

    with Watcher(events_dir(m), on_event=look) as w:
        after = []
        for t in ("app.instance.process.movedTo.Task_2", "app.instance.process.completed",
                  "custom type/ø*?", "app.instance.created"):
            after += publish(evplat, SOKNAD, t, "500101", count=5)
        names = w.wait_files(20, 30)
        time.sleep(1.5)  # another poll or two: nothing more may come
        assert w.names(IN_MOVED_TO) == names
        assert not w.names(IN_CLOSE_WRITE | IN_MODIFY), "a file was seen half written"
    assert len(names) == 20 and len(set(names)) == 20
    assert ids_of(names) == after  # the watcher saw them in the platform's order
    for name in names:
        doc = json.loads(contents[name])
        assert doc["id"] == event_id_of(name)
        assert NAME.match(name).group(2) == name_part(doc["type"]), name
    assert "_custom-type-----_" in " ".join(names)  # ascii, no slash
    listed = files(m)
    assert ids_of(listed) == before + after
    assert ids_of(listed) == [e["id"] for e in platform_events(evplat, SOKNAD)]
    assert os.getxattr(events_dir(m) / listed[-1], "user.altinn.id").decode() == after[-1]
    st = status(m)["events"][SOKNAD]
    assert st["cursor"] == after[-1]
    assert st["pending_files"] == 23
    assert st["last_poll_at"]
    assert status(m)["events"][TILSKUDD]["pending_files"] == 0


def test_events_start_now_skips_what_came_before(evplat, evmount):
    publish(evplat, SOKNAD, "app.old", "500100", count=4)
    time.sleep(1.1)  # events_start=now counts whole seconds
    m = evmount(localtest=evplat, poll_interval=1, events_start="now")
    new = publish(evplat, SOKNAD, "app.new", "500100", count=2)
    assert ids_of(wait_files(m, 2)) == new
    time.sleep(2)
    assert ids_of(files(m)) == new


def test_only_removal_is_allowed(evplat, evmount):
    m = evmount(localtest=evplat, poll_interval=1, events_start="all")
    publish(evplat, SOKNAD, "app.x", "500100", count=2)
    first, second = wait_files(m, 2)
    d = events_dir(m)
    for fn in (lambda: open(d / "new.json", "w"),
               lambda: open(d / first, "a"),
               lambda: os.truncate(d / first, 0),
               lambda: os.rename(d / first, d / "renamed.json"),
               lambda: os.mkdir(d / "sub"),
               lambda: os.utime(d / first, (0, 0))):
        with pytest.raises(OSError) as e:
            fn()
        assert e.value.errno == errno.EACCES, fn
    os.unlink(d / first)
    assert files(m) == [second]
    assert status(m)["events"][SOKNAD]["pending_files"] == 1


def test_rm_acknowledges_for_good_and_a_replay_makes_nothing_new(evplat, evmount):
    m = evmount(localtest=evplat, poll_interval=1, events_start="all")
    ids = publish(evplat, SOKNAD, "app.ack", "500100", count=6)
    names = wait_files(m, 6)
    for n in names[:2]:
        os.unlink(events_dir(m) / n)
    kept = files(m)
    state = m.state_dir
    stop(m)
    # the platform forgot our cursor: it replays everything it has
    set_cursor(state, SOKNAD, "8a8a01ae-9533-4aa9-b914-8ab0fae6ea0d")
    m2 = evmount(localtest=evplat, poll_interval=1, events_start="all", state_dir=str(state))
    mark = evplat.mark()
    wait_for(lambda: len([e for e in evplat.since(mark) if e["path"] == POLL_PATH]) >= 3, 15,
             "three polls")
    assert files(m2) == kept
    new = publish(evplat, SOKNAD, "app.ack", "500100")
    wait_files(m2, 5)
    assert ids_of(files(m2)) == ids[2:] + new
    assert status(m2)["events"][SOKNAD]["cursor"] == new[0]


def test_kill_9_and_restart_lose_nothing_and_repeat_nothing(evplat, evmount):
    m = evmount(localtest=evplat, poll_interval=1, events_start="all")
    ids = publish(evplat, SOKNAD, "app.crash", "500100", count=400)
    wait_for(lambda: len(os.listdir(events_dir(m))) >= 30, 30, "the first files")
    # in the middle of writing them (a thread stuck on its own mount is
    # freed as umount -f would: docs/events.md, "After a crash")
    m.kill9()
    ids += publish(evplat, SOKNAD, "app.while-down", "500100", count=20)
    m2 = evmount(localtest=evplat, poll_interval=1, events_start="all", state_dir=str(m.state_dir))
    names = wait_files(m2, 420, timeout=60)
    time.sleep(1.5)
    names = os.listdir(events_dir(m2))
    assert not [n for n in names if n.startswith(".")], "a write cut short was left behind"
    assert sorted(ids_of(names)) == sorted(ids)  # each event once: no gap, no duplicate
    assert ids_of(sorted(names)) == ids  # and in the platform's order
    for n in sorted(names)[::37]:
        with open(events_dir(m2) / n) as f:
            assert json.load(f)["id"] == event_id_of(n)


# The journal of a version before core/records.c: tables of its own.
OLD_EVENTS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cursors ("
    " app TEXT PRIMARY KEY,"
    " after TEXT,"
    " from_time TEXT,"
    " watermark INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS seen ("
    " app TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " type TEXT,"
    " time INTEGER NOT NULL,"
    " acked INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (app, id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS seen_by_seq ON seen (app, seq);")


def test_an_earlier_versions_memory_is_kept(evplat, evmount, tmp_path):
    ids = publish(evplat, SOKNAD, "app.old", "500100", count=4)
    # the earlier version made files of the first two, and the user
    # removed them: acknowledged, the cursor past them
    state = tmp_path / "oldstate"
    state.mkdir()
    db = sqlite3.connect(str(state / "events.db"))
    db.executescript(OLD_EVENTS_SCHEMA)
    db.execute("INSERT INTO cursors (app, after, watermark) VALUES (?, ?, 0)", (SOKNAD, ids[1]))
    for i in (0, 1):
        db.execute("INSERT INTO seen VALUES (?, ?, ?, ?, 'app.old', 0, 1)",
                   (SOKNAD, ids[i], i + 1, f"{i + 1:012d}_app.old_{ids[i]}.json"))
    db.commit()
    db.close()
    m = evmount(localtest=evplat, poll_interval=1, events_start="all", state_dir=str(state))
    names = wait_files(m, 2)
    time.sleep(1.5)  # a poll or two more: nothing of the first two comes back
    names = files(m)
    assert ids_of(names) == ids[2:]
    assert [int(NAME.match(n).group(1)) for n in names] == [3, 4]  # numbering goes on
    assert status(m)["events"][SOKNAD]["cursor"] == ids[3]
    db = sqlite3.connect(str(state / "events.db"))
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert not tables & {"cursors", "seen"}


def test_idle_connections_do_not_lock_the_platform_out(evplat, evmount):
    """The secret is checked once a request's headers are in: connections
    that never finish them must not take every place the webhook has."""
    port = free_port()
    opts = push_options(port, poll_interval=3600, events_start="now")
    m = evmount(localtest=evplat, **opts)
    code = opts["webhook_url"].split("?")[1]
    event = {"id": "0b4c5e2e-2222-4e4e-9a9a-000000000001", "specversion": "1.0",
             "type": "app.through-the-crowd", "source": f"{evplat.url}/ttd/soknad/instances/"
             "500100/0b4c5e2e-2222-4e4e-9a9a-0000000000aa",
             "resource": "urn:altinn:resource:app_ttd_soknad",
             "resourceinstance": "500100/0b4c5e2e-2222-4e4e-9a9a-0000000000aa",
             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    idlers = []
    try:
        for _ in range(100):
            s_ = socket.create_connection(("127.0.0.1", port), timeout=5)
            s_.sendall(b"POST /altinn/events HTTP/1.1\r\nHost: x\r\n")  # and no more
            idlers.append(s_)
        time.sleep(0.5)
        assert post_webhook(port, f"/altinn/events?{code}", event) == 200
        wait_for(lambda: any(event["id"] in n for n in os.listdir(events_dir(m))), 10,
                 "the pushed event's file")
    finally:
        for s_ in idlers:
            s_.close()


def test_webhook_validates_delivers_and_wants_its_secret(evplat, evmount):
    port = free_port()
    opts = push_options(port, poll_interval=3600, events_start="now")
    m = evmount(localtest=evplat, **opts)
    wait_for(lambda: subscriptions_validated(evplat, 2), 15, "two validated subscriptions")
    subs = evplat.get_json("/_localtest/subscriptions", auth=False)
    assert sorted(s["sourceFilter"] for s in subs) == [f"{evplat.url}/ttd/soknad",
                                                      f"{evplat.url}/ttd/tilskudd"]
    mark = evplat.mark()
    with Watcher(events_dir(m)) as w:
        t0 = time.monotonic()
        ids = publish(evplat, SOKNAD, "app.pushed", "500100", count=5)
        names = w.wait_files(5, 10)
        took = time.monotonic() - t0
    assert ids_of(names) == ids
    assert took < 5, took  # polling is an hour away: this was the webhook
    assert not [e for e in evplat.since(mark) if e["path"] == POLL_PATH]
    log = evplat.get_json("/_localtest/webhooks", auth=False)
    assert {e["eventId"] for e in log if e["outcome"] == "delivered"} >= set(ids)

    path = "/altinn/events"
    event = {"id": "0b4c5e2e-1111-4e4e-9a9a-000000000001", "specversion": "1.0",
             "type": "app.instance.created", "source": f"{evplat.url}/ttd/soknad/instances/"
             "500100/0b4c5e2e-1111-4e4e-9a9a-0000000000aa",
             "resource": "urn:altinn:resource:app_ttd_soknad",
             "resourceinstance": "500100/0b4c5e2e-1111-4e4e-9a9a-0000000000aa"}
    assert post_webhook(port, path, event) == 403
    assert post_webhook(port, path + "?code=wrong", event) == 403
    code = opts["webhook_url"].split("?")[1]
    assert post_webhook(port, f"{path}?{code}", event, method="GET") == 405
    assert post_webhook(port, f"{path}?{code}", b"not json") == 400
    assert post_webhook(port, f"{path}?{code}", {"type": "x"}) == 400
    validation = {"id": "v1", "specversion": "1.0", "type": "platform.events.validatesubscription",
                  "source": f"{evplat.url}/events/api/v1/subscriptions/1"}
    assert post_webhook(port, f"{path}?{code}", validation) == 200
    assert post_webhook(port, f"{path}?{code}", event) == 200
    assert post_webhook(port, f"{path}?{code}", event) == 200  # a redelivery
    assert ids_of(files(m)) == ids + [event["id"]]
    # too large: refused on the headers, before the body is read
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST {path}?{code} HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {2 << 20}\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 413")

    # a restart reuses the subscriptions
    stop(m)
    m2 = evmount(localtest=evplat, state_dir=str(m.state_dir), **opts)
    wait_for(lambda: "existing subscription" in m2.log(), 10, "the subscriptions reused")
    assert len(evplat.get_json("/_localtest/subscriptions", auth=False)) == 2


def test_webhook_retries_and_poll_overlap_make_one_file_each(evplat, evmount):
    port = free_port()
    opts = push_options(port, poll_interval=1, events_start="now")
    m = evmount(localtest=evplat, **opts)
    wait_for(lambda: subscriptions_validated(evplat, 2), 15, "two validated subscriptions")
    ids = publish(evplat, SOKNAD, "app.both", "500100", count=50)
    wait_files(m, 50)
    time.sleep(2.5)  # the pollers find them all known
    assert ids_of(files(m)) == ids
    # the webhook is down: the platform retries, the pollers catch up at
    # start, and the retries that reach the new daemon change nothing
    stop(m)
    down = publish(evplat, SOKNAD, "app.outage", "500100", count=10)
    m2 = evmount(localtest=evplat, state_dir=str(m.state_dir), **opts)
    wait_files(m2, 60)

    def redelivered():
        log = evplat.get_json("/_localtest/webhooks", auth=False)
        return {e["eventId"] for e in log if e["outcome"] == "delivered" and e["attempt"] > 1}
    wait_for(lambda: set(down) <= redelivered(), 30, "the platform's retries")
    time.sleep(1)
    assert ids_of(files(m2)) == ids + down


def test_a_burst_of_1000_all_arrive(evplat, evmount):
    m = evmount(localtest=evplat, poll_interval=1, events_start="now")
    with Watcher(events_dir(m)) as w:
        ids = publish(evplat, SOKNAD, "app.burst", "500100", count=1000)
        names = w.wait_files(1000, 90)
        assert not w.overflow
    assert len(names) == 1000 == len(set(names))
    assert ids_of(names) == ids


def test_platform_down_then_back(evplat, evmount):
    m = evmount(localtest=evplat, poll_interval=1, events_start="now")
    wait_for(lambda: status(m)["events"][SOKNAD]["last_poll_at"], 10, "a first poll")
    evplat.fault(POLL_PATH, count=-1, status=503)
    ids = publish(evplat, SOKNAD, "app.during", "500100", count=5)
    mark = evplat.mark()
    time.sleep(6)
    polls = [e for e in evplat.since(mark) if e["path"] == POLL_PATH]
    assert files(m) == []
    # with backoff: a round at 0, ~1, ~3 s and perhaps ~7 s, three tries each
    assert 0 < len(polls) <= 14, len(polls)  # 18 or more without
    evplat.clear_faults()
    assert ids_of(wait_files(m, 5, timeout=20)) == ids
    # the round writes its files first and says it works again after: wait
    # for the line, not for a moment (a loaded machine read the log between)
    wait_for(lambda: "polling the events of \"ttd/soknad\" works again" in m.log(), 20,
             "the poller to say it works again")
    assert m.log().count("cannot poll the events of \"ttd/soknad\"") == 1


def test_an_instance_event_refreshes_the_listing(evplat, evmount):
    m = evmount(localtest=evplat, poll_interval=1, events_start="now", cache_ttl=300)
    party_dir = m.path / "apps/ttd/tilskudd/instances/50003"
    before = set(os.listdir(party_dir))
    parties = set(os.listdir(m.path / "apps/ttd/tilskudd/instances"))
    with Watcher(events_dir(m, TILSKUDD)) as w:
        r = evplat.request("POST", "/ttd/tilskudd/instances", body={
            "instanceOwner": {"partyId": "50003"}})
        assert r.status == 201, r
        guid = r.json()["id"].split("/")[1]
        r = evplat.request("POST", "/ttd/tilskudd/instances", body={
            "instanceOwner": {"organisationNumber": "910000004"}})
        assert r.status == 201, r
        new_party = r.json()["instanceOwner"]["partyId"]
        w.wait_files(2, 20)
        # the moment the event files are there, the listings show them
        assert set(os.listdir(party_dir)) == before | {guid}
        assert set(os.listdir(m.path / "apps/ttd/tilskudd/instances")) == parties | {new_party}
    with open(events_dir(m, TILSKUDD) / files(m, TILSKUDD)[0]) as f:
        assert json.load(f)["type"] == "app.instance.created"


def test_retention_by_count_and_by_age(evplat, evmount):
    m = evmount(localtest=evplat, poll_interval=1, events_start="all", events_keep=5)
    with Watcher(events_dir(m)) as w:
        ids = publish(evplat, SOKNAD, "app.keep", "500100", count=12)
        w.wait(lambda w_: len(w_.names(IN_DELETE)) >= 7, 20)
        assert len(w.names(IN_DELETE)) == 7  # through the mount: watchers hear of it
    assert ids_of(files(m)) == ids[7:]
    state = m.state_dir
    stop(m)
    # two files grow old on disk; the platform replays everything
    disk = state / "apps/ttd/soknad/events"
    old = sorted(os.listdir(disk))[:2]
    for n in old:
        os.utime(disk / n, (time.time() - 3 * 86400,) * 2)
    set_cursor(state, SOKNAD, "8a8a01ae-9533-4aa9-b914-8ab0fae6ea0d")
    m2 = evmount(localtest=evplat, poll_interval=1, events_start="all", events_keep=5,
               events_keep_days=2, state_dir=str(state))
    mark = evplat.mark()
    wait_for(lambda: len([e for e in evplat.since(mark) if e["path"] == POLL_PATH]) >= 3, 15,
             "three polls")
    assert ids_of(files(m2)) == ids[9:]  # the two old ones went; nothing came back
    assert status(m2)["events"][SOKNAD]["pending_files"] == 3


@pytest.mark.parametrize("options, word", [
    ({"events_start": "yesterday"}, "events_start"),
    ({"webhook_listen": "127.0.0.1:1"}, "webhook_url"),
    ({"webhook_listen": "127.0.0.1:1", "webhook_url": "https://example.com/hook"}, "secret"),
])
def test_bad_events_settings_stop_the_start(platform, mount, options, word):
    with pytest.raises(AssertionError) as e:
        mount(**options)
    assert "before mounting" in str(e.value) and word in str(e.value)
