"""Correspondence's vocabulary (altinn-correspondence at da78516): statuses, Errors.cs, resources,
attachments, correspondences with their overview/details shapes, the hostile settings and the
CloudEvent class the event store renders. correspondence.py holds the service that changes them.

A correspondence keeps two histories, as the code does since "separate fetched statuses into its
own table (#1644)": its statuses, and the times it was fetched. Its `status` is the highest
status by enum value other than Fetched (GetHighestStatus), so a fetch never shows as the
status, Reserved and Failed outrank Published, and AttachmentsDownloaded outranks Confirmed.
The details' `statusHistory` merges both in time order; the sender's leaves out purged and
archived entries (IsAvailableForSender).
"""

import json
import os
import re
import uuid

from . import broker, dates, parties

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
    1060: (400, "Confidential correspondences (resources with the access package "
                "post-til-virksomheten-med-taushetsbelagt-innhold) cannot be initialized without "
                "setting the 'IsConfidential' flag to true"),
    1061: (400, "Correspondences cannot be initialized with 'IsConfidential' flag set to true if "
                "the resource is not confidential"),
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
    2020: (400, "The attachment has expired and cannot be downloaded"),
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
    3017: (400, "Custom recipient with multiple recipients is not allowed"),
    3022: (400, "OverrideRegisteredContactInformation flag can only be used when "
                "CustomRecipients is provided"),
    3024: (400, "Email body, subject and SMS body must be provided when sending email and SMS "
                "notifications"),
    3025: (400, "Reminder email body, subject and SMS body must be provided when sending "
                "reminder email and SMS notifications"),
    4001: (401, "You must use an Altinn token, DialogToken or log in to IDPorten as someone "
                "with access to the resource and organization in Altinn Authorization"),
    4006: (401, "Could not determine caller"),
    4009: (400, "Resource type is not supported. Resource must be of type CorrespondenceService."),
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
        self.expiration_days = days
        self.expiration = now + (days if days is not None else 365) * 86400
        self.created = now
        self.history = [["Initialized", now, "Initialized"]]
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
               "expirationInDays": self.expiration_days}
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
        self.orders = []                             # [(notification order id, reminder)]
        notification = c.get("notification")
        if notification and not reserved:
            self.orders.append((str(uuid.uuid4()), False))
            if notification.get("sendReminder"):
                self.orders.append((str(uuid.uuid4()), True))
        self.fetched = []                            # fetch times, a table apart (#1644)
        self.published = None
        self.read = None
        self.confirm_pending = False

    def highest(self):
        """GetHighestStatus: the entry with the highest status value (Fetched excluded)."""
        return max(self.history, key=lambda h: STATUSES.index(h[0]))

    @property
    def status(self):
        return self.highest()[0]

    def ever(self, status):
        """StatusHasBeen: in either table."""
        if status == "Fetched":
            return bool(self.fetched)
        return any(s == status for s, _, _ in self.history)

    def set_status(self, status, now, text=None):
        self.history.append([status, now, text or status])

    def overview(self, details=False, as_recipient=False):
        c = self.model
        status, changed, text = self.highest()
        atts = []
        for a in self.attachments:
            s, t, x = a.history[-1]
            atts.append({"id": a.id, "fileName": a.file_name, "displayName": a.display_name,
                         "isEncrypted": a.is_encrypted, "checksum": a.checksum,
                         "sendersReference": a.senders_reference, "dataType": a.data_type,
                         "expirationInDays": a.expiration_days, "created": iso(a.created), "dataLocationType":
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
            "replyOptions": c.get("replyOptions") or [], "notification": None,
            "ignoreReservation": c.get("ignoreReservation"),
            "isConfirmationNeeded": bool(c.get("isConfirmationNeeded")),
            "isConfidential": bool(c.get("isConfidential")),
            "allowForwarding": bool(c.get("allowForwarding")),
            "created": iso(self.created), "status": status, "statusText": text,
            "statusChanged": iso(changed),
            "notifications": [{"notificationOrderId": o, "isReminder": r} for o, r in self.orders],
            "altinn2CorrespondenceId": None,
            "published": iso(self.published) if self.published else None,
            "read": iso(self.read) if self.read else None,
        }
        if details:
            rows = self.history + [["Fetched", t, "Fetched"] for t in self.fetched]
            rows = sorted(rows, key=lambda h: h[1])
            if not as_recipient:
                rows = [h for h in rows if h[0] not in PURGED + ("Archived",)]
            doc["statusHistory"] = [{"status": s, "statusText": x, "statusChanged": iso(t)}
                                    for s, t, x in rows]
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
