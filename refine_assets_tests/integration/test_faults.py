"""Fault tolerance: a run killed mid-way and re-run gives the same outputs, nothing half-written;
a corrupt input fails permanently with its reason in the ledger while its siblings succeed."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from refine_assets.lib.processing.fetch import ReplayFetcher
from refine_assets.lib.processing.framework import process_samples, read_ledger
from refine_assets.lib.processing.inputs import load_sample_inputs
from refine_assets.lib.processing.registry import ProcessingEnv, build_processors
from refine_assets.lib.references.crosswalks import build_crosswalk_reference
from refine_assets.lib.storage import open_store
from refine_assets.lib.survey.geo import family_soft_url
from refine_assets_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys
import dagster as dg
from refine_assets.definitions import defs
inst = dg.DagsterInstance.get()
inst.add_dynamic_partitions('experiment', ['GSE781'])
inst.add_dynamic_partitions('organism', ['HOMO_SAPIENS'])
defs.resolve_job_def('survey_job').execute_in_process(partition_key='GSE781', instance=inst)
defs.resolve_job_def('crosswalk_job').execute_in_process(partition_key='HOMO_SAPIENS', instance=inst)
print('PROCESSING', flush=True)
r = defs.resolve_job_def('processing_job').execute_in_process(partition_key='GSE781', instance=inst)
print('DONE', r.success, flush=True)
"""


def _env(tmp: Path, shared: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(tmp / "dh"),
        REFINE_ASSETS_HOME=str(tmp / "home"),
        REFINE_ASSETS_HTTP_MODE="replay",
        REFINE_ASSETS_REPLAY_FILES=json.dumps(
            {family_soft_url("GSE781"): str(shared / "geo/geoquery/GSE781_family.soft.gz")}
        ),
        REFINE_ASSETS_REFERENCE_SOURCES=json.dumps(
            {"crosswalks": {"HOMO_SAPIENS": str(shared / "annotation/human_gene_ids.tsv.gz")}}
        ),
    )
    (tmp / "dh").mkdir(parents=True, exist_ok=True)
    return env


def _outputs(storage: Path) -> dict[str, bytes]:
    """Every published vector's content (Parquet values only, not timestamps)."""
    out = {}
    for p in sorted((storage / "processed" / "GSE781").glob("GSM*.parquet")):
        out[p.name] = pq.read_table(p).to_pandas().to_csv().encode()
    return out


def test_killed_run_then_rerun_gives_identical_outputs(tmp_path: Path, shared_data: Path) -> None:
    # reference: an uninterrupted run
    ref = tmp_path / "ref"
    subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=_env(ref, shared_data),
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    expected = _outputs(ref / "home" / "storage")
    assert len(expected) == 34

    # killed run: SIGKILL the whole process group shortly after processing started
    run = tmp_path / "run"
    env = _env(run, shared_data)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("PROCESSING"):
            break
    deadline = time.monotonic() + 60
    storage = run / "home" / "storage" / "processed" / "GSE781"
    while time.monotonic() < deadline and len(list(storage.glob("GSM*.parquet"))) < 5:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = list(storage.glob("GSM*.parquet"))
    assert 0 < len(partial) < 34, "the kill must land mid-way"
    for p in partial:  # whatever was published is complete (atomic writes)
        assert pq.read_table(p).num_rows > 1000
    assert not (storage / "ledger.parquet").exists()

    # re-run: completes, same outputs, nothing duplicated
    subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=REPO_ROOT, check=True, capture_output=True, timeout=600
    )
    assert _outputs(run / "home" / "storage") == expected
    ledger = read_ledger(open_store(str(run / "home" / "storage")), "GSE781")
    assert len(ledger) == 34 and {o.status for o in ledger.values()} == {"succeeded"}


def test_corrupt_input_fails_permanently_with_reason(tmp_path: Path, shared_data: Path) -> None:
    from refine_assets.lib.http import ReplayHttpClient
    from refine_assets.lib.survey.pipeline import run_survey

    store = open_store(str(tmp_path / "s"))
    client = ReplayHttpClient(cassettes=[shared_data / "cassettes/surveyor.array_express.survey.yaml.gz"])
    run_survey("E-MTAB-3050", client, store)
    corrupt = tmp_path / "C30058.CEL.gz"
    raw = gzip.decompress((shared_data / "microarray/C30057.CEL.gz").read_bytes())
    corrupt.write_bytes(gzip.compress(raw[: len(raw) // 2]))  # truncated in the INTENSITY section
    build_crosswalk_reference(store, "HOMO_SAPIENS", shared_data / "annotation/human_gene_ids.tsv.gz", "x")
    samples = [
        s for s in load_sample_inputs(store, "E-MTAB-3050") if s.accession.endswith(("C30057", "C30058"))
    ]
    for s in samples:  # no processed-file fallback for this test
        s.has_submitter_table = False
    fetcher = ReplayFetcher({"C30057.CEL": shared_data / "microarray/C30057.CEL.gz", "C30058.CEL": corrupt})
    env = ProcessingEnv(store, fetcher, tmp_path, samples=samples)
    outcomes = {o.sample_accession: o for o in process_samples(samples, build_processors(env), store)}
    bad = outcomes["E-MTAB-3050-1007409-C30058"]
    assert bad.status == "failed" and "C30058.CEL.gz" in bad.reason and bad.metrics == {"transient": False}
    # the healthy sibling got as far as its references allow (not built, and this environment has no
    # source resolver: the reason names the reference)
    good = outcomes["E-MTAB-3050-1007409-C30057"]
    assert good.status == "failed" and "affy_probe_table[hgu95av2]" in good.reason
