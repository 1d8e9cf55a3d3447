"""Running altinnfs as a service: what `meson install` puts where, and
the fstab form `mount -t fuse.altinnfs none MNT -o config=FILE` (through
/sbin/mount.fuse3, which runs `altinnfs none MNT -o OPTIONS`)."""

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mounts import mounted
from procs import REPO, altinnfs_bin, fuse_connection, abort_fuse_connection, write_secret


def build_dir():
    return Path(altinnfs_bin()).resolve().parent


def meson_install(destdir):
    r = subprocess.run(["meson", "install", "-C", str(build_dir()), "--no-rebuild",
                        "--destdir", str(destdir)],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")[-3000:]


def build_option(name):
    r = subprocess.run(["meson", "introspect", "--buildoptions", str(build_dir())],
                       capture_output=True, timeout=60)
    import json
    for opt in json.loads(r.stdout):
        if opt["name"] == name:
            return opt["value"]
    raise KeyError(name)


def test_meson_install_lists_the_files_an_operator_needs(tmp_path):
    dest = tmp_path / "root"
    meson_install(dest)
    prefix = build_option("prefix")
    bindir = build_option("bindir")
    sysconfdir = build_option("sysconfdir")
    mandir = build_option("mandir")

    def under(*parts):
        p = Path(*parts)
        if not p.is_absolute():
            p = Path(prefix) / p
        return dest / p.relative_to("/")

    binary = under(bindir, "altinnfs")
    assert binary.is_file() and os.access(binary, os.X_OK)
    r = subprocess.run([str(binary), "--version"], capture_output=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith(b"altinnfs "), r

    example = under(sysconfdir, "altinnfs", "altinnfs.conf.example")
    assert example.read_bytes() == (REPO / "docs" / "altinnfs.conf").read_bytes()

    if shutil.which("scdoc"):
        page = under(mandir, "man8", "altinnfs.8")
        assert page.is_file(), sorted(str(p) for p in dest.rglob("*"))
        assert b".TH" in page.read_bytes()[:2000] or b".TH \"ALTINNFS\"" in page.read_bytes()

    units = [p for p in dest.rglob("altinnfs@.service")]
    assert len(units) == 1, sorted(str(p) for p in dest.rglob("*"))
    unit = units[0]
    assert unit.parent.as_posix().endswith("lib/systemd/system"), unit
    text = unit.read_text()
    # the unit runs the binary where it was installed, not a build tree's
    exec_line = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")][0]
    assert exec_line.split("=", 1)[1].split()[0] == str(Path(prefix) / bindir / "altinnfs")


def _daemon_pids(mountpoint):
    """The altinnfs processes serving mountpoint (from /proc)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"altinnfs") and os.fsencode(str(mountpoint)) in argv:
            pids.append(int(d.name))
    return pids


# mount(8) runs its helpers with PATH reset to this (util-linux), and
# mount.fuse3 runs `altinnfs` from that PATH: an installed altinnfs is
# found there; the build's is put there for the test by a wrapper.
MOUNT_PATH_DIR = Path("/usr/local/sbin")
WRAPPER_MARK = "# altinnfs test wrapper (tests/test_20_service.py)"


@contextlib.contextmanager
def helper_on_mount_path():
    wrapper = MOUNT_PATH_DIR / "altinnfs"
    if wrapper.exists() and WRAPPER_MARK not in wrapper.read_text(errors="replace"):
        pytest.skip(f"{wrapper} exists (an installed altinnfs): not replacing it")
    MOUNT_PATH_DIR.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f"#!/bin/sh\n{WRAPPER_MARK}\nexec {Path(altinnfs_bin()).resolve()} \"$@\"\n")
    wrapper.chmod(0o755)
    try:
        yield
    finally:
        wrapper.unlink()


@pytest.mark.skipif(not Path("/sbin/mount.fuse3").exists(), reason="no /sbin/mount.fuse3 (fuse3)")
def test_fstab_form_mounts_through_mount_fuse3(platform, tmp_path):
    """mount -t fuse.altinnfs none MNT -o config=FILE,_netdev,nofail: the
    way an fstab line is mounted. mount.fuse3 finds `altinnfs` on PATH and
    runs it in the background; the extra fstab options must not stop it."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    state = tmp_path / "state"
    conf = tmp_path / "altinnfs.conf"
    token = tmp_path / "token"
    write_secret(token, platform.token_file.read_text())
    conf.write_text(f"platform = {platform.url}\napps_url = {platform.url}\n"
                    f"apps = ttd/soknad\ntoken_file = {token}\nstate_dir = {state}\n"
                    "poll_interval = 3600\n")
    conn = None
    try:
        with helper_on_mount_path():
            r = subprocess.run(["mount", "-t", "fuse.altinnfs", "none", str(mnt), "-o",
                                f"config={conf},_netdev,nofail,noatime,x-systemd.automount"],
                               capture_output=True, timeout=60)
        assert r.returncode == 0, r
        assert mounted(mnt)
        conn = fuse_connection(mnt)
        # mount.fuse3 returned after the daemon went to the background
        pids = _daemon_pids(mnt)
        assert len(pids) == 1, pids
        assert sorted(os.listdir(mnt / "apps" / "ttd")) == ["soknad"]
        with open(mnt / "status.json") as f:
            assert '"ttd/soknad"' in f.read()
        # its type, as mount(8) and findmnt show it
        with open("/proc/self/mounts") as f:
            [line] = [ln for ln in f if ln.split()[1] == str(mnt)]
        assert line.split()[2] == "fuse.altinnfs", line
        r = subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)
        assert r.returncode == 0, r
        assert not mounted(mnt)
        deadline = time.monotonic() + 10
        while _daemon_pids(mnt) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _daemon_pids(mnt), "the daemon did not exit after umount"
    finally:
        if mounted(mnt):
            abort_fuse_connection(conn)
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        for pid in _daemon_pids(mnt):
            os.kill(pid, 9)


def test_source_argument_and_config_option(platform, tmp_path, bin_path):
    """The argv mount.fuse3 builds: `altinnfs SOURCE MOUNTPOINT -o
    config=FILE,...`; a bad key in the file is still an error there."""
    conf = tmp_path / "bad.conf"
    conf.write_text("platfrom = http://x\n")
    r = subprocess.run([bin_path, "none", str(tmp_path), "-o", f"config={conf},_netdev,rw"],
                       capture_output=True, timeout=10)
    assert r.returncode == 2
    assert b'unknown option "platfrom"' in r.stderr, r.stderr
    r = subprocess.run([bin_path, "a", "b", str(tmp_path)], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"more than one mountpoint" in r.stderr, r.stderr


# ---- the man page

def key_table():
    """The keys of daemon/core/config.c's table, the one source of keys."""
    import re
    text = (REPO / "daemon" / "core" / "config.c").read_text()
    table = text[text.index("static const struct key_def keys[]"):]
    table = table[:table.index("\n};")]
    keys = re.findall(r"^\s*(?:STR|URL|INT|FLAG)\((\w+)", table, re.M)
    keys += re.findall(r'^\s*\{ "(\w+)", KEY_', table, re.M)
    assert len(keys) > 20, keys
    return keys


def test_man_page_names_every_key():
    src = (REPO / "docs" / "altinnfs.8.scd").read_text()
    missing = [k for k in key_table() if f"*{k.replace('_', chr(92) + '_')}*" not in src]
    assert not missing, f"keys missing from docs/altinnfs.8.scd: {missing}"


@pytest.mark.skipif(not shutil.which("scdoc"), reason="scdoc not installed")
def test_man_page_builds_with_every_key():
    page = build_dir() / "altinnfs.8"
    assert page.is_file(), "meson did not build the man page although scdoc is there"
    text = page.read_text()
    assert text.startswith(".\\\"") or ".TH" in text
    # roff escapes '_' as itself and keys are bold: \fBkey\fR
    missing = [k for k in key_table() if f"\\fB{k}\\fR" not in text]
    assert not missing, missing


# ---- systemd

def test_unit_passes_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed (package systemd)")
    unit = (build_dir() / "altinnfs@.service").read_text()
    exec_line = [ln for ln in unit.splitlines() if ln.startswith("ExecStart=")][0]
    installed = exec_line.split("=", 1)[1].split()[0]
    # verify looks for the binary on this host: point it at the build's
    unit = unit.replace(installed, str(Path(altinnfs_bin()).resolve()))
    path = tmp_path / "altinnfs@verify.service"
    path.write_text(unit)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)],
                       capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0 and "altinnfs@" not in out, out
    for needed in ("Type=notify", "StateDirectory=", "LoadCredential=token:", "WatchdogSec="):
        assert needed in unit, needed


