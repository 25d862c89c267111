"""ArrayExpress surveyor on the real refine.bio cassettes (legacy JSON v3 API, July 2021).

Values asserted here were read from the recordings: E-MTAB-3050 (5 Affymetrix HG_U95Av2 arrays with
CEL files), E-GEOD-44719 (77 Illumina HumanHT-12 v3 samples, processed data only), E-MEXP-2381 (2
zebrafish arrays, MAGE-TAB 1.0 ``Hybridization Name``) and the sample listings of six experiments
that refine.bio used to test its accession heuristic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from refine_assets.lib.http import HttpResponse, NotRecordedError, ReplayHttpClient, request_key
from refine_assets.lib.survey.arrayexpress import (
    BACKEND_BIOSTUDIES,
    BACKEND_LEGACY,
    ArrayExpressRecord,
    _biostudies_files_base,
    ae_json_sample_accession,
    build_survey_result,
    determine_sample_accession,
    fetch_taxonomy_id,
    flatten_ae_json_sample,
    resolve_organism,
    survey_arrayexpress,
)
from refine_assets.lib.survey.magetab import parse_idf, parse_sdrf
from refine_assets.lib.survey.model import SurveyError

LEGACY = "https://www.ebi.ac.uk/arrayexpress/json/v3/experiments/"
AE_FILES = "https://www.ebi.ac.uk/arrayexpress/files/"
BIOSTUDIES = "https://www.ebi.ac.uk/biostudies/api/v1/studies/"


class OverridingClient:
    """An HttpClient that answers some GET URLs itself and replays everything else from cassettes."""

    def __init__(self, inner: ReplayHttpClient, overrides: Mapping[str, tuple[int, bytes | str]]):
        self.inner = inner
        self.own = ReplayHttpClient()
        self.keys = set()
        for url, (status, body) in overrides.items():
            self.own.add_response("GET", url, status, body)
            self.keys.add(request_key("GET", url))
        self.requests: list[str] = []

    def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse:
        self.requests.append(url)
        if request_key("GET", url) in self.keys:
            return self.own.get(url, params)
        return self.inner.get(url, params)

    def post(self, url, data=None, params=None):  # pragma: no cover - not used by this surveyor
        raise NotRecordedError(url, "no POST")

    def head(self, url):  # pragma: no cover
        raise NotRecordedError(url, "no HEAD")


@pytest.fixture(scope="module")
def survey_client(cassettes: Path) -> ReplayHttpClient:
    return ReplayHttpClient([cassettes / "surveyor.array_express.survey.yaml.gz"])


@pytest.fixture(scope="module")
def e_mtab_3050(survey_client):
    return survey_arrayexpress("E-MTAB-3050", survey_client)


@pytest.fixture(scope="module")
def e_geod_44719(survey_client):
    return survey_arrayexpress("E-GEOD-44719", survey_client)


@pytest.fixture(scope="module")
def protocol_list_client(cassettes: Path) -> ReplayHttpClient:
    return ReplayHttpClient([cassettes / "surveyor.array_express.survey_with_protocol_list.yaml.gz"])


@pytest.fixture(scope="module")
def accession_listings(cassettes: Path) -> ReplayHttpClient:
    return ReplayHttpClient([cassettes / "surveyor.array_express.determine_accession.yaml.gz"])


def attrs_of(result, sample_accession: str, source: str) -> list[tuple[str, str]]:
    return [
        (a.key, a.value)
        for a in result.attributes
        if a.sample_accession == sample_accession and a.source == source
    ]


# --------------------------------------------------------------------------------- E-MTAB-3050


def test_e_mtab_3050_experiment(e_mtab_3050):
    exp = e_mtab_3050.experiment
    assert exp.accession == "E-MTAB-3050" and exp.source_database == "ARRAY_EXPRESS"
    assert (
        exp.title
        == "Microarray analysis of in vitro differentiation of adult human pancreatic progenitor cells"
    )
    assert exp.description.startswith("We have developed an in vitro culture system")
    assert exp.submitter_institution == "Massachusetts General Hospital"
    assert exp.source_first_published == "2014-10-31" and exp.source_last_modified == "2014-10-30"
    assert exp.technology == "MICROARRAY"
    assert exp.pubmed_ids == [] and exp.publication_title is None
    assert exp.source_url == LEGACY + "E-MTAB-3050"
    ea = e_mtab_3050.experiment_attributes
    assert ea["survey_backend"] == [BACKEND_LEGACY]
    assert ea["array_designs"] == ["A-AFFY-1"]
    assert ea["protocol_type[P-MTAB-41857]"] == ["nucleic acid extraction protocol"]
    assert ea["idf:Comment[AdditionalFile:DAT]"][0] == "C30057.DAT"
    assert e_mtab_3050.warnings == []


def test_e_mtab_3050_samples_platform_and_organism(e_mtab_3050):
    samples = e_mtab_3050.samples
    assert [s.accession for s in samples] == [
        "E-MTAB-3050-1007409-C30057",
        "E-MTAB-3050-1007409-C30058",
        "E-MTAB-3050-1009003-C30059",
        "E-MTAB-3050-1009003-C30060",
        "E-MTAB-3050-1009003-C30061",
    ]
    s = samples[0]
    assert (s.organism, s.taxonomy_id) == ("HOMO_SAPIENS", 9606)
    assert (s.platform_accession, s.internal_platform_code, s.manufacturer) == (
        "A-AFFY-1",
        "hgu95av2",
        "AFFYMETRIX",
    )
    assert s.platform_name == "Affymetrix GeneChip Human Genome U95Av2 [HG_U95Av2]"
    assert s.technology == "MICROARRAY" and s.has_raw and s.pipeline == "AFFY_TO_PCL"
    assert s.channel_count == 1 and s.title == "donor A islets"
    assert all(x.has_raw and x.pipeline == "AFFY_TO_PCL" for x in samples)
    assert [(o.name, o.taxonomy_id) for o in e_mtab_3050.organisms] == [("HOMO_SAPIENS", 9606)]
    assert [(p.accession, p.internal_code, p.supported) for p in e_mtab_3050.platforms] == [
        ("A-AFFY-1", "hgu95av2", True)
    ]
    tables = e_mtab_3050.tables()
    assert tables["samples"].num_rows == 5 and tables["sample_attributes"].num_rows == len(
        e_mtab_3050.attributes
    )


def test_e_mtab_3050_raw_and_processed_files(e_mtab_3050):
    files = [f for f in e_mtab_3050.original_files if f.sample_accession == "E-MTAB-3050-1007409-C30057"]
    raw = [(f.filename, f.source_url, f.file_type, f.is_archive) for f in files if f.is_raw]
    processed = [(f.filename, f.source_url, f.file_type) for f in files if not f.is_raw]
    base = "ftp://ftp.ebi.ac.uk/pub/databases/microarray/data/experiment/MTAB/E-MTAB-3050/"
    assert raw == [("C30057.CEL", base + "E-MTAB-3050.raw.1.zip", "CEL", True)]
    assert processed == [("C30057.txt", base + "E-MTAB-3050.processed.1.zip", "PROCESSED")]
    assert len(e_mtab_3050.original_files) == 10  # legacy backend: IDF additional files have no known URL


def test_e_mtab_3050_every_sdrf_column_kept(e_mtab_3050):
    sdrf = attrs_of(e_mtab_3050, "E-MTAB-3050-1009003-C30060", "sdrf")
    assert ("Source Name", "donor B islets") in sdrf
    assert ("Characteristics[organism part]", "islet") in sdrf
    assert ("Characteristics[age]", "38") in sdrf and ("Unit [time unit]", "year") in sdrf
    assert ("Factor Value[cell type]", "expanded") in sdrf
    assert ("Factor Value[test result]", "NA") in sdrf
    assert [v for k, v in sdrf if k == "Protocol REF"] == [
        "P-MTAB-41854",
        "P-MTAB-41855",
        "P-MTAB-41858",
        "P-MTAB-41859",
        "P-MTAB-41859",
        "P-MTAB-41860",
        "P-MTAB-41861",
        "P-MTAB-41862",
    ]
    # the JSON sample, variables included (refine.bio lost variable_* columns)
    js = attrs_of(e_mtab_3050, "E-MTAB-3050-1009003-C30060", "ae_json")
    assert ("variable[individual]", "B") in js and ("characteristic[sex]", "male") in js
    assert ("characteristic[age] unit", "year") in js
    positions = [
        a.position for a in e_mtab_3050.attributes if a.sample_accession == "E-MTAB-3050-1009003-C30060"
    ]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


# --------------------------------------------------------------------------------- E-GEOD-44719


def test_e_geod_44719_illumina_processed_only(e_geod_44719):
    exp = e_geod_44719.experiment
    assert exp.title == "IFNa and IL4 DCs stimulated with microbial components for 6hr"
    assert exp.alternate_accessions == ["GSE44719"]
    assert exp.submitter_institution == "BIIR"
    assert (exp.source_first_published, exp.source_last_modified) == ("2014-10-22", "2014-10-25")
    samples = e_geod_44719.samples
    assert len(samples) == 77 and len({s.accession for s in samples}) == 77
    first = samples[0]
    assert first.accession == "E-GEOD-44719-GSM1089365"  # source "GSM1089365 1" has a space
    assert first.title == "IL4 DC_ND197_TNFa"  # Comment [Sample_title]
    assert (first.platform_accession, first.internal_platform_code, first.manufacturer) == (
        "A-MEXP-1171",
        "illuminaHumanv3",
        "ILLUMINA",
    )
    assert all(not s.has_raw and s.pipeline == "NO_OP" for s in samples)
    files = [f for f in e_geod_44719.original_files if f.sample_accession == first.accession]
    assert [(f.filename, f.is_raw, f.file_type) for f in files] == [
        ("GSM1089365_sample_table.txt", False, "PROCESSED")
    ]
    sdrf = attrs_of(e_geod_44719, first.accession, "sdrf")
    assert ("FactorValue [dose]", "1 mL") in sdrf and ("Characteristics [donor id]", "ND197") in sdrf
    assert ("variable[dose]", "1 mL") in attrs_of(e_geod_44719, first.accession, "ae_json")
    assert e_geod_44719.experiment_attributes["idf:Comment[AdditionalFile:Data1]"] == [
        "GSE44719_non_normalized.txt"
    ]


# --------------------------------------------------------------------------------- E-MEXP-2381


def test_e_mexp_2381_zebrafish_with_publication(protocol_list_client):
    result = survey_arrayexpress("E-MEXP-2381", protocol_list_client)
    exp = result.experiment
    assert exp.title == "Transcription profiling of Danio rerio (zebrafish) RPL11 mutant vs siblings"
    assert exp.pubmed_ids == ["21114664"]  # IDF PubMed ID is empty; the JSON bibliography has it
    assert exp.publication_doi == "10.1111/j.1365-2141.2010.08396.x"
    assert exp.publication_authors == ["Danilova N", "Sakamoto KM", "Lin S"]
    assert exp.submitter_institution == "UCLA"
    assert [s.accession for s in result.samples] == [
        "E-MEXP-2381-SAMPLE229091SUB6092",
        "E-MEXP-2381-SAMPLE229092SUB6092",
    ]
    assert {
        (s.organism, s.taxonomy_id, s.platform_accession, s.internal_platform_code) for s in result.samples
    } == {("DANIO_RERIO", 7955, "A-AFFY-38", "zebrafish")}
    raw = [(f.filename, f.source_url) for f in result.original_files if f.is_raw]
    assert raw[0] == (
        "135354-135352_ExpPt1.CEL",
        "ftp://ftp.ebi.ac.uk/pub/databases/microarray/data/experiment/MEXP/E-MEXP-2381/E-MEXP-2381.raw.1.zip",
    )
    assert ("Hybridization Name", "SAMPLE229092SUB6092") in attrs_of(
        result, result.samples[1].accession, "sdrf"
    )
    # zebrafish is in the built-in table: no NCBI request was made
    assert not any("eutils" in url for _, url in protocol_list_client.requests)


def test_taxonomy_esearch_recorded_for_zebrafish(protocol_list_client):
    assert fetch_taxonomy_id("DANIO_RERIO", protocol_list_client) == 7955


def test_taxonomy_lookup_failure_gives_none_and_a_warning():
    warnings: list[str] = []
    # Xenopus borealis is not in the built-in organisms.csv table, so NCBI is asked (and not recorded)
    organism = resolve_organism("Xenopus borealis", ReplayHttpClient(), warnings)
    assert (organism.name, organism.taxonomy_id, organism.scientific_name) == (
        "XENOPUS_BOREALIS",
        None,
        "Xenopus borealis",
    )
    assert len(warnings) == 1 and "XENOPUS_BOREALIS" in warnings[0]
    client = ReplayHttpClient()
    client.add_response(
        "GET",
        "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi?db=taxonomy&field=scin&term=NOT_AN_ORGANISM",
        200,
        "<eSearchResult><Count>0</Count><RetMax>0</RetMax><IdList/></eSearchResult>",
    )
    warnings = []
    assert resolve_organism("not an organism", client, warnings).taxonomy_id is None
    assert "no entry" in warnings[0]


# ----------------------------------------------------------------------- accession heuristic


EXPECTED_ACCESSIONS = {
    # stem of the CEL file ("C30057") is in the assay name
    "E-MTAB-3050": ("E-MTAB-3050-1007409-C30057", 5),
    # "UZG0008_HG_U133A.CEL" -> assay name UZG0008_HG_U133A (source is "NB2")
    "E-MEXP-669": ("E-MEXP-669-UZG0008_HG_U133A", 24),
    # stem "cls-4d-1" is the source name (the assay name is "cls-4d-1.CEL")
    "E-MEXP-2215": ("E-MEXP-2215-cls-4d-1", 8),
    # file "CuCa_2.CEL" matches neither, both have spaces, same length -> source name
    "E-MEXP-2288": ("E-MEXP-2288-Ca 2", 24),
    # identical source and assay names
    "E-MEXP-2381": ("E-MEXP-2381-SAMPLE229091SUB6092", 2),
    # RNA-seq, only a derived "patient.xlsx" -> tie -> source name
    "E-MTAB-6739": ("E-MTAB-6739-Sample 1", 6),
}


@pytest.mark.parametrize("accession", sorted(EXPECTED_ACCESSIONS))
def test_determine_sample_accession_on_recorded_listings(accession, accession_listings):
    samples = accession_listings.get(LEGACY + accession + "/samples").json()["experiment"]["sample"]
    first, count = EXPECTED_ACCESSIONS[accession]
    codes = [ae_json_sample_accession(accession, s) for s in samples]
    assert codes[0] == first
    assert len(codes) == count and len(set(codes)) == count  # unique within the experiment
    assert all(c.startswith(accession + "-") for c in codes)


def test_determine_sample_accession_rules():
    assert determine_sample_accession("E-X-1", "a b", "ab", None) == "E-X-1-ab"  # no spaces wins
    assert determine_sample_accession("E-X-1", "abc", "a b", None) == "E-X-1-abc"
    assert determine_sample_accession("E-X-1", "a b", "a b c", None) == "E-X-1-a b c"  # longer
    assert determine_sample_accession("E-X-1", "s1", "run_s1_x", "run_s1_x.CEL.gz") == "E-X-1-run_s1_x"
    assert determine_sample_accession("E-X-1", "", "only", None) == "E-X-1-only"
    with pytest.raises(ValueError, match="neither a source name nor an assay name"):
        determine_sample_accession("E-X-1", " ", None, "f.CEL")


# ------------------------------------------------------------------------- BioStudies backend


def _study_json(accession: str, title: str) -> str:
    return json.dumps(
        {
            "accno": accession,
            "attributes": [
                {"name": "ReleaseDate", "value": "2014-10-31"},
                {"name": "AttachTo", "value": "ArrayExpress"},
            ],
            "section": {
                "type": "Study",
                "attributes": [
                    {"name": "Title", "value": title},
                    {"name": "Organism", "value": "Homo sapiens"},
                ],
                "links": [[{"url": "E-GEOD-1", "attributes": [{"name": "Type", "value": "Other"}]}]],
            },
        }
    )


def test_biostudies_backend_first(survey_client):
    acc = "E-MTAB-3050"
    base = "https://ftp.ebi.ac.uk/biostudies/fire/E-MTAB-/050/E-MTAB-3050"
    idf = survey_client.get(AE_FILES + f"{acc}/{acc}.idf.txt").content
    sdrf = survey_client.get(AE_FILES + f"{acc}/{acc}.sdrf.txt").content
    client = OverridingClient(
        ReplayHttpClient(),
        {
            BIOSTUDIES + acc: (200, _study_json(acc, "study title")),
            BIOSTUDIES + acc + "/info": (200, json.dumps({"httpLink": base, "modified": 1627430400000})),
            f"{base}/Files/{acc}.idf.txt": (200, idf),
            f"{base}/Files/{acc}.sdrf.txt": (200, sdrf),
        },
    )
    result = survey_arrayexpress(acc, client)
    assert result.experiment_attributes["survey_backend"] == [BACKEND_BIOSTUDIES]
    assert client.requests[0] == BIOSTUDIES + acc and not any("/json/v3/" in u for u in client.requests)
    exp = result.experiment
    assert exp.title.startswith("Microarray analysis of in vitro")  # IDF wins over the JSON title
    assert (exp.source_first_published, exp.source_last_modified) == ("2014-10-31", "2021-07-28")
    assert exp.source_url == BIOSTUDIES + acc
    assert len(result.samples) == 5 and result.samples[0].accession == "E-MTAB-3050-1007409-C30057"
    cel = next(f for f in result.original_files if f.filename == "C30057.CEL")
    assert (cel.source_url, cel.is_archive) == (f"{base}/Files/C30057.CEL", False)
    # IDF additional files get a URL on the BioStudies mirror
    dat = [f.source_url for f in result.original_files if f.sample_accession is None]
    assert dat[0] == f"{base}/Files/C30057.DAT" and len(dat) == 5
    assert not any(a.source == "ae_json" for a in result.attributes)  # BioStudies has no JSON samples


def test_biostudies_files_path_derived_without_http_link():
    assert (
        _biostudies_files_base("E-MTAB-3050")
        == "https://ftp.ebi.ac.uk/biostudies/fire/E-MTAB-/050/E-MTAB-3050/Files/"
    )
    assert (
        _biostudies_files_base("E-MEXP-31")
        == "https://ftp.ebi.ac.uk/biostudies/fire/E-MEXP-/031/E-MEXP-31/Files/"
    )


def test_biostudies_error_falls_back_to_legacy(survey_client):
    client = OverridingClient(survey_client, {BIOSTUDIES + "E-GEOD-44719": (500, "internal error")})
    result = survey_arrayexpress("E-GEOD-44719", client)
    assert result.experiment_attributes["survey_backend"] == [BACKEND_LEGACY]
    assert client.requests[:2] == [BIOSTUDIES + "E-GEOD-44719", LEGACY + "E-GEOD-44719"]


# ------------------------------------------------------------------------------- bad inputs


def test_unknown_experiment_404():
    client = ReplayHttpClient()
    client.add_response("GET", BIOSTUDIES + "E-MTAB-99999999", 404, '{"errorMessage":"Study not found"}')
    client.add_response("GET", LEGACY + "E-MTAB-99999999", 404, "Not Found")
    with pytest.raises(SurveyError, match=r"^E-MTAB-99999999: unknown experiment \(HTTP 404\)") as info:
        survey_arrayexpress("E-MTAB-99999999", client)
    assert info.value.accession == "E-MTAB-99999999"


def test_nothing_recorded_is_a_survey_error():
    with pytest.raises(SurveyError, match=r"could not be fetched.*no recorded response"):
        survey_arrayexpress("E-MTAB-1", ReplayHttpClient())


def test_legacy_api_lists_no_experiment():
    client = ReplayHttpClient()
    client.add_response("GET", LEGACY + "E-MTAB-2", 200, '{"experiments":{"total":0,"experiment":[]}}')
    with pytest.raises(SurveyError, match="lists no experiment E-MTAB-2"):
        survey_arrayexpress("E-MTAB-2", client)


@pytest.mark.parametrize("accession", ["GSE1234", "E-MTAB", "e-mtab-3050", ""])
def test_malformed_accession(accession):
    with pytest.raises(SurveyError, match="not an ArrayExpress accession"):
        survey_arrayexpress(accession, ReplayHttpClient())


@pytest.mark.parametrize(
    ("sdrf", "message"),
    [
        ("", "E-MTAB-3050.sdrf.txt: empty SDRF"),
        ("<html><head><title>Error</title></head></html>\n", "no 'Source Name' or 'Sample Name' column"),
        ("Source Name\tAssay Name\tArray Design REF\ndonor\tC1\n", "line 2 has 2 cells but the header has 3"),
        ("Extract Name\tAssay Name\nx\ty\n", "no 'Source Name' or 'Sample Name' column"),
    ],
)
def test_bad_sdrf_is_a_survey_error(survey_client, sdrf, message):
    client = OverridingClient(survey_client, {AE_FILES + "E-MTAB-3050/E-MTAB-3050.sdrf.txt": (200, sdrf)})
    with pytest.raises(SurveyError, match=r"^E-MTAB-3050: .*" + message):
        survey_arrayexpress("E-MTAB-3050", client)


def test_garbled_json_is_a_survey_error(survey_client):
    client = OverridingClient(survey_client, {LEGACY + "E-MTAB-3050/samples": (200, "{not json")})
    with pytest.raises(SurveyError, match=r"/samples: answer is not JSON"):
        survey_arrayexpress("E-MTAB-3050", client)


# ------------------------------------------------------------------ one-colour and RNA-seq rules


def test_one_colour_label_makes_raw_data_processed(survey_client):
    sdrf = survey_client.get(AE_FILES + "E-MTAB-3050/E-MTAB-3050.sdrf.txt").text.replace(
        "\tbiotin\t", "\tCy3\t"
    )
    client = OverridingClient(survey_client, {AE_FILES + "E-MTAB-3050/E-MTAB-3050.sdrf.txt": (200, sdrf)})
    result = survey_arrayexpress("E-MTAB-3050", client)
    s = result.samples[0]
    assert not s.has_raw and s.pipeline == "NO_OP"
    assert ("raw_data_ignored", "one-colour array (Cy3 without Cy5): treated as processed") in attrs_of(
        result, s.accession, "ae_derived"
    )
    # the CEL file is still listed, as raw data
    assert [f.filename for f in result.original_files if f.sample_accession == s.accession and f.is_raw] == [
        "C30057.CEL"
    ]


def _sdrf_from_ae_json(samples: list[dict]) -> str:
    """An SDRF with the columns ArrayExpress writes for RNA-seq, filled from the real JSON samples."""
    header = [
        "Source Name",
        "Comment[ENA_SAMPLE]",
        "Comment[BioSD_SAMPLE]",
        "Characteristics[organism]",
        "Characteristics[disease]",
        "Extract Name",
        "Comment[LIBRARY_LAYOUT]",
        "Comment[LIBRARY_STRATEGY]",
        "Comment[LIBRARY_SOURCE]",
        "Assay Name",
        "Technology Type",
        "Comment[ENA_EXPERIMENT]",
        "Scan Name",
        "Comment[SUBMITTED_FILE_NAME]",
        "Comment[ENA_RUN]",
        "Comment[FASTQ_URI]",
        "Derived Array Data File",
        "Comment [Derived ArrayExpress FTP file]",
    ]
    lines = ["\t".join(header)]
    for s in samples:
        src = {c["name"]: c["value"] for c in s["source"]["comment"]}
        ext = {c["name"]: c["value"] for c in s["extract"]["comment"]}
        scan = {c["name"]: c["value"] for c in s["scan"]["comment"]}
        char = {c["category"]: c["value"] for c in s["characteristic"]}
        derived = s["file"][0]
        row = [
            s["source"]["name"],
            src["ENA_SAMPLE"],
            src["BioSD_SAMPLE"],
            char["organism"],
            char["disease"],
            s["extract"]["name"],
            ext["LIBRARY_LAYOUT"],
            ext["LIBRARY_STRATEGY"],
            ext["LIBRARY_SOURCE"],
            s["assay"]["name"],
            "sequencing assay",
            s["assay"]["comment"]["value"],
            s["scan"]["name"],
            scan["SUBMITTED_FILE_NAME"],
            scan["ENA_RUN"],
            scan["FASTQ_URI"],
            derived["name"],
            derived["comment"]["value"],
        ]
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def test_rnaseq_experiment_from_sdrf_and_json(accession_listings):
    acc = "E-MTAB-6739"
    samples = accession_listings.get(LEGACY + acc + "/samples").json()["experiment"]["sample"]
    record = ArrayExpressRecord(
        accession=acc,
        backend=BACKEND_LEGACY,
        idf=parse_idf(
            "Investigation Title\tRNA-seq of PBMC\nComment[AEExperimentType]\tRNA-seq of coding RNA\n"
        ),
        sdrf=parse_sdrf(_sdrf_from_ae_json(samples), f"{acc}.sdrf.txt"),
        idf_url="idf",
        sdrf_url="sdrf",
        source_url=LEGACY + acc,
        sample_json=samples,
    )
    result = build_survey_result(record, ReplayHttpClient())
    assert result.experiment.technology == "RNA-SEQ"
    assert result.experiment_attributes["ena_runs"] == [f"ERR256138{i}" for i in range(6)]
    s = result.samples[0]
    assert s.accession == "E-MTAB-6739-Sample 1"
    assert (s.technology, s.library_layout, s.library_strategy, s.library_source) == (
        "RNA-SEQ",
        "SINGLE",
        "RNA-Seq",
        "TRANSCRIPTOMIC",
    )
    assert s.has_raw and s.channel_count is None
    # no instrument model in the record: the sequencer is unknown, so nothing will process it
    assert (s.platform_accession, s.pipeline) == ("UNKNOWN", "NONE")
    derived = attrs_of(result, s.accession, "ae_derived")
    assert ("ena_run", "ERR2561380") in derived and ("biosample", "SAMEA4644695") in derived
    assert ("ena_experiment", "ERX2579724") in derived and ("ena_sample", "ERS2465342") in derived
    fastq = [
        (f.filename, f.source_url)
        for f in result.original_files
        if f.sample_accession == s.accession and f.is_raw
    ]
    assert fastq == [
        (
            "ERR2561380.fastq.gz",
            "ftp://ftp.sra.ebi.ac.uk/vol1/fastq/ERR256/000/ERR2561380/ERR2561380.fastq.gz",
        )
    ]
    js = attrs_of(result, s.accession, "ae_json")
    assert ("characteristic[clinical history]", "remission upon azathioprine treatment") in js
    assert ("variable[dose]", "175") in js and ("variable[dose] unit", "milligram") in js
    assert ("source.comment[drug name]", "azathioprine") in js
    assert result.warnings == []


def test_flatten_ae_json_sample_keeps_comment_lists(accession_listings):
    sample = accession_listings.get(LEGACY + "E-MTAB-6739/samples").json()["experiment"]["sample"][0]
    flat = flatten_ae_json_sample(sample)
    assert ("extract.comment[LIBRARY_SELECTION]", "Oligo-dT") in flat
    assert ("scan.comment[ENA_RUN]", "ERR2561380") in flat
    assert ("assay.comment[ENA_EXPERIMENT]", "ERX2579724") in flat
    assert ("characteristic[individual]", "1") in flat
