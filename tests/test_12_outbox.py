"""The outbox: files dropped into apps/<org>/<app>/outbox/<owner>/ become
submissions (docs/outbox.md). Each drop pattern a legacy system uses; what the
platform received (bytes, filename, content type, owner, exactly one instance);
receipts in sent/; refusals in failed/ with the platform's reason; folders and
names the outbox refuses. Against a platform of this module's own."""

import errno
import hashlib
import mmap
import os
import shutil
import subprocess
import tarfile
import time

import pytest

from reference import iso_seconds

from outbox_util import (FAST, PDF, SOKNAD, TILSKUDD, area, attachments, calls, expect_errno,
                         instance_by_id, instances_of, new_org, owner_dir, stored_bytes,
                         wait_dead_letter, wait_for, wait_receipt, xattr)


@pytest.fixture
def p(own_platform):
    own_platform.clear_faults()
    yield own_platform
    own_platform.clear_faults()


@pytest.fixture
def m(mount, p):
    return mount(localtest=p, **FAST)


def check_delivered(p, m, app, owner, name, content, data_type, content_type, filename=None):
    """The receipt for one file, and the platform's single instance with it."""
    number = owner.split("-", 1)[1]
    receipt = wait_receipt(m, app, owner, name)
    assert receipt["owner"] == owner and receipt["name"] == name
    [inst] = instances_of(p, app, number)
    assert receipt["instance_id"] == inst["id"]
    [el] = attachments(inst)
    assert el["filename"] == (filename or name)
    assert el["dataType"] == data_type
    assert el["contentType"] == content_type
    assert stored_bytes(p, el["id"]) == content
    [r] = receipt["data"]
    assert r["data_id"] == el["id"] and r["size"] == len(content)
    assert r["sha256"] == hashlib.sha256(content).hexdigest()
    assert not (area(m, app, "outbox") / owner / name).exists()
    return receipt, inst


# ---- the tree and what may be made in it

def test_areas_and_owner_folders(m):
    app = area(m, SOKNAD, "")
    assert {"outbox", "sent", "failed"} <= set(os.listdir(app))
    outbox = area(m, SOKNAD, "outbox")
    for bad in ("org-12345678", "org-1234567890", "person-123", "party-", "party-x1",
                "Org-910000004", "firma", ".hidden"):
        expect_errno(errno.EINVAL, os.mkdir, outbox / bad)
    for good in ("org-910000004", "person-01017010170", "party-50001"):
        os.mkdir(outbox / good)
    expect_errno(errno.EPERM, lambda: open(outbox / "loose.pdf", "wb"))
    expect_errno(errno.EPERM, os.mkdir, outbox / "org-910000004" / "batch")
    os.mkdir(outbox / "org-910000004" / ".batch")  # a temporary name: staging
    os.rmdir(outbox / "org-910000004" / ".batch")
    for name in ("sent", "failed"):
        expect_errno(errno.EPERM, os.mkdir, area(m, SOKNAD, name) / "org-910000004")
        expect_errno(errno.EPERM, lambda: open(area(m, SOKNAD, name) / "x.json", "wb"))
    for good in ("org-910000004", "person-01017010170", "party-50001"):
        os.rmdir(outbox / good)


# ---- drop patterns

def test_cp_from_another_filesystem(p, m, tmp_path):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    src = tmp_path / "søknad vedlegg.pdf"
    src.write_bytes(PDF)
    mark = p.mark()
    subprocess.run(["cp", str(src), str(d)], check=True)
    receipt, inst = check_delivered(p, m, SOKNAD, owner, "søknad vedlegg.pdf", PDF,
                                    "attachment", "application/pdf")
    assert inst["instanceOwner"]["organisationNumber"] == number
    assert inst["process"]["currentTask"]["elementId"] == "Task_2"  # process/next ran
    assert receipt["process"] == {"next": True, "task": "Task_2", "ended": False}
    assert len(calls(p, mark, "POST", "/instances")) == 1
    assert len(calls(p, mark, "POST", "/data")) == 1
    assert len(calls(p, mark, "PUT", "/process/next")) == 1
    assert src.exists()


