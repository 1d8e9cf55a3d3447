"""The local platform's own contract (altinn-api.md section 2 plus the
admin endpoints the other tests rely on). If these fail, the daemon tests
measure the wrong thing."""

import base64
import os
import subprocess
import http.client
import re
import time
import urllib.parse
import uuid

import pytest

from localplatform import STORAGE, entry_query
from procs import REPO
from reference import iso_seconds

SOKNAD = "ttd/soknad"
TILSKUDD = "ttd/tilskudd"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def soknad(platform):
    instances, pages = platform.instances(SOKNAD, size=100)
    return instances, pages


def _path_of(url):
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


# -- auth -------------------------------------------------------------------

def test_token_is_plain_text(platform):
    r = platform.get("/Home/GetTestOrgToken/ttd", auth=False)
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain")
    token = r.body.decode().strip()
    assert token and " " not in token and '"' not in token


@pytest.mark.parametrize("auth", [False, "Bearer not-a-token", "Basic dHRkOnR0ZA=="])
def test_storage_without_valid_token_is_401(platform, auth):
    r = platform.get(f"{STORAGE}/instances", query={"appId": SOKNAD}, auth=auth)
    assert r.status == 401, r
    guid = "5a1e0000-0000-4000-8000-000000000001"
    r = platform.get(f"{STORAGE}/instances/50001/{guid}", auth=auth)
    assert r.status == 401, r


def test_application_metadata_is_anonymous(platform):
    r = platform.get(f"{STORAGE}/applications/ttd/soknad", auth=False)
    assert r.status == 200, r
    doc = r.json()
    assert doc["id"] == SOKNAD
    assert doc["org"] == "ttd"
    assert {"ref-data-as-pdf", "model", "attachment"} <= {t["id"] for t in doc["dataTypes"]}
    assert platform.get(f"{STORAGE}/applications/ttd/nope", auth=False).status == 404


# -- instance query -----------------------------------------------------------

def test_query_pages_through_1200_instances(platform, soknad):
    instances, pages = soknad
    assert len(instances) == 1200
    assert pages == 13
    ids = [i["id"] for i in instances]
    assert len(set(ids)) == 1200
    parties = {i["instanceOwner"]["partyId"] for i in instances}
    assert parties == {str(p) for p in range(500100, 500400)}
    for inst in instances[:50]:
        party, guid = inst["id"].split("/")
        assert GUID.match(guid)
        assert inst["appId"] == SOKNAD
        assert {d["dataType"] for d in inst["data"]} <= {"ref-data-as-pdf", "model", "attachment"}


def test_query_next_only_on_full_pages(platform):
    path = f"{STORAGE}/instances?appId={SOKNAD}&size=100"
    counts, nexts = [], []
    while path:
        doc = platform.get_json(path)
        assert doc["count"] == len(doc["instances"])
        assert "self" in doc
        counts.append(doc["count"])
        nexts.append("next" in doc and doc["next"] is not None)
        path = _path_of(doc["next"]) if doc.get("next") else None
    assert counts == [100] * 12 + [0]
    assert nexts == [True] * 12 + [False]

    # A partial last page carries no next.
    doc = platform.get_json(f"{STORAGE}/instances", query={"appId": SOKNAD, "size": "7"})
    assert doc["count"] == 7 and doc.get("next")
    _, pages = platform.instances(SOKNAD, size=7)
    assert pages == 1200 // 7 + 1


def test_query_is_ordered_by_last_changed_desc(soknad):
    instances, _ = soknad
    stamps = [iso_seconds(i["lastChanged"]) for i in instances]
    assert stamps == sorted(stamps, reverse=True)


def test_query_party_filter(platform, soknad):
    everything, _ = soknad
    want = sorted(i["id"] for i in everything if i["instanceOwner"]["partyId"] == "500123")
    got, pages = platform.instances(SOKNAD, party=500123)
    assert want and sorted(i["id"] for i in got) == want
    assert pages == 1


def test_query_other_app(platform):
    got, _ = platform.instances(TILSKUDD)
    ids = {i["id"] for i in got}
    assert "50001/5a1e0000-0000-4000-8000-000000000001" in ids
    assert "50002/b16f0000-0000-4000-8000-000000000002" in ids
    assert all(i["appId"] == TILSKUDD for i in got)


@pytest.mark.parametrize("query", [
    {},                                   # neither org nor appId
    {"appId": SOKNAD, "size": "abc"},
    {"appId": SOKNAD, "continuationToken": "%%garbage"},
])
def test_query_bad_input_is_400(platform, query):
    r = platform.get(f"{STORAGE}/instances", query=query)
    assert r.status == 400, r


