"""Download links and streamed downloads, from the artifact store only.

refine.bio hands out presigned S3 URLs (7 days). Here: for an S3 store the link is the store's
presigned ``get_object`` URL; for a local store (or a compendium version, which is a folder and is
zipped on the fly) it is ``<base>/v1/downloads/<kind>/<ref>/?expires=<unix>&signature=<hmac>``, an
HMAC-SHA256 over ``kind:ref:expires`` with the API's secret, so a plain GET works without headers, as
refine.bio clients expect. The download route resolves ``ref`` to store keys recorded by the API
(datasets) or the warehouse (files) - never to a path taken from the request - so nothing outside the
store can be read.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import zipfile
from collections.abc import Iterator
from typing import Any

from refine_assets.lib.storage import CHUNK_SIZE, ArtifactStore, LocalArtifactStore, S3ArtifactStore


class Signer:
    """Signs and checks download links."""

    def __init__(self, secret: bytes, ttl: int):
        self.secret = secret
        self.ttl = ttl

    def _mac(self, kind: str, ref: str, expires: int) -> str:
        return hmac.new(self.secret, f"{kind}:{ref}:{expires}".encode(), hashlib.sha256).hexdigest()

    def link(self, base_url: str, kind: str, ref: str) -> str:
        expires = int(time.time()) + self.ttl
        return f"{base_url}/v1/downloads/{kind}/{ref}/?expires={expires}&signature={self._mac(kind, ref, expires)}"

    def valid(self, kind: str, ref: str, expires: str | None, signature: str | None) -> bool:
        if not expires or not signature or not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(self._mac(kind, ref, int(expires)), signature)


def presigned_url(store: ArtifactStore, key: str, ttl: int) -> str | None:
    """A presigned GET URL for an S3 store (None for other stores)."""
    if isinstance(store, S3ArtifactStore):
        return store.client.generate_presigned_url(
            "get_object", Params={"Bucket": store.bucket, "Key": store.object_key(key)}, ExpiresIn=ttl
        )
    return None


def s3_location(store: ArtifactStore, key: str | None) -> tuple[str, str]:
    """refine.bio's ``(s3_bucket, s3_key)``: the bucket and object key on S3, ``("", "")`` otherwise."""
    if key and isinstance(store, S3ArtifactStore):
        return store.bucket, store.object_key(key)
    return "", ""


def file_response_parts(store: ArtifactStore, key: str) -> dict[str, Any]:
    """How to answer a download of one stored object: ``{"path"}`` (local) or ``{"redirect"}`` (S3)."""
    if isinstance(store, LocalArtifactStore):
        path = store.path_for(key)
        if not path.is_file():
            return {}
        return {"path": path}
    url = presigned_url(store, key, 3600)
    return {"redirect": url} if url else {}


class _Sink:
    """An unseekable write target for ``zipfile`` whose written bytes are drained between members."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def zip_stream(store: ArtifactStore, keys: list[str], prefix: str) -> Iterator[bytes]:
    """A zip of ``keys`` (names relative to ``prefix``), generated while it is sent (stored members)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for key in keys:
            name = key[len(prefix) :].lstrip("/") if key.startswith(prefix) else key
            with (
                store.local_path(key) as path,
                open(path, "rb") as src,
                zf.open(zipfile.ZipInfo(name, time.gmtime()[:6]), "w", force_zip64=True) as dst,
            ):
                while chunk := src.read(CHUNK_SIZE):
                    dst.write(chunk)
                    if sum(len(c) for c in sink.chunks) >= CHUNK_SIZE:
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()
