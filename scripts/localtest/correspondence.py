"""Altinn Correspondence v1 (melding): resources, attachments, correspondences and their status
machines, as altinn-correspondence's handlers keep them (../shared/altinn-broker-correspondence.md
§3; sources in README.md). `platform.correspondence` holds the state; corrapi.py speaks HTTP and
corrcheck.py validates the models.

A resource has a service owner (the sender of every correspondence on it: the `sender` field is
obsolete), `senders` standing in for the organisations with the `write` right (default: the
owner) and `recipients`, an access list of organisation/person numbers with `read` (None: all).
A correspondence is one message to one recipient: Initialized (or Reserved, a KRR-reserved person
in a batch) -> ReadyForPublish once every attachment is Published -> Published at
requestedPublishTime (after `publishDelay`, the Dialogporten round trip), or Failed; then the
recipient's own actions: Fetched (GET overview/details/content), Read (markasread, first GET
content), Confirmed (asynchronously, `confirmDelay` after /confirm), AttachmentsDownloaded,
PurgedByRecipient; the sender may purge only before publication (PurgedByAltinn). Shared
attachments go Initialized -> UploadProcessing -> Published after the malware scan (`scanDelay`),
or Failed. Events go through platform.events as AltinnEventBus publishes them.

Attachment bytes live in files under a private temporary directory. Every method takes the
service lock only around state changes; timers do the asynchronous steps.
"""

import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid

from . import broker, corrcheck, dates, parties

STATUSES = ("Initialized", "ReadyForPublish", "Published", "Fetched", "Read", "Replied",
            "Confirmed", "PurgedByRecipient", "PurgedByAltinn", "Archived", "Reserved", "Failed",
            "AttachmentsDownloaded", "Forwarded")
# CorrespondenceExtensions.IsAvailableForRecipient
AVAILABLE = ("Published", "Fetched", "Read", "Replied", "Confirmed", "Archived", "Reserved",
             "AttachmentsDownloaded", "Forwarded")
HIDDEN_FOR_RECIPIENT = ("Initialized", "ReadyForPublish", "Failed")
PURGED = ("PurgedByRecipient", "PurgedByAltinn")
ATTACHMENT_STATUSES = ("Initialized", "UploadProcessing", "Published", "Purged", "Failed",
                       "Expired")

