"""Organism <-> NCBI taxonomy id, shared by every surveyor: built-in table first, else NCBI E-utilities.

Two look-ups, both answered from ``refine_assets/data/organisms.csv`` (via
:func:`refine_assets.lib.survey.platforms.organism_by_name` / ``organism_by_taxid``) without any request
when the organism is common, and from NCBI otherwise:

* :func:`taxonomy_id_for` - name -> taxonomy id. NCBI ``esearch.fcgi?db=taxonomy&field=scin&term=<NAME>``
  with the UPPER_SNAKE name as the term, exactly as refine.bio sends it (``Organism.get_id_for_name``;
  recorded in the refine.bio cassette ``surveyor.array_express.survey_with_protocol_list``: the term
  ``DANIO_RERIO`` gives ``<IdList><Id>7955</Id></IdList>``).
* :func:`organism_for_taxid` - taxonomy id -> :class:`Organism`. NCBI ``efetch.fcgi?db=taxonomy&id=<ID>``
  (``<TaxaSet><Taxon><TaxId>/<ScientificName>``; refine.bio ``Organism.get_name_for_id``, recorded in
  ``surveyor.transcriptome.correct_index_location_danio_rerio``).

The raw NCBI calls are public too (:func:`esearch_taxonomy_id`, :func:`efetch_organism`): they always ask
NCBI and let :class:`HttpError` through, for callers that want the HTTP failure itself.

Error contract of the two main functions: ``None`` from :func:`taxonomy_id_for` means "NCBI says there
is no such organism"; a :class:`ValueError` means "could not tell" (blank input, HTTP failure, answer that
is not the expected XML) and names the organism or id, chained from the underlying error.
"""

from __future__ import annotations

from lxml import etree

from refine_assets.lib.http import HttpClient, HttpError
from refine_assets.lib.survey import platforms
from refine_assets.lib.survey.model import Organism, organism_name

ESEARCH_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi"
EFETCH_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/efetch.fcgi"

# No DTD loading, no entity expansion, no network: NCBI answers carry a DOCTYPE pointing at its DTDs.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _parse(content: bytes, what: str) -> etree._Element:
    try:
        root = etree.fromstring(content, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{what}: NCBI answer is not XML: {exc}") from exc
    if root is None:
        raise ValueError(f"{what}: NCBI answer is empty")
    return root


def esearch_taxonomy_id(name: str, client: HttpClient) -> int | None:
    """Ask NCBI esearch for the taxonomy id of ``name`` (sent as given), skipping the built-in table.

    Returns the first id of ``IdList``, or None when NCBI finds none (``Count`` 0). Raises
    :class:`HttpError` on HTTP failure and :class:`ValueError` when the answer is not an
    ``eSearchResult`` or carries an ``ERROR`` element.
    """
    resp = client.get(ESEARCH_URL, params={"db": "taxonomy", "field": "scin", "term": name})
    what = f"taxonomy esearch for {name!r}"
    root = _parse(resp.content, what)
    if root.tag != "eSearchResult":
        raise ValueError(f"{what}: answer is not an eSearchResult (root {root.tag!r})")
    error = root.findtext("ERROR")
    if error and error.strip():
        raise ValueError(f"{what}: NCBI error {error.strip()!r}")
    ids = [i.text.strip() for i in root.iterfind("IdList/Id") if i.text and i.text.strip().isdigit()]
    return int(ids[0]) if ids else None


def efetch_organism(taxid: int, client: HttpClient) -> Organism:
    """Ask NCBI efetch for taxon ``taxid``, skipping the built-in table.

    Returns ``Organism(UPPER_SNAKE of ScientificName, taxid, ScientificName)``. Raises :class:`HttpError`
    on HTTP failure and :class:`ValueError` when the answer is not a ``TaxaSet`` holding that taxon
    (NCBI answers an unknown id with an empty set or an ``ERROR``).
    """
    resp = client.get(EFETCH_URL, params={"db": "taxonomy", "id": str(taxid)})
    what = f"taxonomy efetch for id {taxid}"
    root = _parse(resp.content, what)
    if root.tag != "TaxaSet":
        error = (root.findtext(".//ERROR") or "").strip()
        detail = f"NCBI error {error!r}" if error else f"answer is not a TaxaSet (root {root.tag!r})"
        raise ValueError(f"{what}: {detail}")
    for taxon in root.iterfind("Taxon"):
        if (taxon.findtext("TaxId") or "").strip() == str(taxid):
            scientific = " ".join((taxon.findtext("ScientificName") or "").split())
            if not scientific:
                raise ValueError(f"{what}: taxon has no ScientificName")
            return Organism(organism_name(scientific), taxid, scientific)
    raise ValueError(f"{what}: NCBI taxonomy has no taxon {taxid}")


def taxonomy_id_for(scientific_or_upper_snake_name: str, client: HttpClient) -> int | None:
    """NCBI taxonomy id of an organism named ``Danio rerio`` or ``DANIO_RERIO`` (any case/spacing).

    The built-in table answers common organisms without a request; otherwise NCBI esearch is asked with
    the UPPER_SNAKE name (refine.bio's term). Returns None when NCBI has no entry. Raises
    :class:`ValueError` for a blank name, an HTTP failure (chained from the :class:`HttpError`) or an
    unreadable answer.
    """
    name = organism_name(scientific_or_upper_snake_name or "")
    if not name:
        raise ValueError(f"no organism name given: {scientific_or_upper_snake_name!r}")
    known = platforms.organism_by_name(name)
    if known is not None and known.taxonomy_id is not None:
        return known.taxonomy_id
    try:
        return esearch_taxonomy_id(name, client)
    except HttpError as exc:
        raise ValueError(f"NCBI esearch failed for {name}: {exc}") from exc


def organism_for_taxid(taxid: int, client: HttpClient) -> Organism:
    """The :class:`Organism` of an NCBI taxonomy id: built-in table first, else NCBI efetch.

    Raises :class:`ValueError` for an id that is not a positive integer, an id NCBI does not know, an
    HTTP failure (chained from the :class:`HttpError`) or an unreadable answer.
    """
    if isinstance(taxid, bool) or not isinstance(taxid, int) or taxid <= 0:
        raise ValueError(f"not an NCBI taxonomy id: {taxid!r}")
    known = platforms.organism_by_taxid(taxid)
    if known is not None:
        return known
    try:
        return efetch_organism(taxid, client)
    except HttpError as exc:
        raise ValueError(f"NCBI efetch failed for taxonomy id {taxid}: {exc}") from exc
