"""The per-sample processing framework: isolation, skip-if-done, fallback, ledger, warehouse load."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from refine_assets.lib import warehouse
from refine_assets.lib.processing.framework import (
    ProcessedSample,
    ProcessingError,
    SampleInput,
    process_samples,
    read_ledger,
    write_ledger,
)
from refine_assets.lib.processing.vectors import read_vector
from refine_assets.lib.storage import open_store


class Fake:
    def __init__(self, step: str, fail: set[str] = frozenset(), version: str = "1"):
        self.step, self.fail, self.version, self.calls = step, fail, version, []

    def versions(self, sample: SampleInput) -> dict:
        return {"code": self.version}

    def process(self, sample: SampleInput) -> ProcessedSample:
        self.calls.append(sample.accession)
        if sample.accession in self.fail:
            raise ProcessingError(f"{sample.accession} is corrupt")
        if sample.accession == "BOOM":
            raise RuntimeError("bug")
        return ProcessedSample(
            pd.Series([2.0, 1.0], index=["ENSG2", "ENSG1"]), metrics={"n": 2}, method=self.step
        )


def _samples() -> list[SampleInput]:
    return [
        SampleInput("S1", "E1", "AFFY_TO_PCL"),
        SampleInput("S2", "E1", "AFFY_TO_PCL", has_submitter_table=True),
        SampleInput("S3", "E1", "AFFY_TO_PCL"),
        SampleInput("BOOM", "E1", "AFFY_TO_PCL"),
        SampleInput("S5", "E1", "NONE"),
    ]


@pytest.fixture
def store(tmp_path: Path):
    return open_store(str(tmp_path / "s"))


def test_isolation_fallback_unsupported(store) -> None:
    affy, noop = Fake("affy_scan", fail={"S2", "S3"}), Fake("no_op")
    out = {
        o.sample_accession: o
        for o in process_samples(_samples(), {"AFFY_TO_PCL": affy, "NO_OP": noop}, store)
    }
    assert out["S1"].status == "succeeded" and out["S1"].step == "affy_scan"
    # S2 failed on raw data, then succeeded from its submitter table; both reasons are kept
    assert out["S2"].status == "succeeded" and out["S2"].step == "no_op"
    assert "S2 is corrupt" in out["S2"].reason
    assert out["S3"].status == "failed" and out["S3"].reason == "affy_scan: S3 is corrupt"
    assert out["BOOM"].status == "failed" and "unexpected RuntimeError: bug" in out["BOOM"].reason
    assert out["S5"].status == "unsupported"
    values, prov = read_vector(store, "processed/E1/S1.parquet")
    assert list(values.index) == ["ENSG1", "ENSG2"] and list(values) == [1.0, 2.0]
    assert prov["step"] == "affy_scan" and prov["versions"] == {"code": "1"}


def test_skip_if_done_and_rerun_on_version_change(store) -> None:
    affy = Fake("affy_scan")
    first = process_samples(_samples()[:1], {"AFFY_TO_PCL": affy}, store)
    write_ledger(store, "E1", first)
    previous = read_ledger(store, "E1")
    assert previous[("S1", "affy_scan")].output_key == "processed/E1/S1.parquet"
    again = process_samples(_samples()[:1], {"AFFY_TO_PCL": affy}, store, previous=previous)
    assert affy.calls == ["S1"] and again[0].recorded_at == first[0].recorded_at
    newer = Fake("affy_scan", version="2")
    process_samples(_samples()[:1], {"AFFY_TO_PCL": newer}, store, previous=previous)
    assert newer.calls == ["S1"]
    store.delete("processed/E1/S1.parquet")  # output gone: recompute even with equal versions
    process_samples(_samples()[:1], {"AFFY_TO_PCL": affy}, store, previous=previous)
    assert affy.calls == ["S1", "S1"]


def test_ledger_loads_into_warehouse(store, tmp_path: Path) -> None:
    from refine_assets.lib.survey.pipeline import write_survey
    from refine_assets_tests.unit.test_warehouse import _result

    write_survey(_result("GSE1"), store)
    samples = [SampleInput(s, "GSE1", "AFFY_TO_PCL") for s in ("GSM11", "GSM21", "GSM31")]
    outcomes = process_samples(samples, {"AFFY_TO_PCL": Fake("affy_scan", fail={"GSM31"})}, store)
    write_ledger(store, "GSE1", outcomes)
    db = tmp_path / "w.duckdb"
    report = warehouse.build_warehouse(db, store)
    assert report.ledgers_loaded == ["GSE1"]
    assert warehouse.build_warehouse(db, store).ledgers_loaded == []  # idempotent
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT num_samples, num_processed, num_failed, reasons_not_processed FROM experiment_summary"
        ).fetchone()
        assert row == (3, 2, 1, ["affy_scan: GSM31 is corrupt"])
        assert con.execute(
            "SELECT metrics->>'n' FROM processing_ledger WHERE sample_accession='GSM11' AND step='affy_scan'"
        ).fetchone() == ("2",)
