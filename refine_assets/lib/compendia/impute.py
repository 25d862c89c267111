"""IterativeSVD imputation with fancyimpute 0.7.0 semantics: a native out-of-core backend and fancyimpute.

Reference: ``fancyimpute.IterativeSVD`` 0.7.0 (``iterative_svd.py``, ``solver.py``; Troyanskaya et al. 2001,
"Missing value estimation methods for DNA microarrays", SVDimpute, with fancyimpute's gradual rank
increase), as refine.bio runs it in ``create_compendia.py`` (``fancySVD.IterativeSVD(rank=10,
svd_algorithm="arpack").fit_transform(samples x genes)`` on a float32 matrix). Spec: ``methods.md`` §7,
``refinebio-teardown.md`` §8.2 step 9.

fancyimpute's algorithm, step by step (what both backends here compute):

1. ``missing = isnan(X)``; all missing -> error; none missing -> warning (nothing to do).
2. Fill missing cells with 0 (``init_fill_method="zero"``); observed cells never change.
3. For ``i = 0 .. max_iters - 1``: rank ``k = min(2**i, rank)`` (1, 2, 4, 8, 10, 10, ...) with
   ``gradual_rank_increase``, else ``rank``; ``R`` = best rank-``k`` approximation of the filled matrix
   (sklearn ``TruncatedSVD(k, "arpack")`` fit_transform + inverse_transform, *no centring*); clip ``R``
   to ``[min_value, max_value]`` (no-op by default); converged iff ``old = sum(X[missing]**2)`` is
   neither 0 nor (``< eps_f32`` while ``ssd > eps_f32``) and ``ssd / old < convergence_threshold``
   with ``ssd = sum((X[missing] - R[missing])**2)`` (values *before* the update); then
   ``X[missing] = R[missing]``; stop if converged. The first check compares with the zero fill
   (``old = 0``), so at least two iterations run.
4. Result: the filled matrix (observed cells are the input's).

The rank-``k`` reconstruction ``U_k S_k V_k^T`` does not depend on the SVD basis or signs, and it is the
same for ``X`` and ``X^T``, so any exact truncated SVD gives arpack's result to float precision and the
orientation (samples x genes in refine.bio, genes x samples on disk here) does not matter.

Backends (``impute(..., backend=...)``):

* ``"fancyimpute"``: calls ``fancyimpute.IterativeSVD`` itself (the reference; in memory, float32 like
  refine.bio, arpack; numpy's global RNG seeded for the call and restored, so arpack's random start is
  reproducible).
* ``"native"`` (default): the same iteration, float32 storage updated in place (only missing cells are
  written), the missing mask kept as packed bits (1/8 byte per value), and every pass over the matrix
  done in row chunks, so a ``numpy.memmap`` larger than RAM works. Two truncated-SVD engines:

  - ``svd="exact"``: eigen-decomposition (LAPACK ``syevr``) of the float64 Gram matrix of the smaller
    side, accumulated chunk by chunk; ``R = A V_k V_k^T`` (or ``U_k U_k^T A``). Deterministic; cost
    ``rows x cols x min(rows, cols)`` per iteration, so meant for a smaller side up to a few thousand.
  - ``svd="randomized"``: restarted block Krylov iteration (Musco & Musco 2015, "Randomized block
    Krylov methods for stronger and faster approximate SVD"; Halko, Martinsson & Tropp 2011) on
    ``l = rank + oversample`` (20) vectors, **warm-started from the previous iteration's right Ritz
    vectors** (the filled matrix changes little between iterations; sklearn's ``randomized_svd``
    restarts from random vectors every time). A round builds the Krylov space
    ``[A V, A A^T A V, ...]`` (``krylov_depth`` = 2 extra blocks), re-orthogonalised in float64, and does
    a Rayleigh-Ritz step; rounds repeat until every residual ``||A v_i - s_i u_i||`` of the top ``k``
    triplets is at most ``svd_tol`` (3e-7) x ``s_1`` — or has stalled at the float32 noise floor within
    10x of it — so the truncated SVD is exact to float32 precision whatever the spectrum looks like
    (``max_rounds`` caps the work). Every product is one streaming pass over the matrix with float32
    GEMMs; the reconstruction, the update of the missing cells and the next ``A V`` share one pass.
    A fixed seed makes it deterministic. ``report.svd_stats`` counts passes, rounds and the residuals.
  - ``svd="auto"``: exact when the smaller side is at most ``exact_max_side`` (default 300), else
    randomized.

Where and why numbers differ from fancyimpute (verified in ``test_compendia_impute.py`` and
``benchmarks/bench_impute.py``):

* fancyimpute itself is only reproducible to about 1e-5 RMS: arpack runs in float32 (refine.bio's
  matrix is float32) from a random start vector, and two seeds differ by 0.7e-5..3.7e-5 RMS on the
  imputed cells of the test matrices. In float64, native exact and fancyimpute agree to 1e-12 (the
  algorithm is identical); in float32 native exact and randomized agree with fancyimpute to
  1e-6..2.7e-5 RMS on synthetic low-rank-plus-noise data and on real microarray data (GEO GDS507),
  and to 0.8e-5..1.5e-5 RMS on the 20,000-gene benchmark matrices up to 10,000 samples — the same size
  as fancyimpute's own seed-to-seed noise; requirement 1e-4. Native exact uses a float64 Gram matrix
  and float64 sums (closer to the float64 result than fancyimpute is); randomized uses float32 products.
* Iteration count: identical in every test and benchmark; it could differ only if some iteration's
  ratio ``ssd / old`` lay within float32 noise of the threshold.
* Ties ``sigma_k == sigma_{k+1}`` make the rank-``k`` approximation itself ambiguous (for arpack too).
* Validation: fancyimpute raises from arpack only when the growing rank reaches ``min(shape)``
  (refine.bio's 2-sample test: "k must be between 1 and min(A.shape)"); here ``rank >= min(shape)``
  is rejected up front with a clear message for both backends. Infinite values are rejected (refine.bio
  turns them into NaN before the call; fancyimpute would produce NaN everywhere).
* Performance and memory (the point of the native backend): fancyimpute holds about 8 float32
  copies of the matrix and recomputes a full-matrix variance and MAE every iteration; native holds the
  matrix once (or none, memory-mapped) plus bounded chunk buffers. Figures: ``docs/compendia.md``.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "F32PREC",
    "ImputeError",
    "ImputeReport",
    "default_chunk_rows",
    "impute",
    "rank_schedule",
]

#: float32 machine epsilon, fancyimpute's ``F32PREC`` (used whatever the dtype, as there).
F32PREC = float(np.finfo(np.float32).eps)

#: Default values per chunk in the native passes (16 M values: 64 MB of float32 per chunk view).
DEFAULT_CHUNK_VALUES = 16 * 1024 * 1024

BACKENDS = ("native", "fancyimpute")
SVD_ENGINES = ("auto", "exact", "randomized")


class ImputeError(ValueError):
    """Bad input to the imputation (shape, dtype, rank, no observed values, infinite values)."""


@dataclass
class ImputeReport:
    """What an imputation did.

    ``ratios`` holds ``ssd / old`` of every iteration (NaN where ``old == 0``, i.e. the first);
    ``converged`` is False when ``max_iters`` ran out (for the fancyimpute backend: iterations <
    max_iters); ``singular_values`` are the top-``rank`` values of the last iteration (native only).
    ``n_missing`` cells were filled, ``fraction_missing`` = n_missing / (rows x cols). ``svd_stats``
    (native): ``passes`` over the matrix, Krylov ``rounds``, last and largest accepted relative
    ``residual``, ``round_cap_hits`` (iterations whose SVD stopped at ``max_rounds`` before reaching
    ``svd_tol``; 0 in every test and benchmark).
    """

    backend: str
    svd: str
    rank: int
    shape: tuple[int, int]
    n_missing: int
    fraction_missing: float
    iterations: int
    converged: bool
    ratios: list[float] = field(default_factory=list)
    singular_values: list[float] = field(default_factory=list)
    seconds: float = 0.0
    dtype: str = "float32"
    chunk_rows: int = 0
    params: dict = field(default_factory=dict)
    svd_stats: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain dict, JSON-ready (NaN ratios become None)."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["ratios"] = [None if not math.isfinite(r) else r for r in self.ratios]
        return d


def rank_schedule(rank: int, iterations: int, gradual_rank_increase: bool = True) -> list[int]:
    """Ranks used by iterations 0..iterations-1: ``min(2**i, rank)`` (or ``rank`` throughout)."""
    if not gradual_rank_increase:
        return [rank] * iterations
    return [min(2**i, rank) if i < 62 else rank for i in range(iterations)]


def default_chunk_rows(n_cols: int, chunk_values: int = DEFAULT_CHUNK_VALUES) -> int:
    """Rows per chunk so that one chunk holds about ``chunk_values`` values."""
    return max(1, int(chunk_values) // max(1, int(n_cols)))


# --------------------------------------------------------------------------------------------------
# validation


def _check_params(rank: int, backend: str, svd: str, convergence_threshold: float, max_iters: int) -> None:
    if backend not in BACKENDS:
        raise ImputeError(f"unknown backend {backend!r} (use one of {', '.join(BACKENDS)})")
    if svd not in SVD_ENGINES and not (backend == "fancyimpute" and svd in ("arpack", "randomized")):
        raise ImputeError(f"unknown svd engine {svd!r} (use one of {', '.join(SVD_ENGINES)})")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise ImputeError(f"rank must be a positive integer, got {rank!r}")
    if isinstance(max_iters, bool) or not isinstance(max_iters, (int, np.integer)) or max_iters < 1:
        raise ImputeError(f"max_iters must be a positive integer, got {max_iters!r}")
    if not (isinstance(convergence_threshold, (int, float)) and convergence_threshold > 0):
        raise ImputeError(f"convergence_threshold must be a positive number, got {convergence_threshold!r}")


def _scan(arr: np.ndarray, rows_per_chunk: int) -> int:
    """Count missing cells chunk by chunk; raise on infinite values (read-only pass)."""
    n_missing = 0
    for r0 in range(0, arr.shape[0], rows_per_chunk):
        blk = arr[r0 : r0 + rows_per_chunk]
        nan = np.isnan(blk)
        n_missing += int(np.count_nonzero(nan))
        inf = np.isinf(blk)
        if inf.any():
            r, c = np.argwhere(inf)[0]
            raise ImputeError(
                f"infinite value {float(blk[r, c])} at row {r0 + int(r)}, column {int(c)} "
                "(only NaN marks a missing value)"
            )
    return n_missing


def _check_matrix(arr: np.ndarray, rank: int) -> None:
    if arr.ndim != 2:
        raise ImputeError(f"matrix must be 2-D, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ImputeError(f"matrix must be real numeric, got dtype {arr.dtype}")
    n_rows, n_cols = arr.shape
    if n_rows < 2 or n_cols < 2:
        raise ImputeError(f"matrix must have at least 2 rows and 2 columns, got {n_rows} x {n_cols}")
    if rank >= min(n_rows, n_cols):
        raise ImputeError(
            f"rank {rank} is too large for a {n_rows} x {n_cols} matrix: it must be smaller than both "
            f"dimensions (at most {min(n_rows, n_cols) - 1}); a truncated SVD needs 0 < k < min(shape) "
            "(refine.bio's ARPACK call fails the same way), and a full-rank reconstruction would "
            "reproduce the zero fill and impute nothing"
        )


# --------------------------------------------------------------------------------------------------
# native backend


def _orth(x: np.ndarray) -> np.ndarray:
    """Orthonormal basis (float64, thin QR) of the columns of ``x``."""
    q, _ = np.linalg.qr(np.asarray(x, dtype=np.float64), mode="reduced")
    return q


def _orth_against(basis: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Orthonormal columns spanning ``y`` minus its projection on the orthonormal ``basis``.

    Block classical Gram-Schmidt applied twice before and once after the QR ("twice is enough",
    Giraud et al. 2005), so the result stays orthogonal to ``basis`` even where ``y`` lies almost
    inside its span (the QR of a near-zero block returns arbitrary directions).
    """
    y = np.array(y, dtype=np.float64)
    for _ in range(2):
        y -= basis @ (basis.T @ y)
    q = _orth(y)
    q -= basis @ (basis.T @ q)
    return _orth(q)


