"""Is a submitter-processed sample already on a log scale? Decide, and log2-transform safely if not.

refine.bio's rule (``smashing_utils.process_frame``, ``illumina.R::doLog2``; ``refinebio-teardown.md``
§4.3, §12 item 4, §14; ``methods.md`` §10): *if a column's maximum exceeds 100, replace it by log2(x)*,
applied at delivery time. It fails in three ways that real GEO tables hit:

* one outlier or sentinel (``999``, a saturated spot) in otherwise log-scale data makes the whole
  sample "linear" and log2 is applied to log values;
* linear data whose maximum is at most 100 (ratios, values scaled to a mean of 1) is never logged;
* log2 is taken of zeros (-inf) and negatives (NaN), e.g. MAS 4 "average difference" values.

Our rule (:func:`detect_log2`) looks at the distribution instead of one extreme value. On the finite
values of the sample (at least :data:`MIN_VALUES`), with ``q01``, ``q50``, ``q99`` the 1st, 50th and
99th percentiles (numpy ``linear`` quantiles):

1. ``linear_range``: ``q99 > 32`` -> **linear**. No log-scale expression value reaches 32 (log2 of
   4e9; microarray scanners give 16-bit intensities, log2 <= 16; log2 RNA-seq counts stay below 30).
   The 99th percentile, not the maximum, so up to 1% outliers/sentinels do not decide.
2. ``linear_spread``: ``q99 <= 32`` but ``q01 > 0``, ``q99 / q01 >= 64`` (the central 98% of values span
   at least 6 doublings) **and** the upper tail is long, ``(q99 - q50) / (q50 - q01) >= 3`` -> **linear**
   on a small scale (ratios, data scaled to a mean of 1). Log-scale expression values span a small
   additive range (e.g. 2..14, ratio 7) and are roughly symmetric; linear intensities are strongly
   right-skewed over orders of magnitude (GSE781 MAS 5: ratio ~3,000, tail ratio ~70).
3. ``log_range`` otherwise -> **already log-scale**: left unchanged. This includes data with negative
   values or zeros in the 1st percentile at ``q99 <= 32`` (log ratios, log2 values below 1), which a
   linear intensity scale cannot produce at such small magnitudes.

Decisions and what they leave open (recorded in :class:`Log2Decision`, which goes into the ledger):

* A log scale of another base (log10, ln) is not detected as such and is left unchanged; a warning is
  recorded when the maximum is below 6 (log2 data whose brightest probe is 64 is implausible).
* Linear ratios with a small spread (e.g. CGH ratios 0.94..1.08, the ``LINEAR_RATIO`` column of GSM804)
  cannot be told from log values; they are left unchanged (as refine.bio would too).
* A log-scale sample with values above 32 (outliers) gets a warning; refine.bio would have logged it.
* (Nearly) constant data (``q01 == q99``) and fewer than :data:`MIN_VALUES` finite values raise
  :class:`Log2Error` - no scale can be decided.

Transform (:func:`apply_log2`), only for linear data: ``log2(x)`` for ``x > 0``. Values ``<= 0`` are
never passed to the logarithm: by default (``nonpositive="floor"``) they are set to the smallest
positive value of the sample before the log (so they rank as the lowest expression, which is what a
background-subtracted negative or zero means, and the vector stays complete for later joins); with
``nonpositive="nan"`` they become missing. More than :data:`MAX_NONPOSITIVE_FRACTION` of values
``<= 0`` raises :class:`Log2Error` (not intensities). Non-finite inputs stay NaN. The counts are recorded.

Tolerance: the transform is ``numpy.log2`` in float64 (exact to the last ulp); the decision is exact
given the quantiles. Verified in ``refine_assets_tests/unit/test_submitter.py`` on the 34 real MAS 5
tables of GSE781 (all linear by rule 1; their log2 all log-scale by rule 3), the real MAS 4 table of
GSM645 (negatives, floored), the real CGH log2 ratios of GSM804, and generated cases where refine.bio's
rule is wrong (log data with sentinels, linear data scaled below 100, zeros/negatives).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

LOG_CEILING = 32.0
MIN_SPREAD = 64.0
MIN_TAIL_RATIO = 3.0
MIN_VALUES = 10
MAX_NONPOSITIVE_FRACTION = 0.5
SMALL_MAX_WARNING = 6.0
REFINEBIO_THRESHOLD = 100.0
NONPOSITIVE_POLICIES = ("floor", "nan")


class Log2Error(ValueError):
    """The values do not allow a log-scale decision or transform; the message says why."""


@dataclass(frozen=True)
class Log2Decision:
    """Whether a sample is already log-scale, which rule decided, and the statistics used.

    ``is_log2`` True: already log-scale, left unchanged; False: linear, :func:`apply_log2` transforms.
    ``rule`` is ``linear_range``, ``linear_spread`` or ``log_range`` (module docstring). ``spread`` is
    ``q99 / q01`` (None when ``q01 <= 0``), ``tail_ratio`` ``(q99 - q50) / (q50 - q01)``.
    ``refinebio_would_log`` is refine.bio's ``max > 100`` for comparison.
    """

    is_log2: bool
    rule: str
    reason: str
    n_values: int
    n_nonfinite: int
    n_nonpositive: int
    n_negative: int
    n_zero: int
    minimum: float
    q01: float
    q50: float
    q99: float
    maximum: float
    spread: float | None
    tail_ratio: float | None
    refinebio_would_log: bool
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def transform(self) -> bool:
        """True when log2 must be applied (the data are linear)."""
        return not self.is_log2

    def as_dict(self) -> dict:
        """JSON-able form (ledger metrics)."""
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


def _as_float(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        arr = arr.ravel()
    return arr


def detect_log2(values, *, label: str = "sample") -> Log2Decision:
    """Decide whether ``values`` (1-D, NaN = missing) are already log-scale; rules in the module doc.

    Raises :class:`Log2Error` naming ``label`` for fewer than :data:`MIN_VALUES` finite values or
    (nearly) constant data.
    """
    arr = _as_float(values)
    finite = arr[np.isfinite(arr)]
    n = int(finite.size)
    n_nonfinite = int(arr.size - n)
    if n < MIN_VALUES:
        raise Log2Error(f"{label}: only {n} finite values (need at least {MIN_VALUES}) to decide the scale")
    q01, q50, q99 = (float(q) for q in np.quantile(finite, [0.01, 0.5, 0.99]))
    lo, hi = float(finite.min()), float(finite.max())
    if q99 <= q01:
        raise Log2Error(
            f"{label}: values are (nearly) constant (1st and 99th percentiles both {q01:g}); "
            "no expression scale can be decided"
        )
    n_negative = int(np.count_nonzero(finite < 0))
    n_zero = int(np.count_nonzero(finite == 0))
    spread = q99 / q01 if q01 > 0 else None
    tail = (q99 - q50) / (q50 - q01) if q50 > q01 else None
    warnings: list[str] = []
    if q99 > LOG_CEILING:
        is_log, rule = False, "linear_range"
        reason = f"99th percentile {q99:g} > {LOG_CEILING:g}: beyond any log-scale expression value"
    elif spread is not None and spread >= MIN_SPREAD and tail is not None and tail >= MIN_TAIL_RATIO:
        is_log, rule = False, "linear_spread"
        reason = (
            f"99th percentile {q99:g} <= {LOG_CEILING:g} but values span {np.log2(spread):.1f} doublings "
            f"(q99/q01 = {spread:.3g} >= {MIN_SPREAD:g}) with a long upper tail "
            f"((q99-q50)/(q50-q01) = {tail:.3g} >= {MIN_TAIL_RATIO:g}): linear values on a small scale"
        )
    else:
        is_log, rule = True, "log_range"
        if q01 <= 0:
            why = f"1st percentile {q01:g} <= 0 at this magnitude (log values, e.g. log ratios)"
        elif spread is not None and spread < MIN_SPREAD:
            why = (
                f"values span only {np.log2(spread):.1f} doublings (q99/q01 = {spread:.3g} < {MIN_SPREAD:g})"
            )
        else:
            why = f"upper tail not long ((q99-q50)/(q50-q01) = {tail:.3g} < {MIN_TAIL_RATIO:g})"
        reason = f"99th percentile {q99:g} <= {LOG_CEILING:g} and {why}: already log-scale"
        above = int(np.count_nonzero(finite > LOG_CEILING))
        if above:
            warnings.append(
                f"{above} values above {LOG_CEILING:g} (max {hi:g}) in log-scale data: outliers or sentinels"
            )
        if hi < SMALL_MAX_WARNING:
            warnings.append(
                f"maximum {hi:g} < {SMALL_MAX_WARNING:g}: possibly log10/ln values or ratios; left unchanged"
            )
    n_nonpositive = int(np.count_nonzero(finite <= 0))
    if not is_log and n_nonpositive:
        warnings.append(
            f"{n_nonpositive} values <= 0 on a linear scale ({n_negative} negative, {n_zero} zero)"
        )
    return Log2Decision(
        is_log2=is_log,
        rule=rule,
        reason=reason,
        n_values=n,
        n_nonfinite=n_nonfinite,
        n_nonpositive=n_nonpositive,
        n_negative=n_negative,
        n_zero=n_zero,
        minimum=lo,
        q01=q01,
        q50=q50,
        q99=q99,
        maximum=hi,
        spread=spread,
        tail_ratio=tail,
        refinebio_would_log=hi > REFINEBIO_THRESHOLD,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class Log2Result:
    """Values on the log2 scale and what was done: ``n_floored`` values <= 0 set to ``floor_value``
    (log2 of it in ``values``) or to NaN (``n_dropped``) before the log."""

    values: np.ndarray
    decision: Log2Decision
    transformed: bool
    nonpositive_policy: str
    n_floored: int = 0
    n_dropped: int = 0
    floor_value: float | None = None

    def as_dict(self) -> dict:
        """JSON-able summary (without the values)."""
        return {
            "transformed": self.transformed,
            "nonpositive_policy": self.nonpositive_policy,
            "n_floored": self.n_floored,
            "n_dropped": self.n_dropped,
            "floor_value": self.floor_value,
            **self.decision.as_dict(),
        }


def apply_log2(
    values,
    decision: Log2Decision | None = None,
    *,
    nonpositive: str = "floor",
    label: str = "sample",
) -> Log2Result:
    """``values`` on the log2 scale (a new float64 array); rules and policies in the module docstring.

    ``decision`` defaults to :func:`detect_log2` of ``values``. Log-scale data are returned unchanged
    (as float64). Raises :class:`Log2Error` naming ``label`` when more than
    :data:`MAX_NONPOSITIVE_FRACTION` of the finite linear values are ``<= 0`` or no value is positive.
    """
    if nonpositive not in NONPOSITIVE_POLICIES:
        raise ValueError(f"nonpositive must be one of {NONPOSITIVE_POLICIES}, not {nonpositive!r}")
    arr = _as_float(values)
    decision = decision or detect_log2(arr, label=label)
    if decision.is_log2:
        out = arr.copy()
        out[~np.isfinite(out)] = np.nan
        return Log2Result(out, decision, False, nonpositive)
    finite = np.isfinite(arr)
    positive = finite & (arr > 0)
    nonpos = finite & ~positive
    n_finite = int(np.count_nonzero(finite))
    n_nonpos = int(np.count_nonzero(nonpos))
    if not positive.any():
        raise Log2Error(f"{label}: no positive value on a linear scale; cannot take log2")
    if n_nonpos > MAX_NONPOSITIVE_FRACTION * n_finite:
        raise Log2Error(
            f"{label}: {n_nonpos} of {n_finite} linear-scale values are <= 0 (more than "
            f"{MAX_NONPOSITIVE_FRACTION:.0%}); these are not intensities that log2 can be taken of"
        )
    out = np.full(arr.shape, np.nan, dtype=np.float64)
    out[positive] = np.log2(arr[positive])
    floor_value = None
    n_floored = n_dropped = 0
    if n_nonpos:
        if nonpositive == "floor":
            floor_value = float(arr[positive].min())
            out[nonpos] = np.log2(floor_value)
            n_floored = n_nonpos
        else:
            n_dropped = n_nonpos
    return Log2Result(out, decision, True, nonpositive, n_floored, n_dropped, floor_value)


__all__ = [
    "LOG_CEILING",
    "MAX_NONPOSITIVE_FRACTION",
    "MIN_SPREAD",
    "MIN_TAIL_RATIO",
    "MIN_VALUES",
    "Log2Decision",
    "Log2Error",
    "Log2Result",
    "apply_log2",
    "detect_log2",
]
