"""The party register: who can own an instance, looked up by partyId, organisation number or
national identity number, as the App API does (Register) when it instantiates.

The register learns every owner the store sees (seed data and admin-added instances register
their partyId with their organisationNumber or personNumber), and the admin API adds parties
with POST /_localtest/parties. A number that is not registered is looked up as the real
Register would have it: a 9-digit organisation number or an 11-digit national identity number
with valid MOD11 check digits is taken to exist and gets a new party (partyIds from
AUTO_PARTY_START up) the first time it is used; anything else is unknown (the App API answers
404). So `910000001`-style made-up numbers need registering, while real-looking test numbers
work at once (`valid_org_number`/`valid_person_number` say which is which).
"""

import threading
import uuid

from . import web

PERSON = 1             # Register's PartyType
ORGANISATION = 2
AUTO_PARTY_START = 60_000_001
# Organisation unit types that partyTypesAllowed treats specially (app-lib InstantiationHelper).
SUBUNIT_TYPES = ("BEDR", "AAFY")
BANKRUPTCY_TYPES = ("KBO",)

_ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
_PERSON_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_PERSON_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _mod11(digits, weights):
    check = 11 - sum(int(d) * w for d, w in zip(digits, weights)) % 11
    return 0 if check == 11 else check          # 10 means no valid check digit


def valid_org_number(number):
    return (isinstance(number, str) and len(number) == 9 and number.isdigit()
            and _mod11(number[:8], _ORG_WEIGHTS) == int(number[8]))


def valid_person_number(number):
    return (isinstance(number, str) and len(number) == 11 and number.isdigit()
            and _mod11(number[:9], _PERSON_WEIGHTS_1) == int(number[9])
            and _mod11(number[:10], _PERSON_WEIGHTS_2) == int(number[10]))


class Party:
    def __init__(self, party_id, *, org_number=None, ssn=None, name=None, unit_type=None,
                 is_deleted=False):
        self.party_id = int(party_id)
        self.org_number = org_number
        self.ssn = ssn
        self.unit_type = unit_type if org_number else None
        if org_number and self.unit_type is None:
            self.unit_type = "AS"
        self.name = name or ("Testbedrift %s AS" % org_number if org_number
                             else "Testperson %d" % self.party_id)
        self.is_deleted = bool(is_deleted)
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, "altinn-localtest:party:%d" % self.party_id))

    @property
    def type(self):
        return ORGANISATION if self.org_number else PERSON

    def allowed_by(self, party_types_allowed):
        """app-lib's IsPartyAllowedToInstantiate: all false (or absent) allows everyone."""
        allowed = party_types_allowed or {}
        if not any(allowed.get(k) for k in ("bankruptcyEstate", "organisation", "person",
                                             "subUnit")):
            return True
        if self.type == PERSON:
            return bool(allowed.get("person"))
        if self.unit_type in SUBUNIT_TYPES:
            return bool(allowed.get("subUnit"))
        if self.unit_type in BANKRUPTCY_TYPES:
            return bool(allowed.get("bankruptcyEstate"))
        return bool(allowed.get("organisation"))

    def instance_owner(self):
        """The instanceOwner of an instance this party owns."""
        owner = {"partyId": str(self.party_id)}
        if self.org_number:
            owner["organisationNumber"] = self.org_number
        else:
            owner["personNumber"] = self.ssn
        return owner

    def owner_fields(self):
        """{"organisationNumber": ...} or {"personNumber": ...} (model.Instance.owner)."""
        owner = self.instance_owner()
        del owner["partyId"]
        return owner

    def to_json(self):
        """The `instanceOwner.party` of an InstanceResponse (Register's Party, trimmed)."""
        return {"partyId": self.party_id, "partyUuid": self.uuid, "partyTypeName": self.type,
                "ssn": self.ssn, "orgNumber": self.org_number, "unitType": self.unit_type,
                "name": self.name, "isDeleted": self.is_deleted}


class PartyRegister:
    def __init__(self, store):
        self._lock = threading.Lock()
        self._by_id = {}
        self._by_org = {}
        self._by_ssn = {}
        self._next_id = AUTO_PARTY_START
        store.subscribe(self._on_change)

    def _on_change(self, kind, inst, detail):
        if kind != "instance.created" or not inst.party_id.isdigit():
            return
        org, ssn = inst.owner.get("organisationNumber"), inst.owner.get("personNumber")
        if not org and not ssn:
            return
        with self._lock:
            if int(inst.party_id) in self._by_id or (org and org in self._by_org) or \
                    (ssn and ssn in self._by_ssn):
                return                     # first owner wins
            self._put(Party(inst.party_id, org_number=org or None, ssn=None if org else ssn))

    def _put(self, party):
        self._by_id[party.party_id] = party
        if party.org_number:
            self._by_org[party.org_number] = party
        else:
            self._by_ssn[party.ssn] = party

    def _new_id(self):
        while self._next_id in self._by_id:
            self._next_id += 1
        return self._next_id

    def add(self, *, party_id=None, org_number=None, ssn=None, **fields):
        """Register a party; ValueError when its id or number is taken or input is bad."""
        if bool(org_number) == bool(ssn):
            raise ValueError("give exactly one of organisationNumber and personNumber")
        number = org_number or ssn
        if not (isinstance(number, str) and number.isdigit()):
            raise ValueError("the number must be a string of digits")
        with self._lock:
            if party_id is None:
                party_id = self._new_id()
            if int(party_id) in self._by_id:
                raise ValueError("partyId %s is registered" % party_id)
            if number in (self._by_org if org_number else self._by_ssn):
                raise ValueError("%s is registered" % number)
            party = Party(party_id, org_number=org_number, ssn=ssn, **fields)
            self._put(party)
            return party

    def by_id(self, party_id):
        with self._lock:
            return self._by_id.get(int(party_id))

    def by_org_number(self, number):
        with self._lock:
            party = self._by_org.get(number)
            if party is None and valid_org_number(number):
                party = Party(self._new_id(), org_number=number)
                self._put(party)
            return party

    def by_person_number(self, number):
        with self._lock:
            party = self._by_ssn.get(number)
            if party is None and valid_person_number(number):
                party = Party(self._new_id(), ssn=number)
                self._put(party)
            return party

    def all(self):
        with self._lock:
            return sorted(self._by_id.values(), key=lambda p: p.party_id)


def register_admin(router, platform):
    """POST/GET /_localtest/parties."""
    parties = platform.parties

    def add_party(req):
        doc = req.json()
        if not isinstance(doc, dict):
            return web.text(400, "body must be a JSON object")
        party_id = doc.get("partyId")
        if party_id is not None and not str(party_id).isdigit():
            return web.text(400, "partyId must be a number")
        try:
            party = parties.add(
                party_id=int(party_id) if party_id is not None else None,
                org_number=doc.get("organisationNumber"), ssn=doc.get("personNumber"),
                name=doc.get("name"), unit_type=doc.get("unitType"),
                is_deleted=doc.get("isDeleted", False))
        except ValueError as e:
            status = 409 if "registered" in str(e) else 400
            return web.text(status, str(e))
        return web.json_response(party.to_json(), status=201)

    def list_parties(req):
        return web.json_response([p.to_json() for p in parties.all()])

    router.add("POST", "/_localtest/parties", add_party, auth=False)
    router.add("GET", "/_localtest/parties", list_parties, auth=False)