@pytest.mark.parametrize("owner, field", [("person-01017010251", "personNumber"),
                                          ("party-50001", "partyId")])
def test_person_and_party_owners(p, m, owner, field):
    d = owner_dir(m, SOKNAD, owner)
    (d / "brev.pdf").write_bytes(PDF)
    receipt = wait_receipt(m, SOKNAD, owner, "brev.pdf")
    inst = instance_by_id(p, SOKNAD, receipt["instance_id"])
    assert inst["instanceOwner"][field] == owner.split("-", 1)[1]


def test_mv_from_another_filesystem(p, m, tmp_path):
    owner, _ = new_org()
    d = owner_dir(m, TILSKUDD, owner)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
    src = tmp_path / "kart.png"
    src.write_bytes(png)
    subprocess.run(["mv", str(src), str(d)], check=True)
    check_delivered(p, m, TILSKUDD, owner, "kart.png", png, "vedlegg", "image/png")
    assert not src.exists()
    # tilskudd has one task: process/next ended the process
    receipt = wait_receipt(m, TILSKUDD, owner, "kart.png")
    assert receipt["process"] == {"next": True, "task": None, "ended": True}


def test_shell_redirection(p, m):
    owner, _ = new_org()
    d = owner_dir(m, SOKNAD, owner)
    subprocess.run(["sh", "-c", f"printf 'linje 1\\nlinje 2\\n' > '{d}/melding.txt'"], check=True)
    check_delivered(p, m, SOKNAD, owner, "melding.txt", b"linje 1\nlinje 2\n", "attachment",
                    "text/plain")


def test_dd_with_odd_block_size(p, m, tmp_path):
    owner, _ = new_org()
    d = owner_dir(m, TILSKUDD, owner)
    data = os.urandom(1_500_007)  # over 1 MiB: hashed as it is uploaded
    (tmp_path / "src").write_bytes(data)
    subprocess.run(["dd", f"if={tmp_path / 'src'}", f"of={d / 'rådata.bin'}", "bs=777",
                    "status=none"], check=True)
    check_delivered(p, m, TILSKUDD, owner, "rådata.bin", data, "vedlegg",
                    "application/octet-stream")


@pytest.mark.skipif(not shutil.which("rsync"), reason="rsync is not installed")
def test_rsync_temp_file_then_rename(p, m, tmp_path):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    src = tmp_path / "src"
    src.mkdir()
    files = {f"del{i}.pdf": PDF + os.urandom(i * 100) for i in range(3)}
    for name, content in files.items():
        (src / name).write_bytes(content)
    subprocess.run(["rsync", "-a", f"{src}/", f"{d}/"], check=True)
    for name, content in files.items():
        receipt = wait_receipt(m, SOKNAD, owner, name)
        doc = instance_by_id(p, SOKNAD, receipt["instance_id"])
        [el] = attachments(doc)
        assert el["filename"] == name and stored_bytes(p, el["id"]) == content
    # one instance per file; rsync's own temporary names never reached it
    assert len(instances_of(p, SOKNAD, number)) == 3
    assert sorted(os.listdir(area(m, SOKNAD, "sent") / owner)) == \
        sorted(n + ".json" for n in files)


def test_tar_x(p, m, tmp_path):
    owner, number = new_org()
    d = owner_dir(m, TILSKUDD, owner)
    names = ["a.pdf", "b.txt", "c.png"]
    tar = tmp_path / "drop.tar"
    with tarfile.open(tar, "w") as t:
        for n in names:
            f = tmp_path / n
            f.write_bytes(n.encode() * 100)
            t.add(f, arcname=n)
    subprocess.run(["tar", "xf", str(tar), "-C", str(d)], check=True)
    for n in names:
        receipt = wait_receipt(m, TILSKUDD, owner, n)
        [r] = receipt["data"]
        assert r["size"] == len(n) * 100
    assert len(instances_of(p, TILSKUDD, number)) == 3


