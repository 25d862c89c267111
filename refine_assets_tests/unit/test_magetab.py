"""IDF and SDRF parsers on the real MAGE-TAB files recorded in the ArrayExpress cassettes."""

from __future__ import annotations

from pathlib import Path

import pytest

from refine_assets.lib.http import ReplayHttpClient
from refine_assets.lib.survey.magetab import normalize_key, parse_idf, parse_sdrf

AE_FILES = "https://www.ebi.ac.uk/arrayexpress/files/{acc}/{acc}.{kind}.txt"


@pytest.fixture(scope="module")
def mage_files(cassettes: Path) -> dict[tuple[str, str], bytes]:
    """Raw bytes of the recorded IDF/SDRF files, keyed by (accession, 'idf'|'sdrf')."""
    survey = ReplayHttpClient([cassettes / "surveyor.array_express.survey.yaml.gz"])
    protocol_list = ReplayHttpClient([cassettes / "surveyor.array_express.survey_with_protocol_list.yaml.gz"])
    harmony = ReplayHttpClient([cassettes / "surveyor.harmony.sdrf_harmony.yaml.gz"])
    out = {}
    for acc, client in (("E-MTAB-3050", survey), ("E-GEOD-44719", survey), ("E-MEXP-2381", protocol_list)):
        for kind in ("idf", "sdrf"):
            out[(acc, kind)] = client.get(AE_FILES.format(acc=acc, kind=kind)).content
    out[("harmony", "sdrf")] = harmony.get(AE_FILES.format(acc="E-MTAB-3050", kind="sdrf")).content
    return out


# ------------------------------------------------------------------------------------------ IDF


def test_idf_real_e_mtab_3050(mage_files):
    idf = parse_idf(mage_files[("E-MTAB-3050", "idf")], "E-MTAB-3050.idf.txt")
    assert idf.first("Investigation Title") == (
        "Microarray analysis of in vitro differentiation of adult human pancreatic progenitor cells"
    )
    # case- and spacing-insensitive lookup, original spelling kept when iterating
    assert idf["investigation title"] == idf["Investigation Title"]
    assert "Comment [ArrayExpressAccession]" in idf
    assert "Comment[ArrayExpressAccession]" in list(idf)
    assert idf.first("comment[arrayexpressaccession]") == "E-MTAB-3050"
    # a key repeated on several rows collects all its values
    assert idf["Comment[AdditionalFile:DAT]"] == [f"C3005{i}.DAT" for i in range(7, 10)] + [
        "C30060.DAT",
        "C30061.DAT",
    ]
    # trailing empty cells dropped, inner empty cells kept (IDF columns are positional)
    assert idf["Protocol Hardware"] == ["", "", "", "", "", "", "G2500A Hewlett Packard"]
    assert idf["Protocol Name"][0] == "P-MTAB-41854" and len(idf["Protocol Name"]) == 9
    assert idf["PubMed ID"] == [] and idf.values_of("PubMed ID") == [] and idf.first("PubMed ID") is None
    assert idf.values_of("Person Affiliation") == ["Massachusetts General Hospital"]
    assert idf.values_of("No Such Key") == []
    with pytest.raises(KeyError):
        idf["No Such Key"]


def test_idf_real_e_geod_44719_multi_valued(mage_files):
    idf = parse_idf(mage_files[("E-GEOD-44719", "idf")])
    assert len(idf["Person Last Name"]) == 18
    assert idf["Person Last Name"][:3] == ["Baldwin", "Banchereau", "Baldwin"]
    assert idf.values_of("Comment[SecondaryAccession]") == ["GSE44719"]
    assert idf.first("Comment[AdditionalFile:Data1]") == "GSE44719_non_normalized.txt"
    assert idf.first("SDRF File") == "E-GEOD-44719.sdrf.txt"


def test_idf_windows_line_endings_bom_comments_and_quotes(mage_files):
    raw = mage_files[("E-MEXP-2381", "idf")]
    plain = parse_idf(raw)
    text = raw.decode("utf-8").replace("\n", "\r\n")
    variant = ("\ufeff# exported by hand\r\n\r\n" + text).encode("utf-8")
    parsed = parse_idf(variant)
    assert dict(parsed) == dict(plain)
    assert parsed.first("Person Affiliation") == "UCLA"
    assert parsed["Experimental Design"][:2] == [
        "individual_genetic_characteristics_design",
        "in_vivo_design",
    ]

    quoted = parse_idf('"Investigation Title"\t"A ""quoted"" title"\t\r\n"PubMed ID"\t"123"\n')
    assert quoted["Investigation Title"] == ['A "quoted" title']
    assert quoted.first("pubmed id") == "123"


def test_idf_latin1_bytes_are_decoded():
    idf = parse_idf("Investigation Title\tR\u00e9sum\u00e9 of an experiment\n".encode("latin-1"))
    assert idf.first("Investigation Title") == "R\u00e9sum\u00e9 of an experiment"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty IDF"),
        (b"\n# only a comment\n\n", "empty IDF"),
        (b"<html><body>Not Found</body></html>\n", "not a MAGE-TAB IDF"),
    ],
)
def test_idf_errors_name_the_file(data, message):
    with pytest.raises(ValueError, match=rf"^E-TEST-1\.idf\.txt: .*{message}"):
        parse_idf(data, "E-TEST-1.idf.txt")


# ------------------------------------------------------------------------------------------ SDRF


