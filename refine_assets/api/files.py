"""``computed_files/`` and ``original_files/`` (refine.bio ``views/computed_file.py``, ``original_file.py``).

Computed files are what the warehouse records as produced: per-sample outputs (the newest succeeded
output of each processing step: expression vectors, salmon ``quant.sf``), QN targets, transcriptome
indices and compendium/quantpendium versions (``api_files`` in the read model). Each gets a stable
integer id (the first 48 bits of an MD5 of its store key), so ids survive warehouse rebuilds.
``download_url`` is present only with an activated ``API-KEY``, as in refine.bio's list view.
"""

from __future__ import annotations

import hashlib
from typing import Any

import duckdb

from refine_assets.api.errors import not_found
from refine_assets.api.experiments import where_clause
from refine_assets.api.params import Page, Query, ordering, paginated, parse_int
from refine_assets.api.render import iso, json_cell, rows
from refine_assets.lib.storage import ArtifactStore


def stable_id(text: str) -> int:
    """A stable positive integer id (48 bits of MD5, safe in JSON numbers); same rule as read_model.sql."""
    return int(hashlib.md5(text.encode()).hexdigest()[:12], 16)


def display_filename(row: dict[str, Any]) -> str:
    if row["kind"] == "compendium":
        return f"{row['organism']}_compendium_v{row['compendium_version']}.zip"
    if row["kind"] == "quantpendium":
        return f"{row['organism']}_quantpendium_v{row['compendium_version']}.zip"
    return row["filename"]


def computed_file_relation(row: dict[str, Any], store: ArtifactStore | None = None) -> dict[str, Any]:
    """refine.bio's ``ComputedFileRelationSerializer``."""
    from refine_assets.api.downloads import s3_location

    bucket, key = s3_location(store, row.get("key")) if store is not None else ("", "")
    return {
        "id": row["id"],
        "filename": display_filename(row),
        "size_in_bytes": row["size_in_bytes"],
        "is_smashable": bool(row["is_smashable"]),
        "is_qc": False,
        "sha1": None,
        "s3_bucket": bucket,
        "s3_key": key,
        "created_at": iso(row["created_at"]),
        "last_modified": iso(row["created_at"]),
    }


LIST_FILTERS: dict[str, tuple[str, str]] = {
    "id": ("id", "number"),
    "result__id": ("id", "number"),
    "is_qn_target": ("(kind = 'qn_targets')", "bool"),
    "is_smashable": ("is_smashable", "bool"),
    "is_qc": ("false", "bool"),
    "is_compendia": ("(kind IN ('compendium', 'quantpendium'))", "bool"),
    "quant_sf_only": ("quant_sf_only", "bool"),
    "svd_algorithm": ("coalesce(details->>'$.svd_algorithm', 'NONE')", "upper"),
    "compendium_version": ("compendium_version", "number"),
    "created_at": ("created_at", "date"),
    "last_modified": ("created_at", "date"),
    "filename": ("filename", "text"),
}
ORDERING = {
    "id": "id",
    "created_at": "created_at",
    "last_modified": "created_at",
    "compendium_version": "compendium_version",
}


def _result(row: dict[str, Any], with_files: dict[str, Any] | None = None) -> dict[str, Any]:
    """``ComputationalResultNoFilesRelationSerializer`` (``with_files``: the detail's variant)."""
    from refine_assets.api.samples import processor

    ts = iso(row["created_at"])
    details = json_cell(row.get("details"))
    annotations = []
    if row["kind"] == "qn_targets":
        annotations = [
            {
                "id": row["id"],
                "data": {**(details or {}), "is_qn": True},
                "is_ccdl": True,
                "created_at": ts,
                "last_modified": ts,
            }
        ]
    elif details:
        annotations = [
            {"id": row["id"], "data": details, "is_ccdl": True, "created_at": ts, "last_modified": ts}
        ]
    out = {
        "id": row["id"],
        "commands": [],
        "processor": processor(row),
        "is_ccdl": True,
        "annotations": annotations,
        "organism_index": None,
        "time_start": None,
        "time_end": ts,
        "created_at": ts,
        "last_modified": ts,
    }
    if with_files is not None:
        out["files"] = [with_files]
        out = {
            k: out[k]
            for k in (
                "id",
                "commands",
                "processor",
                "is_ccdl",
                "annotations",
                "files",
                "organism_index",
                "time_start",
                "time_end",
                "created_at",
                "last_modified",
            )
        }
    return out


