"""Benchmark native tximport on the 20 real SRP095529 zebrafish quant.sf files.

Usage::

    uv run python benchmarks/bench_tximport.py [--data ../shared/data] [--repeat 3] [--replicate 1]

Times (best of ``--repeat``): reading the 20 gzipped quant.sf files into a ``QuantMatrix``
(59,071 transcripts), reading the tx2gene (59,518 rows), the gene-level summarisation
(lengthScaledTPM, 31,882 genes), writing the gene table, and the whole streaming path the
``refine-assets tximport`` command runs (tx2gene + ``tximport_files`` + write). ``--replicate K``
additionally times the streaming path on 20·K samples (the real files linked under K names each)
to show scaling. Prints one JSON line with wall times and peak RSS. Target: the 20-sample
tximport well under 1 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from refine_assets.lib.rnaseq.quant import read_quant_files
from refine_assets.lib.rnaseq.tximport import read_tx2gene, tximport, tximport_files, write_gene_table


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replicate", type=int, default=1, help="also time 20×K samples (K > 1)")
    args = parser.parse_args()
    srp = args.data / "rnaseq" / "SRP095529"
    t2g_path = args.data / "rnaseq" / "ZEBRAFISH_INDEX_SHORT" / "genes_to_transcripts.txt.gz"
    runs = sorted(p for p in srp.iterdir() if p.is_dir())
    if len(runs) != 20 or not t2g_path.is_file():
        sys.exit(f"expected 20 SRP095529 runs and the zebrafish tx2gene under {args.data}")

    read_s, quant = best(lambda: read_quant_files(runs), args.repeat)
    t2g_s, t2g = best(lambda: read_tx2gene(t2g_path, quant.transcripts), args.repeat)
    sum_s, result = best(lambda: tximport(quant, t2g, "lengthScaledTPM"), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gene_lengthScaledTPM.tsv"
        write_s, _ = best(lambda: write_gene_table(result.counts, out), args.repeat)

        def pipeline(paths: list[Path]) -> object:
            res = tximport_files(paths, t2g_path, "lengthScaledTPM")
            write_gene_table(res.counts, out)
            return res

        total_s, _ = best(lambda: pipeline(runs), args.repeat)
        record = {
            "benchmark": "tximport",
            "samples": len(runs),
            "transcripts": quant.n_transcripts,
            "genes": result.n_genes,
            "read_quant_files_s": round(read_s, 4),
            "read_tx2gene_s": round(t2g_s, 4),
            "summarise_s": round(sum_s, 4),
            "write_tsv_s": round(write_s, 4),
            "end_to_end_streaming_s": round(total_s, 4),
            "repeat": args.repeat,
        }
        if args.replicate > 1:
            many = []
            for k in range(args.replicate):
                for run in runs:
                    d = Path(tmp) / f"{run.name}_{k}"
                    d.mkdir()
                    (d / "quant.sf.gz").symlink_to(run / "quant.sf.gz")
                    many.append(d)
            rep_s, _ = best(lambda: pipeline(many), 1)
            record[f"end_to_end_streaming_{len(many)}_samples_s"] = round(rep_s, 4)
    record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
