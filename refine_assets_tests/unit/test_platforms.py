"""Tests of the platform tables and the platform / technology / pipeline decisions."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from refine_assets.lib.http import ReplayHttpClient
from refine_assets.lib.survey import platforms as p
from refine_assets.lib.survey.model import MANUFACTURERS, PIPELINES, Organism, Platform, SurveyError

# ------------------------------------------------------------------------------------------------
# Tables are well formed
# ------------------------------------------------------------------------------------------------


def test_supported_platforms_rows_are_well_formed() -> None:
    rows = p.supported_platforms()
    assert len(rows) > 600
    organism_names = {o.name for o in p.organisms()}
    seen: set[str] = set()
    for row in rows:
        assert re.fullmatch(r"GPL\d+", row.source_accession), row
        for ae in row.ae_accessions:
            assert re.fullmatch(r"A-[A-Z]{4}-\d+", ae), row
            assert not ae.startswith("A-GEOD-"), f"{ae} is resolved by rule and must not be listed"
        for accession in (row.source_accession, *row.ae_accessions):
            assert accession not in seen, f"{accession} listed twice"
            seen.add(accession)
        assert row.manufacturer in ("AFFYMETRIX", "ILLUMINA"), row
        assert row.manufacturer in MANUFACTURERS
        assert row.internal_code and row.title, row
        if row.organism is not None:
            assert row.organism in organism_names, row
        if row.manufacturer == "AFFYMETRIX":
            assert re.fullmatch(r"[a-z0-9]+", row.internal_code), row
            if row.chip_type:
                assert p.brainarray_package_code(row.chip_type) == row.internal_code, row
        else:
            assert re.fullmatch(r"illumina(Human|Mouse|Rat)v\d(p1)?", row.internal_code), row
            assert row.brainarray is False
    # Only the three chips refine.bio lists for several species have no organism.
    no_organism = {row.internal_code for row in rows if row.organism is None}
    assert no_organism == {"citrus", "plasmodiumanopheles", "poplar"}


def test_one_chip_has_one_code_organism_and_brainarray_flag() -> None:
    by_code: dict[str, set[tuple]] = {}
    for row in p.supported_platforms():
        by_code.setdefault(row.internal_code, set()).add((row.manufacturer, row.brainarray))
    for code, values in by_code.items():
        assert len(values) == 1, code
    affy_codes = {r.internal_code for r in p.supported_platforms() if r.manufacturer == "AFFYMETRIX"}
    # refine.bio's 124 readable Affymetrix chips less hthgu133b (its GPLs are claimed by hgu133b too)
    # and primeview_spikeins (not a chip code).
    assert len(affy_codes) == 122
    brainarray_codes = {r.internal_code for r in p.supported_platforms() if r.brainarray}
    assert {"hgu133plus2", "hugene10st", "huex10st", "mouse4302", "rat2302", "zebrafish"} <= brainarray_codes
    assert "ath1121501" not in brainarray_codes  # Brainarray has no ENSG CDF for Arabidopsis


def test_required_chips_are_covered() -> None:
    codes = {r.internal_code for r in p.supported_platforms()}
    required = {
        # Affymetrix 3'IVT: human, mouse, rat, zebrafish
        "hgu133plus2", "hgu133a", "hgu133a2", "hgu133b", "hgu95av2", "hgu95a", "mouse4302", "mouse430a2",
        "moe430a", "mgu74av2", "rat2302", "rae230a", "rgu34a", "zebrafish",
        # Affymetrix Gene / Exon ST
        "hugene10st", "hugene11st", "hugene20st", "hugene21st", "huex10st", "mogene10st", "mogene20st",
        "ragene10st", "ragene20st", "zebgene10st", "zebgene11st",
        # Illumina BeadChips
        "illuminaHumanv1", "illuminaHumanv2", "illuminaHumanv3", "illuminaHumanv4",
        "illuminaMousev1", "illuminaMousev1p1", "illuminaMousev2", "illuminaRatv1",
    }  # fmt: skip
    assert required <= codes


def test_rnaseq_models_are_well_formed() -> None:
    models = p.supported_rnaseq_models()
    names = [m.model for m in models]
    assert len(names) == len(set(names)) == 25
    assert {m.manufacturer for m in models} == {"ILLUMINA", "ION_TORRENT"}
    keys = [p._model_key(m.model) for m in models]
    assert len(keys) == len(set(keys)), "two models normalise to the same key"
    for expected in (
        "Illumina HiSeq 2500",
        "NextSeq 500",
        "Illumina NovaSeq 6000",
        "Ion Torrent PGM",
        "HiSeq X Ten",
    ):
        assert expected in names


def test_organisms_table_and_helpers() -> None:
    organisms = p.organisms()
    assert len(organisms) >= 30
    assert len({o.name for o in organisms}) == len(organisms)
    assert len({o.taxonomy_id for o in organisms}) == len(organisms)
    for o in organisms:
        assert o.name == "_".join(o.scientific_name.upper().split())
    assert p.organism_by_name("HOMO_SAPIENS") == Organism("HOMO_SAPIENS", 9606, "Homo sapiens")
    assert p.organism_by_name(" mus  musculus ") == Organism("MUS_MUSCULUS", 10090, "Mus musculus")
    assert p.organism_by_taxid(10116) == Organism("RATTUS_NORVEGICUS", 10116, "Rattus norvegicus")
    assert p.organism_by_taxid("7955").name == "DANIO_RERIO"
    assert p.organism_by_taxid(7227).name == "DROSOPHILA_MELANOGASTER"
    assert p.organism_by_taxid(6239).name == "CAENORHABDITIS_ELEGANS"
    assert p.organism_by_taxid(4932).name == "SACCHAROMYCES_CEREVISIAE"
    assert p.organism_by_taxid(3702).name == "ARABIDOPSIS_THALIANA"
    assert p.organism_by_name("Homo neanderthalensis") is None
    assert p.organism_by_name("") is None
    assert p.organism_by_taxid(1) is None
    assert p.organism_by_taxid("not-a-number") is None
    # The cached table is not handed out: mutating a result does not change later lookups.
    p.organism_by_name("HOMO_SAPIENS").taxonomy_id = -1
    assert p.organism_by_name("HOMO_SAPIENS").taxonomy_id == 9606


# ------------------------------------------------------------------------------------------------
# lookup_platform
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accession", "code", "manufacturer", "organism", "brainarray"),
    [
        ("GPL96", "hgu133a", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("GPL97", "hgu133b", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("GPL570", "hgu133plus2", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("GPL8300", "hgu95av2", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("GPL1261", "mouse4302", "AFFYMETRIX", "MUS_MUSCULUS", True),
        ("GPL1355", "rat2302", "AFFYMETRIX", "RATTUS_NORVEGICUS", True),
        ("GPL1319", "zebrafish", "AFFYMETRIX", "DANIO_RERIO", True),
        ("GPL6244", "hugene10st", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("GPL5175", "huex10st", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("GPL6246", "mogene10st", "AFFYMETRIX", "MUS_MUSCULUS", True),
        ("GPL198", "ath1121501", "AFFYMETRIX", "ARABIDOPSIS_THALIANA", False),
        ("GPL6947", "illuminaHumanv3", "ILLUMINA", "HOMO_SAPIENS", False),
        ("GPL6883", "illuminaHumanv3", "ILLUMINA", "HOMO_SAPIENS", False),
        ("GPL6884", "illuminaHumanv3", "ILLUMINA", "HOMO_SAPIENS", False),
        ("GPL10558", "illuminaHumanv4", "ILLUMINA", "HOMO_SAPIENS", False),
        ("GPL6887", "illuminaMousev2", "ILLUMINA", "MUS_MUSCULUS", False),
        ("GPL6105", "illuminaMousev1p1", "ILLUMINA", "MUS_MUSCULUS", False),
        ("GPL6101", "illuminaRatv1", "ILLUMINA", "RATTUS_NORVEGICUS", False),
        ("A-AFFY-44", "hgu133plus2", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("A-AFFY-33", "hgu133a", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("A-GEOD-570", "hgu133plus2", "AFFYMETRIX", "HOMO_SAPIENS", True),
        ("A-GEOD-10558", "illuminaHumanv4", "ILLUMINA", "HOMO_SAPIENS", False),
    ],
)
def test_lookup_known_platforms(
    accession: str, code: str, manufacturer: str, organism: str, brainarray: bool
) -> None:
    source = "ARRAY_EXPRESS" if accession.startswith("A-") else "GEO"
    platform = p.lookup_platform(accession, source)
    assert platform == Platform(
        accession=accession,
        source_database=source,
        title=platform.title,
        organism=organism,
        internal_code=code,
        manufacturer=manufacturer,
        technology="MICROARRAY",
        brainarray=brainarray,
        supported=True,
    )
    assert platform.title


def test_lookup_normalises_accession_and_keeps_given_title() -> None:
    platform = p.lookup_platform(" gpl570 ", "GEO", title="my title", organism="Homo sapiens")
    assert (platform.accession, platform.title, platform.internal_code) == (
        "GPL570",
        "my title",
        "hgu133plus2",
    )
    assert (
        p.lookup_platform("GPL570", "GEO").title
        == "[HG-U133_Plus_2] Affymetrix Human Genome U133 Plus 2.0 Array"
    )
    # Multi-species chip: organism comes from the caller.
    assert p.lookup_platform("GPL5731", "GEO", organism="Citrus sinensis").organism == "CITRUS_SINENSIS"


def test_lookup_geo_titles_from_real_soft_file(shared_data: Path) -> None:
    """GSE781's family SOFT declares GPL96 and GPL97 with their real GEO titles."""
    titles: dict[str, str] = {}
    current = None
    with gzip.open(shared_data / "geo/geoquery/GSE781_family.soft.gz", "rt", encoding="utf-8") as fh:
        for line in fh:  # both platforms come before the samples; stop once both titles are read
            if line.startswith("^PLATFORM = "):
                current = line.split("=", 1)[1].strip()
            elif line.startswith("!Platform_title = ") and current:
                titles[current] = line.split("=", 1)[1].strip()
            elif line.startswith("^SAMPLE"):
                break
    assert titles == {
        "GPL96": "[HG-U133A] Affymetrix Human Genome U133A Array",
        "GPL97": "[HG-U133B] Affymetrix Human Genome U133B Array",
    }
    for accession, title in titles.items():
        platform = p.lookup_platform(accession, "GEO", title=title, organism="Homo sapiens")
        assert platform.supported and platform.title == title
        assert platform.title == p.lookup_platform(accession, "GEO").title  # table title is GEO's


