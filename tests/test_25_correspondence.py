"""Altinn Correspondence as folders (docs/correspondence.md): a message
folder renamed into correspondence/<resourceId>/outbox/ becomes one
correspondence per recipient, exactly once; its receipt goes to
sent/<name>.json, a message refused before sending to failed/ with
<name>.error.json naming the field. Checked against what the local
platform's Correspondence stored (its admin list: title, body, recipient,
idempotentKey)."""

import errno
import hashlib
import json
import os
import time

import pytest

from outbox_util import expect_errno, wait_for
from procs import write_secret


RESOURCE = "altinnfs-demo-correspondence"
ME = "991825827"            # ttd, the resource's owner and so its sender
ORG = "313000001"           # an organisation recipient
PERSON = "17058500186"      # a person recipient (both check digits right)
ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"
CORR = "/correspondence/api/v1/correspondence"
SCOPES = "altinn:serviceowner/instances.read altinn:correspondence.write"


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    r = own_platform.request("PUT", "/_localtest/correspondence/settings", auth=False,
                             body={"publishDelay": 0.2, "scanDelay": 0.2, "malware": 0,
                                   "reserved": [], "failRecipients": [],
                                   "unknownRecipients": []})
    assert r.status in (200, 204), r
    yield own_platform
    own_platform.clear_faults()


@pytest.fixture
def token_file(p, tmp_path):
    r = p.get("/Home/GetTestOrgToken/ttd", auth=False,
              query={"orgNumber": ME, "scopes": SCOPES})
    assert r.status == 200, r
    path = tmp_path / "corr-token"
    write_secret(path, r.body.decode().strip() + "\n")
    return path


def start_mount(mount, p, token_file, **kw):
    return mount(localtest=p, token_file=str(token_file),
                 correspondence_resources=RESOURCE, timeout=3, outbox_retry_max=1, **kw)


@pytest.fixture
def m(mount, p, token_file):
    return start_mount(mount, p, token_file)


def area(m, name):
    return m.path / "correspondence" / RESOURCE / name


def stored(p, reference):
    """The correspondences the platform holds whose sendersReference is reference."""
    r = p.get("/_localtest/correspondence/correspondences", auth=False,
              query={"resourceId": RESOURCE})
    assert r.status == 200, r
    return [c for c in r.json() if c["sendersReference"] == reference]


def write_message(m, name, markdown, recipients, meta=None, attachments=None):
    """Written under a dot-name in outbox/, then renamed into place."""
    draft = area(m, "outbox") / ("." + name)
    draft.mkdir()
    if attachments:
        (draft / "attachments").mkdir()
        for fname, data in attachments.items():
            (draft / "attachments" / fname).write_bytes(data)
    (draft / "message.md").write_text(markdown)
    (draft / "recipients").write_text("".join(r + "\n" for r in recipients))
    if meta is not None:
        (draft / "meta.json").write_text(json.dumps(meta))
    os.rename(draft, area(m, "outbox") / name)


def wait_receipt(m, name, timeout=30):
    """The receipt once it is there (ENOENT until then). It is rewritten
    as statuses change (a rename over it); an open racing that gets the
    old or the new file: the mount answers ESTALE for the replaced one and
    the kernel looks the name up again."""
    path = area(m, "sent") / (name + ".json")
    found = []

    def read():
        try:
            found[:] = [json.loads(path.read_bytes())]
        except FileNotFoundError:
            return False
        return True
    wait_for(read, timeout, f"the receipt {path}")
    return found[0]


def wait_letter(m, name, timeout=30):
    path = area(m, "failed") / (name + ".error.json")
    wait_for(path.exists, timeout, f"the dead letter {path}")
    return json.loads(path.read_bytes())


# ---- the tree

def test_tree_and_readme(m):
    assert os.listdir(m.path / "correspondence") == [RESOURCE]
    assert sorted(os.listdir(m.path / "correspondence" / RESOURCE)) == [
        "events", "failed", "outbox", "sent", "status.json"]
    readme = (m.path / "README.txt").read_text()
    assert "correspondence/<resourceId>/outbox/<name>/" in readme
    expect_errno(errno.EPERM, (area(m, "outbox") / "loose.txt").write_bytes, b"x")