# Errors.cs at da785168: number -> (HTTP status, message)
ERRORS = {
    1001: (404, "The requested correspondence was not found"),
    1002: (400, "Message title must be plain text"),
    1003: (400, "Message body must be markdown"),
    1004: (400, "Message summary must be plain text"),
    1005: (400, "Mismatch between uploaded files and attachment metadata"),
    1006: (400, "Recipients must be unique"),
    1007: (400, "Existing attachment not found"),
    1008: (400, "DueDateTime cannot be prior to today"),
    1009: (400, "DueDateTime cannot be prior to RequestedPublishTime"),
    1013: (400, "Sender cannot delete correspondence that has been published"),
    1014: (400, "Correspondence has already been purged"),
    1016: (400, "DueDateTime is required when confirmation is needed"),
    1017: (400, "The sender of the correspondence must be equal the sender of existing "
                "attachments"),
    1018: (400, "Attachment is not published"),
    1019: (400, "The Content field must be provided for the correspondence"),
    1020: (400, "Message title cannot be empty"),
    1021: (400, "Message body cannot be empty"),
    1022: (400, "Message body cannot exceed 30000 characters"),
    1023: (400, "Invalid language chosen. Supported languages is Norsk bokmål (nb), Nynorsk (nn) "
                "and English (en)"),
    1024: (400, "Correspondence must be fetched before it can be read"),
    1025: (400, "Correspondence must be fetched before it can be confirmed"),
    1026: (400, "Cannot archive or delete a correspondence which has not been confirmed when "
                "confirmation is required"),
    1027: (400, "From date cannot be after to date"),
    1029: (404, "Could not find partyId for the following recipients: %s"),
    1030: (422, "Recipient %s has reserved themselves from public correspondences. Can be "
                "overridden using the 'IgnoreReservation' flag."),
    1033: (400, "The idempotency key must be a valid non-empty GUID"),
    1034: (409, "A correspondence with the same idempotent key already exists"),
    1035: (400, "Reply options must be well-formed URIs and HTTPS with a max length of 255 "
                "characters"),
    1036: (400, "ResourceId must match an existing resource in the resource registry"),
    1037: (400, "Message title cannot exceed 255 characters"),
    1038: (400, "A correspondence cannot contain more than 100 attachments in total"),
    1039: (400, "Message sender must be plain text"),
    1040: (400, "Correspondence is already marked as read"),
    1041: (400, "Correspondence has already been confirmed"),
    1042: (400, "Message summary, if not null, must be between 0 and 255 characters long"),
    1047: (400, "Idempotency key is not supported for requests with multiple recipients"),
    1055: (400, "Existing attachment is expiring within %s hour(s) and cannot be attached to a "
                "new correspondence"),
    2001: (404, "The requested attachment was not found"),
    2002: (502, "Error occurred during upload"),
    2003: (400, "Cannot upload attachment to a correspondence that has been created"),
    2004: (400, "File must have content and has a max file size of %s"),
    2005: (400, "File has already been or is being uploaded"),
    2006: (400, "File has already been purged"),
    2007: (400, "Attachment cannot be purged as it is linked to at least one existing "
                "correspondence"),
    2008: (400, "Checksum mismatch"),
    2010: (400, "Filename is missing"),
    2011: (400, "Filename is too long"),
    2012: (400, "Filename contains invalid characters. The ruleset is based on Windows file "
                "naming convention which is defined here: https://learn.microsoft.com/en-us/"
                "windows/win32/fileio/naming-a-file#file-and-directory-names"),
    2013: (400, "Filetype not allowed"),
    2016: (400, "This attachment is associated with a published correspondence and can no "
                "longer be accessed by service owner"),
    2017: (400, "Attachment expirationTime must be at least %s days from now"),
    2018: (400, "File has expired"),
    2019: (400, "The attachment has been purged and cannot be downloaded"),
    2021: (400, "The filename uses a Windows reserved name. Files cannot be named CON, PRN, AUX, "
                "NUL, COM1-COM9, or LPT1-LPT9 (e.g., 'CON.txt' is not allowed, but "
                "'CONSOLE.txt' is)."),
    3002: (400, "Email body and subject must be provided when sending email notifications"),
    3003: (400, "Reminder email body and subject must be provided when sending reminder email "
                "notifications"),
    3004: (400, "SMS body must be provided when sending SMS notifications"),
    3005: (400, "Reminder SMS body must be provided when sending reminder SMS notifications"),
    3006: (400, "Email body, subject and SMS body must be provided when sending preferred "
                "notifications"),
    3007: (400, "Reminder email body, subject and SMS body must be provided when sending "
                "reminder preferred notifications"),
    3024: (400, "Email body, subject and SMS body must be provided when sending email and SMS "
                "notifications"),
    3025: (400, "Reminder email body, subject and SMS body must be provided when sending "
                "reminder email and SMS notifications"),
    4001: (401, "You must use an Altinn token, DialogToken or log in to IDPorten as someone "
                "with access to the resource and organization in Altinn Authorization"),
    4006: (401, "Could not determine caller"),
    4010: (400, "Resource type is not supported. Resource must be of type "
                "CorrespondenceService. If creating a Correspondence as a transmission with "
                "reference to an existing DialogId AltinnApp is also allowed."),
}

ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"
RESOURCE_URN = "urn:altinn:resource:"
EVENT_PREFIX = "no.altinn.correspondence."
MAX_FORM_FILE = 2 * 10 ** 9             # ApplicationConstants.MaxFormDataFileUploadSize
MAX_STREAM_FILE = 50 * 10 ** 9          # ApplicationConstants.MaxFileStreamUploadSize
LIST_LIMIT = 1000
FETCH_DEBOUNCE = 15.0                   # GetCorrespondenceOverviewHandler


class CorrError(Exception):
    """A Correspondence error by its Errors.cs number (`args` fill the message's %s)."""

    def __init__(self, code, *args):
        status, message = ERRORS[code]
        self.code = code
        self.status = status
        self.message = message % args if args else message
        super().__init__(self.message)


def without_prefix(identifier):
    return (identifier or "").split(":")[-1]


def to_urn(recipient):
    """InitializeCorrespondencesMapper.NormalizeRecipientToUrn."""
    number = without_prefix(recipient)
    if recipient.startswith("urn:altinn:person:idporten-email:") or \
            recipient.startswith("urn:altinn:person:legacy-selfidentified:"):
        return recipient
    return (ORG_URN if len(number) == 9 else PERSON_URN) + number


def alternative_subject(urn):
    number = without_prefix(urn)
    if urn.startswith(ORG_URN):
        return "/organisation/" + number
    if urn.startswith(PERSON_URN):
        return "/person/" + number
    return None


iso = broker.iso


