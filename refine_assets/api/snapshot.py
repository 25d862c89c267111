"""Read-only snapshots of the warehouse, one per published file, never blocking the single writer.

The warehouse is published by atomic rename (``lib/warehouse.py``). DuckDB's ``duckdb.connect(path,
read_only=True)`` shares one database instance per path inside a process, so it would keep serving the
first file it opened; instead each snapshot is a fresh in-memory DuckDB that ``ATTACH``-es the
published file ``READ_ONLY`` as ``wh`` and builds the API's read model (``read_model.sql``: one row
per sample / experiment with refine.bio's counters, facet keys and search fields) in its own
in-memory catalog. The attached file stays open on its inode, so a writer renaming a new file over it
affects nothing; the next :meth:`Snapshots.current` after the rename (checked at most every
``check_seconds``) builds a new snapshot in a background thread while requests keep using the old
one, then swaps it in. A retired snapshot is closed when its last request returns.

Full-text search: where DuckDB's ``fts`` extension loads (``LOAD fts``; this machine cannot download
extensions), a BM25 index over the experiment search fields is created; otherwise search uses the
ILIKE-style fallback over the lower-case text columns (:mod:`refine_assets.api.search`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb

log = logging.getLogger("refine_assets.api")

FTS_FIELDS = (
    "t_title",
    "t_authors",
    "t_keywords",
    "t_publication_title",
    "t_institution",
    "t_description",
    "t_other",
)


class WarehouseUnavailable(RuntimeError):
    """No published warehouse (yet) at the configured path."""


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class Snapshot:
    """One published warehouse file with its read model. Use :meth:`cursor` per request."""

    con: duckdb.DuckDBPyConnection
    identity: tuple[int, int, int, int]
    opened_at: float
    build_seconds: float
    fts: bool
    users: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor (its own DuckDB connection to this snapshot), closed afterwards."""
        with self.lock:
            self.users += 1
        cur = self.con.cursor()
        try:
            yield cur
        finally:
            cur.close()
            with self.lock:
                self.users -= 1
                close = self.retired and self.users == 0
            if close:
                self.con.close()

    def retire(self) -> None:
        with self.lock:
            self.retired = True
            close = self.users == 0
        if close:
            self.con.close()


def open_snapshot(path: Path, store_root_url: str, threads: int | None = None) -> Snapshot:
    """Attach ``path`` read-only and build the read model (``read_model.sql``)."""
    if not path.is_file():
        raise WarehouseUnavailable(f"no warehouse at {path}")
    t0 = time.perf_counter()
    identity = _identity(path)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("ATTACH ? AS wh (READ_ONLY)", [str(path)])
        con.execute("SET VARIABLE store_root = ?", [store_root_url.rstrip("/")])
        con.execute(resources.files("refine_assets.api").joinpath("read_model.sql").read_text())
        fts = _build_fts(con)
    except BaseException:
        con.close()
        raise
    seconds = time.perf_counter() - t0
    log.info(
        "warehouse snapshot %s opened in %.2f s (full-text search: %s)",
        path,
        seconds,
        "fts" if fts else "fallback",
    )
    return Snapshot(con, identity, time.time(), seconds, fts)


def _build_fts(con: duckdb.DuckDBPyConnection) -> bool:
    """BM25 index over the experiment search fields where the ``fts`` extension loads."""
    try:
        con.execute("LOAD fts")
    except duckdb.Error:
        return False
    fields = ", ".join(f"'{f}'" for f in FTS_FIELDS)
    con.execute(f"PRAGMA create_fts_index('api_experiments', 'accession', {fields}, overwrite=1)")
    return True


class Snapshots:
    """The current snapshot of the warehouse at ``path``, refreshed when the file is replaced."""

    def __init__(
        self, path: Path, store_root_url: str, check_seconds: float = 1.0, threads: int | None = None
    ):
        self.path = Path(path)
        self.store_root_url = store_root_url
        self.check_seconds = check_seconds
        self.threads = threads
        self._current: Snapshot | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._building: threading.Thread | None = None
        self.last_error: str | None = None

    def current(self) -> Snapshot:
        """The newest ready snapshot; the first call builds one (raises WarehouseUnavailable)."""
        snap = self._current
        if snap is None:
            with self._lock:
                if self._current is None:
                    self._current = open_snapshot(self.path, self.store_root_url, self.threads)
                    self._checked = time.monotonic()
                return self._current
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            self._maybe_refresh(snap)
        return self._current or snap

    def _maybe_refresh(self, snap: Snapshot) -> None:
        try:
            identity = _identity(self.path)
        except FileNotFoundError:
            return  # between unlink and rename, or removed: keep serving what we have
        if identity == snap.identity:
            return
        with self._lock:
            if self._building is not None and self._building.is_alive():
                return
            self._building = threading.Thread(target=self._refresh, name="warehouse-snapshot")
            self._building.start()

    def _refresh(self) -> None:
        try:
            new = open_snapshot(self.path, self.store_root_url, self.threads)
        except Exception as exc:  # keep the old snapshot; try again at the next check
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("warehouse snapshot refresh failed: %s", self.last_error)
            return
        self.last_error = None
        with self._lock:
            old, self._current = self._current, new
        if old is not None:
            old.retire()

    def wait_for(self, identity_changed_from: tuple[int, int, int, int], timeout: float = 30.0) -> Snapshot:
        """Block until a snapshot of a different file than ``identity_changed_from`` is current."""
        deadline = time.monotonic() + timeout
        while True:
            self._checked = 0.0
            snap = self.current()
            if snap.identity != identity_changed_from or time.monotonic() > deadline:
                return snap
            time.sleep(0.05)

    def close(self) -> None:
        building = self._building
        if building is not None:
            building.join()
        with self._lock:
            snap, self._current = self._current, None
        if snap is not None:
            snap.retire()
