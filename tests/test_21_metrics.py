"""metrics_listen: GET /metrics in the Prometheus text format, parsed by
Debian's python3-prometheus-client, with values that move with what the
test did (reads, failed look-ups, an outbox drop held back by the
platform), and every metric listed in docs/operations.md."""

import os
import re
import time
import urllib.error
import urllib.request

import pytest

from mounts import mount_ctx, read_bytes
from outbox_util import FAST, PDF, SOKNAD, owner_dir, wait_for, wait_receipt
from procs import REPO, free_port
from reference import live_instances

parser = pytest.importorskip("prometheus_client.parser",
                             reason="python3-prometheus-client not installed")


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    families = list(parser.text_string_to_metric_families(text))
    samples = {}
    for fam in families:
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name, **labels):
    """Sum over every sample of name whose labels include these."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == str(w) for k, w in labels.items()))


@pytest.fixture(scope="module")
def mm(own_platform, tmp_path_factory):
    port = free_port()
    opts = dict(FAST, metrics_listen=f"127.0.0.1:{port}")
    with mount_ctx(tmp_path_factory.mktemp("metrics"), own_platform, opts) as m:
        m.metrics_url = f"http://127.0.0.1:{port}/metrics"
        yield m


def test_names_follow_prometheus_conventions(mm):
    families, samples = scrape(mm.metrics_url)
    names = {f.name for f in families}
    for f in families:
        assert f.name.startswith("altinnfs_"), f.name
        if f.type == "counter":
            assert all(s.name.endswith("_total") for s in f.samples), f
        assert not re.search(r"_(ms|milliseconds|kb|mb)(_|$)", f.name), f.name
    for needed in ("altinnfs_platform_requests", "altinnfs_platform_request_duration_seconds",
                   "altinnfs_fuse_operations", "altinnfs_outbox_pending",
                   "altinnfs_token_expiry_seconds", "altinnfs_cache_enabled",
                   "altinnfs_build_info"):
        assert needed in names, (needed, sorted(names))
    # the token of the local platform lasts an hour or so
    assert 0 < value(samples, "altinnfs_token_expiry_seconds") <= 24 * 3600


def test_reads_move_request_bytes_and_latency(mm, own_platform):
    _, before = scrape(mm.metrics_url)
    insts = live_instances(own_platform.instances("ttd/tilskudd")[0])
    n, nbytes = 0, 0
    for inst in insts:
        party, guid = inst["id"].split("/")
        base = mm.path / "apps/ttd/tilskudd/instances" / party / guid / "data"
        for dt in os.listdir(base):
            for name in os.listdir(base / dt):
                if os.stat(base / dt / name).st_size > (4 << 20):
                    continue
                nbytes += len(read_bytes(base / dt / name))
                n += 1
        if n >= 8:
            break
    assert n >= 8
    # a request is counted when it ends, and the cache may hand a reader
    # its bytes before the download's last moment: wait for the count
    deadline = time.monotonic() + 10
    while True:
        _, after = scrape(mm.metrics_url)
        grew = (total(after, "altinnfs_platform_requests_total", endpoint="storage_data",
                      code=200)
                - total(before, "altinnfs_platform_requests_total", endpoint="storage_data",
                        code=200))
        if grew >= n or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert grew >= n, (grew, n)
    got = (value(after, "altinnfs_platform_received_bytes_total", endpoint="storage_data")
           - value(before, "altinnfs_platform_received_bytes_total", endpoint="storage_data"))
    assert got >= nbytes, (got, nbytes)
    hist = "altinnfs_platform_request_duration_seconds"
    count = value(after, hist + "_count", endpoint="storage_data")
    assert count - value(before, hist + "_count", endpoint="storage_data") >= n
    buckets = sorted(((float(dict(ls)["le"]), v) for (nm, ls), v in after.items()
                      if nm == hist + "_bucket" and dict(ls)["endpoint"] == "storage_data"))
    assert buckets[-1] == (float("inf"), count)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
    assert value(after, hist + "_sum", endpoint="storage_data") > 0
    # the content cache took them in
    assert value(after, "altinnfs_cache_enabled") == 1
    assert (value(after, "altinnfs_cache_fetched_bytes_total")
            - value(before, "altinnfs_cache_fetched_bytes_total")) >= nbytes
    assert value(after, "altinnfs_cache_size_bytes") >= nbytes
    # reads were counted as FUSE operations too
    assert (value(after, "altinnfs_fuse_operations_total", op="read")
            - value(before, "altinnfs_fuse_operations_total", op="read")) >= n


def test_failed_lookups_count_by_errno(mm):
    _, before = scrape(mm.metrics_url)
    for i in range(7):
        with pytest.raises(FileNotFoundError):
            os.stat(mm.path / "apps" / f"no-such-org-{os.getpid()}-{i}")
    _, after = scrape(mm.metrics_url)
    key = dict(op="lookup", errno="ENOENT")
    assert (value(after, "altinnfs_fuse_errors_total", **key)
            - value(before, "altinnfs_fuse_errors_total", **key)) >= 7


def test_outbox_drop_held_back_then_delivered(mm, own_platform):
    own_platform.fault("/ttd/soknad/instances$", method="POST", status=503, count=-1)
    try:
        d = owner_dir(mm, SOKNAD)
        (d / "held.pdf").write_bytes(PDF)

        def pending():
            _, s = scrape(mm.metrics_url)
            return s if value(s, "altinnfs_outbox_pending") >= 1 and \
                value(s, "altinnfs_outbox_retries") >= 2 else None

        s = wait_for(pending, 20, "the drop pending with retries")
        assert value(s, "altinnfs_outbox_oldest_pending_age_seconds") >= 0
        assert total(s, "altinnfs_platform_requests_total", endpoint="app", code=503) >= 2
        time.sleep(1.2)
        _, s2 = scrape(mm.metrics_url)
        assert value(s2, "altinnfs_outbox_oldest_pending_age_seconds") >= 1
    finally:
        own_platform.clear_faults()
    wait_receipt(mm, SOKNAD, d.name, "held.pdf", timeout=30)
    _, s = wait_for(lambda: (lambda r: r if value(r[1], "altinnfs_outbox_pending") == 0
                             else None)(scrape(mm.metrics_url)), 20, "the outbox empty")
    assert value(s, "altinnfs_outbox_oldest_pending_age_seconds") == 0
    assert total(s, "altinnfs_platform_requests_total", endpoint="app", code=201) >= 1
    assert total(s, "altinnfs_platform_sent_bytes_total", endpoint="app") >= len(PDF)


def test_other_paths_and_methods(mm):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(mm.metrics_url.replace("/metrics", "/x"), timeout=10)
    assert e.value.code == 404
    req = urllib.request.Request(mm.metrics_url, data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_operations_md_lists_every_metric(mm):
    families, _ = scrape(mm.metrics_url)
    doc = (REPO / "docs" / "operations.md").read_text()
    names = set()
    for f in families:
        names.add(f.name + ("_total" if f.type == "counter" else ""))
    # and those a scrape shows only sometimes (cache on, token expiry known)
    for src in ("daemon/metrics/exporter.c", "daemon/core/metrics.c"):
        names.update(re.findall(r"\b(altinnfs_[a-z_]+?)(?:_bucket|_sum|_count)?\b[ {\\\"]",
                                (REPO / src).read_text()))
    assert len(names) > 20, names
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"metrics missing from docs/operations.md: {missing}"


def test_a_port_in_use_stops_the_daemon(own_platform, tmp_path):
    import socket
    import subprocess
    from mounts import Mount, mounted
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        m = Mount(tmp_path / "m", own_platform, {"metrics_listen": f"127.0.0.1:{port}"})
        m.write_config()
        from procs import altinnfs_bin
        r = subprocess.run([altinnfs_bin(), "-f", "--config", str(m.conf_path), str(m.path)],
                           capture_output=True, timeout=30)
    assert r.returncode == 1, r
    assert f'cannot listen on "127.0.0.1:{port}"'.encode() in r.stderr, r.stderr
    assert not mounted(m.path)


def test_index_figures(mm):
    import json
    _, before = scrape(mm.metrics_url)
    parties = os.listdir(mm.path / "apps/ttd/soknad/instances")
    assert parties

    def complete():
        _, s = scrape(mm.metrics_url)
        return s if value(s, "altinnfs_index_complete", app="ttd/soknad") == 1 else None

    s = wait_for(complete, 60, "the index of ttd/soknad complete")
    with open(mm.path / "status.json") as f:
        st = json.load(f)
    app = st["apps"]["ttd/soknad"]
    n = value(s, "altinnfs_index_instances", app="ttd/soknad")
    assert n >= len(parties) and n == app["index"]["instances"], (n, app["index"])
    assert (value(s, "altinnfs_index_requests_total", app="ttd/soknad")
            - value(before, "altinnfs_index_requests_total", app="ttd/soknad")) >= 1 or \
        value(before, "altinnfs_index_complete", app="ttd/soknad") == 1


def test_event_files_and_poll_age(platform_factory, tmp_path):
    from events_util import publish
    p = platform_factory(extra_args=["--min-event-age", "0"])
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with mount_ctx(tmp_path / "m", p, {"poll_interval": 1, "events_start": "all",
                                      "metrics_listen": f"127.0.0.1:{port}"}) as m:
        _, before = scrape(url)
        publish(p, "ttd/soknad", count=4)
        events = m.path / "apps/ttd/soknad/events"
        wait_for(lambda: len([n for n in os.listdir(events) if not n.startswith(".")]) >= 4,
                 20, "four event files in place")
        # counted just after the files are in place
        after = wait_for(lambda: (lambda s: s if value(s, "altinnfs_events_files_written_total")
                                  - value(before, "altinnfs_events_files_written_total") >= 4
                                  and value(s, "altinnfs_events_files", app="ttd/soknad") >= 4
                                  else None)(scrape(url)[1]), 5, "the counters")
        assert 0 <= value(after, "altinnfs_events_last_poll_age_seconds", app="ttd/soknad") < 30
        assert total(after, "altinnfs_platform_requests_total", endpoint="events", code=200) >= 1