def test_zero_byte_file_is_refused_into_failed(p, m):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    mark = p.mark()
    (d / "tom.pdf").touch()
    letter = wait_dead_letter(m, SOKNAD, owner, "tom.pdf")
    assert letter["step"] == "check" and letter["status"] is None
    assert "zero" in letter["reason"] and letter["instance_id"] is None
    assert (area(m, SOKNAD, "failed") / owner / "tom.pdf").read_bytes() == b""
    assert not (d / "tom.pdf").exists()
    assert instances_of(p, SOKNAD, number) == []
    assert calls(p, mark, "POST", "/instances") == []
    # sent again from failed/ (a copy across areas, as mv does it): refused
    # again, under a name that leaves the first letter alone
    subprocess.run(["mv", str(area(m, SOKNAD, "failed") / owner / "tom.pdf"), str(d)], check=True)
    again = wait_dead_letter(m, SOKNAD, owner, "tom-1.pdf")
    assert again["stored_as"] == "tom-1.pdf" and again["name"] == "tom.pdf"
    assert wait_dead_letter(m, SOKNAD, owner, "tom.pdf") == letter


def test_outbox_can_be_off(mount, p):
    m = mount(localtest=p, outbox="no")
    assert not {"outbox", "sent", "failed"} & set(os.listdir(area(m, SOKNAD, "")))


def test_folder_renamed_in_is_one_submission(p, m):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    staging = d / ".samlet"
    os.mkdir(staging)
    files = {"1-brev.pdf": PDF + b"1", "2-bilde.png": b"\x89PNG" + os.urandom(500),
             "3-notat.txt": b"notat\n"}
    for name, content in files.items():
        (staging / name).write_bytes(content)
    assert xattr(staging, "user.altinn.state") == "temporary"
    time.sleep(0.5)
    assert instances_of(p, SOKNAD, number) == []
    os.rename(staging, d / "samlet")
    receipt = wait_receipt(m, SOKNAD, owner, "samlet")
    [inst] = instances_of(p, SOKNAD, number)
    assert receipt["instance_id"] == inst["id"]
    got = {el["filename"]: stored_bytes(p, el["id"]) for el in attachments(inst)}
    assert got == files
    assert [r["file"] for r in receipt["data"]] == sorted(files)
    assert not (d / "samlet").exists()


def test_temporary_names_wait_for_a_rename(p, m):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    for tmp in ("a.pdf.part", "a.pdf.tmp", ".a.pdf", "a.pdf~", "a.pdf.crdownload",
                "a.pdf.filepart", ".a.pdf.swp"):
        (d / tmp).write_bytes(PDF)
        assert xattr(d / tmp, "user.altinn.state") == "temporary"
    time.sleep(0.6)
    assert instances_of(p, SOKNAD, number) == []
    os.rename(d / "a.pdf.part", d / "a.pdf")
    check_delivered(p, m, SOKNAD, owner, "a.pdf", PDF, "attachment", "application/pdf")
    assert len(os.listdir(d)) == 6  # the other temporary files wait


# ---- refusals

def test_local_refusals(p, m):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    mark = p.mark()
    (d / "uten-endelse").write_bytes(b"data")
    (d / "tabell.csv").write_bytes(b"a;b\n")
    with open(d / "stor.pdf", "wb") as f:  # over attachment's 25 MB
        f.truncate(26 * 1024 * 1024)
    reasons = {n: wait_dead_letter(m, SOKNAD, owner, n) for n in
               ("uten-endelse", "tabell.csv", "stor.pdf")}
    assert "extension" in reasons["uten-endelse"]["reason"]
    assert "text/csv" in reasons["tabell.csv"]["reason"]
    assert "maxSize" in reasons["stor.pdf"]["reason"]
    for letter in reasons.values():
        assert letter["step"] == "check" and letter["instance_id"] is None
    assert os.path.getsize(area(m, SOKNAD, "failed") / owner / "stor.pdf") == 26 << 20
    assert calls(p, mark, "POST", "/instances") == []


