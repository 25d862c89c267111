"""Ensembl REST/FTP layout on the real refine.bio cassette ``surveyor.transcriptome.correct_index_location_danio_rerio``.

The recording (Ensembl release 110, 317 EnsemblVertebrates species) holds the species list, the release,
HEADs of the zebrafish GRCz11 primary-assembly FASTA (410,230,731 bytes) and GTF (18,055,420 bytes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from refine_assets.lib.http import HttpResponse, ReplayHttpClient
from refine_assets.lib.references.ensembl import (
    SOFTWARE_URL,
    SPECIES_URL,
    EnsemblError,
    SpeciesInfo,
    ensembl_release,
    ensembl_species,
    genome_fasta_url,
    gtf_url,
    normalize_division,
    parse_species,
    transcriptome_sources,
)

CASSETTE = "surveyor.transcriptome.correct_index_location_danio_rerio.yaml.gz"
FTP = "http://ftp.ensembl.org/pub/release-110"
PRIMARY = f"{FTP}/fasta/danio_rerio/dna/Danio_rerio.GRCz11.dna.primary_assembly.fa.gz"
TOPLEVEL = f"{FTP}/fasta/danio_rerio/dna/Danio_rerio.GRCz11.dna.toplevel.fa.gz"
GTF = f"{FTP}/gtf/danio_rerio/Danio_rerio.GRCz11.110.gtf.gz"


@pytest.fixture
def client(cassettes: Path) -> ReplayHttpClient:
    return ReplayHttpClient([cassettes / CASSETTE])


class HeadOverride:
    """GETs from the cassette, HEADs from a separate replay (to record other answers for the same URL)."""

    def __init__(self, recorded: ReplayHttpClient, heads: ReplayHttpClient):
        self.recorded, self.heads = recorded, heads

    def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse:
        return self.recorded.get(url, params)

    def post(self, url: str, data=None, params=None) -> HttpResponse:
        return self.recorded.post(url, data, params)

    def head(self, url: str) -> HttpResponse:
        return self.heads.head(url)


def test_release_and_species_list(client):
    assert ensembl_release(client) == 110
    species = ensembl_species(client)
    assert len(species) == 317
    assert {s.division for s in species} == {"EnsemblVertebrates"}
    by_name = {s.name: s for s in species}
    assert by_name["danio_rerio"] == SpeciesInfo(
        name="danio_rerio",
        display_name="Zebrafish",
        scientific_name="Danio rerio",
        assembly="GRCz11",
        taxon_id=7955,
        division="EnsemblVertebrates",
        collection=None,
    )
    assert (by_name["homo_sapiens"].assembly, by_name["homo_sapiens"].taxon_id) == ("GRCh38", 9606)


def test_zebrafish_sources_replay_end_to_end(client):
    sources = transcriptome_sources("DANIO_RERIO", client)
    assert sources.release == 110
    assert sources.assembly == "GRCz11"
    assert sources.taxonomy_id == 7955
    assert sources.genome_fasta_url == PRIMARY
    assert sources.gtf_url == GTF
    assert (sources.fasta_kind, sources.verified, sources.division) == (
        "primary_assembly",
        True,
        "EnsemblMain",
    )
    assert client.requests == [
        ("GET", SPECIES_URL),
        ("GET", SOFTWARE_URL),
        ("HEAD", PRIMARY),
        ("HEAD", GTF),
    ]


def test_given_release_and_no_verify_make_only_the_species_request(client):
    sources = transcriptome_sources("Danio rerio", client, division="Ensembl", release=110, verify=False)
    assert (sources.genome_fasta_url, sources.gtf_url, sources.verified) == (PRIMARY, GTF, False)
    assert client.requests == [("GET", SPECIES_URL)]


def test_organism_not_in_division(client):
    with pytest.raises(
        EnsemblError, match=r"ARABIDOPSIS_THALIANA: ARABIDOPSIS_THALIANA is not a species of .*info/species"
    ):
        transcriptome_sources("ARABIDOPSIS_THALIANA", client, division="Ensembl")
    # no division given: after the main site, the Ensembl Genomes divisions are asked (not recorded here)
    with pytest.raises(
        EnsemblError, match=r"cannot list the species of EnsemblPlants.*division/EnsemblPlants"
    ):
        transcriptome_sources("ARABIDOPSIS_THALIANA", client)
    with pytest.raises(EnsemblError, match="unknown Ensembl division 'EnsemblMars'"):
        transcriptome_sources("DANIO_RERIO", client, division="EnsemblMars")


def test_several_strains_must_be_named(client):
    # the main site lists mus_musculus and 15 strains such as mus_musculus_129s1svimj: exact name wins
    assert transcriptome_sources("MUS_MUSCULUS", client, verify=False).assembly == "GRCm39"
    # canis_lupus itself is not listed, only 6 subspecies/breeds (dingo, familiaris, familiarisgsd ...)
    with pytest.raises(EnsemblError, match="CANIS_LUPUS: 6 Ensembl genomes match"):
        transcriptome_sources("CANIS_LUPUS", client, verify=False)
    assert transcriptome_sources("CANIS_LUPUS_FAMILIARIS", client, verify=False).species.taxon_id == 9615
    # a single strain under a species name is taken: sus_scrofa_landrace alone matches its prefix
    assert transcriptome_sources("SUS_SCROFA_LANDRACE", client, verify=False).assembly == "Landrace_pig_v1"


def test_toplevel_fallback_when_primary_assembly_is_missing(client):
    heads = ReplayHttpClient()
    heads.add_response("HEAD", PRIMARY, 404, "")
    heads.add_response("HEAD", TOPLEVEL, 200, "")
    heads.add_response("HEAD", GTF, 200, "")
    sources = transcriptome_sources("DANIO_RERIO", HeadOverride(client, heads))
    assert (sources.genome_fasta_url, sources.fasta_kind) == (TOPLEVEL, "toplevel")
    assert heads.requests == [("HEAD", PRIMARY), ("HEAD", TOPLEVEL), ("HEAD", GTF)]


def test_missing_files_are_errors_naming_organism_and_url(client):
    heads = ReplayHttpClient()
    heads.add_response("HEAD", PRIMARY, 404, "")
    heads.add_response("HEAD", TOPLEVEL, 404, "")
    with pytest.raises(EnsemblError, match="DANIO_RERIO: no genome FASTA") as info:
        transcriptome_sources("DANIO_RERIO", HeadOverride(client, heads))
    assert PRIMARY in str(info.value) and TOPLEVEL in str(info.value)

    heads = ReplayHttpClient()
    heads.add_response("HEAD", PRIMARY, 200, "")
    heads.add_response("HEAD", GTF, 404, "")
    with pytest.raises(EnsemblError, match=f"DANIO_RERIO: no GTF .*{re.escape(GTF)}"):
        transcriptome_sources("DANIO_RERIO", HeadOverride(client, heads))

    # a release that was not recorded: the HEAD cannot be answered, which is not a missing file
    with pytest.raises(EnsemblError, match=r"DANIO_RERIO: cannot check .*release-111"):
        transcriptome_sources("DANIO_RERIO", client, release=111)


def test_ensembl_genomes_url_building():
    # the shape of /info/genomes/division/<div> entries (Ensembl Genomes REST)
    plant = parse_species(
        {
            "name": "arabidopsis_thaliana",
            "display_name": "Arabidopsis thaliana",
            "assembly_name": "TAIR10",
            "taxonomy_id": 3702,
            "species_taxonomy_id": 3702,
            "division": "EnsemblPlants",
            "dbname": "arabidopsis_thaliana_core_57_110_11",
        }
    )
    assert plant.collection is None and plant.taxon_id == 3702
    assert genome_fasta_url(plant, 57, "toplevel") == (
        "http://ftp.ensemblgenomes.org/pub/release-57/plants/fasta/arabidopsis_thaliana/dna/"
        "Arabidopsis_thaliana.TAIR10.dna.toplevel.fa.gz"
    )
    assert gtf_url(plant, 57) == (
        "http://ftp.ensemblgenomes.org/pub/release-57/plants/gtf/arabidopsis_thaliana/"
        "Arabidopsis_thaliana.TAIR10.57.gtf.gz"
    )
    bacterium = parse_species(
        {
            "name": "pseudomonas_aeruginosa_pao1_gca_000006765",
            "assembly_name": "ASM676v1",
            "taxonomy_id": 208964,
            "species_taxonomy_id": 287,
            "division": "EnsemblBacteria",
            "dbname": "bacteria_2_collection_core_57_110_1",
        }
    )
    assert (bacterium.collection, bacterium.taxon_id) == ("bacteria_2_collection", 287)
    assert genome_fasta_url(bacterium, 57) == (
        "http://ftp.ensemblgenomes.org/pub/release-57/bacteria/fasta/bacteria_2_collection/"
        "pseudomonas_aeruginosa_pao1_gca_000006765/dna/"
        "Pseudomonas_aeruginosa_pao1_gca_000006765.ASM676v1.dna.primary_assembly.fa.gz"
    )
    assert gtf_url(bacterium, 57).endswith(
        "/release-57/bacteria/gtf/bacteria_2_collection/pseudomonas_aeruginosa_pao1_gca_000006765/"
        "Pseudomonas_aeruginosa_pao1_gca_000006765.ASM676v1.57.gtf.gz"
    )
    assert normalize_division("ensemblfungi") == "EnsemblFungi"
    with pytest.raises(EnsemblError, match="FASTA kind"):
        genome_fasta_url(plant, 57, "cdna")
    with pytest.raises(EnsemblError, match="without name or assembly"):
        parse_species({"name": "no_assembly_here", "division": "EnsemblPlants"})


def test_eg_release_and_bad_rest_answers():
    rest = ReplayHttpClient()
    rest.add_response(
        "GET",
        "https://rest.ensembl.org/info/eg_version?content-type=application/json",
        200,
        '{"version":"57"}',
    )
    assert ensembl_release(rest, "EnsemblBacteria") == 57
    bad = ReplayHttpClient()
    bad.add_response("GET", SOFTWARE_URL, 200, "<html>maintenance</html>")
    with pytest.raises(EnsemblError, match="not JSON"):
        ensembl_release(bad)
    bad.add_response("GET", SPECIES_URL, 200, '{"error": "timeout"}')
    with pytest.raises(EnsemblError, match="not a species list"):
        ensembl_species(bad)
    failing = ReplayHttpClient()
    failing.add_response("GET", SPECIES_URL, 503, "Service Unavailable")
    with pytest.raises(EnsemblError, match="DANIO_RERIO: cannot list the species of EnsemblMain: HTTP 503"):
        transcriptome_sources("DANIO_RERIO", failing)


# --- every division in the archive's layout, collections, strain pinning, division search -------------
# The REST answers below follow the documented shapes of /info/genomes/division/<div>, /info/eg_version and
# the species_<Division>.txt files; the expected URLs are the files refine.bio's recorded surveys found
# (release 57: octopus, arabidopsis, leishmania, candida).

EG = "https://rest.ensembl.org/info/eg_version?content-type=application/json"


def _division(client: ReplayHttpClient, division: str, entries: list[dict]) -> None:
    import json

    client.add_response(
        "GET",
        f"https://rest.ensembl.org/info/genomes/division/{division}?content-type=application/json",
        200,
        json.dumps(entries),
    )


def _heads(client: ReplayHttpClient, ok: list[str], missing: list[str] = ()) -> None:
    for url in ok:
        client.add_response("HEAD", url, 200, "")
    for url in missing:
        client.add_response("HEAD", url, 404, "")


@pytest.mark.parametrize(
    ("organism", "division", "entry", "fasta", "gtf"),
    [
        (
            "OCTOPUS_BIMACULOIDES",
            "EnsemblMetazoa",
            {"name": "octopus_bimaculoides", "assembly_name": "PRJNA270931", "species_taxonomy_id": 37653},
            "http://ftp.ensemblgenomes.org/pub/release-57/metazoa/fasta/octopus_bimaculoides/dna/"
            "Octopus_bimaculoides.PRJNA270931.dna.toplevel.fa.gz",
            "http://ftp.ensemblgenomes.org/pub/release-57/metazoa/gtf/octopus_bimaculoides/"
            "Octopus_bimaculoides.PRJNA270931.57.gtf.gz",
        ),
        (
            "ARABIDOPSIS_THALIANA",
            "EnsemblPlants",
            {"name": "arabidopsis_thaliana", "assembly_name": "TAIR10", "taxonomy_id": 3702},
            "http://ftp.ensemblgenomes.org/pub/release-57/plants/fasta/arabidopsis_thaliana/dna/"
            "Arabidopsis_thaliana.TAIR10.dna.toplevel.fa.gz",
            "http://ftp.ensemblgenomes.org/pub/release-57/plants/gtf/arabidopsis_thaliana/"
            "Arabidopsis_thaliana.TAIR10.57.gtf.gz",
        ),
        (
            "LEISHMANIA_MAJOR",
            "EnsemblProtists",
            {"name": "leishmania_major", "assembly_name": "ASM272v2", "species_taxonomy_id": 5664},
            "http://ftp.ensemblgenomes.org/pub/release-57/protists/fasta/leishmania_major/dna/"
            "Leishmania_major.ASM272v2.dna.toplevel.fa.gz",
            "http://ftp.ensemblgenomes.org/pub/release-57/protists/gtf/leishmania_major/"
            "Leishmania_major.ASM272v2.57.gtf.gz",
        ),
    ],
)
def test_ensembl_genomes_divisions_in_the_archive_layout(organism, division, entry, fasta, gtf) -> None:
    client = ReplayHttpClient()
    _division(client, division, [{**entry, "division": division}])
    client.add_response("GET", EG, 200, '{"version":"57"}')
    primary = fasta.replace(".dna.toplevel.", ".dna.primary_assembly.")
    _heads(client, [fasta, gtf], [primary])
    src = transcriptome_sources(organism, client, division=division)
    assert (src.genome_fasta_url, src.gtf_url, src.fasta_kind, src.release) == (fasta, gtf, "toplevel", 57)
    assert src.division == division


SPECIES_FUNGI = (
    "#name\tspecies\tdivision\ttaxonomy_id\tassembly\tassembly_accession\tgenebuild\tvariation\tmicroarray"
    "\tpan_compara\tpeptide_compara\tgenome_alignments\tother_alignments\tcore_db\tspecies_id\n"
    "Candida albicans P94015\tcandida_albicans_p94015_gca_000773755\tEnsemblFungi\t1094983\tCand_albi_P94015_V1"
    "\tGCA_000773755.1\t2014-11-BroadInstitute\tN\tN\tN\tN\tN\tY\tfungi_ascomycota2_collection_core_57_110_1\t12\t\n"
    "Candida albicans SC5314\tcandida_albicans_sc5314_gca_000784635\tEnsemblFungi\t237561\tCand_albi_SC5314_V4"
    "\tGCA_000784635.1\t2014-11-BroadInstitute\tN\tN\tN\tN\tN\tY\tfungi_ascomycota2_collection_core_57_110_1\t24\t\n"
)


def test_fungi_strain_pinned_and_found_in_its_collection_folder() -> None:
    client = ReplayHttpClient()
    strains = [
        {"name": "candida_albicans_p94015_gca_000773755", "assembly_name": "Cand_albi_P94015_V1"},
        {"name": "candida_albicans_sc5314_gca_000784635", "assembly_name": "Cand_albi_SC5314_V4"},
    ]
    _division(
        client,
        "EnsemblFungi",
        [{**e, "division": "EnsemblFungi", "species_taxonomy_id": 5476, "taxonomy_id": 1} for e in strains],
    )
    client.add_response(
        "GET", "http://ftp.ensemblgenomes.org/pub/fungi/current/species_EnsemblFungi.txt", 200, SPECIES_FUNGI
    )
    client.add_response("GET", EG, 200, '{"version":"57"}')
    base = (
        "http://ftp.ensemblgenomes.org/pub/release-57/fungi/{kind}/fungi_ascomycota2_collection/"
        "candida_albicans_sc5314_gca_000784635/"
    )
    fasta = base.format(kind="fasta") + (
        "dna/Candida_albicans_sc5314_gca_000784635.Cand_albi_SC5314_V4.dna.toplevel.fa.gz"
    )
    gtf = base.format(kind="gtf") + "Candida_albicans_sc5314_gca_000784635.Cand_albi_SC5314_V4.57.gtf.gz"
    _heads(client, [fasta, gtf], [fasta.replace("toplevel", "primary_assembly")])
    # no division given: the pin (organism_strains.csv) says EnsemblFungi and the SC5314 assembly
    src = transcriptome_sources("Candida albicans", client)
    assert (src.genome_fasta_url, src.gtf_url) == (fasta, gtf)
    assert src.species.collection == "fungi_ascomycota2_collection" and src.taxonomy_id == 5476


def test_bacteria_underscore_variant_and_division_search() -> None:
    import json

    client = ReplayHttpClient()
    client.add_response("GET", SPECIES_URL, 200, json.dumps({"species": []}))  # not a vertebrate
    for div in ("EnsemblPlants", "EnsemblFungi", "EnsemblMetazoa", "EnsemblProtists"):
        _division(client, div, [])
    _division(
        client,
        "EnsemblBacteria",
        [
            {
                "name": "bacillus_subtilis_subsp_subtilis_str_168",
                "assembly_name": "ASM904v1",
                "species_taxonomy_id": 1423,
                "division": "EnsemblBacteria",
            }
        ],
    )
    client.add_response(
        "GET",
        "http://ftp.ensemblgenomes.org/pub/bacteria/current/species_EnsemblBacteria.txt",
        200,
        "#name\tspecies\tassembly\tcore_db\nB. subtilis 168\tbacillus_subtilis_subsp_subtilis_str_168\tASM904v1"
        "\tbacteria_0_collection_core_57_110_1\n",
    )
    client.add_response("GET", EG, 200, '{"version":"57"}')
    root = "http://ftp.ensemblgenomes.org/pub/release-57/bacteria"
    sp = "bacillus_subtilis_subsp_subtilis_str_168"
    fasta = f"{root}/fasta/bacteria_0_collection/{sp}/dna/Bacillus_subtilis_subsp_subtilis_str_168"
    gtf = f"{root}/gtf/bacteria_0_collection/{sp}/Bacillus_subtilis_subsp_subtilis_str_168"
    _heads(
        client,
        [f"{fasta}.ASM904v1_.dna.toplevel.fa.gz", f"{gtf}.ASM904v1_.57.gtf.gz"],
        [
            f"{fasta}.ASM904v1.dna.primary_assembly.fa.gz",
            f"{fasta}.ASM904v1.dna.toplevel.fa.gz",
            f"{gtf}.ASM904v1.57.gtf.gz",
        ],
    )
    src = transcriptome_sources("BACILLUS_SUBTILIS", client)
    assert src.division == "EnsemblBacteria"
    assert src.genome_fasta_url == f"{fasta}.ASM904v1_.dna.toplevel.fa.gz"
    assert src.gtf_url == f"{gtf}.ASM904v1_.57.gtf.gz"
    with pytest.raises(
        EnsemblError, match=r"NOT_A_GENOME: NOT_A_GENOME is not a species of any Ensembl division"
    ):
        transcriptome_sources("NOT_A_GENOME", client)
