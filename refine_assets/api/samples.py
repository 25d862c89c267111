"""``samples/`` and ``samples/<accession>/`` in refine.bio's ``DetailedSampleSerializer`` shape.

A sample here is one accession (the warehouse keys samples by accession and experiment; a sample in
several experiments lists them all in ``experiment_accession_codes`` and takes its other fields from
its first experiment). Filters: refine.bio's ``filterset_fields`` (exact matches) plus ``ids``,
``organism__name``, ``dataset_id``, ``experiment_accession_code``, ``accession_codes`` and
``filter_by`` (case-insensitive substring over accession, title and the harmonized fields, as
refine.bio's ``icontains``); ``ordering`` over the same fields, default ``-is_processed``
(ties by accession). Nested objects (annotations, results, files, last job) are fetched only for the
page's samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb

from refine_assets.api.errors import invalid_filters, not_found
from refine_assets.api.experiments import where_clause
from refine_assets.api.files import computed_file_relation
from refine_assets.api.params import Page, Query, ordering, paginated
from refine_assets.api.render import iso, json_cell, rows
from refine_assets.lib.delivery.metadata import pretty_platform
from refine_assets.lib.storage import ArtifactStore

HARMONIZED = (
    "sex",
    "age",
    "specimen_part",
    "genetic_information",
    "developmental_stage",
    "disease",
    "disease_stage",
    "cell_line",
    "treatment",
    "race",
    "subject",
    "compound",
    "time",
)

LIST_FILTERS: dict[str, tuple[str, str]] = {
    "title": ("title", "text"),
    "organism": ("organism", "upper"),
    "organism__name": ("organism", "upper"),
    "source_database": ("source_database", "text"),
    "source_archive_url": ("source_url", "text"),
    "has_raw": ("has_raw", "bool"),
    "platform_name": ("platform_name", "text"),
    "technology": ("technology", "text"),
    "manufacturer": ("manufacturer", "text"),
    **{f: (f, "number" if f == "age" else "text") for f in HARMONIZED},
    "is_processed": ("is_processed", "bool"),
    "is_unable_to_be_processed": ("is_unable_to_be_processed", "bool"),
    "is_public": ("true", "bool"),
}
SPECIAL = ("ids", "dataset_id", "experiment_accession_code", "accession_codes", "filter_by")
ORDERING = {
    "id": "id",
    "title": "title",
    "accession_code": "accession",
    "source_database": "source_database",
    "organism": "organism",
    "platform_accession_code": "platform_accession_code",
    "platform_name": "platform_name",
    "technology": "technology",
    "manufacturer": "manufacturer",
    "has_raw": "has_raw",
    **{f: f for f in HARMONIZED},
    "is_processed": "is_processed",
    "is_unable_to_be_processed": "is_unable_to_be_processed",
    "created_at": "created_at",
    "last_modified": "last_modified",
}


def list_samples(
    cur: duckdb.DuckDBPyConnection,
    query: Query,
    url: str,
    dataset_samples: Callable[[str], dict[str, list[str]] | None],
    store: ArtifactStore | None = None,
) -> dict[str, Any]:
    """``GET samples/``. ``dataset_samples(id)`` -> the dataset's ``data`` (None: unknown dataset)."""
    query.check([*LIST_FILTERS, *SPECIAL, "limit", "offset", "ordering"])
    page = Page.from_query(query)
    order = [*ordering(query, ORDERING, ["-is_processed"]), "accession ASC"]
    where, params = where_clause(query, LIST_FILTERS)
    terms = [where.removeprefix(" WHERE ")] if where else []
    if (ids := query.get("ids")) is not None:
        try:
            id_list = [int(x) for x in ids.split(",") if x.strip()]
        except ValueError:
            raise invalid_filters(["ids"], f"ids must be comma-separated integers, got {ids!r}") from None
        terms.append("list_contains(?, id)")
        params.append(id_list)
    if codes := query.get("accession_codes"):
        terms.append("list_contains(?, accession)")
        params.append([c.strip() for c in codes.split(",") if c.strip()])
    if exp := query.get("experiment_accession_code"):
        if cur.execute("SELECT 1 FROM api_experiments WHERE accession = ?", [exp]).fetchone() is None:
            raise not_found()
        terms.append("accession IN (SELECT accession FROM api_membership WHERE experiment_accession = ?)")
        params.append(exp)
    if ds := query.get("dataset_id"):
        data = dataset_samples(ds)
        if data is None:
            raise not_found()
        listed = sorted({s for v in data.values() if v != ["ALL"] for s in v})
        all_exps = sorted(e for e, v in data.items() if v == ["ALL"])
        terms.append(
            "(list_contains(?, accession) OR accession IN "
            "(SELECT accession FROM api_membership WHERE list_contains(?, experiment_accession)))"
        )
        params += [listed, all_exps]
    if filter_by := query.get("filter_by"):
        terms.append("contains(search_text, ?)")
        params.append(filter_by.lower())
    where = (" WHERE " + " AND ".join(terms)) if terms else ""
    count = cur.execute(f"SELECT count(*) FROM api_samples{where}", params).fetchone()[0]
    cur.execute(
        f"SELECT * FROM api_samples{where} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?",
        [*params, page.limit, page.offset],
    )
    return paginated(serialize_many(cur, rows(cur), store), count, page, url, query)


