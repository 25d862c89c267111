"""The main job on real demo data, with embedded defaults (local files, DuckDB, local Dagster storage).

Inputs, all real and replayed (the demo never touches the network):

* GEO series GSE781 (family SOFT from the Debian package r-bioc-geoquery, fetched at set-up);
* where ``../shared/data`` exists: the recorded ArrayExpress and SRA/ENA responses in its
  ``cassettes/`` folder (E-MTAB-3050, E-GEOD-44719, E-MEXP-2381, SRP068364, SRP048683, ERP108370).
).

Each experiment is materialized as an ``experiment_survey`` partition through Dagster into the
instance at ``$DAGSTER_HOME`` (default ``$REFINE_ASSETS_HOME/dagster_home``), then
``metadata_warehouse`` builds the DuckDB file. A failing experiment is reported and does not stop
the others.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SHARED_EXPERIMENTS = (
    "E-MTAB-3050",
    "E-GEOD-44719",
    "E-MEXP-2381",
    "SRP068364",
    "SRP048683",
    "ERP108370",
)

INSTANCE_YAML = """\
# Written by `refine-assets demo`: local instance with a pool limit of 1 for warehouse writers.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def default_shared_data() -> Path | None:
    env = os.environ.get("REFINE_ASSETS_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    for c in candidates:
        if (c / "cassettes").is_dir():
            return c
    return None


def _say(msg: str) -> None:
    print(f"[refine-assets demo] {msg}", flush=True)


def run_demo(shared_data: Path | None = None) -> int:
    """Run the demo; returns a process exit code (0 when every experiment succeeded)."""
    from refine_assets.lib.demo_data import fetch_demo_data
    from refine_assets.lib.survey.geo import family_soft_url
    from refine_assets.settings import Settings, expand_cassettes

    settings = Settings.from_env()
    home = settings.home
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home / "dagster_home")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)

    _say(f"fetching demo data from Debian packages into {home / 'demo_data'}")
    records = fetch_demo_data(home / "demo_data")
    for name, rec in sorted(records.items()):
        _say(f"  {name}: {rec['package']} {rec['version']} ({rec['bytes']:,} bytes)")

    shared = shared_data or default_shared_data()
    experiments = ["GSE781"]
    cassettes: list[str] = []
    if shared and (shared / "cassettes").is_dir():
        cassettes = expand_cassettes([str(shared / "cassettes")])
        experiments += list(SHARED_EXPERIMENTS)
        _say(f"using {len(cassettes)} recorded HTTP cassettes from {shared / 'cassettes'}")
    else:
        _say("no ../shared/data: surveying GSE781 only")

    settings.http_mode = "replay"
    settings.replay_cassettes = cassettes
    settings.replay_files = {family_soft_url("GSE781"): str(home / "demo_data" / "GSE781_family.soft.gz")}

    import dagster as dg

    from refine_assets.definitions import build_defs

    defs = build_defs(settings)
    instance = dg.DagsterInstance.get()
    known = set(instance.get_dynamic_partitions("experiment"))
    instance.add_dynamic_partitions("experiment", [e for e in experiments if e not in known])

    survey_job = defs.resolve_job_def("experiment_job")
    failures: dict[str, str] = {}
    for acc in experiments:
        t0 = time.perf_counter()
        result = survey_job.execute_in_process(partition_key=acc, instance=instance, raise_on_error=False)
        dt = time.perf_counter() - t0
        if result.success:
            _say(f"surveyed and processed {acc} in {dt:.1f} s")
        else:
            failure = next((e for e in result.all_events if e.is_failure), None)
            failures[acc] = failure.message if failure else "failed"
            _say(f"FAILED {acc}: {failures[acc]}")
    result = defs.resolve_job_def("warehouse_job").execute_in_process(instance=instance, raise_on_error=False)
    if not result.success:
        _say("warehouse build failed")
        return 2

    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.sql(
            "SELECT accession, source_database, num_samples, organisms, platforms FROM experiment_summary ORDER BY 1"
        ).show(max_width=160)
    _say(f"storage:   {settings.storage_root}")
    _say(
        f"warehouse: {settings.warehouse_path}  (try: uv run refine-assets warehouse {settings.warehouse_path})"
    )
    _say(
        f"UI:        DAGSTER_HOME={dagster_home} uv run dagster dev -h 127.0.0.1 -p 3000  "
        "then open http://127.0.0.1:3000"
    )
    return 1 if failures else 0
