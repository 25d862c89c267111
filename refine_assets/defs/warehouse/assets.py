"""The analyst warehouse: one DuckDB file built from every experiment's survey Parquet."""

import dagster as dg

from refine_assets.defs.partitions import affy_platform_partitions, organism_partitions
from refine_assets.resources import StorageResource
from refine_assets.resources.warehouse import WarehouseResource


@dg.asset(
    key="metadata_warehouse",
    group_name="warehouse",
    deps=[
        dg.AssetDep("experiment_survey", partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep("experiment_processed", partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep("experiment_tximport", partition_mapping=dg.AllPartitionMapping()),
    ],
    kinds={"duckdb"},
    pool="warehouse",
    code_version="1",
    # Fan-in over every experiment partition: never eager; every 15 minutes (a build with nothing new
    # to load only re-checks manifest hashes). on_cron would wait for *all* partitions to update.
    automation_condition=(
        dg.AutomationCondition.cron_tick_passed("*/15 * * * *") & ~dg.AutomationCondition.in_progress()
    ).with_label("every 15 minutes"),
    description=(
        "DuckDB metadata warehouse (tables in sql/schema.sql, views in sql/views.sql). Loads every new or "
        "changed survey manifest and processing ledger, compacts the processed vectors of those experiments "
        "into the Parquet expression store (view 'expression'), then publishes the file atomically; single "
        "writer (pool 'warehouse'). Registers the organisms it finds as 'organism' partitions."
    ),
)
def metadata_warehouse(
    context: dg.AssetExecutionContext, storage: StorageResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    report = warehouse.build(storage.get_store())
    with warehouse.connect_readonly() as con:
        organisms = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT organism FROM samples WHERE organism IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
        summary = con.execute(
            "SELECT accession, num_samples, num_processed, num_unsupported, num_pending "
            "FROM experiment_summary ORDER BY accession LIMIT 50"
        ).fetchall()
        affy_codes = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT internal_platform_code FROM samples "
                "WHERE pipeline = 'AFFY_TO_PCL' AND internal_platform_code IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
    for partitions, keys in ((organism_partitions, organisms), (affy_platform_partitions, affy_codes)):
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new = [k for k in keys if k not in known]
        if new:
            context.instance.add_dynamic_partitions(partitions.name, new)
    table = "\n".join(
        ["| experiment | samples | processed | unsupported | pending |", "|---|---:|---:|---:|---:|"]
        + [f"| {a} | {n} | {p} | {u} | {q} |" for a, n, p, u, q in summary]
    )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(report.path),
            "experiments_loaded": dg.MetadataValue.json(report.loaded),
            "ledgers_loaded": dg.MetadataValue.json(report.ledgers_loaded),
            "expression_compacted": dg.MetadataValue.json(report.expression_compacted),
            "expression_samples": report.row_counts.get("expression_samples", 0),
            **({"expression_warning": report.expression_warning} if report.expression_warning else {}),
            "num_experiments_loaded": len(report.loaded),
            "row_counts": dg.MetadataValue.json(report.row_counts),
            "num_experiments": report.row_counts.get("experiments", 0),
            "num_samples": report.row_counts.get("samples", 0),
            "organisms": dg.MetadataValue.json(organisms),
            "affymetrix_platforms": dg.MetadataValue.json(affy_codes),
            "experiment_summary": dg.MetadataValue.md(table),
        }
    )
