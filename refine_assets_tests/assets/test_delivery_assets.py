"""qn_target and dataset assets through Dagster: the blocking qn_target_valid check, the dataset's KS
gate check, and what a bad target looks like to the check."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np

from refine_assets.defs.delivery.assets import _target_check, dataset, qn_target
from refine_assets.lib.delivery.targets import qn_target_key
from refine_assets.lib.references.artifacts import write_record
from refine_assets.resources import StorageResource
from refine_assets.resources.warehouse import WarehouseResource
from refine_assets_tests.unit.test_delivery_world import HUMAN, affy, make_world


def _resources(store, db) -> dict:
    return {"storage": StorageResource(root=str(store.root)), "warehouse": WarehouseResource(path=str(db))}


def test_target_then_dataset_with_checks(tmp_path: Path) -> None:
    store, db = make_world(tmp_path, {"GSE1": [affy(f"GSM{i:02d}", seed=i) for i in range(12)]})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("organism", [HUMAN])
        target = dg.materialize(
            [qn_target],
            partition_key=HUMAN,
            instance=instance,
            resources=_resources(store, db),
            run_config={"ops": {"qn_target": {"config": {"min_samples": 10}}}},  # 12 samples >= 10
        )
        (check,) = target.get_asset_check_evaluations()
        assert check.check_name == "qn_target_valid" and check.passed
        assert check.metadata["values"].value == 300 and check.metadata["min_samples"].value == 10
        request = {"data": {"GSE1": "ALL"}, "aggregate_by": "EXPERIMENT", "quantile_normalize": True}
        config = {"ops": {"dataset": {"config": {"request": json.dumps(request)}}}}
        ds = dg.materialize([dataset], instance=instance, resources=_resources(store, db), run_config=config)
    (ks,) = ds.get_asset_check_evaluations()
    assert ks.check_name == "dataset_ks_gate" and ks.passed
    assert ks.metadata["samples_tested"].value == 12 and ks.metadata["failed"].value == []
    md = ds.asset_materializations_for_node("dataset")[0].metadata
    assert md["num_samples"].value == 12 and Path(md["url"].value.removeprefix("file://")).is_file()
    for key in ("values_before_qn", "values_after_qn"):
        assert md[key].value.startswith("![") and "data:image/svg+xml;base64," in md[key].value
    spec = next(iter(qn_target.check_specs))
    assert spec.blocking  # a bad target stops datasets and compendia in automation


def test_target_below_the_minimum_blocks_and_datasets_say_so(tmp_path: Path) -> None:
    store, db = make_world(tmp_path, {"GSE1": [affy(f"GSM{i:02d}", seed=i) for i in range(12)]})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("organism", [HUMAN])
        target = dg.materialize(  # refine.bio's default minimum, 100: 12 samples are not enough
            [qn_target],
            partition_key=HUMAN,
            instance=instance,
            resources=_resources(store, db),
            raise_on_error=False,
        )
        (check,) = target.get_asset_check_evaluations()
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
        assert "below the minimum of 100 samples" in check.description
        assert check.metadata["num_samples"].value == 12 and check.metadata["min_samples"].value == 100
        request = {"data": {"GSE1": "ALL"}, "aggregate_by": "EXPERIMENT", "quantile_normalize": True}
        config = {"ops": {"dataset": {"config": {"request": json.dumps(request)}}}}
        ds = dg.materialize(
            [dataset],
            instance=instance,
            resources=_resources(store, db),
            run_config=config,
            raise_on_error=False,
        )
    # every sample needs the refused target: the dataset fails, saying why (with a partial request the
    # samples are dropped and listed in the metadata with the same reason)
    failure = next(e for e in ds.all_events if e.is_step_failure).step_failure_data.error
    assert "no sample of the request can be delivered (12 filtered)" in failure.message
    assert "QN target of HOMO_SAPIENS is not used: below the minimum of 100 samples" in failure.message


def test_bad_targets_fail_the_check(tmp_path: Path) -> None:
    store, _db = make_world(tmp_path, {"GSE1": [affy("GSM1")]})
    resources = StorageResource(root=str(store.root))
    path = store.path_for(qn_target_key(HUMAN))
    for values, problem in (
        (np.array([1.0, 3.0, 2.0]), "values not in ascending order (value #3)"),
        (np.array([1.0, 2.0, np.inf]), "line 3: missing or infinite value 'inf'"),
        (np.array([1.0, 2.0, 3.0]), "3 values for 5 genes"),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(str(v) for v in values) + "\n")
        sha = store.read_sha256(qn_target_key(HUMAN))
        record = write_record(store, "qn_targets", HUMAN, {"sha256": sha, "details": {"num_genes": 5}})
        result = _target_check(resources, HUMAN, record)
        assert not result.passed and any(problem in p for p in result.metadata["problems"].value)
    write_record(store, "qn_targets", HUMAN, {"sha256": "0" * 64, "details": {}})
    result = _target_check(resources, HUMAN, {"details": {}})
    assert not result.passed and "has sha256" in result.metadata["problems"].value[0]
