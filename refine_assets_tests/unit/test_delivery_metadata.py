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
    pretty_platform,
    processor_fields,
    sample_metadata,
    usable_vector_key,
)
from refine_assets.lib.delivery.metadata_tsv import (
    flatten_annotations,
    refinebio_annotations,
    tsv_cell,
    tsv_columns,
    tsv_row,
    write_metadata_tsv,
)
from refine_assets_tests.unit.test_delivery_world import affy, make_world, rnaseq

# refine.bio's own fixture (workers/tests/processors/test_smasher.py, AggregationTestCase.setUp):
# an ArrayExpress and a GEO sample dict with their annotations as refine.bio stores them.
REFINEBIO_SAMPLES = {
    "IFNa DC_LB016_IFNa": {
        "refinebio_title": "IFNa DC_LB016_IFNa",
        "refinebio_accession_code": "E-GEOD-44719-GSM1089311",
        "refinebio_source_database": "ARRAY_EXPRESS",
        "refinebio_organism": "fake_species",
        "refinebio_annotations": [
            {
                "detected_platform": "illuminaHumanv3",
                "detection_percentage": 98.44078,
                "mapped_percentage": 100.0,
            },
            {
                "assay": {"name": "GSM1089311"},
                "characteristic": [
                    {"category": "cell population", "value": "IFNa DC"},
                    {"category": "dose", "value": "1 mL"},
                    {"category": "donor id", "value": "LB016"},
                ],
                "variable": [{"name": "dose", "value": "1 mL"}, {"name": "stimulation", "value": "IFNa"}],
                "source": {
                    "name": "GSM1288968 1",
                    "comment": [
                        {
                            "name": "Sample_source_name",
                            "value": "pineal glands at CT18, after light exposure",
                        },
                        {"name": "Sample_title", "value": "Pineal_Light_CT18"},
                    ],
                },
                "extract": {"name": "GSM1089311 extract 1"},
            },
        ],
    },
    "Bone.Marrow_OA_No_ST03": {
        "refinebio_title": "Bone.Marrow_OA_No_ST03",
        "refinebio_accession_code": "GSM1361050",
        "refinebio_source_database": "GEO",
        "refinebio_organism": "homo_sapiens",
        "refinebio_annotations": [
            {
                "channel_count": ["1"],
                "characteristics_ch1": ["tissue: Bone Marrow", "disease: OA", "serum: Low Serum"],
                "contact_address": ["Crown Street"],
                "contact_country": ["United Kingdom"],
                "data_processing": ["Data was processed and normalized"],
                "geo_accession": ["GSM1361050"],
            }
        ],
    },
}


def test_refinebio_fixture_gives_refinebio_columns_and_values() -> None:
    rows = {s["refinebio_accession_code"]: tsv_row(s) for s in REFINEBIO_SAMPLES.values()}
    columns = tsv_columns(rows.values())
    # refine.bio's test_columns: 23 columns, accession first; its "characteristic_stimulation" was the
    # header/row mismatch (teardown §12 item 8): the value is now in variable_stimulation, with variable_dose
    assert len(columns) == 23 and columns[:2] == ["refinebio_accession_code", "experiment_accession"]
    assert columns[2:5] == ["refinebio_organism", "refinebio_source_database", "refinebio_title"]
    for c in (
        "characteristic_cell population",
        "characteristic_dose",
        "variable_stimulation",
        "variable_dose",
        "characteristics_ch1_serum",
    ):
        assert c in columns, c
    assert "characteristic_stimulation" not in columns
    assert columns[5:] == sorted(columns[5:])
    ae = rows["E-GEOD-44719-GSM1089311"][1]
    # refine.bio's test_all_samples / test_experiment values, plus the variable values it lost
    assert ae["characteristic_cell population"] == "IFNa DC" and ae["characteristic_dose"] == "1 mL"
    assert ae["variable_stimulation"] == "IFNa" and ae["variable_dose"] == "1 mL"
    assert ae["assay"] == "GSM1089311" and ae["extract"] == "GSM1089311 extract 1"  # {"name"} only
    assert ae["detection_percentage"] == "98.44078" and not any(c.startswith("source") for c in ae)
    geo = rows["GSM1361050"][1]
    assert geo["characteristics_ch1_tissue"] == "Bone Marrow" and geo["geo_accession"] == "GSM1361050"
    assert geo["contact_country"] == "United Kingdom"  # single-element list -> the element
    buf = io.StringIO()
    header = write_metadata_tsv(buf, list(REFINEBIO_SAMPLES.values()))
    assert header == columns and buf.getvalue().count("\r\n") == 3  # csv.DictWriter's line ends


