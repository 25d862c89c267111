"""The API's own state: tokens and datasets, in a SQLite file beside the warehouse (never in it).

``<state_dir>/api.sqlite3`` (WAL mode, so several uvicorn workers share it): ``tokens`` (refine.bio's
``APIToken``: id, is_activated), ``datasets`` (refine.bio's ``Dataset`` fields plus how and where it
was built) and ``meta`` (the secret that signs download links, created on first use). E-mail addresses
are never stored: only ``has_email``. Every write is one transaction; a rejected request writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    is_activated INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_modified TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    aggregate_by TEXT NOT NULL,
    scale_by TEXT NOT NULL,
    quantile_normalize INTEGER NOT NULL,
    quant_sf_only INTEGER NOT NULL DEFAULT 0,
    svd_algorithm TEXT NOT NULL DEFAULT 'NONE',
    is_processing INTEGER NOT NULL DEFAULT 0,
    is_processed INTEGER NOT NULL DEFAULT 0,
    is_available INTEGER NOT NULL DEFAULT 0,
    success INTEGER,
    failure_reason TEXT NOT NULL DEFAULT '',
    has_email INTEGER NOT NULL DEFAULT 0,
    email_ccdl_ok INTEGER NOT NULL DEFAULT 0,
    notify_me INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    started_at TEXT,
    build_mode TEXT,
    run_id TEXT,
    worker TEXT,
    store_key TEXT,
    size_in_bytes INTEGER,
    sha256 TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

DATASET_BOOLS = (
    "quantile_normalize",
    "quant_sf_only",
    "is_processing",
    "is_processed",
    "is_available",
    "has_email",
    "email_ccdl_ok",
    "notify_me",
)


def now_iso() -> str:
    """UTC now as DRF renders datetimes (ISO 8601, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StateStore:
    """Tokens and datasets in ``<state_dir>/api.sqlite3``."""

    def __init__(self, state_dir: Path):
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "api.sqlite3"
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA busy_timeout = 30000")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    # --- signing secret ---------------------------------------------------------------------------
    def secret(self) -> bytes:
        """The key that signs download links (random, created once, shared by all workers)."""
        with self.transaction() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'download_secret'").fetchone()
            if row is None:
                value = secrets.token_hex(32)
                con.execute("INSERT INTO meta VALUES ('download_secret', ?)", [value])
            else:
                value = row["value"]
        return bytes.fromhex(value)

    # --- tokens -----------------------------------------------------------------------------------
    def create_token(self, is_activated: bool) -> dict[str, Any]:
        ts = now_iso()
        token = {"id": str(uuid.uuid4()), "is_activated": is_activated, "created_at": ts, "last_modified": ts}
        with self.transaction() as con:
            con.execute("INSERT INTO tokens VALUES (?, ?, ?, ?)", [token["id"], int(is_activated), ts, ts])
        return token

    def get_token(self, token_id: str) -> dict[str, Any] | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM tokens WHERE id = ?", [token_id]).fetchone()
        if row is None:
            return None
        return {**dict(row), "is_activated": bool(row["is_activated"])}

    def set_token(self, token_id: str, is_activated: bool) -> dict[str, Any] | None:
        with self.transaction() as con:
            cur = con.execute(
                "UPDATE tokens SET is_activated = ?, last_modified = ? WHERE id = ?",
                [int(is_activated), now_iso(), token_id],
            )
            if cur.rowcount == 0:
                return None
        return self.get_token(token_id)

    def is_active_token(self, token_id: str | None) -> bool:
        if not token_id:
            return False
        token = self.get_token(token_id)
        return bool(token and token["is_activated"])

    # --- datasets ---------------------------------------------------------------------------------
    def insert_dataset(self, fields: dict[str, Any]) -> dict[str, Any]:
        ts = now_iso()
        row = {"id": str(uuid.uuid4()), "created_at": ts, "last_modified": ts, **fields}
        cols = list(row)
        with self.transaction() as con:
            con.execute(
                f"INSERT INTO datasets ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [_to_db(c, row[c]) for c in cols],
            )
        return self.get_dataset(row["id"])  # type: ignore[return-value]

    def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM datasets WHERE id = ?", [dataset_id]).fetchone()
        return _dataset_from_db(row) if row is not None else None

    def update_dataset(
        self, dataset_id: str, fields: dict[str, Any], *, only_if: dict[str, Any] | None = None
    ) -> bool:
        """Set ``fields`` (and ``last_modified``); with ``only_if``, only when those columns still match.

        Returns whether a row was updated (``only_if`` makes start/finish transitions race-free).
        """
        fields = {**fields, "last_modified": now_iso()}
        sets = ", ".join(f"{c} = ?" for c in fields)
        where = "id = ?"
        params = [_to_db(c, v) for c, v in fields.items()] + [dataset_id]
        for c, v in (only_if or {}).items():
            where += f" AND {c} IS ?"
            params.append(_to_db(c, v))
        with self.transaction() as con:
            cur = con.execute(f"UPDATE datasets SET {sets} WHERE {where}", params)
            return cur.rowcount > 0

    def processing_datasets(self) -> list[dict[str, Any]]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM datasets WHERE is_processing = 1").fetchall()
        return [_dataset_from_db(r) for r in rows]


def _to_db(column: str, value: Any) -> Any:
    if column in ("data", "summary") and value is not None and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    if column in DATASET_BOOLS or column == "success":
        return None if value is None else int(bool(value))
    return value


def _dataset_from_db(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for c in DATASET_BOOLS:
        d[c] = bool(d[c])
    d["success"] = None if d["success"] is None else bool(d["success"])
    d["data"] = json.loads(d["data"])
    d["summary"] = json.loads(d["summary"]) if d.get("summary") else None
    return d
