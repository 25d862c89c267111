"""Artifact storage addressed by URL: a local directory or an S3 bucket/prefix, behind one interface.

Artifacts (downloaded raw files, processed vectors, Parquet partitions, the analyst DuckDB file) are
stored under *keys*: POSIX relative paths such as ``GSE781/GSM11805.CEL.gz``. A store turns a key into
a URL (``file:///abs/root/GSE781/GSM11805.CEL.gz`` or ``s3://bucket/prefix/GSE781/GSM11805.CEL.gz``).

Contract shared by both stores:

* Keys are normalized POSIX relative paths; absolute keys, empty keys and ``..`` raise ``ValueError``.
* Writes are atomic: readers see the old object or the complete new one, never a partial file.
  Local: a temp file in the destination directory, fsync, ``os.replace``. S3: one ``put_object``
  (atomic by nature) with the SHA-256 in the object metadata (``sha256``) and, where the endpoint
  supports it, as ``ChecksumSHA256`` so S3 verifies the upload. (refine.bio uploads computed files
  with a random 24-character prefix and records sha1/md5 in its database, teardown section 1; here
  the key is deterministic and the checksum travels with the object.)
* ``writer(key)`` yields a local temp path; the file is published only when the block exits
  without an exception. ``local_path(key)`` yields a local path to read (the file itself for local
  stores, a temp download for S3, removed afterwards).
* A missing key raises :class:`ArtifactNotFoundError` (both ``KeyError`` and ``FileNotFoundError``),
  whose message names the URL.

Single uploads are limited to 5 GB by S3's ``PutObject``; larger artifacts would need a multipart
upload, which this module does not do.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

CHUNK_SIZE = 1 << 20
TEMP_PREFIX = ".refine-tmp-"
SHA256_METADATA_KEY = "sha256"
STORAGE_ROOT_ENV = "REFINE_ASSETS_STORAGE_ROOT"
DEFAULT_LOCAL_ROOT = "./.refine_assets/storage"
ARTIFACT_MODE = 0o644


class ArtifactNotFoundError(KeyError, FileNotFoundError):
    """No artifact under a key; ``url`` is where it was looked for."""

    def __init__(self, url: str):
        self.url = url
        super().__init__(f"artifact not found: {url}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class StoredArtifact:
    """A published artifact: its key, URL, hex SHA-256 of the bytes and size in bytes."""

    key: str
    url: str
    sha256: str
    size: int


def default_storage_root() -> str:
    """``$REFINE_ASSETS_STORAGE_ROOT`` if set, else ``./.refine_assets/storage`` made absolute."""
    env = os.environ.get(STORAGE_ROOT_ENV, "").strip()
    if env:
        return env
    return str(Path(DEFAULT_LOCAL_ROOT).resolve())


def normalize_key(key: str, *, allow_empty: bool = False) -> str:
    """The canonical form of a key (``a//b/./c`` -> ``a/b/c``).

    Raises ValueError for non-strings, absolute keys, ``..`` parts, backslashes, NUL bytes and (unless
    ``allow_empty``, used for list prefixes) empty keys.
    """
    if not isinstance(key, str):
        raise ValueError(f"artifact key must be a string, got {type(key).__name__}")
    if "\x00" in key or "\\" in key:
        raise ValueError(f"invalid artifact key {key!r}: NUL or backslash")
    if key.startswith("/"):
        raise ValueError(f"invalid artifact key {key!r}: must be relative")
    parts = [p for p in PurePosixPath(key).parts if p != "."]
    if ".." in parts:
        raise ValueError(f"invalid artifact key {key!r}: '..' is not allowed")
    if not parts and not allow_empty:
        raise ValueError("invalid artifact key: empty")
    return "/".join(parts)


def _normalize_prefix(prefix: str) -> str:
    """A list prefix: normalized like a key but may be empty and keeps a trailing '/'."""
    norm = normalize_key(prefix, allow_empty=True)
    if norm and prefix.endswith("/"):
        norm += "/"
    return norm


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK_SIZE):
        digest.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(path: str | Path) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class ArtifactStore(ABC):
    """Interface of an artifact store (see the module docstring for the shared contract)."""

    #: URL of the store root (``file:///...`` or ``s3://bucket/prefix``).
    root_url: str

    @abstractmethod
    def url_for(self, key: str) -> str:
        """The URL of ``key`` (the key need not exist). ValueError for an invalid key."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        """Atomically store ``data`` under ``key`` (replacing any previous object)."""

    @abstractmethod
    def put_file(self, key: str, path: str | Path) -> StoredArtifact:
        """Atomically store a copy of the local file ``path`` under ``key``."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The bytes under ``key``; ArtifactNotFoundError if missing."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an artifact is stored under ``key``."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; ArtifactNotFoundError if missing."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Sorted keys that start with ``prefix`` (string prefix, as S3 lists; "" lists everything)."""

    @abstractmethod
    def delete(self, key: str, missing_ok: bool = False) -> None:
        """Remove ``key``; ArtifactNotFoundError if missing unless ``missing_ok``."""

    @abstractmethod
    def read_sha256(self, key: str) -> str:
        """Hex SHA-256 of the artifact (recorded at upload for S3, computed for local files)."""

    @abstractmethod
    def local_path(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """Context manager yielding a readable local Path for ``key`` (do not modify it)."""

    @abstractmethod
    def writer(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """Context manager yielding a local temp Path to write; published atomically on clean exit.

        On an exception nothing is published and the temp file is removed. Exiting cleanly without
        having created the file raises FileNotFoundError. The temp file name ends with the key's
        file name, so tools that infer a format from the suffix see the right one.
        """

    def read_parquet(self, key: str, columns: list[str] | None = None):
        """The Parquet artifact ``key`` as a pyarrow Table (``columns``: a subset).

        The bytes reach Arrow as an Arrow-owned copy, never as a Python object
        (:mod:`refine_assets.lib.arrow_buffers` says why); local stores read the file itself.
        """
        import pyarrow.parquet as pq

        from refine_assets.lib.arrow_buffers import native_reader

        return pq.read_table(native_reader(self.get_bytes(key)), columns=columns)


class LocalArtifactStore(ArtifactStore):
    """Artifacts as files under a local directory ``root`` (created on first write)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.root_url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        """The file path of ``key`` (ValueError for an invalid key)."""
        return self.root.joinpath(*normalize_key(key).split("/"))

    def url_for(self, key: str) -> str:
        return self.path_for(key).as_uri()

    def _existing(self, key: str) -> Path:
        path = self.path_for(key)
        if not path.is_file():
            raise ArtifactNotFoundError(path.as_uri())
        return path

    def _artifact(self, key: str, sha256: str, size: int) -> StoredArtifact:
        norm = normalize_key(key)
        return StoredArtifact(norm, self.url_for(norm), sha256, size)

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _temp_for(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=f"-{target.name}", dir=target.parent)
        os.fchmod(fd, ARTIFACT_MODE)  # mkstemp creates 0600; artifacts are readable like any download
        os.close(fd)
        return Path(name)

    def _publish(self, tmp: Path, target: Path) -> None:
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        self._fsync_dir(target.parent)

    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        target = self.path_for(key)
        tmp = self._temp_for(target)
        try:
            tmp.write_bytes(data)
            self._publish(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return self._artifact(key, hashlib.sha256(data).hexdigest(), len(data))

    def put_file(self, key: str, path: str | Path) -> StoredArtifact:
        target = self.path_for(key)
        tmp = self._temp_for(target)
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                sha, size = _copy_hashing(src, dst)
            self._publish(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return self._artifact(key, sha, size)

    def get_bytes(self, key: str) -> bytes:
        return self._existing(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def size(self, key: str) -> int:
        return self._existing(key).stat().st_size

    def list_keys(self, prefix: str = "") -> list[str]:
        norm = _normalize_prefix(prefix)
        # Walk only the deepest directory the prefix names completely.
        start = self.root.joinpath(*norm.split("/")[:-1]) if "/" in norm else self.root
        if not start.is_dir():
            return []
        keys = []
        for dirpath, _dirnames, filenames in os.walk(start):
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(norm):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str, missing_ok: bool = False) -> None:
        path = self.path_for(key)
        if not path.is_file():
            if missing_ok:
                return
            raise ArtifactNotFoundError(path.as_uri())
        path.unlink()

    def read_parquet(self, key: str, columns: list[str] | None = None):
        """The Parquet file itself (Arrow opens it natively)."""
        import pyarrow.parquet as pq

        return pq.read_table(str(self._existing(key)), columns=columns)

    def read_sha256(self, key: str) -> str:
        return file_sha256(self._existing(key))[0]

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        yield self._existing(key)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        target = self.path_for(key)
        tmp = self._temp_for(target)
        tmp.unlink()  # hand the caller a free name; tools that refuse to overwrite then work too
        try:
            yield tmp
            if not tmp.is_file():
                raise FileNotFoundError(f"writer for {target.as_uri()}: nothing was written to {tmp}")
            self._publish(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


# S3 error codes after which retrying without an explicit checksum cannot help.
_FATAL_S3_CODES = frozenset(
    {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _is_not_found(exc: Exception) -> bool:
    return _error_code(exc) in {"404", "NoSuchKey", "NotFound"}


class S3ArtifactStore(ArtifactStore):
    """Artifacts as objects under ``s3://bucket/prefix`` through a boto3 S3 client.

    ``client`` is any boto3 S3 client (e.g. from ``dagster_aws.s3.S3Resource.get_client()``, or a
    plain ``boto3.client("s3", endpoint_url=...)`` against moto).
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any):
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        self.bucket = bucket
        self.prefix = normalize_key(prefix.strip("/"), allow_empty=True)
        self.client = client
        self.root_url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._checksum_supported: bool | None = None

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.root_url!r})"

    def object_key(self, key: str) -> str:
        """The S3 object key of ``key`` (prefix + key)."""
        norm = normalize_key(key)
        return f"{self.prefix}/{norm}" if self.prefix else norm

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def _head(self, key: str) -> dict:
        try:
            return self.client.head_object(
                Bucket=self.bucket, Key=self.object_key(key), ChecksumMode="ENABLED"
            )
        except Exception as exc:
            if _is_not_found(exc):
                raise ArtifactNotFoundError(self.url_for(key)) from exc
            raise

    def _put(self, key: str, body: bytes | BinaryIO, sha256_hex: str, size: int) -> StoredArtifact:
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            "Body": body,
            "Metadata": {SHA256_METADATA_KEY: sha256_hex},
        }
        if self._checksum_supported is not False:
            checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")
            try:
                # Both: the algorithm header tells the endpoint to keep the checksum (moto needs it),
                # the value makes S3 verify the bytes against the hash we recorded.
                self.client.put_object(**kwargs, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum)
                self._checksum_supported = True
            except Exception as exc:
                code = _error_code(exc)
                if not code or code in _FATAL_S3_CODES or self._checksum_supported:
                    raise
                # The endpoint rejected the checksum header: store without it (metadata still has it).
                if hasattr(body, "seek"):
                    body.seek(0)
                self.client.put_object(**kwargs)
                self._checksum_supported = False
        else:
            self.client.put_object(**kwargs)
        norm = normalize_key(key)
        return StoredArtifact(norm, self.url_for(norm), sha256_hex, size)

    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        return self._put(key, data, hashlib.sha256(data).hexdigest(), len(data))

    def put_file(self, key: str, path: str | Path) -> StoredArtifact:
        # The checksum header precedes the body, so hash first (streaming), then upload the file.
        sha, size = file_sha256(path)
        with open(path, "rb") as fh:
            return self._put(key, fh, sha, size)

    def get_bytes(self, key: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_not_found(exc):
                raise ArtifactNotFoundError(self.url_for(key)) from exc
            raise
        return obj["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ArtifactNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def list_keys(self, prefix: str = "") -> list[str]:
        norm = _normalize_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        keys = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base + norm):
            for item in page.get("Contents", []):
                keys.append(item["Key"][len(base) :])
        return sorted(keys)

    def delete(self, key: str, missing_ok: bool = False) -> None:
        if not missing_ok and not self.exists(key):
            raise ArtifactNotFoundError(self.url_for(key))
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def read_sha256(self, key: str) -> str:
        """The ``sha256`` metadata, else the SHA-256 checksum S3 holds, else computed from the bytes."""
        head = self._head(key)
        recorded = (head.get("Metadata") or {}).get(SHA256_METADATA_KEY)
        if recorded:
            return recorded
        checksum = head.get("ChecksumSHA256")
        if checksum and "-" not in checksum:  # "-N" marks a multipart composite checksum
            return base64.b64decode(checksum).hex()
        obj = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        digest = hashlib.sha256()
        for chunk in obj["Body"].iter_chunks(CHUNK_SIZE):
            digest.update(chunk)
        return digest.hexdigest()

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_not_found(exc):
                raise ArtifactNotFoundError(self.url_for(key)) from exc
            raise
        tmpdir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        try:
            path = tmpdir / PurePosixPath(normalize_key(key)).name
            with open(path, "wb") as fh:
                for chunk in obj["Body"].iter_chunks(CHUNK_SIZE):
                    fh.write(chunk)
            yield path
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        norm = normalize_key(key)
        tmpdir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        try:
            path = tmpdir / PurePosixPath(norm).name
            yield path
            if not path.is_file():
                raise FileNotFoundError(f"writer for {self.url_for(norm)}: nothing was written to {path}")
            self.put_file(norm, path)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def open_store(root: str | Path, s3_client: Any = None) -> ArtifactStore:
    """The store for ``root``: a local path, ``file:///abs/path`` or ``s3://bucket[/prefix]``.

    ``s3://`` roots need ``s3_client`` (a boto3 S3 client). Raises ValueError for other URL schemes,
    ``file://`` URLs with a remote host, and ``s3://`` without a client or bucket.
    """
    text = str(root)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"S3 root {text!r} has no bucket")
        if s3_client is None:
            raise ValueError(f"S3 root {text!r} needs an s3_client (a boto3 S3 client)")
        return S3ArtifactStore(parts.netloc, unquote(parts.path), client=s3_client)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL {text!r} names a remote host")
        return LocalArtifactStore(Path(unquote(parts.path)))
    if scheme and len(scheme) > 1:  # one letter: a Windows drive, i.e. a path
        raise ValueError(f"unsupported storage root {text!r} (use a path, file:// or s3://)")
    return LocalArtifactStore(Path(text))