# ---- sending

def test_folder_becomes_one_correspondence_per_recipient(m, p):
    body = "Hei,\n\nvedtaket ditt er **klart**.\n\n- punkt en\n- punkt to\n"
    write_message(m, "vedtak-1", "# Vedtak om tilskudd\n\n" + body, [ORG, PERSON],
                  meta={"summary": "Kort om vedtaket", "propertyList": {"sak": "2026/17"}})
    receipt = wait_receipt(m, "vedtak-1")
    rows = stored(p, "vedtak-1")
    assert sorted(c["recipient"] for c in rows) == sorted([ORG_URN + ORG, PERSON_URN + PERSON])
    for c in rows:
        assert c["content"]["messageTitle"] == "Vedtak om tilskudd"
        assert c["content"]["messageBody"] == body
        assert c["content"]["messageSummary"] == "Kort om vedtaket"
        assert c["content"]["language"] == "nb"
        assert c["propertyList"] == {"sak": "2026/17"}
        assert c["resourceId"] == RESOURCE
    # the receipt: one id per recipient, each the platform's
    assert receipt["resourceId"] == RESOURCE and receipt["name"] == "vedtak-1"
    by_urn = {c["recipient"]: c for c in rows}
    assert sorted(receipt["recipients"]) == sorted([ORG, PERSON])
    for rcp, urn in ((ORG, ORG_URN + ORG), (PERSON, PERSON_URN + PERSON)):
        assert receipt["recipients"][rcp]["correspondenceId"] == by_urn[urn]["correspondenceId"]
        assert receipt["recipients"][rcp]["status"] in ("Initialized", "ReadyForPublish",
                                                        "Published")
    # one key per recipient, and the folder is gone from outbox/
    assert len({c["idempotentKey"] for c in rows}) == 2
    # the receipt first, then the folder leaves outbox/
    wait_for(lambda: not (area(m, "outbox") / "vedtak-1").exists(), 10, "the folder to go")


def wait_statuses(m, name, want, timeout=30):
    path = area(m, "sent") / (name + ".json")

    def done():
        doc = json.loads(path.read_bytes())
        return {r: v.get("status") for r, v in doc["recipients"].items()} == want
    wait_for(done, timeout, f"statuses {want} in {path}")
    return json.loads(path.read_bytes())


def test_receipt_follows_publication(m, p):
    r = p.request("PUT", "/_localtest/correspondence/settings", auth=False,
                  body={"failRecipients": [ORG]})
    assert r.status in (200, 204), r
    write_message(m, "publisert", "# Publisert\nB\n", [ORG, PERSON])
    wait_receipt(m, "publisert")
    receipt = wait_statuses(m, "publisert", {ORG: "Failed", PERSON: "Published"})
    for c in stored(p, "publisert"):
        rcp = c["recipient"].rsplit(":", 1)[1]
        assert c["status"] == receipt["recipients"][rcp]["status"]
        assert receipt["recipients"][rcp]["correspondenceId"] == c["correspondenceId"]


def test_folder_written_in_place_is_not_sent(m, p):
    d = area(m, "outbox") / "på-stedet"
    d.mkdir()
    (d / "message.md").write_text("# Halvferdig\n\nbrød")
    (d / "recipients").write_text(ORG + "\n")
    time.sleep(1.5)
    assert stored(p, "på-stedet") == []
    assert not (area(m, "sent") / "på-stedet.json").exists()
    # a rename away and back sends it
    os.rename(d, area(m, "outbox") / ".på-stedet")
    os.rename(area(m, "outbox") / ".på-stedet", d)
    receipt = wait_receipt(m, "på-stedet")
    [c] = stored(p, "på-stedet")
    assert receipt["recipients"][ORG]["correspondenceId"] == c["correspondenceId"]
    assert c["content"]["messageBody"] == "brød"


