"""The GEO surveyor on real records: GSE781 family SOFT end to end, the recorded GEO/PubMed/taxonomy
answers (vcrpy cassettes), and bad input.

Where no real record exists for a case (a sequencing series with its samples, a SuperSeries), the
test builds a family SOFT from the real GSE105845 series header plus sample sections written in
GEO's format; those synthetic parts use obviously fake SRA/BioSample ids (``SRX9999901`` ...).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from refine_assets.lib.http import NotRecordedError, ReplayHttpClient
from refine_assets.lib.survey.geo import (
    classify_supplementary_file,
    family_soft_url,
    geo_date,
    geo_stem,
    platform_text_url,
    pubmed_summary,
    sample_attributes,
    survey_geo,
    survey_geo_platform_text,
    taxonomy_id,
)
from refine_assets.lib.survey.geo_soft import parse_soft
from refine_assets.lib.survey.model import SurveyError


@pytest.fixture(scope="module")
def gse781_path(shared_data: Path) -> Path:
    return shared_data / "geo" / "geoquery" / "GSE781_family.soft.gz"


@pytest.fixture(scope="module")
def gse781(gse781_path: Path):
    client = ReplayHttpClient(files={family_soft_url("GSE781"): gse781_path})
    start = time.perf_counter()
    result = survey_geo("GSE781", client, fetch_publications=False)
    return result, time.perf_counter() - start, client


# --------------------------------------------------------------------------------------------------
# URLs and small helpers


def test_family_soft_url_stem_rule() -> None:
    assert family_soft_url("GSE781") == (
        "https://ftp.ncbi.nlm.nih.gov/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz"
    )
    assert family_soft_url("GSE12345") == (
        "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE12nnn/GSE12345/soft/GSE12345_family.soft.gz"
    )
    assert family_soft_url(" gse105845 ").endswith("/GSE105nnn/GSE105845/soft/GSE105845_family.soft.gz")
    assert geo_stem("GPL96") == "GPLnnn" and geo_stem("GSM1123726") == "GSM1123nnn"
    assert platform_text_url("GPL9115") == (
        "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?targ=self&acc=GPL9115&form=text&view=full"
    )


@pytest.mark.parametrize("bad", ["GSEX1", "GSE", "GSM11805", "E-MTAB-3050", ""])
def test_unknown_accession_format(bad: str) -> None:
    with pytest.raises(SurveyError, match="not a GEO accession of the form GSE<digits>"):
        family_soft_url(bad)
    with pytest.raises(SurveyError, match="not a GEO accession"):
        survey_geo(bad, ReplayHttpClient())


def test_geo_date() -> None:
    assert geo_date("Oct 24 2003") == "2003-10-24"
    assert geo_date("Public on Nov 25 2003") == "2003-11-25"
    assert geo_date("sometime") is None and geo_date(None) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "ftp://ftp.ncbi.nih.gov/pub/geo/DATA/supplementary/samples/GSM11nnn/GSM11805/GSM11805.CEL.gz",
            ("CEL", True, False),
        ),
        ("ftp://x/GSM1_sample.cel", ("CEL", True, False)),
        ("ftp://x/GSE1_non_normalized.txt.gz", ("NON_NORMALIZED", True, False)),
        ("ftp://x/GSE1-non-normalized.txt", ("NON_NORMALIZED", True, False)),
        (
            "ftp://ftp.ncbi.nih.gov/pub/geo/DATA/supplementary/series/GSE781/GSE781_RAW.tar",
            ("ARCHIVE", False, True),
        ),
        ("ftp://x/GSM1_normalized.txt.gz", ("PROCESSED", False, False)),
        ("ftp://x/GSM1_Grn.idat.gz", ("OTHER", False, False)),
    ],
)
def test_classify_supplementary_file(url: str, expected: tuple[str, bool, bool]) -> None:
    assert classify_supplementary_file(url) == expected


# --------------------------------------------------------------------------------------------------
# GSE781 end to end


def test_gse781_survey_is_fast_and_reads_only_the_family_soft(gse781) -> None:
    result, elapsed, client = gse781
    assert elapsed < 5.0, f"survey took {elapsed:.2f}s"
    assert client.requests == [("GET", family_soft_url("GSE781"))]
    assert result.warnings == []


def test_gse781_experiment(gse781) -> None:
    exp = gse781[0].experiment
    assert exp.accession == "GSE781" and exp.source_database == "GEO"
    assert exp.title == "Normal and Renal Cell Carcinoma Kidney Tissue, Human"
    assert exp.description.startswith("Each total RNA sample is hybridized to two different arrays:")
    assert "There are no matching normal tissue samples for C011 or C032." in exp.description
    assert exp.submitter_institution == "Boston University School of Medicine"
    assert exp.pubmed_ids == ["14641932"]
    assert exp.publication_title is None  # fetch_publications=False
    assert (exp.source_first_published, exp.source_last_modified) == ("2003-10-24", "2005-05-29")
    assert exp.related_accessions == [] and exp.alternate_accessions == []
    assert exp.technology == "MICROARRAY"
    assert gse781[0].experiment_attributes["type"] == ["Expression profiling by array"]
    assert len(gse781[0].experiment_attributes["contributor"]) == 6


def test_gse781_samples(gse781) -> None:
    result = gse781[0]
    assert len(result.samples) == 34
    by_acc = {s.accession: s for s in result.samples}
    gsm = by_acc["GSM11805"]
    assert gsm.title == "N035 Normal Human Kidney U133A"
    assert (gsm.organism, gsm.taxonomy_id) == ("HOMO_SAPIENS", 9606)
    assert gsm.platform_accession == "GPL96"
    assert gsm.platform_name == "[HG-U133A] Affymetrix Human Genome U133A Array"
    assert gsm.internal_platform_code == "hgu133a"
    assert (gsm.technology, gsm.manufacturer) == ("MICROARRAY", "AFFYMETRIX")
    assert gsm.channel_count == 1
    assert gsm.has_raw is True and gsm.pipeline == "AFFY_TO_PCL"
    assert gsm.source_url == (
        "ftp://ftp.ncbi.nih.gov/pub/geo/DATA/supplementary/samples/GSM11nnn/GSM11805/GSM11805.CEL.gz"
    )
    assert (gsm.source_first_published, gsm.source_last_modified) == ("2003-10-20", "2005-05-28")
    assert by_acc["GSM11810"].internal_platform_code == "hgu133b"
    assert sum(s.platform_accession == "GPL97" for s in result.samples) == 17
    assert all(s.pipeline == "AFFY_TO_PCL" and s.has_raw for s in result.samples)


def test_gse781_platforms_organisms_files(gse781) -> None:
    result = gse781[0]
    assert [(p.accession, p.internal_code, p.supported) for p in result.platforms] == [
        ("GPL96", "hgu133a", True),
        ("GPL97", "hgu133b", True),
    ]
    assert [(o.name, o.taxonomy_id, o.scientific_name) for o in result.organisms] == [
        ("HOMO_SAPIENS", 9606, "Homo sapiens")
    ]
    files = result.original_files
    assert len(files) == 35
    series_files = [f for f in files if f.sample_accession is None]
    assert [(f.filename, f.file_type, f.is_archive) for f in series_files] == [
        ("GSE781_RAW.tar", "ARCHIVE", True)
    ]
    cels = [f for f in files if f.file_type == "CEL"]
    assert len(cels) == 34 and all(f.is_raw for f in cels)
    assert {f.filename for f in cels} >= {"GSM11805.CEL.gz", "GSM12448.CEL.gz"}


def test_gse781_tables(gse781) -> None:
    result = gse781[0]
    assert len(result.sample_tables) == 34
    gsm = result.sample_tables["GSM11805"]
    assert gsm.column_names == ["ID_REF", "VALUE", "ABS_CALL"] and gsm.num_rows == 22283
    assert gsm.slice(0, 1).to_pylist()[0] == {"ID_REF": "AFFX-BioB-5_at", "VALUE": "953.9", "ABS_CALL": "P"}
    assert result.sample_tables["GSM12448"].num_rows == 22645
    assert {k: t.num_rows for k, t in result.platform_tables.items()} == {"GPL96": 22283, "GPL97": 22645}
    tables = result.tables()
    assert tables["samples"].num_rows == 34
    assert tables["original_files"].num_rows == 35
    assert tables["sample_attributes"].num_rows == len(result.attributes)


def test_gse781_attributes(gse781) -> None:
    rows = [a for a in gse781[0].attributes if a.sample_accession == "GSM11805"]
    assert [a.position for a in rows] == list(range(len(rows)))
    assert {a.source for a in rows} == {"geo_field"}  # this 2003 series has no characteristics
    fields = {a.key: a.value for a in rows}
    assert fields["title"] == "N035 Normal Human Kidney U133A"
    assert fields["source_name_ch1"].startswith("Trizol isolation of total RNA from normal tissue")
    # Multi-valued fields joined with one space (refine.bio preprocess_geo_sample).
    assert fields["description"].endswith(
        "Keywords = kidney Keywords = renal Keywords = RCC "
        "Keywords = carcinoma Keywords = cancer Lot batch = 2004638"
    )
    assert fields["contact_zip/postal_code"] == "02130"


def test_gse781_publication_failure_is_a_warning(gse781_path: Path) -> None:
    client = ReplayHttpClient(files={family_soft_url("GSE781"): gse781_path})
    result = survey_geo("GSE781", client)
    assert len(result.samples) == 34
    assert result.experiment.publication_title is None
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("PubMed 14641932: publication look-up failed")
    assert "esummary.fcgi?db=pubmed&id=14641932" in result.warnings[0]  # the request that was tried


# --------------------------------------------------------------------------------------------------
# Bad input


def test_family_soft_404() -> None:
    client = ReplayHttpClient()
    client.add_response("GET", family_soft_url("GSE781"), 404, "Not Found")
    with pytest.raises(SurveyError, match=r"^GSE781: GEO series not found") as info:
        survey_geo("GSE781", client)
    assert info.value.accession == "GSE781"


def test_family_soft_server_error_and_unrecorded() -> None:
    client = ReplayHttpClient()
    client.add_response("GET", family_soft_url("GSE781"), 500, "oops")
    with pytest.raises(SurveyError, match=r"family SOFT download failed: HTTP 500"):
        survey_geo("GSE781", client)
    with pytest.raises(SurveyError, match="family SOFT download failed: no recorded response"):
        survey_geo("GSE12345", ReplayHttpClient())


def test_truncated_family_soft(gse781_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "GSE781_family.soft.gz"
    cut.write_bytes(gse781_path.read_bytes()[:3_000_000])
    client = ReplayHttpClient(files={family_soft_url("GSE781"): cut})
    with pytest.raises(SurveyError, match=r"GSE781: malformed family SOFT: .*truncated gzip stream"):
        survey_geo("GSE781", client, fetch_publications=False)


def test_family_soft_table_without_end(gse781_path: Path, tmp_path: Path) -> None:
    import gzip

    text = gzip.decompress(gse781_path.read_bytes())
    cut = tmp_path / "GSE781_family.soft"
    cut.write_bytes(text[: len(text) - 1000])  # ends inside GSM12448's table
    client = ReplayHttpClient(files={family_soft_url("GSE781"): cut})
    with pytest.raises(SurveyError, match=r"SAMPLE GSM12448: data table .* no !\.\.\._table_end"):
        survey_geo("GSE781", client, fetch_publications=False)


def test_metadata_only_family_soft_is_incomplete(shared_data: Path) -> None:
    """The GEOparse GSE105845 file lists two samples but holds no sample sections."""
    path = shared_data / "geo" / "geoparse" / "GSE105845_family.soft"
    client = ReplayHttpClient(files={family_soft_url("GSE105845"): path})
    with pytest.raises(SurveyError, match=r"lacks 2 of the 2 samples .*GSM2828511, GSM2828512"):
        survey_geo("GSE105845", client, fetch_publications=False)


def test_family_soft_of_another_series(shared_data: Path) -> None:
    path = shared_data / "geo" / "geoparse" / "GSE105845_family.soft"
    client = ReplayHttpClient(files={family_soft_url("GSE781"): path})
    with pytest.raises(SurveyError, match=r"family SOFT has no \^SERIES = GSE781"):
        survey_geo("GSE781", client)


# --------------------------------------------------------------------------------------------------
# Sequencing series and SuperSeries (real series header + synthetic sample sections)

_SEQ_SAMPLES = """\
^SAMPLE = GSM2828511
!Sample_title = forebrain miRNA-seq rep1
!Sample_geo_accession = GSM2828511
!Sample_status = Public on Oct 24 2017
!Sample_submission_date = Oct 23 2017
!Sample_last_update_date = Oct 29 2017
!Sample_type = SRA
!Sample_channel_count = 1
!Sample_source_name_ch1 = forebrain
!Sample_organism_ch1 = Mus musculus
!Sample_taxid_ch1 = 10090
!Sample_characteristics_ch1 = strain: C57BL/6
!Sample_characteristics_ch1 = Tissue : forebrain
!Sample_characteristics_ch1 = developmental stage: embryonic 12.5 day: E12.5
!Sample_characteristics_ch1 = ENCODE biological replicate 1
!Sample_molecule_ch1 = total RNA
!Sample_platform_id = GPL13112
!Sample_instrument_model = Illumina HiSeq 2000
!Sample_library_source = transcriptomic
!Sample_library_strategy = miRNA-Seq
!Sample_relation = BioSample: https://www.ncbi.nlm.nih.gov/biosample/SAMN99999901
!Sample_relation = SRA: https://www.ncbi.nlm.nih.gov/sra?term=SRX9999901
!Sample_supplementary_file_1 = NONE
!Sample_series_id = GSE105845
!Sample_data_row_count = 0
^SAMPLE = GSM2828512
!Sample_title = forebrain RNA-seq rep2
!Sample_geo_accession = GSM2828512
!Sample_submission_date = Oct 23 2017
!Sample_last_update_date = Oct 29 2017
!Sample_channel_count = 1
!Sample_organism_ch1 = Mus musculus
!Sample_characteristics_ch1 = tissue: forebrain
!Sample_platform_id = GPL13112
!Sample_library_strategy = RNA-Seq
!Sample_relation = SRA: https://www.ncbi.nlm.nih.gov/sra?term=SRX9999902
!Sample_supplementary_file_1 = ftp://ftp.ncbi.nlm.nih.gov/geo/samples/GSM2828nnn/GSM2828512/suppl/GSM2828512_counts.txt.gz
!Sample_series_id = GSE105845
!Sample_data_row_count = 0
"""


def test_sequencing_series(shared_data: Path, tmp_path: Path) -> None:
    family = tmp_path / "GSE105845_family.soft"
    real = (shared_data / "geo" / "geoparse" / "GSE105845_family.soft").read_text(encoding="utf-8")
    family.write_text(real + _SEQ_SAMPLES, encoding="utf-8")
    client = ReplayHttpClient(files={family_soft_url("GSE105845"): family})
    result = survey_geo("GSE105845", client, fetch_publications=False)

    assert result.warnings == []
    assert result.experiment.technology == "RNA-SEQ"
    assert result.experiment.description.endswith(
        "Overall design: https://www.encodeproject.org/ENCSR715QTV/"
    )
    (platform,) = result.platforms
    assert (platform.accession, platform.technology, platform.manufacturer) == (
        "GPL13112",
        "RNA-SEQ",
        "ILLUMINA",
    )
    assert platform.supported and platform.internal_code == "IlluminaHiSeq2000"
    mirna, rnaseq = result.samples
    assert (mirna.technology, mirna.has_raw) == ("RNA-SEQ", True)
    assert mirna.source_url == "https://www.ncbi.nlm.nih.gov/sra?term=SRX9999901"
    assert (mirna.library_strategy, mirna.instrument_model) == ("miRNA-Seq", "Illumina HiSeq 2000")
    assert mirna.pipeline == "NONE"  # not an RNA-Seq library: refine.bio does not quantify it
    assert (mirna.organism, mirna.taxonomy_id) == ("MUS_MUSCULUS", 10090)
    assert rnaseq.pipeline == "SALMON" and rnaseq.taxonomy_id == 10090  # taxid from the GPL13112 record
    assert rnaseq.source_url == "https://www.ncbi.nlm.nih.gov/sra?term=SRX9999902"
    assert [(o.name, o.taxonomy_id) for o in result.organisms] == [("MUS_MUSCULUS", 10090)]
    # "NONE" supplementary files are not files; the counts table is a processed file, not raw.
    sample_files = [
        (f.sample_accession, f.filename, f.file_type, f.is_raw)
        for f in result.original_files
        if f.sample_accession
    ]
    assert sample_files == [("GSM2828512", "GSM2828512_counts.txt.gz", "PROCESSED", False)]

    attrs = [(a.key, a.value, a.source) for a in result.attributes if a.sample_accession == "GSM2828511"]
    chars = [(k, v) for k, v, s in attrs if s == "geo_characteristics"]
    assert chars == [
        ("strain", "C57BL/6"),
        ("Tissue", "forebrain"),  # the submitter's spelling, as refine.bio's column names keep it
        ("developmental stage", "embryonic 12.5 day: E12.5"),  # split at the first ":" only
        ("characteristics_ch1", "ENCODE biological replicate 1"),  # kept (refine.bio drops it)
    ]
    assert not any(k.startswith("characteristics") for k, _, s in attrs if s == "geo_field")
    relations = [(k, v) for k, v, s in attrs if s == "geo_relation"]
    assert relations == [
        ("biosample", "https://www.ncbi.nlm.nih.gov/biosample/SAMN99999901"),
        ("sra", "https://www.ncbi.nlm.nih.gov/sra?term=SRX9999901"),
        ("sra_accession", "SRX9999901"),
    ]
    assert (
        "relation",
        "BioSample: https://www.ncbi.nlm.nih.gov/biosample/SAMN99999901 "
        "SRA: https://www.ncbi.nlm.nih.gov/sra?term=SRX9999901",
        "geo_field",
    ) in attrs


_SUPERSERIES = """\
^SERIES = GSE123456
!Series_title = A SuperSeries
!Series_geo_accession = GSE123456
!Series_submission_date = Dec 01 2018
!Series_last_update_date = Mar 21 2019
!Series_pubmed_id = 30560927
!Series_summary = This SuperSeries is composed of the SubSeries listed below.
!Series_relation = SuperSeries of: GSE123454
!Series_relation = SuperSeries of: GSE123455
!Series_relation = BioProject: https://www.ncbi.nlm.nih.gov/bioproject/PRJNA508040
"""


def test_superseries_without_samples_is_a_warning(cassettes: Path) -> None:
    client = ReplayHttpClient([cassettes / "surveyor.geo.geo_survey_superseries.yaml.gz"])
    client.add_response("GET", family_soft_url("GSE123456"), 200, _SUPERSERIES)
    result = survey_geo("GSE123456", client)
    exp = result.experiment
    assert exp.related_accessions == ["GSE123454", "GSE123455"]
    assert exp.alternate_accessions == ["PRJNA508040"]
    assert result.samples == []
    assert result.warnings == [
        "GSE123456 is a SuperSeries without samples of its own; survey its sub-series: GSE123454, GSE123455"
    ]
    # The recorded esummary of PMID 30560927 (the real SuperSeries' paper) fills the publication.
    assert (
        exp.publication_title
        == "Interleukin 2 modulates thymic-derived regulatory T cell epigenetic landscape."
    )
    assert exp.publication_doi == "10.1038/s41467-018-07806-6"
    assert exp.publication_authors[0] == "Chorro L" and len(exp.publication_authors) == 8


def test_series_without_samples_is_an_error() -> None:
    client = ReplayHttpClient()
    text = _SUPERSERIES.replace("!Series_relation = SuperSeries of: GSE123454\n", "").replace(
        "!Series_relation = SuperSeries of: GSE123455\n", ""
    )
    client.add_response("GET", family_soft_url("GSE123456"), 200, text)
    with pytest.raises(SurveyError, match="family SOFT has no samples"):
        survey_geo("GSE123456", client, fetch_publications=False)


# --------------------------------------------------------------------------------------------------
# Recorded GEO platform text, PubMed and taxonomy answers


def test_platform_text_gpl9115(cassettes: Path) -> None:
    client = ReplayHttpClient([cassettes / "surveyor.geo.geo_survey_rnaseq.yaml.gz"])
    platform = survey_geo_platform_text("GPL9115", client)
    assert platform.accession == "GPL9115" and platform.source_database == "GEO"
    assert platform.title == "Illumina Genome Analyzer II (Homo sapiens)"
    assert (platform.technology, platform.manufacturer) == ("RNA-SEQ", "ILLUMINA")
    assert platform.organism == "HOMO_SAPIENS"


def test_platform_text_gpl17021(cassettes: Path) -> None:
    client = ReplayHttpClient([cassettes / "surveyor.geo.geo_survey_superseries.yaml.gz"])
    platform = survey_geo_platform_text("GPL17021", client)
    assert platform.title == "Illumina HiSeq 2500 (Mus musculus)"
    assert (platform.technology, platform.internal_code, platform.supported) == (
        "RNA-SEQ",
        "IlluminaHiSeq2500",
        True,
    )
    assert platform.organism == "MUS_MUSCULUS"


def test_platform_text_errors() -> None:
    client = ReplayHttpClient()
    client.add_response("GET", platform_text_url("GPL1"), 404, "")
    with pytest.raises(SurveyError, match=r"^GPL1: GEO platform not found"):
        survey_geo_platform_text("GPL1", client)
    client.add_response("GET", platform_text_url("GPL2"), 200, "<html>no such accession</html>")
    with pytest.raises(SurveyError, match=r"^GPL2: malformed GEO platform text: .*no SOFT entity"):
        survey_geo_platform_text("GPL2", client)
    with pytest.raises(SurveyError, match="not a GEO accession of the form GPL<digits>"):
        survey_geo_platform_text("GSE781", client)


def test_pubmed_summary(cassettes: Path) -> None:
    client = ReplayHttpClient([cassettes / "surveyor.geo.get_pubmet_id_title.yaml.gz"])
    summary = pubmed_summary("22367537", client)
    assert (
        summary.title
        == "Sequencing of neuroblastoma identifies chromothripsis and defects in neuritogenesis genes."
    )
    assert summary.doi == "10.1038/nature10910"
    assert len(summary.authors) == 22
    assert (summary.authors[0], summary.authors[-1]) == ("Molenaar JJ", "Versteeg R")
    assert summary.journal == "Nature" and summary.pub_date == "2012 Feb 22"
    with pytest.raises(NotRecordedError):
        pubmed_summary("1", client)


def test_pubmed_summary_without_record() -> None:
    client = ReplayHttpClient()
    url = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esummary.fcgi?db=pubmed&id=99&retmode=json"
    client.add_response(
        "GET",
        url,
        200,
        '{"result": {"uids": [], "99": {"uid": "99", "error": "cannot get document summary"}}}',
    )
    with pytest.raises(ValueError, match="PubMed 99: cannot get document summary"):
        pubmed_summary("99", client)


def test_taxonomy_id(cassettes: Path) -> None:
    client = ReplayHttpClient(
        [
            cassettes / "surveyor.geo.geo_survey_rnaseq.yaml.gz",
            cassettes / "surveyor.geo.geo_survey_superseries.yaml.gz",
        ]
    )
    assert taxonomy_id("Homo sapiens", client) == 9606
    assert taxonomy_id("MUS_MUSCULUS", client) == 10090


def test_sample_attributes_of_a_single_record(shared_data: Path) -> None:
    entity = parse_soft(shared_data / "geo" / "geoparse" / "GSM2795971.txt").samples["GSM2795971"]
    rows = sample_attributes(entity)
    assert [(r.key, r.value) for r in rows][:2] == [
        ("title", "SMAD2/3, Hs578T, TGFβ 16h_ChIP"),
        ("geo_accession", "GSM2795971"),
    ]
    assert all(r.source == "geo_field" for r in rows) and rows[-1].position == len(rows) - 1


_ILLUMINA_FAMILY = """\
^SERIES = GSE99990
!Series_title = Illumina series with an experiment-level non-normalized matrix (synthetic)
!Series_geo_accession = GSE99990
!Series_sample_id = GSM9999901
!Series_sample_id = GSM9999902
!Series_supplementary_file = ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE99nnn/GSE99990/suppl/GSE99990_non-normalized.txt.gz
^PLATFORM = GPL6097
!Platform_title = Illumina human-6 v1.0 expression beadchip
!Platform_technology = oligonucleotide beads
!Platform_organism = Homo sapiens
^SAMPLE = GSM9999901
!Sample_title = s1
!Sample_organism_ch1 = Homo sapiens
!Sample_platform_id = GPL6097
!Sample_supplementary_file = NONE
^SAMPLE = GSM9999902
!Sample_title = s2
!Sample_organism_ch1 = Homo sapiens
!Sample_platform_id = GPL6097
!Sample_supplementary_file = NONE
"""


def test_series_non_normalized_file_is_every_samples_raw_data() -> None:
    client = ReplayHttpClient()
    client.add_response("GET", family_soft_url("GSE99990"), 200, _ILLUMINA_FAMILY)
    result = survey_geo("GSE99990", client, fetch_publications=False)
    url = "ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE99nnn/GSE99990/suppl/GSE99990_non-normalized.txt.gz"
    assert [(s.has_raw, s.pipeline, s.source_url, s.internal_platform_code) for s in result.samples] == [
        (True, "ILLUMINA_TO_PCL", url, "illuminaHumanv1")
    ] * 2
    assert [(f.sample_accession, f.file_type, f.is_raw) for f in result.original_files] == [
        (None, "NON_NORMALIZED", True),
        ("GSM9999901", "NON_NORMALIZED", True),
        ("GSM9999902", "NON_NORMALIZED", True),
    ]
    assert result.sample_tables == {} and result.platform_tables == {}
