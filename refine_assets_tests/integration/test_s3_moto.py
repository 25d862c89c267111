"""S3 artifact storage against a real moto S3 server on 127.0.0.1, through StorageResource.

The store is built exactly as in production: ``StorageResource(root="s3://...",
s3_endpoint_url=...).get_store()``, whose boto3 client comes from dagster-aws ``S3Resource``.
Objects are checked with a separate plain boto3 client.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from botocore.exceptions import ClientError

from refine_assets.lib.storage import ArtifactNotFoundError, S3ArtifactStore, StoredArtifact
from refine_assets.resources import StorageResource
from refine_assets_tests.fixtures_servers import MotoServer

pytestmark = pytest.mark.slow

PREFIX = "runs/2026"


def _store(moto_server: MotoServer, bucket: str) -> S3ArtifactStore:
    store = StorageResource(
        root=f"s3://{bucket}/{PREFIX}", s3_endpoint_url=moto_server.endpoint_url, s3_region="us-east-1"
    ).get_store()
    assert isinstance(store, S3ArtifactStore)
    return store


def _not_found(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return exc.response["Error"]["Code"] in {"404", "NoSuchKey"}
    return False


def test_put_get_list_delete_with_sha256(moto_server: MotoServer, moto_bucket: str) -> None:
    store = _store(moto_server, moto_bucket)
    data = b"!Sample_geo_accession = GSM11805\n"
    art = store.put_bytes("GSE781/GSM11805.soft", data)
    digest = hashlib.sha256(data)
    assert art == StoredArtifact(
        key="GSE781/GSM11805.soft",
        url=f"s3://{moto_bucket}/{PREFIX}/GSE781/GSM11805.soft",
        sha256=digest.hexdigest(),
        size=len(data),
    )
    assert store.root_url == f"s3://{moto_bucket}/{PREFIX}"

    raw = moto_server.client()
    head = raw.head_object(Bucket=moto_bucket, Key=f"{PREFIX}/GSE781/GSM11805.soft", ChecksumMode="ENABLED")
    assert head["Metadata"]["sha256"] == digest.hexdigest()
    assert head["ChecksumSHA256"] == base64.b64encode(digest.digest()).decode()
    assert head["ContentLength"] == len(data)

    assert store.get_bytes("GSE781/GSM11805.soft") == data
    assert store.exists("GSE781/GSM11805.soft") and not store.exists("GSE781/other")
    assert store.size("GSE781/GSM11805.soft") == len(data)
    assert store.read_sha256("GSE781/GSM11805.soft") == digest.hexdigest()

    store.put_bytes("GSE7810/a.txt", b"a")
    raw.put_object(Bucket=moto_bucket, Key="elsewhere/b.txt", Body=b"outside the store prefix")
    assert store.list_keys() == ["GSE781/GSM11805.soft", "GSE7810/a.txt"]
    assert store.list_keys("GSE781/") == ["GSE781/GSM11805.soft"]
    assert store.list_keys("GSE781") == ["GSE781/GSM11805.soft", "GSE7810/a.txt"]

    store.delete("GSE7810/a.txt")
    assert _not_found(raw, moto_bucket, f"{PREFIX}/GSE7810/a.txt")
    assert store.list_keys() == ["GSE781/GSM11805.soft"]


def test_put_file_and_local_path_with_real_file(
    moto_server: MotoServer, moto_bucket: str, shared_data: Path
) -> None:
    store = _store(moto_server, moto_bucket)
    src = shared_data / "geo/geoquery/GSM11805.txt.gz"
    art = store.put_file("GSM11805/GSM11805.txt.gz", src)
    assert art.size == 119_670
    assert art.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert art.sha256.startswith("e3ec38c1c3d85469")  # MANIFEST.md
    with store.local_path("GSM11805/GSM11805.txt.gz") as path:
        assert path.name == "GSM11805.txt.gz"
        assert path.read_bytes() == src.read_bytes()
    assert not path.exists()  # the temp download is removed


def test_writer_publishes_only_on_clean_exit(moto_server: MotoServer, moto_bucket: str) -> None:
    store = _store(moto_server, moto_bucket)
    raw = moto_server.client()
    with store.writer("GSE781/expression.parquet") as tmp:
        assert tmp.name == "expression.parquet"
        tmp.write_bytes(b"PAR1 data PAR1")
        assert not store.exists("GSE781/expression.parquet")
    assert store.get_bytes("GSE781/expression.parquet") == b"PAR1 data PAR1"
    head = raw.head_object(Bucket=moto_bucket, Key=f"{PREFIX}/GSE781/expression.parquet")
    assert head["Metadata"]["sha256"] == hashlib.sha256(b"PAR1 data PAR1").hexdigest()
    assert not tmp.exists()

    with pytest.raises(RuntimeError, match="salmon died"), store.writer("GSE781/quant.sf") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("salmon died")
    assert _not_found(raw, moto_bucket, f"{PREFIX}/GSE781/quant.sf")
    assert not tmp.exists()
    with pytest.raises(FileNotFoundError, match="nothing was written"), store.writer("GSE781/empty.txt"):
        pass
    assert store.list_keys() == ["GSE781/expression.parquet"]


def test_missing_keys_raise_with_url(moto_server: MotoServer, moto_bucket: str) -> None:
    store = _store(moto_server, moto_bucket)
    url = f"s3://{moto_bucket}/{PREFIX}/GSE0/none.txt"
    for call in (store.get_bytes, store.size, store.read_sha256, store.delete):
        with pytest.raises(ArtifactNotFoundError) as info:
            call("GSE0/none.txt")
        assert url in str(info.value)
    with pytest.raises(KeyError), store.local_path("GSE0/none.txt"):
        pass
    store.delete("GSE0/none.txt", missing_ok=True)
    with pytest.raises(ValueError):
        store.put_bytes("../escape", b"x")


def test_read_sha256_of_objects_written_by_others(moto_server: MotoServer, moto_bucket: str) -> None:
    store = _store(moto_server, moto_bucket)
    raw = moto_server.client()
    body = b"uploaded without metadata"
    digest = hashlib.sha256(body)
    raw.put_object(
        Bucket=moto_bucket,
        Key=f"{PREFIX}/with-checksum.txt",
        Body=body,
        ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
    )
    raw.put_object(Bucket=moto_bucket, Key=f"{PREFIX}/plain.txt", Body=body)
    assert store.read_sha256("with-checksum.txt") == digest.hexdigest()
    assert store.read_sha256("plain.txt") == digest.hexdigest()  # computed from the bytes


class _NoChecksumEndpoint:
    """A real moto client in front of which the endpoint refuses ``ChecksumSHA256`` (as some S3
    implementations do): put_object with it fails with NotImplemented."""

    def __init__(self, client: Any):
        self._client = client
        self.put_calls: list[bool] = []

    def put_object(self, **kwargs: Any) -> Any:
        self.put_calls.append("ChecksumSHA256" in kwargs)
        if "ChecksumSHA256" in kwargs:
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "checksums"}}, "PutObject")
        return self._client.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_endpoint_without_checksum_support_still_stores_sha256(
    moto_server: MotoServer, moto_bucket: str
) -> None:
    client = _NoChecksumEndpoint(moto_server.client())
    store = S3ArtifactStore(moto_bucket, "p", client=client)
    first = store.put_bytes("a.txt", b"alpha")
    store.put_bytes("b.txt", b"beta")
    assert client.put_calls == [True, False, False]  # tried once, then remembered
    assert store.read_sha256("a.txt") == first.sha256 == hashlib.sha256(b"alpha").hexdigest()
    assert store.get_bytes("b.txt") == b"beta"
    # a bucket that does not exist is an error, not a reason to retry
    missing = S3ArtifactStore("no-such-bucket-xyz", client=moto_server.client())
    with pytest.raises(ClientError, match="NoSuchBucket"):
        missing.put_bytes("a.txt", b"alpha")


def test_dagster_asset_writes_artifact_to_s3(moto_server: MotoServer, moto_bucket: str) -> None:
    @dg.asset
    def survey_snapshot(storage: StorageResource) -> dg.MaterializeResult:
        art = storage.get_store().put_bytes("GSE781/survey.json", b'{"accession": "GSE781", "samples": 34}')
        return dg.MaterializeResult(metadata={"url": art.url, "sha256": art.sha256})

    resource = StorageResource(root=f"s3://{moto_bucket}/dagster", s3_endpoint_url=moto_server.endpoint_url)
    result = dg.materialize([survey_snapshot], resources={"storage": resource})
    assert result.success
    obj = moto_server.client().get_object(Bucket=moto_bucket, Key="dagster/GSE781/survey.json")
    assert obj["Body"].read() == b'{"accession": "GSE781", "samples": 34}'
    metadata = result.asset_materializations_for_node("survey_snapshot")[0].metadata
    assert metadata["url"].value == f"s3://{moto_bucket}/dagster/GSE781/survey.json"
    assert metadata["sha256"].value == obj["Metadata"]["sha256"]
