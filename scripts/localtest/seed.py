"""Demo data (`--seed demo`): org ttd with the apps `soknad` (1,200 instances, for paging and
listing) and `tilskudd` (a handful, plus two instances with fixed ids that tests rely on:
awkward file names, and a 256 MiB element generated on the fly).

Everything comes from fixed-seed random generators and fixed times, so ids, times, names and
bytes are the same on every run. See README.md for the exact list of fixed ids.
"""

import random
import struct
import uuid
import zlib

from . import content, dates, model

ORG = "ttd"
ORG_NUMBER = "991825827"
SOKNAD = "ttd/soknad"
TILSKUDD = "ttd/tilskudd"

SOKNAD_INSTANCES = 1200
SOKNAD_PARTIES = range(500100, 500400)      # 300 parties, 4 instances each
SOKNAD_COMPLETE = 60                       # ended, archived, not confirmed
SOKNAD_CONFIRMED = 5                       # ended and confirmed by ttd

SPECIAL_GUID = "5a1e0000-0000-4000-8000-000000000001"
SPECIAL_PARTY = "50001"
BIG_GUID = "b16f0000-0000-4000-8000-000000000002"
BIG_PARTY = "50002"
BIG_DATA_GUID = "b16f0000-0000-4000-8000-0000000000da"
BIG_FORM_GUID = "b16f0000-0000-4000-8000-0000000000db"
BIG_SIZE = 256 << 20

RANGE_START = dates.ticks_from_parts(2025, 1, 1)
RANGE_END = dates.ticks_from_parts(2026, 11, 1)
SECOND = dates.TICKS_PER_SECOND
DAY = 86400 * SECOND

_COMMON_TYPE_FIELDS = {
    "enablePdfCreation": False, "enableFileScan": False,
    "validationErrorOnPendingFileScan": False, "enabledFileAnalysers": [],
    "enabledFileValidators": [],
}


def _data_type(type_id, allowed, **fields):
    doc = {"id": type_id, "allowedContentTypes": list(allowed)}
    doc.update(fields)
    for key, value in _COMMON_TYPE_FIELDS.items():
        doc.setdefault(key, value)
    return doc


def _receipt_type():
    return _data_type("ref-data-as-pdf", ["application/pdf"], maxCount=0, minCount=0,
                      enablePdfCreation=True)


def _form_type(type_id, class_ref):
    return _data_type(type_id, ["application/xml"],
                      appLogic={"autoCreate": True, "classRef": class_ref,
                                "allowAnonymousOnStateless": False,
                                "autoDeleteOnProcessEnd": False},
                      taskId="Task_1", maxCount=1, minCount=1, enablePdfCreation=True)


def application_doc(app_id, title, data_types):
    stamp = dates.format_ticks(dates.ticks_from_parts(2024, 11, 20, 9, 30, 0, 1234567))
    return {
        "id": app_id,
        "org": app_id.split("/")[0],
        "title": title,
        "dataTypes": data_types,
        "partyTypesAllowed": {"bankruptcyEstate": False, "organisation": True,
                              "person": True, "subUnit": False},
        "autoDeleteOnProcessEnd": False,
        "disallowUserInstantiation": False,
        "created": stamp,
        "createdBy": "altinn",
        "lastChanged": stamp,
        "lastChangedBy": "altinn",
    }


# The apps' processes (model.Application.process): soknad has a confirmation step.
FILL_IN = {"id": "Task_1", "name": "Utfylling", "altinnTaskType": "data"}
CONFIRM = {"id": "Task_2", "name": "Bekreftelse", "altinnTaskType": "confirmation"}


def soknad_app():
    doc = application_doc(SOKNAD, {"nb": "Søknad", "en": "Application"}, [
        _receipt_type(),
        _form_type("model", "Altinn.App.Models.Soknad"),
        _data_type("attachment", ["application/pdf", "image/png", "image/jpeg", "text/plain"],
                   maxSize=25, maxCount=10, minCount=0, taskId="Task_1"),
        # written by the app only, as signing and payment tasks require (app-lib
        # AllowedContributorsHelper.EnsureDataTypeIsAppOwned): nobody may upload to it
        _data_type("signatur", ["application/json"], maxCount=1, minCount=0,
                   allowedContributors=["app:owned"]),
        # needs an action beyond write (DataElementAccessChecker: actionRequiredToWrite)
        _data_type("betaling", ["application/json", "text/csv"], maxCount=1, minCount=0,
                   actionRequiredToWrite="pay"),
        # only the service owner may write it
        _data_type("saksbehandling", ["application/zip"], maxCount=5, minCount=0,
                   allowedContributors=["org:ttd", "orgno:991825827"]),
    ])
    doc["_process"] = [FILL_IN, CONFIRM]
    return model.Application(doc)


