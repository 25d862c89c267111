"""Benchmark reference provisioning per platform and the first-sample latency of a bare home.

Usage::

    uv run python benchmarks/bench_references.py [--data ../shared/data] [--work /tmp/bench-refs]

Phases (each timed on its own, one process):

1. **Provisioning** through :class:`refine_assets.lib.references.provision.ReferenceProvider`, exactly
   as processing does it (catalogue look-up -> download through the fetcher -> read the package ->
   Parquet -> record), from the offline catalogue of ``refine_assets/demo/references.py`` (format-faithful
   packages from real Debian data) plus two synthetic probe packages of the sizes of HG-U133 Plus 2
   (604,258 PM probes) and a Gene ST chip (1,100,000 probes), written by R's ``save()``; then the SCAN
   preparation of each probe table (``prepare_scan_probes``: SCAN order + 80-column design), done once
   per chip and run. Downloads are local copies (replay), so network time is not included.
2. **First-sample latency**: ``refine-assets process E-MTAB-3050`` (survey, references, SCANfast of the
   real C30057 array, warehouse) in a new, empty home, then with the references already built (the
   processed outputs removed), each a fresh process; wall time.

Needs ``../shared/data``, the Debian demo data (``refine-assets fetch-demo-data``) and R. Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _synthetic_probe_package(out: Path, name: str, n_probes: int, cols: int, seed: int) -> Path:
    import numpy as np
    import pandas as pd

    from refine_assets.lib.references.package_writer import write_probe_package

    rng = np.random.default_rng(seed)
    cells = rng.choice(cols * cols, size=n_probes, replace=False)
    codes = rng.integers(0, 4, size=(n_probes, 25), dtype=np.uint8)
    seq = np.frombuffer(np.frombuffer(b"ACGT", dtype=np.uint8)[codes].tobytes(), dtype="S25").astype(str)
    frame = pd.DataFrame(
        {
            "sequence": seq,
            "x": cells % cols,
            "y": cells // cols,
            "Probe.Set.Name": [f"{i // 11}_at" for i in range(n_probes)],
            "Probe.Interrogation.Position": rng.integers(1, 2000, size=n_probes),
            "Target.Strandedness": "Antisense",
        }
    )
    return write_probe_package(
        frame, out, name, "0.0.1", title=name, description="synthetic benchmark package"
    )


def provisioning(work: Path, demo_data: Path) -> dict:
    from refine_assets.demo.references import build_hgu95av2_catalogue
    from refine_assets.lib.affy.probes import read_probe_table_parquet
    from refine_assets.lib.affy.scan_affy import prepare_scan_probes
    from refine_assets.lib.http import ReplayHttpClient
    from refine_assets.lib.processing.fetch import ReplayFetcher
    from refine_assets.lib.references.provision import ReferenceProvider
    from refine_assets.lib.references.sources import ReferenceLocator
    from refine_assets.lib.storage import open_store

    versions = {k: r["version"] for k, r in json.loads((demo_data / "demo_data.json").read_text()).items()}
    t0 = time.perf_counter()
    synthetic = [
        _synthetic_probe_package(work / "synthetic", "hgu133plus2probe", 604_258, 1164, 1),
        _synthetic_probe_package(work / "synthetic", "hugene10stprobe", 1_100_000, 1050, 2),
    ]
    catalogue = build_hgu95av2_catalogue(
        demo_data, work / "catalogue", versions=versions, extra_packages=tuple(synthetic)
    )
    catalogue_s = time.perf_counter() - t0
    store = open_store(str(work / "store"))
    provider = ReferenceProvider(
        store,
        ReferenceLocator(ReplayHttpClient(files=catalogue.http_files)),
        ReplayFetcher(catalogue.downloads, work / "fetch").fetch,
    )
    out: dict = {"catalogue_build_s": round(catalogue_s, 2), "references": []}
    cols = {"hgu95av2": 640, "hgu133plus2": 1164, "hugene10st": 1050}
    for kind, name in [
        ("probes", "hgu95av2"),
        ("brainarray", "hgu95av2"),
        ("annotation", "hgu95av2"),
        ("probes", "hgu133plus2"),
        ("probes", "hugene10st"),
        ("crosswalk", "HOMO_SAPIENS"),
    ]:
        t = time.perf_counter()
        record = provider.get(kind, name)
        row = {"kind": kind, "name": name, "provision_s": round(time.perf_counter() - t, 2)}
        row["details"] = {k: v for k, v in record["details"].items() if isinstance(v, int)}
        if kind == "probes":
            t = time.perf_counter()
            with store.local_path(record["key"]) as path:
                table = read_probe_table_parquet(path)
            prepare_scan_probes(table, cols[name])
            row["scan_preparation_s"] = round(time.perf_counter() - t, 2)
        out["references"].append(row)
    return out


def first_sample_latency(work: Path, data: Path) -> dict:
    exe = Path(sys.executable).with_name("refine-assets")
    catalogue = work / "catalogue"
    files = work / "files"
    files.mkdir(exist_ok=True)
    if not (files / "C30057.CEL.gz").exists():
        (files / "C30057.CEL.gz").symlink_to(data / "microarray/C30057.CEL.gz")
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, REFINE_ASSETS_HOME=str(home))
    env.pop("DAGSTER_HOME", None)
    args = [
        str(exe),
        "process",
        "E-MTAB-3050",
        "--replay",
        str(data / "cassettes"),
        "--replay",
        str(catalogue),
    ]
    args += ["--files", str(files)]
    out = {}
    for label in ("bare_home_s", "references_built_s"):
        if label == "references_built_s":
            shutil.rmtree(home / "storage" / "processed", ignore_errors=True)
        t = time.perf_counter()
        proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO)
        out[label] = round(time.perf_counter() - t, 1)
        if proc.returncode != 0:
            raise SystemExit(f"process failed: {proc.stderr[-2000:]}")
        out["summary"] = {k: v for k, v in json.loads(proc.stdout).items() if k in ("samples", "processed")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("REFINE_ASSETS_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument(
        "--demo-data", type=Path, default=Path.home() / ".cache/refine-assets-tests/demo_data"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-references"))
    args = parser.parse_args()
    from refine_assets.demo.data import fetch_demo_data

    fetch_demo_data(args.demo_data)
    shutil.rmtree(args.work / "store", ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    result = {"provisioning": provisioning(args.work, args.demo_data)}
    result["first_sample"] = first_sample_latency(args.work, args.data)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
