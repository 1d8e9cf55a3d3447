"""The local platform's Altinn Broker v1 (../shared/altinn-broker-correspondence.md
section 2): initialize, streamed and multipart upload, overview/details, search,
download with ranges, confirm, TUS resume, the status machines, auth refusals,
Broker's problem codes, events by polling and webhook, and the hostile switches
(lost answers, cut uploads, malware, slow scans, expiry).

Runs against a platform of its own (own_platform), with minEventAge 0 and
http webhooks on loopback; each test makes its own resource, so tests do not
see each other's transfers."""

import hashlib
import http.client
import http.server
import json
import re
import threading
import time
import urllib.parse
import uuid

import pytest

FT = "/broker/api/v1/filetransfer"
TUS = FT + "/upload/tus"
EVENTS = "/events/api/v1/events"
ADMIN = "/_localtest/broker"
OWNER = "991825827"          # ttd, the demo's service owner
A = "313000001"              # senders/recipients with valid check digits
B = "314000005"
C = "315000009"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
OVERVIEW_KEYS = {"fileTransferId", "resourceId", "fileName", "sendersFileTransferReference",
                 "checksum", "useVirusScan", "fileTransferSize", "fileTransferStatus",
                 "fileTransferStatusText", "fileTransferStatusChanged", "created",
                 "expirationTime", "sender", "recipients", "propertyList", "published"}
ALL_SCOPES = "altinn:broker.write altinn:broker.read altinn:events.subscribe"


@pytest.fixture(scope="module")
def lt(own_platform):
    r = own_platform.request("PUT", "/_localtest/events/settings", auth=False,
                             body={"minEventAge": 0, "allowHttpWebhooks": True,
                                   "webhookRetryScale": 0.01})
    assert r.status == 200, r
    r = own_platform.request("PUT", ADMIN + "/settings", auth=False, body={"scanDelay": 0.05,
                                                                   "rateLimits": False})
    assert r.status == 200, r
    return own_platform


@pytest.fixture
def settings(lt):
    def change(**kw):
        r = lt.request("PUT", ADMIN + "/settings", body=kw, auth=False)
        assert r.status == 200, r
        return r.json()
    yield change
    change(scanDelay=0.05, malware=0, cutUploadAfter=None, cutCount=0, cutStatus=None,
           storageNotReady=False, rateLimits=False, tusExpiration=86400, stuckAfter=86400,
           stuckActivityWindow=3600)
    lt.clear_faults()


_tokens = {}


def tok(p, org, scopes=ALL_SCOPES):
    key = (p.port, org, scopes)
    if key not in _tokens:
        r = p.get("/Home/GetTestOrgToken/org" + org,
                  query={"orgNumber": org, "scopes": scopes}, auth=False)
        assert r.status == 200, r
        _tokens[key] = "Bearer " + r.body.decode().strip()
    return _tokens[key]


def resource(p, **kw):
    """A fresh resource: A and B send, A, B and OWNER receive (access list on)."""
    doc = {"resourceId": "res-" + uuid.uuid4().hex[:10], "serviceOwner": OWNER,
           "senders": [A, B], "recipients": [A, B, OWNER]}
    doc.update(kw)
    r = p.request("POST", ADMIN + "/resources", body=doc, auth=False)
    assert r.status == 201, r
    return doc["resourceId"]


def init_body(rid, name="data.bin", sender=A, recipients=(B,), data=None, **kw):
    body = {"fileName": name, "resourceId": rid, "sender": "0192:" + sender,
            "recipients": ["0192:" + r for r in recipients],
            "sendersFileTransferReference": "ref-" + name, "propertyList": {"k": "v"}}
    if data is not None:
        body["checksum"] = hashlib.md5(data).hexdigest()
    body.update(kw)
    return body


def initialize(p, rid, org=A, expect=200, **kw):
    r = p.request("POST", FT, body=init_body(rid, sender=kw.pop("sender", org), **kw),
                  auth=tok(p, org))
    assert r.status == expect, r
    return r.json()["fileTransferId"] if expect == 200 else r


def upload(p, tid, data, org=A, content_type="application/octet-stream", headers=None):
    return p.request("POST", f"{FT}/{tid}/upload", body=data, auth=tok(p, org),
                     content_type=content_type, headers=headers)


def overview(p, tid, org=A, details=False):
    r = p.get(f"{FT}/{tid}" + ("/details" if details else ""), auth=tok(p, org))
    assert r.status == 200, r
    return r.json()


def wait_status(p, tid, want, org=A, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        doc = overview(p, tid, org)
        if doc["fileTransferStatus"] == want:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"{tid} is {doc['fileTransferStatus']}, not {want}")
        time.sleep(0.02)


def send(p, rid, data=b"hello broker", org=A, recipients=(B,), name="data.bin"):
    tid = initialize(p, rid, org, recipients=recipients, data=data, name=name)
    r = upload(p, tid, data, org)
    assert r.status == 200, r
    assert r.json() == {"fileTransferId": tid}
    wait_status(p, tid, "Published", org)
    return tid


def code(r):
    assert r.header("Content-Type").startswith("application/problem+json"), r
    doc = r.json()
    assert doc["traceId"] and doc["detail"]
    return doc["code"]


def events(p, rid, org, after="0", **query):
    q = {"resource": "urn:altinn:resource:" + rid, "after": after}
    q.update(query)
    r = p.get(EVENTS, query=q, auth=tok(p, org))
    assert r.status == 200, r
    return r.json()


def wait_events(p, rid, org, n, **query):
    deadline = time.monotonic() + 10
    while True:
        got = events(p, rid, org, **query)
        if len(got) >= n:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(got)} events for {org}: {got}")
        time.sleep(0.02)


# -- the demo seed and shapes -------------------------------------------------------------

