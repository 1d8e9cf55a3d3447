"""Altinn Correspondence v1 (melding): resources, attachments, correspondences and their status
machines, as altinn-correspondence's handlers keep them (../shared/altinn-broker-correspondence.md
§3; sources in README.md). `platform.correspondence` holds the state; corrmodel.py is the
vocabulary (statuses, errors, entities, events), corrapi.py speaks HTTP and corrcheck.py
validates the models.

A resource has a service owner (the sender of every correspondence on it: the `sender` field is
obsolete), `senders` standing in for the organisations with the `write` right (default: the
owner) and `recipients`, an access list of organisation/person numbers with `read` (None: all).
A correspondence is one message to one recipient: Initialized (or Reserved, a KRR-reserved person
in a batch) -> ReadyForPublish once every attachment is Published -> Published at
requestedPublishTime (after `publishDelay`, the Dialogporten round trip), or Failed; then the
recipient's own actions: Fetched (GET overview/details/content; kept apart, never the
status), Read (markasread, first GET
content), Confirmed (asynchronously, `confirmDelay` after /confirm), AttachmentsDownloaded,
PurgedByRecipient; the sender may purge only before publication (PurgedByAltinn). Shared
attachments go Initialized -> UploadProcessing -> Published after the malware scan (`scanDelay`),
or Failed. Events go through platform.events as AltinnEventBus publishes them.

Attachment bytes live in files under a private temporary directory. Every method takes the
service lock only around state changes; jobs.py's one thread runs the asynchronous steps.
"""

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
import time
import uuid

from . import corrcheck, jobs, parties
from .corrmodel import (AVAILABLE, HIDDEN_FOR_RECIPIENT, LIST_LIMIT, MAX_FORM_FILE,
                        MAX_STREAM_FILE, EVENT_PREFIX, FETCH_DEBOUNCE, ORG_URN, PURGED, Attachment,
                        CorrError, Correspondence, CorrespondenceEvent, Resource, Settings,
                        _unlink, to_urn, without_prefix)


