"""Organisms, platforms, institutions, QN targets, transcriptome indices, compendia and stats-about.

refine.bio views ``organism.py``, ``platform.py``, ``institution.py``, ``qn_targets.py``,
``transcriptome_index.py``, ``compendium_result.py`` and ``stats.py::AboutStats``, from the warehouse
(``organisms``, ``samples``, ``reference_artifacts``, ``compendia``) and the records in storage.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from refine_assets.api.errors import not_found
from refine_assets.api.experiments import where_clause
from refine_assets.api.files import computed_file_relation, stable_id
from refine_assets.api.params import Page, Query, ordering, paginated
from refine_assets.api.render import iso, json_cell, rows
from refine_assets.lib.storage import ArtifactStore


def normalize_organism(name: str) -> str:
    """refine.bio's lookup form: upper case, spaces to ``_``."""
    return name.strip().upper().replace(" ", "_")


# --- organisms, platforms, institutions -----------------------------------------------------------
_ORGANISM_SQL = """
SELECT o.name, o.taxonomy_id,
       EXISTS (SELECT 1 FROM wh.compendia c WHERE c.organism = o.name AND c.kind = 'compendium') AS has_compendia,
       EXISTS (SELECT 1 FROM wh.compendia c WHERE c.organism = o.name AND c.kind = 'quantpendium')
           AS has_quantfile_compendia
FROM wh.organisms o
"""
ORGANISM_FILTERS = {
    "has_compendia": ("has_compendia", "bool"),
    "has_quantfile_compendia": ("has_quantfile_compendia", "bool"),
}


def list_organisms(cur: duckdb.DuckDBPyConnection, query: Query, url: str) -> dict[str, Any]:
    query.check([*ORGANISM_FILTERS, "limit", "offset"])
    page = Page.from_query(query)
    where, params = where_clause(query, ORGANISM_FILTERS)
    base = f"SELECT * FROM ({_ORGANISM_SQL}){where}"
    count = cur.execute(f"SELECT count(*) FROM ({base})", params).fetchone()[0]
    found = rows(cur.execute(f"{base} ORDER BY name LIMIT ? OFFSET ?", [*params, page.limit, page.offset]))
    return paginated(found, count, page, url, query)


