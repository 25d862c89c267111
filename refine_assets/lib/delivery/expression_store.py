"""The expression store: every processed per-sample vector in one Parquet dataset that SQL alone can query.

Per-sample vectors (``processed/<EXP>/<SAMPLE>.parquet``, :mod:`refine_assets.lib.processing.vectors`)
are compacted, one experiment at a time, into **parts** under their own prefix (the processing ledger
``processed/<EXP>/ledger.parquet`` never sits among them)::

    expression/organism=<ORGANISM>/platform=<PLATFORM>/experiment=<EXPERIMENT>/part.parquet

Hive partitions (organism, platform, experiment) let DuckDB read one organism, platform or experiment
without listing or opening the others' files. Columns of a part: ``sample_accession``, ``gene_id``,
``value`` (float32) and ``value_scale`` (:func:`refine_assets.lib.delivery.vectors.value_scale`:
``scan``, ``log2``, ``log_as_submitted``, ``length_scaled_tpm``), all but ``value`` dictionary-encoded.

**One value per (sample, gene), resolved once** by the delivery rule
(:func:`refine_assets.lib.delivery.vectors.sanitize_vector`): ids trimmed, a trailing Brainarray ``_at``
and a numeric Ensembl version removed, ``AFFX-`` controls and missing/infinite values dropped, and
duplicate ids (one-to-many probe mappings, e.g. TP53 twice in a GEO submitter table) replaced by their
**mean** - refine.bio averages duplicates at delivery (``utils.squish_duplicates``); here it is done once,
when the store is built, so SQL, dataset zips and compendia see the same number. Values are stored as
float32 (relative error <= 2**-24 against the float64 mean; dataset zips store float32 too).

**Layout for gene look-ups**: rows are sorted by ``gene_id`` then ``sample_accession``, written in row
groups of ``sqrt(4096 * rows)`` rows (65,536 to 1,048,576) of 8 KiB pages, with min/max statistics on
``gene_id`` only and a page index; ``WHERE gene_id = 'ENSG...'`` then reads each part's (small) footer,
the page index of the one row group holding the gene and the gene's pages: 1-2 % of a 50-sample part
(``benchmarks/bench_expression.py``), instead of every per-sample vector file. String columns are plain
strings in Arrow so that Parquet's per-chunk dictionaries stay small.

**Incremental**: :func:`compact_experiment` writes the parts of one experiment only; a part's key is
stable, so recompacting an experiment replaces its parts atomically, and keys it no longer produces are
deleted. The warehouse build (:func:`refine_assets.lib.warehouse.build_warehouse`) calls it for every
experiment whose processing ledger changed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from refine_assets.lib.delivery.vectors import read_vector_arrays, sanitize_vector, value_scale
from refine_assets.lib.storage import ArtifactNotFoundError, ArtifactStore

__all__ = [
    "PART_COLUMNS",
    "STORE_PREFIX",
    "CompactionResult",
    "PartInput",
    "StoredSample",
    "VectorRef",
    "compact_experiment",
    "part_key",
    "row_group_rows",
    "write_part",
]

STORE_PREFIX = "expression/"
UNKNOWN = "UNKNOWN"
PART_COLUMNS = ("sample_accession", "gene_id", "value", "value_scale")
#: target size of a data page: with the page index, a gene look-up reads only its pages of a row group
DATA_PAGE_BYTES = 8192
#: parquet key/value metadata key of a part (experiment, organism, platform, samples)
METADATA_KEY = b"refine_assets_expression"


def _partition_value(value: str | None) -> str:
    """A hive partition value: the text with ``/``, ``=`` and whitespace replaced (accessions never have
    them), or ``UNKNOWN``."""
    text = (value or "").strip()
    for ch in "/=\\ \t\n":
        text = text.replace(ch, "_")
    return text or UNKNOWN


def part_key(organism: str | None, platform: str | None, experiment: str) -> str:
    """Storage key of an experiment's part for one organism and platform."""
    return (
        f"{STORE_PREFIX}organism={_partition_value(organism)}/platform={_partition_value(platform)}/"
        f"experiment={_partition_value(experiment)}/part.parquet"
    )


