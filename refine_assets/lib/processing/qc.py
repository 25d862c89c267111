"""QC gate evaluation over an experiment's processing outcomes (asset checks in the UI).

Each function returns ``(passed, severity, metadata)`` where severity is ``"WARN"`` or ``"ERROR"``;
the Dagster layer turns them into ``AssetCheckResult``s. Thresholds are module constants, documented
in ``docs/processing.md`` (QC checks).
"""

from __future__ import annotations

from collections.abc import Sequence

from refine_assets.lib.processing.framework import SampleOutcome

MAX_ZERO_INTENSITY_FRACTION = 0.01  # SCAN.UPC rejects arrays with more than 1% zero PM intensities
MIN_PROCESSED_FRACTION = 0.5  # of the samples whose pipeline is supported
MIN_MAPPING_RATE = 10.0  # salmon percent mapped
# Illumina: fraction of probes detected (detection p < 0.01). A BeadChip detecting fewer than a fifth of
# its probes is the "noisy sample" refine.bio let into its human compendium (issue #2114).
MIN_ILLUMINA_DETECTED_FRACTION = 0.2


def affymetrix_qc(outcomes: Sequence[SampleOutcome]) -> tuple[bool, str, dict]:
    """Zero-intensity fraction and SCAN EM convergence of every SCAN-processed array."""
    scanned = [o for o in outcomes if o.step == "affy_scan" and o.status == "succeeded"]
    zero_bad = [
        o.sample_accession
        for o in scanned
        if (o.metrics.get("zero_intensity_fraction") or 0) > MAX_ZERO_INTENSITY_FRACTION
    ]
    unconverged = [o.sample_accession for o in scanned if o.metrics.get("em_converged") is False]
    mismatched = [o.sample_accession for o in scanned if o.metrics.get("platform_mismatch")]
    passed = not zero_bad and not unconverged
    return (
        passed,
        "WARN",
        {
            "arrays": len(scanned),
            "zero_intensity_over_1pct": zero_bad,
            "em_not_converged": unconverged,
            "cel_header_platform_differs_from_survey": mismatched,
        },
    )


def processed_fraction(outcomes: Sequence[SampleOutcome]) -> tuple[bool, str, dict]:
    """x of y samples processed, among samples with a supported pipeline."""
    supported = [o for o in outcomes if o.status != "unsupported"]
    done = [o for o in supported if o.status == "succeeded"]
    frac = len(done) / len(supported) if supported else 1.0
    return (
        frac >= MIN_PROCESSED_FRACTION,
        "WARN",
        {
            "processed": len(done),
            "supported": len(supported),
            "unsupported": len(outcomes) - len(supported),
            "fraction": round(frac, 4),
            "threshold": MIN_PROCESSED_FRACTION,
        },
    )


def salmon_qc(outcomes: Sequence[SampleOutcome]) -> tuple[bool, str, dict]:
    """Salmon runs below the mapping-rate gate (they are excluded from tximport)."""
    runs = [o for o in outcomes if o.step == "salmon"]
    low = {
        o.sample_accession: o.metrics.get("mapping_rate")
        for o in runs
        if o.metrics.get("mapping_rate") is not None and o.metrics["mapping_rate"] < MIN_MAPPING_RATE
    }
    return (
        not low,
        "WARN",
        {"runs": len(runs), "below_mapping_gate": low, "min_mapping_rate": MIN_MAPPING_RATE},
    )


def illumina_qc(outcomes: Sequence[SampleOutcome]) -> tuple[bool, str, dict]:
    """Detection fraction and SCAN EM convergence of every Illumina-SCAN-processed sample."""
    done = [o for o in outcomes if o.step == "illumina_scan" and o.status == "succeeded"]
    low = {
        o.sample_accession: o.metrics.get("fraction_detected")
        for o in done
        if o.metrics.get("fraction_detected") is not None
        and o.metrics["fraction_detected"] < MIN_ILLUMINA_DETECTED_FRACTION
    }
    unconverged = [o.sample_accession for o in done if o.metrics.get("em_converged") is False]
    return (
        not low and not unconverged,
        "WARN",
        {
            "samples": len(done),
            "below_detection_fraction": low,
            "min_detected_fraction": MIN_ILLUMINA_DETECTED_FRACTION,
            "em_not_converged": unconverged,
        },
    )