def tilskudd_app():
    doc = application_doc(TILSKUDD, {"nb": "Tilskudd", "en": "Grant"}, [
        _receipt_type(),
        _form_type("skjema", "Altinn.App.Models.Tilskudd"),
        _data_type("vedlegg", ["application/pdf", "image/png", "image/jpeg", "text/plain",
                               "application/octet-stream"],
                   maxSize=300, maxCount=20, minCount=0, taskId="Task_1"),
    ])
    doc["_process"] = [FILL_IN]
    return model.Application(doc)


# -- small generated files ----------------------------------------------------------------

_NAMES = ["Kari Nordmann", "Ola Nordmann", "Åse Ødegård", "Per Hansen", "Nina Berg",
          "Lars Ødven", "Ingrid Aas", "Bjørn Dæhli"]


def form_xml(guid, root="Soknad", instance_guid=None):
    rng = random.Random("form:" + guid)
    name = rng.choice(_NAMES)
    amount = rng.randrange(1000, 500000)
    return ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
            "<%s xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
            "  <Instans>%s</Instans>\n"
            "  <Referanse>%s</Referanse>\n"
            "  <Soker>\n    <Navn>%s</Navn>\n    <Epost>soker%d@example.no</Epost>\n  </Soker>\n"
            "  <Belop>%d</Belop>\n"
            "  <Begrunnelse>Søknaden gjelder prosjekt %s.</Begrunnelse>\n"
            "</%s>\n" % (root, instance_guid or guid, guid, name, rng.randrange(1000), amount,
                          guid[:8], root)).encode("utf-8")


def pdf_bytes(guid, title="Vedlegg"):
    text = "%s %s" % (title, guid)
    stream = "BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text
    return ("%%PDF-1.4\n"
            "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
            "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            "/Contents 4 0 R >> endobj\n"
            "4 0 obj << /Length %d >> stream\n%s\nendstream endobj\n"
            "trailer << /Root 1 0 R >>\n%%%%EOF\n" % (len(stream), stream)).encode("latin-1")


def png_bytes(guid):
    """A valid 16x16 RGB PNG whose colours depend on the guid."""
    rng = random.Random("png:" + guid)
    width = height = 16
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(width * 3))
                    for _ in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def text_bytes(guid, title="Notat"):
    rng = random.Random("txt:" + guid)
    lines = ["%s for %s" % (title, guid), ""]
    for n in range(rng.randrange(3, 7)):
        lines.append("Linje %d: %s skrev %d ord om søknaden." %
                     (n + 1, rng.choice(_NAMES), rng.randrange(10, 500)))
    return ("\n".join(lines) + "\n").encode("utf-8")


_ATTACHMENTS = [
    ("kvittering.pdf", "application/pdf"), ("årsregnskap.pdf", "application/pdf"),
    ("budsjett 2026.pdf", "application/pdf"), ("bilde.png", "image/png"),
    ("skisse.png", "image/png"), ("notat.txt", "text/plain"),
    ("beskrivelse.txt", "text/plain"),
]


def attachment_bytes(guid, content_type):
    if content_type == "application/pdf":
        return pdf_bytes(guid)
    if content_type == "image/png":
        return png_bytes(guid)
    return text_bytes(guid)


# -- instances ----------------------------------------------------------------------------

def _guid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _unique_ticks(rng, low, high, used):
    while True:
        t = rng.randrange(low, high)
        if t not in used:
            used.add(t)
            return t


def _element(guid, data_type, content_type, data, filename, created, last_changed, by):
    return model.DataElement(guid, data_type, content_type, content.BytesContent(data),
                             filename=filename, created=created, created_by=by,
                             last_changed=last_changed, last_changed_by=by)


def _owner(rng, as_org):
    if as_org:
        return {"organisationNumber": str(rng.randrange(800_000_000, 1_000_000_000))}
    return {"personNumber": "%02d%02d%02d%05d" % (rng.randrange(1, 29), rng.randrange(1, 13),
                                                  rng.randrange(100), rng.randrange(100_000))}


