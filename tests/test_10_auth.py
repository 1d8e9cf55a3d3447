"""Authentication: the Maskinporten grant and exchange, refresh ahead of
expiry, a rotated token file, clear errors that recover when the cause is
fixed, refused secret files, and secrets that never leave memory.

Each test that changes a platform (clients, revocation, expire-all) gets
its own. Keys are made here with python3-cryptography and registered with
the local platform's Maskinporten (scripts/localtest/maskinporten.py)."""

import base64
import errno
import hashlib
import json
import os
import random
import socket
import subprocess
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mounts import read_bytes
from procs import SANITIZER_MARKS, altinnfs_bin, free_port, run_bounded, write_secret

SCOPE = "altinn:serviceowner/instances.read altinn:serviceowner/instances.write"
INSTANCES = "apps/ttd/tilskudd/instances"
# Debug logging on: secrets must not reach even the debug lines.
DEBUG = ("-d",)


# --------------------------------------------------------------------------
# Helpers

def new_key(path):
    """An RSA key written to path (mode 0600); returns the public key PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    write_secret(path, pem)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def register(p, public_pem, client_id="c1", kid="k1", org="ttd", scopes=SCOPE):
    r = p.request("POST", "/_localtest/maskinporten/clients", auth=False,
                  body={"clientId": client_id, "kid": kid, "publicKeyPem": public_pem,
                        "org": org, "scopes": scopes})
    assert r.status == 201, r


def issuer(p):
    return p.get_json("/_localtest/maskinporten", auth=False)["issuer"]


def mp_options(p, key_path, **kw):
    """Mount options for the Maskinporten source (no token_file)."""
    opts = {
        "token_file": None,
        "maskinporten_client_id": "c1",
        "maskinporten_key_file": str(key_path),
        "maskinporten_kid": "k1",
        "maskinporten_scope": SCOPE,
        "maskinporten_audience": issuer(p),
        "maskinporten_token_url": issuer(p) + "token",
        "cache_ttl": 0,
        "timeout": 5,
    }
    opts.update(kw)
    return opts


def mp_log(p, kind=None):
    entries = p.get_json("/_localtest/maskinporten/log", auth=False)
    return [e for e in entries if kind is None or e["kind"] == kind]


def grants(p, status=200):
    return [e for e in mp_log(p, "grant") if e["status"] == status]


def status(m):
    return json.loads(read_bytes(m / "status.json"))


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def wait_for(fn, limit, what):
    """fn() until it returns something true (exceptions count as false)."""
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        try:
            got = fn()
            if got:
                return got
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {limit} s (last error: {last!r})")


def listing_works(m):
    return "50001" in os.listdir(m / INSTANCES)


def expect_eacces(fn, limit=15):
    elapsed, result, exc = run_bounded(fn, limit)
    assert isinstance(exc, OSError) and exc.errno == errno.EACCES, \
        f"expected EACCES, got {exc!r} / {result!r:.100}"
    return elapsed


def secrets_of(p, extra=()):
    """Every secret the platform handed out or received, with the signature
    part of each JWT on its own (a log might show a cut token)."""
    found = set(extra)
    for e in mp_log(p):
        for key in ("assertion", "accessToken", "altinnToken"):
            if e.get(key):
                found.add(e[key])
    for s in list(found):
        if s.count(".") == 2:
            found.add(s.rsplit(".", 1)[1])
    return {s for s in found if len(s) >= 16}


def key_lines(key_path):
    """The base64 lines of a PEM private key."""
    return [ln for ln in open(key_path).read().splitlines()
            if ln and not ln.startswith("-----")]


def assert_no_secrets(m, secrets):
    """None in the daemon's log, status.json or anything under state_dir."""
    assert secrets, "no secrets to look for"
    places = {"log": m.log().encode()}
    try:
        places["status.json"] = read_bytes(m / "status.json")
    except OSError:
        pass
    cache = os.path.join(m.state_dir, "cache")
    for root, _, files in os.walk(m.state_dir):
        for name in files:
            path = os.path.join(root, name)
            places[path + " (its name)"] = name.encode()
            if os.path.commonpath([path, cache]) == cache:
                # the content cache holds element bytes as the platform
                # sent them (test_18 checks each against its sha256);
                # scanning 256 MiB for every piece took a minute
                continue
            with open(path, "rb") as f:
                places[path] = f.read()
    pieces = {s[i:i + 24] for s in secrets for i in range(0, max(1, len(s) - 23), 8)}
    for where, data in places.items():
        for s in pieces:
            assert s.encode() not in data, f"a piece of a secret ({s[:12]}...) is in {where}"


