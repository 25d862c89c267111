"""``refine-assets impute`` and ``refine-assets compendium``: IterativeSVD imputation and species compendia.

``impute MATRIX.tsv --rank 10 [--backend native|fancyimpute] -o OUT.tsv`` fills the missing cells of a
samples x genes TSV (header row, first column row ids, ``NA`` or empty = missing; or Parquet, by content;
``-o x.parquet`` writes Parquet, see ``refine_assets.lib.matrix_io``) with IterativeSVD
(fancyimpute 0.7.0 semantics, ``refine_assets.lib.compendia.impute``). ``compendium ORGANISM -o OUT_DIR``
builds an organism's compendium from the processed vectors recorded in the warehouse
(``refine_assets.lib.compendia.build``). See ``docs/compendia.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail
from refine_assets.commands import open_cli_store


def register(app: typer.Typer) -> None:
    """Add the ``impute`` and ``compendium`` commands to ``app``."""

    @app.command("impute")
    def impute_cmd(
        matrix: Annotated[
            Path,
            typer.Argument(
                help="Samples x genes TSV: header row, first column row ids, NA or empty = missing (.gz ok), "
                "or the same as Parquet (detected by content)."
            ),
        ],
        output: Annotated[
            Path,
            typer.Option(
                "-o", "--output", help="Output TSV, or Parquet if it ends in .parquet (written atomically)."
            ),
        ],
        rank: Annotated[int, typer.Option("--rank", help="Rank of the SVD approximation.", min=1)] = 10,
        backend: Annotated[
            str, typer.Option("--backend", help="native (default) or fancyimpute (the reference).")
        ] = "native",
        svd: Annotated[
            str, typer.Option("--svd", help="Native SVD engine: auto, exact or randomized.")
        ] = "auto",
        max_iters: Annotated[int, typer.Option("--max-iters", min=1)] = 200,
        tolerance: Annotated[
            float, typer.Option("--tolerance", help="Convergence threshold on the missing cells.")
        ] = 1e-5,
    ) -> None:
        """Fill every missing cell of MATRIX with IterativeSVD (fancyimpute 0.7.0 semantics).

        Rows are samples and columns genes (the orientation refine.bio hands to fancyimpute; the result
        does not depend on it). Rank 10 with gradual rank increase (1, 2, 4, 8, 10), zero initial fill,
        tolerance 1e-5, at most 200 iterations, float32 arithmetic. Output: same shape, ids and column
        order; observed values written exactly as read, imputed values at float32 precision. Prints a
        JSON summary (iterations, convergence, cells imputed).
        """
        import numpy as np

        from refine_assets.lib.compendia.impute import ImputeError, impute
        from refine_assets.lib.matrix_io import MatrixFormatError, read_matrix, write_matrix

        if backend not in ("native", "fancyimpute"):
            _fail(f"--backend must be native or fancyimpute, not {backend!r}")
        if not matrix.exists():
            _fail(f"{matrix}: no such file")
        try:
            tsv = read_matrix(matrix)
        except MatrixFormatError as exc:
            _fail(str(exc))
        values = tsv.values
        missing = np.isnan(values)
        try:
            filled, report = impute(
                values, rank, backend, svd=svd, max_iters=max_iters, convergence_threshold=tolerance
            )
        except ImputeError as exc:
            _fail(f"{matrix}: {exc}")
        out = np.array(values, dtype=np.float64)
        # imputed cells at float32 precision, written with the shortest float32 representation
        out[missing] = np.asarray(filled[missing], dtype=np.float32).astype(str).astype(np.float64)
        write_matrix(output, out, tsv.row_ids, tsv.columns, tsv.id_header)
        summary = {
            "matrix": str(matrix),
            "output": str(output),
            "rows": report.shape[0],
            "columns": report.shape[1],
            "backend": report.backend,
            "svd": report.svd,
            "rank": report.rank,
            "imputed_cells": report.n_missing,
            "fraction_imputed": report.fraction_missing,
            "iterations": report.iterations,
            "converged": report.converged,
            "seconds": round(report.seconds, 3),
        }
        typer.echo(json.dumps(summary, indent=1))

    @app.command("compendium")
    def compendium_cmd(
        organism: Annotated[str, typer.Argument(help="Organism, e.g. DANIO_RERIO or 'Danio rerio'.")],
        out_dir: Annotated[Path, typer.Option("-o", "--output", help="Output folder (replaced atomically).")],
        warehouse: Annotated[
            Path | None, typer.Option("--warehouse", help="DuckDB warehouse (default: settings).")
        ] = None,
        storage: Annotated[
            str | None, typer.Option("--storage", help="Artifact store root (default: settings).")
        ] = None,
        backend: Annotated[str, typer.Option("--backend", help="native or fancyimpute.")] = "native",
        svd: Annotated[str, typer.Option("--svd", help="auto, exact or randomized (native).")] = "auto",
        rank: Annotated[int, typer.Option("--rank", min=1)] = 10,
        tsv: Annotated[bool, typer.Option("--tsv", help="Also write refine.bio's TSV layout.")] = False,
        as_zip: Annotated[
            bool, typer.Option("--zip", help="Write the TSV layout as <ORGANISM>.zip.")
        ] = False,
        ks_action: Annotated[
            str, typer.Option("--ks-action", help="drop (default) or record samples failing the KS gate.")
        ] = "drop",
        work_dir: Annotated[
            Path | None, typer.Option("--work-dir", help="Scratch folder for the memory-mapped matrices.")
        ] = None,
        workers: Annotated[int, typer.Option("--workers", help="Threads reading vectors.", min=1)] = 4,
    ) -> None:
        """Build ORGANISM's compendium from its samples processed from raw (warehouse + store).

        Samples: the latest succeeded affy_scan/illumina_scan (microarray) or tximport (RNA-seq) vector
        of every sample of the organism in the warehouse. QN target: the organism's published target
        (``refine-assets references qn-target ORGANISM --build``). Sequence: assemble, RNA-seq low-count filter and log2(x + 1), gene (70 %)
        and sample (50 %) presence filters, IterativeSVD rank 10, QN, KS gate; output Parquet (DuckDB),
        sample metadata, filtered samples with reasons, percent imputed, versions. Prints a JSON summary.
        """
        from refine_assets.lib.compendia.build import build_compendium
        from refine_assets.lib.compendia.select import select_samples
        from refine_assets.lib.delivery.targets import (
            QnTargetError,
            load_qn_target,
            normalize_organism,
            qn_target_key,
        )
        from refine_assets.settings import Settings

        settings = Settings.from_env()
        org = normalize_organism(organism)
        db = Path(warehouse or settings.warehouse_path)
        if not db.exists():
            _fail(f"{db}: no warehouse there (build it first, or pass --warehouse)")
        try:
            store = open_cli_store(storage, settings)
            target, record = load_qn_target(store, org)
        except (QnTargetError, ValueError) as exc:
            _fail(str(exc))
        target_info = {
            "key": qn_target_key(org),
            "url": record.get("url"),
            "sha256": record.get("sha256"),
            "version": record.get("version"),
        }
        try:
            vectors, meta = select_samples(db, org)
        except ValueError as exc:  # grouped into another organism's compendium
            _fail(str(exc))
        if not vectors:
            _fail(f"no samples of {org} processed from raw (affy_scan, illumina_scan or tximport) in {db}")
        try:
            res = build_compendium(
                org,
                vectors,
                store,
                out_dir,
                target,
                rank=rank,
                backend=backend,
                svd=svd,
                sample_metadata=meta,
                target_info=target_info,
                ks_action=ks_action,
                write_tsv=tsv,
                zip_tsv=as_zip,
                work_dir=work_dir,
                workers=workers,
                log=lambda m: typer.echo(m, err=True),
            )
        except ValueError as exc:
            _fail(f"{org}: {exc}" if not str(exc).startswith(org) else str(exc))
        summary = {
            "organism": org,
            "output": str(res.out_dir),
            "genes": res.n_genes,
            "samples": res.n_samples,
            "filtered_samples": len(res.filtered),
            "percent_imputed": res.percent_imputed,
            "iterations": res.impute.iterations if res.impute else 0,
            "ks_failed": len(res.ks_failed),
            "peak_rss_bytes": res.peak_rss_bytes,
            "seconds": {k: round(v, 2) for k, v in res.seconds.items()},
            "files": res.files,
        }
        typer.echo(json.dumps(summary, indent=1))
