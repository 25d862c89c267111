"""The GEO SOFT parser on real GEO records (GEOquery, GEOparse and Biopython test files).

Expected values were read from the files themselves (``zcat ... | grep``). A few bad-input cases
are made by cutting or editing copies of real files in ``tmp_path``.
"""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

import pyarrow as pa
import pytest

from refine_assets.lib.survey.geo_soft import SoftParseError, iter_soft, parse_soft


@pytest.fixture(scope="module")
def geo(shared_data: Path) -> Path:
    return shared_data / "geo"


@pytest.fixture(scope="module")
def gse781(geo: Path):
    return parse_soft(geo / "geoquery" / "GSE781_family.soft.gz")


def _row(table: pa.Table, column: str, value: str) -> dict:
    rows = [r for r in table.to_pylist() if r[column] == value]
    assert len(rows) == 1, rows
    return rows[0]


# --------------------------------------------------------------------------------------------------
# GSE781 family SOFT (49 MB uncompressed)


def test_gse781_is_parsed_quickly(geo: Path) -> None:
    start = time.perf_counter()
    doc = parse_soft(geo / "geoquery" / "GSE781_family.soft.gz")
    elapsed = time.perf_counter() - start
    assert len(doc.samples) == 34
    assert elapsed < 3.0, f"GSE781 took {elapsed:.2f}s"


def test_gse781_entities(gse781) -> None:
    types = [e.entity_type for e in gse781.entities]
    assert types[:4] == ["DATABASE", "SERIES", "PLATFORM", "PLATFORM"]
    assert types.count("SAMPLE") == 34
    assert list(gse781.platforms) == ["GPL96", "GPL97"]
    assert list(gse781.samples)[:3] == ["GSM11805", "GSM11810", "GSM11814"]
    assert list(gse781.samples)[-1] == "GSM12448"
    per_platform = [s.get("platform_id") for s in gse781.samples.values()]
    assert per_platform.count("GPL96") == 17 and per_platform.count("GPL97") == 17
    assert gse781.warnings == []


def test_gse781_series_attributes_keep_order_and_repeats(gse781) -> None:
    series = gse781.series["GSE781"]
    assert series.get("title") == "Normal and Renal Cell Carcinoma Kidney Tissue, Human"
    summary = series.get_all("summary")
    assert len(summary) == 11
    assert summary[1] == ""  # an empty "!Series_summary = \r" line is kept (CRLF stripped)
    assert summary[5] == "Keywords = kidney"  # only the first "=" separates key and value
    assert series.get_all("platform_id") == ["GPL96", "GPL97"]
    assert len(series.get_all("sample_id")) == 34
    assert series.get_all("contributor")[0] == "Marc,E,Lenburg"


def test_gse781_platform_tables(gse781) -> None:
    gpl96, gpl97 = gse781.platforms["GPL96"], gse781.platforms["GPL97"]
    assert gpl96.table.num_rows == 22283
    assert gpl97.table.num_rows == 22645
    assert gpl96.table.num_columns == 16
    assert gpl96.table.column_names[:3] == ["ID", "GB_ACC", "SPOT_ID"]
    assert all(f.type == pa.string() for f in gpl96.table.schema)
    first = gpl96.table.slice(0, 1).to_pylist()[0]
    assert first["ID"] == "1007_s_at" and first["Gene Symbol"] == "DDR1" and first["ENTREZ_GENE_ID"] == "780"
    assert first["SPOT_ID"] is None  # empty cell -> null
    assert gpl97.table.slice(0, 1).to_pylist()[0]["Gene Symbol"] == "PRPF8"
    assert gpl96.column_descriptions["SPOT_ID"] == "identifies controls"
    assert gpl96.get("title") == "[HG-U133A] Affymetrix Human Genome U133A Array"
    assert gpl96.get("data_row_count") == "22283"


