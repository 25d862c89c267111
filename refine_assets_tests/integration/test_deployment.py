"""The shared deployment on this machine: PostgreSQL + S3 (moto) + code server + webserver + daemon.

What runs, all on 127.0.0.1, each server in its own process group and stopped with SIGINT:

* a real PostgreSQL server from the Debian package (``initdb`` + ``postgres`` found under
  ``/usr/lib/postgresql/<version>/bin``), in a fresh cluster with password (scram) authentication.
  PostgreSQL refuses to run as root: when the tests run as root, the cluster directory is created
  outside pytest's private tmp folder and owned by ``nobody``, and ``initdb``/``postgres`` are started
  with ``subprocess.Popen(user=, group=, extra_groups=[])`` (what ``runuser -u nobody`` does);
* moto's S3 server (session fixture ``moto_server``), holding both the artifact store
  (``REFINE_ASSETS_STORAGE_ROOT=s3://<bucket>/refine``) and Dagster's compute logs;
* ``dagster code-server start -m refine_assets.definitions`` (the code location, as in compose);
* ``dagster-webserver`` and ``dagster-daemon run``, both with ``deploy/workspace.docker.yaml``.

DAGSTER_HOME holds an unmodified copy of ``deploy/dagster.yaml``; every setting reaches it through the
environment variables that file documents. Runs are submitted through the webserver's GraphQL API
(``DagsterGraphQLClient.submit_job_execution``) while the daemon is still stopped, so they must wait
as QUEUED; then the daemon dequeues them and launches them through the code server. They are tagged
``refine_assets/size=large`` (limited to one at a time by the deploy file) with decreasing
``dagster/priority``, so they run one after the other:

1. ``crosswalk_job[HOMO_SAPIENS]`` (gene-id crosswalk from the shared org.Hs.eg.db extract);
2. ``experiment_job[E-MTAB-3050]`` (ArrayExpress, replayed from the recorded cassette);
3. ``experiment_job[GSE781]`` (GEO family SOFT; its 34 samples are processed to genes);
4. ``warehouse_job`` (pool ``warehouse``).

Checked: every run succeeded after passing through the queue and the runs never overlapped, the run
records, materializations and partitions are in PostgreSQL, surveys / processed vectors / ledgers /
the crosswalk / every run's compute logs are in the moto bucket, and the DuckDB warehouse lists both
experiments with their S3 manifests.

Needs: PostgreSQL (Debian ``postgresql``), ``dagster-postgres``, moto and the shared data; skips with
the reason when one is missing, fails instead under ``CI=true``.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from refine_assets_tests.conftest import REPO_ROOT
from refine_assets_tests.fixtures_servers import free_port, wait_for_webserver

DEPLOY = REPO_ROOT / "deploy"
BIN = Path(sys.executable).parent
PG_USER = "dagster"
PG_DB = "dagster"
# The test's runs use the in-process executor (run config): one process per run instead of one per
# step keeps the test fast; the queue, the daemon, the launcher and the storages are the deployment's.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGINT to the process group (a clean shutdown for postgres, dagster and moto); SIGKILL late."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL server binaries (``/usr/lib/postgresql/<major>/bin``), or None."""
    found = [
        p.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")
        if (p.parent / "initdb").is_file() and p.parent.parent.name.isdigit()
    ]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server and the (empty) database created for Dagster."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def connect(self):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.dbname
        )


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster on a free 127.0.0.1 port with database ``dagster``."""
    bindir = postgres_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server not installed (Debian package postgresql: /usr/lib/postgresql/*/bin)")
    try:
        import psycopg2
    except ImportError:
        _unavailable("psycopg2 not installed (it comes with dagster-postgres)")
    # Under /tmp, not tmp_path: pytest's root folder is private to the current user (0700) and the
    # server may run as another user.
    root = Path(tempfile.mkdtemp(prefix="refine-assets-pg-"))
    as_user: dict = {}
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as nobody
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    password = uuid.uuid4().hex
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if as_user:
        os.chown(pwfile, as_user["user"], as_user["group"])
    data = root / "data"
    log_path = root / "postgres.log"
    init = subprocess.run(
        [
            str(bindir / "initdb"),
            *("-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}"),
            *("--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        **as_user,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed ({init.returncode}): {init.stderr[-2000:]}")
    port = free_port()
    with open(log_path, "wb") as log:
        if as_user:
            os.chown(log_path, as_user["user"], as_user["group"])
        proc = subprocess.Popen(
            [
                str(bindir / "postgres"),
                *("-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", ""),
                # a test cluster: durability off for speed
                *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
            ],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                con = psycopg2.connect(
                    host="127.0.0.1", port=port, user=PG_USER, password=password, dbname="postgres"
                )
                break
            except psycopg2.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"postgres did not start (rc={proc.poll()}): {_tail(log_path)}")
                time.sleep(0.1)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE {PG_DB}")
        con.close()
        yield PostgresServer("127.0.0.1", port, PG_USER, password, PG_DB)
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _start(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            cmd, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_for_code_server(port: int, proc: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.health_check_query() == "SERVING" and client.list_repositories():
                return
        except Exception:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"code server did not come up (rc={proc.poll()}): {_tail(log_path)}")
        time.sleep(0.5)


def _wait_for_runs(instance, run_ids: list[str], logs: list[Path], timeout: float = 300) -> None:
    import dagster as dg

    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    while pending:
        for run_id in list(pending):
            run = instance.get_run_by_id(run_id)
            if run is not None and run.is_finished:
                pending.discard(run_id)
                if run.status != dg.DagsterRunStatus.SUCCESS:
                    errors = [
                        e.message
                        for e in instance.all_logs(run_id)
                        if e.is_dagster_event and e.dagster_event.is_failure
                    ]
                    pytest.fail(
                        f"run {run.job_name} {run.tags.get('dagster/partition', '')} ended {run.status}: "
                        f"{errors}\n" + "\n".join(_tail(p) for p in logs)
                    )
        if pending and time.monotonic() > deadline:
            states = {r: instance.get_run_by_id(r).status for r in pending}
            pytest.fail(f"runs not finished: {states}\n" + "\n".join(_tail(p) for p in logs))
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning:gql")  # inside dagster_graphql's client
def test_postgres_s3_daemon_deployment(
    tmp_path: Path,
    shared_data: Path,
    moto_server,
    moto_bucket: str,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        import dagster_postgres  # noqa: F401
    except ImportError:
        _unavailable("dagster-postgres not installed (the shared deployment's instance storage)")
    import dagster as dg
    import duckdb
    from dagster_graphql import DagsterGraphQLClient

    from refine_assets.lib.survey.geo import family_soft_url

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", dagster_home / "dagster.yaml")
    code_port = free_port()
    settings = {
        "DAGSTER_HOME": str(dagster_home),
        # deploy/dagster.yaml
        "DAGSTER_PG_HOST": postgres_server.host,
        "DAGSTER_PG_PORT": str(postgres_server.port),
        "DAGSTER_PG_USER": postgres_server.user,
        "DAGSTER_PG_PASSWORD": postgres_server.password,
        "DAGSTER_PG_DB": postgres_server.dbname,
        "DAGSTER_COMPUTE_LOGS_BUCKET": moto_bucket,
        "DAGSTER_COMPUTE_LOGS_PREFIX": "dagster/compute-logs",
        "AWS_ENDPOINT_URL_S3": moto_server.endpoint_url,
        # deploy/workspace.docker.yaml
        "REFINE_ASSETS_CODE_SERVER_HOST": "127.0.0.1",
        "REFINE_ASSETS_CODE_SERVER_PORT": str(code_port),
        # refine_assets/settings.py: artifacts on S3, recorded HTTP responses, local reference files
        "REFINE_ASSETS_HOME": str(tmp_path / "home"),
        "REFINE_ASSETS_STORAGE_ROOT": f"s3://{moto_bucket}/refine",
        "REFINE_ASSETS_S3_ENDPOINT_URL": moto_server.endpoint_url,
        "REFINE_ASSETS_WAREHOUSE": str(tmp_path / "warehouse" / "warehouse.duckdb"),
        "REFINE_ASSETS_HTTP_MODE": "replay",
        "REFINE_ASSETS_REPLAY_CASSETTES": str(
            shared_data / "cassettes/surveyor.array_express.survey.yaml.gz"
        ),
        "REFINE_ASSETS_REPLAY_FILES": json.dumps(
            {family_soft_url("GSE781"): str(shared_data / "geo/geoquery/GSE781_family.soft.gz")}
        ),
        "REFINE_ASSETS_REFERENCE_SOURCES": json.dumps(
            {"crosswalks": {"HOMO_SAPIENS": str(shared_data / "annotation/human_gene_ids.tsv.gz")}}
        ),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    env = dict(os.environ)
    logs = [tmp_path / "code_server.log", tmp_path / "daemon.log", tmp_path / "webserver.log"]

    code_server = _start(
        [
            *(str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(code_port)),
            *("-m", "refine_assets.definitions", "--location-name", "refine_assets"),
        ],
        env,
        logs[0],
    )
    web_port = free_port()
    webserver = _start(
        [
            str(BIN / "dagster-webserver"),
            *("-w", str(DEPLOY / "workspace.docker.yaml"), "-h", "127.0.0.1", "-p", str(web_port)),
        ],
        env,
        logs[2],
    )
    daemon = None
    try:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            # the deploy file, resolved from the environment
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
            instance.add_dynamic_partitions("experiment", ["E-MTAB-3050", "GSE781"])
            instance.add_dynamic_partitions("organism", ["HOMO_SAPIENS"])

            _wait_for_code_server(code_port, code_server, logs[0])
            wait_for_webserver(web_port, webserver, logs[2])
            client = DagsterGraphQLClient("127.0.0.1", port_number=web_port)
            # the webserver may have tried the code server before it was up
            reload = client.reload_repository_location("refine_assets")
            assert reload.status.name == "SUCCESS", reload

            # Submit everything (GraphQL API of the webserver) before the daemon runs. The runs carry
            # refine_assets/size=large, which deploy/dagster.yaml limits to one run at a time, and
            # dagster/priority sets the order, so the daemon launches them one after the other:
            # references, the two surveys+processing (GSE781 needs the crosswalk), the warehouse.
            plan = [
                ("crosswalk_job", "HOMO_SAPIENS"),
                ("experiment_job", "E-MTAB-3050"),
                ("experiment_job", "GSE781"),
                ("warehouse_job", None),
            ]
            run_ids = [
                client.submit_job_execution(
                    job,
                    run_config=IN_PROCESS,
                    tags={"refine_assets/size": "large", "dagster/priority": str(len(plan) - i)}
                    | ({"dagster/partition": partition} if partition else {}),
                )
                for i, (job, partition) in enumerate(plan)
            ]
            queued = [instance.get_run_by_id(r) for r in run_ids]
            assert [r.status for r in queued] == [dg.DagsterRunStatus.QUEUED] * len(plan)
            assert [(r.job_name, r.tags.get("dagster/partition")) for r in queued] == plan

            daemon = _start(
                [str(BIN / "dagster-daemon"), "run", "-w", str(DEPLOY / "workspace.docker.yaml")],
                env,
                logs[1],
            )
            _wait_for_runs(instance, run_ids, logs)

            # every run went through the queue (enqueued by the coordinator, launched by the daemon),
            # one at a time in priority order: the tag limit held
            for run_id in run_ids:
                types = {
                    e.dagster_event.event_type_value for e in instance.all_logs(run_id) if e.is_dagster_event
                }
                assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_SUCCESS"} <= types, types
            records = {
                r.dagster_run.run_id: r for r in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
            }
            spans = [(records[r].start_time, records[r].end_time) for r in run_ids]
            assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), spans
            processed = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("experiment_processed")), limit=10
            ).records
            meta = {r.partition_key: r.asset_materialization.metadata for r in processed}
            assert meta["GSE781"]["num_succeeded"].value == 34
            assert meta["E-MTAB-3050"]["num_samples"].value == 5
    finally:
        if daemon is not None:
            _stop(daemon)
        _stop(webserver)
        _stop(code_server)

    # PostgreSQL holds the run records, the event log and the dynamic partitions
    con = postgres_server.connect()
    try:
        with con.cursor() as cur:
            cur.execute("SELECT run_id, pipeline_name, status FROM runs")
            runs = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                "AND asset_key = %s",
                (dg.AssetKey("experiment_survey").to_string(),),
            )
            (n_survey_materializations,) = cur.fetchone()
            cur.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'experiment'")
            experiments = {r[0] for r in cur.fetchall()}
    finally:
        con.close()
    assert [runs[r] for r in run_ids] == [(job, "SUCCESS") for job, _ in plan]
    assert n_survey_materializations == 2
    assert experiments == {"E-MTAB-3050", "GSE781"}

    # the artifact store and the compute logs are in the moto bucket
    s3 = moto_server.client()
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=moto_bucket)
        for o in page.get("Contents", [])
    ]
    for key in (
        "refine/surveys/E-MTAB-3050/manifest.json",
        "refine/surveys/E-MTAB-3050/samples.parquet",
        "refine/processed/E-MTAB-3050/ledger.parquet",
        "refine/surveys/GSE781/samples.parquet",
        "refine/processed/GSE781/ledger.parquet",
        "refine/processed/GSE781/GSM11805.parquet",
    ):
        assert key in keys, key
    assert sum(bool(re.fullmatch(r"refine/processed/GSE781/GSM\d+\.parquet", k)) for k in keys) == 34
    assert any(k.startswith("refine/references/crosswalk/HOMO_SAPIENS/") for k in keys)
    log_keys = [k for k in keys if k.startswith("dagster/compute-logs/")]
    assert {r for r in run_ids if any(r in k for k in log_keys)} == set(run_ids), log_keys[:20]

    # the warehouse (local DuckDB file of the code location) lists both experiments from S3
    with duckdb.connect(settings["REFINE_ASSETS_WAREHOUSE"], read_only=True) as con:
        rows = con.execute(
            "SELECT e.accession, s.num_samples, s.num_processed, e.survey_manifest_url "
            "FROM experiments e JOIN experiment_summary s USING (accession) ORDER BY 1"
        ).fetchall()
    assert [(a, n, p) for a, n, p, _ in rows] == [("E-MTAB-3050", 5, 0), ("GSE781", 34, 34)]
    assert all(url.startswith(f"s3://{moto_bucket}/refine/surveys/") for *_, url in rows)


def test_deploy_files_agree_with_each_other() -> None:
    """Static consistency of deploy/: the variables dagster.yaml needs are set by compose, the images
    pin the Dagster versions of the lock file, and Helm uses the same limits and launcher."""
    instance_yaml = (DEPLOY / "dagster.yaml").read_text()
    instance = yaml.safe_load(instance_yaml)
    assert instance["storage"]["postgres"]["postgres_db"]["hostname"] == {"env": "DAGSTER_PG_HOST"}
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["compute_logs"]["class"] == "S3ComputeLogManager"
    instance_vars = set(re.findall(r"env: ([A-Z0-9_]+)", instance_yaml))
    workspace_vars = set(re.findall(r"env: ([A-Z0-9_]+)", (DEPLOY / "workspace.docker.yaml").read_text()))
    assert len(instance_vars) == 7 and len(workspace_vars) == 2, (instance_vars, workspace_vars)

    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    services = compose["services"]
    for name in ("postgres", "s3", "s3-init", "refine_assets", "webserver", "daemon"):
        assert name in services, name
    for name, needed in (
        ("refine_assets", instance_vars),  # its run workers open the instance
        ("webserver", instance_vars | workspace_vars),
        ("daemon", instance_vars | workspace_vars),
    ):
        env = services[name]["environment"]
        assert needed <= set(env), (name, needed - set(env))
    assert services["refine_assets"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["daemon"]["build"]["dockerfile"] == "deploy/Dockerfile.dagster"

    # the webserver/daemon image pins the Dagster release of uv.lock (all processes must match)
    lock = (REPO_ROOT / "uv.lock").read_text()
    locked = dict(re.findall(r'\[\[package\]\]\nname = "(dagster[a-z-]*)"\nversion = "([^"]+)"', lock))
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", (DEPLOY / "Dockerfile.dagster").read_text(), re.M))
    assert args["DAGSTER_VERSION"] == locked["dagster"]
    assert args["DAGSTER_LIBRARIES_VERSION"] == locked["dagster-aws"]
    code_image = (DEPLOY / "Dockerfile").read_text()
    assert "uv sync --frozen" in code_image
    for package in ("salmon", "sra-toolkit", "rsem", "samtools"):
        assert re.search(rf"\b{package}\b", code_image), package

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["computeLogManager"]["type"] == "S3ComputeLogManager"
    assert values["concurrency"]["enabled"] is True

    def tags(limits: list[dict]) -> list:
        return [(x["key"], json.dumps(x.get("value"), sort_keys=True)) for x in limits]

    assert tags(values["concurrency"]["runs"]["tagConcurrencyLimits"]) == tags(
        instance["concurrency"]["runs"]["tag_concurrency_limits"]
    )
    assert values["concurrency"]["pools"]["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert "refine_assets.definitions" in deployment["codeServerArgs"]