def test_senders_reference_and_language_from_meta(m, p):
    write_message(m, "brev", "# Letter\nBody text\n", [ORG],
                  meta={"sendersReference": "ref-77", "language": "en"})
    wait_receipt(m, "brev")
    [c] = stored(p, "ref-77")
    assert c["content"]["language"] == "en"
    assert c["content"]["messageTitle"] == "Letter"


def test_reserved_person_refused_others_sent(m, p):
    reserved = "02056610076"  # seeded as reserved against digital mail
    r = p.request("PUT", "/_localtest/correspondence/settings", auth=False,
                  body={"reserved": [reserved]})
    assert r.status in (200, 204), r
    write_message(m, "delvis", "# Delvis\nTil to.\n", [reserved, ORG])
    receipt = wait_receipt(m, "delvis")
    [c] = stored(p, "delvis")
    assert c["recipient"] == ORG_URN + ORG
    assert receipt["recipients"][ORG]["correspondenceId"] == c["correspondenceId"]
    refused = receipt["recipients"][reserved]
    assert refused["status"] == "Refused" and refused["httpStatus"] == 422
    assert "correspondenceId" not in refused


def test_every_recipient_refused_goes_to_failed(m, p):
    reserved = "02056610076"
    r = p.request("PUT", "/_localtest/correspondence/settings", auth=False,
                  body={"reserved": [reserved]})
    assert r.status in (200, 204), r
    write_message(m, "ingen", "# Ingen\nTil ingen.\n", [reserved])
    letter = wait_letter(m, "ingen")
    assert letter["recipients"][reserved]["httpStatus"] == 422
    assert (area(m, "failed") / "ingen" / "recipients").read_text() == reserved + "\n"
    assert stored(p, "ingen") == []


# ---- attachments

def platform_attachments(p, reference):
    r = p.get("/_localtest/correspondence/attachments", auth=False)
    assert r.status == 200, r
    return [a for a in r.json() if a["sendersReference"] == reference]


def test_attachments_uploaded_once_and_linked(m, p):
    files = {"vedtak.pdf": b"%PDF-1.4\n" + os.urandom(100_000), "vilkaar.txt": b"vilkar\n" * 50}
    mark = p.mark()
    write_message(m, "med-vedlegg", "# Med vedlegg\nSe vedlagt.\n", [ORG, PERSON],
                  attachments=files)
    receipt = wait_receipt(m, "med-vedlegg")
    atts = platform_attachments(p, "med-vedlegg")
    assert sorted(a["fileName"] for a in atts) == sorted(files)
    by_name = {a["fileName"]: a for a in atts}
    for fname, data in files.items():
        a = by_name[fname]
        assert a["checksum"] == hashlib.md5(data).hexdigest()
        assert a["status"] == "Published"
    # one upload per file, however many recipients
    uploads = [e for e in p.since(mark)
               if e["method"] == "POST" and e["path"].endswith("/upload")
               and "/attachment/" in e["path"]]
    assert len(uploads) == 2, uploads
    rows = stored(p, "med-vedlegg")
    assert len(rows) == 2
    for c in rows:
        assert sorted(x["fileName"] for x in c["content"]["attachments"]) == sorted(files)
        rcp = c["recipient"].rsplit(":", 1)[1]
        assert receipt["recipients"][rcp]["correspondenceId"] == c["correspondenceId"]


def attachment_uploads(p, mark):
    return [e for e in p.since(mark) if e["method"] == "POST"
            and "/correspondence/api/v1/attachment/" in e["path"]
            and e["path"].endswith("/upload")]


def test_lost_upload_answer_is_settled_by_status(m, p):
    mark = p.mark()
    p.fault("/correspondence/api/v1/attachment/*/upload$", method="POST", status=503)
    write_message(m, "tapt-opplasting", "# T\nB\n", [ORG], attachments={"a.txt": b"abc\n"})
    wait_receipt(m, "tapt-opplasting")
    [a] = platform_attachments(p, "tapt-opplasting")
    assert a["status"] == "Published"
    # the first upload was refused 503 before it was taken; its status
    # (Initialized) sent it again, once
    assert [e["status"] for e in attachment_uploads(p, mark)] == [503, 200]
    assert "its status decides" in m.log()
    [c] = stored(p, "tapt-opplasting")
    assert [x["fileName"] for x in c["content"]["attachments"]] == ["a.txt"]


