"""Reporting references as materializations of their assets (built by the asset or during processing)."""

from __future__ import annotations

import dagster as dg

from refine_assets.defs.partitions import REFERENCE_PARTITIONS
from refine_assets.lib.references.sources import ASSET_FOR_KIND


def reference_metadata(record: dict) -> dict:
    """Materialization metadata of a reference record: version, source, URL and its details."""
    source = record.get("source") or {}
    details = record.get("details") or {}
    extra = {
        k: record[k]
        for k in (
            "k",
            "salmon_version",
            "transcripts",
            "ensembl_release",
            "assembly",
            "transcript_set_sha256",
        )
        if record.get(k) is not None
    }
    return {
        **extra,
        "version": record.get("version") or "",
        "source_url": dg.MetadataValue.url(record["source_url"])
        if "://" in str(record.get("source_url"))
        else str(record.get("source_url") or ""),
        "origin": source.get("origin") or "",
        "package": f"{source.get('package') or ''} {source.get('package_version') or ''}".strip(),
        "url": dg.MetadataValue.url(record["url"]),
        "details": dg.MetadataValue.json({k: v for k, v in details.items() if v is not None}),
    }


def reference_partition_key(instance: dg.DagsterInstance, kind: str, name: str):
    """The partition key of reference ``kind``/``name`` (``short|DANIO_RERIO`` for an index), its
    dynamic partitions added to the instance first."""
    partitions = REFERENCE_PARTITIONS[kind]
    if isinstance(partitions, dg.MultiPartitionsDefinition):
        from refine_assets.lib.references.sources import split_index_name

        organism, length = split_index_name(name)
        if organism not in instance.get_dynamic_partitions("organism"):
            instance.add_dynamic_partitions("organism", [organism])
        return dg.MultiPartitionKey({"organism": organism, "length": length})
    if name not in instance.get_dynamic_partitions(partitions.name):
        instance.add_dynamic_partitions(partitions.name, [name])
    return name


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
        partition = reference_partition_key(context.instance, kind, name)
        context.log_event(
            dg.AssetMaterialization(
                asset_key=ASSET_FOR_KIND[kind],
                partition=partition,
                description=f"built on demand for {context.partition_key}",
                metadata=reference_metadata(record),
            )
        )
