"""`refine-assets process ACCESSION` on the shared recordings, from an empty home, as a user runs it:
survey, references (from the offline catalogue folder the demo also writes), processing and the
warehouse, through the Dagster definitions; one JSON object on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from refine_assets_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _process(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REFINE_ASSETS_HOME=str(home))
    env.pop("DAGSTER_HOME", None)
    exe = Path(sys.executable).with_name("refine-assets")
    return subprocess.run(
        [str(exe), "process", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("process_home")


@pytest.mark.parametrize(
    ("accession", "expected"),
    [
        ("GSE781", {"samples": 34, "processed": 34, "failed": 0}),
        ("E-MTAB-3050", {"samples": 5, "processed": 1, "failed": 4}),
        ("E-GEOD-44719", {"samples": 77, "processed": 76, "failed": 1}),
    ],
)
def test_process_prints_summary_and_exits_0(
    home: Path, shared_data: Path, offline_world, accession: str, expected: dict
) -> None:
    extra = (
        ["--replay", str(shared_data / "geo/geoquery/GSE781_family.soft.gz")] if accession == "GSE781" else []
    )
    files = home.parent / f"files-{accession}"
    files.mkdir(exist_ok=True)
    (files / "C30057.CEL.gz").symlink_to(shared_data / "microarray/C30057.CEL.gz")
    (files / "E-GEOD-44719.processed.1.zip").symlink_to(offline_world.processed_zip)
    catalogue = offline_world.catalogue_folder
    proc = _process(
        home,
        accession,
        "--replay",
        str(shared_data / "cassettes"),
        "--replay",
        str(catalogue),
        *extra,
        "--files",
        str(files),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["accession"] == accession
    assert {k: summary[k] for k in expected} == expected
    assert summary["unsupported"] == 0 and summary["pending"] == 0
    assert sum(summary["reasons"].values()) == expected["failed"]
    assert set(summary["runs"]) >= {"processing_job", "warehouse_job"}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(
            "SELECT num_samples, num_processed FROM experiment_summary WHERE accession = ?", [accession]
        ).fetchone()
    assert row == (expected["samples"], expected["processed"])


def test_process_an_sra_study_end_to_end(tmp_path: Path, shared_data: Path, rnaseq_world) -> None:
    """SRA/ENA accessions too: survey, routing, index built on demand, salmon, tximport, warehouse."""
    catalogue_folder = Path(next(iter(rnaseq_world[0].downloads.values()))).parents[1]
    assert (catalogue_folder / "catalogue.json").is_file()
    proc = _process(
        tmp_path / "home",
        "ERP990001",
        "--replay",
        str(shared_data / "cassettes"),
        "--replay",
        str(catalogue_folder),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert {k: summary[k] for k in ("samples", "processed", "failed", "unsupported", "pending")} == {
        "samples": 4,
        "processed": 1,
        "failed": 1,
        "unsupported": 2,
        "pending": 0,
    }
    reasons = " ".join(summary["reasons"])
    assert "QC gate failed: mapping rate" in reasons and "single-cell library" in reasons
    assert "long-read instrument PacBio Sequel II" in reasons


def test_process_refuses_a_malformed_accession_in_one_line(tmp_path: Path) -> None:
    proc = _process(tmp_path / "home", "GSE1; DROP TABLE experiments")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "unrecognized accession" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "home").exists()  # nothing written for a refused request