def test_attribute_rows_become_refinebio_annotations() -> None:
    geo = [
        {"source": "geo_field", "key": "geo_accession", "value": "GSM1"},
        {"source": "geo_characteristics", "key": "tissue", "value": "kidney"},
        {"source": "geo_characteristics", "key": "characteristics_ch1", "value": "no colon here"},
        {"source": "geo_relation", "key": "SRA", "value": "SRX1"},  # derived from the relation field
        {"source": "geo_characteristics", "key": "time", "value": "10:30"},
    ]
    assert refinebio_annotations(geo) == [
        {
            "geo_accession": ["GSM1"],
            "characteristics_ch1": ["tissue: kidney", "no colon here", "time: 10:30"],
        }
    ]
    assert flatten_annotations(refinebio_annotations(geo), "GEO") == {
        "geo_accession": "GSM1",
        "characteristics_ch1_tissue": "kidney",
        "characteristics_ch1": "no colon here",  # refine.bio dropped entries without "key:"
        "characteristics_ch1_time": "10:30",
    }
    ae = [
        {"source": "sdrf", "key": "Characteristics [sex]", "value": "female"},
        {"source": "sdrf", "key": "Factor Value[dose]", "value": "5 mg"},
        {"source": "sdrf", "key": "Protocol REF", "value": "P-1"},
        {"source": "sdrf", "key": "Protocol REF", "value": "P-2"},
        {"source": "ae_json", "key": "assay.name", "value": "A1"},
        {"source": "ae_json", "key": "characteristic[sex]", "value": "female"},
        {"source": "ae_json", "key": "characteristic[age]", "value": "54"},
        {"source": "ae_json", "key": "characteristic[age] unit", "value": "year"},
        {"source": "ae_json", "key": "variable[dose]", "value": "5 mg"},
        {"source": "ae_json", "key": "file.type", "value": "data"},
        {"source": "ae_json", "key": "file.name", "value": "a.CEL"},
        {"source": "ae_json", "key": "file.comment[FTP]", "value": "ftp://x"},
        {"source": "ae_json", "key": "file.type", "value": "derived data"},
        {"source": "ae_json", "key": "file.name", "value": "a.txt"},
        {"source": "ae_json", "key": "source.name", "value": "donor A"},
        {"source": "ae_json", "key": "labeled-extract.name", "value": "LEX"},
        {"source": "ae_json", "key": "labeled-extract.label", "value": "biotin"},
    ]
    annotations = refinebio_annotations(ae)
    assert annotations[1] == {
        "assay": {"name": "A1"},
        "characteristic": [
            {"category": "sex", "value": "female"},
            {"category": "age", "value": "54", "unit": "year"},
        ],
        "variable": [{"name": "dose", "value": "5 mg"}],
        "file": [
            {"type": "data", "name": "a.CEL", "comment": [{"name": "FTP", "value": "ftp://x"}]},
            {"type": "derived data", "name": "a.txt"},
        ],
        "source": {"name": "donor A"},
        "labeled-extract": {"name": "LEX", "label": "biotin"},
    }
    flat = flatten_annotations(annotations, "ARRAY_EXPRESS")
    assert flat["characteristic_sex"] == "female" and "characteristic_sex#2" not in flat  # SDRF = JSON: once
    assert flat["variable_dose"] == "5 mg" and flat["characteristic_age.unit"] == "year"
    assert flat["Protocol REF"] == '["P-1","P-2"]' and flat["assay"] == "A1"
    assert flat["labeled-extract"] == '{"label":"biotin","name":"LEX"}'
    assert "source" not in flat  # skipped for ArrayExpress, as refine.bio
    sra = [
        {"source": "ena_run", "key": "experiment_accession", "value": "SRX1"},
        {"source": "ena_sample", "key": "tissue", "value": "liver"},
        {"source": "biosample", "key": "tissue", "value": "Liver"},
    ]
    assert flatten_annotations(refinebio_annotations(sra), "SRA") == {
        "ena_run_experiment_accession": "SRX1",  # never the dataset's experiment_accession column
        "tissue": "liver",
        "tissue#2": "Liver",  # a different value is kept, not dropped
    }


