"""Benchmark the expression store: one gene across 20,000 and 100,000 samples, and the incremental build.

Usage::

    uv run python benchmarks/bench_expression.py [--samples 20000,100000] [--genes 20000]
        [--per-experiment 50] [--baseline-files 2000] [--incremental-experiments 10] [--workdir DIR] [--keep]

**Gene look-up** (for each ``--samples`` N): N synthetic human samples of ``--genes`` genes in experiments of
``--per-experiment`` samples, one part per experiment written by the store's own writer
(``expression_store.PartInput`` + ``write_part``, exactly what the compaction writes after reading and
cleaning the vectors; the per-sample vector files are not generated at this size), and a warehouse with ``samples``, ``sample_harmonized``,
``expression_parts``, ``expression_samples`` and the ``expression`` views (``create_expression_views``).
Then, each in a **fresh process**, once after dropping the page cache (``/proc/sys/vm/drop_caches``,
when permitted: "cold") and once again ("warm"):

* ``readme``: the README's query - ENSG00000141510 across all human samples joined with
  ``samples_harmonized`` (sex, tissue), one row per sample;
* ``gene``: ``SELECT sample_accession, value FROM expression WHERE gene_id = ?``.

Measured: wall seconds of the query alone, bytes the process read (``rchar`` of ``/proc/self/io``: every
``read``/``pread``, cached or not) and from disk (``read_bytes``), rows, and the store's total size.

**Baseline without the store** (``--baseline-files``): the same look-up over per-sample vector files
(``processed/<EXP>/<SAMPLE>.parquet`` as ``write_vector`` writes them) with DuckDB's
``read_parquet(glob) WHERE id = ?``: every file is opened. Reported per file, and scaled to N.

**Incremental build** (``--incremental-experiments`` K): K experiments of ``--per-experiment`` samples
written as production writes them (survey, ``write_vector``, ``write_ledger``), a full warehouse build
(compacting all K), then one more experiment and a second build: its wall time, the experiments
compacted, the bytes written under ``expression/`` and whether any other part changed. (Run from the
repository root: the experiments are written by ``refine_assets_tests.unit.test_delivery_world``.)

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TP53 = "ENSG00000141510"
README_QUERY = """
SELECT e.sample_accession, e.experiment_accession, h.refinebio_sex, h.refinebio_specimen_part, e.value, e.value_scale
FROM expression e
JOIN samples_harmonized h
  ON h.refinebio_accession_code = e.sample_accession AND h.experiment_accession = e.experiment_accession