def organism_detail(cur: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    found = rows(cur.execute(f"SELECT * FROM ({_ORGANISM_SQL}) WHERE name = ?", [normalize_organism(name)]))
    if not found:
        raise not_found()
    return found[0]


def list_platforms(cur: duckdb.DuckDBPyConnection, query: Query) -> list[dict[str, Any]]:
    """Unpaginated distinct ``{platform_accession_code, platform_name}`` of the samples."""
    query.check([])
    return rows(
        cur.execute(
            "SELECT DISTINCT platform_accession_code, platform_name FROM api_samples "
            "ORDER BY platform_accession_code NULLS LAST, platform_name NULLS LAST"
        )
    )


def list_institutions(cur: duckdb.DuckDBPyConnection, query: Query) -> list[dict[str, Any]]:
    """Unpaginated distinct ``{submitter_institution}`` of the experiments."""
    query.check([])
    return rows(
        cur.execute(
            "SELECT DISTINCT submitter_institution FROM api_experiments ORDER BY submitter_institution NULLS LAST"
        )
    )


# --- QN targets -----------------------------------------------------------------------------------
def list_qn_targets(cur: duckdb.DuckDBPyConnection, query: Query) -> list[dict[str, Any]]:
    """Organisms with a QN target (``OrganismRelationSerializer``: name, taxonomy_id), unpaginated."""
    query.check([])
    return rows(
        cur.execute(
            "SELECT q.organism AS name, o.taxonomy_id FROM api_qn_organisms q "
            "LEFT JOIN wh.organisms o ON o.name = q.organism ORDER BY q.organism"
        )
    )


def qn_target_detail(
    cur: duckdb.DuckDBPyConnection, organism: str, store: ArtifactStore, public_link
) -> dict[str, Any]:
    """refine.bio's ``QNTargetSerializer`` (404 ``Don't have a target for that organism!``)."""
    from refine_assets.api.downloads import s3_location
    from refine_assets.api.files import _result

    found = rows(
        cur.execute(
            "SELECT * FROM api_files WHERE kind = 'qn_targets' AND upper(organism) = ?",
            [normalize_organism(organism)],
        )
    )
    if not found:
        raise not_found("Don't have a target for that organism!")
    row = found[0]
    details = json_cell(row["details"]) or {}
    size = _size(store, row.get("key"))
    bucket, key = s3_location(store, row.get("key"))
    return {
        "id": row["id"],
        "filename": row["filename"],
        "size_in_bytes": size,
        "is_qn_target": True,
        "sha1": None,
        "sha256": row["sha256"],
        "s3_bucket": bucket,
        "s3_key": key,
        "s3_url": public_link(row),
        "created_at": iso(row["created_at"]),
        "last_modified": iso(row["created_at"]),
        "result": _result({**row, "details": details}),
    }


def _size(store: ArtifactStore, key: str | None) -> int | None:
    from refine_assets.lib.storage import ArtifactNotFoundError

    if not key:
        return None
    try:
        return store.size(key)
    except (ArtifactNotFoundError, ValueError):
        return None


# --- transcriptome indices ------------------------------------------------------------------------
def _index_rows(cur: duckdb.DuckDBPyConnection, store: ArtifactStore) -> list[dict[str, Any]]:
    """Every transcriptome index with the fields of its record in storage (organism, length, salmon)."""
    out = []
    for row in rows(
        cur.execute("SELECT * FROM api_files WHERE kind = 'transcriptome_index' ORDER BY created_at DESC, id")
    ):
        record: dict[str, Any] = {}
        record_key = (row.get("key") or "").rsplit("/", 1)[0] + "/record.json"
        if row.get("key") and store.exists(record_key):
            record = json.loads(store.get_bytes(record_key))
        name = str(row["organism"] or "")
        organism, _, length = name.rpartition("_")
        out.append(
            {
                **row,
                "organism_name": record.get("organism") or organism,
                "length": (record.get("length") or length).lower(),
                "salmon_version": f"salmon {record['salmon_version']}"
                if record.get("salmon_version")
                else None,
                "assembly_name": record.get("assembly"),
                "release_version": str(record["ensembl_release"]) if record.get("ensembl_release") else None,
            }
        )
    return out


def _index(row: dict[str, Any], link: str | None) -> dict[str, Any]:
    """refine.bio's ``OrganismIndexSerializer``."""
    return {
        "id": row["id"],
        "assembly_name": row["assembly_name"],
        "organism_name": row["organism_name"],
        "database_name": "EnsemblMain" if row["release_version"] else None,
        "release_version": row["release_version"],
        "index_type": f"TRANSCRIPTOME_{row['length'].upper()}",
        "salmon_version": row["salmon_version"],
        "download_url": link,
        "result_id": row["id"],
        "last_modified": iso(row["created_at"]),
    }


INDEX_ORDERING = {"created_at": "created_at", "salmon_version": "salmon_version"}


def list_transcriptome_indices(
    cur, query: Query, url: str, store: ArtifactStore, public_link
) -> dict[str, Any]:
    query.check(
        [
            "organism__name",
            "length",
            "salmon_version",
            "index_type",
            "result_id",
            "limit",
            "offset",
            "ordering",
        ]
    )
    page = Page.from_query(query)
    found = _index_rows(cur, store)
    if (org := query.get("organism__name")) is not None:
        found = [r for r in found if r["organism_name"] == normalize_organism(org)]
    if (length := query.get("length")) is not None:
        found = [r for r in found if r["length"] == length.strip().lower()]
    if (index_type := query.get("index_type")) is not None:
        found = [r for r in found if f"TRANSCRIPTOME_{r['length'].upper()}" == index_type.strip().upper()]
    if (salmon := query.get("salmon_version")) is not None:
        found = [r for r in found if r["salmon_version"] == salmon.strip()]
    if (result_id := query.get("result_id")) is not None:
        found = [r for r in found if str(r["id"]) == result_id.strip()]
    terms = ordering(query, INDEX_ORDERING, ["-created_at"])
    for term in reversed(terms):
        col, direction = term.split()[:2]
        found.sort(key=lambda r, c=col: (r[c] is None, r[c] or ""), reverse=direction == "DESC")
    window = found[page.offset : page.offset + page.limit]
    return paginated([_index(r, public_link(r)) for r in window], len(found), page, url, query)


def transcriptome_index_detail(cur, index_id: str, store: ArtifactStore, public_link) -> dict[str, Any]:
    for r in _index_rows(cur, store):
        if str(r["id"]) == index_id:
            return _index(r, public_link(r))
    raise not_found()


# --- compendia ------------------------------------------------------------------------------------
COMPENDIA_FILTERS = {
    "primary_organism__name": ("organism", "upper"),
    "compendium_version": ("compendium_version", "number"),
    "quant_sf_only": ("quant_sf_only", "bool"),
    "result__id": ("id", "number"),
}
COMPENDIA_ORDERING = {
    "primary_organism__name": "organism",
    "compendium_version": "compendium_version",
    "id": "id",
}


def _compendium(row: dict[str, Any], store: ArtifactStore, link: str | None) -> dict[str, Any]:
    """refine.bio's ``CompendiumResultSerializer`` (``...WithUrl...`` when ``link``)."""
    details = json_cell(row.get("details")) or {}
    computed = computed_file_relation(row, store)
    if link is not None:
        computed["download_url"] = link
    return {
        "id": stable_id(f"compendium:{row['kind']}:{row['organism']}:{row['compendium_version']}"),
        "primary_organism_name": row["organism"],
        "organism_names": sorted(set(details.get("organisms") or [row["organism"]])),
        "svd_algorithm": str(
            details.get("svd_algorithm") or ("NONE" if row["kind"] == "quantpendium" else "ARPACK")
        ).upper(),
        "quant_sf_only": row["kind"] == "quantpendium",
        "compendium_version": row["compendium_version"],
        "computed_file": computed,
    }


def list_compendia(cur, query: Query, url: str, store: ArtifactStore, link) -> dict[str, Any]:
    query.check([*COMPENDIA_FILTERS, "latest_version", "limit", "offset", "ordering"])
    page = Page.from_query(query)
    where, params = where_clause(query, COMPENDIA_FILTERS)
    base = f"SELECT * FROM api_files WHERE kind IN ('compendium', 'quantpendium'){where.replace(' WHERE ', ' AND ', 1)}"
    latest = query.bool("latest_version")
    if latest:
        base = f"SELECT * FROM ({base}) QUALIFY compendium_version = max(compendium_version) OVER (PARTITION BY organism, kind)"
    order = ordering(query, COMPENDIA_ORDERING, ["primary_organism__name"])
    count = cur.execute(f"SELECT count(*) FROM ({base})", params).fetchone()[0]
    found = rows(
        cur.execute(
            f"{base} ORDER BY {', '.join(order)}, kind, compendium_version LIMIT ? OFFSET ?",
            [*params, page.limit, page.offset],
        )
    )
    return paginated([_compendium(r, store, link(r)) for r in found], count, page, url, query)


def compendium_detail(cur, compendium_id: str, store: ArtifactStore, link) -> dict[str, Any]:
    for r in rows(cur.execute("SELECT * FROM api_files WHERE kind IN ('compendium', 'quantpendium')")):
        if (
            str(stable_id(f"compendium:{r['kind']}:{r['organism']}:{r['compendium_version']}"))
            == compendium_id
        ):
            return _compendium(r, store, link(r))
    raise not_found()


# --- stats-about ----------------------------------------------------------------------------------
DUMMY_ABOUT = {
    "samples_available": 904953 + 391022,
    "total_size_in_bytes": 832195361132962,
    "supported_organisms": 43 + 159,
    "experiments_processed": 35785 + 8661,
}


def stats_about(cur: duckdb.DuckDBPyConnection, query: Query) -> dict[str, Any]:
    """refine.bio's ``AboutStats``: samples available (processed, or RNA-seq with a quant.sf only),
    size of the original files, organisms with a QN target or quant.sf-only samples, experiments with a
    processed sample (refine.bio's code counted ``> 1``)."""
    query.check(["dummy"])
    if query.get("dummy"):
        return dict(DUMMY_ABOUT)
    quant_only = (
        "SELECT DISTINCT f.sample_accession FROM api_files f JOIN api_samples a ON a.accession = f.sample_accession "
        "WHERE f.step = 'salmon' AND NOT a.is_processed"
    )
    samples = cur.execute(
        f"SELECT (SELECT count(*) FROM api_samples WHERE is_processed) + (SELECT count(*) FROM ({quant_only}))"
    ).fetchone()[0]
    size = cur.execute("SELECT coalesce(sum(expected_size), 0) FROM wh.original_files").fetchone()[0]
    organisms = cur.execute(
        f"SELECT count(*) FROM (SELECT organism FROM api_qn_organisms UNION SELECT a.organism FROM api_samples a "
        f"WHERE a.accession IN ({quant_only}) AND a.organism IS NOT NULL)"
    ).fetchone()[0]
    experiments = cur.execute(
        "SELECT count(*) FROM api_experiments WHERE num_processed_samples > 0"
    ).fetchone()[0]
    return {
        "samples_available": int(samples),
        "total_size_in_bytes": int(size),
        "supported_organisms": int(organisms),
        "experiments_processed": int(experiments),
    }