def test_gse781_sample_tables(gse781) -> None:
    gsm11805 = gse781.samples["GSM11805"]
    assert gsm11805.table.column_names == ["ID_REF", "VALUE", "ABS_CALL"]
    assert gsm11805.table.num_rows == 22283
    assert gsm11805.table.slice(0, 1).to_pylist()[0] == {
        "ID_REF": "AFFX-BioB-5_at",
        "VALUE": "953.9",
        "ABS_CALL": "P",
    }
    assert _row(gsm11805.table, "ID_REF", "1007_s_at") == {
        "ID_REF": "1007_s_at",
        "VALUE": "1946.9",
        "ABS_CALL": "P",
    }
    last = gse781.samples["GSM12448"].table
    assert last.num_rows == 22645
    assert last.slice(last.num_rows - 1).to_pylist()[0] == {
        "ID_REF": "244891_x_at",
        "VALUE": "37.4",
        "ABS_CALL": "A",
    }
    assert _row(last, "ID_REF", "200000_s_at")["VALUE"] == "3482.1"
    assert gsm11805.columns[1] == ("VALUE", "MAS 5.0 Statistical Algorithm (mean scaled to 500)")
    assert gsm11805.get("supplementary_file", "").endswith("/GSM11805/GSM11805.CEL.gz")
    for sample in gse781.samples.values():
        assert sample.table.num_rows == int(sample.get("data_row_count"))


def test_iter_soft_is_lazy(geo: Path) -> None:
    entities = iter_soft(geo / "geoquery" / "GSE781_family.soft.gz")
    assert next(entities).entity_type == "DATABASE"
    series = next(entities)
    assert (series.entity_type, series.accession) == ("SERIES", "GSE781")


# --------------------------------------------------------------------------------------------------
# Single records and other formats


def test_single_sample_with_crlf(geo: Path) -> None:
    doc = parse_soft(geo / "geoquery" / "GSM11805.txt.gz")
    sample = doc.samples["GSM11805"]
    assert sample.get("title") == "N035 Normal Human Kidney U133A"
    assert sample.table.column_names == ["ID_REF", "VALUE", "ABS_CALL"]  # no "\r" in the last name
    assert sample.table.num_rows == 22283
    assert _row(sample.table, "ID_REF", "222384_at") == {
        "ID_REF": "222384_at",
        "VALUE": "26.4",
        "ABS_CALL": "A",
    }
    assert not any(v.endswith("\r") for vals in sample.attributes.values() for v in vals)


def test_gds_dataset_table_and_subsets(geo: Path) -> None:
    doc = parse_soft(geo / "geoquery" / "GDS507.soft.gz")
    dataset = doc.entity("GDS507")
    assert dataset.entity_type == "DATASET"
    assert dataset.get("title") == "Renal clear cell carcinoma (HG-U133B)"  # "!dataset_" prefix removed
    assert dataset.get("reference_series") == "GSE781"
    # The file repeats "^DATASET = GDS507" before its table: merged into one entity.
    assert len(doc.of_type("DATASET")) == 1
    assert dataset.table.num_rows == 22645
    assert dataset.table.num_columns == 19
    assert _row(dataset.table, "ID_REF", "200001_at")["GSM11815"] == "17996.200"
    assert dataset.column_descriptions["IDENTIFIER"] == "identifier"
    subsets = doc.of_type("SUBSET")
    assert len(subsets) == 12
    assert subsets[0].get("sample_id") == (
        "GSM11815,GSM11832,GSM12069,GSM12083,GSM12101,GSM12106,GSM12274,GSM12299,GSM12412"
    )
    assert all(s.table is None for s in subsets)


def test_platform_annotation_file_with_duplicate_columns(geo: Path) -> None:
    doc = parse_soft(geo / "geoquery" / "GPL97.annot.gz")
    (annotation,) = doc.entities
    assert (annotation.entity_type, annotation.accession) == ("ANNOTATION", None)
    assert annotation.get("platform") == "GPL97"
    assert annotation.get("date") == "06/20/2008 15:39:40"
    table = annotation.table
    assert table.num_rows == 22645
    # GO:Function/Process/Component appear twice (terms, then ids): pandas-style suffixes.
    assert table.column_names[-6:] == [
        "GO:Function",
        "GO:Process",
        "GO:Component",
        "GO:Function.1",
        "GO:Process.1",
        "GO:Component.1",
    ]
    row = _row(table, "ID", "200000_s_at")
    assert row["Gene symbol"] == "PRPF8" and row["Gene ID"] == "10594"
    assert row["Platform_SPOTID"] is None and row["Chromosome location"] == "17p13.3"


