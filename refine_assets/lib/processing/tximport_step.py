"""Experiment-level tximport over the experiment's successful salmon runs (lengthScaledTPM).

Inputs come from the experiment ledger: every ``salmon`` outcome that succeeded (QC gates passed)
has its ``quant.sf`` at ``output_key`` and records the index it used in ``versions["index"]`` and
the index's tx2gene file in ``metrics["tx2gene_key"]``. Rules:

* **when**: refine.bio's rule (:func:`refine_assets.lib.rnaseq.tximport.tximport_eligible`): all
  runs quantified, or at least 25 runs and 80 % of them; otherwise nothing is produced yet and the
  outcome says how many runs are missing;
* **who counts**: ``n_runs`` is the experiment's runs that can still be quantified; a run whose
  salmon step failed permanently (QC gate, unreadable input: not transient) is excluded, as refine.bio
  excluded ``is_unable_to_be_processed`` samples (:func:`runs_to_wait_for`);
* **one index per experiment**: runs quantified with different indices (name and version: a rebuilt
  index is another index) are never mixed; the index used by most runs wins (ties: the lexically
  smallest), the other runs are recorded as failed with the reason (re-quantify them with that index);
  the outcome's ``versions`` name the index (name, version, k, Ensembl release, assembly) and salmon;
* **provenance**: every tximport outcome's ``versions`` holds the sorted run set's hash, so the
  asset re-materializes (and skip-if-done re-computes) exactly when the set of runs changes;
* values: tximport ``counts`` with ``countsFromAbundance="lengthScaledTPM"`` (what refine.bio ships
  as ``gene_lengthScaledTPM.tsv``), not logged, per run as ``processed/<EXP>/<RUN>.parquet``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd

from refine_assets.lib.processing.framework import SampleOutcome
from refine_assets.lib.processing.vectors import vector_key, write_vector
from refine_assets.lib.rnaseq.tximport import TximportError, read_tx2gene, tximport_eligible, tximport_files
from refine_assets.lib.storage import ArtifactStore
from refine_assets.lib.survey.pipeline import code_version

STEP = "tximport"
MODE = "lengthScaledTPM"


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


def _index_of(outcome: SampleOutcome) -> str:
    """The index a salmon outcome used: ``<name>@<version>`` (name alone for outcomes recorded before
    versions were kept)."""
    v = outcome.versions
    name = v.get("index")
    return f"{name}@{v['index_version']}" if v.get("index_version") else str(name)


def runs_to_wait_for(samples: list, ledger: Mapping[tuple[str, str], SampleOutcome]) -> int:
    """How many of the experiment's SALMON runs tximport waits for: all of them except those whose
    salmon step failed permanently (a QC gate, an unreadable run; not a transient failure)."""
    n = 0
    for s in samples:
        if s.pipeline != "SALMON":
            continue
        o = ledger.get((s.accession, "salmon"))
        if o is not None and o.status == "failed" and not (o.metrics or {}).get("transient"):
            continue
        n += 1
    return n


def run_tximport(
    store: ArtifactStore,
    experiment: str,
    n_runs: int,
    ledger: Mapping[tuple[str, str], SampleOutcome],
    *,
    run_id: str | None = None,
) -> tuple[list[SampleOutcome], dict]:
    """tximport for one experiment: (new tximport outcomes, summary dict). See module docstring."""
    salmon = sorted(
        (
            o
            for (_, step), o in ledger.items()
            if step == "salmon" and o.status == "succeeded" and o.output_key
        ),
        key=lambda o: o.sample_accession,
    )
    summary: dict = {"runs": n_runs, "quantified": len(salmon)}
    eligibility = tximport_eligible(n_runs, len(salmon)) if n_runs else None
    if not salmon or not eligibility:
        summary["status"] = "waiting"
        summary["reason"] = eligibility.reason if eligibility else "no RNA-seq runs"
        return [], summary
    by_index = Counter(_index_of(o) for o in salmon)
    index = sorted(by_index.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    used = [o for o in salmon if _index_of(o) == index]
    others = [o for o in salmon if _index_of(o) != index]
    run_set = ",".join(o.sample_accession for o in used)
    first = used[0].versions
    versions = {
        "refine_assets": code_version(),
        "tximport": MODE,
        "index": first.get("index"),
        "index_version": first.get("index_version"),
        "index_k": first.get("index_k"),
        "ensembl_release": first.get("ensembl_release"),
        "assembly": first.get("assembly"),
        "salmon": first.get("salmon"),
        "runs_sha256": hashlib.sha256(run_set.encode()).hexdigest()[:16],
        "n_runs": len(used),
    }
    outcomes = [
        SampleOutcome(
            o.sample_accession,
            experiment,
            STEP,
            "failed",
            reason=f"{STEP}: quantified with index {_index_of(o)}, the experiment uses {index}; re-quantify",
            versions=versions,
            run_id=run_id,
            recorded_at=_now(),
        )
        for o in others
    ]
    tx2gene_key = used[0].metrics.get("tx2gene_key")
    if not tx2gene_key or not store.exists(tx2gene_key):
        reason = f"{STEP}: tx2gene of index {index} not found in storage ({tx2gene_key})"
        outcomes += [
            SampleOutcome(
                o.sample_accession,
                experiment,
                STEP,
                "failed",
                reason=reason,
                versions=versions,
                run_id=run_id,
                recorded_at=_now(),
            )
            for o in used
        ]
        summary.update(status="failed", reason=reason)
        return outcomes, summary
    with contextlib.ExitStack() as stack:
        paths = [stack.enter_context(store.local_path(o.output_key)) for o in used]
        tx_path = stack.enter_context(store.local_path(tx2gene_key))
        try:
            # the quantified transcript ids tell the map's transcript column apart from its gene
            # column, also for maps without header or Ensembl ids
            quantified = pd.read_csv(paths[0], sep="\t", usecols=["Name"], dtype=str)["Name"]
            tx2gene = read_tx2gene(tx_path, transcripts=quantified.to_numpy())
            result = tximport_files(paths, tx2gene, MODE, names=[o.sample_accession for o in used])
        except TximportError as exc:
            reason = f"{STEP}: {exc}"
            outcomes += [
                SampleOutcome(
                    o.sample_accession,
                    experiment,
                    STEP,
                    "failed",
                    reason=reason,
                    versions=versions,
                    run_id=run_id,
                    recorded_at=_now(),
                )
                for o in used
            ]
            summary.update(status="failed", reason=reason)
            return outcomes, summary
    provenance = result.provenance()
    coverage = 1.0 - result.missing_transcripts / max(result.n_transcripts, 1)
    for o in used:
        values = result.counts[o.sample_accession]
        if o.sample_accession in result.zero_abundance_samples:
            outcomes.append(
                SampleOutcome(
                    o.sample_accession,
                    experiment,
                    STEP,
                    "failed",
                    reason=f"{STEP}: all transcript abundances are zero",
                    versions=versions,
                    run_id=run_id,
                    recorded_at=_now(),
                )
            )
            continue
        art = write_vector(
            store,
            vector_key(experiment, o.sample_accession),
            values.dropna(),
            {
                "step": STEP,
                "versions": versions,
                "tximport": {k: v for k, v in provenance.items() if k != "source_paths"},
            },
        )
        outcomes.append(
            SampleOutcome(
                o.sample_accession,
                experiment,
                STEP,
                "succeeded",
                reason=None if eligibility.early is False else f"early tximport ({eligibility.reason})",
                versions=versions,
                output_url=art.url,
                output_sha256=art.sha256,
                output_key=art.key,
                metrics={
                    "genes": int(values.notna().sum()),
                    "transcript_coverage": round(coverage, 6),
                    "missing_transcripts": result.missing_transcripts,
                    "runs_used": len(used),
                    "early": bool(eligibility.early),
                },
                input_checksums={"quant.sf": o.output_sha256 or ""},
                run_id=run_id,
                recorded_at=_now(),
            )
        )
    summary.update(
        status="done",
        index=index,
        runs_used=len(used),
        genes=result.n_genes,
        transcript_coverage=round(coverage, 6),
        early=bool(eligibility.early),
    )
    return outcomes, summary
