"""Per-gene scaling against scikit-learn's StandardScaler / MinMaxScaler / RobustScaler."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from refine_assets.lib.delivery.transform import TransformError, scale_rows

SKLEARN = {"STANDARD": StandardScaler, "MINMAX": MinMaxScaler, "ROBUST": RobustScaler}


def _reference(matrix: np.ndarray, method: str) -> np.ndarray:
    # refine.bio: transpose to samples x genes, fit the scaler per gene, transpose back (teardown §6.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return SKLEARN[method]().fit_transform(matrix.T).T


def _matrix(seed: int, genes: int, samples: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.normal(5.0, 2.0, (genes, samples)) * rng.gamma(2.0, 1.0, (genes, 1))
    m[0] = 7.25  # constant row
    m[1] = np.round(m[1])  # ties
    m[2] = 1e9 + rng.normal(0, 1e-7, samples)  # near-constant at a large mean (sklearn's constant rule)
    return m


@pytest.mark.parametrize("method", ["STANDARD", "MINMAX", "ROBUST"])
@pytest.mark.parametrize(("genes", "samples"), [(500, 13), (50, 1), (50, 2), (9000, 7)])
def test_matches_sklearn(method: str, genes: int, samples: int) -> None:
    m = _matrix(genes + samples, genes, samples)
    got = scale_rows(m, method, chunk_rows=1000)
    np.testing.assert_allclose(got, _reference(m, method), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["STANDARD", "MINMAX", "ROBUST"])
def test_missing_values_ignored_and_kept_like_sklearn(method: str) -> None:
    m = _matrix(5, 200, 11)
    m[10, 3] = np.nan
    m[11, :] = np.nan  # all missing
    m[12, :-1] = np.nan  # one value
    got = scale_rows(m, method)
    ref = _reference(m, method)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_known_values_and_in_place_float32() -> None:
    m = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]], dtype=np.float32, order="F")
    np.testing.assert_allclose(scale_rows(m, "minmax")[0], [0, 1 / 3, 2 / 3, 1], rtol=1e-7)
    z = scale_rows(m, "standard")
    np.testing.assert_allclose(z[0], (np.arange(1, 5) - 2.5) / np.sqrt(1.25), rtol=1e-7)
    np.testing.assert_array_equal(z[1], 0.0)  # constant gene -> 0, not NaN
    np.testing.assert_allclose(scale_rows(m, "robust")[0], (np.arange(1, 5) - 2.5) / 1.5, rtol=1e-7)
    same = scale_rows(m, "STANDARD", out=m)
    assert same is m and m.dtype == np.float32 and m.flags.f_contiguous
    np.testing.assert_allclose(m, z, rtol=0, atol=0)


def test_none_and_errors() -> None:
    m = _matrix(1, 10, 3)
    np.testing.assert_array_equal(scale_rows(m, "NONE"), m)
    with pytest.raises(TransformError, match="unknown scale_by 'log'"):
        scale_rows(m, "log")
    with pytest.raises(TransformError, match="2-D float"):
        scale_rows(np.ones(3), "STANDARD")
    with pytest.raises(TransformError, match="out has shape"):
        scale_rows(m, "STANDARD", out=np.empty((2, 2)))
