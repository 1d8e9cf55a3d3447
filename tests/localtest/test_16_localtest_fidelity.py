"""The local platform behaves as the real one does where altinn-fidelity.md found it lenient:
Storage's double URL-decode of file names, the replace path's plain `filename=`, the 500 for
a quote inside a name, app-lib's MIME map, allowedContributors and actionRequiredToWrite,
EnforceDataTypeTaskId off by default, deleted instances and elements shown to the owner,
the 2000 MiB request limit, and the short validation retry policy of subscriptions."""

import base64
import socket
import time

import pytest

from test_07_localtest_appapi import (PDF, assert_problem, ids, new_instance, next_,
                                      org_auth, upload, user_auth)

SOKNAD = "/ttd/soknad"
ZIP = b"PK\x05\x06" + bytes(18)


@pytest.fixture(scope="module")
def p(own_platform):
    return own_platform


def stored_name(p, inst, el_id):
    doc = p.instance(*ids(inst))
    return next(d for d in doc["data"] if d["id"] == el_id).get("filename")


@pytest.mark.parametrize("sent,kept", [
    ("a+b.pdf", "a b.pdf"),                 # + is a space
    ("50%25 ferdig.pdf", "50% ferdig.pdf"),  # %25 -> % (app-lib decoded %2525 once)
    ("a%252Bb.pdf", "a+b.pdf"),             # pre-encoded twice: the name survives
    ("%C3%B8.pdf", "ø.pdf"),
])
def test_storage_decodes_names_twice(p, sent, kept):
    inst = new_instance(p)
    star = sent.replace("%", "%25").replace("+", "%2B").replace(" ", "%20")
    r = upload(p, inst, "vedlegg", PDF, disposition=f"attachment; filename*=UTF-8''{star}")
    assert r.status == 201, r
    assert r.json()["filename"] == kept
    assert stored_name(p, inst, r.json()["id"]) == kept


def test_replace_reads_plain_filename(p):
    inst = new_instance(p)
    el = upload(p, inst, "vedlegg", PDF, filename="first.pdf").json()
    r = upload(p, inst, "vedlegg", PDF + b"2", method="PUT", data_guid=el["id"],
               disposition="attachment; filename=\"s__knad.pdf\"; "
                           "filename*=UTF-8''s%C3%B8knad.pdf")
    assert r.status == 201, r
    assert r.json()["filename"] == "s__knad.pdf"      # filename* is ignored on PUT
    word = base64.b64encode("søknad.pdf".encode()).decode()
    r = upload(p, inst, "vedlegg", PDF + b"3", method="PUT", data_guid=el["id"],
               disposition=f'attachment; filename="=?utf-8?B?{word}?="')
    assert r.status == 201, r
    assert r.json()["filename"] == "søknad.pdf"       # RFC 2047, as TryDecodeMime reads it
    assert stored_name(p, inst, el["id"]) == "søknad.pdf"


def test_quote_inside_name_is_500(p):
    inst = new_instance(p)
    r = upload(p, inst, "vedlegg", PDF, disposition="attachment; filename*=UTF-8''a%22b.pdf")
    assert r.status == 500, r
    assert [d for d in p.instance(*ids(inst))["data"] if d["dataType"] == "vedlegg"] == []
    el = upload(p, inst, "vedlegg", PDF, filename="ok.pdf").json()
    r = upload(p, inst, "vedlegg", PDF, method="PUT", data_guid=el["id"],
               disposition='attachment; filename="a\\"b.pdf"')
    assert r.status == 500, r
    # pre-encoded, the quote reaches Storage and is kept
    r = upload(p, inst, "vedlegg", PDF, disposition="attachment; filename*=UTF-8''a%252522b.pdf")
    assert r.status == 201 and r.json()["filename"] == 'a"b.pdf', r


@pytest.mark.parametrize("name", ["x.log", "x.md", "x.msg"])
def test_mime_map_has_no_log_md_msg(p, name):
    inst = new_instance(p)
    r = upload(p, inst, "vedlegg", b"hei\n", filename=name, content_type="text/plain")
    assert r.status == 400 and b"does not match mime type application/octet-stream" in r.body, r
    r = upload(p, inst, "vedlegg", b"hei\n", filename=name,
               content_type="application/octet-stream")
    assert r.status == 201, r