def test_lookup_unknown_agilent_platform_from_real_record(shared_data: Path) -> None:
    text = (shared_data / "geo/geoparse/GPL4133.txt").read_text(encoding="utf-8")
    title = re.search(r"^!Platform_title = (.*)$", text, re.M).group(1)
    assert title.startswith("Agilent-014850 Whole Human Genome Microarray 4x44K")
    platform = p.lookup_platform("GPL4133", "GEO", title=title, organism="Homo sapiens")
    assert platform == Platform(
        accession="GPL4133",
        source_database="GEO",
        title=title,
        organism="HOMO_SAPIENS",
        internal_code=None,
        manufacturer="AGILENT",
        technology="MICROARRAY",
        brainarray=False,
        supported=False,
    )


@pytest.mark.parametrize(
    ("accession", "title", "manufacturer", "technology"),
    [
        ("GPL16791", None, "UNKNOWN", "UNKNOWN"),
        (
            "GPL13534",
            "Illumina HumanMethylation450 BeadChip (HumanMethylation450_15017482)",
            "ILLUMINA",
            "MICROARRAY",
        ),
        ("GPL2986", "ABI Human Genome Survey Microarray Version 2", "UNKNOWN", "UNKNOWN"),
        ("GPL4866_X", "[HG-Focus] Affymetrix Human HG-Focus Target Array", "AFFYMETRIX", "MICROARRAY"),
        ("A-AFFY-99999", None, "AFFYMETRIX", "MICROARRAY"),
        ("A-AGIL-28", None, "AGILENT", "MICROARRAY"),
    ],
)
def test_lookup_unknown_microarrays(
    accession: str, title: str | None, manufacturer: str, technology: str
) -> None:
    platform = p.lookup_platform(accession, "GEO", title=title)
    assert (platform.manufacturer, platform.technology) == (manufacturer, technology)
    assert platform.supported is False and platform.internal_code is None and platform.brainarray is False


