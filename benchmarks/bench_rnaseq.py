"""Benchmark RNA-seq references and the RNA-seq chain through the Dagster graph.

Usage::

    uv run python benchmarks/bench_rnaseq.py [--data ../shared/data] [--work /tmp/bench-rnaseq] \
        [--classes bacterium,fungus,invertebrate,vertebrate-quarter] [--runs 6] [--replicate 100]

Phases (one process, each timed on its own):

1. **Index build per organism size class**: ``build_transcriptome_references`` (the code the
   ``transcriptome_index`` asset and the on-demand reference provider run: refine.bio's pseudogene filter
   on the GTF -> ``rsem-prepare-reference`` extraction of the transcripts from the genome -> ``salmon
   index`` k=23 and k=31 with 2 threads -> tarball + record in a local store) on **synthetic** genomes in
   Ensembl's FASTA/GTF format (``refine_assets.demo.rnaseq.genome_excerpt`` laying seeded random
   transcripts out as spliced genes with random introns). Random transcripts share no k-mers, so the
   figures are an upper bound for a real transcriptome of the same size (real isoforms share exons).
   Classes (transcripts x mean length): bacterium 4,000 x 1 kb (4 Mb), fungus 6,500 x 1.5 kb (10 Mb),
   invertebrate 30,000 x 2 kb (60 Mb; Drosophila has ~35,000 transcripts), vertebrate-quarter
   60,000 x 2 kb (120 Mb, about a quarter of the human Ensembl cDNA set after the filter).
   Wall seconds per class: total, salmon k=23, salmon k=31 (the records' ``build_seconds``), the rest
   (filter + rsem extraction + tarballs); index size; peak RSS of the children.
2. **Runs per hour through the graph**: ``refine-assets process ERP990001 --replay <cassettes> --replay <example>`` in a new,
   empty home (survey -> transcriptome index asset -> fastq-dump | salmon per run -> tximport ->
   warehouse), on the offline RNA-seq example of ``refine_assets/demo/rnaseq.py`` with ```--runs`` extra
   runs added, each a real .sra of salmon's example read pairs repeated ``--replicate`` times (100: 1M
   pairs of 50 bp). Reported: the process wall time, the index build inside it, and the SALMON steps'
   own seconds from the ledger, so runs/hour = runs / (sum of the salmon steps' seconds) * 3600, with
   the salmon threads the processor uses (2).

Needs ``../shared/data`` (``rnaseq/``), salmon, rsem, sra-toolkit. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

CLASSES = {
    "bacterium": (4_000, 1_000),
    "fungus": (6_500, 1_500),
    "invertebrate": (30_000, 2_000),
    "vertebrate-quarter": (60_000, 2_000),
}


def _random_transcripts(path: Path, n: int, mean_length: int, seed: int) -> int:
    """A FASTA of ``n`` seeded random transcripts (lengths uniform in [mean/2, 3 mean/2]); bases."""
    rng = random.Random(seed)
    total = 0
    with open(path, "w") as out:
        for i in range(n):
            length = rng.randint(mean_length // 2, mean_length * 3 // 2)
            seq = "".join(rng.choices("ACGT", k=length))
            total += length
            prefix = "NM_" if i % 4 else "NR_"
            out.write(f">{prefix}{i:09d}.1\n")
            out.write("\n".join(seq[j : j + 60] for j in range(0, length, 60)) + "\n")
    return total


def index_builds(work: Path, classes: list[str]) -> list[dict]:
    from refine_assets.demo.rnaseq import genome_excerpt
    from refine_assets.lib.references.transcriptome_index import build_transcriptome_references
    from refine_assets.lib.storage import open_store

    rows = []
    for seed, name in enumerate(classes, start=1):
        n, mean = CLASSES[name]
        folder = work / "genomes" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        t = time.perf_counter()
        bases = _random_transcripts(folder / "transcripts.fa", n, mean, seed)
        genome, gtf = genome_excerpt(folder / "transcripts.fa", folder)
        (folder / "transcripts.fa").unlink()
        generate_s = time.perf_counter() - t
        store_dir = work / "stores" / name
        shutil.rmtree(store_dir, ignore_errors=True)
        store = open_store(str(store_dir))
        t = time.perf_counter()
        records = build_transcriptome_references(
            store, name.upper().replace("-", "_"), genome=genome, gtf=gtf
        )
        total = time.perf_counter() - t
        salmon = {r["length"]: r["build_seconds"] for r in records}
        sizes = {
            r["length"]: round((store_dir / r["key"]).stat().st_size / 2**20, 1)
            for r in records
            if (store_dir / r["key"]).exists()
        }
        rows.append(
            {
                "class": name,
                "transcripts": records[0]["transcripts"],
                "transcriptome_mb": round(bases / 1e6, 1),
                "genome_mb_gz": round(genome.stat().st_size / 2**20, 1),
                "generate_s": round(generate_s, 1),
                "build_total_s": round(total, 1),
                "salmon_k23_s": salmon.get("short"),
                "salmon_k31_s": salmon.get("long"),
                "filter_extract_publish_s": round(total - sum(salmon.values()), 1),
                "index_tar_mib": sizes,
                "peak_child_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(store_dir, ignore_errors=True)
    return rows


def _extra_runs(example: Path, data: Path, runs: int, replicate: int) -> int:
    """Add ``runs`` runs (ERR99000{21..}) of salmon's example pairs x ``replicate`` to the example; pairs."""
    from bench_salmon import write_reads

    from refine_assets.demo.rnaseq import SRA_URL, make_sra

    with tempfile.TemporaryDirectory(prefix="bench-rnaseq-") as tmp_dir:
        tmp = Path(tmp_dir)
        src = data / "rnaseq" / "salmon_example"
        fastq = []
        for mate in (1, 2):
            fastq.append(tmp / f"r{mate}.fq")
            pairs = write_reads(src / f"reads_{mate}.fastq.gz", fastq[-1], replicate)
        sra = make_sra(example / "sra" / "bench_runs.sra", fastq[0], fastq[1])
    catalogue = json.loads((example / "catalogue.json").read_text())
    portal = next(url for url in catalogue["http_files"] if "result=read_run" in url)
    records = json.loads(Path(catalogue["http_files"][portal]).read_text())
    template = next(r for r in records if r["run_accession"] == "ERR9900011")
    for k in range(runs):
        n = 21 + k
        rec = dict(template)
        for field, prefix in (
            ("run_accession", "ERR99000"),
            ("experiment_accession", "ERX99000"),
            ("sample_accession", "SAMEA99000"),
            ("secondary_sample_accession", "ERS99000"),
        ):
            rec[field] = f"{prefix}{n:02d}"
        rec["sample_title"] = f"benchmark run {k + 1}"
        base = f"ftp.sra.ebi.ac.uk/vol1/fastq/ERR990/0{n:02d}/{rec['run_accession']}/{rec['run_accession']}"
        rec["fastq_ftp"] = f"{base}_1.fastq.gz;{base}_2.fastq.gz"
        records.append(rec)
        sample_url = next(u for u in catalogue["http_files"] if template["sample_accession"] in u)
        catalogue["http_files"][sample_url.replace(template["sample_accession"], rec["sample_accession"])] = (
            catalogue["http_files"][sample_url]
        )
        catalogue["downloads"][SRA_URL.format(run=rec["run_accession"])] = str(sra)
    path = example / "ena" / "read_run_bench.json"
    path.write_text(json.dumps(records))
    catalogue["http_files"][portal] = str(path)
    (example / "catalogue.json").write_text(json.dumps(catalogue, indent=1))
    return pairs


