"""Transcriptome references for salmon: pseudogene filtering, transcript extraction, index building.

refine.bio (``processors/transcriptome_index.py``) downloads an Ensembl genome FASTA + GTF, removes
every feature whose biotype mentions "pseudogene", extracts transcripts with
``rsem-prepare-reference --gtf`` and builds two salmon indices: k=23 ("short", reads <= 75 bp) and
k=31 ("long"). The same steps here: :func:`filter_pseudogenes`, :func:`extract_transcripts`
(rsem-prepare-reference, which also writes the transcript -> gene map), :func:`build_salmon_index`.
When only a transcript FASTA is available, :func:`tx2gene_from_fasta` reads gene ids from Ensembl
cDNA headers (``gene:ENSG...``) or maps each transcript to itself (documented fallback).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

K_BY_LENGTH = {"short": 23, "long": 31}
_BIOTYPE = re.compile(r'(gene_biotype|transcript_biotype|gene_type|transcript_type) "([^"]*)"')


def _open(path: Path, mode: str = "rt"):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, mode) if gz else open(path, mode)


def filter_pseudogenes(gtf: str | Path, out: str | Path) -> tuple[int, int]:
    """Copy a GTF without the lines whose gene/transcript biotype mentions ``pseudogene``.

    Returns (kept, dropped) feature lines; comments are kept; written atomically.
    """
    gtf, out = Path(gtf), Path(out)
    tmp = out.with_name(out.name + ".part")
    kept = dropped = 0
    with _open(gtf) as src, open(tmp, "w") as dst:
        for line in src:
            if line.startswith("#"):
                dst.write(line)
                continue
            if any("pseudogene" in m.group(2).lower() for m in _BIOTYPE.finditer(line)):
                dropped += 1
                continue
            dst.write(line)
            kept += 1
    os.replace(tmp, out)
    return kept, dropped


def extract_transcripts(
    genome_fasta: str | Path, gtf: str | Path, out_prefix: str | Path
) -> tuple[Path, Path]:
    """rsem-prepare-reference --gtf: (transcripts FASTA, tx2gene TSV gene<TAB>transcript)."""
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)  # rsem needs the folder to exist
    exe = shutil.which("rsem-prepare-reference")
    if exe is None:
        raise RuntimeError("rsem-prepare-reference not found: install the Debian package rsem")
    # rsem reads gzip input as garbage and extracts 0 transcripts: give it plain files
    genome_plain = _plain_copy(Path(genome_fasta), out_prefix.parent / "genome.fa")
    gtf_plain = _plain_copy(Path(gtf), out_prefix.parent / "annotation.gtf")
    proc = subprocess.run(
        [exe, "--gtf", str(gtf_plain), str(genome_plain), str(out_prefix)], capture_output=True, text=True
    )
    if genome_plain != Path(genome_fasta):
        genome_plain.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise ValueError(
            f"rsem-prepare-reference failed on {genome_fasta} + {gtf}: "
            f"{(proc.stdout + proc.stderr).strip()[-400:]}"
        )
    tx = Path(f"{out_prefix}.transcripts.fa")
    if not tx.is_file() or tx.stat().st_size == 0:
        raise ValueError(
            f"rsem-prepare-reference extracted no transcripts from {genome_fasta} with {gtf} "
            "(do the GTF's sequence names match the FASTA's?)"
        )
    tx2gene = Path(f"{out_prefix}.tx2gene.tsv")
    tx2gene_from_gtf(gtf, tx2gene)
    return tx, tx2gene


def _plain_copy(path: Path, dest: Path) -> Path:
    """``path`` itself when not gzip-compressed, else its content decompressed into ``dest``."""
    with open(path, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return path
    with gzip.open(path, "rb") as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return dest


def tx2gene_from_gtf(gtf: str | Path, out: str | Path) -> int:
    """tx2gene (gene<TAB>transcript, distinct pairs) from the ``gene_id``/``transcript_id`` attributes.

    Only ``exon`` lines are read, as rsem-prepare-reference does: GENCODE's ``gene`` lines carry
    ``transcript_id`` equal to the gene id, which would add gene -> gene rows.
    """
    seen: dict[str, str] = {}
    with _open(Path(gtf)) as src:
        for line in src:
            if line.startswith("#") or line.split("\t", 3)[2:3] != ["exon"]:
                continue
            t = re.search(r'transcript_id "([^"]+)"', line)
            g = re.search(r'gene_id "([^"]+)"', line)
            if t and g:
                seen.setdefault(t.group(1), g.group(1))
    with open(out, "w") as dst:
        for transcript, gene in seen.items():
            dst.write(f"{gene}\t{transcript}\n")
    return len(seen)


def tx2gene_from_fasta(fasta: str | Path, out: str | Path) -> int:
    """tx2gene (gene<TAB>transcript) from FASTA headers; identity when headers carry no gene id."""
    n = 0
    with _open(Path(fasta)) as src, open(out, "w") as dst:
        for line in src:
            if line.startswith(">"):
                tid = line[1:].split()[0]
                m = re.search(r"gene:(\S+)", line)
                dst.write(f"{m.group(1) if m else tid}\t{tid}\n")
                n += 1
    return n


@dataclass
class IndexBuild:
    path: Path
    k: int
    salmon_version: str
    transcripts: int
    seconds: float


def build_salmon_index(transcripts: str | Path, out_dir: str | Path, k: int, threads: int = 2) -> IndexBuild:
    """``salmon index -t transcripts -i out_dir -k k``; raises ValueError with salmon's message."""
    from refine_assets.lib.rnaseq.salmon_quant import tool_version

    version = tool_version("salmon")
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            shutil.which("salmon") or "salmon",
            "--no-version-check",
            "index",
            "-t",
            str(transcripts),
            "-i",
            str(out_dir),
            "-k",
            str(k),
            "-p",
            str(threads),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise ValueError(f"salmon index failed: {proc.stderr.strip()[-400:]}")
    with _open(Path(transcripts)) as fh:
        n = sum(1 for line in fh if line.startswith(">"))
    return IndexBuild(out_dir, k, version, n, time.perf_counter() - t0)