WHERE e.gene_id = '{gene}' AND e.organism = 'HOMO_SAPIENS'
ORDER BY e.sample_accession
"""
GENE_QUERY = "SELECT sample_accession, value FROM expression WHERE gene_id = '{gene}'"
BASELINE_QUERY = "SELECT filename, value FROM read_parquet('{glob}', filename = true) WHERE id = '{gene}'"


def _io() -> dict[str, int]:
    out = {}
    with open("/proc/self/io") as fh:
        for line in fh:
            key, value = line.split(":")
            out[key] = int(value)
    return out


def _drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("1\n")
        return True
    except OSError:
        return False


def run_query(db: str, sql: str) -> dict:
    """Child mode: one query on a fresh read-only connection; time and I/O of the query alone."""
    import duckdb

    con = duckdb.connect(db, read_only=True)
    before, t0 = _io(), time.perf_counter()
    rows = con.execute(sql).fetchall()
    seconds, after = time.perf_counter() - t0, _io()
    return {
        "seconds": round(seconds, 3),
        "rchar": after["rchar"] - before["rchar"],
        "read_bytes": after["read_bytes"] - before["read_bytes"],
        "rows": len(rows),
        "distinct_samples": len({r[0] for r in rows}),
    }


def _child(db: Path, sql: str, cold: bool) -> dict:
    dropped = _drop_caches() if cold else False
    proc = subprocess.run(
        [sys.executable, __file__, "--query-db", str(db), "--query-sql", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["cache_dropped"] = dropped
    return out


def _genes(n: int):
    import numpy as np

    ids = [f"ENSG{i:011d}" for i in range(1, n + 1)]
    if TP53 not in ids:
        ids[len(ids) // 2] = TP53
    return np.array(sorted(ids), dtype=object)


def build_lookup_store(root: Path, n_samples: int, n_genes: int, per_exp: int, seed: int) -> dict:
    """Parts for ``n_samples`` samples and a warehouse with the expression views; returns sizes/times."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    from refine_assets.lib.delivery.expression_store import (
        PartInput,
        create_expression_views,
        part_key,
        write_part,
    )
    from refine_assets.lib.storage import LocalArtifactStore
    from refine_assets.lib.warehouse import apply_schema

    store = LocalArtifactStore(root / "store")
    genes = pa.array(_genes(n_genes).tolist(), pa.string())
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    parts, samples = [], []
    for e in range(0, n_samples, per_exp):
        exp = f"GSE{100000 + e // per_exp}"
        names = [f"GSM{1000000 + e + k}" for k in range(min(per_exp, n_samples - e))]
        part = PartInput()
        for name in names:
            part.add(name, genes, rng.normal(0.5, 1.2, n_genes), "scan")
        key = part_key("HOMO_SAPIENS", "GPL570", exp)
        p = write_part(store, key, part)
        parts.append(
            (exp, "HOMO_SAPIENS", "GPL570", key, p["url"], p["sha256"], p["size"], len(names), p["num_rows"])
        )
        samples += [(s, exp) for s in names]
    write_seconds = time.perf_counter() - t0
    db = root / "warehouse.duckdb"
    con = duckdb.connect(str(db))
    apply_schema(con)
    sex = np.array(["female", "male", None], dtype=object)[rng.integers(0, 3, len(samples))]
    tissue = np.array(["kidney", "liver", "blood", None], dtype=object)[rng.integers(0, 4, len(samples))]
    tables = {
        "p": pa.table(list(zip(*parts, strict=True)), names=["e", "o", "pl", "k", "u", "s", "z", "n", "r"]),
        "x": pa.table({"sample": [s for s, _ in samples], "exp": [e for _, e in samples]}),
        "h": pa.table(
            {"sample": [s for s, _ in samples], "exp": [e for _, e in samples], "sex": sex, "tissue": tissue}
        ),
    }
    for name, table in tables.items():
        con.register(name, table)
    con.execute("INSERT INTO expression_parts SELECT e, o, pl, k, u, s, z, n, r, now() FROM p")
    con.execute(
        "INSERT INTO expression_samples SELECT sample, exp, 'HOMO_SAPIENS', 'GPL570', 'affy_scan', 'scan', "
        "NULL, NULL, NULL, ?, ?, 0, 0, 0, now() FROM x",
        [n_genes, n_genes],
    )
    con.execute(
        "INSERT INTO samples (accession, experiment_accession, source_database, organism, platform_accession, "
        "technology, manufacturer, has_raw, pipeline) "
        "SELECT sample, exp, 'GEO', 'HOMO_SAPIENS', 'GPL570', 'MICROARRAY', 'AFFYMETRIX', true, 'AFFY_TO_PCL' FROM x"
    )
    con.execute(
        "INSERT INTO sample_harmonized (sample_accession, experiment_accession, sex, specimen_part) "
        "SELECT sample, exp, sex, tissue FROM h"
    )
    create_expression_views(con, store)
    con.execute("CHECKPOINT")
    con.close()
    return {
        "db": db,
        "parts": len(parts),
        "store_bytes": sum(p[6] for p in parts),
        "write_seconds": round(write_seconds, 1),
    }


def baseline(root: Path, n_files: int, n_genes: int, seed: int) -> dict:
    """One gene over ``n_files`` per-sample vector files, without the store."""
    import duckdb
    import numpy as np
    import pandas as pd

    from refine_assets.lib.processing.vectors import vector_key, write_vector
    from refine_assets.lib.storage import LocalArtifactStore

    store = LocalArtifactStore(root / "vectors")
    genes = _genes(n_genes)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for k in range(n_files):
        write_vector(
            store,
            vector_key(f"GSE{k // 50}", f"GSM{k}"),
            pd.Series(rng.normal(0.5, 1.2, n_genes), index=genes),
        )
    write_seconds = time.perf_counter() - t0
    db = root / "empty.duckdb"
    duckdb.connect(str(db)).close()
    glob = f"{root}/vectors/processed/*/*.parquet"
    sql = BASELINE_QUERY.format(glob=glob, gene=TP53)
    cold, warm = _child(db, sql, True), _child(db, sql, False)
    total = sum(p.stat().st_size for p in (root / "vectors").rglob("*.parquet"))
    return {
        "files": n_files,
        "files_bytes": total,
        "write_seconds": round(write_seconds, 1),
        "cold": cold,
        "warm": warm,
        "rchar_per_file": round(warm["rchar"] / n_files),
        "seconds_per_1000_files_warm": round(warm["seconds"] / n_files * 1000, 3),
    }


