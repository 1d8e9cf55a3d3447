"""`--seed scale:N`: one app, `ttd/skala`, with N instances made on demand.

Production apps hold 10^5 to 10^7 instances; building that many objects would take minutes and
gigabytes, so an instance of the scale app exists only while something reads it. Instance n
(0 <= n < N) is a pure function of n: its guid (`5ca1e000-0000-4000-8000-<n as 12 hex digits>`),
its party (`SCALE_PARTY_BASE + n mod P` with P = max(1, N // 3) parties), its times and one or
two small data elements. Its lastChanged is `SCALE_BASE + (n // 3) * 10 s`: three instances share
each timestamp, so the query's tie-break on the row id (n + 1) and a client's overlap margin are
exercised on every page.

The query's order (lastChanged, row id) is increasing in n, so a page after a continuation token,
a `lastChanged` range and a party's instances are found by bisection and arithmetic, never by
looking at all N. An instance that changes (touch, hard delete, data replaced, a confirmation)
is materialised: the store keeps it as an ordinary instance from then on and the generated one
is skipped (`overridden`), so a change moves it in the order as on Storage. A purge leaves its
index overridden with nothing kept.
"""

import bisect

from . import content, dates, model

APP_ID = "ttd/skala"
GUID_PREFIX = "5ca1e000-0000-4000-8000-"
SCALE_PARTY_BASE = 700000
SCALE_BASE = dates.ticks_from_parts(2025, 1, 1)
STEP = 10 * dates.TICKS_PER_SECOND
COMPLETE_EVERY = 7       # every 7th instance has ended its process (archived)


def app():
    from . import seed
    doc = seed.application_doc(APP_ID, {"nb": "Skala", "en": "Scale"}, [
        seed._receipt_type(),
        seed._form_type("model", "Altinn.App.Models.Skala"),
        seed._data_type("vedlegg", ["text/plain", "application/pdf"], maxCount=10, minCount=0,
                        taskId="Task_1"),
    ])
    doc["_process"] = [seed.FILL_IN]
    return model.Application(doc)


class ScaleApp:
    def __init__(self, app_id, n):
        self.app_id = app_id
        self.n = n
        self.parties = max(1, n // 3)
        self.overridden = set()   # indices now held by the store (or purged)

    # -- the pure functions of n -----------------------------------------------------------

    def last_changed(self, n):
        return SCALE_BASE + (n // 3) * STEP

    def key(self, n):
        return (self.last_changed(n), n + 1)

    def party(self, n):
        return str(SCALE_PARTY_BASE + n % self.parties)

    @staticmethod
    def guid(n):
        return "%s%012x" % (GUID_PREFIX, n)

    def index_of(self, guid):
        guid = guid.lower()
        if not guid.startswith(GUID_PREFIX):
            return None
        try:
            n = int(guid[len(GUID_PREFIX):], 16)
        except ValueError:
            return None
        return n if 0 <= n < self.n and guid == self.guid(n) else None

    def generate(self, n):
        lc = self.last_changed(n)
        created = lc - 3600 * dates.TICKS_PER_SECOND
        party = self.party(n)
        guid = self.guid(n)
        owner = ({"organisationNumber": "9%08d" % (n % self.parties)} if n % 2 == 0
                 else {"personNumber": "%011d" % (10101000000 + n % self.parties)})
        inst = model.Instance(guid, party, self.app_id, owner, created=created,
                              created_by=party, last_changed=lc, last_changed_by=party)
        inst.row_id = n + 1
        inst.lazy_index = n
        inst.start_process(created)
        form = ("<Skala><Nummer>%d</Nummer><Part>%s</Part></Skala>\n" % (n, party)).encode()
        inst.data.append(model.DataElement(
            "da7a0000-0000-4000-8000-%012x" % n, "model", "application/xml",
            content.BytesContent(form), created=created, created_by=party,
            last_changed=created + dates.TICKS_PER_SECOND, last_changed_by=party))
        if n % 2 == 1:
            text = ("Vedlegg %d\n" % n).encode()
            inst.data.append(model.DataElement(
                "da7a0001-0000-4000-8000-%012x" % n, "vedlegg", "text/plain",
                content.BytesContent(text), filename="vedlegg-%d.txt" % n, created=created,
                created_by=party, last_changed=lc, last_changed_by=party))
        if n % COMPLETE_EVERY == 0:
            inst.end_process(lc)
        return inst

    def get(self, guid):
        n = self.index_of(guid)
        if n is None or n in self.overridden:
            return None
        return self.generate(n)

    # -- the query ----------------------------------------------------------------------------

    def _span(self, lc_range, after, descending):
        """[lo, hi) of indices within the lastChanged range and past the token."""
        lo, hi = 0, self.n
        low, high = lc_range
        if low is not None:
            lo = bisect.bisect_left(range(self.n), low, key=self.last_changed)
        if high is not None:
            hi = bisect.bisect_right(range(self.n), high, key=self.last_changed)
        if after is not None:
            if descending:
                hi = min(hi, bisect.bisect_left(range(self.n), tuple(after), key=self.key))
            else:
                lo = max(lo, bisect.bisect_right(range(self.n), tuple(after), key=self.key))
        return lo, max(lo, hi)

    def ordered(self, descending, after, lc_range, parties, filters):
        """The generated instances in query order, filtered, as a lazy iterator."""
        lo, hi = self._span(lc_range, after, descending)
        if parties is not None:
            residues = sorted({int(p) - SCALE_PARTY_BASE for p in parties
                               if 0 <= int(p) - SCALE_PARTY_BASE < self.parties})
            indices = sorted(r + k * self.parties for r in residues
                             for k in range((self.n - r + self.parties - 1) // self.parties))
            indices = indices[bisect.bisect_left(indices, lo):bisect.bisect_left(indices, hi)]
            seq = reversed(indices) if descending else iter(indices)
        else:
            seq = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        for n in seq:
            if n in self.overridden:
                continue
            inst = self.generate(n)
            if all(f(inst) for f in filters):
                yield inst


def parse_spec(spec):
    """'scale:N' -> N (1 <= N <= 10^8), else ValueError."""
    name, _, count = spec.partition(":")
    if name != "scale" or not count.isdigit() or not 1 <= int(count) <= 100_000_000:
        raise ValueError("scale:N needs N from 1 to 100000000")
    return int(count)


def seed_scale(store, n):
    store.add_app(app())
    store.add_lazy(ScaleApp(APP_ID, n))
