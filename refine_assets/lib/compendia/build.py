"""Build a species compendium: assemble, filter, impute (IterativeSVD), quantile-normalize, KS gate, publish.

refine.bio's ``create_compendia`` (``refinebio-teardown.md`` §8.2) redone for one machine of modest
memory (refine.bio asked AWS Batch for 950 GB for human and mouse, §8.4):

1. ``assemble.assemble_matrix``: per-sample Parquet vectors -> float32 genes x samples memmap (two
   streaming passes; gene universe = ids in > 50 % of the samples; microarray columns then RNA-seq).
2. ``filters.apply_filters``: RNA-seq low-count genes (bottom decile of lengthScaledTPM row sums),
   log2(x + 1) once, RNA-seq zeros missing for the filters but kept as 0, genes present in >= 70 %
   of the samples, samples present in >= 50 % of the kept genes.
3. The kept genes x kept samples are copied into a compact memmap; the missing cells are recorded
   (1 bit each) so the output can flag imputed values; ``percent imputed`` = missing cells / cells
   (refine.bio's ``total_percent_imputed``, there a fraction despite the name).
4. ``impute.impute``: IterativeSVD rank 10 (gradual rank increase, zero init, tolerance 1e-5, at most
   200 iterations), native backend in place on the memmap by default, or fancyimpute in memory.
5. ``qn.quantile_normalize_to_target`` to the organism's target, in place, column blocks.
6. ``ks.ks_gate`` per sample against the target (statistic <= 0.1, upper halves); failing samples are
   dropped from the published matrix (``ks_action="drop"``, default) or only flagged ("record").
7. Publication (atomic: everything is written into a temporary sibling folder renamed over
   ``out_dir`` at the end; a failure leaves the previous compendium untouched):

   ``matrix/part-NNNNN.parquet``  long table (gene, sample, value, imputed), sorted by gene then by
   column order, one file per range of ``genes_per_file`` genes, row groups of about 1 M rows — DuckDB
   reads the folder with ``read_parquet('matrix/*.parquet')`` and skips row groups by the gene min/max
   statistics; ``genes.tsv``; ``samples.tsv`` / ``samples.parquet`` (included samples: technology,
   vector key, provenance, values present, fraction imputed, KS result, caller metadata);
   ``filtered_samples.tsv`` / ``.json`` (every excluded sample with its reason); ``metadata.json``
   (counts, percent imputed, parameters, filter and imputation reports, KS summary, QN target,
   versions, timings, peak memory and the memory model); ``README.md`` (how to query); and on request
   refine.bio's layout ``<ORGANISM>/<ORGANISM>.tsv`` + ``metadata_<ORGANISM>.tsv/.json`` +
   ``aggregated_metadata.json`` as loose files (``write_tsv``) or as ``<ORGANISM>.zip`` (``zip_tsv``).

Why long rather than wide Parquet: a wide table has one column per sample (tens of thousands of
columns: huge footers, every row group stores every column's metadata, selecting samples means
generating SQL with thousands of identifiers). The long table is three dictionary-encoded columns plus
a bit column; the value column dominates the size, gene-sorted files make per-gene queries read only
the matching row groups, and ``PIVOT`` rebuilds a wide matrix for any subset.

Memory model (``docs/compendia.md``): the matrix is disk-backed; resident memory is bounded by the page
cache (the matrix once, 4 bytes per value, when it fits; otherwise the passes stream it), plus 1/8
byte per value for the missing-cell bits and per-block buffers.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from refine_assets.lib.compendia.assemble import (
    AssembledMatrix,
    SampleVector,
    assemble_matrix,
)
from refine_assets.lib.compendia.filters import FilterResult, apply_filters
from refine_assets.lib.compendia.impute import ImputeReport, impute
from refine_assets.lib.jsonsafe import json_default, json_safe
from refine_assets.lib.storage import ArtifactStore

__all__ = ["CompendiumError", "CompendiumResult", "build_compendium", "memory_model"]

_ORGANISM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
KS_ACTIONS = ("drop", "record")


class CompendiumError(ValueError):
    """A compendium cannot be built (bad organism name or target, too few samples or genes, ...)."""


@dataclass
class CompendiumResult:
    """What :func:`build_compendium` published.

    ``out_dir``: the published folder; ``files``: role -> path relative to it; ``metadata``: the content
    of ``metadata.json``; ``filtered``: sample -> reason; ``impute``: the imputation report.
    """

    organism: str
    out_dir: Path
    n_genes: int
    n_samples: int
    filtered: dict[str, str]
    percent_imputed: float
    impute: ImputeReport | None
    ks_failed: list[str]
    files: dict[str, str]
    peak_rss_bytes: int
    seconds: dict[str, float]
    metadata: dict = field(default_factory=dict)


def memory_model(
    n_genes: int, n_samples: int, *, rank: int = 10, oversample: int = 10, depth: int = 2
) -> dict:
    """Bytes the native build needs for a genes x samples compendium (see ``docs/compendia.md``).

    ``matrix_bytes`` (float32, disk-backed; the working set of every pass, resident when it fits),
    ``mask_bytes`` (1 bit per value), ``factor_bytes`` (Krylov blocks, float64), ``disk_bytes`` (the
    assembled and the compact matrix exist together during compaction, plus the Parquet output of
    roughly 4-5 bytes per value).
    """
    cells = int(n_genes) * int(n_samples)
    ell = rank + oversample
    factor = 8 * (int(n_genes) + int(n_samples)) * ell * (depth + 2) * 2
    return {
        "bytes_per_value": 4.125,
        "matrix_bytes": 4 * cells,
        "mask_bytes": math.ceil(cells / 8),
        "factor_bytes": factor,
        "resident_estimate_bytes": 4 * cells + math.ceil(cells / 8) + factor,
        "disk_bytes": 8 * cells + 5 * cells,
    }


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _versions(backend: str) -> dict[str, str]:
    import pyarrow
    import scipy

    try:
        from refine_assets.lib.survey.pipeline import code_version

        code = code_version()
    except Exception:  # pragma: no cover - defensive: versions must not fail a build
        code = "0+unknown"
    out = {
        "refine_assets": code,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pyarrow": pyarrow.__version__,
    }
    if backend == "fancyimpute":
        from importlib import metadata

        for pkg in ("fancyimpute", "scikit-learn"):
            try:
                out[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:  # pragma: no cover
                out[pkg] = "unknown"
    return out


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(
        json.dumps(json_safe(obj), indent=2, sort_keys=True, default=json_default, allow_nan=False) + "\n",
        encoding="utf-8",
    )


def _tsv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    if isinstance(v, (dict, list)):
        v = json.dumps(json_safe(v), sort_keys=True, default=json_default)
    return str(v).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _write_tsv(path: Path, rows: list[dict], first: Sequence[str]) -> None:
    keys: list[str] = list(first)
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(keys) + "\n")
        for r in rows:
            fh.write("\t".join(_tsv_cell(r.get(k)) for k in keys) + "\n")


def _flat_metadata(meta: Mapping[str, Any] | None) -> dict:
    return {str(k): v for k, v in (meta or {}).items()}


# --------------------------------------------------------------------------------------------------
# matrix writers


def _write_parquet_parts(
    directory: Path,
    mm: np.ndarray,
    genes: list[str],
    samples: list[str],
    cols: np.ndarray,
    missing_bits: np.ndarray,
    *,
    genes_per_file: int,
    target_row_group_rows: int = 1_000_000,
) -> list[str]:
    """Long Parquet parts (gene, sample, value, imputed) of ``mm[:, cols]`` by gene ranges."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    n_genes = len(genes)
    n_out = int(cols.size)
    sample_dict = pa.array([samples[j] for j in cols], pa.string())
    all_cols = bool(n_out == mm.shape[1]) and bool((cols == np.arange(mm.shape[1])).all())
    genes_per_rg = max(1, target_row_group_rows // max(1, n_out))
    step = max(1, int(genes_per_file))
    schema = pa.schema(
        [
            ("gene", pa.dictionary(pa.int32(), pa.string())),
            ("sample", pa.dictionary(pa.int32(), pa.string())),
            ("value", pa.float32()),
            ("imputed", pa.bool_()),
        ]
    )
    names = []
    n_mask_cols = mm.shape[1]
    for part, g0 in enumerate(range(0, n_genes, step)):
        g1 = min(g0 + step, n_genes)
        name = f"part-{part:05d}.parquet"
        names.append(name)
        with pq.ParquetWriter(directory / name, schema, compression="zstd", write_statistics=True) as w:
            for r0 in range(g0, g1, genes_per_rg):
                r1 = min(r0 + genes_per_rg, g1)
                block = np.asarray(mm[r0:r1, :], dtype=np.float32)
                imp = np.unpackbits(missing_bits[r0:r1], axis=1, count=n_mask_cols).astype(bool)
                if not all_cols:
                    block = block[:, cols]
                    imp = imp[:, cols]
                nb = r1 - r0
                gene_arr = pa.DictionaryArray.from_arrays(
                    pa.array(np.repeat(np.arange(nb, dtype=np.int32), n_out)),
                    pa.array(genes[r0:r1], pa.string()),
                )
                sample_arr = pa.DictionaryArray.from_arrays(
                    pa.array(np.tile(np.arange(n_out, dtype=np.int32), nb)), sample_dict
                )
                table = pa.Table.from_arrays(
                    [
                        gene_arr,
                        sample_arr,
                        pa.array(np.ascontiguousarray(block).reshape(-1)),
                        pa.array(np.ascontiguousarray(imp).reshape(-1)),
                    ],
                    schema=schema,
                )
                w.write_table(table, row_group_size=table.num_rows)
                del block, imp, table
    return names


def _write_matrix_tsv(fh, mm: np.ndarray, genes: list[str], samples: list[str], cols: np.ndarray) -> None:
    """refine.bio's compendium TSV: header ``Gene`` + samples, one row per gene, float32 values."""
    import polars as pl

    fh.write(("\t".join(["Gene", *[samples[j] for j in cols]]) + "\n").encode("utf-8"))
    step = max(1, 4_000_000 // max(1, cols.size))
    for g0 in range(0, len(genes), step):
        g1 = min(g0 + step, len(genes))
        block = np.asarray(mm[g0:g1, :], dtype=np.float32)[:, cols]
        frame = pl.from_numpy(block, schema=[f"c{i}" for i in range(cols.size)], orient="row")
        frame = frame.insert_column(0, pl.Series("Gene", genes[g0:g1], dtype=pl.String))
        frame.write_csv(fh, separator="\t", include_header=False, quote_style="never", null_value="NA")
        del block, frame


# --------------------------------------------------------------------------------------------------
# the build


def _publish(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` over ``out_dir`` (the old folder, if any, is moved aside then removed)."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".refine-old-{out_dir.name}-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_compendium(
    organism: str,
    sample_vectors: Sequence[SampleVector | tuple[str, str, str]],
    store: ArtifactStore,
    out_dir: str | Path,
    target: np.ndarray,
    *,
    rank: int = 10,
    backend: str = "native",
    svd: str = "auto",
    sample_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    target_info: Mapping[str, Any] | None = None,
    low_count_quantile: float = 0.10,
    gene_min_present: float = 0.7,
    sample_min_present: float = 0.5,
    universe_min_presence: float = 0.5,
    convergence_threshold: float = 1e-5,
    max_iters: int = 200,
    ks_action: str = "drop",
    ks_statistic_max: float | None = None,
    ks_method: str = "asymp",
    write_tsv: bool = False,
    zip_tsv: bool = False,
    genes_per_file: int = 1000,
    work_dir: str | Path | None = None,
    workers: int = 4,
    chunk_values: int = 16 * 1024 * 1024,
    log: Callable[[str], None] | None = None,
) -> CompendiumResult:
    """Build and atomically publish the compendium of ``organism`` into ``out_dir``.

    Contract: ``sample_vectors`` = (sample, technology MICROARRAY | RNA-SEQ, storage key of the
    per-sample vector) of the organism's samples processed from raw; ``target`` = the organism's QN
    target (1-D, any order); ``sample_metadata`` = optional extra fields per sample copied into
    ``samples.tsv``/``filtered_samples.tsv``; ``target_info`` is recorded (e.g. key and sha256). The
    sequence, the output files and the differences from refine.bio are in the module docstring and
    ``docs/compendia.md``. Returns a :class:`CompendiumResult`. Raises :class:`CompendiumError` (or the
    ``AssemblyError``/``FilterError``/``ImputeError`` subclasses of ValueError) naming the problem when
    the organism name or target is unusable, nothing can be read, every gene or sample is filtered out,
    fewer than ``rank + 1`` samples or genes remain, or every sample fails the KS gate; nothing is
    published then and ``out_dir`` keeps its previous content.

    Tolerance: the numerical steps are those of ``impute`` (native vs fancyimpute <= 1e-4 RMS),
    ``qn`` (preprocessCore to 1e-12 before the float32 store) and ``ks``; the filters are exact.
    """
    from refine_assets.lib.ks import DEFAULT_STATISTIC_MAX, failed_samples, ks_gate
    from refine_assets.lib.qn import prepare_target, quantile_normalize_to_target

    t_start = time.perf_counter()
    say = log or (lambda _m: None)
    sample_vectors = list(sample_vectors)
    if not isinstance(organism, str) or not _ORGANISM_RE.match(organism):
        raise CompendiumError(f"invalid organism name {organism!r} (letters, digits, '_', '.', '-')")
    if ks_action not in KS_ACTIONS:
        raise CompendiumError(f"ks_action must be one of {KS_ACTIONS}, got {ks_action!r}")
    try:
        tgt = prepare_target(np.asarray(target))
    except ValueError as exc:
        raise CompendiumError(f"{organism}: unusable QN target: {exc}") from None
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:10]
    staging = out_dir.parent / f".refine-tmp-{out_dir.name}-{token}"
    work = (
        Path(work_dir).resolve() / f"compendium-{organism}-{token}"
        if work_dir
        else (out_dir.parent / f".refine-work-{out_dir.name}-{token}")
    )
    staging.mkdir(parents=True)
    work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    meta_in = {str(k): _flat_metadata(v) for k, v in (sample_metadata or {}).items()}
    try:
        # ---- 1. assemble
        t = time.perf_counter()
        am: AssembledMatrix = assemble_matrix(
            sample_vectors,
            store,
            work / "assembled.f32",
            min_presence=universe_min_presence,
            workers=workers,
            log=say,
        )
        seconds["assemble"] = time.perf_counter() - t
        input_tech = {}
        input_key = {}
        for v in sample_vectors:
            sv = v if isinstance(v, SampleVector) else SampleVector(*v)
            input_tech[str(sv.sample)] = str(sv.technology).upper()
            input_key[str(sv.sample)] = str(sv.key)

        # ---- 2. filters (in place on the assembled memmap)
        t = time.perf_counter()
        mm = am.open("r+")
        column_dropped = {s: r for s, r in am.dropped.items() if s in set(am.samples)}
        fr: FilterResult = apply_filters(
            mm,
            am.samples,
            am.technologies,
            low_count_quantile=low_count_quantile,
            gene_min_present=gene_min_present,
            sample_min_present=sample_min_present,
            excluded=column_dropped,
            block_columns=max(1, chunk_values // max(1, len(am.genes))),
        )
        seconds["filters"] = time.perf_counter() - t
        filtered: dict[str, str] = {s: r for s, r in am.dropped.items()}
        filtered.update(fr.filtered)
        gene_idx = np.flatnonzero(fr.genes_kept)
        col_idx = np.flatnonzero(fr.samples_kept)
        n_g, n_s = int(gene_idx.size), int(col_idx.size)
        say(f"filters: {n_g} genes x {n_s} samples kept ({len(filtered)} samples filtered)")
        if n_s <= rank or n_g <= rank:
            raise CompendiumError(
                f"{organism}: only {n_g} genes x {n_s} samples passed the filters; a rank-{rank} imputation "
                f"needs at least {rank + 1} of each"
            )

        # ---- 3. compact copy + missing-cell bits (genes-major, 1 bit per cell)
        t = time.perf_counter()
        comp_path = work / "compendium.f32"
        comp = np.memmap(comp_path, dtype=np.float32, mode="w+", shape=(n_g, n_s), order="F")
        bits = np.zeros((n_g, (n_s + 7) // 8), dtype=np.uint8)
        missing_per_sample = np.zeros(n_s, dtype=np.int64)
        missing_per_gene = np.zeros(n_g, dtype=np.int64)
        step = max(8, (max(1, chunk_values // max(1, n_g)) // 8) * 8)
        for j0 in range(0, n_s, step):
            j1 = min(j0 + step, n_s)
            block = np.asarray(mm[:, col_idx[j0:j1]])[gene_idx]
            comp[:, j0:j1] = block
            miss = np.isnan(block)
            bits[:, j0 // 8 : (j1 + 7) // 8] = np.packbits(miss, axis=1)
            missing_per_sample[j0:j1] = miss.sum(axis=0)
            missing_per_gene += miss.sum(axis=1)
            del block, miss
        comp.flush()
        del mm
        am.path.unlink(missing_ok=True)
        n_missing = int(missing_per_sample.sum())
        seconds["compact"] = time.perf_counter() - t

        # ---- 4. impute
        t = time.perf_counter()
        report: ImputeReport | None = None
        if n_missing:
            if backend == "native":
                _, report = impute(
                    comp,
                    rank,
                    "native",
                    svd=svd,
                    inplace=True,
                    chunk_values=chunk_values,
                    convergence_threshold=convergence_threshold,
                    max_iters=max_iters,
                    progress=lambda i, k, r: say(f"imputation iteration {i} (rank {k}): ratio {r:.3g}"),
                )
            else:
                x = np.array(comp.T)  # samples x genes in memory, refine.bio's orientation
                filled, report = impute(
                    x,
                    rank,
                    backend,
                    svd=svd,
                    convergence_threshold=convergence_threshold,
                    max_iters=max_iters,
                )
                comp[:] = filled.T
                del x, filled
                comp.flush()
        seconds["impute"] = time.perf_counter() - t
        say(f"imputation: {n_missing} cells, {report.iterations if report else 0} iterations")

        # ---- 5. QN (in place) and 6. KS gate
        t = time.perf_counter()
        quantile_normalize_to_target(comp, tgt, out=comp)
        comp.flush()
        seconds["qn"] = time.perf_counter() - t
        t = time.perf_counter()
        kept_samples = [am.samples[j] for j in col_idx]
        ks = ks_gate(
            comp,
            tgt,
            sample_names=kept_samples,
            method=ks_method,
            statistic_max=DEFAULT_STATISTIC_MAX if ks_statistic_max is None else ks_statistic_max,
        )
        seconds["ks"] = time.perf_counter() - t
        ks_fail = failed_samples(ks)
        out_cols = np.arange(n_s)
        if ks_action == "drop" and ks_fail:
            out_cols = np.array([j for j, r in enumerate(ks) if r.passed], dtype=np.int64)
            for s, reason in ks_fail.items():
                filtered[s] = f"failed the KS gate after quantile normalization: {reason}"
            if out_cols.size == 0:
                raise CompendiumError(
                    f"{organism}: every sample failed the KS gate after quantile normalization"
                )

        # ---- 7. write outputs into the staging folder
        t = time.perf_counter()
        genes = [am.genes[i] for i in gene_idx]
        files: dict[str, str] = {}
        parts = _write_parquet_parts(
            staging / "matrix", comp, genes, kept_samples, out_cols, bits, genes_per_file=genes_per_file
        )
        files["matrix"] = "matrix/*.parquet"
        n_out = int(out_cols.size)
        out_missing = int(missing_per_sample[out_cols].sum())
        percent_imputed = 100.0 * out_missing / (n_g * n_out)
        pos = {s: j for j, s in enumerate(am.samples)}
        sample_rows = []
        for j in out_cols:
            s = kept_samples[j]
            col = col_idx[j]
            r = ks[j]
            sample_rows.append(
                {
                    "sample": s,
                    "technology": am.technologies[col],
                    "column": len(sample_rows),
                    "vector_key": am.keys[col],
                    "values_in_vector": int(am.n_values[col]),
                    "values_present": int(n_g - missing_per_sample[j]),
                    "fraction_imputed": float(missing_per_sample[j]) / n_g,
                    "ks_statistic": r.statistic,
                    "ks_pvalue": r.pvalue,
                    "ks_passed": r.passed,
                    "ks_reason": r.reason,
                    "provenance": am.provenance[col],
                    **meta_in.get(s, {}),
                }
            )
        filtered_rows = []
        for s in sorted(filtered):
            row = {
                "sample": s,
                "technology": input_tech.get(s),
                "vector_key": input_key.get(s),
                "reason": filtered[s],
            }
            if s in pos:
                row["values_in_vector"] = int(am.n_values[pos[s]])
            row.update(meta_in.get(s, {}))
            filtered_rows.append(row)
        _write_tsv(staging / "samples.tsv", sample_rows, ["sample", "technology", "column"])
        _samples_parquet(staging / "samples.parquet", sample_rows)
        files["samples"] = "samples.tsv"
        files["samples_parquet"] = "samples.parquet"
        _write_tsv(staging / "filtered_samples.tsv", filtered_rows, ["sample", "technology", "reason"])
        _write_json(staging / "filtered_samples.json", {r["sample"]: r for r in filtered_rows})
        files["filtered_samples"] = "filtered_samples.tsv"
        files["filtered_samples_json"] = "filtered_samples.json"
        out_missing_gene = missing_per_gene
        if out_cols.size != n_s:
            out_missing_gene = np.zeros(n_g, dtype=np.int64)
            for g0 in range(0, n_g, 4096):
                m = np.unpackbits(bits[g0 : g0 + 4096], axis=1, count=n_s).astype(bool)[:, out_cols]
                out_missing_gene[g0 : g0 + m.shape[0]] = m.sum(axis=1)
        with open(staging / "genes.tsv", "w", encoding="utf-8", newline="\n") as fh:
            fh.write("gene\tvalues_present\tfraction_imputed\n")
            for g, mcount in zip(genes, out_missing_gene.tolist(), strict=True):
                fh.write(f"{g}\t{n_out - mcount}\t{mcount / n_out!r}\n")
        files["genes"] = "genes.tsv"
        n_pass = sum(1 for r in ks if r.passed)
        stats = [r.statistic for r in ks if math.isfinite(r.statistic)]
        peak = _peak_rss()
        metadata = {
            "organism": organism,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "num_genes": n_g,
            "num_samples": n_out,
            "num_filtered_samples": len(filtered),
            "num_samples_by_technology": {
                tech: sum(1 for r in sample_rows if r["technology"] == tech)
                for tech in ("MICROARRAY", "RNA-SEQ")
            },
            "percent_imputed": percent_imputed,
            "total_percent_imputed": out_missing / (n_g * n_out),
            "imputed_cells": out_missing,
            "quantile_normalized": True,
            "qn_target": {"length": int(tgt.size), **dict(target_info or {})},
            "ks": {
                "method": ks_method,
                "statistic_max": DEFAULT_STATISTIC_MAX if ks_statistic_max is None else ks_statistic_max,
                "action": ks_action,
                "passed": n_pass,
                "failed": len(ks) - n_pass,
                "failed_samples": sorted(ks_fail),
                "max_statistic": max(stats) if stats else None,
                "median_statistic": float(np.median(stats)) if stats else None,
            },
            "parameters": {
                "rank": rank,
                "backend": backend,
                "svd": svd,
                "convergence_threshold": convergence_threshold,
                "max_iters": max_iters,
                "low_count_quantile": low_count_quantile,
                "gene_min_present": gene_min_present,
                "sample_min_present": sample_min_present,
                "universe_min_presence": universe_min_presence,
                "chunk_values": chunk_values,
            },
            "assembly": {
                "vectors_given": len(input_tech),
                "vectors_read": am.n_loaded,
                "distinct_ids": am.universe_size,
                "universe_genes": len(am.genes),
                "columns": len(am.samples),
            },
            "filters": {
                **fr.stats,
                "rnaseq_low_count_threshold": fr.rnaseq_threshold,
                "rnaseq_genes_measured": fr.rnaseq_genes_measured,
                "rnaseq_genes_dropped": fr.rnaseq_genes_dropped,
                "rnaseq_zeros_kept": fr.rnaseq_zeros_kept,
            },
            "imputation": report.as_dict() if report else {"n_missing": 0, "iterations": 0},
            "versions": _versions(backend),
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "peak_rss_bytes": peak,
            "memory_model": memory_model(len(am.genes), len(am.samples), rank=rank),
            "layout": {
                "matrix": "matrix/part-*.parquet: long table gene, sample, value (float32), imputed (bool); "
                "sorted by gene then sample column order; one file per "
                f"{genes_per_file} genes",
                "parts": parts,
            },
        }
        if write_tsv or zip_tsv:
            _write_refinebio_layout(
                staging,
                organism,
                comp,
                genes,
                kept_samples,
                out_cols,
                sample_rows,
                filtered_rows,
                metadata,
                as_zip=zip_tsv,
                files=files,
            )
        seconds["write"] = time.perf_counter() - t
        seconds["total"] = time.perf_counter() - t_start
        metadata["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
        metadata["peak_rss_bytes"] = _peak_rss()
        metadata["files"] = files
        _write_json(staging / "metadata.json", metadata)
        files["metadata"] = "metadata.json"
        (staging / "README.md").write_text(_readme(organism, metadata), encoding="utf-8")
        files["readme"] = "README.md"
        del comp
        _publish(staging, out_dir)
        say(f"published {out_dir}")
        return CompendiumResult(
            organism=organism,
            out_dir=out_dir,
            n_genes=n_g,
            n_samples=n_out,
            filtered=filtered,
            percent_imputed=percent_imputed,
            impute=report,
            ks_failed=sorted(ks_fail),
            files=files,
            peak_rss_bytes=metadata["peak_rss_bytes"],
            seconds=seconds,
            metadata=metadata,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def _samples_parquet(path: Path, rows: list[dict]) -> None:
    """Included samples as Parquet (nested values as JSON text) for DuckDB joins."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    cols = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        if all(v is None or isinstance(v, bool) for v in vals):
            cols[k] = pa.array(vals, pa.bool_())
        elif all(v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)) for v in vals):
            cols[k] = pa.array(vals, pa.int64())
        elif all(
            v is None or (isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)) for v in vals
        ):
            cols[k] = pa.array([None if v is None or not math.isfinite(float(v)) else float(v) for v in vals])
        else:
            cols[k] = pa.array([None if v is None else _tsv_cell(v) for v in vals], pa.string())
    pq.write_table(pa.table(cols), path, compression="zstd")


def _write_refinebio_layout(
    staging: Path,
    organism: str,
    comp: np.ndarray,
    genes: list[str],
    samples: list[str],
    cols: np.ndarray,
    sample_rows: list[dict],
    filtered_rows: list[dict],
    metadata: dict,
    *,
    as_zip: bool,
    files: dict[str, str],
) -> None:
    """refine.bio's SPECIES layout: <ORG>/<ORG>.tsv, metadata_<ORG>.tsv/.json, aggregated_metadata.json."""
    agg = {
        "aggregate_by": "SPECIES",
        "scale_by": "NONE",
        "quantile_normalized": True,
        "compendium": True,
        "num_samples": metadata["num_samples"],
        "total_percent_imputed": metadata["total_percent_imputed"],
        "ks": metadata["ks"],
        "samples": {r["sample"]: r for r in sample_rows},
        "created_at": metadata["created_at"],
    }
    meta_json = {"species": organism, "samples": sample_rows}
    if as_zip:
        zpath = staging / f"{organism}.zip"
        with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            with zf.open(f"{organism}/{organism}.tsv", "w", force_zip64=True) as fh:
                _write_matrix_tsv(fh, comp, genes, samples, cols)
            tmp = staging / ".meta.tsv"
            _write_tsv(tmp, sample_rows, ["sample", "technology", "column"])
            zf.write(tmp, f"{organism}/metadata_{organism}.tsv")
            tmp.unlink()
            zf.writestr(
                f"{organism}/metadata_{organism}.json",
                json.dumps(json_safe(meta_json), indent=2, default=json_default),
            )
            zf.writestr(
                "aggregated_metadata.json",
                json.dumps(json_safe(agg), indent=4, sort_keys=True, default=json_default),
            )
            if filtered_rows:
                zf.writestr(
                    "filtered_samples_metadata.json",
                    json.dumps(
                        json_safe({r["sample"]: r for r in filtered_rows}), indent=2, default=json_default
                    ),
                )
        files["zip"] = zpath.name
        return
    d = staging / organism
    d.mkdir()
    with open(d / f"{organism}.tsv", "wb") as fh:
        _write_matrix_tsv(fh, comp, genes, samples, cols)
    _write_tsv(d / f"metadata_{organism}.tsv", sample_rows, ["sample", "technology", "column"])
    _write_json(d / f"metadata_{organism}.json", meta_json)
    _write_json(staging / "aggregated_metadata.json", agg)
    files["tsv"] = f"{organism}/{organism}.tsv"


def _readme(organism: str, md: dict) -> str:
    return f"""# {organism} compendium

{md["num_genes"]} genes x {md["num_samples"]} samples ({md["num_samples_by_technology"]}), built
{md["created_at"]}; {md["percent_imputed"]:.3f} % of the values are imputed (IterativeSVD rank
{md["parameters"]["rank"]}); every sample is quantile-normalized to the organism's target.
{md["num_filtered_samples"]} samples were left out: see `filtered_samples.tsv` (with reasons).

Query with DuckDB (Parquet is read directly):

```sql
-- one gene across all samples
SELECT sample, value, imputed FROM read_parquet('matrix/*.parquet') WHERE gene = '{"<GENE>"}';
-- samples with their metadata
SELECT m.gene, m.sample, m.value FROM read_parquet('matrix/*.parquet') m
JOIN read_parquet('samples.parquet') s USING (sample) WHERE s.technology = 'RNA-SEQ';
-- a wide genes x samples matrix for a few samples
PIVOT (SELECT gene, sample, value FROM read_parquet('matrix/*.parquet')
       WHERE sample IN ('S1', 'S2')) ON sample USING first(value);
```

Files: `matrix/` (gene, sample, value, imputed), `samples.tsv`/`samples.parquet`, `genes.tsv`,
`filtered_samples.tsv`/`.json`, `metadata.json` (parameters, filters, imputation, KS gate, versions).
Method and differences from refine.bio: `docs/compendia.md` in refine-assets.
"""
