"""Gene-id crosswalks as reference artifacts: build from a source file, store as Parquet, load back."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from refine_assets.lib.crosswalk import GeneCrosswalk, crosswalk_from_frame, load_crosswalk
from refine_assets.lib.references.artifacts import read_record, reference_key, write_record
from refine_assets.lib.storage import ArtifactStore

KIND = "crosswalk"


def crosswalk_table(cw: GeneCrosswalk) -> pa.Table:
    """Long table (id_type, key, ensembl_gene_id) of every pair."""
    frames = [p.assign(id_type=t) for t, p in sorted(cw.pairs.items())]
    df = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["key", "ensembl_gene_id", "id_type"])
    )
    return pa.Table.from_pandas(df[["id_type", "key", "ensembl_gene_id"]].astype(str), preserve_index=False)


def build_crosswalk_reference(
    store: ArtifactStore, organism: str, source: Path, source_url: str, **kwargs
) -> dict:
    """Load a crosswalk file, store it as ``references/crosswalk/<ORG>/crosswalk.parquet``, return its record."""
    cw = load_crosswalk(source, organism=organism, **kwargs)
    buf = io.BytesIO()
    pq.write_table(crosswalk_table(cw), buf, compression="zstd")
    art = store.put_bytes(reference_key(KIND, organism, "crosswalk.parquet"), buf.getvalue())
    return write_record(
        store,
        KIND,
        organism,
        {
            "version": cw.sha256,
            "source_url": source_url,
            "url": art.url,
            "key": art.key,
            "sha256": art.sha256,
            "details": cw.describe(),
        },
    )


def load_crosswalk_reference(store: ArtifactStore, organism: str) -> tuple[GeneCrosswalk, dict] | None:
    """The stored crosswalk of an organism and its record, or None when not built."""
    record = read_record(store, KIND, organism)
    if record is None:
        return None
    table = pq.read_table(io.BytesIO(store.get_bytes(record["key"]))).to_pandas()
    pairs = {t: g[["key", "ensembl_gene_id"]].reset_index(drop=True) for t, g in table.groupby("id_type")}
    cw = GeneCrosswalk(
        pairs=pairs,
        source=record["details"].get("source", ""),
        format=record["details"].get("format", "tsv"),
        sha256=record["details"].get("sha256"),
        tax_id=record["details"].get("tax_id"),
        organism=organism,
        ensembl_ids=frozenset(table["ensembl_gene_id"].unique()),
    )
    return cw, record


__all__ = ["build_crosswalk_reference", "crosswalk_from_frame", "load_crosswalk_reference"]
