"""transcriptome_index (organism x {short, long}): rsem-prepare-reference on the real GENCODE excerpt
(Rsamtools example: 34 transcripts, 6 of them pseudogenes) over a seeded synthetic genome, and the
Ensembl lookup replayed from refine.bio's zebrafish cassette. The extracted transcripts are checked
against an independent splice of the genome from the GTF exons, strand included."""

from __future__ import annotations

import gzip
import random
import re
import tarfile
from collections import defaultdict
from pathlib import Path

import dagster as dg
import pytest

from refine_assets.defs.references.assets import transcriptome_index
from refine_assets.lib.references.transcriptome_index import transcriptome_index_record
from refine_assets.lib.rnaseq.transcriptome import extract_transcripts, filter_pseudogenes
from refine_assets.lib.storage import open_store
from refine_assets.resources import ReplayHttpResource, StorageResource
from refine_assets.resources.fetch import ReplayFetcherResource
from refine_assets.resources.references import ReferenceSourcesResource

GTF = "rnaseq/annotation_excerpts/Rsamtools_example_human_gencode.gtf.gz"
CASSETTE = "surveyor.transcriptome.correct_index_location_danio_rerio.yaml.gz"
_COMP = str.maketrans("ACGT", "TGCA")


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """chr1 (200 kb) and chr2 (250 kb) of seeded random sequence, gzip FASTA (as Ensembl ships it)."""
    rng = random.Random(7)
    seqs = {c: "".join(rng.choices("ACGT", k=n)) for c, n in (("chr1", 200_000), ("chr2", 250_000))}
    path = tmp_path_factory.mktemp("genome") / "genome.fa.gz"
    with gzip.open(path, "wt") as fh:
        for name, s in seqs.items():
            fh.write(f">{name}\n" + "\n".join(s[i : i + 60] for i in range(0, len(s), 60)) + "\n")
    return path, seqs


def _expected(gtf: Path, seqs: dict[str, str]) -> dict[str, str]:
    """Independent splice: exons of each non-pseudogene transcript, in order, reverse-complemented on -."""
    exons, strand = defaultdict(list), {}
    with gzip.open(gtf, "rt") as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            if line.startswith("#") or f[2] != "exon" or "pseudogene" in f[8]:
                continue
            tx = re.search(r'transcript_id "([^"]+)"', f[8]).group(1)
            exons[tx].append((int(f[3]), int(f[4]), f[0]))
            strand[tx] = f[6]
    out = {}
    for tx, ex in exons.items():
        s = "".join(seqs[c][a - 1 : b] for a, b, c in sorted(ex))
        out[tx] = s[::-1].translate(_COMP) if strand[tx] == "-" else s
    return out


def _fasta(path: Path) -> dict[str, str]:
    out, name = {}, None
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            out[name] = ""
        elif name:
            out[name] += line.strip()
    return out


def test_pseudogenes_removed_and_transcripts_spliced(genome, shared_data: Path, tmp_path: Path) -> None:
    path, seqs = genome
    kept, dropped = filter_pseudogenes(shared_data / GTF, tmp_path / "f.gtf")
    lines = [
        ln for ln in gzip.decompress((shared_data / GTF).read_bytes()).decode().splitlines() if ln[:1] != "#"
    ]
    assert dropped == sum("pseudogene" in ln for ln in lines) == 31 and kept + dropped == len(lines)
    tx, tx2gene = extract_transcripts(path, tmp_path / "f.gtf", tmp_path / "rsem" / "ref")
    got, want = _fasta(tx), _expected(shared_data / GTF, seqs)
    assert len(want) == 28 and set(got) == set(want)  # 34 transcripts, 6 of them pseudogenes
    assert got == want
    pairs = [ln.split("\t") for ln in tx2gene.read_text().splitlines()]
    assert {t for _g, t in pairs} == set(want) and all(g.startswith("ENSG") for g, _t in pairs)


def _materialize(store_root: Path, key: str, sources: ReferenceSourcesResource, http=None, files=None):
    with dg.instance_for_test() as instance:
        organism = key.split("|")[1]
        instance.add_dynamic_partitions("organism", [organism])
        return dg.materialize(
            [transcriptome_index],
            partition_key=key,
            instance=instance,
            resources={
                "storage": StorageResource(root=str(store_root)),
                "fetcher": ReplayFetcherResource(files=files or {}, work_dir=str(store_root.parent / "w")),
                "http": http or ReplayHttpResource(cassettes=[]),
                "reference_sources": sources,
            },
            raise_on_error=False,
        )