def test_demo_seed_has_a_transfer_each_way(lt):
    ids = lt.get_json(FT, query={"resourceId": "altinnfs-demo-broker"}, auth=tok(lt, OWNER))
    assert sorted(ids) == ["b40c0000-0000-4000-8000-000000000001",
                           "b40c0000-0000-4000-8000-000000000002"]
    inbox = overview(lt, ids[1] if ids[1].endswith("1") else ids[0], OWNER)
    assert set(inbox) == OVERVIEW_KEYS
    assert inbox["fileTransferStatus"] == "Published"
    assert inbox["recipients"][0]["recipient"] == "0192:" + OWNER
    assert inbox["recipients"][0]["currentRecipientFileTransferStatusCode"] == "Initialized"
    sent = overview(lt, "b40c0000-0000-4000-8000-000000000002", OWNER)
    assert sent["fileTransferStatus"] == "AllConfirmedDownloaded"
    ids = lt.get_json(FT, query={"resourceId": "altinnfs-demo-broker", "status": "Published",
                                 "recipientStatus": "Initialized"}, auth=tok(lt, OWNER))
    assert ids == ["b40c0000-0000-4000-8000-000000000001"]


def test_send_with_virus_scan_walks_the_status_machine(lt, settings):
    settings(scanDelay=1.5)
    rid = resource(lt)
    data = b"x" * 10000
    tid = initialize(lt, rid, data=data)
    assert GUID.match(tid)
    doc = overview(lt, tid)
    assert set(doc) == OVERVIEW_KEYS
    assert (doc["fileTransferStatus"], doc["fileTransferStatusText"]) == \
        ("Initialized", "Ready for upload")
    assert doc["sender"] == "0192:" + A and doc["published"] is None
    assert doc["propertyList"] == {"k": "v"} and doc["useVirusScan"] is True
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$", doc["created"])
    r = upload(lt, tid, data)
    assert r.status == 200 and r.json() == {"fileTransferId": tid}, r
    assert overview(lt, tid)["fileTransferStatus"] == "UploadProcessing"
    doc = wait_status(lt, tid, "Published")
    assert doc["fileTransferSize"] == len(data)
    assert doc["checksum"] == hashlib.md5(data).hexdigest()
    assert doc["published"] is not None
    det = overview(lt, tid, details=True)
    assert "published" not in det
    assert [h["fileTransferStatus"] for h in det["fileTransferStatusHistory"]] == \
        ["Initialized", "UploadStarted", "UploadProcessing", "Published"]
    assert det["recipientFileTransferStatusHistory"][0]["recipient"] == "0192:" + B
    # the recipient sees it too, and a third organisation does not
    assert overview(lt, tid, B)["fileTransferStatus"] == "Published"
    r = lt.get(f"{FT}/{tid}", auth=tok(lt, C))
    assert r.status == 401 and code(r) == "BRO-00006"


def test_without_virus_scan_publishes_at_once_and_stores_the_checksum(lt):
    rid = resource(lt, approvedForDisabledVirusScan=True)
    r = lt.request("POST", FT, auth=tok(lt, A),
                   body=init_body(rid, disableVirusScan=True))
    tid = r.json()["fileTransferId"]
    assert upload(lt, tid, b"abc").status == 200
    doc = overview(lt, tid)
    assert doc["fileTransferStatus"] == "Published"
    assert doc["checksum"] == hashlib.md5(b"abc").hexdigest()
    assert doc["useVirusScan"] is False


# -- initialize: validation and refusals ------------------------------------------------

@pytest.mark.parametrize("change,field,message", [
    ({"fileName": ""}, "FileName", "The FileName field is required."),
    ({"sender": "991825827"}, "Sender", "Organization numbers should be"),
    ({"recipients": []}, "Recipients", "One or more recipients are required"),
    ({"recipients": ["0192:12345"]}, "Recipients", "Each recipient should be"),
    ({"checksum": "A" * 32}, "Checksum", "must be a MD5 hash in lower case"),
    ({"checksum": "abc"}, "Checksum", "length of 32 characters"),
    ({"propertyList": {str(i): "v" for i in range(11)}}, "PropertyList", "at most 10"),
    ({"propertyList": {"k" * 51: "v"}}, "PropertyList", "Key can not be longer than 50"),
    # .NET counts UTF-16 units: 1501 characters outside the BMP are 3002
    ({"propertyList": {"k": "\U0001F600" * 1501}}, "PropertyList",
     "Value can not be longer than 3000. Length:3002"),
    ({"propertyList": {"\U0001F600" * 26: "v"}}, "PropertyList",
     "Key can not be longer than 50. Length:52"),
    ({"sendersFileTransferReference": "\U0001F600" * 2049}, "SendersFileTransferReference",
     "maximum length of 4096"),
    ({"resourceId": "a:b"}, "ResourceId", "Invalid Resource identifier format"),
    ({"sendersFileTransferReference": ""}, "SendersFileTransferReference", "minimum length"),
])
def test_initialize_model_validation(lt, change, field, message):
    body = init_body("whatever")
    body.update(change)
    r = lt.request("POST", FT, body=body, auth=tok(lt, A))
    assert r.status == 400, r
    doc = r.json()
    assert doc["title"] == "One or more validation errors occurred."
    assert any(message in m for m in doc["errors"][field]), doc


def test_initialize_limits_counted_in_utf16_units_pass_at_the_edge(lt):
    body = init_body(resource(lt))
    body["propertyList"] = {"\U0001F600" * 25: "\U0001F600" * 1500}
    body["sendersFileTransferReference"] = "\U0001F600" * 2048
    r = lt.request("POST", FT, body=body, auth=tok(lt, A))
    assert r.status == 200, r
    doc = overview(lt, r.json()["fileTransferId"])
    assert doc["propertyList"] == body["propertyList"]
    assert doc["sendersFileTransferReference"] == body["sendersFileTransferReference"]


def test_initialize_omitted_reference_is_refused(lt):
    body = init_body(resource(lt))
    del body["sendersFileTransferReference"]
    r = lt.request("POST", FT, body=body, auth=tok(lt, A))
    assert r.status == 400 and "SendersFileTransferReference" in r.json()["errors"]


