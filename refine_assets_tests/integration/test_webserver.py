"""Smoke test of the UI: the Dagster webserver serves our asset graph and materialized partitions.

The webserver runs in its own process group on 127.0.0.1 and is stopped with SIGINT (started
otherwise, ``dagster`` processes can ignore SIGINT/SIGTERM; see specs/environment.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from refine_assets_tests.conftest import REPO_ROOT
from refine_assets_tests.fixtures_servers import free_port

pytestmark = pytest.mark.slow


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_webserver_shows_asset_graph_and_materialized_partitions(tmp_path: Path, shared_data: Path) -> None:
    env = dict(os.environ)
    env.update(
        {
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "REFINE_ASSETS_HOME": str(tmp_path / "home"),
            "REFINE_ASSETS_HTTP_MODE": "replay",
            "REFINE_ASSETS_REPLAY_CASSETTES": str(shared_data / "cassettes"),
            "REFINE_ASSETS_REPLAY_FILES": json.dumps(
                {
                    "https://ftp.ncbi.nlm.nih.gov/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz": str(
                        shared_data / "geo/geoquery/GSE781_family.soft.gz"
                    )
                }
            ),
        }
    )
    (tmp_path / "dagster_home").mkdir()
    # Materialize one partition into the instance the webserver will read.
    script = (
        "import dagster as dg\n"
        "from refine_assets.definitions import defs\n"
        "inst = dg.DagsterInstance.get()\n"
        "inst.add_dynamic_partitions('experiment', ['GSE781', 'E-MTAB-3050'])\n"
        "r = defs.resolve_job_def('survey_job').execute_in_process(partition_key='GSE781', instance=inst)\n"
        "assert r.success\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=REPO_ROOT, timeout=300)

    port = free_port()
    exe = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(exe), "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as resp:
                    assert b"dagster_webserver_version" in resp.read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    pytest.fail(f"webserver did not come up (rc={proc.poll()}):\n{out[-3000:]}")
                time.sleep(0.5)
        data = _graphql(
            port,
            "{ assetNodes { assetKey { path } groupName partitionStats { numMaterialized numPartitions } } }",
        )
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
        assert {"experiment_survey", "metadata_warehouse"} <= set(nodes)
        assert nodes["experiment_survey"]["groupName"] == "survey"
        stats = nodes["experiment_survey"]["partitionStats"]
        assert stats == {"numMaterialized": 1, "numPartitions": 2}
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode is not None
