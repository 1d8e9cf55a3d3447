"""Fixtures for the altinnfs suite.

- `platform`: one local platform (scripts/altinn-localtest --seed demo) for
  the whole session. Tests that use it must leave it as they found it (no
  faults, no added instances, no replaced data).
- `own_platform`: a platform for one module, for tests that change it.
- `mount`: a factory; `mount(**options)` starts `altinnfs -f --config CONF
  MOUNT` against `platform` (or `mount(localtest=p, ...)`), waits for the
  mount, and always unmounts and reaps the daemon at teardown. A sanitizer
  report in the daemon's log fails the test.

A watchdog (ALTINNFS_TEST_TIMEOUT seconds, default 240) unmounts and kills
every daemon of a test that hangs, so the blocked call fails instead of
hanging the suite. When a test fails, the tails of the daemon and platform
logs are added to its report."""

import contextlib
import os
import threading

import pytest

import procs
from localplatform import Platform
from mounts import ACTIVE_MOUNTS, mount_ctx

TEST_TIMEOUT = float(os.environ.get("ALTINNFS_TEST_TIMEOUT", "240"))
ACTIVE_PLATFORMS = []


def _start_platform(workdir, **kw):
    p = Platform(workdir, **kw)
    ACTIVE_PLATFORMS.append(p)
    try:
        p.start()
    except BaseException:
        p.stop()
        ACTIVE_PLATFORMS.remove(p)
        raise
    return p


@contextlib.contextmanager
def platform_ctx(workdir, **kw):
    p = _start_platform(workdir, **kw)
    try:
        yield p
    finally:
        p.stop()
        ACTIVE_PLATFORMS.remove(p)


# The local platform ignores Range, as Storage does; ALTINNFS_TEST_RANGES=1
# runs the suites against one that honours it (--ranges).
SESSION_RANGES = os.environ.get("ALTINNFS_TEST_RANGES", "") not in ("", "0")


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    extra = ["--ranges"] if SESSION_RANGES else []
    with platform_ctx(tmp_path_factory.mktemp("platform"), extra_args=extra) as p:
        yield p


@pytest.fixture(scope="session")
def ranged_platform(tmp_path_factory):
    """A platform that honours Range (--ranges), seeded as `platform`."""
    with platform_ctx(tmp_path_factory.mktemp("ranged-platform"), extra_args=["--ranges"]) as p:
        yield p


@pytest.fixture(scope="module")
def own_platform(tmp_path_factory):
    with platform_ctx(tmp_path_factory.mktemp("own-platform")) as p:
        yield p


@pytest.fixture
def platform_factory(tmp_path):
    """Start extra platforms (e.g. with --token-lifetime) for one test."""
    with contextlib.ExitStack() as stack:
        n = [0]

        def make(**kw):
            n[0] += 1
            return stack.enter_context(platform_ctx(tmp_path / f"platform{n[0]}", **kw))

        yield make


@pytest.fixture
def mount(request, tmp_path):
    with contextlib.ExitStack() as stack:
        n = [0]

        def make(localtest=None, args=(), **options):
            """localtest: the Platform to mount (default: the session's);
            False for none (then give platform=, token_file= ... yourself)."""
            if localtest is None:
                localtest = request.getfixturevalue("platform")
            n[0] += 1
            return stack.enter_context(
                mount_ctx(tmp_path / f"mount{n[0]}", localtest or None, options, args))

        yield make


@pytest.fixture(scope="session")
def bin_path():
    path = procs.altinnfs_bin()
    assert os.access(path, os.X_OK), f"daemon binary {path} missing (ninja -C build)"
    return path


@pytest.fixture(scope="session")
def tilskudd_fixed(platform):
    """The instance with the hostile file names: (party, guid, doc)."""
    party, guid = "50001", "5a1e0000-0000-4000-8000-000000000001"
    return party, guid, platform.instance(party, guid)


@pytest.fixture(scope="session")
def big_element(platform):
    """The 256 MiB element: dict with party, guid, id, size, rel (its path
    below the mount point, found by filename)."""
    party, guid = "50002", "b16f0000-0000-4000-8000-000000000002"
    doc = platform.instance(party, guid)
    [el] = [d for d in doc["data"] if d.get("filename") == "stor-fil.bin"]
    return {
        "party": party, "guid": guid, "id": el["id"], "size": el["size"],
        "rel": f"apps/ttd/tilskudd/instances/{party}/{guid}/data/{el['dataType']}/stor-fil.bin",
        "element": el,
    }


@pytest.fixture(scope="session")
def big_sha256(platform, big_element):
    digest, n = platform.data_sha256(big_element["party"], big_element["guid"], big_element["id"])
    assert n == big_element["size"]
    return digest


# --------------------------------------------------------------------------
# Watchdog and failure reports

def _abort_all():
    for m in list(ACTIVE_MOUNTS):
        m.abort()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    timer = threading.Timer(TEST_TIMEOUT, _abort_all)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for m in ACTIVE_MOUNTS:
            rep.sections.append((f"altinnfs log ({m.log_path})", m.log_tail()))
        for p in ACTIVE_PLATFORMS:
            rep.sections.append((f"altinn-localtest log ({p.log_path})", p.log_tail(20)))