def test_cells() -> None:
    assert tsv_cell(None) == "" and tsv_cell(True) == "True" and tsv_cell(False) == "False"
    assert tsv_cell(40) == "40" and tsv_cell(0.5) == "0.5" and tsv_cell(float("nan")) == ""
    assert tsv_cell({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    own, _ = tsv_row({"refinebio_accession_code": "S", "refinebio_age": 42.0, "refinebio_title": "a\tb"})
    assert own["refinebio_age"] == "42.000"  # refine.bio's Decimal(8, 3)
    buf = io.StringIO()
    write_metadata_tsv(buf, [{"refinebio_accession_code": "S", "refinebio_title": 'a\tb "c"\nd'}])
    assert buf.getvalue().splitlines()[1] == 'S\t\t"a\tb ""c""'  # csv quoting keeps the value verbatim


def test_processor_fields() -> None:
    a = processor_fields("affy_scan", {"refine_assets": "0.1.0", "scan": "fast"})
    assert a["refinebio_processor_name"] == "Affymetrix SCAN" and a["refinebio_processor_version"] == "0.1.0"
    assert a == processor_fields("affy_scan", {"scan": "fast", "refine_assets": "0.1.0"})  # stable id
    assert (
        a["refinebio_processor_id"]
        != processor_fields("affy_scan", {"refine_assets": "0.2.0"})["refinebio_processor_id"]
    )
    assert processor_fields("submitter_processed", {"method_version": "1"})[
        "refinebio_processor_version"
    ] == ("submitter_processed v1")
    assert processor_fields("salmon", {"salmon": "1.10.1"})["refinebio_processor_name"] == "Salmon Quant"


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
    assert d["refinebio_title"] == "GSM1 title"  # as submitted: notebooks match titles case-sensitively
    assert d["refinebio_age"] == 42.0 and d["refinebio_sex"] == "female"
    assert d["refinebio_specimen_part"] == "cortex;kidney" and d["refinebio_disease"] == ""
    assert d["refinebio_platform"] == "Affymetrix Human Genome U133 Plus 2.0 Array (hgu133plus2)"
    assert d["refinebio_processor_name"] == "Affymetrix SCAN" and d["refinebio_processor_step"] == "affy_scan"
    assert isinstance(d["refinebio_processor_id"], int) and d["refinebio_processor_version"] == "0.1.0"
    assert d["refinebio_processor_method"] == "SCANfast+Brainarray"
    assert d["refinebio_processor_versions"]["brainarray"] == "22.0.0"
    assert d["refinebio_processed_url"] == store.url_for("processed/GSE1/GSM1.parquet")
    assert d["refinebio_processed"] is True  # refine.bio's meaning: has raw data
    assert d["refinebio_attributes"][1] == {"source": "geo_characteristics", "key": "Sex", "value": " F "}
    assert d["refinebio_annotations"][0]["characteristics_ch1"][1] == "Sex:  F "
    own, annotations = tsv_row(d)
    assert annotations["characteristics_ch1_tissue"] == "kidney"
    assert annotations["characteristics_ch1_tissue#2"] == "cortex"
    assert annotations["source_name_ch1"] == "kidney biopsy"
    assert annotations["characteristics_ch1_Sex"] == "F"  # stripped, as refine.bio
    assert (
        own["refinebio_processor_versions"] == '{"brainarray":"22.0.0","refine_assets":"0.1.0","scan":"fast"}'
    )
    assert "refinebio_annotations" not in own and "refinebio_attributes" not in own
    buf = io.StringIO()
    header = write_metadata_tsv(buf, [d])
    lines = buf.getvalue().splitlines()
    assert lines[0].split("\t") == header and header[:2] == [
        "refinebio_accession_code",
        "experiment_accession",
    ]
    assert len(lines) == 2 and len(lines[1].split("\t")) == len(header)
    unprocessed = sample_metadata(rows[("SRR1", "SRP1")], [], None, experiment_accession="SRP1")
    assert not any(k.startswith("refinebio_processor") for k in unprocessed)  # as refine.bio without a file

    e = experiment_metadata(exps["GSE1"], ["GSM1"], ["HOMO_SAPIENS"])
    assert e["accession_code"] == "GSE1" and e["title"] == "Experiment GSE1"
    assert e["has_publication"] is True and e["pubmed_id"] == "12345678"
    assert e["source_first_published"] == "2010-01-02T00:00:00" and e["organisms"] == ["HOMO_SAPIENS"]
    assert e["sample_accession_codes"] == ["GSM1"] and e["publication_doi"] == ""
