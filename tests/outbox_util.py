"""Helpers for the outbox suites (test_12_outbox*.py, test_13_outbox_crash.py):
owners the platform knows, waiting for receipts and dead letters, and what the
platform received (its admin API)."""

import errno
import itertools
import json
import os
import time

SOKNAD = "ttd/soknad"
TILSKUDD = "ttd/tilskudd"
PDF = b"%PDF-1.4\n% altinnfs outbox test\n%%EOF\n"

# Mount options every outbox test wants: answers lost in a test are
# settled within 3 s, and retries come within a second.
FAST = {"timeout": 3, "outbox_retry_max": 1}


def _mod11(digits, weights):
    check = 11 - sum(int(d) * w for d, w in zip(digits, weights)) % 11
    return 0 if check == 11 else check


_bases = itertools.count(93000000 + (os.getpid() % 1000) * 1000)


def new_org():
    """(owner folder, organisation number) of an organisation the platform
    has never seen (a valid MOD11 number gets a party on first use)."""
    while True:
        base = next(_bases)
        check = _mod11(str(base), (3, 2, 7, 6, 5, 4, 3, 2))
        if check < 10:
            number = f"{base}{check}"
            return f"org-{number}", number


def area(m, app, name):
    return m.path / "apps" / app / name


def owner_dir(m, app=SOKNAD, owner=None):
    """outbox/<owner>/, made with mkdir; a new organisation when no owner."""
    if owner is None:
        owner, _ = new_org()
    d = area(m, app, "outbox") / owner
    os.makedirs(d, exist_ok=True)
    return d


def wait_for(fn, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _load(path):
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def wait_receipt(m, app, owner, name, timeout=20.0):
    path = area(m, app, "sent") / owner / (name + ".json")
    return wait_for(lambda: _load(path), timeout, f"receipt {path}")


def wait_dead_letter(m, app, owner, name, timeout=20.0):
    path = area(m, app, "failed") / owner / (name + ".error.json")
    return wait_for(lambda: _load(path), timeout, f"dead letter {path}")


def instances_of(p, app, number):
    """Every instance of app the platform has for an owner number."""
    r = p.get("/_localtest/instances", query={"appId": app}, auth=False)
    assert r.status == 200, r
    return [i for i in r.json()
            if number in (i["instanceOwner"].get("organisationNumber"),
                          i["instanceOwner"].get("personNumber"),
                          i["instanceOwner"].get("partyId"))]


def instance_by_id(p, app, instance_id):
    r = p.get("/_localtest/instances", query={"appId": app}, auth=False)
    [doc] = [i for i in r.json() if i["id"] == instance_id]
    return doc


def stored_bytes(p, data_guid):
    r = p.get(f"/_localtest/data/{data_guid}", auth=False)
    assert r.status == 200, r
    return r.body


def attachments(doc, data_type=None):
    """The data elements an outbox upload made (they have filenames)."""
    return [d for d in doc["data"]
            if d.get("filename") and (data_type is None or d["dataType"] == data_type)]


def calls(p, mark, method, suffix):
    """Requests since mark whose path ends with suffix ("/instances", "/data",
    "/process/next")."""
    return [e for e in p.since(mark) if e["method"] == method and e["path"].endswith(suffix)]


def expect_errno(code, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == code, f"{fn.__name__}{args}: {errno.errorcode.get(e.errno)}, " \
                                f"want {errno.errorcode[code]}"
        return
    raise AssertionError(f"{fn.__name__}{args} succeeded, want {errno.errorcode[code]}")


def xattr(path, name):
    try:
        return os.getxattr(path, name).decode()
    except OSError:
        return None
