"""Delivery: per-organism quantile-normalization targets and user datasets (zip downloads)."""

import json
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from refine_assets.defs.partitions import organism_partitions
from refine_assets.resources import StorageResource
from refine_assets.resources.warehouse import WarehouseResource

ALL = dg.AllPartitionMapping()


class QnTargetConfig(dg.Config):
    """How many raw-processed samples a target needs (refine.bio: 100)."""

    min_samples: int = Field(
        default=100,
        ge=1,
        description="Samples the organism's largest Affymetrix platform (or its tximport vectors) must have; "
        "below it the target is flagged and blocked.",
    )


@dg.asset(
    key="qn_target",
    group_name="delivery",
    partitions_def=organism_partitions,
    deps=["metadata_warehouse"],
    kinds={"text"},
    code_version="1",
    # Organism-level fan-in: weekly, never eager (thousands of experiment updates a week).
    automation_condition=(
        dg.AutomationCondition.cron_tick_passed("0 3 * * 0") & ~dg.AutomationCondition.in_progress()
    ).with_label("weekly"),
    check_specs=[
        dg.AssetCheckSpec(
            "qn_target_valid",
            asset="qn_target",
            blocking=True,
            description="The published target reads back (finite, ascending, one value per gene of its gene "
            "set, sha256 as recorded) and was built from at least its minimum number of samples. Blocking: "
            "a bad or below-minimum target must not reach datasets or compendia.",
        )
    ],
    description=(
        "Quantile-normalization target of one organism: mean of the sorted vectors of its largest Affymetrix "
        "platform's raw-processed samples (>= min_samples, 100 by default, refine.bio's rule), else of its "
        "tximport vectors under the same minimum; below it a flagged target is built for inspection and "
        "blocked. Published as references/qn_targets/<ORGANISM>/target.txt."
    ),
)
def qn_target(
    context: dg.AssetExecutionContext,
    config: QnTargetConfig,
    storage: StorageResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.delivery.targets import QnTargetError, build_qn_target

    organism = context.partition_key
    try:
        record = build_qn_target(
            warehouse.db_path(),
            storage.get_store(),
            organism,
            min_samples=config.min_samples,
            log=context.log.info,
        )
    except QnTargetError as exc:
        raise dg.Failure(description=f"{organism}: {exc}", allow_retries=False) from exc
    meta = {k: v for k, v in record.items() if isinstance(v, int | float | str) and k not in ("created_at",)}
    return dg.MaterializeResult(
        check_results=[_target_check(storage, organism, record)],
        metadata={
            **{k: (dg.MetadataValue.url(v) if k == "url" else v) for k, v in meta.items()},
            "details": dg.MetadataValue.json({k: v for k, v in record.items() if k not in meta}),
        },
    )


def _target_check(storage: StorageResource, organism: str, record: dict) -> dg.AssetCheckResult:
    """Read the published target back and validate it (``qn_target_valid``)."""
    import numpy as np

    from refine_assets.lib.delivery.targets import QnTargetError, load_qn_target

    problems: list[str] = []
    try:
        values, _ = load_qn_target(storage.get_store(), organism, allow_below_minimum=True)
    except QnTargetError as exc:
        values, problems = np.array([]), [str(exc)]
    genes = (record.get("details") or {}).get("num_genes")
    if values.size and not np.isfinite(values).all():
        problems.append("non-finite values")
    if values.size and (np.diff(values) < 0).any():
        problems.append("values not ascending")
    if values.size and genes is not None and values.size != genes:
        problems.append(f"{values.size} values for {genes} genes")
    if not values.size and not problems:
        problems.append("empty target")
    details = record.get("details") or {}
    if details.get("flagged"):
        problems.append(details.get("flag_reason") or "below its minimum number of samples")
    return dg.AssetCheckResult(
        check_name="qn_target_valid",
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) if problems else "target readable and built from enough samples",
        metadata={
            "values": int(values.size),
            "num_samples": int(details.get("num_samples") or 0),
            "min_samples": int(details.get("min_samples") or 0),
            "problems": dg.MetadataValue.json(problems),
        },
    )


