"""Altinn Broker v1 (formidling): resources, file transfers and their status machines, as
altinn-broker's handlers keep them (../shared/altinn-broker-correspondence.md §2; sources in
README.md). `platform.broker` holds the state; brokerapi.py and brokertus.py speak HTTP.

A resource has a service owner, a maximum transfer size, a time to live and two lists of
organisation numbers standing in for the resource policy: `senders` may initialize and upload
(the `write` right), `recipients` may download and confirm (`read`); with `accessListEnabled`
every recipient named at initialize must be on `recipients` too (error 28). Authorization as
Broker asks it of Altinn Authorization: the party (the sender, or a recipient) must be the
caller's own organisation and hold the right; an unknown resource is "no access" (401, 6).

A transfer moves Initialized -> UploadStarted -> (UploadProcessing ->) Published |
Failed -> AllConfirmedDownloaded -> Purged, each step kept in a history with its time and
text; each recipient Initialized -> DownloadStarted -> DownloadConfirmed. A virus-scanned
transfer waits `scan_delay` seconds in UploadProcessing (a timer) and is then Published, or
Failed when the malware switch is set. Expiry is swept lazily on every call. Events are
published through platform.events as Broker publishes them (AltinnEventBus.cs).

File bytes live in files under a private temporary directory, so a 1 GiB transfer costs disk,
not memory. Every method takes the service lock only around state changes, never across I/O.
"""

import atexit
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
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
    def __init__(self, length, path, now):
        self.length = length
        self.offset = 0
        self.path = path
        self.md5 = hashlib.md5()
        self.expires = now + TUS_EXPIRATION
        self.busy = False                 # a PATCH is writing


class Settings:
    def __init__(self):
        self.scan_delay = 0.5          # seconds a scanned transfer stays in UploadProcessing
        self.malware = 0               # the next N scanned uploads are found malicious
        self.cut_upload_after = None   # bytes read before an upload is cut off
        self.cut_count = 0
        self.cut_status = None         # answer after the cut (None: drop the connection)
        self.storage_not_ready = False     # initialize answers 503 (21)

    FIELDS = {"scanDelay": "scan_delay", "malware": "malware",
              "cutUploadAfter": "cut_upload_after", "cutCount": "cut_count",
              "cutStatus": "cut_status", "storageNotReady": "storage_not_ready"}

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
        }
        for key, value in doc.items():
            if (isinstance(value, bool) and key != "storageNotReady") or not checks[key](value):
                raise ValueError("%s has a bad value: %r" % (key, value))
        for key, value in doc.items():
            setattr(self, self.FIELDS[key], value)


class UploadCut(Exception):
    """The cut-upload switch fired: `status` to answer, or None to drop the connection."""

    def __init__(self, status):
        super().__init__("upload cut")
        self.status = status