def test_lookup_geo_sequencing_platforms_from_real_records(shared_data: Path, cassettes: Path) -> None:
    # GPL13112 from GSE105845's family SOFT file.
    soft = (shared_data / "geo/geoparse/GSE105845_family.soft").read_text(encoding="utf-8")
    title = re.search(r"^!Platform_title = (.*)$", soft, re.M).group(1)
    assert title == "Illumina HiSeq 2000 (Mus musculus)"
    platform = p.lookup_platform("GPL13112", "GEO", title=title)
    assert platform == Platform(
        accession="GPL13112",
        source_database="GEO",
        title=title,
        organism="MUS_MUSCULUS",
        internal_code="IlluminaHiSeq2000",
        manufacturer="ILLUMINA",
        technology="RNA-SEQ",
        brainarray=False,
        supported=True,
    )
    # GPL9115 and GPL17021 as GEO served them (recorded acc.cgi responses).
    client = ReplayHttpClient(
        [
            cassettes / "surveyor.geo.geo_survey_rnaseq.yaml.gz",
            cassettes / "surveyor.geo.geo_survey_superseries.yaml.gz",
        ]
    )
    expected = {"GPL9115": "IlluminaGenomeAnalyzerII", "GPL17021": "IlluminaHiSeq2500"}
    for accession, code in expected.items():
        params = {"targ": "self", "acc": accession, "form": "text", "view": "full"}
        text = client.get("https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi", params).text
        title = re.search(r"^!Platform_title = (.*)$", text, re.M).group(1)
        organism = re.search(r"^!Platform_organism = (.*)$", text, re.M).group(1)
        platform = p.lookup_platform(accession, "GEO", title=title, organism=organism)
        assert (platform.technology, platform.manufacturer, platform.internal_code, platform.supported) == (
            "RNA-SEQ",
            "ILLUMINA",
            code,
            True,
        )
    assert (
        p.lookup_platform("GPL9115", "GEO", "Illumina Genome Analyzer II (Homo sapiens)").organism
        == "HOMO_SAPIENS"
    )


