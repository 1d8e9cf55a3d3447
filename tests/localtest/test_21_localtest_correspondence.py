"""The local platform's Altinn Correspondence v1 (../shared/altinn-broker-correspondence.md
section 3): initialize (JSON and multipart), shared attachments, overview/details/content,
list, the recipient's actions and the status machine, validations with the field or error
number named, idempotency, auth refusals, events by polling and webhook, and the hostile
switches (lost answers, malware, a refused recipient, slow publication).

Runs against a platform of its own (own_platform), with minEventAge 0 and short delays;
each test makes its own resource, so tests do not see each other's correspondences."""

import datetime
import hashlib
import http.client
import json
import re
import time
import uuid

import pytest

from test_20_localtest_broker import Receiver

CORR = "/correspondence/api/v1/correspondence"
ATT = "/correspondence/api/v1/attachment"
EVENTS = "/events/api/v1/events"
ADMIN = "/_localtest/correspondence"
OWNER = "991825827"          # ttd, the demo's service owner
A = "313000001"              # organisations with valid check digits
B = "314000005"
C = "315000009"
PERSON = "01018000055"       # a valid national identity number
RESERVED = "02056610076"     # reserved against digital mail in the demo seed
ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
OVERVIEW_KEYS = {"correspondenceId", "resourceId", "sender", "sendersReference",
                 "messageSender", "recipient", "content", "requestedPublishTime", "dueDateTime",
                 "externalReferences", "propertyList", "replyOptions", "notification",
                 "ignoreReservation", "isConfirmationNeeded", "isConfidential",
                 "allowForwarding", "created", "status", "statusText", "statusChanged",
                 "notifications", "altinn2CorrespondenceId", "published", "read"}
ATTACHMENT_KEYS = {"attachmentId", "resourceId", "sender", "fileName", "displayName",
                   "isEncrypted", "checksum", "sendersReference", "expirationInDays", "status",
                   "statusText", "statusChanged", "correspondenceIds", "dataType"}
SENDER_SCOPES = "altinn:correspondence.write altinn:events.subscribe"
RECIPIENT_SCOPES = "altinn:correspondence.read altinn:events.subscribe"
SEED_RESERVED = [RESERVED, "01018000217"]
DEFAULTS = dict(publishDelay=0.05, scanDelay=0.05, confirmDelay=0.1, malware=0,
                failRecipients=[], unknownRecipients=[], minExpirationDays=14)


@pytest.fixture(scope="module")
def lt(own_platform):
    r = own_platform.request("PUT", "/_localtest/events/settings", auth=False,
                             body={"minEventAge": 0, "allowHttpWebhooks": True,
                                   "webhookRetryScale": 0.01})
    assert r.status == 200, r.body
    r = own_platform.request("PUT", ADMIN + "/settings", auth=False, body=DEFAULTS)
    assert r.status == 200, r.body
    return own_platform


@pytest.fixture
def settings(lt):
    def change(**kw):
        r = lt.request("PUT", ADMIN + "/settings", body=kw, auth=False)
        assert r.status == 200, r.body
        return r.json()
    yield change
    change(reserved=SEED_RESERVED, **DEFAULTS)
    lt.clear_faults()


_tokens = {}


def tok(p, org, scopes=SENDER_SCOPES):
    key = (p.port, org, scopes)
    if key not in _tokens:
        r = p.get("/Home/GetTestOrgToken/org" + org,
                  query={"orgNumber": org, "scopes": scopes}, auth=False)
        assert r.status == 200, r.body
        _tokens[key] = "Bearer " + r.body.decode().strip()
    return _tokens[key]


def rtok(p, org):
    return tok(p, org, RECIPIENT_SCOPES)


def person_tok(p, ssn=PERSON):
    key = (p.port, "person", ssn)
    if key not in _tokens:
        r = p.request("POST", "/_localtest/parties", body={"personNumber": ssn}, auth=False)
        if r.status == 201:
            party = r.json()["partyId"]
        else:
            party = next(x["partyId"] for x in p.get_json("/_localtest/parties", auth=False)
                         if x.get("ssn") == ssn or x.get("personNumber") == ssn)
        r = p.get(f"/Home/GetTestUserToken/{party}",
                  query={"partyId": party, "scopes": RECIPIENT_SCOPES}, auth=False)
        assert r.status == 200, r.body
        _tokens[key] = "Bearer " + r.body.decode().strip()
    return _tokens[key]


def resource(p, **kw):
    doc = {"resourceId": "corr-" + uuid.uuid4().hex[:10], "serviceOwner": OWNER}
    doc.update(kw)
    r = p.request("POST", ADMIN + "/resources", body=doc, auth=False)
    assert r.status == 201, r
    return doc["resourceId"]


def iso_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.isoformat().replace("+00:00", "Z")


def body(rid, recipients=(ORG_URN + A,), key=None, existing=(), **kw):
    c = {"resourceId": rid, "sendersReference": "ref-1",
         "content": {"language": "nb", "messageTitle": "Vedtak om tilskudd",
                     "messageSummary": "Et kort sammendrag",
                     "messageBody": "# Vedtak\n\nDere har fått **innvilget** tilskudd.",
                     "attachments": []},
         "propertyList": {"saksnr": "2026/17"}}
    content = kw.pop("content", None)
    if content:
        c["content"].update(content)
    c.update(kw)
    doc = {"correspondence": c, "recipients": list(recipients),
           "existingAttachments": list(existing)}
    if key is not None:
        doc["idempotentKey"] = key
    return doc


def initialize(p, doc, org=OWNER, expect=200):
    r = p.request("POST", CORR, body=doc, auth=tok(p, org))
    assert r.status == expect, r
    return r.json() if expect == 200 else r


def send(p, rid, **kw):
    doc = initialize(p, body(rid, **kw))
    return [c["correspondenceId"] for c in doc["correspondences"]]


