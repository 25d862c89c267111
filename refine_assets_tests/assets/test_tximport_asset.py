"""experiment_tximport on the 20 real SRP095529 zebrafish quant.sf files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from refine_assets.defs.processing.tximport import experiment_tximport
from refine_assets.lib.processing.framework import SampleOutcome, read_ledger, write_ledger
from refine_assets.lib.processing.vectors import read_vector
from refine_assets.lib.rnaseq.tximport import read_tx2gene, tximport_files
from refine_assets.lib.storage import open_store
from refine_assets.lib.survey.model import Experiment, Sample, SurveyResult
from refine_assets.lib.survey.pipeline import write_survey
from refine_assets.resources import StorageResource

TX2GENE_KEY = "references/transcriptome_index/DANIO_RERIO_short/genes_to_transcripts.txt.gz"


def _setup(tmp_path: Path, shared_data: Path, n_quantified: int, other_index: tuple[str, ...] = ()):
    runs = sorted(p.name for p in (shared_data / "rnaseq/SRP095529").iterdir())
    store = open_store(str(tmp_path / "storage"))
    samples = [
        Sample(r, "SRP095529", "SRA", organism="DANIO_RERIO", technology="RNA-SEQ", pipeline="SALMON")
        for r in runs
    ]
    write_survey(SurveyResult(Experiment("SRP095529", "SRA"), samples=samples), store)
    store.put_file(TX2GENE_KEY, shared_data / "rnaseq/ZEBRAFISH_INDEX_SHORT/genes_to_transcripts.txt.gz")
    outcomes = []
    for run in runs[:n_quantified]:
        art = store.put_file(
            f"processed/SRP095529/{run}/quant.sf.gz", shared_data / f"rnaseq/SRP095529/{run}/quant.sf.gz"
        )
        index = "DANIO_RERIO_long@1" if run in other_index else "DANIO_RERIO_short@1"
        outcomes.append(
            SampleOutcome(
                run,
                "SRP095529",
                "salmon",
                "succeeded",
                versions={"index": index},
                output_key=art.key,
                output_sha256=art.sha256,
                metrics={"tx2gene_key": TX2GENE_KEY, "mapping_rate": 80.0},
            )
        )
    write_ledger(store, "SRP095529", outcomes)
    return store, runs


def _materialize(tmp_path: Path):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("experiment", ["SRP095529"])
        result = dg.materialize(
            [experiment_tximport],
            partition_key="SRP095529",
            instance=instance,
            resources={"storage": StorageResource(root=str(tmp_path / "storage"))},
        )
        assert result.success
        (mat,) = result.asset_materializations_for_node("experiment_tximport")
        return mat, {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_all_runs_quantified(tmp_path: Path, shared_data: Path) -> None:
    store, runs = _setup(tmp_path, shared_data, 20)
    mat, checks = _materialize(tmp_path)
    assert mat.metadata["status"].value == "done" and mat.metadata["runs_used"].value == 20
    assert checks["tximport_coverage"].passed
    ledger = read_ledger(store, "SRP095529")
    assert {ledger[(r, "tximport")].status for r in runs} == {"succeeded"}
    # same numbers as calling the library directly
    direct = tximport_files(
        [shared_data / f"rnaseq/SRP095529/{r}/quant.sf.gz" for r in runs],
        read_tx2gene(shared_data / "rnaseq/ZEBRAFISH_INDEX_SHORT/genes_to_transcripts.txt.gz"),
        "lengthScaledTPM",
        names=runs,
    )
    values, provenance = read_vector(store, ledger[(runs[3], "tximport")].output_key)
    expected = direct.counts[runs[3]].dropna()
    np.testing.assert_allclose(values.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert provenance["versions"]["n_runs"] == 20


def test_waits_until_enough_runs(tmp_path: Path, shared_data: Path) -> None:
    store, _runs = _setup(tmp_path, shared_data, 5)
    mat, _ = _materialize(tmp_path)
    assert mat.metadata["status"].value == "waiting" and mat.metadata["quantified"].value == 5
    assert not any(step == "tximport" for (_, step) in read_ledger(store, "SRP095529"))


@pytest.mark.parametrize("minority", [("SRR5125621", "SRR5125622")])
def test_never_mixes_indices(tmp_path: Path, shared_data: Path, minority) -> None:
    store, _runs = _setup(tmp_path, shared_data, 20, other_index=minority)
    mat, _ = _materialize(tmp_path)
    assert mat.metadata["runs_used"].value == 18 and mat.metadata["index"].value == "DANIO_RERIO_short@1"
    ledger = read_ledger(store, "SRP095529")
    for run in minority:
        assert (
            ledger[(run, "tximport")].status == "failed" and "re-quantify" in ledger[(run, "tximport")].reason
        )
