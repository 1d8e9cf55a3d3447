"""Maskinporten (a stand-in) and Altinn's token exchange (altinn-api.md §1.1, §1.2).

Token endpoint `POST /maskinporten/token` (no bearer), form-encoded
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`. The grant is checked
as Maskinporten does, in this order, each failure a 400 `{"error", "error_description"}`:

- `invalid_request`: not form-encoded, or no assertion; `unsupported_grant_type`;
- `invalid_grant`: not a JWT; `alg` not RS256/RS384/RS512; no `kid` (an `x5c` business
  certificate is not supported here);
- `invalid_client`: `iss` is no registered client, or the client is revoked;
- `invalid_grant`: unknown `kid` for the client; the signature does not verify against the
  registered public key; claims other than aud, iss, scope, iat, exp, jti, resource,
  consumer_org, authorization_details, nbf; `aud` not exactly the issuer
  (`{server}/maskinporten/`, trailing slash); `iat` more than 10 s from the clock; `exp`
  missing, past, not after `iat` or more than 120 s after it; `jti` missing or used before;
- `invalid_scope`: no scope, or a scope the client has not been given.

Success: 200 `{"access_token", "token_type": "Bearer", "expires_in", "scope"}`; the access
token is opaque (a reference token, as in the sample) and lives `--token-lifetime` seconds.

Exchange `GET /authentication/api/v1/exchange/maskinporten` with `Authorization: Bearer <that
access token>`: 401 (empty, `WWW-Authenticate: Bearer`) for an unknown or expired one, 410 when
`X-Altinn-EnterpriseUser-Authentication` is sent. 200: an Altinn token signed like the test
tokens (so every API accepts it) with the Maskinporten claims (`scope`, `client_id`,
`consumer`), `urn:altinn:orgNumber`, `urn:altinn:authenticatemethod` = maskinporten,
`urn:altinn:authlevel` = 3, and `urn:altinn:org` only when the scope contains
`altinn:serviceowner` and the client is registered with an `org`. The answer is the token
JSON-quoted (`"eyJ..."`, application/json) when Accept names application/json, else plain text.

Admin calls (`register_admin`): register, revoke, reinstate and delete clients, read the issuer,
and a log of grants and exchanges that carries the secrets handed out, so tests can make sure
the daemon never writes them anywhere. Needs python3-cryptography (Debian's), imported on
first use.
"""

import base64
import binascii
import json
import secrets
import threading
import time
import urllib.parse

from . import auth, web

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOCK_SKEW = 10             # seconds iat may differ from our clock
MAX_GRANT_LIFETIME = 120    # exp - iat
KNOWN_CLAIMS = {"aud", "iss", "scope", "iat", "exp", "jti", "resource", "consumer_org",
                "authorization_details", "nbf"}
HASHES = {"RS256": "SHA256", "RS384": "SHA384", "RS512": "SHA512"}
LOG_MAX = 10000


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _subscription_key(req):
    return req.headers.get("Ocp-Apim-Subscription-Key")


