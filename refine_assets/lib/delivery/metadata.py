"""Sample and experiment metadata for dataset zips, read from the DuckDB warehouse.

Sources (``sql/schema.sql``, ``sql/views.sql``): ``samples`` + ``sample_harmonized`` (the ``refinebio_*``
fields), ``sample_attributes`` (every submitter key/value, verbatim), ``processing_ledger`` (the latest
non-survey outcome per sample and experiment: step, versions, output) and ``experiments``.

**Sample dict** (JSON files; :func:`sample_metadata`): ``refinebio_accession_code``,
``experiment_accession``, the harmonized fields ``refinebio_<field>`` (title, sex, age, specimen_part,
genetic_information, disease, disease_stage, cell_line, treatment, race, subject, compound, time,
developmental_stage), source fields (``refinebio_organism``, ``refinebio_source_database``,
``refinebio_source_archive_url``, ``refinebio_platform`` = the platform title without its ``[code]``
prefix plus `` (<code>)`` as refine.bio prints it, ``refinebio_platform_accession``,
``refinebio_platform_code``, ``refinebio_technology``, ``refinebio_manufacturer``, ``refinebio_has_raw``,
``refinebio_processed``), processing provenance (``refinebio_processor_name`` = ledger step,
``refinebio_processor_method``, ``refinebio_processor_version`` = refine-assets code version,
``refinebio_processor_versions`` = the ledger's full versions object: code, tools and reference
versions, ``refinebio_processed_url``, ``refinebio_processed_sha256``, ``refinebio_processed_at``,
``refinebio_processed_experiment``, ``refinebio_processing_metrics``), delivery facts
(``refinebio_value_transform``, ``refinebio_genes_in_vector``) and ``refinebio_annotations``: the
submitter attributes as a list of ``{"source", "key", "value"}`` objects in record order, verbatim.

**Metadata TSV** (:func:`metadata_columns`, :func:`tsv_row`): one row per sample; columns
``refinebio_accession_code``, ``experiment_accession``, every other ``refinebio_*`` field sorted (objects
as compact JSON), then the submitter attributes flattened (:func:`flatten_attributes`) sorted; the
header is the union over the file's samples, a sample without a column has an empty cell.

**Flattening rule** (documented contract; refine.bio dropped ArrayExpress ``variable_*`` values through a
header/row-key mismatch and kept only the first of conflicting values, teardown §6.6 and §12 item 8):

* each attribute row ``(source, key, value)`` becomes column ``<source>:<key>`` — e.g.
  ``geo_characteristics:tissue`` (GEO ``characteristics_ch1`` "tissue: kidney", split by the surveyor),
  ``geo_field:source_name_ch1``, ``sdrf:Characteristics[organism part]``, ``sdrf:Factor Value[dose]``,
  ``ae_json:variable[dose]``, ``biosample:tissue``, ``ena_run:instrument_model``. Columns from different
  sources never collide and never collide with ``refinebio_*`` (they contain ``:``);
* the same ``(source, key)`` with several *different* values in one sample gives ``<source>:<key>``,
  ``<source>:<key>#2``, ``<source>:<key>#3`` ... in record (``position``) order; an identical repeated
  value is written once (no information lost);
* tabs, carriage returns and newlines in keys and values become single spaces in the TSV (the JSON
  keeps them verbatim). Nothing else is changed and no attribute is dropped.

Queries take the wanted (sample, experiment) pairs as an Arrow table joined inside DuckDB (one query per
table, no per-sample round trips).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

import duckdb
import pyarrow as pa

from refine_assets.lib.harmonize import HARMONIZED_FIELDS

__all__ = [
    "HARMONIZED_FIELDS",
    "experiment_metadata",
    "fetch_attributes",
    "fetch_experiments",
    "fetch_latest_processing",
    "fetch_sample_rows",
    "flatten_attributes",
    "metadata_columns",
    "pretty_platform",
    "sample_metadata",
    "tsv_cell",
    "tsv_row",
    "usable_vector_key",
    "write_metadata_tsv",
]

FIRST_COLUMNS = ("refinebio_accession_code", "experiment_accession")
_WS = re.compile(r"[\t\r\n]+")
_REPEAT = re.compile(r"^(.*)#(\d+)$")

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


def fetch_latest_processing(con: duckdb.DuckDBPyConnection, samples: Iterable[str]) -> dict[Pair, dict]:
    """Latest non-survey ledger row per (sample, experiment), for every experiment of ``samples``.

    Same rule as the ``sample_status`` view (newest ``recorded_at``; ties broken by step name for
    determinism). ``versions``, ``metrics`` and ``input_checksums`` are parsed from JSON.
    """
    table = pa.table({"sample_accession": pa.array(sorted(set(samples)), pa.string())})
    con.register("_wanted_samples", table)
    try:
        cur = con.execute(
            """
            SELECT * EXCLUDE (rn) FROM (
                SELECT l.*, row_number() OVER (
                    PARTITION BY l.sample_accession, l.experiment_accession
                    ORDER BY l.recorded_at DESC, l.step) AS rn
                FROM processing_ledger l
                JOIN _wanted_samples w ON w.sample_accession = l.sample_accession
                WHERE l.step <> 'survey'
            ) WHERE rn = 1
            """
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


def sample_metadata(
    row: Mapping[str, Any],
    attributes: Sequence[Mapping[str, Any]],
    processing: Mapping[str, Any] | None,
    *,
    experiment_accession: str,
    provenance: Mapping[str, Any] | None = None,
    value_transform: str = "none",
    genes_in_vector: int | None = None,
) -> dict[str, Any]:
    """The JSON sample dict (module docstring) from a :func:`fetch_sample_rows` row, its attributes,
    its latest ledger row and the vector's stored provenance."""
    proc = processing or {}
    versions = proc.get("versions") or {}
    prov = provenance or {}
    code = row.get("internal_platform_code") or row.get("platform_accession")
    out: dict[str, Any] = {
        "refinebio_accession_code": row["accession"],
        "experiment_accession": experiment_accession,
        "refinebio_organism": row.get("organism"),
        "refinebio_source_database": row.get("source_database"),
        "refinebio_source_archive_url": row.get("source_url"),
        "refinebio_platform": pretty_platform(row.get("platform_name"), code),
        "refinebio_platform_accession": row.get("platform_accession"),
        "refinebio_platform_code": row.get("internal_platform_code"),
        "refinebio_technology": row.get("technology"),
        "refinebio_manufacturer": row.get("manufacturer"),
        "refinebio_has_raw": row.get("has_raw"),
        "refinebio_processed": bool(proc) and proc.get("status") == "succeeded",
    }
    for f in HARMONIZED_FIELDS:
        value = row.get(f"h_{f}")
        if f == "title" and value is None:
            value = row.get("title")
        out[f"refinebio_{f}"] = _plain(value)
    out.update(
        {
            "refinebio_processor_name": proc.get("step"),
            "refinebio_processor_method": prov.get("method") or proc.get("step"),
            "refinebio_processor_version": versions.get("refine_assets")
            if isinstance(versions, dict)
            else None,
            "refinebio_processor_versions": versions,
            "refinebio_processed_url": proc.get("output_url"),
            "refinebio_processed_sha256": proc.get("output_sha256"),
            "refinebio_processed_at": _plain(proc.get("recorded_at")),
            "refinebio_processed_experiment": proc.get("experiment_accession"),
            "refinebio_processing_metrics": proc.get("metrics") or {},
            "refinebio_value_transform": value_transform,
            "refinebio_genes_in_vector": genes_in_vector,
            "refinebio_annotations": [
                {"source": a.get("source"), "key": a.get("key"), "value": a.get("value")} for a in attributes
            ],
        }
    )
    return {k: _plain(v) for k, v in out.items()}


