"""The survey -> storage -> warehouse path with storage on S3 (a real moto server on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from refine_assets.defs.survey.assets import experiment_survey
from refine_assets.defs.warehouse.assets import metadata_warehouse
from refine_assets.lib.survey.geo import family_soft_url
from refine_assets.resources import ReplayHttpResource, StorageResource
from refine_assets.resources.warehouse import WarehouseResource

pytestmark = pytest.mark.slow


def test_survey_and_warehouse_on_s3(tmp_path: Path, shared_data: Path, moto_server, moto_bucket: str) -> None:
    resources = {
        "http": ReplayHttpResource(
            files={family_soft_url("GSE781"): str(shared_data / "geo/geoquery/GSE781_family.soft.gz")}
        ),
        "storage": StorageResource(
            root=f"s3://{moto_bucket}/refine", s3_endpoint_url=moto_server.endpoint_url
        ),
        "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("experiment", ["GSE781"])
        res = dg.materialize(
            [experiment_survey], partition_key="GSE781", resources=resources, instance=instance
        )
        (mat,) = res.asset_materializations_for_node("experiment_survey")
        assert mat.metadata["manifest"].value == f"s3://{moto_bucket}/refine/surveys/GSE781/manifest.json"
        assert dg.materialize([metadata_warehouse], resources=resources, instance=instance).success
    s3 = moto_server.client()
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=moto_bucket, Prefix="refine/surveys/GSE781/")["Contents"]
    ]
    assert "refine/surveys/GSE781/samples.parquet" in keys
    assert sum(k.startswith("refine/surveys/GSE781/sample_tables/") for k in keys) == 34
    head = s3.head_object(Bucket=moto_bucket, Key="refine/surveys/GSE781/samples.parquet")
    assert len(head["Metadata"]["sha256"]) == 64
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM samples").fetchone() == (34,)
        url = con.execute("SELECT survey_manifest_url FROM experiments").fetchone()[0]
        assert url.startswith(f"s3://{moto_bucket}/refine/")
