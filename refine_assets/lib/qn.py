"""Quantile normalization to a target distribution, exactly as preprocessCore does it.

Reference: Bioconductor ``preprocessCore`` (Bolstad et al. 2003, Bioinformatics 19:185), R functions
``normalize.quantiles.use.target`` and ``normalize.quantiles.determine.target``, C code ``src/qnorm.c``
(``using_target``, ``determine_target``, ``qnorm_c_determine_target``). Spec: ``methods.md`` §5;
refine.bio usage: ``refinebio-teardown.md`` §6.4 (smasher QN) and §7 (QN reference targets).

Semantics reproduced (``quantile_normalize_to_target``), per column independently:

* Target: missing values dropped, sorted ascending; ``T`` = number of remaining values.
* The column's non-missing values are ranked; ties get the average rank (a tied run over 0-based sorted
  positions ``i..j`` gets ``(i + j + 2) / 2``).
* Case A, ``T == nrow`` and the column has no missing value: an integer rank ``r`` takes
  ``target[r]`` (1-based); a half-integer rank (tie of even size) takes
  ``0.5 * (target[floor r] + target[floor r + 1])``. A tied block therefore gets the *middle* target
  value(s), not the mean of the block's target values.
* Case B, otherwise (``T != nrow`` or missing values in the column; ``n`` = non-missing count):
  ``q = (r - 1) / (n - 1)``, ``t = 1 + (T - 1) q``, ``f = floor(t + 4 eps)``, ``d = t - f`` (set to 0 when
  ``|d| <= 4 eps``); value = ``target[f]`` if ``d == 0``, ``target[f + 1]`` if ``d == 1``, else
  ``(1 - d) target[f] + d target[f + 1]`` clamped to the target's ends.
* Missing cells stay missing. A column with a single value (``n == 1``, where the C code evaluates
  ``0/0``) gets the target maximum: this is what preprocessCore 1.60.2 returns on x86-64 (the C code's
  behaviour there is undefined; the value was measured).

Missing values are NaN here. preprocessCore only treats R's ``NA_real_`` as missing; a plain NaN
reaching its C code (e.g. through rpy2, as in refine.bio) is compared as "equal" to everything by
``qsort`` and corrupts the ordering (``methods.md`` quirk Q8). We treat every NaN as missing, which is
what R does for ``NA`` — so results equal R's on the same matrix with ``NA`` in those cells.

Tolerance: the arithmetic is the C code's, operation by operation, in IEEE double, so results are
expected bit-identical to R; the tests (``refine_assets_tests/unit/test_qn.py``) compare with
preprocessCore through ``Rscript`` at an absolute tolerance of 1e-12 on random matrices, integer
matrices with many ties, targets longer and shorter than the number of rows, NAs, all-NA, constant
and single-value columns, and a real GEO data set (GDS507).

``determine_target`` follows the pthread build of preprocessCore (the Debian/Bioconductor build):
sorted columns are summed in extended precision (``long double``), converted to double and divided
by the number of columns; columns with missing values are first interpolated to ``nrow`` points.
Tolerance vs R: 1e-12 relative (differences only from summation order inside the extended-precision
sum). ``StreamingTarget`` computes the same mean one sample at a time.

No function here loops over values in Python: columns are processed in batches (one ``argsort`` over a
``(columns, genes)`` block), in float64 whatever the input dtype, and batches can run on several
threads (numpy releases the GIL while sorting).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# Matrix files (the ``qn`` command's input and output) are read and written by the package's one matrix
# reader/writer; the names stay importable from here.
from refine_assets.lib.matrix_io import (
    MatrixFormatError,
    MatrixTsv,
    atomic_output,
    read_matrix_tsv,
    write_matrix_tsv,
)

__all__ = [
    "MatrixFormatError",
    "MatrixTsv",
    "QuantileNormalizationError",
    "StreamingTarget",
    "TargetFormatError",
    "atomic_output",
    "default_chunk_columns",
    "determine_target",
    "prepare_target",
    "quantile_normalize_to_target",
    "read_matrix_tsv",
    "read_target",
    "write_matrix_tsv",
    "write_target",
]

#: preprocessCore's snapping tolerance ``4 * DOUBLE_EPS`` (DOUBLE_EPS = DBL_EPSILON).
EPS4 = 4.0 * float(np.finfo(np.float64).eps)

#: Values per column batch (columns x rows); about 8 MB per float64 work array.
DEFAULT_BATCH_VALUES = 1_000_000


class QuantileNormalizationError(ValueError):
    """Bad input to quantile normalization (shape, dtype, empty target, column without values).

    ``column`` is the 0-based index of the offending matrix column when one is to blame, else None.
    """

    def __init__(self, message: str, *, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


class TargetFormatError(ValueError):
    """A target file that is not one finite number per line in ascending order."""


# --------------------------------------------------------------------------------------------------
# helpers


def _check_matrix(matrix: np.ndarray, what: str = "matrix") -> np.ndarray:
    arr = np.asarray(matrix)
    if arr.ndim != 2:
        raise QuantileNormalizationError(f"{what} must be 2-D (genes x samples), got shape {arr.shape}")
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise QuantileNormalizationError(f"{what} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def prepare_target(target: np.ndarray) -> np.ndarray:
    """The target as preprocessCore uses it: missing values dropped, sorted ascending, float64.

    Raises :class:`QuantileNormalizationError` if nothing is left or a value is infinite (R would
    accept an infinite target value and produce infinities/NaN; that is never a meaningful target).
    """
    t = np.asarray(target)
    if t.ndim != 1:
        raise QuantileNormalizationError(f"target must be 1-D, got shape {t.shape}")
    if t.dtype == np.bool_ or not (np.issubdtype(t.dtype, np.floating) or np.issubdtype(t.dtype, np.integer)):
        raise QuantileNormalizationError(f"target must be numeric, got dtype {t.dtype}")
    t = t.astype(np.float64)  # always a copy
    t = t[~np.isnan(t)]
    if t.size == 0:
        raise QuantileNormalizationError("target has no non-missing values")
    if not np.isfinite(t).all():
        raise QuantileNormalizationError("target contains infinite values")
    t.sort()
    return t


def default_chunk_columns(n_rows: int, batch_values: int = DEFAULT_BATCH_VALUES) -> int:
    """Columns per batch so that one float64 work array holds about ``batch_values`` values."""
    return max(1, batch_values // max(1, n_rows))


def _gather(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``table[idx]`` for a shared 1-D table, row-wise ``take_along_axis`` for a 2-D one."""
    if table.ndim == 1:
        return table[idx]
    return np.take_along_axis(table, idx, axis=-1)