def test_allowed_contributors_and_action(p):
    inst = new_instance(p, app=SOKNAD, owner={"partyId": "500102"})
    r = upload(p, inst, "signatur", b"{}", filename="s.json", content_type="application/json")
    assert_problem(r, 403, detail="not a valid contributor")
    r = upload(p, inst, "betaling", b"{}", filename="b.json", content_type="application/json")
    assert_problem(r, 403, detail="pay")
    r = upload(p, inst, "saksbehandling", ZIP, filename="k.zip", content_type="application/zip")
    assert r.status == 201, r                          # org:ttd is listed
    other = org_auth(p, "ttd", orgNumber="991825827")
    r = upload(p, inst, "saksbehandling", ZIP, filename="k.zip", content_type="application/zip",
               auth=other)
    assert r.status == 201, r
    user = user_auth(p, 500102)
    r = upload(p, inst, "saksbehandling", ZIP, filename="u.zip", content_type="application/zip",
               auth=user)
    assert_problem(r, 403, detail="not a valid contributor")


def test_task_id_enforced_only_with_flag(p, platform_factory):
    inst = new_instance(p, app=SOKNAD, owner={"partyId": "500102"})
    assert next_(p, inst).status == 200                 # Task_1 -> Task_2
    assert upload(p, inst, "attachment", PDF).status == 201
    strict = platform_factory(extra_args=["--enforce-data-type-task-id"])
    inst = new_instance(strict, app=SOKNAD, owner={"partyId": "500102"})
    assert next_(strict, inst).status == 200
    assert_problem(upload(strict, inst, "attachment", PDF), 409, "Conflict with Current Task")


def test_owner_sees_deleted_instances_and_elements(p):
    docs, _ = p.instances("ttd/tilskudd", party="50013")
    flags = sorted((d["status"]["isSoftDeleted"], d["status"]["isHardDeleted"]) for d in docs)
    assert flags == [(False, False), (True, False), (True, True)]
    active = next(d for d in docs if not d["status"]["isSoftDeleted"])
    gone = [d for d in active["data"] if d.get("deleteStatus", {}).get("isHardDeleted")]
    assert [d["filename"] for d in gone] == ["slettet.pdf"]
    docs, _ = p.instances("ttd/tilskudd", party="50013", **{"status.isHardDeleted": "false"})
    assert len(docs) == 2
    user = user_auth(p, 50013)
    r = p.get("/storage/api/v1/instances", query={"instanceOwner.partyId": "50013"}, auth=user)
    assert r.status == 200, r
    seen = r.json()["instances"]
    assert len(seen) == 2 and all(not d["status"]["isHardDeleted"] for d in seen)
    assert [e["filename"] for d in seen for e in d["data"] if "deleteStatus" in e] == []


def test_request_size_limit(p):
    inst = new_instance(p)
    party, guid = ids(inst)
    limit = 2000 * 1024 * 1024
    s = socket.create_connection((p.host, p.port), timeout=10)
    try:
        s.sendall((f"POST /ttd/tilskudd/instances/{party}/{guid}/data?dataType=vedlegg "
                   f"HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {p.token()}\r\n"
                   f"Content-Type: application/octet-stream\r\n"
                   f"Content-Disposition: attachment; filename=\"big.bin\"\r\n"
                   f"Content-Length: {limit + 1}\r\nConnection: close\r\n\r\n").encode())
        s.sendall(b"x" * 1024)
        answer = s.recv(4096)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]


def test_validation_given_up_after_its_policy(platform_factory):
    lt = platform_factory(extra_args=["--allow-http-webhooks", "--webhook-retry-scale", "0.01",
                                      "--min-event-age", "0"])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/hook"
    body = {"endPoint": endpoint, "sourceFilter": f"{lt.url}/ttd/tilskudd"}
    r = lt.request("POST", "/events/api/v1/subscriptions", body=body)
    assert r.status == 201, r
    sub = r.json()["id"]

    def attempts():
        return lt.get_json("/_localtest/webhooks", query={"subscription": sub}, auth=False)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(a["outcome"] == "dead-letter"
                                                  for a in attempts()):
        time.sleep(0.2)
    log = attempts()
    assert [a["attempt"] for a in log] == list(range(1, 10))
    assert log[-1]["outcome"] == "dead-letter"
    time.sleep(0.5)
    assert len(attempts()) == 9                         # given up: nothing more
    listed = lt.get_json("/events/api/v1/subscriptions")["subscriptions"]
    assert [s["validated"] for s in listed if s["id"] == sub] == [False]
    r = lt.request("POST", "/events/api/v1/subscriptions", body=body)   # posted again
    assert r.status == 201 and r.json()["id"] == sub, r
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(attempts()) == 9:
        time.sleep(0.1)
    assert len(attempts()) > 9
