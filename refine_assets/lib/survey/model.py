"""Records produced by every surveyor, and their conversion to Arrow tables.

A surveyor turns one experiment accession into one :class:`SurveyResult`. The result is
source-neutral: GEO, ArrayExpress and SRA surveyors all fill the same records, which are then
harmonized (:mod:`refine_assets.lib.harmonize`), written as Parquet per experiment and loaded into
the DuckDB warehouse (``sql/schema.sql``). Column names of :meth:`SurveyResult.tables` match the
warehouse tables one to one.

Controlled vocabularies (upper-case strings, as in refine.bio):

* ``source_database``: ``GEO``, ``ARRAY_EXPRESS``, ``SRA``
* ``technology``: ``MICROARRAY``, ``RNA-SEQ``, ``UNKNOWN``
* ``manufacturer``: ``AFFYMETRIX``, ``ILLUMINA``, ``AGILENT``, ``ION_TORRENT``, ``NEXTSEQ``, ``UNKNOWN``
* ``pipeline`` (what will process the sample): ``AFFY_TO_PCL``, ``ILLUMINA_TO_PCL``, ``SALMON``,
  ``NO_OP`` (submitter-processed), ``NONE`` (unsupported)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

SOURCE_DATABASES = ("GEO", "ARRAY_EXPRESS", "SRA")
TECHNOLOGIES = ("MICROARRAY", "RNA-SEQ", "UNKNOWN")
MANUFACTURERS = ("AFFYMETRIX", "ILLUMINA", "AGILENT", "ION_TORRENT", "NEXTSEQ", "UNKNOWN")
PIPELINES = ("AFFY_TO_PCL", "ILLUMINA_TO_PCL", "SALMON", "NO_OP", "NONE")


class SurveyError(Exception):
    """A survey failed for a reason that names the accession and the problem.

    Raised for unknown accessions, HTTP errors, and truncated or malformed records. The message
    always starts with the accession so that a failed Dagster partition says what went wrong.
    """

    def __init__(self, accession: str, problem: str):
        self.accession = accession
        self.problem = problem
        super().__init__(f"{accession}: {problem}")


@dataclass
class Organism:
    """An organism: refine.bio's UPPER_SNAKE scientific name and the NCBI taxonomy id."""

    name: str  # e.g. HOMO_SAPIENS
    taxonomy_id: int | None = None
    scientific_name: str | None = None  # e.g. Homo sapiens


@dataclass
class Platform:
    """A platform as the source names it, with our decision about it.

    ``accession`` is the source's id (``GPL570``, ``A-AFFY-44``, or for sequencing the instrument
    model without spaces, e.g. ``IlluminaHiSeq2500``). ``internal_code`` is the processing code
    (``hgu133plus2`` for Affymetrix, ``illuminaHumanv4`` for Illumina, the instrument model for
    RNA-seq) or None when the platform is not supported.
    """

    accession: str
    source_database: str
    title: str | None = None
    organism: str | None = None
    internal_code: str | None = None
    manufacturer: str = "UNKNOWN"
    technology: str = "UNKNOWN"
    brainarray: bool = False
    supported: bool = False


@dataclass
class Experiment:
    """One experiment (GEO series, ArrayExpress experiment or SRA study)."""

    accession: str
    source_database: str
    title: str | None = None
    description: str | None = None
    submitter_institution: str | None = None
    pubmed_ids: list[str] = field(default_factory=list)
    publication_title: str | None = None
    publication_doi: str | None = None
    publication_authors: list[str] = field(default_factory=list)
    source_first_published: str | None = None  # ISO date (YYYY-MM-DD)
    source_last_modified: str | None = None  # ISO date
    alternate_accessions: list[str] = field(default_factory=list)  # e.g. GSE for an SRP, E-GEOD-n
    related_accessions: list[str] = field(default_factory=list)  # super/sub-series
    technology: str = "UNKNOWN"
    source_url: str | None = None


@dataclass
class Sample:
    """One sample (GSM, ``E-XXX-n-<name>`` or SRR/ERR/DRR run)."""

    accession: str
    experiment_accession: str
    source_database: str
    title: str | None = None
    organism: str | None = None  # UPPER_SNAKE
    taxonomy_id: int | None = None
    platform_accession: str | None = None
    platform_name: str | None = None
    internal_platform_code: str | None = None
    technology: str = "UNKNOWN"
    manufacturer: str = "UNKNOWN"
    has_raw: bool = False
    pipeline: str = "NONE"
    pipeline_reason: str | None = None  # why pipeline NONE (decided at survey time, lib/survey/routing.py)
    source_url: str | None = None
    channel_count: int | None = None
    library_layout: str | None = None  # PAIRED / SINGLE (RNA-seq)
    library_strategy: str | None = None
    library_source: str | None = None
    instrument_model: str | None = None
    unmated_reads: bool = False
    source_first_published: str | None = None
    source_last_modified: str | None = None


@dataclass
class SampleAttribute:
    """One raw key/value pair of submitter metadata, kept verbatim (long format).

    ``source`` tells where it came from, e.g. ``geo_characteristics``, ``geo_field``,
    ``sdrf``, ``ae_json``, ``ena_run``, ``ena_study``, ``ena_experiment``, ``biosample``.
    ``position`` keeps the order in which the attribute appeared in the record.
    """

    sample_accession: str
    key: str
    value: str
    source: str
    position: int = 0


