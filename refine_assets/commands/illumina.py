"""``refine-assets nec``: limma ``nec`` background correction of a signal matrix with detection p-values.

``nec SIGNAL.tsv --detection-p P.tsv [--offset N] -o OUT.tsv``: both inputs are matrices with a header
row, the probe id in the first column, then one column per sample in the same order (TSV, plain or
gzip, or Parquet, recognised by content: ``refine_assets.lib.matrix_io``); the output has the same
shape, ids and header as SIGNAL, values at full (round-trip) precision, Parquet when its name ends in
``.parquet``.
Equal to ``limma::nec(x, detection.p = p, offset = N)`` within 1e-10 (see ``docs/illumina.md``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail


def register(app: typer.Typer) -> None:
    """Add the ``nec`` command to ``app``."""

    @app.command("nec")
    def nec_command(
        signal: Annotated[
            Path,
            typer.Argument(
                help="Signal matrix TSV: header row, probe id first, one column per sample (NA/empty = missing); "
                "gzip or Parquet accepted (detected by content)."
            ),
        ],
        detection_p: Annotated[
            Path,
            typer.Option(
                "--detection-p",
                help="Detection p-values (or scores 1 - p), same probes and column order as SIGNAL.",
            ),
        ],
        output: Annotated[
            Path,
            typer.Option(
                "-o", "--output", help="Output TSV, or Parquet if it ends in .parquet (written atomically)."
            ),
        ],
        offset: Annotated[
            float, typer.Option("--offset", help="Added after correction (limma default 16).")
        ] = 16.0,
    ) -> None:
        """limma::nec: normexp background correction using detection p-values (Shi et al. 2010).

        Per sample, the negative-control mean and SD are inferred from the jumps of the detection
        p-values, alpha = max(mean - mu, 10), and each intensity is replaced by its expected signal
        plus OFFSET. Output: same shape, ids and header as SIGNAL. Prints a JSON summary with the
        fitted parameters. Fails (exit 1, nothing written) on unreadable input, column or probe
        mismatch between the two files, non-numeric cells, or samples whose parameters cannot be
        estimated.
        """
        import numpy as np

        from refine_assets.lib.illumina.nec import NecError, nec
        from refine_assets.lib.matrix_io import MatrixFormatError, read_matrix, write_matrix

        for path, what in ((signal, "SIGNAL"), (detection_p, "--detection-p")):
            if not path.is_file():
                _fail(f"{path}: no such file ({what})")
        try:
            sig = read_matrix(signal)
            pmat = read_matrix(detection_p)
        except MatrixFormatError as exc:
            _fail(str(exc))
        cols, x, p = [c.strip() for c in sig.columns], sig.values, pmat.values
        ids, pids = np.asarray(sig.row_ids, dtype=object), np.asarray(pmat.row_ids, dtype=object)
        if x.shape[1] != p.shape[1]:
            _fail(
                f"{signal} has {x.shape[1]} sample column(s) but {detection_p} has {p.shape[1]}: every signal "
                "column needs its detection p-value column, in the same order"
            )
        if x.shape[0] != p.shape[0]:
            _fail(f"{signal} has {x.shape[0]} probe rows but {detection_p} has {p.shape[0]}")
        diff = np.flatnonzero(ids != pids)
        if diff.size:
            i = int(diff[0])
            _fail(
                f"probe ids differ between the files at data row {i + 1} ('{ids[i]}' vs '{pids[i]}'); "
                f"{diff.size} row(s) differ"
            )
        try:
            res = nec(x, p, offset=offset, names=cols)
        except NecError as exc:
            _fail(f"{signal}: {exc}")
        id_header = sig.id_header.strip() or "ID_REF"
        try:
            write_matrix(output, res.values, sig.row_ids, cols, id_header)
        except OSError as exc:
            _fail(f"{output}: cannot write ({exc})")
        summary = {
            "output": str(output),
            "probes": int(x.shape[0]),
            "samples": int(x.shape[1]),
            "offset": offset,
            "flipped_detection_p": res.params.flipped,
            "clamped": [cols[j] for j in np.flatnonzero(res.clamped)],
            "params": res.params.as_records(cols),
        }
        typer.echo(json.dumps(summary))
