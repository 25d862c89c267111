"""The survey and warehouse assets materialized through Dagster on replayed real records."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from refine_assets.defs.survey.assets import experiment_survey
from refine_assets.defs.warehouse.assets import metadata_warehouse
from refine_assets.lib.survey.geo import family_soft_url
from refine_assets.resources import ReplayHttpResource, StorageResource
from refine_assets.resources.warehouse import WarehouseResource


@pytest.fixture
def resources(tmp_path: Path, shared_data: Path) -> dict:
    return {
        "http": ReplayHttpResource(
            cassettes=[str(p) for p in sorted((shared_data / "cassettes").glob("*.yaml.gz"))],
            files={family_soft_url("GSE781"): str(shared_data / "geo/geoquery/GSE781_family.soft.gz")},
        ),
        "storage": StorageResource(root=str(tmp_path / "storage")),
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
    }


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("experiment", ["GSE781", "E-MTAB-3050", "SRP068364", "ERP006216", "GSE0"])
        yield inst


def test_survey_partitions_then_warehouse(tmp_path: Path, resources: dict, instance) -> None:
    for acc in ("GSE781", "E-MTAB-3050", "SRP068364"):
        result = dg.materialize(
            [experiment_survey], partition_key=acc, resources=resources, instance=instance
        )
        assert result.success
        (mat,) = result.asset_materializations_for_node("experiment_survey")
        assert mat.partition == acc
        md = mat.metadata
        assert md["num_samples"].value == {"GSE781": 34, "E-MTAB-3050": 5, "SRP068364": 4}[acc]
        assert md["manifest"].value.startswith("file://")
        assert (tmp_path / "storage" / "surveys" / acc / "manifest.json").is_file()

    samples = pq.read_table(tmp_path / "storage/surveys/GSE781/samples.parquet").to_pylist()
    assert {s["platform_accession"] for s in samples} == {"GPL96", "GPL97"}
    assert len(list((tmp_path / "storage/surveys/GSE781/sample_tables").glob("GSM*.parquet"))) == 34

    result = dg.materialize([metadata_warehouse], resources=resources, instance=instance)
    assert result.success
    (mat,) = result.asset_materializations_for_node("metadata_warehouse")
    assert mat.metadata["num_experiments"].value == 3
    assert mat.metadata["num_samples"].value == 34 + 5 + 4
    assert sorted(instance.get_dynamic_partitions("organism")) == ["DANIO_RERIO", "HOMO_SAPIENS"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = dict(con.execute("SELECT accession, num_samples FROM experiment_summary").fetchall())
        assert rows == {"GSE781": 34, "E-MTAB-3050": 5, "SRP068364": 4}
        sex = con.execute(
            "SELECT refinebio_sex, count(*) FROM samples_harmonized WHERE experiment_accession='E-MTAB-3050' "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert sum(n for _, n in sex) == 5 and all(s in ("female", "male") for s, _ in sex)


@pytest.mark.parametrize(
    ("accession", "message"),
    [("ERP006216", "ERP006216: not found in ENA"), ("GSE0", "GSE0: ")],
)
def test_bad_partition_fails_clearly_and_writes_nothing(
    tmp_path: Path, resources: dict, instance, accession: str, message: str
) -> None:
    result = dg.materialize(
        [experiment_survey],
        partition_key=accession,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert message in failure.step_failure_data.error.message
    assert not (tmp_path / "storage" / "surveys" / accession).exists()
