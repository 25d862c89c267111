"""Resumable downloads against a real local HTTP server: retries, Range resume, integrity checks; and a
sample whose CEL download fails twice before succeeding, processed end to end through SCANfast."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from refine_assets.lib.download import DownloadError, download


class _Server:
    def __init__(self, body: bytes, fail_first: int = 0):
        self.body, self.fail_first, self.requests = body, fail_first, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                outer.requests.append(self.headers.get("Range"))
                if len(outer.requests) <= outer.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                rng = self.headers.get("Range")
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                data = outer.body[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/file.bin"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def body() -> bytes:
    return bytes(range(256)) * 4000


def test_retries_then_succeeds_with_checks(tmp_path: Path, body: bytes) -> None:
    server = _Server(body, fail_first=2)
    try:
        sleeps: list[float] = []
        out = download(
            server.url,
            tmp_path / "f.bin",
            expected_size=len(body),
            expected_md5=hashlib.md5(body).hexdigest(),
            sleep=sleeps.append,
        )
    finally:
        server.close()
    assert out.read_bytes() == body and sleeps == [1.0, 2.0] and len(server.requests) == 3
    assert not (tmp_path / "f.bin.part").exists()


def test_resumes_with_range(tmp_path: Path, body: bytes) -> None:
    (tmp_path / "f.bin.part").write_bytes(body[:1000])
    server = _Server(body)
    try:
        download(server.url, tmp_path / "f.bin", expected_size=len(body))
    finally:
        server.close()
    assert server.requests == ["bytes=1000-"] and (tmp_path / "f.bin").read_bytes() == body


def test_md5_mismatch_and_exhausted_retries_leave_nothing(tmp_path: Path, body: bytes) -> None:
    server = _Server(body)
    try:
        with pytest.raises(DownloadError, match="MD5 mismatch"):
            download(server.url, tmp_path / "f.bin", expected_md5="0" * 32)
    finally:
        server.close()
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
    server = _Server(body, fail_first=10)
    try:
        with pytest.raises(DownloadError, match="failed after 2 retries"):
            download(server.url, tmp_path / "g.bin", max_retries=2, sleep=lambda _s: None)
    finally:
        server.close()
    assert not (tmp_path / "g.bin").exists()


def test_sample_whose_download_fails_twice_then_succeeds(
    tmp_path: Path, shared_data: Path, demo_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="refine_assets.download")
    from refine_assets.lib.affy.probes import probe_table_to_parquet, read_probe_table
    from refine_assets.lib.processing.affy import AffymetrixProcessor
    from refine_assets.lib.processing.fetch import LiveFetcher
    from refine_assets.lib.processing.framework import SampleInput, process_samples
    from refine_assets.lib.processing.registry import ProcessingEnv
    from refine_assets.lib.references.annotation import build_annotation_reference
    from refine_assets.lib.references.artifacts import reference_key, write_record
    from refine_assets.lib.references.crosswalks import build_crosswalk_reference
    from refine_assets.lib.storage import open_store

    store = open_store(str(tmp_path / "s"))
    key = reference_key("probes", "hgu95av2", "probes.parquet")
    with store.writer(key) as tmp:
        probe_table_to_parquet(
            read_probe_table(shared_data / "probes/HG-U95Av2_probes.tsv.gz"), tmp, version="t", source_url="x"
        )
    write_record(store, "probes", "hgu95av2", {"version": "t", "key": key})
    build_annotation_reference(
        store, "hgu95av2", shared_data / "probes/HG-U95Av2_probesets_genbank.tsv.gz", "x"
    )
    build_crosswalk_reference(store, "HOMO_SAPIENS", demo_data / "org.Hs.eg.db.tar.gz", "x")
    server = _Server((shared_data / "microarray/C30057.CEL.gz").read_bytes(), fail_first=2)
    server.url = server.url.replace("file.bin", "C30057.CEL.gz")
    try:
        sample = SampleInput(
            "S1",
            "E1",
            "AFFY_TO_PCL",
            organism="HOMO_SAPIENS",
            internal_platform_code="hgu95av2",
            files=[
                {
                    "source_url": server.url,
                    "filename": "C30057.CEL.gz",
                    "file_type": "CEL",
                    "sample_accession": "S1",
                }
            ],
        )
        fetcher = LiveFetcher(
            tmp_path / "cache", download=lambda u, p, **kw: download(u, p, sleep=lambda _s: None, **kw)
        )
        env = ProcessingEnv(store, fetcher, tmp_path)
        (outcome,) = process_samples([sample], {"AFFY_TO_PCL": AffymetrixProcessor(env)}, store)
    finally:
        server.close()
    assert len(server.requests) == 3
    assert outcome.status == "succeeded" and outcome.metrics["n_probes"] == 199084
    # the successful attempt's progress, on the refine_assets.download logger
    progress = [r.getMessage() for r in caplog.records if r.name == "refine_assets.download"]
    assert progress and progress[-1].endswith("(100 %)") and "C30057.CEL.gz" in progress[-1]


def test_progress_without_size_logs_every_step() -> None:
    import logging

    from refine_assets.lib.processing.fetch import DownloadProgress

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    log = logging.getLogger("test.progress")
    log.setLevel(logging.INFO)
    log.addHandler(Collect())
    p = DownloadProgress("http://x/f", log)
    for done in range(0, 350 << 20, 10 << 20):
        p(done, None)
    assert seen == [f"http://x/f: {n << 20} bytes" for n in (0, 100, 200, 300)]
    q, seen[:] = DownloadProgress("http://x/g", log), []
    for done in range(0, 1001, 50):
        q(done, 1000)
    assert len(seen) == 11 and seen[-1] == "http://x/g: 1000 of 1000 bytes (100 %)"