def test_sdrf_real_e_mtab_3050_keeps_every_column(mage_files):
    sdrf = parse_sdrf(mage_files[("harmony", "sdrf")], "E-MTAB-3050.sdrf.txt")
    assert len(sdrf.headers) == 32 and len(sdrf.rows) == 5
    row = sdrf.rows[0]
    assert row.line == 2
    assert len(row.cells) == 32
    assert row.source_name == "donor A islets"
    assert row.assay_name == "1007409-C30057"
    # nine Protocol REF columns, none lost; AE writes two spaces for an empty cell
    assert row.values("Protocol REF") == [
        "P-MTAB-41854",
        "",
        "",
        "P-MTAB-41858",
        "P-MTAB-41859",
        "P-MTAB-41859",
        "P-MTAB-41860",
        "P-MTAB-41861",
        "P-MTAB-41862",
    ]
    assert row.characteristics() == [
        ("organism", "Homo sapiens"),
        ("organism part", "islet"),
        ("sex", "female"),
        ("developmental stage", "adult"),
        ("age", "54"),
    ]
    assert row.characteristic("ORGANISM") == "Homo sapiens"
    assert row.factor_values() == [
        ("cell type", "freshly isolated"),
        ("individual", "A"),
        ("test result", "NA"),
    ]
    assert row.get("Unit[time unit]") == "year"
    # header written "Comment [ArrayExpress FTP file]"; any spelling finds it
    assert row.get("comment[ArrayExpress FTP file]") == (
        "ftp://ftp.ebi.ac.uk/pub/databases/microarray/data/experiment/MTAB/E-MTAB-3050/E-MTAB-3050.raw.1.zip"
    )
    assert ("Comment [ArrayExpress FTP file]", row.get("Comment[ArrayExpress FTP file]")) in row.cells
    assert sdrf.column("Array Data File") == [
        "C30057.CEL",
        "C30058.CEL",
        "C30059.CEL",
        "C30060.CEL",
        "C30061.CEL",
    ]
    assert sdrf.column("Source Name") == ["donor A islets"] * 3 + ["donor B islets"] * 2


def test_sdrf_real_e_geod_44719_spelling_variants(mage_files):
    sdrf = parse_sdrf(mage_files[("E-GEOD-44719", "sdrf")])
    assert len(sdrf.rows) == 77 and len(sdrf.headers) == 46
    row = sdrf.rows[0]
    assert row.source_name == "GSM1089365 1"
    assert row.get("Factor Value[dose]") == "1 mL"  # written "FactorValue [dose]"
    assert row.get("Comment[Sample_title]") == "IL4 DC_ND197_TNFa"
    assert len(row.values("Term Source REF")) == 12
    assert row.get("Characteristics[organism]") == "Homo sapiens"
    assert sdrf.has_column("factor value [stimulation]")


def test_sdrf_mage_tab_1_0_hybridization_name(mage_files):
    sdrf = parse_sdrf(mage_files[("E-MEXP-2381", "sdrf")])
    assert [r.assay_name for r in sdrf.rows] == ["SAMPLE229091SUB6092", "SAMPLE229092SUB6092"]
    assert sdrf.rows[1].characteristic("Genotype") == "control"
    assert sdrf.rows[1].get("Characteristics[GeneticModification]") is None  # "  " in the file


def test_sdrf_windows_line_endings_bom_and_trailing_tabs(mage_files):
    raw = mage_files[("E-MEXP-2381", "sdrf")].decode("utf-8")
    lines = raw.rstrip("\n").split("\n")
    variant = "\ufeff" + "\r\n".join(line + "\t\t" for line in lines) + "\r\n"
    parsed = parse_sdrf(variant.encode("utf-8"))
    plain = parse_sdrf(raw)
    assert parsed.headers == plain.headers
    assert [r.cells for r in parsed.rows] == [r.cells for r in plain.rows]


def test_sdrf_ragged_row_is_an_error(mage_files):
    raw = mage_files[("E-MTAB-3050", "sdrf")].decode("utf-8")
    truncated = raw[: raw.index("C30059.CEL")]  # file cut in the middle of line 4
    with pytest.raises(
        ValueError, match=r"^E-MTAB-3050\.sdrf\.txt: line 4 has 25 cells but the header has 32"
    ):
        parse_sdrf(truncated, "E-MTAB-3050.sdrf.txt")


def test_sdrf_without_name_columns_is_an_error(mage_files):
    raw = mage_files[("E-MTAB-3050", "sdrf")].decode("utf-8")
    without_source = "\n".join(line.split("\t", 1)[1] for line in raw.splitlines())
    with pytest.raises(ValueError, match=r"^x\.sdrf\.txt: SDRF has no 'Source Name' or 'Sample Name' column"):
        parse_sdrf(without_source, "x.sdrf.txt")
    without_assay = raw.replace("Assay Name", "Something Else")
    with pytest.raises(ValueError, match="no 'Assay Name', 'Hybridization Name' or 'Scan Name' column"):
        parse_sdrf(without_assay, "x.sdrf.txt")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty SDRF"),
        (b"\r\n\r\n", "empty SDRF"),
        (b"Source Name\tAssay Name\n", "header but no data rows"),
        (b"Source Name\t\tAssay Name\na\tb\tc\n", "empty column name"),
    ],
)
def test_sdrf_errors_name_the_file(data, message):
    with pytest.raises(ValueError, match=rf"^E-TEST-1\.sdrf\.txt: .*{message}"):
        parse_sdrf(data, "E-TEST-1.sdrf.txt")


def test_normalize_key_spellings():
    assert normalize_key("FactorValue [ dose ]") == "factor value[dose]"
    assert normalize_key("Characteristic[Organism]") == "characteristics[organism]"
    assert normalize_key("Comments [Sample_title]") == "comment[sample_title]"
    assert normalize_key("  Array   Design REF ") == "array design ref"
