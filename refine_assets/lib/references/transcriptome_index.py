"""Transcriptome indices as reference artifacts (``references/transcriptome_index/<ORG>_<length>/``).

For one organism, from an Ensembl genome FASTA + GTF (pseudogenes removed, transcripts extracted with
rsem-prepare-reference) or from a transcript FASTA: a salmon index per length class (short k=23,
long k=31), stored as ``index.tar.gz`` with the transcript -> gene map ``tx2gene.tsv`` and a record
(organism, length, k, salmon version, transcript count, Ensembl release and assembly when known,
sources). ``refine-assets references transcriptome-index ORGANISM --length short|long`` prints it.
"""

from __future__ import annotations

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
    sources: dict | None = None,
    threads: int = 2,
) -> list[dict]:
    """Build and publish the indices of ``organism``; returns their records."""
    if transcripts is None and (genome is None or gtf is None):
        raise ValueError(f"{organism}: need a transcript FASTA, or a genome FASTA and a GTF")
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
        version = file_sha256(transcripts)[0][:16]
        for length in lengths:
            name = f"{organism}_{length}"
            build = build_salmon_index(
                transcripts, tmp / name / "index", K_BY_LENGTH[length], threads=threads
            )
            tar_path = tmp / f"{name}.tar.gz"
            with tarfile.open(tar_path, "w:gz") as tf:
                tf.add(build.path, arcname="index")
            art = store.put_file(reference_key(KIND, name, "index.tar.gz"), tar_path)
            tx_art = store.put_file(reference_key(KIND, name, "tx2gene.tsv"), tx2gene)
            records.append(
                write_record(
                    store,
                    KIND,
                    name,
                    {
                        "version": f"{version}-k{build.k}-salmon{build.salmon_version}",
                        "organism": organism,
                        "length": length,
                        "k": build.k,
                        "salmon_version": build.salmon_version,
                        "transcripts": build.transcripts,
                        "ensembl_release": ensembl_release,
                        "assembly": assembly,
                        "source_url": (sources or {}).get("transcripts") or (sources or {}).get("genome"),
                        "url": art.url,
                        "key": art.key,
                        "sha256": art.sha256,
                        "tx2gene_key": tx_art.key,
                        "build_seconds": round(build.seconds, 2),
                        "details": {**details, "sources": sources or {}},
                    },
                )
            )
    return records


def transcriptome_index_record(store: ArtifactStore, organism: str, length: str) -> dict | None:
    return read_record(store, KIND, f"{organism}_{length}")
