"""The expression store on S3 (a real moto server on 127.0.0.1): a warehouse build compacts vectors from
and into the bucket; DuckDB here has no httpfs, so the views say why they cannot read the parts."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from refine_assets.lib.delivery.expression_store import STORE_PREFIX, part_key
from refine_assets.lib.warehouse import build_warehouse
from refine_assets.resources import StorageResource
from refine_assets_tests.fixtures_servers import MotoServer
from refine_assets_tests.unit.test_delivery_world import HUMAN, affy, write_experiment

pytestmark = pytest.mark.slow


def test_compaction_reads_and_writes_the_bucket(
    tmp_path: Path, moto_server: MotoServer, moto_bucket: str
) -> None:
    store = StorageResource(
        root=f"s3://{moto_bucket}/refine", s3_endpoint_url=moto_server.endpoint_url, s3_region="us-east-1"
    ).get_store()
    write_experiment(store, "GSE1", [affy("GSM1", seed=1, n=50), affy("GSM2", seed=2, n=60)])
    db = tmp_path / "w.duckdb"
    report = build_warehouse(db, store)
    assert report.expression_compacted == ["GSE1"]
    key = part_key(HUMAN, "GPL570", "GSE1")
    assert store.list_keys(STORE_PREFIX) == [key]
    part = pq.read_table(io.BytesIO(store.get_bytes(key)))
    assert sorted(set(part.column("sample_accession").to_pylist())) == ["GSM1", "GSM2"]
    assert part.num_rows == 50 + 60
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM expression_samples").fetchone() == (2,)
        if report.expression_warning:  # no httpfs (or no credentials): the view raises the reason
            assert f"s3://{moto_bucket}/refine/expression" in report.expression_warning
            with pytest.raises(duckdb.Error, match="cannot be read"):
                con.execute("SELECT * FROM expression").fetchall()
