"""refine-assets: harmonized gene expression from public archives as a Dagster asset graph."""