def _interpolate(pos: np.ndarray, table: np.ndarray, n_table: np.ndarray | int) -> np.ndarray:
    """preprocessCore's quantile estimate at 1-based fractional positions ``pos`` in sorted ``table``.

    Operation-for-operation port of the C branch used in ``using_target`` and ``determine_target``:
    ``f = floor(pos + 4 eps)``, ``d = pos - f`` snapped to 0 when ``|d| <= 4 eps``; ``d == 0`` -> element
    ``f``; ``d == 1`` -> element ``f + 1``; else ``(1 - d) * table[f] + d * table[f + 1]`` when
    ``0 < f < n``, the last element when ``f >= n``, the first otherwise. ``n_table`` is the number of
    valid (leading) entries of each table row. A NaN position (the C code's ``0/0`` for a single value
    or a target length of 1) yields the last valid element, which is what the x86-64 build returns.
    """
    with np.errstate(invalid="ignore"):
        f = np.floor(pos + EPS4)
        d = pos - f
        d[np.abs(d) <= EPS4] = 0.0
        n_arr = np.asarray(n_table, dtype=np.int64)
        nan_pos = np.isnan(f)
        if nan_pos.any():
            f = np.where(nan_pos, n_arr, f)
        fi = f.astype(np.int64)
        upper = n_arr - 1
        lo = np.clip(fi - 1, 0, upper)
        hi = np.clip(fi, 0, upper)
        v_lo = _gather(table, lo)
        v_hi = _gather(table, hi)
        if table.ndim == 1:
            last = table[int(n_table) - 1]
            first = table[0]
        else:
            last = np.take_along_axis(table, np.broadcast_to(upper, (table.shape[0], 1)), axis=-1)
            first = table[:, :1]
        interp = (1.0 - d) * v_lo + d * v_hi
        return np.select(
            [d == 0.0, d == 1.0, (fi > 0) & (fi < n_arr), fi >= n_arr],
            [v_lo, v_hi, interp, np.broadcast_to(last, pos.shape)],
            default=np.broadcast_to(first, pos.shape),
        )


