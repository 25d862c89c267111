"""Benchmark quantile normalization to a target (:mod:`refine_assets.lib.qn`) and the KS gate.

Usage::

    uv run python benchmarks/bench_qn.py [--genes 20000] [--samples 1000] [--workers 1] [--seed 0]
                                         [--ks-samples 100]

Generates a random genes x samples float64 matrix, column-major as the matrix reader
(``refine_assets.lib.matrix_io``) and R hold it (``--row-major`` for C order), its float32 copy and
a target, then times:
``quantile_normalize_to_target`` with a target of the same length (preprocessCore's standard case),
with a target of another length (interpolation, refine.bio's usual case), on float32 input, with 5% NA
in every column, the first case again on 2 threads, ``determine_target``, and ``ks_gate`` on ``--ks-samples`` normalized
columns. Prints one JSON line: wall seconds and CPU seconds (user + sys, all threads) per step, peak
RSS of the process (``ru_maxrss``, MiB) after the input is built, after the first QN (input + output +
batch work arrays) and at the end (later steps hold extra copies of the input: float32, with NA), and
the input size. Target: QN of 20,000 x 1,000 in under 2 s on 2 cores. Wall times depend on other load
on the machine; CPU seconds do not (much).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from refine_assets.lib.ks import ks_gate
from refine_assets.lib.qn import determine_target, quantile_normalize_to_target


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark quantile normalization and the KS gate.")
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ks-samples", type=int, default=100)
    parser.add_argument("--row-major", action="store_true", help="C-order input (default: column-major)")
    args = parser.parse_args(argv)

    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name: str, fn, *a, **kw):
        c0, t0 = _cpu(), time.perf_counter()
        result = fn(*a, **kw)
        wall[name] = round(time.perf_counter() - t0, 3)
        cpu[name] = round(_cpu() - c0, 3)
        return result

    rng = np.random.default_rng(args.seed)
    x = timed("generate", rng.standard_normal, (args.genes, args.samples))
    if not args.row_major:
        x = np.asfortranarray(x)
    target = np.sort(rng.standard_normal(args.genes))
    other = np.sort(rng.standard_normal(int(args.genes * 0.6)))
    peak = {"after_input": _rss_mib()}

    out = np.empty_like(x)
    timed("qn_same_length", quantile_normalize_to_target, x, target, workers=args.workers, out=out)
    peak["after_qn_same_length"] = _rss_mib()
    timed("qn_other_length", quantile_normalize_to_target, x, other, workers=args.workers, out=out)
    x32 = x.astype(np.float32, order="K")
    timed("qn_float32_input", quantile_normalize_to_target, x32, target, workers=args.workers, out=out)
    del x32
    with_na = x.copy(order="K")
    with_na[rng.integers(0, 20, size=x.shape, dtype=np.uint8) == 0] = np.nan
    timed("qn_5pct_na", quantile_normalize_to_target, with_na, target, workers=args.workers, out=out)
    del with_na
    timed("qn_same_length_2_threads", quantile_normalize_to_target, x, target, workers=2, out=out)
    timed("determine_target", determine_target, x)
    k = min(args.ks_samples, args.samples)
    quantile_normalize_to_target(x[:, :k], other, out=out[:, :k])
    results = timed(f"ks_gate_{k}_samples_other_length", ks_gate, out[:, :k], other)
    assert all(r.passed for r in results)

    print(
        json.dumps(
            {
                "benchmark": "qn",
                "genes": args.genes,
                "samples": args.samples,
                "workers": args.workers,
                "layout": "row-major" if args.row_major else "column-major",
                "seconds": wall,
                "cpu_seconds": cpu,
                "peak_rss_mib": {**peak, "end": _rss_mib()},
                "input_mib_float64": round(x.nbytes / 2**20, 1),
                "python": sys.version.split()[0],
                "numpy": np.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
