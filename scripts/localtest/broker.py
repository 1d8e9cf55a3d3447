"""Altinn Broker v1 (formidling): resources, file transfers and their status machines, as
altinn-broker's handlers keep them (../shared/altinn-broker-correspondence.md §2; sources in
README.md). `platform.broker` holds the state; brokerapi.py and brokertus.py speak HTTP.

A resource has a service owner, a maximum transfer size, a time to live and two lists of
organisation numbers standing in for the resource policy: `senders` may initialize and upload
(the `write` right), `recipients` may download and confirm (`read`); with `accessListEnabled`
every recipient named at initialize must be on `recipients` too (error 28). Authorization as
Broker asks it of Altinn Authorization: the party (the sender, or a recipient) must be the
caller's own organisation and hold the right; an unknown resource is "no access" (401, 6).

A transfer moves Initialized -> UploadStarted -> (UploadProcessing ->) Published ->
AllConfirmedDownloaded, or to Failed; expiry makes any of them Purged. Each step is kept in a
history with its time and text; each recipient Initialized -> DownloadStarted ->
DownloadConfirmed. A virus-scanned transfer waits `scan_delay` seconds in UploadProcessing (a
timer) and is then Published, or Failed when the malware switch is set. Expiry, stuck uploads
and TUS expiry are swept lazily on every call. Events are published through platform.events
as Broker publishes them (AltinnEventBus.cs).

File bytes live in files under a private temporary directory, so a 1 GiB transfer costs disk,
not memory. Every method takes the service lock only around state changes, never across I/O.
"""

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
import time
import uuid

from .brokermodel import (  # brokerapi.py and brokertus.py use them as broker.X
    CHECKSUM_MISMATCH, ERRORS, EVENT_PREFIX, MAX_UPLOAD_SIZE, MAX_VIRUS_SCAN_SIZE,
    RECIPIENT_STATUSES, RECIPIENT_TEXT, SEARCH_LIMIT, STATUSES, STATUS_TEXT, STUCK_TEXT, TUS_EXPIRATION,
    UPLOAD_ABORTED, BrokerError, BrokerEvent, FileContent, Resource, Settings, Transfer,
    RateLimiter, TusUpload, UploadCut, _unlink, caller_org, dates, iso, with_prefix, without_prefix)

__all__ = ["BrokerService", "seed_demo", "BrokerError", "BrokerEvent", "FileContent",
           "Resource", "Settings", "Transfer", "TusUpload", "UploadCut", "caller_org", "dates",
           "iso", "with_prefix", "without_prefix", "ERRORS", "STATUSES", "STATUS_TEXT",
           "RECIPIENT_STATUSES", "RECIPIENT_TEXT", "TUS_EXPIRATION"]


class BrokerService:
    def __init__(self, platform):
        self.platform = platform
        self.lock = threading.RLock()
        self.resources = {}
        self.transfers = {}
        self.settings = Settings()
        self.limiter = RateLimiter()
        self.dir = tempfile.mkdtemp(prefix="altinn-localtest-broker-")
        atexit.register(shutil.rmtree, self.dir, True)

    def rate_limited(self, principal, kind):
        """0, or the Retry-After seconds of a 429 for this call."""
        with self.lock:
            if not self.settings.rate_limits:
                return 0
            key = principal.claims.get("client_id") or caller_org(principal.claims) or "-"
            return self.limiter.take(key, kind, time.time())

    def may_subscribe(self, principal, resource_filter, subject_filter):
        """Events' subscribe check for a Broker resource: its service owner, or a party to
        it with `subjectFilter` its own organisation URN. Other resources: allowed."""
        prefix = "urn:altinn:resource:"
        rid = (resource_filter or "")[len(prefix):] if \
            (resource_filter or "").startswith(prefix) else None
        with self.lock:
            resource = self.resources.get(rid) if rid else None
        if resource is None:
            return True
        org = caller_org(principal.claims)
        if org is None:
            return False
        if org == resource.service_owner:
            return True
        return (subject_filter == "urn:altinn:organization:identifier-no:" + org
                and (org in resource.senders or org in resource.recipients))

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
            if t.checksum is None and (deferred or not t.use_virus_scan):
                t.checksum = checksum      # a scanned streamed upload keeps null (the code)
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
        """Purge what expired (TTL) or what was confirmed by all past the grace period
        (PurgeFileTransferHandler; an expiring AllConfirmedDownloaded transfer of a resource
        that purges after confirmation waits for that purge instead)."""
        with self.lock:
            now = time.time()
            for t in list(self.transfers.values()):
                if t.status == "Purged":
                    continue
                if t.purge_at is not None and now >= t.purge_at:
                    self._purge(t, now)
                elif now >= t.expiration:
                    resource = self.resources.get(t.resource_id)
                    if not (t.status == "AllConfirmedDownloaded" and resource is not None
                            and resource.purge_after_confirm):
                        self._purge(t, now)
                elif t.status == "UploadStarted":
                    self._stale_upload(t, now)

    def _stale_upload(self, t, now):
        """TUS expiry (sliding) and StuckFileTransferHandler: UploadStarted for
        stuck_after with no TUS activity within stuck_window -> Failed + uploadfailed."""
        s = self.settings
        tus = t.tus
        if tus is not None and tus.offset < tus.length and now >= tus.expires:
            _unlink(tus.path)
            t.tus = None
        started = t.status_time("UploadStarted")
        active = tus is not None and now - tus.activity < s.stuck_window
        if now - started >= s.stuck_after and not active:
            self.fail(t, STUCK_TEXT, event=True)

    def _purge(self, t, now):
        """Delete the bytes, Purged + filepurged, then fileneverconfirmeddownloaded to each
        recipient that had not confirmed and once to the sender. Any status but Purged is
        purged, Failed too (the code checks only for Purged)."""
        self._drop_bytes(t)
        t.set_status("Purged", now)
        self._emit("filepurged", t, t.sender, "Sender")
        never = [r for r in t.recipients if t.recipient_status(r)[0] != "DownloadConfirmed"]
        for r in never:
            self._emit("fileneverconfirmeddownloaded", t, r, "Recipient")
        if never:
            self._emit("fileneverconfirmeddownloaded", t, t.sender, "Sender")

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