def incremental(root: Path, n_exps: int, per_exp: int, n_genes: int, seed: int) -> dict:
    """Full build of ``n_exps`` experiments, then one more experiment and an incremental build.

    Experiments are written by the delivery tests' world writer (survey through ``write_survey``, vectors
    through ``write_vector``, ledger through ``write_ledger``: as production writes them).
    """
    import numpy as np
    import pandas as pd

    from refine_assets.lib.storage import LocalArtifactStore
    from refine_assets.lib.warehouse import build_warehouse
    from refine_assets_tests.unit.test_delivery_world import affy, write_experiment

    store = LocalArtifactStore(root / "store")
    genes = _genes(n_genes)
    rng = np.random.default_rng(seed)

    def experiment(e: int) -> None:
        samples = [
            affy(
                f"GSM{2000000 + e * per_exp + k}",
                values=pd.Series(rng.normal(0.5, 1.2, n_genes), index=genes),
            )
            for k in range(per_exp)
        ]
        write_experiment(store, f"GSE{200000 + e}", samples)

    t0 = time.perf_counter()
    for e in range(n_exps):
        experiment(e)
    setup_seconds = time.perf_counter() - t0
    db = root / "warehouse.duckdb"
    t0 = time.perf_counter()
    full = build_warehouse(db, store)
    full_seconds = time.perf_counter() - t0

    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            k: (store.size(k), store.path_for(k).stat().st_mtime_ns) for k in store.list_keys("expression/")
        }

    before = snapshot()
    experiment(n_exps)
    t0 = time.perf_counter()
    report = build_warehouse(db, store)
    inc_seconds = time.perf_counter() - t0
    after = snapshot()
    changed = [k for k in after if before.get(k) != after[k]]
    return {
        "experiments": n_exps,
        "samples_per_experiment": per_exp,
        "setup_seconds": round(setup_seconds, 1),
        "full_build_seconds": round(full_seconds, 2),
        "full_build_compacted": len(full.expression_compacted),
        "incremental_build_seconds": round(inc_seconds, 2),
        "incremental_compacted": report.expression_compacted,
        "parts_written": changed,
        "bytes_written": sum(after[k][0] for k in changed),
        "other_parts_unchanged": all(after[k] == before[k] for k in before),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", default="20000,100000")
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--per-experiment", type=int, default=50)
    ap.add_argument("--baseline-files", type=int, default=2000)
    ap.add_argument("--incremental-experiments", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--query-db", help=argparse.SUPPRESS)
    ap.add_argument("--query-sql", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.query_db:
        print(json.dumps(run_query(args.query_db, args.query_sql)))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-expression-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"genes": args.genes, "per_experiment": args.per_experiment, "lookup": {}}
    try:
        for n in [int(x) for x in args.samples.split(",") if x]:
            root = work / f"lookup-{n}"
            built = build_lookup_store(root, n, args.genes, args.per_experiment, args.seed)
            runs = {}
            for name, sql in (("readme", README_QUERY), ("gene", GENE_QUERY)):
                sql = sql.format(gene=TP53)
                runs[name] = {"cold": _child(built["db"], sql, True), "warm": _child(built["db"], sql, False)}
            built.pop("db")
            result["lookup"][n] = {**built, **runs}
            if not args.keep:
                shutil.rmtree(root)
            print(json.dumps({n: result["lookup"][n]}), file=sys.stderr)
        if args.baseline_files:
            result["baseline"] = baseline(work / "baseline", args.baseline_files, args.genes, args.seed)
            if not args.keep:
                shutil.rmtree(work / "baseline")
            print(json.dumps({"baseline": result["baseline"]}), file=sys.stderr)
        if args.incremental_experiments:
            result["incremental"] = incremental(
                work / "incremental", args.incremental_experiments, args.per_experiment, args.genes, args.seed
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
