"""Gene-id crosswalks as reference artifacts: build from a source file, store as Parquet, load back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from refine_assets.lib.crosswalk import GeneCrosswalk, crosswalk_from_frame
from refine_assets.lib.references.artifacts import read_record
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
    store: ArtifactStore, organism: str, source: Path, source_url: str, *, tax_id: int | None = None
) -> dict:
    """Build ``references/crosswalk/<ORG>/crosswalk.parquet`` from a local file (TSV, NCBI gene2ensembl,
    or an ``org.<Xx>.eg.db`` package tarball) and return its record; ``source_url`` is where the file
    came from. The same builder the ``gene_crosswalk`` asset uses (:mod:`..provision`)."""
    from refine_assets.lib.references.provision import build_reference
    from refine_assets.lib.references.sources import ReferenceSource

    src = ReferenceSource(
        KIND, organism, str(source), "override", package=Path(source).name, tax_id=tax_id, note=source_url
    )
    record = build_reference(store, src, lambda url: Path(url))
    return record


def crosswalk_from_record(store: ArtifactStore, record: dict) -> GeneCrosswalk:
    """The crosswalk a reference record points to (its ``sha256`` is the record's content version)."""
    table = store.read_parquet(record["key"]).to_pandas()
    pairs = {t: g[["key", "ensembl_gene_id"]].reset_index(drop=True) for t, g in table.groupby("id_type")}
    details = record.get("details") or {}
    return GeneCrosswalk(
        pairs=pairs,
        source=details.get("source", ""),
        format=details.get("format", "tsv"),
        sha256=record.get("version") or details.get("sha256"),
        tax_id=details.get("tax_id"),
        organism=record.get("name"),
        ensembl_ids=frozenset(table["ensembl_gene_id"].unique()),
    )


def load_crosswalk_reference(store: ArtifactStore, organism: str) -> tuple[GeneCrosswalk, dict] | None:
    """The stored crosswalk of an organism and its record, or None when not built."""
    record = read_record(store, KIND, organism)
    if record is None:
        return None
    return crosswalk_from_record(store, record), record


__all__ = [
    "build_crosswalk_reference",
    "crosswalk_from_frame",
    "crosswalk_from_record",
    "load_crosswalk_reference",
]
