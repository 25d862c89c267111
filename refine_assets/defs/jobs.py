"""Jobs over the asset graph (used by sensors, the CLI demo and the Launchpad)."""

import dagster as dg

from refine_assets.defs.partitions import (
    affy_platform_partitions,
    experiment_partitions,
    illumina_platform_partitions,
    organism_partitions,
)

survey_job = dg.define_asset_job(
    "survey_job",
    selection=dg.AssetSelection.assets("experiment_survey"),
    partitions_def=experiment_partitions,
    description="Survey one experiment partition.",
)
experiment_job = dg.define_asset_job(
    "experiment_job",
    selection=dg.AssetSelection.assets("experiment_survey", "experiment_processed", "experiment_tximport"),
    partitions_def=experiment_partitions,
    description="Survey one experiment partition and process its samples.",
)
warehouse_job = dg.define_asset_job(
    "warehouse_job",
    selection=dg.AssetSelection.assets("metadata_warehouse"),
    description="Load new surveys into the DuckDB warehouse.",
)
processing_job = dg.define_asset_job(
    "processing_job",
    selection=dg.AssetSelection.assets("experiment_processed", "experiment_tximport"),
    partitions_def=experiment_partitions,
    description="Process the samples of one (already surveyed) experiment partition.",
)
tximport_job = dg.define_asset_job(
    "tximport_job",
    selection=dg.AssetSelection.assets("experiment_tximport"),
    partitions_def=experiment_partitions,
    description="Re-run tximport of one experiment over its quantified runs.",
)
probe_table_job = dg.define_asset_job(
    "probe_table_job",
    selection=dg.AssetSelection.assets("affy_probe_table", "brainarray_probes", "platform_annotation"),
    partitions_def=affy_platform_partitions,
    description="Build one Affymetrix platform's probe table, Brainarray package and probeset annotation.",
)
illumina_annotation_job = dg.define_asset_job(
    "illumina_annotation_job",
    selection=dg.AssetSelection.assets("illumina_annotation"),
    partitions_def=illumina_platform_partitions,
    description="Build one Illumina platform's annotation (probe sequences, quality, genes).",
)
crosswalk_job = dg.define_asset_job(
    "crosswalk_job",
    selection=dg.AssetSelection.assets("gene_crosswalk"),
    partitions_def=organism_partitions,
    description="Build one organism's gene-id crosswalk.",
)

# dataset_job and qn_target_job live with their assets in defs/delivery/assets.py.
transcriptome_index_job = dg.define_asset_job(
    "transcriptome_index_job",
    selection=dg.AssetSelection.assets("transcriptome_index"),
    description="Build one organism's salmon index of one read length (partition short|ORGANISM).",
)