def serialize(
    row: dict[str, Any],
    samples: list[dict],
    store: ArtifactStore,
    download_url: str | None,
    *,
    detail: bool = False,
) -> dict[str, Any]:
    """``ComputedFileListSerializer`` (``download_url`` only when given) / ``DetailedComputedFileSerializer``."""
    from refine_assets.api.downloads import s3_location
    from refine_assets.api.experiments import experiment_sample

    bucket, key = s3_location(store, row.get("key"))
    rel = computed_file_relation(row, store)
    out: dict[str, Any] = {
        "id": row["id"],
        "filename": rel["filename"],
        "samples": [experiment_sample(s) for s in samples],
        "size_in_bytes": row["size_in_bytes"],
        "is_qn_target": row["kind"] == "qn_targets",
        "is_smashable": bool(row["is_smashable"]),
        "is_qc": False,
        "is_compendia": row["kind"] in ("compendium", "quantpendium"),
        "quant_sf_only": bool(row["quant_sf_only"]),
        "compendium_version": row["compendium_version"],
        "compendia_organism_name": row["organism"] if row["kind"] in ("compendium", "quantpendium") else None,
        "sha1": None,
        "sha256": row["sha256"],
        "s3_bucket": bucket,
        "s3_key": key,
        "s3_url": row["url"] if str(row["url"] or "").startswith("s3://") else None,
        "created_at": rel["created_at"],
        "last_modified": rel["last_modified"],
        "result": _result(row, rel if detail else None),
    }
    if download_url is not None or detail:
        out["download_url"] = download_url
    return out


def _samples_of(cur: duckdb.DuckDBPyConnection, files: list[dict]) -> dict[int, list[dict]]:
    accs = sorted({f["sample_accession"] for f in files if f.get("sample_accession")})
    if not accs:
        return {}
    found = {
        r["accession"]: r
        for r in rows(
            cur.execute(
                "SELECT accession, platform_name, platform_accession_code, technology, is_processed, "
                "is_unable_to_be_processed FROM api_samples WHERE list_contains(?, accession)",
                [accs],
            )
        )
    }
    return {f["id"]: [found[f["sample_accession"]]] for f in files if f.get("sample_accession") in found}


def list_computed_files(cur, query: Query, url: str, store: ArtifactStore, link) -> dict[str, Any]:
    """``GET computed_files/``; ``link(row)`` -> download URL, or None without an activated token."""
    query.check([*LIST_FILTERS, "samples", "limit", "offset", "ordering"])
    page = Page.from_query(query)
    order = ordering(query, ORDERING, ["-id"])
    where, params = where_clause(query, LIST_FILTERS)
    if (sample := query.get("samples")) is not None:
        sid = parse_int(sample, "samples")
        where = (
            where + " AND " if where else " WHERE "
        ) + "sample_accession IN (SELECT accession FROM api_samples WHERE id = ?)"
        params.append(sid)
    count = cur.execute(f"SELECT count(*) FROM api_files{where}", params).fetchone()[0]
    found = rows(
        cur.execute(
            f"SELECT * FROM api_files{where} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?",
            [*params, page.limit, page.offset],
        )
    )
    samples = _samples_of(cur, found)
    return paginated(
        [serialize(f, samples.get(f["id"], []), store, link(f)) for f in found], count, page, url, query
    )


def computed_file_row(cur, file_id: str) -> dict[str, Any]:
    if not file_id.isdigit():
        raise not_found()
    found = rows(cur.execute("SELECT * FROM api_files WHERE id = ?", [int(file_id)]))
    if not found:
        raise not_found()
    return found[0]


def computed_file_detail(cur, file_id: str, store: ArtifactStore, link) -> dict[str, Any]:
    row = computed_file_row(cur, file_id)
    return serialize(row, _samples_of(cur, [row]).get(row["id"], []), store, link(row), detail=True)


