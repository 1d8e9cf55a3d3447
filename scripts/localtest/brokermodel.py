"""Broker's vocabulary for broker.py: statuses and their texts, Errors.cs, the limits,
identifiers, resources, transfers, TUS uploads, the settings of the hostile switches, and
the CloudEvent Broker publishes. No locking here: broker.BrokerService holds the lock."""

import datetime
import hashlib
import json
import os
import re
import uuid

from . import content, dates


STATUSES = ("Initialized", "UploadStarted", "UploadProcessing", "Published", "Cancelled",
            "AllConfirmedDownloaded", "Purged", "Failed")
STATUS_TEXT = {
    "Initialized": "Ready for upload", "UploadStarted": "Upload started",
    "UploadProcessing": "Processing upload", "Published": "Ready for download",
    "Cancelled": "FileTransfer cancelled", "AllConfirmedDownloaded": "All downloaded",
    "Purged": "FileTransfer has been purged", "Failed": "Upload failed",
}
RECIPIENT_STATUSES = ("Initialized", "DownloadStarted", "DownloadConfirmed")
RECIPIENT_TEXT = {
    "Initialized": "Initialized",
    "DownloadStarted": "Recipient has attempted to download fileTransfer",
    "DownloadConfirmed": "Recipient has downloaded fileTransfer",
}

# Errors.cs: number -> (HTTP status, message)
ERRORS = {
    1: (404, "The requested file transfer was not found"),
    2: (400, "Service owner needs to be configured to use the broker API"),
    3: (400, "No file uploaded yet"),
    4: (409, "A file transfer has already been, or attempted to be, created. Create a new "
             "file transfer resource to try again."),
    5: (403, "The resource needs to be registered as an Altinn 3 resource and it has to be "
             "associated with a service owner"),
    6: (401, "You must use a bearer token that represents a system user with access to the "
             "resource in the Resource Rights Registry"),
    7: (403, "The requested file transfer's file is not ready for download. See file "
             "transfer status."),
    8: (500, "Error occurred while uploading file See /details for more information."),
    9: (400, "The checksum of uploaded file did not match the checksum specified in "
             "initialize call."),
    10: (400, "A file transfer can only be confirmed to be downloaded when it is published. "
              "See file transfer status."),
    16: (400, "File size exceeds maximum"),
    # the service-owner endpoint's (brokerowner.py)
    11: (400, "Max file transfer size cannot be negative"),
    12: (400, "Max file transfer size cannot be zero"),
    13: (400, "Max file transfer size cannot be set higher than 50GB in production "
              "unless the resource has been pre-approved for disabled virus scan. "
              "Contact us @ Slack."),
    14: (400, "Invalid file transfer time to live format. Should follow ISO8601 "
              "standard for duration. Example: 'P30D' for 30 days."),
    15: (400, "Time to live cannot exceed 365 days"),
    17: (400, "Invalid grace period format. Should follow ISO8601 standard for "
              "duration. Example: 'PT2H' for 2 hours."),
    18: (400, "Grace period cannot exceed 24 hours"),
    22: (400, "Max file transfer size cannot be set higher than 100GB in production "
              "because it has not yet been tested for it. Contact us @ Slack if you "
              "need it."),
    25: (400, "The resource has not been configured."),
    19: (400, "Cannot confirm before the files have been downloaded"),
    20: (400, "In order to use file transfers without virus scan the service resource needs "
              "to be approved by Altinn. Please contact us @ Slack."),
    21: (503, "Storage provider is not ready yet. Please try again later."),
    26: (400, "The resource requires the service owner party to be present as part of the "
              "transaction."),
    27: (400, "When required party is specified and the required party is not the sender, "
              "the number of recipients can only be one."),
    28: (400, "All recipients need to be in the access list of the resource."),
    29: (416, "The requested byte range is not satisfiable."),
}

