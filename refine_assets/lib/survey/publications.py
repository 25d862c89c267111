"""PubMed publication details through NCBI E-utilities esummary (shared by all surveyors)."""

from __future__ import annotations

from dataclasses import dataclass, field

from refine_assets.lib.http import HttpClient

EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"


@dataclass
class PubmedSummary:
    """The parts of a PubMed esummary record a survey keeps."""

    pubmed_id: str
    title: str | None = None
    doi: str | None = None
    authors: list[str] = field(default_factory=list)
    journal: str | None = None
    pub_date: str | None = None


def pubmed_summary(pmid: str, client: HttpClient) -> PubmedSummary:
    """Title, DOI and authors of one PubMed record via E-utilities esummary (JSON).

    Request: ``esummary.fcgi?db=pubmed&id=<pmid>&retmode=json`` (refine.bio's
    ``get_title_and_authors_for_pubmed_id`` uses the same call). Raises :class:`HttpError` when the
    request fails and ``ValueError`` when the answer has no usable record for ``pmid``.
    """
    pmid = str(pmid).strip()
    response = client.get(f"{EUTILS}/esummary.fcgi", params={"db": "pubmed", "id": pmid, "retmode": "json"})
    try:
        doc = response.json()
    except ValueError as exc:
        raise ValueError(f"PubMed {pmid}: esummary answer is not JSON") from exc
    record = (doc.get("result") or {}).get(pmid) if isinstance(doc, dict) else None
    if not isinstance(record, dict) or record.get("error"):
        problem = record.get("error") if isinstance(record, dict) else "no record in the answer"
        raise ValueError(f"PubMed {pmid}: {problem}")
    doi = next(
        (a.get("value") for a in record.get("articleids", []) if a.get("idtype") == "doi" and a.get("value")),
        None,
    )
    authors = [a["name"] for a in record.get("authors", []) if a.get("name")]
    return PubmedSummary(
        pubmed_id=pmid,
        title=record.get("title") or None,
        doi=doi,
        authors=authors,
        journal=record.get("fulljournalname") or record.get("source") or None,
        pub_date=record.get("pubdate") or None,
    )