def test_names_too_long_for_their_receipt_are_refused_at_once(p, m):
    """<name>.json and <name>-<n>.error.json must fit in 255 bytes: a
    longer name was delivered and then stuck for ever (EBUSY, no receipt)."""
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    mark = p.mark()
    longest = "k" * (236 - len(".pdf")) + ".pdf"
    (d / ".k.tmp").write_bytes(PDF)            # a temporary name waits for a rename
    for n in (237, 245, 251, 255):
        name = "k" * (n - len(".pdf")) + ".pdf"
        expect_errno(errno.ENAMETOOLONG, lambda: (d / name).write_bytes(PDF))
        expect_errno(errno.ENAMETOOLONG, lambda: os.rename(d / ".k.tmp", d / name))
        expect_errno(errno.ENAMETOOLONG, lambda: os.mkdir(d / name))
    os.unlink(d / ".k.tmp")
    assert os.listdir(d) == []
    assert calls(p, mark, "POST", "/instances") == []
    (d / longest).write_bytes(PDF)
    check_delivered(p, m, SOKNAD, owner, longest, PDF, "attachment", "application/pdf")


def test_platform_refusal_has_its_reason(p, m):
    # a well-formed organisation number the platform does not know: 404 with a
    # bare string from instantiation
    owner = "org-123456789"
    d = owner_dir(m, SOKNAD, owner)
    (d / "brev.pdf").write_bytes(PDF)
    letter = wait_dead_letter(m, SOKNAD, owner, "brev.pdf")
    assert letter["step"] == "create_instance" and letter["status"] == 404
    assert "Cannot lookup party" in letter["detail"]
    assert letter["attempts"] == 1
    assert (area(m, SOKNAD, "failed") / owner / "brev.pdf").read_bytes() == PDF


STRICT = "ttd/obstrict"


def strict_app():
    """pdf goes to vedlegg (then process/next fails: signatur is missing);
    txt goes to senere, which belongs to Task_2 (the upload is refused)."""
    return {
        "id": STRICT, "org": "ttd", "title": {"nb": "Streng"},
        "dataTypes": [
            {"id": "ref-data-as-pdf", "allowedContentTypes": ["application/pdf"],
             "maxCount": 0, "minCount": 0},
            {"id": "vedlegg", "allowedContentTypes": ["application/pdf"], "maxCount": 5,
             "minCount": 0, "taskId": "Task_1"},
            {"id": "signatur", "allowedContentTypes": ["application/x-signature"],
             "maxCount": 1, "minCount": 1, "taskId": "Task_1"},
            {"id": "senere", "allowedContentTypes": ["text/plain"], "maxCount": 1,
             "minCount": 0, "taskId": "Task_2"},
        ],
        "partyTypesAllowed": {"bankruptcyEstate": False, "organisation": True,
                              "person": True, "subUnit": False},
        "_process": [{"id": "Task_1", "altinnTaskType": "data"},
                     {"id": "Task_2", "altinnTaskType": "data"}],
    }


def test_platform_refusals_after_the_instance(platform_factory, mount):
    # an app with EnforceDataTypeTaskId: the type of another task is refused on upload
    p = platform_factory(extra_args=["--enforce-data-type-task-id"])
    r = p.request("POST", "/_localtest/apps", body=strict_app(), auth=False)
    assert r.status == 201, r
    m = mount(localtest=p, apps=f"{SOKNAD} {TILSKUDD} {STRICT}", **FAST)
    owner, number = new_org()
    d = owner_dir(m, STRICT, owner)
    (d / "søknad.pdf").write_bytes(PDF)
    (d / "notat.txt").write_bytes(b"notat")
    upload = wait_dead_letter(m, STRICT, owner, "notat.txt")
    assert upload["step"] == "upload" and upload["status"] == 409
    assert upload["title"] == "Conflict with Current Task"
    assert upload["instance_id"]  # made before the refusal; the letter says which
    nxt = wait_dead_letter(m, STRICT, owner, "søknad.pdf")
    assert nxt["step"] == "process_next" and nxt["status"] == 409
    assert nxt["title"] == "Validation failed for task"
    assert "validation errors" in nxt["detail"]
    assert nxt["data"][0]["data_id"]  # the upload itself went through
    assert (area(m, STRICT, "failed") / owner / "søknad.pdf").read_bytes() == PDF
    assert len(instances_of(p, STRICT, number)) == 2


