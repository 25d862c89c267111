"""``search/``: experiment search with refine.bio's filters, ordering and facets (``experiment_document.py``).

Text: the ``search`` parameter is split into terms (letters, digits, ``.``, ``-``, ``_``; at most 20).
refine.bio's Elasticsearch query matched any term in any field, boosted per field (title 10, publication
authors 8, sample keywords 7, publication title 5, institution 3, description 2, the rest 1) and ranked
by score. Here, where DuckDB's ``fts`` extension is loaded, the score is the field-boosted sum of BM25
scores (``match_bm25`` per field); otherwise (the documented fallback) it is the same boosted sum of
case-insensitive substring matches (``contains`` over the lower-case text columns of the read model,
which also finds prefixes the way refine.bio's edge n-grams did). Experiments with score 0 are not hits.

Filters (repeated parameters OR-ed, different parameters AND-ed): ``technology`` (any case),
``has_publication``, ``accession_code``, ``alternate_accession_code``, ``platform``, ``organism``,
``downloadable_organism``, ``sample_keywords``, ``num_processed_samples`` / ``num_downloadable_samples``
with ``__gt``, ``__gte``, ``__lt``, ``__lte``, ``__in`` (``a__b``) and ``__range`` (``a__b``), ``id``.

Facets (computed in SQL over the hits): for ``technology`` (lower case), ``downloadable_organism_names``,
``platform_accession_codes`` and ``has_publication`` (``"true"``/``"false"``), each bucket's value is the
number of distinct downloadable samples of the experiments in the bucket - what refine.bio's
``FacetedSearchFilterBackendExtended`` returned (there a cardinality estimate, here exact).
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from refine_assets.api.errors import invalid_filters
from refine_assets.api.params import Page, Query, ordering, paginated, parse_bool
from refine_assets.api.render import iso, rows
from refine_assets.api.snapshot import FTS_FIELDS

BOOSTS = dict(zip(FTS_FIELDS, (10, 8, 7, 5, 3, 2, 1), strict=True))
MAX_TERMS = 20
TERM_RE = re.compile(r"[\w][\w.\-]*", re.UNICODE)

TEXT_FILTERS = {
    "accession_code": "accession",
    "alternate_accession_code": "alternate_accession_code",
}
LIST_FILTERS = {
    "platform": "platform_accession_codes",
    "organism": "organism_names",
    "downloadable_organism": "downloadable_organism_names",
}
NUMBER_FILTERS = ("num_processed_samples", "num_downloadable_samples")
NUMBER_LOOKUPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
ORDERING = {
    "id": "e.id",
    "title": "e.title",
    "description": "e.description",
    "num_total_samples": "e.num_total_samples",
    "num_downloadable_samples": "e.num_downloadable_samples",
    "source_first_published": "e.source_first_published",
    "_score": "h.score",
}
DEFAULT_ORDER = ["-_score", "-num_total_samples", "id"]


def allowed_params() -> list[str]:
    names = [
        "search",
        "limit",
        "offset",
        "ordering",
        "technology",
        "has_publication",
        "sample_keywords",
        "id",
        "id__in",
    ]
    names += [*TEXT_FILTERS, *LIST_FILTERS]
    names += [f"{k}__in" for k in (*TEXT_FILTERS, *LIST_FILTERS, "technology")]
    for f in NUMBER_FILTERS:
        names += [f, f"{f}__in", f"{f}__range", *(f"{f}__{op}" for op in NUMBER_LOOKUPS)]
    return names


def terms_of(text: str) -> list[str]:
    return [t.lower() for t in TERM_RE.findall(text)][:MAX_TERMS]


def _score_sql(terms: list[str], fts: bool) -> tuple[str, list[Any]]:
    if not terms:
        return "0.0", []
    if fts:
        query = " ".join(terms)
        parts = [
            f"{boost} * coalesce(fts_main_api_experiments.match_bm25(accession, ?, fields := '{f}'), 0)"
            for f, boost in BOOSTS.items()
        ]
        return "(" + " + ".join(parts) + ")", [query] * len(parts)
    parts, params = [], []
    for term in terms:
        for f, boost in BOOSTS.items():
            parts.append(f"{boost} * contains({f}, ?)::INTEGER")
            params.append(term)
    return "(" + " + ".join(parts) + ")", params


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise invalid_filters([name], f"{name} must be a number, got {value!r}") from None


def _param_sql(name: str, values: list[str]) -> tuple[str, list[Any]]:
    """SQL and parameters for all values of one filter parameter (values are alternatives)."""
    base, _, lookup = name.partition("__")
    if base in NUMBER_FILTERS and lookup in NUMBER_LOOKUPS:
        return " AND ".join([f"{base} {NUMBER_LOOKUPS[lookup]} ?"] * len(values)), [
            _number(v, name) for v in values
        ]
    if base in NUMBER_FILTERS and lookup == "range":
        sql, params = [], []
        for v in values:
            lo, _, hi = v.partition("__")
            sql.append(f"{base} BETWEEN ? AND ?")
            params += [_number(lo, name), _number(hi or lo, name)]
        return " AND ".join(sql), params
    alts = [x for v in values for x in (v.split("__") if lookup == "in" else [v])]
    if base == "technology":
        return " OR ".join(["lower(technology) = lower(?)"] * len(alts)), alts
    if base in TEXT_FILTERS:
        return " OR ".join([f"{TEXT_FILTERS[base]} = ?"] * len(alts)), alts
    if base in LIST_FILTERS:
        return " OR ".join([f"list_contains({LIST_FILTERS[base]}, ?)"] * len(alts)), alts
    if base == "sample_keywords":
        return " OR ".join(["contains(t_keywords, lower(?))"] * len(alts)), alts
    if base == "has_publication":
        return " OR ".join(["has_publication = ?"] * len(alts)), [parse_bool(v, name) for v in alts]
    if base == "id":
        return " OR ".join(["id = ?"] * len(alts)), [int(_number(v, name)) for v in alts]
    if base in NUMBER_FILTERS:
        return " OR ".join([f"{base} = ?"] * len(alts)), [_number(v, name) for v in alts]
    raise invalid_filters([name])


def _ordered_filters(query: Query) -> tuple[str, list[Any]]:
    """WHERE SQL for every filter parameter: one parameter's values OR-ed, parameters AND-ed."""
    by_name: dict[str, list[str]] = {}
    for name, value in query.items:
        if name not in ("search", "limit", "offset", "ordering"):
            by_name.setdefault(name, []).append(value)
    sql: list[str] = []
    params: list[Any] = []
    for name, values in by_name.items():
        t, p = _param_sql(name, values)
        sql.append(f"({t})")
        params += p
    return (" WHERE " + " AND ".join(sql)) if sql else "", params


