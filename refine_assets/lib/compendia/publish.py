"""Versioned publication of species compendia and quantpendia in the artifact store.

Layout: ``compendia/<ORGANISM>/v<N>/...`` (every file of a built compendium folder) and
``quantpendia/<ORGANISM>/v<N>/<ORGANISM>_quantpendium.zip``. Each version gets a ``record.json``
written last, so a version exists iff its record does; earlier versions are kept (refine.bio keeps
``compendium_version`` 1, 2, ... too). The warehouse lists every record in the ``compendia`` table
(:func:`refine_assets.lib.warehouse.load_compendium_records`).

A new version is published only when the content changed: the record carries ``content_sha256``
(sha256 over the sorted sample -> vector-key list and the build parameters, from the caller), and
:func:`latest_record` lets callers skip a rebuild whose inputs equal the latest version's.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refine_assets.lib.storage import ArtifactStore

KINDS = ("compendium", "quantpendium")
_PREFIX = {"compendium": "compendia", "quantpendium": "quantpendia"}
_VERSION = re.compile(r"/v(\d+)/record\.json$")


def version_prefix(kind: str, organism: str, version: int) -> str:
    """``compendia/<ORGANISM>/v<N>`` (or ``quantpendia/...``)."""
    if kind not in _PREFIX:
        raise ValueError(f"unknown kind {kind!r} (expected one of {KINDS})")
    return f"{_PREFIX[kind]}/{organism}/v{version}"


def list_versions(store: ArtifactStore, kind: str, organism: str) -> list[int]:
    """Published versions (those with a record), ascending."""
    keys = store.list_keys(f"{_PREFIX[kind]}/{organism}/")
    return sorted(int(m.group(1)) for k in keys if (m := _VERSION.search(k)))


def latest_record(store: ArtifactStore, kind: str, organism: str) -> dict | None:
    """The record of the newest version, or None."""
    versions = list_versions(store, kind, organism)
    if not versions:
        return None
    key = f"{version_prefix(kind, organism, versions[-1])}/record.json"
    return json.loads(store.get_bytes(key))


def publish_version(
    store: ArtifactStore,
    kind: str,
    organism: str,
    folder: Path,
    summary: dict[str, Any],
) -> dict:
    """Upload every file under ``folder`` as the next version, then its record; returns the record.

    ``summary`` goes into the record as is (JSON scalars and small dicts: num_samples, num_genes,
    percent_imputed, content_sha256, ...). The record lists each file's key, url, size and sha256.
    """
    versions = list_versions(store, kind, organism)
    version = (versions[-1] + 1) if versions else 1
    prefix = version_prefix(kind, organism, version)
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        art = store.put_file(f"{prefix}/{rel}", path)
        files[rel] = {"key": art.key, "url": art.url, "size": art.size, "sha256": art.sha256}
    record = {
        "kind": kind,
        "organism": organism,
        "version": version,
        "url": store.url_for(prefix),
        "created_at": datetime.now(UTC).isoformat(),
        **summary,
        "files": files,
    }
    store.put_bytes(
        f"{prefix}/record.json", json.dumps(record, indent=1, sort_keys=True, default=str).encode()
    )
    return record


def list_records(store: ArtifactStore, kind: str | None = None) -> list[dict]:
    """Every published compendium / quantpendium record, sorted by kind, organism, version."""
    out = []
    for k in (kind and [kind]) or list(KINDS):
        for key in sorted(store.list_keys(f"{_PREFIX[k]}/")):
            if _VERSION.search(key):
                out.append(json.loads(store.get_bytes(key)))
    return sorted(out, key=lambda r: (r["kind"], r["organism"], r["version"]))