# -- instances and data --------------------------------------------------------

def test_single_instance_and_dataelements(platform, tilskudd_fixed):
    party, guid, doc = tilskudd_fixed
    assert doc["id"] == f"{party}/{guid}"
    assert doc["instanceOwner"]["partyId"] == party
    elements = platform.get_json(f"{STORAGE}/instances/{party}/{guid}/dataelements")
    assert [d["id"] for d in elements["dataElements"]] == [d["id"] for d in doc["data"]]
    # by guid alone, too
    assert platform.get_json(f"{STORAGE}/instances/{guid}")["id"] == doc["id"]
    missing = str(uuid.uuid4())
    assert platform.get(f"{STORAGE}/instances/{party}/{missing}").status == 404
    assert platform.get(f"{STORAGE}/instances/{party}/{guid}/data/{missing}").status == 404


def test_fixed_instance_elements(tilskudd_fixed):
    _, _, doc = tilskudd_fixed
    by_name = {d.get("filename"): d for d in doc["data"]}
    assert len(doc["data"]) == 10
    for n in range(1, 11):
        assert any(d["id"] == f"d{n:07d}-0000-4000-8000-{n:012d}" for d in doc["data"]), n
    assert by_name["Søknad om støtte – æøå.pdf"]["dataType"] == "vedlegg"
    assert sum(1 for d in doc["data"] if d.get("filename") == "kvittering.pdf") == 2
    for fn in ["../../etc/passwd", "rapport/2026/mars.txt", "Langt navn " + "ø" * 150 + ".txt",
               "linje\nskift\t.txt", ".."]:
        assert fn in by_name, fn
    nameless = sorted(d["contentType"] for d in doc["data"] if not d.get("filename"))
    assert nameless == ["application/xml", "image/png"]


def test_data_bytes_and_headers(platform, tilskudd_fixed):
    party, guid, doc = tilskudd_fixed
    for el in doc["data"]:
        r = platform.get(platform.data_path(party, guid, el["id"]))
        assert r.status == 200
        assert len(r.body) == el["size"] > 0
        assert r.header("Content-Type").split(";")[0] == el["contentType"]


def test_data_ranges(ranged_platform, tilskudd_fixed):
    platform = ranged_platform
    party, guid, doc = tilskudd_fixed
    el = next(d for d in doc["data"] if d.get("filename") == "Søknad om støtte – æøå.pdf")
    size = el["size"]
    assert size > 20
    path = platform.data_path(party, guid, el["id"])
    full = platform.get(path).body

    r = platform.get(path, headers={"Range": "bytes=0-9"})
    assert r.status == 206 and r.body == full[:10]
    assert r.header("Content-Range") == f"bytes 0-9/{size}"
    r = platform.get(path, headers={"Range": "bytes=5-"})
    assert r.status == 206 and r.body == full[5:]
    r = platform.get(path, headers={"Range": "bytes=-4"})
    assert r.status == 206 and r.body == full[-4:]
    r = platform.get(path, headers={"Range": f"bytes={size - 3}-{size + 100}"})
    assert r.status == 206 and r.body == full[-3:]
    assert r.header("Content-Range") == f"bytes {size - 3}-{size - 1}/{size}"
    r = platform.get(path, headers={"Range": f"bytes={size}-"})
    assert r.status == 416, r
    assert r.header("Content-Range") == f"bytes */{size}"


def test_data_ignores_range_by_default(platform, tilskudd_fixed):
    """As Storage's DataController: Range is ignored, the answer is 200 and whole."""
    if platform.extra_args and "--ranges" in platform.extra_args:
        pytest.skip("this session's platform honours ranges")
    party, guid, doc = tilskudd_fixed
    el = next(d for d in doc["data"] if d.get("filename") == "Søknad om støtte – æøå.pdf")
    path = platform.data_path(party, guid, el["id"])
    r = platform.get(path, headers={"Range": "bytes=5-9"})
    assert r.status == 200 and len(r.body) == el["size"]
    assert r.header("Content-Range") is None and r.header("Accept-Ranges") is None


def test_big_element_ranges(ranged_platform, big_element):
    platform = ranged_platform
    assert big_element["size"] == 268435456
    assert big_element["element"]["contentType"] == "application/octet-stream"
    p, g, d = big_element["party"], big_element["guid"], big_element["id"]
    a = platform.data(p, g, d, 200 << 20, (200 << 20) + 65535)
    b = platform.data(p, g, d, (200 << 20) + 4096, (200 << 20) + 8191)
    assert len(a) == 65536 and a[4096:8192] == b
    # a deterministic pattern, not one repeated byte
    assert len(set(a)) > 16
    tail = platform.data(p, g, d, (256 << 20) - 10)
    assert len(tail) == 10 and tail == platform.data(p, g, d, (256 << 20) - 10, (256 << 20) - 1)


