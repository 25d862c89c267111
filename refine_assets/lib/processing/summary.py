"""x of y samples processed, and why not: a summary of an experiment's processing ledger.

:func:`processing_summary` takes the experiment's samples and its ledger outcomes (every step of every
sample) and reports each sample by its **newest** processing outcome (the survey step excluded), like
the warehouse view ``sample_status``: ``processed`` (succeeded), ``failed``, ``unsupported``, or
``pending`` (no outcome yet). Reasons are grouped after :func:`generic_reason` replaces the sample's
own accession (and accessions of the same kind in file names) by placeholders, so 77 samples failing
for the same missing reference or archive count as one reason, with the URL kept.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

__all__ = ["generic_reason", "newest_outcomes", "processing_summary"]

_RUN_OR_SAMPLE = re.compile(r"\b(GSM|SRR|ERR|DRR|SRX|ERX|DRX)\d+\b")


def generic_reason(reason: str, sample: str) -> str:
    """``reason`` with the sample's accession as ``<sample>`` and GSM/SRR/ERR/DRR ids as ``GSM…``."""
    text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(sample)}(?![A-Za-z0-9])", "<sample>", reason)
    return _RUN_OR_SAMPLE.sub(lambda m: f"{m.group(1)}…", text)


def newest_outcomes(ledger: Mapping[tuple[str, str], object]) -> dict[str, object]:
    """The newest non-survey outcome of every sample (by ``recorded_at``) from ``{(sample, step): outcome}``."""
    newest: dict[str, object] = {}
    for (sample, step), outcome in ledger.items():
        if step == "survey":
            continue
        best = newest.get(sample)
        if best is None or str(outcome.recorded_at) > str(best.recorded_at):  # type: ignore[attr-defined]
            newest[sample] = outcome
    return newest


def processing_summary(
    accession: str, samples: Iterable[str], ledger: Mapping[tuple[str, str], object]
) -> dict:
    """``{"accession", "samples", "processed", "failed", "unsupported", "pending", "reasons"}``."""
    newest = newest_outcomes(ledger)
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    sample_list = list(dict.fromkeys(samples))
    for sample in sample_list:
        outcome = newest.get(sample)
        status = getattr(outcome, "status", None)
        key = {"succeeded": "processed", "failed": "failed", "unsupported": "unsupported"}.get(
            status, "pending"
        )
        counts[key] += 1
        if key in ("failed", "unsupported"):
            reasons[generic_reason(getattr(outcome, "reason", None) or "no reason recorded", sample)] += 1
    return {
        "accession": accession,
        "samples": len(sample_list),
        "processed": counts["processed"],
        "failed": counts["failed"],
        "unsupported": counts["unsupported"],
        "pending": counts["pending"],
        "reasons": dict(reasons.most_common()),
    }
