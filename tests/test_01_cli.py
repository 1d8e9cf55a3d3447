"""The command line: --help, --version, configuration errors, signals."""

import os
import re
import signal
import subprocess
import time

import pytest

from mounts import Mount, mounted
from procs import REPO, SANITIZER_MARKS, altinnfs_bin


def run(bin_path, *args, timeout=10):
    return subprocess.run([bin_path, *map(str, args)], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


def project_version():
    text = (REPO / "meson.build").read_text()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


def test_version(bin_path):
    r = run(bin_path, "--version")
    assert r.returncode == 0, r
    first = r.stdout.decode().splitlines()[0]
    # "altinnfs 0.1.0", perhaps followed by build details
    assert re.match(rf"altinnfs {re.escape(project_version())}(\s|$)", first), first


def test_help(bin_path):
    r = run(bin_path, "--help")
    assert r.returncode == 0, r
    out = (r.stdout + r.stderr).decode()
    assert "MOUNTPOINT" in out.upper()
    for key in ("--config", "platform", "token_file", "cache_ttl", "timeout", "page_size"):
        assert key in out, key


def test_help_lists_every_key(bin_path):
    """--help is printed from config.c's key table: it names every key
    docs/configuration.md documents, and none it does not."""
    doc = (REPO / "docs" / "configuration.md").read_text()
    documented = set()
    for line in doc.splitlines():
        if line.startswith("| `") and not line.startswith("| `-"):
            documented.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    r = run(bin_path, "--help")
    out = r.stdout.decode()
    listed = set(re.findall(r"^  ([a-z_]+)  ", out.split("keys,", 1)[1], re.M))
    assert documented and documented == listed, (documented ^ listed)


def _one_error_line(r):
    assert r.returncode != 0, r
    err = r.stderr.decode(errors="replace")
    found = [m for m in SANITIZER_MARKS if m in err]
    assert not found, f"sanitizer report ({', '.join(found)}) on stderr:\n{err[:3000]}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {lines!r}"
    assert lines[0].startswith("altinnfs: "), lines[0]
    return lines[0]


@pytest.fixture
def conf(platform, tmp_path):
    """A valid configuration file, plus a mount point that exists."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    c = tmp_path / "altinnfs.conf"
    c.write_text(
        "# a comment\n"
        f"platform = {platform.url}\n"
        f"apps_url = {platform.url}\n"
        "apps = ttd/soknad ttd/tilskudd\n"
        f"token_file = {platform.token_file}\n"
        f"state_dir = {tmp_path / 'state'}\n")
    (tmp_path / "state").mkdir()
    yield c, mnt
    # A buggy binary might have mounted anyway: never leave it behind.
    if mounted(mnt):
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
        pytest.fail("the daemon mounted although it should have refused")


def test_unknown_key_in_option(bin_path, conf):
    c, mnt = conf
    r = run(bin_path, "-f", "--config", c, "-o", "cache_tll=5", mnt)
    assert "cache_tll" in _one_error_line(r)


def test_unknown_key_in_file(bin_path, conf):
    c, mnt = conf
    c.write_text(c.read_text() + "frobnicate = yes\n")
    r = run(bin_path, "-f", "--config", c, mnt)
    assert "frobnicate" in _one_error_line(r)


def test_bad_value_names_key(bin_path, conf):
    c, mnt = conf
    r = run(bin_path, "-f", "--config", c, "-o", "cache_ttl=soon", mnt)
    assert "cache_ttl" in _one_error_line(r)


def test_missing_token_file(bin_path, conf, tmp_path):
    c, mnt = conf
    missing = tmp_path / "no-such-token"
    r = run(bin_path, "-f", "--config", c, "-o", f"token_file={missing}", mnt)
    assert str(missing) in _one_error_line(r)


def test_missing_config_file(bin_path, conf, tmp_path):
    _, mnt = conf
    missing = tmp_path / "no-such.conf"
    r = run(bin_path, "-f", "--config", missing, mnt)
    assert str(missing) in _one_error_line(r)


def test_missing_mountpoint(bin_path, conf, tmp_path):
    c, _ = conf
    missing = tmp_path / "no-such-dir"
    r = run(bin_path, "-f", "--config", c, missing)
    assert str(missing) in _one_error_line(r)


def test_options_without_config_file(platform, tmp_path):
    """Every key also works as -o key=value."""
    m = Mount(tmp_path, None, {})
    opts = ",".join([f"platform={platform.url}", f"apps_url={platform.url}",
                     f"token_file={platform.token_file}", f"state_dir={m.state_dir}",
                     "cache_ttl=5", "timeout=10", "page_size=50", "poll_interval=3600"])
    cmd = [altinnfs_bin(), "-f",
           "-o", opts, "-o", "apps=ttd/tilskudd", str(m.path)]
    # apps has a space in multi-app form; one app keeps -o parsing simple.
    with open(m.log_path, "wb") as log:
        m.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not mounted(m.path):
            assert m.proc.poll() is None, m.log_tail()
            assert time.monotonic() < deadline, m.log_tail()
            time.sleep(0.05)
        assert os.listdir(m.path / "apps" / "ttd") == ["tilskudd"]
    finally:
        m.stop()
    assert not m.sanitizer_report(), m.log_tail()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_unmounts_cleanly(platform, tmp_path, sig):
    m = Mount(tmp_path, platform)
    try:
        m.start()
        assert "README.txt" in os.listdir(m.path)
        m.proc.send_signal(sig)
        try:
            status = m.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"altinnfs still running 10 s after {sig.name}")
        assert status == 0, m.log_tail()
        assert not mounted(m.path)
    finally:
        m.stop()
    assert not m.sanitizer_report(), m.log_tail()


def test_more_stop_signals_while_stopping_still_end_cleanly(platform, tmp_path):
    """A second SIGTERM (an impatient operator, systemd's stop after its
    timeout is SIGKILL, not this) while the daemon unmounts and frees its
    state must not kill it half way: it exits 0 and leaves no mount."""
    m = Mount(tmp_path, platform)
    try:
        m.start()
        assert "README.txt" in os.listdir(m.path)
        m.proc.send_signal(signal.SIGTERM)
        sent = 1
        deadline = time.monotonic() + 10
        while m.proc.poll() is None and time.monotonic() < deadline:
            try:
                m.proc.send_signal(signal.SIGTERM)
                sent += 1
            except ProcessLookupError:
                break
            time.sleep(0.002)
        try:
            status = m.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("altinnfs still running 10 s after SIGTERM")
        assert sent > 1
        assert status == 0, (status, m.log_tail())
        assert not mounted(m.path)
    finally:
        m.stop()
    assert not m.sanitizer_report(), m.log_tail()


def test_a_signal_to_a_background_thread_unmounts_too(platform, tmp_path):
    """The kernel gives a process's signal to any thread not blocking it:
    one that lands on a poller or uploader thread must end the mount too,
    not wait for the next request (a SIGINT test hung so, once in a while)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    m = Mount(tmp_path, platform)
    try:
        m.start()
        assert "README.txt" in os.listdir(m.path)
        pid = m.proc.pid
        # threads made before the FUSE loop (pollers, uploaders, workers)
        # have the lowest thread ids after the main thread's
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
        assert tids, "no background threads"
        SYS_tgkill = 234  # x86_64
        # a short-lived one (the warm-up thread) may be gone by now: the
        # first that still runs
        assert any(libc.syscall(SYS_tgkill, pid, tid, signal.SIGTERM) == 0 for tid in tids)
        try:
            status = m.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("altinnfs still running 10 s after SIGTERM to a background thread")
        assert status == 0, m.log_tail()
        assert not mounted(m.path)
    finally:
        m.stop()
    assert not m.sanitizer_report(), m.log_tail()


def test_unmount_ends_daemon(platform, tmp_path):
    """fusermount3 -u makes the foreground daemon exit by itself."""
    m = Mount(tmp_path, platform)
    try:
        m.start()
        subprocess.run(["fusermount3", "-u", str(m.path)], check=True, timeout=10)
        try:
            status = m.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("altinnfs still running 10 s after fusermount3 -u")
        assert status == 0, m.log_tail()
    finally:
        m.stop()
    assert not m.sanitizer_report(), m.log_tail()
