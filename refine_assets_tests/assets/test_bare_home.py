"""From an empty REFINE_ASSETS_HOME with replay only (no configured reference path) through the Dagster
definitions the UI uses: references are located in the (replayed) Bioconductor, Brainarray and NCBI
catalogues, downloaded and built while the experiments are processed.

Inputs: the recorded ArrayExpress responses and real files of ``../shared/data`` (E-MTAB-3050's real
C30057 array, GSE781's real family SOFT), and the offline world of ``offline_fixtures.py`` (packages in
the real formats; which parts are real data and which are generated is listed there).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from refine_assets.definitions import build_defs
from refine_assets.lib.processing.framework import read_ledger
from refine_assets.lib.processing.vectors import read_vector
from refine_assets.lib.references.artifacts import read_record
from refine_assets.lib.storage import open_store
from refine_assets.lib.survey.geo import family_soft_url
from refine_assets.settings import Settings, expand_cassettes
from refine_assets_tests.offline_fixtures import PROCESSED_ZIP_URL, SERIES

pytestmark = pytest.mark.slow

EXPERIMENTS = ("GSE781", "E-MTAB-3050", SERIES, "E-GEOD-44719")


def _settings(home: Path, shared_data: Path, world) -> Settings:
    return Settings(
        home=home,
        storage_root=str(home / "storage"),
        warehouse_path=home / "warehouse.duckdb",
        http_mode="replay",
        replay_cassettes=expand_cassettes([str(shared_data / "cassettes")]),
        replay_files={
            family_soft_url("GSE781"): str(shared_data / "geo/geoquery/GSE781_family.soft.gz"),
            **world.http_files(),
        },
        replay_downloads=world.downloads(shared_data),
    )


@pytest.fixture(scope="module")
def bare_home_run(tmp_path_factory, shared_data: Path, offline_world):
    home = tmp_path_factory.mktemp("bare_home")
    assert not any(home.iterdir())
    defs = build_defs(_settings(home, shared_data, offline_world))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("experiment", list(EXPERIMENTS))
        for acc in EXPERIMENTS:
            result = defs.resolve_job_def("experiment_job").execute_in_process(
                partition_key=acc, instance=instance, raise_on_error=False
            )
            assert result.success, acc
        assert defs.resolve_job_def("warehouse_job").execute_in_process(instance=instance).success
        materialized = {
            key: sorted(
                instance.get_materialized_partitions(dg.AssetKey(key))  # type: ignore[arg-type]
            )
            for key in (
                "affy_probe_table",
                "brainarray_probes",
                "platform_annotation",
                "illumina_annotation",
                "gene_crosswalk",
            )
        }
        yield home, open_store(str(home / "storage")), materialized


def _outcomes(store, experiment):
    ledger = read_ledger(store, experiment)
    newest = {}
    for (sample, _step), o in ledger.items():
        if sample not in newest or o.recorded_at > newest[sample].recorded_at:
            newest[sample] = o
    return newest


def test_references_were_provisioned_and_reported_as_materializations(bare_home_run) -> None:
    _home, store, materialized = bare_home_run
    assert materialized == {
        "affy_probe_table": ["hgu95av2"],
        "brainarray_probes": ["hgu95av2"],
        "platform_annotation": [],  # the Brainarray mapping needs no manufacturer annotation
        "illumina_annotation": ["illuminaHumanv3"],
        "gene_crosswalk": ["HOMO_SAPIENS"],
    }
    probes = read_record(store, "probes", "hgu95av2")
    assert probes["source"]["origin"] == "bioconductor 3.20" and probes["source_url"].endswith(
        "/3.20/data/annotation/src/contrib/hgu95av2probe_1.60.0.tar.gz"
    )
    assert probes["details"]["probes"] == 199084
    crosswalk = read_record(store, "crosswalk", "HOMO_SAPIENS")
    assert (
        crosswalk["source"]["package"] == "org.Hs.eg.db"
        and crosswalk["source"]["package_version"] == "3.16.0"
    )


def test_gse781_submitter_processed_34_of_34(bare_home_run) -> None:
    _home, store, _m = bare_home_run
    out = _outcomes(store, "GSE781")
    assert len(out) == 34 and {o.status for o in out.values()} == {"succeeded"}
    assert {o.step for o in out.values()} == {"submitter_processed"}


def test_e_mtab_3050_raw_array_genes_from_brainarray_probesets(bare_home_run) -> None:
    _home, store, _m = bare_home_run
    out = _outcomes(store, "E-MTAB-3050")
    ok = out["E-MTAB-3050-1007409-C30057"]
    assert ok.status == "succeeded" and ok.step == "affy_scan"
    mapping = ok.metrics["gene_mapping"]
    assert mapping["mapping"] == "brainarray" and mapping["package"] == "hgu95av2hsensgprobe"
    assert ok.versions["brainarray"] and ok.versions["probe_table"] and ok.versions["annotation"] is None
    genes, provenance = read_vector(store, ok.output_key)
    brainarray = read_record(store, "brainarray", "hgu95av2")
    assert len(genes) == brainarray["details"]["probesets"] and genes.index.str.match(r"^ENSG\d{11}$").all()
    assert provenance["method"] == "SCANfast+Brainarray"
    # the other four arrays' raw and processed files are not in the recordings: each reason names the URL
    for sample, o in out.items():
        if sample != ok.sample_accession:
            assert o.status == "failed"
            assert "E-MTAB-3050.raw.1.zip: not available offline" in o.reason
            assert "E-MTAB-3050.processed.1.zip: not available offline" in o.reason


def test_illumina_geo_series_nec_scan_with_detected_platform(bare_home_run, offline_world) -> None:
    _home, store, _m = bare_home_run
    out = _outcomes(store, SERIES)
    samples = offline_world.series_samples
    for s in samples[:-1]:
        o = out[s.accession]
        assert o.status == "succeeded" and o.step == "illumina_scan", o.reason
        assert o.metrics["platform_detection"]["detected_platform"] == "illuminaHumanv3"
        genes, _ = read_vector(store, o.output_key)
        assert len(genes) > 500 and genes.index.str.startswith("ENSG").all()
    missing = out[samples[-1].accession]
    assert missing.status == "failed" and "column" in missing.reason


def test_e_geod_44719_illumina_submitter_tables(bare_home_run, offline_world) -> None:
    _home, store, _m = bare_home_run
    out = _outcomes(store, "E-GEOD-44719")
    assert len(out) == 77
    failed = {s: o for s, o in out.items() if o.status != "succeeded"}
    assert len(failed) == 1
    (only,) = failed.values()
    assert offline_world.processed_missing[0] in only.reason and "no member named" in only.reason
    ok = next(o for o in out.values() if o.status == "succeeded")
    assert ok.step == "submitter_processed" and ok.metrics["mapping"]["id_type"] == "ensembl"
    genes, _ = read_vector(store, ok.output_key)
    assert genes.index.str.startswith("ENSG").all() and len(genes) > 500
    assert PROCESSED_ZIP_URL.rsplit("/", 1)[-1] in ok.metrics["source_file"] or ok.metrics["source_file"]


def test_warehouse_lists_the_references_and_summaries(bare_home_run) -> None:
    home, _store, _m = bare_home_run
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        kinds = con.execute("SELECT kind, name FROM reference_artifacts ORDER BY 1, 2").fetchall()
        summary = dict(con.execute("SELECT accession, num_processed FROM experiment_summary").fetchall())
    assert ("brainarray", "hgu95av2") in kinds and ("illumina", "illuminaHumanv3") in kinds
    assert summary == {"GSE781": 34, "E-MTAB-3050": 1, SERIES: 4, "E-GEOD-44719": 76}
