"""Local artifact store, store selection by URL and the StorageResource (S3 is tested against moto in
``integration/test_s3_moto.py``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import boto3
import dagster as dg
import pytest

from refine_assets.lib.storage import (
    ArtifactNotFoundError,
    LocalArtifactStore,
    S3ArtifactStore,
    StoredArtifact,
    default_storage_root,
    normalize_key,
    open_store,
)
from refine_assets.resources import StorageResource

CEL_KEY = "GSE781/GSM11805.CEL.gz"


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


def _temp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".refine-tmp-")]


def test_put_bytes_is_published_with_hash_and_url(store: LocalArtifactStore) -> None:
    art = store.put_bytes(CEL_KEY, b"cel bytes")
    target = store.root / "GSE781" / "GSM11805.CEL.gz"
    assert art == StoredArtifact(
        key=CEL_KEY, url=target.as_uri(), sha256=hashlib.sha256(b"cel bytes").hexdigest(), size=9
    )
    assert art.url.startswith("file:///")
    assert target.read_bytes() == b"cel bytes"
    assert store.get_bytes(CEL_KEY) == b"cel bytes"
    assert store.exists(CEL_KEY) and store.size(CEL_KEY) == 9
    assert store.read_sha256(CEL_KEY) == art.sha256
    assert _temp_leftovers(store.root) == []
    # overwrite replaces the whole content
    store.put_bytes(CEL_KEY, b"new")
    assert store.get_bytes(CEL_KEY) == b"new"


def test_put_file_copies_real_geo_file(store: LocalArtifactStore, shared_data: Path) -> None:
    src = shared_data / "geo/geoquery/GSM11805.txt.gz"
    art = store.put_file("GSM11805/GSM11805.txt.gz", src)
    raw = src.read_bytes()
    assert art.size == 119_670 == len(raw)
    assert art.sha256 == hashlib.sha256(raw).hexdigest()
    assert art.sha256.startswith("e3ec38c1c3d85469")  # MANIFEST.md
    assert store.read_sha256("GSM11805/GSM11805.txt.gz") == art.sha256
    with store.local_path("GSM11805/GSM11805.txt.gz") as path:
        assert path == store.root / "GSM11805" / "GSM11805.txt.gz"
        assert path.read_bytes() == raw


def test_key_normalization() -> None:
    assert normalize_key("a//b/./c.txt") == "a/b/c.txt"
    assert normalize_key("./x") == "x"


@pytest.mark.parametrize(
    "bad", ["../escape", "a/../../escape", "a/..", "/etc/passwd", "", ".", "a\\b", "a\x00b"]
)
def test_invalid_keys_are_rejected(store: LocalArtifactStore, bad: str) -> None:
    with pytest.raises(ValueError):
        store.put_bytes(bad, b"x")
    with pytest.raises(ValueError):
        store.url_for(bad)
    assert not (store.root.parent / "escape").exists()


def test_missing_key_errors_name_the_url(store: LocalArtifactStore) -> None:
    url = store.url_for("GSE0/none.txt")
    for call in (store.get_bytes, store.size, store.read_sha256, store.delete):
        with pytest.raises(ArtifactNotFoundError) as info:
            call("GSE0/none.txt")
        assert url in str(info.value)
        assert isinstance(info.value, KeyError) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError), store.local_path("GSE0/none.txt"):
        pass
    assert store.exists("GSE0/none.txt") is False
    store.delete("GSE0/none.txt", missing_ok=True)


def test_list_keys_is_a_string_prefix_and_skips_temp_files(store: LocalArtifactStore) -> None:
    for key in ["GSE781/GSM11805.CEL.gz", "GSE781/GSM11810.CEL.gz", "GSE7810/a.txt", "top.txt"]:
        store.put_bytes(key, key.encode())
    assert store.list_keys() == [
        "GSE781/GSM11805.CEL.gz",
        "GSE781/GSM11810.CEL.gz",
        "GSE7810/a.txt",
        "top.txt",
    ]
    assert store.list_keys("GSE781/") == ["GSE781/GSM11805.CEL.gz", "GSE781/GSM11810.CEL.gz"]
    assert store.list_keys("GSE781") == ["GSE781/GSM11805.CEL.gz", "GSE781/GSM11810.CEL.gz", "GSE7810/a.txt"]
    assert store.list_keys("GSE781/GSM1181") == ["GSE781/GSM11810.CEL.gz"]
    assert store.list_keys("nothing/") == []
    with store.writer("GSE781/pending.parquet") as tmp:
        tmp.write_bytes(b"half")
        assert "GSE781/pending.parquet" not in store.list_keys("GSE781/")
    assert "GSE781/pending.parquet" in store.list_keys("GSE781/")
    store.delete("top.txt")
    assert "top.txt" not in store.list_keys()


def test_writer_publishes_atomically_on_clean_exit(store: LocalArtifactStore) -> None:
    with store.writer("GSE781/expression.parquet") as tmp:
        assert tmp.parent == store.root / "GSE781"  # same filesystem: os.replace is atomic
        assert tmp.name.endswith("expression.parquet")  # tools see the real suffix
        assert not tmp.exists()
        tmp.write_bytes(b"PAR1")
        assert not store.exists("GSE781/expression.parquet")  # not visible before exit
    assert store.get_bytes("GSE781/expression.parquet") == b"PAR1"
    assert _temp_leftovers(store.root) == []


def test_writer_publishes_nothing_on_exception(store: LocalArtifactStore) -> None:
    store.put_bytes("GSE781/expression.parquet", b"old")
    with pytest.raises(RuntimeError, match="tool crashed"), store.writer("GSE781/expression.parquet") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("tool crashed")
    assert store.get_bytes("GSE781/expression.parquet") == b"old"
    with pytest.raises(RuntimeError), store.writer("GSE781/new.parquet") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("tool crashed")
    assert not store.exists("GSE781/new.parquet")
    assert _temp_leftovers(store.root) == []


def test_writer_without_output_is_an_error(store: LocalArtifactStore) -> None:
    with pytest.raises(FileNotFoundError, match="nothing was written"), store.writer("a/b.txt"):
        pass
    assert not store.exists("a/b.txt")


def test_open_store_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = open_store("rel/store")
    assert isinstance(rel, LocalArtifactStore) and rel.root == tmp_path / "rel" / "store"
    by_url = open_store((tmp_path / "u s").as_uri())  # percent-encoded space
    assert isinstance(by_url, LocalArtifactStore) and by_url.root == tmp_path / "u s"
    assert by_url.url_for("k.txt") == (tmp_path / "u s" / "k.txt").as_uri()

    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )  # constructing makes no request
    s3 = open_store("s3://bucket/some/prefix/", s3_client=client)
    assert isinstance(s3, S3ArtifactStore)
    assert (s3.bucket, s3.prefix, s3.root_url) == ("bucket", "some/prefix", "s3://bucket/some/prefix")
    assert s3.url_for("GSE781/x.txt") == "s3://bucket/some/prefix/GSE781/x.txt"
    assert open_store("s3://bucket", s3_client=client).url_for("x.txt") == "s3://bucket/x.txt"
    with pytest.raises(ValueError):
        s3.url_for("../x")

    with pytest.raises(ValueError, match="s3_client"):
        open_store("s3://bucket/prefix")
    with pytest.raises(ValueError, match="no bucket"):
        open_store("s3:///prefix", s3_client=client)
    with pytest.raises(ValueError, match="unsupported"):
        open_store("https://example.org/store")
    with pytest.raises(ValueError, match="remote host"):
        open_store("file://otherhost/data")


def test_default_storage_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REFINE_ASSETS_STORAGE_ROOT", raising=False)
    assert default_storage_root() == str(tmp_path / ".refine_assets" / "storage")
    assert StorageResource().root == str(tmp_path / ".refine_assets" / "storage")
    monkeypatch.setenv("REFINE_ASSETS_STORAGE_ROOT", "s3://bucket/env-prefix")
    assert default_storage_root() == "s3://bucket/env-prefix"
    assert StorageResource().root == "s3://bucket/env-prefix"


def test_storage_resource_in_a_materialized_asset(tmp_path: Path) -> None:
    resource = StorageResource(root=str(tmp_path / "artifacts"))
    store = resource.get_store()
    assert isinstance(store, LocalArtifactStore) and store is resource.get_store()

    @dg.asset
    def sample_table(storage: StorageResource) -> dg.MaterializeResult:
        with storage.get_store().writer("GSE781/samples.tsv") as tmp:
            tmp.write_text("GSM11805\tN035 Normal Human Kidney U133A\n")
        art_sha = storage.get_store().read_sha256("GSE781/samples.tsv")
        return dg.MaterializeResult(metadata={"sha256": art_sha})

    result = dg.materialize([sample_table], resources={"storage": resource})
    assert result.success
    path = tmp_path / "artifacts" / "GSE781" / "samples.tsv"
    assert path.read_text() == "GSM11805\tN035 Normal Human Kidney U133A\n"
    mat = result.asset_materializations_for_node("sample_table")[0]
    assert mat.metadata["sha256"].value == hashlib.sha256(path.read_bytes()).hexdigest()
    assert os.listdir(path.parent) == ["samples.tsv"]


def test_local_artifacts_are_readable_like_any_download(tmp_path) -> None:
    from refine_assets.lib.storage import LocalArtifactStore

    store = LocalArtifactStore(tmp_path / "store")
    store.put_bytes("a/b.txt", b"x")
    src = tmp_path / "src.zip"
    src.write_bytes(b"zip")
    store.put_file("datasets/d/d.zip", src)
    for key in ("a/b.txt", "datasets/d/d.zip"):
        assert store.path_for(key).stat().st_mode & 0o777 == 0o644