def test_configured_genome_builds_one_length(genome, shared_data: Path, tmp_path: Path) -> None:
    path, _ = genome
    sources = ReferenceSourcesResource(
        transcriptomes={
            "HOMO_SAPIENS": {"genome": str(path), "gtf": str(shared_data / GTF), "ensembl_release": 75}
        }
    )
    result = _materialize(tmp_path / "store", "short|HOMO_SAPIENS", sources)
    assert result.success
    md = result.asset_materializations_for_node("transcriptome_index")[0].metadata
    assert md["k"].value == 23 and md["transcripts"].value == 28 and md["ensembl_release"].value == 75
    assert md["details"].value["pseudogene_features_removed"] == 31
    store = open_store(str(tmp_path / "store"))
    rec = transcriptome_index_record(store, "HOMO_SAPIENS", "short")
    assert rec is not None and rec["k"] == 23 and rec["salmon_version"]
    assert transcriptome_index_record(store, "HOMO_SAPIENS", "long") is None  # other partition
    with store.local_path(rec["key"]) as tar, tarfile.open(tar) as tf:
        assert any(n.endswith("versionInfo.json") for n in tf.getnames())


def test_ensembl_lookup_from_recorded_rest_answers(
    genome, shared_data: Path, cassettes: Path, tmp_path: Path
) -> None:
    """No configured source: URLs come from Ensembl's REST answers (release 110, GRCz11); the fetcher
    serves local files for them (the real 400 MB genome is not downloaded in tests)."""
    path, _ = genome
    files = {
        "Danio_rerio.GRCz11.dna.primary_assembly.fa.gz": str(path),
        "Danio_rerio.GRCz11.110.gtf.gz": str(shared_data / GTF),
    }
    result = _materialize(
        tmp_path / "store",
        "long|DANIO_RERIO",
        ReferenceSourcesResource(),
        http=ReplayHttpResource(cassettes=[str(cassettes / CASSETTE)]),
        files=files,
    )
    assert result.success
    rec = transcriptome_index_record(open_store(str(tmp_path / "store")), "DANIO_RERIO", "long")
    assert rec is not None and rec["k"] == 31 and rec["ensembl_release"] == 110
    assert rec["assembly"] == "GRCz11"
    assert rec["details"]["sources"]["genome"].endswith("Danio_rerio.GRCz11.dna.primary_assembly.fa.gz")


def test_missing_organism_fails_without_retry(tmp_path: Path, cassettes: Path) -> None:
    result = _materialize(
        tmp_path / "store",
        "short|NOT_AN_ORGANISM",
        ReferenceSourcesResource(transcriptomes={"NOT_AN_ORGANISM": {"division": "Ensembl"}}),
        http=ReplayHttpResource(cassettes=[str(cassettes / CASSETTE)]),
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    assert "NOT_AN_ORGANISM is not a species of Ensembl division EnsemblMain" in error.message
    assert not store_has_records(tmp_path / "store")


def store_has_records(root: Path) -> bool:
    return root.exists() and any(root.rglob("record.json"))


def test_rebuilds_are_idempotent_and_a_changed_transcript_set_is_checked(
    shared_data: Path, tmp_path: Path
) -> None:
    """Same transcripts: nothing published (same version, same tarball); a rebuilt index with another
    transcript set: the Jaccard check (refine.bio's 0.95 alert) fails, naming the figure."""
    full = tmp_path / "tx.fasta"
    full.write_bytes(
        gzip.decompress((shared_data / "rnaseq/salmon_example/transcripts.fasta.gz").read_bytes())
    )
    records = full.read_text().split(">")[1:]
    fewer = tmp_path / "tx10.fasta"
    fewer.write_text("".join(">" + r for r in records[:10]))  # 10 of the 15 real RefSeq transcripts
    store_root = tmp_path / "store"

    def build(fasta: Path):
        sources = ReferenceSourcesResource(transcriptomes={"HOMO_SAPIENS": {"transcripts": str(fasta)}})
        result = _materialize(store_root, "short|HOMO_SAPIENS", sources)
        assert result.success
        (check,) = result.get_asset_check_evaluations()
        return check, transcriptome_index_record(open_store(str(store_root)), "HOMO_SAPIENS", "short")

    first_check, first = build(full)
    assert first_check.passed and first_check.metadata["skipped"].value is True
    assert "skipped: no previous index" in first_check.description
    tarball = (store_root / first["key"]).read_bytes()
    _, again = build(full)
    assert again["version"] == first["version"] and (store_root / first["key"]).read_bytes() == tarball
    check, changed = build(fewer)
    assert changed["version"] != first["version"] and changed["transcripts"] == 10
    assert changed["details"]["jaccard_with_previous"] == round(10 / 15, 6)
    assert not check.passed and "Jaccard 0.6667" in check.description