def test_kill9_while_scanning_sends_once(mount, p, token_file):
    r = p.request("PUT", "/_localtest/correspondence/settings", auth=False,
                  body={"scanDelay": 2.0})
    assert r.status in (200, 204), r
    m = start_mount(mount, p, token_file)
    mark = p.mark()
    write_message(m, "skann", "# Skann\nB\n", [ORG, PERSON],
                  attachments={"x.csv": b"a;b\n1;2\n"})
    # the upload answered (the log has it from its start: a kill while the
    # bytes still flow rightly uploads again, the attachment still Initialized)
    wait_for(lambda: [e["status"] for e in attachment_uploads(p, mark)] == [200], 20,
             "the upload")
    m.kill9()
    m2 = start_mount(mount, p, token_file, state_dir=str(m.state_dir))
    receipt = wait_receipt(m2, "skann")
    assert len(attachment_uploads(p, mark)) == 1
    assert len(platform_attachments(p, "skann")) == 1
    rows = stored(p, "skann")
    assert len(rows) == 2
    for c in rows:
        rcp = c["recipient"].rsplit(":", 1)[1]
        assert receipt["recipients"][rcp]["correspondenceId"] == c["correspondenceId"]


def test_lost_upload_answer_after_the_bytes_uploads_once(m, p):
    mark = p.mark()
    p.fault("/correspondence/api/v1/attachment/*/upload$", method="POST", status=503,
            after=True)
    write_message(m, "tapt-etter", "# T\nB\n", [ORG], attachments={"b.txt": b"def\n"})
    wait_receipt(m, "tapt-etter")
    [a] = platform_attachments(p, "tapt-etter")
    assert a["status"] == "Published"
    # the bytes arrived though the answer was lost: never uploaded again
    assert len(attachment_uploads(p, mark)) == 1
    assert "its status decides" in m.log()
    [c] = stored(p, "tapt-etter")
    assert [x["fileName"] for x in c["content"]["attachments"]] == ["b.txt"]


def test_bad_attachment_name_refused_before_sending(m, p):
    mark = p.mark()
    write_message(m, "exe", "# T\nB\n", [ORG], attachments={"program.exe": b"MZ"})
    letter = wait_letter(m, "exe")
    assert "attachments/program.exe" in letter["error"], letter
    assert [e for e in p.since(mark) if e["path"].startswith("/correspondence/")] == []


def test_malicious_attachment_fails_the_message(m, p):
    r = p.request("PUT", "/_localtest/correspondence/settings", auth=False, body={"malware": 1})
    assert r.status in (200, 204), r
    write_message(m, "virus", "# Virus\nB\n", [ORG], attachments={"virus.txt": b"EICAR"})
    letter = wait_letter(m, "virus")
    assert "attachments/virus.txt" in letter["error"] and "Failed" in letter["error"], letter
    assert stored(p, "virus") == []


# ---- local validation: the field named, nothing sent

