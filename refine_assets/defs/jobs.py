"""Jobs over the asset graph (used by sensors, the CLI demo and the Launchpad)."""

import dagster as dg

from refine_assets.defs.partitions import experiment_partitions

survey_job = dg.define_asset_job(
    "survey_job",
    selection=dg.AssetSelection.assets("experiment_survey"),
    partitions_def=experiment_partitions,
    description="Survey one experiment partition.",
)
experiment_job = dg.define_asset_job(
    "experiment_job",
    selection=dg.AssetSelection.assets("experiment_survey", "experiment_processed"),
    partitions_def=experiment_partitions,
    description="Survey one experiment partition and process its samples.",
)
warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.assets("metadata_warehouse"),
    description="Load new surveys into the DuckDB warehouse.",
)
