"""Our dataset zips read by refine.bio's readers: its download contract, pandas, and R as the
refinebio-examples notebooks read them (``refine_assets_tests/refinebio_readers.py``).

Every aggregation, with and without QN, every transform, and a quant_sf_only zip. The demo's real
zips (GSE781 + E-MTAB-3050, and a species zip) go through the same checks in ``integration/test_demo.py``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from refine_assets.lib.delivery.dataset import build_dataset
from refine_assets.lib.delivery.targets import build_qn_target
from refine_assets_tests.refinebio_readers import check_contract, read_with_pandas, read_with_r
from refine_assets_tests.unit.test_delivery_dataset import _experiments
from refine_assets_tests.unit.test_delivery_world import HUMAN, MOUSE, ZEBRAFISH, affy, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compat")
    experiments = _experiments()
    # GEO samples as the GEO surveyor records them: geo_field rows (geo_accession ...) and characteristics
    experiments["GSE5"] = [
        affy(
            f"GSM5{i}",
            seed=60 + i,
            attrs=[
                ("title", f"liver {i}", "geo_field"),
                ("geo_accession", f"GSM5{i}", "geo_field"),
                ("tissue", "liver", "geo_characteristics"),
                ("genotype/variation", "control" if i < 3 else "CREB", "geo_characteristics"),
            ],
        )
        for i in range(1, 5)
    ]
    sources = {"E-MTAB-9": "ARRAY_EXPRESS", "SRP1": "SRA", "SRP2": "SRA"}
    for acc, samples in experiments.items():  # every real GEO sample record has its geo_accession
        if sources.get(acc, "GEO") == "GEO" and acc != "GSE5":
            for s in samples:
                s.attrs = [*s.attrs, ("geo_accession", s.accession, "geo_field")]
    store, db = make_world(tmp, experiments, sources=sources)
    build_qn_target(db, store, HUMAN, min_samples=5)
    build_qn_target(db, store, MOUSE, min_samples=3)  # 4 candidates, 3 share the gene set
    build_qn_target(db, store, ZEBRAFISH, min_samples=3)
    return store, db, tmp


REQUESTS = {
    "experiment-qn": {
        "data": {"GSE1": "ALL", "GSE2": "ALL", "E-MTAB-9": "ALL"},
        "aggregate_by": "EXPERIMENT",
    },
    "species-qn-standard": {
        "data": {"GSE1": "ALL", "E-MTAB-9": "ALL", "SRP1": "ALL"},
        "aggregate_by": "SPECIES",
        "scale_by": "STANDARD",
    },
    "all-minmax-no-qn": {
        "data": {"GSE1": ["GSM11", "GSM12"], "GSE2": "ALL"},
        "aggregate_by": "ALL",
        "scale_by": "MINMAX",
        "quantile_normalize": False,
    },
    "experiment-rnaseq-robust-no-qn": {
        "data": {"SRP2": "ALL"},
        "aggregate_by": "EXPERIMENT",
        "scale_by": "ROBUST",
        "quantile_normalize": False,
    },
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_zip_passes_refinebio_readers(world, name: str, rscript: str, tmp_path: Path) -> None:
    store, db, tmp = world
    out = tmp / f"{name}.zip"
    build_dataset(REQUESTS[name], db, store, out, record_in_warehouse=False)
    agg = check_contract(out)
    pandas = read_with_pandas(out)
    r = read_with_r(out, rscript, tmp_path)
    assert set(pandas) == set(r) and pandas
    for group, got in r.items():
        assert got["samples"] == pandas[group]["samples"]
        assert got["n_genes"] == pandas[group]["n_genes"]
        assert got["numeric_matrix"] is True and got["any_na"] is False
        assert got["first_value"] == pytest.approx(pandas[group]["first_value"], rel=1e-6)
        assert got["processed_class"] == "logical"  # True/False read as R logicals, as refine.bio's
        assert got["age_class"] in ("numeric", "logical")  # logical only when every age is empty
        assert got["annotation_rows"] == got["joined_rows"] == len(got["samples"])
    assert sum(len(g["samples"]) for g in pandas.values()) >= agg["num_samples"]


def test_geo_groups_are_selected_by_geo_accession(world, rscript: str, tmp_path: Path) -> None:
    """The microarray notebooks select ``metadata$geo_accession`` and characteristics such as
    ``genotype/variation`` (refine.bio: ``characteristics_ch1_genotype/variation``)."""
    import zipfile

    import pandas as pd

    store, db, tmp = world
    out = tmp / "geo.zip"
    build_dataset(
        {"data": {"GSE5": "ALL"}, "aggregate_by": "EXPERIMENT"}, db, store, out, record_in_warehouse=False
    )
    with zipfile.ZipFile(out) as zf:
        meta = pd.read_csv(zf.open("GSE5/metadata_GSE5.tsv"), sep="\t")
    assert meta["geo_accession"].tolist() == ["GSM51", "GSM52", "GSM53", "GSM54"]
    assert meta["characteristics_ch1_genotype/variation"].tolist() == ["control", "control", "CREB", "CREB"]
    assert meta["title"].tolist() == [f"liver {i}" for i in range(1, 5)]
    r = read_with_r(out, rscript, tmp_path)
    assert r["GSE5"]["samples"] == ["GSM51", "GSM52", "GSM53", "GSM54"]
    assert read_with_pandas(out)["GSE5"]["samples"] == r["GSE5"]["samples"]


def test_quant_sf_only_zip_passes_the_contract(world, shared_data: Path) -> None:
    store, db, tmp = world
    real = gzip.decompress((shared_data / "rnaseq/SRP095529/SRR5125621/quant.sf.gz").read_bytes())
    for run in ("SRR11", "SRR12", "SRR13", "SRR14"):
        store.put_bytes(f"processed/SRP1/{run}/quant.sf", real)
    out = tmp / "quant.zip"
    build_dataset({"data": {"SRP1": "ALL"}, "quant_sf_only": True}, db, store, out, record_in_warehouse=False)
    agg = check_contract(out)
    assert agg["num_samples"] == 4 and json.dumps(agg).count("Salmon Quant") == 4
