"""The code location: every definition under ``refine_assets/defs`` plus resources from settings.

Resources are chosen once, here, from environment variables (``refine_assets/settings.py``): local
files and DuckDB by default, S3 when ``REFINE_ASSETS_STORAGE_ROOT`` is ``s3://...``, and recorded
HTTP responses instead of the network when ``REFINE_ASSETS_HTTP_MODE=replay``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from refine_assets.resources import LiveHttpResource, ReplayHttpResource, StorageResource
from refine_assets.resources.fetch import LiveFetcherResource, ReplayFetcherResource
from refine_assets.resources.references import ReferenceSourcesResource
from refine_assets.resources.warehouse import WarehouseResource
from refine_assets.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resource set for these settings."""
    if settings.http_mode == "replay":
        http: dg.ConfigurableResource = ReplayHttpResource(
            cassettes=settings.replay_cassettes, files=settings.replay_files
        )
    else:
        http = LiveHttpResource(ncbi_api_key=settings.ncbi_api_key, email=settings.ncbi_email)
    if settings.http_mode == "replay":
        fetcher: dg.ConfigurableResource = ReplayFetcherResource(
            files={**settings.replay_downloads, **settings.local_files},
            work_dir=str(settings.home / "replay_work"),
        )
    else:
        fetcher = LiveFetcherResource(
            cache_dir=str(settings.home / "downloads"), local_files=settings.local_files
        )
    return {
        "http": http,
        "fetcher": fetcher,
        "reference_sources": ReferenceSourcesResource(**settings.reference_sources),
        "storage": StorageResource(root=settings.storage_root, s3_endpoint_url=settings.s3_endpoint_url),
        "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
    }


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    """All definitions with resources for ``settings`` (from the environment by default)."""
    settings = settings or Settings.from_env()
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).resolve().parent)
    return dg.Definitions.merge(loaded, dg.Definitions(resources=build_resources(settings)))


defs = build_defs()
