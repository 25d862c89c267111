"""``refine-assets serve`` in its own process over the demo's warehouse and storage, exercised with httpx.

The demo job (``refine-assets demo``) is run once into a temporary ``REFINE_ASSETS_HOME`` (real data:
the Debian demo inputs and the shared recordings). The service runs with two uvicorn workers (so tokens
and datasets must travel through the API's SQLite store between processes); a second service in
``dagster`` build mode checks the Dagster path. Datasets built through the API are compared with what
``refine-assets dataset`` makes for the same request: same zip members, same TSV bytes, same texts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from refine_assets_tests.conftest import REPO_ROOT
from refine_assets_tests.fixtures_servers import _stop, free_port, log_tail

pytestmark = pytest.mark.slow

EXE = Path(sys.executable).with_name("refine-assets")
REQUEST = {
    "data": {"GSE781": ["ALL"], "E-MTAB-3050": ["ALL"]},
    "aggregate_by": "EXPERIMENT",
    "scale_by": "NONE",
    "quantile_normalize": False,  # the demo's human QN target is below its minimum (refused)
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory, shared_data: Path) -> dict:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs apt-get and dpkg-deb (Debian) to fetch the demo data")
    home = tmp_path_factory.mktemp("api-demo") / "home"
    env = dict(os.environ, REFINE_ASSETS_HOME=str(home), REFINE_ASSETS_SHARED_DATA=str(shared_data))
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.run(
        [str(EXE), "demo"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"home": home, "env": env}


def start(demo: dict, tmp: Path, workers: int, **extra: str):
    env = dict(
        demo["env"], REFINE_ASSETS_API_RATE_LIMIT="0", REFINE_ASSETS_API_STATE=str(tmp / "state"), **extra
    )
    port = free_port()
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(EXE), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"serve did not come up (rc={proc.poll()}): {log_tail(log_path)}")
        time.sleep(0.3)
    return proc, base, log_path, tmp / "state"


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    proc, base, log_path, state = start(demo, tmp, workers=2, REFINE_ASSETS_API_BUILDS="thread")
    with httpx.Client(base_url=base, timeout=60) as client:
        yield {"client": client, "base": base, "log": log_path, "state": state, "home": demo["home"]}
    _stop(proc)


@pytest.fixture(scope="module")
def cli_zip(demo, tmp_path_factory) -> Path:
    """The zip ``refine-assets dataset`` makes for REQUEST (not recorded, so the warehouse stays put)."""
    tmp = tmp_path_factory.mktemp("cli-dataset")
    (tmp / "req.json").write_text(json.dumps(REQUEST))
    proc = subprocess.run(
        [str(EXE), "dataset", str(tmp / "req.json"), "-o", str(tmp / "cli.zip"), "--no-record"],
        env=demo["env"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "cli.zip"


def store_path(home: Path, url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(url.removeprefix("file://"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def token(client: httpx.Client) -> str:
    t = client.post("/v1/token/").json()
    assert t["is_activated"] is False and t["terms_and_conditions"]
    assert client.put(f"/v1/token/{t['id']}/", json={"is_activated": True}).json()["is_activated"] is True
    return t["id"]


def assert_same_dataset(api_zip: bytes, cli_zip: Path) -> None:
    """Same members; every TSV, the README and the licence byte for byte; the metadata JSON but its id/time."""
    with zipfile.ZipFile(io.BytesIO(api_zip)) as a, zipfile.ZipFile(cli_zip) as c:
        assert sorted(a.namelist()) == sorted(c.namelist())
        tsvs = [n for n in c.namelist() if n.endswith(".tsv")]
        assert any(n.endswith("GSE781/GSE781.tsv") for n in tsvs)
        for name in [*tsvs, "README.md", "LICENSE.TXT"]:
            assert a.read(name) == c.read(name), name
        meta_a, meta_c = (json.loads(z.read("aggregated_metadata.json")) for z in (a, c))
        for meta in (meta_a, meta_c):
            meta.pop("dataset_id"), meta.pop("created_at"), meta.get("request", {}).pop("dataset_id", None)
        assert meta_a == meta_c


def run_dataset_cycle(client: httpx.Client, key: str) -> tuple[dict, bytes]:
    created = client.post("/v1/dataset/", json=REQUEST)
    assert created.status_code == 201, created.text
    ds = created.json()
    assert ds["is_processing"] is False and ds["data"] == {"E-MTAB-3050": ["ALL"], "GSE781": ["ALL"]}
    started = client.put(
        f"/v1/dataset/{ds['id']}/", json={**REQUEST, "start": True}, headers={"API-KEY": key}
    )
    assert started.status_code == 200 and started.json()["is_processing"] is True, started.text
    deadline = time.monotonic() + 300
    while True:
        state = client.get(f"/v1/dataset/{ds['id']}/", headers={"API-KEY": key}).json()
        if not state["is_processing"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert state["success"] is True and state["is_processed"] and state["is_available"], state
    assert "download_url" not in client.get(f"/v1/dataset/{ds['id']}/").json()  # no token, no URL
    download = httpx.get(state["download_url"], timeout=60)
    assert download.status_code == 200
    assert len(download.content) == state["size_in_bytes"] and sha256(download.content) == state["sha256"]
    return state, download.content


def test_read_endpoints(server):
    c = server["client"]
    assert c.get("/health").json()["status"] == "ok"
    exps = c.get("/v1/experiments/?limit=3").json()
    assert exps["count"] == 9 and len(exps["results"]) == 3 and exps["next"].endswith("limit=3&offset=3")
    gse = c.get("/v1/experiments/GSE781/").json()
    assert (
        gse["num_total_samples"] == 34
        and gse["num_processed_samples"] == 34
        and gse["pubmed_id"] == "14641932"
    )
    moved = c.get("/v1/experiments/GSE781")
    assert moved.status_code == 307 and moved.headers["location"].endswith("/v1/experiments/GSE781/")
    zebrafish = c.get("/v1/samples/?experiment_accession_code=SRP095529&is_processed=true&limit=100").json()
    assert zebrafish["count"] == 20 and all(
        s["organism"]["name"] == "DANIO_RERIO" for s in zebrafish["results"]
    )
    sample = c.get("/v1/samples/GSM11805/").json()
    assert sample["experiment_accession_codes"] == ["GSE781"] and sample["is_processed"] is True
    assert sample["most_recent_smashable_file"]["filename"] == "GSM11805.parquet"
    found = c.get("/v1/search/?search=kidney").json()
    assert "GSE781" in [r["accession_code"] for r in found["results"]]
    assert found["facets"]["downloadable_organism_names"]["HOMO_SAPIENS"] >= 34
    assert found["facets"]["technology"]["microarray"] >= 34
    rnaseq = c.get("/v1/search/?technology=rna-seq&downloadable_organism=DANIO_RERIO").json()
    assert [r["accession_code"] for r in rnaseq["results"]] == ["SRP095529"]
    assert rnaseq["facets"]["downloadable_organism_names"] == {"DANIO_RERIO": 20}
    assert {o["name"] for o in c.get("/v1/organisms/").json()["results"]} == {"HOMO_SAPIENS", "DANIO_RERIO"}
    assert c.get("/v1/organisms/DANIO_RERIO/").json()["has_compendia"] is True
    assert {
        "platform_accession_code": "hgu133a",
        "platform_name": "[HG-U133A] Affymetrix Human Genome U133A Array",
    } in c.get("/v1/platforms/").json()
    assert {"submitter_institution": "Boston University School of Medicine"} in c.get(
        "/v1/institutions/"
    ).json()
    assert [o["name"] for o in c.get("/v1/qn_targets/").json()] == ["DANIO_RERIO", "HOMO_SAPIENS"]
    target = c.get("/v1/qn_targets/danio rerio").json()
    body = httpx.get(target["s3_url"]).content
    assert sha256(body) == target["sha256"] and len(body) == target["size_in_bytes"]
    # the demo's reads are short, so only the k=23 index was built on demand
    long = c.get("/v1/transcriptome_indices/?organism__name=HOMO_SAPIENS&length=long").json()
    assert long["count"] == 0
    indices = c.get("/v1/transcriptome_indices/?organism__name=HOMO_SAPIENS&length=short").json()
    assert indices["count"] == 1 and indices["results"][0]["index_type"] == "TRANSCRIPTOME_SHORT"
    index = indices["results"][0]
    assert c.get(f"/v1/transcriptome_indices/{index['id']}").json() == index
    tarball = httpx.get(index["download_url"]).content
    assert tarball[:2] == b"\x1f\x8b"
    stats = c.get("/v1/stats-about/").json()
    assert stats["samples_available"] >= 55 and stats["supported_organisms"] == 2
    files = c.get("/v1/computed_files/?is_qn_target=true").json()
    assert files["count"] == 2 and "download_url" not in files["results"][0]
    detail = c.get(f"/v1/computed_files/{files['results'][0]['id']}/").json()
    assert detail["is_qn_target"] is True and detail["download_url"] is None
    originals = c.get("/v1/original_files/?limit=1").json()
    assert originals["count"] > 0
    assert c.get(f"/v1/original_files/{originals['results'][0]['id']}/").json()["source_url"]


def test_compendia_downloads_need_a_token(server):
    c = server["client"]
    listed = c.get("/v1/compendia/?latest_version=true").json()
    assert {(r["primary_organism_name"], r["quant_sf_only"]) for r in listed["results"]} == {
        ("DANIO_RERIO", False),
        ("DANIO_RERIO", True),
    }
    assert all("download_url" not in r["computed_file"] for r in listed["results"])
    key = token(c)
    with_url = c.get("/v1/compendia/?quant_sf_only=false", headers={"API-KEY": key}).json()["results"][0]
    assert c.get(f"/v1/compendia/{with_url['id']}/").json()["compendium_version"] == 1
    archive = httpx.get(with_url["computed_file"]["download_url"], timeout=60)
    assert archive.status_code == 200
    folder = server["home"] / "storage" / "compendia" / "DANIO_RERIO" / "v1"
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        assert sorted(zf.namelist()) == on_disk
        assert zf.read("genes.tsv") == (folder / "genes.tsv").read_bytes()


def test_dataset_cycle_makes_the_cli_zip(server, cli_zip):
    c = server["client"]
    key = token(c)
    state, content = run_dataset_cycle(c, key)
    assert_same_dataset(content, cli_zip)
    details = c.get(f"/v1/dataset/{state['id']}/?details=true").json()
    members = sorted(
        s["accession_code"]
        for exp in REQUEST["data"]
        for s in c.get(f"/v1/samples/?experiment_accession_code={exp}&limit=1000").json()["results"]
    )
    assert details["organism_samples"] == {"HOMO_SAPIENS": members}
    assert {e["accession_code"] for e in details["experiments"]} == set(REQUEST["data"])
    refused = c.put(f"/v1/dataset/{state['id']}/", json=REQUEST)  # a processed dataset cannot change
    assert refused.status_code == 400 and refused.json()["error_type"] == "bad_request"


def test_bad_inputs_are_refused_and_write_nothing(server):
    c = server["client"]
    db = server["state"] / "api.sqlite3"

    def count() -> int:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT count(*) FROM datasets").fetchone()[0]

    before = count()
    assert c.get("/v1/experiments/GSE0/").json() == {"detail": "Not found."}
    assert c.get("/v1/samples/NOT-A-SAMPLE/").status_code == 404
    assert c.get("/v1/nowhere/").json()["status_code"] == 404
    assert c.get("/v1/samples/?organism_name=x").json()["error_type"] == "invalid_filters"
    bad = c.post("/v1/dataset/", json={"data": {"GSE781": ["ALL"]}, "scale_by": "LOG"})
    assert bad.status_code == 400 and bad.json()["details"] == "scale_by"
    missing = c.post("/v1/dataset/", json={"data": {"GSE781": ["GSM11805", "SRR5125621"]}})
    assert missing.status_code == 400 and missing.json()["details"] == ["SRR5125621 (GSE781)"]
    no_token = c.post("/v1/dataset/", json={**REQUEST, "start": True})
    assert no_token.json()["error_type"] == "invalid_token"
    assert count() == before
    log = server["log"].read_text()
    assert "/v1/token/<redacted>/" in log and "@" not in log.split("Application startup complete", 1)[-1]


def test_dagster_mode_runs_the_dataset_asset(demo, cli_zip, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-dagster")
    dagster_home = demo["home"] / "dagster_home"
    proc, base, log_path, _ = start(
        demo, tmp, workers=1, REFINE_ASSETS_API_BUILDS="dagster", DAGSTER_HOME=str(dagster_home)
    )
    try:
        with httpx.Client(base_url=base, timeout=60) as c:
            assert c.get("/health").json()["build_mode"] == "dagster"
            state, content = run_dataset_cycle(c, token(c))
    finally:
        _stop(proc)
    assert_same_dataset(content, cli_zip)
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    runs = instance.get_runs(dg.RunsFilter(tags={"refine_assets/api_dataset": state["id"]}))
    assert (
        len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS and runs[0].job_name == "dataset_job"
    ), log_tail(log_path)
