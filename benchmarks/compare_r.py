"""Every native method side by side with its R reference, in one run: time ratios and equality.

Usage::

    uv run python benchmarks/compare_r.py [--data ../shared/data] [--repeat 5] [--only nec,cel,tximport,qn]
                                          [--nec-probes 48000] [--nec-samples 100]
                                          [--qn-genes 20000] [--qn-samples 1000] [--json OUT.json]

The R references are the Debian packages ``scripts/setup.sh`` installs: limma 3.54 (``nec``), affyio
1.68 (``read.celfile``), tximport 1.26 (``tximport``) and preprocessCore 1.60
(``normalize.quantiles.use.target``, ``normalize.quantiles.determine.target``). SCAN.UPC is not in
Debian and its source is not here, so SCAN is not compared (``bench_scan.py`` times it alone).

One persistent R session (``R --vanilla``) per run holds the same inputs as this process (exchanged
once as float64 binaries, outside the timings). For every method the native call and the R call
alternate ``--repeat`` times; each side is timed around the call only (``time.perf_counter`` here,
``proc.time()`` in R) and the medians are compared: ratio = R median / native median. CEL files are
also read once in fresh processes, alternating ``python -c`` and ``Rscript -e`` with the reader
already imported/loaded, because the first read of a process is what a worker pays: ``first_read``
is that call alone, ``process`` the whole process (interpreter start and imports included).

After the timings the last R result is compared with the native one at the tolerance the tests and
``docs/`` state: nec 1e-10 absolute (``docs/illumina.md``), CEL values exact (affyio parses with C
``atof`` and reads the binary formats' float32 as such), tximport 1e-9 relative
(``docs/tximport.md``), QN 1e-12 absolute and its target 1e-12 relative
(``docs/quantile-normalization.md``). Inputs: nec on a synthetic BeadChip matrix
(``refine_assets_tests.illumina_generator``, 48,000 probes x 100 arrays by default, bench_illumina's
size); CEL files C30057 (text v3), Mouse430_2_97 (Calvin) and C30057 written as XDA v4; tximport on
the 20 real SRP095529 quant.sf files (lengthScaledTPM, tx2gene read inside both timings); QN on a
20,000 x 1,000 standard-normal column-major matrix (R's layout) with a target of the same length,
on one thread and on two.

Prints a table and one JSON line (also written to ``--json``) with the machine, the date, the load
average before and after, every median, the ratios and the equality checks. No test asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MARK = "@@RESULT"


class RSession:
    """A persistent ``R --vanilla`` reading code from a pipe; :meth:`run` returns the JSON it prints."""

    def __init__(self, packages: list[str]) -> None:
        self.proc = subprocess.Popen(
            ["R", "--vanilla", "--quiet", "--no-echo"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        loads = "; ".join(f"suppressPackageStartupMessages(library({p}))" for p in ["jsonlite", *packages])
        self.run(f"{loads}; list(ok = TRUE)")

    def run(self, code: str) -> dict:
        """Evaluate ``code`` (its value must be a list) and return that list as a dict."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        wrapped = (
            f"local({{ .r <- tryCatch({{ {code} }}, error = function(e) list(error = conditionMessage(e))); "
            f'cat("{MARK}", as.character(toJSON(.r, auto_unbox = TRUE, digits = NA)), "\\n", sep = " "); '
            "flush(stdout()) }, envir = globalenv())\n"
        )
        self.proc.stdin.write(wrapped)
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("R session ended unexpectedly")
            if line.startswith(MARK):
                out = json.loads(line[len(MARK) :])
                if isinstance(out, dict) and "error" in out:
                    raise RuntimeError(f"R: {out['error']}")
                return out

    def timed(self, expr: str, assign: str = ".last") -> float:
        """Seconds R needs for ``expr`` (its value kept in ``assign`` for the equality check)."""
        out = self.run(
            f't0 <- proc.time()[["elapsed"]]; {assign} <<- {expr}; list(s = proc.time()[["elapsed"]] - t0)'
        )
        return float(out["s"])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("q(save = 'no')\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


def write_f64(path: Path, a: np.ndarray) -> None:
    """A matrix as R reads it with ``readBin``: column-major float64."""
    np.asarray(a, dtype="<f8").ravel(order="F").tofile(path)


def read_f64(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    return np.fromfile(path, dtype="<f8").reshape(shape, order="F")


def alternate(repeat: int, ours: Callable[[], object], theirs: Callable[[], float]) -> tuple[list, list]:
    """Native and R runs alternating; returns (native seconds, R seconds)."""
    mine, ref = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        mine.append(time.perf_counter() - t0)
        ref.append(theirs())
    return mine, ref


def summary(mine: list[float], ref: list[float]) -> dict:
    m, r = statistics.median(mine), statistics.median(ref)
    return {
        "native_median_s": round(m, 4),
        "r_median_s": round(r, 4),
        "ratio": round(r / m, 2),
        "native_s": [round(x, 4) for x in mine],
        "r_s": [round(x, 4) for x in ref],
    }


# --------------------------------------------------------------------------------------------------
# methods


def compare_nec(r: RSession, tmp: Path, repeat: int, probes: int, samples: int) -> dict:
    from refine_assets.lib.illumina.nec import nec
    from refine_assets_tests.illumina_generator import simulate_beadchip

    sim = simulate_beadchip(probes, samples, seed=1)
    x, p = np.asfortranarray(sim.signal), np.asfortranarray(sim.detection_p)
    write_f64(tmp / "x.bin", x)
    write_f64(tmp / "p.bin", p)
    r.run(
        f'x <<- matrix(readBin("{tmp / "x.bin"}", "double", {x.size}), {probes}); '
        f'p <<- matrix(readBin("{tmp / "p.bin"}", "double", {p.size}), {probes}); list(ok = TRUE)'
    )
    mine, ref = alternate(repeat, lambda: nec(x, p), lambda: r.timed("nec(x, detection.p = p)"))
    r.run(f'writeBin(as.vector(.last), "{tmp / "nec.bin"}"); list(ok = TRUE)')
    diff = float(np.max(np.abs(nec(x, p).values - read_f64(tmp / "nec.bin", x.shape))))
    return {
        "what": f"limma nec, {probes:,} probes x {samples} arrays (detection p-values)",
        **summary(mine, ref),
        "max_abs_diff": diff,
        "tolerance": 1e-10,
        "equal": diff <= 1e-10,
    }


_CEL_PY = """
import json, sys, time
t0 = time.perf_counter()
from refine_assets.lib.affy.cel import read_cel
t1 = time.perf_counter()
read_cel(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_read_s": t2 - t1}))
"""

_CEL_R = """
t0 <- proc.time()[["elapsed"]]
suppressPackageStartupMessages(library(affyio))
t1 <- proc.time()[["elapsed"]]
x <- read.celfile(commandArgs(TRUE)[1], intensity.means.only = FALSE)
t2 <- proc.time()[["elapsed"]]
cat(sprintf('{"import_s": %.4f, "first_read_s": %.4f}\\n', t1 - t0, t2 - t1))
"""


def _fresh(cmd: list[str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    wall = time.perf_counter() - t0
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def compare_cel(r: RSession, tmp: Path, repeat: int, data: Path) -> dict:
    from refine_assets.lib.affy.cel import read_cel, write_cel_v4

    micro = data / "microarray"
    files = {
        "text_v3_C30057": micro / "C30057.CEL.gz",
        "calvin_Mouse430_2": micro / "Mouse430_2_97.CEL.gz",
        "xda_v4_C30057": write_cel_v4(read_cel(micro / "C30057.CEL.gz"), tmp / "C30057_v4.CEL"),
    }
    out: dict = {"what": "affyio read.celfile vs read_cel (gunzip included)"}
    for label, path in files.items():
        first_mine, first_ref, proc_mine, proc_ref, imp_mine, imp_ref = [], [], [], [], [], []
        for _ in range(repeat):
            res, wall = _fresh([sys.executable, "-c", _CEL_PY, str(path)])
            first_mine.append(res["first_read_s"])
            imp_mine.append(res["import_s"])
            proc_mine.append(wall)
            res, wall = _fresh(["Rscript", "-e", _CEL_R, str(path)])
            first_ref.append(res["first_read_s"])
            imp_ref.append(res["import_s"])
            proc_ref.append(wall)
        r.run(f'f <<- "{path}"; list(ok = TRUE)')
        read_cel(path)
        warm_mine, warm_ref = alternate(
            repeat,
            lambda p=path: read_cel(p),
            lambda: r.timed("read.celfile(f, intensity.means.only = FALSE)"),
        )
        cel = read_cel(path)
        counts = r.run(
            f"i <- .last$INTENSITY; writeBin(c(i$MEAN, i$STDEV, as.double(i$NPIXELS)), "
            f'"{tmp / "cel.bin"}"); list(o = NROW(.last$OUTLIERS), m = NROW(.last$MASKS))'
        )
        ref = np.fromfile(tmp / "cel.bin", dtype="<f8").reshape(3, -1)
        equal = (
            np.array_equal(cel.intensities, ref[0])
            and np.array_equal(cel.stdev, ref[1])
            and np.array_equal(cel.npixels.astype(float), ref[2])
            and counts["o"] == cel.outliers.shape[0]
            and counts["m"] == cel.masks.shape[0]
        )
        out[label] = {
            "first_read": summary(first_mine, first_ref),
            "process": summary(proc_mine, proc_ref),
            "import_native_median_s": round(statistics.median(imp_mine), 4),
            "library_r_median_s": round(statistics.median(imp_ref), 4),
            "warm": summary(warm_mine, warm_ref),
            "cells": cel.num_cells,
            "equal": bool(equal),
            "tolerance": 0.0,
        }
    out["equal"] = all(v["equal"] for k, v in out.items() if isinstance(v, dict))
    return out


def compare_tximport(r: RSession, tmp: Path, repeat: int, data: Path) -> dict:
    from refine_assets.lib.rnaseq.tximport import tximport_files

    srp = data / "rnaseq" / "SRP095529"
    runs = sorted(p for p in srp.iterdir() if p.is_dir())
    t2g = data / "rnaseq" / "ZEBRAFISH_INDEX_SHORT" / "genes_to_transcripts.txt.gz"
    files = ", ".join(f'"{p / "quant.sf.gz"}"' for p in runs)
    names = ", ".join(f'"{p.name}"' for p in runs)
    r.run(f"files <<- setNames(c({files}), c({names})); list(ok = TRUE)")
    expr = (
        f'{{ t2g <- read.delim(gzfile("{t2g}"), header = FALSE, colClasses = "character")[, c(2, 1)]; '
        'suppressMessages(tximport(files, type = "salmon", tx2gene = t2g, '
        'countsFromAbundance = "lengthScaledTPM")) }'
    )
    mine, ref = alternate(repeat, lambda: tximport_files(runs, t2g, "lengthScaledTPM"), lambda: r.timed(expr))
    res = tximport_files(runs, t2g, "lengthScaledTPM")
    worst = 0.0
    for what in ("abundance", "counts", "length"):
        r.run(
            f'm <- .last${what}[order(rownames(.last${what})), ]; writeBin(as.vector(m), "{tmp / "t.bin"}"); '
            f'writeLines(rownames(m), "{tmp / "t.txt"}"); list(ok = TRUE)'
        )
        genes = (tmp / "t.txt").read_text().split()
        ours = getattr(res, what).loc[genes].to_numpy()
        theirs = read_f64(tmp / "t.bin", ours.shape)
        both = ~np.isnan(theirs)
        assert np.array_equal(np.isnan(ours), ~both), what
        rel = np.abs(ours[both] - theirs[both]) / np.maximum(np.abs(theirs[both]), 1e-300)
        worst = max(worst, float(rel.max()))
    return {
        "what": f"tximport lengthScaledTPM, {len(runs)} real SRP095529 runs (read quant.sf + tx2gene + summarise)",
        **summary(mine, ref),
        "max_rel_diff": worst,
        "tolerance": 1e-9,
        "equal": worst <= 1e-9,
    }


def compare_qn(r: RSession, tmp: Path, repeat: int, genes: int, samples: int) -> dict:
    from refine_assets.lib.qn import determine_target, quantile_normalize_to_target

    rng = np.random.default_rng(0)
    x = np.asfortranarray(rng.standard_normal((genes, samples)))
    target = np.sort(rng.standard_normal(genes))
    write_f64(tmp / "qx.bin", x)
    write_f64(tmp / "qt.bin", target)
    r.run(
        f'qn_x <<- matrix(readBin("{tmp / "qx.bin"}", "double", {x.size}), {genes}); '
        f'qn_t <<- readBin("{tmp / "qt.bin"}", "double", {genes}); list(ok = TRUE)'
    )
    out_buf = np.empty_like(x)
    out: dict = {"what": f"preprocessCore, {genes:,} x {samples:,} column-major float64"}
    for workers in (1, 2):
        mine, ref = alternate(
            repeat,
            lambda w=workers: quantile_normalize_to_target(x, target, workers=w, out=out_buf),
            lambda: r.timed("normalize.quantiles.use.target(qn_x, qn_t)"),
        )
        out[f"use_target_{workers}_thread{'s' if workers > 1 else ''}"] = summary(mine, ref)
    r.run(f'writeBin(as.vector(.last), "{tmp / "qn.bin"}"); list(ok = TRUE)')
    diff = float(np.max(np.abs(quantile_normalize_to_target(x, target) - read_f64(tmp / "qn.bin", x.shape))))
    mine, ref = alternate(
        repeat, lambda: determine_target(x), lambda: r.timed("normalize.quantiles.determine.target(qn_x)")
    )
    out["determine_target"] = summary(mine, ref)
    r.run(f'writeBin(as.vector(.last), "{tmp / "qd.bin"}"); list(ok = TRUE)')
    theirs = np.fromfile(tmp / "qd.bin", dtype="<f8")
    rel = float(np.max(np.abs(determine_target(x) - theirs) / np.abs(theirs)))
    out.update(
        {
            "use_target_max_abs_diff": diff,
            "determine_target_max_rel_diff": rel,
            "tolerance": 1e-12,
            "equal": diff <= 1e-12 and rel <= 1e-12,
        }
    )
    return out


# --------------------------------------------------------------------------------------------------


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    r_version = subprocess.run(["R", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "r": r_version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="nec,cel,tximport,qn")
    parser.add_argument("--nec-probes", type=int, default=48000)
    parser.add_argument("--nec-samples", type=int, default=100)
    parser.add_argument("--qn-genes", type=int, default=20000)
    parser.add_argument("--qn-samples", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    only = [m.strip() for m in args.only.split(",") if m.strip()]
    if ({"cel", "tximport"} & set(only)) and not (args.data / "MANIFEST.md").is_file():
        sys.exit(f"shared data not found under {args.data} (needed for cel and tximport)")
    record: dict = {
        "benchmark": "compare_r",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_before": [round(v, 2) for v in os.getloadavg()],
        "repeat": args.repeat,
    }
    packages = {"nec": "limma", "cel": "affyio", "tximport": "tximport", "qn": "preprocessCore"}
    r = RSession([packages[m] for m in only])
    try:
        with tempfile.TemporaryDirectory(prefix="compare-r-") as name:
            tmp = Path(name)
            for method in only:
                print(f"== {method}", file=sys.stderr, flush=True)
                if method == "nec":
                    record["nec"] = compare_nec(r, tmp, args.repeat, args.nec_probes, args.nec_samples)
                elif method == "cel":
                    record["cel"] = compare_cel(r, tmp, args.repeat, args.data)
                elif method == "tximport":
                    record["tximport"] = compare_tximport(r, tmp, args.repeat, args.data)
                elif method == "qn":
                    record["qn"] = compare_qn(r, tmp, args.repeat, args.qn_genes, args.qn_samples)
                else:
                    sys.exit(f"unknown method {method!r}")
    finally:
        r.close()
    record["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print_table(record)
    line = json.dumps(record)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


def print_table(record: dict) -> None:
    rows = []

    def add(name: str, s: dict, equal: bool | None) -> None:
        eq = "" if equal is None else ("equal" if equal else "DIFFERENT")
        rows.append((name, f"{s['r_median_s']:.3f}", f"{s['native_median_s']:.3f}", f"{s['ratio']:.1f}x", eq))

    if "nec" in record:
        add("nec", record["nec"], record["nec"]["equal"])
    if "cel" in record:
        for label, v in record["cel"].items():
            if isinstance(v, dict):
                add(f"CEL {label}, first read", v["first_read"], v["equal"])
                add(f"CEL {label}, whole process", v["process"], None)
                add(f"CEL {label}, warm", v["warm"], None)
    if "tximport" in record:
        add("tximport (20 runs)", record["tximport"], record["tximport"]["equal"])
    if "qn" in record:
        q = record["qn"]
        add("QN use.target, 1 thread", q["use_target_1_thread"], q["equal"])
        add("QN use.target, 2 threads", q["use_target_2_threads"], None)
        add("QN determine.target", q["determine_target"], None)
    width = max(len(r[0]) for r in rows)
    print(f"{'method':<{width}}  {'R (s)':>8}  {'ours (s)':>8}  {'R/ours':>7}  result", file=sys.stderr)
    for name, rs, ours, ratio, eq in rows:
        print(f"{name:<{width}}  {rs:>8}  {ours:>8}  {ratio:>7}  {eq}", file=sys.stderr)
    print(f"load average before {record['load_before']}, after {record['load_after']}", file=sys.stderr)


if __name__ == "__main__":
    main()