def _one_line(text: Any) -> str:
    return _WS.sub(" ", "" if text is None else str(text))


def flatten_attributes(attributes: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Submitter attributes -> ``{column: value}`` by the flattening rule of the module docstring."""
    out: dict[str, str] = {}
    seen: dict[str, list[str]] = {}
    for a in attributes:
        base = f"{_one_line(a.get('source'))}:{_one_line(a.get('key'))}"
        value = _one_line(a.get("value"))
        values = seen.setdefault(base, [])
        if value in values:
            continue
        values.append(value)
        out[base if len(values) == 1 else f"{base}#{len(values)}"] = value
    return out


def tsv_cell(value: Any) -> str:
    """A TSV cell: None -> empty, booleans ``true``/``false``, integral floats without ``.0``, objects as
    compact sorted JSON, text on one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dict | list):
        return _one_line(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))
    return _one_line(value)


def tsv_row(sample: Mapping[str, Any]) -> dict[str, str]:
    """A sample dict as TSV cells: every field except ``refinebio_annotations``, plus the flattened
    submitter attributes."""
    row = {k: tsv_cell(v) for k, v in sample.items() if k != "refinebio_annotations"}
    row.update(flatten_attributes(sample.get("refinebio_annotations") or []))
    return row


def _submitter_sort_key(column: str) -> tuple[str, int]:
    m = _REPEAT.match(column)
    return (m.group(1), int(m.group(2))) if m else (column, 1)


