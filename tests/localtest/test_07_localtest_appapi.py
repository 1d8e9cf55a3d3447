"""The local platform's App API writes (altinn-api.md section 3): instantiation,
data element upload/replace/delete with app-lib's rules, the process, the owner
operations, and the fault knobs on those paths. Real HTTP against a platform of
this module's own (the tests create and change instances)."""

import http.client
import json
import os
import sys
import threading
import time
import uuid

import pytest

from localplatform import STORAGE
from procs import REPO

TILSKUDD = "/ttd/tilskudd"
SOKNAD = "/ttd/soknad"
TINY = "/ttd/tiny"
PROBLEM = "application/problem+json"
PDF = b"%PDF-1.4\n% a tiny pdf for the tests\n%%EOF\n"
XML = b'<?xml version="1.0" encoding="utf-8"?>\n<Tilskudd><Belop>100</Belop></Tilskudd>\n'


def mod11(digits, weights):
    check = 11 - sum(int(d) * w for d, w in zip(digits, weights)) % 11
    return 0 if check == 11 else check


def valid_org_number(base):
    """The first 9-digit organisation number at or after `base` (8 digits) whose
    MOD11 check digit exists."""
    while True:
        check = mod11(str(base), (3, 2, 7, 6, 5, 4, 3, 2))
        if check < 10:
            return f"{base}{check}"
        base += 1


def tiny_app():
    """A test app where every rule is in reach."""
    return {
        "id": "ttd/tiny", "org": "ttd", "title": {"nb": "Tiny"},
        "dataTypes": [
            {"id": "ref-data-as-pdf", "allowedContentTypes": ["application/pdf"],
             "maxCount": 0, "minCount": 0},
            {"id": "fil", "allowedContentTypes": [], "maxSize": 1, "maxCount": 2,
             "minCount": 1, "taskId": "Task_1"},
            {"id": "notask", "allowedContentTypes": ["text/plain"], "maxCount": 0,
             "minCount": 0},
            {"id": "form2", "allowedContentTypes": ["application/xml"],
             "appLogic": {"classRef": "Altinn.App.Models.Form2", "disallowUserDelete": True},
             "maxCount": 3, "minCount": 0, "taskId": "Task_1"},
        ],
        "partyTypesAllowed": {"bankruptcyEstate": False, "organisation": True,
                              "person": True, "subUnit": False},
        "_process": [{"id": "Task_1", "altinnTaskType": "data"},
                     {"id": "Task_2", "altinnTaskType": "data"}],
    }


@pytest.fixture(scope="module")
def p(own_platform):
    r = own_platform.request("POST", "/_localtest/apps", body=tiny_app(), auth=False)
    assert r.status == 201, r
    assert "_process" not in r.json()
    return own_platform


@pytest.fixture(autouse=True)
def no_faults(own_platform):
    own_platform.clear_faults()
    yield
    own_platform.clear_faults()


# -- helpers --------------------------------------------------------------------

def user_auth(p, user_id, **q):
    r = p.get(f"/Home/GetTestUserToken/{user_id}", query=q or None, auth=False)
    assert r.status == 200, r
    return "Bearer " + r.body.decode().strip()


def org_auth(p, org="ttd", **q):
    r = p.get(f"/Home/GetTestOrgToken/{org}", query=q or None, auth=False)
    assert r.status == 200, r
    return "Bearer " + r.body.decode().strip()


def create(p, app=TILSKUDD, template=None, query=None, auth=True):
    body = template if template is not None else None
    return p.request("POST", f"{app}/instances", query=query, body=body, auth=auth)


def new_instance(p, app=TILSKUDD, owner=None, auth=True):
    r = create(p, app, {"instanceOwner": owner or {"partyId": "50003"}}, auth=auth)
    assert r.status == 201, r
    return r.json()


def ids(doc):
    party, guid = doc["id"].split("/")
    return party, guid


def upload(p, inst, data_type, data, filename="a.pdf", content_type="application/pdf",
           disposition=None, method="POST", data_guid=None, auth=True, app=None):
    party, guid = ids(inst)
    app = app or "/" + inst["appId"]
    path = f"{app}/instances/{party}/{guid}/data"
    headers = {}
    if disposition is not None:
        headers["Content-Disposition"] = disposition
    elif filename is not None:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if data_guid:
        return p.request(method, f"{path}/{data_guid}", body=data, headers=headers,
                         content_type=content_type, auth=auth)
    return p.request(method, path, query={"dataType": data_type}, body=data, headers=headers,
                     content_type=content_type, auth=auth)


def inst_path(inst, suffix=""):
    party, guid = ids(inst)
    return f"/{inst['appId']}/instances/{party}/{guid}{suffix}"


def storage_doc(p, inst):
    return p.instance(*ids(inst))


def admin_instances(p, **q):
    r = p.get("/_localtest/instances", query=q, auth=False)
    assert r.status == 200, r
    return r.json()


def is_text(r):
    return r.header("Content-Type").startswith("text/plain")


