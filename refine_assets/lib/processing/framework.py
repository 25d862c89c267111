"""Run one processor per sample, independently, with skip-if-done and a ledger of outcomes.

An experiment partition processes its samples one by one (refine.bio's single-sample design: the
corpus grows incrementally). For each sample the processor registered for its ``pipeline`` runs;

* **skip-if-done**: when the previous ledger has a success for the same step whose ``versions``
  (code + tool + reference versions) equal the processor's current ones and whose output still
  exists, the sample is not recomputed (re-running is idempotent and cheap);
* **isolation**: a :class:`ProcessingError` (permanent: corrupt input, no annotation, QC gate
  failed) or any unexpected exception is caught and recorded as ``failed`` with its reason; the
  other samples go on. :class:`TransientProcessingError` (download timed out ...) is recorded too,
  and the caller may choose to fail the run so Dagster's retry policy re-runs it;
* **fallback**: when a raw-data pipeline fails and the sample has a submitter-processed table, the
  ``NO_OP`` processor is tried next and the outcome records both reasons;
* samples whose pipeline has no processor are recorded as ``unsupported`` with the reason.

Outcomes form the experiment's ledger (``processed/<EXP>/ledger.parquet``), loaded into the
warehouse's ``processing_ledger`` table.
"""

from __future__ import annotations

import io
import json
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from refine_assets.lib.processing.vectors import vector_key, write_vector
from refine_assets.lib.storage import ArtifactStore


class ProcessingError(Exception):
    """A permanent, explained failure of one sample (the message is the ledger reason)."""


class TransientProcessingError(ProcessingError):
    """A failure worth retrying later (network trouble, interrupted download)."""


@dataclass
class SampleInput:
    """What a processor knows about a sample: its survey row and original files."""

    accession: str
    experiment_accession: str
    pipeline: str
    organism: str | None = None
    platform_accession: str | None = None
    internal_platform_code: str | None = None
    technology: str | None = None
    manufacturer: str | None = None
    title: str | None = None
    has_raw: bool = False
    files: list[dict] = field(default_factory=list)  # original_files rows of this sample (+ experiment-level)
    has_submitter_table: bool = False
    pipeline_reason: str | None = None  # why pipeline NONE, when the survey said so
    library_layout: str | None = None  # PAIRED / SINGLE (sequencing runs)


@dataclass
class ProcessedSample:
    """A processor's result: gene-level values (Ensembl ids), optional probeset-level values, and
    files to keep (e.g. salmon's quant.sf, uploaded to ``processed/<EXP>/<SAMPLE>/<name>``).

    ``values`` is None for steps whose gene vector is made later at experiment level (salmon ->
    tximport); the first artifact's URL is then the outcome's output URL.
    """

    values: pd.Series | None
    probeset_values: pd.Series | None = None
    artifacts: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    input_checksums: dict[str, str] = field(default_factory=dict)
    method: str = ""


@dataclass
class SampleOutcome:
    """One ledger row: what happened to one sample in one step."""

    sample_accession: str
    experiment_accession: str
    step: str
    status: str  # succeeded | failed | unsupported
    reason: str | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    output_url: str | None = None
    output_sha256: str | None = None
    output_key: str | None = None
    probeset_output_url: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    input_checksums: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: str | None = None
    recorded_at: str = ""


class SampleProcessor(Protocol):
    """A per-sample processing path (one per pipeline)."""

    step: str

    def versions(self, sample: SampleInput) -> dict[str, Any]:
        """Code, tool and reference versions the output would depend on (the skip-if-done key)."""
        ...

    def process(self, sample: SampleInput) -> ProcessedSample:
        """Compute the sample's vector; raise :class:`ProcessingError` with a reason on failure."""
        ...


LEDGER_COLUMNS = [f.name for f in SampleOutcome.__dataclass_fields__.values()]


def ledger_key(experiment: str) -> str:
    return f"processed/{experiment}/ledger.parquet"


def read_ledger(store: ArtifactStore, experiment: str) -> dict[tuple[str, str], SampleOutcome]:
    """The previous outcomes of an experiment by (sample, step) (empty when none)."""
    key = ledger_key(experiment)
    if not store.exists(key):
        return {}
    rows = store.read_parquet(key).to_pylist()
    out = {}
    for r in rows:
        for col in ("versions", "metrics", "input_checksums"):
            r[col] = json.loads(r[col]) if r.get(col) else {}
        outcome = SampleOutcome(**{k: r.get(k) for k in LEDGER_COLUMNS})
        out[(outcome.sample_accession, outcome.step)] = outcome
    return out


