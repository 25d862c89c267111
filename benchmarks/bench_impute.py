"""Benchmark IterativeSVD imputation: native (out-of-core, memory-mapped) vs fancyimpute.

Synthetic, deterministic low-rank-plus-noise data (``generate_block``): genes x samples with
``value = gene_mean + sum_j a_gj * d_j * b_sj + noise``, gene means ~ N(7, 2^2), 8 latent factors with
scales ``d_j = 3 * 0.75^j``, noise sd 0.5, and 15 % of the cells missing completely at random. Gene
factors come from the seed; sample factors, noise and mask from ``SeedSequence([seed, block])`` per
block of 1,000 samples, so every size is a prefix of the larger ones and the held-out true values can
be regenerated to score the imputation without storing them.

Each size runs in its own child process (so its ``VmHWM`` is that run's peak): the matrix is written
to a float32 memmap (samples x genes, i.e. per-sample contiguous, the compendium layout) and imputed
in place (``impute(..., inplace=True)``, rank 10, refine.bio's parameters). fancyimpute runs on the
same data in memory. Reported per run: generation and imputation wall time, iterations, peak RSS,
RMSE of the imputed cells against the held-out values and against the noiseless signal, and, where
both backends ran, the RMS difference between them.

    uv run python benchmarks/bench_impute.py --sizes 1000,2000,5000,10000,20000 \
        --fancyimpute-sizes 1000,2000,5000,10000,20000
    uv run python benchmarks/bench_impute.py --build 5000      # whole compendium build from vectors

Prints one JSON line (the summary) at the end; ``--single`` runs one child and prints its line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCK = 1000
RANK_TRUE = 8
NOISE_SD = 0.5
MISSING = 0.15


def _peak_rss_bytes() -> int:
    """Peak RSS of this process: ``VmHWM``, which starts afresh at ``exec``.

    A child's ``ru_maxrss`` is at least its parent's peak at ``fork`` (Linux carries it over ``exec``);
    after ``write_vectors`` that floor would be the parent's, not the build's.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gene_factors(n_genes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(gene means, gene loadings x scales) — the part shared by all samples."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2**31 - 1]))
    means = 7.0 + 2.0 * rng.standard_normal(n_genes)
    scales = 3.0 * 0.75 ** np.arange(RANK_TRUE)
    loadings = rng.standard_normal((n_genes, RANK_TRUE)) * scales
    return means, loadings


def generate_block(
    block: int, n_samples: int, means: np.ndarray, loadings: np.ndarray, seed: int, missing: float = MISSING
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signal, observed-with-noise, mask) for ``n_samples`` samples of block ``block`` (samples x genes)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, block]))
    b = rng.standard_normal((n_samples, RANK_TRUE))
    signal = (means[None, :] + b @ loadings.T).astype(np.float32)
    noisy = signal + (NOISE_SD * rng.standard_normal(signal.shape)).astype(np.float32)
    mask = rng.random(signal.shape) < missing
    return signal, noisy, mask


def _blocks(n_samples: int):
    for blk, s0 in enumerate(range(0, n_samples, BLOCK)):
        yield blk, s0, min(s0 + BLOCK, n_samples)


def write_matrix(path: Path, n_genes: int, n_samples: int, seed: int) -> np.memmap:
    """The observed matrix (NaN = missing) as a float32 memmap, samples x genes (C order)."""
    means, loadings = gene_factors(n_genes, seed)
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_samples, n_genes))
    for blk, s0, s1 in _blocks(n_samples):
        _, noisy, mask = generate_block(blk, s1 - s0, means, loadings, seed)
        noisy[mask] = np.nan
        mm[s0:s1] = noisy
    mm.flush()
    return mm


