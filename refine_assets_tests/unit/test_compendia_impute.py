"""IterativeSVD imputation (``refine_assets.lib.compendia.impute``): native backend vs fancyimpute 0.7.0."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest

from refine_assets.lib.compendia.impute import ImputeError, impute, rank_schedule

TOL_RMS = 1e-4  # required agreement with fancyimpute on the imputed cells


def low_rank(m: int, n: int, *, r: int = 5, noise: float = 0.3, missing: float = 0.15, seed: int = 0):
    """Expression-like data: gene means ~7 plus rank-r structure plus noise; MCAR missing cells."""
    rng = np.random.default_rng(seed)
    x = 7.0 + rng.standard_normal((m, r)) @ rng.standard_normal((r, n)) + noise * rng.standard_normal((m, n))
    x = x.astype(np.float32)
    mask = rng.random((m, n)) < missing
    xm = x.copy()
    xm[mask] = np.nan
    return x, xm, mask


def rms(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    return float(np.sqrt(np.mean(d**2)))


@pytest.fixture(scope="module")
def gds507(shared_data: Path) -> np.ndarray:
    """Real MAS5 data, GEO GDS507: 17 samples x 22,645 probesets, log2, float32 (samples x genes)."""
    with gzip.open(shared_data / "geo/geoquery/GDS507.soft.gz", "rt") as fh:
        text = fh.read()
    table = text.split("!dataset_table_begin\n", 1)[1].split("!dataset_table_end", 1)[0]
    lines = table.strip("\n").split("\n")
    x = np.array([[float(v) for v in line.split("\t")[2:]] for line in lines[1:]])
    return np.log2(x).T.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# agreement with fancyimpute


@pytest.mark.parametrize("svd", ["exact", "randomized"])
@pytest.mark.parametrize(
    "shape,r,noise", [((120, 700), 5, 0.3), ((400, 90), 15, 1.0)], ids=["rank5-tall", "rank15-wide"]
)
def test_native_matches_fancyimpute(svd: str, shape, r: int, noise: float) -> None:
    _, xm, mask = low_rank(*shape, r=r, noise=noise, seed=1)
    ref, rep_ref = impute(xm, 10, "fancyimpute")
    out, rep = impute(xm, 10, "native", svd=svd)
    assert rep.svd == svd and rep_ref.backend == "fancyimpute"
    assert rms(out, ref, mask) < TOL_RMS
    assert rep.iterations == rep_ref.iterations
    assert out.dtype == np.float32 and ref.dtype == np.float32
    assert np.array_equal(out[~mask], xm[~mask]) and np.array_equal(ref[~mask], xm[~mask])
    assert not np.isnan(out).any()
    assert rep.n_missing == int(mask.sum()) and rep.converged


def test_native_matches_fancyimpute_on_real_microarray_data(gds507: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    mask = rng.random(gds507.shape) < 0.1
    xm = gds507.copy()
    xm[mask] = np.nan
    ref, rep_ref = impute(xm, 10, "fancyimpute")
    for svd in ("exact", "randomized"):
        out, rep = impute(xm, 10, "native", svd=svd)
        assert rms(out, ref, mask) < TOL_RMS, svd
        assert rep.iterations == rep_ref.iterations == 23
        assert np.array_equal(out[~mask], xm[~mask])


def test_float64_native_exact_reproduces_fancyimpute_arithmetic() -> None:
    # In float64 both compute the same exact truncated SVD every iteration: the algorithm is identical
    # (fill, rank schedule, convergence rule, update of the missing cells only).
    _, xm, mask = low_rank(80, 300, seed=5)
    ref, rep_ref = impute(xm, 10, "fancyimpute", dtype=np.float64)
    out, rep = impute(xm, 10, "native", svd="exact", dtype=np.float64)
    assert out.dtype == np.float64
    assert rms(out, ref, mask) < 1e-9
    assert rep.iterations == rep_ref.iterations


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gradual_rank_increase": False},
        {"min_value": 6.5, "max_value": 7.5},
        {"convergence_threshold": 1e-3, "max_iters": 3},
    ],
    ids=["fixed-rank", "clipped", "short"],
)
def test_options_match_fancyimpute(kwargs: dict) -> None:
    _, xm, mask = low_rank(100, 400, seed=7)
    ref, rep_ref = impute(xm, 6, "fancyimpute", **kwargs)
    out, rep = impute(xm, 6, "native", svd="exact", **kwargs)
    assert rms(out, ref, mask) < TOL_RMS
    assert rep.iterations == rep_ref.iterations
    if "min_value" in kwargs:
        assert out[mask].min() >= 6.5 and out[mask].max() <= 7.5
        assert out[mask].min() == 6.5  # clipping was active


# --------------------------------------------------------------------------------------------------
# the algorithm itself (hand-computed steps)


def test_rank_schedule() -> None:
    assert rank_schedule(10, 7) == [1, 2, 4, 8, 10, 10, 10]
    assert rank_schedule(3, 4, gradual_rank_increase=False) == [3, 3, 3, 3]


def test_one_iteration_is_the_rank1_svd_of_the_zero_filled_matrix() -> None:
    _, xm, mask = low_rank(30, 50, seed=2)
    filled0 = np.where(mask, 0.0, xm.astype(np.float64))
    u, s, vt = np.linalg.svd(filled0, full_matrices=False)
    r1 = s[0] * np.outer(u[:, 0], vt[0])
    for svd, tol in (("exact", 1e-9), ("randomized", 1e-5)):
        out, rep = impute(xm, 10, "native", svd=svd, max_iters=1, dtype=np.float64)
        assert rep.iterations == 1 and not rep.converged
        assert np.isnan(rep.ratios[0])  # compared with the zero fill: never converged
        np.testing.assert_allclose(out[mask], r1[mask], rtol=tol)


def test_convergence_ratio_history_and_rule() -> None:
    _, xm, _ = low_rank(60, 200, seed=3)
    _, rep = impute(xm, 10, "native", svd="exact")
    assert rep.converged and rep.iterations >= 2
    assert np.isnan(rep.ratios[0]) and rep.ratios[-1] < 1e-5
    assert all(r >= 1e-5 for r in rep.ratios[1:-1])


def test_exact_low_rank_matrix_is_recovered() -> None:
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((60, 3)) @ rng.standard_normal((3, 200)) + 5.0).astype(np.float64)
    mask = rng.random(x.shape) < 0.2
    xm = x.copy()
    xm[mask] = np.nan
    out, rep = impute(
        xm, 4, "native", svd="exact", dtype=np.float64, convergence_threshold=1e-12, max_iters=500
    )
    assert rep.converged
    assert rms(out, x, mask) < 1e-4


def test_inplace_memmap_chunked_equals_in_memory(tmp_path: Path) -> None:
    _, xm, mask = low_rank(150, 90, seed=4)  # samples x genes
    ref, _ = impute(xm, 10, "native", svd="randomized")
    mm = np.memmap(
        tmp_path / "m.f32", dtype=np.float32, mode="w+", shape=xm.T.shape, order="F"
    )  # genes x samples
    mm[:] = xm.T
    out, rep = impute(mm, 10, "native", svd="randomized", inplace=True, chunk_values=90 * 7)
    assert out is mm and rep.chunk_rows == 7 and rep.svd_stats["passes"] > 0
    assert rms(np.asarray(mm).T, ref, mask) < 1e-5
    again = np.memmap(tmp_path / "m.f32", dtype=np.float32, mode="r", shape=xm.T.shape, order="F")
    assert not np.isnan(again).any() and np.array_equal(np.asarray(again).T[~mask], xm[~mask])


def test_randomized_is_deterministic() -> None:
    _, xm, _ = low_rank(100, 300, seed=6)
    a, _ = impute(xm, 10, "native", svd="randomized", seed=3)
    b, _ = impute(xm, 10, "native", svd="randomized", seed=3)
    assert np.array_equal(a, b)


def test_auto_engine_choice() -> None:
    _, xm, _ = low_rank(40, 100, seed=8)
    assert impute(xm, 5, "native")[1].svd == "exact"
    assert impute(xm, 5, "native", exact_max_side=20)[1].svd == "randomized"


# --------------------------------------------------------------------------------------------------
# bad input


def test_rank_larger_than_matrix_fails_clearly() -> None:
    _, xm, _ = low_rank(5, 40, seed=9)
    for backend in ("native", "fancyimpute"):
        with pytest.raises(ImputeError, match=r"rank 10 is too large for a 5 x 40 matrix.*at most 4"):
            impute(xm, 10, backend)
    with pytest.raises(ImputeError, match="rank 5 is too large"):
        impute(xm, 5)
    assert impute(xm, 4)[1].rank == 4


@pytest.mark.parametrize(
    "matrix,kwargs,message",
    [
        (np.full((4, 5), np.nan), {"rank": 2}, "no observed values"),
        (np.ones(5), {"rank": 1}, "must be 2-D"),
        (np.ones((1, 5)), {"rank": 1}, "at least 2 rows and 2 columns"),
        (np.array([["a", "b"], ["c", "d"]]), {"rank": 1}, "real numeric"),
        (np.ones((4, 5)), {"rank": 0}, "rank must be a positive integer"),
        (np.ones((4, 5)), {"rank": 2, "backend": "magic"}, "unknown backend"),
        (np.ones((4, 5)), {"rank": 2, "svd": "qr"}, "unknown svd engine"),
        (np.ones((4, 5)), {"rank": 2, "max_iters": 0}, "max_iters"),
        (np.ones((4, 5)), {"rank": 2, "convergence_threshold": 0}, "convergence_threshold"),
    ],
)
def test_bad_inputs_fail_clearly(matrix, kwargs, message: str) -> None:
    with pytest.raises(ImputeError, match=message):
        impute(matrix, **kwargs)


def test_infinite_value_is_named_and_nothing_is_modified() -> None:
    x = np.ones((6, 8), dtype=np.float32)
    x[1, 1] = np.nan
    x[4, 6] = -np.inf
    before = x.copy()
    with pytest.raises(ImputeError, match=r"infinite value -inf at row 4, column 6"):
        impute(x, 2, inplace=True)
    assert np.array_equal(x, before, equal_nan=True)


def test_inplace_needs_a_writable_float_array() -> None:
    with pytest.raises(ImputeError, match="float32 or float64"):
        impute(np.ones((4, 5), dtype=np.int64), 2, inplace=True)
    ro = np.ones((4, 5))
    ro.flags.writeable = False
    with pytest.raises(ImputeError, match="writable"):
        impute(ro, 2, inplace=True)
    with pytest.raises(ImputeError, match="only supported by the native backend"):
        impute(np.ones((4, 5)), 2, "fancyimpute", inplace=True)


def test_nothing_missing_returns_the_input_with_a_warning() -> None:
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, rep = impute(x, 2)
    assert any("nothing to impute" in str(w.message) for w in caught)
    assert np.array_equal(out, x) and rep.iterations == 0 and rep.n_missing == 0
