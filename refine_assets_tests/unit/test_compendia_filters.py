"""Compendium filters (``refine_assets.lib.compendia.filters``) on small hand-checked matrices."""

from __future__ import annotations

import numpy as np
import pytest

from refine_assets.lib.compendia.filters import FilterError, apply_filters

MA, RS = "MICROARRAY", "RNA-SEQ"


def test_refinebio_low_count_case_drops_bottom_decile_and_logs_once() -> None:
    # refine.bio test_filter_rnaseq_matrix_drop_row_sums: 100 genes, 10 RNA-seq samples, gene i = i
    # everywhere. Row sums 10 i; np.percentile(10, 20, ..., 1000; 10) = 109 -> genes 1..10 (< 109) go.
    x = np.repeat(np.arange(1, 101, dtype=np.float64)[:, None], 10, axis=1)
    samples = [str(i) for i in range(10)]
    res = apply_filters(x, samples, [RS] * 10)
    assert res.rnaseq_threshold == pytest.approx(109.0)
    assert res.rnaseq_genes_dropped == 10 and res.rnaseq_genes_measured == 100
    assert np.flatnonzero(res.genes_kept).tolist() == list(range(10, 100))  # genes 11..100
    assert res.samples_kept.all() and res.filtered == {}
    # log2(x + 1) applied exactly once (refine.bio applied it twice): gene 11 -> log2(12)
    assert x[10, 0] == pytest.approx(np.log2(12.0))
    assert x[99, 3] == pytest.approx(np.log2(101.0))
    assert np.isnan(x[:10]).all()  # dropped genes lost their RNA-seq values


def test_refinebio_drop_samples_case() -> None:
    # refine.bio test_drop_samples: 100 genes x 10 microarray samples; column 0 present iff i % 3 in
    # {0, 1} (67), column 1 iff i even (50), column 2 iff i % 3 == 0 (33), column 3 iff i % 4 == 0 (25).
    # Genes need >= 7 of 10: the 16 genes i = 5 mod 6 have only 6 -> 84 genes remain; samples need
    # >= 42 of them: columns 2 (33) and 3 (25) go.
    x = np.repeat(np.arange(1, 101, dtype=np.float64)[:, None], 10, axis=1)
    i = np.arange(1, 101)
    x[~np.isin(i % 3, [0, 1]), 0] = np.nan
    x[i % 2 != 0, 1] = np.nan
    x[i % 3 != 0, 2] = np.nan
    x[i % 4 != 0, 3] = np.nan
    samples = [str(k) for k in range(10)]
    res = apply_filters(x, samples, [MA] * 10)
    assert int(res.genes_kept.sum()) == 84
    assert not res.genes_kept[(i % 6) == 5].any()
    assert [s for s, k in zip(samples, res.samples_kept, strict=True) if k] == [
        "0",
        "1",
        *map(str, range(4, 10)),
    ]
    assert set(res.filtered) == {"2", "3"}
    assert "less than 50% present values (33 of 84 genes" in res.filtered["2"]
    assert "(25 of 84 genes" in res.filtered["3"]
    assert res.rnaseq_threshold is None  # no RNA-seq: no low-count filter, no log


def test_rnaseq_zeros_count_as_missing_for_the_filters_but_stay_zero() -> None:
    # 4 genes x (2 microarray + 2 RNA-seq). Gene 0 has RNA-seq zeros (missing for the filters: 2 of
    # 4 present < 70% -> dropped); gene 1 has microarray zeros (ordinary values: kept); gene 2 one
    # RNA-seq zero (3 of 4 = 75% -> kept, the zero stays 0.0, not NaN).
    x = np.array(
        [
            [5.0, 6.0, 0.0, 0.0],
            [0.0, 0.0, 7.0, 15.0],
            [5.0, 6.0, 0.0, 3.0],
            [5.0, 6.0, 31.0, 7.0],
        ]
    )
    res = apply_filters(x, ["m1", "m2", "r1", "r2"], [MA, MA, RS, RS], low_count_quantile=0.0)
    assert res.genes_kept.tolist() == [False, True, True, True]
    assert res.gene_present.tolist() == [2, 4, 3, 4]
    assert x[2, 2] == 0.0  # zero kept as a value (refine.bio's reset), after log2(0 + 1) = 0
    assert x[1, 0] == 0.0 and x[1, 3] == pytest.approx(4.0) and x[3, 2] == pytest.approx(5.0)
    # sample presence over the 3 kept genes: r1 has one zero among them -> 2 of 3 >= 1.5 -> kept
    assert res.sample_present.tolist() == [3, 3, 2, 3]
    assert res.samples_kept.all()
    assert res.rnaseq_zeros_kept == 1