def score(filled: np.ndarray, n_genes: int, n_samples: int, seed: int) -> tuple[dict, np.ndarray]:
    """RMSE of the imputed cells vs held-out values and signal; also the imputed values in mask order."""
    means, loadings = gene_factors(n_genes, seed)
    se_obs = se_sig = 0.0
    n = 0
    imputed = []
    for blk, s0, s1 in _blocks(n_samples):
        signal, noisy, mask = generate_block(blk, s1 - s0, means, loadings, seed)
        vals = np.asarray(filled[s0:s1])[mask].astype(np.float64)
        se_obs += float(((vals - noisy[mask]) ** 2).sum())
        se_sig += float(((vals - signal[mask]) ** 2).sum())
        n += int(mask.sum())
        imputed.append(vals.astype(np.float32))
    return (
        {"rmse_heldout": (se_obs / n) ** 0.5, "rmse_signal": (se_sig / n) ** 0.5, "n_imputed": n},
        np.concatenate(imputed),
    )


def run_single(args: argparse.Namespace) -> dict:
    from refine_assets.lib.compendia.impute import impute

    workdir = Path(args.workdir)
    n, m = args.single, args.genes
    path = workdir / f"matrix_{m}x{n}.f32"
    t0 = time.perf_counter()
    mm = write_matrix(path, m, n, args.seed)
    t_gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    if args.backend == "native":
        del mm
        mm = np.memmap(path, dtype=np.float32, mode="r+", shape=(n, m))
        filled, rep = impute(mm, args.rank, "native", inplace=True, svd=args.svd)
    else:
        x = np.array(mm)
        del mm
        filled, rep = impute(x, args.rank, "fancyimpute")
        del x
    t_imp = time.perf_counter() - t1
    peak = _peak_rss_bytes()
    scores, imputed = score(filled, m, n, args.seed)
    np.save(workdir / f"imputed_{args.backend}_{m}x{n}.npy", imputed)
    del filled
    path.unlink(missing_ok=True)
    return {
        "backend": args.backend,
        "svd": rep.svd,
        "genes": m,
        "samples": n,
        "missing_fraction": rep.fraction_missing,
        "generate_seconds": round(t_gen, 2),
        "impute_seconds": round(t_imp, 2),
        "iterations": rep.iterations,
        "converged": rep.converged,
        "passes": rep.svd_stats.get("passes"),
        "peak_rss_bytes": peak,
        "peak_rss_gib": round(peak / 2**30, 3),
        **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in scores.items()},
    }


def write_vectors(store_root: Path, n: int, m: int, seed: int) -> float:
    """N synthetic microarray vectors (a sample's missing cells = genes absent from its vector); seconds.

    Skipped when the store already holds them (same names; reuse with ``--workdir``).
    """
    import pandas as pd

    from refine_assets.lib.processing.vectors import vector_key, write_vector
    from refine_assets.lib.storage import LocalArtifactStore

    store = LocalArtifactStore(store_root)
    if store.exists(vector_key("GSEBENCH", f"GSM{n - 1:07d}")):
        return 0.0
    means, loadings = gene_factors(m, seed)
    genes = np.array([f"ENSG{i:011d}" for i in range(m)], dtype=object)
    t0 = time.perf_counter()
    for blk, s0, s1 in _blocks(n):
        _, noisy, mask = generate_block(blk, s1 - s0, means, loadings, seed)
        for i in range(s1 - s0):
            keep = ~mask[i]
            key = vector_key("GSEBENCH", f"GSM{s0 + i:07d}")
            write_vector(store, key, pd.Series(noisy[i, keep].astype(np.float64), index=genes[keep]))
    return time.perf_counter() - t0


