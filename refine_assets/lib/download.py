"""Resumable downloads of large original files (CEL archives, .sra runs, fastq) with integrity checks.

``download(url, dest)`` streams to ``dest.part``; an interrupted download resumes with an HTTP
``Range`` request from the bytes already there (servers that ignore ``Range`` answer 200 and the file
restarts). Transient failures (connection errors, timeouts, 429/5xx) are retried with exponential
backoff. When complete, the size and MD5 are checked against the expected values (ENA's file report
gives both) and the file is renamed into place atomically; a mismatch deletes the partial file and
raises :class:`DownloadError` naming the URL. ``file://`` URLs are copied.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

RETRY_STATUS = {429, 500, 502, 503, 504}
CHUNK = 1 << 20


class DownloadError(Exception):
    """A download failed for good; the message names the URL."""


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download(
    url: str,
    dest: str | Path,
    *,
    expected_size: int | None = None,
    expected_md5: str | None = None,
    max_retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    client: httpx.Client | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (see module docstring); returns ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    parts = urlsplit(url)
    if parts.scheme == "file":
        shutil.copyfile(unquote(parts.path), part)
    else:
        own = client is None
        client = client or httpx.Client(timeout=timeout, follow_redirects=True)
        try:
            attempt = 0
            while True:
                have = part.stat().st_size if part.exists() else 0
                headers = {"Range": f"bytes={have}-"} if have else {}
                try:
                    with client.stream("GET", url, headers=headers) as resp:
                        if resp.status_code == 416 and have:  # already complete
                            break
                        if resp.status_code in RETRY_STATUS:
                            raise httpx.HTTPStatusError(
                                f"HTTP {resp.status_code}", request=resp.request, response=resp
                            )
                        if resp.status_code not in (200, 206):
                            raise DownloadError(f"{url}: HTTP {resp.status_code}")
                        mode = "ab" if resp.status_code == 206 else "wb"
                        total = resp.headers.get("content-length")
                        total_n = int(total) + (have if mode == "ab" else 0) if total else expected_size
                        done = have if mode == "ab" else 0
                        with open(part, mode) as fh:
                            for chunk in resp.iter_bytes(CHUNK):
                                fh.write(chunk)
                                done += len(chunk)
                                if progress:
                                    progress(done, total_n)
                    break
                except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                    attempt += 1
                    if attempt > max_retries:
                        raise DownloadError(f"{url}: failed after {max_retries} retries ({exc})") from exc
                    sleep(backoff * 2 ** (attempt - 1))
        finally:
            if own:
                client.close()
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: size {size} bytes, expected {expected_size}")
    if expected_md5 and _md5(part) != expected_md5.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: MD5 mismatch (expected {expected_md5})")
    os.replace(part, dest)
    return dest