def row_group_rows(n_rows: int) -> int:
    """Rows per row group: ``sqrt(4096 * n_rows)`` clamped to [65,536, 2**20] (the footer grows with the
    number of row groups; within the one row group a gene falls in, the page index narrows the read to
    the gene's pages)."""
    return int(min(1 << 20, max(1 << 16, math.sqrt(4096.0 * max(n_rows, 1)))))


@dataclass(frozen=True)
class VectorRef:
    """A processed vector to compact: its sample, where it is, and what the ledger says about it."""

    sample: str
    experiment: str
    key: str
    organism: str | None = None
    platform: str | None = None
    step: str | None = None
    sha256: str | None = None
    metrics: dict | None = None


@dataclass
class StoredSample:
    """One sample's vector as it went into the store (a row of the warehouse table ``expression_samples``)."""

    sample_accession: str
    experiment_accession: str
    organism: str
    platform_accession: str
    step: str | None
    value_scale: str
    vector_key: str
    vector_sha256: str | None
    part_key: str
    n_genes: int
    n_input: int
    n_duplicate_ids_merged: int
    n_affx_dropped: int
    n_missing_dropped: int


@dataclass
class CompactionResult:
    """What :func:`compact_experiment` wrote: parts (key, url, sha256, size, organism, platform, samples,
    rows), the samples stored, vectors that could not be read (sample, reason) and deleted stale keys."""

    experiment: str
    parts: list[dict] = field(default_factory=list)
    samples: list[StoredSample] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class PartInput:
    """The sanitized vectors of one part: per sample its sorted unique gene ids (Arrow strings), float
    values and value scale."""

    samples: list[str] = field(default_factory=list)
    ids: list[pa.Array] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    scales: list[str] = field(default_factory=list)

    def add(self, sample: str, ids: pa.Array | Sequence[str], values: np.ndarray, scale: str) -> None:
        self.samples.append(sample)
        self.ids.append(ids if isinstance(ids, pa.Array) else pa.array(list(ids), pa.string()))
        self.values.append(np.asarray(values, dtype=np.float32))
        self.scales.append(scale)

    @property
    def num_rows(self) -> int:
        return sum(len(x) for x in self.ids)


PART_SCHEMA = pa.schema(
    [
        ("sample_accession", pa.string()),
        ("gene_id", pa.string()),
        ("value", pa.float32()),
        ("value_scale", pa.string()),
    ]
)


def _row_groups(part: PartInput) -> Iterator[pa.Table]:
    """The part's rows sorted by gene id then sample accession, as one table per row group.

    Samples are put in accession order; every sample's gene ids get codes in the sorted union of ids;
    then, gene range by gene range (about :func:`row_group_rows` rows each), every sample's slice of
    that range is gathered and stably sorted by gene code (sample order is kept within a gene). Memory:
    4 + 4 bytes per value for codes and values, plus one row group of strings.
    """
    by_accession = sorted(range(len(part.samples)), key=lambda i: part.samples[i])
    samples = [part.samples[i] for i in by_accession]
    genes = pc.unique(pa.chunked_array([part.ids[i] for i in by_accession], pa.string()))
    genes = genes.take(pc.sort_indices(genes))  # byte order = code-point order, as sanitize_vector
    codes = [pc.index_in(part.ids[i], value_set=genes).to_numpy().astype(np.int32) for i in by_accession]
    values = [part.values[i] for i in by_accession]
    scales = [part.scales[i] for i in by_accession]
    n_rows = sum(len(c) for c in codes)
    if not n_rows:
        return
    per_gene = np.bincount(np.concatenate(codes), minlength=len(genes))
    bounds = np.searchsorted(
        np.cumsum(per_gene), np.arange(row_group_rows(n_rows), n_rows, row_group_rows(n_rows))
    )
    edges = [0, *sorted(set((bounds + 1).tolist())), len(genes)]
    sample_names = pa.array(samples, pa.string())
    scale_names = pa.array(scales, pa.string())
    for g0, g1 in itertools.pairwise(edges):
        if g1 <= g0:
            continue
        chunk_codes, chunk_values, chunk_samples = [], [], []
        for k, c in enumerate(codes):
            i0, i1 = np.searchsorted(c, [g0, g1])
            if i1 > i0:
                chunk_codes.append(c[i0:i1])
                chunk_values.append(values[k][i0:i1])
                chunk_samples.append(np.full(i1 - i0, k, dtype=np.int32))
        gc = np.concatenate(chunk_codes)
        order = np.argsort(gc, kind="stable")  # samples were appended in accession order
        sample_idx = pa.array(np.concatenate(chunk_samples)[order])
        yield pa.table(
            [
                sample_names.take(sample_idx),
                genes.take(pa.array(gc[order])),
                pa.array(np.concatenate(chunk_values)[order], pa.float32()),
                scale_names.take(sample_idx),
            ],
            schema=PART_SCHEMA,
        )


