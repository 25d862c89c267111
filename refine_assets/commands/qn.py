"""``refine-assets qn`` and ``refine-assets qn-target``: quantile normalization of a matrix file.

``qn MATRIX --target TARGET.txt -o OUT`` normalizes every column to the target with preprocessCore
``normalize.quantiles.use.target`` semantics (``refine_assets.lib.qn``) and writes a matrix of the same
shape, ids and column order. ``qn-target MATRIX -o TARGET.txt`` writes the mean of the sorted columns
(``normalize.quantiles.determine.target``), one value per line, ascending. MATRIX is TSV (plain or gzip)
or Parquet, recognised by content; OUT is Parquet when its name ends in ``.parquet``, else TSV
(``refine_assets.lib.matrix_io``). See ``docs/quantile-normalization.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def register(app: typer.Typer) -> None:
    """Add the ``qn`` and ``qn-target`` commands to ``app``."""

    @app.command("qn")
    def qn(
        matrix: Annotated[
            Path,
            typer.Argument(
                help="Genes x samples TSV: header row, first column row ids, NA or empty = missing "
                "(.gz accepted), or the same as Parquet (detected by content)."
            ),
        ],
        target: Annotated[
            Path, typer.Option("--target", help="Target file: one number per line, ascending.")
        ],
        output: Annotated[
            Path,
            typer.Option(
                "-o", "--output", help="Output TSV, or Parquet if it ends in .parquet (written atomically)."
            ),
        ],
        ks_report: Annotated[
            Path | None,
            typer.Option(
                "--ks-report",
                help="Also run the KS gate and write one row per sample (statistic, p-value, passed, "
                "reason) to this TSV.",
            ),
        ] = None,
        workers: Annotated[
            int, typer.Option(help="Threads (2 is faster on idle cores, slower on busy ones).", min=1)
        ] = 1,
    ) -> None:
        """Quantile-normalize every column of MATRIX to TARGET (preprocessCore use.target semantics).

        Output: same shape, row ids and column order; values at full precision; missing stays NA.
        Prints a JSON summary. With --ks-report, samples failing the KS gate are listed (the matrix
        itself keeps every column).
        """
        import numpy as np

        from refine_assets.lib.matrix_io import MatrixFormatError, read_matrix, write_matrix
        from refine_assets.lib.qn import (
            QuantileNormalizationError,
            TargetFormatError,
            quantile_normalize_to_target,
            read_target,
        )

        try:
            tgt = read_target(target)
        except FileNotFoundError:
            _fail(f"{target}: no such file")
        except (TargetFormatError, OSError) as exc:
            _fail(str(exc))
        try:
            m = read_matrix(matrix)
        except MatrixFormatError as exc:
            _fail(str(exc))
        try:
            normalized = quantile_normalize_to_target(m.values, tgt, workers=workers)
        except QuantileNormalizationError as exc:
            _fail(f"{matrix}: {exc}")
        summary: dict = {
            "output": str(output),
            "rows": len(m.row_ids),
            "samples": len(m.columns),
            "target_length": int(tgt.size),
            "missing_values": int(np.isnan(m.values).sum()),
        }
        write_matrix(output, normalized, m.row_ids, m.columns, m.id_header)
        if ks_report is not None:
            from refine_assets.lib.ks import failed_samples, ks_gate

            results = ks_gate(normalized, tgt, sample_names=m.columns)
            _write_ks_report(ks_report, results)
            summary["ks_report"] = str(ks_report)
            summary["ks_failed"] = failed_samples(results)
        typer.echo(json.dumps(summary))

    @app.command("qn-target")
    def qn_target(
        matrix: Annotated[
            Path,
            typer.Argument(
                help="Genes x samples TSV: header row, first column row ids, NA or empty = missing "
                "(.gz accepted), or the same as Parquet (detected by content)."
            ),
        ],
        output: Annotated[
            Path, typer.Option("-o", "--output", help="Target file to write (one value per line).")
        ],
        length: Annotated[
            int | None,
            typer.Option(
                "--length", min=1, help="Target length (default: number of rows), as R's target.length."
            ),
        ] = None,
    ) -> None:
        """Write the QN target of MATRIX: mean of its sorted columns (preprocessCore determine.target).

        Columns with missing values are interpolated to the row count first; a column with no value is
        an error. Output: one value per line, ascending, full precision. Prints a JSON summary.
        """
        from refine_assets.lib.matrix_io import MatrixFormatError, read_matrix
        from refine_assets.lib.qn import QuantileNormalizationError, determine_target, write_target

        try:
            m = read_matrix(matrix)
        except MatrixFormatError as exc:
            _fail(str(exc))
        try:
            tgt = determine_target(m.values, length)
        except QuantileNormalizationError as exc:
            column = getattr(exc, "column", None)
            msg = str(exc) if column is None else f"sample {m.columns[column]!r} has no non-missing values"
            _fail(f"{matrix}: {msg}")
        write_target(output, tgt)
        typer.echo(
            json.dumps(
                {
                    "output": str(output),
                    "rows": len(m.row_ids),
                    "samples": len(m.columns),
                    "length": int(tgt.size),
                }
            )
        )


def _write_ks_report(path: Path, results) -> None:
    from refine_assets.lib.matrix_io import atomic_output

    def fmt(x: float) -> str:
        return "NA" if _num(x) is None else repr(x)

    lines = ["sample\tpassed\tstatistic\tpvalue\tn_present\tn_compared\treason"]
    for r in results:
        lines.append(
            "\t".join(
                [
                    r.sample,
                    "true" if r.passed else "false",
                    fmt(r.statistic),
                    fmt(r.pvalue),
                    str(r.n_present),
                    str(r.n_compared),
                    r.reason or "",
                ]
            )
        )
    with atomic_output(path) as fh:
        fh.write("\n".join(lines) + "\n")
