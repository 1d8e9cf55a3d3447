"""The daemon against a platform that behaves as the real one (altinn-fidelity.md): file
names Storage decodes, a quote in a name, non-ASCII names on replace, app-lib's MIME map,
data types the service owner may not write, the 2000 MiB request limit, and deleted
instances and elements."""

import base64
import errno
import json
import os
import time
import uuid

import pytest

from outbox_util import (FAST, PDF, SOKNAD, TILSKUDD, area, attachments, calls, expect_errno,
                         instances_of, new_org, owner_dir, stored_bytes, wait_dead_letter,
                         wait_for, wait_receipt)
from procs import free_port


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    yield own_platform
    own_platform.clear_faults()


@pytest.fixture
def m(p, mount):
    return mount(localtest=p, **FAST)


def only_instance(p, app, number):
    [inst] = instances_of(p, app, number)
    return inst


# -- names --------------------------------------------------------------------------------

NAMES = ["a+b.pdf", "50% ferdig.pdf", "sitat \"x\".pdf", "%C3%B8 og + og %.pdf"]


def test_outbox_names_storage_decodes_are_kept(p, m):
    owner, number = new_org()
    d = owner_dir(m, TILSKUDD, owner)
    for i, name in enumerate(NAMES):
        (d / name).write_bytes(PDF + bytes([i]))
    receipts = {n: wait_receipt(m, TILSKUDD, owner, n) for n in NAMES}
    for name, i in zip(NAMES, range(len(NAMES))):
        inst = next(x for x in instances_of(p, TILSKUDD, number)
                    if x["id"] == receipts[name]["instance_id"])
        [el] = attachments(inst)
        assert el["filename"] == name
        assert stored_bytes(p, el["id"]) == PDF + bytes([i])


def test_lost_answer_with_a_plus_name_is_found(p, m):
    owner, number = new_org()
    d = owner_dir(m, TILSKUDD, owner)
    mark = p.mark()
    p.fault("/ttd/tilskudd/instances/*/*/data", method="POST", drop=True, after=True, count=1)
    (d / "x+y.pdf").write_bytes(PDF)
    wait_receipt(m, TILSKUDD, owner, "x+y.pdf", timeout=40)
    [el] = attachments(only_instance(p, TILSKUDD, number))
    assert el["filename"] == "x+y.pdf"
    assert len(calls(p, mark, "POST", "/data")) == 1        # found, not sent again


def new_instance(p, app, data_type, filename, content_type, content, form=False):
    party, guid = "61000017", str(uuid.uuid4())
    body = {"appId": app, "partyId": party, "organisationNumber": "910000001", "guid": guid,
            "data": [{"dataType": data_type, "filename": filename, "contentType": content_type,
                      "content_b64": base64.b64encode(content).decode()}]}
    if form:   # soknad's Task_1 needs its model to move on
        body["data"].append({"dataType": "model", "contentType": "application/xml",
                             "content_b64": base64.b64encode(b"<Soknad/>").decode()})
    r = p.request("POST", "/_localtest/instances", body=body, auth=False)
    assert r.status == 201, r
    return party, guid, r.json()["data"][0]["id"]


def element(p, party, guid, data_id):
    r = p.get("/_localtest/instances", query={"partyId": party}, auth=False)
    [inst] = [i for i in r.json() if i["id"] == f"{party}/{guid}"]
    return next(d for d in inst["data"] if d["id"] == data_id)


@pytest.mark.parametrize("name", ["søknad æøå.pdf", "a+b %.pdf"])
def test_replace_keeps_the_name(p, m, name):
    party, guid, data_id = new_instance(p, SOKNAD, "attachment", name, "application/pdf", PDF)
    path = m / f"apps/{SOKNAD}/instances/{party}/{guid}/data/attachment/{name}"
    assert path.read_bytes() == PDF
    path.write_bytes(PDF + b"ny")
    wait_for(lambda: stored_bytes(p, data_id) == PDF + b"ny", what="the replace")
    assert element(p, party, guid, data_id)["filename"] == name


# -- content and data types ---------------------------------------------------------------

def test_log_file_is_octet_stream(p, m):
    owner, number = new_org()
    d = owner_dir(m, TILSKUDD, owner)
    (d / "kjøring.log").write_bytes(b"linje 1\n")
    wait_receipt(m, TILSKUDD, owner, "kjøring.log")
    [el] = attachments(only_instance(p, TILSKUDD, number))
    assert el["contentType"] == "application/octet-stream"


