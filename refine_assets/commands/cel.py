"""``cel-info`` and ``cel-intensities``: inspect and export Affymetrix CEL files (any format, gzip ok).

Readers: :mod:`refine_assets.lib.affy.cel` (docs/affymetrix-formats.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail


def _read(path: Path):
    import warnings

    from refine_assets.lib.affy.cel import CelFormatError, CelWarning, read_cel

    if not path.is_file():
        _fail(f"{path}: no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CelWarning)
        try:
            cel = read_cel(path)
        except CelFormatError as exc:
            _fail(str(exc))
    for warning in caught:
        typer.secho(f"warning: {warning.message}", fg=typer.colors.YELLOW, err=True)
    return cel


def register(app: typer.Typer) -> None:
    """Add ``cel-info`` and ``cel-intensities`` to ``app``."""

    @app.command("cel-info")
    def cel_info(
        file: Annotated[Path, typer.Argument(help="CEL file: text v3, binary XDA v4 or Calvin; gzip ok")],
    ) -> None:
        """Print a CEL file's format, chip type and dimensions as JSON.

        Keys: source, format (text-v3 | xda-v4 | calvin), chip_type (raw header value, e.g.
        HG_U95Av2), platform (normalized, e.g. hgu95av2), internal_code (supported-platform code or
        null), rows, cols, num_cells, num_masks, num_outliers, num_modified, scan_date, algorithm,
        warnings (tolerant repairs applied while reading).
        """
        cel = _read(file)
        typer.echo(json.dumps(cel.info(), indent=2))

    @app.command("cel-intensities")
    def cel_intensities(
        file: Annotated[Path, typer.Argument(help="CEL file: text v3, binary XDA v4 or Calvin; gzip ok")],
        out: Annotated[
            Path, typer.Option("-o", "--out", help="Output TSV; gzip-compressed when it ends in .gz")
        ],
    ) -> None:
        """Write every cell of a CEL file as TSV: x, y, mean, stdev, npixels.

        One row per cell in cell-index order (index = x + cols*y, 0-based x and y), after the header
        line ``x<TAB>y<TAB>mean<TAB>stdev<TAB>npixels``. Written to a temp file and renamed.
        """
        from refine_assets.lib.affy.cel import write_intensities_tsv

        cel = _read(file)
        try:
            write_intensities_tsv(cel, out)
        except OSError as exc:
            _fail(f"{out}: cannot write ({exc})")
        typer.echo(json.dumps({"out": str(out), "rows": cel.num_cells, "format": cel.format}))