def test_geoparse_platform_with_repeated_column(geo: Path) -> None:
    doc = parse_soft(geo / "geoparse" / "GPL4133.txt")
    platform = doc.platforms["GPL4133"]
    assert platform.get("title").startswith("Agilent-014850 Whole Human Genome Microarray 4x44K")
    assert platform.get_all("relation") == [
        "Alternative to: GPL6480",
        "Alternative to: GPL15285",
        "Alternative to: GPL16022",
    ]
    assert platform.table.num_rows == 13
    assert platform.table.column_names[20:] == ["SPOT_ID.1", "ORDER"]
    assert _row(platform.table, "ID", "12")["GENE_SYMBOL"] == "APOBEC3B"
    # The record was cut to 13 of 45,220 rows: reported, not an error.
    assert platform.warnings == ["data_row_count says 45220 rows, the table has 13"]


def test_geoparse_platform_family_with_ragged_cut_table(geo: Path) -> None:
    doc = parse_soft(geo / "geoparse" / "GPL20814_family.soft")
    assert [e.entity_type for e in doc.entities] == ["DATABASE", "PLATFORM", "SERIES"]
    platform = doc.platforms["GPL20814"]
    assert platform.table.to_pylist() == [
        {"ID": "272", "Reporter Name": "hsa-miR-99b-5p", "miRNA_ID": "MIMAT0000689", "SPOT_ID": None},
        {"ID": "271", "Reporter Name": "hsa-miR-99b-3p", "miRNA_ID": "MIMAT0004678", "SPOT_ID": None},
        {"ID": "83", "Reporter Name": "2.027336763", "miRNA_ID": None, "SPOT_ID": None},
    ]
    assert any("closed by !sample_table_end" in w for w in platform.warnings)
    assert any("ragged" in w for w in platform.warnings)
    series = doc.series["GSE72138"]
    assert series.get("relation") == "BioProject: https://www.ncbi.nlm.nih.gov/bioproject/PRJNA293166"
    assert series.get("pubmed_id") == "28536623"


def test_geoparse_sequencing_series_metadata(geo: Path) -> None:
    doc = parse_soft(geo / "geoparse" / "GSE105845_family.soft")
    series = doc.series["GSE105845"]
    assert series.get("type") == "Non-coding RNA profiling by high throughput sequencing"
    assert series.get_all("summary")[1] == ""  # "!Series_summary =" without a trailing space
    assert series.get_all("sample_id") == ["GSM2828511", "GSM2828512"]
    platform = doc.platforms["GPL13112"]
    assert platform.get("technology") == "high-throughput sequencing"
    assert platform.get("taxid") == "10090"
    assert platform.table is None
    assert doc.samples == {}


def test_utf8_sample_from_text_stream(geo: Path) -> None:
    text = (geo / "geoparse" / "GSM2795971.txt").read_text(encoding="utf-8")
    doc = parse_soft(io.StringIO(text))
    sample = doc.samples["GSM2795971"]
    assert sample.get("title") == "SMAD2/3, Hs578T, TGFβ 16h_ChIP"
    assert sample.get("type") == "SRA"
    assert sample.get("taxid_ch1") == "9606"
    assert sample.table is None


def test_geoparse_sample_table(geo: Path) -> None:
    doc = parse_soft(geo / "geoparse" / "GSM32878.txt")
    sample = doc.samples["GSM32878"]
    assert sample.get_all("description")[1] == ""
    assert sample.table.to_pylist() == [
        {"ID_REF": "1", "FOLD_CHANGE": "1.4", "PROBE1": "3773", "PROBE2": "2625", "VALUE": "0.157557497"},
        {"ID_REF": "9182", "FOLD_CHANGE": "2.1", "PROBE1": "495", "PROBE2": "239", "VALUE": "0.316207298"},
    ]


@pytest.mark.parametrize(
    ("name", "title", "header", "first_id"),
    [
        ("GSM645", "Large Pre-BII cells 8b", "ID_REF", "IL2_at"),
        ("GSM691", "SAGE_Duke_40N", "TAG", "TTGGGGTTTC"),
        ("GSM700", "SAGE_Duke_H247_Hypoxia", "TAG", None),
        ("GSM804", "CGH_Albertson_GM05296-001218", "ID_REF", "1"),
    ],
)
def test_old_style_records_without_table_markers(geo: Path, name, title, header, first_id) -> None:
    doc = parse_soft(geo / "biopython" / f"{name}.txt")
    sample = doc.samples[name]  # "^SAMPLE=GSM645" without spaces
    assert sample.get("title") == title
    assert sample.table.num_rows == 20
    assert sample.table.column_names[0] == header
    if first_id:
        assert sample.table.slice(0, 1).to_pylist()[0][header] == first_id
    assert sample.warnings == []


