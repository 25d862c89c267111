"""The API app in-process (Starlette TestClient) over a synthetic warehouse in the real schema.

Expected answers are recomputed from the warehouse tables in the tests, not copied from the API.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time

import duckdb
import pytest
from starlette.testclient import TestClient

from refine_assets.api.app import create_app
from refine_assets.api.config import ApiConfig, ConfigError, parse_rate
from refine_assets.api.middleware import redact
from refine_assets.api.snapshot import Snapshots
from refine_assets.lib.storage import LocalArtifactStore
from refine_assets_tests.api_warehouse import QN_ORGANISMS, make_warehouse

EXPERIMENTS, PER = 12, 5


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("api")
    store = LocalArtifactStore(root / "storage")
    wh = make_warehouse(root / "warehouse.duckdb", EXPERIMENTS, PER, store_url=store.root_url)
    store.put_bytes("references/qn_targets/HOMO_SAPIENS/target.txt", b"1.0\n2.0\n")
    with duckdb.connect(str(wh)) as con:  # an experiment whose only sample has no processing outcome
        con.execute(
            "INSERT INTO experiments (accession, source_database, title) VALUES ('GSE999999', 'GEO', 'empty one')"
        )
        con.execute(
            "INSERT INTO samples (accession, experiment_accession, organism, pipeline) "
            "VALUES ('GSM9999999', 'GSE999999', 'HOMO_SAPIENS', 'AFFY_TO_PCL')"
        )
    return {"root": root, "warehouse": wh}


def make_client(world: dict, name: str, rate: float = 0.0) -> TestClient:
    config = ApiConfig(
        warehouse_path=world["warehouse"],
        storage_root=str(world["root"] / "storage"),
        state_dir=world["root"] / name,
        rate_per_second=rate,
        build_mode="thread",
        snapshot_check_seconds=0.0,
    )
    return TestClient(create_app(config))


@pytest.fixture(scope="module")
def client(world):
    with make_client(world, "state") as c:
        yield c


def raw(world: dict, sql: str, params=()) -> list[tuple]:
    with duckdb.connect(str(world["warehouse"]), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def processed_samples(world: dict) -> set[str]:
    """Samples whose latest non-survey ledger row is a succeeded .parquet vector (recomputed here)."""
    latest: dict[tuple, tuple] = {}
    for s, e, status, key, at, step in raw(
        world,
        "SELECT sample_accession, experiment_accession, status, output_key, recorded_at, step FROM processing_ledger",
    ):
        if step == "survey":
            continue
        if (s, e) not in latest or (at, step) > latest[(s, e)][2:]:
            latest[(s, e)] = (status, key, at, step)
    return {
        s
        for (s, _), (status, key, *_rest) in latest.items()
        if status == "succeeded" and key and key.endswith(".parquet")
    }


def test_experiments_list_paginates_like_drf(client):
    body = client.get("/v1/experiments/?limit=5&offset=5").json()
    assert body["count"] == EXPERIMENTS + 1
    assert [r["accession_code"] for r in body["results"]] == sorted(
        r["accession_code"] for r in body["results"]
    )
    assert body["next"].endswith("/v1/experiments/?limit=5&offset=10")
    assert body["previous"].endswith("/v1/experiments/?limit=5")  # offset 0 is left out, as DRF does
    assert client.get("/v1/experiments/?limit=5000").json()["count"] == EXPERIMENTS + 1
    bad = client.get("/v1/experiments/?limit=abc")
    assert (
        bad.status_code == 400
        and bad.json()["error_type"] == "invalid_filters"
        and bad.json()["details"] == ["limit"]
    )
    pub = client.get("/v1/experiments/?has_publication=true&limit=100").json()
    assert pub["count"] == len([e for e in range(EXPERIMENTS) if e % 3 == 0])


def test_experiment_detail_counts_come_from_the_ledger(client, world):
    done = processed_samples(world)
    organisms = dict(raw(world, "SELECT accession, organism FROM samples"))
    for (acc,) in raw(world, "SELECT accession FROM experiments"):
        body = client.get(f"/v1/experiments/{acc}/").json()
        members = [
            s for (s,) in raw(world, "SELECT accession FROM samples WHERE experiment_accession = ?", [acc])
        ]
        assert body["num_total_samples"] == len(members)
        assert body["num_processed_samples"] == len([s for s in members if s in done])
        assert body["num_downloadable_samples"] == len(
            [s for s in members if s in done and organisms[s] in QN_ORGANISMS]
        )
        assert {s["accession_code"]: s["is_processed"] for s in body["samples"]} == {
            s: s in done for s in members
        }


def test_unknown_objects_paths_and_methods_use_refinebio_error_bodies(client):
    assert client.get("/v1/experiments/GSE0/").json() == {"detail": "Not found."}
    assert client.get("/v1/samples/GSM0/").status_code == 404
    assert client.get("/v1/qn_targets/DANIO_RERIO").json() == {
        "detail": "Don't have a target for that organism!"
    }
    assert client.get("/v1/computed_files/not-a-number/").status_code == 404
    page = client.get("/v1/nothing/")
    assert page.status_code == 404 and page.json()["status_code"] == 404 and "message" in page.json()
    unversioned = client.get("/experiments/").json()
    assert unversioned["message"] == "refine.bio API resources are only available through versioned requests."
    assert client.post("/v1/experiments/", json={}).json() == {"detail": 'Method "POST" not allowed.'}
    bad = client.get("/v1/samples/?colour=red&is_processed=maybe")
    assert bad.status_code == 400 and bad.json()["details"] == ["colour"]
    assert client.get("/v1/samples/?is_processed=maybe").json()["details"] == ["is_processed"]


def test_sample_filters_and_ordering(client, world):
    done = processed_samples(world)
    body = client.get("/v1/samples/?experiment_accession_code=GSE100000&limit=100").json()
    assert body["count"] == PER and {r["experiment_accession_codes"][0] for r in body["results"]} == {
        "GSE100000"
    }
    assert client.get("/v1/samples/?experiment_accession_code=GSE0").status_code == 404
    assert client.get("/v1/samples/?is_processed=true&limit=1").json()["count"] == len(done)
    human = raw(world, "SELECT count(*) FROM samples WHERE organism = 'HOMO_SAPIENS'")[0][0]
    assert client.get("/v1/samples/?organism__name=homo sapiens&limit=1").json()["count"] == human
    ages = [r["age"] for r in client.get("/v1/samples/?ordering=-age&limit=20").json()["results"]]
    assert ages == sorted(ages, reverse=True)
    first = client.get("/v1/samples/?limit=1").json()["results"][0]
    assert first["is_processed"] is True  # default ordering -is_processed
    one = client.get(f"/v1/samples/?ids={first['id']}").json()
    assert [r["accession_code"] for r in one["results"]] == [first["accession_code"]]
    carcinoma = raw(
        world,
        "SELECT count(*) FROM sample_harmonized WHERE disease = 'carcinoma' OR specimen_part LIKE '%carcinoma%'",
    )
    assert client.get("/v1/samples/?filter_by=CARCINOMA&limit=1").json()["count"] == carcinoma[0][0]
    assert client.get("/v1/samples/?ordering=colour").status_code == 400
    detail = client.get("/v1/samples/GSM1000000/").json()
    assert detail["annotations"][0]["data"]["characteristic 0"] == "value 0"
    assert detail["most_recent_smashable_file"]["filename"] == "GSM1000000.parquet"
    assert detail["last_processor_job"]["success"] is True


def test_search_scores_and_facets(client, world):
    body = client.get("/v1/search/?search=kidney&limit=100").json()
    fields = raw(
        world,
        "SELECT e.accession, lower(concat_ws(' ', any_value(e.title), any_value(e.description), "
        "any_value(e.submitter_institution), any_value(array_to_string(e.publication_authors, ' ')), "
        "string_agg(h.specimen_part, ' '), string_agg(h.disease, ' '))) "
        "FROM experiments e LEFT JOIN sample_harmonized h ON h.experiment_accession = e.accession GROUP BY e.accession",
    )
    assert {r["accession_code"] for r in body["results"]} == {acc for acc, text in fields if "kidney" in text}
    titles = [("kidney" in r["title"].lower()) for r in body["results"]]
    assert titles == sorted(titles, reverse=True)  # title matches (boost 10) rank above description ones
    # facets: distinct downloadable samples of the hit experiments, per bucket
    done = processed_samples(world)
    hits = {r["accession_code"] for r in body["results"]}
    rows = raw(
        world,
        "SELECT s.accession, s.experiment_accession, s.organism, e.technology FROM samples s JOIN experiments e ON e.accession = s.experiment_accession",
    )
    expected: dict[str, set] = {}
    for s, e, org, tech in rows:
        if e in hits and s in done and org in QN_ORGANISMS:
            expected.setdefault(tech.lower(), set()).add(s)
    assert body["facets"]["technology"] == {k: len(v) for k, v in expected.items()} | {
        t: 0 for t in body["facets"]["technology"] if t not in expected
    }
    both = client.get("/v1/search/?organism=HOMO_SAPIENS&organism=MUS_MUSCULUS&limit=100").json()
    assert both["count"] == len([e for e in range(EXPERIMENTS) if e % 3 in (0, 1)]) + 1  # + GSE999999
    rnaseq = client.get("/v1/search/?technology=RNA-SEQ&num_processed_samples__gt=1&limit=100").json()
    assert rnaseq["results"] and all(
        r["technology"] == "RNA-SEQ" and r["num_processed_samples"] > 1 for r in rnaseq["results"]
    )
    assert client.get("/v1/search/?num_processed_samples__gt=abc").status_code == 400


def test_other_lists(client):
    assert client.get("/v1/organisms/").json()["count"] == 3
    assert client.get("/v1/organisms/homo sapiens/").json()["taxonomy_id"] == 9606
    assert {p["platform_accession_code"] for p in client.get("/v1/platforms/").json()} >= {
        "hgu133plus2",
        "mouse4302",
    }
    assert {"submitter_institution": "Institute 0"} in client.get("/v1/institutions/").json()
    assert [o["name"] for o in client.get("/v1/qn_targets/").json()] == sorted(QN_ORGANISMS)
    files = client.get("/v1/computed_files/?is_smashable=true&limit=1").json()
    assert files["count"] > 0 and "download_url" not in files["results"][0]  # no token, no URL
    originals = client.get("/v1/original_files/?has_raw=true&limit=2").json()
    assert originals["count"] == EXPERIMENTS * PER
    stats = client.get("/v1/stats-about/").json()
    assert stats["experiments_processed"] == EXPERIMENTS and stats["supported_organisms"] == 2
    assert client.get("/v1/stats-about/?dummy=true").json()["samples_available"] == 1295975
    assert client.get("/health").json()["warehouse"]["full_text_search"] in ("fts", "fallback")


def dataset_rows(world: dict, name: str = "state") -> int:
    with sqlite3.connect(world["root"] / name / "api.sqlite3") as con:
        return con.execute("SELECT count(*) FROM datasets").fetchone()[0]


@pytest.mark.parametrize(
    ("body", "status", "check"),
    [
        ([1, 2], 400, lambda b: b["details"] == "non_field_errors"),
        (
            {"aggregate_by": "EXPERIMENT"},
            400,
            lambda b: (
                b == {"error_type": "required", "message": "This field is required.", "details": "data"}
            ),
        ),
        (
            {"data": {"GSE100000": ["ALL"]}, "aggregate_by": "GENE"},
            400,
            lambda b: b["details"] == "aggregate_by",
        ),
        ({"data": {"GSE100000": ["ALL"]}, "scale": "NONE"}, 400, lambda b: b["details"] == "scale"),
        (
            {"data": {"GSE100000": ["ALL"]}, "quant_sf_only": True},
            400,
            lambda b: b["details"] == "quant_sf_only",
        ),
        (
            {"data": {"GSE100000": ["ALL"]}, "quantile_normalize": "perhaps"},
            400,
            lambda b: b["details"] == "quantile_normalize",
        ),
        (
            {"data": {"GSE100000": ["ALL"]}, "email_address": "not-an-address"},
            400,
            lambda b: b["details"] == "email_address",
        ),
        ({"data": ["GSE100000"]}, 400, lambda b: b["error_type"] == "invalid_data"),
        ({"data": {"GSE100000": "ALL"}}, 400, lambda b: "Problem with `GSE100000`" in b["message"]),
        ({"data": {"GSE100000": ["GSM1000000", "GSM1000000"]}}, 400, lambda b: "Duplicate" in b["message"]),
        ({"data": {"GSE0": ["ALL"]}}, 400, lambda b: b["details"] == ["GSE0"]),
        ({"data": {"GSE100000": ["GSM0"]}}, 400, lambda b: b["details"] == ["GSM0"]),
        ({"data": {"GSE100000": ["GSM1000005"]}}, 400, lambda b: b["details"] == ["GSM1000005 (GSE100000)"]),
        ({"data": {"GSE999999": ["ALL"]}}, 400, lambda b: b["details"] == ["GSE999999"]),
        ({"data": {"GSE100000": ["ALL"]}, "start": True}, 400, lambda b: b["error_type"] == "invalid_token"),
    ],
)
def test_rejected_datasets_write_nothing(client, world, body, status, check):
    before = dataset_rows(world)
    resp = client.post("/v1/dataset/", json=body)
    assert resp.status_code == status and check(resp.json()), resp.json()
    assert dataset_rows(world) == before


def test_malformed_json_and_inactive_token(client, world):
    before = dataset_rows(world)
    resp = client.post("/v1/dataset/", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["detail"].startswith("JSON parse error")
    token = client.post("/v1/token/").json()
    assert token["is_activated"] is False and token["terms_and_conditions"]
    resp = client.post(
        "/v1/dataset/", json={"data": {"GSE100000": ["ALL"]}, "start": True}, headers={"API-KEY": token["id"]}
    )
    assert resp.json()["error_type"] == "invalid_token"
    assert dataset_rows(world) == before


def test_tokens(client):
    token = client.post("/v1/token/", json={}).json()
    assert client.get(f"/v1/token/{token['id']}/").json()["is_activated"] is False
    assert client.put(f"/v1/token/{token['id']}/", json={"is_activated": True}).json()["is_activated"] is True
    assert client.get(f"/v1/token/{token['id']}/").json()["is_activated"] is True
    assert client.get("/v1/token/0000-not-a-token/").status_code == 404
    assert client.put(f"/v1/token/{token['id']}/", json={"is_activated": "yes please"}).status_code == 400
    assert client.post("/v1/token/", json={"is_activated": True}).json()["is_activated"] is True


def test_dataset_lifecycle_and_failure_is_reported(client):
    token = client.post("/v1/token/", json={"is_activated": True}).json()["id"]
    created = client.post(
        "/v1/dataset/", json={"data": {"GSE100000": ["GSM1000000"]}, "aggregate_by": "species"}
    )
    assert created.status_code == 201
    ds = created.json()
    assert ds["aggregate_by"] == "SPECIES" and ds["is_processing"] is False and "download_url" not in ds
    updated = client.put(
        f"/v1/dataset/{ds['id']}/",
        json={"data": {"GSE100000": ["ALL"]}, "start": True, "email_address": "someone@example.org"},
        headers={"API-KEY": token},
    )
    assert (
        updated.status_code == 200
        and updated.json()["is_processing"] is True
        and updated.json()["has_email"] is True
    )
    for _ in range(200):
        state = client.get(f"/v1/dataset/{ds['id']}/?details=true", headers={"API-KEY": token}).json()
        if not state["is_processing"]:
            break
        time.sleep(0.1)
    # the synthetic warehouse has no vectors in storage: the builder's own message comes back
    assert state["success"] is False and state["is_processed"] is False
    assert "can be delivered" in state["failure_reason"] and state["download_url"] is None
    assert state["organism_samples"] == {"HOMO_SAPIENS": [f"GSM{1000000 + k}" for k in range(PER)]}
    assert client.get("/v1/dataset/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_rate_limit_answers_429_with_retry_after(world):
    with make_client(world, "state-rate", rate=2.0) as c:
        codes = [c.get("/v1/organisms/").status_code for _ in range(6)]
        assert 429 in codes and codes[0] == 200
        resp = c.get("/v1/organisms/")
        assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
        assert resp.json()["detail"].startswith("Request was throttled.")
        assert c.get("/health").status_code == 200  # exempt


def test_access_log_has_no_tokens_or_emails(client, caplog):
    token = client.post("/v1/token/").json()["id"]
    with caplog.at_level(logging.INFO, logger="refine_assets.api.access"):
        client.put(f"/v1/token/{token}/", json={"is_activated": True})
        client.get("/v1/samples/?filter_by=someone@example.org", headers={"API-KEY": token})
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "refine_assets.api.access")
    assert "/v1/token/<redacted>/" in text and token not in text and "someone@example.org" not in text
    assert redact("/v1/x/", "email_address=a%40b.org&limit=2") == "/v1/x/?email_address=<redacted>&limit=2"


def test_download_links_are_signed(client):
    link = client.get("/v1/qn_targets/HOMO_SAPIENS").json()["s3_url"]
    path = link.replace("http://testserver", "")
    got = client.get(path)
    assert got.status_code == 200 and got.content == b"1.0\n2.0\n"
    assert (
        client.get("/v1/qn_targets/MUS_MUSCULUS").json()["size_in_bytes"] is None
    )  # recorded, not in the store
    forged = path.rsplit("signature=", 1)[0] + "signature=" + "0" * 64
    assert client.get(forged).status_code == 403
    expired = path.replace("expires=", "expires=1").split("&signature")[0] + "&signature=00"
    assert client.get(expired).status_code == 403


def test_snapshots_follow_an_atomic_replacement(world, tmp_path):
    path = tmp_path / "wh.duckdb"
    shutil.copy(world["warehouse"], path)
    snaps = Snapshots(path, "file:///store", check_seconds=0.0)
    old = snaps.current()
    with old.cursor() as cur:
        before = cur.execute("SELECT count(*) FROM api_experiments").fetchone()[0]
        new = tmp_path / "wh.building"
        shutil.copy(path, new)
        with duckdb.connect(str(new)) as con:
            con.execute("INSERT INTO experiments (accession, title) VALUES ('GSE424242', 'added')")
        os.replace(new, path)  # what lib/warehouse.py does to publish
        fresh = snaps.wait_for(old.identity)
        assert fresh is not old
        with fresh.cursor() as cur2:
            assert cur2.execute("SELECT count(*) FROM api_experiments").fetchone()[0] == before + 1
        assert (
            cur.execute("SELECT count(*) FROM api_experiments").fetchone()[0] == before
        )  # old snapshot intact
    assert old.retired and old.users == 0
    snaps.close()


def test_config_rates_and_modes(monkeypatch):
    assert parse_rate("10/second") == 10 and parse_rate("600/minute") == 10 and parse_rate("0") == 0
    with pytest.raises(ConfigError):
        parse_rate("lots")
    monkeypatch.setenv("REFINE_ASSETS_API_BUILDS", "auto")
    monkeypatch.setenv("DAGSTER_HOME", "/tmp/somewhere")
    assert ApiConfig.from_env().build_mode == "dagster"
    monkeypatch.delenv("DAGSTER_HOME")
    assert ApiConfig.from_env().build_mode == "thread"
    monkeypatch.setenv("REFINE_ASSETS_API_BUILDS", "cluster")
    with pytest.raises(ConfigError):
        ApiConfig.from_env()


def test_deploy_files_run_the_api():
    """docker compose and the Helm chart start ``refine-assets serve`` with its state on a volume and
    probe ``/health``; every ``.Values`` path the chart's templates use exists in its values file."""
    import re

    import yaml

    from refine_assets_tests.conftest import REPO_ROOT

    deploy = REPO_ROOT / "deploy"
    api = yaml.safe_load((deploy / "docker-compose.yaml").read_text())["services"]["api"]
    assert api["command"][:2] == ["refine-assets", "serve"] and "/health" in " ".join(
        api["healthcheck"]["test"]
    )
    state = api["environment"]["REFINE_ASSETS_API_STATE"]
    assert any(v.endswith(f":{state}") for v in api["volumes"])
    assert api["environment"]["REFINE_ASSETS_WAREHOUSE"].startswith("/var/lib/refine_assets/")
    chart = deploy / "helm" / "refine-assets-api"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    templates = "\n".join(p.read_text() for p in sorted((chart / "templates").glob("*.yaml")))
    assert '"refine-assets", "serve"' in templates and "path: /health" in templates
    for ref in set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", templates)):
        node = values
        for part in ref.split("."):
            assert isinstance(node, dict) and part in node, ref
            node = node[part]
