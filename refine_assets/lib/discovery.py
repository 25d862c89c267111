"""Discovery of new experiment accessions in GEO, ENA (SRA RNA-seq) and ArrayExpress.

refine.bio gathers accessions with "agents" (``foreman/.../gatherer/agents/``): ``rnaseq_agent.py``
queries the ENA portal ``search`` endpoint (``result=read_study``, RNA-Seq/TRANSCRIPTOMIC, a
``first_public`` window, one ``tax_eq`` per taxon), ``ae_agent.py`` pages through the BioStudies
search API with a ``release_date`` window, and ``geo_agent.py`` reads a local GEOmetadb SQLite copy.
We query the live services for a date window instead (GEO through NCBI E-utilities ``esearch`` on
``db=gds``), one page at a time, so that a Dagster sensor can spread the listing over ticks.

Every source has three pure pieces and one function that uses an :class:`HttpClient`:

* ``<source>_search_params(start, end, ..., offset, limit)``: the query parameters of one page;
* ``parse_<source>_search(content, offset, ...)``: the answer as a :class:`DiscoveryPage`;
* ``<source>_discover(client, start, end, ..., max_results, offset)``: both, through the client.

:func:`plan_tick` is the source-neutral paging logic of a discovery sensor (cursor in, accessions
and cursor out), kept here so that it is testable without Dagster.

Errors: a malformed answer raises :class:`DiscoveryError` (source and problem); HTTP failures of the
client (:class:`refine_assets.lib.http.HttpError`) propagate unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from refine_assets.lib.http import HttpClient

GEO = "GEO"
ENA = "ENA"
ARRAY_EXPRESS = "ARRAY_EXPRESS"

GEO_ESEARCH_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi"
GEO_ESUMMARY_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esummary.fcgi"
ENA_SEARCH_URL = "https://www.ebi.ac.uk/ena/portal/api/search"
ARRAYEXPRESS_SEARCH_URL = "https://www.ebi.ac.uk/biostudies/api/v1/ArrayExpress/search"

# NCBI taxonomy ids of the organisms we process by default (refine.bio's main compendia organisms:
# human, mouse, rat, zebrafish, fly, worm, yeast, arabidopsis, cow, pig, chicken, rhesus macaque).
# refine.bio's RNA-seq gatherer uses a longer list (config/rna_seq_taxon_ids.txt, 247 taxa); pass
# your own list to widen discovery.
DEFAULT_TAXA: tuple[int, ...] = (9606, 10090, 10116, 7955, 7227, 6239, 4932, 3702, 9913, 9823, 9031, 9544)

# GDS UIDs of GEO series are 200000000 + the GSE number (GPL 100000000+, GSM 300000000+).
GEO_SERIES_UID_BASE = 200_000_000
# esearch returns at most 10,000 UIDs per request; BioStudies pages hold at most 100 hits.
GEO_MAX_RETMAX = 10_000
ARRAYEXPRESS_MAX_PAGE_SIZE = 100


class DiscoveryError(Exception):
    """A discovery answer could not be used: ``source`` (GEO/ENA/ARRAY_EXPRESS) and the problem."""

    def __init__(self, source: str, problem: str):
        self.source = source
        self.problem = problem
        super().__init__(f"{source} discovery: {problem}")


@dataclass(frozen=True)
class DiscoveryPage:
    """One page of a date-window listing.

    ``accessions``: experiment accessions in answer order, without duplicates. ``newest_date``: the
    latest publication/release date seen on the page (``None`` when the answer carries no dates).
    ``total``: hits of the whole window as reported by the source (ENA reports no count: there it is
    the number of rows seen so far, a lower bound while ``next_offset`` is set). ``next_offset``:
    where the next page starts, ``None`` when this page exhausts the window.
    """

    accessions: list[str]
    newest_date: date | None
    total: int
    next_offset: int | None


def _json(source: str, content: bytes | str) -> Any:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        text = content if isinstance(content, str) else content[:200].decode("utf-8", errors="replace")
        raise DiscoveryError(source, f"answer is not JSON ({exc}): {text[:200]!r}") from exc


def _int(source: str, value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise DiscoveryError(source, f"{what} is not an integer: {value!r}") from exc
    if number < 0:
        raise DiscoveryError(source, f"{what} is negative: {number}")
    return number


def _date(source: str, value: Any, fmt: str, what: str) -> date:
    if not isinstance(value, str):
        raise DiscoveryError(source, f"{what} is not a date string: {value!r}")
    try:
        return datetime.strptime(value.strip(), fmt).date()
    except ValueError as exc:
        raise DiscoveryError(source, f"{what} {value!r} does not match {fmt}") from exc


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _check_window(start: date, end: date) -> None:
    if end < start:
        raise ValueError(f"empty date window: {start} .. {end}")


# --------------------------------------------------------------------------------------------- GEO


def _geo_taxon_term(taxon: int | str) -> str:
    text = str(taxon).strip()
    if text.isdigit():
        return f"txid{text}[Organism]"
    return f'"{text}"[Organism]'


def geo_query_term(start: date, end: date, taxa: Sequence[int | str] = DEFAULT_TAXA) -> str:
    """The Entrez query of GEO series published in [start, end] for the given organisms.

    ``taxa`` are NCBI taxonomy ids (``txid9606[Organism]``) or scientific names (``"Homo
    sapiens"[Organism]``). Shape: ``(gse[Entry Type]) AND (<taxa>) AND ("YYYY/MM/DD"[PDAT] :
    "YYYY/MM/DD"[PDAT])``; the PDAT range is inclusive on both ends.
    """
    _check_window(start, end)
    if not taxa:
        raise ValueError("at least one taxon is needed")
    organisms = " OR ".join(_geo_taxon_term(t) for t in taxa)
    return f'(gse[Entry Type]) AND ({organisms}) AND ("{start:%Y/%m/%d}"[PDAT] : "{end:%Y/%m/%d}"[PDAT])'


def geo_search_params(
    start: date, end: date, taxa: Sequence[int | str] = DEFAULT_TAXA, offset: int = 0, limit: int = 500
) -> dict[str, str]:
    """esearch parameters (``db=gds``, JSON) for one page of the window: ``retstart``/``retmax``."""
    if not 0 < limit <= GEO_MAX_RETMAX:
        raise ValueError(f"retmax must be within 1..{GEO_MAX_RETMAX}: {limit}")
    return {
        "db": "gds",
        "term": geo_query_term(start, end, taxa),
        "retmode": "json",
        "retstart": str(offset),
        "retmax": str(limit),
    }


def geo_uid_to_accession(uid: str) -> str:
    """``"200012345"`` -> ``"GSE12345"``; raises :class:`DiscoveryError` for non-series UIDs."""
    if not isinstance(uid, str) or not uid.isdigit():
        raise DiscoveryError(GEO, f"UID is not a number: {uid!r}")
    number = int(uid) - GEO_SERIES_UID_BASE
    if not 0 < number < 100_000_000:
        raise DiscoveryError(GEO, f"UID {uid} is not a GEO series (series UIDs are 200000000 + GSE number)")
    return f"GSE{number}"


def parse_geo_search(content: bytes | str) -> DiscoveryPage:
    """Parse an esearch JSON answer (``{"header": ..., "esearchresult": {"count", "retstart",
    "idlist", ...}}``) into GSE accessions; ``next_offset`` is ``retstart + len(idlist)`` while that
    is below ``count``. NCBI reports failures in the body (``esearchresult.ERROR`` or a top-level
    ``error``, e.g. the rate limit): both raise :class:`DiscoveryError`.
    """
    doc = _json(GEO, content)
    if not isinstance(doc, dict):
        raise DiscoveryError(GEO, f"esearch answer is not an object: {type(doc).__name__}")
    if "error" in doc:
        raise DiscoveryError(GEO, f"esearch error: {doc['error']}")
    result = doc.get("esearchresult")
    if not isinstance(result, dict):
        raise DiscoveryError(GEO, "esearch answer has no 'esearchresult' object")
    if "ERROR" in result:
        raise DiscoveryError(GEO, f"esearch error: {result['ERROR']}")
    for key in ("count", "retstart", "idlist"):
        if key not in result:
            raise DiscoveryError(GEO, f"esearchresult has no '{key}'")
    count = _int(GEO, result["count"], "esearchresult.count")
    retstart = _int(GEO, result["retstart"], "esearchresult.retstart")
    idlist = result["idlist"]
    if not isinstance(idlist, list):
        raise DiscoveryError(GEO, "esearchresult.idlist is not a list")
    accessions = _unique(geo_uid_to_accession(uid) for uid in idlist)
    end = retstart + len(idlist)
    next_offset = end if idlist and end < count else None
    return DiscoveryPage(accessions=accessions, newest_date=None, total=count, next_offset=next_offset)


def parse_geo_summary(content: bytes | str) -> dict[str, date]:
    """Parse an esummary JSON answer of ``db=gds`` into ``{GSE accession: PDAT}``.

    Shape: ``{"header": ..., "result": {"uids": [...], "<uid>": {"accession": "GSE..", "pdat":
    "YYYY/MM/DD", ...}}}``. A UID listed without its document, or a document without accession or
    with an unreadable date, raises :class:`DiscoveryError`.
    """
    doc = _json(GEO, content)
    if not isinstance(doc, dict) or "error" in doc:
        raise DiscoveryError(GEO, f"esummary error: {doc.get('error') if isinstance(doc, dict) else doc!r}")
    result = doc.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("uids"), list):
        raise DiscoveryError(GEO, "esummary answer has no 'result.uids' list")
    dates: dict[str, date] = {}
    for uid in result["uids"]:
        summary = result.get(str(uid))
        if not isinstance(summary, dict):
            raise DiscoveryError(GEO, f"esummary lists UID {uid} without its document")
        if "error" in summary:
            raise DiscoveryError(GEO, f"esummary UID {uid}: {summary['error']}")
        accession = summary.get("accession")
        if not isinstance(accession, str) or not accession:
            raise DiscoveryError(GEO, f"esummary UID {uid} has no accession")
        dates[accession] = _date(GEO, summary.get("pdat"), "%Y/%m/%d", f"{accession} pdat")
    return dates


def geo_discover(
    client: HttpClient,
    start: date,
    end: date,
    taxa: Sequence[int | str] = DEFAULT_TAXA,
    max_results: int = 500,
    offset: int = 0,
    with_dates: bool = False,
) -> DiscoveryPage:
    """One page (``max_results`` UIDs from ``offset``) of GEO series published in [start, end].

    With ``with_dates`` a second request (esummary on the page's UIDs) fills ``newest_date`` and
    checks that every UID resolves to the accession derived from it. Raises :class:`DiscoveryError`
    for malformed answers and :class:`~refine_assets.lib.http.HttpError` for HTTP failures.
    """
    response = client.get(GEO_ESEARCH_URL, params=geo_search_params(start, end, taxa, offset, max_results))
    page = parse_geo_search(response.content)
    if not with_dates or not page.accessions:
        return page
    uids = [str(GEO_SERIES_UID_BASE + int(acc[3:])) for acc in page.accessions]
    summary = client.get(GEO_ESUMMARY_URL, params={"db": "gds", "id": ",".join(uids), "retmode": "json"})
    dates = parse_geo_summary(summary.content)
    missing = [acc for acc in page.accessions if acc not in dates]
    if missing:
        raise DiscoveryError(GEO, f"esummary has no document for {', '.join(missing)}")
    return DiscoveryPage(page.accessions, max(dates.values()), page.total, page.next_offset)


# --------------------------------------------------------------------------------------------- ENA


def ena_query(start: date, end: date, taxa: Sequence[int | str] = DEFAULT_TAXA) -> str:
    """The ENA portal query of RNA-seq studies first public in [start, end] for the given taxa.

    Same conditions as refine.bio's ``rnaseq_agent.build_query`` (without its instrument list:
    unsupported instruments are marked by the survey): ``library_source="TRANSCRIPTOMIC" AND
    library_strategy="RNA-Seq" AND first_public>=YYYY-MM-DD AND first_public<=YYYY-MM-DD AND
    (tax_eq(9606) OR ...)``. ``taxa`` must be NCBI taxonomy ids.
    """
    _check_window(start, end)
    if not taxa:
        raise ValueError("at least one taxon is needed")
    bad = [t for t in taxa if not str(t).strip().isdigit()]
    if bad:
        raise ValueError(f"ENA taxa must be NCBI taxonomy ids: {bad}")
    organisms = " OR ".join(f"tax_eq({str(t).strip()})" for t in taxa)
    return (
        'library_source="TRANSCRIPTOMIC" AND library_strategy="RNA-Seq" AND '
        f"first_public>={start.isoformat()} AND first_public<={end.isoformat()} AND ({organisms})"
    )


ENA_FIELDS = "secondary_study_accession,study_accession,first_public"


def ena_search_params(
    start: date, end: date, taxa: Sequence[int | str] = DEFAULT_TAXA, offset: int = 0, limit: int = 500
) -> dict[str, str]:
    """ENA portal ``search`` parameters (``result=read_study``, JSON) for one page of the window."""
    if limit <= 0:
        raise ValueError(f"limit must be positive: {limit}")
    return {
        "result": "read_study",
        "query": ena_query(start, end, taxa),
        "fields": ENA_FIELDS,
        "format": "json",
        "limit": str(limit),
        "offset": str(offset),
    }


def parse_ena_search(content: bytes | str, offset: int, limit: int) -> DiscoveryPage:
    """Parse an ENA portal JSON answer (a list of ``{secondary_study_accession, study_accession,
    first_public}`` objects) into study accessions.

    The accession is ``secondary_study_accession`` (SRP/ERP/DRP, what refine.bio keys SRA
    experiments by), else ``study_accession`` (PRJ...). An empty body means no (more) rows: the
    portal answers a query without results that way (refine.bio's agent stops paging on it). A full
    page (``limit`` rows) means there may be more: ``next_offset = offset + limit``.
    """
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    if not text.strip():
        return DiscoveryPage(accessions=[], newest_date=None, total=offset, next_offset=None)
    rows = _json(ENA, text)
    if not isinstance(rows, list):
        raise DiscoveryError(ENA, f"search answer is not a list of rows: {text[:200]!r}")
    accessions: list[str] = []
    newest: date | None = None
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DiscoveryError(ENA, f"row {offset + i} is not an object: {row!r}")
        accession = (row.get("secondary_study_accession") or "").strip() or (
            row.get("study_accession") or ""
        ).strip()
        if not accession:
            raise DiscoveryError(ENA, f"row {offset + i} has no study accession: {row!r}")
        # Some studies list several secondary accessions separated by ';' (the first is the SRA one).
        accessions.append(accession.split(";")[0].strip())
        if row.get("first_public"):
            day = _date(ENA, row["first_public"], "%Y-%m-%d", f"{accession} first_public")
            newest = day if newest is None or day > newest else newest
    next_offset = offset + len(rows) if len(rows) >= limit else None
    return DiscoveryPage(
        accessions=_unique(accessions), newest_date=newest, total=offset + len(rows), next_offset=next_offset
    )


def ena_discover(
    client: HttpClient,
    start: date,
    end: date,
    taxa: Sequence[int | str] = DEFAULT_TAXA,
    max_results: int = 500,
    offset: int = 0,
) -> DiscoveryPage:
    """One page of ENA RNA-seq studies first public in [start, end] (see :func:`ena_query`)."""
    response = client.get(ENA_SEARCH_URL, params=ena_search_params(start, end, taxa, offset, max_results))
    return parse_ena_search(response.content, offset, max_results)


# ------------------------------------------------------------------------------------ ArrayExpress


def arrayexpress_search_params(
    start: date, end: date, offset: int = 0, limit: int = 100, query: str | None = None
) -> dict[str, str]:
    """BioStudies ArrayExpress-collection search parameters for the page holding ``offset``.

    The window is ``release_date=[YYYY-MM-DD TO YYYY-MM-DD]`` (the parameter refine.bio's
    ``ae_agent`` sends), sorted by release date ascending so that pages stay stable while new
    studies are released; ``page`` is 1-based (``offset // limit + 1``). ``query`` is an optional
    free-text query (e.g. an organism name); none lists the whole collection.
    """
    _check_window(start, end)
    if not 0 < limit <= ARRAYEXPRESS_MAX_PAGE_SIZE:
        raise ValueError(f"pageSize must be within 1..{ARRAYEXPRESS_MAX_PAGE_SIZE}: {limit}")
    params = {
        "release_date": f"[{start.isoformat()} TO {end.isoformat()}]",
        "sortBy": "release_date",
        "sortOrder": "ascending",
        "page": str(offset // limit + 1),
        "pageSize": str(limit),
    }
    if query:
        params["query"] = query
    return params


def parse_arrayexpress_search(
    content: bytes | str, offset: int = 0, skip_geo_imports: bool = True
) -> DiscoveryPage:
    """Parse a BioStudies search answer (``{"page", "pageSize", "totalHits", "hits": [{"accession",
    "release_date", ...}]}``) into ArrayExpress accessions (``E-``; other collections' hits are
    dropped). Hits before ``offset`` on the answered page are skipped (an offset that is not a
    multiple of the page size). ``skip_geo_imports`` drops ``E-GEOD-n`` (ArrayExpress copies of
    GEO series ``GSEn``, found by GEO discovery; surveying both would count the samples twice).
    """
    doc = _json(ARRAY_EXPRESS, content)
    if not isinstance(doc, dict):
        raise DiscoveryError(ARRAY_EXPRESS, f"search answer is not an object: {type(doc).__name__}")
    for key in ("hits", "totalHits", "page", "pageSize"):
        if key not in doc:
            raise DiscoveryError(ARRAY_EXPRESS, f"search answer has no '{key}'")
    hits = doc["hits"]
    if hits is None:
        hits = []
    if not isinstance(hits, list):
        raise DiscoveryError(ARRAY_EXPRESS, "'hits' is not a list")
    total = _int(ARRAY_EXPRESS, doc["totalHits"], "totalHits")
    page = _int(ARRAY_EXPRESS, doc["page"], "page")
    page_size = _int(ARRAY_EXPRESS, doc["pageSize"], "pageSize")
    if page < 1 or page_size < 1:
        raise DiscoveryError(ARRAY_EXPRESS, f"invalid page {page} / pageSize {page_size}")
    page_start = (page - 1) * page_size
    skip = max(0, offset - page_start)
    accessions: list[str] = []
    newest: date | None = None
    for i, hit in enumerate(hits):
        if not isinstance(hit, dict) or not isinstance(hit.get("accession"), str):
            raise DiscoveryError(ARRAY_EXPRESS, f"hit {page_start + i} has no accession: {hit!r}")
        if i < skip:
            continue
        accession = hit["accession"].strip()
        if hit.get("release_date"):
            day = _date(ARRAY_EXPRESS, hit["release_date"], "%Y-%m-%d", f"{accession} release_date")
            newest = day if newest is None or day > newest else newest
        if not accession.startswith("E-") or (skip_geo_imports and accession.startswith("E-GEOD-")):
            continue
        accessions.append(accession)
    end = page_start + len(hits)
    next_offset = end if hits and end < total else None
    return DiscoveryPage(
        accessions=_unique(accessions), newest_date=newest, total=total, next_offset=next_offset
    )


def arrayexpress_discover(
    client: HttpClient,
    start: date,
    end: date,
    max_results: int = 100,
    offset: int = 0,
    query: str | None = None,
    skip_geo_imports: bool = True,
) -> DiscoveryPage:
    """One page of ArrayExpress experiments released in [start, end] (BioStudies search)."""
    limit = min(max_results, ARRAYEXPRESS_MAX_PAGE_SIZE)
    params = arrayexpress_search_params(start, end, offset, limit, query)
    response = client.get(ARRAYEXPRESS_SEARCH_URL, params=params)
    return parse_arrayexpress_search(response.content, offset, skip_geo_imports)


# ------------------------------------------------------------------------------- sensor tick plan

# fetch(client-free): (start, end, offset, limit) -> DiscoveryPage
PageFetcher = Callable[[date, date, int, int], DiscoveryPage]


@dataclass(frozen=True)
class DiscoveryCursor:
    """A discovery sensor's whole state: the window start still being listed and the offset in it.

    Serialized as ``{"high_water": "YYYY-MM-DD", "offset": n}`` (small on purpose: a high-water
    mark, never the set of accessions seen).
    """

    high_water: date
    offset: int = 0

    def to_json(self) -> str:
        return json.dumps({"high_water": self.high_water.isoformat(), "offset": self.offset}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, default_start: date) -> DiscoveryCursor:
        """Read a cursor; ``None``/empty (first tick) gives ``default_start`` at offset 0.

        A cursor that is not this JSON shape raises ``ValueError`` (never silently restarts).
        """
        if not text:
            return cls(default_start, 0)
        try:
            doc = json.loads(text)
            high_water = date.fromisoformat(doc["high_water"])
            offset = int(doc.get("offset", 0))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable discovery cursor {text!r}: {exc}") from exc
        if offset < 0:
            raise ValueError(f"unreadable discovery cursor {text!r}: negative offset")
        return cls(high_water, offset)


@dataclass
class TickPlan:
    """What one sensor tick found: new accessions (in order, at most the cap), the cursor to store,
    the windows/pages queried, and the error that stopped the tick early (``None`` if none)."""

    new_accessions: list[str]
    cursor: DiscoveryCursor
    pages: int = 0
    windows: list[tuple[date, date]] = field(default_factory=list)
    error: Exception | None = None


def plan_tick(
    fetch: PageFetcher,
    cursor: DiscoveryCursor,
    today: date,
    is_known: Callable[[str], bool],
    max_new: int = 25,
    window_days: int = 7,
    max_pages: int = 4,
    errors: tuple[type[Exception], ...] = (DiscoveryError,),
) -> TickPlan:
    """List pages from the cursor on and collect accessions that ``is_known`` rejects.

    Windows are ``[high_water, min(high_water + window_days, today)]``, both ends inclusive. Pages
    hold ``max_new`` rows, so one page never brings more new accessions than the cap and pages are
    always consumed whole; another page is fetched only while the pages so far brought nothing new
    (the cap has room for a full page) and fewer than ``max_pages`` requests were made. When a window is exhausted the high-water
    mark moves to the window's end (offset 0) and the next window starts *at* that day: the last
    day is listed again, since sources keep publishing during it; its known accessions are filtered
    out. A window that ends today stops the tick (caught up). A cursor in the future is clamped to
    ``today``.

    An exception in ``errors`` raised by ``fetch`` ends the tick: on the first page it is re-raised
    (the caller keeps its cursor); later, the plan so far is returned with ``error`` set and the
    cursor of the last page that succeeded.
    """
    if max_new <= 0 or window_days <= 0 or max_pages <= 0:
        # window_days 0 would never move the high-water mark (each window ends where it starts).
        raise ValueError("max_new, window_days and max_pages must be positive")
    high_water = min(cursor.high_water, today)
    offset = cursor.offset if cursor.high_water <= today else 0
    plan = TickPlan(new_accessions=[], cursor=DiscoveryCursor(high_water, offset))
    seen: set[str] = set()
    # Another page (of up to max_new rows) only fits while nothing new has been collected yet.
    while plan.pages < max_pages and not plan.new_accessions:
        start = high_water
        end = min(high_water + timedelta(days=window_days), today)
        try:
            page = fetch(start, end, offset, max_new)
        except errors as exc:
            if plan.pages == 0:
                raise
            plan.error = exc
            break
        plan.pages += 1
        if (start, end) not in plan.windows:
            plan.windows.append((start, end))
        for accession in page.accessions:
            if accession in seen:
                continue
            seen.add(accession)
            if not is_known(accession):
                plan.new_accessions.append(accession)
        if page.next_offset is not None and page.next_offset > offset:
            offset = page.next_offset
        else:
            high_water, offset = end, 0
        plan.cursor = DiscoveryCursor(high_water, offset)
        if offset == 0 and end >= today:
            break
    # The page size equals the cap, so this never truncates; kept as a hard guarantee.
    plan.new_accessions = plan.new_accessions[:max_new]
    return plan


def make_fetcher(
    source: str,
    client: HttpClient,
    taxa: Sequence[int | str] = DEFAULT_TAXA,
    options: Mapping[str, Any] | None = None,
) -> PageFetcher:
    """A :data:`PageFetcher` for ``source`` (``GEO``, ``ENA`` or ``ARRAY_EXPRESS``) over ``client``.

    ``options`` are extra keyword arguments of the source's ``*_discover`` function (e.g.
    ``{"query": ...}`` for ArrayExpress). Unknown sources raise ``ValueError``.
    """
    extra = dict(options or {})
    if source == GEO:
        return lambda s, e, off, lim: geo_discover(client, s, e, taxa, max_results=lim, offset=off, **extra)
    if source == ENA:
        return lambda s, e, off, lim: ena_discover(client, s, e, taxa, max_results=lim, offset=off, **extra)
    if source == ARRAY_EXPRESS:
        return lambda s, e, off, lim: arrayexpress_discover(
            client, s, e, max_results=lim, offset=off, **extra
        )
    raise ValueError(f"unknown discovery source {source!r} (expected {GEO}, {ENA} or {ARRAY_EXPRESS})")