def write_part(store: ArtifactStore, key: str, part: PartInput, metadata: bytes = b"{}") -> dict:
    """Write ``part`` to ``key`` atomically, one row group at a time (module docstring: sorted by gene,
    ``gene_id`` statistics, page index); returns key, url, sha256, size and the number of rows."""
    n_rows = 0
    with (
        store.writer(key) as path,
        pq.ParquetWriter(
            path,
            PART_SCHEMA.with_metadata({METADATA_KEY: metadata}),
            compression="zstd",
            data_page_size=DATA_PAGE_BYTES,
            write_page_index=True,
            use_dictionary=["sample_accession", "gene_id", "value_scale"],
            write_statistics=["gene_id"],
            sorting_columns=[pq.SortingColumn(1), pq.SortingColumn(0)],
        ) as writer,
    ):
        for table in _row_groups(part):
            writer.write_table(table, row_group_size=table.num_rows)
            n_rows += table.num_rows
    return {
        "key": key,
        "url": store.url_for(key),
        "sha256": store.read_sha256(key),
        "size": store.size(key),
        "num_rows": n_rows,
    }


def compact_experiment(
    store: ArtifactStore,
    experiment: str,
    vectors: Iterable[VectorRef],
    previous_keys: Iterable[str] = (),
    log: Callable[[str], None] = lambda _m: None,
) -> CompactionResult:
    """Write the parts of ``experiment`` from its processed ``vectors`` (module docstring).

    One part per (organism, platform); each vector is read once and sanitized. A vector that cannot be
    read is skipped and listed in ``failed`` with the reason (it does not stop the others). Keys in
    ``previous_keys`` (the experiment's parts from the last build) that are not rewritten are deleted.
    """
    import json

    result = CompactionResult(experiment)
    groups: dict[tuple[str, str], list[VectorRef]] = {}
    for ref in vectors:
        groups.setdefault((_partition_value(ref.organism), _partition_value(ref.platform)), []).append(ref)
    written: set[str] = set()
    for (organism, platform), refs in sorted(groups.items()):
        key = part_key(organism, platform, experiment)
        part, stored = PartInput(), []
        for ref in sorted(refs, key=lambda r: r.sample):
            try:
                raw_ids, raw_values, _prov = read_vector_arrays(store, ref.key)
            except ArtifactNotFoundError:
                result.failed.append((ref.sample, f"processed vector {ref.key} is missing from storage"))
                continue
            except Exception as exc:  # corrupt Parquet, wrong columns
                result.failed.append((ref.sample, f"cannot read {ref.key} ({type(exc).__name__}: {exc})"))
                continue
            gene_ids, vals, stats = sanitize_vector(raw_ids, raw_values, arrow_ids=True)
            if len(gene_ids) == 0:
                result.failed.append((ref.sample, f"no gene id left in {ref.key} after cleaning"))
                continue
            scale = value_scale(ref.step, ref.metrics)
            part.add(ref.sample, gene_ids, vals, scale)
            stored.append(
                StoredSample(
                    ref.sample,
                    experiment,
                    organism,
                    platform,
                    ref.step,
                    scale,
                    ref.key,
                    ref.sha256,
                    key,
                    stats["n_genes"],
                    stats["n_input"],
                    stats["n_duplicate_ids_merged"],
                    stats["n_affx_dropped"],
                    stats["n_missing_dropped"],
                )
            )
        if not part.samples:
            continue
        meta = json.dumps(
            {"experiment": experiment, "organism": organism, "platform": platform, "samples": part.samples},
            sort_keys=True,
        ).encode()
        written_part = write_part(store, key, part, meta)
        written_part.update(organism=organism, platform=platform, num_samples=len(part.samples))
        result.parts.append(written_part)
        result.samples.extend(stored)
        written.add(key)
        log(f"expression store: {key}: {len(part.samples)} samples, {written_part['num_rows']} rows")
    for stale in sorted(set(previous_keys) - written):
        store.delete(stale, missing_ok=True)
        result.removed.append(stale)
    return result