def overview(p, cid, auth, details=False):
    r = p.get(f"{CORR}/{cid}" + ("/details" if details else ""), auth=auth)
    assert r.status == 200, r.body
    return r.json()


def wait_status(p, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        doc = overview(p, cid, tok(p, OWNER))
        if doc["status"] == want:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"{cid} is {doc['status']}, not {want}")
        time.sleep(0.02)


def problem(r, status):
    assert r.status == status, r
    assert r.header("Content-Type").startswith("application/problem+json"), r
    doc = r.json()
    assert doc["traceId"] and doc["status"] == status
    return doc


def code(r, status):
    doc = problem(r, status)
    assert doc["code"] == "CORR-%05d" % doc["errorCode"]
    return doc["errorCode"]


def fields(r):
    doc = problem(r, 400)
    assert doc["title"] == "Bad Request" and doc["code"] == "STD-00000"
    # each error also as an AltinnValidationError {code, detail, paths}
    assert sorted((e["paths"][0], e["detail"]) for e in doc["validationErrors"]) == \
        sorted(("/" + k.replace(".", "/"), m) for k, ms in doc["errors"].items() for m in ms)
    return doc["errors"]


def events(p, rid, auth, after="0", **query):
    q = {"resource": "urn:altinn:resource:" + rid, "after": after}
    q.update(query)
    r = p.get(EVENTS, query=q, auth=auth)
    assert r.status == 200, r.body
    return r.json()


def wait_events(p, rid, auth, types, **query):
    deadline = time.monotonic() + 10
    while True:
        got = events(p, rid, auth, **query)
        if [e["type"].rsplit(".", 1)[1] for e in got] == types:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"events {[e['type'] for e in got]}, wanted {types}")
        time.sleep(0.02)


def new_attachment(p, rid, data, name="vedlegg.pdf", org=OWNER, checksum=True):
    doc = {"resourceId": rid, "fileName": name, "sendersReference": "att-1",
           "displayName": "Vedlegg"}
    if checksum:
        doc["checksum"] = hashlib.md5(data).hexdigest()
    r = p.request("POST", ATT, body=doc, auth=tok(p, org))
    assert r.status == 200, r.body
    aid = r.json()
    assert GUID.match(aid)
    r = p.request("POST", f"{ATT}/{aid}/upload", body=data, auth=tok(p, org),
                  content_type="application/octet-stream")
    assert r.status == 200, r.body
    return aid, r.json()


