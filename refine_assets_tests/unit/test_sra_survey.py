"""SRA / ENA surveyor against real recorded ENA responses (vcrpy cassettes of refine.bio's tests).

The cassettes hold the ENA portal JSON (``metadata_is_gathered_correctly``) or the ENA browser XML
chain (all others); the expected values below were read from the recorded bodies. Bad-input tests
re-serve real recorded bodies with one defect introduced (via ``ReplayHttpClient.add_response``).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
import yaml

from refine_assets.lib.http import ReplayHttpClient, build_url
from refine_assets.lib.survey import ena_xml, sra
from refine_assets.lib.survey.model import SurveyError, SurveyResult

XML = "https://www.ebi.ac.uk/ena/browser/api/xml/"
FILEREPORT = "https://www.ebi.ac.uk/ena/portal/api/filereport"


def _client(cassettes: Path, name: str) -> ReplayHttpClient:
    return ReplayHttpClient([cassettes / name])


def _bodies(cassettes: Path, name: str) -> dict[str, bytes]:
    """Recorded response bodies of a cassette by request URL (first recording wins)."""
    doc = yaml.load(gzip.decompress((cassettes / name).read_bytes()), Loader=yaml.CSafeLoader)
    out: dict[str, bytes] = {}
    for it in doc["interactions"]:
        body = it["response"]["body"].get("string") or b""
        if isinstance(body, str):
            body = body.encode()
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        out.setdefault(it["request"]["uri"], body)
    return out


def _client_from(bodies: dict[str, bytes], **overrides: bytes | tuple[int, bytes]) -> ReplayHttpClient:
    """A replay client serving ``bodies`` with some URLs' answers replaced (status 200 unless a tuple)."""
    client = ReplayHttpClient()
    for url, body in bodies.items():
        if url in overrides:
            continue
        client.add_response("GET", url, 200, body)
    for url, answer in overrides.items():
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        client.add_response("GET", url, status, body)
    return client


