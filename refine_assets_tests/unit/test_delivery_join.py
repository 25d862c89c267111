"""Deterministic inner join (fixes teardown §12 item 6: order dependence and silent skips)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from refine_assets.lib.delivery.join import InnerJoin, JoinError, inner_join

A = ("GSM3", np.array(["g1", "g2", "g3"], dtype=object), np.array([1.0, 2.0, 3.0]))
B = ("GSM1", np.array(["g4", "g3", "g2"], dtype=object), np.array([40.0, 30.0, 20.0]))
C = ("GSM2", np.array(["g3", "g2", "g5"], dtype=object), np.array([300.0, 200.0, 5.0]))


def test_hand_computed_join() -> None:
    j = inner_join([A, B, C], dtype=np.float64)
    assert j.samples == ["GSM1", "GSM2", "GSM3"]  # sorted by accession
    assert j.genes.tolist() == ["g2", "g3"]  # intersection, sorted
    np.testing.assert_array_equal(j.values, [[20.0, 200.0, 2.0], [30.0, 300.0, 3.0]])
    assert j.genes_per_sample == {"GSM1": 3, "GSM2": 3, "GSM3": 3}
    assert j.values.flags.f_contiguous


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_input_order_gives_identical_bytes(dtype) -> None:
    rng = np.random.default_rng(7)
    universe = np.array([f"ENSG{i:011d}" for i in range(400)], dtype=object)
    vectors = []
    for k in range(5):
        ids = rng.choice(universe, size=300, replace=False)
        vectors.append((f"GSM{k}", ids, rng.normal(size=300)))
    reference = inner_join(vectors, dtype=dtype)
    for perm in itertools.permutations(vectors):
        j = inner_join(list(perm), dtype=dtype)
        assert j.samples == reference.samples
        assert j.genes.tolist() == reference.genes.tolist()
        assert j.values.tobytes(order="F") == reference.values.tobytes(order="F")


def test_matches_pandas_inner_concat() -> None:
    rng = np.random.default_rng(11)
    universe = np.array([f"ENSMUSG{i:011d}" for i in range(2000)], dtype=object)
    vectors = []
    for k in range(40):
        ids = rng.choice(universe, size=1900, replace=False)
        vectors.append((f"SRR{k:03d}", ids, rng.lognormal(size=1900)))
    j = inner_join(vectors, dtype=np.float64)
    frames = [pd.Series(v, index=i, name=s) for s, i, v in vectors]
    expected = pd.concat(frames, axis=1, join="inner").sort_index().sort_index(axis=1)
    assert j.genes.tolist() == expected.index.tolist()
    assert j.samples == expected.columns.tolist()
    np.testing.assert_array_equal(j.values, expected.to_numpy())


def test_float32_storage_rounds_each_value_once() -> None:
    values = np.array([0.1, 1 / 3, 123456.789])
    j = inner_join([("S", np.array(["a", "b", "c"], dtype=object), values)], dtype=np.float32)
    assert j.values.dtype == np.float32
    np.testing.assert_array_equal(j.values[:, 0], values.astype(np.float32))


def test_errors() -> None:
    join = InnerJoin()
    join.add(*A)
    with pytest.raises(JoinError, match="GSM3 added twice"):
        join.add(*A)
    with pytest.raises(JoinError, match="gene id 'g1' repeats"):
        InnerJoin().add("X", np.array(["g1", "g1"], dtype=object), np.array([1.0, 2.0]))
    with pytest.raises(JoinError, match="2 ids but values"):
        InnerJoin().add("X", np.array(["g1", "g2"], dtype=object), np.array([1.0]))
    with pytest.raises(JoinError, match="no sample to join"):
        InnerJoin().result()
    with pytest.raises(
        JoinError, match=r"no gene id is present in all 2 samples \(genes per sample: H=2, M=3\)"
    ):
        inner_join(
            [
                ("H", np.array(["ENSG1", "ENSG2"], dtype=object), np.ones(2)),
                ("M", np.array(["ENSMUSG1", "ENSMUSG2", "ENSMUSG3"], dtype=object), np.ones(3)),
            ]
        )
    with pytest.raises(JoinError, match="float type"):
        InnerJoin(np.int32)
