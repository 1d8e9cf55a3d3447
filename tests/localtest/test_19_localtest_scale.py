"""`--seed scale:N`: one app (ttd/skala) with N instances made on demand, paged by the rules
of Storage's instance query. The index (tests/test_19_index.py) and scripts/bench-scale
measure against it, so if paging here skips or repeats, they measure the wrong thing."""

import time
import urllib.parse

import pytest

from localplatform import STORAGE

SKALA = "ttd/skala"
N = 1000
PARTY_BASE = 700000


def guid(n):
    return "5ca1e000-0000-4000-8000-%012x" % n


@pytest.fixture(scope="module")
def scale(tmp_path_factory):
    from conftest import platform_ctx
    with platform_ctx(tmp_path_factory.mktemp("scale"), seed=f"scale:{N}", quiet=True) as p:
        yield p


def test_paging_covers_each_instance_once(scale):
    got, pages = scale.instances(SKALA, size=100)
    ids = [i["id"] for i in got]
    assert len(ids) == N and len(set(ids)) == N
    assert set(ids) == {f"{PARTY_BASE + n % (N // 3)}/{guid(n)}" for n in range(N)}
    # `next` only on a full page: N is a multiple of the size, so the last page is empty
    assert pages == N // 100 + 1
    stamps = [i["lastChanged"] for i in got]
    assert stamps == sorted(stamps, reverse=True)          # desc:lastChanged by default
    assert len(set(stamps)) < len(stamps)                   # ties, broken by the row id


def test_ascending_pages_and_odd_sizes(scale):
    got, pages = scale.instances(SKALA, size=37, order="asc:lastChanged")
    ids = [i["id"] for i in got]
    assert len(ids) == N and len(set(ids)) == N
    assert pages == -(-N // 37)
    assert [i["lastChanged"] for i in got] == sorted(i["lastChanged"] for i in got)


def test_last_changed_filter_and_party_filter(scale):
    every, _ = scale.instances(SKALA, size=1000)
    cut = sorted(i["lastChanged"] for i in every)[N // 2]
    newer, _ = scale.instances(SKALA, size=100, lastChanged=f"gt:{cut}")
    assert {i["id"] for i in newer} == {i["id"] for i in every if i["lastChanged"] > cut}
    older, _ = scale.instances(SKALA, size=100, lastChanged=f"lte:{cut}")
    assert len(older) + len(newer) == N
    party = str(PARTY_BASE + 5)
    mine, pages = scale.instances(SKALA, party=party)
    assert sorted(i["id"] for i in mine) == sorted(
        f"{party}/{guid(n)}" for n in range(5, N, N // 3))
    assert pages == 1
    done, _ = scale.instances(SKALA, size=1000, **{"process.isComplete": "true"})
    assert {i["id"].split("/")[1] for i in done} == {guid(n) for n in range(0, N, 7)}


def test_direct_get_of_a_generated_instance(scale):
    n = 733
    party = PARTY_BASE + n % (N // 3)
    doc = scale.instance(party, guid(n))
    assert doc["id"] == f"{party}/{guid(n)}"
    assert doc["appId"] == SKALA and doc["data"]
    r = scale.get(f"{STORAGE}/instances/{party + 1}/{guid(n)}")
    assert r.status == 404
    r = scale.get(f"{STORAGE}/instances/{party}/{guid(N)}")     # past the end
    assert r.status == 404
    [el] = [e for e in doc["data"] if e["dataType"] == "vedlegg"]
    assert scale.data(party, guid(n), el["id"]) == b"Vedlegg 733\n"


def test_a_change_moves_an_instance_to_the_front_and_a_hard_delete_is_marked(scale):
    a, b = 10, 11
    ida = f"{PARTY_BASE + a}/{guid(a)}"
    idb = f"{PARTY_BASE + b}/{guid(b)}"
    [stamp] = scale.change_instances([ida])
    scale.change_instances([idb], hard_delete=True)
    first = scale.get_json(f"{STORAGE}/instances", query={"appId": SKALA, "size": "2"})
    assert [i["id"] for i in first["instances"]] == [idb, ida]
    assert first["instances"][1]["lastChanged"] == stamp
    assert first["instances"][0]["status"]["isHardDeleted"] is True
    got, _ = scale.instances(SKALA, size=100)
    assert len(got) == N and len({i["id"] for i in got}) == N
    live, _ = scale.instances(SKALA, size=100, **{"status.isHardDeleted": "false"})
    assert idb not in {i["id"] for i in live} and len(live) == N - 1
    newer, _ = scale.instances(SKALA, size=100, lastChanged=f"gte:{stamp}")
    assert {i["id"] for i in newer} == {ida, idb}


def test_a_million_starts_in_seconds(tmp_path):
    from conftest import platform_ctx
    t0 = time.monotonic()
    with platform_ctx(tmp_path, seed="scale:1000000", quiet=True) as p:
        started = time.monotonic() - t0
        page = p.get_json(f"{STORAGE}/instances", query={"appId": SKALA, "size": "100"})
        assert page["count"] == 100 and "next" in page
        u = urllib.parse.urlsplit(page["next"])
        nxt = p.get_json(u.path + "?" + u.query)
        assert nxt["count"] == 100
        assert not {i["id"] for i in nxt["instances"]} & {i["id"] for i in page["instances"]}
        n = 999_999
        assert p.instance(PARTY_BASE + n % 333_333, guid(n))["id"].endswith(guid(n))
        rss = 0
        for line in open(f"/proc/{p.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    assert started < 10, started
    assert rss < 200 << 20, rss
