"""Declarative automation: surveys flow into processing per partition; the warehouse runs on its cron."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from refine_assets.definitions import build_defs
from refine_assets.settings import Settings


def test_survey_triggers_processing_of_that_partition_only(tmp_path) -> None:
    defs = build_defs(
        Settings(home=tmp_path, storage_root=str(tmp_path / "s"), warehouse_path=tmp_path / "w.duckdb")
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("experiment", ["GSE1", "GSE2"])
        t0 = dt.datetime(2026, 11, 24, 12, 1, tzinfo=dt.UTC)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=t0)
        assert result.get_num_requested(dg.AssetKey("experiment_processed")) == 0
        instance.report_runless_asset_event(dg.AssetMaterialization("experiment_survey", partition="GSE1"))
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor, evaluation_time=t0 + dt.timedelta(minutes=1)
        )
        assert result.get_requested_partitions(dg.AssetKey("experiment_processed")) == {"GSE1"}
        # fan-in assets are never eager: the warehouse waits for its cron tick
        assert result.get_num_requested(dg.AssetKey("metadata_warehouse")) == 0
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor, evaluation_time=t0 + dt.timedelta(minutes=16)
        )
        assert result.get_num_requested(dg.AssetKey("metadata_warehouse")) == 1
        assert result.get_num_requested(dg.AssetKey("experiment_processed")) == 0  # not requested twice