def graph_throughput(work: Path, data: Path, runs: int, replicate: int) -> dict:
    import pyarrow.parquet as pq

    from refine_assets.demo.rnaseq import STUDY, build_rnaseq_example

    example = work / "example"
    shutil.rmtree(example, ignore_errors=True)
    em = data / "rnaseq" / "E-MTAB-1147"
    build_rnaseq_example(
        example,
        data / "rnaseq" / "salmon_example",
        (em / "ERR127302_1_subset.fastq.gz", em / "ERR127302_2_subset.fastq.gz"),
    )
    pairs = _extra_runs(example, data, runs, replicate)
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, REFINE_ASSETS_HOME=str(home))
    env.pop("DAGSTER_HOME", None)
    exe = Path(sys.executable).with_name("refine-assets")
    t = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "process", STUDY, "--replay", str(data / "cassettes"), "--replay", str(example)],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"process failed: {proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout)
    ledger = pq.read_table(home / "storage" / "processed" / STUDY / "ledger.parquet").to_pylist()
    salmon = [r for r in ledger if r["step"] == "salmon" and r["status"] == "succeeded"]
    bench = [r for r in salmon if r["sample_accession"] >= "ERR9900021"]
    salmon_s = sum(r["seconds"] for r in bench)
    index_s = []
    for record in (home / "storage" / "references" / "transcriptome_index").rglob("record.json"):
        index_s.append(json.loads(record.read_text()).get("build_seconds"))
    return {
        "runs_added": runs,
        "read_pairs_per_run": pairs,
        "process_wall_s": round(wall, 1),
        "summary": {k: summary[k] for k in ("samples", "processed", "failed", "unsupported")},
        "index_salmon_build_s": index_s,
        "salmon_step_s": [round(r["seconds"], 2) for r in bench],
        "salmon_threads": 2,
        "runs_per_hour": round(len(bench) / salmon_s * 3600) if salmon_s else None,
        "read_pairs_per_s": round(len(bench) * pairs / salmon_s) if salmon_s else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("REFINE_ASSETS_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-rnaseq"))
    parser.add_argument("--classes", default=",".join(CLASSES))
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--replicate", type=int, default=100)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    classes = [c for c in args.classes.split(",") if c]
    unknown = sorted(set(classes) - set(CLASSES))
    if unknown:
        raise SystemExit(f"unknown class {unknown[0]!r}; known: {', '.join(CLASSES)}")
    result = {"index_builds": index_builds(args.work, classes)}
    if args.runs:
        result["graph"] = graph_throughput(args.work, args.data, args.runs, args.replicate)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
