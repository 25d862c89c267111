"""Compendium filters: RNA-seq low-count genes, log2(x + 1) once, gene and sample missingness, zeros.

Reference: refine.bio ``workers/data_refinery_workers/processors/create_compendia.py``
(``_filter_rnaseq_matrix``, ``_log2_transform_matrix``, ``_cached_remove_zeroes``,
``_filter_rows_and_columns``, ``_reset_zero_values``; ``refinebio-teardown.md`` §8.2 steps 3-8), whose
design is AlexsLemonade/refinebio issue #508. Applied in place, column block by column block, to the
assembled genes x samples matrix (``assemble.py``); RNA-seq values arrive as lengthScaledTPM.

Sequence (``apply_filters``):

1. Samples without any value, RNA-seq samples with negative values, and samples the caller excludes
   (e.g. unreadable vectors) leave the compendium with a reason; the rest are "active".
2. **RNA-seq low-count genes** (refine.bio step 3): per gene, the sum of its lengthScaledTPM values over
   the active RNA-seq samples (missing skipped); the threshold is the ``low_count_quantile`` (10th)
   percentile of these sums (``numpy.percentile``, linear) over the genes measured in at least one
   active RNA-seq sample; genes with a sum **strictly below** it lose their RNA-seq values (set
   missing; a gene keeps its microarray values, as refine.bio drops it from the RNA-seq matrix before
   the outer join).
3. **log2(x + 1)** of the RNA-seq values, exactly once (refine.bio applies it twice, §12 item 1).
4. **Zeros**: an RNA-seq value of 0 (lengthScaledTPM 0, still 0 after log2(x + 1)) counts as *missing*
   for both missingness filters, but stays 0 in the matrix afterwards and is not imputed — what
   refine.bio does by caching the zero positions, setting them to NaN and resetting them to 0.0 after
   the filters. Microarray zeros are ordinary values.
5. **Genes**: keep a gene present in at least ``gene_min_present`` (70 %) of the active samples
   (``present >= 0.7 * n``, refine.bio's ``dropna(thresh=0.7 * ncol)``: drop genes missing in more
   than 30 %).
6. **Samples**: keep a sample present in at least ``sample_min_present`` (50 %) of the kept genes
   (``dropna(axis="columns", thresh=0.5 * nrow)``); the others are filtered "less than 50% present
   values".

Differences from refine.bio (deliberate; ``docs/compendia.md``): the low-count sums are over
lengthScaledTPM, not over the log2(x + 1) values refine.bio's SPECIES loader had already produced;
the percentile is taken over genes measured in RNA-seq — refine.bio's RNA-seq frame is indexed by the
joint gene list, so genes only on microarrays enter with a sum of 0, which lowers (often to 0, i.e.
disables) the threshold; samples with no value at all are removed before the gene filter instead of
counting in its denominator (refine.bio drops all-NaN RNA-seq columns but not microarray ones).

Tolerance: counts and thresholds are exact (integers; the threshold comparisons use refine.bio's
float products); log2 runs in float64 and is stored as float32. Verified on hand-computed matrices in
``refine_assets_tests/unit/test_compendia_filters.py`` (including refine.bio's own two test cases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from refine_assets.lib.compendia.assemble import RNASEQ, normalize_technology

__all__ = ["FilterError", "FilterResult", "apply_filters", "default_block_columns"]

DEFAULT_BLOCK_VALUES = 16 * 1024 * 1024


class FilterError(ValueError):
    """The filters leave nothing (every gene or every sample filtered out) or the input is malformed."""


@dataclass
class FilterResult:
    """Outcome of :func:`apply_filters`.

    ``genes_kept``/``samples_kept``: boolean masks over the input rows/columns. ``filtered``: sample ->
    reason for every sample not kept. ``rnaseq_threshold``: the low-count threshold (None without
    RNA-seq samples); ``rnaseq_genes_dropped`` of ``rnaseq_genes_measured`` lost their RNA-seq values.
    ``gene_present``: present count per gene over the active samples; ``sample_present``: present
    count per sample over the kept genes (0 for samples that were never active).
    """

    genes_kept: np.ndarray
    samples_kept: np.ndarray
    filtered: dict[str, str]
    rnaseq_threshold: float | None
    rnaseq_genes_dropped: int
    rnaseq_genes_measured: int
    n_active: int
    gene_present: np.ndarray
    sample_present: np.ndarray
    rnaseq_zeros_kept: int = 0
    stats: dict = field(default_factory=dict)


def default_block_columns(n_rows: int, block_values: int = DEFAULT_BLOCK_VALUES) -> int:
    """Columns per block so that one block holds about ``block_values`` values."""
    return max(1, int(block_values) // max(1, int(n_rows)))


def _blocks(n: int, step: int):
    for j0 in range(0, n, step):
        yield j0, min(j0 + step, n)


def apply_filters(
    matrix: np.ndarray,
    samples: Sequence[str],
    technologies: Sequence[str],
    *,
    low_count_quantile: float = 0.10,
    gene_min_present: float = 0.7,
    sample_min_present: float = 0.5,
    excluded: Mapping[str, str] | None = None,
    block_columns: int | None = None,
) -> FilterResult:
    """Run the compendium filters on ``matrix`` (genes x samples, NaN = missing), **in place**.

    Contract: ``matrix`` is a writable float array (a Fortran-order memmap is read and written column
    block by column block); ``samples``/``technologies`` describe its columns (MICROARRAY or RNA-SEQ);
    RNA-seq columns hold lengthScaledTPM and are replaced by log2(x + 1) for active samples, with the
    low-count genes' RNA-seq cells set to NaN. ``excluded`` samples leave with the given reason. Steps,
    thresholds and zero handling: module docstring. Raises :class:`FilterError` when the shape and the
    names disagree, when ``low_count_quantile`` is not in [0, 1), and when every gene or every sample
    is filtered out (naming the counts and thresholds).
    """
    n_genes, n_samples = matrix.shape
    if len(samples) != n_samples or len(technologies) != n_samples:
        raise FilterError(
            f"{len(samples)} sample names and {len(technologies)} technologies for {n_samples} columns"
        )
    if not 0.0 <= low_count_quantile < 1.0:
        raise FilterError(f"low_count_quantile must be in [0, 1), got {low_count_quantile}")
    if n_genes == 0 or n_samples == 0:
        raise FilterError(f"empty matrix ({n_genes} genes x {n_samples} samples)")
    tech = np.array(
        [normalize_technology(t, s) == RNASEQ for s, t in zip(samples, technologies, strict=True)]
    )
    step = block_columns or default_block_columns(n_genes)
    excluded = dict(excluded or {})
    filtered: dict[str, str] = {}

    # ---- pass 1: per-column presence / minimum, RNA-seq row sums (raw lengthScaledTPM)
    n_finite = np.zeros(n_samples, dtype=np.int64)
    col_min = np.full(n_samples, np.inf)
    row_sum = np.zeros(n_genes, dtype=np.float64)
    measured = np.zeros(n_genes, dtype=bool)
    active = np.ones(n_samples, dtype=bool)
    for j, name in enumerate(samples):
        if name in excluded:
            active[j] = False
            filtered[name] = excluded[name]
    for j0, j1 in _blocks(n_samples, step):
        blk = np.asarray(matrix[:, j0:j1], dtype=np.float64)
        fin = ~np.isnan(blk)
        n_finite[j0:j1] = fin.sum(axis=0)
        with np.errstate(invalid="ignore"):
            col_min[j0:j1] = np.where(fin.any(axis=0), np.nanmin(np.where(fin, blk, np.inf), axis=0), np.inf)
        for j in range(j0, j1):
            if not active[j]:
                continue
            if n_finite[j] == 0:
                active[j] = False
                filtered[samples[j]] = "no value for any gene of the compendium's gene universe"
            elif tech[j] and col_min[j] < 0:
                active[j] = False
                filtered[samples[j]] = (
                    f"negative values in an RNA-seq (lengthScaledTPM) vector (min {col_min[j]:g})"
                )
        sel = active[j0:j1] & tech[j0:j1]
        if sel.any():
            sub = blk[:, sel]
            row_sum += np.nansum(sub, axis=1)
            measured |= (~np.isnan(sub)).any(axis=1)
        del blk, fin
    n_active = int(active.sum())
    if n_active == 0:
        raise FilterError(f"every one of the {n_samples} samples was filtered out before the gene filter")
    rna_active = active & tech

    # ---- RNA-seq low-count threshold
    threshold: float | None = None
    low = np.zeros(n_genes, dtype=bool)
    if rna_active.any() and measured.any():
        threshold = float(np.percentile(row_sum[measured], 100.0 * low_count_quantile))
        low = measured & (row_sum < threshold)

    # ---- pass 2: low-count genes -> NaN, log2(x + 1) once (RNA-seq); gene presence (zeros missing)
    gene_present = np.zeros(n_genes, dtype=np.int64)
    for j0, j1 in _blocks(n_samples, step):
        act = active[j0:j1]
        if not act.any():
            continue
        rna = rna_active[j0:j1]
        if rna.any():
            blk = np.asarray(matrix[:, j0:j1], dtype=np.float64)
            cols = np.flatnonzero(rna)
            sub = blk[:, cols]
            sub[low, :] = np.nan
            np.log2(sub + 1.0, out=sub)
            blk[:, cols] = sub
            matrix[:, j0:j1] = blk
        else:
            blk = np.asarray(matrix[:, j0:j1])
        present = ~np.isnan(blk)
        if rna.any():
            present[:, rna] &= blk[:, rna] != 0
        gene_present += present[:, act].sum(axis=1)
        del blk, present

    genes_kept = gene_present >= n_active * gene_min_present
    n_kept = int(genes_kept.sum())
    if n_kept == 0:
        raise FilterError(
            f"every gene was filtered out: no gene is present in at least {gene_min_present:.0%} of the "
            f"{n_active} samples (most present: {int(gene_present.max())}; RNA-seq zeros count as missing)"
        )

    # ---- pass 3: sample presence over the kept genes
    sample_present = np.zeros(n_samples, dtype=np.int64)
    zero_counts = np.zeros(n_samples, dtype=np.int64)
    for j0, j1 in _blocks(n_samples, step):
        act = active[j0:j1]
        if not act.any():
            continue
        blk = np.asarray(matrix[:, j0:j1])[genes_kept]
        present = ~np.isnan(blk)
        rna = rna_active[j0:j1]
        if rna.any():
            zero = (blk[:, rna] == 0) & present[:, rna]
            present[:, rna] &= ~zero
            zero_counts[j0 + np.flatnonzero(rna)] = zero.sum(axis=0)
        sample_present[j0:j1] = np.where(act, present.sum(axis=0), 0)
        del blk, present
    samples_kept = active & (sample_present >= n_kept * sample_min_present)
    for j in np.flatnonzero(active & ~samples_kept):
        filtered[samples[j]] = (
            f"less than {sample_min_present:.0%} present values ({int(sample_present[j])} of {n_kept} genes; "
            "RNA-seq zeros count as missing)"
        )
    if not samples_kept.any():
        raise FilterError(
            f"every sample was filtered out: none has values for at least {sample_min_present:.0%} of the "
            f"{n_kept} genes that passed the gene filter"
        )
    zeros_kept = int(zero_counts[samples_kept].sum())
    return FilterResult(
        genes_kept=genes_kept,
        samples_kept=samples_kept,
        filtered=filtered,
        rnaseq_threshold=threshold,
        rnaseq_genes_dropped=int(low.sum()),
        rnaseq_genes_measured=int(measured.sum()),
        n_active=n_active,
        gene_present=gene_present,
        sample_present=sample_present,
        rnaseq_zeros_kept=zeros_kept,
        stats={
            "samples_in": n_samples,
            "samples_active": n_active,
            "samples_kept": int(samples_kept.sum()),
            "genes_in": n_genes,
            "genes_kept": n_kept,
            "low_count_quantile": low_count_quantile,
            "gene_min_present": gene_min_present,
            "sample_min_present": sample_min_present,
        },
    )