@pytest.mark.parametrize("name,markdown,recipients,meta,field", [
    ("bad-check-digit", "# T\nB\n", [ORG, "313000002"], None, "recipients: line 2"),
    ("bad-person", "# T\nB\n", ["17058500187"], None, "recipients: line 1"),
    ("no-title", "Ingen tittel\nB\n", [ORG], None, "messageTitle"),
    ("empty-title", "#   \nB\n", [ORG], None, "messageTitle"),
    ("no-body", "# Tittel\n\n", [ORG], None, "messageBody"),
    ("no-recipients", "# T\nB\n", [], None, "recipients"),
    ("bad-language", "# T\nB\n", [ORG], {"language": "sv"}, "language"),
    ("unknown-field", "# T\nB\n", [ORG], {"colour": "blue"}, "colour"),
    ("long-summary", "# T\nB\n", [ORG], {"summary": "x" * 256}, "summary"),
    ("confirm-no-due", "# T\nB\n", [ORG], {"isConfirmationNeeded": True}, "dueDateTime"),
    # the platform's text rules: title and summary plain text, no HTML in the body
    ("title-strong", "# Vedtak **viktig**\nB\n", [ORG], None, "messageTitle"),
    ("title-link", "# Se [her](https://x.no)\nB\n", [ORG], None, "messageTitle"),
    ("title-html", "# Hei <b>du</b>\nB\n", [ORG], None, "messageTitle"),
    ("summary-heading", "# T\nB\n", [ORG], {"summary": "## Kort"}, "summary"),
    ("summary-emphasis", "# T\nB\n", [ORG], {"summary": "les _dette_ nå"}, "summary"),
    ("summary-html", "# T\nB\n", [ORG], {"summary": "Se <a href='x'>her</a>"}, "summary"),
    ("sender-html", "# T\nB\n", [ORG], {"messageSender": "<i>Etaten</i>"}, "messageSender"),
    ("body-html", "# T\nHei <script>alert(1)</script>\n", [ORG], None, "messageBody"),
])
def test_local_refusal_names_the_field(m, p, name, markdown, recipients, meta, field):
    mark = p.mark()
    write_message(m, name, markdown, recipients, meta)
    letter = wait_letter(m, name)
    assert field in letter["error"], letter
    assert (area(m, "failed") / name / "message.md").read_text() == markdown
    assert not (area(m, "outbox") / name).exists()
    assert not (area(m, "sent") / (name + ".json")).exists()
    assert [e for e in p.since(mark) if e["path"].startswith(CORR)] == []
    assert stored(p, name) == []


def test_plain_text_that_looks_like_markdown_is_sent(m, p):
    """What the text rules allow is not refused here: a_b, 3*4, a list in
    the summary, HTML inside code in the body; the platform takes it too."""
    title = "Vedtak 2026/17: snake_case og 3*4=12"
    body = "Svar med `<b>fet</b>` i kode.\n\n```\n<p>avsnitt</p>\n```\n"
    write_message(m, "nesten-markdown", "# %s\n%s" % (title, body), [ORG],
                  meta={"summary": "- punkt en\n- punkt to"})
    receipt = wait_receipt(m, "nesten-markdown")
    assert receipt["recipients"][ORG]["correspondenceId"]
    [c] = stored(p, "nesten-markdown")
    assert c["content"]["messageTitle"] == title
    assert c["content"]["messageBody"] == body


def status(m):
    return json.loads((m.path / "correspondence" / RESOURCE / "status.json").read_bytes())


def test_status_json_counts_pending_sent_failed(m, p):
    st = status(m)
    assert st["resourceId"] == RESOURCE
    assert st["outbox"]["pending"] == 0 and st["outbox"]["sent"] == 0
    # the platform fails every initialize for a while: the message waits
    p.fault(CORR + "$", method="POST", status=503, count=1000)
    write_message(m, "venter", "# Venter\nB\n", [ORG])
    wait_for(lambda: status(m)["outbox"]["retrying"] == 1, 20, "a retrying message")
    st = status(m)["outbox"]
    assert st["pending"] == 1 and st["oldest_pending_at"]
    assert "503" in st["last_error"]
    p.clear_faults()
    wait_receipt(m, "venter", timeout=60)
    write_message(m, "feil", "Ingen tittel\n", [ORG])
    wait_letter(m, "feil")
    st = status(m)["outbox"]
    assert (st["pending"], st["retrying"], st["sent"], st["failed"]) == (0, 0, 1, 1)
    assert st["last_error"] is None


# ---- exactly once

def test_lost_initialize_answer_makes_one_per_recipient(m, p):
    p.fault(CORR + "$", method="POST", status=503, after=True)
    write_message(m, "tapt-svar", "# Svar borte\nEn gang.\n", [ORG, PERSON])
    receipt = wait_receipt(m, "tapt-svar")
    rows = stored(p, "tapt-svar")
    assert sorted(c["recipient"] for c in rows) == sorted([ORG_URN + ORG, PERSON_URN + PERSON])
    by_urn = {c["recipient"]: c["correspondenceId"] for c in rows}
    assert receipt["recipients"][ORG]["correspondenceId"] == by_urn[ORG_URN + ORG]
    assert receipt["recipients"][PERSON]["correspondenceId"] == by_urn[PERSON_URN + PERSON]
    assert "found by key" in m.log()


