"""``refine-assets tximport``: salmon quant.sf files of one experiment → gene-level TSV (native tximport).

Usage (exact)::

    refine-assets tximport --quant PATH [PATH ...] --tx2gene FILE \\
        [--counts-from-abundance lengthScaledTPM|scaledTPM|no] -o OUT.tsv

See :mod:`refine_assets.lib.rnaseq.tximport` and ``docs/tximport.md``.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail


class CountsFromAbundance(enum.StrEnum):
    """tximport ``countsFromAbundance`` modes."""

    lengthScaledTPM = "lengthScaledTPM"
    scaledTPM = "scaledTPM"
    no = "no"


def _index_ids_from_meta(files: list[Path], names: list[str]) -> tuple[list[str], list[str]] | None:
    """(samples, index ids) from salmon's aux_info/meta_info.json where present (None if none has it).

    The id combines salmon_version with index_seq_hash/index_name_hash: refine.bio refuses to tximport
    runs from several salmon versions (rna_seq.should_run_tximport, issue #1496).
    """
    from refine_assets.lib.rnaseq.quant import read_salmon_meta

    samples, ids = [], []
    for name, file in zip(names, files, strict=True):
        meta = read_salmon_meta(file)
        if not meta:
            continue
        parts = [str(meta.get(k, "")) for k in ("salmon_version", "index_seq_hash", "index_name_hash")]
        if any(parts):
            samples.append(name)
            ids.append("salmon " + " / ".join(parts))
    return (samples, ids) if samples else None


def register(app: typer.Typer) -> None:
    """Add the ``tximport`` command to ``app``."""

    @app.command("tximport")
    def tximport_command(
        quant: Annotated[
            list[Path],
            typer.Option(
                "--quant",
                help="quant.sf file (plain or .gz) or a directory holding one; several may follow one "
                "--quant. Sample name: the directory name (or the file name stem when the file is not "
                "named quant.sf).",
            ),
        ],
        tx2gene: Annotated[
            Path,
            typer.Option(
                "--tx2gene",
                help="Two-column TSV (plain or .gz) mapping transcripts to genes, with or without header, "
                "either column order (the transcript column is detected).",
            ),
        ],
        output: Annotated[
            Path,
            typer.Option(
                "-o",
                "--output",
                help="Output TSV: Gene<TAB>sample..., rows sorted by gene (Parquet if it ends in .parquet)",
            ),
        ],
        more_quant: Annotated[
            list[Path] | None,
            typer.Argument(hidden=True, metavar="PATH", help="further --quant paths", show_default=False),
        ] = None,
        counts_from_abundance: Annotated[
            CountsFromAbundance,
            typer.Option(
                "--counts-from-abundance", help="tximport countsFromAbundance (refine.bio: lengthScaledTPM)"
            ),
        ] = CountsFromAbundance.lengthScaledTPM,
    ) -> None:
        """Summarise salmon quant.sf files of one experiment to genes, as R tximport 1.6.0 does.

        Writes tximport's gene-level counts (lengthScaledTPM by default, the values refine.bio ships)
        as Gene<TAB>sample... and prints a JSON summary (samples used, transcripts missing from
        tx2gene, ...). Runs quantified with different salmon indices are refused.
        """
        import json
        import time

        from refine_assets.lib.rnaseq.quant import QuantFileError, resolve_sample_names
        from refine_assets.lib.rnaseq.tximport import (
            TximportError,
            check_single_index,
            tximport_files,
            write_gene_table,
        )

        if more_quant and len(quant) > 1:
            _fail(
                "give the quant paths either all after one --quant (--quant A B C) or each with its own "
                "--quant (--quant A --quant B), not both"
            )
        paths = [*quant, *(more_quant or [])]
        started = time.perf_counter()
        try:
            resolved = resolve_sample_names(paths, None)
            names = [n for n, _ in resolved]
            meta = _index_ids_from_meta([f for _, f in resolved], names)
            if meta is not None:
                check_single_index(*meta)
            result = tximport_files(
                [f for _, f in resolved], tx2gene, counts_from_abundance.value, names=names
            )
            write_gene_table(result.counts, output)
        except (QuantFileError, TximportError, ValueError, OSError) as exc:
            _fail(str(exc))
            return
        summary = {
            "output": str(output),
            **result.provenance(),
            "seconds": round(time.perf_counter() - started, 3),
        }
        typer.echo(json.dumps(summary))
