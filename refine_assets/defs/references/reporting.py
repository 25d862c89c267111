"""Reporting references as materializations of their assets (built by the asset or during processing)."""

from __future__ import annotations

import dagster as dg

from refine_assets.defs.partitions import REFERENCE_PARTITIONS
from refine_assets.lib.references.sources import ASSET_FOR_KIND


def reference_metadata(record: dict) -> dict:
    """Materialization metadata of a reference record: version, source, URL and its details."""
    source = record.get("source") or {}
    details = record.get("details") or {}
    return {
        "version": record.get("version") or "",
        "source_url": dg.MetadataValue.url(record["source_url"])
        if "://" in str(record.get("source_url"))
        else str(record.get("source_url")),
        "origin": source.get("origin") or "",
        "package": f"{source.get('package') or ''} {source.get('package_version') or ''}".strip(),
        "url": dg.MetadataValue.url(record["url"]),
        "details": dg.MetadataValue.json({k: v for k, v in details.items() if v is not None}),
    }


def report_built_references(context: dg.AssetExecutionContext, records: list[dict]) -> None:
    """Log a materialization of ``<reference asset>[<name>]`` for every reference built in this step.

    The partition is added to its dynamic partitions definition first, so the UI shows the reference
    partition as materialized by this run (with the same metadata the reference asset reports).
    """
    seen: set[tuple[str, str]] = set()
    for record in records:
        kind, name = record["kind"], record["name"]
        if (kind, name) in seen or kind not in ASSET_FOR_KIND:
            continue
        seen.add((kind, name))
        partitions = REFERENCE_PARTITIONS[kind]
        if name not in context.instance.get_dynamic_partitions(partitions.name):
            context.instance.add_dynamic_partitions(partitions.name, [name])
        context.log_event(
            dg.AssetMaterialization(
                asset_key=ASSET_FOR_KIND[kind],
                partition=name,
                description=f"built on demand for {context.partition_key}",
                metadata=reference_metadata(record),
            )
        )