class CorrespondenceService:
    def __init__(self, platform):
        self.platform = platform
        self.lock = threading.RLock()
        self.jobs = jobs.Jobs("correspondence-jobs")
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

    def sender_resource(self, caller, rid, attachment=False):
        """The resource `caller` may send on: 1036 unknown, 4001 no write, 4010 (4009 for an
        attachment, which may also use a GenericAccessResource) wrong type."""
        resource = self.resources.get(rid)
        if resource is None:
            raise CorrError(1036)
        if caller is None or caller not in resource.senders:
            raise CorrError(4001)
        if attachment and resource.type not in ("CorrespondenceService",
                                                "GenericAccessResource"):
            raise CorrError(4009)
        if not attachment and resource.type != "CorrespondenceService":
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
            resource = self.sender_resource(caller, doc["resourceId"], attachment=True)
            a = Attachment(str(uuid.uuid4()), resource, doc, ORG_URN + resource.service_owner,
                           time.time())
            self.attachments[a.id] = a
            self._emit("attachmentinitialized", resource, "attachment", a.id, a.sender)
            return a

    def expire_due(self, a, now=None):
        """ExpireAttachmentHandler, run lazily: past its expiration time an attachment is
        Expired ("The attachment has expired"), its bytes gone, + attachmentexpired."""
        now = time.time() if now is None else now
        if now < a.expiration or a.status in ("Purged", "Expired"):
            return
        a.set_status("Expired", now, "The attachment has expired")
        _unlink(a.path)
        a.path = None
        self._emit_attachment("attachmentexpired", a)

    def attachment_for_sender(self, caller, aid):
        with self.lock:
            a = self.attachments.get(aid)
            if a is None:
                raise CorrError(2001)
            self.expire_due(a)
            if not self.is_sender(caller, a.resource_id):
                raise CorrError(4001)
            return a

    def begin_upload(self, a, length):
        """UploadAttachmentHandler's checks, then UploadProcessing before the bytes."""
        with self.lock:
            if length is not None and length > MAX_STREAM_FILE:
                raise CorrError(2004, "50GB")
            if any(s == "UploadProcessing" for s, _, _ in a.history):
                raise CorrError(2005)
            if a.correspondences:
                raise CorrError(2003)
            if a.status == "Purged":
                raise CorrError(2006)
            a.set_status("UploadProcessing", time.time())

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
                a.set_status("Failed", time.time(), "Upload interrupted")
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
                for cid in a.correspondences:     # FailAssociatedCorrespondences: no event
                    self._fail(self.correspondences[cid], now, "Failed", event=False)
                return
            a.set_status("Published", now)
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
            if a.correspondences:
                raise CorrError(2007)
            a.set_status("Purged", time.time(), "Attachment has been purged")
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
            if resource.confidential and not c.get("isConfidential"):
                raise CorrError(1060)
            if c.get("isConfidential") and not resource.confidential:
                raise CorrError(1061)
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
            code = corrcheck.content_error(c)
            if code:
                raise CorrError(code)
            existing = []                   # ValidatePrepareDataAndUploadAttachments' order
            for aid in model.get("existingAttachments") or []:
                a = self.attachments.get(aid)
                if a is None:
                    raise CorrError(1007)
                self.expire_due(a, now)
                existing.append(a)
            new_meta = c["content"].get("attachments") or []
            if len(existing) + len(new_meta) > 100:
                raise CorrError(1038)
            for a in existing:
                if a.status != "Published":
                    raise CorrError(1018)
                if a.sender != sender:
                    raise CorrError(1017)
            if files is None or len(new_meta) != len(files):
                raise CorrError(1005)
            for meta, data in files:
                code = corrcheck.file_name_error(meta.get("fileName"))
                if code:
                    raise CorrError(code)
                if not data or len(data) > MAX_FORM_FILE:
                    raise CorrError(2004, "2GB")
                if meta.get("checksum") and \
                        meta["checksum"].lower() != hashlib.md5(data).hexdigest():
                    raise CorrError(2008)
                days = meta.get("expirationInDays")
                if days is not None and days < self.settings.min_expiration_days:
                    raise CorrError(2017, self.settings.min_expiration_days)
            for a in existing:
                if a.expiration - now < 6 * 3600:
                    raise CorrError(1055, 6)
            code = corrcheck.reply_options_error(c) or \
                corrcheck.notification_error(c.get("notification"), len(recipients))
            if code:
                raise CorrError(code)
            attachments = list(existing)
            created = []
            for meta, data in files:
                a = Attachment(str(uuid.uuid4()), resource, meta, sender, now)
                a.path = os.path.join(self.dir, a.id)
                with open(a.path, "wb") as f:
                    f.write(data)
                a.size = len(data)
                a.checksum = a.checksum or hashlib.md5(data).hexdigest()
                a.set_status("UploadProcessing", now)
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
            number = without_prefix(c.recipient)
            if number in self.settings.fail_recipients:
                self._fail(c, now, "Party for recipient %s not found in Altinn Register when "
                                   "publishing" % c.recipient)
                return
            if number in self.settings.reserved and not c.model.get("ignoreReservation"):
                self._fail(c, now, "Recipient of %s has been set to reserved in kontakt- og "
                                   "reserverasjonsregisteret ('KRR')" % c.id)
                return
            c.set_status("Published", now)
            c.published = now
            resource = self.resources.get(c.resource_id)
            self._emit("correspondencepublished", resource, "correspondence", c.id,
                       c.recipient, stable="published:" + c.id)
            for order, reminder in c.orders:          # SendNotificationOrderHandler
                if not reminder:
                    self._emit("notificationcreated", resource, "notification", order, c.sender)
            if c.due is not None:
                self._later(max(0.0, c.due - now), self._due, c.id)

    def _fail(self, c, now, text, event=True):
        if c.status not in ("Initialized", "ReadyForPublish"):
            return
        c.set_status("Failed", now, text)
        if not event:
            return
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

    def view(self, caller, me, cid, details=False):
        """(correspondence, as_recipient) for overview/details (GetCorrespondenceOverview/
        DetailsHandler): a purged one is gone from the overview for everyone; a recipient
        sees it only in a status available to recipients, and the call adds Fetched."""
        with self.lock:
            c = self.correspondences.get(cid)
            if c is None:
                raise CorrError(1001)
            recipient = self.is_recipient(me, c)
            if not recipient and not self.is_sender(caller, c.resource_id):
                raise CorrError(4001)
            if recipient and not details and c.status == "ReadyForPublish" and \
                    c.publish_at <= time.time():
                self._publish(c.id)      # AttemptImmediatePublishIfDelayed: the dialog exists
            if not details and any(c.ever(p) for p in PURGED):
                raise CorrError(1001)
            if recipient:
                if c.status not in AVAILABLE:
                    raise CorrError(1001)
                self._fetched(c)
            return c, recipient

    def _fetched(self, c):
        """A Fetched row, at most one per 15 s (the handler's HybridCache debounce)."""
        now = time.time()
        if not c.fetched or now - c.fetched[-1] >= FETCH_DEBOUNCE:
            c.fetched.append(now)

    def _mine(self, me, cid):
        c = self.correspondences.get(cid)
        if c is None:
            raise CorrError(1001)
        if not self.is_recipient(me, c):
            raise CorrError(4001)
        if c.status not in AVAILABLE:
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
            if self.is_recipient(me, c):                    # PurgeCorrespondenceHelper
                if c.status in PURGED:
                    raise CorrError(1014)
                if c.status not in AVAILABLE:
                    raise CorrError(1001)
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
            self.expire_due(a)
            if a.status == "Expired":
                raise CorrError(2020)
            if a.status == "Purged" or not a.path:
                raise CorrError(2019)
            c.set_status("AttachmentsDownloaded", time.time(),
                         "Attachment %s has been downloaded" % a.id)
            return a

    # -- list ---------------------------------------------------------------------------

    def search(self, caller, me, rid, role, start, end, status, senders_reference, key):
        """GetCorrespondencesHandler and the repository's query: ids, newest
        requestedPublishTime first, at most 1000. The caller needs some right on the resource
        (4001); an idempotentKey finds its correspondence whatever the other filters say."""
        with self.lock:
            if start is not None and end is not None and start > end:
                raise CorrError(1027)
            resource = self.resources.get(rid or "")
            if resource is None or not (
                    (caller is not None and caller in resource.senders) or
                    resource.recipients is None or
                    any(m in resource.recipients for m in me)):
                raise CorrError(4001)
            if key is not None:
                cid = self.keys.get(key)
                return [cid] if cid is not None else []
            rows = []
            for c in self.correspondences.values():
                if c.resource_id != rid:
                    continue
                if start is not None and not c.publish_at > start:
                    continue
                if end is not None and not c.publish_at < end:
                    continue
                if senders_reference and c.model["sendersReference"] != senders_reference:
                    continue
                if not (self._listed(c, role, "Sender", caller and {caller}, status, ()) or
                        self._listed(c, role, "Recipient", me, status, HIDDEN_FOR_RECIPIENT)):
                    continue
                rows.append((c.publish_at, c.id))
            rows.sort(reverse=True)
            return [cid for _, cid in rows[:LIST_LIMIT]]

    @staticmethod
    def _listed(c, role, side, who, status, blacklist):
        """QueryableExtensions.FilterBySenderOrRecipient + FilterByStatus for one side: the
        party matches (the sender side by the service owner), and the status was ever held
        (the main table only: never Fetched) or, without one, the latest is not hidden."""
        if role not in (side, "RecipientAndSender") or not who:
            return False
        party = c.sender if side == "Sender" else c.recipient
        if without_prefix(party) not in who:
            return False
        if status is not None:
            return status not in blacklist and any(s == status for s, _, _ in c.history)
        return c.history[-1][0] not in blacklist

    # -- plumbing -----------------------------------------------------------------------

    def _later(self, delay, fn, *args):
        self.jobs.later(delay, fn, *args)

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


# -- the demo seed --------------------------------------------------------------------------

DEMO_RESOURCE = "altinnfs-demo-correspondence"
DEMO_OWNER = "991825827"
DEMO_RESERVED = ("02056610076", "01018000217")   # reserved against digital mail (KRR)


def seed_demo(service):
    """`--seed demo`: the resource altinnfs-demo-correspondence (owner ttd, open to every
    recipient) and two persons reserved in KRR."""
    service.put_resource({"resourceId": DEMO_RESOURCE, "serviceOwner": DEMO_OWNER})
    service.settings.reserved = list(DEMO_RESERVED)


CorrespondenceService.seed_demo = seed_demo
