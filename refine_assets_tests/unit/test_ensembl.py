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
    with pytest.raises(EnsemblError, match=r"ARABIDOPSIS_THALIANA: not a species of .*info/species"):
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
        "http://ftp.ensemblgenomes.org/pub/plants/release-57/fasta/arabidopsis_thaliana/dna/"
        "Arabidopsis_thaliana.TAIR10.dna.toplevel.fa.gz"
    )
    assert gtf_url(plant, 57) == (
        "http://ftp.ensemblgenomes.org/pub/plants/release-57/gtf/arabidopsis_thaliana/"
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
        "http://ftp.ensemblgenomes.org/pub/bacteria/release-57/fasta/bacteria_2_collection/"
        "pseudomonas_aeruginosa_pao1_gca_000006765/dna/"
        "Pseudomonas_aeruginosa_pao1_gca_000006765.ASM676v1.dna.primary_assembly.fa.gz"
    )
    assert gtf_url(bacterium, 57).endswith(
        "/bacteria/release-57/gtf/bacteria_2_collection/pseudomonas_aeruginosa_pao1_gca_000006765/"
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
