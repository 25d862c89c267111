"""Pure computation for refine-assets: parsers, methods and warehouse logic. No Dagster imports here."""
