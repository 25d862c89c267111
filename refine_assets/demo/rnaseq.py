"""An offline RNA-seq experiment for the demo and the tests: real reads, an Ensembl-format genome excerpt.

No machine here reaches ENA, SRA or Ensembl's FTP site, and no real genome ships in a registry package.
What is served, under the real URLs, through the replay HTTP client and fetcher:

=============================================== ================================================================
served as                                       content
=============================================== ================================================================
ENA portal search (``result=read_run``, study), a **synthetic** study ``ERP990001`` (accessions ``ERR99000nn``,
BioSamples JSON                                 ``SAMEA99000nn`` are not real records) in the portal's JSON
                                                format, four runs:
``ERR9900011``  (``.sra`` at the SRA mirror)    the **salmon package's example reads** (10,000 read pairs of
                                                50 bp simulated from its 15 human RefSeq transcripts), packed
                                                in a real ``.sra`` with sra-toolkit's ``latf-load`` + ``kar``
``ERR9900012``  (``.sra``)                      the **real reads of E-MTAB-1147 run ERR127302** (20,000 pairs of
                                                72 bp, r-bioc-shortread): a whole-transcriptome human library,
                                                which maps to almost nothing of the excerpt and fails the
                                                mapping-rate gate, with the figure
``ERR9900013``                                  a single-cell library (``TRANSCRIPTOMIC SINGLE CELL``): routed
                                                at survey time, never downloaded
``ERR9900014``                                  a PacBio Sequel II run: routed at survey time (long reads)
Ensembl ``Homo_sapiens.GRCh38.dna.primary_      a **constructed** genome excerpt in Ensembl's format: one
assembly.fa.gz`` and ``...GRCh38.110.gtf.gz``   chromosome ``1`` on which the 15 real RefSeq transcripts are laid
(release 110, the release the recorded REST     out as exons separated by seeded random introns, plus one
answers give)                                   pseudogene (removed by the index's pseudogene filter); GTF lines
                                                ``gene``/``transcript``/``exon`` with Ensembl's attributes
=============================================== ================================================================

The code path is the live one: the SRA surveyor reads the portal records, the transcriptome index is
looked up in Ensembl (species list and release from refine.bio's recorded REST answers, HEADs and
downloads replayed) and built with rsem + salmon, salmon quantifies through fastq-dump and named pipes,
tximport runs over the runs that passed QC.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from refine_assets.demo.references import OfflineCatalogue
from refine_assets.lib.http import build_url

__all__ = ["ENSEMBL_RELEASE", "RUNS", "STUDY", "build_rnaseq_example", "genome_excerpt"]

STUDY = "ERP990001"
PROJECT = "PRJEB990001"
ENSEMBL_RELEASE = 110
ENSEMBL_FTP = f"http://ftp.ensembl.org/pub/release-{ENSEMBL_RELEASE}"
GENOME_URL = f"{ENSEMBL_FTP}/fasta/homo_sapiens/dna/Homo_sapiens.GRCh38.dna.primary_assembly.fa.gz"
GTF_URL = f"{ENSEMBL_FTP}/gtf/homo_sapiens/Homo_sapiens.GRCh38.{ENSEMBL_RELEASE}.gtf.gz"
SRA_URL = "https://sra-pub-run-odp.s3.amazonaws.com/sra/{run}/{run}"
PORTAL = "https://www.ebi.ac.uk/ena/portal/api/search"
BIOSAMPLES = "https://www.ebi.ac.uk/biosamples/samples/{accession}"
XREF = "https://www.ebi.ac.uk/ena/xref/rest/json/search"
_COMP = str.maketrans("ACGT", "TGCA")


@dataclass(frozen=True)
class ExampleRun:
    accession: str
    title: str
    instrument_platform: str
    instrument_model: str
    library_source: str
    reads: str | None  # "salmon_example" | "ERR127302" | None (no files)


RUNS = (
    ExampleRun(
        "ERR9900011",
        "salmon example reads (simulated)",
        "ILLUMINA",
        "Illumina HiSeq 2500",
        "TRANSCRIPTOMIC",
        "salmon_example",
    ),
    ExampleRun(
        "ERR9900012",
        "E-MTAB-1147 ERR127302 subset",
        "ILLUMINA",
        "Illumina HiSeq 2000",
        "TRANSCRIPTOMIC",
        "ERR127302",
    ),
    ExampleRun(
        "ERR9900013",
        "single-cell library",
        "ILLUMINA",
        "Illumina NovaSeq 6000",
        "TRANSCRIPTOMIC SINGLE CELL",
        None,
    ),
    ExampleRun("ERR9900014", "long-read library", "PACBIO_SMRT", "PacBio Sequel II", "TRANSCRIPTOMIC", None),
)


def _fasta(path: Path) -> dict[str, str]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    out: dict[str, str] = {}
    name = None
    for line in raw.decode().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            out[name] = ""
        elif name:
            out[name] += line.strip().upper()
    return out


def genome_excerpt(transcripts: Path, out_dir: Path, seed: int = 11) -> tuple[Path, Path]:
    """(genome FASTA.gz, GTF.gz) in Ensembl's format laying ``transcripts`` out as spliced genes.

    Each transcript is cut in up to three exons at seeded positions, separated by seeded random introns
    (GT...AG), every other gene on the minus strand (its exons reverse-complemented); a 1,000 bp
    random spacer separates genes; a processed pseudogene of random sequence is appended. Both files are
    written deterministically (gzip mtime 0).
    """
    rng = random.Random(seed)
    tx = _fasta(transcripts)
    chrom: list[str] = []
    pos = 1
    gtf: list[str] = []

    def add(seq: str) -> tuple[int, int]:
        nonlocal pos
        start = pos
        chrom.append(seq)
        pos += len(seq)
        return start, pos - 1

    def attrs(gene: str, biotype: str, tx_id: str | None = None, exon: int | None = None) -> str:
        a = f'gene_id "{gene}"; gene_version "1"; gene_name "{gene}"; gene_source "refine-assets"; gene_biotype "{biotype}";'
        if tx_id:
            a += f' transcript_id "{tx_id}"; transcript_version "1"; transcript_biotype "{biotype}";'
        if exon:
            a += f' exon_number "{exon}";'
        return a

    for i, (tid, seq) in enumerate(sorted(tx.items())):
        add("".join(rng.choices("ACGT", k=1000)))
        strand = "-" if i % 2 else "+"
        n_exons = 3 if len(seq) > 900 else 1
        cuts = sorted(rng.sample(range(200, len(seq) - 200), n_exons - 1)) if n_exons > 1 else []
        pieces = [seq[a:b] for a, b in zip([0, *cuts], [*cuts, len(seq)], strict=True)]
        if strand == "-":  # genomic order of the minus-strand gene: reverse complement, reversed exons
            pieces = [p[::-1].translate(_COMP) for p in reversed(pieces)]
        exons = []
        for j, piece in enumerate(pieces):
            if j:
                add("GT" + "".join(rng.choices("ACGT", k=rng.randint(150, 600))) + "AG")
            exons.append(add(piece))
        gene = f"{tid}_gene"
        start, end = exons[0][0], exons[-1][1]
        biotype = "protein_coding" if tid.startswith("NM_") else "lncRNA"
        gtf.append(f"1\trefine-assets\tgene\t{start}\t{end}\t.\t{strand}\t.\t{attrs(gene, biotype)}")
        gtf.append(
            f"1\trefine-assets\ttranscript\t{start}\t{end}\t.\t{strand}\t.\t{attrs(gene, biotype, tid)}"
        )
        numbered = exons if strand == "+" else list(reversed(exons))
        for k, (a, b) in enumerate(numbered, start=1):
            gtf.append(f"1\trefine-assets\texon\t{a}\t{b}\t.\t{strand}\t.\t{attrs(gene, biotype, tid, k)}")
    add("".join(rng.choices("ACGT", k=1000)))
    a, b = add("".join(rng.choices("ACGT", k=800)))
    pseudo = "PSEUDO1"
    for feature, extra in (
        ("gene", {}),
        ("transcript", {"tx_id": "PSEUDO1-201"}),
        ("exon", {"tx_id": "PSEUDO1-201", "exon": 1}),
    ):
        gtf.append(
            f"1\trefine-assets\t{feature}\t{a}\t{b}\t.\t+\t.\t{attrs(pseudo, 'processed_pseudogene', **extra)}"
        )
    add("".join(rng.choices("ACGT", k=1000)))
    sequence = "".join(chrom)
    header = f">1 dna:chromosome chromosome:GRCh38:1:1:{len(sequence)}:1 REF"
    body = "\n".join(sequence[i : i + 60] for i in range(0, len(sequence), 60))
    out_dir.mkdir(parents=True, exist_ok=True)
    genome = out_dir / "Homo_sapiens.GRCh38.dna.primary_assembly.fa.gz"
    genome.write_bytes(gzip.compress(f"{header}\n{body}\n".encode(), mtime=0))
    annotation = out_dir / f"Homo_sapiens.GRCh38.{ENSEMBL_RELEASE}.gtf.gz"
    lines = [
        "#!genome-build GRCh38.p14",
        f"#!genebuild-last-updated excerpt of refine-assets, release {ENSEMBL_RELEASE}",
    ]
    annotation.write_bytes(gzip.compress(("\n".join(lines + gtf) + "\n").encode(), mtime=0))
    return genome, annotation


def make_sra(out: Path, read1: Path, read2: Path) -> Path:
    """A real ``.sra`` archive of a read pair (sra-toolkit ``latf-load`` + ``kar``); RuntimeError if missing."""
    for tool in ("latf-load", "kar"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: install the Debian package sra-toolkit (scripts/setup.sh)")
    with tempfile.TemporaryDirectory(prefix="refine-sra-") as tmp_dir:
        tmp = Path(tmp_dir)
        plain = []
        for i, src in enumerate((read1, read2), start=1):
            data = src.read_bytes()
            dst = tmp / f"r{i}.fq"
            dst.write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
            plain.append(dst)
        load = subprocess.run(
            [
                "latf-load",
                "-p",
                "ILLUMINA",
                "--quality",
                "PHRED_33",
                "-o",
                str(tmp / "dir"),
                "-1",
                str(plain[0]),
                "-2",
                str(plain[1]),
            ],
            capture_output=True,
            text=True,
        )
        if not (tmp / "dir").is_dir():
            raise RuntimeError(f"latf-load failed: {load.stderr.strip()[-300:]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        subprocess.run(["kar", "--create", str(out), "-d", str(tmp / "dir")], check=True, capture_output=True)
    return out


def _run_record(run: ExampleRun, n: int) -> dict:
    sample = f"SAMEA99000{n:02d}"
    rec = {
        "run_accession": run.accession,
        "experiment_accession": f"ERX99000{n:02d}",
        "sample_accession": sample,
        "secondary_sample_accession": f"ERS99000{n:02d}",
        "study_accession": PROJECT,
        "secondary_study_accession": STUDY,
        "scientific_name": "Homo sapiens",
        "tax_id": "9606",
        "instrument_platform": run.instrument_platform,
        "instrument_model": run.instrument_model,
        "library_strategy": "RNA-Seq",
        "library_source": run.library_source,
        "library_selection": "cDNA",
        "library_layout": "PAIRED",
        "sample_title": run.title,
        "experiment_title": f"{run.instrument_model} paired end sequencing; {run.title}",
        "center_name": "refine-assets",
        "first_public": "2026-12-01",
        "last_updated": "2026-12-01",
    }
    if run.reads:
        base = f"ftp.sra.ebi.ac.uk/vol1/fastq/{run.accession[:6]}/0{n:02d}/{run.accession}/{run.accession}"
        rec.update(fastq_ftp=f"{base}_1.fastq.gz;{base}_2.fastq.gz", fastq_bytes="1;1", fastq_md5=";")
    return rec


def build_rnaseq_example(
    out_dir: Path, salmon_examples: Path, err127302: tuple[Path, Path]
) -> tuple[OfflineCatalogue, dict]:
    """Write everything of the module table into ``out_dir``; returns the catalogue to serve and the
    ``transcriptomes`` override of the same genome excerpt (for runs without the recorded Ensembl REST
    answers). ``salmon_examples``: a folder with salmon's ``transcripts.fasta``, ``reads_1.fastq`` and
    ``reads_2.fastq`` (plain or ``.gz``)."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def example(name: str) -> Path:
        for candidate in (salmon_examples / name, salmon_examples / f"{name}.gz"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{salmon_examples}: no {name}(.gz)")

    genome, gtf = genome_excerpt(example("transcripts.fasta"), out_dir / "ensembl")
    reads = {"salmon_example": (example("reads_1.fastq"), example("reads_2.fastq")), "ERR127302": err127302}
    http: dict[str, str] = {GENOME_URL: str(genome), GTF_URL: str(gtf)}
    downloads: dict[str, str] = {GENOME_URL: str(genome), GTF_URL: str(gtf)}
    records = []
    docs = out_dir / "ena"
    docs.mkdir(exist_ok=True)
    for n, run in enumerate(RUNS, start=11):
        rec = _run_record(run, n)
        records.append(rec)
        biosample = {
            "name": rec["sample_accession"],
            "accession": rec["sample_accession"],
            "taxId": 9606,
            "characteristics": {
                "organism": [{"text": "Homo sapiens"}],
                "title": [{"text": run.title}],
                "tissue": [
                    {"text": "lymphoblastoid cell line" if run.reads == "ERR127302" else "not applicable"}
                ],
            },
        }
        path = docs / f"{rec['sample_accession']}.json"
        path.write_text(json.dumps(biosample))
        http[build_url(BIOSAMPLES.format(accession=rec["sample_accession"]), {"format": "json"})] = str(path)
        if run.reads:
            sra = make_sra(out_dir / "sra" / run.accession, *reads[run.reads])
            downloads[SRA_URL.format(run=run.accession)] = str(sra)
    runs_json = docs / "read_run.json"
    runs_json.write_text(json.dumps(records))
    http[
        build_url(
            PORTAL,
            {
                "format": "json",
                "result": "read_run",
                "fields": "all",
                "query": f'study_accession="{STUDY}" OR secondary_study_accession="{STUDY}"',
                "limit": "0",
            },
        )
    ] = str(runs_json)
    study = docs / "study.json"
    study.write_text(
        json.dumps(
            [
                {
                    "study_accession": PROJECT,
                    "secondary_study_accession": STUDY,
                    "study_title": "Offline RNA-seq example of refine-assets (synthetic study, real reads)",
                    "study_description": "Reads: salmon's example reads and E-MTAB-1147 ERR127302 (subset).",
                    "center_name": "refine-assets",
                    "first_public": "2026-12-01",
                    "last_updated": "2026-12-01",
                    "scientific_name": "Homo sapiens",
                    "tax_id": "9606",
                }
            ]
        )
    )
    http[
        build_url(PORTAL, {"format": "json", "includeAccessions": STUDY, "result": "study", "fields": "all"})
    ] = str(study)
    xref = docs / "xref.json"
    xref.write_text("[]")
    http[build_url(XREF, {"accession": PROJECT, "expanded": "true", "source": "PubMed"})] = str(xref)
    override = {
        "HOMO_SAPIENS": {
            "genome": str(genome),
            "gtf": str(gtf),
            "ensembl_release": ENSEMBL_RELEASE,
            "assembly": "GRCh38",
        }
    }
    catalogue = OfflineCatalogue(http, downloads)
    catalogue.save(out_dir)  # ``refine-assets process ERP990001 --replay <out_dir>``
    return catalogue, override