MAX_VIRUS_SCAN_SIZE = 50 * 1000 * 1000 * 1000          # ApplicationConstants.cs
MAX_UPLOAD_SIZE = 32 * 50000 * 1024 * 1024              # without virus scan
DEFAULT_TTL = 30 * 86400
MAX_TTL = 365 * 86400
DEFAULT_GRACE = 2 * 3600
MAX_GRACE = 24 * 3600
TUS_EXPIRATION = 24 * 3600                              # TusOptions.UploadExpiration
STUCK_AFTER = 24 * 3600                                 # StuckFileTransferHandler.cs
STUCK_WINDOW = 3600
STUCK_TEXT = "File transfer was stuck in UploadStarted as it failed upload mid-request."
SEARCH_LIMIT = 100
ORG_URN = "urn:altinn:organization:identifier-no:"
RESOURCE_URN = "urn:altinn:resource:"
EVENT_PREFIX = "no.altinn.broker."
UPLOAD_ABORTED = "File upload failed and was aborted"
CHECKSUM_MISMATCH = "Checksum mismatch"
_ORG_DIGITS = re.compile(r"^\d{9}$")


class BrokerError(Exception):
    """A Broker error by its Errors.cs number."""

    def __init__(self, code):
        super().__init__(ERRORS[code][1])
        self.code = code
        self.status, self.message = ERRORS[code]


def without_prefix(identifier):
    """StringExtensions.WithoutPrefix: the part after the last colon."""
    return (identifier or "").split(":")[-1]


def with_prefix(org_number):
    return org_number if org_number.startswith("0192:") else "0192:" + org_number


def iso(t):
    """A time as System.Text.Json writes a UTC DateTimeOffset from PostgreSQL: microseconds,
    trailing zeros trimmed, `+00:00`."""
    dt = datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = ("%06d" % dt.microsecond).rstrip("0")
    return text + ("." + frac if frac else "") + "+00:00"


