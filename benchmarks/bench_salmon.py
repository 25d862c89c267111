"""Benchmark salmon: index build (k=23 / k=31) and quantification throughput through FIFOs vs files.

Usage::

    uv run python benchmarks/bench_salmon.py [--data ../shared/data] [--repeat 3] [--threads 2] \
        [--replicate 1]

Input: salmon's own example data in the shared test data (``rnaseq/salmon_example``: 15 human RefSeq
transcripts, 28,562 nt; 10,000 simulated 50 bp read pairs). Timed, best of ``--repeat`` each:

* ``index_k23`` / ``index_k31``: ``build_salmon_index`` (``salmon index -k K -p THREADS``) on the gzipped
  transcript FASTA as given, the short and long indices refine.bio builds per organism;
* ``read_info``: layout and read length from the first 2,000 spots (``fastq-dump -X 2000``);
* ``sra_fifo``: ``quantify_sra`` on a local .sra file packed from the real paired reads with
  ``latf-load`` + ``kar`` (as ``refine_assets_tests/integration/test_salmon_chain.py`` does):
  ``fastq-dump --split-3`` into named pipes -> per-mate relays -> ``salmon quant`` on the k=23 index,
  the production chain;
* ``fastq_files``: ``quantify_fastq`` on the same reads as plain fastq files (same salmon options), so
  the cost of fastq-dump + FIFOs is the difference;
* ``fastq_dump_only``: ``fastq-dump --split-3`` of the .sra into files, no salmon (its decode rate).

Reads/s = spots salmon processed (``num_processed`` of ``aux_info/meta_info.json``) / wall seconds of
the call (tool version checks included, as production pays them). The example run is small, so
salmon's fixed costs (index load, bias models) dominate; ``--replicate K`` repeats the read pairs K
times (names made unique) to show the streaming rate. The packing of the .sra is timed once.

Peak RSS: this process (``ru_maxrss``), the largest child (``RUSAGE_CHILDREN`` ``ru_maxrss``: every
child, the .sra packing's latf-load included; on Linux a child's figure is also at least this
process's RSS when it was spawned), and each tool's own peak (``VmHWM`` of the running salmon,
fastq-dump (the sratools driver) and its fastq-dump-orig, latf-load and kar processes, sampled every
20 ms).

Prints a table on stderr and one JSON line on stdout. Needs salmon, fastq-dump, latf-load and kar
(Debian packages salmon and sra-toolkit).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from refine_assets.lib.references.transcriptome_index import build_salmon_index
from refine_assets.lib.rnaseq.salmon_quant import quantify_fastq, quantify_sra, read_info, tool_version


class ChildPeaks:
    """Samples ``VmHWM`` of this process's children (by command name) while running."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _children(self) -> list[str]:
        """All descendants (fastq-dump is a driver that runs fastq-dump-orig as its own child)."""
        pids: list[str] = []
        todo = ["self"]
        while todo:
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{todo.pop()}/task").iterdir():
                    with contextlib.suppress(OSError):
                        found = (task / "children").read_text().split()
                        pids += found
                        todo += found
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self._children():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                name = fields.get("Name", "?").strip()
                hwm = fields.get("VmHWM")
                if hwm and not name.startswith("python"):  # not a child between fork and exec
                    kib = int(hwm.split()[0])
                    self.peaks[name] = max(self.peaks.get(name, 0), kib)
            self._stop.wait(self.interval)


def best(fn, repeat: int) -> tuple[float, object]:
    """(fastest wall seconds, that run's result) over ``repeat`` calls."""
    fastest, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        secs = time.perf_counter() - t0
        if secs < fastest:
            fastest, out = secs, res
    return fastest, out


def write_reads(src: Path, dst: Path, replicate: int) -> int:
    """Decompress ``src`` into ``dst``, ``replicate`` times with copy-prefixed names; spots written."""
    records = gzip.decompress(src.read_bytes()).decode().splitlines()
    n = 0
    with open(dst, "w") as out:
        for k in range(replicate):
            for i in range(0, len(records) - 3, 4):
                name = records[i][1:]
                out.write(f"@{name if replicate == 1 else f'c{k}_{name}'}\n{records[i + 1]}\n+\n")
                out.write(f"{records[i + 3]}\n")
                n += 1
    return n


def make_sra(tmp: Path, run: str, fastq: list[Path]) -> Path:
    """A local .sra of the paired ``fastq`` (latf-load + kar, as the integration test builds them)."""
    load_dir = tmp / f"{run}_dir"
    mates = ["-1", str(fastq[0]), "-2", str(fastq[1])]
    proc = subprocess.run(
        ["latf-load", "-p", "ILLUMINA", "--quality", "PHRED_33", "-o", str(load_dir), *mates],
        capture_output=True,
        text=True,
    )
    if not load_dir.is_dir():
        sys.exit(f"latf-load failed: {proc.stderr.strip()[-400:]}")
    sra = tmp / f"{run}.sra"
    subprocess.run(["kar", "--create", str(sra), "-d", str(load_dir)], check=True, capture_output=True)
    shutil.rmtree(load_dir)
    return sra


