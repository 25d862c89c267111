"""Loading and sanitizing sample vectors for delivery (teardown §6.2 steps 1-4, with §12 fixes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refine_assets.lib.delivery.vectors import VectorError, load_sample_vector, sanitize_vector
from refine_assets.lib.processing.vectors import write_vector
from refine_assets.lib.storage import LocalArtifactStore


def test_sanitize_hand_computed() -> None:
    ids = [
        "ENSG00000000001_at",  # Brainarray suffix
        "ENSG00000000002.5",  # Ensembl version
        "ENSG00000000002",  # duplicate after stripping the version -> mean
        "AFFX-BioB-5_at",  # control probeset: dropped
        "affx-cre-3",  # case-insensitive
        "ENSG00000000003",  # missing value: dropped
        " ENSG00000000004 ",  # blanks
        "ENSG00000000005.x",  # not a numeric version: kept as is (refine.bio cut it)
        "LOC_at123",  # '_at' inside the id is not Brainarray's: kept (refine.bio removed it)
        "ENSG00000000002_at",  # third copy of gene 2
        "ENSG00000000006",  # infinite: dropped
    ]
    values = np.array([1.0, 2.0, 4.0, 9.0, 9.0, np.nan, 5.0, 6.0, 7.0, 9.0, np.inf])
    out_ids, out_vals, stats = sanitize_vector(ids, values)
    assert out_ids.tolist() == [
        "ENSG00000000001",
        "ENSG00000000002",
        "ENSG00000000004",
        "ENSG00000000005.x",
        "LOC_at123",
    ]
    np.testing.assert_array_equal(out_vals, [1.0, 5.0, 5.0, 6.0, 7.0])  # (2 + 4 + 9) / 3 = 5
    assert stats == {
        "n_input": 11,
        "n_affx_dropped": 2,
        "n_missing_dropped": 2,
        "n_empty_ids_dropped": 0,
        "n_duplicate_ids_merged": 2,
        "n_genes": 5,
    }


def test_sanitize_matches_pandas_groupby_mean_on_random_duplicates() -> None:
    rng = np.random.default_rng(3)
    ids = np.array(
        [
            f"ENSG{int(i):011d}.{int(v)}"
            for i, v in zip(rng.integers(0, 500, 3000), rng.integers(1, 9, 3000), strict=True)
        ]
    )
    values = rng.normal(size=3000)
    out_ids, out_vals, _ = sanitize_vector(ids, values)
    expected = pd.Series(values, index=[i.split(".")[0] for i in ids]).groupby(level=0).mean().sort_index()
    assert out_ids.tolist() == expected.index.tolist()
    np.testing.assert_allclose(out_vals, expected.to_numpy(), rtol=0, atol=1e-15)
    assert list(out_ids) == sorted(out_ids) and len(set(out_ids)) == len(out_ids)


def test_load_and_log2_plus_one(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    tpm = pd.Series([0.0, 1.0, 3.0, 1023.0], index=["ENSG3", "ENSG1", "ENSG2", "ENSG4"])
    write_vector(store, "processed/SRP1/SRR1.parquet", tpm, {"step": "tximport", "versions": {"index": "x"}})
    raw = load_sample_vector(store, "processed/SRP1/SRR1.parquet", "SRR1")
    assert raw.transform == "none" and raw.ids.tolist() == ["ENSG1", "ENSG2", "ENSG3", "ENSG4"]
    np.testing.assert_array_equal(raw.values, [1.0, 3.0, 0.0, 1023.0])
    assert raw.provenance["versions"] == {"index": "x"}
    logged = load_sample_vector(store, "processed/SRP1/SRR1.parquet", "SRR1", log2_plus_one=True)
    assert logged.transform == "log2(x+1)"
    np.testing.assert_array_equal(logged.values, [1.0, 2.0, 0.0, 10.0])  # exactly once


def test_load_errors_name_sample_and_key(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(VectorError, match=r"SRR9: processed vector processed/SRP1/SRR9\.parquet is missing"):
        load_sample_vector(store, "processed/SRP1/SRR9.parquet", "SRR9")
    store.put_bytes("processed/SRP1/BAD.parquet", b"not parquet")
    with pytest.raises(VectorError, match="BAD: cannot read processed vector"):
        load_sample_vector(store, "processed/SRP1/BAD.parquet", "BAD")
    write_vector(store, "processed/SRP1/NEG.parquet", pd.Series([-1.0, 2.0], index=["ENSG1", "ENSG2"]))
    with pytest.raises(VectorError, match="negative values in RNA-seq vector"):
        load_sample_vector(store, "processed/SRP1/NEG.parquet", "NEG", log2_plus_one=True)
    write_vector(store, "processed/GSE1/CTRL.parquet", pd.Series([1.0, 2.0], index=["AFFX-1", "AFFX-2"]))
    with pytest.raises(VectorError, match="no gene id left"):
        load_sample_vector(store, "processed/GSE1/CTRL.parquet", "CTRL")
