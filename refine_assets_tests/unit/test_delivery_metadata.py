"""Sample/experiment metadata from the warehouse and the documented flattening of submitter attributes."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb

from refine_assets.lib.delivery.metadata import (
    experiment_metadata,
    fetch_attributes,
    fetch_experiments,
    fetch_latest_processing,
    fetch_sample_rows,
    flatten_attributes,
    metadata_columns,
    pretty_platform,
    sample_metadata,
    tsv_cell,
    tsv_row,
    usable_vector_key,
    write_metadata_tsv,
)
from refine_assets_tests.unit.test_delivery_world import affy, make_world, rnaseq


def test_flattening_never_drops_a_value() -> None:
    attrs = [
        {"source": "geo_characteristics", "key": "tissue", "value": "kidney"},
        {"source": "geo_characteristics", "key": "tissue", "value": "cortex"},  # second value -> #2
        {"source": "geo_characteristics", "key": "tissue", "value": "kidney"},  # identical repeat: once
        {"source": "sdrf", "key": "Characteristics[organism part]", "value": "kidney"},
        {"source": "ae_json", "key": "variable[dose]", "value": "5 mg"},  # refine.bio lost variable_* values
        {"source": "ae_json", "key": "characteristic[dose]", "value": "5 mg"},
        {"source": "geo_field", "key": "description", "value": "line one\nline\ttwo"},
        {"source": "biosample", "key": "sex", "value": "F"},
        {"source": "geo_characteristics", "key": "tissue", "value": "medulla"},
    ]
    assert flatten_attributes(attrs) == {
        "geo_characteristics:tissue": "kidney",
        "geo_characteristics:tissue#2": "cortex",
        "geo_characteristics:tissue#3": "medulla",
        "sdrf:Characteristics[organism part]": "kidney",
        "ae_json:variable[dose]": "5 mg",
        "ae_json:characteristic[dose]": "5 mg",
        "geo_field:description": "line one line two",
        "biosample:sex": "F",
    }
    # every distinct (source, key, value) of the input is in the output
    distinct = {(a["source"], a["key"], a["value"].replace("\n", " ").replace("\t", " ")) for a in attrs}
    flat = flatten_attributes(attrs)
    for source, key, value in distinct:
        cols = [c for c in flat if c == f"{source}:{key}" or c.startswith(f"{source}:{key}#")]
        assert value in [flat[c] for c in cols]


def test_cells_and_column_order() -> None:
    assert tsv_cell(None) == "" and tsv_cell(True) == "true" and tsv_cell(False) == "false"
    assert tsv_cell(40.0) == "40" and tsv_cell(0.5) == "0.5" and tsv_cell(float("nan")) == ""
    assert tsv_cell({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert tsv_cell("a\tb\nc") == "a b c"
    rows = [
        {
            "refinebio_sex": "",
            "zeta:k": "1",
            "refinebio_accession_code": "GSM1",
            "experiment_accession": "GSE1",
        },
        {
            "alpha:k#10": "x",
            "alpha:k#2": "y",
            "alpha:k": "z",
            "refinebio_age": "3",
            "refinebio_accession_code": "GSM2",
        },
    ]
    assert metadata_columns(rows) == [
        "refinebio_accession_code",
        "experiment_accession",
        "refinebio_age",
        "refinebio_sex",
        "alpha:k",
        "alpha:k#2",
        "alpha:k#10",
        "zeta:k",
    ]
    assert metadata_columns(rows, leading=("reason",))[:3] == [
        "refinebio_accession_code",
        "experiment_accession",
        "reason",
    ]


def test_pretty_platform() -> None:
    name = "[HG-U133_Plus_2] Affymetrix Human Genome U133 Plus 2.0 Array"
    assert pretty_platform(name, "hgu133plus2") == "Affymetrix Human Genome U133 Plus 2.0 Array (hgu133plus2)"
    assert (
        pretty_platform("Illumina HiSeq 2500", "IlluminaHiSeq2500")
        == "Illumina HiSeq 2500 (IlluminaHiSeq2500)"
    )
    assert pretty_platform(None, None) is None


def test_usable_vector_rule() -> None:
    ok = {"step": "affy_scan", "status": "succeeded", "output_key": "processed/GSE1/GSM1.parquet"}
    assert usable_vector_key(ok) == ("processed/GSE1/GSM1.parquet", "")
    assert usable_vector_key(None)[1] == "not processed yet (no processing outcome recorded)"
    assert "not supported" in usable_vector_key(None, "NONE")[1]
    salmon = {"step": "salmon", "status": "succeeded", "output_key": "processed/SRP1/SRR1/quant.sf"}
    assert usable_vector_key(salmon) == (
        None,
        "not processed yet: latest step salmon succeeded but produced no expression vector (quant.sf) - tximport pending",
    )
    failed = {"step": "affy_scan", "status": "failed", "reason": "affy_scan: truncated CEL"}
    assert usable_vector_key(failed) == (None, "processing failed (affy_scan): affy_scan: truncated CEL")
    probes = {"step": "x", "status": "succeeded", "output_key": "processed/G/S.probesets.parquet"}
    assert usable_vector_key(probes)[0] is None


def test_warehouse_queries_and_sample_dict(tmp_path: Path) -> None:
    store, db = make_world(
        tmp_path,
        {
            "GSE1": [
                affy(
                    "GSM1",
                    attrs=[
                        ("age", "42", "geo_characteristics"),
                        ("Sex", " F ", "geo_characteristics"),
                        ("tissue", "kidney", "geo_characteristics"),
                        ("tissue", "cortex", "geo_characteristics"),
                        ("source_name_ch1", "kidney biopsy", "geo_field"),
                    ],
                ),
                affy("GSM2", seed=1, status="failed", reason="affy_scan: truncated CEL file"),
            ],
            "SRP1": [rnaseq("SRR1")],
        },
    )
    with duckdb.connect(str(db), read_only=True) as con:
        rows = fetch_sample_rows(con, [("GSM1", "GSE1"), ("SRR1", "SRP1"), ("GSM1", "SRP1")])
        assert set(rows) == {("GSM1", "GSE1"), ("SRR1", "SRP1")}  # (GSM1, SRP1) does not exist
        attrs = fetch_attributes(con, [("GSM1", "GSE1")])
        latest = fetch_latest_processing(con, ["GSM1", "GSM2", "SRR1"])
        exps = fetch_experiments(con, ["GSE1", "SRP1", "GSE404"])
    assert [a["key"] for a in attrs[("GSM1", "GSE1")]] == [
        "age",
        "Sex",
        "tissue",
        "tissue",
        "source_name_ch1",
    ]
    assert latest[("GSM2", "GSE1")]["status"] == "failed"
    assert latest[("SRR1", "SRP1")]["step"] == "tximport"  # newer than the salmon row
    assert latest[("GSM1", "GSE1")]["versions"] == {
        "brainarray": "22.0.0",
        "refine_assets": "0.1.0",
        "scan": "fast",
    }
    assert set(exps) == {"GSE1", "SRP1"}

    d = sample_metadata(
        rows[("GSM1", "GSE1")],
        attrs[("GSM1", "GSE1")],
        latest[("GSM1", "GSE1")],
        experiment_accession="GSE1",
        provenance={"method": "SCANfast+Brainarray"},
        genes_in_vector=300,
    )
    assert d["refinebio_accession_code"] == "GSM1" and d["experiment_accession"] == "GSE1"
    assert d["refinebio_age"] == 42.0 and d["refinebio_sex"] == "female"
    assert d["refinebio_specimen_part"] == "cortex;kidney"
    assert d["refinebio_platform"] == "Affymetrix Human Genome U133 Plus 2.0 Array (hgu133plus2)"
    assert d["refinebio_processor_name"] == "affy_scan"
    assert d["refinebio_processor_method"] == "SCANfast+Brainarray"
    assert d["refinebio_processor_versions"]["brainarray"] == "22.0.0"
    assert d["refinebio_processed_url"] == store.url_for("processed/GSE1/GSM1.parquet")
    assert d["refinebio_processed"] is True
    assert d["refinebio_annotations"][1] == {"source": "geo_characteristics", "key": "Sex", "value": " F "}
    row = tsv_row(d)
    assert row["geo_characteristics:tissue"] == "kidney" and row["geo_characteristics:tissue#2"] == "cortex"
    assert row["geo_field:source_name_ch1"] == "kidney biopsy"
    assert row["geo_characteristics:Sex"] == " F "  # verbatim (the harmonized field is refinebio_sex)
    assert (
        row["refinebio_processor_versions"] == '{"brainarray":"22.0.0","refine_assets":"0.1.0","scan":"fast"}'
    )
    assert "refinebio_annotations" not in row
    buf = io.StringIO()
    header = write_metadata_tsv(buf, [d])
    lines = buf.getvalue().splitlines()
    assert lines[0].split("\t") == header and header[:2] == [
        "refinebio_accession_code",
        "experiment_accession",
    ]
    assert len(lines) == 2 and len(lines[1].split("\t")) == len(header)

    e = experiment_metadata(exps["GSE1"], ["GSM1"], ["HOMO_SAPIENS"])
    assert e["accession_code"] == "GSE1" and e["title"] == "Experiment GSE1"
    assert e["has_publication"] is True and e["pubmed_id"] == "12345678"
    assert e["source_first_published"] == "2010-01-02" and e["organisms"] == ["HOMO_SAPIENS"]
    assert e["sample_accession_codes"] == ["GSM1"]