def test_initialize_refusals(lt, settings):
    rid = resource(lt)
    body = init_body(rid)
    assert lt.request("POST", FT, body=body, auth=False).status == 401
    r = lt.request("POST", FT, body=body, auth=tok(lt, A, "altinn:broker.read"))
    assert r.status == 403 and r.body == b""
    r = lt.request("POST", FT, body=body, auth=tok(lt, A), headers={"Accept": "text/html"})
    assert r.status == 406
    r = lt.request("POST", FT, body=json.dumps(body).encode(), auth=tok(lt, A),
                   content_type="text/plain")
    assert r.status == 415
    r = lt.request("POST", FT, body=init_body("no-such-resource"), auth=tok(lt, A))
    assert r.status == 401 and code(r) == "BRO-00006"
    # the sender must be the token's organisation, and have the write right
    r = lt.request("POST", FT, body=init_body(rid, sender=B), auth=tok(lt, A))
    assert r.status == 401 and code(r) == "BRO-00006"
    r = lt.request("POST", FT, body=init_body(rid, sender=OWNER), auth=tok(lt, OWNER))
    assert r.status == 401 and code(r) == "BRO-00006"
    r = lt.request("POST", FT, body=init_body(rid, recipients=(C,)), auth=tok(lt, A))
    assert r.status == 400 and code(r) == "BRO-00028"
    r = lt.request("POST", FT, body=init_body(rid, disableVirusScan=True), auth=tok(lt, A))
    assert r.status == 400 and code(r) == "BRO-00020"
    settings(storageNotReady=True)
    r = lt.request("POST", FT, body=body, auth=tok(lt, A))
    assert r.status == 503 and code(r) == "BRO-00021"
    # the urn: forms are accepted and a resource urn prefix is stripped
    settings(storageNotReady=False)
    r = lt.request("POST", FT, auth=tok(lt, A), body=init_body(
        "urn:altinn:resource:" + rid, sender=A,
        recipients=()) | {"sender": "urn:altinn:organization:identifier-no:" + A,
                          "recipients": ["urn:altinn:organization:identifier-no:" + B]})
    assert r.status == 200, r
    doc = overview(lt, r.json()["fileTransferId"])
    assert doc["resourceId"] == rid
    assert doc["sender"] == "urn:altinn:organization:identifier-no:" + A
    assert doc["recipients"][0]["recipient"] == "0192:" + B


# -- uploads ------------------------------------------------------------------------------

def test_upload_refusals(lt):
    rid = resource(lt, maxFileTransferSize=100)
    tid = initialize(lt, rid)
    r = upload(lt, tid, b"x", content_type="text/plain")
    assert r.status == 415
    r = upload(lt, tid, b"x", org=B)
    assert r.status == 401 and code(r) == "BRO-00006"
    r = upload(lt, tid, b"x" * 101)
    assert r.status == 400 and code(r) == "BRO-00016"
    r = upload(lt, str(uuid.uuid4()), b"x")
    assert r.status == 404 and code(r) == "BRO-00001"
    r = lt.request("POST", f"{FT}/not-a-guid/upload", body=b"x", auth=tok(lt, A),
                   content_type="application/octet-stream")
    assert r.status == 400 and "fileTransferId" in r.json()["errors"]
    assert overview(lt, tid)["fileTransferStatus"] == "Initialized"
    assert upload(lt, tid, b"x" * 100).status == 200
    wait_status(lt, tid, "Published")
    r = upload(lt, tid, b"again")
    assert r.status == 409 and code(r) == "BRO-00004"


def test_checksum_mismatch_fails_the_transfer(lt):
    rid = resource(lt)
    tid = initialize(lt, rid, data=b"the right bytes")
    r = upload(lt, tid, b"the wrong bytes")
    assert r.status == 400 and code(r) == "BRO-00009"
    doc = overview(lt, tid)
    assert (doc["fileTransferStatus"], doc["fileTransferStatusText"]) == \
        ("Failed", "Checksum mismatch")
    r = upload(lt, tid, b"the right bytes")
    assert r.status == 409 and code(r) == "BRO-00004"
    # the code publishes no uploadfailed event for a streamed mismatch
    types = [e["type"] for e in events(lt, rid, A)]
    assert types == ["no.altinn.broker.filetransferinitialized"]


def test_initialize_and_upload_in_one_multipart_call(lt):
    rid = resource(lt)
    data = bytes(range(256)) * 40
    boundary = "----brokertest" + uuid.uuid4().hex
    fields = [("Metadata.FileName", "form.bin"), ("Metadata.ResourceId", rid),
              ("Metadata.Sender", "0192:" + A), ("Metadata.Recipients[0]", "0192:" + B),
              ("Metadata.Recipients[1]", "0192:" + OWNER),
              ("Metadata.SendersFileTransferReference", "form-ref"),
              ("Metadata.PropertyList.case", "42"),
              ("Metadata.Checksum", hashlib.md5(data).hexdigest())]
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                    f"{v}\r\n".encode() for k, v in fields)
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"FileTransfer\"; "
             f"filename=\"form.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
             ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    r = lt.request("POST", FT + "/upload", body=body, auth=tok(lt, A),
                   content_type="multipart/form-data; boundary=" + boundary)
    assert r.status == 200, r
    tid = r.json()["fileTransferId"]
    doc = wait_status(lt, tid, "Published")
    assert doc["fileName"] == "form.bin" and doc["propertyList"] == {"case": "42"}
    assert [x["recipient"] for x in doc["recipients"]] == ["0192:" + B, "0192:" + OWNER]
    assert lt.get(f"{ADMIN}/transfers/{tid}/content", auth=False).body == data
    # no file part: a validation error, and no transfer
    before = len(lt.get_json(ADMIN + "/transfers", query={"resourceId": rid}, auth=False))
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                    f"{v}\r\n".encode() for k, v in fields) + f"--{boundary}--\r\n".encode()
    r = lt.request("POST", FT + "/upload", body=body, auth=tok(lt, A),
                   content_type="multipart/form-data; boundary=" + boundary)
    assert r.status == 400 and "FileTransfer" in r.json()["errors"]
    assert len(lt.get_json(ADMIN + "/transfers", query={"resourceId": rid},
                           auth=False)) == before


# -- download and confirm -----------------------------------------------------------------

