"""Taxonomy look-ups on the real refine.bio cassettes.

``surveyor.array_express.survey_with_protocol_list`` recorded NCBI esearch for the term ``DANIO_RERIO``
(one hit, 7955); ``surveyor.transcriptome.correct_index_location_danio_rerio`` recorded NCBI efetch of
taxon 7955 (``ScientificName`` ``Danio rerio``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from refine_assets.lib.http import HttpStatusError, NotRecordedError, ReplayHttpClient
from refine_assets.lib.survey.model import Organism
from refine_assets.lib.survey.taxonomy import (
    EFETCH_URL,
    ESEARCH_URL,
    efetch_organism,
    esearch_taxonomy_id,
    organism_for_taxid,
    taxonomy_id_for,
)

ESEARCH_CASSETTE = "surveyor.array_express.survey_with_protocol_list.yaml.gz"
EFETCH_CASSETTE = "surveyor.transcriptome.correct_index_location_danio_rerio.yaml.gz"


@pytest.fixture
def esearch_client(cassettes: Path) -> ReplayHttpClient:
    return ReplayHttpClient([cassettes / ESEARCH_CASSETTE])


@pytest.fixture
def efetch_client(cassettes: Path) -> ReplayHttpClient:
    return ReplayHttpClient([cassettes / EFETCH_CASSETTE])


def test_esearch_recorded_for_zebrafish(esearch_client):
    assert esearch_taxonomy_id("DANIO_RERIO", esearch_client) == 7955
    assert esearch_client.requests == [
        ("GET", f"{ESEARCH_URL}?db=taxonomy&field=scin&term=DANIO_RERIO"),
    ]


def test_efetch_recorded_for_zebrafish(efetch_client):
    assert efetch_organism(7955, efetch_client) == Organism("DANIO_RERIO", 7955, "Danio rerio")
    assert efetch_client.requests == [("GET", f"{EFETCH_URL}?db=taxonomy&id=7955")]


def test_built_in_table_answers_without_a_request():
    client = ReplayHttpClient()  # any request would raise NotRecordedError
    assert taxonomy_id_for("Danio rerio", client) == 7955
    assert taxonomy_id_for("DANIO_RERIO", client) == 7955
    assert taxonomy_id_for("  xenopus   tropicalis ", client) == 8364
    assert organism_for_taxid(7955, client) == Organism("DANIO_RERIO", 7955, "Danio rerio")
    assert organism_for_taxid(4932, client).name == "SACCHAROMYCES_CEREVISIAE"
    assert client.requests == []


def test_unknown_name_asks_ncbi_with_the_upper_snake_term():
    with pytest.raises(ValueError, match="NCBI esearch failed for XENOPUS_BOREALIS") as info:
        taxonomy_id_for("Xenopus borealis", ReplayHttpClient())
    assert isinstance(info.value.__cause__, NotRecordedError)
    assert "term=XENOPUS_BOREALIS" in info.value.__cause__.url


def test_no_hit_is_none():
    client = ReplayHttpClient()
    client.add_response(
        "GET",
        f"{ESEARCH_URL}?db=taxonomy&field=scin&term=NOT_AN_ORGANISM",
        200,
        "<eSearchResult><Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart><IdList/></eSearchResult>",
    )
    assert taxonomy_id_for("not an organism", client) is None


def test_http_failure_and_malformed_answers_raise_value_error():
    url = f"{ESEARCH_URL}?db=taxonomy&field=scin&term=XENOPUS_BOREALIS"
    client = ReplayHttpClient()
    client.add_response("GET", url, 500, "Internal Server Error")
    with pytest.raises(ValueError, match="HTTP 500") as info:
        taxonomy_id_for("Xenopus borealis", client)
    assert isinstance(info.value.__cause__, HttpStatusError)

    truncated = ReplayHttpClient()
    truncated.add_response("GET", url, 200, "<eSearchResult><Count>1</Count><IdList><Id>83")
    with pytest.raises(ValueError, match="not XML"):
        taxonomy_id_for("Xenopus borealis", truncated)

    html = ReplayHttpClient()
    html.add_response("GET", url, 200, "<html><body>Bad gateway</body></html>")
    with pytest.raises(ValueError, match="not an eSearchResult"):
        taxonomy_id_for("Xenopus borealis", html)


def test_bad_input():
    with pytest.raises(ValueError, match="no organism name"):
        taxonomy_id_for("   ", ReplayHttpClient())
    for bad in (0, -7955, "7955", True, None):
        with pytest.raises(ValueError, match="not an NCBI taxonomy id"):
            organism_for_taxid(bad, ReplayHttpClient())  # type: ignore[arg-type]


def test_unknown_taxid(efetch_client):
    # not in the table and not recorded: the HTTP failure is a ValueError naming the id
    with pytest.raises(ValueError, match="taxonomy id 99999999"):
        organism_for_taxid(99999999, efetch_client)
    # NCBI answers an unknown id with an empty TaxaSet
    client = ReplayHttpClient()
    client.add_response("GET", f"{EFETCH_URL}?db=taxonomy&id=99999999", 200, "<TaxaSet></TaxaSet>")
    with pytest.raises(ValueError, match="no taxon 99999999"):
        organism_for_taxid(99999999, client)