class Resource:
    FIELDS = ("resourceId", "serviceOwner", "senders", "recipients", "resourceType",
              "isConfidential")

    def __init__(self, doc):
        if not isinstance(doc, dict):
            raise ValueError("a resource is a JSON object")
        unknown = set(doc) - set(self.FIELDS)
        if unknown:
            raise ValueError("unknown resource field(s): " + ", ".join(sorted(unknown)))
        rid = doc.get("resourceId")
        if not isinstance(rid, str) or not re.match(r"^[^:]{1,255}$", rid):
            raise ValueError("resourceId must be 1..255 characters without ':'")
        self.id = rid
        self.service_owner = self._number(doc.get("serviceOwner", "991825827"), 9)
        self.senders = [self._number(v, 9) for v in self._list(doc, "senders")] \
            or [self.service_owner]
        recipients = doc.get("recipients")
        self.recipients = None if recipients is None else \
            [self._number(v) for v in self._list(doc, "recipients")]
        self.type = doc.get("resourceType", "CorrespondenceService")
        if not isinstance(self.type, str):
            raise ValueError("resourceType must be a string")
        self.confidential = bool(doc.get("isConfidential", False))

    @staticmethod
    def _list(doc, key):
        value = doc.get(key) or []
        if not isinstance(value, list):
            raise ValueError("%s must be a list of numbers" % key)
        return value

    @staticmethod
    def _number(value, digits=None):
        number = without_prefix(str(value))
        ok = parties.valid_org_number(number) or \
            (digits is None and parties.valid_person_number(number))
        if not ok:
            raise ValueError("%r is not a valid %s" % (
                value, "organisation number" if digits else "organisation or person number"))
        return number

    def to_json(self):
        return {"resourceId": self.id, "serviceOwner": self.service_owner,
                "senders": self.senders, "recipients": self.recipients,
                "resourceType": self.type, "isConfidential": self.confidential}


class Attachment:
    def __init__(self, aid, resource, doc, sender, now):
        self.id = aid
        self.resource_id = resource.id
        self.sender = sender                          # the owner's URN
        self.file_name = doc.get("fileName")
        self.display_name = doc.get("displayName")
        self.is_encrypted = bool(doc.get("isEncrypted"))
        self.checksum = doc.get("checksum") or None
        self.senders_reference = doc.get("sendersReference")
        self.data_type = doc.get("dataType") or _data_type(self.file_name)
        days = doc.get("expirationInDays")
        self.expiration = now + (days if days is not None else 365) * 86400
        self.created = now
        self.history = [["Initialized", now, "Initialized - Waiting for upload"]]
        self.path = None
        self.size = 0
        self.correspondences = []                     # ids it is linked to

    @property
    def status(self):
        return self.history[-1][0]

    def set_status(self, status, now, text=None):
        self.history.append([status, now, text or status])

    def overview(self, details=False):
        status, changed, text = self.history[-1]
        doc = {"attachmentId": self.id, "resourceId": self.resource_id,
               "fileName": self.file_name, "displayName": self.display_name,
               "status": status, "statusText": text, "statusChanged": iso(changed),
               "sendersReference": self.senders_reference, "dataType": self.data_type,
               "correspondenceIds": list(self.correspondences), "isEncrypted": self.is_encrypted,
               "checksum": self.checksum, "sender": self.sender,
               "expirationTime": iso(self.expiration)}
        if details:
            doc["statusHistory"] = [{"status": s, "statusText": x, "statusChanged": iso(t)}
                                    for s, t, x in self.history]
        return doc


_TYPES = {".pdf": "application/pdf", ".txt": "text/plain", ".xml": "application/xml",
          ".json": "application/json", ".csv": "text/csv", ".html": "text/html",
          ".zip": "application/zip", ".png": "image/png", ".jpg": "image/jpeg",
          ".jpeg": "image/jpeg", ".gif": "image/gif", ".bmp": "image/bmp"}


def _data_type(name):
    return _TYPES.get(os.path.splitext(name or "")[1].lower(), "application/octet-stream")