def test_low_count_percentile_only_over_genes_measured_by_rnaseq() -> None:
    # genes 0..9 RNA-seq sums 10, 20, ..., 100 (two samples of i*5); genes 10..29 only on microarray.
    # Over measured genes the 10th percentile is 19 -> gene 0 dropped from RNA-seq. Counting the 20
    # microarray-only genes with sum 0 (refine.bio's reindexed frame) would give 0 and drop nothing.
    n = 30
    x = np.full((n, 4), np.nan)
    x[:, 0:2] = 8.0
    x[:10, 2] = x[:10, 3] = np.arange(1, 11) * 5.0
    res = apply_filters(x, ["m1", "m2", "r1", "r2"], [MA, MA, RS, RS], gene_min_present=0.5)
    assert res.rnaseq_threshold == pytest.approx(np.percentile(np.arange(1, 11) * 10.0, 10))
    assert res.rnaseq_threshold == pytest.approx(19.0)
    assert res.rnaseq_genes_measured == 10 and res.rnaseq_genes_dropped == 1
    assert np.isnan(x[0, 2:]).all() and x[0, 0] == 8.0  # keeps its microarray values
    assert x[1, 2] == pytest.approx(np.log2(11.0))


def test_threshold_boundaries_are_inclusive() -> None:
    # 10 samples: a gene present in exactly 7 is kept, in 6 dropped; 2 genes kept -> a sample needs
    # >= 1 present (50 % of 2).
    x = np.ones((4, 10))
    x[0, 7:] = np.nan  # 7 present -> kept
    x[1, 6:] = np.nan  # 6 present -> dropped
    x[2, :] = 2.0
    x[2, 9] = np.nan  # 9 present -> kept
    x[3, :9] = np.nan  # only in s9 (which therefore counts in the denominator) -> dropped
    res = apply_filters(x, [f"s{k}" for k in range(10)], [MA] * 10)
    assert res.n_active == 10
    assert res.genes_kept.tolist() == [True, False, True, False]
    # sample s9 has 0 of the 2 kept genes -> filtered; s7, s8 have 1 of 2 = 50% -> kept
    assert res.samples_kept.tolist() == [True] * 9 + [False]
    assert "0 of 2 genes" in res.filtered["s9"]


def test_empty_negative_and_excluded_samples_leave_with_reasons() -> None:
    x = np.full((5, 5), 3.0)
    x[:, 1] = np.nan  # no value at all
    x[2, 3] = -1.0  # negative lengthScaledTPM
    res = apply_filters(
        x,
        ["a", "b", "c", "d", "e"],
        [MA, MA, RS, RS, MA],
        excluded={"e": "vector unreadable"},
        low_count_quantile=0.0,
    )
    assert res.samples_kept.tolist() == [True, False, True, False, False]
    assert res.filtered["b"].startswith("no value for any gene")
    assert "negative values" in res.filtered["d"] and "-1" in res.filtered["d"]
    assert res.filtered["e"] == "vector unreadable"
    assert res.n_active == 2 and res.genes_kept.all()
    assert x[0, 2] == pytest.approx(2.0)  # log2(3 + 1)
    assert x[2, 3] == -1.0  # inactive columns are left alone


def test_every_gene_filtered_out_fails_clearly() -> None:
    x = np.full((4, 10), np.nan)
    for g in range(4):
        x[g, g] = 1.0  # each gene in one sample only
    with pytest.raises(
        FilterError, match="every gene was filtered out: no gene is present in at least 70% of the 4"
    ):
        apply_filters(x, [f"s{k}" for k in range(10)], [MA] * 10)


def test_all_samples_filtered_before_the_gene_filter_fails() -> None:
    x = np.full((3, 2), np.nan)
    with pytest.raises(FilterError, match="every one of the 2 samples was filtered out"):
        apply_filters(x, ["a", "b"], [MA, RS])


def test_bad_arguments() -> None:
    x = np.ones((3, 2))
    with pytest.raises(FilterError, match="sample names"):
        apply_filters(x, ["a"], [MA, MA])
    with pytest.raises(FilterError, match="low_count_quantile"):
        apply_filters(x, ["a", "b"], [MA, MA], low_count_quantile=1.0)
    with pytest.raises(ValueError, match="unknown technology"):
        apply_filters(x, ["a", "b"], [MA, "PROTEOMICS"])


def test_chunked_memmap_equals_in_memory(tmp_path) -> None:
    rng = np.random.default_rng(4)
    g, n = 200, 23
    x = rng.gamma(1.0, 20.0, (g, n))
    x[rng.random((g, n)) < 0.2] = np.nan
    x[rng.random((g, n)) < 0.1] = 0.0
    tech = [MA] * 9 + [RS] * 14
    x[:, :9] = np.log2(x[:, :9] + 2)
    names = [f"s{k}" for k in range(n)]
    ref = x.copy()
    r1 = apply_filters(ref, names, tech)
    mm = np.memmap(tmp_path / "m.f32", dtype=np.float32, mode="w+", shape=(g, n), order="F")
    mm[:] = x
    r2 = apply_filters(mm, names, tech, block_columns=4)
    assert (r1.genes_kept == r2.genes_kept).all() and (r1.samples_kept == r2.samples_kept).all()
    assert r1.filtered == r2.filtered
    assert r1.rnaseq_threshold == pytest.approx(r2.rnaseq_threshold, rel=1e-6)
    np.testing.assert_allclose(np.asarray(mm), ref.astype(np.float32), rtol=1e-6, equal_nan=True)