def _crypto():
    """python3-cryptography's pieces, imported when first needed."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    return InvalidSignature, hashes, serialization, padding, rsa


class GrantError(Exception):
    def __init__(self, error, description, status=400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class Client:
    def __init__(self, client_id, keys, scopes, org_number, org):
        self.client_id = client_id
        self.keys = keys                # kid -> public key object
        self.scopes = scopes            # set of allowed scopes
        self.org_number = org_number
        self.org = org                  # service owner code, or None
        self.revoked = False

    def describe(self):
        return {"clientId": self.client_id, "kids": sorted(self.keys),
                "scopes": sorted(self.scopes), "orgNumber": self.org_number, "org": self.org,
                "revoked": self.revoked}


class MaskinportenService:
    def __init__(self, platform):
        self.platform = platform
        self._lock = threading.Lock()
        self._clients = {}
        self._jtis = {}                 # jti -> exp, kept until it could not be replayed
        self._tokens = {}               # access token -> (client, scope, exp)
        self._log = []
        self._seq = 0

    def issuer(self, req):
        """The issuer and audience: the server's own URL (not the Host header, so a client
        reaching us through a proxy still signs for the same issuer)."""
        base = getattr(self.platform, "url", None) or req.base_url
        return base + "/maskinporten/"

    # -- clients -----------------------------------------------------------------------

    def register(self, doc):
        if not isinstance(doc, dict):
            raise ValueError("body must be a JSON object")
        client_id = doc.get("clientId")
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("clientId is required")
        entries = doc.get("keys")
        if entries is None:
            entries = [{"kid": doc.get("kid"), "publicKeyPem": doc.get("publicKeyPem")}]
        if not isinstance(entries, list) or not entries:
            raise ValueError("keys must be a non-empty list of {kid, publicKeyPem}")
        _, _, serialization, _, rsa = _crypto()
        keys = {}
        for entry in entries:
            kid, pem = (entry or {}).get("kid"), (entry or {}).get("publicKeyPem")
            if not isinstance(kid, str) or not kid or not isinstance(pem, str):
                raise ValueError("each key needs a kid and a publicKeyPem")
            try:
                key = serialization.load_pem_public_key(pem.encode())
            except ValueError as e:
                raise ValueError("publicKeyPem of %r is not a PEM public key: %s" % (kid, e))
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("publicKeyPem of %r is not an RSA key" % kid)
            keys[kid] = key
        scopes = doc.get("scopes", doc.get("scope", auth.DEFAULT_ORG_SCOPES))
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ValueError("scopes must be a list of strings or a space-separated string")
        org = doc.get("org")
        org_number = str(doc.get("orgNumber") or auth.default_org_number(org or client_id))
        client = Client(client_id, keys, set(scopes), org_number, org)
        with self._lock:
            self._clients[client_id] = client
        return client

    def client(self, client_id):
        with self._lock:
            return self._clients.get(client_id)

    def clients(self):
        with self._lock:
            return [c.describe() for c in self._clients.values()]

    def delete(self, client_id):
        with self._lock:
            return self._clients.pop(client_id, None) is not None

    def log(self, since=0):
        with self._lock:
            return [e for e in self._log if e["seq"] > since]

    def _record(self, **entry):
        with self._lock:
            self._seq += 1
            entry.update(seq=self._seq, time=time.time())
            self._log.append(entry)
            del self._log[:-LOG_MAX]

    # -- the grant -----------------------------------------------------------------------

    def grant(self, req):
        """The token endpoint: a JSON response either way."""
        assertion = None
        try:
            assertion = self._assertion(req)
            client, scope = self._check(assertion, req)
            token, lifetime = self._issue(client, scope)
        except GrantError as e:
            self._record(kind="grant", status=e.status, error=e.error,
                         description=e.description, assertion=assertion,
                         subscriptionKey=_subscription_key(req))
            return web.json_response({"error": e.error, "error_description": e.description},
                                     status=e.status, headers=[("Cache-Control", "no-store")])
        self._record(kind="grant", status=200, clientId=client.client_id, scope=scope,
                     assertion=assertion, accessToken=token,
                     subscriptionKey=_subscription_key(req))
        return web.json_response({"access_token": token, "token_type": "Bearer",
                                  "expires_in": lifetime, "scope": scope},
                                 headers=[("Cache-Control", "no-store")])

    def _assertion(self, req):
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise GrantError("invalid_request", "Content-Type must be "
                             "application/x-www-form-urlencoded")
        try:
            form = dict(urllib.parse.parse_qsl(req.body().decode("ascii"),
                                               keep_blank_values=True))
        except UnicodeDecodeError:
            raise GrantError("invalid_request", "the body is not form-encoded")
        if form.get("grant_type") != GRANT_TYPE:
            raise GrantError("unsupported_grant_type", "grant_type must be " + GRANT_TYPE)
        if not form.get("assertion"):
            raise GrantError("invalid_request", "assertion is missing")
        return form["assertion"]

    def _check(self, assertion, req):
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(sig_b64)
        except (ValueError, binascii.Error, UnicodeError):
            raise GrantError("invalid_grant", "Invalid assertion. Malformed JWT")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise GrantError("invalid_grant", "Invalid assertion. Malformed JWT")
        if header.get("alg") not in HASHES:
            raise GrantError("invalid_grant", "Invalid assertion. Unsupported alg %r"
                             % header.get("alg"))
        if not header.get("kid"):
            raise GrantError("invalid_grant", "Invalid assertion. No kid in the header "
                             "(x5c is not supported by altinn-localtest)")
        client = self.client(claims.get("iss")) if isinstance(claims.get("iss"), str) else None
        if client is None:
            raise GrantError("invalid_client", "Invalid client: unknown client_id %r"
                             % claims.get("iss"))
        if client.revoked:
            raise GrantError("invalid_client", "Invalid client: the client is not active")
        key = client.keys.get(header["kid"])
        if key is None:
            raise GrantError("invalid_grant", "Invalid assertion. Client authentication "
                             "failed: unknown kid %r" % header["kid"])
        InvalidSignature, hashes, _, padding, _ = _crypto()
        try:
            key.verify(signature, (head_b64 + "." + claims_b64).encode("ascii"),
                       padding.PKCS1v15(), getattr(hashes, HASHES[header["alg"]])())
        except InvalidSignature:
            raise GrantError("invalid_grant", "Invalid assertion. Client authentication "
                             "failed: the signature does not verify")
        self._check_claims(claims, req)
        return client, self._check_scope(client, claims.get("scope"))

    def _check_claims(self, claims, req):
        unknown = sorted(set(claims) - KNOWN_CLAIMS)
        if unknown:
            raise GrantError("invalid_grant", "Invalid assertion. Unknown claims: "
                             + ", ".join(unknown))
        issuer = self.issuer(req)
        if claims.get("aud") != issuer:
            raise GrantError("invalid_grant", "Invalid assertion. Invalid audience %r: "
                             "expected %r" % (claims.get("aud"), issuer))
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or isinstance(iat, bool) or abs(iat - now) > CLOCK_SKEW:
            raise GrantError("invalid_grant", "Invalid assertion. iat must be within %d s "
                             "of the server's clock" % CLOCK_SKEW)
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= iat \
                or exp - iat > MAX_GRANT_LIFETIME:
            raise GrantError("invalid_grant", "Invalid assertion. exp must be after iat "
                             "and at most %d s after it" % MAX_GRANT_LIFETIME)
        if exp < now - CLOCK_SKEW:
            raise GrantError("invalid_grant", "Invalid assertion. The assertion has expired")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise GrantError("invalid_grant", "Invalid assertion. jti is missing")
        with self._lock:
            for old in [j for j, e in self._jtis.items() if e < now - CLOCK_SKEW]:
                del self._jtis[old]
            if jti in self._jtis:
                raise GrantError("invalid_grant", "Invalid assertion. jti has been used "
                                 "before")
            self._jtis[jti] = exp

    def _check_scope(self, client, scope):
        if not isinstance(scope, str) or not scope.split():
            raise GrantError("invalid_scope", "No scope requested")
        missing = [s for s in scope.split() if s not in client.scopes]
        if missing:
            raise GrantError("invalid_scope", "Scope(s) not allowed for the client: "
                             + " ".join(missing))
        return " ".join(scope.split())

    def _issue(self, client, scope):
        lifetime = int(self.platform.options.token_lifetime)
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            for old in [t for t, v in self._tokens.items() if v[2] <= now]:
                del self._tokens[old]
            self._tokens[token] = (client, scope, now + lifetime)
        return token, lifetime

    # -- the exchange --------------------------------------------------------------------

    def exchange(self, req):
        if req.headers.get("X-Altinn-EnterpriseUser-Authentication") is not None:
            return web.empty(410)
        scheme, _, token = (req.headers.get("Authorization") or "").strip().partition(" ")
        with self._lock:
            found = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None or found[2] <= time.time():
            self._record(kind="exchange", status=401, subscriptionKey=_subscription_key(req))
            return auth.unauthorized()
        client, scope, _ = found
        claims = {
            "scope": scope,
            "client_id": client.client_id,
            "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:" + client.org_number},
            "urn:altinn:orgNumber": client.org_number,
            "urn:altinn:authenticatemethod": "maskinporten",
            "urn:altinn:authlevel": 3,
        }
        if "altinn:serviceowner" in scope and client.org:
            claims["urn:altinn:org"] = client.org
        altinn_token = self.platform.tokens.issue(claims, auth.issuer_for(req))
        self._record(kind="exchange", status=200, clientId=client.client_id,
                     accessToken=token.strip(), altinnToken=altinn_token,
                     subscriptionKey=_subscription_key(req))
        if "application/json" in (req.headers.get("Accept") or ""):
            return web.json_response(altinn_token)
        return web.text(200, altinn_token)


def register(router, platform):
    service = platform.maskinporten
    router.add("POST", "/maskinporten/token", service.grant, auth=False)
    router.add("GET", "/authentication/api/v1/exchange/maskinporten", service.exchange,
               auth=False)


def register_admin(router, platform):
    service = platform.maskinporten
    prefix = "/_localtest/maskinporten"

    def info(req):
        issuer = service.issuer(req)
        return web.json_response({"issuer": issuer, "tokenEndpoint": issuer + "token",
                                  "clients": service.clients()})

    def add_client(req):
        try:
            client = service.register(req.json())
        except ValueError as e:
            return web.text(400, str(e))
        except ImportError:
            return web.text(500, "python3-cryptography is not installed")
        return web.json_response(client.describe(), status=201)

    def set_revoked(value):
        def handler(req):
            client = service.client(req.params["clientId"])
            if client is None:
                return web.text(404, "unknown client")
            client.revoked = value
            return web.json_response(client.describe())
        return handler

    def delete_client(req):
        return web.empty(204 if service.delete(req.params["clientId"]) else 404)

    def log(req):
        try:
            since = int(req.arg("since") or 0)
        except ValueError:
            return web.text(400, "since must be a number")
        return web.json_response(service.log(since))

    router.add("GET", prefix, info)
    router.add("GET", prefix + "/clients", lambda req: web.json_response(service.clients()))
    router.add("POST", prefix + "/clients", add_client)
    router.add("POST", prefix + "/clients/{clientId}/revoke", set_revoked(True))
    router.add("POST", prefix + "/clients/{clientId}/reinstate", set_revoked(False))
    router.add("DELETE", prefix + "/clients/{clientId}", delete_client)
    router.add("GET", prefix + "/log", log)