def test_download_and_confirm(lt):
    rid = resource(lt)
    data = b"0123456789" * 1000
    tid = initialize(lt, rid, recipients=(B, OWNER), data=data, name="rapport 1.txt")
    r = lt.get(f"{FT}/{tid}/download", auth=tok(lt, B))
    assert r.status == 403 and code(r) == "BRO-00007"
    r = lt.request("POST", f"{FT}/{tid}/confirmdownload", auth=tok(lt, B))
    assert r.status == 400 and code(r) == "BRO-00003"       # no file location yet
    assert upload(lt, tid, data).status == 200
    wait_status(lt, tid, "Published")
    r = lt.get(f"{FT}/{tid}/download", auth=tok(lt, A))          # the sender
    assert r.status == 401 and code(r) == "BRO-00006"
    r = lt.get(f"{FT}/{tid}/download", auth=tok(lt, B, "altinn:broker.write"))
    assert r.status == 403 and r.body == b""
    r = lt.request("POST", f"{FT}/{tid}/confirmdownload", auth=tok(lt, B))
    assert r.status == 400 and code(r) == "BRO-00019"
    # a ranged read starts the download too
    r = lt.request("HEAD", f"{FT}/{tid}/download", auth=tok(lt, B))
    assert r.status == 405                                  # [HttpGet] does not answer HEAD
    rec = {x["recipient"]: x for x in overview(lt, tid)["recipients"]}
    assert rec["0192:" + B]["currentRecipientFileTransferStatusCode"] == "Initialized"
    r = lt.get(f"{FT}/{tid}/download", auth=tok(lt, B), headers={"Range": "bytes=10-19"})
    assert r.status == 206 and r.body == data[10:20], r
    assert r.header("Content-Range") == f"bytes 10-19/{len(data)}"
    r = lt.get(f"{FT}/{tid}/download", auth=tok(lt, B), headers={"Range": "bytes=99999-"})
    assert r.status == 416 and code(r) == "BRO-00029"
    r = lt.get(f"{FT}/{tid}/download", auth=tok(lt, B))
    assert r.status == 200 and r.body == data
    assert r.header("Accept-Ranges") == "bytes"
    assert r.header("Content-Disposition") == \
        "attachment; filename=\"rapport 1.txt\"; filename*=UTF-8''rapport%201.txt"
    rec = {x["recipient"]: x for x in overview(lt, tid)["recipients"]}
    assert rec["0192:" + B]["currentRecipientFileTransferStatusCode"] == "DownloadStarted"
    r = lt.request("POST", f"{FT}/{tid}/confirmdownload", auth=tok(lt, B))
    assert r.status == 204 and r.body == b""
    assert overview(lt, tid)["fileTransferStatus"] == "Published"   # OWNER has not
    r = lt.request("POST", f"{FT}/{tid}/confirmdownload", auth=tok(lt, B))
    assert r.status == 204                                           # idempotent
    assert lt.get(f"{FT}/{tid}/download", auth=tok(lt, OWNER)).body == data
    assert lt.request("POST", f"{FT}/{tid}/confirmdownload",
                      auth=tok(lt, OWNER)).status == 204
    doc = overview(lt, tid)
    assert doc["fileTransferStatus"] == "AllConfirmedDownloaded"
    assert {x["currentRecipientFileTransferStatusCode"] for x in doc["recipients"]} == \
        {"DownloadConfirmed"}
    # still downloadable; confirming now is refused (status is no longer Published)
    assert lt.get(f"{FT}/{tid}/download", auth=tok(lt, B)).status == 200
    r = lt.request("POST", f"{FT}/{tid}/confirmdownload", auth=tok(lt, B))
    assert r.status == 400 and code(r) == "BRO-00010"
    types = [(e["type"], e["subject"]) for e in events(lt, rid, A)]
    assert ("no.altinn.broker.allconfirmeddownloaded",
            "urn:altinn:organization:identifier-no:" + A) in types
    assert types.count(("no.altinn.broker.downloadconfirmed",
                        "urn:altinn:organization:identifier-no:" + A)) == 2


# -- search -------------------------------------------------------------------------------

def test_search_filters(lt):
    rid = resource(lt)
    t0 = time.time()
    first = send(lt, rid, b"one", name="one")
    mid = time.time()
    second = initialize(lt, rid, name="two")
    third = initialize(lt, rid, org=B, recipients=(A,), name="three")
    q = {"resourceId": rid}
    assert lt.get_json(FT, query=q, auth=tok(lt, A)) == [third, second, first]
    assert lt.get_json(FT, query=q | {"orderAscending": "true"}, auth=tok(lt, A)) == \
        [first, second, third]
    assert lt.get_json(FT, query=q | {"role": "Sender"}, auth=tok(lt, A)) == [second, first]
    assert lt.get_json(FT, query=q | {"role": "Recipient"}, auth=tok(lt, A)) == [third]
    assert lt.get_json(FT, query=q | {"status": "Published"}, auth=tok(lt, A)) == [first]
    assert lt.get_json(FT, query=q | {"status": "Initialized"}, auth=tok(lt, A)) == \
        [third, second]
    assert lt.get_json(FT, query=q | {"status": "Published", "recipientStatus":
                                      "Initialized"}, auth=tok(lt, B)) == [first]
    assert lt.get_json(FT, query=q | {"recipientStatus": "Initialized"},
                       auth=tok(lt, A)) == [third]
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
        ".%06dZ" % int((t % 1) * 1e6)
    assert lt.get_json(FT, query=q | {"from": iso(mid)}, auth=tok(lt, A)) == [third, second]
    assert lt.get_json(FT, query=q | {"to": iso(mid)}, auth=tok(lt, A)) == [first]
    assert lt.get_json(FT, query=q | {"from": iso(t0), "to": iso(mid)},
                       auth=tok(lt, A)) == [first]
    # a third organisation with no right on the resource, and bad queries
    r = lt.get(FT, query=q, auth=tok(lt, C))
    assert r.status == 401 and code(r) == "BRO-00006"
    r = lt.get(FT, query={"resourceId": rid, "status": "Nope"}, auth=tok(lt, A))
    assert r.status == 400 and "status" in r.json()["errors"]
    r = lt.get(FT, auth=tok(lt, A))
    assert r.status == 400 and "resourceId" in r.json()["errors"]