# -- request log ---------------------------------------------------------------

def test_request_log(platform, tilskudd_fixed):
    party, guid, doc = tilskudd_fixed
    el = doc["data"][0]
    mark = platform.mark()
    platform.get(platform.data_path(party, guid, el["id"]), headers={"Range": "bytes=0-0"})
    platform.get(f"{STORAGE}/instances", query={"appId": SOKNAD, "size": "3"}, auth=False)
    entries = platform.since(mark)
    assert len(entries) == 2, entries  # admin calls are not logged
    data, query = entries
    assert data["method"] == "GET"
    assert data["path"] == platform.data_path(party, guid, el["id"])
    ranged = "--ranges" in platform.extra_args
    assert data["status"] == (206 if ranged else 200)
    assert data["bytes"] == (1 if ranged else el["size"])
    assert data["range"] == "bytes=0-0"
    assert data["auth"]
    assert query["status"] == 401 and not query["auth"]
    assert entry_query(query)["appId"] == [SOKNAD]
    assert query["seq"] > data["seq"] > mark
    assert platform.since(query["seq"]) == []


# -- faults and admin (on a platform of this module's own) ---------------------

@pytest.fixture
def fplat(own_platform):
    own_platform.clear_faults()
    yield own_platform
    own_platform.clear_faults()


def test_fault_503_once(fplat):
    fplat.fault(f"{STORAGE}/instances", count=1, status=503, retry_after=1)
    r = fplat.get(f"{STORAGE}/instances", query={"appId": SOKNAD, "size": "1"})
    assert r.status == 503 and r.header("Retry-After") == "1"
    r = fplat.get(f"{STORAGE}/instances", query={"appId": SOKNAD, "size": "1"})
    assert r.status == 200


def test_fault_permanent_until_cleared(fplat):
    fplat.fault(f"{STORAGE}/applications", count=-1, status=503)
    for _ in range(3):
        assert fplat.get(f"{STORAGE}/applications/ttd/soknad").status == 503
    # other paths are untouched
    assert fplat.get(f"{STORAGE}/instances", query={"appId": SOKNAD, "size": "1"}).status == 200
    fplat.clear_faults()
    assert fplat.get(f"{STORAGE}/applications/ttd/soknad").status == 200


def test_fault_delay(fplat):
    fplat.fault(f"{STORAGE}/applications", count=1, delay_ms=1500)
    t0 = time.monotonic()
    r = fplat.get(f"{STORAGE}/applications/ttd/soknad")
    assert r.status == 200
    assert time.monotonic() - t0 >= 1.4
    t0 = time.monotonic()
    fplat.get(f"{STORAGE}/applications/ttd/soknad")
    assert time.monotonic() - t0 < 1.0


def test_fault_drop(fplat):
    fplat.fault(f"{STORAGE}/applications", count=1, drop=True)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        fplat.get(f"{STORAGE}/applications/ttd/soknad")
    assert fplat.get(f"{STORAGE}/applications/ttd/soknad").status == 200


def test_fault_truncate(fplat, tilskudd_fixed):
    party, guid, doc = tilskudd_fixed
    el = next(d for d in doc["data"] if d.get("filename") == "Søknad om støtte – æøå.pdf")
    path = fplat.data_path(party, guid, el["id"])
    fplat.fault(path, count=1, truncate=True)
    with pytest.raises(http.client.IncompleteRead):
        fplat.get(path)
    assert len(fplat.get(path).body) == el["size"]


@pytest.mark.parametrize("path", [
    "^/storage/api/v1/applications",            # anchored as a regex
    f"{STORAGE}/applications/.*",               # a regex wildcard
    f"{STORAGE}/applications/ttd/(soknad|tilskudd)",
    f"{STORAGE}/instances/\\d+",
    f"{STORAGE}/instances/[0-9]+/x",
    f"{STORAGE}/instances$/data",               # $ only at the end
    f"{STORAGE}/instances?appId=ttd/soknad",    # the query is never matched
])
def test_fault_refuses_a_regex_path(fplat, path):
    """A regex-style path would match no request, and a test using it would
    pass without its fault ever firing: the platform refuses it."""
    r = fplat.request("POST", "/_localtest/faults", auth=False,
                      body={"path": path, "status": 503})
    assert r.status == 400, r
    assert "looks like a regex, but fault paths are globs" in r.body.decode()
    assert fplat.get("/_localtest/faults", auth=False).json() == []
    # hostile mode matches its path the same way, and refuses the same
    r = fplat.request("PUT", "/_localtest/hostile", auth=False,
                      body={"scenario": "party_mix", "path": path})
    assert r.status == 400 and "looks like a regex" in r.body.decode(), r


