"""Getting a sample's original file onto local disk: live download or replay of local copies.

An original file (a row of ``original_files``) has a ``source_url`` and a ``filename``. Sources
often pack many samples' files in one archive (ArrayExpress ``E-MTAB-3050.raw.1.zip`` holds
``C30057.CEL``; GEO ``GSE..._RAW.tar`` holds ``GSM...CEL.gz``): when the URL is an archive and the
filename differs from the archive's name, the member named ``filename`` is extracted.

* :class:`LiveFetcher` downloads into a content cache (``<cache>/<sha1(url)>/<name>``, resumable,
  size/md5 checked by :func:`refine_assets.lib.download.download`) and extracts members.
* :class:`ReplayFetcher` serves local files registered by URL or by file name (tests, demo and
  offline runs), and refuses anything else with :class:`FetchError` (as a missing download would).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import urlsplit

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


class FetchError(Exception):
    """A file could not be obtained; the message names the URL or file."""


class Fetcher(Protocol):
    def fetch(
        self,
        url: str,
        filename: str | None = None,
        *,
        expected_size: int | None = None,
        expected_md5: str | None = None,
    ) -> Path:
        """Local path of the file (the archive member ``filename`` when ``url`` is an archive)."""
        ...


# FTP servers of the archives that also serve the same paths over HTTPS.
HTTPS_MIRRORS = {"ftp.ncbi.nlm.nih.gov", "ftp.ncbi.nih.gov", "ftp.ebi.ac.uk", "ftp.sra.ebi.ac.uk"}


def https_url(url: str) -> str:
    """``ftp://host/path`` as ``https://host/path`` for hosts that serve both (NCBI, EBI); else unchanged."""
    parts = urlsplit(url)
    if parts.scheme == "ftp" and parts.hostname in HTTPS_MIRRORS:
        host = "ftp.ncbi.nlm.nih.gov" if parts.hostname == "ftp.ncbi.nih.gov" else parts.hostname
        return parts._replace(scheme="https", netloc=host).geturl()
    return url


def _url_name(url: str) -> str:
    return PurePosixPath(urlsplit(url).path).name


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def extract_member(archive: Path, member: str, dest_dir: Path) -> Path:
    """Extract the member whose base name is ``member`` (or ``member`` + .gz) from a zip/tar."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    wanted = {member, member + ".gz"}
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    base = PurePosixPath(info.filename).name
                    if base in wanted:
                        out = dest_dir / base
                        tmp = out.with_name(out.name + ".part")
                        with zf.open(info) as src, open(tmp, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        tmp.replace(out)
                        return out
        else:
            with tarfile.open(archive) as tf:
                for info in tf.getmembers():
                    base = PurePosixPath(info.name).name
                    if info.isfile() and base in wanted:
                        out = dest_dir / base
                        tmp = out.with_name(out.name + ".part")
                        src = tf.extractfile(info)
                        assert src is not None
                        with src, open(tmp, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        tmp.replace(out)
                        return out
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise FetchError(f"{archive.name}: unreadable archive ({exc})") from exc
    raise FetchError(f"{archive.name}: no member named {member}")


class ReplayFetcher:
    """Serves registered local files: keys are URLs or bare file names."""

    def __init__(self, files: Mapping[str, str | Path] | None = None, work_dir: str | Path | None = None):
        self.files = {k: Path(v) for k, v in (files or {}).items()}
        self.work_dir = Path(work_dir) if work_dir else None

    def fetch(
        self,
        url: str,
        filename: str | None = None,
        *,
        expected_size: int | None = None,
        expected_md5: str | None = None,
    ) -> Path:
        name = _url_name(url)
        member_wanted = bool(filename) and filename != name and is_archive(name)
        for key in (f"{url}#{filename}", filename, url, name):
            if key and key in self.files:
                path = self.files[key]
                if not path.is_file():
                    raise FetchError(f"{url}: replay file {path} is missing")
                if member_wanted and key in (url, name):  # the archive itself: take the member
                    if self.work_dir is None:
                        raise FetchError(f"{url}: no work folder to extract {filename} into")
                    return extract_member(
                        path, filename, self.work_dir / hashlib.sha1(url.encode()).hexdigest()[:16]
                    )
                return path
        raise FetchError(f"{url}: not available offline (no local copy registered for {filename or url})")


LOG = logging.getLogger("refine_assets.download")
# INFO on this logger only: the instance files list it in python_logs.managed_python_loggers (a global
# python_log_level would also change what Dagster writes to the compute logs)
LOG.setLevel(logging.INFO)


class DownloadProgress:
    """Logs a download's progress: at every 10 % when the size is known, else every 100 MiB."""

    STEP_BYTES = 100 << 20

    def __init__(self, url: str, log: logging.Logger = LOG) -> None:
        self.url, self.log, self.next_mark = url, log, 0.0

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            fraction = done / total
            if fraction >= self.next_mark:
                self.log.info("%s: %d of %d bytes (%.0f %%)", self.url, done, total, 100 * fraction)
                self.next_mark = (int(fraction * 10) + 1) / 10
        elif done >= self.next_mark:
            self.log.info("%s: %d bytes", self.url, done)
            self.next_mark = done + self.STEP_BYTES


class LiveFetcher:
    """Downloads into a cache folder (idempotent: a completed download is reused); progress is
    logged on the ``refine_assets.download`` logger (:class:`DownloadProgress`)."""

    def __init__(
        self, cache_dir: str | Path, download=None, local_files: Mapping[str, str | Path] | None = None
    ):
        self.cache_dir = Path(cache_dir)
        self._download = download
        # local copies (by URL or file name) served before any download
        self._local = ReplayFetcher(local_files, self.cache_dir / "local") if local_files else None

    def fetch(
        self,
        url: str,
        filename: str | None = None,
        *,
        expected_size: int | None = None,
        expected_md5: str | None = None,
    ) -> Path:
        from refine_assets.lib.download import download

        if self._local is not None:
            try:
                return self._local.fetch(url, filename)
            except FetchError:
                pass
        fn = self._download or download
        name = _url_name(url) or "download"
        folder = self.cache_dir / hashlib.sha1(url.encode()).hexdigest()[:16]
        path = folder / name
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            try:
                fn(
                    https_url(url),
                    path,
                    expected_size=expected_size,
                    expected_md5=expected_md5,
                    progress=DownloadProgress(url),
                )
            except Exception as exc:
                raise FetchError(f"{url}: download failed ({exc})") from exc
        if filename and filename != name and is_archive(name):
            member = folder / "members" / filename
            if member.is_file():
                return member
            return extract_member(path, filename, folder / "members")
        return path
