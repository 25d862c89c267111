"""Latency of the refine.bio-compatible API over a synthetic warehouse of 1 M samples.

Generates a warehouse in the real schema with ``refine_assets_tests/api_warehouse.py`` (20,000
experiments x 50 samples by default: 5 M raw attributes, 1 M original files, 0.9 M ledger rows), starts
``refine-assets serve --workers 2`` on 127.0.0.1 in its own process, warms both workers up (each builds
its snapshot's read model on its first request), then times sequential requests per scenario from one
client (``--concurrency N`` runs N clients at once) and prints one JSON line: p50/p99/mean in ms per
scenario, the snapshot build time and the workers' peak RSS (``VmHWM``).

    uv run python benchmarks/bench_api.py [--experiments 20000] [--samples-per-experiment 50]
                                          [--requests 200] [--concurrency 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from refine_assets_tests.api_warehouse import make_warehouse  # noqa: E402


def scenarios(exp: str) -> dict[str, str]:
    return {
        "search, no text (facets over all experiments)": "/v1/search/",
        "search 'kidney'": "/v1/search/?search=kidney",
        "search 'cancer stem' + organism + technology": (
            "/v1/search/?search=cancer%20stem&organism=HOMO_SAPIENS&technology=microarray"
        ),
        "samples, default page (ordering -is_processed)": "/v1/samples/",
        "samples of one experiment": f"/v1/samples/?experiment_accession_code={exp}",
        "samples, is_processed + organism, offset 100000": (
            "/v1/samples/?is_processed=true&organism__name=HOMO_SAPIENS&offset=100000"
        ),
        "samples filter_by 'carcinoma' (substring)": "/v1/samples/?filter_by=carcinoma",
        "experiment detail": f"/v1/experiments/{exp}/",
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    pids = [int(p) for p in out]
    return [c for p in pids for c in [p, *worker_pids(p)]]


def vmhwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=20_000)
    ap.add_argument("--samples-per-experiment", type=int, default=50)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp_dir:
        tmp = Path(tmp_dir)
        store = tmp / "storage"
        store.mkdir()
        t0 = time.perf_counter()
        wh = make_warehouse(
            tmp / "warehouse.duckdb", args.experiments, args.samples_per_experiment, store.as_uri()
        )
        generate_s = time.perf_counter() - t0
        env = dict(
            os.environ,
            REFINE_ASSETS_HOME=str(tmp),
            REFINE_ASSETS_WAREHOUSE=str(wh),
            REFINE_ASSETS_STORAGE_ROOT=str(store),
            REFINE_ASSETS_API_RATE_LIMIT="0",
            REFINE_ASSETS_API_BUILDS="thread",
        )
        env.pop("DAGSTER_HOME", None)
        exe = Path(sys.executable).with_name("refine-assets")
        log = open(tmp / "serve.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(args.port), "--workers", str(args.workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{args.port}"
        try:
            client = httpx.Client(base_url=base, timeout=300)
            deadline = time.monotonic() + 600
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"serve did not start: {(tmp / 'serve.log').read_text()[-2000:]}")
                time.sleep(0.5)
            # warm-up: enough requests that every worker has built its snapshot
            t1 = time.perf_counter()
            for _ in range(4 * args.workers):
                client.get("/v1/experiments/?limit=1")
            warmup_s = time.perf_counter() - t1
            health = client.get("/health").json()
            results = {}
            e = args.experiments // 2
            e -= 1 if e % 4 == 3 else 0
            for name, path in scenarios(f"GSE{100000 + e}").items():
                for _ in range(3):
                    assert client.get(path).status_code == 200, path

                def one(_i: int, path: str = path) -> float:
                    with httpx.Client(base_url=base, timeout=300) as c:
                        s = time.perf_counter()
                        r = c.get(path)
                        assert r.status_code == 200, (path, r.text[:300])
                        return (time.perf_counter() - s) * 1000

                if args.concurrency == 1:
                    times = []
                    for _ in range(args.requests):
                        s = time.perf_counter()
                        r = client.get(path)
                        assert r.status_code == 200, (path, r.text[:300])
                        times.append((time.perf_counter() - s) * 1000)
                else:
                    with ThreadPoolExecutor(args.concurrency) as pool:
                        times = list(pool.map(one, range(args.requests)))
                results[name] = {
                    "path": path,
                    "p50_ms": round(percentile(times, 0.5), 1),
                    "p99_ms": round(percentile(times, 0.99), 1),
                    "mean_ms": round(statistics.fmean(times), 1),
                    "count": client.get(path).json().get("count") if "detail" not in name else None,
                }
            rss = [vmhwm_mib(p) for p in worker_pids(proc.pid)]
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
        print(
            json.dumps(
                {
                    "samples": args.experiments * args.samples_per_experiment,
                    "experiments": args.experiments,
                    "workers": args.workers,
                    "concurrency": args.concurrency,
                    "requests_per_scenario": args.requests,
                    "generate_warehouse_s": round(generate_s, 1),
                    "warehouse_mb": round(wh.stat().st_size / 1e6, 1) if wh.exists() else None,
                    "warmup_s": round(warmup_s, 1),
                    "snapshot_build_s": health["warehouse"]["snapshot_build_seconds"],
                    "full_text_search": health["warehouse"]["full_text_search"],
                    "worker_peak_rss_mib": [round(r) for r in rss if r],
                    "scenarios": results,
                }
            )
        )


if __name__ == "__main__":
    main()