@pytest.mark.parametrize(
    ("title", "code", "manufacturer"),
    [
        ("Illumina Genome Analyzer IIx (Glycine max)", "IlluminaGenomeAnalyzerIIx", "ILLUMINA"),
        ("Illumina Genome Analyzer (Homo sapiens)", "IlluminaGenomeAnalyzer", "ILLUMINA"),
        ("Illumina NextSeq 500 (Homo sapiens)", "NextSeq500", "ILLUMINA"),
        ("HiSeq X Ten (Homo sapiens)", "HiSeqXTen", "ILLUMINA"),
        ("Illumina HiSeq X Ten (Homo sapiens)", "HiSeqXTen", "ILLUMINA"),
        ("Illumina NovaSeq 6000 (Mus musculus)", "IlluminaNovaSeq6000", "ILLUMINA"),
        ("Ion Torrent S5 XL (Homo sapiens)", "IonTorrentS5XL", "ION_TORRENT"),
        ("Ion Torrent Proton (Homo sapiens)", "IonTorrentProton", "ION_TORRENT"),
        ("Illumina HiSeq 2500 (Homo sapiens; Mus musculus)", "IlluminaHiSeq2500", "ILLUMINA"),
    ],
)
def test_lookup_sequencing_titles(title: str, code: str, manufacturer: str) -> None:
    platform = p.lookup_platform("GPL1", "GEO", title=title)
    assert (platform.technology, platform.internal_code, platform.manufacturer, platform.supported) == (
        "RNA-SEQ",
        code,
        manufacturer,
        True,
    )


@pytest.mark.parametrize(
    ("title", "manufacturer"),
    [
        ("PacBio Sequel II (Homo sapiens)", "UNKNOWN"),
        ("Oxford Nanopore MinION (Homo sapiens)", "UNKNOWN"),
        ("BGISEQ-500 (Homo sapiens)", "UNKNOWN"),
        ("Illumina MiniSeq (Homo sapiens)", "ILLUMINA"),
        ("Ion GeneStudio S5 Prime (Homo sapiens)", "ION_TORRENT"),
    ],
)
def test_lookup_unsupported_sequencers(title: str, manufacturer: str) -> None:
    platform = p.lookup_platform("GPL2", "GEO", title=title)
    assert (platform.technology, platform.manufacturer, platform.supported, platform.internal_code) == (
        "RNA-SEQ",
        manufacturer,
        False,
        None,
    )


