"""Settings from environment variables, with embedded defaults for a one-machine run.

| variable | default | meaning |
|---|---|---|
| ``REFINE_ASSETS_HOME`` | ``./.refine_assets`` | root of local state (storage, warehouse, demo data) |
| ``REFINE_ASSETS_STORAGE_ROOT`` | ``$REFINE_ASSETS_HOME/storage`` | artifact store: a path, ``file://`` or ``s3://bucket/prefix`` |
| ``REFINE_ASSETS_S3_ENDPOINT_URL`` | unset | S3-compatible endpoint (moto, MinIO); AWS credentials from the usual AWS variables |
| ``REFINE_ASSETS_WAREHOUSE`` | ``$REFINE_ASSETS_HOME/warehouse.duckdb`` | DuckDB metadata warehouse file |
| ``REFINE_ASSETS_HTTP_MODE`` | ``live`` | ``live`` (network) or ``replay`` (recorded responses only) |
| ``REFINE_ASSETS_REPLAY_CASSETTES`` | unset | replay mode: cassette files or folders, ``:``-separated |
| ``REFINE_ASSETS_REPLAY_FILES`` | unset | replay mode: JSON object ``{url: local file}`` |
| ``REFINE_ASSETS_REPLAY_DOWNLOADS`` | unset | replay mode: JSON ``{url or file name: local file}`` for original files |
| ``REFINE_ASSETS_LOCAL_FILES`` | unset | folder of local copies of original files (CEL, fastq, ...), matched by file name before any download |
| ``REFINE_ASSETS_REFERENCE_SOURCES`` | unset | JSON: catalogue versions and optional local overrides of references (``docs/references.md``) |
| ``NCBI_API_KEY`` | unset | NCBI E-utilities key (10 requests/s instead of 3) |
| ``NCBI_EMAIL`` | unset | contact e-mail sent to NCBI with E-utilities requests |
| ``REFINE_ASSETS_SHARED_DATA`` | ``../shared/data`` | extra real data used by the demo and tests |
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def expand_cassettes(entries: list[str]) -> list[str]:
    """Files as given, folders expanded to their ``*.yaml``/``*.yaml.gz`` files (sorted)."""
    out: list[str] = []
    for entry in entries:
        p = Path(entry)
        if p.is_dir():
            out.extend(str(x) for x in sorted(p.iterdir()) if x.name.endswith((".yaml", ".yaml.gz", ".yml")))
        else:
            out.append(str(p))
    return out


def local_files_in(folder: Path) -> dict[str, str]:
    """File name -> path of every file under ``folder`` (a gzip ``X.gz`` is also registered as ``X``,
    since sources list ``C30057.CEL`` and a local copy may be compressed: content decides)."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of local files")
    out: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        out.setdefault(path.name, str(path))
        if path.name.endswith(".gz"):
            out.setdefault(path.name[: -len(".gz")], str(path))
    return out


@dataclass
class Settings:
    """Resolved settings (see the module docstring for the variables)."""

    home: Path
    storage_root: str
    warehouse_path: Path
    s3_endpoint_url: str | None = None
    http_mode: str = "live"
    replay_cassettes: list[str] = field(default_factory=list)
    replay_files: dict[str, str] = field(default_factory=dict)
    replay_downloads: dict[str, str] = field(default_factory=dict)
    reference_sources: dict = field(default_factory=dict)
    local_files: dict[str, str] = field(default_factory=dict)
    ncbi_api_key: str | None = None
    ncbi_email: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("REFINE_ASSETS_HOME") or ".refine_assets").resolve()
        cassettes = [c for c in (_env("REFINE_ASSETS_REPLAY_CASSETTES") or "").split(os.pathsep) if c]
        files_json = _env("REFINE_ASSETS_REPLAY_FILES")
        mode = (_env("REFINE_ASSETS_HTTP_MODE") or "live").lower()
        if mode not in ("live", "replay"):
            raise ValueError(f"REFINE_ASSETS_HTTP_MODE must be 'live' or 'replay', not {mode!r}")
        return cls(
            home=home,
            storage_root=_env("REFINE_ASSETS_STORAGE_ROOT") or str(home / "storage"),
            warehouse_path=Path(_env("REFINE_ASSETS_WAREHOUSE") or home / "warehouse.duckdb").resolve(),
            s3_endpoint_url=_env("REFINE_ASSETS_S3_ENDPOINT_URL"),
            http_mode=mode,
            replay_cassettes=expand_cassettes(cassettes),
            replay_files=json.loads(files_json) if files_json else {},
            replay_downloads=json.loads(_env("REFINE_ASSETS_REPLAY_DOWNLOADS") or "{}"),
            reference_sources=json.loads(_env("REFINE_ASSETS_REFERENCE_SOURCES") or "{}"),
            local_files=local_files_in(Path(_env("REFINE_ASSETS_LOCAL_FILES")))
            if _env("REFINE_ASSETS_LOCAL_FILES")
            else {},
            ncbi_api_key=_env("NCBI_API_KEY"),
            ncbi_email=_env("NCBI_EMAIL"),
        )