class Forwarder:
    """A TCP forwarder from a port to the platform: a token endpoint that
    starts answering when the test says so."""

    def __init__(self, port, target_port):
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.sock.close()


# --------------------------------------------------------------------------
# The grant and the exchange

def test_grant_and_exchange(platform_factory, mount, tmp_path):
    p = platform_factory()
    key = tmp_path / "key.pem"
    register(p, new_key(key))
    mark = p.mark()
    m = mount(localtest=p, args=DEBUG, **mp_options(p, key))
    assert listing_works(m)

    st = status(m)
    assert st["token"]["source"] == "maskinporten"
    assert st["token"]["subject"] == "ttd"  # urn:altinn:org of the exchanged token
    assert st["token"]["expires_at"] > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert st["platform"]["last_error"] is None

    [grant] = grants(p)
    head, claims, _ = grant["assertion"].split(".")
    assert b64url_json(head) == {"alg": "RS256", "kid": "k1"}
    claims = b64url_json(claims)
    assert set(claims) == {"aud", "iss", "scope", "iat", "exp", "jti"}
    assert claims["aud"] == issuer(p) and claims["aud"].endswith("/")
    assert claims["iss"] == "c1" and claims["scope"] == SCOPE
    assert abs(claims["iat"] - time.time()) < 30 and 0 < claims["exp"] - claims["iat"] <= 120
    assert len(claims["jti"]) == 36

    log = p.since(mark)
    token_calls = [e for e in log if e["path"] == "/maskinporten/token"]
    exchanges = [e for e in log if e["path"] == "/authentication/api/v1/exchange/maskinporten"]
    assert [(e["method"], e["status"], e["auth"]) for e in token_calls] == [("POST", 200, False)]
    assert [(e["method"], e["status"], e["auth"]) for e in exchanges] == [("GET", 200, True)]
    api = [e for e in log if e["path"].startswith("/storage/")]
    assert api and all(e["auth"] and e["status"] == 200 for e in api)
    assert_no_secrets(m, secrets_of(p, key_lines(key)))


def test_a_storm_of_401s_costs_one_grant(platform_factory, mount, tmp_path):
    p = platform_factory()
    key = tmp_path / "key.pem"
    register(p, new_key(key))
    m = mount(localtest=p, args=DEBUG, **mp_options(p, key))
    assert listing_works(m)
    parties = sorted(os.listdir(m / "apps/ttd/soknad/instances"))[:16]
    before = len(grants(p))
    r = p.request("POST", "/_localtest/tokens/expire-all", auth=False)
    assert r.status == 204
    errors = []

    def list_party(party):
        try:
            os.listdir(m / "apps/ttd/soknad/instances" / party)
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=list_party, args=(x,)) for x in parties]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(grants(p)) == before + 1


# --------------------------------------------------------------------------
# Refresh ahead of expiry: no user ever sees it

