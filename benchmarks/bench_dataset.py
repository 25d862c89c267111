"""Benchmark dataset delivery end to end: QN target build and a 200-sample dataset zip.

Usage::

    uv run python benchmarks/bench_dataset.py [--samples 200] [--genes 20000] [--seed 0] [--keep DIR]

Set-up (timed separately): two GEO experiments of ``--samples / 2`` human Affymetrix samples each,
written as production writes them (``write_survey``, one SCAN-like vector per sample with ``--genes``
Ensembl genes + 62 AFFX controls + 500 one-to-many duplicate ids, ``write_ledger``), loaded into a
DuckDB warehouse. Then, each step in a **fresh process** so its peak RSS (``VmHWM``) is its own:

* ``qn_target``: ``build_qn_target`` over all samples (two passes are not needed: one gene set);
* ``dataset_species_standard``: ``build_dataset`` of all samples, ``aggregate_by=SPECIES`` (one
  genes x samples matrix), QN, KS gate, ``scale_by=STANDARD``, zip written and recorded in the warehouse;
* ``dataset_experiment``: the same samples aggregated by experiment (two matrices), no scaling.

Prints one JSON line: wall seconds per step, peak RSS per step (MiB), zip sizes, matrix shape.
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


def _rss_mib() -> float:
    """Peak RSS of this process (MiB): ``VmHWM``, which starts afresh at ``exec``.

    ``ru_maxrss`` of a child process is at least its parent's peak at ``fork`` (Linux carries it over
    ``exec``), so in the step processes it would only show the set-up's peak again.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def setup(root: Path, n_samples: int, n_genes: int, seed: int) -> dict:
    import numpy as np
    import pandas as pd

    from refine_assets.lib.processing.framework import SampleOutcome, write_ledger
    from refine_assets.lib.processing.vectors import vector_key, write_vector
    from refine_assets.lib.storage import LocalArtifactStore
    from refine_assets.lib.survey.model import (
        Experiment,
        Organism,
        Platform,
        Sample,
        SampleAttribute,
        SurveyResult,
    )
    from refine_assets.lib.survey.pipeline import write_survey
    from refine_assets.lib.warehouse import build_warehouse

    store = LocalArtifactStore(root / "store")
    rng = np.random.default_rng(seed)
    genes = np.array([f"ENSG{i:011d}" for i in range(1, n_genes + 1)], dtype=object)
    dup = rng.choice(genes, 500, replace=False)
    ids = np.concatenate([genes, dup, np.array([f"AFFX-ctrl-{k}_at" for k in range(62)], dtype=object)])
    per_exp = n_samples // 2
    for e in range(2):
        acc = f"GSE{e + 1}"
        samples, attrs, outcomes = [], [], []
        for k in range(per_exp):
            s = f"GSM{e + 1}{k:05d}"
            samples.append(
                Sample(
                    s,
                    acc,
                    "GEO",
                    title=f"sample {k}",
                    organism="HOMO_SAPIENS",
                    taxonomy_id=9606,
                    platform_accession="GPL570",
                    platform_name="[HG-U133_Plus_2] Affymetrix Human Genome U133 Plus 2.0 Array",
                    internal_platform_code="hgu133plus2",
                    technology="MICROARRAY",
                    manufacturer="AFFYMETRIX",
                    has_raw=True,
                    pipeline="AFFY_TO_PCL",
                )
            )
            attrs += [
                SampleAttribute(s, "tissue", ["kidney", "liver", "brain"][k % 3], "geo_characteristics", 0),
                SampleAttribute(s, "age", str(20 + k % 50), "geo_characteristics", 1),
                SampleAttribute(s, "sex", "female" if k % 2 else "male", "geo_characteristics", 2),
            ]
            values = rng.normal(0, 1, ids.size) + rng.gamma(1.5, 1.2, ids.size)
            art = write_vector(
                store,
                vector_key(acc, s),
                pd.Series(values, index=ids),
                {"method": "SCANfast+Brainarray", "versions": {"scan": "fast"}},
            )
            outcomes.append(
                SampleOutcome(
                    s,
                    acc,
                    "affy_scan",
                    "succeeded",
                    versions={"refine_assets": "bench", "brainarray": "22.0.0"},
                    output_key=art.key,
                    output_url=art.url,
                    output_sha256=art.sha256,
                    recorded_at="2024-01-01T00:00:00",
                )
            )
        write_survey(
            SurveyResult(
                Experiment(acc, "GEO", title=f"Benchmark {acc}", description="synthetic"),
                samples=samples,
                attributes=attrs,
                platforms=[
                    Platform(
                        "GPL570",
                        "GEO",
                        "HG-U133 Plus 2",
                        "HOMO_SAPIENS",
                        "hgu133plus2",
                        "AFFYMETRIX",
                        "MICROARRAY",
                        True,
                        True,
                    )
                ],
                organisms=[Organism("HOMO_SAPIENS", 9606, "Homo sapiens")],
            ),
            store,
        )
        write_ledger(store, acc, outcomes)
    build_warehouse(root / "warehouse.duckdb", store)
    return {"vector_ids": int(ids.size)}


def child(phase: str, root: Path) -> dict:
    from refine_assets.lib.storage import LocalArtifactStore

    store = LocalArtifactStore(root / "store")
    db = root / "warehouse.duckdb"
    t0 = time.perf_counter()
    out: dict = {}
    if phase == "qn_target":
        from refine_assets.lib.delivery.targets import build_qn_target

        rec = build_qn_target(db, store, "HOMO_SAPIENS", min_samples=100)
        out["target_samples"] = rec["details"]["num_samples"]
        out["target_genes"] = rec["details"]["num_genes"]
    else:
        from refine_assets.lib.delivery.dataset import build_dataset

        data = {"GSE1": ["ALL"], "GSE2": ["ALL"]}
        if phase == "dataset_species_standard":
            req = {"data": data, "aggregate_by": "SPECIES", "scale_by": "STANDARD"}
        else:
            req = {"data": data, "aggregate_by": "EXPERIMENT"}
        res = build_dataset(req, db, store, root / f"{phase}.zip", dataset_id=phase)
        out["zip_bytes"] = res.size
        out["groups"] = {k: [v["num_genes"], v["num_samples"]] for k, v in res.groups.items()}
        out["filtered"] = len(res.filtered)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    out["peak_rss_mib"] = _rss_mib()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark QN targets and dataset zips.")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.keep)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        info = setup(root, args.samples, args.genes, args.seed)
        result: dict = {
            "samples": args.samples,
            "genes": args.genes,
            **info,
            "setup_seconds": round(time.perf_counter() - t0, 3),
            "setup_peak_rss_mib": _rss_mib(),
        }
        for phase in ("qn_target", "dataset_species_standard", "dataset_experiment"):
            t1 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, __file__, "--child", phase, "--keep", str(root)],
                check=True,
                capture_output=True,
                text=True,
            )
            step = json.loads(proc.stdout.strip().splitlines()[-1])
            step["process_seconds"] = round(time.perf_counter() - t1, 3)  # with interpreter start + imports
            result[phase] = step
        print(json.dumps(result))


if __name__ == "__main__":
    main()