def test_failed_names_are_never_overwritten(p, m):
    owner, _ = new_org()
    d = owner_dir(m, SOKNAD, owner)
    for i in range(3):
        (d / "tom.pdf").touch()
        wait_for(lambda: not (d / "tom.pdf").exists(), what="tom.pdf to leave the outbox")
    failed = area(m, SOKNAD, "failed") / owner
    # the bytes land before their .error.json: wait for each one whole
    for name in ("tom.pdf", "tom-1.pdf", "tom-2.pdf"):
        wait_dead_letter(m, SOKNAD, owner, name)
    assert sorted(os.listdir(failed)) == ["tom-1.pdf", "tom-1.pdf.error.json", "tom-2.pdf",
                                          "tom-2.pdf.error.json", "tom.pdf", "tom.pdf.error.json"]
    # users may remove what is in failed/ and sent/
    for n in os.listdir(failed):
        os.unlink(failed / n)


# ---- outages

def log_time(entry):
    """Seconds (with fraction) of a request-log entry's time."""
    t = entry["time"]
    if isinstance(t, (int, float)):
        return float(t)
    whole, _, frac = t.rstrip("Z").partition(".")
    return iso_seconds(whole + "Z") + float("0." + (frac or "0"))


def test_503_and_429_then_success(p, m):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    p.fault("/ttd/soknad/instances$", method="POST", status=503, count=3)
    p.fault("/ttd/soknad/instances/*/*/data", method="POST", status=429, retry_after=2,
            count=1)
    mark = p.mark()
    (d / "a.pdf").write_bytes(PDF)
    receipt, inst = check_delivered(p, m, SOKNAD, owner, "a.pdf", PDF, "attachment",
                                    "application/pdf")
    assert len(calls(p, mark, "POST", "/instances")) == 4
    uploads = calls(p, mark, "POST", "/data")
    assert [u["status"] for u in uploads] == [429, 201]
    gap = log_time(uploads[1]) - log_time(uploads[0])
    assert gap >= 1.9, gap  # Retry-After was honoured
    assert receipt["attempts"] == 5


def test_pending_item_shows_its_state_and_is_busy(p, m):
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    p.fault("/ttd/soknad/instances$", method="POST", status=503, count=-1)
    (d / "a.pdf").write_bytes(PDF)
    wait_for(lambda: "503" in (xattr(d / "a.pdf", "user.altinn.last_error") or ""),
             what="the 503 in user.altinn.last_error")
    # a 503 may have come after the work: the outcome is unknown, the item busy
    assert xattr(d / "a.pdf", "user.altinn.state") == "creating"
    expect_errno(errno.EBUSY, os.unlink, d / "a.pdf")
    expect_errno(errno.EBUSY, os.rename, d / "a.pdf", d / "b.pdf")
    expect_errno(errno.EBUSY, lambda: open(d / "a.pdf", "ab"))
    status = wait_for(lambda: (lambda s: s if s["retries"] >= 1 else None)(
        __import__("json").loads((m.path / "status.json").read_bytes())["outbox"]))
    assert status["pending"] == 1 and status["oldest_pending_at"]
    p.clear_faults()
    check_delivered(p, m, SOKNAD, owner, "a.pdf", PDF, "attachment", "application/pdf")