def _attrs(result: SurveyResult, sample: str, source: str | None = None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in result.attributes:
        if a.sample_accession == sample and (source is None or a.source == source):
            out.setdefault(a.key, []).append(a.value)
    return out


def _files(result: SurveyResult, sample: str) -> list:
    return [f for f in result.original_files if f.sample_accession == sample]


# --------------------------------------------------------------------------------------------------
# ENA portal API (JSON) + BioSamples


def test_portal_run_survey_gathers_run_study_and_biosample(cassettes: Path) -> None:
    client = _client(cassettes, "surveyor.sra.metadata_is_gathered_correctly.yaml.gz")
    result = sra.survey_sra("DRR002116", client)

    assert result.experiment_attributes["survey_backend"] == ["ena_portal"]
    assert result.experiment_attributes["bioproject"] == ["PRJDB90"]
    exp = result.experiment
    assert exp.accession == "DRP000595"
    assert exp.source_database == "SRA"
    assert exp.title == "P. sinensis EvoDevo project"
    assert exp.description.startswith("Evolutionary origin of turtles")
    assert exp.submitter_institution == "RIKEN Center for Developmental Biology"
    assert (exp.source_first_published, exp.source_last_modified) == ("2013-12-14", "2023-05-19")
    assert exp.technology == "RNA-SEQ"
    assert exp.alternate_accessions == []

    [sample] = result.samples
    assert sample.accession == "DRR002116"
    assert sample.experiment_accession == "DRP000595"
    assert (sample.organism, sample.taxonomy_id) == ("GALLUS_GALLUS", 9031)
    assert sample.title == "Gg_HH16_1_embryo_mRNAseq"
    assert (sample.manufacturer, sample.platform_accession, sample.platform_name) == (
        "ILLUMINA",
        "IlluminaHiSeq2000",
        "Illumina HiSeq 2000",
    )
    assert (sample.technology, sample.pipeline, sample.library_layout) == ("RNA-SEQ", "SALMON", "SINGLE")
    assert (sample.library_strategy, sample.library_source) == ("RNA-Seq", "TRANSCRIPTOMIC")
    assert sample.source_url == "https://sra-pub-run-odp.s3.amazonaws.com/sra/DRR002116/DRR002116"
    assert (sample.source_first_published, sample.source_last_modified) == ("2013-07-19", "2017-08-11")
    assert sample.unmated_reads is False and sample.has_raw is True
    assert [(o.name, o.taxonomy_id) for o in result.organisms] == [("GALLUS_GALLUS", 9031)]
    assert [p.accession for p in result.platforms] == ["IlluminaHiSeq2000"]

    run = _attrs(result, "DRR002116", "ena_run")
    assert run["center_name"] == ["RIKEN_CDB"]
    assert run["experiment_accession"] == ["DRX001563"]
    assert run["run_date"] == ["1314831600000"]
    assert run["read_count"] == ["32568360"]
    assert run["secondary_sample_accession"] == ["DRS001521"]
    assert run["submission_accession"] == ["DRA000567"]
    assert "broker_name" not in run  # empty in the record: empty values are not kept
    bio = _attrs(result, "DRR002116", "biosample")
    # refine.bio's flattened keys (its test asserts these exact names) ...
    assert bio["characteristics_sample_comment_0_text"] == [
        "mRNAseq of chicken at stage HH16 (biological replicate 1)"
    ]
    assert bio["characteristics_INSDC_center_name_0_text"] == [
        "Group for Morphological Evolution, Center for Developmental Biology, Kobe Institute, RIKEN"
    ]
    assert bio["characteristics_title_0_text"] == ["Gg_HH16_1_embryo_mRNAseq"]
    # ... and clean keys named like the characteristic
    assert bio["sample comment"] == ["mRNAseq of chicken at stage HH16 (biological replicate 1)"]
    assert bio["organism"] == ["Gallus gallus"]
    assert "accession" not in bio and "status" not in bio
    study = _attrs(result, "DRR002116", "ena_study")
    assert study["study_ena_center_name"] == ["RIKEN Center for Developmental Biology"]
    assert study["study_ena_first_public"] == ["2013-12-14"]
    assert study["study_ena_last_updated"] == ["2023-05-19"]
    positions = [a.position for a in result.attributes]
    assert positions == list(range(len(positions)))

    files = _files(result, "DRR002116")
    assert [(f.file_type, f.filename) for f in files] == [
        ("SRA", "DRR002116"),
        ("FASTQ", "DRR002116.fastq.gz"),
    ]
    fastq = files[1]
    assert fastq.source_url == "https://ftp.sra.ebi.ac.uk/vol1/fastq/DRR002/DRR002116/DRR002116.fastq.gz"
    assert (fastq.expected_md5, fastq.expected_size, fastq.is_raw) == (
        "a79d7a79451b28c967892995cf268697",
        2969261051,
        True,
    )
    # PubMed look-up via ENA xref is not recorded: a warning, not a failure
    assert any("PubMed links of PRJDB90" in w for w in result.warnings)
    tables = result.tables()
    assert tables["samples"].num_rows == 1
    assert tables["sample_attributes"].num_rows == len(result.attributes)


def test_portal_study_survey_uses_study_query(cassettes: Path) -> None:
    """A study is listed with ``query=study_accession=... OR secondary_study_accession=...``."""
    bodies = _bodies(cassettes, "surveyor.sra.metadata_is_gathered_correctly.yaml.gz")
    run_json = next(b for u, b in bodies.items() if "includeAccessions=DRR002116" in u)
    study_query = build_url(
        sra.ENA_PORTAL_SEARCH,
        {
            "format": "json",
            "result": "read_run",
            "fields": "all",
            "query": 'study_accession="DRP000595" OR secondary_study_accession="DRP000595"',
            "limit": "0",
        },
    )
    client = _client_from(bodies, **{study_query: run_json})
    result = sra.survey_sra("DRP000595", client)
    assert result.experiment_attributes["survey_backend"] == ["ena_portal"]
    assert result.experiment.accession == "DRP000595"
    assert [s.accession for s in result.samples] == ["DRR002116"]


# --------------------------------------------------------------------------------------------------
# ENA browser XML API


def test_xml_study_survey_srp068364(cassettes: Path) -> None:
    client = _client(cassettes, "surveyor.sra.srp_survey.yaml.gz")
    result = sra.survey_sra("SRP068364", client)

    assert result.experiment_attributes["survey_backend"] == ["ena_browser_xml"]
    assert result.experiment_attributes["bioproject"] == ["PRJNA308582"]
    assert "ENA portal API not usable" in result.warnings[0]
    exp = result.experiment
    assert exp.accession == "SRP068364"
    assert exp.title.startswith("Transcriptional profiling through RNA-seq of zebrafish larval liver")
    assert exp.description.startswith("We sequenced liver mRNA isolated from biliatresone-treated")
    assert exp.alternate_accessions == ["GSE76780", "E-GEOD-76780"]
    assert exp.pubmed_ids == ["27102575"]
    assert exp.publication_title.startswith("Glutathione antioxidant pathway activity")
    assert exp.publication_authors[0] == "Zhao X" and len(exp.publication_authors) == 13
    assert exp.publication_doi == "10.1002/hep.28603"
    # study center is the broker "GEO": the submitting lab of the samples is used instead
    assert (
        exp.submitter_institution == "Michael Pack, Medicine/DIgestive Diseases, University of Pennsylvania"
    )
    assert (exp.source_first_published, exp.source_last_modified) == ("2017-09-25", "2017-09-25")
    assert exp.source_url == "https://www.ebi.ac.uk/ena/browser/view/SRP068364"

    assert [s.accession for s in result.samples] == ["SRR3098579", "SRR3098580", "SRR3098581", "SRR3098582"]
    assert [s.title for s in result.samples] == ["Control 1", "Control 2", "Biliatresone 1", "Biliatresone 2"]
    for s in result.samples:
        assert (s.organism, s.taxonomy_id, s.library_layout) == ("DANIO_RERIO", 7955, "PAIRED")
        assert (s.platform_accession, s.manufacturer, s.technology, s.pipeline) == (
            "IlluminaHiSeq2000",
            "ILLUMINA",
            "RNA-SEQ",
            "SALMON",
        )
    first = result.samples[0]
    assert (first.source_first_published, first.source_last_modified) == ("2017-11-07", "2019-12-22")

    a = _attrs(result, "SRR3098579")
    assert a["treatment"] == ["DMSO"] and a["tissue"] == ["liver"]
    assert a["run_ena_spot_count"] == ["56576210"]
    assert a["library_selection"] == ["cDNA"]
    assert a["biosample_accession"] == ["SAMN04397505"]
    assert a["study_ena_geo_id"] == ["GSE76780"]
    assert a["study_ena_pubmed_id"] == ["27102575"]
    assert a["submission_title"] == ["Submitted by GEO on 25-SEP-2017"]
    assert _attrs(result, "SRR3098582")["treatment"] == ["Biliatresone"]
    sources = {x.source for x in result.attributes}
    assert sources == {"ena_run", "ena_experiment", "ena_sample", "ena_study", "ena_submission"}

    files = _files(result, "SRR3098579")
    assert [(f.file_type, f.filename, f.expected_size, f.expected_md5) for f in files] == [
        ("SRA", "SRR3098579", None, None),
        ("FASTQ", "SRR3098579_1.fastq.gz", 3999026139, "9dc519ddc6a0aed81998137fcefa16f2"),
        ("FASTQ", "SRR3098579_2.fastq.gz", 3956970849, "e7c56cceed78f71188178b7a39204c87"),
    ]
    assert len(result.original_files) == 12
    # each record fetched once: study, 4 x (run, experiment, sample, submission, file report), PubMed
    assert len(client.requests) == 1 + 4 * 5 - 3 + 1  # the 4 runs share one submission


@pytest.mark.parametrize(
    ("accession", "n_runs", "alternates", "model", "layout", "institution"),
    [
        (
            "SRP111553",
            16,
            ["GSE101204", "E-GEOD-101204"],
            "IlluminaHiSeq2500",
            "SINGLE",
            "Bioinformatics Unit, CNIC",
        ),
        ("DRP003977", 9, [], "IlluminaHiSeq2500", "PAIRED", "NIG"),
    ],
)
def test_xml_study_surveys_refinebio_counts(
    cassettes: Path,
    accession: str,
    n_runs: int,
    alternates: list[str],
    model: str,
    layout: str,
    institution: str,
) -> None:
    """refine.bio's test_srp_survey: SRP111553 has 16 runs (8 samples x 2), DRP003977 has 9."""
    result = sra.survey_sra(accession, _client(cassettes, "surveyor.sra.srp_survey.yaml.gz"))
    assert result.experiment.accession == accession
    assert len(result.samples) == n_runs
    assert result.experiment.alternate_accessions == alternates
    assert result.experiment.submitter_institution == institution
    assert {(s.organism, s.platform_accession, s.library_layout) for s in result.samples} == {
        ("DANIO_RERIO", model, layout)
    }


def test_xml_run_survey_gives_study_with_one_run(cassettes: Path) -> None:
    result = sra.survey_sra("srr3098582", _client(cassettes, "surveyor.sra.srp_survey.yaml.gz"))
    assert result.experiment.accession == "SRP068364"
    assert [s.accession for s in result.samples] == ["SRR3098582"]
    a = _attrs(result, "SRR3098582", "ena_sample")
    assert a["sample_accession"] == ["SRS1246175"]
    assert (a["treatment"], a["tissue"]) == (["Biliatresone"], ["liver"])


def test_unmated_reads_use_ena_mate_files(cassettes: Path) -> None:
    """refine.bio test_survey_unmated_reads: 12 runs, each with an unpaired file beside _1/_2."""
    result = sra.survey_sra("SRP048683", _client(cassettes, "surveyor.sra.survey_unmated_reads.yaml.gz"))
    assert result.experiment.accession == "SRP048683"
    assert result.experiment.alternate_accessions == ["GSE62098", "E-GEOD-62098"]
    assert result.experiment.pubmed_ids == ["25549968"]
    assert len(result.samples) == 12
    assert all(s.unmated_reads for s in result.samples)
    assert all(f.file_type == "FASTQ" for f in result.original_files)  # no SRA file at all
    files = _files(result, "SRR1603661")
    assert {f.filename for f in files} == {"SRR1603661_1.fastq.gz", "SRR1603661_2.fastq.gz"}
    mate1 = next(f for f in files if f.filename == "SRR1603661_1.fastq.gz")
    assert (mate1.expected_md5, mate1.expected_size, mate1.is_raw) == (
        "502a9a482bfa5aa75865ccc0105ad13c",
        6751980628,
        True,
    )
    assert (
        mate1.source_url == "https://ftp.sra.ebi.ac.uk/vol1/fastq/SRR160/001/SRR1603661/SRR1603661_1.fastq.gz"
    )
    assert _attrs(result, "SRR1603661")["unpaired_fastq"] == [
        "https://ftp.sra.ebi.ac.uk/vol1/fastq/SRR160/001/SRR1603661/SRR1603661.fastq.gz"
    ]
    assert _attrs(result, "SRR1603661")["disease"] == ["autism spectrum disorder"]
    assert all(s.pipeline == "SALMON" for s in result.samples)


def test_arrayexpress_alternate_accession(cassettes: Path) -> None:
    """refine.bio test_arrayexpress_alternate_accession: ERP108370 is E-MTAB-6681."""
    result = sra.survey_sra(
        "ERP108370", _client(cassettes, "surveyor.sra.arrayexpress_alternate_accession.yaml.gz")
    )
    exp = result.experiment
    assert exp.accession == "ERP108370"
    assert exp.alternate_accessions == ["E-MTAB-6681"]
    assert exp.submitter_institution == "BRIC - Biotech Research and Innovation Centre"
    assert exp.description.startswith("We identified genome-wide binding patterns of CIC")
    assert len(result.samples) == 27
    assert result.samples[0].accession == "ERR2534072" and result.samples[-1].accession == "ERR2534098"
    assert {
        (s.organism, s.platform_accession, s.library_layout, s.unmated_reads) for s in result.samples
    } == {("HOMO_SAPIENS", "NextSeq500", "SINGLE", False)}
    a = _attrs(result, "ERR2534072")
    assert a["cell line"] == ["G144"] and a["organism part"] == ["brain"]
    assert a["organism"] == ["Homo sapiens"]  # listed twice in the record, kept once
    assert a["Experimental Factor: genotype"] == ["CRISPR/Cas9 mediated knockout of CIC"]
    assert a["submitted_ftp"] == [
        "ftp.sra.ebi.ac.uk/vol1/run/ERR253/ERR2534072/G144_KO8_RNAseq_DMSO1.fastq.gz"
    ]
    files = _files(result, "ERR2534072")
    assert [(f.file_type, f.expected_md5, f.expected_size) for f in files] == [
        ("SRA", None, None),
        ("FASTQ", "060aa7646a7caa6b7db9e9b5126efd99", 1342496804),
    ]


def test_nonexistent_study_is_a_survey_error(cassettes: Path) -> None:
    with pytest.raises(SurveyError, match="not found in ENA") as info:
        sra.survey_sra("ERP006216", _client(cassettes, "surveyor.sra.survey_nonexistant.yaml.gz"))
    assert info.value.accession == "ERP006216"
    assert "HTTP 404" in info.value.problem


def test_sra_harmony_chain_srr1533126(cassettes: Path) -> None:
    result = sra.survey_sra("SRR1533126", _client(cassettes, "surveyor.harmony.sra_harmony.yaml.gz"))
    exp = result.experiment
    assert exp.accession == "SRP045126"
    assert exp.title == "Homo sapiens Transcriptome or Gene expression"
    assert exp.description == "RNA-seq Identification of a Novel Fusion Gene in a Mesenchymal Tumor"
    assert exp.pubmed_ids == ["25319834", "27443518"]
    assert exp.publication_title is None  # esummary not recorded
    assert exp.submitter_institution == "Academia Sinica"  # study center "BioProject" is a broker name
    assert exp.alternate_accessions == []
    [s] = result.samples
    assert (s.accession, s.organism, s.library_layout, s.platform_accession) == (
        "SRR1533126",
        "HOMO_SAPIENS",
        "PAIRED",
        "IlluminaHiSeq2000",
    )
    assert s.title == "Phosphaturic mesenchymal tumour (PMT) case 2 of NTUH"
    a = _attrs(result, "SRR1533126", "ena_sample")
    assert (a["age"], a["sex"], a["tissue"], a["cell_type"]) == (
        ["57"],
        ["female"],
        ["soft tissue"],
        ["tumor cell"],
    )
    assert a["disease"] == ["Phosphaturic mesenchymal tumours"]
    assert _attrs(result, "SRR1533126", "ena_experiment")["nominal_sdev"] == ["0.0E0"]
    # no file report recorded: the SRA file only, and a warning
    assert [(f.file_type, f.source_url) for f in result.original_files] == [
        ("SRA", "https://sra-pub-run-odp.s3.amazonaws.com/sra/SRR1533126/SRR1533126")
    ]
    assert any("SRR1533126: ENA file report not available" in w for w in result.warnings)
    assert any("PubMed 25319834" in w for w in result.warnings)


SRA_LOTS = [
    # run, study, organism, model, layout, alternate accessions
    ("ERR188021", "ERP001942", "HOMO_SAPIENS", "IlluminaHiSeq2000", "PAIRED", ["E-GEUV-1"]),
    ("ERR188022", "ERP001942", "HOMO_SAPIENS", "IlluminaHiSeq2000", "PAIRED", ["E-GEUV-1"]),
    ("ERR205021", "ERP001942", "HOMO_SAPIENS", "IlluminaHiSeq2000", "PAIRED", ["E-GEUV-1"]),
    ("ERR205022", "ERP001942", "HOMO_SAPIENS", "IlluminaHiSeq2000", "PAIRED", ["E-GEUV-1"]),
    ("ERR205023", "ERP001942", "HOMO_SAPIENS", "IlluminaHiSeq2000", "PAIRED", ["E-GEUV-1"]),
    ("ERR030891", "ERP000546", "HOMO_SAPIENS", "IlluminaHiSeq2000", "SINGLE", ["E-MTAB-513"]),
    ("ERR030892", "ERP000546", "HOMO_SAPIENS", "IlluminaHiSeq2000", "SINGLE", ["E-MTAB-513"]),
    ("SRR1542948", "SRP045425", "HOMO_SAPIENS", "IlluminaHiSeq2500", "PAIRED", ["GSE60308", "E-GEOD-60308"]),
    ("SRR1553477", "SRP045416", "ZAIRE_EBOLAVIRUS", "IlluminaHiSeq2500", "PAIRED", []),
    ("SRR1542330", "SRP045391", "HOMO_SAPIENS", "IlluminaHiSeq2000", "SINGLE", ["GSE60271", "E-GEOD-60271"]),
    ("SRR1538698", "SRP045322", "HOMO_SAPIENS", "IlluminaHiSeq2500", "PAIRED", ["GSE60182", "E-GEOD-60182"]),
    ("SRR1538760", "SRP045326", "HOMO_SAPIENS", "IlluminaHiSeq2000", "SINGLE", ["GSE60191", "E-GEOD-60191"]),
    ("SRR1538866", "SRP045329", "HOMO_SAPIENS", "IlluminaHiSeq2500", "PAIRED", ["GSE60196", "E-GEOD-60196"]),
    ("SRR1539218", "SRP045352", "HOMO_SAPIENS", "IlluminaHiSeq2000", "SINGLE", ["GSE60216", "E-GEOD-60216"]),
    ("SRR1797277", "SRP045225", "HOMO_SAPIENS", "IlluminaHiSeq2000", "PAIRED", ["GSE60052", "E-GEOD-60052"]),
    ("SRR1533126", "SRP045126", "HOMO_SAPIENS", "IlluminaHiSeq2000", "PAIRED", []),
]


@pytest.fixture(scope="module")
def sra_lots_client(cassettes: Path) -> ReplayHttpClient:
    return _client(cassettes, "surveyor.harmony.sra_lots.yaml.gz")


@pytest.mark.parametrize(("run", "study", "organism", "model", "layout", "alternates"), SRA_LOTS)
def test_sra_lots_runs(
    sra_lots_client: ReplayHttpClient,
    run: str,
    study: str,
    organism: str,
    model: str,
    layout: str,
    alternates: list[str],
) -> None:
    result = sra.survey_sra(run, sra_lots_client)
    assert result.experiment.accession == study
    assert result.experiment.alternate_accessions == alternates
    [s] = result.samples
    assert (s.accession, s.organism, s.platform_accession, s.library_layout) == (run, organism, model, layout)
    assert (s.technology, s.manufacturer, s.pipeline) == ("RNA-SEQ", "ILLUMINA", "SALMON")
    a = _attrs(result, run)
    assert a["run_accession"] == [run]
    assert a["library_strategy"] == ["RNA-Seq"]
    assert a["study_ena_accession"] == [study]
    assert a["scientific_name"][0].upper().replace(" ", "_") == organism


def test_sra_lots_geuvadis_sample_attributes(sra_lots_client: ReplayHttpClient) -> None:
    result = sra.survey_sra("ERR188021", sra_lots_client)
    assert result.experiment.submitter_institution == "Geuvadis"
    assert (result.experiment.source_first_published, result.experiment.source_last_modified) == (
        "2012-11-06",
        "2012-11-02",
    )
    a = _attrs(result, "ERR188021", "ena_sample")
    assert a["sample_accession"] == ["ERS185362"]
    ebola = sra.survey_sra("SRR1553477", sra_lots_client)
    assert ebola.experiment.submitter_institution == "pda|sineadchapman"
    assert ebola.experiment.pubmed_ids == ["25214632"]


@pytest.mark.parametrize(("run", "sample"), [("SRR000001", "SRS000100"), ("ERR1737666", "ERS1394051")])
def test_sra_lots_runs_whose_sample_is_missing(
    sra_lots_client: ReplayHttpClient, run: str, sample: str
) -> None:
    """The cassette lacks these runs' sample records: the survey fails, naming the sample."""
    with pytest.raises(SurveyError, match=f"sample {sample}") as info:
        sra.survey_sra(run, sra_lots_client)
    assert info.value.accession == run


# --------------------------------------------------------------------------------------------------
# decisions on real records with one field changed


def test_single_cell_library_is_routed_before_download(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.harmony.sra_harmony.yaml.gz")
    exp_url = XML + "SRX666716"
    changed = bodies[exp_url].replace(
        b"<LIBRARY_SOURCE>TRANSCRIPTOMIC</LIBRARY_SOURCE>",
        b"<LIBRARY_SOURCE>TRANSCRIPTOMIC SINGLE CELL</LIBRARY_SOURCE>",
    )
    assert changed != bodies[exp_url]
    result = sra.survey_sra("SRR1533126", _client_from(bodies, **{exp_url: changed}))
    [s] = result.samples
    # decided at survey time: not quantified, with the reason (refine.bio quantified these as bulk)
    assert (s.technology, s.library_source, s.pipeline) == ("RNA-SEQ", "TRANSCRIPTOMIC SINGLE CELL", "NONE")
    assert s.pipeline_reason.startswith("single-cell library (library source TRANSCRIPTOMIC SINGLE CELL)")
    assert _attrs(result, "SRR1533126", "survey_flag")["single_cell"] == ["true"]
    assert any("single-cell" in w for w in result.warnings)


def test_long_read_and_unsupported_instruments_are_routed_before_download(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.harmony.sra_harmony.yaml.gz")
    exp_url = XML + "SRX666716"
    original = bodies[exp_url]
    assert b"<ILLUMINA>" in original
    pacbio = original.replace(b"<ILLUMINA>", b"<PACBIO_SMRT>").replace(b"</ILLUMINA>", b"</PACBIO_SMRT>")
    pacbio = re.sub(rb"<INSTRUMENT_MODEL>[^<]*<", b"<INSTRUMENT_MODEL>PacBio Sequel II<", pacbio)
    [s] = sra.survey_sra("SRR1533126", _client_from(bodies, **{exp_url: pacbio})).samples
    assert s.pipeline == "NONE" and s.pipeline_reason.startswith(
        "long-read instrument PacBio Sequel II (PACBIO_SMRT)"
    )
    odd = re.sub(rb"<INSTRUMENT_MODEL>[^<]*<", b"<INSTRUMENT_MODEL>Illumina HiSeq 9999<", original)
    [s] = sra.survey_sra("SRR1533126", _client_from(bodies, **{exp_url: odd})).samples
    assert (s.pipeline, s.pipeline_reason) == (
        "NONE",
        "instrument Illumina HiSeq 9999 is not a supported short-read sequencer",
    )


def test_non_rnaseq_library_is_unknown_technology(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.harmony.sra_harmony.yaml.gz")
    exp_url = XML + "SRX666716"
    changed = (
        bodies[exp_url]
        .replace(b"<LIBRARY_STRATEGY>RNA-Seq<", b"<LIBRARY_STRATEGY>ChIP-Seq<")
        .replace(b">TRANSCRIPTOMIC<", b">GENOMIC<")
    )
    result = sra.survey_sra("SRR1533126", _client_from(bodies, **{exp_url: changed}))
    [s] = result.samples
    assert (s.technology, s.pipeline, s.library_strategy) == ("UNKNOWN", "NONE", "ChIP-Seq")
    assert result.experiment.technology == "UNKNOWN"
    assert any("not bulk RNA-seq" in w for w in result.warnings)


# --------------------------------------------------------------------------------------------------
# bad input


def test_not_an_sra_accession() -> None:
    with pytest.raises(SurveyError, match="not an SRA study"):
        sra.survey_sra("GSE76780", ReplayHttpClient())


def test_malformed_run_xml(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.harmony.sra_harmony.yaml.gz")
    url = XML + "SRR1533126"
    truncated = bodies[url][:700]
    with pytest.raises(SurveyError, match="malformed ENA XML") as info:
        sra.survey_sra("SRR1533126", _client_from(bodies, **{url: truncated}))
    assert info.value.accession == "SRR1533126"


def test_malformed_portal_json(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.sra.metadata_is_gathered_correctly.yaml.gz")
    url = next(u for u in bodies if "includeAccessions=DRR002116" in u)
    with pytest.raises(SurveyError, match="malformed JSON"):
        sra.survey_sra("DRR002116", _client_from(bodies, **{url: bodies[url][:300]}))


def test_malformed_biosample_json(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.sra.metadata_is_gathered_correctly.yaml.gz")
    url = next(u for u in bodies if "biosamples" in u)
    with pytest.raises(SurveyError, match="BioSamples returned malformed JSON for SAMD00004104"):
        sra.survey_sra("DRR002116", _client_from(bodies, **{url: b'{"name": "SAMD00004104", '}))


def test_portal_run_without_sample(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.sra.metadata_is_gathered_correctly.yaml.gz")
    url = next(u for u in bodies if "includeAccessions=DRR002116" in u)
    changed = bodies[url].replace(b'"sample_accession":"SAMD00004104"', b'"sample_accession":""')
    assert changed != bodies[url]
    with pytest.raises(SurveyError, match="DRR002116 has no sample"):
        sra.survey_sra("DRR002116", _client_from(bodies, **{url: changed}))


def test_xml_run_without_sample(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.harmony.sra_harmony.yaml.gz")
    run_url, exp_url = XML + "SRR1533126", XML + "SRX666716"
    run = bodies[run_url].replace(b"<DB>ENA-SAMPLE</DB>", b"<DB>OTHER</DB>")
    exp = bodies[exp_url].replace(b'<SAMPLE_DESCRIPTOR accession="SRS671406">', b"<SAMPLE_DESCRIPTOR>")
    exp = exp.replace(b"<PRIMARY_ID>SRS671406</PRIMARY_ID>", b"")
    with pytest.raises(SurveyError, match="has no sample") as info:
        sra.survey_sra("SRR1533126", _client_from(bodies, **{run_url: run, exp_url: exp}))
    assert str(info.value).startswith("SRR1533126: ")


def test_server_error_on_required_record(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.harmony.sra_harmony.yaml.gz")
    url = XML + "SRX666716"
    with pytest.raises(SurveyError, match=r"experiment SRX666716.*HTTP 500"):
        sra.survey_sra("SRR1533126", _client_from(bodies, **{url: (500, b"Internal Server Error")}))


def test_study_without_runs(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.sra.survey_unmated_reads.yaml.gz")
    url = XML + "SRP048683"
    changed = bodies[url].replace(b"<DB>ENA-RUN</DB>", b"<DB>ENA-NOTHING</DB>")
    with pytest.raises(SurveyError, match="lists no runs"):
        sra.survey_sra("SRP048683", _client_from(bodies, **{url: changed}))


def test_malformed_file_report(cassettes: Path) -> None:
    bodies = _bodies(cassettes, "surveyor.sra.arrayexpress_alternate_accession.yaml.gz")
    url = FILEREPORT + "?accession=ERR2534072&result=read_run"
    assert url in bodies
    run_xml_bodies = {u: b for u, b in bodies.items()}
    study_url = XML + "ERP108370"
    one_run = bodies[study_url].replace(b"ERR2534072-ERR2534098", b"ERR2534072")
    run_xml_bodies[study_url] = one_run
    with pytest.raises(SurveyError, match="file report is malformed"):
        sra.survey_sra(
            "ERP108370", _client_from(run_xml_bodies, **{url: b"<html>Service unavailable</html>"})
        )
    # and a correct one-run study survives
    result = sra.survey_sra("ERP108370", _client_from(run_xml_bodies))
    assert [s.accession for s in result.samples] == ["ERR2534072"]


# --------------------------------------------------------------------------------------------------
# helpers


def test_expand_accessions_from_real_study_link() -> None:
    # ENA-RUN link of SRP045126 (surveyor.harmony.sra_harmony)
    assert ena_xml.expand_accessions("SRR1533126,SRR1533896,SRR1533917-SRR1533918,SRR3144598-SRR3144599") == [
        "SRR1533126",
        "SRR1533896",
        "SRR1533917",
        "SRR1533918",
        "SRR3144598",
        "SRR3144599",
    ]
    assert ena_xml.expand_accessions("SRR000098-SRR000101") == [
        "SRR000098",
        "SRR000099",
        "SRR000100",
        "SRR000101",
    ]
    for bad in ("SRR5-SRR3", "SRR1-ERR2", "SRR 1"):
        with pytest.raises(SurveyError):
            ena_xml.expand_accessions(bad, "SRP1")


@pytest.mark.parametrize(
    ("strategy", "source", "expected"),
    [
        ("RNA-Seq", "TRANSCRIPTOMIC", ("RNA-SEQ", False)),
        ("RNA-Seq", "OTHER", ("RNA-SEQ", False)),
        ("RNA-Seq", "TRANSCRIPTOMIC SINGLE CELL", ("RNA-SEQ", True)),
        ("RNA-Seq", "GENOMIC", ("UNKNOWN", False)),
        ("WGS", "TRANSCRIPTOMIC", ("UNKNOWN", False)),
        (None, None, ("UNKNOWN", False)),
    ],
)
def test_technology_for(strategy: str | None, source: str | None, expected: tuple[str, bool]) -> None:
    assert sra.technology_for(strategy, source) == expected


def test_split_unmated() -> None:
    files = ena_xml.fastq_files(
        "ftp.sra.ebi.ac.uk/x/SRR1.fastq.gz;ftp.sra.ebi.ac.uk/x/SRR1_1.fastq.gz;ftp.sra.ebi.ac.uk/x/SRR1_2.fastq.gz",
        "1;2;3",
        "a;b;c",
    )
    unmated, mates, unpaired = sra.split_unmated(files)
    assert unmated and [f.filename for f in mates] == ["SRR1_1.fastq.gz", "SRR1_2.fastq.gz"]
    assert [(f.filename, f.size, f.md5) for f in unpaired] == [("SRR1.fastq.gz", 1, "a")]
    assert sra.split_unmated(files[1:])[0] is False
    assert sra.split_unmated(files[:1])[0] is False