class Correspondence:
    def __init__(self, cid, resource, model, recipient, attachments, now, reserved):
        c = model["correspondence"]
        self.id = cid
        self.resource_id = resource.id
        self.sender = ORG_URN + resource.service_owner
        self.recipient = recipient
        self.model = c
        self.content = c["content"]
        self.attachments = attachments               # [Attachment]
        self.idempotent_key = model.get("idempotentKey")
        self.publish_at = c.get("requestedPublishTime") or now
        self.due = c.get("dueDateTime")
        self.created = now
        self.history = [["Initialized", now, "Initialized"]]
        if reserved:
            self.history.append(["Reserved", now, "Recipient has reserved themselves from "
                                                 "public correspondences"])
        self.fetches = []                            # later fetches, kept apart (#1644)
        self.published = None
        self.read = None
        self.confirm_pending = False

    @property
    def status(self):
        return self.history[-1][0]

    def ever(self, status):
        return any(s == status for s, _, _ in self.history)

    def set_status(self, status, now, text=None):
        self.history.append([status, now, text or status])

    def overview(self, details=False):
        c = self.model
        status, changed, text = self.history[-1]
        atts = []
        for a in self.attachments:
            s, t, x = a.history[-1]
            atts.append({"id": a.id, "fileName": a.file_name, "displayName": a.display_name,
                         "isEncrypted": a.is_encrypted, "checksum": a.checksum,
                         "sendersReference": a.senders_reference, "dataType": a.data_type,
                         "created": iso(a.created), "dataLocationType":
                         "ExistingCorrespondenceAttachment", "status": s, "statusText": x,
                         "statusChanged": iso(t), "expirationTime": iso(a.expiration)})
        doc = {
            "correspondenceId": self.id, "resourceId": self.resource_id,
            "sender": self.sender, "sendersReference": c["sendersReference"],
            "messageSender": c.get("messageSender"), "recipient": self.recipient,
            "content": {"language": self.content["language"],
                        "messageTitle": self.content["messageTitle"],
                        "messageSummary": self.content.get("messageSummary"),
                        "messageBody": self.content["messageBody"], "attachments": atts},
            "requestedPublishTime": iso(self.publish_at),
            "dueDateTime": iso(self.due) if self.due is not None else None,
            "externalReferences": c.get("externalReferences") or [],
            "propertyList": c.get("propertyList") or {},
            "replyOptions": c.get("replyOptions") or [],
            "ignoreReservation": c.get("ignoreReservation"),
            "isConfirmationNeeded": bool(c.get("isConfirmationNeeded")),
            "isConfidential": bool(c.get("isConfidential")),
            "allowForwarding": bool(c.get("allowForwarding")),
            "created": iso(self.created), "status": status, "statusText": text,
            "statusChanged": iso(changed), "notifications": [],
            "altinn2CorrespondenceId": None,
            "published": iso(self.published) if self.published else None,
            "read": iso(self.read) if self.read else None,
        }
        if details:
            doc["statusHistory"] = [{"status": s, "statusText": x, "statusChanged": iso(t)}
                                    for s, t, x in self.history]
            doc["systemLabel"] = "Default"
        return doc


class Settings:
    FIELDS = {"publishDelay": "publish_delay", "scanDelay": "scan_delay",
              "confirmDelay": "confirm_delay", "malware": "malware",
              "failRecipients": "fail_recipients", "reserved": "reserved",
              "unknownRecipients": "unknown_recipients",
              "minExpirationDays": "min_expiration_days"}

    def __init__(self):
        self.publish_delay = 0.5       # seconds from requestedPublishTime to Published
        self.scan_delay = 0.5          # seconds an attachment stays UploadProcessing
        self.confirm_delay = 4.0       # VerifyCorrespondenceConfirmationHandler runs 4 s later
        self.malware = 0               # the next N scanned attachments are malicious
        self.fail_recipients = []      # their correspondences fail at publication
        self.reserved = []             # persons reserved against digital mail (KRR)
        self.unknown_recipients = []   # not in Register: 404 (1029)
        self.min_expiration_days = 14  # production's minimum (1 in test environments)

    def to_json(self):
        return {k: getattr(self, a) for k, a in self.FIELDS.items()}

    def update(self, doc):
        if not isinstance(doc, dict) or set(doc) - set(self.FIELDS):
            raise ValueError("body must be an object with some of: " + ", ".join(self.FIELDS))
        for key, value in doc.items():
            if key.endswith("Delay"):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
                    value >= 0
            elif key in ("malware", "minExpirationDays"):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            else:
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
                value = [without_prefix(v) for v in value] if ok else value
            if not ok:
                raise ValueError("%s has a bad value: %r" % (key, value))
            doc[key] = value
        for key, value in doc.items():
            setattr(self, self.FIELDS[key], value)


