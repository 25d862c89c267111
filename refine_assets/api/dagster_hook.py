"""The dataset-start hook for ``dagster`` mode: a run of the ``dataset`` asset in the configured instance.

The only module of the API that imports Dagster. The run executes in the API worker's build thread
(``execute_in_process`` against ``DagsterInstance.get()``, i.e. ``$DAGSTER_HOME``), is recorded in the
instance like any other run (the UI lists it, tagged ``refine_assets/api_dataset=<id>``) and calls the
project's dataset builder through the asset; the asset names the dataset after the run id and
publishes ``datasets/<run id>/<run id>.zip``.
"""

from __future__ import annotations

import functools
import json
from typing import Any


@functools.cache
def _definitions():
    from refine_assets.definitions import build_defs

    return build_defs()


def run_dataset_asset(request: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """Materialize ``dataset`` for ``request``; returns the published zip's key, size, sha256 and run id.

    Raises ValueError with the run's failure message when the run fails.
    """
    import dagster as dg

    job = _definitions().resolve_job_def("dataset_job")
    result = job.execute_in_process(
        run_config={"ops": {"dataset": {"config": {"request": json.dumps(request)}}}},
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
        tags=tags,
    )
    run_id = result.run_id
    if not result.success:
        failure = next((e for e in result.all_events if e.is_failure), None)
        message = failure.message if failure and failure.message else "the dataset run failed"
        raise ValueError(f"Dagster run {run_id}: {message}")
    mats = result.asset_materializations_for_node("dataset")
    meta = mats[-1].metadata if mats else {}

    def value(name: str) -> Any:
        entry = meta.get(name)
        return getattr(entry, "value", entry)

    return {
        "run_id": run_id,
        "key": f"datasets/{run_id}/{run_id}.zip",
        "size": value("bytes"),
        "sha256": value("sha256"),
        "summary": {"dataset_id": value("dataset_id"), "num_samples": value("num_samples"), "run_id": run_id},
    }
