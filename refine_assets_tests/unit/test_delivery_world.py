"""A small, real-shaped world for the delivery tests: surveys, processed vectors, ledgers, a warehouse.

Surveys go through ``write_survey`` (harmonization included) and ``build_warehouse`` exactly as in
production; vectors through ``write_vector`` and ledgers through ``write_ledger``. Other
``test_delivery_*`` modules import the builders from here; the tests in this module check that the
world itself looks like production data (views, statuses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from refine_assets.lib.processing.framework import SampleOutcome, write_ledger
from refine_assets.lib.processing.vectors import vector_key, write_vector
from refine_assets.lib.storage import LocalArtifactStore
from refine_assets.lib.survey.model import (
    Experiment,
    Organism,
    Platform,
    Sample,
    SampleAttribute,
    SurveyResult,
)
from refine_assets.lib.survey.pipeline import write_survey
from refine_assets.lib.warehouse import build_warehouse

HUMAN, MOUSE, ZEBRAFISH, RAT = "HOMO_SAPIENS", "MUS_MUSCULUS", "DANIO_RERIO", "RATTUS_NORVEGICUS"
TAXA = {HUMAN: 9606, MOUSE: 10090, ZEBRAFISH: 7955, RAT: 10116}
PREFIX = {HUMAN: "ENSG", MOUSE: "ENSMUSG", ZEBRAFISH: "ENSDARG", RAT: "ENSRNOG"}


def gene_ids(organism: str, n: int, start: int = 1) -> list[str]:
    """Ensembl-shaped gene ids of an organism (``ENSG00000000001`` ...)."""
    return [f"{PREFIX[organism]}{i:011d}" for i in range(start, start + n)]


def scan_like(organism: str, n: int, seed: int, *, start: int = 1, affx: int = 3) -> pd.Series:
    """A SCAN-like microarray vector (standardized scores, right-skewed) plus AFFX control probesets."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, n) + rng.gamma(1.5, 1.2, n)
    s = pd.Series(values, index=gene_ids(organism, n, start))
    if affx:
        controls = pd.Series(rng.normal(5, 1, affx), index=[f"AFFX-BioB-{k}_at" for k in range(affx)])
        s = pd.concat([s, controls])
    return s


def tpm_like(organism: str, n: int, seed: int, *, zeros: float = 0.3, start: int = 1) -> pd.Series:
    """A tximport lengthScaledTPM-like vector (not logged, a fraction of exact zeros)."""
    rng = np.random.default_rng(seed)
    values = rng.lognormal(3.0, 2.0, n)
    values[rng.random(n) < zeros] = 0.0
    return pd.Series(values, index=gene_ids(organism, n, start))


@dataclass
class S:
    """One sample of the world: survey fields, its vector and its latest ledger outcome."""

    accession: str
    organism: str = HUMAN
    platform: str = "GPL570"
    code: str | None = "hgu133plus2"
    platform_name: str | None = "[HG-U133_Plus_2] Affymetrix Human Genome U133 Plus 2.0 Array"
    technology: str = "MICROARRAY"
    manufacturer: str = "AFFYMETRIX"
    has_raw: bool = True
    pipeline: str = "AFFY_TO_PCL"
    step: str | None = "affy_scan"  # None: never processed
    status: str = "succeeded"
    reason: str | None = None
    values: pd.Series | None = None
    method: str = "SCANfast+Brainarray"
    attrs: list[tuple[str, str, str]] = field(default_factory=list)  # (key, value, source)
    title: str | None = None


def affy(acc: str, organism: str = HUMAN, seed: int = 0, n: int = 300, **kw) -> S:
    """A raw Affymetrix sample processed by SCAN (``values`` overrides the generated vector)."""
    kw.setdefault("values", scan_like(organism, n, seed))
    return S(acc, organism, **kw)


def rnaseq(acc: str, organism: str = HUMAN, seed: int = 0, n: int = 300, zeros: float = 0.3, **kw) -> S:
    """An RNA-seq run processed by salmon + tximport."""
    defaults = {
        "platform": "IlluminaHiSeq2500",
        "code": None,
        "platform_name": "Illumina HiSeq 2500",
        "technology": "RNA-SEQ",
        "manufacturer": "ILLUMINA",
        "pipeline": "SALMON",
        "step": "tximport",
        "method": "",
        "values": tpm_like(organism, n, seed, zeros=zeros),
    }
    defaults.update(kw)
    return S(acc, organism, **defaults)


