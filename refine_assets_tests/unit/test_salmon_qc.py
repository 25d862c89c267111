"""Salmon QC gates on salmon's own output files, and the missing-tool error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refine_assets.lib.processing.framework import ProcessingError, SampleInput
from refine_assets.lib.processing.registry import ProcessingEnv
from refine_assets.lib.processing.salmon import SalmonProcessor
from refine_assets.lib.rnaseq.salmon_quant import ReadInfo, ToolMissingError, qc_gates, tool_version
from refine_assets.lib.storage import open_store


def _salmon_out(tmp: Path, rate: float, processed: int, fmt: str | None = "IU") -> Path:
    (tmp / "aux_info").mkdir(parents=True)
    (tmp / "aux_info" / "meta_info.json").write_text(
        json.dumps({"percent_mapped": rate, "num_processed": processed, "library_types": ["A"]})
    )
    if fmt:
        (tmp / "lib_format_counts.json").write_text(json.dumps({"expected_format": fmt}))
    return tmp


def test_good_run_passes(tmp_path: Path) -> None:
    qc = qc_gates(_salmon_out(tmp_path, 93.4, 20000), ReadInfo(True, 50.0, 50.0, 2000))
    assert qc.passed and qc.reasons == [] and qc.library_type == "IU" and qc.mapping_rate == 93.4


@pytest.mark.parametrize(
    ("rate", "processed", "minimum", "reason"),
    [
        (9.99, 1000, 10.0, "mapping rate 9.99% below the 10% minimum"),
        (40.0, 1000, 50.0, "mapping rate 40% below the 50% minimum"),
        (0.0, 0, 10.0, "no reads processed"),
    ],
)
def test_mapping_and_reads_gates(tmp_path: Path, rate, processed, minimum, reason) -> None:
    qc = qc_gates(_salmon_out(tmp_path, rate, processed), min_mapping_rate=minimum)
    assert not qc.passed and reason in qc.reasons


def test_single_cell_and_long_read_flags(tmp_path: Path) -> None:
    single_cell = qc_gates(_salmon_out(tmp_path / "a", 80.0, 5000), ReadInfo(True, 63.0, 28.0, 2000))
    assert single_cell.single_cell_suspect and not single_cell.passed
    assert any("single-cell barcode read" in r for r in single_cell.reasons)
    long_read = qc_gates(_salmon_out(tmp_path / "b", 80.0, 5000), ReadInfo(False, 1800.0, 1800.0, 2000))
    assert long_read.long_read_suspect and any("long-read data" in r for r in long_read.reasons)
    bulk = qc_gates(_salmon_out(tmp_path / "c", 80.0, 5000), ReadInfo(True, 101.0, 101.0, 2000))
    assert bulk.passed and not bulk.single_cell_suspect and not bulk.long_read_suspect


def test_missing_or_garbled_salmon_output(tmp_path: Path) -> None:
    assert "meta_info.json unreadable" in qc_gates(tmp_path).reasons[0]
    out = _salmon_out(tmp_path / "x", 50.0, 100, fmt=None)
    assert qc_gates(out).passed  # library type from meta_info when lib_format_counts is absent


def test_missing_salmon_binary_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no salmon, no fastq-dump
    with pytest.raises(ToolMissingError, match="salmon not found: install the Debian packages salmon"):
        tool_version("salmon")
    env = ProcessingEnv(open_store(str(tmp_path / "store")), None, tmp_path / "work")  # type: ignore[arg-type]
    sample = SampleInput(
        "SRR1", "SRP1", "SALMON", organism="HOMO_SAPIENS", technology="RNA-SEQ", has_raw=True
    )
    with pytest.raises(ProcessingError, match="salmon not found"):
        SalmonProcessor(env).process(sample)
