"""Assembly of per-sample vectors into the on-disk matrix (``refine_assets.lib.compendia.assemble``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refine_assets.lib.compendia.assemble import AssemblyError, SampleVector, assemble_matrix
from refine_assets.lib.processing.vectors import vector_key, write_vector
from refine_assets.lib.storage import LocalArtifactStore


def put(store, exp: str, sample: str, values: dict[str, float]) -> str:
    key = vector_key(exp, sample)
    write_vector(store, key, pd.Series(values, dtype=float), {"method": "test", "sample": sample})
    return key


def test_universe_order_values_duplicates_and_reasons(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    vectors = [
        # platform A (3 samples): genes G1..G4; platform B (1 sample): G2..G5 with a duplicate G3
        SampleVector("GSM3", "MICROARRAY", put(store, "E1", "GSM3", {"G1": 1, "G2": 2, "G3": 3, "G4": 4})),
        SampleVector(
            "GSM1", "microarray", put(store, "E1", "GSM1", {"G1": 11, "G2": 12, "G3": 13, "G4": 14})
        ),
        SampleVector("SRR2", "RNA-SEQ", put(store, "E2", "SRR2", {"G1": 0, "G2": 5, "G3": np.inf, "G5": 7})),
        SampleVector("SRR1", "rnaseq", put(store, "E2", "SRR1", {"G1": 1, "G2": np.nan, "G3": 2, "G5": 8})),
        SampleVector(
            "GSM2", "MICROARRAY", put(store, "E1", "GSM2", {"G1": 21, "G2": 22, "G3": 23, "G4": 24})
        ),
        SampleVector("GSMX", "MICROARRAY", "processed/E1/GSMX.parquet"),  # missing file
    ]
    dup_key = vector_key("E3", "GSM9")
    write_vector(store, dup_key, pd.Series([1.0, 2.0, 3.0, 5.0], index=["G2", "G3", "G3", "G5"]))
    vectors.append(SampleVector("GSM9", "MICROARRAY", dup_key))
    am = assemble_matrix(vectors, store, tmp_path / "m.f32", workers=2, batch_columns=2)
    # 6 samples read; presence (finite values): G1 5, G2 5, G3 5 (inf not present in SRR2... 5), G4 3,
    # G5 3 -> kept: > 3 of 6
    assert am.n_loaded == 6 and am.universe_size == 5
    assert am.genes == ["G1", "G2", "G3"]
    assert am.samples == ["GSM1", "GSM2", "GSM3", "GSM9", "SRR1", "SRR2"]  # microarray sorted, then RNA-seq
    assert am.technologies == ["MICROARRAY"] * 4 + ["RNA-SEQ"] * 2
    assert set(am.dropped) == {"GSMX"} and "could not be read" in am.dropped["GSMX"]
    mm = am.open()
    assert mm.dtype == np.float32 and mm.flags.f_contiguous and mm.shape == (3, 6)
    expected = np.array(
        [
            [11, 21, 1, np.nan, 1, 0],
            [12, 22, 2, 1, np.nan, 5],
            [13, 23, 3, 2.5, 2, np.nan],  # GSM9's duplicate G3 averaged; SRR2's inf is missing
        ],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(np.asarray(mm), expected)
    assert am.n_values.tolist() == [3, 3, 3, 2, 2, 2]
    assert am.provenance[0] == {"method": "test", "sample": "GSM1"}


def test_exactly_half_is_not_enough(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    vectors = [
        (f"S{i}", "MICROARRAY", put(store, "E", f"S{i}", {"A": i, "B": i} if i < 2 else {"A": i}))
        for i in range(4)
    ]
    am = assemble_matrix(vectors, store, tmp_path / "m.f32")
    assert am.genes == ["A"]  # B in 2 of 4 samples: refine.bio keeps ids in > 50 %


def test_bad_inputs(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    key = put(store, "E", "S1", {"A": 1.0})
    with pytest.raises(AssemblyError, match="listed more than once"):
        assemble_matrix([("S1", "MICROARRAY", key), ("S1", "MICROARRAY", key)], store, tmp_path / "m")
    with pytest.raises(AssemblyError, match="unknown technology 'CHIP-SEQ' for sample 'S1'"):
        assemble_matrix([("S1", "CHIP-SEQ", key)], store, tmp_path / "m")
    with pytest.raises(AssemblyError, match="no sample vectors"):
        assemble_matrix([], store, tmp_path / "m")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(AssemblyError, match=r"none of the 1 sample vectors could be read.*not a readable"):
        assemble_matrix([("S2", "MICROARRAY", "bad.parquet")], store, tmp_path / "m")
    k2 = put(store, "E", "S2", {"B": 1.0})
    with pytest.raises(AssemblyError, match="no gene id has a value in more than 50% of the 2 samples"):
        assemble_matrix([("S1", "MICROARRAY", key), ("S2", "MICROARRAY", k2)], store, tmp_path / "m")