def test_kill9_after_rename_delivered_once(mount, p, token_file):
    m = start_mount(mount, p, token_file)
    # the platform holds the answer back: the message is journaled and the
    # first correspondence made, but the daemon dies before it hears so
    p.fault(CORR + "$", method="POST", delay_ms=3000, after=True)
    write_message(m, "krasj", "# Krasj\nBare en gang.\n", [ORG, PERSON])
    time.sleep(1.0)
    m.kill9()
    p.clear_faults()
    m2 = start_mount(mount, p, token_file, state_dir=str(m.state_dir))
    receipt = wait_receipt(m2, "krasj")
    # the first recipient's was made before the kill: found by its key
    assert "found by key" in m2.log()
    rows = stored(p, "krasj")
    assert sorted(c["recipient"] for c in rows) == sorted([ORG_URN + ORG, PERSON_URN + PERSON])
    for c in rows:
        rcp = c["recipient"].rsplit(":", 1)[1]
        assert receipt["recipients"][rcp]["correspondenceId"] == c["correspondenceId"]


def initializes(p, mark):
    return [e for e in p.since(mark) if e["method"] == "POST" and e["path"] == CORR]


def attachment_creates(p, mark):
    return [e for e in p.since(mark) if e["method"] == "POST"
            and e["path"] == "/correspondence/api/v1/attachment"]


# each step of a message with an attachment, with the platform's request
# that does it: the kill comes while the platform holds back that request's
# answer after doing the work, so the daemon dies not knowing it was done
STEPS = {
    "attachment-created": ("/correspondence/api/v1/attachment$", "POST"),
    "bytes-uploaded": ("/correspondence/api/v1/attachment/*/upload$", "POST"),
    "initialized": (CORR + "$", "POST"),
    "following": (CORR + "/*$", "GET"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_kill9_at_each_step_sends_once(mount, p, token_file, step):
    path, method = STEPS[step]
    m = start_mount(mount, p, token_file)
    mark = p.mark()
    rule = p.fault(path, method=method, delay_ms=4000, after=True)
    name = "steg-" + step
    write_message(m, name, "# Steg\nEn gang hver.\n", [ORG, PERSON],
                  attachments={"brev.pdf": b"%PDF-1.4\n" + os.urandom(20_000)})
    # the held-back request has reached the platform; its work takes
    # milliseconds, its answer 4 s
    wait_for(lambda: p.fault_hits(rule) > 0, 20, f"the {step} request")
    time.sleep(0.5)
    m.kill9()
    p.clear_faults()
    m2 = start_mount(mount, p, token_file, state_dir=str(m.state_dir))
    receipt = wait_receipt(m2, name)
    wait_statuses(m2, name, {ORG: "Published", PERSON: "Published"})
    # one correspondence per recipient, each with the one attachment
    rows = stored(p, name)
    assert sorted(c["recipient"] for c in rows) == sorted([ORG_URN + ORG, PERSON_URN + PERSON])
    for c in rows:
        rcp = c["recipient"].rsplit(":", 1)[1]
        assert receipt["recipients"][rcp]["correspondenceId"] == c["correspondenceId"]
        assert [x["fileName"] for x in c["content"]["attachments"]] == ["brev.pdf"]
    assert len({c["idempotentKey"] for c in rows}) == 2
    # the platform made each correspondence once: a repeat after the kill
    # was answered 409 and settled by the key
    made = [e for e in initializes(p, mark) if e["status"] in (None, 200)]
    assert len(made) == 2, [e["status"] for e in initializes(p, mark)]
    # the bytes were taken once: the upload held back was not sent again
    uploads = attachment_uploads(p, mark)
    assert len(uploads) == 1, [e["status"] for e in uploads]
    # an attachment made twice (its answer lost) leaves one unused, never linked
    linked = {x["fileName"] for c in rows for x in c["content"]["attachments"]}
    assert linked == {"brev.pdf"}
    if step != "attachment-created":
        assert len(attachment_creates(p, mark)) == 1
