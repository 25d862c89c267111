"""Small rendering helpers shared by the resource modules: DRF datetimes, rows as dicts, JSON cells."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import duckdb


def iso(value: Any) -> str | None:
    """A date/datetime as DRF renders it (``2019-03-04T18:02:44.123456Z``; dates at midnight UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        text = value.replace(tzinfo=None).isoformat()
        return text + "Z"
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    return str(value)


def rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The result of the last ``execute`` as a list of dicts."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def one(cur: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    out = rows(cur)
    return out[0] if out else None


def json_cell(value: Any) -> Any:
    """A DuckDB JSON cell (text) parsed; other values unchanged."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