def _tie_runs(eq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average ranks of the tied values only, as preprocessCore's ``get_ranks`` assigns them.

    ``eq[:, k]`` tells whether row-wise sorted values ``k`` and ``k + 1`` are equal (``==``; NaNs,
    sorted last, never tie). A tied run over 0-based positions ``i..j`` gets rank ``(i + j + 2) / 2``;
    every other position ``k`` keeps rank ``k + 1``. Returns ``(row, position, rank)`` of every tied
    position (row-major order) — sparse, since real columns have few ties.
    """
    c, g1 = eq.shape
    in_run = np.zeros((c, g1 + 1), dtype=bool)
    in_run[:, :-1] = eq
    in_run[:, 1:] |= eq
    start = in_run.copy()
    start[:, 1:] &= ~eq
    end = in_run
    end[:, :-1] &= ~eq
    s_row, s_pos = np.nonzero(start)
    _, e_pos = np.nonzero(end)  # runs do not overlap: starts and ends pair up in row-major order
    lengths = e_pos - s_pos + 1
    rank = (s_pos + e_pos + 2) / 2.0
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(s_row, lengths), np.repeat(s_pos, lengths) + offsets, np.repeat(rank, lengths)


def _case_b_positions(ranks: np.ndarray, n: np.ndarray, t_len: int) -> np.ndarray:
    """``1 + (T - 1) * (r - 1) / (n - 1)`` as the C code computes it (``n == 1`` gives NaN, as R)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        q = (ranks - 1.0) / (n.astype(np.float64) - 1.0)
        return 1.0 + (float(t_len) - 1.0) * q


def _untied_complete_values(target: np.ndarray, n_rows: int) -> np.ndarray:
    """Values by sorted position of a column without ties or missing values (ranks 1..nrow).

    Case A (target length == nrow): the sorted target itself. Case B: the interpolation at the same
    positions for every such column, so it is computed once per call.
    """
    if target.size == n_rows:
        return target
    ranks = np.arange(1, n_rows + 1, dtype=np.float64)
    return np.asarray(
        _interpolate(_case_b_positions(ranks, np.array(n_rows), target.size), target, target.size)
    )


def _normalize_block(
    block: np.ndarray, target: np.ndarray, base: np.ndarray, dest: np.ndarray | None = None
) -> np.ndarray:
    """Normalize a ``(columns, rows)`` float64 block (one sample per row); returns the same layout.

    ``base`` = :func:`_untied_complete_values` for this target and row count; ``dest``: a
    C-contiguous ``(columns, rows)`` array to write into (e.g. a view of the final output).
    """
    c, g = block.shape
    t_len = target.size
    missing = np.isnan(block)
    n = g - np.count_nonzero(missing, axis=1)  # non-missing values per column
    if (n < g).any() and not np.isposinf(block).any():
        # numpy sorts NaN last but slowly; +inf sorts last too, and no value is +inf here
        order = np.argsort(np.where(missing, np.inf, block), axis=1)
    else:
        order = np.argsort(block, axis=1)  # NaN sorted last
    del missing
    order += (np.arange(c, dtype=order.dtype) * g)[:, None]  # positions in the flattened block
    sorted_vals = block.ravel()[order]
    eq = sorted_vals[:, 1:] == sorted_vals[:, :-1]  # NaN never equals anything
    del sorted_vals
    tied = eq.any(axis=1)
    if (n == g).all() and not tied.any():  # integer ranks 1..g, no missing: values are ``base``
        vals = np.broadcast_to(base, (c, g))
    else:
        # Untied positions hold integer ranks 1..n, so their values depend on n only: one vector per
        # distinct count of present values (``base`` for complete columns: case A or B; case B for
        # columns with missing values), missing cells (sorted last) NaN; then the tied positions.
        vals = np.empty((c, g), dtype=np.float64)
        for u in np.unique(n):
            rows = np.flatnonzero(n == u)
            if u == g:
                vals[rows] = base
            else:
                ranks = np.arange(1, u + 1, dtype=np.float64)
                vals[rows, :u] = _interpolate(_case_b_positions(ranks, np.array(u), t_len), target, t_len)
                vals[rows, u:] = np.nan  # missing stays missing
        if tied.any():
            tied_rows = np.flatnonzero(tied)
            t_row, t_pos, r = _tie_runs(eq[tied_rows])
            rows = tied_rows[t_row]
            nr = n[rows]
            value = np.empty(r.size, dtype=np.float64)
            case_a = nr == g if t_len == g else np.zeros(r.size, dtype=bool)
            if case_a.any():  # complete column, target of the row count: middle target value(s)
                ra = r[case_a]
                fl = np.floor(ra).astype(np.int64)
                lower = target[fl - 1]
                upper = target[np.minimum(fl, t_len - 1)]
                value[case_a] = np.where((ra - fl) > 0.4, 0.5 * (lower + upper), lower)
            if not case_a.all():  # case B: interpolated at the average rank
                b = ~case_a
                value[b] = _interpolate(_case_b_positions(r[b], nr[b], t_len), target, t_len)
            vals[rows, t_pos] = value
    out = dest if dest is not None else np.empty((c, g), dtype=np.float64)
    out.reshape(-1)[order] = vals  # reshape, not ravel: a view of ``dest``, never a copy
    return out


def quantile_normalize_to_target(
    matrix: np.ndarray,
    target: np.ndarray,
    *,
    chunk_columns: int | None = None,
    workers: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Quantile-normalize each column of ``matrix`` to ``target`` (``normalize.quantiles.use.target``).

    Contract: ``matrix`` is genes x samples (any real dtype; float32 is accepted and computed in
    float64), NaN = missing; ``target`` is any 1-D numeric vector (NaN dropped, sorted here). Returns a
    float64 matrix of the same shape (or fills ``out``, e.g. a ``np.memmap``, and returns it); missing
    cells stay NaN. Columns are independent: normalizing any subset or permutation of columns gives the
    same columns. Exact semantics (ties -> middle target values, interpolation when the target length
    differs from the row count or the column has missing values, single-value columns -> target
    maximum) are in the module docstring and ``docs/quantile-normalization.md``.

    Tolerance: equal to R preprocessCore 1.60.2 to 1e-12 absolute (observed: bit-identical), verified
    by ``refine_assets_tests/unit/test_qn.py`` against ``Rscript``.

    Memory: processes ``chunk_columns`` columns at a time (default about 1e6 values per batch); peak
    extra memory is a few float64/int64 arrays of one batch per worker, plus the output.
    ``workers`` threads process batches in parallel (default 1: on an idle 2-core machine 2 threads
    take 20,000 x 1,000 from ~1.2 s to ~0.7 s, but when other processes compete for the cores the
    threads stall each other and run slower than one; pass ``workers`` where cores are reserved).
    Raises :class:`QuantileNormalizationError` on a non-2-D/non-numeric matrix or an empty target.
    """
    arr = _check_matrix(matrix)
    tgt = prepare_target(target)
    n_rows, n_cols = arr.shape
    if out is None:  # same memory layout as the input: column blocks are then contiguous copies
        out = np.empty((n_rows, n_cols), dtype=np.float64, order="F" if arr.flags.f_contiguous else "C")
    elif out.shape != arr.shape:
        raise QuantileNormalizationError(f"out has shape {out.shape}, matrix has {arr.shape}")
    if n_rows == 0 or n_cols == 0:
        return out
    step = chunk_columns or default_chunk_columns(n_rows)
    if step < 1:
        raise QuantileNormalizationError(f"chunk_columns must be positive, got {chunk_columns}")
    starts = range(0, n_cols, step)
    base = _untied_complete_values(tgt, n_rows)

    def run(j0: int) -> None:
        j1 = min(j0 + step, n_cols)
        block = np.ascontiguousarray(arr[:, j0:j1].T, dtype=np.float64)
        view = out[:, j0:j1].T  # column-major output: the batch's columns, written in place
        if view.flags.c_contiguous and view.dtype == np.float64:
            _normalize_block(block, tgt, base, dest=view)
        else:
            out[:, j0:j1] = _normalize_block(block, tgt, base).T

    n_workers = min(workers or 1, len(starts))
    if n_workers <= 1:
        for j0 in starts:
            run(j0)
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for _ in pool.map(run, starts):
                pass
    return out


# --------------------------------------------------------------------------------------------------
# normalize.quantiles.determine.target


def _interpolated_sorted(sorted_vals: np.ndarray, n: np.ndarray, length: int) -> np.ndarray:
    """Sorted non-missing values (row-wise, NaN last, ``n`` valid) resampled to ``length`` points.

    ``determine_target``'s NA branch: position ``1 + (n - 1) * i / (length - 1)``, i = 0..length-1.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.arange(length, dtype=np.float64) / (float(length) - 1.0)
        pos = 1.0 + (n.astype(np.float64)[:, None] - 1.0) * q[None, :]
    return _interpolate(pos, sorted_vals, n[:, None])


def _resample_target(row_mean: np.ndarray, length: int) -> np.ndarray:
    """``qnorm_c_determine_target``'s final step: row means resampled to ``target.length`` points."""
    rows = row_mean.size
    if length == rows:
        return row_mean.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.arange(length, dtype=np.float64) / (float(length) - 1.0)
        pos = 1.0 + (float(rows) - 1.0) * q
    return np.asarray(_interpolate(pos, row_mean, rows), dtype=np.float64)


def _check_length(target_length: int | None, default: int) -> int:
    if target_length is None:
        return default
    if isinstance(target_length, bool) or int(target_length) != target_length or target_length <= 0:
        raise QuantileNormalizationError(f"target_length must be a positive integer, got {target_length!r}")
    return int(target_length)


def determine_target(
    matrix: np.ndarray,
    target_length: int | None = None,
    *,
    chunk_columns: int | None = None,
) -> np.ndarray:
    """Mean of the sorted columns (``normalize.quantiles.determine.target(x, target.length)``).

    Contract: ``matrix`` genes x samples, NaN = missing. A column without missing values contributes
    its sorted values; a column with missing values contributes its sorted non-missing values
    interpolated to ``nrow`` points (``1 + (n - 1) i / (nrow - 1)``). The mean over columns is then
    resampled to ``target_length`` points (default ``nrow``) with the same rule; ``target_length = 1``
    gives the largest mean, as R does. Returns an ascending float64 vector.

    Differs from R only where R is undefined: a column with no value at all raises
    :class:`QuantileNormalizationError` (R silently reuses the previous column's buffer). Without
    missing values this equals refine.bio's target (mean of sorted vectors, ``refinebio-teardown.md``
    §7); refine.bio sums float32-parsed values in float64, we sum float64 in extended precision.

    Tolerance: 1e-12 relative to R preprocessCore (pthread build, long double sums), verified in
    ``test_qn.py``.
    """
    arr = _check_matrix(matrix)
    n_rows, n_cols = arr.shape
    if n_rows == 0 or n_cols == 0:
        raise QuantileNormalizationError(f"cannot determine a target from an empty matrix {arr.shape}")
    length = _check_length(target_length, n_rows)
    step = chunk_columns or default_chunk_columns(n_rows)
    acc = np.zeros(n_rows, dtype=np.longdouble)
    for j0 in range(0, n_cols, step):
        j1 = min(j0 + step, n_cols)
        block = np.sort(np.ascontiguousarray(arr[:, j0:j1].T, dtype=np.float64), axis=1)
        n = n_rows - np.isnan(block).sum(axis=1)
        if (n == 0).any():
            bad = int(np.flatnonzero(n == 0)[0]) + j0
            raise QuantileNormalizationError(f"column {bad} has no non-missing values", column=bad)
        full = n == n_rows
        if full.any():
            acc += block[full].astype(np.longdouble).sum(axis=0)
        if not full.all():
            part = ~full
            acc += _interpolated_sorted(block[part], n[part], n_rows).astype(np.longdouble).sum(axis=0)
    row_mean = acc.astype(np.float64) / float(n_cols)
    return _resample_target(row_mean, length)


class StreamingTarget:
    """Mean of sorted sample vectors, accumulated one sample at a time (refine.bio ``_build_qn_target``).

    ``StreamingTarget(length)`` expects vectors of ``length`` values (the per-organism gene set). Each
    :meth:`add` sorts the sample's non-missing values and adds them to an extended-precision running
    sum; a vector with missing values (or, with ``interpolate=True``, of another length) is first
    interpolated to ``length`` points exactly as :func:`determine_target` does for columns with NA, so
    ``StreamingTarget`` over the columns of a matrix equals ``determine_target(matrix)`` (to 1e-15
    relative; only the summation order differs). :meth:`result` returns the mean, optionally resampled
    to ``target_length`` points. Only one sample is held in memory at a time.

    refine.bio skipped samples whose gene set differs from the first sample's or that contain NaN;
    matching gene sets (and ordering values by gene) is the caller's job — values here are just numbers.
    """

    def __init__(self, length: int, *, interpolate: bool = False) -> None:
        if isinstance(length, bool) or int(length) != length or length <= 0:
            raise QuantileNormalizationError(f"length must be a positive integer, got {length!r}")
        self.length = int(length)
        self.interpolate = interpolate
        self._sum = np.zeros(self.length, dtype=np.longdouble)
        self._count = 0

    @property
    def count(self) -> int:
        """Number of samples added so far."""
        return self._count

    def add(self, values: np.ndarray, *, name: str | None = None) -> None:
        """Add one sample's values (any order, NaN = missing). ``name`` is used in error messages."""
        label = f"sample {name!r}" if name is not None else f"sample #{self._count + 1}"
        v = np.asarray(values)
        if v.ndim != 1:
            raise QuantileNormalizationError(f"{label}: expected a 1-D vector, got shape {v.shape}")
        if v.dtype == np.bool_ or not (
            np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)
        ):
            raise QuantileNormalizationError(f"{label}: values must be numeric, got dtype {v.dtype}")
        if v.size != self.length and not self.interpolate:
            raise QuantileNormalizationError(
                f"{label}: has {v.size} values, the target is built from vectors of {self.length}"
            )
        v = np.sort(v.astype(np.float64))
        n = int(v.size - np.isnan(v).sum())
        if n == 0:
            raise QuantileNormalizationError(f"{label}: has no non-missing values")
        if n == self.length:
            self._sum += v[:n].astype(np.longdouble)
        else:
            row = _interpolated_sorted(v[None, :], np.array([n]), self.length)[0]
            self._sum += row.astype(np.longdouble)
        self._count += 1

    def result(self, target_length: int | None = None) -> np.ndarray:
        """The target: mean of the added sorted vectors (float64, ascending), optionally resampled."""
        if self._count == 0:
            raise QuantileNormalizationError("no samples were added to the target")
        length = _check_length(target_length, self.length)
        row_mean = self._sum.astype(np.float64) / float(self._count)
        return _resample_target(row_mean, length)


# --------------------------------------------------------------------------------------------------
# target files


def write_target(path: str | Path, target: np.ndarray) -> None:
    """Write a target file: one value per line, ascending, full precision (``repr``), atomically.

    The values are sorted (a target's meaning does not depend on order); NaN or infinite values raise
    :class:`QuantileNormalizationError`. ``read_target`` returns exactly the written float64 values.
    """
    t = np.asarray(target)
    if t.ndim != 1 or t.size == 0:
        raise QuantileNormalizationError(f"target must be a non-empty 1-D vector, got shape {t.shape}")
    t = t.astype(np.float64)
    if not np.isfinite(t).all():
        raise QuantileNormalizationError("target contains missing or infinite values")
    t = np.sort(t)
    with atomic_output(path) as fh:
        fh.write("\n".join(repr(x) for x in t.tolist()))
        fh.write("\n")


def read_target(path: str | Path) -> np.ndarray:
    """Read a target file (one finite number per line, ascending; blank lines ignored) as float64.

    Also reads refine.bio's ``<ts>_target.tsv`` files (same format). Raises :class:`TargetFormatError`
    naming the file and line for a non-numeric, missing or infinite value, or values out of order.
    """
    p = Path(path)
    values: list[float] = []
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TargetFormatError(f"{p}: not a text file ({exc})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        if s.upper() in {"NA", "NAN"}:
            raise TargetFormatError(f"{p}, line {lineno}: missing or infinite value {s!r}")
        try:
            x = float(s)
        except ValueError:
            raise TargetFormatError(f"{p}, line {lineno}: not a number: {s[:60]!r}") from None
        if not math.isfinite(x):
            raise TargetFormatError(f"{p}, line {lineno}: missing or infinite value {s!r}")
        values.append(x)
    if not values:
        raise TargetFormatError(f"{p}: no values")
    arr = np.array(values, dtype=np.float64)
    bad = np.flatnonzero(np.diff(arr) < 0)
    if bad.size:
        raise TargetFormatError(f"{p}: values not in ascending order (value #{int(bad[0]) + 2})")
    return arr
