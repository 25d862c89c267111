"""``experiments/`` and ``experiments/<accession>/`` in refine.bio's shapes (``views/experiment.py``).

List: ``ExperimentSerializer`` fields, filters = refine.bio's ``filterset_fields`` (exact matches;
``organisms`` takes an organism name here, refine.bio took its numeric id), ordered by accession.
Detail: ``DetailedExperimentSerializer`` (annotations = the submitter's experiment attributes,
samples with their processing flags, the three sample counters). All from the read model.
"""

from __future__ import annotations

from typing import Any

import duckdb

from refine_assets.api.errors import invalid_filters, not_found
from refine_assets.api.params import Page, Query, paginated, parse_bool
from refine_assets.api.render import iso, one, rows
from refine_assets.lib.delivery.metadata import pretty_platform

# refine.bio filter -> (SQL column, kind)
LIST_FILTERS: dict[str, tuple[str, str]] = {
    "title": ("title", "text"),
    "description": ("description", "text"),
    "accession_code": ("accession", "text"),
    "alternate_accession_code": ("alternate_accession_code", "text"),
    "source_database": ("source_database", "text"),
    "source_url": ("source_url", "text"),
    "has_publication": ("has_publication", "bool"),
    "publication_title": ("publication_title", "text"),
    "publication_doi": ("publication_doi", "text"),
    "pubmed_id": ("pubmed_ids", "list"),
    "organisms": ("organism_names", "organism"),
    "submitter_institution": ("submitter_institution", "text"),
    "created_at": ("created_at", "date"),
    "last_modified": ("last_modified", "date"),
    "source_first_published": ("source_first_published", "date"),
    "source_last_modified": ("source_last_modified", "date"),
}