class BrokerService:
    def __init__(self, platform):
        self.platform = platform
        self.lock = threading.RLock()
        self.resources = {}
        self.transfers = {}
        self.settings = Settings()
        self.dir = tempfile.mkdtemp(prefix="altinn-localtest-broker-")
        atexit.register(shutil.rmtree, self.dir, True)

    # -- resources ----------------------------------------------------------------------

    def put_resource(self, doc):
        resource = Resource(doc)
        with self.lock:
            self.resources[resource.id] = resource
        return resource

    def resource(self, rid):
        with self.lock:
            return self.resources.get(rid)

    # -- access (Altinn Authorization as Broker asks it) ---------------------------------

    def _may(self, caller, resource, party, right):
        if resource is None or not resource.owner_configured or caller is None:
            return False
        if without_prefix(party) != caller:
            return False
        return caller in (resource.senders if right == "write" else resource.recipients)

    def may_send(self, caller, resource, party):
        return self._may(caller, resource, party, "write")

    def may_receive(self, caller, transfer):
        resource = self.resources.get(transfer.resource_id)
        return any(self._may(caller, resource, r, "read") for r in transfer.recipients)

    def may_see(self, caller, transfer):
        resource = self.resources.get(transfer.resource_id)
        return self.may_send(caller, resource, transfer.sender_org) or \
            self.may_receive(caller, transfer)

    def get(self, tid):
        with self.lock:
            self.sweep()
            t = self.transfers.get(tid)
            if t is None:
                raise BrokerError(1)
            return t

    # -- initialize ---------------------------------------------------------------------

    def initialize(self, caller, doc):
        """A new transfer from a validated FileTransferInitalizeExt; returns it."""
        with self.lock:
            self.sweep()
            resource = self.resources.get(doc["resourceId"])
            if not self.may_send(caller, resource, doc["sender"]):
                raise BrokerError(6)
            if doc.get("disableVirusScan") and not resource.approved_no_scan:
                raise BrokerError(20)
            if self.settings.storage_not_ready:
                raise BrokerError(21)
            if resource.access_list:
                for r in doc["recipients"]:
                    if without_prefix(r) not in resource.recipients:
                        raise BrokerError(28)
            if resource.required_party and without_prefix(doc["sender"]) != \
                    resource.required_party:
                if len(doc["recipients"]) > 1:
                    raise BrokerError(27)
                if without_prefix(doc["recipients"][0]) != resource.required_party:
                    raise BrokerError(26)
            now = time.time()
            transfer = Transfer(str(uuid.uuid4()), resource, doc, caller, now)
            self.transfers[transfer.id] = transfer
            self._emit("filetransferinitialized", transfer, transfer.sender, "Sender")
            return transfer

    # -- uploads ------------------------------------------------------------------------

    def check_upload(self, caller, tid, length):
        """TusUploadValidationService.ValidateForUploadAsync; returns the transfer."""
        with self.lock:
            t = self.get(tid)
            resource = self.resources.get(t.resource_id)
            if not self.may_send(caller, resource, t.sender_org):
                raise BrokerError(6)
            if STATUSES.index(t.status) > STATUSES.index("UploadStarted"):
                raise BrokerError(4)
            self.check_size(t, length)
            return t

    def check_size(self, t, length):
        if length is None:
            return
        resource = self.resources.get(t.resource_id)
        if t.use_virus_scan and length > MAX_VIRUS_SCAN_SIZE:
            raise BrokerError(16)
        if length > MAX_UPLOAD_SIZE:
            raise BrokerError(16)
        if resource.max_size is not None and length > resource.max_size:
            raise BrokerError(16)

    def take_cut(self):
        """Bytes after which this upload is cut, or None (one count of the switch)."""
        with self.lock:
            s = self.settings
            if s.cut_upload_after is None or s.cut_count <= 0:
                return None
            s.cut_count -= 1
            return s.cut_upload_after

    def start_upload(self, t):
        with self.lock:
            if t.status == "Initialized":
                t.set_status("UploadStarted", time.time())

    def new_path(self, t):
        return os.path.join(self.dir, "%s.%s" % (t.id, uuid.uuid4().hex[:8]))

    def stream_upload(self, t, chunks, cut_after):
        """Store a streamed upload: (md5 hex, size). Raises UploadCut or BrokerError(16);
        either way the transfer is Failed, as an aborted upload is."""
        path = self.new_path(t)
        md5 = hashlib.md5()
        size = 0
        resource = self.resource(t.resource_id)
        try:
            with open(path, "wb") as f:
                for data in chunks:
                    if cut_after is not None and size + len(data) >= cut_after:
                        keep = data[:max(0, cut_after - size)]
                        f.write(keep)
                        raise UploadCut(self.settings.cut_status)
                    size += len(data)
                    if resource.max_size is not None and size > resource.max_size:
                        raise BrokerError(16)
                    md5.update(data)
                    f.write(data)
        except BaseException:
            self.fail(t, UPLOAD_ABORTED, event=True)
            _unlink(path)
            raise
        return path, md5.hexdigest(), size

    def complete_upload(self, t, path, checksum, size, deferred=False):
        """CompleteFileUploadHandler: checksum, then UploadProcessing or Published.
        Returns None, or raises BrokerError(9) for a streamed upload's mismatch."""
        with self.lock:
            if t.status not in ("UploadStarted", "UploadProcessing"):
                _unlink(path)
                return
            old, t.path, t.size = t.path, path, size
            t.uploaded = True
            if old and old != path:
                _unlink(old)
            now = time.time()
            mismatch = (t.given_checksum is not None
                        and t.given_checksum.lower() != checksum.lower())
            if mismatch and not deferred:
                t.set_status("Failed", now, CHECKSUM_MISMATCH)   # no event: code's quirk
                self._drop_bytes(t)
                raise BrokerError(9)
            if t.checksum is None:
                t.checksum = checksum
            if deferred and (t.given_checksum is not None or t.use_virus_scan):
                self._processing(t, now)
                delay = 0.0 if not t.use_virus_scan else self.settings.scan_delay
                self._later(delay, self._after_checks, t.id, mismatch)
                return
            if t.use_virus_scan:
                self._processing(t, now)
                self._later(self.settings.scan_delay, self._after_checks, t.id, False)
                return
            self._publish(t, now)

    def _processing(self, t, now):
        if t.status == "UploadStarted":
            t.set_status("UploadProcessing", now)
            self._emit("uploadprocessing", t, t.sender, "Sender")

    def _later(self, delay, fn, *args):
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        timer.start()

    def _after_checks(self, tid, mismatch):
        """The deferred TUS checksum and the malware scan have answered."""
        with self.lock:
            t = self.transfers.get(tid)
            if t is None or t.status != "UploadProcessing":
                return
            now = time.time()
            if mismatch:
                self.fail(t, CHECKSUM_MISMATCH, event=True)
                return
            if t.use_virus_scan and self.settings.malware > 0:
                self.settings.malware -= 1
                detail = ('{"ScanResultType":"Malicious","MalwareNamesFound":'
                          '["EICAR-Test-File"]}')
                self.fail(t, "Malware scan failed: Malicious. Extra details: " + detail,
                          event=True)
                return
            self._publish(t, now)

    def _publish(self, t, now):
        t.set_status("Published", now)
        self._emit("published", t, t.sender, "Sender", stable=True)
        for r in t.recipients:
            self._emit("published", t, r, "Recipient", stable=True)

    def fail(self, t, text, event):
        with self.lock:
            if t.status in ("Failed", "Purged", "Published", "AllConfirmedDownloaded"):
                return
            t.set_status("Failed", time.time(), text)
            self._drop_bytes(t)
            if event:
                self._emit("uploadfailed", t, t.sender, "Sender")

    def _drop_bytes(self, t):
        if t.path:
            _unlink(t.path)
            t.path = None
        if t.tus is not None:
            _unlink(t.tus.path)
            t.tus = None

    # -- recipients ---------------------------------------------------------------------

    def download(self, caller, tid):
        """DownloadFileHandler's checks; returns (transfer, FileContent)."""
        with self.lock:
            t = self.get(tid)
            if not self.may_receive(caller, t):
                raise BrokerError(6)
            if t.status not in ("Published", "AllConfirmedDownloaded"):
                raise BrokerError(7)
            if not t.uploaded or not t.path:
                raise BrokerError(3)
            return t, FileContent(t.path, t.size)

    def download_started(self, caller, t, ranged):
        """Record DownloadStarted; a ranged read only once per 5 minutes per caller."""
        me = with_prefix(caller)
        with self.lock:
            now = time.time()
            if ranged:
                last = [tm for r, s, tm in t.recipient_history
                        if r == me and s == "DownloadStarted"]
                if last and now - max(last) < 300:
                    return
            t.recipient_history.append([me, "DownloadStarted", now])

    def confirm(self, caller, tid):
        with self.lock:
            t = self.get(tid)
            if not self.may_receive(caller, t):
                raise BrokerError(6)
            if not t.uploaded:
                raise BrokerError(3)
            if t.status != "Published":
                raise BrokerError(10)
            me = with_prefix(caller)
            current = t.recipient_status(me)
            if current is None:
                raise BrokerError(6)
            if current[0] == "DownloadConfirmed":
                return t
            if current[0] != "DownloadStarted":
                raise BrokerError(19)
            now = time.time()
            others_done = all(t.recipient_status(r)[0] == "DownloadConfirmed"
                              for r in t.recipients if r != me)
            self._emit("downloadconfirmed", t, me, "Recipient")
            self._emit("downloadconfirmed", t, t.sender, "Sender")
            t.recipient_history.append([me, "DownloadConfirmed", now])
            if others_done:
                self._emit("allconfirmeddownloaded", t, t.sender, "Sender")
                t.set_status("AllConfirmedDownloaded", now)
                resource = self.resources.get(t.resource_id)
                if resource is not None and resource.purge_after_confirm:
                    t.purge_at = now + resource.grace
            return t

    # -- search -------------------------------------------------------------------------

    def search(self, caller, rid, status=None, recipient_status=None, start=None, end=None,
               ascending=None, role=None):
        """GetFileTransfersHandler + FileTransferRepository: ids, at most 100."""
        with self.lock:
            self.sweep()
            resource = self.resources.get(rid)
            if resource is None or not resource.owner_configured or caller is None or \
                    (caller not in resource.senders and caller not in resource.recipients):
                raise BrokerError(6)
            me = with_prefix(caller)
            rows = {}
            for t in self.transfers.values():
                if t.resource_id != rid:
                    continue
                if status is not None and t.status != status:
                    continue
                as_recipient = me in t.recipients
                if recipient_status is not None:
                    if not as_recipient or t.recipient_status(me)[0] != recipient_status:
                        continue
                else:
                    # the sender row matches the stored sender string against "0192:<org>"
                    as_sender = t.sender == me
                    if not ((role in (None, "Recipient") and as_recipient) or
                            (role in (None, "Sender") and as_sender)):
                        continue
                stamp = t.status_time(status) if status is not None else t.created
                if start is not None and end is not None:
                    if not start <= stamp <= end:
                        continue
                elif start is not None and not stamp > start:
                    continue
                elif end is not None and not stamp < end:
                    continue
                rows[t.id] = stamp
            order = sorted(rows.items(), key=lambda kv: kv[1], reverse=ascending is not True)
            return [tid for tid, _ in order[:SEARCH_LIMIT]]

    # -- expiry -------------------------------------------------------------------------

    def sweep(self):
        """Purge what expired (TTL) or what was confirmed by all past the grace period."""
        with self.lock:
            now = time.time()
            for t in list(self.transfers.values()):
                if t.status in ("Purged",):
                    continue
                if t.purge_at is not None and now >= t.purge_at:
                    self._purge(t, now, expiry=False)
                elif now >= t.expiration:
                    self._purge(t, now, expiry=True)
                elif t.tus is not None and t.status == "UploadStarted" and \
                        now >= t.tus.expires:
                    _unlink(t.tus.path)
                    t.tus = None

    def _purge(self, t, now, expiry):
        self._drop_bytes(t)
        if t.status == "Failed":
            return
        if expiry:
            for r in t.recipients:
                if t.recipient_status(r)[0] != "DownloadConfirmed":
                    self._emit("fileneverconfirmeddownloaded", t, r, "Recipient")
                    self._emit("fileneverconfirmeddownloaded", t, t.sender, "Sender")
        t.set_status("Purged", now)
        self._emit("filepurged", t, t.sender, "Sender")

    # -- events -------------------------------------------------------------------------

    def _emit(self, kind, t, party, role, stable=False):
        event_id = None
        if stable:
            name = "published:%s:%s:%s" % (t.id, role, party)
            event_id = str(uuid.UUID(bytes_le=hashlib.sha256(name.encode()).digest()[:16]))
        resource = self.resources.get(t.resource_id)
        self.platform.events.store.publish([dict(
            event_class=BrokerEvent, event_type=EVENT_PREFIX + kind,
            resource_id=t.resource_id, transfer_id=t.id, org_number=without_prefix(party),
            role=role, owner=resource.service_owner if resource else None,
            event_id=event_id)])


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


