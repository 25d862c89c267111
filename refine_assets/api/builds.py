"""Building a started dataset with the project's one dataset builder, off the request path.

``thread`` mode: a worker thread (one per API process) calls
:func:`refine_assets.lib.delivery.dataset.build_dataset` exactly as ``refine-assets dataset --publish``
does (dataset id = the API's id, zip published to the store as ``datasets/<id>/<id>.zip``, recorded in
the warehouse's ``datasets`` table under the writer lock). ``dagster`` mode: the same worker thread runs
the ``dataset`` asset as a Dagster run in the instance at ``DAGSTER_HOME`` (:mod:`refine_assets.api.dagster_hook`;
the asset calls the same builder, with the run id as dataset id), so the run shows in the UI.

The outcome is written to the API store: success -> ``is_processed``, ``is_available``, the zip's store
key, size and sha256; failure -> ``success: false`` and ``failure_reason`` (the builder's message).
A dataset whose build was running in a process that no longer exists (same host) is marked failed when
it is next read, so a client never polls forever.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from refine_assets.api.state import StateStore, now_iso
from refine_assets.lib.storage import ArtifactStore

log = logging.getLogger("refine_assets.api")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str | None) -> bool:
    """Whether the process that runs a build is still there (unknown hosts count as alive)."""
    if not worker or ":" not in worker:
        return True
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Builder:
    """Starts dataset builds (``mode`` ``thread`` or ``dagster``) and records their outcome."""

    def __init__(self, state: StateStore, store: ArtifactStore, warehouse_path: Path, mode: str):
        self.state = state
        self.store = store
        self.warehouse_path = Path(warehouse_path)
        self.mode = mode
        self.tmp = state.dir / "tmp"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-build")
        self._lock = threading.Lock()

    def start(self, dataset_id: str) -> dict[str, Any] | None:
        """Mark the dataset processing (once) and queue its build; returns the updated row."""
        started = self.state.update_dataset(
            dataset_id,
            {
                "is_processing": True,
                "success": None,
                "failure_reason": "",
                "started_at": now_iso(),
                "build_mode": self.mode,
                "worker": worker_name(),
            },
            only_if={"is_processing": False, "is_processed": False},
        )
        if started:
            self._pool.submit(self._run, dataset_id)
        return self.state.get_dataset(dataset_id)

    def check_stale(self, row: dict[str, Any]) -> dict[str, Any]:
        """Fail a dataset whose building process is gone (same host)."""
        if row["is_processing"] and not _alive(row.get("worker")):
            self.state.update_dataset(
                row["id"],
                {
                    "is_processing": False,
                    "success": False,
                    "failure_reason": f"the build was interrupted (API worker {row['worker']} exited); start it again",
                },
                only_if={"is_processing": True},
            )
            return self.state.get_dataset(row["id"]) or row
        return row

    def _run(self, dataset_id: str) -> None:
        row = self.state.get_dataset(dataset_id)
        if row is None:
            return
        request = {
            "data": row["data"],
            "aggregate_by": row["aggregate_by"],
            "scale_by": row["scale_by"],
            "quantile_normalize": row["quantile_normalize"],
        }
        try:
            if self.mode == "dagster":
                from refine_assets.api.dagster_hook import run_dataset_asset

                outcome = run_dataset_asset(request, tags={"refine_assets/api_dataset": dataset_id})
            else:
                outcome = self._build_here(dataset_id, request)
        except ValueError as exc:  # DatasetError, DatasetRequestError: the builder's message
            self._finish(dataset_id, False, str(exc))
            return
        except Exception as exc:
            log.exception("dataset %s: build failed", dataset_id)
            self._finish(dataset_id, False, f"internal error: {type(exc).__name__}: {exc}")
            return
        self._finish(dataset_id, True, "", outcome)

    def _build_here(self, dataset_id: str, request: dict[str, Any]) -> dict[str, Any]:
        from refine_assets.lib.delivery.dataset import build_dataset
        from refine_assets.lib.delivery.request import parse_request

        work = self.tmp / dataset_id
        work.mkdir(parents=True, exist_ok=True)
        key = f"datasets/{dataset_id}/{dataset_id}.zip"
        try:
            result = build_dataset(
                parse_request(request),
                self.warehouse_path,
                self.store,
                work / f"{dataset_id}.zip",
                dataset_id=dataset_id,
                publish_key=key,
                log=lambda m: log.info("dataset %s: %s", dataset_id, m),
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return {
            "key": key,
            "size": result.size,
            "sha256": result.sha256,
            "summary": {
                "dataset_id": result.dataset_id,
                "num_samples": result.num_samples,
                "groups": sorted(result.groups),
                "num_filtered": len(result.filtered),
                "warnings": result.warnings,
                "code_version": result.record.get("code_version"),
            },
        }

    def _finish(
        self, dataset_id: str, success: bool, reason: str, outcome: dict[str, Any] | None = None
    ) -> None:
        fields: dict[str, Any] = {"is_processing": False, "success": success, "failure_reason": reason}
        if success and outcome:
            fields.update(
                is_processed=True,
                is_available=True,
                store_key=outcome["key"],
                size_in_bytes=outcome["size"],
                sha256=outcome["sha256"],
                summary=outcome.get("summary"),
                run_id=outcome.get("run_id"),
            )
        self.state.update_dataset(dataset_id, fields)
        log.info("dataset %s: %s", dataset_id, "built" if success else f"failed: {reason}")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