def assert_problem(r, status, title=None, detail=None, trace=True):
    assert r.status == status, r
    assert r.header("Content-Type").startswith(PROBLEM), r.headers
    doc = r.json()
    assert doc["status"] == status
    assert {"type", "status"} <= set(doc)
    assert not trace or "traceId" in doc, doc
    if title is not None:
        assert doc.get("title") == title, doc
    if detail is not None:
        assert detail in doc.get("detail", ""), doc
    return doc


def multipart(parts, boundary="----altinnfs-test-boundary"):
    """parts: [(name, content_type, filename, bytes)]."""
    out = b""
    for name, ctype, filename, data in parts:
        disp = f'form-data; name="{name}"'
        if filename:
            disp += f'; filename="{filename}"'
        out += (f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
                f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def post_multipart(p, app, parts, query=None):
    body, ctype = multipart(parts)
    return p.request("POST", f"{app}/instances", query=query, body=body, content_type=ctype)


def next_(p, inst, body=None, auth=True):
    return p.request("PUT", inst_path(inst, "/process/next"), body=body, auth=auth)


# -- instantiation ----------------------------------------------------------------

def test_create_by_organisation_number(p):
    r = create(p, template={"instanceOwner": {"organisationNumber": "910000001"}})
    assert r.status == 201, r
    doc = r.json()
    party, guid = ids(doc)
    assert party == "50001" and uuid.UUID(guid)
    assert r.header("Location") == doc["selfLinks"]["apps"]
    assert doc["selfLinks"]["apps"].endswith(f"/ttd/tilskudd/instances/50001/{guid}")
    assert doc["selfLinks"]["platform"].endswith(f"{STORAGE}/instances/50001/{guid}")
    owner = doc["instanceOwner"]
    assert owner["partyId"] == "50001" and owner["organisationNumber"] == "910000001"
    assert owner["party"]["partyId"] == 50001 and owner["party"]["orgNumber"] == "910000001"
    assert owner["party"]["partyTypeName"] == 2
    task = doc["process"]["currentTask"]
    assert (task["elementId"], task["altinnTaskType"]) == ("Task_1", "data")
    assert doc["status"]["isArchived"] is False and doc["status"]["readStatus"] == "Unread"
    assert doc["appId"] == "ttd/tilskudd" and doc["org"] == "ttd"
    # the form data type of Task_1 is auto-created (empty model, no filename)
    [form] = doc["data"]
    assert form["dataType"] == "skjema" and form["contentType"] == "application/xml"
    assert "filename" not in form and form["size"] > 0 and not form["locked"]
    assert storage_doc(p, doc)["id"] == doc["id"]


def test_create_by_person_number_and_by_query(p):
    doc = new_instance(p, owner={"personNumber": "01017012345"})
    assert doc["instanceOwner"]["partyId"] == "50002"
    assert doc["instanceOwner"]["personNumber"] == "01017012345"
    assert doc["instanceOwner"]["party"]["partyTypeName"] == 1
    r = create(p, query={"instanceOwnerPartyId": "50004"})
    assert r.status == 201, r
    assert r.json()["instanceOwner"]["partyId"] == "50004"


def test_create_template_dates(p):
    r = create(p, template={"instanceOwner": {"partyId": "50005"},
                            "dueBefore": "2031-01-02T03:04:05Z",
                            "visibleAfter": "2030-12-24T00:00:00Z"})
    assert r.status == 201, r
    doc = storage_doc(p, r.json())
    assert doc["dueBefore"].startswith("2031-01-02T03:04:05")
    assert doc["visibleAfter"].startswith("2030-12-24T00:00:00")


@pytest.mark.parametrize("query,template,message", [
    ({"instanceOwnerPartyId": "50003"}, {"instanceOwner": {"partyId": "50003"}},
     "Choose one or the other"),
    (None, None, "Cannot create an instance without an instanceOwner.partyId"),
    (None, {"dueBefore": "2030-01-01T00:00:00Z"}, "InstanceOwner is missing"),
])
def test_create_owner_400s_are_bare_strings(p, query, template, message):
    before = len(admin_instances(p, appId="ttd/tilskudd"))
    r = create(p, template=template, query=query)
    assert r.status == 400 and is_text(r), r
    assert message in r.body.decode()
    assert len(admin_instances(p, appId="ttd/tilskudd")) == before


def test_create_unknown_party_is_404(p):
    valid = valid_org_number(91234567)
    invalid = valid[:8] + str((int(valid[8]) + 1) % 10)
    for owner in ({"organisationNumber": invalid}, {"partyId": "999"},
                  {"personNumber": "01017012346"}, {"organisationNumber": "12345"}):
        r = create(p, template={"instanceOwner": owner})
        assert r.status == 404 and is_text(r), (owner, r)
        assert r.body.decode().startswith("Cannot lookup party"), r


def test_create_auto_registers_valid_numbers(p):
    number = valid_org_number(92345678)
    first = new_instance(p, owner={"organisationNumber": number})
    party = int(first["instanceOwner"]["partyId"])
    assert party >= 60000001
    assert first["instanceOwner"]["party"]["orgNumber"] == number
    again = new_instance(p, owner={"organisationNumber": number})
    assert again["instanceOwner"]["partyId"] == str(party)
    listed = p.get("/_localtest/parties", auth=False).json()
    assert any(x["partyId"] == party and x["orgNumber"] == number for x in listed)


def test_admin_parties_and_party_types(p):
    r = p.request("POST", "/_localtest/parties", auth=False,
                  body={"partyId": 70001, "organisationNumber": "870000001", "unitType": "BEDR",
                        "name": "Underenhet"})
    assert r.status == 201, r
    assert r.json()["unitType"] == "BEDR"
    r = p.request("POST", "/_localtest/parties", auth=False,
                  body={"partyId": 70001, "organisationNumber": "870000002"})
    assert r.status == 409, r
    r = p.request("POST", "/_localtest/parties", auth=False, body={"partyId": 70002})
    assert r.status == 400, r
    # a sub-unit may not instantiate tilskudd (partyTypesAllowed.subUnit is false)
    r = create(p, template={"instanceOwner": {"organisationNumber": "870000001"}})
    assert r.status == 403 and is_text(r), r
    assert "not allowed to instantiate" in r.body.decode()
    # a registered organisation with a made-up number may
    r = p.request("POST", "/_localtest/parties", auth=False,
                  body={"organisationNumber": "870000003"})
    assert r.status == 201, r
    doc = new_instance(p, owner={"organisationNumber": "870000003"})
    assert doc["instanceOwner"]["partyId"] == str(r.json()["partyId"])


def test_create_auth(p):
    template = {"instanceOwner": {"partyId": "50006"}}
    assert create(p, template=template, auth=False).status == 401
    assert create(p, template=template, auth=org_auth(p, "digdir")).status == 403
    r = create(p, template=template,
               auth=org_auth(p, scopes="altinn:serviceowner/instances.read"))
    assert_problem(r, 403, "Forbidden", "Insufficient scope")
    # a user acts for their own party only
    assert create(p, template=template, auth=user_auth(p, 50007)).status == 403
    r = create(p, template=template, auth=user_auth(p, 50006))
    assert r.status == 201, r
    doc = r.json()
    assert doc["status"]["readStatus"] == "Read" and doc["createdBy"] == "50006"


def test_create_multipart_with_data(p):
    r = post_multipart(p, TILSKUDD, [
        ("instance", "application/json", None,
         json.dumps({"instanceOwner": {"partyId": "50008"}}).encode()),
        ("skjema", "application/xml", None, XML),
        ("vedlegg", "application/pdf", "Søknad.pdf", PDF),
        ("vedlegg", "text/plain", "notat.txt", b"hei\r\n--not a boundary\r\n"),
        ("notification", "application/json", None, b"{}"),        # ignored
    ])
    assert r.status == 201, r
    doc = r.json()
    by_type = {}
    for el in doc["data"]:
        by_type.setdefault(el["dataType"], []).append(el)
    assert len(by_type["skjema"]) == 1          # the part, no auto-created extra
    assert sorted(e.get("filename") for e in by_type["vedlegg"]) == ["Søknad.pdf", "notat.txt"]
    party, guid = ids(doc)
    assert p.data(party, guid, by_type["skjema"][0]["id"]) == XML
    pdf = next(e for e in by_type["vedlegg"] if e["filename"] == "Søknad.pdf")
    assert pdf["contentType"] == "application/pdf" and pdf["size"] == len(PDF)
    assert p.data(party, guid, pdf["id"]) == PDF
    txt = next(e for e in by_type["vedlegg"] if e["filename"] == "notat.txt")
    assert p.data(party, guid, txt["id"]) == b"hei\r\n--not a boundary\r\n"


@pytest.mark.parametrize("part,status,message", [
    (("bogus", "application/pdf", "a.pdf", PDF), 400, "does not correspond to an element type"),
    (("vedlegg", "application/zip", "a.zip", b"PK"), 400, "which is invalid for element type"),
    (("vedlegg", "application/pdf", "a.pdf", b""), 400, "has no data"),
    (("ref-data-as-pdf", "application/pdf", "r.pdf", PDF), 403, "cannot be modified"),
])
def test_create_multipart_bad_part_keeps_no_instance(p, part, status, message):
    before = len(admin_instances(p, appId="ttd/tilskudd", partyId="50009"))
    r = post_multipart(p, TILSKUDD, [
        ("instance", "application/json", None,
         json.dumps({"instanceOwner": {"partyId": "50009"}}).encode()), part])
    assert r.status == status, r
    if status == 400:
        assert is_text(r) and message in r.body.decode(), r
    else:
        assert_problem(r, status, detail=message)
    assert len(admin_instances(p, appId="ttd/tilskudd", partyId="50009")) == before


def test_create_multipart_too_many_parts(p):
    part = ("skjema", "application/xml", None, XML)
    r = post_multipart(p, TILSKUDD, [("instance", "application/json", None,
                                      b'{"instanceOwner": {"partyId": "50009"}}'), part, part])
    assert r.status == 400 and "more elements of type 'skjema'" in r.body.decode(), r


# -- upload -----------------------------------------------------------------------

def test_upload_attachment(p):
    inst = new_instance(p)
    before = storage_doc(p, inst)
    time.sleep(0.01)
    data = os.urandom(3000)
    r = upload(p, inst, "vedlegg", data, filename="rapport.pdf")
    assert r.status == 201, r
    el = r.json()
    assert r.header("Location") == el["selfLinks"]["apps"]
    assert el["dataType"] == "vedlegg" and el["filename"] == "rapport.pdf"
    assert el["contentType"] == "application/pdf" and el["size"] == len(data)
    assert el["instanceGuid"] == ids(inst)[1] and not el["locked"]
    party, guid = ids(inst)
    assert p.data(party, guid, el["id"]) == data                       # Storage
    r = p.get(inst_path(inst, f"/data/{el['id']}"))                    # App API
    assert r.status == 200 and r.body == data
    assert r.header("Content-Type") == "application/pdf"
    r = p.get(f"/_localtest/data/{el['id']}", auth=False)              # admin
    assert r.status == 200 and r.body == data
    after = storage_doc(p, inst)
    assert after["lastChanged"] > before["lastChanged"]
    assert [d["id"] for d in after["data"] if d["dataType"] == "vedlegg"] == [el["id"]]
    full = next(i for i in admin_instances(p, partyId=party) if i["id"] == inst["id"])
    assert any(d["id"] == el["id"] for d in full["data"])


@pytest.mark.parametrize("disposition,name", [
    ("attachment; filename=\"fallback.txt\"; filename*=UTF-8''S%C3%B8knad%20%C3%A6.pdf",
     "Søknad æ.pdf"),
    ('attachment; filename="a/b.pdf"', "a_b.pdf"),
    ("attachment; filename=plain.pdf", "plain.pdf"),
    # Storage URL-decodes the name twice (test_16_localtest_fidelity.py)
    ("attachment; filename*=UTF-8''a%2Bb%25252B.pdf", "a b+.pdf"),
])
def test_upload_filename_from_content_disposition(p, disposition, name):
    inst = new_instance(p)
    r = upload(p, inst, "vedlegg", PDF, disposition=disposition)
    assert r.status == 201, r
    assert r.json()["filename"] == name


@pytest.mark.parametrize("headers,message", [
    ({"filename": None}, "must include a Content-Disposition header"),
    ({"disposition": "attachment"}, "must contain a valid filename"),
    ({"disposition": 'attachment; filename=""'}, "must contain a valid filename"),
    ({"filename": "README"}, "Invalid format for filename: README"),
    ({"content_type": None}, "Content-Type header must be included"),
    ({"filename": "a.pdf", "content_type": "text/plain"}, "does not match mime type"),
    ({"filename": "a.pdf", "content_type": "application/pdf; charset=utf-8"},
     "does not match mime type"),
    # octet-stream passes the extension check, but must still be in the list
    ({"filename": "a.txt", "content_type": "application/octet-stream"},
     "Invalid content type: text/plain"),
    ({"filename": "a.zip", "content_type": "application/zip"}, "Invalid content type"),
])
def test_upload_rules_400_bare_string(p, headers, message):
    inst = new_instance(p, app=SOKNAD, owner={"partyId": "500100"})
    kw = {"filename": "a.pdf", "content_type": "application/pdf"}
    kw.update(headers)
    r = upload(p, inst, "attachment", PDF, **kw)
    assert r.status == 400 and is_text(r), r
    assert r.body.decode().startswith("Invalid data provided. Error:"), r
    assert message in r.body.decode(), r
    assert [d["dataType"] for d in storage_doc(p, inst)["data"]] == ["model"]


@pytest.mark.parametrize("filename,content_type", [
    ("SKANN.PDF", "application/pdf"),        # extension case
    ("a.pdf", "Application/PDF"),            # type case
    ("a.jpeg", "image/jpeg"),
])
def test_upload_mime_accepted(p, filename, content_type):
    inst = new_instance(p, app=SOKNAD, owner={"partyId": "500101"})
    r = upload(p, inst, "attachment", PDF, filename=filename, content_type=content_type)
    assert r.status == 201, r
    assert r.json()["contentType"] == content_type


@pytest.mark.parametrize("filename,content_type", [
    ("data.xml", "text/xml"), ("data.xml", "application/xml"), ("arkiv.zip", "application/zip"),
    ("x.weird", "application/octet-stream"), ("a.pdf", "application/octet-stream"),
    ("arkiv.zip", "application/x-zip-compressed"),
])
def test_upload_list_with_octet_stream_allows_anything(p, filename, content_type):
    inst = new_instance(p)
    r = upload(p, inst, "vedlegg", b"<a/>", filename=filename, content_type=content_type)
    assert r.status == 201, r


def test_upload_empty_body(p):
    inst = new_instance(p)
    r = upload(p, inst, "vedlegg", b"")
    assert r.status == 400 and is_text(r), r
    assert r.body.decode() == "Invalid data provided. Error: The file is zero bytes."


def test_upload_max_size(p):
    inst = new_instance(p, app=TINY)
    limit = 1024 * 1024
    r = upload(p, inst, "fil", b"x" * (limit + 1), filename="big.bin")
    assert r.status == 400 and is_text(r), r
    assert f"exceeds limit of {limit}" in r.body.decode()
    assert upload(p, inst, "fil", b"x" * limit, filename="ok.bin").status == 201
    # without a Content-Length the body is cut off at the limit: 413
    party, guid = ids(inst)
    conn = http.client.HTTPConnection(p.host, p.port, timeout=30)
    try:
        conn.request("POST", f"{TINY}/instances/{party}/{guid}/data?dataType=fil",
                     body=iter([b"y" * 65536] * 17), encode_chunked=True,
                     headers={"Authorization": "Bearer " + p.token(),
                              "Content-Disposition": 'attachment; filename="c.bin"',
                              "Content-Type": "application/octet-stream",
                              "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 413, body
    assert json.loads(body)["title"] == "Request too large"


def test_upload_max_count(p):
    inst = new_instance(p, app=TINY)
    for n in range(2):
        assert upload(p, inst, "fil", b"%d" % n, filename=f"{n}.bin").status == 201
    r = upload(p, inst, "fil", b"3", filename="3.bin")
    doc = assert_problem(r, 409, "Max Count Exceeded", "Cannot create more than 2")
    assert doc["instance"] == inst_path(inst, "/data")


def test_upload_access_checks(p):
    inst = new_instance(p)
    r = upload(p, inst, "ref-data-as-pdf", PDF)
    assert_problem(r, 403, "Forbidden", "cannot be modified")
    r = upload(p, inst, "nope", PDF)
    assert r.status == 400 and is_text(r) and "nope" in r.body.decode(), r
    party, guid = ids(inst)
    r = p.request("POST", f"{TILSKUDD}/instances/{party}/{guid}/data", body=PDF,
                  content_type="application/pdf")
    assert r.status == 400, r
    r = upload(p, inst, "vedlegg", PDF, auth=user_auth(p, 50099))
    assert r.status == 403, r
    r = upload(p, {"id": f"{party}/{uuid.uuid4()}", "appId": "ttd/tilskudd"}, "vedlegg", PDF)
    assert_problem(r, 404, "Instance Not Found")


def test_upload_wrong_task_and_ended(p):
    inst = new_instance(p, app=SOKNAD, owner={"partyId": "500102"})
    assert next_(p, inst).status == 200                  # Task_1 -> Task_2
    # EnforceDataTypeTaskId is off by default, as in app-lib (test_16 turns it on)
    r = upload(p, inst, "attachment", PDF)
    assert r.status == 201, r
    ended = new_instance(p)
    assert next_(p, ended).status == 200                 # tilskudd: Task_1 -> end
    r = upload(p, ended, "vedlegg", PDF)
    assert_problem(r, 409, "Instance Not Active")
    tiny = new_instance(p, app=TINY)
    assert upload(p, tiny, "fil", b"x", filename="x.bin").status == 201
    assert p.request("PUT", inst_path(tiny, "/process/completeProcess")).status == 200
    r = upload(p, tiny, "notask", b"hei", filename="a.txt", content_type="text/plain")
    assert_problem(r, 409, "Instance Not Active")


def test_upload_form_data(p):
    inst = new_instance(p, app=TINY)
    r = upload(p, inst, "form2", XML, filename=None, content_type="application/xml")
    assert r.status == 201, r
    el = r.json()
    assert el["contentType"] == "application/xml" and "filename" not in el
    assert p.data(*ids(inst), el["id"]) == XML
    r = upload(p, inst, "form2", b'{"belop": 1}', filename=None, content_type="application/json")
    assert r.status == 201 and r.json()["contentType"] == "application/json", r
    r = upload(p, inst, "form2", b"<broken", filename=None, content_type="application/xml")
    assert r.status == 400 and is_text(r), r
    r = upload(p, inst, "form2", b"text", filename=None, content_type="text/plain")
    assert_problem(r, 415, "Unsupported content type")
    r = upload(p, inst, "form2", XML, filename=None, content_type=None)
    assert r.status == 201, r
    r = upload(p, inst, "form2", XML, filename=None, content_type="application/xml")
    assert_problem(r, 409, "Max Count Exceeded")


# -- put, delete, get -------------------------------------------------------------------

def test_put_replaces_bytes(p):
    inst = new_instance(p)
    el = upload(p, inst, "vedlegg", b"first", filename="a.txt", content_type="text/plain").json()
    time.sleep(0.01)
    new = os.urandom(5000)
    r = upload(p, inst, "vedlegg", new, filename="b.pdf", data_guid=el["id"], method="PUT")
    assert r.status == 201, r
    doc = r.json()
    assert doc["id"] == el["id"] and doc["filename"] == "b.pdf" and doc["size"] == len(new)
    assert doc["contentType"] == "application/pdf" and doc["lastChanged"] > el["lastChanged"]
    assert p.data(*ids(inst), el["id"]) == new
    r = upload(p, inst, "vedlegg", new, filename=None, data_guid=el["id"], method="PUT")
    assert r.status == 400 and is_text(r) and "Content-Disposition" in r.body.decode(), r
    r = upload(p, inst, "vedlegg", b"", data_guid=el["id"], method="PUT")
    assert r.status == 400 and "zero bytes" in r.body.decode(), r
    r = upload(p, inst, "vedlegg", new, data_guid=str(uuid.uuid4()), method="PUT")
    assert_problem(r, 404, "Data Element Not Found")
    form = next(d for d in inst["data"] if d["dataType"] == "skjema")
    r = upload(p, inst, "skjema", XML, filename=None, content_type="application/xml",
               data_guid=form["id"], method="PUT")
    assert r.status == 201, r
    assert p.data(*ids(inst), form["id"]) == XML
    r = upload(p, inst, "skjema", b"<x", filename=None, content_type="application/xml",
               data_guid=form["id"], method="PUT")
    assert_problem(r, 400, "Failed to deserialize XML")


def test_put_and_delete_locked(p):
    guid = str(uuid.uuid4())
    r = p.request("POST", "/_localtest/instances", auth=False, body={
        "appId": "ttd/tiny", "partyId": "50010", "guid": guid, "data": [
            {"dataType": "notask", "filename": "l.txt", "contentType": "text/plain",
             "content_b64": "aGVp", "locked": True}]})
    assert r.status == 201, r
    inst = r.json()
    el = inst["data"][0]
    assert el["locked"] is True
    r = upload(p, inst, "notask", b"ny", filename="l.txt", content_type="text/plain",
               data_guid=el["id"], method="PUT")
    assert_problem(r, 409, detail="is locked")
    r = p.request("DELETE", inst_path(inst, f"/data/{el['id']}"))
    assert_problem(r, 409, detail="is locked")
    assert p.data("50010", guid, el["id"]) == b"hei"


def test_delete_data(p):
    inst = new_instance(p)
    el = upload(p, inst, "vedlegg", PDF).json()
    r = p.request("DELETE", inst_path(inst, f"/data/{el['id']}"))
    assert r.status == 200, r
    doc = r.json()
    assert doc["validationIssues"] == [] and doc["newDataModels"] == []
    assert el["id"] not in [d["id"] for d in doc["instance"]["data"]]
    assert p.get(p.data_path(*ids(inst), el["id"])).status == 404
    form = next(d for d in inst["data"] if d["dataType"] == "skjema")
    r = p.request("DELETE", inst_path(inst, f"/data/{form['id']}"))
    assert_problem(r, 400, "Cannot Delete main data element")
    r = p.request("DELETE", inst_path(inst, f"/data/{uuid.uuid4()}"))
    assert_problem(r, 404, "Data Element Not Found")


def test_delete_disallowed_for_users(p):
    inst = new_instance(p, app=TINY, owner={"partyId": "50011"})
    el = upload(p, inst, "form2", XML, filename=None, content_type="application/xml").json()
    r = p.request("DELETE", inst_path(inst, f"/data/{el['id']}"), auth=user_auth(p, 50011))
    assert_problem(r, 400, "User Delete Disallowed")
    assert p.request("DELETE", inst_path(inst, f"/data/{el['id']}")).status == 200


# -- process --------------------------------------------------------------------------

def test_next_to_end(p):
    inst = new_instance(p)
    el = upload(p, inst, "vedlegg", PDF).json()
    r = next_(p, inst)
    assert r.status == 200, r
    state = r.json()
    assert "currentTask" not in state and state["endEvent"] == "EndEvent_1" and state["ended"]
    assert state["processTasks"] == [{"altinnTaskType": "data", "elementId": "Task_1",
                                      "elementType": "Task"}]
    doc = storage_doc(p, inst)
    assert doc["process"]["ended"] and "currentTask" not in doc["process"]
    assert doc["status"]["isArchived"] is True and doc["status"]["archived"]
    assert all(d["locked"] for d in doc["data"]) and el["id"] in [d["id"] for d in doc["data"]]
    got = p.get(inst_path(inst, "/process"))
    assert got.status == 200 and got.json()["ended"] == state["ended"]
    r = next_(p, inst)
    doc = assert_problem(r, 409, detail="Process is ended.")
    assert "title" not in doc


def test_next_validation(p):
    inst = new_instance(p, app=TINY)
    r = next_(p, inst)
    doc = assert_problem(r, 409, "Validation failed for task",
                         "1 validation errors found for task Task_1")
    [issue] = doc["validationIssues"]
    assert issue["code"] == "TooFewDataElementsOfType" and issue["field"] == "fil"
    assert upload(p, inst, "fil", b"x", filename="x.bin").status == 201
    r = next_(p, inst)
    assert r.status == 200, r
    assert r.json()["currentTask"]["elementId"] == "Task_2"


def test_next_through_confirmation(p):
    inst = new_instance(p, app=SOKNAD, owner={"partyId": "500103"})
    el = upload(p, inst, "attachment", PDF).json()
    r = next_(p, inst, body={"action": "write"})
    assert r.status == 200, r
    task = r.json()["currentTask"]
    assert (task["elementId"], task["altinnTaskType"], task["flow"]) == \
        ("Task_2", "confirmation", 3)
    assert task["actions"]["confirm"] is True and task["elementType"] == "Task"
    doc = storage_doc(p, inst)
    assert doc["process"]["currentTask"]["elementId"] == "Task_2"
    assert all(d["locked"] for d in doc["data"]) and not doc["status"]["isArchived"]
    r = next_(p, inst, body={"action": "write"})
    assert_problem(r, 403, "Unauthorized", "Action: write")
    r = next_(p, inst, body={"action": "confirm"})
    assert r.status == 200 and r.json()["endEvent"] == "EndEvent_1", r
    assert el["id"] in [d["id"] for d in storage_doc(p, inst)["data"]]


def test_complete_process(p):
    inst = new_instance(p, app=SOKNAD, owner={"partyId": "500104"})
    r = p.request("PUT", inst_path(inst, "/process/completeProcess"))
    assert r.status == 200 and r.json()["ended"], r
    assert storage_doc(p, inst)["status"]["isArchived"] is True
    r = p.request("PUT", inst_path(inst, "/process/completeProcess"))
    assert r.status == 409 and is_text(r), r
    assert r.body.decode() == "Process is ended. It cannot be restarted."
    tiny = new_instance(p, app=TINY)
    r = p.request("PUT", inst_path(tiny, "/process/completeProcess"))
    assert_problem(r, 409, "Validation failed for task")


def test_get_process(p):
    inst = new_instance(p, app=SOKNAD, owner={"partyId": "500105"})
    r = p.get(inst_path(inst, "/process"))
    assert r.status == 200, r
    state = r.json()
    assert state["currentTask"]["elementId"] == "Task_1"
    assert state["currentTask"]["actions"] == {"read": True, "write": True}
    assert [t["elementId"] for t in state["processTasks"]] == ["Task_1", "Task_2"]


# -- owner operations -----------------------------------------------------------------

def test_complete_confirmation(p):
    inst = new_instance(p)
    assert next_(p, inst).status == 200
    r = p.request("POST", inst_path(inst, "/complete"))
    assert r.status == 200, r
    doc = r.json()
    [conf] = doc["completeConfirmations"]
    assert conf["stakeholderId"] == "ttd" and conf["confirmedOn"]
    assert doc["selfLinks"]["apps"].endswith(inst_path(inst))
    again = p.request("POST", inst_path(inst, "/complete")).json()
    assert again["completeConfirmations"] == doc["completeConfirmations"]
    assert again["lastChanged"] == doc["lastChanged"]
    party = ids(inst)[0]
    r = p.request("POST", inst_path(inst, "/complete"), auth=user_auth(p, party))
    assert r.status == 403, r
    got, _ = p.instances("ttd/tilskudd", party=party, excludeConfirmedBy="ttd")
    assert inst["id"] not in [i["id"] for i in got]


def test_substatus(p):
    inst = new_instance(p)
    body = {"label": "under-behandling", "description": "Saken er mottatt"}
    r = p.request("PUT", inst_path(inst, "/substatus"), body=body)
    assert r.status == 200, r
    assert r.json()["status"]["substatus"] == body
    assert storage_doc(p, inst)["status"]["substatus"] == body
    party = ids(inst)[0]
    r = p.request("PUT", inst_path(inst, "/substatus"), body=body, auth=user_auth(p, party))
    assert r.status == 403, r
    r = p.request("PUT", inst_path(inst, "/substatus"), body={"description": "x"})
    assert r.status == 400 and is_text(r) and "include a label" in r.body.decode(), r


def test_delete_instance(p):
    inst = new_instance(p)
    r = p.request("DELETE", inst_path(inst))
    assert r.status == 200, r
    status = r.json()["status"]
    assert status["isSoftDeleted"] is True and status["softDeleted"]
    assert status["isHardDeleted"] is False
    r = upload(p, inst, "vedlegg", PDF)
    assert_problem(r, 409, "Instance Not Active")
    r = p.request("DELETE", inst_path(inst), query={"hard": "true"})
    assert r.status == 200 and r.json()["status"]["isHardDeleted"] is True, r
    assert r.json()["status"]["hardDeleted"]
    assert p.request("DELETE", inst_path(inst), query={"hard": "maybe"}).status == 400


def test_get_instance(p):
    inst = new_instance(p)
    r = p.get(inst_path(inst))
    assert r.status == 200, r
    assert r.json()["instanceOwner"]["party"]["partyId"] == int(ids(inst)[0])
    missing = {"id": f"{ids(inst)[0]}/{uuid.uuid4()}", "appId": inst["appId"]}
    assert_problem(p.get(inst_path(missing)), 404)
    assert p.get(f"/ttd/nope/instances/{ids(inst)[0]}/{uuid.uuid4()}").status == 404


# -- request log and faults ---------------------------------------------------------------

def test_writes_are_logged(p):
    inst = new_instance(p)
    mark = p.mark()
    r = upload(p, inst, "vedlegg", PDF)
    assert r.status == 201
    next_(p, inst)
    entries = p.since(mark)
    assert [(e["method"], e["status"]) for e in entries] == [("POST", 201), ("PUT", 200)]
    post = entries[0]
    assert post["path"] == inst_path(inst, "/data") and post["query"] == "dataType=vedlegg"
    assert post["bytes"] == len(r.body) and post["auth"]


def test_fault_503_on_uploads_only(p):
    p.fault("/ttd/tilskudd/instances/*/*/data", method="POST", count=1, status=503,
            retry_after=2)
    inst = new_instance(p)                               # instantiation is untouched
    r = upload(p, inst, "vedlegg", PDF)
    assert_problem(r, 503, trace=False)
    assert r.header("Retry-After") == "2"
    assert [d["dataType"] for d in storage_doc(p, inst)["data"]] == ["skjema"]
    assert upload(p, inst, "vedlegg", PDF).status == 201


def test_fault_drop_after_create(p):
    """The crash window: the platform made the instance, the client never heard."""
    p.fault("/ttd/tilskudd/instances$", method="POST", count=1, drop=True, after=True)
    before = {i["id"] for i in admin_instances(p, appId="ttd/tilskudd", partyId="50012")}
    mark = p.mark()
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        create(p, template={"instanceOwner": {"partyId": "50012"}})
    after = {i["id"] for i in admin_instances(p, appId="ttd/tilskudd", partyId="50012")}
    assert len(after - before) == 1
    [entry] = p.since(mark)
    assert entry["method"] == "POST" and entry["status"] == 0
    assert create(p, template={"instanceOwner": {"partyId": "50012"}}).status == 201


def test_fault_status_after_upload(p):
    inst = new_instance(p)
    p.fault(inst_path(inst, "/data"), method="POST", count=1, status=502, after=True)
    r = upload(p, inst, "vedlegg", PDF, filename="lagret.pdf")
    assert_problem(r, 502, trace=False)
    [el] = [d for d in storage_doc(p, inst)["data"] if d["dataType"] == "vedlegg"]
    assert el["filename"] == "lagret.pdf" and p.data(*ids(inst), el["id"]) == PDF
    r = p.get("/_localtest/faults", auth=False)
    assert r.json() == []


def test_fault_rule_validation(p):
    r = p.request("POST", "/_localtest/faults", auth=False,
                  body={"path": "/", "status": 503, "after": "yes"})
    assert r.status == 400, r
    r = p.request("POST", "/_localtest/faults", auth=False,
                  body={"path": "/x/*/y$", "drop": True, "after": True, "count": 2})
    assert r.status == 201 and r.json()["after"] is True, r


# -- the store hook the Events module listens on ---------------------------------------------

def test_store_hook_app_events(tmp_path):
    """In-process: the App API tells store listeners what a real app registers with Events."""
    sys.path.insert(0, str(REPO / "scripts"))
    from localtest import seed, server
    platform = server.LocalPlatform(server.Options(quiet=True))
    seed.SEEDS["demo"](platform.store)
    seen = []
    platform.store.subscribe(lambda kind, inst, detail: seen.append((detail, inst.id))
                             if kind == "app.event" else None)
    httpd = server.Server(("127.0.0.1", 0), platform)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        host, port = httpd.server_address[:2]

        def call(method, path, body=None):
            conn = http.client.HTTPConnection(host, port, timeout=30)
            token = platform.tokens.issue({"urn:altinn:org": "ttd",
                                           "urn:altinn:orgNumber": "991825827",
                                           "scope": "altinn:serviceowner/instances.read "
                                                    "altinn:serviceowner/instances.write"}, "t")
            headers = {"Authorization": "Bearer " + token}
            if body is not None:
                headers["Content-Type"] = "application/json"
                body = json.dumps(body).encode()
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            conn.close()
            assert r.status in (200, 201), (r.status, data)
            return json.loads(data)

        doc = call("POST", "/ttd/soknad/instances", {"instanceOwner": {"partyId": "500200"}})
        path = "/ttd/soknad/instances/" + doc["id"]
        call("PUT", path + "/process/next")
        call("PUT", path + "/substatus", {"label": "mottatt"})
        call("PUT", path + "/process/next")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert seen == [(t, doc["id"]) for t in (
        "app.instance.created", "app.instance.process.movedTo.Task_2",
        "app.instance.substatus.changed", "app.instance.process.completed")]