def test_state_is_decided_when_close_returns(p, m):
    """close() waits for FUSE's flush, not for its release (which the kernel
    sends later, in the background): what a user reads right after close()
    must already be the file's fate, never `writing`."""
    owner, _ = new_org()
    d = owner_dir(m, SOKNAD, owner)
    for i in range(20):
        path = d / f"tom{i}.pdf"  # empty: received, and waits a second
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        if i % 2:
            os.close(fd)  # the release races the look below
        else:
            keep = os.dup(fd)  # the release waits for this one: a late release
            os.close(fd)
            assert xattr(path, "user.altinn.state") == "received", i
            os.close(keep)
        assert xattr(path, "user.altinn.state") == "received", i
    for i in range(20):
        wait_dead_letter(m, SOKNAD, owner, f"tom{i}.pdf")


def test_open_for_writing_without_a_write_is_decided_at_close(p, m):
    """An open for writing (no O_TRUNC) starts the file over; closing it
    without writing a byte must still hand it over, not leave it `writing`
    for ever."""
    owner, _ = new_org()
    d = owner_dir(m, SOKNAD, owner)
    fd = os.open(d / "tom.pdf", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    assert xattr(d / "tom.pdf", "user.altinn.state") == "received"
    fd = os.open(d / "tom.pdf", os.O_WRONLY)
    assert xattr(d / "tom.pdf", "user.altinn.state") == "writing"
    os.close(fd)
    assert xattr(d / "tom.pdf", "user.altinn.state") == "received"
    wait_dead_letter(m, SOKNAD, owner, "tom.pdf")  # empty: refused, as any empty file


def test_write_through_a_dup_after_close_starts_it_over(p, m):
    """Each close() of a descriptor flushes; one after a write hands the file
    over. A descriptor still open (a dup, a shell's child) may write again: the
    item waits for the last close, then goes with all its bytes, once."""
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    mark = p.mark()
    fd = os.open(d / "dup.pdf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, PDF[:10])
        os.close(os.dup(fd))
        assert xattr(d / "dup.pdf", "user.altinn.state") == "received"
        time.sleep(0.5)  # the file is still open: nothing is sent
        assert xattr(d / "dup.pdf", "user.altinn.state") == "received"
        assert calls(p, mark, "POST", "/instances") == []
        os.write(fd, PDF[10:])
        assert xattr(d / "dup.pdf", "user.altinn.state") == "writing"
    finally:
        os.close(fd)
    assert xattr(d / "dup.pdf", "user.altinn.state") != "writing"
    check_delivered(p, m, SOKNAD, owner, "dup.pdf", PDF, "attachment", "application/pdf")
    assert len(calls(p, mark, "POST", "/instances")) == 1


def test_mmap_written_after_close_is_sent_whole(p, m):
    """A shared mapping keeps the file open past close(): its pages reach the
    daemon at munmap, before the release, and the item goes with them."""
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    fd = os.open(d / "kart.pdf", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    os.ftruncate(fd, len(PDF))
    mm = mmap.mmap(fd, len(PDF))
    os.close(fd)  # zeros so far: handed over, and held while the mapping is there
    assert xattr(d / "kart.pdf", "user.altinn.state") == "received"
    mm[:] = PDF
    mm.close()
    check_delivered(p, m, SOKNAD, owner, "kart.pdf", PDF, "attachment", "application/pdf")
    assert len(instances_of(p, SOKNAD, number)) == 1


def test_lost_answers_never_make_a_second_instance(p, m):
    """The platform does the work and the connection drops before the answer:
    each step is looked up before it is tried again."""
    owner, number = new_org()
    d = owner_dir(m, SOKNAD, owner)
    for path, method in (("/ttd/soknad/instances$", "POST"),
                         ("/ttd/soknad/instances/*/*/data", "POST"),
                         ("/ttd/soknad/instances/*/*/process/next", "PUT")):
        p.fault(path, method=method, drop=True, after=True, count=1)
    (d / "a.pdf").write_bytes(PDF)
    receipt = wait_receipt(m, SOKNAD, owner, "a.pdf", timeout=40)
    [inst] = instances_of(p, SOKNAD, number)
    assert len(attachments(inst)) == 1
    assert inst["process"]["currentTask"]["elementId"] == "Task_2"  # moved once, not twice
    assert receipt["instance_id"] == inst["id"]
    assert receipt["process"]["task"] == "Task_2"
    assert p.get("/_localtest/faults", auth=False).json() == []


def test_give_up_age_ends_in_failed(p, mount):
    m = mount(localtest=p, outbox_give_up=3, **FAST)
    owner, _ = new_org()
    d = owner_dir(m, SOKNAD, owner)
    p.fault("/ttd/soknad/instances$", method="POST", status=429, count=-1)
    (d / "a.pdf").write_bytes(PDF)
    time.sleep(1.5)
    assert (d / "a.pdf").exists()  # not before the give-up age
    letter = wait_dead_letter(m, SOKNAD, owner, "a.pdf")
    assert letter["step"] == "create_instance" and letter["status"] == 429
    assert "gave up" in letter["reason"] and letter["attempts"] >= 2


def test_watchers_see_receipts_and_dead_letters_arrive(p, m):
    owner, _ = new_org()
    d = owner_dir(m, SOKNAD, owner)
    (d / "første.pdf").write_bytes(PDF)
    (d / "tom0.pdf").touch()
    wait_receipt(m, SOKNAD, owner, "første.pdf")
    wait_dead_letter(m, SOKNAD, owner, "tom0.pdf")
    sent, failed = area(m, SOKNAD, "sent") / owner, area(m, SOKNAD, "failed") / owner
    w = subprocess.Popen(["inotifywait", "-m", "-e", "moved_to", "--format", "%w|%e|%f",
                          str(sent), str(failed)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: "Watches established" in w.stderr.readline(), 10, "inotifywait")
        (d / "andre.pdf").write_bytes(PDF)
        (d / "tom.pdf").touch()
        wait_receipt(m, SOKNAD, owner, "andre.pdf")
        wait_dead_letter(m, SOKNAD, owner, "tom.pdf")
        time.sleep(0.3)
    finally:
        w.terminate()
        out, _ = w.communicate(timeout=10)
    seen = set(out.splitlines())
    assert f"{sent}/|MOVED_TO|andre.pdf.json" in seen, seen
    assert f"{failed}/|MOVED_TO|tom.pdf" in seen, seen
    assert f"{failed}/|MOVED_TO|tom.pdf.error.json" in seen, seen


def test_an_instance_answered_twice_takes_one_submission(p, m):
    """A platform that answers a second create with the first's instance
    must not get two submissions in it, nor process/next twice."""
    r = p.request("PUT", "/_localtest/hostile", auth=False,
                  body={"scenario": "same_instance", "path": "/ttd/soknad/instances$"})
    assert r.status == 201, r
    try:
        owner, number = new_org()
        d = owner_dir(m, SOKNAD, owner)
        mark = p.mark()
        (d / "first.pdf").write_bytes(PDF)
        receipt = wait_receipt(m, SOKNAD, owner, "first.pdf")
        (d / "second.pdf").write_bytes(PDF)
        letter = wait_dead_letter(m, SOKNAD, owner, "second.pdf")
    finally:
        p.request("DELETE", "/_localtest/hostile", auth=False)
    assert receipt["instance_id"] in letter["reason"] and "another submission" in letter["reason"]
    assert letter["step"] == "create_instance"
    assert len(calls(p, mark, "PUT", "/process/next")) == 1
    first = instance_by_id(p, SOKNAD, receipt["instance_id"])
    assert [el["filename"] for el in attachments(first)] == ["first.pdf"]
    for inst in instances_of(p, SOKNAD, number):
        assert "second.pdf" not in [el["filename"] for el in attachments(inst)]