def test_short_tokens_refresh_under_load(platform_factory, mount, tmp_path, big_element,
                                         big_sha256):
    lifetime = 5
    p = platform_factory(token_lifetime=lifetime)
    key = tmp_path / "key.pem"
    register(p, new_key(key))
    m = mount(localtest=p, args=DEBUG, **mp_options(p, key))
    assert listing_works(m)
    mark = p.mark()
    big = m / big_element["rel"]
    stop = threading.Event()
    errors, counts = [], {"listings": 0, "reads": 0}

    def long_read():
        h, n = hashlib.sha256(), 0
        with open(big, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
                time.sleep(0.03)  # ~8 s for 256 MiB: the stream outlives its token
        return h.hexdigest(), n

    def guarded(fn):
        def body():
            try:
                while not stop.is_set():
                    fn()
            except Exception as e:  # noqa: B902 - reported below
                errors.append(e)
        return body

    def listing():
        assert len(os.listdir(m / "apps/ttd/soknad/instances")) == 300
        assert listing_works(m)
        counts["listings"] += 1
        time.sleep(0.2)

    def random_read():
        off = random.randrange(0, big_element["size"] - 65536)
        with open(big, "rb") as f:
            f.seek(off)
            assert len(f.read(65536)) == 65536
        counts["reads"] += 1
        time.sleep(0.1)

    workers = [threading.Thread(target=guarded(fn)) for fn in (listing, random_read)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    try:
        elapsed, got, exc = run_bounded(long_read, 120)
        assert exc is None, exc
        assert got == (big_sha256, big_element["size"])
        # at least three token lifetimes of load, and enough of it: on a
        # loaded machine (the sanitizer build) a listing takes longer, so
        # wait for the counts rather than guess a duration
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not errors and not (
                time.monotonic() - t0 >= 3 * lifetime
                and counts["listings"] > 10 and counts["reads"] > 20):
            time.sleep(0.2)
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    assert errors == [], errors[:3]
    assert counts["listings"] > 10 and counts["reads"] > 20, counts
    assert elapsed > lifetime, "the read did not outlive a token"

    assert len(grants(p)) >= 5, f"{len(grants(p))} grants in {3 * lifetime} s"
    jtis = [b64url_json(g["assertion"].split(".")[1])["jti"] for g in grants(p)]
    assert len(set(jtis)) == len(jtis), "a jti was used twice"
    refused = [e for e in p.since(mark) if e["status"] == 401]
    assert refused == [], f"the platform saw an expired token: {refused[:3]}"
    assert "refused" not in m.log() and "expired" not in m.log()

    # nobody uses the mount: the refresher still keeps a fresh token
    before = len(grants(p))
    time.sleep(lifetime + 1)
    assert len(grants(p)) >= before + 2
    assert_no_secrets(m, secrets_of(p, key_lines(key)))


# --------------------------------------------------------------------------
# A token file rotated under the daemon

def test_rotated_token_file(platform_factory, mount, tmp_path):
    p = platform_factory()
    token = tmp_path / "token"
    write_secret(token, p.new_token() + "\n")
    m = mount(localtest=p, args=DEBUG, token_file=str(token), cache_ttl=0, timeout=5)
    assert listing_works(m)
    assert status(m)["token"]["source"] == "token_file"

    def rotate(text, mode=0o600):
        tmp = tmp_path / "token.new"
        write_secret(tmp, text)
        os.chmod(tmp, mode)
        os.replace(tmp, token)

    # the old token stops working; the new file is read after one 401
    assert p.request("POST", "/_localtest/tokens/expire-all", auth=False).status == 204
    rotate(p.new_token() + "\n")
    assert listing_works(m)

    # rotated to a file others may read: refused, loudly
    assert p.request("POST", "/_localtest/tokens/expire-all", auth=False).status == 204
    third = p.new_token()
    rotate(third + "\n", 0o644)
    expect_eacces(lambda: os.listdir(m / INSTANCES))
    want = f'token file "{token}" is readable by group or others (mode 0644): chmod 600 it'
    assert want in m.log()
    assert want in (status(m)["platform"]["last_error"] or "")

    # fixed: read again within a second or two
    os.chmod(token, 0o600)
    wait_for(lambda: listing_works(m), 10, "the listing after chmod 600")
    assert status(m)["platform"]["last_error"] is None
    assert_no_secrets(m, {third, third.rsplit(".", 1)[1]})


# --------------------------------------------------------------------------
# Clear errors that recover when fixed

def test_wrong_key_recovers_when_the_key_file_is_fixed(platform_factory, mount, tmp_path):
    p = platform_factory()
    right, wrong = tmp_path / "right.pem", tmp_path / "key.pem"
    register(p, new_key(right))
    new_key(wrong)
    m = mount(localtest=p, args=DEBUG, **mp_options(p, wrong))
    expect_eacces(lambda: os.listdir(m / INSTANCES))
    want = ('maskinporten refused the grant of client "c1" (400 invalid_grant: Invalid '
            'assertion. Client authentication failed: the signature does not verify)')
    assert want in m.log()
    st = status(m)
    assert want in st["platform"]["last_error"]
    assert st["token"] == {"source": "maskinporten", "subject": None, "expires_at": None}

    tmp = tmp_path / "new.pem"
    write_secret(tmp, right.read_text())
    os.replace(tmp, wrong)
    wait_for(lambda: listing_works(m), 40, "the listing with the right key")
    assert status(m)["platform"]["last_error"] is None
    assert 'maskinporten key file "%s" read again' % wrong in m.log()
    assert_no_secrets(m, secrets_of(p, key_lines(right) + key_lines(wrong)))


def test_wrong_audience(platform_factory, mount, tmp_path):
    p = platform_factory()
    key = tmp_path / "key.pem"
    register(p, new_key(key))
    m = mount(localtest=p, args=DEBUG, **mp_options(p, key, maskinporten_audience="https://maskinporten.no/"))
    expect_eacces(lambda: os.listdir(m / INSTANCES))
    want = "invalid_grant: Invalid assertion. Invalid audience 'https://maskinporten.no/'"
    assert want in m.log()
    assert want in status(m)["platform"]["last_error"]
    assert_no_secrets(m, secrets_of(p, key_lines(key)))
    m.stop()

    # the audience is configuration: fixed by a restart with the issuer
    m = mount(localtest=p, args=DEBUG, **mp_options(p, key))
    assert listing_works(m)
    assert status(m)["platform"]["last_error"] is None


def test_revoked_client_then_reinstated(platform_factory, mount, tmp_path):
    lifetime = 4
    p = platform_factory(token_lifetime=lifetime)
    key = tmp_path / "key.pem"
    register(p, new_key(key))
    m = mount(localtest=p, args=DEBUG, **mp_options(p, key))
    assert listing_works(m)
    assert p.request("POST", "/_localtest/maskinporten/clients/c1/revoke", auth=False).status == 200

    want = ('maskinporten refused the grant of client "c1" (400 invalid_client: Invalid client: '
            'the client is not active)')
    wait_for(lambda: want in (status(m)["platform"]["last_error"] or ""), 3 * lifetime,
             "the revocation in status.json")
    assert want in m.log()
    time.sleep(lifetime)  # the last token has run out by now
    expect_eacces(lambda: os.listdir(m / INSTANCES))

    assert p.request("POST", "/_localtest/maskinporten/clients/c1/reinstate",
                     auth=False).status == 200
    wait_for(lambda: listing_works(m), 20, "the listing after reinstating")
    wait_for(lambda: status(m)["platform"]["last_error"] is None, 10, "a clean status.json")
    assert_no_secrets(m, secrets_of(p, key_lines(key)))


def test_unreachable_token_endpoint(platform_factory, mount, tmp_path):
    p = platform_factory()
    key = tmp_path / "key.pem"
    register(p, new_key(key))
    port = free_port()
    url = f"http://127.0.0.1:{port}/maskinporten/token"
    m = mount(localtest=p, args=DEBUG, **mp_options(p, key, maskinporten_token_url=url))
    elapsed = expect_eacces(lambda: os.listdir(m / INSTANCES))
    assert elapsed < 8, "a dead token endpoint must fail fast"
    want = (f'cannot reach the maskinporten token endpoint "{url}": '
            f'connect to 127.0.0.1:{port}: Connection refused')
    assert want in m.log()
    assert want in status(m)["platform"]["last_error"]

    fwd = Forwarder(port, p.port)
    try:
        wait_for(lambda: listing_works(m), 40, "the listing once the endpoint answers")
    finally:
        fwd.close()
    assert status(m)["token"]["subject"] == "ttd"
    assert_no_secrets(m, secrets_of(p, key_lines(key)))


# --------------------------------------------------------------------------
# The subscription key: to the platform, never to Maskinporten

def test_subscription_key(platform_factory, mount, tmp_path):
    p = platform_factory(token_lifetime=3)
    key, sub = tmp_path / "key.pem", tmp_path / "subscription-key"
    register(p, new_key(key))
    write_secret(sub, "first-subscription-key-0001\n")
    m = mount(localtest=p, args=DEBUG, **mp_options(p, key, subscription_key_file=str(sub)))
    assert listing_works(m)
    assert all(e.get("subscriptionKey") is None for e in mp_log(p, "grant"))
    [first, *_] = mp_log(p, "exchange")
    assert first["subscriptionKey"] == "first-subscription-key-0001"

    time.sleep(1.1)
    write_secret(sub, "second-subscription-key-0002\n")
    wait_for(lambda: mp_log(p, "exchange")[-1]["subscriptionKey"]
             == "second-subscription-key-0002", 10, "the new subscription key")
    assert listing_works(m)
    assert_no_secrets(m, secrets_of(p, ["first-subscription-key-0001",
                                        "second-subscription-key-0002"]))


# --------------------------------------------------------------------------
# Refused at start

def run_daemon(tmp_path, options):
    conf = tmp_path / "altinnfs.conf"
    conf.write_text("".join(f"{k} = {v}\n" for k, v in options.items()))
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    r = subprocess.run([altinnfs_bin(), "-f", "--config", str(conf), str(mnt)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert not [m for m in SANITIZER_MARKS if m in r.stderr], r.stderr
    return r


@pytest.fixture
def start_options(tmp_path):
    key = tmp_path / "key.pem"
    new_key(key)
    return {
        "platform": "http://127.0.0.1:9", "apps": "ttd/tilskudd",
        "state_dir": str(tmp_path / "state"),
        "maskinporten_client_id": "c1", "maskinporten_key_file": str(key),
        "maskinporten_kid": "k1", "maskinporten_scope": SCOPE,
        "maskinporten_audience": "https://test.maskinporten.no/",
    }


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_open_key_file_is_refused_at_start(tmp_path, start_options, mode):
    key = start_options["maskinporten_key_file"]
    os.chmod(key, mode)
    r = run_daemon(tmp_path, start_options)
    assert r.returncode == 2
    what = "readable" if mode & 0o044 else "writable"
    assert (f'maskinporten key file "{key}" is {what} by group or others (mode {mode:04o}): '
            f'chmod 600 it') in r.stderr


def test_open_token_file_is_refused_at_start(tmp_path, start_options):
    token = tmp_path / "token"
    token.write_text("a-token\n")
    token.chmod(0o644)
    opts = {k: v for k, v in start_options.items() if not k.startswith("maskinporten")}
    r = run_daemon(tmp_path, dict(opts, token_file=str(token)))
    assert r.returncode == 2
    assert f'token file "{token}" is readable by group or others (mode 0644)' in r.stderr


@pytest.mark.parametrize("change, message", [
    ({"maskinporten_kid": None}, 'maskinporten_client_id is given but not "maskinporten_kid"'),
    ({"maskinporten_audience": "https://test.maskinporten.no"},
     "must be the issuer with its trailing slash"),
    ({"token_file": "/etc/hostname"}, "two token sources"),
    ({"maskinporten_client_id": None}, 'not "maskinporten_client_id"'),
    ({"subscription_key_file": "/etc/hostname"},
     'subscription key file "/etc/hostname" is readable by group or others'),
    ("not-a-key", 'maskinporten key file "KEY" holds no PEM private key'),
])
def test_bad_maskinporten_settings(tmp_path, start_options, change, message):
    opts = dict(start_options)
    if change == "not-a-key":
        write_secret(opts["maskinporten_key_file"], "-----BEGIN PRIVATE KEY-----\nAAAA\n")
        message = message.replace("KEY", opts["maskinporten_key_file"])
    else:
        opts.update(change)
    r = run_daemon(tmp_path, {k: v for k, v in opts.items() if v is not None})
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
