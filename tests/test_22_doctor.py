"""altinnfs --check: one line per check, ok or FAIL with what to do, exit
0 only when all pass; nothing is mounted. Good and broken configs against
the local platform: an unknown app, an unreachable platform, a wrong
Maskinporten key, a token without the write scope the outbox needs, an
open token file, a typo, a taken listen port."""

import os
import socket
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