def sample_detail(
    cur: duckdb.DuckDBPyConnection, accession: str, store: ArtifactStore | None = None
) -> dict[str, Any]:
    found = rows(cur.execute("SELECT * FROM api_samples WHERE accession = ?", [accession]))
    if not found:
        raise not_found()
    return serialize_many(cur, found, store)[0]


def _by_sample(cur: duckdb.DuckDBPyConnection, sql: str, accessions: list[str]) -> dict[str, list[dict]]:
    """Rows of ``sql`` (with ``{accs}`` where the IN list goes) grouped by ``sample_accession``.

    A literal IN list (not a list parameter) lets DuckDB skip row groups of the read model's tables,
    which are sorted by sample accession.
    """
    placeholders = ", ".join("?" for _ in accessions)
    out: dict[str, list[dict]] = {}
    for r in rows(cur.execute(sql.format(accs=placeholders), accessions)):
        out.setdefault(r["sample_accession"], []).append(r)
    return out


def serialize_many(
    cur: duckdb.DuckDBPyConnection, samples: list[dict[str, Any]], store: ArtifactStore | None = None
) -> list[dict[str, Any]]:
    """refine.bio's ``DetailedSampleSerializer`` for ``samples`` (api_samples rows), nested data batched."""
    if not samples:
        return []
    accs = [s["accession"] for s in samples]
    attrs = _by_sample(
        cur,
        "SELECT a.sample_accession, a.experiment_accession, a.source, a.key, a.value FROM wh.sample_attributes a "
        "WHERE a.sample_accession IN ({accs}) ORDER BY a.sample_accession, a.source, a.position",
        accs,
    )
    latest = _by_sample(
        cur,
        "SELECT * FROM api_latest WHERE sample_accession IN ({accs}) ORDER BY recorded_at DESC, step",
        accs,
    )
    files = _by_sample(
        cur, "SELECT * FROM api_files WHERE sample_accession IN ({accs}) ORDER BY created_at DESC, id", accs
    )
    originals = _by_sample(
        cur, "SELECT id, sample_accession FROM api_original_files WHERE sample_accession IN ({accs})", accs
    )
    return [_serialize(s, attrs, latest, files, originals, store) for s in samples]


