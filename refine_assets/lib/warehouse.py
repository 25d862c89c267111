"""The DuckDB metadata warehouse: schema, loading survey Parquet, analyst views, atomic publishing.

DuckDB allows one read-write process *or* many read-only ones per file. To let analysts keep
read-only connections open while Dagster loads new surveys, a build never writes the published
file in place: it takes an exclusive lock file (``<db>.lock``, serializing writers across processes),
copies the published file to ``<db>.building``, applies ``sql/schema.sql``, loads the pending survey
manifests (delete-then-insert per experiment, in one transaction), re-creates ``sql/views.sql``,
checkpoints, and renames the copy over the published file (``os.replace``, atomic on POSIX).
Readers that opened the old file keep reading the old snapshot; new readers see the new one. A
failed build leaves the published file untouched.

Loading is idempotent: ``survey_loads`` records the sha256 of each loaded manifest, and a manifest
already loaded with the same hash is skipped; ``ledger_loads`` does the same for processing ledgers and
``expression_loads`` for the expression store (only experiments whose ledger or survey changed are
compacted again, :func:`refine_assets.lib.delivery.expression_store.sync_expression_store`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

import refine_assets
from refine_assets.lib.delivery.expression_store import create_expression_views, sync_expression_store

TABLES_BY_EXPERIMENT = (
    "samples",
    "sample_attributes",
    "sample_harmonized",
    "harmonization_conflicts",
    "original_files",
)


def sql_dir() -> Path:
    """Folder of ``schema.sql`` and ``views.sql`` (repository ``sql/`` or the packaged copy)."""
    pkg = Path(refine_assets.__file__).resolve().parent
    for candidate in (pkg.parent / "sql", pkg / "_sql"):
        if (candidate / "schema.sql").is_file():
            return candidate
    raise FileNotFoundError(f"sql/schema.sql not found next to {pkg}")


def apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables (``schema.sql``) and (re)create the analyst views (``views.sql``)."""
    con.execute((sql_dir() / "schema.sql").read_text())
    con.execute((sql_dir() / "views.sql").read_text())


@dataclass
class ManifestToLoad:
    """One survey manifest and local paths of its Parquet tables (keyed by table name)."""

    accession: str
    manifest_url: str
    manifest_sha256: str
    manifest: dict
    table_paths: dict[str, Path] = field(default_factory=dict)


