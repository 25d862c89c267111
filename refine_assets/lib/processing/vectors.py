"""Per-sample expression vectors in storage: one Parquet file per sample, ``id`` + ``value``.

Every processing path (Affymetrix SCAN, Illumina SCAN, submitter-processed tables, RNA-seq
tximport) ends in the same artifact: ``processed/<EXPERIMENT>/<SAMPLE>.parquet`` with columns
``id`` (string: Ensembl gene id, or a probeset id for ``*.probesets.parquet``) and ``value``
(float64), rows sorted by ``id``. Ids may repeat where a probe maps to several genes (one-to-many,
duplicated as the reference doc says; duplicates are averaged at delivery). Provenance (method,
versions, reference versions, input checksums) is stored as JSON in the Parquet key/value metadata
under ``refine_assets`` and in the processing ledger.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from refine_assets.lib.storage import ArtifactStore, StoredArtifact

METADATA_KEY = b"refine_assets"


def vector_key(experiment: str, sample: str, level: str = "gene") -> str:
    """Storage key of a sample's vector (``level`` 'gene' or 'probeset')."""
    suffix = ".parquet" if level == "gene" else f".{level}s.parquet"
    return f"processed/{experiment}/{sample}{suffix}"


def vector_table(values: pd.Series, provenance: dict | None = None) -> pa.Table:
    """Arrow table of a vector (sorted by id, stable) with provenance metadata."""
    if values.index.has_duplicates and values.index.hasnans:
        raise ValueError("vector index has missing ids")
    ids = values.index.astype(str).to_numpy()
    vals = values.to_numpy(dtype=np.float64)
    order = np.argsort(ids, kind="stable")
    table = pa.table({"id": pa.array(ids[order], pa.string()), "value": pa.array(vals[order], pa.float64())})
    meta = {METADATA_KEY: json.dumps(provenance or {}, sort_keys=True, default=str).encode()}
    return table.replace_schema_metadata(meta)


def write_vector(
    store: ArtifactStore, key: str, values: pd.Series, provenance: dict | None = None
) -> StoredArtifact:
    """Write a vector atomically; returns the stored artifact (URL, sha256, size)."""
    buf = io.BytesIO()
    pq.write_table(vector_table(values, provenance), buf, compression="zstd")
    return store.put_bytes(key, buf.getvalue())


def read_vector(store: ArtifactStore, key: str) -> tuple[pd.Series, dict]:
    """(values indexed by id, provenance dict) of a stored vector."""
    table = store.read_parquet(key)
    meta = table.schema.metadata or {}
    provenance = json.loads(meta.get(METADATA_KEY, b"{}"))
    series = pd.Series(
        table.column("value").to_numpy(),
        index=pd.Index(table.column("id").to_pylist(), name="id"),
        name="value",
    )
    return series, provenance