def write_experiment(
    store, accession: str, samples: list[S], *, source: str = "GEO", title: str = ""
) -> None:
    """Survey + vectors + ledger of one experiment, written as the production code writes them."""
    exp = Experiment(
        accession,
        source,
        title=title or f"Experiment {accession}",
        description=f"Description of {accession}",
        submitter_institution="Test Institute",
        pubmed_ids=["12345678"],
        publication_title="A paper",
        source_first_published="2010-01-02",
        source_last_modified="2011-03-04",
        technology=samples[0].technology if samples else "UNKNOWN",
    )
    platforms, organisms, rows, attrs = {}, {}, [], []
    for s in samples:
        rows.append(
            Sample(
                s.accession,
                accession,
                source,
                title=s.title or f"{s.accession} title",
                organism=s.organism,
                taxonomy_id=TAXA[s.organism],
                platform_accession=s.platform,
                platform_name=s.platform_name,
                internal_platform_code=s.code,
                technology=s.technology,
                manufacturer=s.manufacturer,
                has_raw=s.has_raw,
                pipeline=s.pipeline,
                source_url=f"https://example.org/{s.accession}",
            )
        )
        platforms[s.platform] = Platform(
            s.platform, source, s.platform_name, s.organism, s.code, s.manufacturer, s.technology, True, True
        )
        organisms[s.organism] = Organism(s.organism, TAXA[s.organism], s.organism.replace("_", " ").title())
        for pos, (k, v, src) in enumerate(s.attrs):
            attrs.append(SampleAttribute(s.accession, k, v, src, pos))
    write_survey(
        SurveyResult(
            exp,
            samples=rows,
            attributes=attrs,
            platforms=list(platforms.values()),
            organisms=list(organisms.values()),
        ),
        store,
    )
    outcomes = []
    for i, s in enumerate(samples):
        if s.step is None:
            continue
        when = f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}"
        versions = {"refine_assets": "0.1.0", "scan": "fast", "brainarray": "22.0.0"}
        if s.step == "tximport":
            versions = {"refine_assets": "0.1.0", "tximport": "lengthScaledTPM", "index": "ens110"}
            outcomes.append(
                SampleOutcome(
                    s.accession,
                    accession,
                    "salmon",
                    "succeeded",
                    versions={"salmon": "1.10.1", "index": "ens110"},
                    output_key=f"processed/{accession}/{s.accession}/quant.sf",
                    output_url=f"file:///quant/{s.accession}",
                    recorded_at=f"2023-12-31T00:00:{i % 60:02d}",
                )
            )
        out = SampleOutcome(
            s.accession, accession, s.step, s.status, reason=s.reason, versions=versions, recorded_at=when
        )
        if s.status == "succeeded" and s.values is not None:
            provenance = {"step": s.step, "method": s.method, "versions": versions}
            if not s.method:
                provenance.pop("method")
            art = write_vector(store, vector_key(accession, s.accession), s.values, provenance)
            out.output_key, out.output_url, out.output_sha256 = art.key, art.url, art.sha256
            out.metrics = {"genes": len(s.values)}
        outcomes.append(out)
    if outcomes:
        write_ledger(store, accession, outcomes)


def make_world(tmp_path: Path, experiments: dict[str, list[S]], *, sources: dict[str, str] | None = None):
    """(store, warehouse path) with every experiment written and loaded."""
    store = LocalArtifactStore(tmp_path / "store")
    for acc, samples in experiments.items():
        write_experiment(store, acc, samples, source=(sources or {}).get(acc, "GEO"))
    db = tmp_path / "warehouse.duckdb"
    build_warehouse(db, store)
    return store, db


def test_world_is_production_shaped(tmp_path: Path) -> None:
    store, db = make_world(
        tmp_path,
        {
            "GSE1": [
                affy(
                    "GSM1",
                    attrs=[("tissue", "kidney", "geo_characteristics"), ("sex", "F", "geo_characteristics")],
                ),
                affy("GSM2", seed=1),
                affy("GSM3", step=None),
                affy("GSM4", status="failed", reason="affy_scan: truncated CEL file"),
            ],
            "SRP1": [rnaseq("SRR1"), rnaseq("SRR2", seed=2)],
        },
    )
    with duckdb.connect(str(db), read_only=True) as con:
        status = dict(con.execute("SELECT sample_accession, status FROM sample_status ORDER BY 1").fetchall())
        assert status == {
            "GSM1": "succeeded",
            "GSM2": "succeeded",
            "GSM3": "pending",
            "GSM4": "failed",
            "SRR1": "succeeded",
            "SRR2": "succeeded",
        }
        steps = dict(con.execute("SELECT sample_accession, last_step FROM sample_status").fetchall())
        assert steps["SRR1"] == "tximport"  # the newest outcome, after salmon
        keys = dict(
            con.execute(
                "SELECT sample_accession, output_key FROM ledger_latest WHERE step <> 'survey' AND status = 'succeeded'"
                " AND output_key LIKE '%.parquet'"
            ).fetchall()
        )
        assert keys["GSM1"] == "processed/GSE1/GSM1.parquet"
        harm = con.execute(
            "SELECT refinebio_sex, refinebio_specimen_part FROM samples_harmonized WHERE refinebio_accession_code='GSM1'"
        ).fetchone()
        assert harm == ("female", "kidney")
    assert store.exists("processed/SRP1/SRR2.parquet")
