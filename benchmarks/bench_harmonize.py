"""Benchmark :func:`refine_assets.lib.harmonize.harmonize` on synthetic raw attribute rows.

Usage::

    uv run python benchmarks/bench_harmonize.py [--rows 1000000] [--keys-per-sample 10] [--seed 0]

Generates ``--rows`` long-format attribute rows (``rows / keys-per-sample`` samples) with a realistic
mix of keys: refine.bio key variants (``Characteristics [Age]``, ``age (years)``, ``Sex``,
``characteristics_tissue_0_text``, ``Factor Value[cell type]`` ...), values needing normalization
(``" F "``, ``"12 weeks"``, ``"Male"``), some unparseable ages (``"n/a"``, ``"9yrs 2mos"``), and noise
keys that match nothing (``protocol``, ``label_ch1``, ``description`` ...). Then times
``harmonize`` and prints one JSON line: rows, samples, seconds (generation and harmonization), peak
RSS of the process, and output sizes. Target: harmonization of 1,000,000 rows in under 10 s on a
2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import polars as pl

from refine_assets.lib.harmonize import harmonize

AGES = ["0", "1", "12", "34", "54", "65.5", "12 weeks", "3 months", "n/a", "9yrs 2mos", "unknown", "70"]
SEXES = ["F", " f ", "female", "Male", "M", "man", "woman", "unknown", "Female "]
TISSUES = ["liver", "Kidney", " brain", "b cell", "islet", "whole blood", "lung"]
DISEASES = ["normal", "Cancer", "renal cell carcinoma", "healthy control", "diabetes"]
TREATMENTS = ["none", "DMSO", "tamoxifen 10uM", "control", "tgf-beta 16h"]
GENOTYPES = ["wild type", "wt", "p53-/-", "C57BL/6", "Kras G12D"]
CELL_LINES = ["HeLa", "MCF-7", "Hs578T", "K562"]
TIMES = ["0h", "2h", "16 h", "day 3"]
NOISE = ["lot 12", "biotin", "total RNA", "see protocol", "GPL570", "Homo sapiens", "x"]

# (raw key, value pool, relative weight) — about 60% of rows match a harmonized field.
KEYS: list[tuple[str, list[str], float]] = [
    ("Characteristics [Age]", AGES, 4),
    ("age (years)", AGES, 3),
    ("age", AGES, 4),
    ("Sex", SEXES, 4),
    ("gender", SEXES, 3),
    ("characteristics[sex]", SEXES, 2),
    ("tissue", TISSUES, 4),
    ("Characteristics[organism part]", TISSUES, 3),
    ("characteristics_tissue_0_text", TISSUES, 2),
    ("Factor Value[cell type]", TISSUES, 2),
    ("disease state", DISEASES, 3),
    ("diagnosis", DISEASES, 2),
    ("treatment", TREATMENTS, 3),
    ("genotype/variation", GENOTYPES, 2),
    ("strain", GENOTYPES, 1),
    ("cell line", CELL_LINES, 2),
    ("time point", TIMES, 2),
    ("Sample Title", ["sample a", "sample b", "Rep 1"], 1),
    ("title", ["sample a", "Sample A ", "rep 2"], 2),
    ("protocol", NOISE, 8),
    ("label_ch1", NOISE, 6),
    ("description", NOISE, 6),
    ("molecule_ch1", NOISE, 5),
    ("platform_id", NOISE, 5),
    ("contact_name", NOISE, 5),
    ("Comment [ArrayExpress FTP file]", NOISE, 4),
    ("scan_protocol", NOISE, 3),
]


def generate(rows: int, keys_per_sample: int, seed: int) -> pl.DataFrame:
    """Synthetic raw attributes: ``rows`` rows, ``keys_per_sample`` rows per sample (vectorized)."""
    rng = np.random.default_rng(seed)
    weights = np.array([w for _, _, w in KEYS], dtype=float)
    key_idx = rng.choice(len(KEYS), size=rows, p=weights / weights.sum())
    pick = rng.integers(0, 1 << 30, size=rows)
    values = np.empty(rows, dtype=object)
    for i, (_, pool, _) in enumerate(KEYS):
        mask = key_idx == i
        pool_arr = np.array(pool, dtype=object)
        values[mask] = pool_arr[pick[mask] % len(pool_arr)]
    key_names = np.array([k for k, _, _ in KEYS], dtype=object)
    sample_no = np.arange(rows) // keys_per_sample
    return pl.DataFrame(
        {
            "sample_accession": pl.Series(sample_no).cast(pl.String).str.pad_start(8, "0"),
            "key": pl.Series(key_names[key_idx], dtype=pl.String),
            "value": pl.Series(values, dtype=pl.String),
            "source": pl.repeat("synthetic", rows, dtype=pl.String, eager=True),
            "position": pl.Series(np.arange(rows) % keys_per_sample, dtype=pl.Int64),
        }
    ).with_columns(("GSM" + pl.col("sample_accession")).alias("sample_accession"))


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print and return the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys-per-sample", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    attrs = generate(args.rows, args.keys_per_sample, args.seed)
    t1 = time.perf_counter()
    rss_before = _peak_rss_mb()
    result = harmonize(attrs)
    t2 = time.perf_counter()
    figures = {
        "benchmark": "harmonize",
        "rows": attrs.height,
        "samples": result.samples.height,
        "generate_seconds": round(t1 - t0, 3),
        "harmonize_seconds": round(t2 - t1, 3),
        "rows_per_second": round(attrs.height / max(t2 - t1, 1e-9)),
        "peak_rss_mb_before_harmonize": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
        "conflicts": result.conflicts.height,
        "conflicts_by_reason": dict(result.conflicts.get_column("reason").value_counts().iter_rows()),
        "samples_with_age": int(result.samples.get_column("age").is_not_null().sum()),
        "target_seconds": 10,
        "within_target": (t2 - t1) < 10,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