def test_old_style_gsm645_values(geo: Path) -> None:
    table = parse_soft(geo / "biopython" / "GSM645.txt").samples["GSM645"].table
    row = _row(table, "ID_REF", "AFFX-CreX-3_at")
    assert row["VALUE"] == "10787" and row["ABS_CALL"] == "P" and row["POS/NEG"] == "Undef"
    assert table.column_names[1] == "Experiment Name"


def test_gsm804_dual_channel_metadata(geo: Path) -> None:
    sample = parse_soft(geo / "biopython" / "GSM804.txt").samples["GSM804"]
    assert sample.get("target_source2") == "normal male reference genomic DNA"
    assert len(sample.get_all("author")) == 19
    assert sample.get("pubmed_id") == "11687795"


# --------------------------------------------------------------------------------------------------
# Odd bytes and quoting (real records edited in tmp_path)


def test_latin1_bytes_are_replaced_not_fatal(geo: Path, tmp_path: Path) -> None:
    raw = (geo / "geoparse" / "GSM32878.txt").read_bytes()
    raw = raw.replace(b"Estrogen actions", b"\xc9strogen actions").replace(b"9182\t2.1", b"9182\t2.1\xb5")
    doc = parse_soft(raw)
    sample = doc.samples["GSM32878"]
    assert sample.get("title").startswith("\ufffdstrogen actions")
    assert _row(sample.table, "ID_REF", "9182")["FOLD_CHANGE"] == "2.1\ufffd"


def test_quoted_cells_are_unwrapped(geo: Path) -> None:
    raw = (geo / "geoparse" / "GSM32878.txt").read_bytes()
    raw = raw.replace(b"1\t1.4\t3773", b'"1"\t1.4\t"37"73')
    table = parse_soft(raw).samples["GSM32878"].table
    first = table.slice(0, 1).to_pylist()[0]
    assert first["ID_REF"] == "1"  # wholly quoted cell: quotes removed
    assert first["PROBE1"] == '"37"73'  # quotes inside a cell are literal


# --------------------------------------------------------------------------------------------------
# Bad input


def test_truncated_gzip(geo: Path, tmp_path: Path) -> None:
    raw = (geo / "geoquery" / "GSM11805.txt.gz").read_bytes()
    cut = tmp_path / "GSM11805.txt.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SoftParseError, match=r"GSM11805\.txt\.gz: truncated gzip stream"):
        parse_soft(cut)


def test_corrupt_gzip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.soft.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(SoftParseError, match="corrupt gzip"):
        parse_soft(bad)


def test_table_without_end_marker_at_end_of_file(geo: Path, tmp_path: Path) -> None:
    text = gzip.decompress((geo / "geoquery" / "GSM11805.txt.gz").read_bytes())
    cut = tmp_path / "GSM11805_cut.txt"
    cut.write_bytes(text[: text.index(b"!sample_table_end")])
    with pytest.raises(SoftParseError, match=r"SAMPLE GSM11805: data table .* no !\.\.\._table_end marker"):
        parse_soft(cut)


def test_table_without_end_marker_before_next_entity(geo: Path) -> None:
    text = gzip.decompress((geo / "geoquery" / "GSM11805.txt.gz").read_bytes())
    broken = text.replace(b"!sample_table_end", b"") + (geo / "biopython" / "GSM645.txt").read_bytes()
    with pytest.raises(SoftParseError, match="before the next entity"):
        parse_soft(broken, name="joined")


def test_truncated_gzip_of_family_soft_is_detected(geo: Path) -> None:
    raw = (geo / "geoquery" / "GSE781_family.soft.gz").read_bytes()
    with pytest.raises(SoftParseError, match="truncated gzip"):
        parse_soft(raw[:200_000], name="GSE781_family.soft.gz")


def test_empty_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty.soft"
    empty.write_bytes(b"")
    with pytest.raises(SoftParseError, match=r"empty\.soft: empty input"):
        parse_soft(empty)
    with pytest.raises(SoftParseError, match="empty input"):
        parse_soft(gzip.compress(b"\n\n"))


def test_not_soft_at_all() -> None:
    html = b"<!DOCTYPE HTML>\n<html><body>Could not find a public accession</body></html>\n"
    with pytest.raises(SoftParseError, match="no SOFT entity"):
        parse_soft(html, name="acc.cgi")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_soft(tmp_path / "nope.soft")
