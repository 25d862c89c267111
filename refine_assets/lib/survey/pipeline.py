"""Survey one experiment end to end: dispatch by accession, harmonize, write Parquet to storage.

Storage layout for an experiment accession ``ACC`` (keys relative to the store root)::

    surveys/ACC/experiments.parquet        surveys/ACC/samples.parquet
    surveys/ACC/sample_attributes.parquet  surveys/ACC/sample_harmonized.parquet
    surveys/ACC/harmonization_conflicts.parquet
    surveys/ACC/platforms.parquet          surveys/ACC/organisms.parquet
    surveys/ACC/original_files.parquet
    surveys/ACC/sample_tables/<SAMPLE>.parquet     submitter data tables (GEO ID_REF/VALUE ...)
    surveys/ACC/platform_tables/<PLATFORM>.parquet platform annotation tables (GEO GPL tables)
    surveys/ACC/manifest.json              written last: a survey is complete iff it exists

Every file is written atomically; the manifest lists each table's URL, sha256 and row count, so
re-running a survey replaces the files and the manifest hash tells the warehouse what changed.
Nothing is written when the survey itself fails (the surveyor raises before any write).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from refine_assets.lib.harmonize import harmonize
from refine_assets.lib.http import HttpClient
from refine_assets.lib.storage import ArtifactStore
from refine_assets.lib.survey.model import SurveyError, SurveyResult

_SOURCES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^GSE\d+$"), "GEO"),
    (re.compile(r"^E-[A-Z]{4}-\d+$"), "ARRAY_EXPRESS"),
    (re.compile(r"^[SED]R[PR]\d+$"), "SRA"),
]


def source_for_accession(accession: str) -> str:
    """``GEO`` for GSE..., ``ARRAY_EXPRESS`` for E-XXXX-n, ``SRA`` for SRP/ERP/DRP or SRR/ERR/DRR.

    Raises :class:`SurveyError` for anything else (refine.bio dispatches on the same prefixes).
    """
    for pattern, source in _SOURCES:
        if pattern.match(accession):
            return source
    raise SurveyError(
        accession, "unrecognized accession (expected GSE..., E-XXXX-n, or SRP/ERP/DRP/SRR/ERR/DRR...)"
    )


def surveyor_for(source: str) -> Callable[[str, HttpClient], SurveyResult]:
    """The survey function of a source database."""
    if source == "GEO":
        from refine_assets.lib.survey.geo import survey_geo

        return survey_geo
    if source == "ARRAY_EXPRESS":
        from refine_assets.lib.survey.arrayexpress import survey_arrayexpress

        return survey_arrayexpress
    if source == "SRA":
        from refine_assets.lib.survey.sra import survey_sra

        return survey_sra
    raise ValueError(f"unknown source database {source!r}")


def code_version() -> str:
    """Installed version of refine-assets (recorded with every output)."""
    try:
        return metadata.version("refine-assets")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


@dataclass
class SurveyManifest:
    """What a survey wrote: table URLs/hashes/row counts, summary counts and warnings."""

    accession: str
    source_database: str
    surveyed_at: str
    tables: dict[str, dict] = field(default_factory=dict)
    sample_tables: dict[str, dict] = field(default_factory=dict)
    platform_tables: dict[str, dict] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    run_id: str | None = None
    url: str = ""
    sha256: str = ""

    def to_json(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("url", "sha256")}
        return d


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _put_table(store: ArtifactStore, key: str, table: pa.Table) -> dict:
    art = store.put_bytes(key, _parquet_bytes(table))
    return {"key": key, "url": art.url, "sha256": art.sha256, "rows": table.num_rows, "bytes": art.size}


def harmonized_tables(result: SurveyResult) -> tuple[pa.Table, pa.Table]:
    """Harmonize the survey's raw attributes: (sample_harmonized, harmonization_conflicts).

    Every surveyed sample gets a harmonized row (all-null when no key matched); the sample title
    recorded by the source is used when no title key matched.
    """
    attrs = result.tables()["sample_attributes"]
    harm = harmonize(attrs)
    samples = pl.DataFrame(
        {
            "sample_accession": [s.accession for s in result.samples],
            "_source_title": [s.title for s in result.samples],
        },
        schema={"sample_accession": pl.String, "_source_title": pl.String},
    )
    merged = samples.join(harm.samples, on="sample_accession", how="left")
    merged = merged.with_columns(
        pl.coalesce(pl.col("title"), pl.col("_source_title").str.strip_chars().str.to_lowercase()).alias(
            "title"
        )
    ).drop("_source_title")
    conflicts = harm.conflicts
    if "other_values" in conflicts.columns and conflicts.schema["other_values"] != pl.String:
        conflicts = conflicts.with_columns(pl.col("other_values").cast(pl.List(pl.String)).list.join(";"))
    return merged.to_arrow(), conflicts.to_arrow()


def write_survey(
    result: SurveyResult, store: ArtifactStore, *, run_id: str | None = None, now: datetime | None = None
) -> SurveyManifest:
    """Harmonize and write one survey result to ``store`` (layout in the module docstring)."""
    acc = result.experiment.accession
    prefix = f"surveys/{acc}"
    surveyed_at = (now or datetime.now(UTC)).isoformat()
    manifest = SurveyManifest(
        accession=acc,
        source_database=result.experiment.source_database,
        surveyed_at=surveyed_at,
        warnings=list(result.warnings),
        versions={
            "refine_assets": code_version(),
            "surveyor": result.experiment_attributes.get("survey_backend", []),
        },
        run_id=run_id,
    )
    tables = result.tables()
    tables["sample_harmonized"], tables["harmonization_conflicts"] = harmonized_tables(result)
    for name, table in tables.items():
        manifest.tables[name] = _put_table(store, f"{prefix}/{name}.parquet", table)
    for sample, table in sorted(result.sample_tables.items()):
        manifest.sample_tables[sample] = _put_table(store, f"{prefix}/sample_tables/{sample}.parquet", table)
    for platform, table in sorted(result.platform_tables.items()):
        manifest.platform_tables[platform] = _put_table(
            store, f"{prefix}/platform_tables/{platform}.parquet", table
        )
    manifest.summary = survey_summary(result, tables["sample_harmonized"])
    body = json.dumps(manifest.to_json(), indent=1, sort_keys=True).encode()
    art = store.put_bytes(f"{prefix}/manifest.json", body)
    manifest.url, manifest.sha256 = art.url, art.sha256
    return manifest


def survey_summary(result: SurveyResult, harmonized: pa.Table) -> dict:
    """Counts for asset metadata: samples by organism, platform, technology and pipeline, etc."""
    samples = pl.DataFrame(result.tables()["samples"])

    def counts(col: str) -> dict[str, int]:
        if samples.is_empty():
            return {}
        vc = samples.get_column(col).fill_null("UNKNOWN").value_counts(sort=True)
        return {str(k): int(v) for k, v in vc.iter_rows()}

    harm = pl.DataFrame(harmonized)
    filled = {}
    if not harm.is_empty():
        for col in harm.columns:
            if col != "sample_accession":
                filled[col] = int(harm.get_column(col).is_not_null().sum())
    return {
        "num_samples": len(result.samples),
        "num_attributes": len(result.attributes),
        "num_original_files": len(result.original_files),
        "num_sample_tables": len(result.sample_tables),
        "organisms": counts("organism"),
        "platforms": counts("platform_accession"),
        "technologies": counts("technology"),
        "pipelines": counts("pipeline"),
        "harmonized_fields_filled": filled,
    }


def run_survey(
    accession: str, client: HttpClient, store: ArtifactStore, *, run_id: str | None = None
) -> SurveyManifest:
    """Survey ``accession`` from its source and write it to ``store``.

    Raises :class:`SurveyError` (naming the accession) when the source has no such record or
    returns something malformed; nothing is written in that case.
    """
    accession = accession.strip()
    source = source_for_accession(accession)
    result = surveyor_for(source)(accession, client)
    if result.experiment.accession != accession:
        # Run accessions survey their study; keep the study as the experiment key.
        result.warnings.append(f"{accession} surveyed as part of {result.experiment.accession}")
    return write_survey(result, store, run_id=run_id)
