"""Transcriptome indices as reference artifacts (``references/transcriptome_index/<ORG>_<length>/``).

For one organism, from an Ensembl genome FASTA + GTF (pseudogenes removed, transcripts extracted with
rsem-prepare-reference, refine.bio's ``transcriptome_index.py``) or from a transcript FASTA: a salmon
index per length class (short k=23, long k=31), stored as ``index.tar.gz`` with the transcript -> gene
map ``tx2gene.tsv``, the sorted transcript ids ``transcripts.txt`` and a record.

The record (what processing, tximport and delivered samples cite as the index's provenance):
``version`` = ``<sha256 of the transcript FASTA, 16>-k<k>-salmon<version>``, ``organism``, ``length``,
``k``, ``salmon_version``, ``transcripts`` (count), ``transcript_set_sha256`` (of the sorted ids),
``ensembl_release``, ``assembly``, ``division``, the source URLs, and ``details``: pseudogene filter
counts and, when a previous index of the same name existed with other transcripts,
``previous_version`` and ``jaccard_with_previous`` (|A ∩ B| / |A ∪ B| of the transcript id sets;
refine.bio alerted below 0.95, here the ``transcriptome_index`` asset check fails below
:data:`MIN_JACCARD`).

Rebuilding with the same transcripts, k and salmon version publishes nothing: the existing record is
returned (the index tarball is not rewritten, so its URL and sha256 stay). ``refine-assets references
transcriptome-index ORGANISM --length short|long`` prints a record.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import tempfile
from pathlib import Path

from refine_assets.lib.references.artifacts import read_record, reference_key, write_record
from refine_assets.lib.rnaseq.transcriptome import (
    K_BY_LENGTH,
    build_salmon_index,
    extract_transcripts,
    filter_pseudogenes,
    tx2gene_from_fasta,
)
from refine_assets.lib.storage import ArtifactStore, file_sha256

KIND = "transcriptome_index"
MIN_JACCARD = 0.95

__all__ = [
    "KIND",
    "MIN_JACCARD",
    "build_transcriptome_references",
    "transcript_ids",
    "transcriptome_index_record",
]


def transcript_ids(fasta: Path) -> list[str]:
    """Sorted distinct transcript ids (first word of each header) of a FASTA (plain or gzip)."""
    raw = Path(fasta).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ids = {
        line[1:].split()[0].decode()
        for line in raw.splitlines()
        if line.startswith(b">") and line[1:].split()
    }
    return sorted(ids)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _previous_ids(store: ArtifactStore, record: dict | None) -> set[str] | None:
    key = (record or {}).get("transcripts_key")
    if not key or not store.exists(key):
        return None
    return set(gzip.decompress(store.get_bytes(key)).decode().split())


def build_transcriptome_references(
    store: ArtifactStore,
    organism: str,
    *,
    transcripts: Path | None = None,
    genome: Path | None = None,
    gtf: Path | None = None,
    lengths: tuple[str, ...] = ("short", "long"),
    ensembl_release: int | None = None,
    assembly: str | None = None,
    division: str | None = None,
    sources: dict | None = None,
    threads: int = 2,
) -> list[dict]:
    """Build (or confirm unchanged) and publish the indices of ``organism``; returns their records.

    Raises ``ValueError`` for missing inputs or a failing rsem/salmon step (the message says which).
    """
    from refine_assets.lib.rnaseq.salmon_quant import tool_version

    if transcripts is None and (genome is None or gtf is None):
        raise ValueError(f"{organism}: need a transcript FASTA, or a genome FASTA and a GTF")
    salmon_version = tool_version("salmon")
    records = []
    with tempfile.TemporaryDirectory(prefix=f"refine-index-{organism}-") as tmp_dir:
        tmp = Path(tmp_dir)
        tx2gene = tmp / "tx2gene.tsv"
        details: dict = {}
        if transcripts is None:
            filtered = tmp / "filtered.gtf"
            kept, dropped = filter_pseudogenes(gtf, filtered)
            details.update(gtf_features_kept=kept, pseudogene_features_removed=dropped)
            transcripts, extracted_map = extract_transcripts(genome, filtered, tmp / "rsem" / "ref")
            extracted_map.replace(tx2gene)
        else:
            tx2gene_from_fasta(transcripts, tx2gene)
        fasta_sha = file_sha256(transcripts)[0][:16]
        ids = transcript_ids(transcripts)
        ids_text = "\n".join(ids).encode()
        set_sha = hashlib.sha256(ids_text).hexdigest()[:16]
        for length in lengths:
            name = f"{organism}_{length}"
            k = K_BY_LENGTH[length]
            version = f"{fasta_sha}-k{k}-salmon{salmon_version}"
            previous = read_record(store, KIND, name)
            if previous and previous.get("version") == version and store.exists(previous["key"]):
                records.append(previous)  # same transcripts, k and salmon: nothing to publish
                continue
            build = build_salmon_index(transcripts, tmp / name / "index", k, threads=threads)
            tar_path = tmp / f"{name}.tar.gz"
            with tarfile.open(tar_path, "w:gz") as tf:
                tf.add(build.path, arcname="index")
            art = store.put_file(reference_key(KIND, name, "index.tar.gz"), tar_path)
            tx_art = store.put_file(reference_key(KIND, name, "tx2gene.tsv"), tx2gene)
            previous_ids = _previous_ids(store, previous)
            ids_art = store.put_bytes(
                reference_key(KIND, name, "transcripts.txt.gz"), gzip.compress(ids_text, mtime=0)
            )
            agreement: dict = {}
            if previous and previous_ids is not None:
                agreement = {
                    "previous_version": previous.get("version"),
                    "jaccard_with_previous": round(_jaccard(set(ids), previous_ids), 6),
                }
            records.append(
                write_record(
                    store,
                    KIND,
                    name,
                    {
                        "version": version,
                        "organism": organism,
                        "length": length,
                        "k": build.k,
                        "salmon_version": build.salmon_version,
                        "transcripts": build.transcripts,
                        "transcript_set_sha256": set_sha,
                        "ensembl_release": ensembl_release,
                        "assembly": assembly,
                        "division": division,
                        "source_url": (sources or {}).get("transcripts") or (sources or {}).get("genome"),
                        "url": art.url,
                        "key": art.key,
                        "sha256": art.sha256,
                        "tx2gene_key": tx_art.key,
                        "transcripts_key": ids_art.key,
                        "build_seconds": round(build.seconds, 2),
                        "details": {**details, **agreement, "sources": sources or {}},
                    },
                )
            )
    return records


def transcriptome_index_record(store: ArtifactStore, organism: str, length: str) -> dict | None:
    return read_record(store, KIND, f"{organism}_{length}")
