"""Configuration of the API service, from the project settings plus a few API variables.

| variable | default | meaning |
|---|---|---|
| ``REFINE_ASSETS_WAREHOUSE``, ``REFINE_ASSETS_STORAGE_ROOT``, ``REFINE_ASSETS_S3_ENDPOINT_URL`` | project settings | what the API reads |
| ``REFINE_ASSETS_API_STATE`` | ``$REFINE_ASSETS_HOME/api`` | the API's own state: ``api.sqlite3`` (tokens, datasets), build temp files |
| ``REFINE_ASSETS_API_RATE_LIMIT`` | ``10/second`` | requests per client (IP) and worker process: ``N/second``, ``N/minute``, ``0`` = off |
| ``REFINE_ASSETS_API_BUILDS`` | ``auto`` | how ``start: true`` builds a dataset: ``dagster`` (a run of the ``dataset`` asset), ``thread`` (a worker thread), ``auto`` = ``dagster`` when ``DAGSTER_HOME`` is set |
| ``REFINE_ASSETS_API_BASE_URL`` | from the request | public base URL used in download links (behind a proxy) |
| ``REFINE_ASSETS_API_DOWNLOAD_TTL`` | ``604800`` (7 days) | lifetime of signed download links, seconds (refine.bio: 7 days) |
| ``REFINE_ASSETS_API_TERMS`` | built-in text | the ``terms_and_conditions`` text returned with tokens |
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TERMS = (
    "By activating this token you agree to the terms of use and privacy policy of the institution that "
    "runs this service. Data are provided as is, from public archives, for research use."
)
BUILD_MODES = ("auto", "thread", "dagster")


class ConfigError(ValueError):
    """A bad API setting; the message names the variable."""


def parse_rate(text: str) -> float:
    """``N/second`` | ``N/minute`` | ``N/hour`` | ``0`` -> requests per second (0 = unlimited)."""
    text = text.strip().lower()
    if text in ("0", "off", "none", ""):
        return 0.0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)", text)
    if not m:
        raise ConfigError(
            f"REFINE_ASSETS_API_RATE_LIMIT must look like 10/second or 600/minute, got {text!r}"
        )
    per = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
    return float(m.group(1)) / per[m.group(2)]


@dataclass(frozen=True)
class ApiConfig:
    """Everything the app needs; :meth:`from_env` reads the variables in the module docstring."""

    warehouse_path: Path
    storage_root: str
    state_dir: Path
    s3_endpoint_url: str | None = None
    rate_per_second: float = 10.0
    build_mode: str = "thread"
    base_url: str | None = None
    download_ttl: int = 7 * 24 * 3600
    terms: str = DEFAULT_TERMS
    snapshot_check_seconds: float = 1.0

    @classmethod
    def from_env(cls) -> ApiConfig:
        from refine_assets.settings import Settings

        settings = Settings.from_env()
        mode = (os.environ.get("REFINE_ASSETS_API_BUILDS") or "auto").strip().lower()
        if mode not in BUILD_MODES:
            raise ConfigError(
                f"REFINE_ASSETS_API_BUILDS must be one of {', '.join(BUILD_MODES)}, got {mode!r}"
            )
        if mode == "auto":
            mode = "dagster" if os.environ.get("DAGSTER_HOME") else "thread"
        ttl = os.environ.get("REFINE_ASSETS_API_DOWNLOAD_TTL") or str(7 * 24 * 3600)
        if not ttl.isdigit() or int(ttl) <= 0:
            raise ConfigError(
                f"REFINE_ASSETS_API_DOWNLOAD_TTL must be a positive number of seconds, got {ttl!r}"
            )
        base = (os.environ.get("REFINE_ASSETS_API_BASE_URL") or "").strip().rstrip("/") or None
        return cls(
            warehouse_path=settings.warehouse_path,
            storage_root=str(settings.storage_root),
            state_dir=Path(os.environ.get("REFINE_ASSETS_API_STATE") or settings.home / "api").resolve(),
            s3_endpoint_url=settings.s3_endpoint_url,
            rate_per_second=parse_rate(os.environ.get("REFINE_ASSETS_API_RATE_LIMIT") or "10/second"),
            build_mode=mode,
            base_url=base,
            download_ttl=int(ttl),
            terms=os.environ.get("REFINE_ASSETS_API_TERMS") or DEFAULT_TERMS,
        )
