"""altinnfs --check: one line per check, ok or FAIL with what to do, exit
0 only when all pass; nothing is mounted. Good and broken configs against
the local platform: an unknown app, an unreachable platform, a wrong
Maskinporten key, a token without the write scope the outbox needs, an
open token file, a typo, a taken listen port; push (the events subscription
allowed, the webhook reached from the platform's side, no subscription left
behind); Broker and Correspondence resources and their scopes."""

import http.server
import os
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import platform_ctx
from mounts import mounted
from procs import SANITIZER_MARKS, altinnfs_bin, free_port, write_secret

READ = "altinn:serviceowner/instances.read"
WRITE = "altinn:serviceowner/instances.write"


def check(tmp_path, platform, *extra, token=None, apps="ttd/soknad ttd/tilskudd",
          mountpoint=None):
    opts = [f"platform={platform.url}", f"apps_url={platform.url}", f"apps={apps}",
            f"state_dir={tmp_path / 'state'}"]
    if token is not False:
        opts.append(f"token_file={token or platform.token_file}")
    args = [altinnfs_bin(), "--check", "-o", ",".join(opts)]
    for e in extra:
        args += ["-o", e]
    if mountpoint:
        args.append(str(mountpoint))
    r = subprocess.run(args, capture_output=True, timeout=120)
    found = [m for m in SANITIZER_MARKS if m in r.stderr.decode(errors="replace")]
    assert not found, f"sanitizer report ({', '.join(found)}):\n{r.stderr.decode()[:3000]}"
    lines = r.stdout.decode().splitlines()
    return r.returncode, lines, r.stderr.decode()


def find(lines, prefix):
    got = [ln for ln in lines if ln.startswith(prefix)]
    assert got, f"no line starting {prefix!r} in:\n" + "\n".join(lines)
    return got[0]


