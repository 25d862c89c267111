"""experiment_processed on real data with references given as local overrides (an offline site):
GSE781 through the submitter-processed path (34 samples) and E-MTAB-3050's real C30057 array through
SCANfast with the manufacturer mapping (the replayed Brainarray index lists no package for the chip).
The bare-home path (nothing configured, references found in the catalogues) is test_bare_home.py."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from refine_assets.defs.processing.assets import experiment_processed
from refine_assets.defs.references.assets import affy_probe_table, gene_crosswalk, platform_annotation
from refine_assets.defs.survey.assets import experiment_survey
from refine_assets.defs.warehouse.assets import metadata_warehouse
from refine_assets.lib.processing.framework import read_ledger
from refine_assets.lib.processing.vectors import read_vector
from refine_assets.lib.references.brainarray import ensg_index_url
from refine_assets.lib.references.package_writer import brainarray_index_page
from refine_assets.lib.storage import open_store
from refine_assets.lib.survey.geo import family_soft_url
from refine_assets.resources import ReplayHttpResource, StorageResource
from refine_assets.resources.fetch import ReplayFetcherResource
from refine_assets.resources.references import ReferenceSourcesResource
from refine_assets.resources.warehouse import WarehouseResource

pytestmark = pytest.mark.slow


def _brainarray_page_without_hgu95av2(tmp_path: Path) -> Path:
    """A Brainarray ENSG page (real layout) that lists another chip only: hgu95av2 has no package."""
    path = tmp_path / "ensg.asp"
    path.write_text(
        brainarray_index_page(
            [
                (
                    "Hs",
                    "HG-U133A",
                    "/customcdf/22.0.0/ensg.download/hgu133ahsensgcdf_22.0.0.tar.gz",
                    "/customcdf/22.0.0/ensg.download/hgu133ahsensgprobe_22.0.0.tar.gz",
                )
            ],
            "22.0.0",
        )
    )
    return path


def _resources(tmp_path: Path, shared_data: Path, crosswalk: Path) -> dict:
    return {
        "http": ReplayHttpResource(
            cassettes=[str(shared_data / "cassettes/surveyor.array_express.survey.yaml.gz")],
            files={
                family_soft_url("GSE781"): str(shared_data / "geo/geoquery/GSE781_family.soft.gz"),
                ensg_index_url(): str(_brainarray_page_without_hgu95av2(tmp_path)),
            },
        ),
        "storage": StorageResource(root=str(tmp_path / "storage")),
        "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
        "fetcher": ReplayFetcherResource(
            files={"C30057.CEL": str(shared_data / "microarray/C30057.CEL.gz")},
            work_dir=str(tmp_path / "work"),
        ),
        "reference_sources": ReferenceSourcesResource(
            probe_tables={"hgu95av2": str(shared_data / "probes/HG-U95Av2_probes.tsv.gz")},
            annotations={"hgu95av2": str(shared_data / "probes/HG-U95Av2_probesets_genbank.tsv.gz")},
            crosswalks={"HOMO_SAPIENS": str(crosswalk)},
        ),
    }


def _run(assets, resources, instance, partition=None):
    result = dg.materialize(assets, partition_key=partition, resources=resources, instance=instance)
    assert result.success
    return result


def test_gse781_submitter_processed_end_to_end(tmp_path: Path, shared_data: Path) -> None:
    resources = _resources(tmp_path, shared_data, shared_data / "annotation/human_gene_ids.tsv.gz")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("experiment", ["GSE781"])
        instance.add_dynamic_partitions("organism", ["HOMO_SAPIENS"])
        _run([experiment_survey], resources, instance, "GSE781")
        _run([gene_crosswalk], resources, instance, "HOMO_SAPIENS")
        result = _run([experiment_processed], resources, instance, "GSE781")
        (mat,) = result.asset_materializations_for_node("experiment_processed")
        assert mat.metadata["num_succeeded"].value == 34 and mat.metadata["num_failed"].value == 0
        store = open_store(str(tmp_path / "storage"))
        ledger = read_ledger(store, "GSE781")
        outcomes = [o for (s, step), o in ledger.items()]
        assert {o.step for o in outcomes} == {
            "submitter_processed"
        }  # raw CELs are not available offline: fallback
        assert all("not available offline" in o.reason for o in outcomes)
        gsm = ledger[("GSM11805", "submitter_processed")]
        assert gsm.metrics["submitter_processed"] is True
        assert gsm.metrics["mapping"]["coverage"] > 0.5 and gsm.metrics["log2"]["transformed"] is True
        values, provenance = read_vector(store, gsm.output_key)
        assert values.index.str.startswith("ENSG").all() and len(values) > 10000
        assert provenance["step"] == "submitter_processed" and provenance["versions"]["crosswalk"]
        # idempotent: a second run recomputes nothing
        _run([experiment_processed], resources, instance, "GSE781")
        again = read_ledger(store, "GSE781")
        assert again[("GSM11805", "submitter_processed")].recorded_at == gsm.recorded_at
        _run([metadata_warehouse], resources, instance)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute(
            "SELECT num_samples, num_processed FROM experiment_summary WHERE accession='GSE781'"
        ).fetchone() == (34, 34)


def _processed_file(tmp_path: Path, shared_data: Path) -> Path:
    """An ArrayExpress derived data file (MAGE-TAB two-line header) over the real HG-U95Av2 probesets;
    the values are made up (no real AE processed file ships with the test data)."""
    import gzip

    import numpy as np

    with gzip.open(shared_data / "probes/HG-U95Av2_probesets_genbank.tsv.gz", "rt") as fh:
        ids = [ln.split("\t")[0] for ln in fh][1:]
    values = np.random.default_rng(5).lognormal(6, 1.5, len(ids))
    path = tmp_path / "C30058.txt"
    path.write_text(
        "Hybridization REF\tC30058\nReporter REF\tAFFYMETRIX_VALUE\n"
        + "".join(f"{i}\t{v:.1f}\n" for i, v in zip(ids, values, strict=True))
    )
    return path


def test_real_cel_through_scanfast_to_genes(tmp_path: Path, shared_data: Path, demo_data: Path) -> None:
    resources = _resources(tmp_path, shared_data, demo_data / "org.Hs.eg.db.tar.gz")
    resources["fetcher"] = ReplayFetcherResource(
        files={
            "C30057.CEL": str(shared_data / "microarray/C30057.CEL.gz"),
            "C30058.txt": str(_processed_file(tmp_path, shared_data)),
        },
        work_dir=str(tmp_path / "work"),
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("experiment", ["E-MTAB-3050"])
        instance.add_dynamic_partitions("organism", ["HOMO_SAPIENS"])
        instance.add_dynamic_partitions("affy_platform", ["hgu95av2"])
        _run([experiment_survey], resources, instance, "E-MTAB-3050")
        _run([affy_probe_table, platform_annotation], resources, instance, "hgu95av2")
        _run([gene_crosswalk], resources, instance, "HOMO_SAPIENS")
        result = _run([experiment_processed], resources, instance, "E-MTAB-3050")
        (mat,) = result.asset_materializations_for_node("experiment_processed")
        assert mat.metadata["num_succeeded"].value == 2 and mat.metadata["num_failed"].value == 3
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        assert checks["affymetrix_qc"].passed  # the real array: no zero intensities, EM converged
        assert checks["affymetrix_qc"].metadata["arrays"].value == 1
        assert not checks["samples_processed"].passed  # 2 of 5: raw files of the others are offline
        assert checks["samples_processed"].metadata["processed"].value == 2
    store = open_store(str(tmp_path / "storage"))
    ledger = read_ledger(store, "E-MTAB-3050")
    ok = ledger[("E-MTAB-3050-1007409-C30057", "affy_scan")]
    assert ok.status == "succeeded"
    m = ok.metrics
    assert (
        m["chip_type"] == "HG_U95Av2"
        and m["header_platform_code"] == "hgu95av2"
        and not m["platform_mismatch"]
    )
    assert m["n_probes"] == 199084 and m["zero_intensity_fraction"] == 0.0
    assert m["gene_mapping"]["id_type"] == "genbank" and m["gene_mapping"]["coverage"] > 0.6
    assert m["gene_mapping"]["mapping"] == "manufacturer"
    assert m["gene_mapping"]["brainarray_absent"] == "Brainarray has no ENSG package for this chip"
    genes, _ = read_vector(store, ok.output_key)
    probesets, _ = read_vector(store, "processed/E-MTAB-3050/E-MTAB-3050-1007409-C30057.probesets.parquet")
    assert len(probesets) == 12453 and genes.index.str.startswith("ENSG").all()
    # C30058: raw CEL offline -> falls back to its ArrayExpress processed file
    fallback = ledger[("E-MTAB-3050-1007409-C30058", "submitter_processed")]
    assert fallback.status == "succeeded" and "not available offline" in fallback.reason
    assert (
        fallback.metrics["source_file"] == "C30058.txt"
        and fallback.metrics["mapping"]["id_type"] == "genbank"
    )
    failed = ledger[("E-MTAB-3050-1009003-C30059", "submitter_processed")]
    assert failed.status == "failed" and "not available offline" in failed.reason
