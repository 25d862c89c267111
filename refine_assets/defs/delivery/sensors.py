"""Dataset requests by file drop: every new request file in the requests folder starts one run."""

import os
from pathlib import Path

import dagster as dg

from refine_assets.settings import Settings

MAX_RUNS_PER_TICK = 10


def requests_dir() -> Path:
    """``$REFINE_ASSETS_DATASET_REQUESTS`` or ``$REFINE_ASSETS_HOME/dataset_requests``."""
    env = os.environ.get("REFINE_ASSETS_DATASET_REQUESTS")
    return Path(env) if env else Settings.from_env().home / "dataset_requests"


@dg.sensor(
    name="dataset_request_sensor",
    job_name="dataset_job",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Start a dataset run for each new *.json / *.yaml request dropped in the requests folder.",
)
def dataset_request_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    folder = requests_dir()
    if not folder.is_dir():
        return dg.SkipReason(f"no requests folder {folder}")
    # cursor: the newest (mtime_ns, name) already requested; run keys make re-requests idempotent too
    last = tuple(context.cursor.split("|", 1)) if context.cursor else ("0", "")
    files = sorted(
        (str(p.stat().st_mtime_ns), p.name)
        for p in folder.iterdir()
        if p.is_file() and p.suffix in (".json", ".yaml", ".yml")
    )
    new = [f for f in files if (int(f[0]), f[1]) > (int(last[0]), last[1])][:MAX_RUNS_PER_TICK]
    if not new:
        return dg.SkipReason("no new dataset requests")
    runs = [
        dg.RunRequest(
            run_key=f"{name}:{mtime}",
            run_config={"ops": {"dataset": {"config": {"request": str(folder / name)}}}},
            tags={"refine_assets/request": name},
        )
        for mtime, name in new
    ]
    return dg.SensorResult(run_requests=runs, cursor="|".join(new[-1]))
