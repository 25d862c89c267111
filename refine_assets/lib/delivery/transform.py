"""Per-gene transforms of a genes x samples matrix: none, standard (z-score), min-max, robust.

refine.bio (``smasher``, teardown §6.5; reference doc "Gene transformations") transposes the matrix to
samples x genes and fits a scikit-learn scaler, so every **gene (row)** is scaled across the samples of
that matrix. The same arithmetic in numpy, row by row (scikit-learn 1.7 ``sklearn/preprocessing/_data.py``):

* ``STANDARD`` (``StandardScaler()``): ``(x - mean) / scale`` with ``mean`` = sum / n,
  ``var`` = two-pass variance with the Chan-Golub-LeVeque correction
  (``sum((x - mean)**2) - sum(x - mean)**2 / n) / n``, population variance, ddof 0),
  ``scale = sqrt(var)``; a row sklearn deems constant (``var <= n eps var + (n mean eps)**2``,
  ``_is_constant_feature``) gets ``scale = 1`` (so it becomes all zeros);
* ``MINMAX`` (``MinMaxScaler()``, range [0, 1]): ``scale = 1 / (max - min)`` (a range below ``10 eps``
  counts as 1), ``min_ = -min * scale``, result ``x * scale + min_`` (sklearn's operation order);
* ``ROBUST`` (``RobustScaler()``: centering on, IQR 25-75, ``unit_variance`` off):
  ``(x - median) / (q75 - q25)`` with numpy ``percentile`` (linear interpolation); an IQR below
  ``10 eps`` counts as 1;
* ``NONE``: unchanged.

Missing values (NaN) are ignored when fitting and stay NaN, as in scikit-learn (``nanmean``-style sums,
``nanmin``/``nanmax``, ``nanmedian``/``nanpercentile``); delivered matrices have none (inner join).

Computation is float64 whatever the storage dtype; results are written back in the matrix dtype
(float32 storage rounds them to float32, relative 6e-8). Rows are processed in blocks (``chunk_rows``), so
extra memory is a few float64 blocks.

Tolerance: against scikit-learn 1.7 on float64 input, 1e-12 absolute/relative (observed: identical
or last-ulp differences from summation order), verified in
``refine_assets_tests/unit/test_delivery_transform.py`` on random data with constant rows, ties, NaNs,
one and two samples.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCALE_METHODS", "TransformError", "scale_rows"]

SCALE_METHODS = ("NONE", "STANDARD", "MINMAX", "ROBUST")
_EPS = float(np.finfo(np.float64).eps)


class TransformError(ValueError):
    """Unknown scaling method or a matrix that is not 2-D float."""


def _zeros_to_one(scale: np.ndarray, constant: np.ndarray | None = None) -> np.ndarray:
    """sklearn ``_handle_zeros_in_scale``: scales of (near) constant rows become 1."""
    if constant is None:
        constant = scale < 10 * _EPS
    scale = scale.copy()
    scale[constant] = 1.0
    return scale


def _standard(x: np.ndarray, has_nan: bool) -> np.ndarray:
    if has_nan:
        n = np.sum(~np.isnan(x), axis=1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(x, axis=1) / n
            temp = x - mean[:, None]
            correction = np.nansum(temp, axis=1)
            var = (np.nansum(temp * temp, axis=1) - correction**2 / n) / n
    else:
        n = float(x.shape[1])
        mean = np.sum(x, axis=1) / n
        temp = x - mean[:, None]
        correction = np.sum(temp, axis=1)
        var = (np.sum(temp * temp, axis=1) - correction**2 / n) / n
    constant = var <= n * _EPS * var + (n * mean * _EPS) ** 2
    scale = _zeros_to_one(np.sqrt(var), constant)
    return (x - mean[:, None]) / scale[:, None]


def _minmax(x: np.ndarray, has_nan: bool) -> np.ndarray:
    if has_nan:
        with np.errstate(invalid="ignore"), _all_nan_ok():
            lo = np.nanmin(x, axis=1)
            hi = np.nanmax(x, axis=1)
    else:
        lo = x.min(axis=1)
        hi = x.max(axis=1)
    scale = 1.0 / _zeros_to_one(hi - lo)
    min_ = 0.0 - lo * scale
    return x * scale[:, None] + min_[:, None]


def _robust(x: np.ndarray, has_nan: bool) -> np.ndarray:
    if has_nan:
        with _all_nan_ok():
            center = np.nanmedian(x, axis=1)
            q = np.nanpercentile(x, [25.0, 75.0], axis=1)
    else:
        center = np.median(x, axis=1)
        q = np.percentile(x, [25.0, 75.0], axis=1)
    scale = _zeros_to_one(q[1] - q[0])
    return (x - center[:, None]) / scale[:, None]


class _all_nan_ok:
    """Silence numpy's 'All-NaN slice' warnings (an all-missing row stays all-missing)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        return self

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


_METHODS = {"STANDARD": _standard, "MINMAX": _minmax, "ROBUST": _robust}


def scale_rows(
    matrix: np.ndarray, method: str, *, out: np.ndarray | None = None, chunk_rows: int = 4096
) -> np.ndarray:
    """Scale every row (gene) of ``matrix`` (genes x samples) across its columns (module docstring).

    ``method`` is one of :data:`SCALE_METHODS` (any case). Returns ``out`` (default: a new array of the
    matrix's float dtype and memory order; pass ``out=matrix`` to scale in place). Raises
    :class:`TransformError` for an unknown method or a non-2-D / non-float matrix.
    """
    name = str(method).upper()
    if name not in SCALE_METHODS:
        raise TransformError(f"unknown scale_by {method!r}; expected one of {', '.join(SCALE_METHODS)}")
    arr = np.asarray(matrix)
    if arr.ndim != 2 or arr.dtype.kind != "f":
        raise TransformError(f"matrix must be a 2-D float array, got shape {arr.shape} dtype {arr.dtype}")
    if out is None:
        out = np.empty_like(arr, order="F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C")
    elif out.shape != arr.shape:
        raise TransformError(f"out has shape {out.shape}, matrix has {arr.shape}")
    if name == "NONE":
        if out is not arr:
            out[...] = arr
        return out
    fn = _METHODS[name]
    step = max(1, int(chunk_rows))
    for r0 in range(0, arr.shape[0], step):
        block = np.array(arr[r0 : r0 + step], dtype=np.float64, order="C")
        has_nan = bool(np.isnan(block).any())
        out[r0 : r0 + step] = fn(block, has_nan)
    return out