def test_search_limit_and_urn_sender(lt):
    rid = resource(lt, approvedForDisabledVirusScan=True)
    for i in range(103):
        initialize(lt, rid, name=f"f{i}")
    ids = lt.get_json(FT, query={"resourceId": rid}, auth=tok(lt, A))
    assert len(ids) == 100                  # LIMIT 100, newest first, no cursor
    # a sender stored in urn form is not found by the sender row of the search
    r = lt.request("POST", FT, auth=tok(lt, A), body=init_body(rid) | {
        "sender": "urn:altinn:organization:identifier-no:" + A})
    urn_id = r.json()["fileTransferId"]
    assert urn_id not in lt.get_json(FT, query={"resourceId": rid, "role": "Sender",
                                                "orderAscending": "false"}, auth=tok(lt, A))
    assert urn_id in lt.get_json(FT, query={"resourceId": rid}, auth=tok(lt, B))


# -- TUS ----------------------------------------------------------------------------------

def tus(p, method, tid, org=A, headers=None, body=None):
    h = {"Tus-Resumable": "1.0.0"}
    h.update(headers or {})
    return p.request(method, f"{TUS}/{tid}", body=body, auth=tok(p, org), headers=h)


def test_tus_upload_resumes_at_the_servers_offset(lt):
    rid = resource(lt)
    data = hashlib.sha256(b"tus").digest() * 4096           # 128 KiB
    tid = initialize(lt, rid, data=data)
    r = lt.request("OPTIONS", f"{TUS}/{tid}", auth=tok(lt, A))
    assert r.status == 204 and r.header("Tus-Version") == "1.0.0"
    assert "creation" in r.header("Tus-Extension")
    r = tus(lt, "POST", tid, headers={"Upload-Length": str(len(data))}, body=b"")
    assert r.status == 201, r
    assert r.header("Location") == f"{TUS}/{tid}"
    assert r.header("Upload-Expires")
    assert overview(lt, tid)["fileTransferStatus"] == "UploadStarted"
    r = tus(lt, "HEAD", tid)
    assert r.status == 200 and r.header("Upload-Offset") == "0"
    assert r.header("Upload-Length") == str(len(data))
    octet = {"Content-Type": "application/offset+octet-stream"}
    r = tus(lt, "PATCH", tid, headers=octet | {"Upload-Offset": "0"}, body=data[:50000])
    assert r.status == 204 and r.header("Upload-Offset") == "50000", r
    # refusals: no Tus-Resumable, wrong type, wrong offset, a per-chunk checksum, another org
    r = lt.request("PATCH", f"{TUS}/{tid}", auth=tok(lt, A), body=b"x",
                   headers=octet | {"Upload-Offset": "50000"})
    assert r.status == 412 and r.header("Tus-Version") == "1.0.0"
    r = tus(lt, "PATCH", tid, headers={"Content-Type": "application/octet-stream",
                                       "Upload-Offset": "50000"}, body=b"x")
    assert r.status == 415
    r = tus(lt, "PATCH", tid, headers=octet | {"Upload-Offset": "0"}, body=data[:10])
    assert r.status == 409 and b"File offset: 50000" in r.body
    r = tus(lt, "PATCH", tid, body=data[50000:50010], headers=octet | {
        "Upload-Offset": "50000", "Upload-Checksum": "md5 " + "A" * 24})
    assert r.status == 460
    r = tus(lt, "PATCH", tid, org=B, headers=octet | {"Upload-Offset": "50000"}, body=b"x")
    assert r.status == 401
    # resume from HEAD's offset
    offset = int(tus(lt, "HEAD", tid).header("Upload-Offset"))
    assert offset == 50000
    r = tus(lt, "PATCH", tid, headers=octet | {"Upload-Offset": str(offset)},
            body=data[offset:])
    assert r.status == 204 and r.header("Upload-Offset") == str(len(data))
    doc = wait_status(lt, tid, "Published")
    assert doc["fileTransferSize"] == len(data)
    assert lt.get(f"{FT}/{tid}/download", auth=tok(lt, B)).body == data
    # a PATCH at the complete offset is 204 again; a new upload is refused
    r = tus(lt, "PATCH", tid, headers=octet | {"Upload-Offset": str(len(data))}, body=b"")
    assert r.status == 204
    r = tus(lt, "POST", tid, headers={"Upload-Length": "5"}, body=b"")
    assert r.status == 409
    types = [e["type"] for e in events(lt, rid, A)]
    assert types == ["no.altinn.broker.filetransferinitialized",
                     "no.altinn.broker.uploadprocessing", "no.altinn.broker.published"]