def metadata_columns(rows: Iterable[Mapping[str, str]], leading: Sequence[str] = ()) -> list[str]:
    """TSV header: the first columns (then ``leading``, e.g. a filtered sample's ``reason``), other
    ``refinebio_*`` sorted, then submitter columns sorted (``a``, ``a#2``, ``a#10`` in numeric order);
    the union over ``rows``."""
    keys: set[str] = set()
    for r in rows:
        keys.update(r)
    fixed = [*FIRST_COLUMNS, *leading]
    first = [c for c in FIRST_COLUMNS if c in keys or c == "refinebio_accession_code"]
    first += [c for c in leading if c not in first]
    refinebio = sorted(k for k in keys if k.startswith("refinebio_") and k not in fixed)
    other = sorted(
        (k for k in keys if k not in fixed and not k.startswith("refinebio_")), key=_submitter_sort_key
    )
    return [*first, *refinebio, *other]


def write_metadata_tsv(
    fh: TextIO, samples: Sequence[Mapping[str, Any]], leading: Sequence[str] = ()
) -> list[str]:
    """Write the metadata TSV of ``samples`` (sample dicts) to a text stream; returns the header.
    ``leading`` columns (present in the sample dicts) come right after the first two."""
    rows = [tsv_row(s) for s in samples]
    columns = metadata_columns(rows, leading)
    fh.write("\t".join(columns) + "\n")
    for r in rows:
        fh.write("\t".join(r.get(c, "") for c in columns) + "\n")
    return columns


def experiment_metadata(
    row: Mapping[str, Any], sample_accessions: Sequence[str], organisms: Sequence[str]
) -> dict[str, Any]:
    """refine.bio's experiment dict (``aggregated_metadata.json`` ``experiments``) from an ``experiments``
    row, the delivered sample accessions and their organisms."""
    attrs: dict[str, list[str]] = {}
    for item in row.get("experiment_attributes") or []:
        attrs.setdefault(str(item.get("key")), []).append(item.get("value"))
    protocols = [v for k, vs in attrs.items() if "protocol" in k.lower() for v in vs if v]
    pubmed = [p for p in (row.get("pubmed_ids") or []) if p]
    return {
        "accession_code": row.get("accession"),
        "title": row.get("title"),
        "description": row.get("description"),
        "protocol_description": protocols,
        "technology": row.get("technology"),
        "source_database": row.get("source_database"),
        "source_url": row.get("source_url"),
        "submitter_institution": row.get("submitter_institution"),
        "has_publication": bool(pubmed or row.get("publication_doi") or row.get("publication_title")),
        "publication_title": row.get("publication_title"),
        "publication_doi": row.get("publication_doi"),
        "publication_authors": list(row.get("publication_authors") or []),
        "pubmed_id": pubmed[0] if pubmed else None,
        "pubmed_ids": pubmed,
        "source_first_published": _plain(row.get("source_first_published")),
        "source_last_modified": _plain(row.get("source_last_modified")),
        "alternate_accessions": list(row.get("alternate_accessions") or []),
        "related_accessions": list(row.get("related_accessions") or []),
        "organisms": sorted(set(organisms)),
        "sample_accession_codes": sorted(sample_accessions),
        "num_samples": len(sample_accessions),
        "attributes": attrs,
        "survey_manifest_url": row.get("survey_manifest_url"),
    }