def parse_duration(value):
    """Seconds from an ISO 8601 duration (P30D, PT2H, P1DT12H, PT90S) or a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = re.match(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$",
                 str(value or ""))
    if not m or value in ("P", "PT") or str(value).endswith("T"):
        raise ValueError("not an ISO 8601 duration: %r" % (value,))
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


class Resource:
    def __init__(self, doc):
        if not isinstance(doc, dict):
            raise ValueError("a resource is a JSON object")
        known = {"resourceId", "serviceOwner", "senders", "recipients", "accessListEnabled",
                 "maxFileTransferSize", "fileTransferTimeToLive",
                 "purgeFileTransferAfterAllRecipientsConfirmed",
                 "purgeFileTransferGracePeriod", "approvedForDisabledVirusScan",
                 "requiredParty", "serviceOwnerConfigured"}
        unknown = set(doc) - known
        if unknown:
            raise ValueError("unknown resource field(s): " + ", ".join(sorted(unknown)))
        rid = doc.get("resourceId")
        if not isinstance(rid, str) or not re.match(r"^[^:]{1,255}$", rid):
            raise ValueError("resourceId must be 1..255 characters without ':'")
        self.id = rid
        self.service_owner = self._org(doc.get("serviceOwner", "991825827"), "serviceOwner")
        self.senders = self._orgs(doc.get("senders", []), "senders")
        self.recipients = self._orgs(doc.get("recipients", []), "recipients")
        self.access_list = bool(doc.get("accessListEnabled", True))
        size = doc.get("maxFileTransferSize")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)
                                 or size <= 0):
            raise ValueError("maxFileTransferSize must be a positive integer (bytes)")
        self.max_size = size
        self.ttl = self._duration(doc, "fileTransferTimeToLive", DEFAULT_TTL, MAX_TTL)
        self.ttl_set = doc.get("fileTransferTimeToLive") is not None
        self.grace_set = doc.get("purgeFileTransferGracePeriod") is not None
        self.shim = False
        self.service_code = None
        self.service_edition = None
        self.purge_after_confirm = bool(doc.get("purgeFileTransferAfterAllRecipientsConfirmed",
                                                False))
        self.grace = self._duration(doc, "purgeFileTransferGracePeriod", DEFAULT_GRACE,
                                    MAX_GRACE)
        self.approved_no_scan = bool(doc.get("approvedForDisabledVirusScan", False))
        party = doc.get("requiredParty")
        self.required_party = without_prefix(party) if party else None
        self.owner_configured = bool(doc.get("serviceOwnerConfigured", True))

    @staticmethod
    def _org(value, what):
        number = without_prefix(str(value))
        if not _ORG_DIGITS.match(number):
            raise ValueError("%s: %r is not an organisation number" % (what, value))
        return number

    def _orgs(self, values, what):
        if not isinstance(values, list):
            raise ValueError("%s must be a list of organisation numbers" % what)
        return [self._org(v, what) for v in values]

    @staticmethod
    def _duration(doc, key, default, cap):
        if doc.get(key) is None:
            return default
        try:
            seconds = parse_duration(doc[key])
        except ValueError as e:
            raise ValueError("%s: %s" % (key, e))
        if seconds <= 0 or seconds > cap:
            raise ValueError("%s must be positive and at most %d s" % (key, cap))
        return seconds

    def to_json(self):
        return {"resourceId": self.id, "serviceOwner": self.service_owner,
                "senders": self.senders, "recipients": self.recipients,
                "accessListEnabled": self.access_list, "maxFileTransferSize": self.max_size,
                "fileTransferTimeToLive": self.ttl,
                "purgeFileTransferAfterAllRecipientsConfirmed": self.purge_after_confirm,
                "purgeFileTransferGracePeriod": self.grace,
                "approvedForDisabledVirusScan": self.approved_no_scan,
                "requiredParty": self.required_party,
                "serviceOwnerConfigured": self.owner_configured}


class FileContent:
    """The stored bytes of a transfer, sent in chunks from its file."""

    kind = "file"

    def __init__(self, path, size):
        self.path = path
        self.size = size

    def chunks(self, start, end):
        with open(self.path, "rb") as f:
            f.seek(start)
            while start < end:
                data = f.read(min(content.CHUNK_SIZE, end - start))
                if not data:
                    return
                start += len(data)
                yield data

    def read(self):
        with open(self.path, "rb") as f:
            return f.read()


class Transfer:
    def __init__(self, tid, resource, doc, sender_org, now):
        self.id = tid
        self.resource_id = resource.id
        self.file_name = doc["fileName"]
        self.reference = doc.get("sendersFileTransferReference")
        self.sender = doc["sender"]                    # as submitted (FileTransferRepository)
        self.sender_org = sender_org
        self.recipients = []
        for r in doc["recipients"]:                    # 0192:<orgnr>, duplicates kept once
            norm = with_prefix(without_prefix(r))
            if norm not in self.recipients:
                self.recipients.append(norm)
        self.properties = dict(doc.get("propertyList") or {})
        self.given_checksum = doc.get("checksum") or None
        if self.given_checksum is not None and not self.given_checksum.strip():
            self.given_checksum = None
        self.checksum = self.given_checksum
        self.use_virus_scan = not doc.get("disableVirusScan")
        self.size = 0
        self.created = now
        self.expiration = now + resource.ttl
        self.history = []                 # [status, time, text or None]
        self.recipient_history = []       # [recipient, status, time]
        self.path = None                  # the stored bytes, once uploaded
        self.uploaded = False             # a file location was recorded (kept after purge)
        self.tus = None                   # TusUpload while a TUS upload exists
        self.purge_at = None              # after all confirmed, with the resource's grace
        self.set_status("Initialized", now)
        for r in self.recipients:
            self.recipient_history.append([r, "Initialized", now])

    @property
    def status(self):
        return self.history[-1][0]

    def set_status(self, status, now, text=None):
        self.history.append([status, now, text])

    def status_time(self, status):
        """When the transfer last entered `status` (None if never)."""
        times = [t for s, t, _ in self.history if s == status]
        return max(times) if times else None

    def recipient_status(self, recipient):
        current = None
        for r, s, t in self.recipient_history:
            if r == recipient:
                current = (s, t)
        return current

    def overview(self, details=False):
        status, changed, text = self.history[-1]
        published = self.status_time("Published")
        recipients = []
        for r in self.recipients:
            s, t = self.recipient_status(r)
            recipients.append({"recipient": r, "currentRecipientFileTransferStatusCode": s,
                               "currentRecipientFileTransferStatusText": RECIPIENT_TEXT[s],
                               "currentRecipientFileTransferStatusChanged": iso(t)})
        doc = {
            "fileTransferId": self.id, "resourceId": self.resource_id,
            "fileName": self.file_name, "sendersFileTransferReference": self.reference,
            "checksum": self.checksum, "useVirusScan": self.use_virus_scan,
            "fileTransferSize": self.size, "fileTransferStatus": status,
            "fileTransferStatusText": text or STATUS_TEXT[status],
            "fileTransferStatusChanged": iso(changed), "created": iso(self.created),
            "expirationTime": iso(self.expiration), "sender": self.sender,
            "recipients": recipients, "propertyList": self.properties,
        }
        if not details:
            doc["published"] = iso(published) if published is not None else None
            return doc
        doc["fileTransferStatusHistory"] = [
            {"fileTransferStatus": s, "fileTransferStatusText": x or STATUS_TEXT[s],
             "fileTransferStatusChanged": iso(t)} for s, t, x in self.history]
        doc["recipientFileTransferStatusHistory"] = [
            {"recipient": r, "recipientFileTransferStatusCode": s,
             "recipientFileTransferStatusText": RECIPIENT_TEXT[s],
             "recipientFileTransferStatusChanged": iso(t)}
            for r, s, t in self.recipient_history]
        return doc


class TusUpload:
    def __init__(self, length, path, now, expiration=TUS_EXPIRATION):
        self.length = length
        self.offset = 0
        self.path = path
        self.md5 = hashlib.md5()
        self.expires = now + expiration    # sliding: each PATCH moves it
        self.activity = now
        self.busy = False                 # a PATCH is writing


class Settings:
    def __init__(self):
        self.scan_delay = 0.5          # seconds a scanned transfer stays in UploadProcessing
        self.malware = 0               # the next N scanned uploads are found malicious
        self.cut_upload_after = None   # bytes read before an upload is cut off
        self.cut_count = 0
        self.cut_status = None         # answer after the cut (None: drop the connection)
        self.storage_not_ready = False     # initialize answers 503 (21)
        self.rate_limits = True        # APIM's per-caller limits (429)
        self.tus_expiration = TUS_EXPIRATION   # an unfinished TUS upload is dropped
        self.stuck_after = STUCK_AFTER         # UploadStarted this long -> Failed ...
        self.stuck_window = STUCK_WINDOW       # ... unless TUS was active this recently

    FIELDS = {"scanDelay": "scan_delay", "malware": "malware",
              "cutUploadAfter": "cut_upload_after", "cutCount": "cut_count",
              "cutStatus": "cut_status", "storageNotReady": "storage_not_ready",
              "rateLimits": "rate_limits", "tusExpiration": "tus_expiration",
              "stuckAfter": "stuck_after", "stuckActivityWindow": "stuck_window"}

    def to_json(self):
        return {k: getattr(self, a) for k, a in self.FIELDS.items()}

    def update(self, doc):
        if not isinstance(doc, dict) or set(doc) - set(self.FIELDS):
            raise ValueError("body must be an object with some of: " + ", ".join(self.FIELDS))
        checks = {
            "scanDelay": lambda v: isinstance(v, (int, float)) and v >= 0,
            "malware": lambda v: isinstance(v, int) and v >= 0,
            "cutUploadAfter": lambda v: v is None or (isinstance(v, int) and v >= 0),
            "cutCount": lambda v: isinstance(v, int) and v >= 0,
            "cutStatus": lambda v: v is None or (isinstance(v, int) and 100 <= v <= 599),
            "storageNotReady": lambda v: isinstance(v, bool),
            "rateLimits": lambda v: isinstance(v, bool),
            "tusExpiration": lambda v: isinstance(v, (int, float)) and v > 0,
            "stuckAfter": lambda v: isinstance(v, (int, float)) and v > 0,
            "stuckActivityWindow": lambda v: isinstance(v, (int, float)) and v >= 0,
        }
        flags = ("storageNotReady", "rateLimits")
        for key, value in doc.items():
            if (isinstance(value, bool) and key not in flags) or not checks[key](value):
                raise ValueError("%s has a bad value: %r" % (key, value))
        for key, value in doc.items():
            setattr(self, self.FIELDS[key], value)


class UploadCut(Exception):
    """The cut-upload switch fired: `status` to answer, or None to drop the connection."""

    def __init__(self, status):
        super().__init__("upload cut")
        self.status = status



def _js(value):
    return json.dumps(value, ensure_ascii=False)


def _unlink(path):
    try:
        os.unlink(path)
    except (OSError, TypeError):
        pass


class BrokerEvent:
    """A Broker CloudEvent as Events stores it (AltinnEventBus.CreateCloudEvent): `source`
    is the platform's base + /broker/api/v1/filetransfer, `subject` the organisation URN,
    `data` {"Role": ...}; no alternativesubject."""

    __slots__ = ("seq", "id", "time", "type", "subject", "alternativesubject", "resource",
                 "resourceinstance", "org_number", "owner", "source_path", "_head", "_tail")

    def __init__(self, seq, time, event_type, resource_id, transfer_id, org_number, role,
                 owner, event_id=None):
        js = _js
        self.seq = seq
        self.id = event_id or str(uuid.uuid4())
        self.time = time
        self.type = event_type
        self.org_number = org_number
        self.owner = owner
        self.subject = ORG_URN + org_number
        self.alternativesubject = None
        self.resource = RESOURCE_URN + resource_id
        self.resourceinstance = transfer_id
        self.source_path = "/broker/api/v1/filetransfer"
        self._head = '{"specversion":"1.0","id":%s,"time":%s,"source":"' % (
            js(self.id), js(dates.format_ticks(time)))
        self._tail = '%s","subject":%s,"type":%s,"resource":%s,"resourceinstance":%s,' \
                     '"data":{"Role":%s}}' % (self.source_path, js(self.subject),
                                              js(event_type), js(self.resource),
                                              js(transfer_id), js(role))

    def render(self, base_escaped):
        return self._head + base_escaped + self._tail

    def visible_to(self, principal):
        """Events shows a Broker event to the organisation it is about, and to the
        resource's service owner."""
        org = principal.org_number or caller_org(principal.claims)
        return org is not None and org in (self.org_number, self.owner)