class CorrespondenceService:
    def __init__(self, platform):
        self.platform = platform
        self.lock = threading.RLock()
        self.resources = {}
        self.attachments = {}
        self.correspondences = {}
        self.keys = {}                 # idempotentKey -> correspondence id (never released)
        self.settings = Settings()
        self.dir = tempfile.mkdtemp(prefix="altinn-localtest-correspondence-")
        atexit.register(shutil.rmtree, self.dir, True)

    # -- resources and access -----------------------------------------------------------

    def put_resource(self, doc):
        resource = Resource(doc)
        with self.lock:
            self.resources[resource.id] = resource
        return resource

    def sender_resource(self, caller, rid):
        """The resource `caller` may send on: 1036 unknown, 4001 no write, 4010 wrong type."""
        resource = self.resources.get(rid)
        if resource is None:
            raise CorrError(1036)
        if caller is None or caller not in resource.senders:
            raise CorrError(4001)
        if resource.type != "CorrespondenceService":
            raise CorrError(4010)
        return resource

    def is_sender(self, caller, resource_id):
        resource = self.resources.get(resource_id)
        return resource is not None and caller is not None and caller in resource.senders

    def is_recipient(self, me, c):
        resource = self.resources.get(c.resource_id)
        if not me or without_prefix(c.recipient) not in me:
            return False
        return resource is not None and (resource.recipients is None or
                                         any(m in resource.recipients for m in me))

    # -- attachments --------------------------------------------------------------------

    def new_attachment(self, caller, doc):
        with self.lock:
            resource = self.sender_resource(caller, doc["resourceId"])
            a = Attachment(str(uuid.uuid4()), resource, doc, ORG_URN + resource.service_owner,
                           time.time())
            self.attachments[a.id] = a
            self._emit("attachmentinitialized", resource, "attachment", a.id, a.sender)
            return a

    def attachment_for_sender(self, caller, aid):
        with self.lock:
            a = self.attachments.get(aid)
            if a is None:
                raise CorrError(2001)
            if not self.is_sender(caller, a.resource_id):
                raise CorrError(4001)
            return a

    def begin_upload(self, a, length):
        with self.lock:
            if a.correspondences:
                raise CorrError(2003)
            if a.status == "Purged":
                raise CorrError(2006)
            if a.status != "Initialized":
                raise CorrError(2005)
            if length is not None and length > MAX_STREAM_FILE:
                raise CorrError(2004, "50GB")
            a.set_status("UploadProcessing", time.time(), "Processing upload")

    def store_upload(self, a, chunks):
        """Write the bytes; then the malware scan decides Published or Failed."""
        path = os.path.join(self.dir, a.id)
        md5 = hashlib.md5()
        size = 0
        try:
            with open(path, "wb") as f:
                for data in chunks:
                    size += len(data)
                    md5.update(data)
                    f.write(data)
        except BaseException:
            with self.lock:
                a.set_status("Failed", time.time(), "Upload failed")
                self._emit_attachment("attachmentuploadfailed", a)
            raise
        with self.lock:
            now = time.time()
            if size == 0:
                a.set_status("Failed", now, "Upload failed")
                _unlink(path)
                raise CorrError(2004, "50GB")
            if a.checksum and a.checksum.lower() != md5.hexdigest():
                a.set_status("Failed", now, "Checksum mismatch")
                _unlink(path)
                self._emit_attachment("attachmentuploadfailed", a)
                raise CorrError(2008)
            a.path, a.size = path, size
            a.checksum = a.checksum or md5.hexdigest()
        self._later(self.settings.scan_delay, self._scanned, a.id)

    def _scanned(self, aid):
        with self.lock:
            a = self.attachments.get(aid)
            if a is None or a.status != "UploadProcessing":
                return
            now = time.time()
            if self.settings.malware > 0:
                self.settings.malware -= 1
                a.set_status("Failed", now, "Malware scan failed: Malicious")
                self._emit_attachment("attachmentuploadfailed", a)
                for cid in a.correspondences:
                    c = self.correspondences[cid]
                    self._fail(c, now, "Malware scan failed for attachment " + a.id)
                return
            a.set_status("Published", now, "Published")
            self._emit_attachment("attachmentpublished", a)
            for cid in a.correspondences:
                self._advance(self.correspondences[cid])

    def purge_attachment(self, caller, aid):
        with self.lock:
            a = self.attachment_for_sender(caller, aid)
            if a.status == "Purged":
                raise CorrError(2006)
            if a.status == "Expired":
                raise CorrError(2018)
            if any(self.correspondences[c].status not in PURGED for c in a.correspondences):
                raise CorrError(2007)
            a.set_status("Purged", time.time(), "Purged")
            _unlink(a.path)
            a.path = None
            return a

    # -- initialize ---------------------------------------------------------------------

    def initialize(self, caller, model, files=()):
        """A validated request (corrcheck) with its new files [(metadata, bytes)]; returns
        ([Correspondence], [attachment ids])."""
        c = model["correspondence"]
        recipients = model["recipients"]
        with self.lock:
            key = model.get("idempotentKey")
            if key is not None:
                if len(recipients) > 1:
                    raise CorrError(1047)
                if key in self.keys:
                    raise CorrError(1034)
            resource = self.sender_resource(caller, c["resourceId"])
            sender = ORG_URN + resource.service_owner
            if len({to_urn(r) for r in recipients}) != len(recipients):    # after the mapper
                raise CorrError(1006)
            unknown = [without_prefix(r) for r in recipients
                       if without_prefix(r) in self.settings.unknown_recipients or
                       (len(without_prefix(r)) == 9 and
                        not parties.valid_org_number(without_prefix(r)))]
            if unknown:
                raise CorrError(1029, ", ".join(unknown))
            if c.get("isConfirmationNeeded") and c.get("dueDateTime") is None:
                raise CorrError(1016)
            reserved = set()
            if not c.get("ignoreReservation"):
                reserved = {without_prefix(r) for r in recipients
                            if without_prefix(r) in self.settings.reserved}
                if reserved and len(recipients) == 1:
                    raise CorrError(1030, recipients[0])
            now = time.time()
            publish = c.get("requestedPublishTime") or now
            due = c.get("dueDateTime")
            if due is not None:
                if due < now:
                    raise CorrError(1008)
                if due < publish:
                    raise CorrError(1009)
            for check in (corrcheck.content_error, corrcheck.reply_options_error):
                code = check(c)
                if code:
                    raise CorrError(code)
            code = corrcheck.notification_error(c.get("notification"))
            if code:
                raise CorrError(code)
            existing = []
            for aid in model.get("existingAttachments") or []:
                a = self.attachments.get(aid)
                if a is None:
                    raise CorrError(1007)
                existing.append(a)
            new_meta = c["content"].get("attachments") or []
            if len(existing) + len(new_meta) > 100:
                raise CorrError(1038)
            for a in existing:
                if a.status != "Published":
                    raise CorrError(1018)
                if a.sender != sender:
                    raise CorrError(1017)
                if a.expiration - now < 6 * 3600:
                    raise CorrError(1055, 6)
            if files is None or len(new_meta) != len(files):
                raise CorrError(1005)
            for meta, data in files:
                code = corrcheck.file_name_error(meta.get("fileName"))
                if code:
                    raise CorrError(code)
                if not data or len(data) > MAX_FORM_FILE:
                    raise CorrError(2004, "2GB")
            attachments = list(existing)
            created = []
            for meta, data in files:
                a = Attachment(str(uuid.uuid4()), resource, meta, sender, now)
                a.path = os.path.join(self.dir, a.id)
                with open(a.path, "wb") as f:
                    f.write(data)
                a.size = len(data)
                if a.checksum and a.checksum.lower() != hashlib.md5(data).hexdigest():
                    raise CorrError(2008)
                a.checksum = a.checksum or hashlib.md5(data).hexdigest()
                a.set_status("UploadProcessing", now, "Processing upload")
                self.attachments[a.id] = a
                attachments.append(a)
                created.append(a)
            out = []
            for r in recipients:
                urn = to_urn(r)
                corr = Correspondence(str(uuid.uuid4()), resource, model, urn, attachments,
                                      now, without_prefix(r) in reserved)
                self.correspondences[corr.id] = corr
                for a in attachments:
                    a.correspondences.append(corr.id)
                if key is not None:
                    self.keys[key] = corr.id
                out.append(corr)
                if corr.status != "Reserved":
                    self._emit("correspondenceinitialized", resource, "correspondence",
                               corr.id, sender)
            for a in created:
                self._emit_attachment("attachmentinitialized", a)
                self._later(self.settings.scan_delay, self._scanned, a.id)
            for corr in out:
                self._advance(corr)
            return out, [a.id for a in attachments]

    # -- publication --------------------------------------------------------------------

    def _advance(self, c):
        """Initialized -> ReadyForPublish when every attachment is Published; then schedule
        the publication at requestedPublishTime (+ publishDelay)."""
        if c.status != "Initialized":
            return
        if any(a.status != "Published" for a in c.attachments):
            return
        now = time.time()
        c.set_status("ReadyForPublish", now)
        delay = max(0.0, c.publish_at - now) + self.settings.publish_delay
        self._later(delay, self._publish, c.id)

    def _publish(self, cid):
        """PublishCorrespondenceHandler."""
        with self.lock:
            c = self.correspondences.get(cid)
            if c is None or c.status != "ReadyForPublish":
                return
            now = time.time()
            if without_prefix(c.recipient) in self.settings.fail_recipients:
                self._fail(c, now, "Recipient not found in Altinn Register")
                return
            c.set_status("Published", now)
            c.published = now
            resource = self.resources.get(c.resource_id)
            self._emit("correspondencepublished", resource, "correspondence", c.id,
                       c.recipient, stable="published:" + c.id)
            if c.due is not None:
                self._later(max(0.0, c.due - now), self._due, c.id)

    def _fail(self, c, now, text):
        if c.status not in ("Initialized", "ReadyForPublish"):
            return
        c.set_status("Failed", now, text)
        self._emit("correspondencepublishfailed", self.resources.get(c.resource_id),
                   "correspondence", c.id, c.sender)

    def _due(self, cid):
        """CorrespondenceDueDateHandler: tell the recipient what never happened."""
        with self.lock:
            c = self.correspondences.get(cid)
            if c is None or c.status in PURGED:
                return
            resource = self.resources.get(c.resource_id)
            if not c.ever("Read"):
                self._emit("correspondencereceiverneverread", resource, "correspondence",
                           c.id, c.recipient)
            if c.model.get("isConfirmationNeeded") and not c.ever("Confirmed"):
                self._emit("correspondencereceiverneverconfirmed", resource, "correspondence",
                           c.id, c.recipient)

    # -- reading ------------------------------------------------------------------------

    def view(self, caller, me, cid):
        """(correspondence, as_recipient) for overview/details; a recipient's call adds
        Fetched (debounced 15 s)."""
        with self.lock:
            c = self.correspondences.get(cid)
            if c is None:
                raise CorrError(1001)
            if self.is_recipient(me, c):
                if c.status in HIDDEN_FOR_RECIPIENT or c.status in PURGED or \
                        c.status == "Reserved":
                    raise CorrError(1001)
                self._fetched(c)
                return c, True
            if self.is_sender(caller, c.resource_id):
                return c, False
            raise CorrError(4001)

    def _fetched(self, c):
        now = time.time()
        if not c.ever("Fetched"):
            c.set_status("Fetched", now)
            return
        if not c.fetches or now - c.fetches[-1] >= FETCH_DEBOUNCE:
            c.fetches.append(now)

    def _mine(self, me, cid):
        c = self.correspondences.get(cid)
        if c is None:
            raise CorrError(1001)
        if not self.is_recipient(me, c):
            raise CorrError(4001)
        if c.status not in AVAILABLE or c.status == "Reserved":
            raise CorrError(1001)
        return c

    def content(self, me, cid):
        """GET /content: Fetched, and Read the first time (with its event)."""
        with self.lock:
            c = self._mine(me, cid)
            self._fetched(c)
            if not c.ever("Read"):
                self._read(c)
            return c.content["messageBody"]

    def _read(self, c):
        now = time.time()
        c.set_status("Read", now)
        c.read = now
        self._emit("correspondencereceiverread", self.resources.get(c.resource_id),
                   "correspondence", c.id, c.sender)

    def mark_as_read(self, me, cid):
        with self.lock:
            c = self._mine(me, cid)
            if not c.ever("Fetched"):
                raise CorrError(1024)
            if c.ever("Read"):
                raise CorrError(1040)
            self._read(c)
            return c

    def confirm(self, me, cid):
        with self.lock:
            c = self._mine(me, cid)
            if not c.ever("Fetched"):
                raise CorrError(1025)
            if c.ever("Confirmed"):
                raise CorrError(1041)
            if not c.confirm_pending:
                c.confirm_pending = True
                self._later(self.settings.confirm_delay, self._confirmed, c.id)
            return c

    def _confirmed(self, cid):
        """VerifyCorrespondenceConfirmationHandler."""
        with self.lock:
            c = self.correspondences.get(cid)
            if c is None or c.ever("Confirmed") or c.status in PURGED:
                return
            c.set_status("Confirmed", time.time())
            c.confirm_pending = False
            self._emit("correspondencereceiverconfirmed", self.resources.get(c.resource_id),
                       "correspondence", c.id, c.sender)

    def purge(self, caller, me, cid):
        with self.lock:
            c = self.correspondences.get(cid)
            if c is None:
                raise CorrError(1001)
            now = time.time()
            if self.is_recipient(me, c):
                if c.status in HIDDEN_FOR_RECIPIENT:
                    raise CorrError(1001)
                if c.status in PURGED:
                    raise CorrError(1014)
                if c.model.get("isConfirmationNeeded") and not c.ever("Confirmed"):
                    raise CorrError(1026)
                c.set_status("PurgedByRecipient", now)
            elif self.is_sender(caller, c.resource_id):
                if c.status in PURGED:
                    raise CorrError(1014)
                if c.status not in ("Initialized", "ReadyForPublish", "Failed"):
                    raise CorrError(1013)
                c.set_status("PurgedByAltinn", now)
            else:
                raise CorrError(4001)
            self._emit("correspondencepurged", self.resources.get(c.resource_id),
                       "correspondence", c.id, c.sender)
            return c

    def download(self, me, cid, aid):
        """A recipient's attachment download: (attachment, path); adds
        AttachmentsDownloaded."""
        with self.lock:
            c = self._mine(me, cid)
            a = next((x for x in c.attachments if x.id == aid), None)
            if a is None:
                raise CorrError(2001)
            if a.status == "Purged" or not a.path:
                raise CorrError(2019)
            c.set_status("AttachmentsDownloaded", time.time(),
                         "Attachment %s has been downloaded" % a.id)
            return a

    # -- list ---------------------------------------------------------------------------

    def search(self, caller, me, rid, role, start, end, status, senders_reference, key):
        """GetCorrespondencesHandler: ids, newest requestedPublishTime first, at most 1000."""
        with self.lock:
            if start is not None and end is not None and start > end:
                raise CorrError(1027)
            rows = []
            for c in self.correspondences.values():
                if rid and c.resource_id != rid:
                    continue
                as_sender = role in ("Sender", "RecipientAndSender") and \
                    self.is_sender(caller, c.resource_id)
                as_recipient = role in ("Recipient", "RecipientAndSender") and \
                    self.is_recipient(me, c)
                if as_recipient and not as_sender and status is None and \
                        c.status in HIDDEN_FOR_RECIPIENT:
                    as_recipient = False
                if not (as_sender or as_recipient):
                    continue
                if start is not None and not c.publish_at > start:
                    continue
                if end is not None and not c.publish_at < end:
                    continue
                if status is not None and not c.ever(status):
                    continue
                if senders_reference is not None and \
                        c.model["sendersReference"] != senders_reference:
                    continue
                if key is not None and c.idempotent_key != key:
                    continue
                rows.append((c.publish_at, c.id))
            rows.sort(reverse=True)
            return [cid for _, cid in rows[:LIST_LIMIT]]

    # -- plumbing -----------------------------------------------------------------------

    def _later(self, delay, fn, *args):
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        timer.start()

    def _emit_attachment(self, kind, a):
        self._emit(kind, self.resources.get(a.resource_id), "attachment", a.id, a.sender)

    def _emit(self, kind, resource, source, instance, party, stable=None):
        if resource is None:
            return
        event_id = None
        if stable:
            event_id = str(uuid.UUID(bytes=hashlib.sha256(stable.encode()).digest()[:16]))
        self.platform.events.store.publish([dict(
            event_class=CorrespondenceEvent, event_type=EVENT_PREFIX + kind,
            resource_id=resource.id, instance=instance, source_kind=source, party=party,
            owner=resource.service_owner, event_id=event_id)])