def run_build(args: argparse.Namespace) -> dict:
    """Child process of ``--build N``: the whole ``build_compendium`` on the stored vectors.

    Assembly, filters, imputation, QN to a target, KS gate, Parquet output; this process's peak RSS.
    """
    from refine_assets.lib.compendia.build import build_compendium
    from refine_assets.lib.processing.vectors import vector_key
    from refine_assets.lib.storage import LocalArtifactStore

    workdir = Path(args.workdir)
    store = LocalArtifactStore(workdir / "store")
    n, m = args.build_run, args.genes
    vectors = [(f"GSM{i:07d}", "MICROARRAY", vector_key("GSEBENCH", f"GSM{i:07d}")) for i in range(n)]
    means, _ = gene_factors(m, args.seed)
    target = np.sort(means + NOISE_SD * np.random.default_rng(args.seed).standard_normal(m))
    t1 = time.perf_counter()
    res = build_compendium("BENCH_ORG", vectors, store, workdir / "out", target, work_dir=workdir)
    total = time.perf_counter() - t1
    peak = _peak_rss_bytes()
    out_bytes = sum(f.stat().st_size for f in (workdir / "out" / "matrix").iterdir())
    return {
        "build_samples": n,
        "genes": m,
        "build_seconds": round(total, 1),
        "stages_seconds": {k: round(v, 1) for k, v in res.seconds.items()},
        "iterations": res.impute.iterations if res.impute else 0,
        "percent_imputed": round(res.percent_imputed, 3),
        "compendium_genes": res.n_genes,
        "compendium_samples": res.n_samples,
        "parquet_bytes": out_bytes,
        "parquet_bytes_per_value": round(out_bytes / (res.n_genes * res.n_samples), 2),
        "peak_rss_bytes": peak,
        "peak_rss_gib": round(peak / 2**30, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,2000,5000,10000,20000", help="sample counts (native)")
    ap.add_argument("--fancyimpute-sizes", default="1000,2000", help="sample counts for fancyimpute")
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--svd", default="auto", help="native SVD engine: auto | exact | randomized")
    ap.add_argument("--workdir", default=None, help="where the memmaps go (default: a temp folder)")
    ap.add_argument(
        "--build", type=int, default=None, help="run a whole compendium build of N samples instead"
    )
    ap.add_argument("--build-run", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--single", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="native", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.single is not None:
        print(json.dumps(run_single(args)), flush=True)
        return
    if args.build_run is not None:
        print(json.dumps(run_build(args)), flush=True)
        return
    if args.build is not None:
        own = args.workdir is None
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-compendium-"))
        try:
            t_vec = write_vectors(workdir / "store", args.build, args.genes, args.seed)
            cmd = [
                sys.executable,
                __file__,
                "--build-run",
                str(args.build),
                "--genes",
                str(args.genes),
                "--seed",
                str(args.seed),
                "--workdir",
                str(workdir),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                json.dumps({"benchmark": "compendium_build", "write_vectors_seconds": round(t_vec, 1), **out})
            )
        finally:
            if own:
                import shutil

                shutil.rmtree(workdir, ignore_errors=True)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    fsizes = [int(s) for s in args.fancyimpute_sizes.split(",") if s]
    own_tmp = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-impute-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    jobs = [("native", n) for n in sizes] + [("fancyimpute", n) for n in fsizes]
    for backend, n in jobs:
        cmd = [
            sys.executable,
            __file__,
            "--single",
            str(n),
            "--backend",
            backend,
            "--genes",
            str(args.genes),
            "--rank",
            str(args.rank),
            "--seed",
            str(args.seed),
            "--svd",
            args.svd,
            "--workdir",
            str(workdir),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        if proc.returncode != 0:
            runs.append({"backend": backend, "samples": n, "error": proc.stderr.strip().splitlines()[-1:]})
        else:
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    agreement = []
    for n in fsizes:
        a = workdir / f"imputed_native_{args.genes}x{n}.npy"
        b = workdir / f"imputed_fancyimpute_{args.genes}x{n}.npy"
        if a.exists() and b.exists():
            d = np.load(a).astype(np.float64) - np.load(b)
            agreement.append(
                {
                    "samples": n,
                    "rms_native_vs_fancyimpute": float(np.sqrt(np.mean(d**2))),
                    "max_abs_native_vs_fancyimpute": float(np.abs(d).max()),
                }
            )
    if own_tmp:
        for f in workdir.iterdir():
            f.unlink()
        workdir.rmdir()
    print(
        json.dumps(
            {
                "benchmark": "impute",
                "genes": args.genes,
                "rank": args.rank,
                "runs": runs,
                "agreement": agreement,
            }
        )
    )


if __name__ == "__main__":
    main()
