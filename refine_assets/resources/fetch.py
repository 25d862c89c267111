"""Getting original files (CEL, SRA, archives) onto local disk: live downloads or local copies."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from refine_assets.lib.processing.fetch import Fetcher, LiveFetcher, ReplayFetcher


class FetcherResource(dg.ConfigurableResource):
    """Abstract: ``get_fetcher()`` returns a :class:`refine_assets.lib.processing.fetch.Fetcher`."""

    def get_fetcher(self) -> Fetcher:
        raise NotImplementedError


class LiveFetcherResource(FetcherResource):
    """Downloads over HTTP(S)/FTP-over-HTTPS into ``cache_dir`` (resumable, md5/size checked)."""

    cache_dir: str = os.path.join(tempfile.gettempdir(), "refine-assets-downloads")
    local_files: dict[str, str] = Field(
        default={}, description="URL or file name -> local copy, served before any download."
    )

    def get_fetcher(self) -> Fetcher:
        return LiveFetcher(Path(self.cache_dir), local_files=self.local_files)


class ReplayFetcherResource(FetcherResource):
    """Serves local copies registered by URL or file name (offline runs, demo, tests)."""

    files: dict[str, str] = Field(default={}, description="URL or file name -> local file.")
    work_dir: str = os.path.join(tempfile.gettempdir(), "refine-assets-replay")

    def get_fetcher(self) -> Fetcher:
        return ReplayFetcher(self.files, self.work_dir)