def _annotations(sample: dict, attributes: list[dict]) -> list[dict]:
    by_source: dict[str, dict[str, Any]] = {}
    for a in attributes:
        if a["experiment_accession"] != sample["primary_experiment"]:
            continue
        data = by_source.setdefault(a["source"] or "", {})
        key, value = a["key"], a["value"]
        if key in data:
            prev = data[key]
            data[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            data[key] = value
    ts = (iso(sample["created_at"]), iso(sample["last_modified"]))
    return [
        {"data": data, "is_ccdl": False, "created_at": ts[0], "last_modified": ts[1]}
        for _, data in sorted(by_source.items())
    ]


def processor(row: dict[str, Any]) -> dict[str, Any]:
    """refine.bio's ``ProcessorRelationSerializer`` for a ledger step (versions as the environment)."""
    versions = json_cell(row.get("versions")) or {}
    version = versions.get("refine_assets") or versions.get("method_version")
    from refine_assets.api.files import stable_id

    return {
        "id": stable_id(f"processor:{row['step']}:{version}"),
        "name": row["step"],
        "version": version,
        "docker_image": "",
        "environment": versions,
    }


def processor_job(row: dict[str, Any]) -> dict[str, Any]:
    """refine.bio's ``ProcessorJobRelationSerializer`` for the newest ledger outcome."""
    from refine_assets.api.files import stable_id

    ts = iso(row["recorded_at"])
    versions = json_cell(row.get("versions")) or {}
    return {
        "id": stable_id(f"job:{row['sample_accession']}:{row['experiment_accession']}:{row['step']}:{ts}"),
        "pipeline_applied": str(row["step"]).upper(),
        "num_retries": 0,
        "retried": False,
        "worker_id": None,
        "ram_amount": None,
        "volume_index": None,
        "batch_job_queue": None,
        "worker_version": versions.get("refine_assets") if isinstance(versions, dict) else None,
        "failure_reason": row["reason"],
        "batch_job_id": row.get("run_id"),
        "success": {"succeeded": True, "failed": False}.get(row["status"]),
        "original_files": [],
        "datasets": [],
        "start_time": None,
        "end_time": ts,
        "created_at": ts,
        "last_modified": ts,
    }


def _serialize(s, attrs, latest, files, originals, store) -> dict[str, Any]:
    acc = s["accession"]
    outcomes = latest.get(acc, [])
    sample_files = files.get(acc, [])
    smashable = next((f for f in sample_files if f["is_smashable"]), None)
    quant = next((f for f in sample_files if f["step"] == "salmon"), None)
    results = [{"id": f["id"], "processor": processor(f), "organism_index": None} for f in sample_files]
    out: dict[str, Any] = {
        "id": s["id"],
        "title": s["title"] or "",
        "accession_code": acc,
        "source_database": s["source_database"],
        "organism": {"name": s["organism"], "taxonomy_id": s["taxonomy_id"]} if s["organism"] else None,
        "platform_accession_code": s["platform_accession_code"],
        "platform_name": s["platform_name"],
        "pretty_platform": pretty_platform(s["platform_name"], s["platform_accession_code"]),
        "technology": s["technology"],
        "manufacturer": s["manufacturer"],
        "protocol_info": [],
        "annotations": _annotations(s, attrs.get(acc, [])),
        "results": results,
        "source_archive_url": s["source_url"] or "",
        "has_raw": bool(s["has_raw"]),
    }
    for f in HARMONIZED:
        value = s[f]
        if f == "age":
            out[f] = None if value is None else (int(value) if float(value).is_integer() else value)
        else:
            out[f] = value or ""
    out.update(
        {
            "is_processed": bool(s["is_processed"]),
            "is_unable_to_be_processed": bool(s["is_unable_to_be_processed"]),
            "created_at": iso(s["created_at"]),
            "last_modified": iso(s["last_modified"]),
            "original_files": sorted(o["id"] for o in originals.get(acc, [])),
            "computed_files": sorted(f["id"] for f in sample_files),
            "last_processor_job": processor_job(outcomes[0]) if outcomes else None,
            "last_downloader_job": None,
            "most_recent_smashable_file": computed_file_relation(smashable, store) if smashable else None,
            "most_recent_quant_file": computed_file_relation(quant, store) if quant else None,
            "contributed_metadata": {},
            "contributed_keywords": [],
            "experiment_accession_codes": list(s["experiment_accessions"]),
        }
    )
    return out
