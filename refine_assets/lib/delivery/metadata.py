"""Sample and experiment metadata for dataset zips, read from the DuckDB warehouse, in refine.bio's keys.

Sources (``sql/schema.sql``, ``sql/views.sql``): ``samples`` + ``sample_harmonized`` (the ``refinebio_*``
fields), ``sample_attributes`` (every submitter key/value, verbatim), ``processing_ledger`` (the latest
non-survey outcome per sample and experiment: step, versions, output) and ``experiments``.

**Sample dict** (:func:`sample_metadata`), refine.bio's ``Sample.to_metadata_dict`` keys with its types:
``refinebio_accession_code``, ``refinebio_title``, ``refinebio_organism``, ``refinebio_source_database``,
``refinebio_source_archive_url``, the harmonized fields ``refinebio_sex`` ... ``refinebio_developmental_stage``
(text, ``""`` when unknown), ``refinebio_age`` (a number, ``""`` when unknown), ``refinebio_platform``
(the platform title without its ``[code]`` prefix plus `` (<code>)``), ``refinebio_processed`` (refine.bio's
meaning: the sample has raw data), ``refinebio_annotations`` (the submitter metadata in refine.bio's
annotation shape, :func:`~refine_assets.lib.delivery.metadata_tsv.refinebio_annotations`) and, for a
processed sample, ``refinebio_processor_id`` (integer), ``refinebio_processor_name`` (refine.bio's processor
names: ``Affymetrix SCAN``, ``Illumina SCAN``, ``Submitter-processed``, ``Tximport``, ``Salmon Quant``) and
``refinebio_processor_version``.

Extra keys (refine.bio's readers ignore them): ``experiment_accession``, ``refinebio_experiment_accessions``,
``refinebio_platform_accession``, ``refinebio_platform_code``, ``refinebio_technology``,
``refinebio_manufacturer``, ``refinebio_has_raw``, ``refinebio_processor_step`` (ledger step),
``refinebio_processor_method``, ``refinebio_processor_versions`` (code, tool and reference versions),
``refinebio_processed_url``, ``refinebio_processed_sha256``, ``refinebio_processed_at``,
``refinebio_processed_experiment``, ``refinebio_processing_metrics``, ``refinebio_gene_mapping`` (the id
mapping used), ``refinebio_value_scale``, ``refinebio_value_transform``, ``refinebio_genes_in_vector`` and
``refinebio_attributes`` (the attribute rows verbatim, ``[{"source", "key", "value"}]``).

The metadata TSV is written by :mod:`refine_assets.lib.delivery.metadata_tsv`.

Queries take the wanted (sample, experiment) pairs as an Arrow table joined inside DuckDB (one query per
table, no per-sample round trips).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from refine_assets.lib.delivery.metadata_tsv import refinebio_annotations
from refine_assets.lib.harmonize import HARMONIZED_FIELDS

__all__ = [
    "HARMONIZED_FIELDS",
    "PROCESSOR_NAMES",
    "experiment_metadata",
    "fetch_attributes",
    "fetch_experiments",
    "fetch_latest_processing",
    "fetch_sample_rows",
    "pretty_platform",
    "processor_fields",
    "sample_metadata",
    "usable_vector_key",
]

#: refine.bio's processor names (``ProcessorEnum``) of our ledger steps
PROCESSOR_NAMES = {
    "affy_scan": "Affymetrix SCAN",
    "illumina_scan": "Illumina SCAN",
    "submitter_processed": "Submitter-processed",
    "no_op": "Submitter-processed",
    "tximport": "Tximport",
    "salmon": "Salmon Quant",
}

Pair = tuple[str, str]


def _pairs_table(pairs: Iterable[Pair]) -> pa.Table:
    pairs = sorted(set(pairs))
    return pa.table(
        {
            "sample_accession": pa.array([p[0] for p in pairs], pa.string()),
            "experiment_accession": pa.array([p[1] for p in pairs], pa.string()),
        }
    )


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def fetch_sample_rows(con: duckdb.DuckDBPyConnection, pairs: Iterable[Pair]) -> dict[Pair, dict]:
    """``samples`` joined with ``sample_harmonized`` for the wanted (sample, experiment) pairs."""
    con.register("_wanted_pairs", _pairs_table(pairs))
    try:
        harmonized = ", ".join(f'h."{f}" AS "h_{f}"' for f in HARMONIZED_FIELDS)
        cur = con.execute(
            f"""
            SELECT s.*, {harmonized}
            FROM samples s
            JOIN _wanted_pairs w ON w.sample_accession = s.accession AND w.experiment_accession = s.experiment_accession
            LEFT JOIN sample_harmonized h
              ON h.sample_accession = s.accession AND h.experiment_accession = s.experiment_accession
            ORDER BY s.accession, s.experiment_accession
            """
        )
        return {(r["accession"], r["experiment_accession"]): r for r in _rows(cur)}
    finally:
        con.unregister("_wanted_pairs")


def fetch_attributes(con: duckdb.DuckDBPyConnection, pairs: Iterable[Pair]) -> dict[Pair, list[dict]]:
    """Submitter attributes ``{source, key, value, position}`` of each pair, in record order."""
    con.register("_wanted_pairs", _pairs_table(pairs))
    try:
        cur = con.execute(
            """
            SELECT a.sample_accession, a.experiment_accession, a.source, a.key, a.value, a.position
            FROM (SELECT *, row_number() OVER () AS _rowid FROM sample_attributes) a
            JOIN _wanted_pairs w
              ON w.sample_accession = a.sample_accession AND w.experiment_accession = a.experiment_accession
            ORDER BY a.sample_accession, a.experiment_accession, a.position NULLS LAST, a._rowid
            """
        )
        out: dict[Pair, list[dict]] = {}
        for s, e, source, key, value, position in cur.fetchall():
            out.setdefault((s, e), []).append(
                {"source": source, "key": key, "value": value, "position": position}
            )
        return out
    finally:
        con.unregister("_wanted_pairs")


def fetch_latest_processing(
    con: duckdb.DuckDBPyConnection, samples: Iterable[str], steps: Sequence[str] | None = None
) -> dict[Pair, dict]:
    """Latest non-survey ledger row per (sample, experiment), for every experiment of ``samples``.

    Same rule as the ``sample_status`` view (newest ``recorded_at``; ties broken by step name for
    determinism); ``steps`` restricts it to those steps (``["salmon"]``: the latest quant.sf).
    ``versions``, ``metrics`` and ``input_checksums`` are parsed from JSON.
    """
    table = pa.table({"sample_accession": pa.array(sorted(set(samples)), pa.string())})
    con.register("_wanted_samples", table)
    step_filter = ""
    params: list[Any] = []
    if steps is not None:
        step_filter = "AND list_contains(?, l.step)"
        params.append(list(steps))
    try:
        cur = con.execute(
            f"""
            SELECT * EXCLUDE (rn) FROM (
                SELECT l.*, row_number() OVER (
                    PARTITION BY l.sample_accession, l.experiment_accession
                    ORDER BY l.recorded_at DESC, l.step) AS rn
                FROM processing_ledger l
                JOIN _wanted_samples w ON w.sample_accession = l.sample_accession
                WHERE l.step <> 'survey' {step_filter}
            ) WHERE rn = 1
            """,
            params,
        )
        out = {}
        for r in _rows(cur):
            for col in ("versions", "metrics", "input_checksums"):
                r[col] = _json_obj(r.get(col))
            out[(r["sample_accession"], r["experiment_accession"])] = r
        return out
    finally:
        con.unregister("_wanted_samples")


def _json_obj(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value or {}
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return {"unparsed": str(value)}


def usable_vector_key(row: Mapping[str, Any] | None, pipeline: str | None = None) -> tuple[str | None, str]:
    """``(vector key, "")`` when the ledger row is a usable per-sample vector, else ``(None, reason)``.

    Usable = status ``succeeded`` and an ``output_key`` ending in ``.parquet`` (not a probeset-level
    vector). ``pipeline`` (the survey's) words the reason when no processing was recorded at all.
    """
    if row is None:
        if pipeline == "NONE":
            return None, "not processed: platform or data type not supported"
        return None, "not processed yet (no processing outcome recorded)"
    step, status, reason = row.get("step"), row.get("status"), row.get("reason")
    key = row.get("output_key") or ""
    if status == "succeeded":
        if key.endswith(".parquet") and not key.endswith(".probesets.parquet"):
            return key, ""
        return None, (
            f"not processed yet: latest step {step} succeeded but produced no expression vector"
            + (f" ({key.rsplit('/', 1)[-1]})" if key else "")
            + (" - tximport pending" if step == "salmon" else "")
        )
    if status == "unsupported":
        return None, f"not supported: {reason or step}"
    return None, f"processing {status or 'unknown'} ({step}): {reason or 'no reason recorded'}"


def fetch_experiments(con: duckdb.DuckDBPyConnection, accessions: Iterable[str]) -> dict[str, dict]:
    """``experiments`` rows by accession (only those that exist)."""
    table = pa.table({"accession": pa.array(sorted(set(accessions)), pa.string())})
    con.register("_wanted_experiments", table)
    try:
        cur = con.execute(
            "SELECT e.* FROM experiments e JOIN _wanted_experiments w ON w.accession = e.accession"
        )
        return {r["accession"]: r for r in _rows(cur)}
    finally:
        con.unregister("_wanted_experiments")


def pretty_platform(name: str | None, code: str | None) -> str | None:
    """refine.bio's ``refinebio_platform``: the title after a leading ``[...]`` plus `` (<code>)``."""
    if not name and not code:
        return None
    text = (name or "").strip()
    if text.startswith("[") and "]" in text:
        text = text.split("]", 1)[1].strip()
    if code and f"({code})" not in text:
        text = f"{text} ({code})" if text else str(code)
    return text


def _plain(value: Any) -> Any:
    """JSON-ready scalar: dates to ISO text, NaN to None."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    """refine.bio's text columns: ``""`` instead of null."""
    value = _plain(value)
    return "" if value is None else str(value)


def processor_fields(
    step: str | None, versions: Mapping[str, Any] | None, provenance: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``refinebio_processor_id``, ``_name`` and ``_version`` of a ledger step and its versions.

    name: refine.bio's processor name (:data:`PROCESSOR_NAMES`, else the step); version: the refine-assets
    version recorded with the output, else ``<step> v<method_version>``, else the tool's recorded version
    (``salmon 1.10.1``), else ``unknown``; id: a stable
    integer for (name, version, versions) - the first 28 bits of their sha256 - standing in for
    refine.bio's database id of a (processor, version, environment) row.
    """
    versions = dict(versions or {})
    prov_versions = (provenance or {}).get("versions") or {}
    name = PROCESSOR_NAMES.get(step or "", step or "unknown")
    version = versions.get("refine_assets") or prov_versions.get("refine_assets")
    if not version and versions.get("method_version"):
        version = f"{step} v{versions['method_version']}"
    if not version and versions.get(step or ""):  # the tool's own version (salmon 1.10.1)
        version = f"{step} {versions[step]}"
    version = str(version or "unknown")
    canonical = json.dumps([name, version, versions], sort_keys=True, default=str)
    ident = int(hashlib.sha256(canonical.encode()).hexdigest()[:7], 16)
    return {
        "refinebio_processor_id": ident,
        "refinebio_processor_name": name,
        "refinebio_processor_version": version,
    }


def _gene_mapping(metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """The gene-id mapping a processor used (from its QC metrics), without the per-candidate details."""
    mapping = metrics.get("gene_mapping") or metrics.get("mapping")
    if not isinstance(mapping, Mapping):
        return None
    return {k: v for k, v in mapping.items() if k != "candidates"}


def sample_metadata(
    row: Mapping[str, Any],
    attributes: Sequence[Mapping[str, Any]],
    processing: Mapping[str, Any] | None,
    *,
    experiment_accession: str,
    experiments: Sequence[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    value_transform: str = "none",
    genes_in_vector: int | None = None,
) -> dict[str, Any]:
    """The sample dict (module docstring) from a :func:`fetch_sample_rows` row, its attribute rows, its
    ledger row (None: not processed; no processor keys then, as refine.bio) and the vector's provenance.

    ``experiment_accession``: the experiment the sample is listed under in this file (refine.bio: the
    first requested experiment listing it); ``experiments``: every requested experiment listing it.
    """
    from refine_assets.lib.delivery.vectors import value_scale

    proc = processing or {}
    versions = proc.get("versions") or {}
    versions = versions if isinstance(versions, dict) else {}
    metrics = proc.get("metrics") or {}
    metrics = metrics if isinstance(metrics, dict) else {}
    prov = provenance or {}
    code = row.get("internal_platform_code") or row.get("platform_accession")
    age = _plain(row.get("h_age"))
    out: dict[str, Any] = {
        "refinebio_accession_code": row["accession"],
        "experiment_accession": experiment_accession,
        "refinebio_experiment_accessions": sorted(set(experiments or [experiment_accession])),
        "refinebio_title": _text(row.get("title") or row.get("h_title")),  # as submitted (refine.bio)
        "refinebio_organism": row.get("organism"),
        "refinebio_source_database": _text(row.get("source_database")),
        "refinebio_source_archive_url": _text(row.get("source_url")),
        "refinebio_age": "" if age is None else round(float(age), 3),
        "refinebio_platform": _text(pretty_platform(row.get("platform_name"), code)),
        "refinebio_processed": bool(row.get("has_raw")),
        "refinebio_annotations": refinebio_annotations(attributes),
        "refinebio_attributes": [
            {"source": a.get("source"), "key": a.get("key"), "value": a.get("value")} for a in attributes
        ],
        "refinebio_platform_accession": row.get("platform_accession"),
        "refinebio_platform_code": row.get("internal_platform_code"),
        "refinebio_technology": row.get("technology"),
        "refinebio_manufacturer": row.get("manufacturer"),
        "refinebio_has_raw": row.get("has_raw"),
    }
    for f in HARMONIZED_FIELDS:
        if f not in ("title", "age"):
            out[f"refinebio_{f}"] = _text(row.get(f"h_{f}"))
    if proc:
        step = proc.get("step")
        out.update(processor_fields(step, versions, prov))
        out.update(
            {
                "refinebio_processor_step": step,
                "refinebio_processor_method": prov.get("method") or step,
                "refinebio_processor_versions": versions,
                "refinebio_processed_url": proc.get("output_url"),
                "refinebio_processed_sha256": proc.get("output_sha256"),
                "refinebio_processed_at": _plain(proc.get("recorded_at")),
                "refinebio_processed_experiment": proc.get("experiment_accession"),
                "refinebio_processing_metrics": metrics,
                "refinebio_gene_mapping": _gene_mapping(metrics),
                "refinebio_value_scale": value_scale(step, metrics),
                "refinebio_value_transform": value_transform,
                "refinebio_genes_in_vector": genes_in_vector,
            }
        )
    return {k: _plain(v) for k, v in out.items()}


def _timestamp(value: Any) -> str:
    """refine.bio's experiment dates: ``%Y-%m-%dT%H:%M:%S``, ``""`` when unknown."""
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        if not hasattr(value, "hour"):  # a date
            return value.strftime("%Y-%m-%dT00:00:00")
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    text = str(value)
    return f"{text}T00:00:00" if len(text) == 10 else text


def experiment_metadata(
    row: Mapping[str, Any], sample_accessions: Sequence[str], organisms: Sequence[str]
) -> dict[str, Any]:
    """refine.bio's experiment dict (``Experiment.to_metadata_dict``) from an ``experiments`` row, the
    delivered sample accessions and their organisms, plus extra keys.

    refine.bio keys: ``title``, ``accession_code``, ``organisms``, ``sample_accession_codes`` (here the
    delivered samples only; refine.bio listed every sample of the experiment that was not filtered),
    ``description``, ``protocol_description``, ``technology``, ``submitter_institution``,
    ``has_publication``, ``publication_title``, ``publication_doi``, ``pubmed_id`` (text, ``""`` when
    none), ``source_first_published``, ``source_last_modified`` (``%Y-%m-%dT%H:%M:%S`` or ``""``).
    Extra: ``source_database``, ``source_url``, ``publication_authors``, ``pubmed_ids``,
    ``alternate_accessions``, ``related_accessions``, ``num_samples``, ``attributes``,
    ``survey_manifest_url``.
    """
    attrs: dict[str, list[str]] = {}
    for item in row.get("experiment_attributes") or []:
        attrs.setdefault(str(item.get("key")), []).append(item.get("value"))
    protocols = [v for k, vs in attrs.items() if "protocol" in k.lower() for v in vs if v]
    pubmed = [p for p in (row.get("pubmed_ids") or []) if p]
    return {
        "accession_code": row.get("accession"),
        "title": _text(row.get("title")),
        "description": _text(row.get("description")),
        "protocol_description": protocols,
        "technology": _text(row.get("technology")),
        "source_database": row.get("source_database"),
        "source_url": row.get("source_url"),
        "submitter_institution": _text(row.get("submitter_institution")),
        "has_publication": bool(pubmed or row.get("publication_doi") or row.get("publication_title")),
        "publication_title": _text(row.get("publication_title")),
        "publication_doi": _text(row.get("publication_doi")),
        "publication_authors": list(row.get("publication_authors") or []),
        "pubmed_id": pubmed[0] if pubmed else "",
        "pubmed_ids": pubmed,
        "source_first_published": _timestamp(row.get("source_first_published")),
        "source_last_modified": _timestamp(row.get("source_last_modified")),
        "alternate_accessions": list(row.get("alternate_accessions") or []),
        "related_accessions": list(row.get("related_accessions") or []),
        "organisms": sorted(set(organisms)),
        "sample_accession_codes": sorted(sample_accessions),
        "num_samples": len(sample_accessions),
        "attributes": attrs,
        "survey_manifest_url": row.get("survey_manifest_url"),
    }
