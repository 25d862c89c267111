"""Dagster definitions, autoloaded by domain."""