# --- warehouse side: which experiments to (re)compact, bookkeeping tables, the SQL views ---------------


def pending_experiments(con) -> list[str]:
    """Experiments whose processing ledger or survey changed since their parts were built (or that have
    none yet): compared by the sha256 the warehouse recorded in ``ledger_loads`` / ``survey_loads``."""
    rows = con.execute(
        """
        SELECT l.experiment_accession
        FROM ledger_loads l
        LEFT JOIN survey_loads s ON s.experiment_accession = l.experiment_accession
        LEFT JOIN expression_loads x ON x.experiment_accession = l.experiment_accession
        WHERE x.experiment_accession IS NULL
           OR x.ledger_sha256 IS DISTINCT FROM l.ledger_sha256
           OR x.survey_sha256 IS DISTINCT FROM s.manifest_sha256
        ORDER BY 1
        """
    ).fetchall()
    return [r[0] for r in rows]


def vectors_to_compact(con, experiment: str) -> list[VectorRef]:
    """The usable vector of every sample of ``experiment`` (the delivery rule,
    :func:`refine_assets.lib.delivery.metadata.usable_vector_key`: latest non-survey outcome succeeded with
    a gene-level ``.parquet``), with its organism and platform from ``samples``."""
    from refine_assets.lib.delivery.metadata import (
        fetch_latest_processing,
        fetch_sample_rows,
        usable_vector_key,
    )

    samples = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT sample_accession FROM processing_ledger WHERE experiment_accession = ? "
            "AND step <> 'survey' ORDER BY 1",
            [experiment],
        ).fetchall()
    ]
    latest = fetch_latest_processing(con, samples)
    rows = fetch_sample_rows(con, [(s, experiment) for s in samples])
    out = []
    for s in samples:
        ledger = latest.get((s, experiment))
        key, _reason = usable_vector_key(ledger)
        if key is None:
            continue
        row = rows.get((s, experiment)) or {}
        out.append(
            VectorRef(
                s,
                experiment,
                key,
                (row.get("organism") or "").upper() or None,
                row.get("platform_accession"),
                ledger.get("step"),
                ledger.get("output_sha256"),
                ledger.get("metrics") if isinstance(ledger.get("metrics"), dict) else {},
            )
        )
    return out