def where_clause(query: Query, filters: dict[str, tuple[str, str]]) -> tuple[str, list[Any]]:
    """``WHERE`` SQL and parameters for exact-match filters (repeated parameters must all match)."""
    terms: list[str] = []
    params: list[Any] = []
    for name, value in query.items:
        if name not in filters:
            continue
        col, kind = filters[name]
        if kind == "bool":
            terms.append(f"{col} = ?")
            params.append(parse_bool(value, name))
        elif kind == "list":
            terms.append(f"list_contains({col}, ?)")
            params.append(value)
        elif kind == "organism":
            terms.append(f"list_contains({col}, ?)")
            params.append(value.strip().upper().replace(" ", "_"))
        elif kind == "upper":
            terms.append(f"{col} = ?")
            params.append(value.strip().upper().replace(" ", "_"))
        elif kind == "date":
            terms.append(f"CAST({col} AS DATE) = TRY_CAST(? AS DATE)")
            params.append(value)
            if len(value) < 10:
                raise invalid_filters([name], f"{name} must be a date (YYYY-MM-DD), got {value!r}")
        elif kind == "number":
            try:
                params.append(float(value))
            except ValueError:
                raise invalid_filters([name], f"{name} must be a number, got {value!r}") from None
            terms.append(f"{col} = ?")
        else:
            terms.append(f"{col} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(terms)) if terms else "", params


def _pubmed(ids: list[str] | None) -> str:
    return (ids or [""])[0] or ""


def _pretty_platforms(pairs: list[dict] | None) -> list[str]:
    return sorted({p for p in (pretty_platform(x["name"], x["code"]) for x in pairs or []) if p})


def serialize(row: dict[str, Any]) -> dict[str, Any]:
    """refine.bio's ``ExperimentSerializer``."""
    return {
        "id": row["id"],
        "title": row["title"] or "",
        "description": row["description"] or "",
        "accession_code": row["accession"],
        "alternate_accession_code": row["alternate_accession_code"],
        "source_database": row["source_database"],
        "source_url": row["source_url"] or "",
        "platforms": list(row["platform_names"]),
        "pretty_platforms": _pretty_platforms(row["platform_pairs"]),
        "processed_samples": list(row["processed_samples"]),
        "has_publication": bool(row["has_publication"]),
        "publication_title": row["publication_title"] or "",
        "publication_doi": row["publication_doi"] or "",
        "publication_authors": list(row["publication_authors"] or []),
        "pubmed_id": _pubmed(row["pubmed_ids"]),
        "total_samples_count": row["num_total_samples"],
        "organism_names": list(row["organism_names"]),
        "submitter_institution": row["submitter_institution"] or "",
        "created_at": iso(row["created_at"]),
        "last_modified": iso(row["last_modified"]),
        "source_first_published": iso(row["source_first_published"]),
        "source_last_modified": iso(row["source_last_modified"]),
        "sample_metadata": list(row["sample_metadata_fields"]),
        "technologies": list(row["technologies"]),
    }


def list_experiments(cur: duckdb.DuckDBPyConnection, query: Query, url: str) -> dict[str, Any]:
    query.check([*LIST_FILTERS, "limit", "offset"])
    page = Page.from_query(query)
    where, params = where_clause(query, LIST_FILTERS)
    count = cur.execute(f"SELECT count(*) FROM api_experiments{where}", params).fetchone()[0]
    cur.execute(
        f"SELECT * FROM api_experiments{where} ORDER BY accession LIMIT ? OFFSET ?",
        [*params, page.limit, page.offset],
    )
    return paginated([serialize(r) for r in rows(cur)], count, page, url, query)


def _annotation_data(attributes: list[dict] | None) -> dict[str, Any]:
    """Submitter key/values as one dict; a repeated key keeps every value as a list, in order."""
    data: dict[str, Any] = {}
    for kv in attributes or []:
        key, value = kv["key"], kv["value"]
        if key in data:
            prev = data[key]
            data[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            data[key] = value
    return data


def experiment_detail(cur: duckdb.DuckDBPyConnection, accession: str) -> dict[str, Any]:
    """refine.bio's ``DetailedExperimentSerializer``; 404 for an unknown accession."""
    row = one(cur.execute("SELECT * FROM api_experiments WHERE accession = ?", [accession]))
    if row is None:
        raise not_found()
    attrs = cur.execute(
        "SELECT experiment_attributes FROM wh.experiments WHERE accession = ?", [accession]
    ).fetchone()
    samples = rows(
        cur.execute(
            "SELECT a.accession, a.platform_name, a.platform_accession_code, a.technology, a.is_processed, "
            "a.is_unable_to_be_processed FROM api_membership m JOIN api_samples a ON a.accession = m.accession "
            "WHERE m.experiment_accession = ? ORDER BY a.accession",
            [accession],
        )
    )
    base = serialize(row)
    return {
        "id": row["id"],
        "title": base["title"],
        "description": base["description"],
        "annotations": [
            {
                "data": _annotation_data(attrs[0] if attrs else None),
                "is_ccdl": False,
                "created_at": base["created_at"],
                "last_modified": base["last_modified"],
            }
        ],
        "samples": [experiment_sample(s) for s in samples],
        "protocol_description": {},
        "accession_code": row["accession"],
        "alternate_accession_code": row["alternate_accession_code"],
        "source_database": row["source_database"],
        "source_url": base["source_url"],
        "has_publication": base["has_publication"],
        "publication_title": base["publication_title"],
        "publication_doi": base["publication_doi"],
        "publication_authors": base["publication_authors"],
        "pubmed_id": base["pubmed_id"],
        "source_first_published": base["source_first_published"],
        "source_last_modified": base["source_last_modified"],
        "submitter_institution": base["submitter_institution"],
        "last_modified": base["last_modified"],
        "created_at": base["created_at"],
        "organism_names": base["organism_names"],
        "sample_metadata": base["sample_metadata"],
        "num_total_samples": row["num_total_samples"],
        "num_processed_samples": row["num_processed_samples"],
        "num_downloadable_samples": row["num_downloadable_samples"],
    }


def experiment_sample(s: dict[str, Any]) -> dict[str, Any]:
    """refine.bio's ``DetailedExperimentSampleSerializer`` (also used by files)."""
    return {
        "accession_code": s["accession"],
        "platform_name": s["platform_name"],
        "pretty_platform": pretty_platform(s["platform_name"], s["platform_accession_code"]),
        "technology": s["technology"],
        "is_processed": bool(s["is_processed"]),
        "is_unable_to_be_processed": bool(s["is_unable_to_be_processed"]),
    }
