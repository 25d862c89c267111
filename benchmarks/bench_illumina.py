"""Benchmark the Illumina path: limma nec, file parsing, platform table, Illumina SCAN.

Usage::

    uv run python benchmarks/bench_illumina.py [--probes 48000] [--samples 100] [--scan-samples 100] [--seed 0]

Synthetic inputs from ``refine_assets_tests/illumina_generator.py``: a platform of ``--probes``
50-mer probes packed into a Bioconductor-style ``illuminaHumanv4.db`` tarball (SQLite inside), and a
GenomeStudio-style non-normalized file with ``--samples`` samples (AVG_Signal, Detection Pval,
BEAD_STDERR, Avg_NBEADS per sample). Timed steps: reading the platform tarball into a probe table;
parsing the file; ``nec`` on the probes x samples matrix; the whole Illumina SCAN pipeline
(``illumina_scan``: nec + per-sample SCAN + genes) on the first ``--scan-samples`` samples. Prints
one JSON line with the wall times (seconds), SCAN EM iteration statistics and the peak RSS of the
process (MB, ``ru_maxrss``; the inputs are generated in a child process, so they are not counted
except for the file's bytes, which are read into memory before parsing).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refine_assets.lib.illumina.nec import nec
from refine_assets.lib.illumina.parse import SampleRef, parse_illumina_bytes
from refine_assets.lib.illumina.probes import read_illumina_db_package
from refine_assets.lib.illumina.scan_illumina import IlluminaScanOptions, illumina_scan
from refine_assets_tests.illumina_generator import (
    build_illumina_db_tarball,
    build_org_db_tarball,
    default_samples,
    make_platform,
    simulate_beadchip,
    write_nonnormalized,
)


def generate(folder: Path, probes: int, samples: int, seed: int) -> None:
    """Write the synthetic inputs into ``folder`` (run in a child process: its memory is not counted)."""
    pl = make_platform(probes, seed=seed)
    sim = simulate_beadchip(probes, samples, seed=seed + 1, sequences=pl.sequences)
    gen = default_samples(samples, barcodes=True)
    (folder / "non-normalized.txt").write_bytes(
        write_nonnormalized("genomestudio", pl.probe_ids, sim.signal, sim.detection_p, gen)
    )
    build_illumina_db_tarball(folder, pl)
    build_org_db_tarball(folder, pl.entrez_to_ensembl())
    (folder / "samples.json").write_text(json.dumps([[s.accession, s.title, s.key] for s in gen]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, default=48000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--scan-samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_into:
        generate(args.generate_into, args.probes, args.samples, args.seed)
        return
    out: dict = {
        "probes": args.probes,
        "samples": args.samples,
        "scan_samples": min(args.scan_samples, args.samples),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--generate-into", tmp, "--probes", str(args.probes),
             "--samples", str(args.samples), "--seed", str(args.seed)],
            check=True,
        )  # fmt: skip
        out["generate_s"] = round(time.perf_counter() - t, 2)
        raw = (folder / "non-normalized.txt").read_bytes()
        out["file_mb"] = round(len(raw) / 2**20, 1)
        samples = [
            SampleRef(a, t_, aliases=(k,)) for a, t_, k in json.loads((folder / "samples.json").read_text())
        ]

        t = time.perf_counter()
        table = read_illumina_db_package(
            folder / "illuminaHumanv4.db_1.26.0.tar.gz", org_package=folder / "org.Hs.eg.db_3.15.0.tar.gz"
        )
        out["probe_table_s"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    m = parse_illumina_bytes(raw, samples, source="bench_non-normalized.txt")
    out["parse_s"] = round(time.perf_counter() - t, 3)
    del raw
    out["rss_after_parse_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    t = time.perf_counter()
    res = nec(m.signal, m.detection_p)
    out["nec_s"] = round(time.perf_counter() - t, 3)
    out["nec_values"] = int(res.values.size)
    del res

    k = out["scan_samples"]
    if k:
        m.signal, m.detection_p, m.columns = m.signal[:, :k], m.detection_p[:, :k], m.columns[:k]
        t = time.perf_counter()
        scan = illumina_scan(m, table, IlluminaScanOptions())
        dt = time.perf_counter() - t
        its = [s.em_iterations for s in scan.samples if s.em_iterations is not None]
        out["illumina_scan_s"] = round(dt, 2)
        out["illumina_scan_per_sample_s"] = round(dt / k, 3)
        out["scan_ok"] = sum(s.status == "ok" for s in scan.samples)
        out["em_iterations_median"] = float(np.median(its)) if its else None
        out["em_reached_max_iter"] = sum(1 for s in scan.samples if s.em_converged is False)
        out["gene_rows"] = scan.counts["gene_rows"]
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