def test_lookup_finds_listed_model_inside_free_text_title() -> None:
    platform = p.lookup_platform(
        "GPL3", "GEO", title="RNA-seq on an Illumina HiSeq 2000 sequencer, custom protocol"
    )
    assert (platform.technology, platform.internal_code, platform.supported) == (
        "RNA-SEQ",
        "IlluminaHiSeq2000",
        True,
    )
    # Word boundaries: "HiSeq 20000" is not "HiSeq 2000".
    assert p.lookup_platform("GPL4", "GEO", title="Illumina HiSeq 20000 (Homo sapiens)").supported is False


def test_lookup_rejects_empty_accession() -> None:
    with pytest.raises(SurveyError, match="empty platform accession"):
        p.lookup_platform("  ", "GEO")


def test_array_designs_of_real_arrayexpress_experiments(cassettes: Path) -> None:
    client = ReplayHttpClient(
        [
            cassettes / "surveyor.array_express.survey.yaml.gz",
            cassettes / "surveyor.array_express.survey_with_protocol_list.yaml.gz",
        ]
    )
    expected = {
        "E-MTAB-3050": ("A-AFFY-1", "hgu95av2", "HOMO_SAPIENS"),
        "E-GEOD-44719": ("A-MEXP-1171", "illuminaHumanv3", "HOMO_SAPIENS"),
        "E-MEXP-2381": ("A-AFFY-38", "zebrafish", "DANIO_RERIO"),
    }
    for experiment, (design, code, organism) in expected.items():
        doc = client.get(f"https://www.ebi.ac.uk/arrayexpress/json/v3/experiments/{experiment}").json()
        records = doc["experiments"]["experiment"]
        designs = (records[0] if isinstance(records, list) else records)["arraydesign"]
        assert [d["accession"] for d in designs] == [design]
        platform = p.lookup_platform(design, "ARRAY_EXPRESS", title=designs[0]["name"])
        assert (platform.internal_code, platform.organism, platform.supported) == (code, organism, True)


# ------------------------------------------------------------------------------------------------
# sequencing_platform
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "platform_name", "accession", "code", "manufacturer", "supported"),
    [
        ("Illumina HiSeq 2500", "ILLUMINA", "IlluminaHiSeq2500", "IlluminaHiSeq2500", "ILLUMINA", True),
        ("NextSeq 500", "ILLUMINA", "NextSeq500", "NextSeq500", "ILLUMINA", True),
        ("Illumina NextSeq 500", "ILLUMINA", "IlluminaNextSeq500", "NextSeq500", "ILLUMINA", True),
        ("HiSeq X Ten", "ILLUMINA", "HiSeqXTen", "HiSeqXTen", "ILLUMINA", True),
        ("Illumina NovaSeq 6000", "illumina", "IlluminaNovaSeq6000", "IlluminaNovaSeq6000", "ILLUMINA", True),
        ("Ion Torrent Proton", "ION_TORRENT", "IonTorrentProton", "IonTorrentProton", "ION_TORRENT", True),
        ("Ion Torrent PGM", "ION_TORRENT", "IonTorrentPGM", "IonTorrentPGM", "ION_TORRENT", True),
        ("Illumina iSeq 100", "ILLUMINA", "IlluminaiSeq100", None, "ILLUMINA", False),
        ("Illumina HiSeq", "ILLUMINA", "IlluminaHiSeq", None, "ILLUMINA", False),
        ("Sequel II", "PACBIO_SMRT", "SequelII", None, "UNKNOWN", False),
        ("MinION", "OXFORD_NANOPORE", "MinION", None, "UNKNOWN", False),
        ("454 GS FLX Titanium", "LS454", "454GSFLXTitanium", None, "UNKNOWN", False),
        # A listed Illumina model claimed by another instrument platform is not trusted.
        ("Illumina HiSeq 2000", "ION_TORRENT", "IlluminaHiSeq2000", None, "ION_TORRENT", False),
        ("Illumina HiSeq 2000", None, "IlluminaHiSeq2000", None, "UNKNOWN", False),
        (None, "ILLUMINA", "ILLUMINA", None, "ILLUMINA", False),
        (None, None, "UNKNOWN", None, "UNKNOWN", False),
    ],
)
def test_sequencing_platform(
    model: str | None,
    platform_name: str | None,
    accession: str,
    code: str | None,
    manufacturer: str,
    supported: bool,
) -> None:
    assert p.sequencing_platform(model, platform_name) == Platform(
        accession=accession,
        source_database="SRA",
        title=model,
        organism=None,
        internal_code=code,
        manufacturer=manufacturer,
        technology="RNA-SEQ",
        brainarray=False,
        supported=supported,
    )


