"""Benchmark the Affymetrix readers on the real files of ``../shared/data/microarray``.

Usage::

    uv run python benchmarks/bench_cel.py [--data ../shared/data] [--repeat 5]

Times (best of ``--repeat``, seconds, including gunzip): CEL text v3 (C30057, 409,600 cells), Calvin
(Mouse430_2_97, 1,004,004 cells), XDA v4 (C30057 written as v4 to a temp dir, plain and gzip), the text
CDF Hu6800 (22 MB) and the same CDF written as XDA; also the first v3 read of the process (nothing
is imported on that path any more: it only pays first-touch memory), and ``write_intensities_tsv``
for the Calvin file (.tsv and .tsv.gz). ``compare_r.py`` times the same reads against affyio. Prints
one JSON line with the times and the peak RSS of the process. Targets: < 0.5 s per CEL file, < 3 s
for the text CDF.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    micro = args.data / "microarray"
    if not (micro / "C30057.CEL.gz").is_file():
        sys.exit(f"shared data not found under {args.data}")

    from refine_assets.lib.affy.cdf import read_cdf, write_cdf_xda
    from refine_assets.lib.affy.cel import read_cel, write_cel_v4, write_intensities_tsv

    start = time.perf_counter()
    c30057 = read_cel(micro / "C30057.CEL.gz")
    first_v3 = round(time.perf_counter() - start, 4)
    out: dict[str, object] = {
        "benchmark": "affymetrix_readers",
        "repeat": args.repeat,
        "first_v3_read_s": first_v3,
    }
    with tempfile.TemporaryDirectory() as tmp:
        v4 = write_cel_v4(c30057, Path(tmp) / "C30057_v4.CEL")
        v4_gz = Path(tmp) / "C30057_v4.CEL.gz"
        import gzip

        v4_gz.write_bytes(gzip.compress(v4.read_bytes(), compresslevel=6))
        mouse = read_cel(micro / "Mouse430_2_97.CEL.gz")
        out["cel_s"] = {
            "text_v3_C30057_gz": best_of(args.repeat, lambda: read_cel(micro / "C30057.CEL.gz")),
            "calvin_Mouse430_2_gz": best_of(args.repeat, lambda: read_cel(micro / "Mouse430_2_97.CEL.gz")),
            "xda_v4_C30057": best_of(args.repeat, lambda: read_cel(v4)),
            "xda_v4_C30057_gz": best_of(args.repeat, lambda: read_cel(v4_gz)),
        }
        out["cells"] = {"C30057": c30057.num_cells, "Mouse430_2": mouse.num_cells}
        out["write_intensities_s"] = {
            "calvin_tsv": best_of(args.repeat, lambda: write_intensities_tsv(mouse, Path(tmp) / "m.tsv")),
            "calvin_tsv_gz": best_of(
                args.repeat, lambda: write_intensities_tsv(mouse, Path(tmp) / "m.tsv.gz")
            ),
            "write_cel_v4_C30057": best_of(args.repeat, lambda: write_cel_v4(c30057, Path(tmp) / "w.CEL")),
        }
        hu = read_cdf(micro / "Hu6800.CDF.gz")
        xda = write_cdf_xda(hu, Path(tmp) / "Hu6800.cdf")
        out["cdf_s"] = {
            "text_Hu6800_gz": best_of(args.repeat, lambda: read_cdf(micro / "Hu6800.CDF.gz")),
            "xda_Hu6800": best_of(args.repeat, lambda: read_cdf(xda)),
            "write_xda_Hu6800": best_of(args.repeat, lambda: write_cdf_xda(hu, Path(tmp) / "w.cdf")),
        }
        out["cdf_probes"] = hu.probes.height
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