def search(cur: duckdb.DuckDBPyConnection, query: Query, url: str, fts: bool) -> dict[str, Any]:
    query.check(allowed_params())
    page = Page.from_query(query)
    text = query.get("search") or ""
    terms = terms_of(text)
    score_sql, score_params = _score_sql(terms, fts)
    where, params = _ordered_filters(query)
    if terms:
        where = (where + " AND " if where else " WHERE ") + f"{score_sql} > 0"
        params = [*params, *score_params]
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE hits AS SELECT accession, {score_sql} AS score FROM api_experiments{where}",
        [*score_params, *params],
    )
    count = cur.execute("SELECT count(*) FROM hits").fetchone()[0]
    order = ordering(query, ORDERING, DEFAULT_ORDER if terms else DEFAULT_ORDER[1:])
    found = rows(
        cur.execute(
            f"SELECT e.*, h.score FROM hits h JOIN api_experiments e ON e.accession = h.accession "
            f"ORDER BY {', '.join(order)}, e.accession LIMIT ? OFFSET ?",
            [page.limit, page.offset],
        )
    )
    facets = _facets(cur)
    cur.execute("DROP TABLE hits")
    return paginated([serialize(r) for r in found], count, page, url, query, {"facets": facets})


FACET_SQL = """
WITH dl AS (
    SELECT e.technology, e.has_publication, e.downloadable_organism_names, e.platform_accession_codes,
           d.accession AS sample
    FROM hits h JOIN api_experiments e ON e.accession = h.accession
    LEFT JOIN api_experiment_downloadable d ON d.experiment_accession = h.accession
)
SELECT 'technology' AS facet, lower(technology) AS key, count(DISTINCT sample) AS n
FROM dl WHERE technology IS NOT NULL GROUP BY 2
UNION ALL
SELECT 'has_publication', CASE WHEN has_publication THEN 'true' ELSE 'false' END, count(DISTINCT sample)
FROM dl GROUP BY 2
UNION ALL
SELECT 'downloadable_organism_names', k, count(DISTINCT sample)
FROM (SELECT unnest(downloadable_organism_names) AS k, sample FROM dl) GROUP BY 2
UNION ALL
SELECT 'platform_accession_codes', k, count(DISTINCT sample)
FROM (SELECT unnest(platform_accession_codes) AS k, sample FROM dl) GROUP BY 2
"""


def _facets(cur: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {
        "technology": {},
        "downloadable_organism_names": {},
        "platform_accession_codes": {},
        "has_publication": {},
    }
    for facet, key, n in sorted(cur.execute(FACET_SQL).fetchall(), key=lambda r: (r[0], -r[2], r[1])):
        out[facet][key] = n
    return out


def serialize(row: dict[str, Any]) -> dict[str, Any]:
    """refine.bio's ``ExperimentDocumentSerializer``."""
    return {
        "id": row["id"],
        "title": row["title"] or "",
        "publication_title": row["publication_title"] or "",
        "description": row["description"] or "",
        "technology": row["technology"],
        "accession_code": row["accession"],
        "alternate_accession_code": row["alternate_accession_code"],
        "submitter_institution": row["submitter_institution"] or "",
        "has_publication": bool(row["has_publication"]),
        "publication_doi": row["publication_doi"] or "",
        "publication_authors": list(row["publication_authors"] or []),
        "sample_metadata_fields": list(row["sample_metadata_fields"]),
        "platform_names": list(row["platform_names"]),
        "platform_accession_codes": list(row["platform_accession_codes"]),
        "organism_names": list(row["organism_names"]),
        "downloadable_organism_names": list(row["downloadable_organism_names"]),
        "pubmed_id": (row["pubmed_ids"] or [""])[0] or "",
        "num_total_samples": row["num_total_samples"],
        "num_processed_samples": row["num_processed_samples"],
        "num_downloadable_samples": row["num_downloadable_samples"],
        "source_first_published": iso(row["source_first_published"]),
    }
