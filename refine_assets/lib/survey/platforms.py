"""Platform and technology decisions, driven by the supported-platforms table shipped as package data.

INTERFACE STUB: the signatures below are the contract surveyors call. The data-driven
implementation (``refine_assets/data/supported_platforms.csv``) replaces the bodies.
"""

from __future__ import annotations

from refine_assets.lib.survey.model import Platform


def lookup_platform(
    accession: str, source_database: str, title: str | None = None, organism: str | None = None
) -> Platform:
    """Decide what a microarray (or GEO sequencing) platform is and whether we support it.

    ``accession`` is a GEO GPL id or an ArrayExpress array design (``A-AFFY-44``, ``A-GEOD-570``:
    ``A-GEOD-n`` is GEO's ``GPLn``). Known platforms come from the supported-platforms table
    (internal code, manufacturer, technology MICROARRAY, Brainarray flag, supported=True). An
    unknown platform is returned with ``supported=False``, ``internal_code=None`` and the
    manufacturer guessed from the title (Affymetrix / Illumina / Agilent ...); a GEO platform whose
    title or technology says sequencing gets technology ``RNA-SEQ``.
    """
    raise NotImplementedError


def sequencing_platform(instrument_model: str | None, instrument_platform: str | None) -> Platform:
    """The platform of a sequencing run from ENA/SRA ``instrument_model`` and ``instrument_platform``.

    Manufacturer is ILLUMINA or ION_TORRENT when the instrument platform says so (else UNKNOWN and
    unsupported); accession is the model with spaces removed (``IlluminaHiSeq2500``); technology
    ``RNA-SEQ``; supported when the model is in the supported RNA-seq model list.
    """
    raise NotImplementedError


def choose_pipeline(
    *, technology: str, manufacturer: str, supported: bool, has_raw: bool, filenames: list[str]
) -> str:
    """Which pipeline will process a sample (refine.bio ``determine_processor_pipeline``).

    ``.CEL``/``.CEL.gz`` file -> ``AFFY_TO_PCL``; fastq/sra files or RNA-SEQ with raw data ->
    ``SALMON``; no raw data -> ``NO_OP``; unsupported platform -> ``NONE``; supported Illumina
    microarray -> ``ILLUMINA_TO_PCL``; supported Affymetrix with only ``.txt`` -> ``NO_OP``.
    """
    raise NotImplementedError