class DatasetConfig(dg.Config):
    """A dataset request (refine.bio's shape) as JSON text, or the path of a JSON/YAML request file."""

    request: str = Field(description="request JSON, or a path to a .json/.yaml request file")
    keep_ks_failures: bool = False


@dg.asset(
    key="dataset",
    group_name="delivery",
    deps=[
        dg.AssetDep("metadata_warehouse"),
        dg.AssetDep("qn_target", partition_mapping=ALL),
        dg.AssetDep("experiment_processed", partition_mapping=ALL),
    ],
    kinds={"zip"},
    code_version="1",
    check_specs=[
        dg.AssetCheckSpec(
            "dataset_ks_gate",
            asset="dataset",
            description="No delivered sample failed the KS gate after quantile normalization (failures "
            "are excluded with the reason unless the request keeps them).",
        )
    ],
    description=(
        "One user dataset per materialization (run config = the request): vectors joined, quantile "
        "normalized to each group's organism target with a KS gate, transformed, zipped in refine.bio's layout "
        "and published to storage (datasets/<id>/); the warehouse records URL, size and sha256."
    ),
)
def dataset(
    context: dg.AssetExecutionContext,
    config: DatasetConfig,
    storage: StorageResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.delivery.dataset import DatasetError, build_dataset

    text = config.request.strip()
    request = json.loads(text) if text.startswith("{") else Path(text)
    with tempfile.TemporaryDirectory(prefix="refine-dataset-") as tmp:
        try:
            result = build_dataset(
                request,
                warehouse.db_path(),
                storage.get_store(),
                Path(tmp) / "dataset.zip",
                keep_ks_failures=config.keep_ks_failures,
                dataset_id=context.run.run_id,
                publish_key=f"datasets/{context.run.run_id}/{context.run.run_id}.zip",
                log=context.log.info,
            )
        except (DatasetError, ValueError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
    failed = sorted({r["sample"] for r in result.ks if not r["passed"]})
    delivered_failures = failed if config.keep_ks_failures else []
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="dataset_ks_gate",
                passed=not delivered_failures,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "samples_tested": len(result.ks),
                    "failed": dg.MetadataValue.json(failed),
                    "excluded": len(failed) - len(delivered_failures),
                    "delivered_despite_failure": dg.MetadataValue.json(delivered_failures),
                },
            )
        ],
        metadata={
            **_qn_plots(result.qn_preview),
            "dataset_id": result.dataset_id,
            "url": dg.MetadataValue.url(result.url),
            "bytes": result.size,
            "sha256": result.sha256,
            "num_samples": result.num_samples,
            "groups": dg.MetadataValue.json(result.groups),
            "filtered": dg.MetadataValue.json(result.filtered),
            "ks": dg.MetadataValue.json(result.ks[:50]),
        },
    )


def _qn_plots(preview: dict) -> dict:
    """Value distributions of a few samples before and after quantile normalization (Markdown SVGs)."""
    from refine_assets.lib.plots import distribution_svg, svg_markdown

    if not preview:
        return {}
    group = preview["group"]
    return {
        "values_before_qn": dg.MetadataValue.md(
            svg_markdown(distribution_svg(preview["before"], f"{group}: before QN"), "before QN")
        ),
        "values_after_qn": dg.MetadataValue.md(
            svg_markdown(distribution_svg(preview["after"], f"{group}: after QN"), "after QN")
        ),
    }


dataset_job = dg.define_asset_job("dataset_job", selection=dg.AssetSelection.assets("dataset"))
qn_target_job = dg.define_asset_job(
    "qn_target_job", selection=dg.AssetSelection.assets("qn_target"), partitions_def=organism_partitions
)
