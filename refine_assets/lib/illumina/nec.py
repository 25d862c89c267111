"""limma's ``nec``: normexp background correction from negative controls or detection p-values.

Native numpy re-derivation (not a transliteration; limma is GPL) of ``limma::nec`` and the functions
it calls, ``normexp.fit.detection.p``, ``normexp.fit.control`` and ``normexp.signal`` (limma
``R/neqc.R`` and ``R/background-normexp.R``, unchanged since 2015: limma 3.34.9 as refine.bio ran
it and 3.54.1 here are identical for these functions). Method: Shi W, Oshlack A, Smyth GK,
*Optimizing the noise versus bias trade-off for Illumina whole genome expression BeadChips*,
Nucleic Acids Research 38(22):e204 (2010). Spec: ``specs/methods.md`` section 4.

Model: observed intensity x = background (normal, mean mu, sd sigma) + signal (exponential, mean
alpha). The corrected value is E[signal | x] (``normexp_signal``) plus ``offset`` (16 by default).
The parameters per array come from one of two estimators:

* **detection p-values** (``normexp_fit_detection_p``; the branch refine.bio uses; no negative
  control intensities needed): each jump of a probe's detection p-value marks negative-control
  intensities just below it, so the jump midpoints weighted by the jump sizes estimate the
  negative controls' mean and standard deviation; alpha = max(mean(x) - mu, 10). If, on the first
  array, the brightest probe has a smaller p than the dimmest, all p-values are replaced by 1 - p
  first (limma works with "fraction of negatives below", increasing with intensity);
* **negative-control probes** (``normexp_fit_control``, used by ``nec`` when ``status`` marks
  negative controls): mu and sigma are the mean and SD (n - 1) of the negatives (or, with
  ``robust=True``, log-normal moments from ``MASS::huber`` on log intensities); alpha =
  max(mean(regular) - mu, 10).

Every array is independent except for the 1 - p decision, which limma takes on the first array
only (callers that know their columns' orientation should convert them first; see
``refine_assets.lib.illumina.parse``). Nothing loops over probes in Python. The detection-p fit
does not sort by (p, intensity): only the dimmest and brightest intensity of every distinct p-value
enter limma's estimate, so each array's probes are grouped by p with an O(n) radix pre-sort of
16-bit buckets of p (checked; arrays whose p-values share a bucket out of order are sorted by
value) and ``fmin``/``maximum`` over the groups; the weighted sums over the jumps then run in p
order. The signal is computed in blocks of rows that stay in the CPU caches, and Cody's normal
tail evaluates each of its ranges on that range's members only. Loops run over arrays (fit) and
blocks (signal); the robust Huber iterations loop per array.

Missing values follow R exactly: NaN intensities are ignored by the column means and give NaN
corrected values; any NaN detection p-value of an array, or a NaN intensity that ends up next to a
jump, makes that array's parameters NaN, where limma stops with an error. Here such arrays raise
:class:`NecError` naming them (or, with ``errors="nan"``, get NaN output and are listed in
``NecResult.failed``).

Tolerance: equal to ``limma::nec`` within 1e-10 (absolute, on the corrected values, both
branches, with and without ``offset``), verified against Rscript + limma 3.54.1 in
``refine_assets_tests/unit/test_illumina_nec.py`` on simulated BeadChip-like matrices (observed
differences ~1e-11 on values of up to 6e4, i.e. ~1e-16 relative: R sums in long double, numpy in
double; :func:`log_upper_normal` is R's ``pnorm`` algorithm to 2e-15 relative). ``robust=True`` is checked against a hand computation of
MASS's Huber estimator (MASS is not installed here).

Nothing here imports dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "NecError",
    "NecResult",
    "NormexpParams",
    "huber",
    "log_upper_normal",
    "nec",
    "normexp_fit_control",
    "normexp_fit_detection_p",
    "normexp_signal",
]

_M_LN_SQRT_2PI = 0.918938533204672741780329736406  # log(sqrt(2*pi)), R's constant


class NecError(ValueError):
    """nec cannot correct the input (what limma stops on); the message names the arrays."""


@dataclass(frozen=True)
class NormexpParams:
    """normexp parameters per array, as limma returns them (``cbind(mu, logsigma, logalpha)``).

    Attributes:
        mu: background mean per array.
        log_sigma: log of the background standard deviation.
        log_alpha: log of the mean of the exponential signal.
        method: ``detection.p``, ``control`` or ``control-robust``.
        flipped: detection branch only: whether the p-values were replaced by 1 - p (decided on
            the first array, as limma does).
    """

    mu: np.ndarray
    log_sigma: np.ndarray
    log_alpha: np.ndarray
    method: str
    flipped: bool = False

    @property
    def sigma(self) -> np.ndarray:
        return np.exp(self.log_sigma)

    @property
    def alpha(self) -> np.ndarray:
        return np.exp(self.log_alpha)

    def valid(self) -> np.ndarray:
        """Arrays whose parameters limma's ``normexp.signal`` accepts (finite, sigma and alpha > 0)."""
        with np.errstate(over="ignore"):
            s, a = self.sigma, self.alpha
        return np.isfinite(self.mu) & np.isfinite(s) & np.isfinite(a) & (s > 0) & (a > 0)

    def as_records(self, names: Sequence[str] | None = None) -> list[dict]:
        """One dict per array (for provenance)."""
        k = self.mu.size
        names = list(names) if names is not None else [str(i) for i in range(k)]
        return [
            {
                "array": names[i],
                "mu": float(self.mu[i]),
                "sigma": float(np.exp(self.log_sigma[i])),
                "alpha": float(np.exp(self.log_alpha[i])),
                "method": self.method,
            }
            for i in range(k)
        ]