class _Native:
    """State of one native imputation on a C-contiguous working view ``a`` (p x q, float32/64)."""

    def __init__(self, a: np.ndarray, rows_per_chunk: int, clip: tuple[float | None, float | None]):
        self.a = a
        self.p, self.q = a.shape
        self.rows = rows_per_chunk
        self.chunks = [(r0, min(r0 + rows_per_chunk, self.p)) for r0 in range(0, self.p, rows_per_chunk)]
        self.packed = np.empty((self.p, (self.q + 7) // 8), dtype=np.uint8)
        self.lo, self.hi = clip

    def missing_idx(self, r0: int, r1: int) -> np.ndarray:
        """Flat indices (within the chunk) of the missing cells of rows r0..r1."""
        m = np.unpackbits(self.packed[r0:r1], axis=1, count=self.q)
        return np.flatnonzero(m)

    def init_fill(self, v: np.ndarray | None) -> tuple[int, np.ndarray | None]:
        """Record the mask, zero-fill missing cells; with ``v`` also return ``Y = A v``."""
        n = 0
        y = None if v is None else np.empty((self.p, v.shape[1]), dtype=np.float64)
        for r0, r1 in self.chunks:
            blk = self.a[r0:r1]
            m = np.isnan(blk)
            self.packed[r0:r1] = np.packbits(m, axis=1)
            n += int(np.count_nonzero(m))
            blk[m] = 0
            del m
            if y is not None:
                y[r0:r1] = blk @ v
        return n, y

    def times_t(self, qy: np.ndarray) -> np.ndarray:
        """``A^T qy`` (q x l, float64 accumulation over chunks of float32 products)."""
        qy32 = qy.astype(self.a.dtype)
        z = np.zeros((self.q, qy.shape[1]), dtype=np.float64)
        for r0, r1 in self.chunks:
            z += self.a[r0:r1].T @ qy32[r0:r1]
        return z

    def times(self, v: np.ndarray) -> np.ndarray:
        """``A v`` (p x l)."""
        v32 = v.astype(self.a.dtype)
        y = np.empty((self.p, v.shape[1]), dtype=np.float64)
        for r0, r1 in self.chunks:
            y[r0:r1] = self.a[r0:r1] @ v32
        return y

    def gram(self) -> np.ndarray:
        """Float64 Gram matrix of the smaller side: ``A^T A`` if q <= p else ``A A^T``."""
        if self.q <= self.p:
            g = np.zeros((self.q, self.q), dtype=np.float64)
            for r0, r1 in self.chunks:
                b = self.a[r0:r1].astype(np.float64)
                g += b.T @ b
            return g
        g = np.zeros((self.p, self.p), dtype=np.float64)
        cols = max(1, (self.rows * self.q) // max(1, self.p))
        for c0 in range(0, self.q, cols):
            b = np.ascontiguousarray(self.a[:, c0 : c0 + cols], dtype=np.float64)
            g += b @ b.T
        return g

    def update(
        self, left: np.ndarray | None, right: np.ndarray, v_next: np.ndarray | None, exact: bool
    ) -> tuple[float, float, np.ndarray | None]:
        """One fused pass: ``R`` chunk by chunk (``left[c] @ right.T``, or ``(A_c right) right.T`` when
        ``left`` is None), clip, convergence sums over the missing cells, write ``R`` into the missing
        cells, and (with ``v_next``) ``Y = A_new v_next`` for the next iteration."""
        ssd = 0.0
        old = 0.0
        wdt = np.float64 if exact else self.a.dtype
        right_w = right.astype(wdt)
        left_w = None if left is None else left.astype(wdt)
        v32 = None if v_next is None else v_next.astype(self.a.dtype)
        y = None if v_next is None else np.empty((self.p, v_next.shape[1]), dtype=np.float64)
        for r0, r1 in self.chunks:
            blk = self.a[r0:r1]
            idx = self.missing_idx(r0, r1)
            if idx.size:
                lc = blk.astype(np.float64) @ right_w if left_w is None else left_w[r0:r1]
                rec = (lc @ right_w.T).reshape(-1)
                new = rec[idx]
                del rec, lc
                if self.lo is not None:
                    new[new < self.lo] = self.lo
                if self.hi is not None:
                    new[new > self.hi] = self.hi
                flat = blk.reshape(-1)
                old_vals = flat[idx].astype(np.float64)
                diff = old_vals - new
                ssd += float(diff @ diff)
                old += float(old_vals @ old_vals)
                del diff, old_vals
                flat[idx] = new
                del new
            if y is not None:
                y[r0:r1] = blk @ v32
        return ssd, old, y


def _converged(ssd: float, old: float, threshold: float) -> bool:
    """fancyimpute ``IterativeSVD._converged`` on the two sums."""
    if old == 0 or (old < F32PREC and ssd > F32PREC):
        return False
    return (ssd / old) < threshold


def _krylov_svd(
    eng: _Native, y: np.ndarray, k: int, *, depth: int, tol: float, max_rounds: int, stats: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top singular triplets of ``eng.a`` by restarted block Krylov iteration from ``y = A V``.

    One round: ``Q_0 = orth(y)``, then ``depth`` times ``W = orth(A^T Q_j)``, ``Q_{j+1} = orth(A W)``
    (block Gram-Schmidt against all previous blocks, twice), ``Z = A^T [Q_0 .. Q_depth]`` and
    Rayleigh-Ritz on ``Z^T = Q^T A``. The round's right Ritz vectors ``V`` (first ``l`` columns) start
    the next round with ``y = A V``, which also gives the residuals ``||A v_i - s_i u_i||`` of the
    top ``k`` Ritz triplets; rounds stop when every residual is at most ``tol * s_1`` (or after
    ``max_rounds``). Returns ``(U, s, V, y)``: left/right Ritz vectors of the last round, its values,
    and ``A V[:, :l]`` (None when the round cap was reached without computing it).
    """
    ell = y.shape[1]
    # the Krylov basis cannot exceed the smaller dimension: fewer blocks for small matrices
    depth = max(0, min(depth, min(eng.p, eng.q) // ell - 1))
    prev = math.inf
    for rnd in range(max_rounds):
        blocks = [_orth(y)]
        zs = [eng.times_t(blocks[0])]
        for _ in range(depth):
            yj = eng.times(_orth(zs[-1]))
            qj = _orth_against(np.concatenate(blocks, axis=1), yj)
            del yj
            blocks.append(qj)
            zs.append(eng.times_t(qj))
        qall = np.concatenate(blocks, axis=1)
        zall = np.concatenate(zs, axis=1)
        qz, rz = np.linalg.qr(zall, mode="reduced")
        ub, sv, wt = np.linalg.svd(rz.T)
        vb = qz @ wt.T  # right Ritz vectors (orthonormal)
        u = qall @ ub  # left Ritz vectors
        stats["passes"] += 2 * depth + 1
        stats["rounds"] += 1
        if rnd == max_rounds - 1:
            stats["round_cap_hits"] = stats.get("round_cap_hits", 0) + 1
            return u, sv, vb, None
        y = eng.times(vb[:, :ell])
        stats["passes"] += 1
        res = np.sqrt(((y[:, :k] - u[:, :k] * sv[:k]) ** 2).sum(axis=0))
        rel = float(res.max() / sv[0]) if sv[0] > 0 else 0.0
        stats["residual"] = rel
        # converged, or stalled at the float32 noise floor (within 10x of the tolerance, no progress)
        if rel <= tol or (rel <= 10 * tol and rel >= 0.95 * prev):
            return u, sv, vb, y
        prev = rel
    raise AssertionError("unreachable")


def _run_native(
    a: np.ndarray,
    *,
    rank: int,
    svd: str,
    convergence_threshold: float,
    max_iters: int,
    gradual_rank_increase: bool,
    clip: tuple[float | None, float | None],
    rows_per_chunk: int,
    oversample: int,
    krylov_depth: int,
    svd_tol: float,
    max_rounds: int,
    seed: int,
    progress: Callable[[int, int, float], None] | None,
    stats: dict,
) -> tuple[int, bool, list[float], list[float]]:
    eng = _Native(a, rows_per_chunk, clip)
    p, q = a.shape
    ratios: list[float] = []
    exact = svd == "exact"
    sv: np.ndarray = np.zeros(0)
    stats.update(passes=1, rounds=0, residual=None, max_residual=0.0, round_cap_hits=0)
    if exact:
        eng.init_fill(None)
        y = None
    else:
        ell = min(rank + max(0, int(oversample)), min(p, q))
        rng = np.random.default_rng(seed)
        _, y = eng.init_fill(_orth(rng.standard_normal((q, ell))))
    converged = False
    it = 0
    for it in range(max_iters):
        k = min(2**it, rank) if (gradual_rank_increase and it < 62) else rank
        if exact:
            from scipy.linalg import eigh

            g = eng.gram()
            n = g.shape[0]
            w, vecs = eigh(g, subset_by_index=[n - rank, n - 1], driver="evr")
            del g
            order = np.argsort(w)[::-1]
            w, vecs = w[order], vecs[:, order]
            sv = np.sqrt(np.clip(w, 0, None))
            vk = vecs[:, :k]
            if q <= p:
                left, right = None, vk  # R = (A V_k) V_k^T
                stats["passes"] += 2
            else:
                left = vk  # R = U_k (U_k^T A)
                right = eng.times_t(vk)  # (U_k^T A)^T, q x k
                stats["passes"] += 3
            ssd, old, _ = eng.update(left, right, None, exact=True)
        else:
            u, sv, vb, _ = _krylov_svd(
                eng, y, k, depth=krylov_depth, tol=svd_tol, max_rounds=max_rounds, stats=stats
            )
            if stats["residual"] is not None:
                stats["max_residual"] = max(stats["max_residual"], stats["residual"])
            ell_v = vb[:, : min(rank + max(0, int(oversample)), min(p, q))]
            # reconstruct + update the missing cells + next iteration's warm start y = A_new V, one pass
            ssd, old, y = eng.update(u[:, :k] * sv[:k], vb[:, :k], ell_v, exact=False)
            stats["passes"] += 1
        ratio = ssd / old if old > 0 else float("nan")
        ratios.append(ratio)
        if progress is not None:
            progress(it + 1, k, ratio)
        if _converged(ssd, old, convergence_threshold):
            converged = True
            break
    del y
    return it + 1, converged, ratios, [float(s) for s in sv[:rank]]


# --------------------------------------------------------------------------------------------------
# fancyimpute backend


_ITER_RE = re.compile(r"\[IterativeSVD\] Iter (\d+):")


def _run_fancyimpute(
    x: np.ndarray,
    *,
    rank: int,
    svd_algorithm: str,
    convergence_threshold: float,
    max_iters: int,
    gradual_rank_increase: bool,
    clip: tuple[float | None, float | None],
    seed: int,
) -> tuple[np.ndarray, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fancyimpute import IterativeSVD

        solver = IterativeSVD(
            rank=rank,
            convergence_threshold=convergence_threshold,
            max_iters=max_iters,
            gradual_rank_increase=gradual_rank_increase,
            svd_algorithm=svd_algorithm,
            init_fill_method="zero",
            min_value=clip[0],
            max_value=clip[1],
            verbose=True,
        )
        state = np.random.get_state()
        np.random.seed(seed)
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                out = solver.fit_transform(x)
        finally:
            np.random.set_state(state)
    iters = [int(m) for m in _ITER_RE.findall(buf.getvalue())]
    return np.asarray(out), (max(iters) if iters else 0)


# --------------------------------------------------------------------------------------------------
# entry point


def impute(
    matrix: np.ndarray,
    rank: int = 10,
    backend: str = "native",
    *,
    svd: str = "auto",
    convergence_threshold: float = 1e-5,
    max_iters: int = 200,
    gradual_rank_increase: bool = True,
    min_value: float | None = None,
    max_value: float | None = None,
    inplace: bool = False,
    dtype: type | np.dtype = np.float32,
    chunk_values: int = DEFAULT_CHUNK_VALUES,
    oversample: int = 10,
    krylov_depth: int = 2,
    svd_tol: float = 3e-7,
    max_rounds: int = 20,
    exact_max_side: int = 300,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[np.ndarray, ImputeReport]:
    """Fill the NaN cells of ``matrix`` with IterativeSVD (fancyimpute 0.7.0 semantics).

    Contract: ``matrix`` is any 2-D real array (NaN = missing; orientation irrelevant, refine.bio passes
    samples x genes) with at least one observed value, no infinite value and
    ``rank < min(matrix.shape)``; otherwise :class:`ImputeError` is raised before anything is modified.
    Returns ``(filled, report)``: ``filled`` has the same shape, every missing cell filled, observed
    cells equal to the input's (in ``dtype``). With ``inplace=True`` (native only) a float32/float64
    C- or F-contiguous array, e.g. a writable ``numpy.memmap``, is updated in place and returned,
    computing in its own dtype; otherwise a copy in ``dtype`` (default float32, as refine.bio) is made.

    Parameters mirror ``fancyimpute.IterativeSVD`` (``rank``, ``convergence_threshold``, ``max_iters``,
    ``gradual_rank_increase``, ``min_value``/``max_value``; zero init fill always). Native-only:
    ``svd`` ("auto" | "exact" | "randomized"; for ``backend="fancyimpute"`` it selects sklearn's
    "arpack" (default for "auto"/"exact") or "randomized"), ``chunk_values`` (values per chunk of a
    pass), ``oversample``/``krylov_depth``/``svd_tol``/``max_rounds`` (randomized engine), ``seed``,
    ``exact_max_side``; ``progress(iteration, rank, ratio)`` is called after every iteration.

    Tolerance: native vs fancyimpute on the same float32 input, imputed cells: RMS difference below
    1e-4 (observed 1e-6..2.7e-5, within fancyimpute's own seed-to-seed spread; float64: 1e-12; see the module
    docstring for where the numbers differ and why), verified in
    ``refine_assets_tests/unit/test_compendia_impute.py``.

    Memory (native): the matrix once in ``dtype`` (none extra with ``inplace``), 1 bit per value for
    the mask, ``(rows + cols) x (rank + oversample)`` float64 factors, and per chunk of
    ``chunk_values`` values about 3 float64 arrays of its missing cells plus one float32/64 chunk;
    ``svd="exact"`` adds the float64 Gram matrix of the smaller side.
    """
    _check_params(rank, backend, svd, convergence_threshold, max_iters)
    arr = np.asarray(matrix)
    _check_matrix(arr, int(rank))
    rank = int(rank)
    clip = (min_value, max_value)
    t0 = time.perf_counter()

    if backend == "fancyimpute":
        if inplace:
            raise ImputeError("inplace=True is only supported by the native backend")
        work = np.array(arr, dtype=dtype, order="C")
        rows_per_chunk = default_chunk_rows(work.shape[1], chunk_values)
        n_missing = _scan(work, rows_per_chunk)
        if n_missing == work.size:
            raise ImputeError("matrix has no observed values (every cell is missing)")
        algo = "randomized" if svd == "randomized" else "arpack"
        if n_missing == 0:
            filled, iters = work, 0
        else:
            filled, iters = _run_fancyimpute(
                work,
                rank=rank,
                svd_algorithm=algo,
                convergence_threshold=convergence_threshold,
                max_iters=int(max_iters),
                gradual_rank_increase=gradual_rank_increase,
                clip=clip,
                seed=seed,
            )
        report = ImputeReport(
            backend="fancyimpute",
            svd=algo,
            rank=rank,
            shape=(int(arr.shape[0]), int(arr.shape[1])),
            n_missing=n_missing,
            fraction_missing=n_missing / arr.size,
            iterations=iters,
            converged=iters < int(max_iters),
            seconds=time.perf_counter() - t0,
            dtype=str(work.dtype),
            params={
                "convergence_threshold": convergence_threshold,
                "max_iters": int(max_iters),
                "gradual_rank_increase": gradual_rank_increase,
                "min_value": min_value,
                "max_value": max_value,
                "seed": seed,
            },
        )
        return filled, report

    # native
    if inplace:
        if arr.dtype not in (np.float32, np.float64):
            raise ImputeError(f"inplace imputation needs a float32 or float64 array, got {arr.dtype}")
        if not arr.flags.writeable:
            raise ImputeError("inplace imputation needs a writable array (memmap mode 'r+')")
        work = matrix if isinstance(matrix, np.ndarray) else arr  # keep a memmap a memmap (flush)
    else:
        work = np.array(arr, dtype=dtype, order="K")
        if work.dtype not in (np.float32, np.float64):
            raise ImputeError(f"dtype must be float32 or float64, got {work.dtype}")
    if work.flags.c_contiguous:
        view = work
    elif work.flags.f_contiguous:
        view = work.T  # C-contiguous; the reconstruction is the same for the transpose
    elif inplace:
        raise ImputeError("inplace imputation needs a C- or F-contiguous array")
    else:
        work = np.ascontiguousarray(work)
        view = work
    rows_per_chunk = default_chunk_rows(view.shape[1], chunk_values)
    n_missing = _scan(view, rows_per_chunk)
    if n_missing == view.size:
        raise ImputeError("matrix has no observed values (every cell is missing)")
    engine = svd
    if engine == "auto":
        engine = "exact" if min(view.shape) <= exact_max_side else "randomized"
    params = {
        "convergence_threshold": convergence_threshold,
        "max_iters": int(max_iters),
        "gradual_rank_increase": gradual_rank_increase,
        "min_value": min_value,
        "max_value": max_value,
        "seed": seed,
        "oversample": oversample,
        "krylov_depth": krylov_depth,
        "svd_tol": svd_tol,
        "max_rounds": max_rounds,
        "chunk_values": int(chunk_values),
    }
    stats: dict = {}
    if n_missing == 0:
        warnings.warn("matrix has no missing values: nothing to impute", stacklevel=2)
        iters, converged, ratios, sv = 0, True, [], []
    else:
        iters, converged, ratios, sv = _run_native(
            view,
            rank=rank,
            svd=engine,
            convergence_threshold=convergence_threshold,
            max_iters=int(max_iters),
            gradual_rank_increase=gradual_rank_increase,
            clip=clip,
            rows_per_chunk=rows_per_chunk,
            oversample=oversample,
            krylov_depth=krylov_depth,
            svd_tol=svd_tol,
            max_rounds=max_rounds,
            stats=stats,
            seed=seed,
            progress=progress,
        )
    if isinstance(work, np.memmap):
        work.flush()
    report = ImputeReport(
        backend="native",
        svd=engine,
        rank=rank,
        shape=(int(arr.shape[0]), int(arr.shape[1])),
        n_missing=n_missing,
        fraction_missing=n_missing / arr.size,
        iterations=iters,
        converged=converged,
        ratios=ratios,
        singular_values=sv,
        seconds=time.perf_counter() - t0,
        dtype=str(work.dtype),
        chunk_rows=rows_per_chunk,
        params=params,
        svd_stats=stats,
    )
    return work, report
