"""The README's main command: `refine-assets demo` on a clean home, real Debian demo data included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest

from refine_assets_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def test_demo_runs_main_job_and_is_idempotent(tmp_path: Path, shared_data: Path, rscript: str) -> None:
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
        assert "processing_job[GSE781] done" in proc.stdout and "FAILED" not in proc.stdout
    home = tmp_path / "home"
    records = json.loads((home / "demo_data/demo_data.json").read_text())
    assert records["GSE781_family.soft.gz"]["package"] == "r-bioc-geoquery"
    assert records["ERR127302_1_subset.fastq.gz"]["version"]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        counts = dict(con.execute("SELECT accession, num_samples FROM experiment_summary").fetchall())
        assert counts["GSE781"] == 34 and counts["E-MTAB-3050"] == 5 and counts["SRP068364"] == 4
        assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == sum(counts.values())
        processed = dict(con.execute("SELECT accession, num_processed FROM experiment_summary").fetchall())
        assert processed["GSE781"] == 34  # submitter-processed fallback, offline
        assert processed["E-MTAB-3050"] == 1  # the real C30057 array through SCANfast
        refs = {r[0] for r in con.execute("SELECT kind FROM reference_artifacts").fetchall()}
        # located in the (replayed) catalogues and built on demand: none was configured by hand
        # (no manufacturer annotation: the real array is mapped through its Brainarray package)
        assert refs == {
            "probes",
            "brainarray",
            "crosswalk",
            "qn_targets",
            "transcriptome_index",
        }
        # built on demand for the offline RNA-seq study ERP990001: its reads are 50 and 72 bp, so only
        # the short (k=23) index is needed, from the Ensembl-format genome excerpt under its real URL
        indices = con.execute(
            "SELECT name, details->>'$.sources.genome' FROM reference_artifacts "
            "WHERE kind = 'transcriptome_index' ORDER BY name"
        ).fetchall()
        assert [n for n, _ in indices] == ["HOMO_SAPIENS_short"]
        assert indices[0][1].endswith(
            "/release-110/fasta/homo_sapiens/dna/Homo_sapiens.GRCh38.dna.primary_assembly.fa.gz"
        )
        assert processed["ERP990001"] == 1  # salmon's example reads; ERR127302 fails the mapping gate
        # one dataset per demo run: GSE781 (34) + the processed E-MTAB-3050 array, zipped in storage
        datasets = con.execute("SELECT num_samples, num_filtered, url FROM datasets").fetchall()
        assert len(datasets) == 2 and all(d[0] == 35 and d[1] == 4 for d in datasets)
        zip_path = Path(datasets[0][2].removeprefix("file://"))
        with zipfile.ZipFile(zip_path) as zf:
            names = set(zf.namelist())
        assert {"GSE781/GSE781.tsv", "E-MTAB-3050/E-MTAB-3050.tsv"} <= names
        # recorded Salmon outputs -> tximport -> zebrafish target, compendium and quantpendium; the
        # second run changes no input, so no second version
        assert processed["SRP095529"] == 20
        versions = con.execute(
            "SELECT kind, organism, version, num_samples FROM compendia ORDER BY kind"
        ).fetchall()
        assert versions == [("compendium", "DANIO_RERIO", 1, 20), ("quantpendium", "DANIO_RERIO", 1, 20)]
        # QN targets: human from 1 raw array (< 100): built, flagged, refused; zebrafish under the
        # demo's recorded minimum of 20
        targets = dict(
            con.execute(
                "SELECT name, details->>'$.flagged' FROM reference_artifacts WHERE kind = 'qn_targets'"
            ).fetchall()
        )
        assert targets == {"HOMO_SAPIENS": "true", "DANIO_RERIO": "false"}
        url = con.execute("SELECT url FROM compendia WHERE kind = 'compendium'").fetchall()[0][0]
        matrix = Path(url.removeprefix("file://")) / "matrix"
        n = con.execute(f"SELECT count(DISTINCT sample) FROM read_parquet('{matrix}/*.parquet')").fetchall()
        assert n[0][0] == 20
    _demo_downloads_pass_refinebio_readers(home, zip_path, exe, env, rscript, tmp_path)
    # the Dagster instance holds the materialized partitions the UI shows
    assert (home / "dagster_home" / "dagster.yaml").is_file()
    assert (home / "dagster_home" / "storage").is_dir()


TP53_QUERY = """
SELECT e.sample_accession, e.experiment_accession, h.refinebio_sex, h.refinebio_specimen_part,
       e.value, e.value_scale
FROM expression e
JOIN samples_harmonized h
  ON h.refinebio_accession_code = e.sample_accession AND h.experiment_accession = e.experiment_accession
WHERE e.gene_id = 'ENSG00000141510' AND e.organism = 'HOMO_SAPIENS'
ORDER BY e.sample_accession
"""


def _demo_downloads_pass_refinebio_readers(
    home: Path, demo_zip: Path, exe: Path, env: dict, rscript: str, tmp_path: Path
) -> None:
    """The demo's GSE781 + E-MTAB-3050 zip and a species zip of the demo warehouse read by refine.bio's
    readers (contract, pandas, R as refinebio-examples); the README's expression query on the demo."""
    from refine_assets_tests.refinebio_readers import check_contract, read_with_pandas, read_with_r

    assert demo_zip.stat().st_mode & 0o777 == 0o644
    check_contract(demo_zip)
    pandas = read_with_pandas(demo_zip)
    r = read_with_r(demo_zip, rscript, tmp_path / "r-demo")
    assert len(r["GSE781"]["samples"]) == 34 and r["GSE781"]["samples"] == pandas["GSE781"]["samples"]
    assert r["GSE781"]["samples"][0].startswith("GSM")  # selected by metadata$geo_accession
    request = tmp_path / "species.json"
    request.write_text(
        json.dumps(
            {
                "data": {"GSE781": "ALL", "E-MTAB-3050": "ALL", "SRP095529": "ALL"},
                "aggregate_by": "SPECIES",
                "quantile_normalize": False,  # the demo's human QN target is below its minimum
            }
        )
    )
    species_zip = tmp_path / "species.zip"
    proc = subprocess.run(
        [
            str(exe),
            "dataset",
            str(request),
            "-o",
            str(species_zip),
            "--no-record",
            "--warehouse",
            str(home / "warehouse.duckdb"),
            "--storage",
            str(home / "storage"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    agg = check_contract(species_zip)
    assert agg["aggregate_by"] == "SPECIES"
    species = read_with_r(species_zip, rscript, tmp_path / "r-species")
    assert set(species) == {"HOMO_SAPIENS", "DANIO_RERIO"}
    assert len(species["HOMO_SAPIENS"]["samples"]) == 35 and len(species["DANIO_RERIO"]["samples"]) == 20
    assert read_with_pandas(species_zip)["DANIO_RERIO"]["samples"] == species["DANIO_RERIO"]["samples"]
    # the README's query: TP53 across all processed human samples, one row per sample, read-only CLI
    out = subprocess.run(
        [str(exe), "warehouse", str(home / "warehouse.duckdb"), "--format", "json", "--sql", TP53_QUERY],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    samples = [row["sample_accession"] for row in rows]
    assert len(samples) == len(set(samples)) >= 18  # GSE781's 17 U133A samples + the C30057 array
    assert {row["value_scale"] for row in rows} == {"log2", "scan"}