@dataclass(frozen=True)
class NecResult:
    """Output of :func:`nec`.

    Attributes:
        values: corrected intensities + offset, same shape as the input (float64).
        params: the normexp parameters used.
        clamped: per array, whether limma's "limit of numerical accuracy" clamp fired (some
            corrected value was negative, so all values were raised to at least 1e-6 before the
            offset; R prints a warning then).
        failed: indices of arrays whose parameters were invalid (only with ``errors="nan"``; their
            values are NaN).
        reasons: why, per failed array.
    """

    values: np.ndarray
    params: NormexpParams
    clamped: np.ndarray
    failed: tuple[int, ...] = field(default=())
    reasons: dict[int, str] = field(default_factory=dict)


def _as_matrix(x, what: str, *, contiguous: bool = False) -> np.ndarray:
    # The detection-p fit and the signal do not depend on the memory layout (their reductions run on
    # per-array copies, the rest is elementwise), so a column-major matrix (as R and the matrix
    # reader hold it) is used as is; ``contiguous`` (C order) for the reductions of the control fit.
    a = np.ascontiguousarray(x, dtype=np.float64) if contiguous else np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise NecError(f"{what} must be a matrix (probes x arrays), got {a.ndim} dimensions")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise NecError(f"{what} is empty ({a.shape[0]} probes x {a.shape[1]} arrays)")
    return a


def _names(names: Sequence[str] | None, k: int) -> list[str]:
    if names is None:
        return [f"array {i + 1}" for i in range(k)]
    names = [str(n) for n in names]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} arrays")
    return names


def normexp_fit_detection_p(x, detection_p, *, names: Sequence[str] | None = None) -> NormexpParams:
    """``limma:::normexp.fit.detection.p(x, detection.p)`` for numeric matrices (spec 4).

    Args:
        x: intensities, probes x arrays (any scale; limma intends raw intensities).
        detection_p: detection p-values (or detection scores 1 - p), same shape.
        names: array names for error messages.

    Returns:
        :class:`NormexpParams` (``method="detection.p"``). Arrays whose estimate is undefined
        (missing p-values, fewer than two distinct p-values, zero spread) get NaN/-inf entries,
        exactly where limma's later ``normexp.signal`` would stop; :func:`nec` reports them.

    Raises:
        NecError: shapes differ, or the first array has no finite intensity / a missing p-value at
            its brightest or dimmest probe (limma: "missing value where TRUE/FALSE needed").
    """
    X = _as_matrix(x, "x")
    P = _as_matrix(detection_p, "detection_p")
    labels = _names(names, X.shape[1])
    if X.shape != P.shape:
        raise NecError(
            "the detection p-values do not have the same dimension as the intensities "
            f"({P.shape[0]} x {P.shape[1]} vs {X.shape[0]} x {X.shape[1]})"
        )
    y0 = X[:, 0]
    if not np.any(~np.isnan(y0)):
        raise NecError(f"{labels[0]}: no intensity is present")
    p_at_max = P[int(np.nanargmax(y0)), 0]
    p_at_min = P[int(np.nanargmin(y0)), 0]
    if np.isnan(p_at_max) or np.isnan(p_at_min):
        raise NecError(f"{labels[0]}: detection p-value missing at the brightest or dimmest probe")
    flipped = bool(p_at_max < p_at_min)
    mu, sigma, alpha = _detection_p_estimates(X, P, flipped)
    with np.errstate(divide="ignore"):
        return NormexpParams(
            mu=mu, log_sigma=np.log(sigma), log_alpha=np.log(alpha), method="detection.p", flipped=flipped
        )