def write_ledger(store: ArtifactStore, experiment: str, outcomes: list[SampleOutcome]) -> str:
    """Write the experiment's ledger atomically; returns its URL."""
    rows = []
    for o in sorted(outcomes, key=lambda o: (o.sample_accession, o.step)):
        d = asdict(o)
        for col in ("versions", "metrics", "input_checksums"):
            d[col] = json.dumps(d[col], sort_keys=True, default=str)
        rows.append(d)
    schema = pa.schema([(c, pa.float64() if c == "seconds" else pa.string()) for c in LEDGER_COLUMNS])
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return store.put_bytes(ledger_key(experiment), buf.getvalue()).url


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ProcessingError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def process_samples(
    samples: list[SampleInput],
    processors: Mapping[str, SampleProcessor],
    store: ArtifactStore,
    *,
    previous: Mapping[tuple[str, str], SampleOutcome] | None = None,
    run_id: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> list[SampleOutcome]:
    """Process every sample independently; returns one outcome per sample (see module docstring)."""
    previous = previous or {}
    outcomes: list[SampleOutcome] = []
    for sample in samples:
        outcomes.append(_process_one(sample, processors, store, previous, run_id, log))
    return outcomes


def _process_one(sample, processors, store, previous, run_id, log) -> SampleOutcome:
    chain = []
    if sample.pipeline in processors:
        chain.append(processors[sample.pipeline])
    if sample.pipeline != "NO_OP" and sample.has_submitter_table and "NO_OP" in processors:
        chain.append(processors["NO_OP"])
    if not chain:
        return SampleOutcome(
            sample.accession,
            sample.experiment_accession,
            step=sample.pipeline.lower(),
            status="unsupported",
            reason=sample.pipeline_reason
            or (
                f"no processor for pipeline {sample.pipeline}"
                + (" (platform or data type not supported)" if sample.pipeline == "NONE" else "")
            ),
            run_id=run_id,
            recorded_at=_now(),
        )
    reasons: list[str] = []
    outcome: SampleOutcome | None = None
    for processor in chain:
        versions = processor.versions(sample)
        prev = previous.get((sample.accession, processor.step))
        key = vector_key(sample.experiment_accession, sample.accession)
        done_key = (
            key if prev is None or prev.output_url is None else prev.output_url.rsplit("/processed/", 1)[-1]
        )
        done_key = key if done_key == key else f"processed/{done_key}"
        if prev and prev.status == "succeeded" and prev.versions == versions and store.exists(done_key):
            log(f"{sample.accession}: {processor.step} up to date, skipped")
            return prev
        t0 = time.perf_counter()
        try:
            result = processor.process(sample)
            # references may have been built during processing: record the versions actually used
            versions = processor.versions(sample)
            provenance = {
                "sample": sample.accession,
                "experiment": sample.experiment_accession,
                "step": processor.step,
                "method": result.method,
                "versions": versions,
                "input_checksums": result.input_checksums,
            }
            output = None
            for name, path in result.artifacts.items():
                stored = store.put_file(
                    f"processed/{sample.experiment_accession}/{sample.accession}/{name}", path
                )
                output = output or stored
            if result.values is not None:
                output = write_vector(store, key, result.values, provenance)
            probeset_url = None
            if result.probeset_values is not None:
                probeset_url = write_vector(
                    store,
                    vector_key(sample.experiment_accession, sample.accession, "probeset"),
                    result.probeset_values,
                    provenance,
                ).url
            return SampleOutcome(
                sample.accession,
                sample.experiment_accession,
                step=processor.step,
                status="succeeded",
                reason="; ".join(reasons) or None,
                versions=versions,
                output_url=output.url if output else None,
                output_sha256=output.sha256 if output else None,
                output_key=output.key if output else None,
                probeset_output_url=probeset_url,
                metrics=result.metrics,
                input_checksums=result.input_checksums,
                seconds=time.perf_counter() - t0,
                run_id=run_id,
                recorded_at=_now(),
            )
        except Exception as exc:  # one bad sample never sinks its experiment
            reason = f"{processor.step}: {_reason(exc)}"
            if not isinstance(exc, ProcessingError):
                log(f"{sample.accession}: {traceback.format_exc(limit=3)}")
            log(f"{sample.accession}: {reason}")
            reasons.append(reason)
            outcome = SampleOutcome(
                sample.accession,
                sample.experiment_accession,
                step=processor.step,
                status="failed",
                reason="; ".join(reasons),
                versions=versions,
                seconds=time.perf_counter() - t0,
                run_id=run_id,
                recorded_at=_now(),
                metrics={
                    "transient": isinstance(exc, TransientProcessingError),
                    **getattr(exc, "metrics", {}),
                },
            )
    assert outcome is not None
    return outcome
