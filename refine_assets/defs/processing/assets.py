"""Per-sample processing inside an experiment partition."""

import tempfile
from collections import Counter
from pathlib import Path

import dagster as dg

from refine_assets.defs.partitions import experiment_partitions
from refine_assets.defs.references.reporting import report_built_references
from refine_assets.resources import StorageResource
from refine_assets.resources.fetch import FetcherResource
from refine_assets.resources.http import HttpClientResource
from refine_assets.resources.references import ReferenceSourcesResource


def _md_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


@dg.asset(
    key="experiment_processed",
    group_name="processing",
    partitions_def=experiment_partitions,
    # lineage: the reference partitions an experiment's samples need are built on demand while it is
    # processed (reported as their materializations); they never trigger re-processing by themselves
    deps=[
        "experiment_survey",
        *(
            dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping())
            for key in (
                "affy_probe_table",
                "brainarray_probes",
                "platform_annotation",
                "illumina_annotation",
                "gene_crosswalk",
            )
        ),
    ],
    kinds={"parquet"},
    code_version="1",
    # A (re-)surveyed experiment is (re-)processed: per partition, never a fan-in.
    automation_condition=dg.AutomationCondition.eager().ignore(dg.AssetSelection.groups("references")),
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "samples_processed",
            asset="experiment_processed",
            description="At least half of the supported samples processed (x of y, and why not).",
        ),
        dg.AssetCheckSpec(
            "affymetrix_qc",
            asset="experiment_processed",
            description="CEL zero-intensity fraction <= 1% and SCAN EM converged for every array.",
        ),
        dg.AssetCheckSpec(
            "salmon_mapping_rate",
            asset="experiment_processed",
            description="Every salmon run maps at least 10% of its reads.",
        ),
        dg.AssetCheckSpec(
            "illumina_qc",
            asset="experiment_processed",
            description="Every Illumina sample detects >= 20% of its probes (p < 0.01) and SCAN converged.",
        ),
    ],
    description=(
        "Every sample of the experiment processed on its own by its pipeline (Affymetrix SCANfast, "
        "Illumina SCAN, submitter-processed tables, salmon), skipped when up to date, one failure never "
        "sinking the others. Writes processed/<experiment>/<sample>.parquet and the experiment's ledger."
    ),
)
def experiment_processed(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    fetcher: FetcherResource,
    http: HttpClientResource,
    reference_sources: ReferenceSourcesResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.plots import bars_svg, distribution_svg, svg_markdown
    from refine_assets.lib.processing import qc
    from refine_assets.lib.processing.framework import process_samples, read_ledger, write_ledger
    from refine_assets.lib.processing.inputs import load_sample_inputs
    from refine_assets.lib.processing.registry import ProcessingEnv, build_processors
    from refine_assets.lib.processing.vectors import read_vector

    experiment = context.partition_key
    store = storage.get_store()
    samples = load_sample_inputs(store, experiment)
    the_fetcher = fetcher.get_fetcher()
    references = reference_sources.provider(store, http.get_client(), the_fetcher, log=context.log.info)
    with tempfile.TemporaryDirectory(prefix=f"refine-{experiment}-") as tmp:
        env = ProcessingEnv(
            store=store,
            fetcher=the_fetcher,
            work_dir=Path(tmp),
            log=context.log.info,
            references=references,
            samples=samples,
        )
        processors = build_processors(env)
        previous = read_ledger(store, experiment)
        outcomes = process_samples(
            samples, processors, store, previous=previous, run_id=context.run.run_id, log=context.log.info
        )
    report_built_references(context, references.built)
    ledger_url = write_ledger(store, experiment, outcomes)
    status = Counter(o.status for o in outcomes)
    steps = Counter((o.step, o.status) for o in outcomes)
    reasons = Counter(o.reason for o in outcomes if o.status != "succeeded" and o.reason)
    vectors = {}
    for o in outcomes:
        if (
            o.status == "succeeded"
            and o.output_key
            and o.output_key.endswith(".parquet")
            and len(vectors) < 12
        ):
            vectors[o.sample_accession] = read_vector(store, o.output_key)[0].to_numpy()
    plot = distribution_svg(vectors, f"{experiment}: processed values per sample")
    rates = {
        o.sample_accession: o.metrics["mapping_rate"]
        for o in outcomes
        if o.step == "salmon" and o.metrics.get("mapping_rate") is not None
    }
    extra = {}
    if rates:
        bars = bars_svg(rates, f"{experiment}: salmon mapping rate per run", threshold=qc.MIN_MAPPING_RATE)
        extra["mapping_rates"] = dg.MetadataValue.md(svg_markdown(bars, "mapping rates"))
    checks = []
    for name, fn in (
        ("samples_processed", qc.processed_fraction),
        ("affymetrix_qc", qc.affymetrix_qc),
        ("salmon_mapping_rate", qc.salmon_qc),
        ("illumina_qc", qc.illumina_qc),
    ):
        passed, severity, meta = fn(outcomes)
        checks.append(
            dg.AssetCheckResult(
                check_name=name,
                passed=passed,
                severity=dg.AssetCheckSeverity[severity],
                metadata={
                    k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v for k, v in meta.items()
                },
            )
        )
    return dg.MaterializeResult(
        check_results=checks,
        metadata={
            "value_distribution": dg.MetadataValue.md(svg_markdown(plot, "value distribution")),
            **extra,
            "num_samples": len(outcomes),
            "num_succeeded": status["succeeded"],
            "num_failed": status["failed"],
            "num_unsupported": status["unsupported"],
            "processed": dg.MetadataValue.md(
                f"**{status['succeeded']} of {len(outcomes)} samples processed**\n\n"
                + _md_table(
                    ["step", "status", "samples"], [(s, st, n) for (s, st), n in sorted(steps.items())]
                )
            ),
            "why_not": dg.MetadataValue.md(
                _md_table(["reason", "samples"], reasons.most_common(20)) if reasons else "_all processed_"
            ),
            "ledger": dg.MetadataValue.url(ledger_url),
        },
    )