def _js(value):
    return json.dumps(value, ensure_ascii=False)


def _unlink(path):
    try:
        os.unlink(path)
    except (OSError, TypeError):
        pass


class CorrespondenceEvent:
    """A Correspondence CloudEvent (AltinnEventBus.cs): `source` the platform's base +
    /correspondence/api/v1/<correspondence|attachment>, `subject` the party URN,
    `alternativesubject` /organisation/<9> or /person/<11>; no data."""

    __slots__ = ("seq", "id", "time", "type", "subject", "alternativesubject", "resource",
                 "resourceinstance", "party", "owner", "source_path", "_head", "_tail")

    def __init__(self, seq, time, event_type, resource_id, instance, source_kind, party, owner,
                 event_id=None):
        js = _js
        self.seq = seq
        self.id = event_id or str(uuid.uuid4())
        self.time = time
        self.type = event_type
        self.party = without_prefix(party)
        self.owner = owner
        self.subject = party
        self.alternativesubject = alternative_subject(party)
        self.resource = RESOURCE_URN + resource_id
        self.resourceinstance = instance
        self.source_path = "/correspondence/api/v1/" + source_kind
        self._head = '{"specversion":"1.0","id":%s,"time":%s,"source":"' % (
            js(self.id), js(dates.format_ticks(time)))
        alt = ',"alternativesubject":%s' % js(self.alternativesubject) \
            if self.alternativesubject else ""
        self._tail = '%s","subject":%s%s,"type":%s,"resource":%s,"resourceinstance":%s}' % (
            self.source_path, js(self.subject), alt, js(event_type), js(self.resource),
            js(instance))

    def render(self, base_escaped):
        return self._head + base_escaped + self._tail

    def visible_to(self, principal):
        """The party the event is about, and the resource's service owner."""
        org = principal.org_number or broker.caller_org(principal.claims)
        who = {without_prefix(str(org))} if org else set()
        pid = principal.claims.get("pid")
        if pid:
            who.add(str(pid))
        return bool(who & {self.party, self.owner})


# -- the demo seed --------------------------------------------------------------------------

DEMO_RESOURCE = "altinnfs-demo-correspondence"
DEMO_OWNER = "991825827"
DEMO_RESERVED = "02056610076"     # a person reserved against digital mail (valid MOD11)


def seed_demo(service):
    """`--seed demo`: the resource altinnfs-demo-correspondence (owner ttd, open to every
    recipient) and one person reserved in KRR."""
    service.put_resource({"resourceId": DEMO_RESOURCE, "serviceOwner": DEMO_OWNER})
    service.settings.reserved = [DEMO_RESERVED]


CorrespondenceService.seed_demo = seed_demo