@dataclass
class OriginalFile:
    """A file at the source: raw data (CEL, fastq, sra) or a submitter-processed table."""

    source_url: str
    experiment_accession: str
    sample_accession: str | None = None
    filename: str | None = None
    file_type: str | None = None  # CEL, FASTQ, SRA, NON_NORMALIZED, PROCESSED, ARCHIVE, OTHER
    is_raw: bool = False
    is_archive: bool = False
    expected_size: int | None = None
    expected_md5: str | None = None


@dataclass
class SurveyResult:
    """Everything one survey of one experiment produced.

    ``sample_tables`` maps a sample accession to its submitter data table (GEO ``ID_REF``/``VALUE``
    ...), all columns as strings; ``platform_tables`` maps a platform accession to its annotation
    table (GEO GPL table). Both may be empty.
    """

    experiment: Experiment
    samples: list[Sample] = field(default_factory=list)
    attributes: list[SampleAttribute] = field(default_factory=list)
    platforms: list[Platform] = field(default_factory=list)
    organisms: list[Organism] = field(default_factory=list)
    original_files: list[OriginalFile] = field(default_factory=list)
    experiment_attributes: dict[str, list[str]] = field(default_factory=dict)
    sample_tables: dict[str, pa.Table] = field(default_factory=dict)
    platform_tables: dict[str, pa.Table] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pa.Table]:
        """The records as Arrow tables named like the warehouse tables they load into."""
        exp = self.experiment
        experiment_row = dataclasses.asdict(exp)
        experiment_row["experiment_attributes"] = [
            {"key": k, "value": v} for k, vs in self.experiment_attributes.items() for v in vs
        ]
        out = {
            "experiments": pa.Table.from_pylist([experiment_row], schema=EXPERIMENT_SCHEMA),
            "samples": _table(self.samples, SAMPLE_SCHEMA),
            "sample_attributes": _table(self.attributes, ATTRIBUTE_SCHEMA),
            "platforms": _table(self.platforms, PLATFORM_SCHEMA),
            "organisms": _table(self.organisms, ORGANISM_SCHEMA),
            "original_files": _table(self.original_files, ORIGINAL_FILE_SCHEMA),
        }
        return out


def _table(records: list[Any], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([dataclasses.asdict(r) for r in records], schema=schema)


_str = pa.string()
EXPERIMENT_SCHEMA = pa.schema(
    [
        ("accession", _str),
        ("source_database", _str),
        ("title", _str),
        ("description", _str),
        ("submitter_institution", _str),
        ("pubmed_ids", pa.list_(_str)),
        ("publication_title", _str),
        ("publication_doi", _str),
        ("publication_authors", pa.list_(_str)),
        ("source_first_published", _str),
        ("source_last_modified", _str),
        ("alternate_accessions", pa.list_(_str)),
        ("related_accessions", pa.list_(_str)),
        ("technology", _str),
        ("source_url", _str),
        ("experiment_attributes", pa.list_(pa.struct([("key", _str), ("value", _str)]))),
    ]
)
SAMPLE_SCHEMA = pa.schema(
    [
        ("accession", _str),
        ("experiment_accession", _str),
        ("source_database", _str),
        ("title", _str),
        ("organism", _str),
        ("taxonomy_id", pa.int64()),
        ("platform_accession", _str),
        ("platform_name", _str),
        ("internal_platform_code", _str),
        ("technology", _str),
        ("manufacturer", _str),
        ("has_raw", pa.bool_()),
        ("pipeline", _str),
        ("pipeline_reason", _str),
        ("source_url", _str),
        ("channel_count", pa.int64()),
        ("library_layout", _str),
        ("library_strategy", _str),
        ("library_source", _str),
        ("instrument_model", _str),
        ("unmated_reads", pa.bool_()),
        ("source_first_published", _str),
        ("source_last_modified", _str),
    ]
)
ATTRIBUTE_SCHEMA = pa.schema(
    [("sample_accession", _str), ("key", _str), ("value", _str), ("source", _str), ("position", pa.int64())]
)
PLATFORM_SCHEMA = pa.schema(
    [
        ("accession", _str),
        ("source_database", _str),
        ("title", _str),
        ("organism", _str),
        ("internal_code", _str),
        ("manufacturer", _str),
        ("technology", _str),
        ("brainarray", pa.bool_()),
        ("supported", pa.bool_()),
    ]
)
ORGANISM_SCHEMA = pa.schema([("name", _str), ("taxonomy_id", pa.int64()), ("scientific_name", _str)])
ORIGINAL_FILE_SCHEMA = pa.schema(
    [
        ("source_url", _str),
        ("experiment_accession", _str),
        ("sample_accession", _str),
        ("filename", _str),
        ("file_type", _str),
        ("is_raw", pa.bool_()),
        ("is_archive", pa.bool_()),
        ("expected_size", pa.int64()),
        ("expected_md5", _str),
    ]
)


def organism_name(scientific_name: str) -> str:
    """refine.bio's organism key: the scientific name upper-cased with spaces as underscores.

    >>> organism_name(" Homo sapiens ")
    'HOMO_SAPIENS'
    """
    return "_".join(scientific_name.strip().upper().split())
