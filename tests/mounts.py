"""The daemon for the pytest suite: a Mount of altinnfs in the foreground
with its log in a file. Mount.stop() always unmounts lazily first and
reaps the daemon, so a failing test never leaves a mount behind."""

import contextlib
import errno
import os
import re
import subprocess
import time
from pathlib import Path

from procs import SANITIZER_MARKS, abort_fuse_connection, altinnfs_bin, fuse_connection, kill_and_wait, reap, tail


# Errors a read-only tree may give for a write (tests run as root, where
# the kernel's permission check is skipped and the daemon answers).
WRITE_REFUSED = (errno.EROFS, errno.EACCES)


def mounted(path):
    """True when path is a mount point (from /proc, never touching the fs)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mp)
            if mp == path:
                return True
    return False


ACTIVE_MOUNTS = []


class Mount:
    """altinnfs -f --config CONF MOUNT, stdout and stderr in a log file."""

    def __init__(self, workdir, platform=None, options=None, args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / "mnt"
        self.path.mkdir(exist_ok=True)
        self.log_path = self.workdir / "altinnfs.log"
        self.conf_path = self.workdir / "altinnfs.conf"
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir(exist_ok=True)
        self.args = list(args)
        self.proc = None
        self.conn = None  # the FUSE connection number, once mounted
        self.status = None
        opts = {}
        if platform is not None:
            opts.update(platform=platform.url, apps_url=platform.url,
                        token_file=str(platform.token_file))
        opts.update({
            "apps": "ttd/soknad ttd/tilskudd",
            "state_dir": str(self.state_dir),
            "timeout": 10,
            "poll_interval": 3600,
        })
        opts.update(options or {})
        self.options = {k: v for k, v in opts.items() if v is not None}

    def write_config(self):
        lines = ["# written by tests/mounts.py"]
        lines += [f"{k} = {v}" for k, v in self.options.items()]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self, ready_timeout=10):
        self.write_config()
        cmd = [altinnfs_bin(), "-f", "--config", str(self.conf_path)] + self.args + [str(self.path)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        ACTIVE_MOUNTS.append(self)
        deadline = time.monotonic() + ready_timeout
        while not mounted(self.path):
            if self.proc.poll() is not None:
                raise AssertionError(f"altinnfs exited with {self.proc.returncode} before mounting:\n"
                                     f"{tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"altinnfs did not mount within {ready_timeout} s:\n"
                                     f"{tail(self.log_path)}")
            time.sleep(0.05)
        self.conn = fuse_connection(self.path)
        return self

    def kill9(self):
        """kill -9 of the daemon; if one of its threads is stuck on its own
        mount (a request of its own in flight), abort the connection as
        `umount -f` would, so it can exit. Then unmount."""
        kill_and_wait(self.proc, 5.0, lambda: abort_fuse_connection(self.conn))
        return self.stop()

    def __truediv__(self, rel):
        return self.path / rel

    def abort(self):
        """Watchdog: unblock anything stuck on the mount."""
        abort_fuse_connection(getattr(self, "conn", None))
        subprocess.run(["fusermount3", "-u", "-z", str(self.path)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def stop(self):
        """Unmount (lazily) and reap the daemon; returns its exit status."""
        try:
            if mounted(self.path):
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        finally:
            if self.proc is not None:
                self.status = reap(self.proc,
                                   on_stuck=lambda: abort_fuse_connection(self.conn))
            if self in ACTIVE_MOUNTS:
                ACTIVE_MOUNTS.remove(self)
        return self.status

    def log(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_report(self):
        text = self.log()
        return [m for m in SANITIZER_MARKS if m in text]

    def log_tail(self, lines=60):
        return tail(self.log_path, lines)

    def pid(self):
        return self.proc.pid


@contextlib.contextmanager
def mount_ctx(workdir, platform=None, options=None, args=()):
    """A started Mount that is always unmounted and reaped; fails on a
    sanitizer report in the daemon's log."""
    m = Mount(workdir, platform, options, args)
    try:
        m.start()
        yield m
    finally:
        m.stop()
    found = m.sanitizer_report()
    if found:
        raise AssertionError(f"sanitizer report ({', '.join(found)}) in {m.log_path}:\n"
                             f"{m.log_tail(120)}")


def listdir_b(path):
    """Directory entries as bytes (names need not be valid UTF-8)."""
    return sorted(os.listdir(os.fsencode(path)))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()
