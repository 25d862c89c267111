"""The demo's RNA-seq experiment from recorded Salmon outputs (``../shared/data/rnaseq/SRP095529``).

The shared data holds refine.bio's real Salmon outputs of the 20 runs of SRA study SRP095529
(zebrafish; ``quant.sf`` against refine.bio's short zebrafish index) and that index's
``genes_to_transcripts.txt`` — but not the reads and no recorded SRA survey answer. Like the demo's
recorded HTTP responses stand in for the network, these stand in for running salmon on reads the
machine does not have: :func:`import_recorded_rnaseq` writes a minimal survey of the study (only the
facts the files carry: run accessions, organism, RNA-seq, SRA) and one ``salmon`` ledger outcome per
run whose output is the recorded ``quant.sf``, marked ``"recorded": true`` with its source in the
versions. Everything downstream runs for real: tximport, the warehouse, the organism's QN target,
its compendium and quantpendium.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from refine_assets.lib.processing.framework import SampleOutcome, read_ledger, write_ledger
from refine_assets.lib.storage import ArtifactStore
from refine_assets.lib.survey.model import Experiment, Organism, Sample, SurveyResult
from refine_assets.lib.survey.pipeline import write_survey

EXPERIMENT = "SRP095529"
ORGANISM = "DANIO_RERIO"
INDEX = "DANIO_RERIO_short@refinebio"
TX2GENE_KEY = "references/transcriptome_index/DANIO_RERIO_short_refinebio/genes_to_transcripts.txt.gz"


def import_recorded_rnaseq(store: ArtifactStore, shared: Path) -> list[str]:
    """Survey + recorded salmon outcomes of SRP095529 in ``store``; returns the run accessions.

    Idempotent: runs already in the ledger as succeeded salmon outcomes are left as they are.
    """
    folder = shared / "rnaseq" / EXPERIMENT
    runs = sorted(p.name for p in folder.iterdir() if (p / "quant.sf.gz").is_file())
    if not runs:
        raise FileNotFoundError(f"{folder}: no recorded quant.sf.gz files")
    samples = [
        Sample(
            run,
            EXPERIMENT,
            "SRA",
            title=run,
            organism=ORGANISM,
            taxonomy_id=7955,
            technology="RNA-SEQ",
            manufacturer="ILLUMINA",
            has_raw=True,
            pipeline="SALMON",
            source_url=f"https://www.ncbi.nlm.nih.gov/sra/{run}",
        )
        for run in runs
    ]
    experiment = Experiment(
        EXPERIMENT,
        "SRA",
        title="SRP095529 (demo: refine.bio's recorded Salmon outputs; no survey recording)",
        technology="RNA-SEQ",
    )
    write_survey(
        SurveyResult(experiment, samples=samples, organisms=[Organism(ORGANISM, 7955, "Danio rerio")]),
        store,
    )
    tx2gene = shared / "rnaseq/ZEBRAFISH_INDEX_SHORT/genes_to_transcripts.txt.gz"
    if not store.exists(TX2GENE_KEY):
        store.put_file(TX2GENE_KEY, tx2gene)
    ledger = read_ledger(store, EXPERIMENT)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat()
    for run in runs:
        if (old := ledger.get((run, "salmon"))) is not None and old.status == "succeeded":
            continue
        path = folder / run / "quant.sf.gz"
        art = store.put_file(f"processed/{EXPERIMENT}/{run}/quant.sf.gz", path)
        ledger[(run, "salmon")] = SampleOutcome(
            run,
            EXPERIMENT,
            "salmon",
            "succeeded",
            versions={"index": INDEX, "recorded": True, "source": "refine.bio test volume"},
            output_key=art.key,
            output_url=art.url,
            output_sha256=art.sha256,
            metrics={"tx2gene_key": TX2GENE_KEY, "index": INDEX, "recorded": True},
            input_checksums={"quant.sf.gz": art.sha256},  # the stored bytes are the file's
            recorded_at=now,
        )
    write_ledger(store, EXPERIMENT, list(ledger.values()))
    return runs
