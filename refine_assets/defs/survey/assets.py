"""Survey assets: one experiment partition = one survey of a GSE / E-XXXX-n / SRP accession."""

import dagster as dg

from refine_assets.defs.partitions import experiment_partitions
from refine_assets.resources import HttpClientResource, StorageResource


def _md_counts(counts: dict[str, int]) -> str:
    if not counts:
        return "_none_"
    return "\n".join(["| value | samples |", "|---|---:|", *(f"| {k} | {v} |" for k, v in counts.items())])


@dg.asset(
    key="experiment_survey",
    group_name="survey",
    partitions_def=experiment_partitions,
    kinds={"parquet"},
    code_version="1",
    retry_policy=dg.RetryPolicy(
        max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
    description=(
        "Survey of one experiment (GEO series, ArrayExpress experiment or SRA study): experiment, samples, "
        "raw attributes, harmonized metadata, platforms, organisms and original files as Parquet in storage "
        "(surveys/<accession>/). Loaded into DuckDB by metadata_warehouse."
    ),
)
def experiment_survey(
    context: dg.AssetExecutionContext, http: HttpClientResource, storage: StorageResource
) -> dg.MaterializeResult:
    from refine_assets.lib.http import HttpError
    from refine_assets.lib.survey.model import SurveyError
    from refine_assets.lib.survey.pipeline import run_survey

    accession = context.partition_key
    try:
        manifest = run_survey(accession, http.get_client(), storage.get_store(), run_id=context.run.run_id)
    except SurveyError as exc:
        # Permanent: the record is missing or malformed. Fail once, clearly, without retries.
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except HttpError as exc:
        # Transient network trouble after the client's own retries: let the retry policy act.
        raise dg.Failure(description=f"{accession}: {exc}", allow_retries=True) from exc
    for warning in manifest.warnings:
        context.log.warning(f"{accession}: {warning}")
    s = manifest.summary
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": s["num_samples"],
            "source_database": manifest.source_database,
            "num_samples": s["num_samples"],
            "num_attributes": s["num_attributes"],
            "num_original_files": s["num_original_files"],
            "num_sample_tables": s["num_sample_tables"],
            "organisms": dg.MetadataValue.md(_md_counts(s["organisms"])),
            "platforms": dg.MetadataValue.md(_md_counts(s["platforms"])),
            "pipelines": dg.MetadataValue.md(_md_counts(s["pipelines"])),
            "harmonized_fields_filled": dg.MetadataValue.json(s["harmonized_fields_filled"]),
            "warnings": dg.MetadataValue.json(manifest.warnings),
            "manifest": dg.MetadataValue.url(manifest.url),
            "manifest_sha256": manifest.sha256,
        }
    )
