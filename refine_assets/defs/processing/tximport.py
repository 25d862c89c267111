"""Experiment-level tximport (RNA-seq): gene values per run once enough runs are quantified."""

import dagster as dg

from refine_assets.defs.partitions import experiment_partitions
from refine_assets.resources import StorageResource


@dg.asset(
    key="experiment_tximport",
    group_name="processing",
    partitions_def=experiment_partitions,
    deps=["experiment_processed"],
    kinds={"parquet"},
    code_version="1",
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec(
            "tximport_coverage",
            asset="experiment_tximport",
            description="At least 90% of the quantified transcripts are in the index's tx2gene.",
        )
    ],
    description=(
        "tximport (lengthScaledTPM) over the experiment's salmon runs that passed QC, with refine.bio's rule "
        "(all runs, or >= 25 runs and 80 % quantified); one index per experiment; per-run gene vectors."
    ),
)
def experiment_tximport(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    from refine_assets.lib.processing.framework import read_ledger, write_ledger
    from refine_assets.lib.processing.inputs import load_sample_inputs
    from refine_assets.lib.processing.tximport_step import STEP, run_tximport, runs_to_wait_for

    experiment = context.partition_key
    store = storage.get_store()
    ledger = read_ledger(store, experiment)
    n_runs = runs_to_wait_for(load_sample_inputs(store, experiment), ledger)
    outcomes, summary = run_tximport(store, experiment, n_runs, ledger, run_id=context.run.run_id)
    if outcomes:
        merged = {k: v for k, v in ledger.items() if k[1] != STEP}
        merged.update({(o.sample_accession, o.step): o for o in outcomes})
        write_ledger(store, experiment, list(merged.values()))
    coverage = summary.get("transcript_coverage")
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="tximport_coverage",
                passed=coverage is None or coverage >= 0.9,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"transcript_coverage": coverage if coverage is not None else -1.0},
            )
        ],
        metadata={
            k: (dg.MetadataValue.json(v) if isinstance(v, list | dict) else v) for k, v in summary.items()
        },
    )
