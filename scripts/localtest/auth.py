"""Tokens: the test-token endpoints of app-localtest and the bearer check on every API call.

Tokens are HS256 JWTs signed with a key made at start-up, so only tokens this process issued
(and that have not expired) are accepted. `expire_all` replaces the key, which makes every
token issued so far invalid at once (tests use it to check the daemon's refresh path).

The claims follow what Altinn's Authentication puts in an exchanged token (altinn-api.md §1.2):
`urn:altinn:org` for a service owner, `urn:altinn:orgNumber`, `scope` as a space-separated
string; user tokens carry `urn:altinn:userid` and `urn:altinn:partyid`.
"""

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
import zlib

from . import web

DEFAULT_ORG_SCOPES = "altinn:serviceowner/instances.read altinn:serviceowner/instances.write"
READ_SCOPE = "altinn:serviceowner/instances.read"
WRITE_SCOPE = "altinn:serviceowner/instances.write"

# Organisation numbers of well-known test orgs; any other org gets a stable made-up one.
KNOWN_ORG_NUMBERS = {"ttd": "991825827"}


def default_org_number(org):
    if org in KNOWN_ORG_NUMBERS:
        return KNOWN_ORG_NUMBERS[org]
    return "9%08d" % (zlib.crc32(org.encode("utf-8")) % 100_000_000)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Principal:
    """Who is calling, from a verified token's claims."""

    def __init__(self, claims):
        self.claims = claims
        self.org = claims.get("urn:altinn:org")
        self.org_number = claims.get("urn:altinn:orgNumber")
        self.user_id = claims.get("urn:altinn:userid")
        self.party_id = claims.get("urn:altinn:partyid")
        self.scopes = set((claims.get("scope") or "").split())

    @property
    def is_org(self):
        return bool(self.org)

    @property
    def is_user(self):
        return not self.is_org and self.user_id is not None

    def has_scope(self, scope):
        return scope in self.scopes

    def same_org(self, org):
        return self.is_org and org is not None and self.org.lower() == org.lower()

    def may_read_instance(self, inst):
        """Service owners read their own apps' instances; users their own party's."""
        if self.is_org:
            return self.same_org(inst.org)
        if self.party_id is not None:
            return str(self.party_id) == inst.party_id
        return False

    @property
    def subject(self):
        """What the platform writes into createdBy/lastChangedBy for this caller."""
        if self.is_org:
            return self.org_number or self.org
        return str(self.user_id) if self.user_id is not None else None


class TokenService:
    def __init__(self, lifetime):
        self.lifetime = int(lifetime)
        self._lock = threading.Lock()
        self._key = os.urandom(32)

    def issue(self, claims, issuer):
        now = int(time.time())
        payload = dict(claims)
        payload.update({"iss": issuer, "iat": now, "nbf": now, "exp": now + self.lifetime,
                        "jti": str(uuid.uuid4())})
        header = {"alg": "HS256", "typ": "JWT"}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64url(json.dumps(payload, separators=(",", ":")).encode()))
        with self._lock:
            key = self._key
        sig = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + _b64url(sig)

    def verify(self, token):
        """The claims of a valid, unexpired token from this server, else None."""
        try:
            head_b64, payload_b64, sig_b64 = token.split(".")
            header = json.loads(_b64url_decode(head_b64))
            if header.get("alg") != "HS256":
                return None
            with self._lock:
                key = self._key
            expected = hmac.new(key, (head_b64 + "." + payload_b64).encode("ascii"),
                                hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _b64url_decode(sig_b64)):
                return None
            claims = json.loads(_b64url_decode(payload_b64))
        except (ValueError, TypeError, UnicodeError):
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), (int, float)):
            return None
        if claims["exp"] <= time.time():
            return None
        return claims

    def expire_all(self):
        with self._lock:
            self._key = os.urandom(32)

    def authenticate(self, headers):
        """Principal for the request's bearer token, or None."""
        value = headers.get("Authorization") or ""
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        claims = self.verify(token.strip())
        return Principal(claims) if claims is not None else None


def unauthorized():
    return web.empty(401, [("WWW-Authenticate", "Bearer")])


def forbidden():
    return web.empty(403)


def issuer_for(req):
    return req.base_url + "/authentication/api/v1/openid/"


def register(router, platform):
    tokens = platform.tokens

    def org_token(req):
        org = req.params["org"]
        claims = {
            "urn:altinn:org": org,
            "urn:altinn:orgNumber": req.arg("orgNumber") or default_org_number(org),
            "urn:altinn:authenticatemethod": "maskinporten",
            "urn:altinn:authlevel": 3,
            "scope": req.arg("scopes") or DEFAULT_ORG_SCOPES,
        }
        return web.text(200, tokens.issue(claims, issuer_for(req)))

    def user_token(req):
        user_id = req.params["userId"]
        try:
            auth_level = int(req.arg("authLevel") or req.arg("authenticationLevel") or 2)
        except ValueError:
            return web.text(400, "authLevel must be a number")
        claims = {
            "urn:altinn:userid": user_id,
            "urn:altinn:partyid": req.arg("partyId") or user_id,
            "urn:altinn:authlevel": auth_level,
            "urn:altinn:authenticatemethod": "Mock",
            "scope": req.arg("scopes") or "altinn:instances.read altinn:instances.write",
        }
        return web.text(200, tokens.issue(claims, issuer_for(req)))

    router.add("GET", "/Home/GetTestOrgToken/{org}", org_token, auth=False)
    router.add("GET", "/Home/GetTestUserToken/{userId:int}", user_token, auth=False)
