"""Reference assets: per-platform probe tables and per-organism gene-id crosswalks."""

import tempfile
from pathlib import Path

import dagster as dg

from refine_assets.defs.partitions import (
    affy_platform_partitions,
    organism_length_partitions,
    organism_partitions,
)
from refine_assets.lib.references.artifacts import reference_key, write_record
from refine_assets.lib.storage import file_sha256
from refine_assets.resources import StorageResource
from refine_assets.resources.fetch import FetcherResource
from refine_assets.resources.http import HttpClientResource
from refine_assets.resources.references import ReferenceSourcesResource


def _local(source: str, fetcher: FetcherResource) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    return fetcher.get_fetcher().fetch(source)


@dg.asset(
    key="affy_probe_table",
    group_name="references",
    partitions_def=affy_platform_partitions,
    kinds={"parquet"},
    code_version="1",
    description="PM probes of one Affymetrix platform (probeset, x, y, 25-mer) as SCAN needs them, from "
    "the platform's probe package / probe_tab file; Parquet with version and source URL.",
)
def affy_probe_table(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    fetcher: FetcherResource,
    reference_sources: ReferenceSourcesResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.affy.probes import probe_table_to_parquet, read_probe_table

    code = context.partition_key
    source = reference_sources.probe_tables.get(code)
    if not source:
        raise dg.Failure(
            f"{code}: no probe table source configured (reference_sources.probe_tables)", allow_retries=False
        )
    path = _local(source, fetcher)
    table = read_probe_table(path, platform=code)
    version, _ = file_sha256(path)
    store = storage.get_store()
    key = reference_key("probes", code, "probes.parquet")
    with store.writer(key) as tmp:
        probe_table_to_parquet(table, tmp, version=version[:16], source_url=source)
    art_sha = store.read_sha256(key)
    n_sets = int(table.frame["probeset_id"].nunique())
    record = write_record(
        store,
        "probes",
        code,
        {
            "version": version[:16],
            "source_url": source,
            "url": store.url_for(key),
            "key": key,
            "sha256": art_sha,
            "details": {"probes": len(table), "probesets": n_sets},
        },
    )
    return dg.MaterializeResult(
        metadata={
            "probes": len(table),
            "probesets": n_sets,
            "source": source,
            "url": dg.MetadataValue.url(record["url"]),
        }
    )


@dg.asset(
    key="gene_crosswalk",
    group_name="references",
    partitions_def=organism_partitions,
    kinds={"parquet"},
    code_version="1",
    description="Gene-id crosswalk of one organism (Entrez / symbol / RefSeq -> Ensembl gene ids), used to "
    "convert submitter-processed and non-Brainarray probe ids to Ensembl genes.",
)
def gene_crosswalk(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    fetcher: FetcherResource,
    reference_sources: ReferenceSourcesResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.references.crosswalks import build_crosswalk_reference

    organism = context.partition_key
    source = reference_sources.crosswalks.get(organism)
    if not source:
        raise dg.Failure(
            f"{organism}: no crosswalk source configured (reference_sources.crosswalks)", allow_retries=False
        )
    with tempfile.TemporaryDirectory():
        record = build_crosswalk_reference(
            storage.get_store(),
            organism,
            _local(source, fetcher),
            source,
            tax_id=reference_sources.crosswalk_tax_ids.get(organism),
        )
    d = record["details"]
    return dg.MaterializeResult(
        metadata={
            "pairs": dg.MetadataValue.json(d["pairs"]),
            "ensembl_genes": d["ensembl_genes"],
            "source": source,
            "url": dg.MetadataValue.url(record["url"]),
        }
    )


@dg.asset(
    key="platform_annotation",
    group_name="references",
    partitions_def=affy_platform_partitions,
    kinds={"parquet"},
    code_version="1",
    description="Probeset annotation of one platform (probeset -> GenBank / Entrez / symbol ...), used to map "
    "SCAN probeset values to Ensembl genes when no Brainarray table exists and the survey has no GPL table.",
)
def platform_annotation(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    fetcher: FetcherResource,
    reference_sources: ReferenceSourcesResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.references.annotation import build_annotation_reference

    code = context.partition_key
    source = reference_sources.annotations.get(code)
    if not source:
        raise dg.Failure(
            f"{code}: no annotation source configured (reference_sources.annotations)", allow_retries=False
        )
    record = build_annotation_reference(storage.get_store(), code, _local(source, fetcher), source)
    return dg.MaterializeResult(
        metadata={
            "rows": record["details"]["rows"],
            "columns": dg.MetadataValue.json(record["details"]["columns"]),
            "source": source,
            "url": dg.MetadataValue.url(record["url"]),
        }
    )


@dg.asset(
    key="transcriptome_index",
    group_name="references",
    partitions_def=organism_length_partitions,
    kinds={"salmon"},
    code_version="2",
    description="Salmon index of one organism and read length (short: k=23, long: k=31) from an Ensembl "
    "genome + GTF (pseudogenes removed, rsem-prepare-reference) or a configured transcript FASTA, with "
    "tx2gene; record (Ensembl release, assembly, salmon version, k, transcripts, url) in the warehouse.",
)
def transcriptome_index(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    fetcher: FetcherResource,
    http: HttpClientResource,
    reference_sources: ReferenceSourcesResource,
) -> dg.MaterializeResult:
    from refine_assets.lib.references.ensembl import MAIN_DIVISION, EnsemblError, transcriptome_sources
    from refine_assets.lib.references.transcriptome_index import build_transcriptome_references
    from refine_assets.lib.rnaseq.salmon_quant import ToolMissingError

    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    organism, length = keys["organism"], keys["length"]
    source = dict(reference_sources.transcriptomes.get(organism) or {})
    if not any(k in source for k in ("transcripts", "genome")):
        # nothing configured: the organism's genome + GTF from Ensembl (main or Genomes division)
        try:
            found = transcriptome_sources(
                organism,
                http.get_client(),
                division=source.get("division", MAIN_DIVISION),
                release=source.get("ensembl_release"),
            )
        except EnsemblError as exc:
            raise dg.Failure(f"{organism}: {exc}", allow_retries=False) from exc
        source.update(
            genome=found.genome_fasta_url,
            gtf=found.gtf_url,
            ensembl_release=found.release,
            assembly=found.assembly,
            division=found.division,
        )
    files = {k: _local(v, fetcher) for k, v in source.items() if k in ("transcripts", "genome", "gtf")}
    try:
        (record,) = build_transcriptome_references(
            storage.get_store(),
            organism,
            **files,
            lengths=(length,),
            ensembl_release=source.get("ensembl_release"),
            assembly=source.get("assembly"),
            sources={k: v for k, v in source.items() if isinstance(v, str)},
        )
    except (ValueError, ToolMissingError) as exc:
        raise dg.Failure(f"{organism} ({length}): {exc}", allow_retries=False) from exc
    return dg.MaterializeResult(
        metadata={
            "k": record["k"],
            "transcripts": record["transcripts"],
            "salmon_version": record["salmon_version"],
            "ensembl_release": record.get("ensembl_release") or "",
            "assembly": record.get("assembly") or "",
            "build_seconds": record["build_seconds"],
            "url": dg.MetadataValue.url(record["url"]),
            "details": dg.MetadataValue.json(record.get("details") or {}),
        }
    )
