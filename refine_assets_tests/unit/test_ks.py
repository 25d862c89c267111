"""KS gate after quantile normalization (``refine_assets.lib.ks``): statistics, thresholds, real data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ks_2samp

from refine_assets.lib.ks import (
    DEFAULT_STATISTIC_MAX,
    KsGateError,
    failed_samples,
    ks_gate,
    upper_half,
)
from refine_assets.lib.qn import determine_target, quantile_normalize_to_target


def test_perfectly_mapped_sample_has_statistic_zero() -> None:
    rng = np.random.default_rng(1)
    target = rng.standard_normal(2000)
    out = quantile_normalize_to_target(rng.standard_normal((2000, 3)), target)
    res = ks_gate(out, target, sample_names=["a", "b", "c"])
    assert [r.sample for r in res] == ["a", "b", "c"]
    for r in res:
        assert r.statistic == 0.0 and r.pvalue == 1.0 and r.passed and r.reason is None
        assert r.n_present == 2000 and r.n_compared == 1000


def test_statistic_and_pvalue_are_scipy_ks_2samp_on_the_upper_halves() -> None:
    rng = np.random.default_rng(2)
    target = rng.gamma(2.0, 1.0, 3000)
    col = rng.normal(3.0, 1.0, 2500)  # not normalized: a real difference
    res = ks_gate(col[:, None], target, statistic_max=1.0)[0]
    a = col[col > np.median(col)]
    b = np.sort(target)[target.size // 2 :]  # strictly above the median of an even-length sample
    expected = ks_2samp(a, b)
    assert res.statistic == expected.statistic and res.pvalue == expected.pvalue
    assert res.n_compared == a.size == 1250
    whole = ks_gate(col[:, None], target, top_half=False, statistic_max=1.0)[0]
    assert whole.statistic == ks_2samp(col, target).statistic and whole.n_compared == 2500


def test_upper_half_is_strictly_above_the_median() -> None:
    np.testing.assert_array_equal(upper_half(np.array([1.0, 2.0, 2.0, 2.0, 5.0, np.nan])), [5.0])
    assert upper_half(np.array([np.nan])).size == 0


def test_zero_inflated_sample_statistic_is_2f_minus_1() -> None:
    """A tie mass (zeros) covering a fraction f > 1/2 leaves the top 1 - f: D = 2f - 1."""
    rng = np.random.default_rng(3)
    g = 10000
    target = rng.normal(8.0, 2.0, g)
    cols = []
    for f in (0.4, 0.54, 0.6, 0.75):
        v = rng.gamma(2.0, 3.0, g)
        v[: int(f * g)] = 0.0
        cols.append(v)
    out = quantile_normalize_to_target(np.column_stack(cols), target)
    res = ks_gate(out, target, sample_names=["f40", "f54", "f60", "f75"])
    assert res[0].statistic < 0.001 and res[0].passed  # zeros below the median are ignored
    for r, f in zip(res[1:], (0.54, 0.6, 0.75), strict=True):
        assert r.statistic == pytest.approx(2 * f - 1, abs=0.002)
    assert res[1].passed
    assert not res[2].passed and "KS statistic" in res[2].reason
    assert not res[3].passed
    assert set(failed_samples(res)) == {"f60", "f75"}


def test_constant_all_missing_and_mostly_missing_samples_fail() -> None:
    rng = np.random.default_rng(4)
    g = 1000
    target = rng.standard_normal(g)
    x = rng.standard_normal((g, 5))
    x[:, 0] = 7.0  # constant
    x[:, 1] = np.nan  # all missing
    x[rng.random(g) < 0.7, 2] = np.nan  # 30% present
    x[:, 3] = np.nan
    x[:4, 3] = [1.0, 2.0, 3.0, 4.0]  # 4 values
    out = quantile_normalize_to_target(x, target)
    res = ks_gate(out, target)
    assert not res[0].passed and "constant" in res[0].reason and np.isnan(res[0].statistic)
    assert not res[1].passed and "all missing" in res[1].reason and res[1].n_present == 0
    assert not res[2].passed and "values present" in res[2].reason
    assert not res[3].passed and res[3].n_compared == 2
    assert res[4].passed
    # with the coverage criterion off, 30% present still maps well; 4 values do not
    res = ks_gate(out, target, min_present_fraction=0.0)
    assert res[2].passed and res[2].statistic < 0.05
    assert not res[3].passed and res[3].statistic > DEFAULT_STATISTIC_MAX


def test_pvalue_threshold_gates_only_when_set() -> None:
    rng = np.random.default_rng(5)
    target = rng.standard_normal(20000)
    x = rng.standard_normal((20000, 1)).round(1)  # heavy ties: D around 0.02, tiny p
    out = quantile_normalize_to_target(x, target)
    r = ks_gate(out, target)[0]
    assert r.passed and 0.005 < r.statistic < DEFAULT_STATISTIC_MAX and r.pvalue < 0.8
    gated = ks_gate(out, target, pvalue_min=0.8)[0]
    assert not gated.passed and "p-value" in gated.reason


def test_real_microarray_data_passes_where_refinebio_would_warn(shared_data: Path) -> None:
    """GDS507 (MAS5, one decimal, ties), QN to a target of another length (refine.bio's usual case)."""
    with gzip.open(shared_data / "geo/geoquery/GDS507.soft.gz", "rt") as fh:
        text = fh.read()
    table = text.split("!dataset_table_begin\n", 1)[1].split("!dataset_table_end", 1)[0]
    rows = table.strip("\n").split("\n")[1:]
    x = np.log2(np.array([[float(v) for v in line.split("\t")[2:]] for line in rows]))
    target = determine_target(x, 20000)
    res = ks_gate(quantile_normalize_to_target(x, target), target)
    assert len(res) == 17 and all(r.passed for r in res)
    assert max(r.statistic for r in res) < 0.01
    assert any(r.statistic > 0.001 for r in res)  # refine.bio's warning threshold fires


def test_real_rnaseq_zeros_below_half_pass(shared_data: Path) -> None:
    """Real zebrafish salmon TPMs (SRP095529, 34-47% zeros per sample) pass thanks to the upper half."""
    import pandas as pd

    files = sorted((shared_data / "rnaseq/SRP095529").glob("*/quant.sf.gz"))[:6]
    assert len(files) == 6
    x = np.column_stack([np.log2(pd.read_csv(f, sep="\t")["TPM"].to_numpy() + 1) for f in files])
    zeros = (x == 0).mean(axis=0)
    assert (zeros > 0.3).all() and (zeros < 0.5).all()
    rng = np.random.default_rng(6)
    target = rng.normal(7.0, 2.0, 20000)  # a microarray-like target of another length
    res = ks_gate(quantile_normalize_to_target(x, target), target)
    assert all(r.passed for r in res) and max(r.statistic for r in res) < 0.01


@pytest.mark.parametrize(
    ("normalized", "target", "kwargs", "message"),
    [
        (np.zeros(3), np.zeros(3), {}, "2-D"),
        (np.zeros((3, 2)), np.array([np.nan]), {}, "no non-missing"),
        (np.zeros((3, 2)), np.ones(4), {}, "constant target"),
        (np.zeros((3, 2)), np.arange(4.0), {"sample_names": ["a"]}, "1 sample names for 2 columns"),
        (np.zeros((3, 2)), np.arange(4.0), {"min_present_fraction": 2}, "min_present_fraction"),
    ],
)
def test_bad_input_raises(normalized: np.ndarray, target: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(KsGateError, match=message):
        ks_gate(normalized, target, **kwargs)
