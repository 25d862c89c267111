"""``scan``: SCAN / SCANfast normalization of one Affymetrix CEL file (docs/scan.md).

Method: :mod:`refine_assets.lib.affy.scan_affy` (native port of ``SCAN.UPC::SCANfast``/``SCAN``).
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail


class ScanMode(StrEnum):
    """SCAN variant."""

    fast = "fast"
    full = "full"


def sample_name(path: Path) -> str:
    """CEL file name without ``.CEL`` / ``.CEL.gz`` (case-insensitive), e.g. ``C30057.CEL.gz`` -> ``C30057``."""
    return re.sub(r"\.cel(\.gz)?$", "", path.name, flags=re.IGNORECASE)


def write_scan_tsv(values, sample: str, out: Path) -> None:
    """Write ``ID<TAB><sample>`` + one ``id<TAB>value`` row per probeset, atomically.

    Values in R's 15-significant-digit format (``%.15g``, what SCAN.UPC's ``write.table`` writes;
    values are already rounded to 8 decimals, so this is lossless); NaN as ``NA``; ``-0`` as ``0``.
    """
    import os
    import tempfile

    import numpy as np

    out.parent.mkdir(parents=True, exist_ok=True)
    vals = np.asarray(values.to_numpy(dtype=np.float64)) + 0.0  # -0.0 -> 0.0
    text_vals = np.char.mod("%.15g", vals)
    text_vals[np.isnan(vals)] = "NA"
    ids = values.index.astype(str).to_numpy().astype(str)
    if ids.size and (np.char.find(ids, "\t") >= 0).any() | (np.char.find(ids, "\n") >= 0).any():
        raise ValueError("probeset ids must not contain tabs or newlines")
    body = "\n".join(np.char.add(np.char.add(ids, "\t"), text_vals).tolist())
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(f"ID\t{sample}\n")
            if body:
                fh.write(body + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(app: typer.Typer) -> None:
    """Add ``scan`` to ``app``."""

    @app.command("scan")
    def scan(
        file: Annotated[
            Path, typer.Argument(help="Affymetrix CEL file (text v3, binary v4 or Calvin; .gz ok)")
        ],
        probes: Annotated[
            Path,
            typer.Option(
                "--probes",
                help="PM probe table of the chip: probe_set_id/x/y/sequence TSV, Affymetrix probe_tab, "
                "R probe package tarball or our Parquet (.gz ok)",
            ),
        ],
        out: Annotated[
            Path, typer.Option("-o", "--out", help="Output TSV (ID<TAB>sample), written atomically")
        ],
        mode: Annotated[
            ScanMode, typer.Option("--mode", help="fast = SCANfast (what refine.bio runs), full = SCAN")
        ] = ScanMode.fast,
        brainarray: Annotated[
            Path | None,
            typer.Option("--brainarray", help="Brainarray probe table/package: summarize by its probesets"),
        ] = None,
    ) -> None:
        """SCAN-normalize one Affymetrix array and write probeset values as TSV.

        Native port of SCAN.UPC's SCANfast (--mode fast: intervalN 10000, convThreshold 0.5) and
        SCAN (--mode full: 50000, 0.01): two-component sequence-model mixture fitted by EM on a
        systematic probe subsample, probe values standardized in blocks of 5000 probes of similar
        predicted background, 10%-trimmed mean per probeset (or per Brainarray probeset with
        --brainarray), rounded to 8 decimals. Output: header ``ID<TAB><sample>`` (sample = CEL name
        without .CEL/.CEL.gz), one row per probeset sorted by id. Prints a JSON summary (EM
        iterations, probes, probesets). See docs/scan.md.
        """
        import warnings

        from refine_assets.lib.affy.cel import CelFormatError, read_cel
        from refine_assets.lib.affy.probes import ProbeTableError, read_probe_table
        from refine_assets.lib.affy.scan_affy import scan_affy
        from refine_assets.lib.scan import ScanError

        if not file.is_file():
            _fail(f"{file}: no such file")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cel = read_cel(file)
            for warning in caught:
                typer.secho(f"warning: {file}: {warning.message}", fg=typer.colors.YELLOW, err=True)
        except CelFormatError as exc:
            _fail(str(exc))
        try:
            table = read_probe_table(probes)
            ba_table = read_probe_table(brainarray) if brainarray is not None else None
        except ProbeTableError as exc:
            _fail(str(exc))
        try:
            result = scan_affy(cel.intensities, cel.cols, table, mode=mode.value, brainarray=ba_table)
        except (ScanError, ValueError) as exc:
            _fail(f"{file}: {exc}")
        sample = sample_name(file)
        try:
            write_scan_tsv(result.values, sample, out)
        except OSError as exc:
            _fail(f"{out}: cannot write ({exc})")
        summary = {"out": str(out), "sample": sample, "chip_type": cel.chip_type, **result.provenance()}
        summary.pop("params", None)
        typer.echo(json.dumps(summary))
