"""The Dagster instance of a one-machine run (demo, ``process``): ``$DAGSTER_HOME``, by default
``$REFINE_ASSETS_HOME/dagster_home`` with an instance file written on first use."""

from __future__ import annotations

import os
from pathlib import Path

INSTANCE_YAML = """\
# Written by refine-assets (demo / process): local instance with a pool limit of 1 for warehouse writers.
concurrency:
  pools:
    default_limit: 1
python_logs:
  managed_python_loggers:
    - refine_assets.download
telemetry:
  enabled: false
"""


def local_dagster_instance(home: Path):
    """The instance at ``$DAGSTER_HOME`` (set to ``<home>/dagster_home`` when unset; created if new)."""
    import dagster as dg

    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home / "dagster_home")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    return dg.DagsterInstance.get()