class NotifyListener:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET:
    collects each message with whether the mount was up when it came."""

    def __init__(self, path, mountpoint):
        import socket
        import threading
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.mountpoint = mountpoint
        self.messages = []  # (text, mounted_then)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import socket
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((data.decode(), mounted(self.mountpoint)))

    def wait_for(self, prefix, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text, up in list(self.messages):
                for line in text.splitlines():
                    if line.startswith(prefix):
                        return line, up
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} within {timeout} s: {self.messages}")

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def test_sd_notify_ready_status_watchdog_stopping(platform, tmp_path, monkeypatch):
    from mounts import Mount
    m = Mount(tmp_path / "m", platform)
    listener = NotifyListener(tmp_path / "notify.sock", m.path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        m.start()
        line, up = listener.wait_for("READY=1")
        assert up, "READY=1 came before the mount was up"
        status, _ = listener.wait_for("STATUS=serving")
        assert "serving 2 app(s)" in status, status
        assert "outbox 0 pending" in status, status
        listener.wait_for("WATCHDOG=1", timeout=5)
        assert not any(t.startswith("STOPPING=1") for t, _ in listener.messages)
        m.proc.send_signal(15)
        listener.wait_for("STOPPING=1")
        assert m.proc.wait(20) == 0
        assert not mounted(m.path)
    finally:
        m.stop()
        listener.close()
    assert not m.sanitizer_report(), m.log_tail(120)


def test_token_file_from_credentials_directory(platform, tmp_path, monkeypatch):
    """token_file = token (relative) is $CREDENTIALS_DIRECTORY/token, as
    systemd's LoadCredential=token:... hands it over (mode 0400)."""
    from mounts import mount_ctx
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "token").write_text(platform.token_file.read_text())
    (creds / "token").chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    mark = platform.mark()
    with mount_ctx(tmp_path / "m", platform, {"token_file": "token"}) as m:
        assert sorted(os.listdir(m / "apps" / "ttd")) == ["soknad", "tilskudd"]
        os.listdir(m / "apps" / "ttd" / "soknad" / "instances")
    seen = platform.since(mark)
    assert any(e.get("status") == 200 and "/instances" in e.get("path", "") for e in seen), seen

    # a relative name is not looked for anywhere else
    (creds / "token").chmod(0o600)
    (creds / "token").unlink()
    r = subprocess.run([altinnfs_bin(), "-o", f"platform={platform.url},apps=ttd/soknad,"
                        "token_file=token", str(tmp_path)], capture_output=True, timeout=10,
                       cwd=tmp_path)
    assert r.returncode == 2
    assert f'"{creds}/token"'.encode() in r.stderr, r.stderr


