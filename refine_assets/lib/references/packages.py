"""Reading R package source tarballs (Bioconductor, Brainarray) without R.

An R source package is a tarball ``<pkg>_<version>.tar.gz`` whose members all sit under ``<pkg>/``:
``<pkg>/DESCRIPTION`` (Debian-control-like ``Field: value`` lines, continuation lines indented;
R's "Writing R Extensions", section 1.1.1), R data under ``<pkg>/data/*.rda`` (probe packages:
``<chip>probe``, Brainarray ``<chip><sp>ensgprobe``) and, for the SQLite-based annotation packages
(``<chip>.db`` ChipDb, ``illumina<Org>v<N>.db``, ``org.<Xx>.eg.db``), the database at
``<pkg>/inst/extdata/<name>.sqlite``.

Two readers live here so every package kind is opened the same way:

* :func:`description_fields` parses a DESCRIPTION text;
* :func:`read_package_sqlite` returns the SQLite database of a package (bytes), its DESCRIPTION and
  the member name, and :func:`connect_sqlite_bytes` opens such bytes as an in-memory database.

Errors are :class:`PackageError` (a ``ValueError``) naming the file. Nothing here imports dagster.
"""

from __future__ import annotations

import sqlite3
import tarfile
from pathlib import Path

__all__ = [
    "PackageError",
    "connect_sqlite_bytes",
    "description_fields",
    "read_package_sqlite",
    "sqlite_tables",
]


class PackageError(ValueError):
    """A package tarball is unreadable or lacks what is needed; the message names the file."""


def description_fields(text: str) -> dict[str, str]:
    """``Field: value`` pairs of a DESCRIPTION (or PACKAGES stanza); continuation lines are joined."""
    out: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line[:1].isspace() and key:
            out[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            out[key] = value.strip()
    return out


def read_package_sqlite(path: str | Path) -> tuple[bytes, dict[str, str], str]:
    """(SQLite bytes, DESCRIPTION fields, member name) of a package tarball with ``inst/extdata/*.sqlite``.

    Raises:
        PackageError: not a tarball, or no ``inst/extdata/*.sqlite`` member.
    """
    p = Path(path)
    try:
        tar = tarfile.open(p, "r:*")  # noqa: SIM115 - closed by the with block below
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise PackageError(f"{p}: not a readable package tarball ({exc})") from exc
    with tar:
        sqlite_member = None
        desc: dict[str, str] = {}
        for m in tar.getmembers():
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 2 and parts[1] == "DESCRIPTION":
                fh = tar.extractfile(m)
                desc = description_fields(fh.read().decode("utf-8", "replace")) if fh else {}
            if m.isfile() and m.name.endswith(".sqlite") and "/inst/extdata/" in m.name:
                sqlite_member = m
        if sqlite_member is None:
            raise PackageError(f"{p}: no inst/extdata/*.sqlite database in the package")
        fh = tar.extractfile(sqlite_member)
        if fh is None:
            raise PackageError(f"{p}: cannot read {sqlite_member.name}")
        return fh.read(), desc, sqlite_member.name


def connect_sqlite_bytes(data: bytes, where: str) -> sqlite3.Connection:
    """An in-memory SQLite connection holding ``data`` (raises :class:`PackageError` naming ``where``)."""
    con = sqlite3.connect(":memory:")
    try:
        con.deserialize(data)
        con.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        con.close()
        raise PackageError(f"{where}: not an SQLite database ({exc})") from exc
    return con


def sqlite_tables(con: sqlite3.Connection) -> dict[str, list[str]]:
    """Table name -> column names."""
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n: [r[1] for r in con.execute(f'PRAGMA table_info("{n}")')] for n in names}