def wait_attachment(p, aid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        doc = p.get_json(f"{ATT}/{aid}", auth=tok(p, OWNER))
        if doc["status"] == want:
            return doc
        assert time.monotonic() < deadline, f"attachment {doc['status']}, not {want}"
        time.sleep(0.02)


# -- initialize, overview, list ------------------------------------------------------------

def test_demo_seed_has_the_resource_and_reserved_persons(lt):
    names = [r["resourceId"] for r in lt.get_json(ADMIN + "/resources", auth=False)]
    assert "altinnfs-demo-correspondence" in names
    assert lt.get_json(ADMIN + "/settings", auth=False)["reserved"] == SEED_RESERVED
    for person in SEED_RESERVED:
        r = lt.request("POST", CORR, body=body("altinnfs-demo-correspondence",
                                               recipients=(person,)), auth=tok(lt, OWNER))
        assert code(r, 422) == 1030
    doc = initialize(lt, body("altinnfs-demo-correspondence"))
    assert doc["correspondences"][0]["recipient"] == ORG_URN + A


def test_initialize_publishes_and_overview_shows_it(lt):
    rid = resource(lt)
    doc = initialize(lt, body(rid, recipients=(ORG_URN + A, "0192:" + B, PERSON)))
    assert doc["attachmentIds"] == []
    rows = doc["correspondences"]
    assert [r["recipient"] for r in rows] == [ORG_URN + A, ORG_URN + B, PERSON_URN + PERSON]
    assert all(r["status"] == "Initialized" and r["notifications"] is None for r in rows)
    assert len({r["correspondenceId"] for r in rows}) == 3
    cid = rows[0]["correspondenceId"]
    doc = wait_status(lt, cid, "Published")
    assert set(doc) == OVERVIEW_KEYS
    assert set(doc["content"]) == {"language", "messageTitle", "messageSummary", "messageBody",
                                   "attachments"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$", doc["published"])
    assert doc["sender"] == ORG_URN + OWNER and doc["resourceId"] == rid
    assert doc["content"]["messageTitle"] == "Vedtak om tilskudd"
    assert doc["content"]["language"] == "nb" and doc["propertyList"] == {"saksnr": "2026/17"}
    assert doc["published"] is not None and doc["read"] is None
    det = overview(lt, cid, tok(lt, OWNER), details=True)
    assert [h["status"] for h in det["statusHistory"]] == \
        ["Initialized", "ReadyForPublish", "Published"]
    # the sender's reads never mark it Fetched
    assert overview(lt, cid, tok(lt, OWNER))["status"] == "Published"


def test_requested_publish_time_holds_publication(lt):
    rid = resource(lt)
    [cid] = send(lt, rid, requestedPublishTime=iso_in(2.0), dueDateTime=iso_in(3600))
    time.sleep(0.5)
    assert overview(lt, cid, tok(lt, OWNER))["status"] == "ReadyForPublish"
    r = lt.get(f"{CORR}/{cid}", auth=rtok(lt, A))
    assert code(r, 404) == 1001                   # not visible to the recipient yet
    assert lt.get_json(CORR, query={"resourceId": rid, "role": "Recipient"},
                       auth=rtok(lt, A)) == {"ids": []}
    wait_status(lt, cid, "Published")


def test_list_by_role_reference_status_and_dates(lt):
    rid = resource(lt)
    first = send(lt, rid, sendersReference="one")[0]
    second = send(lt, rid, sendersReference="two", recipients=(ORG_URN + B,))[0]
    wait_status(lt, second, "Published")
    wait_status(lt, first, "Published")

    def ids(auth, **q):
        r = lt.get(CORR, query=dict(resourceId=rid, **q), auth=auth)
        assert r.status == 200, r.body
        assert set(r.json()) == {"ids"}
        return r.json()["ids"]

    assert ids(tok(lt, OWNER), role="Sender") == [second, first]     # newest first
    assert ids(tok(lt, OWNER), role="Sender", sendersReference="one") == [first]
    assert ids(rtok(lt, A), role="Recipient") == [first]
    assert ids(rtok(lt, B), role="Recipient") == [second]
    assert ids(rtok(lt, A), role="Sender") == []
    overview(lt, first, rtok(lt, A))
    # Fetched rows are a table apart: the status filter never finds them
    assert ids(tok(lt, OWNER), role="Sender", status="Fetched") == []
    assert ids(tok(lt, OWNER), role="Sender", status="Published") == [second, first]
    assert ids(tok(lt, OWNER), role="Sender", status="Initialized") == [second, first]
    assert ids(rtok(lt, A), role="Recipient", status="Initialized") == []
    assert ids(rtok(lt, A), role="RecipientAndSender") == [first]
    assert ids(tok(lt, OWNER), role="Sender", to=iso_in(-3600)) == []
    r = lt.get(CORR, query={"resourceId": rid}, auth=tok(lt, OWNER))
    assert "role" in fields(r)
    r = lt.get(CORR, query={"resourceId": "no-such", "role": "Sender"}, auth=tok(lt, OWNER))
    assert code(r, 401) == 4001
    closed = resource(lt, recipients=[B])
    r = lt.get(CORR, query={"resourceId": closed, "role": "Recipient"}, auth=rtok(lt, C))
    assert code(r, 401) == 4001
    r = lt.get(CORR, query={"resourceId": rid, "role": "Sender", "from": iso_in(10),
                            "to": iso_in(-10)}, auth=tok(lt, OWNER))
    assert code(r, 400) == 1027


# -- validations ---------------------------------------------------------------------------

@pytest.mark.parametrize("change,field", [
    ({"recipients": ["991825827"]}, "Recipients"),                 # bare org: not accepted
    ({"recipients": ["0192:12345"]}, "Recipients"),
    ({"recipients": ["01018000056"]}, "Recipients"),               # check digits
    ({"recipients": []}, "Recipients"),
    ({"recipients": [ORG_URN + A] * 501}, "Recipients"),
    ({"correspondence.sendersReference": None}, "Correspondence.SendersReference"),
    ({"correspondence.resourceId": "r" * 256}, "Correspondence.ResourceId"),
    ({"correspondence.content.messageTitle": ""}, "Correspondence.Content.MessageTitle"),
    ({"correspondence.content.messageTitle": "   "}, "Correspondence.Content.MessageTitle"),
    ({"correspondence.content.messageTitle": "t" * 256},
     "Correspondence.Content.MessageTitle"),
    ({"correspondence.content.messageSummary": "s" * 256},
     "Correspondence.Content.MessageSummary"),
    ({"correspondence.content.messageBody": "b" * 30001},
     "Correspondence.Content.MessageBody"),
    ({"correspondence.propertyList": {"k": "v" * 301}}, "Correspondence.PropertyList"),
    ({"correspondence.propertyList": {str(i): "v" for i in range(11)}},
     "Correspondence.PropertyList"),
    ({"idempotentKey": "00000000-0000-0000-0000-000000000000"}, "IdempotentKey"),
    ({"correspondence.notification": {"emailSubject": "x"}},
     "Correspondence.Notification.NotificationChannel"),
])
def test_model_validation_names_the_field(lt, change, field):
    doc = body(resource(lt))
    for path, value in change.items():
        node, keys = doc, path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    r = lt.request("POST", CORR, body=doc, auth=tok(lt, OWNER))
    errors = fields(r)
    assert field in errors, errors


@pytest.mark.parametrize("change,number", [
    ({"content": {"messageTitle": "<b>Tittel</b>"}}, 1002),
    ({"content": {"messageTitle": "Et **viktig** vedtak"}}, 1002),
    ({"content": {"messageTitle": "# Overskrift"}}, 1002),
    ({"content": {"messageSummary": "Se [lenke](https://altinn.no)"}}, 1004),
    ({"content": {"messageBody": "Hei <script>alert(1)</script>"}}, 1003),
    ({"content": {"language": "de"}}, 1023),
    ({"messageSender": "<i>Etaten</i>"}, 1039),
    ({"dueDateTime": "2020-01-01T00:00:00Z"}, 1008),
    ({"dueDateTime": iso_in(3600), "requestedPublishTime": iso_in(7200)}, 1009),
    ({"isConfirmationNeeded": True}, 1016),
    ({"replyOptions": [{"linkURL": "http://insecure.example.com", "linkText": "x"}]}, 1035),
    ({"notification": {"notificationChannel": "Email", "emailSubject": "Hei"}}, 3002),
    ({"notification": {"notificationChannel": "Sms"}}, 3004),
    ({"notification": {"notificationChannel": "Sms", "smsBody": "x",
                       "overrideRegisteredContactInformation": True}}, 3022),
    ({"recipients": (ORG_URN + A, ORG_URN + B),
      "notification": {"notificationChannel": "Sms", "smsBody": "x",
                       "customRecipients": [{"mobileNumber": "+4799999999"}]}}, 3017),
    ({"isConfidential": True}, 1061),
    ({"notification": {"notificationChannel": "EmailAndSms", "smsBody": "x"}}, 3024),
    ({"content": {"attachments": [{"fileName": "a.pdf", "sendersReference": "x"}]}}, 1005),
    ({"existing": [str(uuid.uuid4())]}, 1007),
    ({"recipients": (ORG_URN + A, "0192:" + A)}, 1006),
    ({"recipients": (ORG_URN + "123456789",)}, 1029),
    ({"recipients": (ORG_URN + A, ORG_URN + B), "key": str(uuid.uuid4())}, 1047),
])
def test_handler_rules_answer_with_their_numbers(lt, change, number):
    r = lt.request("POST", CORR, body=body(resource(lt), **change), auth=tok(lt, OWNER))
    assert code(r, 400 if number not in (1029,) else 404) == number, r


def org_numbers(n, start=31000000):
    """n organisation numbers with valid MOD11 check digits."""
    out, base = [], start
    while len(out) < n:
        digits = str(base)
        check = 11 - sum(int(d) * w for d, w in zip(digits, (3, 2, 7, 6, 5, 4, 3, 2))) % 11
        if check != 10:
            out.append(digits + str(0 if check == 11 else check))
        base += 1
    return out


def test_five_hundred_recipients_in_one_request(lt):
    rid = resource(lt)
    orgs = org_numbers(500)
    out = initialize(lt, body(rid, recipients=[ORG_URN + o for o in orgs],
                              dueDateTime=iso_in(86400)))
    assert [c["recipient"] for c in out["correspondences"]] == [ORG_URN + o for o in orgs]
    deadline = time.monotonic() + 20
    while True:
        rows = lt.get_json(ADMIN + "/correspondences", query={"resourceId": rid}, auth=False)
        if all(r["status"] == "Published" for r in rows):
            break
        assert time.monotonic() < deadline, "not all published"
        time.sleep(0.1)
    assert len(rows) == 500
    ids = lt.get_json(CORR, query={"resourceId": rid, "role": "Sender"}, auth=tok(lt, OWNER))
    assert len(ids["ids"]) == 500


def test_markdown_body_and_plain_lists_are_accepted(lt):
    rid = resource(lt)
    doc = initialize(lt, body(rid, content={
        "messageTitle": "Vedtak - del 1 (2026)",
        "messageSummary": "- punkt en",
        "messageBody": "## Tittel\n\n* en\n* to\n\n[Altinn](https://altinn.no) og `<kode>`"}))
    assert doc["correspondences"][0]["status"] == "Initialized"


def test_auth_refusals(lt):
    rid = resource(lt)
    doc = body(rid)
    r = lt.request("POST", CORR, body=doc, auth=False)
    assert r.status == 401
    r = lt.request("POST", CORR, body=doc, auth=rtok(lt, OWNER))          # read scope only
    assert r.status == 403 and r.body == b""
    r = lt.request("POST", CORR, body=doc, auth=tok(lt, A))               # not the owner
    assert code(r, 401) == 4001
    r = lt.request("POST", CORR, body=body("no-such-resource"), auth=tok(lt, OWNER))
    assert code(r, 400) == 1036
    secret = resource(lt, isConfidential=True)
    assert code(lt.request("POST", CORR, body=body(secret), auth=tok(lt, OWNER)), 400) == 1060
    assert initialize(lt, body(secret, isConfidential=True))["correspondences"]
    other = resource(lt, resourceType="GenericAccessResource")
    r = lt.request("POST", CORR, body=body(other), auth=tok(lt, OWNER))
    assert code(r, 400) == 4010
    r = lt.request("POST", CORR, body=doc, auth=tok(lt, OWNER), content_type="text/plain")
    assert r.status == 415
    r = lt.request("POST", CORR, body=doc, auth=tok(lt, OWNER), headers={"Accept": "text/xml"})
    assert r.status == 406
    # a recipient sees only its own
    [cid] = send(lt, rid)
    wait_status(lt, cid, "Published")
    r = lt.get(f"{CORR}/{cid}", auth=rtok(lt, B))
    assert code(r, 401) == 4001
    r = lt.get(f"{CORR}/{cid}", auth=tok(lt, A, "altinn:broker.read"))
    assert r.status == 403
    # a resource with an access list refuses recipients not on it
    closed = resource(lt, recipients=[B])
    [cid] = send(lt, closed)
    wait_status(lt, cid, "Published")
    assert lt.get(f"{CORR}/{cid}", auth=rtok(lt, A)).status == 401


# -- recipient actions and the status machine ---------------------------------------------

def test_recipient_walks_published_fetched_read_confirmed(lt, settings):
    settings(confirmDelay=1.0)
    rid = resource(lt)
    [cid] = send(lt, rid, isConfirmationNeeded=True, dueDateTime=iso_in(3600))
    wait_status(lt, cid, "Published")
    me = rtok(lt, A)
    r = lt.request("POST", f"{CORR}/{cid}/markasread", auth=me)
    assert code(r, 400) == 1024
    r = lt.request("POST", f"{CORR}/{cid}/confirm", auth=me)
    assert code(r, 400) == 1025
    r = lt.request("DELETE", f"{CORR}/{cid}/purge", auth=me)
    assert code(r, 400) == 1026
    assert overview(lt, cid, me)["status"] == "Published"   # Fetched is never the status
    overview(lt, cid, me, details=True)                     # debounced: no second entry
    r = lt.request("POST", f"{CORR}/{cid}/markasread", auth=me)
    assert r.status == 200 and r.json() == cid, r
    assert code(lt.request("POST", f"{CORR}/{cid}/markasread", auth=me), 400) == 1040
    doc = overview(lt, cid, tok(lt, OWNER))
    assert doc["status"] == "Read" and doc["read"] is not None
    r = lt.request("POST", f"{CORR}/{cid}/confirm", auth=me)
    assert r.status == 200 and r.json() == cid
    assert overview(lt, cid, tok(lt, OWNER))["status"] == "Read"      # asynchronous
    wait_status(lt, cid, "Confirmed")
    assert code(lt.request("POST", f"{CORR}/{cid}/confirm", auth=me), 400) == 1041
    hist = [h["status"] for h in overview(lt, cid, tok(lt, OWNER), True)["statusHistory"]]
    assert hist == ["Initialized", "ReadyForPublish", "Published", "Fetched", "Read",
                    "Confirmed"]
    # the sender cannot purge what was published; the recipient can once confirmed
    assert code(lt.request("DELETE", f"{CORR}/{cid}/purge", auth=tok(lt, OWNER)), 400) == 1013
    r = lt.request("DELETE", f"{CORR}/{cid}/purge", auth=me)
    assert r.status == 200 and r.json() == cid
    assert code(lt.get(f"{CORR}/{cid}", auth=me), 404) == 1001
    assert code(lt.get(f"{CORR}/{cid}", auth=tok(lt, OWNER)), 404) == 1001
    doc = overview(lt, cid, tok(lt, OWNER), details=True)   # details still answer the sender
    assert doc["status"] == "PurgedByRecipient"
    assert "PurgedByRecipient" not in [h["status"] for h in doc["statusHistory"]]
    assert code(lt.get(f"{CORR}/{cid}/details", auth=me), 404) == 1001


def test_content_marks_read_and_persons_see_their_own(lt):
    rid = resource(lt)
    [cid] = send(lt, rid, recipients=(PERSON,))
    wait_status(lt, cid, "Published")
    me = person_tok(lt)
    # HEAD is not GET: 405, and nothing is fetched or read
    for path in (f"{CORR}/{cid}", f"{CORR}/{cid}/content"):
        r = lt.request("HEAD", path, auth=me)
        assert (r.status, r.header("Allow")) == (405, "GET")
    hist = [h["status"] for h in overview(lt, cid, tok(lt, OWNER), True)["statusHistory"]]
    assert hist == ["Initialized", "ReadyForPublish", "Published"]
    r = lt.get(f"{CORR}/{cid}/content", auth=me)
    assert r.status == 200, r.body
    assert r.header("Content-Type").startswith("text/plain")
    assert r.body.decode() == "# Vedtak\n\nDere har fått **innvilget** tilskudd."
    hist = [h["status"] for h in overview(lt, cid, tok(lt, OWNER), True)["statusHistory"]]
    assert hist[-2:] == ["Fetched", "Read"]
    assert lt.get(f"{CORR}/{cid}/content", auth=rtok(lt, A)).status == 401


def test_sender_purges_before_publication(lt):
    rid = resource(lt)
    [cid] = send(lt, rid, requestedPublishTime=iso_in(60))
    r = lt.request("DELETE", f"{CORR}/{cid}/purge", auth=tok(lt, OWNER))
    assert r.status == 200 and r.json() == cid
    assert overview(lt, cid, tok(lt, OWNER), details=True)["status"] == "PurgedByAltinn"
    assert code(lt.request("DELETE", f"{CORR}/{cid}/purge", auth=tok(lt, OWNER)), 400) == 1014


# -- attachments ---------------------------------------------------------------------------

def test_shared_attachment_is_scanned_then_sent_and_downloaded(lt):
    rid = resource(lt)
    data = b"%PDF-1.4 vedlegg\n" * 100
    aid, doc = new_attachment(lt, rid, data)
    assert doc["attachmentId"] == aid and doc["status"] in ("UploadProcessing", "Published")
    r = lt.request("POST", CORR, body=body(rid, existing=[aid]), auth=tok(lt, OWNER))
    if doc["status"] == "UploadProcessing" and r.status == 400:
        assert r.json()["errorCode"] == 1018
    doc = wait_attachment(lt, aid, "Published")
    assert set(doc) == ATTACHMENT_KEYS and doc["statusText"] == "Published"
    assert doc["checksum"] == hashlib.md5(data).hexdigest()
    det = lt.get_json(f"{ATT}/{aid}/details", auth=tok(lt, OWNER))
    assert [h["status"] for h in det["statusHistory"]] == \
        ["Initialized", "UploadProcessing", "Published"]
    assert lt.get(f"{ATT}/{aid}/download", auth=tok(lt, OWNER)).body == data
    out = initialize(lt, body(rid, existing=[aid], recipients=(ORG_URN + A, ORG_URN + B)))
    assert out["attachmentIds"] == [aid]
    cid = out["correspondences"][0]["correspondenceId"]
    doc = wait_status(lt, cid, "Published")
    assert [a["id"] for a in doc["content"]["attachments"]] == [aid]
    r = lt.get(f"{CORR}/{cid}/attachment/{aid}/download", auth=rtok(lt, A))
    assert r.status == 200 and r.body == data
    assert r.header("Content-Disposition").startswith("inline")
    doc = overview(lt, cid, tok(lt, OWNER))
    assert (doc["status"], doc["statusText"]) == \
        ("AttachmentsDownloaded", f"Attachment {aid} has been downloaded")
    # no more sender download, no re-upload, no purge while linked
    assert code(lt.get(f"{ATT}/{aid}/download", auth=tok(lt, OWNER)), 400) == 2016
    r = lt.request("POST", f"{ATT}/{aid}/upload", body=b"x", auth=tok(lt, OWNER),
                   content_type="application/octet-stream")
    assert code(r, 400) == 2005                   # checked before 2003 (linked)
    assert code(lt.request("DELETE", f"{ATT}/{aid}", auth=tok(lt, OWNER)), 400) == 2007


def test_attachment_expiry(lt):
    rid = resource(lt)
    aid, _ = new_attachment(lt, rid, b"expiring")
    wait_attachment(lt, aid, "Published")
    [cid] = send(lt, rid, existing=[aid])
    wait_status(lt, cid, "Published")
    r = lt.request("POST", f"{ADMIN}/attachments/{aid}/expire", auth=False)
    assert r.status == 200 and r.json()["status"] == "Expired"
    doc = lt.get_json(f"{ATT}/{aid}", auth=tok(lt, OWNER))
    assert (doc["status"], doc["statusText"]) == ("Expired", "The attachment has expired")
    r = lt.get(f"{CORR}/{cid}/attachment/{aid}/download", auth=rtok(lt, A))
    assert code(r, 400) == 2020
    types = [e["type"].rsplit(".", 1)[1] for e in events(lt, rid, tok(lt, OWNER))]
    assert types.count("attachmentexpired") == 1
    r = lt.request("POST", CORR, body=body(rid, existing=[aid]), auth=tok(lt, OWNER))
    assert code(r, 400) == 1018


def test_attachment_refusals(lt):
    rid = resource(lt)

    def init(**kw):
        doc = {"resourceId": rid, "fileName": "a.pdf", "sendersReference": "s"}
        doc.update(kw)
        return lt.request("POST", ATT, body=doc, auth=tok(lt, OWNER))

    assert code(init(fileName="a.exe"), 400) == 2013
    assert code(init(fileName="a<b>.exe"), 400) == 2013         # the type is checked first
    assert code(init(fileName="a<b>.pdf"), 400) == 2012
    assert code(init(fileName="CON.pdf"), 400) == 2021
    assert code(init(fileName=" "), 400) == 2010
    assert code(init(expirationInDays=1), 400) == 2017
    assert "SendersReference" in fields(init(sendersReference=None))
    assert code(init(resourceId="nope"), 400) == 1036
    aid = init().json()
    r = lt.request("POST", f"{ATT}/{aid}/upload", body=b"abc", auth=tok(lt, OWNER),
                   content_type="application/json")
    assert r.status == 415
    r = lt.request("POST", f"{ATT}/{aid}/upload", body=b"abc", auth=tok(lt, OWNER),
                   content_type="application/octet-stream")
    assert r.status == 200
    r = lt.request("POST", f"{ATT}/{aid}/upload", body=b"abc", auth=tok(lt, OWNER),
                   content_type="application/octet-stream")
    assert code(r, 400) == 2005                       # no retry on the same id
    bad = init(checksum="0" * 32).json()
    r = lt.request("POST", f"{ATT}/{bad}/upload", body=b"abc", auth=tok(lt, OWNER),
                   content_type="application/octet-stream")
    assert code(r, 400) == 2008
    assert code(lt.get(f"{ATT}/{uuid.uuid4()}", auth=tok(lt, OWNER)), 404) == 2001
    assert code(lt.get(f"{ATT}/{aid}", auth=tok(lt, A)), 401) == 4001
    generic = resource(lt, resourceType="GenericAccessResource")
    assert init(resourceId=generic).status == 200              # attachments allow it
    assert code(init(resourceId=resource(lt, resourceType="AltinnApp")), 400) == 4009
    fresh = init().json()
    r = lt.request("POST", CORR, body=body(rid, existing=[fresh]), auth=tok(lt, OWNER))
    assert code(r, 400) == 1018
    r = lt.request("DELETE", f"{ATT}/{fresh}", auth=tok(lt, OWNER))
    assert r.status == 200 and r.json() == fresh
    assert code(lt.request("DELETE", f"{ATT}/{fresh}", auth=tok(lt, OWNER)), 400) == 2006


def multipart(fields, files):
    marker = "corr" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(f'--{marker}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f'{value}\r\n'.encode())
    for name, data in files:
        out.append(f'--{marker}\r\nContent-Disposition: form-data; name="attachments"; '
                   f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                   .encode() + data + b"\r\n")
    out.append(f"--{marker}--\r\n".encode())
    return b"".join(out), "multipart/form-data; boundary=" + marker


def test_initialize_and_upload_in_one_multipart_call(lt):
    rid = resource(lt)
    data = b"a,b\n1,2\n"
    form = [("correspondence.resourceId", rid), ("Correspondence.SendersReference", "m-1"),
            ("correspondence.content.language", "nn"),
            ("correspondence.content.messageTitle", "Med vedlegg"),
            ("correspondence.content.messageBody", "Sjå vedlegget."),
            ("correspondence.content.attachments[0].fileName", "tal.csv"),
            ("correspondence.content.attachments[0].sendersReference", "a-1"),
            ("correspondence.propertyList.saksnr", "7"),
            ("correspondence.isConfirmationNeeded", "false"),
            ("recipients[0]", ORG_URN + A), ("recipients[1]", PERSON)]
    payload, ctype = multipart(form, [("tal.csv", data)])
    r = lt.request("POST", CORR + "/upload", body=payload, auth=tok(lt, OWNER),
                   content_type=ctype)
    assert r.status == 200, r.body
    out = r.json()
    [aid] = out["attachmentIds"]
    assert [c["recipient"] for c in out["correspondences"]] == [ORG_URN + A,
                                                                 PERSON_URN + PERSON]
    cid = out["correspondences"][0]["correspondenceId"]
    doc = wait_status(lt, cid, "Published")
    assert doc["content"]["language"] == "nn" and doc["propertyList"] == {"saksnr": "7"}
    assert doc["content"]["attachments"][0]["fileName"] == "tal.csv"
    assert lt.get(f"{CORR}/{cid}/attachment/{aid}/download", auth=rtok(lt, A)).body == data
    payload, ctype = multipart(form, [("annet.csv", data)])
    r = lt.request("POST", CORR + "/upload", body=payload, auth=tok(lt, OWNER),
                   content_type=ctype)
    assert code(r, 400) == 1005
    bad = [(k, "x" * 256 if k.endswith("messageTitle") else v) for k, v in form]
    payload, ctype = multipart(bad, [("tal.csv", data)])
    r = lt.request("POST", CORR + "/upload", body=payload, auth=tok(lt, OWNER),
                   content_type=ctype)
    assert "Correspondence.Content.MessageTitle" in fields(r)


# -- idempotency ---------------------------------------------------------------------------

def test_idempotent_key_refuses_a_repeat_and_finds_the_first(lt):
    rid = resource(lt)
    key = str(uuid.uuid4())
    [cid] = send(lt, rid, key=key)
    r = lt.request("POST", CORR, body=body(rid, key=key, sendersReference="other"),
                   auth=tok(lt, OWNER))
    doc = problem(r, 409)
    assert (doc["code"], doc["errorCode"]) == ("CORR-01034", 1034)
    assert cid not in r.body.decode()                 # the 409 does not name the id
    found = lt.get_json(CORR, query={"resourceId": rid, "role": "Sender",
                                     "idempotentKey": key}, auth=tok(lt, OWNER))
    assert found == {"ids": [cid]}
    # purging does not release the key
    wait_status(lt, cid, "Published")
    overview(lt, cid, rtok(lt, A))
    lt.request("DELETE", f"{CORR}/{cid}/purge", auth=rtok(lt, A))
    assert code(lt.request("POST", CORR, body=body(rid, key=key), auth=tok(lt, OWNER)),
                409) == 1034
    rows = lt.get_json(ADMIN + "/correspondences", query={"resourceId": rid}, auth=False)
    assert len(rows) == 1


# -- events --------------------------------------------------------------------------------

def test_events_by_poll(lt, settings):
    settings(confirmDelay=0.05)
    rid = resource(lt)
    [cid] = send(lt, rid, isConfirmationNeeded=True, dueDateTime=iso_in(3600))
    wait_status(lt, cid, "Published")
    theirs = wait_events(lt, rid, rtok(lt, A), ["correspondencepublished"])
    e = theirs[0]
    assert e["resourceinstance"] == cid and e["resource"] == "urn:altinn:resource:" + rid
    assert e["subject"] == ORG_URN + A and e["alternativesubject"] == "/organisation/" + A
    assert e["source"] == lt.url + "/correspondence/api/v1/correspondence"
    assert e["specversion"] == "1.0" and "data" not in e
    overview(lt, cid, rtok(lt, A))
    lt.request("POST", f"{CORR}/{cid}/markasread", auth=rtok(lt, A))
    lt.request("POST", f"{CORR}/{cid}/confirm", auth=rtok(lt, A))
    wait_status(lt, cid, "Confirmed")
    mine = wait_events(lt, rid, tok(lt, OWNER), [
        "correspondenceinitialized", "correspondencepublished", "correspondencereceiverread",
        "correspondencereceiverconfirmed"])
    assert mine[0]["subject"] == ORG_URN + OWNER
    assert events(lt, rid, rtok(lt, B)) == []
    only = events(lt, rid, tok(lt, OWNER), subject=ORG_URN + A)
    assert [x["type"] for x in only] == ["no.altinn.correspondence.correspondencepublished"]
    r = lt.get(EVENTS, query={"resource": "urn:altinn:resource:" + rid, "after": "0"},
               auth=tok(lt, OWNER, "altinn:correspondence.write"))
    assert r.status == 403


def test_due_date_tells_the_recipient_what_never_happened(lt):
    rid = resource(lt)
    [cid] = send(lt, rid, isConfirmationNeeded=True, dueDateTime=iso_in(2.0))
    got = wait_events(lt, rid, rtok(lt, A), ["correspondencepublished",
                                             "correspondencereceiverneverread",
                                             "correspondencereceiverneverconfirmed"])
    assert {e["resourceinstance"] for e in got} == {cid}
    assert {e["subject"] for e in got} == {ORG_URN + A}


def test_notification_orders_and_their_event(lt):
    rid = resource(lt)
    note = {"notificationTemplate": "CustomMessage", "notificationChannel": "Email",
            "emailSubject": "Ny melding", "emailBody": "Du har fått en melding",
            "sendReminder": True, "reminderEmailSubject": "Påminnelse",
            "reminderEmailBody": "Husk meldingen"}
    out = initialize(lt, body(rid, notification=note))
    [row] = out["correspondences"]
    assert [(n["isReminder"], n["status"]) for n in row["notifications"]] == \
        [(False, "Success"), (True, "Success")]
    order = row["notifications"][0]["orderId"]
    doc = wait_status(lt, row["correspondenceId"], "Published")
    assert doc["notifications"] == [{"notificationOrderId": n["orderId"],
                                     "isReminder": n["isReminder"]}
                                    for n in row["notifications"]]
    got = wait_events(lt, rid, tok(lt, OWNER), ["correspondenceinitialized",
                                                "correspondencepublished",
                                                "notificationcreated"])
    assert got[2]["resourceinstance"] == order
    assert got[2]["source"] == lt.url + "/correspondence/api/v1/notification"
    assert got[2]["subject"] == ORG_URN + OWNER
    del note["reminderEmailBody"]
    r = lt.request("POST", CORR, body=body(rid, notification=note), auth=tok(lt, OWNER))
    assert code(r, 400) == 3003


def test_attachment_events(lt, settings):
    rid = resource(lt)
    aid, _ = new_attachment(lt, rid, b"one")
    wait_attachment(lt, aid, "Published")
    settings(malware=1)
    bad, _ = new_attachment(lt, rid, b"two")
    doc = wait_attachment(lt, bad, "Failed")
    assert doc["statusText"].startswith("Malware scan failed")
    got = wait_events(lt, rid, tok(lt, OWNER), [
        "attachmentinitialized", "attachmentpublished", "attachmentinitialized",
        "attachmentuploadfailed"])
    assert got[1]["source"] == lt.url + "/correspondence/api/v1/attachment"
    assert got[1]["resourceinstance"] == aid


def test_events_by_webhook(lt):
    rid = resource(lt)
    rec = Receiver()
    try:
        r = lt.request("POST", "/events/api/v1/subscriptions", auth=rtok(lt, B), body={
            "endPoint": rec.url, "resourceFilter": "urn:altinn:resource:" + rid,
            "subjectFilter": ORG_URN + B})
        assert r.status == 201, r
        deadline = time.monotonic() + 10
        while not lt.get_json("/_localtest/subscriptions", auth=False)[-1]["validated"]:
            assert time.monotonic() < deadline, "subscription not validated"
            time.sleep(0.02)
        [cid] = send(lt, rid, recipients=(ORG_URN + B,))
        got = rec.wait(1)
        assert [(e["type"], e["resourceinstance"], e["subject"]) for e in got] == \
            [("no.altinn.correspondence.correspondencepublished", cid, ORG_URN + B)]
    finally:
        lt.request("DELETE", "/_localtest/subscriptions", auth=False)
        rec.close()


# -- hostile switches ----------------------------------------------------------------------

def test_lost_answer_to_initialize_leaves_a_correspondence_to_find(lt, settings):
    rid = resource(lt)
    key = str(uuid.uuid4())
    lt.fault(CORR + "$", method="POST", status=503, after=True)
    r = lt.request("POST", CORR, body=body(rid, key=key), auth=tok(lt, OWNER))
    assert r.status == 503
    lt.fault(CORR + "$", method="POST", drop=True, after=True)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        lt.request("POST", CORR, body=body(rid, sendersReference="lost2"),
                   auth=tok(lt, OWNER))
    # the retry with the same key is refused, and the key finds the one made
    assert code(lt.request("POST", CORR, body=body(rid, key=key), auth=tok(lt, OWNER)),
                409) == 1034
    ids = lt.get_json(CORR, query={"resourceId": rid, "role": "Sender",
                                   "idempotentKey": key}, auth=tok(lt, OWNER))["ids"]
    assert len(ids) == 1
    refs = sorted(r["sendersReference"] for r in
                  lt.get_json(ADMIN + "/correspondences", query={"resourceId": rid},
                              auth=False))
    assert refs == ["lost2", "ref-1"]


def test_reserved_and_failing_recipients(lt, settings):
    rid = resource(lt)
    r = lt.request("POST", CORR, body=body(rid, recipients=(RESERVED,)), auth=tok(lt, OWNER))
    assert code(r, 422) == 1030
    assert RESERVED in r.json()["detail"]
    out = initialize(lt, body(rid, recipients=(RESERVED,), ignoreReservation=True))
    assert out["correspondences"][0]["status"] == "Initialized"
    settings(failRecipients=[B])
    out = initialize(lt, body(rid, recipients=(ORG_URN + A, ORG_URN + B, RESERVED)))
    rows = {c["recipient"]: c for c in out["correspondences"]}
    assert rows[PERSON_URN + RESERVED]["status"] == "Reserved"
    wait_status(lt, rows[ORG_URN + A]["correspondenceId"], "Published")
    failed = wait_status(lt, rows[ORG_URN + B]["correspondenceId"], "Failed")
    assert failed["published"] is None
    assert failed["statusText"] == (f"Party for recipient {ORG_URN + B} not found in Altinn "
                                    "Register when publishing")
    time.sleep(0.2)
    assert overview(lt, rows[PERSON_URN + RESERVED]["correspondenceId"],
                    tok(lt, OWNER))["status"] == "Reserved"
    types = [e["type"].rsplit(".", 1)[1] for e in events(lt, rid, tok(lt, OWNER))]
    assert types.count("correspondencepublishfailed") == 1
    # a person who reserves between initialize and publication: Failed
    settings(publishDelay=2.0)
    [late] = send(lt, rid, recipients=(PERSON,))
    settings(reserved=[RESERVED, PERSON])
    doc = wait_status(lt, late, "Failed")
    assert "reserverasjonsregisteret" in doc["statusText"]
    settings(unknownRecipients=[C])
    r = lt.request("POST", CORR, body=body(rid, recipients=(ORG_URN + C,)),
                   auth=tok(lt, OWNER))
    assert code(r, 404) == 1029


def test_malware_in_an_attachment_fails_the_correspondence(lt, settings):
    settings(malware=1, scanDelay=1.0)
    rid = resource(lt)
    form = [("correspondence.resourceId", rid), ("correspondence.sendersReference", "m"),
            ("correspondence.content.messageTitle", "t"),
            ("correspondence.content.messageBody", "b"),
            ("correspondence.content.attachments[0].fileName", "x.txt"),
            ("correspondence.content.attachments[0].sendersReference", "a"),
            ("recipients[0]", ORG_URN + A)]
    payload, ctype = multipart(form, [("x.txt", b"EICAR")])
    r = lt.request("POST", CORR + "/upload", body=payload, auth=tok(lt, OWNER),
                   content_type=ctype)
    assert r.status == 200, r.body
    cid = r.json()["correspondences"][0]["correspondenceId"]
    assert overview(lt, cid, tok(lt, OWNER))["status"] == "Initialized"
    doc = wait_status(lt, cid, "Failed")
    assert doc["statusText"] == "Failed"
    # FailAssociatedCorrespondences publishes no correspondence event: only the attachment's
    types = [e["type"].rsplit(".", 1)[1] for e in events(lt, rid, tok(lt, OWNER))]
    assert "attachmentuploadfailed" in types
    assert "correspondencepublishfailed" not in types


def test_slow_publication(lt, settings):
    settings(publishDelay=1.0)
    rid = resource(lt)
    [cid] = send(lt, rid)
    time.sleep(0.4)
    assert overview(lt, cid, tok(lt, OWNER))["status"] == "ReadyForPublish"
    wait_status(lt, cid, "Published")
    # a recipient who looks at a late one publishes it on the spot (details do not)
    settings(publishDelay=30.0)
    [late] = send(lt, rid)
    assert code(lt.get(f"{CORR}/{late}/details", auth=rtok(lt, A)), 404) == 1001
    assert overview(lt, late, rtok(lt, A))["status"] == "Published"
    assert overview(lt, late, tok(lt, OWNER))["status"] == "Published"


def test_admin_settings_refuse_bad_values(lt):
    r = lt.request("PUT", ADMIN + "/settings", body={"publishDelay": -1}, auth=False)
    assert r.status == 400
    r = lt.request("PUT", ADMIN + "/settings", body={"nope": 1}, auth=False)
    assert r.status == 400
    r = lt.request("POST", ADMIN + "/resources", body={"resourceId": "x",
                                                       "serviceOwner": "123"}, auth=False)
    assert r.status == 400
