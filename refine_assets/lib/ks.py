"""KS gate after quantile normalization: does each normalized sample actually follow the target?

refine.bio (``smashing_utils._test_qn``; ``methods.md`` §8, ``refinebio-teardown.md`` §6.4 and §12 item 2)
runs a two-sample Kolmogorov-Smirnov test on the values above the median of up to 100 *column pairs*
(mostly column 0 against the others), only warns (statistic > 0.001 or p < 0.8), never fails, and
keeps only the last pair's numbers. Here every sample is compared with the **target** and the result is
a real gate, with statistic and p-value recorded per sample.

Test per sample (column of the normalized genes x samples matrix; NaN = missing):
``scipy.stats.ks_2samp(a, b, method="auto")`` (two-sided), where ``a`` = the sample's non-missing
values strictly above its own median and ``b`` = the target's values strictly above the target's median
(``top_half=True``, refine.bio's choice, which ignores the zero mass of RNA-seq samples), or all values
(``top_half=False``).

Why these thresholds (defaults; see ``docs/quantile-normalization.md``):

* After QN a column *is* the target: without ties and with the target's length its upper half equals the
  target's upper half (KS statistic D = 0, p = 1); with a different length it is the target's quantiles,
  D <= about 1/n. D grows only where QN could not map the sample: a tied block of k values becomes one
  value (D ~ k / (2 n_upper)); a tie mass covering the median (a fraction f > 1/2 of zeros) leaves only the
  top 1 - f (D = 2 f - 1); very few values (D ~ 1 / n_upper); a constant column has no upper half at all.
* **statistic_max = 0.1**: fails columns whose upper half is more than 10 percentage points of cumulative
  probability away from the target's — more than 55% tied at (or below) the median (e.g. zeros), tied
  blocks of more than ~20% of the upper half, or fewer than about 10 values in the upper half. Rounded
  real microarray data (GDS507, MAS5 values with one decimal) gives D < 0.01 and passes; refine.bio's
  0.001 would flag it.
* **pvalue_min = 0 (not gated)**: QN output is a deterministic transform, not a random sample, so the
  p-value has no sampling meaning. With ~10,000 values per half it rejects negligible differences
  (D = 0.02 gives p ~ 0.04, refine.bio's p < 0.8 fires at D ~ 0.01) and with 5 values it accepts anything.
  It is still computed and recorded; callers may set a threshold.
* **min_present_fraction = 0.5**: a sample missing more than half of the matrix's genes fails (it was
  mapped from too few values to judge; "mostly NA"). All-missing columns always fail.

Tolerance: the statistic and p-value are scipy's (``ks_2samp`` with ``method``); tests compare them with a
direct ``ks_2samp`` call on hand-built halves (exact equality) and check the D formulas above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "DEFAULT_MIN_PRESENT_FRACTION",
    "DEFAULT_PVALUE_MIN",
    "DEFAULT_STATISTIC_MAX",
    "KsGateError",
    "KsResult",
    "failed_samples",
    "ks_gate",
    "upper_half",
]

#: Largest accepted KS statistic between a sample's upper half and the target's upper half.
DEFAULT_STATISTIC_MAX = 0.1
#: Smallest accepted p-value; 0 = the p-value is recorded but does not gate (see module docstring).
DEFAULT_PVALUE_MIN = 0.0
#: Smallest accepted fraction of non-missing values in a sample.
DEFAULT_MIN_PRESENT_FRACTION = 0.5


class KsGateError(ValueError):
    """Bad input to the KS gate (shape, dtype, empty target, sample names of the wrong length)."""


@dataclass(frozen=True)
class KsResult:
    """KS gate outcome for one sample.

    ``statistic``/``pvalue`` are NaN when the test could not run (no values to compare); ``n_present`` =
    non-missing values of the sample, ``n_compared`` = values entering the test (the upper half);
    ``reason`` explains a failure (for the filtered-samples files) and is None when ``passed``.
    """

    sample: str
    statistic: float
    pvalue: float
    n_present: int
    n_compared: int
    passed: bool
    reason: str | None

    def as_dict(self) -> dict:
        """Plain dict (JSON-ready apart from NaN floats)."""
        return asdict(self)


def upper_half(values: np.ndarray) -> np.ndarray:
    """Non-missing values strictly above their median (refine.bio's ``a[a > np.median(a)]``)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return v
    return v[v > np.median(v)]


def ks_gate(
    normalized: np.ndarray,
    target: np.ndarray,
    *,
    statistic_max: float = DEFAULT_STATISTIC_MAX,
    pvalue_min: float = DEFAULT_PVALUE_MIN,
    top_half: bool = True,
    min_present_fraction: float = DEFAULT_MIN_PRESENT_FRACTION,
    sample_names: Sequence[str] | None = None,
    method: str = "auto",
) -> list[KsResult]:
    """KS-test every normalized sample against the target; one :class:`KsResult` per column, in order.

    Contract: ``normalized`` genes x samples (QN output, NaN = missing), ``target`` the 1-D target used
    for QN (NaN dropped, any order). A sample fails when it has no values, fewer than
    ``min_present_fraction`` of the rows present, nothing above its median (constant column), a KS
    statistic above ``statistic_max`` or a p-value below ``pvalue_min``; the first failing criterion is
    the reason. Thresholds and their rationale: module docstring. ``method`` is passed to
    ``scipy.stats.ks_2samp`` ("auto" as refine.bio; "asymp" is faster for thousands of samples).
    Raises :class:`KsGateError` on a non-2-D matrix, an empty target or a wrong number of names.
    """
    from scipy.stats import ks_2samp

    arr = np.asarray(normalized)
    if arr.ndim != 2:
        raise KsGateError(f"normalized matrix must be 2-D (genes x samples), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise KsGateError(f"normalized matrix must be numeric, got dtype {arr.dtype}")
    tgt = np.asarray(target, dtype=np.float64)
    if tgt.ndim != 1:
        raise KsGateError(f"target must be 1-D, got shape {tgt.shape}")
    tgt = np.sort(tgt[~np.isnan(tgt)])
    if tgt.size == 0:
        raise KsGateError("target has no non-missing values")
    reference = upper_half(tgt) if top_half else tgt
    if reference.size == 0:
        raise KsGateError("target has no values above its median (constant target)")
    n_rows, n_cols = arr.shape
    if sample_names is None:
        names = [str(j) for j in range(n_cols)]
    else:
        names = [str(s) for s in sample_names]
        if len(names) != n_cols:
            raise KsGateError(f"{len(names)} sample names for {n_cols} columns")
    if not 0.0 <= min_present_fraction <= 1.0:
        raise KsGateError(f"min_present_fraction must be in [0, 1], got {min_present_fraction}")

    results: list[KsResult] = []
    nan = float("nan")
    for j, name in enumerate(names):
        col = np.asarray(arr[:, j], dtype=np.float64)
        present = col[~np.isnan(col)]
        n_present = int(present.size)
        if n_present == 0:
            results.append(KsResult(name, nan, nan, 0, 0, False, "no values (all missing)"))
            continue
        compared = upper_half(present) if top_half else present
        n_compared = int(compared.size)
        if n_compared == 0:
            reason = "no values above the sample median (constant column)"
            results.append(KsResult(name, nan, nan, n_present, 0, False, reason))
            continue
        res = ks_2samp(compared, reference, method=method)
        stat, pval = float(res.statistic), float(res.pvalue)
        reason = None
        if n_present < min_present_fraction * n_rows:
            reason = (
                f"only {n_present} of {n_rows} values present "
                f"({n_present / n_rows:.1%} < {min_present_fraction:.0%})"
            )
        elif not stat <= statistic_max:
            half = "upper half" if top_half else "values"
            reason = f"KS statistic {stat:.4g} > {statistic_max:g} ({half} of the sample vs the target)"
        elif pval < pvalue_min:
            reason = f"KS p-value {pval:.3g} < {pvalue_min:g}"
        results.append(KsResult(name, stat, pval, n_present, n_compared, reason is None, reason))
    return results


def failed_samples(results: Sequence[KsResult]) -> dict[str, str]:
    """``{sample: reason}`` of the failing samples (for the filtered-samples files)."""
    return {r.sample: r.reason or "failed the KS gate" for r in results if not r.passed}
