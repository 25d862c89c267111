"""Species compendia and quantpendia: organism-level, weekly, versioned (v1, v2, ...) in storage.

Thin wrappers over ``refine_assets.lib.compendia`` (build, quantpendium, publish). A new version is
published only when the inputs changed (content hash of sample -> vector + parameters), so the
weekly tick is cheap when nothing new was processed. Memory: the build is out of core (float32
memory-mapped matrices); the Kubernetes tag below asks for a node that fits the model in
``docs/compendia.md`` (bytes per value x genes x samples).
"""

import hashlib
import json
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from refine_assets.defs.partitions import organism_partitions
from refine_assets.resources import StorageResource
from refine_assets.resources.warehouse import WarehouseResource

ALL = dg.AllPartitionMapping()
WEEKLY = (
    dg.AutomationCondition.cron_tick_passed("0 5 * * 0") & ~dg.AutomationCondition.in_progress()
).with_label("weekly")
# run launcher hint for the K8sRunLauncher / k8s_job_executor (deploy/helm): a big-memory pod
BIG_NODE_TAGS = {
    "dagster-k8s/config": {"container_config": {"resources": {"requests": {"memory": "20Gi", "cpu": "2"}}}}
}


class CompendiumConfig(dg.Config):
    """Build parameters (defaults: refine.bio's method with its bugs fixed, docs/compendia.md)."""

    rank: int = Field(default=10, description="IterativeSVD rank")
    backend: str = Field(default="native", description="native (default) or fancyimpute (reference)")
    max_percent_imputed: float = Field(
        default=25.0, description="asset check: warn when more of the matrix than this was imputed"
    )
    force: bool = Field(default=False, description="publish a new version even if the inputs did not change")


def _content_hash(vectors: list, meta: dict, params: dict) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for sample, tech, key in sorted(vectors):
        m = meta.get(sample) or {}
        # the vector's content hash when the ledger has it (a re-run that writes the same vector
        # changes nothing), else when it was processed
        h.update(f"{sample}\t{tech}\t{key}\t{m.get('vector_sha256') or m.get('processed_at')}\n".encode())
    return h.hexdigest()


@dg.asset(
    key="species_compendium",
    group_name="delivery",
    partitions_def=organism_partitions,
    deps=[dg.AssetDep("qn_target"), "metadata_warehouse"],
    kinds={"parquet"},
    code_version="1",
    pool="compendia",
    op_tags=BIG_NODE_TAGS,
    automation_condition=WEEKLY,
    check_specs=[
        dg.AssetCheckSpec(
            "compendium_percent_imputed",
            asset="species_compendium",
            description="Share of imputed values in the published matrix stays below the configured limit.",
        )
    ],
    description=(
        "Species compendium of one organism: samples processed from raw, outer join, RNA-seq low-count "
        "filter + log2(x+1) once, gene/sample presence filters, IterativeSVD (rank 10), QN to the organism "
        "target with KS gate; Parquet matrix + metadata, versioned under compendia/<ORGANISM>/v<N>/."
    ),
)
def species_compendium(
    context: dg.AssetExecutionContext,
    config: CompendiumConfig,
    storage: StorageResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.compendia.build import build_compendium
    from refine_assets.lib.compendia.publish import latest_record, publish_version
    from refine_assets.lib.compendia.select import select_samples
    from refine_assets.lib.delivery.targets import QnTargetError, load_qn_target, qn_target_key

    organism = context.partition_key
    store = storage.get_store()
    try:
        target, record = load_qn_target(store, organism)
    except QnTargetError as exc:
        raise dg.Failure(description=f"{organism}: {exc}", allow_retries=False) from exc
    try:
        vectors, meta = select_samples(warehouse.db_path(), organism)
    except ValueError as exc:  # grouped into another organism's (genus) compendium
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    if not vectors:
        raise dg.Failure(description=f"{organism}: no samples processed from raw", allow_retries=False)
    params = {"rank": config.rank, "backend": config.backend, "qn_target": record.get("sha256")}
    content = _content_hash(vectors, meta, params)
    latest = latest_record(store, "compendium", organism)
    if latest and latest.get("content_sha256") == content and not config.force:
        context.log.info(f"{organism}: inputs unchanged since v{latest['version']}; nothing published")
        return _result(latest, config, unchanged=True)
    with tempfile.TemporaryDirectory(prefix=f"refine-compendium-{organism}-") as tmp:
        try:
            res = build_compendium(
                organism,
                vectors,
                store,
                Path(tmp) / "out",
                target,
                rank=config.rank,
                backend=config.backend,
                sample_metadata=meta,
                target_info={
                    "key": qn_target_key(organism),
                    "url": record.get("url"),
                    "sha256": record.get("sha256"),
                },
                work_dir=Path(tmp) / "work",
                log=context.log.info,
            )
        except ValueError as exc:
            raise dg.Failure(description=f"{organism}: {exc}", allow_retries=False) from exc
        published = publish_version(
            store,
            "compendium",
            organism,
            res.out_dir,
            {
                "num_samples": res.n_samples,
                "num_genes": res.n_genes,
                "num_filtered": len(res.filtered),
                "percent_imputed": res.percent_imputed,
                "ks_failed": len(res.ks_failed),
                "content_sha256": content,
                "peak_rss_bytes": res.peak_rss_bytes,
                "seconds": round(res.seconds.get("total", 0.0), 2),
                "qn_target_version": record.get("version"),
            },
        )
    return _result(published, config, unchanged=False)


def _result(record: dict, config: CompendiumConfig, *, unchanged: bool) -> dg.MaterializeResult:
    pct = float(record.get("percent_imputed") or 0.0)
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="compendium_percent_imputed",
                passed=pct <= config.max_percent_imputed,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"percent_imputed": pct, "limit": config.max_percent_imputed},
            )
        ],
        metadata={
            "version": record["version"],
            "unchanged": unchanged,
            "url": dg.MetadataValue.url(record["url"]),
            "num_samples": record.get("num_samples"),
            "num_genes": record.get("num_genes"),
            "num_filtered": record.get("num_filtered"),
            "percent_imputed": pct,
            "peak_rss_bytes": record.get("peak_rss_bytes"),
            "seconds": record.get("seconds"),
        },
    )


