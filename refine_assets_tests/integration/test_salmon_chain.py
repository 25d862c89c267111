"""The RNA-seq chain offline and for real: local .sra files built with latf-load + kar from real reads,
served by a local HTTP server, downloaded, fastq-dump through named pipes into salmon, QC gates, then
tximport. The salmon example reads map to their 15 transcripts; the real human ERR127302 reads map
~0 % to them and must be excluded by the mapping-rate gate with the reason."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from refine_assets.lib.download import download
from refine_assets.lib.processing.fetch import LiveFetcher
from refine_assets.lib.processing.framework import SampleInput, process_samples
from refine_assets.lib.processing.registry import ProcessingEnv
from refine_assets.lib.processing.salmon import SalmonProcessor
from refine_assets.lib.processing.tximport_step import run_tximport
from refine_assets.lib.processing.vectors import read_vector
from refine_assets.lib.references.transcriptome_index import build_transcriptome_references
from refine_assets.lib.rnaseq.salmon_quant import read_info
from refine_assets.lib.storage import open_store

pytestmark = pytest.mark.slow


def _make_sra(tmp: Path, run: str, r1: Path, r2: Path) -> Path:
    for tool in ("latf-load", "kar"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing (sra-toolkit)")
    fq = []
    for i, src in enumerate((r1, r2), start=1):
        dst = tmp / f"{run}_{i}.fq"
        dst.write_bytes(gzip.decompress(src.read_bytes()))
        fq.append(dst)
    subprocess.run(
        [
            "latf-load",
            "-p",
            "ILLUMINA",
            "--quality",
            "PHRED_33",
            "-o",
            str(tmp / f"{run}_dir"),
            "-1",
            str(fq[0]),
            "-2",
            str(fq[1]),
        ],
        capture_output=True,
        check=False,
    )
    subprocess.run(
        ["kar", "--create", str(tmp / "serve" / run), "-d", str(tmp / f"{run}_dir")],
        check=True,
        capture_output=True,
    )
    return tmp / "serve" / run


@pytest.fixture
def server(tmp_path: Path, shared_data: Path, salmon_bin: str):
    (tmp_path / "serve").mkdir()
    ex = shared_data / "rnaseq/salmon_example"
    _make_sra(tmp_path, "SRR000001", ex / "reads_1.fastq.gz", ex / "reads_2.fastq.gz")
    em = shared_data / "rnaseq/E-MTAB-1147"
    _make_sra(tmp_path, "ERR127302", em / "ERR127302_1_subset.fastq.gz", em / "ERR127302_2_subset.fastq.gz")
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "serve"))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_offline_chain_with_qc_gate_and_tximport(tmp_path: Path, shared_data: Path, server: str) -> None:
    store = open_store(str(tmp_path / "storage"))
    transcripts = tmp_path / "transcripts.fasta"
    transcripts.write_bytes(
        gzip.decompress((shared_data / "rnaseq/salmon_example/transcripts.fasta.gz").read_bytes())
    )
    records = build_transcriptome_references(store, "HOMO_SAPIENS", transcripts=transcripts)
    assert [(r["length"], r["k"], r["transcripts"]) for r in records] == [("short", 23, 15), ("long", 31, 15)]

    def run(acc: str) -> SampleInput:
        url = f"{server}/{acc}"
        return SampleInput(
            acc,
            "SRP999999",
            "SALMON",
            organism="HOMO_SAPIENS",
            technology="RNA-SEQ",
            has_raw=True,
            files=[{"source_url": url, "filename": acc, "file_type": "SRA", "sample_accession": acc}],
        )

    fetcher = LiveFetcher(tmp_path / "cache", download=download)
    env = ProcessingEnv(store, fetcher, tmp_path / "work")
    samples = [run("SRR000001"), run("ERR127302")]
    out = {o.sample_accession: o for o in process_samples(samples, {"SALMON": SalmonProcessor(env)}, store)}

    good, bad = out["SRR000001"], out["ERR127302"]
    assert good.status == "succeeded", good.reason
    assert good.metrics["mapping_rate"] > 90 and good.metrics["paired"] is True
    assert good.metrics["library_type"] and "--gcBias" in good.metrics["command"]
    assert good.metrics["index"] == "HOMO_SAPIENS_short" and good.metrics["mean_read_length"] == 50.0
    assert store.exists(good.output_key) and good.output_key.endswith("SRR000001/quant.sf")
    assert bad.status == "failed" and "QC gate failed: mapping rate" in bad.reason
    assert bad.metrics["mapping_rate"] < 1 and bad.metrics["num_processed"] == 20000

    # tximport: 1 of 2 runs quantified -> refine.bio's rule waits (fewer than 25 runs, not all done)
    ledger = {(o.sample_accession, o.step): o for o in out.values()}
    outcomes, summary = run_tximport(store, "SRP999999", 2, ledger)
    assert outcomes == [] and summary["status"] == "waiting"
    # the experiment with only the good run: tximport runs and publishes the run's gene vector
    outcomes, summary = run_tximport(store, "SRP999999", 1, {("SRR000001", "salmon"): good})
    assert summary["status"] == "done" and summary["runs_used"] == 1, summary
    values, _ = read_vector(store, outcomes[0].output_key)
    assert len(values) == 15 and values.sum() > 0


def test_read_info_and_corrupt_sra(tmp_path: Path, server: str, salmon_bin: str) -> None:
    info = read_info(tmp_path / "serve" / "ERR127302")
    assert info.paired and info.mean_length == 72.0 and info.length_class == "short"
    corrupt = tmp_path / "corrupt.sra"
    corrupt.write_bytes((tmp_path / "serve" / "ERR127302").read_bytes()[:5000])
    from refine_assets.lib.rnaseq.salmon_quant import QuantificationError

    with pytest.raises(QuantificationError, match=r"corrupt\.sra: fastq-dump cannot read it"):
        read_info(corrupt)
