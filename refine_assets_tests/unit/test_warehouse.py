"""Warehouse loading: schema, idempotent loads, atomic publishing, views, ledger."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from refine_assets.lib import warehouse
from refine_assets.lib.storage import open_store
from refine_assets.lib.survey.model import (
    Experiment,
    Organism,
    OriginalFile,
    Platform,
    Sample,
    SampleAttribute,
    SurveyResult,
)
from refine_assets.lib.survey.pipeline import write_survey


def _result(acc: str = "GSE1", n: int = 3, age_of_first: str = "0") -> SurveyResult:
    exp = Experiment(
        acc, "GEO", title="A test series", source_first_published="2004-02-19", pubmed_ids=["123"]
    )
    samples, attrs, files = [], [], []
    for i in range(n):
        s = f"GSM{i + 1}{acc[-1]}"
        samples.append(
            Sample(
                s,
                acc,
                "GEO",
                title=f"Sample {i}",
                organism="HOMO_SAPIENS",
                taxonomy_id=9606,
                platform_accession="GPL96",
                technology="MICROARRAY",
                manufacturer="AFFYMETRIX",
                has_raw=i > 0,
                pipeline="AFFY_TO_PCL" if i > 0 else "NO_OP",
                source_first_published="Feb 19 2004",  # not ISO: must load as NULL, not fail
            )
        )
        attrs += [
            SampleAttribute(s, "age", age_of_first if i == 0 else str(40 + i), "geo_characteristics", 0),
            SampleAttribute(s, "Sex", " F " if i % 2 == 0 else "male", "geo_characteristics", 1),
            SampleAttribute(s, "tissue", "Kidney", "geo_characteristics", 2),
            SampleAttribute(s, "lab note", "kept verbatim", "geo_characteristics", 3),
        ]
        files.append(OriginalFile(f"https://example.org/{s}.CEL.gz", acc, s, f"{s}.CEL.gz", "CEL", True))
    return SurveyResult(
        exp,
        samples=samples,
        attributes=attrs,
        platforms=[
            Platform(
                "GPL96", "GEO", "HG-U133A", "HOMO_SAPIENS", "hgu133a", "AFFYMETRIX", "MICROARRAY", True, True
            )
        ],
        organisms=[Organism("HOMO_SAPIENS", 9606, "Homo sapiens")],
        original_files=files,
    )


@pytest.fixture
def store(tmp_path: Path):
    return open_store(str(tmp_path / "storage"))


def test_load_and_query(tmp_path: Path, store) -> None:
    write_survey(_result(), store)
    db = tmp_path / "w.duckdb"
    report = warehouse.build_warehouse(db, store)
    assert report.loaded == ["GSE1"]
    assert report.row_counts["samples"] == 3
    assert report.row_counts["sample_attributes"] == 12
    with duckdb.connect(str(db), read_only=True) as con:
        ages = dict(con.execute("SELECT sample_accession, age FROM sample_harmonized").fetchall())
        assert ages == {"GSM11": 0.0, "GSM21": 41.0, "GSM31": 42.0}  # age 0 kept
        sexes = dict(con.execute("SELECT sample_accession, sex FROM sample_harmonized").fetchall())
        assert sexes == {"GSM11": "female", "GSM21": "male", "GSM31": "female"}
        assert con.execute(
            "SELECT value FROM sample_attributes WHERE key = 'lab note' LIMIT 1"
        ).fetchone() == ("kept verbatim",)
        row = con.execute(
            "SELECT source_first_published, pubmed_ids, survey_sha256 IS NOT NULL FROM experiments"
        ).fetchone()
        assert str(row[0]) == "2004-02-19" and row[1] == ["123"] and row[2]
        # an unparseable sample date is NULL, not an error
        assert con.execute(
            "SELECT count(*) FROM samples WHERE source_first_published IS NULL"
        ).fetchone() == (3,)
        summary = con.execute(
            "SELECT num_samples, num_pending, num_with_raw_data, organisms FROM experiment_summary"
        ).fetchone()
        assert summary == (3, 3, 2, ["HOMO_SAPIENS"])
        assert con.execute("SELECT count(*) FROM processing_ledger WHERE step = 'survey'").fetchone() == (3,)


def test_reload_is_idempotent_and_replaces(tmp_path: Path, store) -> None:
    db = tmp_path / "w.duckdb"
    write_survey(_result(), store)
    warehouse.build_warehouse(db, store)
    again = warehouse.build_warehouse(db, store)
    assert again.loaded == [] and again.row_counts["samples"] == 3
    write_survey(_result(n=2, age_of_first="7"), store)  # re-survey: fewer samples, new value
    third = warehouse.build_warehouse(db, store)
    assert third.loaded == ["GSE1"]
    assert third.row_counts["samples"] == 2 and third.row_counts["sample_attributes"] == 8
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT age FROM sample_harmonized WHERE sample_accession='GSM11'").fetchone() == (
            7.0,
        )
        assert con.execute("SELECT count(*) FROM platforms").fetchone() == (1,)


def test_readers_keep_their_snapshot_during_a_build(tmp_path: Path, store) -> None:
    db = tmp_path / "w.duckdb"
    write_survey(_result("GSE1"), store)
    warehouse.build_warehouse(db, store)
    reader = duckdb.connect(str(db), read_only=True)
    try:
        write_survey(_result("GSE2", n=5), store)
        report = warehouse.build_warehouse(db, store)  # a read-only reader does not block the writer
        assert report.loaded == ["GSE2"]
        assert reader.execute("SELECT count(*) FROM samples").fetchone() == (3,)  # old snapshot
    finally:
        reader.close()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM samples").fetchone() == (8,)


def test_failed_build_leaves_published_file_untouched(tmp_path: Path, store) -> None:
    db = tmp_path / "w.duckdb"
    write_survey(_result("GSE1"), store)
    warehouse.build_warehouse(db, store)
    before = db.read_bytes()
    manifest = write_survey(_result("GSE2"), store)
    store.put_bytes(manifest.tables["samples"]["key"], b"not parquet")
    with pytest.raises(duckdb.Error):
        warehouse.build_warehouse(db, store)
    assert db.read_bytes() == before
    assert not db.with_name(db.name + ".building").exists()


def test_concurrent_builds_serialize(tmp_path: Path, store) -> None:
    db = tmp_path / "w.duckdb"
    for i in range(4):
        write_survey(_result(f"GSE{i + 1}"), store)
    errors: list[BaseException] = []

    def build(acc: str) -> None:
        try:
            warehouse.build_warehouse(db, store, [acc])
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(f"GSE{i + 1}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT experiment_accession) FROM samples").fetchone() == (4,)


def test_ledger_drives_sample_status(tmp_path: Path, store) -> None:
    db = tmp_path / "w.duckdb"
    write_survey(_result(), store)
    warehouse.build_warehouse(db, store)
    with warehouse.writer_lock(db), warehouse.building(db) as con:
        warehouse.record_ledger(
            con,
            [
                {
                    "sample_accession": "GSM21",
                    "experiment_accession": "GSE1",
                    "step": "affy_scan",
                    "status": "succeeded",
                },
                {
                    "sample_accession": "GSM31",
                    "experiment_accession": "GSE1",
                    "step": "affy_scan",
                    "status": "failed",
                    "reason": "truncated CEL file",
                },
            ],
        )
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT num_samples, num_processed, num_failed, num_pending, reasons_not_processed FROM experiment_summary"
        ).fetchone()
        assert row == (3, 1, 1, 1, ["truncated CEL file"])