#: Bucket count of the detection p-value pre-sort (uint16 keys: numpy sorts them by radix).
_P_BUCKETS = 65535.0
#: Values per block of the blocked loops (work arrays stay in cache and are reused, not re-mapped).
_BLOCK_VALUES = 1 << 16


def _p_groups(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, lowest y, highest y) of every distinct p-value of one array, by ascending p.

    The probes are ordered by p with a stable radix sort of 16-bit buckets ``floor(p * 65535)``
    (monotone in p, so O(n)); if two different p-values share a bucket out of order (checked), the
    array is sorted by value instead. The lowest intensity of a group ignores missing values unless
    all are missing and the highest is missing if any is: R's ``order(p, y)`` puts missing
    intensities last within a p-value, so these are the intensities next to every jump.
    """
    with np.errstate(invalid="ignore"):
        keys = np.clip(p * _P_BUCKETS, 0.0, _P_BUCKETS).astype(np.uint16)
    order = np.argsort(keys, kind="stable")
    ps = p[order]
    if (ps[1:] < ps[:-1]).any():
        order = np.argsort(p, kind="stable")
        ps = p[order]
    ys = y[order]
    first = np.empty(ps.size, dtype=bool)
    first[0] = True
    np.not_equal(ps[1:], ps[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    with np.errstate(invalid="ignore"):
        return ps[starts], np.fmin.reduceat(ys, starts), np.maximum.reduceat(ys, starts)


def _detection_p_estimates(
    X: np.ndarray, P: np.ndarray, flipped: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu, sigma, alpha) per array of ``normexp.fit.detection.p``; ``flipped``: use 1 - P.

    limma orders every array by (p, y) and takes, at each jump of p (the first probe of every
    distinct p-value but the smallest), the midpoint of the intensities on both sides, weighted by
    the jump size. Only the brightest probe below and the dimmest probe at a jump matter, so instead
    of the two-key sort the probes are grouped by p (:func:`_p_groups`, a radix pre-sort) and each
    group's lowest and highest intensity taken. The weighted sums then run over the jumps in p
    order, sequentially, as limma's loop-free R code orders them.
    """
    n, k = X.shape
    has_nan_p = np.zeros(k, dtype=bool)
    means = np.empty(k)
    q_parts, lo_parts, hi_parts, col_parts = [], [], [], []
    step = 8  # columns transposed together: one cache line of each row
    for j0 in range(0, k, step):
        j1 = min(j0 + step, k)
        Pt = np.empty((j1 - j0, n))
        Pt[...] = P[:, j0:j1].T
        if flipped:
            np.subtract(1.0, Pt, out=Pt)
        Xt = np.empty((j1 - j0, n))
        Xt[...] = X[:, j0:j1].T
        has_nan_p[j0:j1] = np.isnan(Pt).any(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[j0:j1] = np.nanmean(Xt, axis=1) if np.isnan(Xt).any() else Xt.mean(axis=1)
        for j in range(j0, j1):
            if has_nan_p[j]:  # limma: NA parameters; nec reports the array
                continue
            q, lo, hi = _p_groups(Pt[j - j0], Xt[j - j0])
            q_parts.append(q)
            lo_parts.append(lo)
            hi_parts.append(hi)
            col_parts.append(np.full(q.size, j, dtype=np.intp))
    if q_parts:
        q, lowest, highest = np.concatenate(q_parts), np.concatenate(lo_parts), np.concatenate(hi_parts)
        column = np.concatenate(col_parts)
    else:
        q = lowest = highest = np.empty(0)
        column = np.empty(0, dtype=np.intp)
    same = column[1:] == column[:-1]  # consecutive groups of one array: a jump
    col = column[1:][same]
    d = (q[1:] - q[:-1])[same]
    with np.errstate(invalid="ignore", divide="ignore"):
        ync = ((lowest[1:] + highest[:-1]) / 2)[same]
        dmin = np.full(k, np.inf)
        np.minimum.at(dmin, col, d)
        freq = d / dmin[col]
        nj = np.bincount(col, weights=freq, minlength=k)
        mu = np.bincount(col, weights=ync * freq, minlength=k) / nj
        v = (ync - mu[col]) ** 2
        sigma = np.sqrt(np.bincount(col, weights=v * freq, minlength=k) / nj * nj / (nj - 1))
        alpha = np.maximum(means - mu, 10.0)  # pmax(colMeans(x, na.rm=TRUE) - mu, 10)
        bad = has_nan_p | (np.bincount(col, minlength=k) < 2)
        mu = np.where(bad, np.nan, mu)
        sigma = np.where(bad, np.nan, sigma)
        alpha = np.where(np.isnan(mu), np.nan, alpha)
    return mu, sigma, alpha


def huber(y: np.ndarray, k: float = 1.5, tol: float = 1e-6) -> tuple[float, float]:
    """``MASS::huber(y, k, tol)``: Huber M-estimate of location with MAD scale.

    NaN dropped; ``mu`` starts at the median, ``s = mad(y)`` (1.4826 x median absolute deviation);
    iterate ``mu1 = mean(clip(y, mu - k s, mu + k s))`` until ``|mu - mu1| < tol s`` and return
    the *previous* iterate ``mu`` with ``s`` (as MASS does).

    Raises:
        NecError: MAD is zero ("cannot estimate scale").
    """
    y = np.asarray(y, dtype=np.float64)
    y = y[~np.isnan(y)]
    if y.size == 0:
        raise NecError("cannot estimate scale: no values")
    mu = float(np.median(y))
    s = float(1.4826 * np.median(np.abs(y - mu)))
    if s == 0:
        raise NecError("cannot estimate scale: MAD is zero for this sample")
    for _ in range(10000):
        mu1 = float(np.sum(np.clip(y, mu - k * s, mu + k * s)) / y.size)
        if abs(mu - mu1) < tol * s:
            return mu, s
        mu = mu1
    raise NecError("Huber estimator did not converge")


def normexp_fit_control(
    x,
    status: Sequence[str],
    negctrl: str = "negative",
    regular: str = "regular",
    robust: bool = False,
) -> NormexpParams:
    """``limma::normexp.fit.control(x, status, negctrl, regular, robust)`` for numeric matrices.

    Rows whose ``status`` equals ``negctrl`` (case-insensitive) are negative controls, rows equal to
    ``regular`` are regular probes; other rows are ignored for the fit.

    * ``robust=False``: mu = column means of the negatives (NaN ignored), sigma = sqrt(sum of
      squared deviations (NaN ignored) / (number of negative rows - 1));
    * ``robust=True``: per array ``huber(log(negatives))`` -> (m, s); mu = exp(m + s^2/2),
      omega = exp(s^2), sigma = sqrt(omega (omega - 1)) exp(m) (log-normal moments);
    * alpha = max(mean(regular) - mu, 10).

    Raises:
        NecError: no regular probes, fewer than two negative controls, status length mismatch.
    """
    X = _as_matrix(x, "x", contiguous=True)
    st = np.char.lower(np.asarray([str(s) for s in status], dtype=str))
    if st.size != X.shape[0]:
        raise NecError(f"status has {st.size} entries for {X.shape[0]} probes")
    xr = X[st == regular.lower()]
    if xr.shape[0] == 0:
        raise NecError("No regular probes found")
    xn = X[st == negctrl.lower()]
    if xn.shape[0] < 2:
        raise NecError("Fewer than two negative control probes found")
    with np.errstate(invalid="ignore", divide="ignore"):
        if robust:
            k = X.shape[1]
            m = np.empty(k)
            s = np.empty(k)
            with np.errstate(invalid="ignore", divide="ignore"):
                logs = np.log(xn)
            for j in range(k):  # one Huber fit per array (short loop over arrays)
                m[j], s[j] = huber(logs[:, j])
            mu = np.exp(m + s**2 / 2)
            omega = np.exp(s**2)
            sigma = np.sqrt(omega * (omega - 1)) * np.exp(m)
            method = "control-robust"
        else:
            mu = np.nanmean(xn, axis=0)
            sigma = np.sqrt(np.nansum((xn - mu) ** 2, axis=0) / (xn.shape[0] - 1))
            method = "control"
        alpha = np.maximum(np.nanmean(xr, axis=0) - mu, 10.0)
        return NormexpParams(mu=mu, log_sigma=np.log(sigma), log_alpha=np.log(alpha), method=method)


# Cody (1969) rational approximations of the normal tail, coefficients of SPECFUN ANORM as R's
# nmath/pnorm.c uses them (public-domain algorithm; constants verified against R through the tests).
_A = (
    2.2352520354606839287,
    161.02823106855587881,
    1067.6894854603709582,
    18154.981253343561249,
    0.065682337918207449113,
)
_B = (47.20258190468824187, 976.09855173777669322, 10260.932208618978205, 45507.789335026729956)
_C = (
    0.39894151208813466764,
    8.8831497943883759412,
    93.506656132177855979,
    597.27027639480026226,
    2494.5375852903726711,
    6848.1904505362823326,
    11602.651437647350124,
    9842.7148383839780218,
    1.0765576773720192317e-8,
)
_D = (
    22.266688044328115691,
    235.38790178262499861,
    1519.377599407554805,
    6485.558298266760755,
    18615.571640885098091,
    34900.952721145977266,
    38912.003286093271411,
    19685.429676859990727,
)
_P = (
    0.21589853405795699,
    0.1274011611602473639,
    0.022235277870649807,
    0.001421619193227893466,
    2.9112874951168792e-5,
    0.02307344176494017303,
)
_Q = (
    1.28426009614491121,
    0.468238212480865118,
    0.0659881378689285515,
    0.00378239633202758244,
    7.29751555083966205e-5,
)
_M_1_SQRT_2PI = 0.398942280401432677939946059934
_M_SQRT_32 = 5.656854249492380195206754896838
_EPS_HALF = np.finfo(np.float64).eps * 0.5


#: Below this z, log P(Z > z) is exactly -0.0 in Cody's algorithm (exp(-z^2/2) underflows to 0).
_Z_LOWER_ZERO = -40.0


def _tail_from(x: np.ndarray, split: np.ndarray, temp: np.ndarray) -> np.ndarray:
    """Cody's tail for |z| > qnorm(3/4): ``log(small)`` where ``x > 0``, else ``log1p(-small)``, with
    ``small = exp(-split^2/2) temp`` evaluated through the exact split ``trunc(16 split)/16``."""
    xsq = np.trunc(split * 16.0)
    xsq /= 16.0
    dl = (split - xsq) * (split + xsq)
    a = -xsq * (xsq * 0.5)
    out = np.empty_like(x)
    pos = x > 0
    ip = np.flatnonzero(pos)
    if ip.size:
        out[ip] = a[ip] - dl[ip] * 0.5 + np.log(temp[ip])
    if ip.size < x.size:
        ineg = np.flatnonzero(~pos)
        small = np.exp(a[ineg])
        small *= np.exp(-(dl[ineg] * 0.5))
        small *= temp[ineg]
        out[ineg] = np.log1p(-small)
    return out


def _far_tail(z: np.ndarray) -> np.ndarray:
    """:func:`log_upper_normal` for |z| > sqrt(32) (and NaN)."""
    out = np.empty_like(z)
    y = np.abs(z)
    finite = y < 1e170
    below = z < _Z_LOWER_ZERO
    i3 = np.flatnonzero(finite & ~below)
    if i3.size:
        x = z[i3]
        yy = y[i3]
        xsq = 1.0 / (x * x)
        xnum = _P[5] * xsq
        xden = xsq.copy()
        for i in range(4):
            xnum += _P[i]
            xnum *= xsq
            xden += _Q[i]
            xden *= xsq
        xnum += _P[4]
        xden += _Q[4]
        temp = xsq * xnum
        temp /= xden
        temp = (_M_1_SQRT_2PI - temp) / yy
        out[i3] = _tail_from(x, x, temp)
    out[below & finite] = -0.0  # small = exp(-z^2/2)... underflows to 0: log1p(-0) in Cody's branch
    i4 = np.flatnonzero(~finite)  # NaN, infinite or beyond 1e170
    if i4.size:
        x = z[i4]
        out[i4] = np.where(np.isnan(x), x, np.where(x > 0, -np.inf, 0.0))
    return out


def _log_upper_normal_1d(z: np.ndarray) -> np.ndarray:
    """:func:`log_upper_normal` of a 1-D block (each range computed on its members only)."""
    out = np.empty_like(z)
    y = np.abs(z)
    with np.errstate(all="ignore"):
        i1 = np.flatnonzero(y <= 0.67448975)  # |z| <= qnorm(3/4)
        if i1.size:
            x = z[i1]
            xsq = x * x
            tiny = np.abs(x) <= _EPS_HALF
            any_tiny = bool(tiny.any())
            if any_tiny:
                xsq[tiny] = 0.0
            xnum = _A[4] * xsq
            xden = xsq.copy()
            for i in range(3):
                xnum += _A[i]
                xnum *= xsq
                xden += _B[i]
                xden *= xsq
            if any_tiny:
                xnum[tiny] = 0.0
                xden[tiny] = 0.0
            xnum += _A[3]
            xden += _B[3]
            temp = x * xnum
            temp /= xden
            out[i1] = np.log(0.5 - temp)
        i2 = np.flatnonzero((y <= _M_SQRT_32) & (y > 0.67448975))  # qnorm(3/4) < |z| <= sqrt(32)
        if i2.size:
            yy = y[i2]
            xnum = _C[8] * yy
            xden = yy.copy()
            for i in range(7):
                xnum += _C[i]
                xnum *= yy
                xden += _D[i]
                xden *= yy
            xnum += _C[7]
            xden += _D[7]
            out[i2] = _tail_from(z[i2], yy, xnum / xden)
        rest = np.flatnonzero(~(y <= _M_SQRT_32))  # beyond sqrt(32), infinite or NaN
        if rest.size:
            out[rest] = _far_tail(z[rest])
    return out


def log_upper_normal(z) -> np.ndarray:
    """log P(Z > z) for a standard normal, computed as R's ``pnorm(z, lower.tail=FALSE, log.p=TRUE)``.

    Cody's algorithm in three ranges of |z| (<= 0.67448975, <= sqrt(32), beyond) with the exact
    splitting of z^2/2, vectorized (in blocks, each range on its own members). Reproducing R's
    algorithm rather than using ``scipy.special.log_ndtr`` matters only far in the tail, where
    ``normexp.signal`` cancels ``mu_sf`` against ``sigma^2 phi/Phi`` and amplifies any difference
    between the two by ~z^2: with ``log_ndtr``, corrected values of probes ~2000 SDs below the
    background differed from limma by 1e-5; with this function they agree to < 1e-10.
    """
    z = np.asarray(z, dtype=np.float64)
    flat = np.ascontiguousarray(z).ravel()
    out = np.empty(flat.size)
    for i in range(0, flat.size, _BLOCK_VALUES):
        out[i : i + _BLOCK_VALUES] = _log_upper_normal_1d(flat[i : i + _BLOCK_VALUES])
    return out.reshape(z.shape)


def _checked_scales(params: NormexpParams) -> tuple[np.ndarray, np.ndarray]:
    """(sigma, alpha) through limma's exp-of-log round trip; both must be positive."""
    sigma = np.exp(params.log_sigma)
    alpha = np.exp(params.log_alpha)
    if np.any(~(alpha > 0)):
        raise NecError("alpha must be positive")
    if np.any(~(sigma > 0)):
        raise NecError("sigma must be positive")
    return sigma, alpha


def _signal_blocks(X: np.ndarray, mu: np.ndarray, sigma: np.ndarray, alpha: np.ndarray, out: np.ndarray,
                   offset: float | None = None) -> np.ndarray:  # fmt: skip
    """``normexp.signal`` of every array of ``X`` (probes x arrays) into ``out``, by row blocks.

    Returns, per array, whether some non-missing signal was negative (limma's clamp is the caller's:
    :func:`_clamp`). With ``offset`` the values are ``signal + offset``.
    """
    n, k = X.shape
    sigma2 = sigma * sigma
    shift = sigma2 / alpha
    log_sigma = np.log(sigma)
    negative = np.zeros(k, dtype=bool)
    rows = max(1, _BLOCK_VALUES // k)
    with np.errstate(invalid="ignore", over="ignore"):
        for i0 in range(0, n, rows):
            block = X[i0 : i0 + rows]
            mu_sf = block - mu
            mu_sf -= shift  # x - mu - sigma^2/alpha
            z = np.subtract(0.0, mu_sf)
            z /= sigma  # R's standardised 0 in dnorm and pnorm
            e = 0.5 * z
            e *= z
            e += _M_LN_SQRT_2PI
            e += log_sigma
            np.negative(e, out=e)  # log density: -(log sqrt(2 pi) + z^2/2 + log sigma)
            e -= _log_upper_normal_1d(z.ravel()).reshape(z.shape)
            np.exp(e, out=e)
            e *= sigma2
            e += mu_sf
            negative |= (e < 0).any(axis=0)
            if offset is not None:
                e += offset
            out[i0 : i0 + rows] = e
    return negative


def _corrected(X: np.ndarray, params: NormexpParams, offset: float, out: np.ndarray) -> np.ndarray:
    """``normexp.signal`` + limma's clamp + ``offset`` of every array of ``X`` into ``out``.

    The signal and the offset are added in one pass; the (rare) arrays that need the clamp are
    computed again without the offset, clamped, then offset. Returns the per-array clamp flags.
    """
    sigma, alpha = _checked_scales(params)
    negative = _signal_blocks(X, params.mu, sigma, alpha, out, offset)
    if negative.any():
        cols = np.flatnonzero(negative)
        sub = np.empty((X.shape[0], cols.size))
        _signal_blocks(np.ascontiguousarray(X[:, cols]), params.mu[cols], sigma[cols], alpha[cols], sub)
        _clamp(sub, np.ones(cols.size, dtype=bool))
        sub += offset
        out[:, cols] = sub
    return negative


def _clamp(signal: np.ndarray, negative: np.ndarray) -> None:
    """limma's clamp: arrays with a negative signal get every non-missing value raised to >= 1e-6."""
    if negative.any():
        cols = np.flatnonzero(negative)
        sub = signal[:, cols]
        signal[:, cols] = np.where(np.isnan(sub), sub, np.maximum(sub, 1e-6))


def normexp_signal(params: NormexpParams, x) -> tuple[np.ndarray, np.ndarray]:
    """``limma::normexp.signal`` applied to every array: E[signal | observed] under normexp.

    With ``sigma = exp(log_sigma)``, ``alpha = exp(log_alpha)`` (the same exp-of-log round trip as
    limma), ``mu_sf = x - mu - sigma^2/alpha`` and ``t = mu_sf / sigma``:
    ``signal = mu_sf + sigma^2 exp(log phi(0; mu_sf, sigma) - log(1 - Phi(0; mu_sf, sigma)))``
    (R's ``dnorm(log=TRUE)`` formula and :func:`log_upper_normal` = R's ``pnorm(lower.tail=FALSE,
    log.p=TRUE)``). If any non-NaN signal of an array is negative, all of
    that array's values are raised to at least 1e-6 (limma's clamp, with its warning).
    Computed in blocks of rows (work arrays stay in cache); same operations, same order as limma.

    Args:
        params: per-array parameters (must be valid: finite, sigma > 0, alpha > 0).
        x: intensities, probes x arrays.

    Returns:
        (signal without offset, per-array bool "clamp fired").
    """
    X = _as_matrix(x, "x")
    if params.mu.size != X.shape[1]:
        raise NecError(f"{params.mu.size} parameter sets for {X.shape[1]} arrays")
    sigma, alpha = _checked_scales(params)
    signal = np.empty(X.shape)
    clamped = _signal_blocks(X, params.mu, sigma, alpha, signal)
    _clamp(signal, clamped)
    return signal, clamped


def nec(
    x,
    detection_p=None,
    *,
    status: Sequence[str] | None = None,
    negctrl: str = "negative",
    regular: str = "regular",
    offset: float = 16.0,
    robust: bool = False,
    names: Sequence[str] | None = None,
    errors: Literal["raise", "nan"] = "raise",
) -> NecResult:
    """``limma::nec(x, status, negctrl, regular, offset, robust, detection.p)`` for numeric matrices.

    If ``status`` marks any negative control (case-insensitive ``negctrl``), the parameters come
    from :func:`normexp_fit_control` (``detection_p`` ignored); otherwise from
    :func:`normexp_fit_detection_p` (``detection_p`` required). Then every array (all rows,
    controls included) is corrected with :func:`normexp_signal` and ``offset`` is added.

    Args:
        x: intensities, probes x arrays (a 1-D vector is one array).
        detection_p: detection p-values (or scores) of the same shape.
        status: per-probe type labels (optional).
        negctrl, regular: labels of negative controls and regular probes in ``status``.
        offset: added after correction (limma default 16).
        robust: Huber-based negative-control estimates (control branch only).
        names: array names for messages.
        errors: ``raise`` (limma's behaviour: the whole call fails when an array's parameters
            are invalid) or ``nan`` (those arrays get NaN values and are listed in
            ``NecResult.failed``; the others are exactly as with ``raise``).

    Raises:
        NecError: invalid input or, with ``errors="raise"``, arrays whose parameters are invalid
            (listed by name with the reason).
    """
    X = _as_matrix(x, "x")
    labels = _names(names, X.shape[1])
    if errors not in ("raise", "nan"):
        raise ValueError("errors must be 'raise' or 'nan'")
    if not np.isfinite(offset):
        raise NecError(f"offset must be a finite number (got {offset})")
    use_control = status is not None and bool(
        np.any(np.char.lower(np.asarray([str(s) for s in status], dtype=str)) == negctrl.lower())
    )
    if use_control:
        params = normexp_fit_control(X, status, negctrl, regular, robust)
    else:
        if detection_p is None:
            raise NecError("detection p-values are required when no negative control probes are marked")
        params = normexp_fit_detection_p(X, detection_p, names=labels)
    ok = params.valid()
    failed = tuple(int(i) for i in np.flatnonzero(~ok))
    reasons: dict[int, str] = {}
    if failed:
        P = None if use_control or detection_p is None else np.asarray(detection_p, dtype=np.float64)
        if P is not None and P.ndim == 1:
            P = P[:, None]
        for i in failed:
            if P is not None and np.isnan(P[:, i]).any():
                why = "detection p-values contain missing values"
            elif P is not None and np.unique(P[:, i]).size < 3:
                why = f"only {np.unique(P[:, i]).size} distinct detection p-value(s); at least 3 are needed"
            elif not np.isfinite(params.mu[i]):
                why = "background mean is undefined (missing intensities next to detection p-value jumps)"
            else:
                why = f"background sd {float(np.exp(params.log_sigma[i])):.4g} is not positive"
            reasons[i] = why
    if failed and errors == "raise":
        listed = [f"{labels[i]}: {reasons[i]}" for i in failed[:10]]
        more = f" (and {len(failed) - 10} more)" if len(failed) > 10 else ""
        raise NecError("normexp parameters could not be estimated for " + "; ".join(listed) + more)
    clamped = np.zeros(X.shape[1], dtype=bool)
    good = np.flatnonzero(ok)
    if good.size == X.shape[1]:
        values = np.empty(X.shape)
        clamped = _corrected(X, params, offset, values)
    else:
        values = np.full(X.shape, np.nan)
        if good.size:
            sub = NormexpParams(
                mu=params.mu[good],
                log_sigma=params.log_sigma[good],
                log_alpha=params.log_alpha[good],
                method=params.method,
                flipped=params.flipped,
            )
            corrected = np.empty((X.shape[0], good.size))
            clamped[good] = _corrected(np.ascontiguousarray(X[:, good]), sub, offset, corrected)
            values[:, good] = corrected
    return NecResult(values=values, params=params, clamped=clamped, failed=failed, reasons=reasons)
