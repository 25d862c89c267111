"""Dagster resource classes (configuration + construction only; logic lives in ``refine_assets.lib``)."""

from refine_assets.resources.http import HttpClientResource, LiveHttpResource, ReplayHttpResource
from refine_assets.resources.storage import StorageResource

__all__ = ["HttpClientResource", "LiveHttpResource", "ReplayHttpResource", "StorageResource"]