def sync_expression_store(
    con, store: ArtifactStore, log: Callable[[str], None] = lambda _m: None
) -> list[str]:
    """Compact every :func:`pending_experiments` experiment and record its parts and samples in the
    warehouse tables ``expression_parts``, ``expression_samples`` and ``expression_loads`` (replacing the
    experiment's previous rows). Returns the experiments compacted. Runs inside a warehouse build."""
    from datetime import UTC, datetime

    done = []
    for experiment in pending_experiments(con):
        previous = [
            r[0]
            for r in con.execute(
                "SELECT key FROM expression_parts WHERE experiment_accession = ?", [experiment]
            ).fetchall()
        ]
        result = compact_experiment(store, experiment, vectors_to_compact(con, experiment), previous, log)
        now = datetime.now(UTC).replace(tzinfo=None)
        ledger_sha, survey_sha = con.execute(
            "SELECT l.ledger_sha256, s.manifest_sha256 FROM ledger_loads l LEFT JOIN survey_loads s "
            "ON s.experiment_accession = l.experiment_accession WHERE l.experiment_accession = ?",
            [experiment],
        ).fetchone()
        recorded = dict(
            con.execute(
                "SELECT sample_accession, max(recorded_at) FROM processing_ledger WHERE experiment_accession = ? "
                "AND step <> 'survey' GROUP BY 1",
                [experiment],
            ).fetchall()
        )
        con.execute("BEGIN TRANSACTION")
        try:
            for table in ("expression_parts", "expression_samples"):
                con.execute(f"DELETE FROM {table} WHERE experiment_accession = ?", [experiment])
            for p in result.parts:
                con.execute(
                    "INSERT INTO expression_parts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        experiment,
                        p["organism"],
                        p["platform"],
                        p["key"],
                        p["url"],
                        p["sha256"],
                        p["size"],
                        p["num_samples"],
                        p["num_rows"],
                        now,
                    ],
                )
            if result.samples:
                con.executemany(
                    "INSERT INTO expression_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        [
                            s.sample_accession,
                            s.experiment_accession,
                            s.organism,
                            s.platform_accession,
                            s.step,
                            s.value_scale,
                            s.vector_key,
                            s.vector_sha256,
                            s.part_key,
                            s.n_genes,
                            s.n_input,
                            s.n_duplicate_ids_merged,
                            s.n_affx_dropped,
                            s.n_missing_dropped,
                            recorded.get(s.sample_accession),
                        ]
                        for s in result.samples
                    ],
                )
            con.execute(
                "INSERT OR REPLACE INTO expression_loads VALUES (?, ?, ?, ?, ?, ?)",
                [experiment, ledger_sha, survey_sha, len(result.samples), json_failed(result.failed), now],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        done.append(experiment)
    return done


def json_failed(failed: list[tuple[str, str]]) -> str:
    """Vectors that could not be compacted, as JSON ``[{"sample", "reason"}]`` for ``expression_loads``."""
    import json

    return json.dumps([{"sample": s, "reason": r} for s, r in failed])


def store_glob(store: ArtifactStore) -> str:
    """The DuckDB glob of every part in ``store`` (a local path, or the ``s3://`` URL)."""
    root = store.url_for(STORE_PREFIX.rstrip("/") + "/x").rsplit("/", 1)[0]
    if root.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        root = unquote(urlsplit(root).path)
    return f"{root}/*/*/*/*.parquet"


_EMPTY = (
    "SELECT NULL::VARCHAR AS sample_accession, NULL::VARCHAR AS experiment_accession, NULL::VARCHAR AS organism, "
    "NULL::VARCHAR AS platform_accession, NULL::VARCHAR AS gene_id, NULL::FLOAT AS value, "
    "NULL::VARCHAR AS value_scale WHERE false"
)


def create_expression_views(con, store: ArtifactStore) -> str | None:
    """(Re)create ``expression_by_experiment`` and ``expression`` over the parts in ``store``.

    ``expression_by_experiment``: one row per (sample, experiment, gene) of every part the warehouse
    lists. ``expression``: one row per (sample, gene) - a sample processed under several experiments (GEO
    super-/sub-series) appears once, from its vector processed from raw data if any, else the newest
    (``expression_primary_samples``). Both read the Parquet parts through ``read_parquet`` with hive
    partitions, so a filter on ``organism``, ``platform_accession`` or ``experiment_accession`` skips other
    folders and a filter on ``gene_id`` reads one row group per part. Returns a warning when the parts
    cannot be read (e.g. an S3 store without DuckDB's httpfs); the views then raise that message.
    """
    import duckdb

    n_parts = con.execute("SELECT count(*) FROM expression_parts").fetchone()[0]
    glob = store_glob(store).replace("'", "''")
    source = (
        f"SELECT sample_accession, experiment AS experiment_accession, organism, platform AS platform_accession, "
        f"gene_id, value, value_scale FROM read_parquet('{glob}', hive_partitioning = true, "
        "hive_types = {'organism': VARCHAR, 'platform': VARCHAR, 'experiment': VARCHAR})"
        if n_parts
        else _EMPTY
    )
    by_experiment = f"""
        CREATE OR REPLACE VIEW expression_by_experiment AS
        SELECT x.* FROM ({source}) x
        SEMI JOIN expression_samples s
          ON s.sample_accession = x.sample_accession AND s.experiment_accession = x.experiment_accession
    """
    warning = None
    try:
        con.execute(by_experiment)
    except duckdb.Error as exc:
        warning = f"expression store {glob} cannot be read by DuckDB here: {str(exc).splitlines()[0]}"
        message = warning.replace("'", "''")
        con.execute(
            "CREATE OR REPLACE VIEW expression_by_experiment AS SELECT * FROM ("
            + _EMPTY.replace(" WHERE false", "")
            + f") WHERE error('{message}') IS NULL"
        )
    con.execute(
        """
        CREATE OR REPLACE VIEW expression AS
        SELECT x.* FROM expression_by_experiment x
        SEMI JOIN expression_primary_samples p
          ON p.sample_accession = x.sample_accession AND p.experiment_accession = x.experiment_accession
        """
    )
    return warning
