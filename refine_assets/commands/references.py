"""``refine-assets references transcriptome-index ORGANISM --length short|long``: the index record.

Prints the published record of a Salmon transcriptome index as JSON (organism, Ensembl release,
assembly, salmon version, k, transcript count, url), as refine.bio's ``/transcriptome_indices`` API
does. ``--build`` builds both indices of the organism first from a transcript FASTA or from a genome
FASTA + GTF (pseudogenes removed, ``rsem-prepare-reference``); see ``docs/rnaseq.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail
from refine_assets.commands import load_settings as _settings
from refine_assets.commands import open_cli_store as _open_store
from refine_assets.commands.delivery import references_app


@references_app.command("transcriptome-index")
def transcriptome_index(
    organism: Annotated[str, typer.Argument(help="Organism, e.g. HOMO_SAPIENS or 'Danio rerio'.")],
    length: Annotated[
        str, typer.Option("--length", help="short (k=23, reads <= 75 bp) or long (k=31).")
    ] = "long",
    storage: Annotated[
        str | None, typer.Option(help="Artifact store root: path or s3://bucket/prefix (default: settings).")
    ] = None,
    transcripts: Annotated[
        Path | None, typer.Option(help="--build from this transcript FASTA (.gz ok).")
    ] = None,
    genome: Annotated[Path | None, typer.Option(help="--build from this genome FASTA (with --gtf).")] = None,
    gtf: Annotated[Path | None, typer.Option(help="--build: the genome's GTF annotation.")] = None,
    ensembl_release: Annotated[int | None, typer.Option(help="--build: Ensembl release to record.")] = None,
    assembly: Annotated[str | None, typer.Option(help="--build: assembly name to record.")] = None,
    build: Annotated[
        bool, typer.Option("--build", help="Build both indices (short and long) before printing.")
    ] = False,
) -> None:
    """Print the transcriptome index record of ORGANISM as JSON; exit 1 when none exists."""
    from refine_assets.lib.delivery.targets import normalize_organism
    from refine_assets.lib.references.transcriptome_index import (
        build_transcriptome_references,
        transcriptome_index_record,
    )
    from refine_assets.lib.rnaseq.salmon_quant import ToolMissingError

    if length not in ("short", "long"):
        _fail(f"--length must be short or long, not {length!r}")
    settings = _settings()
    try:
        store = _open_store(storage, settings)
        name = normalize_organism(organism)
        if build:
            build_transcriptome_references(
                store,
                name,
                transcripts=transcripts,
                genome=genome,
                gtf=gtf,
                ensembl_release=ensembl_release,
                assembly=assembly,
                sources={k: str(v) for k, v in (("transcripts", transcripts), ("genome", genome)) if v},
            )
        record = transcriptome_index_record(store, name, length)
    except (ValueError, ToolMissingError) as exc:
        _fail(str(exc))
    if record is None:
        _fail(f"no {length} transcriptome index for {name} (build it with --build)")
    keys = ("organism", "length", "k", "ensembl_release", "assembly", "salmon_version", "transcripts")
    out = {k: record.get(k) for k in keys}
    out.update(
        url=record.get("url"),
        sha256=record.get("sha256"),
        version=record.get("version"),
        created_at=record.get("created_at"),
        record_url=record.get("record_url"),
    )
    typer.echo(json.dumps(out, indent=1))


def register(app: typer.Typer) -> None:
    """The command lives in the ``references`` group, which ``commands.delivery`` adds to ``app``."""