def test_log_lines_carry_priorities_when_stderr_is_the_journal(platform, tmp_path, monkeypatch):
    from mounts import Mount
    m = Mount(tmp_path / "m", platform)
    m.log_path.touch()
    st = os.stat(m.log_path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    try:
        m.start()
    finally:
        m.stop()
    lines = [ln for ln in m.log().splitlines() if ln.strip()]
    assert any(ln.startswith("<6>info: serving 2 app(s)") for ln in lines), lines
    ours = [ln for ln in lines if ln.startswith("<")]
    assert ours and all(not ln.startswith("altinnfs:") for ln in lines), lines


def test_man_page_defaults_match_help(bin_path):
    """Where --help (the key table) names a default, the man page's entry
    for that key names the same one."""
    import re
    out = subprocess.run([bin_path, "--help"], capture_output=True, timeout=10).stdout.decode()
    helps, key = {}, None
    for line in out.split("keys,", 1)[1].splitlines():
        m = re.match(r"^  ([a-z_]+)  +(.*)$", line)
        if m:
            key = m.group(1)
            helps[key] = m.group(2)
        elif key and line.startswith("   "):
            helps[key] += " " + line.strip()
        else:
            key = None
    src = (REPO / "docs" / "altinnfs.8.scd").read_text().replace("\\_", "_")
    wrong = []
    for k, text in helps.items():
        want = re.search(r"\(default:? ([^)]*)\)", text)
        if not want:
            continue
        entry = re.search(rf"^\*{k}\*[^\n]*\n((?:\t[^\n]*\n)+)", src, re.M)
        got = " ".join(entry.group(1).split()) if entry else ""
        if " ".join(want.group(1).split()) not in got:
            wrong.append((k, want.group(1), got))
    assert len(helps) > 20 and not wrong, wrong


def test_status_line_names_the_events_cursor(platform_factory, tmp_path, monkeypatch):
    """STATUS= follows the events: once an app's events are files, the
    line names the cursor (the last event's id)."""
    from events_util import publish
    from mounts import Mount
    p = platform_factory(extra_args=["--min-event-age", "0"])
    ids = publish(p, "ttd/soknad", count=3)
    m = Mount(tmp_path / "m", p, {"poll_interval": 1, "events_start": "all"})
    listener = NotifyListener(tmp_path / "notify.sock", m.path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # a status line every second
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        m.start()
        line, _ = listener.wait_for("STATUS=serving", timeout=5)
        deadline = time.monotonic() + 20
        want = f"events ttd/soknad at {ids[-1]}"
        while not any(want in t for t, _ in listener.messages):
            assert time.monotonic() < deadline, (want, listener.messages[-5:])
            time.sleep(0.1)
    finally:
        m.stop()
        listener.close()
    assert not m.sanitizer_report(), m.log_tail(120)