def test_no_instance_for_a_type_the_org_may_not_write(p, m):
    # soknad's only application/json types are app:owned (signatur) and need "pay"
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    mark = p.mark()
    (d / "signatur.json").write_bytes(b"{}")
    letter = wait_dead_letter(m, SOKNAD, owner, "signatur.json")
    assert letter["step"] == "check" and letter["instance_id"] is None
    assert "pay" in letter["reason"] or "allowedContributors" in letter["reason"]
    assert calls(p, mark, "POST", "/instances") == []
    assert instances_of(p, SOKNAD, number) == []


def test_zip_goes_to_the_type_that_lists_the_org(p, m):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    (d / "saksmappe.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    wait_receipt(m, SOKNAD, owner, "saksmappe.zip")
    [el] = attachments(only_instance(p, SOKNAD, number))
    assert el["dataType"] == "saksbehandling"


def test_instance_write_to_app_owned_type_is_eacces(p, m):
    party, guid, _ = new_instance(p, SOKNAD, "attachment", "a.pdf", "application/pdf", PDF)
    d = m / f"apps/{SOKNAD}/instances/{party}/{guid}/data"
    os.makedirs(d / "signatur", exist_ok=True)
    mark = p.mark()
    expect_errno(errno.EACCES, (d / "signatur" / "s.json").write_bytes, b"{}")
    assert calls(p, mark, "POST", "/data") == []


def test_over_the_request_limit_refused_first(p, mount):
    app = {"id": "ttd/stor", "org": "ttd", "title": {"nb": "Stor"},
           "dataTypes": [{"id": "fil", "allowedContentTypes": [], "maxCount": 0,
                          "minCount": 0}],
           "partyTypesAllowed": {}}
    assert p.request("POST", "/_localtest/apps", body=app, auth=False).status == 201
    m = mount(localtest=p, apps=f"{SOKNAD} {TILSKUDD} ttd/stor", **FAST)
    owner, number = new_org()
    d = owner_dir(m, "ttd/stor", owner)
    mark = p.mark()
    with open(d / "stor.bin", "wb") as f:
        f.truncate(2000 * 1024 * 1024 + 1)
    letter = wait_dead_letter(m, "ttd/stor", owner, "stor.bin", timeout=60)
    assert letter["step"] == "check" and "2000 MiB" in letter["reason"]
    assert calls(p, mark, "POST", "/instances") == []


# -- deleted ------------------------------------------------------------------------------

def test_deleted_instances_and_elements_hidden(p, m):
    base = m / f"apps/{TILSKUDD}/instances/50013"
    hard, soft, active = ("de1e0000-0000-4000-8000-00000000000%d" % n for n in (1, 2, 3))
    assert sorted(os.listdir(base)) == sorted([soft, active])
    expect_errno(errno.ENOENT, os.stat, base / hard)
    assert os.listdir(base / active / "data" / "vedlegg") == ["beholdt.pdf"]
    expect_errno(errno.ENOENT, os.stat, base / active / "data" / "vedlegg" / "slettet.pdf")
    # the instance document is the platform's, deleted element included
    assert b"slettet.pdf" in (base / active / "instance.json").read_bytes()


# -- subscriptions ------------------------------------------------------------------------

EV_ARGS = ["--min-event-age", "0", "--allow-http-webhooks", "--webhook-retry-scale", "0.01"]


def test_unvalidated_subscription_is_posted_again(platform_factory, mount):
    lt = platform_factory(extra_args=EV_ARGS)
    port = free_port()
    url = f"http://127.0.0.1:{port}/altinn/events?code=s3cret-{port}-0123456789"
    # made while nobody listened: its validation was given up (about 8 minutes, scaled)
    body = {"endPoint": url, "sourceFilter": f"{lt.url}/ttd/soknad"}
    r = lt.request("POST", "/events/api/v1/subscriptions", body=body)
    assert r.status == 201, r
    sub = r.json()["id"]
    wait_for(lambda: any(a["outcome"] == "dead-letter" for a in lt.get_json(
        "/_localtest/webhooks", query={"subscription": sub}, auth=False)), timeout=30,
        what="the validation given up")
    mark = lt.mark()
    m = mount(localtest=lt, apps=SOKNAD, webhook_listen=f"127.0.0.1:{port}", webhook_url=url)

    def validated():
        subs = lt.get_json("/_localtest/subscriptions", auth=False)
        subs = subs.get("subscriptions", subs) if isinstance(subs, dict) else subs
        return [s["validated"] for s in subs if s["id"] == sub] == [True]

    wait_for(validated, timeout=20, what="the subscription validated")
    assert calls(lt, mark, "POST", "/subscriptions")     # posted again: validated again

    def pushing():
        with open(m.path / "status.json") as f:
            push = json.load(f)["events"][SOKNAD].get("push")
        return push == {"subscription": sub, "validated": True}

    wait_for(pushing, timeout=10, what="status.json to show push validated")


def test_endpoint_compared_as_the_platform_stores_it(platform_factory, mount):
    lt = platform_factory(extra_args=EV_ARGS)
    port = free_port()
    url = f"http://LocalHost:{port}/altinn/events?code=s3cret-{port}-0123456789"
    m = mount(localtest=lt, apps=SOKNAD, webhook_listen=f"127.0.0.1:{port}", webhook_url=url)

    def validated():
        subs = lt.get_json("/_localtest/subscriptions", auth=False)
        subs = subs.get("subscriptions", subs) if isinstance(subs, dict) else subs
        return len(subs) == 1 and subs[0]["validated"]

    # a subscription the platform has not validated yet is posted again
    # (finding 7): only a validated one may be found and kept
    wait_for(validated, timeout=30, what="the subscription validated")
    m.stop()
    mark = lt.mark()
    m = mount(localtest=lt, apps=SOKNAD, webhook_listen=f"127.0.0.1:{port}", webhook_url=url)
    wait_for(lambda: "are pushed by existing subscription" in m.log()
             or calls(lt, mark, "POST", "/subscriptions"), timeout=30, what="the decision")
    assert calls(lt, mark, "POST", "/subscriptions") == []   # found, not posted again
    assert "are pushed by existing subscription" in m.log()


# -- a write's answer may take longer than a read's ----------------------------------------

def test_process_next_may_answer_after_the_read_timeout(p, mount):
    party, guid, _ = new_instance(p, SOKNAD, "attachment", "a.pdf", "application/pdf", PDF,
                                  form=True)
    m = mount(localtest=p, timeout=2)
    ctl = m / f"apps/{SOKNAD}/instances/{party}/{guid}/ctl"
    p.fault(f"/ttd/soknad/instances/{party}/{guid}/process/next", method="PUT", delay_ms=4000)
    mark = p.mark()
    fd = os.open(ctl, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"next\n")              # as PDF generation would, the answer is late
    finally:
        os.close(fd)
    assert p.instance(party, guid)["process"]["currentTask"]["elementId"] == "Task_2"
    assert len(calls(p, mark, "PUT", "/process/next")) == 1


def test_exchange_test_option(platform_factory, mount, tmp_path):
    from test_10_auth import listing_works, mp_options, new_key, register
    lt = platform_factory()
    key = tmp_path / "key.pem"
    register(lt, new_key(key))
    mark = lt.mark()
    m = mount(localtest=lt, **mp_options(lt, key, maskinporten_exchange_test="yes"))
    assert listing_works(m)
    exchanges = [e for e in lt.since(mark)
                 if e["path"] == "/authentication/api/v1/exchange/maskinporten"]
    assert exchanges and all(e["query"] == "test=true" for e in exchanges)


# -- every journal gives up, and says when ------------------------------------------------

def test_instance_write_given_up(p, mount):
    party, guid, _ = new_instance(p, SOKNAD, "attachment", "a.pdf", "application/pdf", PDF)
    m = mount(localtest=p, instance_writes_give_up=2, **FAST)
    st = json.loads((m / "status.json").read_text())
    assert st["instance_writes"] == {"give_up_s": 2} and st["inbox"] == {"give_up_s": 259200}
    assert st["outbox"]["give_up_s"] == 259200
    p.fault("/ttd/soknad/instances/*/*/data", method="POST", status=503, count=-1)
    d = m / f"apps/{SOKNAD}/instances/{party}/{guid}/data/attachment"
    (d / "ny.pdf").write_bytes(PDF)
    letter = m / f"apps/{SOKNAD}/failed/instance-{party}-{guid}/attachment/ny.pdf.error.json"
    wait_for(letter.exists, timeout=30, what="the write given up")
    assert "given up after 2 s" in letter.read_text()


def test_inbox_confirmation_given_up(p, mount):
    m = mount(localtest=p, cache_ttl=1, inbox_give_up=1)
    inbox = m / "apps/ttd/soknad/inbox"
    name = sorted(os.listdir(inbox))[0]
    p.fault("/ttd/*/instances/*/*/complete", status=503, count=-1)
    os.unlink(inbox / name)
    wait_for(lambda: "given up after 1 s (inbox_give_up)" in m.log(), timeout=30,
             what="the confirmation given up")
    wait_for(lambda: name in os.listdir(inbox), timeout=10, what="the entry back in inbox/")