@dg.asset(
    key="quantpendium",
    group_name="delivery",
    partitions_def=organism_partitions,
    deps=[dg.AssetDep("experiment_processed", partition_mapping=ALL), "metadata_warehouse"],
    kinds={"zip"},
    code_version="1",
    automation_condition=WEEKLY,
    description=(
        "Quantpendium of one organism: the salmon quant.sf of every quantified RNA-seq run with metadata and "
        "QC, zipped; versioned under quantpendia/<ORGANISM>/v<N>/ (runs left out listed with their reason)."
    ),
)
def quantpendium(
    context: dg.AssetExecutionContext, storage: StorageResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    from refine_assets.lib.compendia.publish import latest_record, publish_version
    from refine_assets.lib.compendia.quantpendium import QuantpendiumError, build_quantpendium

    organism = context.partition_key
    store = storage.get_store()
    with tempfile.TemporaryDirectory(prefix=f"refine-quantpendium-{organism}-") as tmp:
        folder = Path(tmp) / "out"
        try:
            res = build_quantpendium(
                warehouse.db_path(), store, organism, folder / f"{organism}_quantpendium.zip"
            )
        except QuantpendiumError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        latest = latest_record(store, "quantpendium", organism)
        if latest and latest.get("content_sha256") == res.content_sha256:
            record, unchanged = latest, True
        else:
            record = publish_version(
                store,
                "quantpendium",
                organism,
                folder,
                {
                    "num_samples": res.num_runs,
                    "num_experiments": res.num_experiments,
                    "num_filtered": len(res.filtered),
                    "content_sha256": res.content_sha256,
                    "size": res.size,
                },
            )
            unchanged = False
    return dg.MaterializeResult(
        metadata={
            "version": record["version"],
            "unchanged": unchanged,
            "url": dg.MetadataValue.url(record["url"]),
            "num_runs": record.get("num_samples"),
            "num_experiments": record.get("num_experiments"),
            "num_filtered": record.get("num_filtered"),
            "bytes": record.get("size"),
        }
    )


compendia_job = dg.define_asset_job(
    "compendia_job",
    selection=dg.AssetSelection.assets("species_compendium", "quantpendium"),
    tags={"refine_assets/size": "large"},  # deploy/dagster.yaml: one large run at a time
)
