"""Reference artifacts in storage (probe tables, gene crosswalks, QN targets, transcriptome indices).

Each reference lives under ``references/<kind>/<name>/`` with its data file(s) and a
``record.json`` written last (a reference is complete iff its record exists). The record says what
it is and where it came from: ``kind``, ``name``, ``version`` (source version, e.g. a package
version or a file's sha256), ``source_url``, ``url`` and ``sha256`` of the main file, ``created_at``
and kind-specific details. The warehouse lists every record in ``reference_artifacts``; processors
record ``version``/``sha256`` as reference versions in the ledger (the skip-if-done key).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from refine_assets.lib.storage import ArtifactStore


def reference_key(kind: str, name: str, filename: str) -> str:
    return f"references/{kind}/{name}/{filename}"


def write_record(store: ArtifactStore, kind: str, name: str, record: dict) -> dict:
    """Publish ``record.json`` for a reference (after its files); returns the full record."""
    full = {"kind": kind, "name": name, "created_at": datetime.now(UTC).isoformat(), **record}
    art = store.put_bytes(
        reference_key(kind, name, "record.json"), json.dumps(full, indent=1, sort_keys=True).encode()
    )
    full["record_url"] = art.url
    return full


def read_record(store: ArtifactStore, kind: str, name: str) -> dict | None:
    """The record of a reference, or None when it was never built."""
    key = reference_key(kind, name, "record.json")
    if not store.exists(key):
        return None
    record = json.loads(store.get_bytes(key))
    record.setdefault("record_url", store.url_for(key))
    return record


def list_records(store: ArtifactStore, kind: str | None = None) -> list[dict]:
    """Every reference record (of one kind), sorted by kind and name."""
    prefix = f"references/{kind}/" if kind else "references/"
    keys = sorted(k for k in store.list_keys(prefix) if k.endswith("/record.json"))
    return [json.loads(store.get_bytes(k)) for k in keys]