def caller_org(claims):
    """ClaimsPrincipalExtensions.GetCallerOrganizationId: a system user's organisation, else
    `urn:altinn:orgNumber`, else the Maskinporten `consumer`; digits only."""
    details = claims.get("authorization_details")
    if details is not None:
        try:
            entry = details[0] if isinstance(details, list) else details
            return without_prefix(str(entry["systemuser_org"]["ID"])) or None
        except (KeyError, IndexError, TypeError):
            return None
    if claims.get("urn:altinn:orgNumber"):
        return without_prefix(str(claims["urn:altinn:orgNumber"])) or None
    consumer = claims.get("consumer")
    if isinstance(consumer, dict) and consumer.get("ID"):
        return without_prefix(str(consumer["ID"])) or None
    return None


class RateLimiter:
    """APIM's rate limits per Maskinporten integration (the token's client_id, else its
    organisation): `limit` calls per endpoint class in any 60 s. `take` returns 0, or the
    seconds until the oldest call in the window leaves it."""

    WINDOW = 60.0
    LIMITS = {"search": 10, "details": 10, "default": 120}

    def __init__(self):
        self._calls = {}

    def take(self, key, kind, now):
        calls = self._calls.setdefault((key, kind), [])
        while calls and calls[0] <= now - self.WINDOW:
            calls.pop(0)
        if len(calls) >= self.LIMITS[kind]:
            return max(1, int(calls[0] + self.WINDOW - now + 0.999))
        calls.append(now)
        return 0

    def clear(self):
        self._calls = {}