def test_sequencing_platform_of_real_ena_run(cassettes: Path) -> None:
    client = ReplayHttpClient([cassettes / "surveyor.sra.metadata_is_gathered_correctly.yaml.gz"])
    params = {"result": "read_run", "fields": "all", "includeAccessions": "DRR002116", "format": "json"}
    (run,) = client.get("https://www.ebi.ac.uk/ena/portal/api/search", params).json()
    assert (run["instrument_model"], run["instrument_platform"]) == ("Illumina HiSeq 2000", "ILLUMINA")
    platform = p.sequencing_platform(run["instrument_model"], run["instrument_platform"])
    assert (platform.accession, platform.internal_code, platform.supported) == (
        "IlluminaHiSeq2000",
        "IlluminaHiSeq2000",
        True,
    )
    assert p.organism_by_taxid(run["tax_id"]) == Organism("GALLUS_GALLUS", 9031, "Gallus gallus")


# ------------------------------------------------------------------------------------------------
# chip types
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chip_type", "code", "brainarray_code"),
    [
        ("HG_U95Av2", "hgu95av2", "hgu95av2"),
        ("HG_U95A", "hgu95a", "hgu95a"),
        ("HG-U133_Plus_2", "hgu133plus2", "hgu133plus2"),
        ("HG-U133A_2", "hgu133a2", "hgu133a2"),
        ("Mouse430_2", "mouse4302", "mouse4302"),
        ("RG_U34A", "rgu34a", "rgu34a"),
        ("MG_U74Av2", "mgu74av2", "mgu74av2"),
        ("HuGene-1_0-st-v1", "hugene10stv1", "hugene10st"),
        ("HuEx-1_0-st-v2", "huex10stv2", "huex10st"),
        ("MoGene-2_0-st", "mogene20st", "mogene20st"),
        ("HTA-2_0", "hta20", "hta20"),
        ("HG_U95Av2.1sq", "hgu95av2", "hgu95av2"),
    ],
)
def test_chip_type_codes(chip_type: str, code: str, brainarray_code: str) -> None:
    assert p.platform_code_from_chip_type(chip_type) == code
    assert p.brainarray_package_code(chip_type) == brainarray_code


def test_chip_type_rule_never_merges_u95a_and_u95av2() -> None:
    assert p.platform_code_from_chip_type("HG_U95A") != p.platform_code_from_chip_type("HG_U95Av2")
    assert p.brainarray_package_code("HG_U95A") != p.brainarray_package_code("HG_U95Av2")
    assert p.internal_code_for_chip_type("HG_U95A") == "hgu95a"
    assert p.internal_code_for_chip_type("HG_U95Av2") == "hgu95av2"


def test_internal_code_for_chip_type() -> None:
    assert p.internal_code_for_chip_type("HuGene-1_0-st-v1") == "hugene10st"
    assert p.internal_code_for_chip_type("HG-U133_Plus_2") == "hgu133plus2"
    assert p.internal_code_for_chip_type("Hu6800") is None  # HuGeneFL is not supported
    with pytest.raises(ValueError):
        p.platform_code_from_chip_type("--")


def test_chip_type_of_real_cel_file(shared_data: Path) -> None:
    """The text CEL C30057 declares its chip in the DatHeader (``HG_U95Av2.1sq``)."""
    with gzip.open(shared_data / "microarray/C30057.CEL.gz", "rt", encoding="latin-1") as fh:
        header = "".join(next(fh) for _ in range(20))
    chip = re.search(r"\s(\S+\.1sq)\s", header).group(1)
    assert chip == "HG_U95Av2.1sq"
    assert p.internal_code_for_chip_type(chip) == "hgu95av2"
    assert p.lookup_platform("A-AFFY-1", "ARRAY_EXPRESS").internal_code == "hgu95av2"


