"""Benchmark: survey + harmonize + write + warehouse load of GEO GSE781 (34 samples, 10 MB SOFT).

Usage: ``uv run python benchmarks/bench_survey.py [--soft PATH] [--repeat N]``. The SOFT file
defaults to ``../shared/data/geo/geoquery/GSE781_family.soft.gz`` or the demo copy fetched from
Debian (``.refine_assets/demo_data``). Prints one JSON line with wall times (best of N) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from refine_assets.lib.http import ReplayHttpClient
from refine_assets.lib.storage import open_store
from refine_assets.lib.survey.geo import family_soft_url, survey_geo
from refine_assets.lib.survey.pipeline import write_survey
from refine_assets.lib.warehouse import build_warehouse

ROOT = Path(__file__).resolve().parents[1]


def default_soft() -> Path:
    for p in (
        ROOT.parent / "shared/data/geo/geoquery/GSE781_family.soft.gz",
        ROOT / ".refine_assets/demo_data/GSE781_family.soft.gz",
    ):
        if p.is_file():
            return p
    sys.exit("GSE781_family.soft.gz not found: run `refine-assets fetch-demo-data` or pass --soft")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--soft", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    soft = args.soft or default_soft()
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        client = ReplayHttpClient(files={family_soft_url("GSE781"): soft})
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(str(Path(tmp) / "storage"))
            t0 = time.perf_counter()
            result = survey_geo("GSE781", client, fetch_publications=False)
            t1 = time.perf_counter()
            write_survey(result, store)
            t2 = time.perf_counter()
            build_warehouse(Path(tmp) / "w.duckdb", store)
            t3 = time.perf_counter()
        times = {
            "parse_and_survey_s": t1 - t0,
            "harmonize_and_write_s": t2 - t1,
            "warehouse_load_s": t3 - t2,
            "total_s": t3 - t0,
        }
        best = {k: min(v, best.get(k, float("inf"))) for k, v in times.items()}
    print(
        json.dumps(
            {
                "benchmark": "survey_GSE781",
                "samples": len(result.samples),
                "attributes": len(result.attributes),
                **{k: round(v, 3) for k, v in best.items()},
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