# -- the demo seed --------------------------------------------------------------------------

DEMO_RESOURCE = "altinnfs-demo-broker"
DEMO_OWNER = "991825827"                     # ttd, the demo's service owner and own org
DEMO_PARTNERS = ("313000001", "314000005")   # valid organisation numbers (MOD11)
DEMO_INBOX_ID = "b40c0000-0000-4000-8000-000000000001"     # partner -> ttd, Published
DEMO_SENT_ID = "b40c0000-0000-4000-8000-000000000002"      # ttd -> partner, confirmed
DEMO_INBOX_BYTES = b"Demo Broker transfer from 313000001 to 991825827.\n"
DEMO_SENT_BYTES = b"Demo Broker transfer from 991825827 to 313000001.\n"


def _seed_transfer(service, tid, sender, recipient, name, data, confirmed):
    resource = service.resources[DEMO_RESOURCE]
    now = time.time()
    doc = {"fileName": name, "sendersFileTransferReference": "demo-" + tid[-4:],
           "sender": "0192:" + sender, "recipients": ["0192:" + recipient],
           "propertyList": {"demo": "true"},
           "checksum": hashlib.md5(data).hexdigest()}
    t = Transfer(tid, resource, doc, sender, now)
    t.path = service.new_path(t)
    with open(t.path, "wb") as f:
        f.write(data)
    t.size = len(data)
    t.uploaded = True
    for status in ("UploadStarted", "UploadProcessing", "Published"):
        t.set_status(status, now)
    if confirmed:
        t.recipient_history.append(["0192:" + recipient, "DownloadStarted", now])
        t.recipient_history.append(["0192:" + recipient, "DownloadConfirmed", now])
        t.set_status("AllConfirmedDownloaded", now)
    service.transfers[tid] = t


def seed_demo(service):
    """`--seed demo`: the resource altinnfs-demo-broker (owner ttd; ttd and the partners may
    send and receive; 1 GiB max) with one transfer each way. Seeding emits no events."""
    orgs = [DEMO_OWNER] + list(DEMO_PARTNERS)
    service.put_resource({"resourceId": DEMO_RESOURCE, "serviceOwner": DEMO_OWNER,
                          "senders": orgs, "recipients": orgs,
                          "maxFileTransferSize": 1 << 30})
    with service.lock:
        _seed_transfer(service, DEMO_INBOX_ID, DEMO_PARTNERS[0], DEMO_OWNER, "til-ttd.txt",
                       DEMO_INBOX_BYTES, confirmed=False)
        _seed_transfer(service, DEMO_SENT_ID, DEMO_OWNER, DEMO_PARTNERS[0], "fra-ttd.txt",
                       DEMO_SENT_BYTES, confirmed=True)


BrokerService.seed_demo = seed_demo