@dataclass
class LoadReport:
    """What a build did: experiments loaded or skipped, and row counts of every table after it."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ledgers_loaded: list[str] = field(default_factory=list)
    expression_compacted: list[str] = field(default_factory=list)
    expression_warning: str | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    path: str = ""


@contextlib.contextmanager
def writer_lock(db_path: Path) -> Iterator[None]:
    """Exclusive inter-process lock for warehouse writers (blocks until free)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.with_name(db_path.name + ".lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def loaded_hashes(db_path: Path) -> dict[str, str]:
    """accession -> manifest sha256 already in the published warehouse (empty if none)."""
    if not db_path.exists():
        return {}
    with duckdb.connect(str(db_path), read_only=True) as con:
        try:
            rows = con.execute("SELECT experiment_accession, manifest_sha256 FROM survey_loads").fetchall()
        except duckdb.CatalogException:
            return {}
    return dict(rows)


@contextlib.contextmanager
def building(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection on a private copy that is published atomically on clean exit.

    Callers must hold :func:`writer_lock`. On an exception the copy is discarded.
    """
    tmp = db_path.with_name(db_path.name + ".building")
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    if db_path.exists():
        shutil.copy2(db_path, tmp)
    con = duckdb.connect(str(tmp))
    try:
        apply_schema(con)
        yield con
        con.execute("CHECKPOINT")
        con.close()
        os.replace(tmp, db_path)
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise


def _insert_parquet(con: duckdb.DuckDBPyConnection, table: str, path: Path, experiment: str) -> None:
    """Insert a survey Parquet into ``table`` by column name, adding ``experiment_accession``."""
    target = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()]
    target_cols = [c for c, _ in target]
    src_cols = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}
    exprs = []
    for col, col_type in target:
        if col in src_cols:
            # TRY_CAST: source dates arrive as text; an unparseable one becomes NULL, not an error.
            exprs.append(f'TRY_CAST("{col}" AS {col_type})')
        elif col == "experiment_accession":
            exprs.append("?::VARCHAR")
        else:
            exprs.append("NULL")
    needs_exp = "experiment_accession" in target_cols and "experiment_accession" not in src_cols
    params = [experiment] if needs_exp else []
    cols_sql = ", ".join(f'"{c}"' for c in target_cols)
    con.execute(
        f"INSERT INTO {table} ({cols_sql}) SELECT {', '.join(exprs)} FROM read_parquet(?)",
        [*params, str(path)],
    )


def load_experiment(con: duckdb.DuckDBPyConnection, item: ManifestToLoad) -> None:
    """Replace everything the warehouse holds for one experiment by the manifest's tables."""
    acc = item.accession
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        for table in TABLES_BY_EXPERIMENT:
            con.execute(f"DELETE FROM {table} WHERE experiment_accession = ?", [acc])
        con.execute("DELETE FROM experiments WHERE accession = ?", [acc])
        for table in TABLES_BY_EXPERIMENT:
            if table in item.table_paths:
                _insert_parquet(con, table, item.table_paths[table], acc)
        exp_path = item.table_paths["experiments"]
        con.execute(
            """
            INSERT INTO experiments BY NAME
            SELECT * EXCLUDE (source_first_published, source_last_modified),
                   TRY_CAST(source_first_published AS DATE) AS source_first_published,
                   TRY_CAST(source_last_modified AS DATE) AS source_last_modified,
                   ?::VARCHAR AS survey_manifest_url, ?::VARCHAR AS survey_sha256,
                   TRY_CAST(? AS TIMESTAMP) AS surveyed_at, ?::TIMESTAMP AS loaded_at
            FROM read_parquet(?)
            """,
            [item.manifest_url, item.manifest_sha256, item.manifest.get("surveyed_at"), now, str(exp_path)],
        )
        # Platforms and organisms are shared across experiments: upsert.
        for table, key in (("platforms", "accession, source_database"), ("organisms", "name")):
            if table in item.table_paths:
                con.execute(
                    f"INSERT OR REPLACE INTO {table} BY NAME "
                    f"SELECT DISTINCT ON ({key}) * FROM read_parquet(?)",
                    [str(item.table_paths[table])],
                )
        con.execute(
            "INSERT OR REPLACE INTO survey_loads VALUES (?, ?, ?, ?)",
            [acc, item.manifest_url, item.manifest_sha256, now],
        )
        con.execute(
            "INSERT INTO processing_ledger (sample_accession, experiment_accession, step, status, reason,"
            " versions, output_url, run_id, recorded_at)"
            " SELECT accession, experiment_accession, 'survey', 'succeeded', NULL, ?::JSON, ?, ?, ?"
            " FROM samples WHERE experiment_accession = ?",
            [
                json.dumps(item.manifest.get("versions", {})),
                item.manifest_url,
                item.manifest.get("run_id"),
                now,
                acc,
            ],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def table_row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every base table."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
    ]
    return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}


def record_ledger(
    con: duckdb.DuckDBPyConnection,
    rows: list[dict],
) -> None:
    """Append processing-ledger rows (keys as the ``processing_ledger`` columns; versions a dict)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    for r in rows:
        con.execute(
            "INSERT INTO processing_ledger (sample_accession, experiment_accession, step, status, reason,"
            " versions, output_url, run_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?::JSON, ?, ?, ?)",
            [
                r["sample_accession"],
                r["experiment_accession"],
                r["step"],
                r["status"],
                r.get("reason"),
                json.dumps(r.get("versions") or {}),
                r.get("output_url"),
                r.get("run_id"),
                r.get("recorded_at") or now,
            ],
        )


def pending_manifests(
    store, loaded: dict[str, str], accessions: list[str] | None = None
) -> list[tuple[str, str, str, dict]]:
    """Survey manifests in ``store`` whose sha256 differs from what the warehouse loaded.

    Returns (accession, manifest_key, sha256, manifest dict) sorted by accession.
    """
    import hashlib

    if accessions is None:
        keys = [k for k in store.list_keys("surveys/") if k.endswith("/manifest.json")]
    else:
        keys = [f"surveys/{a}/manifest.json" for a in accessions]
    out = []
    for key in sorted(keys):
        body = store.get_bytes(key)
        digest = hashlib.sha256(body).hexdigest()
        manifest = json.loads(body)
        acc = manifest["accession"]
        if loaded.get(acc) != digest:
            out.append((acc, key, digest, manifest))
    return out


def pending_ledgers(
    store, con: duckdb.DuckDBPyConnection, accessions: list[str] | None = None
) -> list[tuple[str, str, str]]:
    """(experiment, ledger key, sha256) of processing ledgers not yet loaded with that content."""
    import hashlib

    if accessions is None:
        keys = [k for k in store.list_keys("processed/") if k.endswith("/ledger.parquet")]
    else:
        keys = [f"processed/{a}/ledger.parquet" for a in accessions]
        keys = [k for k in keys if store.exists(k)]
    loaded = dict(con.execute("SELECT experiment_accession, ledger_sha256 FROM ledger_loads").fetchall())
    out = []
    for key in sorted(keys):
        experiment = key.split("/")[1]
        digest = hashlib.sha256(store.get_bytes(key)).hexdigest()
        if loaded.get(experiment) != digest:
            out.append((experiment, key, digest))
    return out


def load_ledger(con: duckdb.DuckDBPyConnection, experiment: str, url: str, digest: str, path: Path) -> None:
    """Replace the processing (non-survey) ledger rows of an experiment by a ledger Parquet file."""
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM processing_ledger WHERE experiment_accession = ? AND step <> 'survey'", [experiment]
        )
        con.execute(
            """
            INSERT INTO processing_ledger BY NAME
            SELECT sample_accession, experiment_accession, step, status, reason,
                   versions::JSON AS versions, output_url, run_id,
                   TRY_CAST(recorded_at AS TIMESTAMP) AS recorded_at, output_sha256, output_key, probeset_output_url,
                   metrics::JSON AS metrics, input_checksums::JSON AS input_checksums, seconds
            FROM read_parquet(?)
            """,
            [str(path)],
        )
        con.execute("INSERT OR REPLACE INTO ledger_loads VALUES (?, ?, ?, ?)", [experiment, url, digest, now])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def load_reference_records(con: duckdb.DuckDBPyConnection, store) -> int:
    """Replace ``reference_artifacts`` by every ``references/<kind>/<name>/record.json`` in storage."""
    from refine_assets.lib.references.artifacts import list_records

    records = list_records(store)
    con.execute("DELETE FROM reference_artifacts")
    for r in records:
        con.execute(
            "INSERT OR REPLACE INTO reference_artifacts VALUES (?, ?, ?, ?, ?, ?, TRY_CAST(? AS TIMESTAMPTZ), ?::JSON)",
            [
                r.get("kind"),
                r.get("name"),
                r.get("version"),
                r.get("source_url"),
                r.get("url"),
                r.get("sha256"),
                r.get("created_at"),
                json.dumps(r.get("details") or {}, default=str),
            ],
        )
    return len(records)


def load_compendium_records(con: duckdb.DuckDBPyConnection, store) -> int:
    """Replace ``compendia`` by every published compendium / quantpendium version in storage."""
    from refine_assets.lib.compendia.publish import list_records as list_compendia

    records = list_compendia(store)
    con.execute("DELETE FROM compendia")
    for r in records:
        con.execute(
            "INSERT OR REPLACE INTO compendia VALUES (?, ?, ?, ?, ?, ?, ?, ?, TRY_CAST(? AS TIMESTAMPTZ), ?::JSON)",
            [
                r.get("kind"),
                r.get("organism"),
                r.get("version"),
                r.get("url"),
                r.get("num_samples"),
                r.get("num_genes"),
                r.get("percent_imputed"),
                r.get("content_sha256"),
                r.get("created_at"),
                json.dumps({k: v for k, v in r.items() if k != "files"}, default=str),
            ],
        )
    return len(records)


def build_warehouse(
    db_path: str | Path,
    store,
    accessions: list[str] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> LoadReport:
    """Load every new or changed survey manifest from ``store`` into the warehouse at ``db_path``.

    Holds the writer lock for the whole build and publishes atomically (module docstring). With
    ``accessions`` only those experiments are considered. Then compacts the processed vectors of every
    experiment whose ledger or survey changed into the expression store and (re)creates the ``expression``
    views (:mod:`refine_assets.lib.delivery.expression_store`). Returns what was loaded and row counts.
    """
    db_path = Path(db_path).resolve()
    report = LoadReport(path=str(db_path))
    with writer_lock(db_path):
        pending = pending_manifests(store, loaded_hashes(db_path), accessions)
        with building(db_path) as con, contextlib.ExitStack() as stack:
            for acc, key, digest, manifest in pending:
                paths = {
                    name: stack.enter_context(store.local_path(info["key"]))
                    for name, info in manifest["tables"].items()
                }
                item = ManifestToLoad(acc, store.url_for(key), digest, manifest, paths)
                load_experiment(con, item)
                report.loaded.append(acc)
            load_reference_records(con, store)
            load_compendium_records(con, store)
            for experiment, key, digest in pending_ledgers(store, con, accessions):
                path = stack.enter_context(store.local_path(key))
                load_ledger(con, experiment, store.url_for(key), digest, path)
                report.ledgers_loaded.append(experiment)
            report.expression_compacted = sync_expression_store(con, store, log)
            report.expression_warning = create_expression_views(con, store)
            report.row_counts = table_row_counts(con)
    return report
