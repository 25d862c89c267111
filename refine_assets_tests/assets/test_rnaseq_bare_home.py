"""RNA-seq from an empty REFINE_ASSETS_HOME with replay only, through the Dagster definitions the UI
uses: survey (ENA portal records) -> routing before download -> the transcriptome index located in
Ensembl and built on demand (rsem + salmon) -> salmon through fastq-dump named pipes -> QC gates ->
tximport -> warehouse, with the index's provenance on every vector.

Inputs (``refine_assets/demo/rnaseq.py`` says which are real): a synthetic ENA study ERP990001 whose
runs carry salmon's example reads and the real E-MTAB-1147 ERR127302 reads in real .sra files; an
Ensembl-format genome excerpt built from salmon's 15 real RefSeq transcripts, served under the GRCh38
release-110 URLs; Ensembl's species list and release replayed from refine.bio's recorded REST answers.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from refine_assets.definitions import build_defs
from refine_assets.demo.rnaseq import GENOME_URL, GTF_URL, STUDY
from refine_assets.lib.processing.framework import read_ledger
from refine_assets.lib.processing.vectors import read_vector
from refine_assets.lib.references.artifacts import read_record
from refine_assets.lib.storage import open_store
from refine_assets.settings import Settings, expand_cassettes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data: Path, rnaseq_world):
    catalogue, _override = rnaseq_world
    home = tmp_path_factory.mktemp("rnaseq_home")
    settings = Settings(
        home=home,
        storage_root=str(home / "storage"),
        warehouse_path=home / "warehouse.duckdb",
        http_mode="replay",
        replay_cassettes=expand_cassettes([str(shared_data / "cassettes")]),
        replay_files=dict(catalogue.http_files),
        replay_downloads=dict(catalogue.downloads),
    )
    defs = build_defs(settings)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("experiment", [STUDY])
        result = defs.resolve_job_def("experiment_job").execute_in_process(
            partition_key=STUDY, instance=instance, raise_on_error=False
        )
        assert result.success
        assert defs.resolve_job_def("warehouse_job").execute_in_process(instance=instance).success
        indexes = sorted(
            str(k) for k in instance.get_materialized_partitions(dg.AssetKey("transcriptome_index"))
        )
        yield home, open_store(str(home / "storage")), indexes


def _newest(store):
    out = {}
    for (sample, _step), o in read_ledger(store, STUDY).items():
        if sample not in out or o.recorded_at > out[sample].recorded_at:
            out[sample] = o
    return out


def test_index_built_on_demand_from_ensembl_with_its_provenance(run) -> None:
    _home, store, indexes = run
    assert indexes == ["short|HOMO_SAPIENS"]  # both read sets are < 75 bp: only the k=23 index
    record = read_record(store, "transcriptome_index", "HOMO_SAPIENS_short")
    assert (record["k"], record["ensembl_release"], record["assembly"], record["division"]) == (
        23,
        110,
        "GRCh38",
        "EnsemblMain",
    )
    assert record["transcripts"] == 15  # the pseudogene of the excerpt was filtered out
    sources = record["details"]["sources"]
    assert (
        sources["genome"] == GENOME_URL and sources["gtf"] == GTF_URL and sources["origin"] == "ensembl 110"
    )
    assert record["salmon_version"] and len(record["transcript_set_sha256"]) == 16
    assert record["details"]["pseudogene_features_removed"] == 3


def test_runs_quantified_gated_or_routed_before_download(run) -> None:
    _home, store, _ = run
    ledger = read_ledger(store, STUDY)
    salmon = ledger[("ERR9900011", "salmon")]
    assert salmon.status == "succeeded" and salmon.metrics["mapping_rate"] > 90
    assert salmon.versions["index"] == "HOMO_SAPIENS_short" and salmon.versions["ensembl_release"] == 110
    assert salmon.versions["salmon"] == salmon.versions["index_salmon_version"]
    bad = ledger[("ERR9900012", "salmon")]
    assert bad.status == "failed" and "QC gate failed: mapping rate" in bad.reason
    assert bad.metrics["mean_read_length"] == 72.0 and bad.metrics["length_class"] == "short"
    newest = _newest(store)
    assert (
        newest["ERR9900013"].status == "unsupported" and "single-cell library" in newest["ERR9900013"].reason
    )
    assert (
        newest["ERR9900014"].status == "unsupported" and "long-read instrument" in newest["ERR9900014"].reason
    )
    assert ("ERR9900013", "salmon") not in ledger  # nothing was downloaded or run for them


def test_tximport_over_the_runs_that_can_be_quantified_with_provenance(run) -> None:
    home, store, _ = run
    tx = read_ledger(store, STUDY)[("ERR9900011", "tximport")]
    assert tx.status == "succeeded"
    assert tx.versions["index"] == "HOMO_SAPIENS_short" and tx.versions["assembly"] == "GRCh38"
    assert tx.versions["ensembl_release"] == 110 and tx.versions["salmon"]
    values, provenance = read_vector(store, tx.output_key)
    assert len(values) == 15 and values.sum() > 0
    assert (
        provenance["versions"]["index_version"]
        == read_record(store, "transcriptome_index", "HOMO_SAPIENS_short")["version"]
    )
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(
            "SELECT num_samples, num_processed, num_failed, num_unsupported FROM experiment_summary "
            "WHERE accession = ?",
            [STUDY],
        ).fetchone()
    assert row == (4, 1, 1, 2)