def test_tus_limits_and_deferred_checksum_mismatch(lt):
    rid = resource(lt, maxFileTransferSize=1000)
    tid = initialize(lt, rid, data=b"a" * 10)
    r = tus(lt, "POST", tid, headers={"Upload-Length": "1001"}, body=b"")
    assert r.status == 400 and b"File size exceeds maximum" in r.body
    r = tus(lt, "POST", tid, headers={"Upload-Defer-Length": "1"}, body=b"")
    assert r.status == 400
    r = tus(lt, "POST", tid, headers={"Upload-Length": "10"}, body=b"")
    assert r.status == 201
    r = tus(lt, "PATCH", tid, body=b"b" * 11, headers={
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    assert r.status == 413
    r = tus(lt, "PATCH", tid, body=b"b" * 10, headers={
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    assert r.status == 204
    doc = wait_status(lt, tid, "Failed")
    assert doc["fileTransferStatusText"] == "Checksum mismatch"
    types = [e["type"] for e in wait_events(lt, rid, A, 3)]
    assert types[-1] == "no.altinn.broker.uploadfailed"


# -- events -------------------------------------------------------------------------------

def test_events_by_poll_are_per_organisation(lt):
    rid = resource(lt)
    tid = send(lt, rid, recipients=(B,))
    mine = wait_events(lt, rid, A, 3)
    assert [e["type"] for e in mine] == ["no.altinn.broker.filetransferinitialized",
                                         "no.altinn.broker.uploadprocessing",
                                         "no.altinn.broker.published"]
    e = mine[-1]
    assert e["resource"] == "urn:altinn:resource:" + rid
    assert e["resourceinstance"] == tid
    assert e["subject"] == "urn:altinn:organization:identifier-no:" + A
    assert e["source"] == lt.url + "/broker/api/v1/filetransfer"
    assert e["data"] == {"Role": "Sender"} and "alternativesubject" not in e
    theirs = wait_events(lt, rid, B, 1)
    assert [(x["type"], x["data"]["Role"]) for x in theirs] == \
        [("no.altinn.broker.published", "Recipient")]
    # the published ids are stable (SHA-256 of published:{id}:{role}:{actor})
    name = f"published:{tid}:Recipient:0192:{B}"
    assert theirs[0]["id"] == str(uuid.UUID(bytes_le=hashlib.sha256(name.encode())
                                             .digest()[:16]))
    assert events(lt, rid, C) == []
    assert len(events(lt, rid, OWNER)) == 4                  # the service owner sees all
    only = events(lt, rid, OWNER, subject="urn:altinn:organization:identifier-no:" + B)
    assert [x["subject"] for x in only] == ["urn:altinn:organization:identifier-no:" + B]
    assert events(lt, rid, A, after=mine[1]["id"]) == mine[2:]
    r = lt.get(EVENTS, query={"resource": "urn:altinn:resource:" + rid, "after": "0"},
               auth=tok(lt, A, "altinn:broker.read"))
    assert r.status == 403


class Receiver:
    def __init__(self):
        self.cond = threading.Condition()
        self.posts = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.cond:
                    outer.posts.append(json.loads(body))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]

    def wait(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.events()) < n:
                if not self.cond.wait(max(0, deadline - time.monotonic())):
                    raise AssertionError(f"{len(self.events())} webhook events")
            return self.events()

    def events(self):
        return [p for p in self.posts if p["type"] != "platform.events.validatesubscription"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_events_by_webhook(lt):
    rid = resource(lt)
    rec = Receiver()
    try:
        r = lt.request("POST", "/events/api/v1/subscriptions", auth=tok(lt, B), body={
            "endPoint": rec.url, "resourceFilter": "urn:altinn:resource:" + rid,
            "subjectFilter": "urn:altinn:organization:identifier-no:" + B})
        assert r.status == 201, r
        # without a subject, or with another's, a party is refused; the owner is not
        for org, subject in ((B, None), (B, "urn:altinn:organization:identifier-no:" + A),
                             (C, "urn:altinn:organization:identifier-no:" + C)):
            body = {"endPoint": rec.url, "resourceFilter": "urn:altinn:resource:" + rid}
            if subject:
                body["subjectFilter"] = subject
            r = lt.request("POST", "/events/api/v1/subscriptions", auth=tok(lt, org),
                           body=body)
            assert r.status == 403, (org, subject, r)
        deadline = time.monotonic() + 10
        while not lt.get_json("/_localtest/subscriptions", auth=False)[-1]["validated"]:
            assert time.monotonic() < deadline, "subscription not validated"
            time.sleep(0.02)
        tid = send(lt, rid, recipients=(B,))
        got = rec.wait(1)
        assert [(e["type"], e["resourceinstance"], e["data"]) for e in got] == \
            [("no.altinn.broker.published", tid, {"Role": "Recipient"})]
    finally:
        lt.request("DELETE", "/_localtest/subscriptions", auth=False)
        rec.close()


# -- hostile switches ---------------------------------------------------------------------

def test_lost_answer_to_initialize_leaves_a_transfer_to_find(lt, settings):
    rid = resource(lt)
    start = time.time() - 1
    lt.fault(FT + "$", method="POST", status=503, after=True)
    r = lt.request("POST", FT, body=init_body(rid, name="lost.bin"), auth=tok(lt, A))
    assert r.status == 503
    lt.fault(FT + "$", method="POST", drop=True, after=True)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        lt.request("POST", FT, body=init_body(rid, name="lost2.bin"), auth=tok(lt, A))
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    ids = lt.get_json(FT, query={"resourceId": rid, "role": "Sender", "from": iso},
                      auth=tok(lt, A))
    names = sorted(overview(lt, i)["fileName"] for i in ids)
    assert names == ["lost.bin", "lost2.bin"]


def test_upload_cut_midway_fails_the_transfer(lt, settings):
    rid = resource(lt)
    settings(cutUploadAfter=1000, cutCount=1)
    tid = initialize(lt, rid)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        upload(lt, tid, b"z" * 100000)
    doc = overview(lt, tid)
    assert (doc["fileTransferStatus"], doc["fileTransferStatusText"]) == \
        ("Failed", "File upload failed and was aborted")
    assert upload(lt, tid, b"z").status == 409
    assert wait_events(lt, rid, A, 2)[-1]["type"] == "no.altinn.broker.uploadfailed"
    settings(cutUploadAfter=10, cutCount=1, cutStatus=502)
    tid = initialize(lt, rid)
    assert upload(lt, tid, b"y" * 100).status == 502
    assert overview(lt, tid)["fileTransferStatus"] == "Failed"


def test_tus_patch_cut_midway_keeps_what_arrived(lt, settings):
    rid = resource(lt)
    data = bytes(range(256)) * 1024
    tid = initialize(lt, rid, data=data)
    assert tus(lt, "POST", tid, headers={"Upload-Length": str(len(data))},
               body=b"").status == 201
    settings(cutUploadAfter=70000, cutCount=1)
    octet = {"Content-Type": "application/offset+octet-stream"}
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        tus(lt, "PATCH", tid, headers=octet | {"Upload-Offset": "0"}, body=data)
    offset = int(tus(lt, "HEAD", tid).header("Upload-Offset"))
    assert offset == 70000
    assert overview(lt, tid)["fileTransferStatus"] == "UploadStarted"
    r = tus(lt, "PATCH", tid, headers=octet | {"Upload-Offset": str(offset)},
            body=data[offset:])
    assert r.status == 204
    wait_status(lt, tid, "Published")
    assert lt.get(f"{FT}/{tid}/download", auth=tok(lt, B)).body == data


def test_malware_and_slow_scan(lt, settings):
    rid = resource(lt)
    settings(malware=1, scanDelay=1.0)
    tid = initialize(lt, rid)
    assert upload(lt, tid, b"X5O!P%@AP").status == 200
    assert overview(lt, tid)["fileTransferStatus"] == "UploadProcessing"
    doc = wait_status(lt, tid, "Failed")
    assert doc["fileTransferStatusText"].startswith("Malware scan failed: Malicious.")
    assert wait_events(lt, rid, A, 3)[-1]["type"] == "no.altinn.broker.uploadfailed"
    r = lt.get(f"{FT}/{tid}/download", auth=tok(lt, B))
    assert r.status == 403 and code(r) == "BRO-00007"
    # slow: the next one stays in UploadProcessing for the scan delay
    settings(scanDelay=1.0)
    tid = initialize(lt, rid)
    began = time.monotonic()
    assert upload(lt, tid, b"clean").status == 200
    doc = wait_status(lt, tid, "Published")
    assert time.monotonic() - began >= 0.9
    assert doc["checksum"] is None          # scanned, streamed, none given: the code's null


def test_expiry_purges_and_tells_who_never_confirmed(lt):
    rid = resource(lt)
    tid = send(lt, rid, recipients=(B,))
    r = lt.request("POST", f"{ADMIN}/transfers/{tid}/expire", auth=False)
    assert r.status == 200 and r.json()["fileTransferStatus"] == "Purged"
    assert overview(lt, tid)["fileTransferStatusText"] == "FileTransfer has been purged"
    r = lt.get(f"{FT}/{tid}/download", auth=tok(lt, B))
    assert r.status == 403 and code(r) == "BRO-00007"
    types = [e["type"] for e in events(lt, rid, A)]
    assert types[-2:] == ["no.altinn.broker.filepurged",
                          "no.altinn.broker.fileneverconfirmeddownloaded"]
    assert events(lt, rid, B)[-1]["type"] == "no.altinn.broker.fileneverconfirmeddownloaded"
    # a Failed transfer is purged at expiry too
    tid = initialize(lt, rid, data=b"right")
    assert upload(lt, tid, b"wrong").status == 400
    r = lt.request("POST", f"{ADMIN}/transfers/{tid}/expire", auth=False)
    assert [h["fileTransferStatus"] for h in r.json()["fileTransferStatusHistory"]][-2:] == \
        ["Failed", "Purged"]


def test_ttl_and_purge_after_all_confirmed(lt):
    rid = resource(lt, fileTransferTimeToLive="PT1S")
    tid = initialize(lt, rid)
    time.sleep(1.1)
    assert overview(lt, tid)["fileTransferStatus"] == "Purged"
    rid = resource(lt, purgeFileTransferAfterAllRecipientsConfirmed=True,
                   purgeFileTransferGracePeriod="PT1S")
    tid = send(lt, rid, recipients=(B,))
    assert lt.get(f"{FT}/{tid}/download", auth=tok(lt, B)).status == 200
    assert lt.request("POST", f"{FT}/{tid}/confirmdownload", auth=tok(lt, B)).status == 204
    assert overview(lt, tid)["fileTransferStatus"] == "AllConfirmedDownloaded"
    time.sleep(1.1)
    assert overview(lt, tid)["fileTransferStatus"] == "Purged"
    assert events(lt, rid, A)[-1]["type"] == "no.altinn.broker.filepurged"


def test_admin_resources(lt):
    r = lt.request("POST", ADMIN + "/resources", auth=False, body={"resourceId": "a:b"})
    assert r.status == 400
    r = lt.request("POST", ADMIN + "/resources", auth=False,
                   body={"resourceId": "x", "senders": ["12"]})
    assert r.status == 400
    rid = resource(lt, maxFileTransferSize=5)
    mine = [x for x in lt.get_json(ADMIN + "/resources", auth=False) if x["resourceId"] == rid]
    assert mine[0]["maxFileTransferSize"] == 5 and mine[0]["senders"] == [A, B]
    assert lt.request("DELETE", f"{ADMIN}/resources/{rid}", auth=False).status == 204
    r = lt.request("POST", FT, body=init_body(rid), auth=tok(lt, A))
    assert r.status == 401 and code(r) == "BRO-00006"


def test_rate_limits(lt, settings):
    rid = resource(lt)
    tid = initialize(lt, rid, org=B)
    settings(rateLimits=True)
    for _ in range(10):
        assert lt.get(FT, query={"resourceId": rid}, auth=tok(lt, B)).status == 200
    r = lt.get(FT, query={"resourceId": rid}, auth=tok(lt, B))
    assert r.status == 429, r
    assert 1 <= int(r.header("Retry-After")) <= 60
    assert r.json()["statusCode"] == 429
    # per caller and per endpoint class: another org, and the overview, still pass
    assert lt.get(FT, query={"resourceId": rid}, auth=tok(lt, A)).status == 200
    for _ in range(10):
        assert lt.get(f"{FT}/{tid}/details", auth=tok(lt, B)).status == 200
    assert lt.get(f"{FT}/{tid}/details", auth=tok(lt, B)).status == 429
    assert lt.get(f"{FT}/{tid}", auth=tok(lt, B)).status == 200


def test_an_exchanged_maskinporten_token_sends(lt):
    """The daemon's way in: a Maskinporten grant, the exchange, then Broker."""
    import base64
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    client = "broker-" + uuid.uuid4().hex[:8]
    r = lt.request("POST", "/_localtest/maskinporten/clients", auth=False, body={
        "clientId": client, "kid": "k1", "publicKeyPem": pem.decode(), "orgNumber": A,
        "scopes": "altinn:broker.write altinn:broker.read"})
    assert r.status == 201, r
    aud = lt.get_json("/_localtest/maskinporten", auth=False)["issuer"]

    def b64(obj):
        raw = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    now = int(time.time())
    head = b64({"alg": "RS256", "kid": "k1"}) + "." + b64({
        "aud": aud, "iss": client, "scope": "altinn:broker.write", "iat": now,
        "exp": now + 60, "jti": uuid.uuid4().hex})
    sig = key.sign(head.encode(), padding.PKCS1v15(), hashes.SHA256())
    r = lt.request("POST", "/maskinporten/token", auth=False,
                   content_type="application/x-www-form-urlencoded",
                   body=urllib.parse.urlencode({
                       "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                       "assertion": head + "." + b64(sig)}).encode())
    assert r.status == 200, r
    r = lt.get("/authentication/api/v1/exchange/maskinporten",
               auth="Bearer " + r.json()["access_token"])
    assert r.status == 200, r
    bearer = "Bearer " + r.body.decode().strip()
    rid = resource(lt)
    r = lt.request("POST", FT, body=init_body(rid), auth=bearer)
    assert r.status == 200, r
    tid = r.json()["fileTransferId"]
    r = lt.request("POST", f"{FT}/{tid}/upload", body=b"via maskinporten", auth=bearer,
                   content_type="application/octet-stream")
    assert r.status == 200, r
    # the token holds write only: downloading needs read
    assert lt.get(f"{FT}/{tid}/download", auth=bearer).status == 403


def test_tus_expiry_and_stuck_uploads(lt, settings):
    rid = resource(lt)
    octet = {"Content-Type": "application/offset+octet-stream"}
    settings(tusExpiration=0.5)
    tid = initialize(lt, rid)
    assert tus(lt, "POST", tid, headers={"Upload-Length": "100"}, body=b"").status == 201
    assert tus(lt, "PATCH", tid, headers=octet | {"Upload-Offset": "0"},
               body=b"a" * 40).status == 204
    time.sleep(0.7)
    assert tus(lt, "HEAD", tid).status == 404            # the unfinished upload expired
    assert tus(lt, "PATCH", tid, headers=octet | {"Upload-Offset": "40"},
               body=b"a" * 60).status == 404
    r = tus(lt, "POST", tid, headers={"Upload-Length": "100"}, body=b"")
    assert r.status == 201                                # start again from 0
    assert tus(lt, "HEAD", tid).header("Upload-Offset") == "0"
    # UploadStarted too long without TUS activity: Failed, with uploadfailed
    settings(tusExpiration=86400, stuckAfter=1.0, stuckActivityWindow=0.3)
    tid = initialize(lt, rid)
    assert tus(lt, "POST", tid, headers={"Upload-Length": "100"}, body=b"").status == 201
    time.sleep(0.3)
    assert overview(lt, tid)["fileTransferStatus"] == "UploadStarted"
    time.sleep(0.9)
    doc = overview(lt, tid)
    assert (doc["fileTransferStatus"], doc["fileTransferStatusText"]) == \
        ("Failed", "File transfer was stuck in UploadStarted as it failed upload mid-request.")
    assert tus(lt, "HEAD", tid).status == 404
    assert events(lt, rid, A)[-1]["type"] == "no.altinn.broker.uploadfailed"


def test_service_owner_configures_a_resource(lt):
    rid = resource(lt)
    path = "/broker/api/v1/resource/" + rid
    owner = tok(lt, OWNER, "altinn:serviceowner")
    r = lt.get(path, auth=owner)
    assert r.status == 200, r
    assert r.json() == {"maxFileTransferSize": None, "fileTransferTimeToLive": None,
                        "purgeFileTransferAfterAllRecipientsConfirmed": False,
                        "purgeFileTransferGracePeriod": None, "useManifestFileShim": False,
                        "externalServiceCodeLegacy": None,
                        "externalServiceEditionCodeLegacy": None, "requiredParty": None}
    assert lt.get(path, auth=tok(lt, OWNER)).status == 403          # scope
    r = lt.get(path, auth=tok(lt, A, "altinn:serviceowner"))
    assert r.status == 401 and code(r) == "BRO-00006"               # not the owner
    r = lt.get("/broker/api/v1/resource/unknown-" + rid, auth=owner)
    assert r.status == 400 and code(r) == "BRO-00025"
    for body, want in (({"maxFileTransferSize": -1}, "BRO-00011"),
                       ({"maxFileTransferSize": 0}, "BRO-00012"),
                       ({"maxFileTransferSize": 60 * 10**9}, "BRO-00013"),
                       ({"fileTransferTimeToLive": "30 days"}, "BRO-00014"),
                       ({"fileTransferTimeToLive": "P400D"}, "BRO-00015"),
                       ({"purgeFileTransferGracePeriod": "PT25H"}, "BRO-00018")):
        r = lt.request("PUT", path, body=body, auth=owner)
        assert r.status == 400 and code(r) == want, (body, r)
    r = lt.request("PUT", path, auth=owner, body={
        "maxFileTransferSize": 5, "fileTransferTimeToLive": "P2D",
        "purgeFileTransferGracePeriod": "PT2H",
        "purgeFileTransferAfterAllRecipientsConfirmed": True})
    assert r.status == 204, r
    doc = lt.get_json(path, auth=owner)
    assert (doc["maxFileTransferSize"], doc["fileTransferTimeToLive"],
            doc["purgeFileTransferGracePeriod"]) == (5, "2.00:00:00", "02:00:00")
    # the new limit holds for senders at once
    tid = initialize(lt, rid)
    r = upload(lt, tid, b"123456")
    assert r.status == 400 and code(r) == "BRO-00016"


def chunked_upload(p, tid, pieces, org=A):
    conn = http.client.HTTPConnection(p.host, p.port, timeout=30)
    try:
        conn.request("POST", f"{FT}/{tid}/upload", body=iter(pieces), encode_chunked=True,
                     headers={"Authorization": tok(p, org),
                              "Content-Type": "application/octet-stream",
                              "Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_chunked_upload(lt):
    rid = resource(lt, maxFileTransferSize=1000)
    pieces = [b"a" * 300, b"b" * 300, b"c" * 300]
    tid = initialize(lt, rid, data=b"".join(pieces))
    status, body = chunked_upload(lt, tid, pieces)
    assert status == 200 and json.loads(body) == {"fileTransferId": tid}
    doc = wait_status(lt, tid, "Published")
    assert doc["fileTransferSize"] == 900
    # past the maximum without a Content-Length: refused while reading (stricter than
    # Broker, which checks only a declared length), and the transfer is Failed
    tid = initialize(lt, rid)
    status, body = chunked_upload(lt, tid, pieces + pieces)
    assert status == 400 and json.loads(body)["code"] == "BRO-00016"
    assert overview(lt, tid)["fileTransferStatus"] == "Failed"
