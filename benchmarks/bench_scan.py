"""Benchmark native SCANfast and SCAN on a real array (C30057, HG_U95Av2, 199,084 PM probes).

Usage::

    uv run python benchmarks/bench_scan.py [--data ../shared/data] [--repeat 3]

Runs on one core (``OMP_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1`` set before numpy is imported).
Phases: read the CEL (``lib.affy.cel.read_cel``), read the HG-U95Av2 probe table TSV, prepare the
probes (SCAN order + 80-column design matrix, reusable across arrays of the chip), then
``scan_affy`` in ``fast`` and ``full`` mode (best of ``--repeat``). Prints one JSON line with wall
times, EM iterations and the process's peak RSS. Targets: SCANfast < 2 s, SCAN < 10 s, memory < 1 GB.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("REFINE_ASSETS_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default_data), help="shared test data folder")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (best is reported)")
    args = parser.parse_args()
    cel_path = args.data / "microarray" / "C30057.CEL.gz"
    probes_path = args.data / "probes" / "HG-U95Av2_probes.tsv.gz"
    if not cel_path.is_file() or not probes_path.is_file():
        sys.exit(f"missing {cel_path} or {probes_path} (pass --data)")

    from refine_assets.lib.affy.cel import read_cel
    from refine_assets.lib.affy.probes import read_probe_table
    from refine_assets.lib.affy.scan_affy import prepare_scan_probes, scan_affy

    t0 = time.perf_counter()
    cel = read_cel(cel_path)
    t1 = time.perf_counter()
    table = read_probe_table(probes_path)
    t2 = time.perf_counter()
    prepared = prepare_scan_probes(table, cel.cols)
    t3 = time.perf_counter()
    result: dict = {
        "array": cel_path.name,
        "chip_type": cel.chip_type,
        "n_probes": int(prepared.keep.sum()),
        "read_cel_s": round(t1 - t0, 3),
        "read_probe_table_s": round(t2 - t1, 3),
        "prepare_probes_s": round(t3 - t2, 3),
    }
    for mode in ("fast", "full"):
        times = []
        for _ in range(max(args.repeat, 1)):
            s = time.perf_counter()
            res = scan_affy(cel.intensities, cel.cols, prepared, mode=mode)
            times.append(time.perf_counter() - s)
        result[f"scan_{mode}_s"] = round(min(times), 3)
        result[f"scan_{mode}_iterations"] = res.iterations
        result[f"scan_{mode}_em_sample"] = res.em.sample_size
        # end to end for one array from files with a prepared probe table (what a worker does per CEL)
        result[f"end_to_end_{mode}_s"] = round(result["read_cel_s"] + min(times), 3)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["targets"] = {"scan_fast_s": 2, "scan_full_s": 10, "peak_rss_mb": 1024}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
