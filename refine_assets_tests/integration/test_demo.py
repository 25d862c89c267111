"""The README's main command: `refine-assets demo` on a clean home, real Debian demo data included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from refine_assets_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def test_demo_runs_main_job_and_is_idempotent(tmp_path: Path, shared_data: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs apt-get and dpkg-deb (Debian) to fetch the demo data")
    env = dict(
        os.environ, REFINE_ASSETS_HOME=str(tmp_path / "home"), REFINE_ASSETS_SHARED_DATA=str(shared_data)
    )
    env.pop("DAGSTER_HOME", None)
    exe = Path(sys.executable).with_name("refine-assets")
    for _ in range(2):  # second run: cached demo data, same partitions, warehouse unchanged
        proc = subprocess.run(
            [str(exe), "demo"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "surveyed and processed GSE781" in proc.stdout and "FAILED" not in proc.stdout
    home = tmp_path / "home"
    records = json.loads((home / "demo_data/demo_data.json").read_text())
    assert records["GSE781_family.soft.gz"]["package"] == "r-bioc-geoquery"
    assert records["ERR127302_1_subset.fastq.gz"]["version"]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        counts = dict(con.execute("SELECT accession, num_samples FROM experiment_summary").fetchall())
        assert counts["GSE781"] == 34 and counts["E-MTAB-3050"] == 5 and counts["SRP068364"] == 4
        assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == sum(counts.values())
    # the Dagster instance holds the materialized partitions the UI shows
    assert (home / "dagster_home" / "dagster.yaml").is_file()
    assert (home / "dagster_home" / "storage").is_dir()