# ------------------------------------------------------------------------------------------------
# choose_pipeline
# ------------------------------------------------------------------------------------------------


def _pipe(
    technology: str = "MICROARRAY",
    manufacturer: str = "AFFYMETRIX",
    supported: bool = True,
    has_raw: bool = True,
    filenames: tuple[str, ...] = (),
) -> str:
    result = p.choose_pipeline(
        technology=technology,
        manufacturer=manufacturer,
        supported=supported,
        has_raw=has_raw,
        filenames=list(filenames),
    )
    assert result in PIPELINES
    return result


def test_choose_pipeline_cel_files() -> None:
    assert _pipe(filenames=("GSM1426071_CD_colon_active_1.CEL.gz",)) == "AFFY_TO_PCL"
    assert _pipe(filenames=("ftp://ftp.ebi.ac.uk/x/C30057.cel",)) == "AFFY_TO_PCL"
    # The CEL header decides the platform: an unknown declared platform still goes to SCAN.
    assert (
        _pipe(manufacturer="UNKNOWN", technology="UNKNOWN", supported=False, filenames=("a.CEL",))
        == "AFFY_TO_PCL"
    )


def test_choose_pipeline_unsupported_is_none() -> None:
    assert _pipe(manufacturer="AGILENT", supported=False, filenames=("GSM1.txt",)) == "NONE"
    assert _pipe(manufacturer="AGILENT", supported=False, has_raw=False) == "NONE"
    assert (
        _pipe(technology="RNA-SEQ", manufacturer="UNKNOWN", supported=False, filenames=("SRR123456",))
        == "NONE"
    )


def test_choose_pipeline_salmon() -> None:
    illumina_seq = {"technology": "RNA-SEQ", "manufacturer": "ILLUMINA"}
    sra_url = "https://sra-pub-run-odp.s3.amazonaws.com/sra/SRR3098579/SRR3098579"
    assert _pipe(**illumina_seq, filenames=(sra_url,)) == "SALMON"
    assert _pipe(**illumina_seq, filenames=("ERR1234567_1.fastq.gz", "ERR1234567_2.fastq.gz")) == "SALMON"
    assert _pipe(**illumina_seq, filenames=("DRR002116.sra",)) == "SALMON"
    assert _pipe(**illumina_seq, filenames=("reads.fq",)) == "SALMON"
    assert _pipe(**illumina_seq) == "SALMON"  # raw data, files not known yet
    # Submitter-processed RNA-seq (a GEO series' count table) is not processed.
    assert _pipe(**illumina_seq, has_raw=False, filenames=("GSE1_counts.txt.gz",)) == "NONE"
    # A "sra" substring is not a read file (refine.bio's check is a bare substring test).
    assert _pipe(has_raw=False, filenames=("GSE1_sra_runinfo.txt",)) == "NO_OP"


def test_choose_pipeline_no_op() -> None:
    assert _pipe(has_raw=False, filenames=("GSM11805-tbl-1.txt",)) == "NO_OP"
    assert _pipe(manufacturer="ILLUMINA", has_raw=False) == "NO_OP"
    assert _pipe(filenames=("E-MTAB-3050.processed.1.zip",)) == "NO_OP"
    # Supported Affymetrix with raw data declared but only text files.
    assert _pipe(filenames=("GSM1_raw.txt",)) == "NO_OP"


def test_choose_pipeline_illumina_and_affymetrix_raw() -> None:
    assert _pipe(manufacturer="ILLUMINA", filenames=("GSE22427_non-normalized.txt.gz",)) == "ILLUMINA_TO_PCL"
    assert _pipe(manufacturer="ILLUMINA") == "ILLUMINA_TO_PCL"
    assert _pipe(manufacturer="AFFYMETRIX") == "AFFY_TO_PCL"


def test_choose_pipeline_other_supported_is_none() -> None:
    assert _pipe(manufacturer="AGILENT", filenames=("GSM1.txt",)) == "NONE"
    assert _pipe(technology="UNKNOWN", manufacturer="UNKNOWN") == "NONE"


def test_choose_pipeline_rejects_unknown_vocabulary() -> None:
    with pytest.raises(ValueError, match="technology"):
        _pipe(technology="RNASEQ")
    with pytest.raises(ValueError, match="manufacturer"):
        _pipe(manufacturer="Affymetrix")
