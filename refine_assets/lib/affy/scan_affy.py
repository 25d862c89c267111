"""SCAN / SCANfast for one Affymetrix array (``SCAN.UPC::processCelFile``), natively.

Steps (``specs/methods.md`` 1.2, 1.5-1.8):

1. PM probes in SCAN order: the probe table's rows sorted by cell index (oligo's fid order), ties by
   probeset id (``probeNames`` orders by (fid, man_fsetid)); intensities ``pint`` taken from the CEL
   vector at those cells.
2. Reject the array if more than 1% of ``pint`` is exactly 0 (SCAN.UPC returns NULL, refine.bio fails
   the job): :class:`ScanRejectedError`.
3. Keep probes whose sequence has exactly 25 bases (``width(pmSeq) == 25``); if the minimum
   remaining intensity is 0, add 1 to all; ``y = log2``.
4. :func:`refine_assets.lib.scan.scan_probe_values` (EM on every ``floor(N/intervalN)``-th probe,
   block normalization, rounding).
5. Summarize: 10%-trimmed mean per probeset (R ``mean(x, trim=0.1)``), or per Brainarray probeset
   after an inner many-to-many join of the Brainarray table to the PM probes on (x, y); rounded to
   8 decimals; ids sorted.

Output scale (spec 1.8): a background-standardised score (about N(0, 1) for unexpressed probes, not
log2 intensity). Tolerance vs SCAN.UPC: ~1e-8 per probeset given the same probe table and CEL
doubles (see :mod:`refine_assets.lib.scan` and ``docs/scan.md`` for how this was verified: on
C30057/HG-U95Av2 SCANfast stops after 8 EM iterations and SCAN after 32 on subsamples of 10,479
and 66,362 probes, with 4,999 probes at 0, exactly as SCAN.UPC recorded).

Deliberate difference: SCAN.UPC passes intensities through ``as.character`` (15 significant
digits) and back; we do not. For text (v3) CELs this is the identity; for float32 (v4/Calvin)
values it is a monotone, tie-preserving change below 1e-15 relative, so results move by ~1e-15.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from refine_assets.lib.affy.probes import ProbeTable
from refine_assets.lib.scan import (
    EMResult,
    ScanError,
    ScanParams,
    r_round,
    scan_probe_values,
    sequence_design_matrix,
    trimmed_mean_summarize,
)

__all__ = [
    "MAX_ZERO_FRACTION",
    "ScanError",
    "ScanProbes",
    "ScanRejectedError",
    "ScanResult",
    "prepare_scan_probes",
    "scan_affy",
    "scan_params_for_mode",
]

MAX_ZERO_FRACTION = 0.01
TRIM = 0.1


class ScanRejectedError(ScanError):
    """The array cannot be processed by SCAN (too many zero intensities), as SCAN.UPC decides."""


def scan_params_for_mode(mode: str) -> ScanParams:
    """``fast`` -> :meth:`ScanParams.scanfast`, ``full`` -> :meth:`ScanParams.scan`."""
    if mode == "fast":
        return ScanParams.scanfast()
    if mode == "full":
        return ScanParams.scan()
    raise ValueError(f"mode must be 'fast' or 'full' (got {mode!r})")


@dataclass(frozen=True)
class ScanProbes:
    """A platform's PM probes prepared for SCAN (reusable across arrays of the same chip).

    ``cell_index`` of all PM rows in SCAN order (``pm_index``), the mask of those kept by the 25-mer
    filter (``keep``), and for the kept rows their probeset ids and the int16 design matrix ``X``.
    """

    cols: int
    pm_index: np.ndarray
    keep: np.ndarray
    probeset_ids: np.ndarray
    X: np.ndarray
    platform: str | None = None

    @property
    def index(self) -> np.ndarray:
        """Cell indices of the kept probes (SCAN's N probes), in SCAN order."""
        return self.pm_index[self.keep]


def prepare_scan_probes(probes: ProbeTable, cols: int, probe_length: int = 25) -> ScanProbes:
    """Order a PM probe table as SCAN.UPC sees it and build its design matrix.

    Rows sorted by (cell index, probeset id); rows repeating the same (cell, probeset) are an error.
    The table's sequences are used as given (a table extracted from a pd package in SCAN order,
    including quirk Q3's positional pairing, is reproduced as is).

    Raises:
        ValueError: empty table, duplicate probes, or coordinates outside the chip.
    """
    name = probes.source or probes.platform or "probe table"
    if len(probes) == 0:
        raise ValueError(f"{name}: empty probe table")
    index = probes.cell_index(cols)
    ids = probes.frame["probeset_id"].to_numpy(dtype=object).astype(str)
    order = np.lexsort((ids, index))
    index = index[order]
    ids = ids[order]
    dup = (index[1:] == index[:-1]) & (ids[1:] == ids[:-1])
    if dup.any():
        k = int(np.flatnonzero(dup)[0])
        raise ValueError(f"{name}: probe at cell {int(index[k])} listed twice for probeset {ids[k]}")
    seqs = probes.frame["sequence"].to_numpy(dtype=object)[order]
    lengths = pd.Series(seqs, dtype=object).str.len().fillna(0).to_numpy(dtype=np.int64)
    keep = lengths == probe_length
    if not keep.any():
        raise ValueError(f"{name}: no probe has a {probe_length}-base sequence")
    X = sequence_design_matrix(seqs[keep], probe_length)
    return ScanProbes(
        cols=int(cols), pm_index=index, keep=keep, probeset_ids=ids[keep], X=X, platform=probes.platform
    )


@dataclass(frozen=True)
class ScanResult:
    """SCAN output for one array.

    Attributes:
        values: probeset values (rounded to 8 decimals), indexed by probeset id (sorted).
        iterations: EM iterations run.
        converged: False when the EM hit ``max_iter``.
        n_probes: probes SCAN normalized (PM probes with a 25-mer).
        params: the constants used.
        em: the fitted mixture (coefficients, variances, subsample size).
        n_zero_probes: probes at exactly 0 (the ``binsize - 1`` of quirk Q1, plus any that round to 0).
        shifted_by_one: whether all intensities were raised by 1 because the minimum was 0.
    """

    values: pd.Series
    iterations: int
    converged: bool
    n_probes: int
    params: ScanParams
    em: EMResult
    n_zero_probes: int
    shifted_by_one: bool

    def provenance(self) -> dict:
        """JSON-able summary for provenance records."""
        return {
            "method": self.params.name,
            "params": self.params.as_dict(),
            "em_iterations": self.iterations,
            "em_converged": self.converged,
            "em_sample_size": self.em.sample_size,
            "n_probes": self.n_probes,
            "n_probesets": len(self.values),
            "shifted_by_one": self.shifted_by_one,
        }


def _summarize_by(values: np.ndarray, groups: np.ndarray, digits: int | None) -> pd.Series:
    ids, means = trimmed_mean_summarize(values, groups, trim=TRIM)
    if digits is not None:
        means = r_round(means, digits)
    return pd.Series(means, index=pd.Index(ids.astype(str), name="ID"), dtype=np.float64)


def scan_affy(
    intensities: np.ndarray,
    cols: int,
    probes: ProbeTable | ScanProbes,
    *,
    mode: Literal["fast", "full"] = "fast",
    brainarray: ProbeTable | None = None,
    params: ScanParams | None = None,
) -> ScanResult:
    """SCAN-normalize one Affymetrix array (``SCAN.UPC::SCANfast`` / ``SCAN``), spec 1.

    Args:
        intensities: the CEL intensity vector in cell-index order (index = x + cols * y), float64 as
            parsed from the CEL (``CelFile.intensities``).
        cols: chip columns (``CelFile.cols``).
        probes: the platform's PM probe table (or a :class:`ScanProbes` prepared from it, to reuse
            the design matrix across arrays).
        mode: ``fast`` (SCANfast: intervalN 10000, convThreshold 0.5 — what refine.bio runs) or
            ``full`` (SCAN: 50000, 0.01).
        brainarray: optional Brainarray probe table; probes are then summarized by its
            ``probeset_id`` (e.g. ``ENSG..._at``), matched on (x, y), many-to-many, unmatched probes
            dropped after normalization.
        params: override the constants (advanced; ``mode`` is ignored when given).

    Returns:
        :class:`ScanResult` with probeset values sorted by id.

    Raises:
        ScanRejectedError: more than 1% of PM intensities are 0.
        ScanError: the fit fails (as it would in SCAN.UPC) or too few probes.
        ValueError: inconsistent inputs (probe outside the chip, non-finite or negative intensities).
    """
    params = params or scan_params_for_mode(mode)
    intensities = np.asarray(intensities, dtype=np.float64)
    prepared = (
        probes if isinstance(probes, ScanProbes) else prepare_scan_probes(probes, cols, params.probe_length)
    )
    if prepared.cols != cols:
        raise ValueError(f"probes were prepared for {prepared.cols} columns, the array has {cols}")
    if prepared.pm_index.size and int(prepared.pm_index.max()) >= intensities.size:
        raise ValueError(
            f"probe cell index {int(prepared.pm_index.max())} outside the array ({intensities.size} cells)"
        )
    pint = intensities[prepared.pm_index]
    if not np.all(np.isfinite(pint)) or np.any(pint < 0):
        raise ValueError("PM intensities must be finite and non-negative")
    zero_fraction = np.count_nonzero(pint == 0) / pint.size
    if zero_fraction > MAX_ZERO_FRACTION:
        raise ScanRejectedError(
            f"{zero_fraction:.2%} of the {pint.size} PM intensities are 0 (more than 1%): SCAN.UPC refuses such arrays"
        )
    raw = pint[prepared.keep]
    shifted = bool(raw.min() == 0)
    if shifted:
        raw = raw + 1
    y = np.log2(raw)
    probe = scan_probe_values(y, prepared.X, params)

    if brainarray is None:
        values = _summarize_by(probe.values, prepared.probeset_ids, params.round_digits)
    else:
        ba_index = brainarray.cell_index(cols)
        left = pd.DataFrame({"index": prepared.index, "value": probe.values})
        right = pd.DataFrame(
            {"index": ba_index, "group": brainarray.frame["probeset_id"].to_numpy(dtype=object).astype(str)}
        )
        merged = left.merge(right, on="index", how="inner")
        if merged.empty:
            raise ValueError(
                f"no probe of the Brainarray table {brainarray.source or brainarray.platform} matches the PM probes"
            )
        values = _summarize_by(
            merged["value"].to_numpy(),
            merged["group"].to_numpy(dtype=object).astype(str),
            params.round_digits,
        )
    return ScanResult(
        values=values,
        iterations=probe.em.iterations,
        converged=probe.em.converged,
        n_probes=int(y.size),
        params=params,
        em=probe.em,
        n_zero_probes=int(np.count_nonzero(probe.values == 0)),
        shifted_by_one=shifted,
    )