def _ordinary_instances(rng, app_id, parties, per_party, form_type, attachment_type,
                        complete, confirmed, used):
    """Instances with one form element and, for about half, 1-2 attachments."""
    total = len(parties) * per_party
    indices = list(range(total))
    ended = set(rng.sample(indices, complete + confirmed))
    confirmed_set = set(rng.sample(sorted(ended), confirmed))
    owners = {p: _owner(rng, n % 2 == 0) for n, p in enumerate(parties)}
    out = []
    for n in range(total):
        party = str(parties[n // per_party])
        created = _unique_ticks(rng, RANGE_START, RANGE_END - 60 * DAY, used)
        last_changed = _unique_ticks(rng, created + 10 * SECOND,
                                     created + rng.randrange(2, 60) * DAY, used)
        inst = model.Instance(_guid(rng), party, app_id, owners[parties[n // per_party]],
                              created=created, created_by=party,
                              last_changed=last_changed, last_changed_by=party)
        inst.start_process(created)
        inst.read_status = rng.choice(["Read", "Unread", "UpdatedSinceLastReview"])
        # Data changes happen before the process ends; a confirmation comes after that.
        if n in confirmed_set:
            end = rng.randrange(created + 5 * SECOND, last_changed)
        else:
            end = last_changed
        form_guid = _guid(rng)
        root = "Soknad" if form_type == "model" else "Tilskudd"
        inst.data.append(_element(form_guid, form_type, "application/xml",
                                  form_xml(form_guid, root, inst.guid), None, created + SECOND,
                                  rng.randrange(created + SECOND, end), party))
        if rng.random() < 0.5:
            for _ in range(rng.randrange(1, 3)):
                data_guid = _guid(rng)
                filename, content_type = rng.choice(_ATTACHMENTS)
                at = rng.randrange(created + 2 * SECOND, end)
                inst.data.append(_element(data_guid, attachment_type, content_type,
                                          attachment_bytes(data_guid, content_type),
                                          filename, at, at, party))
        if n in ended:
            inst.end_process(end)
            inst.read_status = "Read"
        if n in confirmed_set:
            inst.confirmations.append((ORG, last_changed))
            inst.last_changed_by = ORG_NUMBER
        out.append(inst)
    return out


def special_instance():
    """50001/5a1e...0001: ten elements whose names stress the daemon's naming rules."""
    created = dates.ticks_from_parts(2026, 3, 1, 10, 15, 30, 1234567)
    last_changed = dates.ticks_from_parts(2026, 3, 2, 8, 0, 0, 7654321)
    inst = model.Instance(SPECIAL_GUID, SPECIAL_PARTY, TILSKUDD,
                          {"organisationNumber": "910000001"}, created=created,
                          created_by=SPECIAL_PARTY, last_changed=last_changed,
                          last_changed_by=SPECIAL_PARTY)
    inst.start_process(created)
    files = [
        ("skjema", None, "application/xml"),
        ("vedlegg", "Søknad om støtte – æøå.pdf", "application/pdf"),
        ("vedlegg", "kvittering.pdf", "application/pdf"),
        ("vedlegg", "kvittering.pdf", "application/pdf"),
        ("vedlegg", "../../etc/passwd", "text/plain"),
        ("vedlegg", "rapport/2026/mars.txt", "text/plain"),
        ("vedlegg", "Langt navn " + "ø" * 150 + ".txt", "text/plain"),
        ("vedlegg", "linje\nskift\t.txt", "text/plain"),
        ("vedlegg", "..", "text/plain"),
        ("vedlegg", None, "image/png"),
    ]
    for n, (data_type, filename, content_type) in enumerate(files, start=1):
        guid = "d%07d-0000-4000-8000-%012d" % (n, n)
        if data_type == "skjema":
            data = form_xml(guid, "Tilskudd", SPECIAL_GUID)
        elif content_type == "application/pdf":
            data = pdf_bytes(guid, "Vedlegg %d" % n)
        elif content_type == "image/png":
            data = png_bytes(guid)
        else:
            data = text_bytes(guid, "Vedlegg %d" % n)
        at = created + n * 60 * SECOND + n
        inst.data.append(_element(guid, data_type, content_type, data, filename, at, at,
                                  SPECIAL_PARTY))
    return inst


def big_instance():
    """50002/b16f...0002: a 256 MiB element made on the fly, plus a small form."""
    created = dates.ticks_from_parts(2026, 3, 5, 14, 0, 0, 2345678)
    last_changed = dates.ticks_from_parts(2026, 3, 5, 14, 30, 0, 8765432)
    inst = model.Instance(BIG_GUID, BIG_PARTY, TILSKUDD, {"personNumber": "01017012345"},
                          created=created, created_by=BIG_PARTY, last_changed=last_changed,
                          last_changed_by=BIG_PARTY)
    inst.start_process(created)
    form = form_xml(BIG_FORM_GUID, "Tilskudd", BIG_GUID)
    inst.data.append(_element(BIG_FORM_GUID, "skjema", "application/xml", form, None,
                              created + SECOND, created + SECOND, BIG_PARTY))
    at = created + 120 * SECOND + 7
    inst.data.append(model.DataElement(BIG_DATA_GUID, "vedlegg", "application/octet-stream",
                                       content.PatternContent(BIG_SIZE), filename="stor-fil.bin",
                                       created=at, created_by=BIG_PARTY))
    return inst


DELETED_PARTY = "50013"
HARD_DELETED_GUID = "de1e0000-0000-4000-8000-000000000001"
SOFT_DELETED_GUID = "de1e0000-0000-4000-8000-000000000002"
ACTIVE_GUID = "de1e0000-0000-4000-8000-000000000003"
DELETED_DATA_GUID = "de1e0000-0000-4000-8000-0000000000de"


def deleted_instances():
    """Party 50013: a hard-deleted instance, a soft-deleted one, and an active one holding an
    element a user deleted (deleteStatus.isHardDeleted); each has one ordinary element
    `beholdt.pdf`. Storage shows all of it to the app owner (InstancesController
    ApplyHardDeleteFilter, DataController Get), and hides the deleted ones from users."""
    out = []
    for n, guid in enumerate((HARD_DELETED_GUID, SOFT_DELETED_GUID, ACTIVE_GUID), start=1):
        created = dates.ticks_from_parts(2026, 4, n, 9, 0, 0, 1111111 * n)
        deleted = created + DAY
        inst = model.Instance(guid, DELETED_PARTY, TILSKUDD, {"organisationNumber": "910000013"},
                              created=created, created_by=DELETED_PARTY,
                              last_changed=deleted, last_changed_by=DELETED_PARTY)
        inst.start_process(created)
        kept = guid[:-3] + "0b%d" % n
        inst.data.append(_element(kept, "vedlegg", "application/pdf", pdf_bytes(kept, "Beholdt"),
                                  "beholdt.pdf", created + SECOND, created + SECOND,
                                  DELETED_PARTY))
        if guid != ACTIVE_GUID:
            inst.is_soft_deleted, inst.soft_deleted = True, deleted
        if guid == HARD_DELETED_GUID:
            inst.is_hard_deleted, inst.hard_deleted = True, deleted
        if guid == ACTIVE_GUID:
            gone = _element(DELETED_DATA_GUID, "vedlegg", "application/pdf",
                            pdf_bytes(DELETED_DATA_GUID, "Slettet"), "slettet.pdf",
                            created + 2 * SECOND, deleted, DELETED_PARTY)
            gone.hard_deleted = deleted
            inst.data.append(gone)
        out.append(inst)
    return out


def seed_demo(store):
    used = set()
    store.add_app(soknad_app())
    store.add_app(tilskudd_app())
    rng = random.Random(20260301)
    for inst in _ordinary_instances(rng, SOKNAD, list(SOKNAD_PARTIES), 4, "model",
                                    "attachment", SOKNAD_COMPLETE, SOKNAD_CONFIRMED, used):
        store.add_instance(inst)
    rng = random.Random(20260302)
    specials = [special_instance(), big_instance()] + deleted_instances()
    for inst in specials:
        used.update((inst.created, inst.last_changed))
    for inst in specials:
        store.add_instance(inst)
    for inst in _ordinary_instances(rng, TILSKUDD, list(range(50003, 50013)), 1, "skjema",
                                    "vedlegg", 2, 0, used):
        store.add_instance(inst)


SEEDS = {"demo": seed_demo, "none": lambda store: None}

