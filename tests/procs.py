"""Processes for the altinnfs pytest suite: the daemon's binary, ports,
reaping, and the FUSE connection of a mount (to abort one that hangs).

Stdlib only; run with /usr/bin/python3 (Debian)."""

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def altinnfs_bin():
    return os.environ.get("ALTINNFS_BIN", str(REPO / "build" / "altinnfs"))


def binary_has_asan(path):
    """True when the daemon was built with AddressSanitizer (its memory
    figures are then not the product's)."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def write_secret(path, text):
    """Write a token or key file the way secrets must be kept: mode 0600.
    altinnfs refuses a token or key file that group or others may read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def free_port():
    """A TCP port that nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reap(proc, grace=5.0, on_stuck=None):
    """SIGTERM, then SIGKILL after `grace` seconds; always waits. Returns
    the exit status. on_stuck() runs when even SIGKILL does not end it
    within `grace` (a FUSE daemon whose own thread waits on its mount)."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            kill_and_wait(proc, grace, on_stuck)
    return proc.returncode


def kill_and_wait(proc, grace=5.0, on_stuck=None):
    proc.kill()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        if on_stuck is None:
            raise
        on_stuck()
        proc.wait()
    return proc.returncode


FUSECTL = Path("/sys/fs/fuse/connections")


def fuse_connection(path):
    """The FUSE connection number of the mount at path (from mountinfo,
    which never blocks on the mount), or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == str(path):
                    return fields[2].split(":")[1]
    except OSError:
        pass
    return None


def abort_fuse_connection(conn):
    """What `umount -f` does: fail every request of the connection, so a
    killed daemon whose own thread waits on its mount can exit."""
    if conn is None:
        return
    if not (FUSECTL / conn).exists():
        subprocess.run(["mount", "-t", "fusectl", "fusectl", str(FUSECTL)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (FUSECTL / conn / "abort").write_text("1")
    except OSError:
        pass


def run_bounded(fn, limit):
    """Run fn() in a thread; return (elapsed, result, exception). Fails the
    test if fn is still running after `limit` seconds (a hang). The stuck
    thread is released when the mount's teardown kills the daemon."""
    box = {}

    def body():
        t0 = time.monotonic()
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: B902 - reported to the caller
            box["exc"] = e
        box["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        raise AssertionError(f"operation still blocked after {limit:.0f} s (hang)")
    return box["elapsed"], box.get("result"), box.get("exc")