def download_keys(store: ArtifactStore, row: dict[str, Any]) -> tuple[list[str], str]:
    """Store keys a computed file's download consists of, and their common prefix.

    One key for a file; for a compendium version (a folder) every file in it, or the single ``.zip``
    a quantpendium folder holds.
    """
    key = row.get("key")
    if not key:
        return [], ""
    if row["kind"] in ("compendium", "quantpendium"):
        keys = [k for k in store.list_keys(key.rstrip("/") + "/")]
        zips = [k for k in keys if k.endswith(".zip")]
        if row["kind"] == "quantpendium" and len(zips) == 1:
            return zips, key
        return keys, key
    return [key], key.rsplit("/", 1)[0]


# --- original files ------------------------------------------------------------------------------
ORIGINAL_FILTERS: dict[str, tuple[str, str]] = {
    "id": ("o.id", "number"),
    "filename": ("o.filename", "text"),
    "source_filename": ("o.filename", "text"),
    "size_in_bytes": ("o.expected_size", "number"),
    "source_url": ("o.source_url", "text"),
    "is_archive": ("o.is_archive", "bool"),
    "has_raw": ("o.is_raw", "bool"),
    "created_at": ("e.created_at", "date"),
    "last_modified": ("e.last_modified", "date"),
}
ORIGINAL_ORDERING = {"id": "o.id", "created_at": "e.created_at", "last_modified": "e.last_modified"}
_ORIGINAL_SQL = (
    "SELECT o.*, e.created_at, e.last_modified, a.id AS sample_id FROM api_original_files o "
    "LEFT JOIN api_experiments e ON e.accession = o.experiment_accession "
    "LEFT JOIN api_samples a ON a.accession = o.sample_accession"
)


def _original(row: dict[str, Any], samples: list | None = None) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "filename": row["filename"],
        "samples": samples
        if samples is not None
        else ([row["sample_id"]] if row["sample_id"] is not None else []),
        "size_in_bytes": row["expected_size"],
        "sha1": None,
        "processor_jobs": [],
        "downloader_jobs": [],
        "source_url": row["source_url"],
        "source_filename": row["filename"],
        "is_archive": bool(row["is_archive"]),
        "has_raw": bool(row["is_raw"]),
        "created_at": iso(row["created_at"]),
        "last_modified": iso(row["last_modified"]),
    }
    if samples is not None:
        out["is_downloaded"] = None
    return out


def list_original_files(cur, query: Query, url: str) -> dict[str, Any]:
    query.check(
        [
            *ORIGINAL_FILTERS,
            "samples",
            "processor_jobs",
            "downloader_jobs",
            "sha1",
            "limit",
            "offset",
            "ordering",
        ]
    )
    page = Page.from_query(query)
    order = ordering(query, ORIGINAL_ORDERING, ["-id"])
    where, params = where_clause(query, ORIGINAL_FILTERS)
    extra = []
    if (sample := query.get("samples")) is not None:
        extra.append("a.id = ?")
        params.append(parse_int(sample, "samples"))
    for never in ("processor_jobs", "downloader_jobs", "sha1"):  # nothing recorded: matches nothing
        if query.get(never) is not None:
            extra.append("false")
    if extra:
        where = (where + " AND " if where else " WHERE ") + " AND ".join(extra)
    count = cur.execute(f"SELECT count(*) FROM ({_ORIGINAL_SQL}{where})", params).fetchone()[0]
    found = rows(
        cur.execute(
            f"{_ORIGINAL_SQL}{where} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?",
            [*params, page.limit, page.offset],
        )
    )
    return paginated([_original(r) for r in found], count, page, url, query)


def original_file_detail(cur, file_id: str) -> dict[str, Any]:
    from refine_assets.api.experiments import experiment_sample

    if not file_id.isdigit():
        raise not_found()
    found = rows(cur.execute(f"{_ORIGINAL_SQL} WHERE o.id = ?", [int(file_id)]))
    if not found:
        raise not_found()
    row = found[0]
    samples = rows(
        cur.execute(
            "SELECT accession, platform_name, platform_accession_code, technology, is_processed, "
            "is_unable_to_be_processed FROM api_samples WHERE accession = ?",
            [row["sample_accession"]],
        )
    )
    return _original(row, [experiment_sample(s) for s in samples])