def test_fault_globs_are_still_accepted(fplat):
    for path in (f"{STORAGE}/instances", "/ttd/*/instances/*/*/data", "/ttd/soknad/instances$",
                 "/correspondence/api/v1/attachment/*/upload$", "/maskinporten/token"):
        r = fplat.request("POST", "/_localtest/faults", auth=False,
                          body={"path": path, "status": 503})
        assert r.status == 201, (path, r)


def test_fault_hits_show_what_never_fired(fplat):
    """Each rule counts the requests it matched, also after it is used up, so
    a test can assert its faults fired; clearing names those that never did."""
    used = fplat.fault(f"{STORAGE}/applications", count=1, status=503)
    kept = fplat.fault(f"{STORAGE}/applications", count=-1, delay_ms=1)
    idle = fplat.fault("/ttd/nosuchapp/instances$", count=1, status=503)
    assert fplat.fault_hits(used) == 0
    assert fplat.get(f"{STORAGE}/applications/ttd/soknad").status == 503
    assert fplat.get(f"{STORAGE}/applications/ttd/soknad").status == 200
    assert fplat.get(f"{STORAGE}/applications/ttd/tilskudd").status == 200
    assert fplat.fault_hits(used) == 1                   # used up, still reported
    assert fplat.fault_hits(kept) == 2
    assert fplat.fault_hits(idle) == 0
    # the rules in force: the used-up one is gone
    assert [r["id"] for r in fplat.get("/_localtest/faults", auth=False).json()] == \
        [kept.json()["id"], idle.json()["id"]]
    assert [r["id"] for r in fplat.unfired_faults()] == [idle.json()["id"]]
    with pytest.raises(AssertionError, match="never fired"):
        fplat.assert_faults_fired()
    unfired = fplat.clear_faults()
    assert [(r["id"], r["path"], r["hits"]) for r in unfired] == \
        [(idle.json()["id"], "/ttd/nosuchapp/instances$", 0)]
    assert fplat.unfired_faults() == []
    fplat.assert_faults_fired()                          # nothing since the clear
    r = fplat.request("GET", f"/_localtest/faults/{used.json()['id']}", auth=False)
    assert r.status == 404                               # forgotten at the clear


def test_admin_instance_lifecycle(fplat):
    guid = str(uuid.uuid4())
    content = b"hello from the admin API\n"
    doc = fplat.add_instance(TILSKUDD, 50077, guid=guid,
                             data=[("vedlegg", "hei.txt", "text/plain", content)])
    assert doc["id"] == f"50077/{guid}"
    [el] = doc["data"]
    assert el["filename"] == "hei.txt" and el["size"] == len(content)
    assert fplat.instance(50077, guid)["id"] == doc["id"]
    got, _ = fplat.instances(TILSKUDD, party=50077)
    assert [i["id"] for i in got] == [doc["id"]]
    assert fplat.data(50077, guid, el["id"]) == content

    time.sleep(1.1)
    new = b"replaced, and longer than before\n"
    fplat.put_data(50077, guid, el["id"], new)
    assert fplat.data(50077, guid, el["id"]) == new
    [el2] = fplat.instance(50077, guid)["data"]
    assert el2["size"] == len(new)
    assert iso_seconds(el2["lastChanged"]) > iso_seconds(el["lastChanged"])

    fplat.delete_instance(50077, guid)
    assert fplat.get(f"{STORAGE}/instances/50077/{guid}").status == 404
    assert fplat.instances(TILSKUDD, party=50077)[0] == []


def test_token_lifetime(platform_factory):
    p = platform_factory(token_lifetime=2)
    q = {"appId": TILSKUDD, "size": "1"}
    assert p.get(f"{STORAGE}/instances", query=q).status == 200
    time.sleep(3)
    assert p.get(f"{STORAGE}/instances", query=q).status == 401
    p.new_token()
    assert p.get(f"{STORAGE}/instances", query=q).status == 200


def test_help_names_files_of_the_project_not_of_one_machine():
    root = str(REPO)
    out = subprocess.run(["/usr/bin/python3", os.path.join(root, "scripts/altinn-localtest"),
                          "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert "/work/" not in out and "/home/" not in out, out
    for ref in re.findall(r"scripts/[\w./-]+\.md", out):
        assert os.path.exists(os.path.join(root, ref)), ref
    assert re.findall(r"scripts/[\w./-]+\.md", out), out
