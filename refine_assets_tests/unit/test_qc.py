"""QC gate functions over processing outcomes."""

from __future__ import annotations

from refine_assets.lib.processing import qc
from refine_assets.lib.processing.framework import SampleOutcome


def _o(sample: str, step: str, status: str, **metrics) -> SampleOutcome:
    return SampleOutcome(sample, "E1", step, status, metrics=metrics)


def test_affymetrix_qc_flags_zero_intensities_and_unconverged_em() -> None:
    good = [_o("A", "affy_scan", "succeeded", zero_intensity_fraction=0.0, em_converged=True)]
    assert qc.affymetrix_qc(good)[0]
    bad = [
        *good,
        _o("B", "affy_scan", "succeeded", zero_intensity_fraction=0.02, em_converged=True),
        _o("C", "affy_scan", "succeeded", zero_intensity_fraction=0.0, em_converged=False),
        _o("D", "affy_scan", "failed"),
    ]
    passed, severity, meta = qc.affymetrix_qc(bad)
    assert not passed and severity == "WARN"
    assert meta == {
        "arrays": 3,
        "zero_intensity_over_1pct": ["B"],
        "em_not_converged": ["C"],
        "cel_header_platform_differs_from_survey": [],
    }


def test_processed_fraction_ignores_unsupported() -> None:
    outcomes = [_o("A", "x", "succeeded"), _o("B", "x", "failed"), _o("C", "none", "unsupported")]
    passed, _, meta = qc.processed_fraction(outcomes)
    assert passed and meta["processed"] == 1 and meta["supported"] == 2 and meta["fraction"] == 0.5
    assert not qc.processed_fraction([*outcomes, _o("D", "x", "failed")])[0]


def test_salmon_gate() -> None:
    outcomes = [
        _o("R1", "salmon", "succeeded", mapping_rate=93.1),
        _o("R2", "salmon", "failed", mapping_rate=0.005),
    ]
    passed, _, meta = qc.salmon_qc(outcomes)
    assert not passed and meta["below_mapping_gate"] == {"R2": 0.005}


def test_illumina_gate() -> None:
    outcomes = [
        _o("G1", "illumina_scan", "succeeded", fraction_detected=0.45, em_converged=True),
        _o("G2", "illumina_scan", "succeeded", fraction_detected=0.12, em_converged=True),
        _o("G3", "illumina_scan", "succeeded", fraction_detected=0.50, em_converged=False),
        _o("G4", "illumina_scan", "failed"),
    ]
    assert qc.illumina_qc(outcomes[:1])[0]
    passed, severity, meta = qc.illumina_qc(outcomes)
    assert not passed and severity == "WARN"
    assert meta["samples"] == 3 and meta["below_detection_fraction"] == {"G2": 0.12}
    assert meta["em_not_converged"] == ["G3"]
