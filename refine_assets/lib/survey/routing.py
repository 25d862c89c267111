"""Deciding at survey time, before any download, which sequencing runs are not quantified, and why.

refine.bio decided late: single-cell libraries were downloaded and quantified as bulk (its docs warn),
and long-read or unsupported instruments failed only after the download. Here the survey decides from
the metadata it already has, and a run that will not be quantified gets pipeline ``NONE`` with the
reason (``Sample.pipeline_reason``), recorded as ``unsupported`` in the processing ledger with that
reason; nothing is downloaded for it.

Rules, first match wins (:func:`unsupported_rnaseq_reason`):

1. library strategy not ``RNA-Seq`` (miRNA-Seq, ChIP-Seq ...; refine.bio's gatherer filter);
2. library source ``TRANSCRIPTOMIC SINGLE CELL`` (SRA/ENA), or ``transcriptomic single cell`` (GEO's
   ``!Sample_library_source``): single-cell libraries;
3. a long-read instrument platform (``PACBIO_SMRT``, ``OXFORD_NANOPORE``): salmon's short-read k-mer
   indices (k = 23 / 31) do not apply;
4. an instrument that is not a supported short-read sequencer (``supported_rnaseq_models.csv``);
5. single-cell wording in the texts given (a GEO series' title, a sample's title): ``single-cell``,
   ``scRNA-seq``, ``snRNA-seq``, ``single nucleus``, ``10x Genomics``, ``Chromium``, ``Drop-seq``,
   ``Smart-seq``. Titles only: a bulk study may mention single-cell work in its summary.

Nothing here imports dagster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["LONG_READ_PLATFORMS", "single_cell_wording", "unsupported_rnaseq_reason"]

LONG_READ_PLATFORMS = frozenset({"PACBIO_SMRT", "OXFORD_NANOPORE"})
_SINGLE_CELL = re.compile(
    r"single[- ]?cell|\bsc[- ]?rna[- ]?seq|\bsn[- ]?rna[- ]?seq|single[- ]nucle(?:us|i)|10x genomics|"
    r"\bchromium\b|drop[- ]?seq|smart[- ]?seq",
    re.IGNORECASE,
)


def single_cell_wording(text: str | None) -> str | None:
    """The single-cell phrase found in ``text`` (rule 5), or None."""
    match = _SINGLE_CELL.search(text or "")
    return match.group(0) if match else None


def unsupported_rnaseq_reason(
    *,
    library_strategy: str | None,
    library_source: str | None,
    instrument_platform: str | None,
    instrument_model: str | None,
    supported_instrument: bool,
    texts: Iterable[tuple[str, str | None]] = (),
) -> str | None:
    """Why a sequencing run is not quantified (see the module rules), or None when it is.

    ``texts``: ``(what, text)`` pairs for rule 5, e.g. ``("series title", "...")``.
    """
    strategy = (library_strategy or "").strip()
    if strategy and strategy.lower() != "rna-seq":
        return f"library strategy {strategy} is not RNA-Seq: only bulk RNA-seq is quantified"
    source = " ".join((library_source or "").upper().split())
    if source == "TRANSCRIPTOMIC SINGLE CELL":
        return (
            "single-cell library (library source TRANSCRIPTOMIC SINGLE CELL): only bulk RNA-seq is quantified"
        )
    platform = (instrument_platform or "").strip().upper().replace(" ", "_")
    if platform in LONG_READ_PLATFORMS:
        return (
            f"long-read instrument {instrument_model or platform} ({platform}): the short-read salmon indices "
            "(k = 23 / 31) do not apply"
        )
    if not supported_instrument:
        return (
            f"instrument {instrument_model or platform or 'unknown'} is not a supported short-read sequencer"
        )
    for what, text in texts:
        phrase = single_cell_wording(text)
        if phrase:
            return f"single-cell experiment ({phrase!r} in the {what}): only bulk RNA-seq is quantified"
    return None
