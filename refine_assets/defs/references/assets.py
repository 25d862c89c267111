"""Reference assets: per-platform probe tables, Brainarray packages and annotations, Illumina
annotation packages, per-organism gene-id crosswalks and salmon indices.

Each processing reference asset is a thin wrapper over :mod:`refine_assets.lib.references.provision`
(locate in the public catalogue -> download -> build -> record); the same code builds a missing
reference on demand while an experiment is processed, which then reports the reference partition as
materialized (``defs/processing/assets.py``).
"""

from pathlib import Path

import dagster as dg

from refine_assets.defs.partitions import REFERENCE_PARTITIONS, organism_length_partitions
from refine_assets.defs.references.reporting import reference_metadata
from refine_assets.lib.references.sources import ReferenceUnavailable
from refine_assets.resources import StorageResource
from refine_assets.resources.fetch import FetcherResource
from refine_assets.resources.http import HttpClientResource
from refine_assets.resources.references import ReferenceSourcesResource


def _local(source: str, fetcher: FetcherResource) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    return fetcher.get_fetcher().fetch(source)


def build_reference_partition(
    context: dg.AssetExecutionContext,
    kind: str,
    storage: StorageResource,
    fetcher: FetcherResource,
    http: HttpClientResource,
    reference_sources: ReferenceSourcesResource,
) -> dg.MaterializeResult:
    """Locate, download and build reference ``kind`` for this partition (same code as on-demand
    provisioning during processing); a reference that cannot be had fails with its URL."""
    provider = reference_sources.provider(
        storage.get_store(), http.get_client(), fetcher.get_fetcher(), log=context.log.info
    )
    try:
        record = provider.build(kind, context.partition_key)
    except ReferenceUnavailable as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    return dg.MaterializeResult(metadata=reference_metadata(record))


_REFERENCE_ASSETS = {
    "probes": (
        "affy_probe_table",
        "PM probes of one Affymetrix platform (probeset, x, y, 25-mer) as SCAN needs them, from the Bioconductor "
        "<chip>probe package (or the Brainarray ENSG package's probes where Bioconductor has none).",
    ),
    "brainarray": (
        "brainarray_probes",
        "Brainarray 22.0.0 ENSG custom probeset package of one Affymetrix platform (probes grouped by Ensembl "
        "gene, ENSG..._at): what refine.bio summarizes SCAN values by.",
    ),
    "annotation": (
        "platform_annotation",
        "Manufacturer probeset -> Entrez gene annotation of one Affymetrix platform (Bioconductor ChipDb "
        "<chip>.db), used when the platform has no Brainarray package and the survey has no GPL table.",
    ),
    "illumina": (
        "illumina_annotation",
        "Illumina BeadArray annotation of one platform package (Bioconductor illumina<Org>v<N>.db + the "
        "organism's org.<Xx>.eg.db + refine.bio's tie-break map): probe sequences, quality, Ensembl genes.",
    ),
    "crosswalk": (
        "gene_crosswalk",
        "Gene-id crosswalk of one organism (Entrez / symbol / RefSeq / GenBank -> Ensembl), from the "
        "Bioconductor org.<Xx>.eg.db package or NCBI gene2ensembl + gene_info.",
    ),
}


def _reference_asset(kind: str, key: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        group_name="references",
        partitions_def=REFERENCE_PARTITIONS[kind],
        kinds={"parquet"},
        code_version="2",
        description=description,
        retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL),
    )
    def _asset(
        context: dg.AssetExecutionContext,
        storage: StorageResource,
        fetcher: FetcherResource,
        http: HttpClientResource,
        reference_sources: ReferenceSourcesResource,
    ) -> dg.MaterializeResult:
        return build_reference_partition(context, kind, storage, fetcher, http, reference_sources)

    return _asset


affy_probe_table = _reference_asset("probes", *_REFERENCE_ASSETS["probes"])
brainarray_probes = _reference_asset("brainarray", *_REFERENCE_ASSETS["brainarray"])
platform_annotation = _reference_asset("annotation", *_REFERENCE_ASSETS["annotation"])
illumina_annotation = _reference_asset("illumina", *_REFERENCE_ASSETS["illumina"])
gene_crosswalk = _reference_asset("crosswalk", *_REFERENCE_ASSETS["crosswalk"])


@dg.asset(
    key="transcriptome_index",
    group_name="references",
    partitions_def=organism_length_partitions,
    kinds={"salmon"},
    code_version="3",
    check_specs=[
        dg.AssetCheckSpec(
            "transcript_set_agreement",
            asset="transcriptome_index",
            description="A rebuilt index shares at least 95 % of its transcripts (Jaccard) with the one it "
            "replaces (refine.bio's alert threshold); passes for a first build or unchanged transcripts.",
        )
    ],
    description="Salmon index of one organism and read length (short: k=23, long: k=31) from its Ensembl "
    "genome + GTF (any division, archive layout, strain pinning; pseudogenes removed, rsem-prepare-reference) "
    "or a configured source; record (salmon version, Ensembl release, assembly, k, transcript-set hash). Built "
    "on demand when a run of the organism is quantified.",
)
def transcriptome_index(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    fetcher: FetcherResource,
    http: HttpClientResource,
    reference_sources: ReferenceSourcesResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.references.transcriptome_index import MIN_JACCARD

    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    name = f"{keys['organism']}_{keys['length']}"
    provider = reference_sources.provider(
        storage.get_store(), http.get_client(), fetcher.get_fetcher(), log=context.log.info
    )
    try:
        record = provider.build("transcriptome_index", name)
    except ReferenceUnavailable as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    details = record.get("details") or {}
    jaccard = details.get("jaccard_with_previous")
    if jaccard is None:  # nothing to compare with: said so, not a pass of a comparison
        check = dg.AssetCheckResult(
            check_name="transcript_set_agreement",
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="skipped: no previous index of this organism and length to compare with",
            metadata={"skipped": True, "transcripts": int(record.get("transcripts") or 0)},
        )
    else:
        check = dg.AssetCheckResult(
            check_name="transcript_set_agreement",
            passed=jaccard >= MIN_JACCARD,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"Jaccard {jaccard:.4f} of the transcript ids with version "
            f"{details.get('previous_version')} ({MIN_JACCARD} required)",
            metadata={"skipped": False, "jaccard_with_previous": float(jaccard)},
        )
    return dg.MaterializeResult(check_results=[check], metadata=reference_metadata(record))