def test_good_config_passes_every_check_without_mounting(platform, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    rc, lines, err = check(tmp_path, platform, mountpoint=mnt)
    assert rc == 0, (lines, err)
    assert lines[-1] == "all checks passed"
    assert not [ln for ln in lines[:-1] if not ln.startswith("ok    ")], lines
    for prefix in ("ok    config: 2 app(s)", "ok    state_dir:", "ok    token file:",
                   'ok    token: from token_file, for "ttd", valid for',
                   f'ok    scopes: "{READ} {WRITE}"',
                   "ok    mountpoint:",
                   "ok    app ttd/soknad: metadata readable", "ok    app ttd/tilskudd:",
                   "ok    instances ttd/soknad: the instance query is allowed",
                   "ok    events ttd/tilskudd:"):
        find(lines, prefix)
    assert "mode 0600" in find(lines, "ok    token file:")
    assert not mounted(mnt)
    assert not os.listdir(mnt)


def test_unknown_app(platform, tmp_path):
    rc, lines, _ = check(tmp_path, platform, apps="ttd/soknad ttd/nosuchapp")
    assert rc == 1
    line = find(lines, "FAIL  app ttd/nosuchapp:")
    assert "not on the platform (404)" in line and "check the org/app in apps" in line
    find(lines, "ok    app ttd/soknad:")
    # its query and events say nothing more about an app that is not there
    assert not [ln for ln in lines if "instances ttd/nosuchapp" in ln or
                "events ttd/nosuchapp" in ln], lines
    assert lines[-1] == "some checks failed"


def test_unreachable_platform(platform, tmp_path):
    port = free_port()
    rc, lines, _ = check(tmp_path, platform, f"platform=http://127.0.0.1:{port}",
                         f"apps_url=http://127.0.0.1:{port}", apps="ttd/soknad")
    assert rc == 1
    line = find(lines, "FAIL  app ttd/soknad:")
    assert f"connect to 127.0.0.1:{port}: Connection refused" in line, line
    assert "check platform" in line
    # the local things were still checked, and passed
    find(lines, "ok    state_dir:")
    find(lines, "ok    token file:")


def test_read_only_token_with_the_outbox_on(platform, tmp_path):
    r = platform.request("GET", "/Home/GetTestOrgToken/ttd", query={"scopes": READ},
                         auth=False)
    assert r.status == 200
    token = tmp_path / "ro-token"
    write_secret(token, r.body.decode())
    rc, lines, _ = check(tmp_path, platform, token=token)
    assert rc == 1
    line = find(lines, "FAIL  scopes:")
    assert WRITE in line and "outbox = no" in line
    # with the outbox off, reading is all it needs
    rc, lines, _ = check(tmp_path, platform, "outbox=no", token=token)
    assert rc == 0, lines
    assert "read only" in find(lines, f'ok    scopes: "{READ}"')


def test_open_token_file_and_typo_are_config_failures(platform, tmp_path):
    token = tmp_path / "open-token"
    token.write_text(platform.token_file.read_text())
    token.chmod(0o644)
    rc, lines, _ = check(tmp_path, platform, token=token)
    assert rc == 1
    assert lines[0].startswith("FAIL  config:") and "chmod 600" in lines[0], lines
    rc, lines, _ = check(tmp_path, platform, "cache_tll=5")
    assert rc == 1
    assert lines == ['FAIL  config: unknown option "cache_tll" (see --help for the keys)']


def test_listen_port_taken(platform, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, lines, _ = check(tmp_path, platform, f"metrics_listen=127.0.0.1:{port}",
                             apps="ttd/soknad")
    assert rc == 1
    assert f'cannot listen on "127.0.0.1:{port}"' in find(lines, "FAIL  metrics_listen:")


# ---- Maskinporten: the grant and exchange are made, as the mount would

def new_key(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_secret(path, key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode())
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def mp(own_platform, tmp_path_factory):
    """own_platform with a Maskinporten client "doctor" registered for the
    key it returns; and a second key it does not know."""
    d = tmp_path_factory.mktemp("mp")
    right, wrong = d / "right.pem", d / "wrong.pem"
    r = own_platform.request("POST", "/_localtest/maskinporten/clients", auth=False,
                             body={"clientId": "doctor", "kid": "k1",
                                   "publicKeyPem": new_key(right), "org": "ttd",
                                   "scopes": f"{READ} {WRITE}"})
    assert r.status == 201, r
    new_key(wrong)
    issuer = own_platform.get_json("/_localtest/maskinporten", auth=False)["issuer"]
    return own_platform, right, wrong, issuer


def mp_opts(issuer, key):
    return [f"maskinporten_client_id=doctor,maskinporten_key_file={key},maskinporten_kid=k1,"
            f"maskinporten_audience={issuer},maskinporten_token_url={issuer}token",
            f"maskinporten_scope={READ} {WRITE}"]


def test_maskinporten_right_key(mp, tmp_path):
    p, right, _, issuer = mp
    rc, lines, err = check(tmp_path, p, *mp_opts(issuer, right), token=False,
                           apps="ttd/soknad")
    assert rc == 0, (lines, err)
    find(lines, "ok    maskinporten key file:")
    find(lines, 'ok    token: from maskinporten, for "ttd"')


def test_maskinporten_wrong_key(mp, tmp_path):
    p, _, wrong, issuer = mp
    rc, lines, _ = check(tmp_path, p, *mp_opts(issuer, wrong), token=False, apps="ttd/soknad")
    assert rc == 1
    line = find(lines, "FAIL  token: no token from maskinporten:")
    assert "the signature does not verify" in line, line
    assert "the key registered for that client" in line


# ---- push: the events subscription and the webhook, from the platform's side

CODE = "doctorcheck0123456789abcdefghijk"
EV_ARGS = ["--allow-http-webhooks", "--webhook-retry-scale", "0.01"]


@pytest.fixture(scope="module")
def push_platform(tmp_path_factory):
    """A platform that, like the real one, validates subscriptions by a
    request to their endpoint, and takes http:// endpoints on loopback."""
    with platform_ctx(tmp_path_factory.mktemp("push-platform"), extra_args=EV_ARGS) as p:
        yield p


@pytest.fixture
def pp(push_platform):
    push_platform.request("DELETE", "/_localtest/subscriptions", auth=False)
    push_platform.request("DELETE", "/_localtest/webhooks", auth=False)
    yield push_platform
    push_platform.request("DELETE", "/_localtest/subscriptions", auth=False)


def subscriptions(p):
    doc = p.get_json("/_localtest/subscriptions", auth=False)
    return doc.get("subscriptions", doc) if isinstance(doc, dict) else doc


def webhook_attempts(p):
    r = p.get("/_localtest/webhooks", auth=False)
    assert r.status == 200, r
    return r.json()


def push_opts(listen_port, url_port=None, code=CODE):
    url = f"http://127.0.0.1:{url_port or listen_port}/altinn/events"
    return [f"webhook_listen=127.0.0.1:{listen_port}",
            f"webhook_url={url}?code={code}" if code else f"webhook_url={url}"]


def test_push_good_subscribes_is_reached_and_leaves_nothing(pp, tmp_path):
    port = free_port()
    rc, lines, err = check(tmp_path, pp, *push_opts(port))
    assert rc == 0, (lines, err)
    assert not [ln for ln in lines[:-1] if not ln.startswith("ok    ")], lines
    assert f'"127.0.0.1:{port}" is free' in find(lines, "ok    webhook_listen:")
    for app in ("ttd/soknad", "ttd/tilskudd"):
        line = find(lines, f"ok    subscription {app}: the platform allows it")
        assert "made for this check and deleted after it" in line, line
    line = find(lines, "ok    webhook: the platform reached "
                f"http://127.0.0.1:{port}/altinn/events: the validation of 2 subscription(s)")
    assert CODE not in "\n".join(lines)                 # the secret is never printed
    # what the platform saw: two validations delivered (answered 200), and
    # afterwards no subscription is left
    deadline = time.monotonic() + 10    # the platform logs an attempt once it read the answer
    while True:
        validations = [a for a in webhook_attempts(pp) if a["eventId"] is None]
        if len(validations) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(validations) == 2 and all(a["status"] == 200 for a in validations), validations
    assert {a["endPoint"] for a in validations} == {
        f"http://127.0.0.1:{port}/altinn/events?code={CODE}"}
    assert subscriptions(pp) == []


def test_push_keeps_a_subscription_that_was_there(pp, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/altinn/events?code={CODE}"
    r = pp.request("POST", "/events/api/v1/subscriptions",
                   body={"endPoint": url, "sourceFilter": f"{pp.url}/ttd/soknad"})
    assert r.status == 201, r
    sub_id = r.json()["id"]
    rc, lines, err = check(tmp_path, pp, *push_opts(port), apps="ttd/soknad")
    assert rc == 0, (lines, err)
    line = find(lines, "ok    subscription ttd/soknad:")
    assert f"subscription {sub_id}, there already, kept" in line, line
    find(lines, "ok    webhook: the platform reached")
    # posted again, so validated again: now by the check's own listener (the
    # platform marks it once it has read the 200, maybe after the check ended)
    deadline = time.monotonic() + 10
    while True:
        [kept] = subscriptions(pp)
        if kept["validated"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert kept["id"] == sub_id and kept["validated"]


def test_push_webhook_unreachable(pp, tmp_path):
    """webhook_url leads elsewhere than webhook_listen: nothing arrives."""
    listen, elsewhere = free_port(), free_port()
    rc, lines, _ = check(tmp_path, pp, *push_opts(listen, elsewhere), "timeout=3",
                         apps="ttd/soknad")
    assert rc == 1
    find(lines, "ok    subscription ttd/soknad: the platform allows it")
    line = find(lines, "FAIL  webhook: no validation request arrived at webhook_listen within 3 s")
    assert f"cannot reach http://127.0.0.1:{elsewhere}/altinn/events:" in line, line
    assert "timeout=90" in line
    assert lines[-1] == "some checks failed"
    assert subscriptions(pp) == []                       # deleted even so


def test_push_subscription_not_deleted_is_a_warning(pp, tmp_path):
    """A subscription the check made but could not delete is said, with the
    request that deletes it, as WARN: not a failure of the setup."""
    pp.clear_faults()
    pp.fault("/events/api/v1/subscriptions/*", method="DELETE", count=-1, status=503)
    try:
        rc, lines, err = check(tmp_path, pp, *push_opts(free_port()), "timeout=2",
                               apps="ttd/soknad")
        pp.assert_faults_fired()
    finally:
        pp.clear_faults()
    assert rc == 0, (lines, err)
    [sub] = subscriptions(pp)                            # left behind, and said so
    line = find(lines, "WARN  subscription ttd/soknad:")
    assert f"subscription {sub['id']} made by this check could not be deleted" in line, line
    assert f"DELETE {pp.url}/events/api/v1/subscriptions/{sub['id']}" in line
    assert lines[-1] == "all checks passed"


class _QueryDroppingProxy(http.server.BaseHTTPRequestHandler):
    """A reverse proxy that forwards to the target without the query string."""
    target = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        req = urllib.request.Request(self.target + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_push_proxy_drops_the_code(pp, tmp_path):
    listen = free_port()
    handler = type("Proxy", (_QueryDroppingProxy,), {"target": f"http://127.0.0.1:{listen}"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rc, lines, _ = check(tmp_path, pp, *push_opts(listen, server.server_address[1]),
                             "timeout=3", apps="ttd/soknad")
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 1
    line = find(lines, "FAIL  webhook:")
    assert "arrived at webhook_listen without the code of webhook_url" in line, line
    assert "drops or changes the query string" in line
    assert subscriptions(pp) == []


def test_push_subscription_refused_for_another_orgs_app(pp, tmp_path):
    r = pp.request("GET", "/Home/GetTestOrgToken/skd", query={"scopes": f"{READ} {WRITE}"},
                   auth=False)
    assert r.status == 200
    token = tmp_path / "skd-token"
    write_secret(token, r.body.decode())
    rc, lines, _ = check(tmp_path, pp, *push_opts(free_port()), "timeout=3", token=token,
                         apps="ttd/soknad")
    assert rc == 1
    line = find(lines, "FAIL  subscription ttd/soknad:")
    assert "does not allow the token to subscribe to the events of ttd/soknad" in line, line
    assert "403 Not authorized to create a subscription" in line
    assert "the token's org must own the app" in line
    # nothing was subscribed, so there is nothing to wait for
    assert not [ln for ln in lines if ln.startswith(("ok    webhook:", "FAIL  webhook:"))]
    assert subscriptions(pp) == []


def test_push_http_webhook_refused_as_on_the_real_platform(platform, tmp_path):
    """The session's platform takes https endpoints only, as the real one."""
    rc, lines, _ = check(tmp_path, platform, *push_opts(free_port()), apps="ttd/soknad")
    assert rc == 1
    line = find(lines, "FAIL  subscription ttd/soknad: the platform refuses the subscription")
    assert "400 Missing or invalid endpoint to push events towards" in line, line
    assert "absolute https URL" in line


@pytest.mark.parametrize("opts,prefix,words", [
    (lambda port: [f"webhook_listen=127.0.0.1:{port}"], "FAIL  webhook:",
     "push needs both webhook_listen and webhook_url"),
    (lambda port: push_opts(port, code=None), "FAIL  webhook_url:", "needs a secret"),
])
def test_push_config_halves(pp, tmp_path, opts, prefix, words):
    rc, lines, _ = check(tmp_path, pp, *opts(free_port()), apps="ttd/soknad")
    assert rc == 1
    assert words in find(lines, prefix)
    assert subscriptions(pp) == []


def test_push_listen_port_taken(pp, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, lines, _ = check(tmp_path, pp, *push_opts(port), apps="ttd/soknad")
    assert rc == 1
    assert f'cannot listen on "127.0.0.1:{port}"' in find(lines, "FAIL  webhook_listen:")
    assert subscriptions(pp) == []


# ---- Broker and Correspondence: scopes, and each resource asked about

BROKER_RES = "altinnfs-demo-broker"
CORR_RES = "altinnfs-demo-correspondence"
SEND_SCOPES = (f"{READ} {WRITE} altinn:broker.write altinn:broker.read "
               "altinn:correspondence.write")


def token_with(p, tmp_path, scopes, name="send-token"):
    r = p.request("GET", "/Home/GetTestOrgToken/ttd", query={"scopes": scopes}, auth=False)
    assert r.status == 200
    path = tmp_path / name
    write_secret(path, r.body.decode())
    return path


def test_resources_good(own_platform, tmp_path):
    mark = own_platform.mark()
    rc, lines, err = check(tmp_path, own_platform, f"broker_resources={BROKER_RES}",
                           f"correspondence_resources={CORR_RES}",
                           token=token_with(own_platform, tmp_path, SEND_SCOPES),
                           apps="ttd/soknad")
    assert rc == 0, (lines, err)
    find(lines, f"ok    broker {BROKER_RES}: the resource answers")
    find(lines, f"ok    correspondence {CORR_RES}: the resource answers")
    # only asked: nothing was sent
    sent = [e for e in own_platform.since(mark) if e["method"] != "GET"]
    assert sent == [], sent


def test_resources_unknown(own_platform, tmp_path):
    rc, lines, _ = check(tmp_path, own_platform, f"broker_resources={BROKER_RES} nosuchbroker",
                         f"correspondence_resources=nosuchcorr {CORR_RES}",
                         token=token_with(own_platform, tmp_path, SEND_SCOPES),
                         apps="ttd/soknad")
    assert rc == 1
    find(lines, f"ok    broker {BROKER_RES}:")
    find(lines, f"ok    correspondence {CORR_RES}:")
    for prefix in ("FAIL  broker nosuchbroker: the platform refuses it (search: HTTP 401",
                   "FAIL  correspondence nosuchcorr: the platform refuses it"):
        assert "check the resource id" in find(lines, prefix)


def test_resources_without_their_scopes(own_platform, tmp_path):
    rc, lines, _ = check(tmp_path, own_platform, f"broker_resources={BROKER_RES}",
                         f"correspondence_resources={CORR_RES}",
                         token=token_with(own_platform, tmp_path, f"{READ} {WRITE}"),
                         apps="ttd/soknad")
    assert rc == 1
    scope_lines = [ln for ln in lines if ln.startswith("FAIL  scopes ")]
    assert [ln.split('"')[1] for ln in scope_lines] == [
        "altinn:broker.write", "altinn:broker.read", "altinn:correspondence.write"], lines
    assert "add it to maskinporten_scope" in scope_lines[0]
    # and the platform says the same
    assert "HTTP 403" in find(lines, f"FAIL  broker {BROKER_RES}:")
    assert "HTTP 403" in find(lines, f"FAIL  correspondence {CORR_RES}:")