def num_processed(out_dir: Path) -> int:
    return int(json.loads((out_dir / "aux_info" / "meta_info.json").read_text())["num_processed"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="salmon -p (index and quant)")
    parser.add_argument("--replicate", type=int, default=1, help="repeat the read pairs K times")
    args = parser.parse_args()
    ex = args.data / "rnaseq" / "salmon_example"
    transcripts = ex / "transcripts.fasta.gz"
    reads_gz = [ex / "reads_1.fastq.gz", ex / "reads_2.fastq.gz"]
    if not (transcripts.is_file() and all(p.is_file() for p in reads_gz)):
        sys.exit(f"salmon example data not found under {ex}")
    for tool in ("salmon", "fastq-dump", "latf-load", "kar"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: install the Debian packages salmon and sra-toolkit")

    record: dict = {
        "benchmark": "salmon",
        "salmon_version": tool_version("salmon"),
        "fastq_dump_version": tool_version("fastq-dump"),
        "threads": args.threads,
        "repeat": args.repeat,
        "replicate": args.replicate,
    }
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-salmon-") as tmp_dir, ChildPeaks() as peaks:
        tmp = Path(tmp_dir)
        counter = iter(range(10**6))

        def fresh(name: str) -> Path:
            return tmp / f"{name}_{next(counter)}"

        indices: dict[int, Path] = {}
        for k in (23, 31):
            secs, build = best(
                lambda k=k: build_salmon_index(transcripts, fresh(f"idx{k}"), k, args.threads), args.repeat
            )
            indices[k] = build.path
            record[f"index_k{k}_s"] = round(secs, 3)
            record["transcripts"] = build.transcripts
            rows.append((f"salmon index k={k} ({build.transcripts} transcripts)", secs, ""))

        fastq = [tmp / "reads_1.fastq", tmp / "reads_2.fastq"]
        spots = [write_reads(src, dst, args.replicate) for src, dst in zip(reads_gz, fastq, strict=True)]
        if spots[0] != spots[1]:
            sys.exit(f"mate files differ in length: {spots}")
        t0 = time.perf_counter()
        sra = make_sra(tmp, "SRR000001", fastq)
        record["make_sra_s"] = round(time.perf_counter() - t0, 3)
        record["spots"] = spots[0]
        record["sra_bytes"] = sra.stat().st_size

        secs, info = best(lambda: read_info(sra), args.repeat)
        record["read_info_s"] = round(secs, 3)
        record["read_info"] = {
            "paired": info.paired,
            "mean_length": info.mean_length,
            "class": info.length_class,
        }
        rows.append((f"read_info ({info.spots_sampled} spots, {info.length_class})", secs, ""))

        def dump_only() -> None:  # fastq-dump's decode rate on its own, to files (no salmon)
            out = fresh("dump")
            subprocess.run(
                ["fastq-dump", "--split-3", "-O", str(out), str(sra)], check=True, capture_output=True
            )
            shutil.rmtree(out)

        secs, _ = best(dump_only, args.repeat)
        record["fastq_dump_only"] = {"seconds": round(secs, 3), "spots_per_s": round(spots[0] / secs)}
        rows.append(("fastq-dump --split-3 to files alone", secs, f"{spots[0] / secs:,.0f} spots/s"))

        index = indices[23]
        runs = {
            "sra_fifo": lambda: quantify_sra(sra, index, fresh("q_sra"), paired=True, threads=args.threads),
            "fastq_files": lambda: quantify_fastq(fastq, index, fresh("q_fq"), threads=args.threads),
        }
        labels = {
            "sra_fifo": "quantify_sra (fastq-dump -> FIFOs -> salmon)",
            "fastq_files": "quantify_fastq (files)",
        }
        for name, fn in runs.items():
            secs, run = best(fn, args.repeat)
            processed = num_processed(run.out_dir)
            meta = json.loads((run.out_dir / "aux_info" / "meta_info.json").read_text())
            record[name] = {
                "seconds": round(secs, 3),
                "num_processed": processed,
                "reads_per_s": round(processed / secs),
                "percent_mapped": round(float(meta.get("percent_mapped", 0.0)), 2),
                "seconds_in_call": round(run.seconds, 3),  # QuantRun.seconds: without version checks
            }
            rows.append((labels[name], secs, f"{processed:,} spots, {processed / secs:,.0f} reads/s"))
    ru_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ru_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    record["fifo_overhead_s"] = round(record["sra_fifo"]["seconds"] - record["fastq_files"]["seconds"], 3)
    record["peak_rss_mib"] = {
        "self": round(ru_self, 1),
        "children_max": round(ru_children, 1),
        **{f"{name}_own": round(kib / 1024, 1) for name, kib in sorted(peaks.peaks.items())},
    }

    print(f"{'step':<48} {'best s':>8}  notes", file=sys.stderr)
    for label, secs, note in rows:
        print(f"{label:<48} {secs:>8.3f}  {note}", file=sys.stderr)
    rss = ", ".join(f"{k} {v} MiB" for k, v in record["peak_rss_mib"].items())
    print(f"peak RSS: {rss}", file=sys.stderr)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
