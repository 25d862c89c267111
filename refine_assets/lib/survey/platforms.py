"""Platform, technology and pipeline decisions, driven by tables shipped as package data.

Surveyors call three functions (the contract other modules code against):

* :func:`lookup_platform` - a microarray platform (GEO ``GPLn`` or ArrayExpress ``A-XXXX-n``), or a
  GEO sequencing platform recognised from its title;
* :func:`sequencing_platform` - the platform of an SRA/ENA run from ``instrument_model`` and
  ``instrument_platform``;
* :func:`choose_pipeline` - which processor will handle a sample (refine.bio
  ``common/.../job_lookup.py::determine_processor_pipeline``, teardown section 1.3 step 4).

Helpers for the Affymetrix processor: :func:`platform_code_from_chip_type` (CEL-header chip type ->
platform code, punctuation removed and lower-cased) and :func:`brainarray_package_code` (the same
plus the ``st-vN`` stripping Brainarray uses in its package names), and
:func:`internal_code_for_chip_type` (chip type -> the table's internal code).

Data (``refine_assets/data``, loaded with :mod:`importlib.resources`, cached):

* ``supported_platforms.csv`` - one row per supported GEO platform: ``source_accession`` (GPL id),
  ``ae_accessions`` (``;``-separated ArrayExpress array designs of the same chip), ``chip_type``
  (Affymetrix CDF name as in CEL headers, where known), ``internal_code`` (Affymetrix: Brainarray /
  Bioconductor chip code such as ``hgu133plus2``; Illumina: BeadArray annotation package stem
  such as ``illuminaHumanv4``), ``refinebio_accession`` (refine.bio's internal accession, for
  comparisons with its API), ``manufacturer``, ``organism`` (UPPER_SNAKE; empty for multi-species
  chips), ``title`` (the chip's product name), ``brainarray`` (a Brainarray ENSG custom CDF exists).
  Derived from refine.bio's ``config/supported_microarray_platforms.csv`` and
  ``config/readable_affymetrix_names.csv`` (AlexsLemonade/refinebio), re-keyed and extended with
  organism, title, chip type and BeadArray package columns. ``A-GEOD-n`` is GEO's ``GPLn`` and is
  resolved by rule, not listed.
* ``supported_rnaseq_models.csv`` - short-read instrument models refine.bio accepts
  (``config/supported_rnaseq_platforms.txt`` plus the gatherer's ENA query list), with manufacturer.
* ``organisms.csv`` - ``name`` (UPPER_SNAKE), ``taxonomy_id`` (NCBI), ``scientific_name``.

Deliberate differences from refine.bio (see teardown section 12 spirit):

* ``platform_code_from_chip_type`` does not strip ``v1``/``v2`` (refine.bio's
  ``get_platform_from_CEL`` turns ``HG_U95Av2`` into ``hgu95a``, merging two different chips); only
  :func:`brainarray_package_code` strips a version that follows ``st``.
* :func:`choose_pipeline` sends unsupported platforms to ``NONE`` before the ``NO_OP`` rule (refine.bio
  queues NO_OP jobs that then fail for want of an internal accession), does not send reads of an
  unsupported sequencer to SALMON, and does not send submitter-processed RNA-seq to NO_OP.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources

from refine_assets.lib.survey.model import (
    MANUFACTURERS,
    TECHNOLOGIES,
    Organism,
    Platform,
    SurveyError,
    organism_name,
)

_DATA_PACKAGE = "refine_assets.data"

_MICROARRAY_MANUFACTURERS = ("AFFYMETRIX", "ILLUMINA", "AGILENT")
_SEQUENCING_MANUFACTURERS = ("ILLUMINA", "ION_TORRENT")


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupportedPlatform:
    """One row of ``supported_platforms.csv``."""

    source_accession: str
    ae_accessions: tuple[str, ...]
    chip_type: str | None
    internal_code: str
    refinebio_accession: str | None
    manufacturer: str
    organism: str | None
    title: str
    brainarray: bool


@dataclass(frozen=True)
class RnaSeqModel:
    """One row of ``supported_rnaseq_models.csv``: an instrument model as ENA/SRA spell it."""

    model: str
    manufacturer: str

    @property
    def code(self) -> str:
        """The model without spaces (``Illumina HiSeq 2500`` -> ``IlluminaHiSeq2500``)."""
        return self.model.replace(" ", "")


def read_data_csv(filename: str) -> list[dict[str, str]]:
    """Rows of a package-data CSV; lines starting with ``#`` are comments."""
    text = resources.files(_DATA_PACKAGE).joinpath(filename).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    rows = []
    for line_number, row in enumerate(reader, start=2):
        if None in row or any(value is None for value in row.values()):
            raise ValueError(f"{filename}: row {line_number} has the wrong number of fields: {row}")
        rows.append({key: value.strip() for key, value in row.items()})
    return rows


def _parse_bool(value: str, filename: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "y", "1"):
        return True
    if lowered in ("false", "no", "n", "0", ""):
        return False
    raise ValueError(f"{filename}: not a boolean: {value!r}")


@functools.cache
def supported_platforms() -> tuple[SupportedPlatform, ...]:
    """All rows of ``supported_platforms.csv`` (cached; raises ValueError on a malformed file)."""
    filename = "supported_platforms.csv"
    out = []
    for row in read_data_csv(filename):
        out.append(
            SupportedPlatform(
                source_accession=row["source_accession"].upper(),
                ae_accessions=tuple(a.strip().upper() for a in row["ae_accessions"].split(";") if a.strip()),
                chip_type=row["chip_type"] or None,
                internal_code=row["internal_code"],
                refinebio_accession=row["refinebio_accession"] or None,
                manufacturer=row["manufacturer"],
                organism=row["organism"] or None,
                title=row["title"],
                brainarray=_parse_bool(row["brainarray"], filename),
            )
        )
    return tuple(out)


@functools.cache
def _platform_index() -> dict[str, SupportedPlatform]:
    """Upper-cased GPL ids and ArrayExpress array designs -> row (raises ValueError on duplicates)."""
    index: dict[str, SupportedPlatform] = {}
    for row in supported_platforms():
        for key in (row.source_accession, *row.ae_accessions):
            if key in index:
                raise ValueError(f"supported_platforms.csv: accession {key} listed twice")
            index[key] = row
    return index


@functools.cache
def supported_rnaseq_models() -> tuple[RnaSeqModel, ...]:
    """All rows of ``supported_rnaseq_models.csv`` (cached)."""
    return tuple(
        RnaSeqModel(r["model"], r["manufacturer"]) for r in read_data_csv("supported_rnaseq_models.csv")
    )


@functools.cache
def _organisms() -> tuple[Organism, ...]:
    out = []
    for row in read_data_csv("organisms.csv"):
        out.append(Organism(row["name"], int(row["taxonomy_id"]), row["scientific_name"]))
    return tuple(out)


def organisms() -> list[Organism]:
    """All organisms of ``organisms.csv`` (fresh copies; the cached table is never handed out)."""
    return [dataclasses.replace(o) for o in _organisms()]


@functools.cache
def _organism_indexes() -> tuple[dict[str, Organism], dict[int, Organism]]:
    by_name = {o.name: o for o in _organisms()}
    by_taxid = {o.taxonomy_id: o for o in _organisms() if o.taxonomy_id is not None}
    return by_name, by_taxid


def organism_by_name(name: str | None) -> Organism | None:
    """The organism for ``HOMO_SAPIENS`` or ``Homo sapiens`` (any case/spacing), or None if unknown."""
    if not name or not name.strip():
        return None
    found = _organism_indexes()[0].get(organism_name(name))
    return dataclasses.replace(found) if found else None


def organism_by_taxid(taxid: int | str | None) -> Organism | None:
    """The organism for an NCBI taxonomy id (int or digit string), or None if unknown."""
    if taxid is None:
        return None
    try:
        key = int(str(taxid).strip())
    except ValueError:
        return None
    found = _organism_indexes()[1].get(key)
    return dataclasses.replace(found) if found else None


# ------------------------------------------------------------------------------------------------
# Affymetrix chip types
# ------------------------------------------------------------------------------------------------


def platform_code_from_chip_type(chip_type: str) -> str:
    """A CEL header chip type (cdfName) as a platform code: punctuation removed, lower-cased.

    ``HG-U133_Plus_2`` -> ``hgu133plus2``, ``HG_U95Av2`` -> ``hgu95av2``, ``Mouse430_2`` ->
    ``mouse4302``, ``RG_U34A`` -> ``rgu34a``. Unlike refine.bio's ``get_platform_from_CEL`` no
    ``v1``/``v2`` is stripped, so ``HG_U95A`` and ``HG_U95Av2`` stay different chips. A DatHeader
    style ``.1sq`` suffix (``HG_U95Av2.1sq``) is dropped. Raises ValueError for an empty chip type.
    """
    text = re.sub(r"\.1sq$", "", (chip_type or "").strip(), flags=re.IGNORECASE)
    code = re.sub(r"[^0-9a-z]", "", text.lower())
    if not code:
        raise ValueError(f"not an Affymetrix chip type: {chip_type!r}")
    return code


def brainarray_package_code(chip_type: str) -> str:
    """The chip part of a Brainarray package name (``<code>hsensgprobe``) for a chip type.

    :func:`platform_code_from_chip_type` plus the version stripping Brainarray applies to ST arrays:
    ``HuGene-1_0-st-v1`` -> ``hugene10st``, ``HuEx-1_0-st-v2`` -> ``huex10st``. Versions of 3'IVT
    chips are part of the chip name and kept (``HG_U95Av2`` -> ``hgu95av2``).
    """
    return re.sub(r"stv\d+$", "st", platform_code_from_chip_type(chip_type))


@functools.cache
def _chip_type_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for row in supported_platforms():
        if row.manufacturer == "AFFYMETRIX":
            index.setdefault(row.internal_code, row.internal_code)
            if row.chip_type:
                index.setdefault(platform_code_from_chip_type(row.chip_type), row.internal_code)
    return index


def internal_code_for_chip_type(chip_type: str) -> str | None:
    """The supported-platforms internal code of a CEL header chip type, or None if not supported.

    ``HuGene-1_0-st-v1`` -> ``hugene10st``, ``HG-U133_Plus_2`` -> ``hgu133plus2``, ``Hu6800`` -> None.
    """
    index = _chip_type_index()
    code = platform_code_from_chip_type(chip_type)
    if code in index:
        return index[code]
    return index.get(brainarray_package_code(chip_type))


# ------------------------------------------------------------------------------------------------
# Sequencing instruments
# ------------------------------------------------------------------------------------------------


def _model_key(text: str) -> str:
    """Comparison key of an instrument model: lower-case alphanumerics without an ``illumina`` prefix."""
    key = re.sub(r"[^0-9a-z]", "", text.lower())
    return key.removeprefix("illumina")


@functools.cache
def _models_by_key() -> dict[str, RnaSeqModel]:
    return {_model_key(m.model): m for m in supported_rnaseq_models()}


@functools.cache
def _model_patterns() -> tuple[tuple[re.Pattern[str], RnaSeqModel], ...]:
    """Word-bounded, space-tolerant patterns of the supported models, longest model first."""
    out = []
    for m in supported_rnaseq_models():
        words = [w for w in m.model.split() if w.lower() != "illumina"] or m.model.split()
        pattern = r"(?<![0-9a-z])" + r"[\s_-]*".join(re.escape(w) for w in words) + r"(?![0-9a-z])"
        out.append((len("".join(words)), re.compile(pattern, re.I), m))
    out.sort(key=lambda item: item[0], reverse=True)
    return tuple((pattern, m) for _, pattern, m in out)


def _supported_model(model: str | None, *, in_title: bool) -> RnaSeqModel | None:
    """The supported model named by ``model`` (exact, normalised) or, in a title, contained in it."""
    if not model or not model.strip():
        return None
    bare = re.sub(r"\([^)]*\)", " ", model)  # GEO titles end with "(Homo sapiens)"
    found = _models_by_key().get(_model_key(bare))
    if found or not in_title:
        return found
    for pattern, candidate in _model_patterns():
        if pattern.search(bare):
            return candidate
    return None


_ION_TORRENT_WORDS = re.compile(r"\bion\s*(torrent|proton|pgm|s5|genestudio|chef|genexus)\b", re.I)
_ILLUMINA_SEQUENCER_WORDS = re.compile(
    r"hiseq|novaseq|nextseq|miseq|miniseq|\biseq|genome\s*analy[sz]er|hiscan\s*sq|solexa", re.I
)
_OTHER_SEQUENCER_WORDS = re.compile(
    r"pacbio|pacific\s*biosciences|\bsequel\b|nanopore|minion|gridion|promethion|bgiseq|dnbseq|mgiseq|"
    r"\bsolid\b|ab\s*5500|454\s*gs|\bgs\s*flx|helicos|complete\s*genomics|element\s*aviti",
    re.I,
)


def _sequencing_manufacturer(text: str) -> str:
    """Manufacturer of a sequencer named in ``text`` (ION_TORRENT, ILLUMINA or UNKNOWN)."""
    if _ION_TORRENT_WORDS.search(text):
        return "ION_TORRENT"
    if _ILLUMINA_SEQUENCER_WORDS.search(text) or re.search(r"illumina", text, re.I):
        return "ILLUMINA"
    return "UNKNOWN"


def _title_says_sequencing(title: str) -> bool:
    """True when a platform title names a sequencer or says sequencing (not bare ``Illumina``)."""
    return bool(
        re.search(r"sequencing|sequencer", title, re.I)
        or _ILLUMINA_SEQUENCER_WORDS.search(title)
        or _ION_TORRENT_WORDS.search(title)
        or _OTHER_SEQUENCER_WORDS.search(title)
    )


def sequencing_platform(instrument_model: str | None, instrument_platform: str | None) -> Platform:
    """The platform of a sequencing run from ENA/SRA ``instrument_model`` and ``instrument_platform``.

    Manufacturer is ILLUMINA or ION_TORRENT when the instrument platform says so (else UNKNOWN and
    unsupported); accession is the model with spaces removed (``IlluminaHiSeq2500``); technology
    ``RNA-SEQ``; supported when the model is in the supported RNA-seq model list.

    Model matching ignores case, punctuation and a leading ``Illumina`` (ENA spells ``NextSeq 500``,
    GEO ``Illumina NextSeq 500``) but is otherwise exact (``Illumina NovaSeq X Plus`` is listed on its
    own). ``internal_code`` is the listed model without spaces when supported, else None. With no
    model the accession is the instrument platform (or ``UNKNOWN``). ``source_database`` is ``SRA``.
    """
    model = (instrument_model or "").strip()
    platform_name = (instrument_platform or "").strip().upper().replace(" ", "_")
    manufacturer = platform_name if platform_name in _SEQUENCING_MANUFACTURERS else "UNKNOWN"
    known = _supported_model(model, in_title=False)
    supported = bool(known) and manufacturer != "UNKNOWN" and known.manufacturer == manufacturer
    return Platform(
        accession=model.replace(" ", "") if model else (platform_name or "UNKNOWN"),
        source_database="SRA",
        title=model or None,
        internal_code=known.code if supported and known else None,
        manufacturer=manufacturer,
        technology="RNA-SEQ",
        brainarray=False,
        supported=supported,
    )


# ------------------------------------------------------------------------------------------------
# Microarray (and GEO sequencing) platforms
# ------------------------------------------------------------------------------------------------


def normalize_platform_accession(accession: str) -> str:
    """Upper-cased, stripped accession; ``A-GEOD-n`` becomes ``GPLn`` (its GEO twin).

    Raises :class:`SurveyError` for an empty accession.
    """
    acc = (accession or "").strip().upper()
    if not acc:
        raise SurveyError(accession or "<empty>", "empty platform accession")
    geod = re.fullmatch(r"A-GEOD-(\d+)", acc)
    return f"GPL{geod.group(1)}" if geod else acc


def _microarray_manufacturer(accession: str, title: str) -> str:
    text = f"{accession} {title}"
    if re.search(r"affymetrix|genechip|\bA-AFFY-", text, re.I):
        return "AFFYMETRIX"
    if re.search(r"agilent|\bA-AGIL-", text, re.I):
        return "AGILENT"
    if re.search(r"illumina|beadchip|beadarray|sentrix|\bA-ILMN-", text, re.I):
        return "ILLUMINA"
    return "UNKNOWN"


def _organism_from_title(title: str) -> str | None:
    """The organism of a GEO sequencing title ending in ``(Genus species)``, if it names exactly one."""
    match = re.search(r"\(([^();]+)\)\s*$", title)
    return organism_name(match.group(1)) if match and len(match.group(1).split()) >= 2 else None


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

    Details: the returned accession is the given one, stripped and upper-cased (``A-GEOD-570`` stays
    ``A-GEOD-570``, but is looked up as ``GPL570``). For a known platform the title is the given
    title or else the table's product name, and the organism the table's (or, for multi-species
    chips, the given one as UPPER_SNAKE). A sequencing title (``Illumina HiSeq 2000 (Mus musculus)``)
    gives technology RNA-SEQ, manufacturer by instrument, ``supported`` when the instrument is in
    the RNA-seq model list and then ``internal_code`` = the model without spaces
    (``IlluminaHiSeq2000``), as refine.bio's GEO surveyor does (longest listed model contained in the
    title); without a given organism, a single ``(Genus species)`` at the end of the title is used.
    An unknown microarray gets technology MICROARRAY when its manufacturer is recognised,
    else UNKNOWN. Raises :class:`SurveyError` for an empty accession.
    """
    given = (accession or "").strip().upper()
    key = normalize_platform_accession(accession)
    given_organism = organism_name(organism) if organism and organism.strip() else None
    row = _platform_index().get(key)
    if row is not None:
        return Platform(
            accession=given,
            source_database=source_database,
            title=title.strip() if title and title.strip() else row.title,
            organism=row.organism or given_organism,
            internal_code=row.internal_code,
            manufacturer=row.manufacturer,
            technology="MICROARRAY",
            brainarray=row.brainarray,
            supported=True,
        )
    clean_title = title.strip() if title and title.strip() else None
    if clean_title and _title_says_sequencing(clean_title):
        known = _supported_model(clean_title, in_title=True)
        manufacturer = known.manufacturer if known else _sequencing_manufacturer(clean_title)
        return Platform(
            accession=given,
            source_database=source_database,
            title=clean_title,
            organism=given_organism or _organism_from_title(clean_title),
            internal_code=known.code if known else None,
            manufacturer=manufacturer,
            technology="RNA-SEQ",
            brainarray=False,
            supported=known is not None,
        )
    manufacturer = _microarray_manufacturer(given, clean_title or "")
    return Platform(
        accession=given,
        source_database=source_database,
        title=clean_title,
        organism=given_organism,
        internal_code=None,
        manufacturer=manufacturer,
        technology="MICROARRAY" if manufacturer in _MICROARRAY_MANUFACTURERS else "UNKNOWN",
        brainarray=False,
        supported=False,
    )


# ------------------------------------------------------------------------------------------------
# Pipeline
# ------------------------------------------------------------------------------------------------

_SEQUENCING_FILE = re.compile(
    r"(\.(fastq|fq)(\.(gz|bz2|xz|zst))?$)|(\.sra$)|(^[SED]RR\d{5,}(\.\d+)?(_[12])?(\.(fastq|fq|sra).*)?$)",
    re.IGNORECASE,
)
_CEL_FILE = re.compile(r"\.cel(\.gz)?$", re.IGNORECASE)


def _basename(filename: str) -> str:
    """The file name of a path or URL (query string dropped)."""
    return filename.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].strip()


def choose_pipeline(
    *, technology: str, manufacturer: str, supported: bool, has_raw: bool, filenames: list[str]
) -> str:
    """Which pipeline will process a sample (refine.bio ``determine_processor_pipeline``).

    ``.CEL``/``.CEL.gz`` file -> ``AFFY_TO_PCL``; fastq/sra files or RNA-SEQ with raw data ->
    ``SALMON``; no raw data -> ``NO_OP``; unsupported platform -> ``NONE``; supported Illumina
    microarray -> ``ILLUMINA_TO_PCL``; supported Affymetrix with only ``.txt`` -> ``NO_OP``.

    Rules are applied in this order (``filenames`` may be names, paths or URLs):

    1. any ``.CEL``/``.CEL.gz`` -> ``AFFY_TO_PCL`` (the CEL header decides the platform, even when
       the declared one is unknown);
    2. platform not supported -> ``NONE`` (refine.bio applies the NO_OP rule first, then NO_OP fails
       for want of an internal accession; reads of unsupported sequencers are not quantified);
    3. a fastq/fq/sra file or an ``SRR/ERR/DRRnnnnn`` run name -> ``SALMON``;
    4. RNA-SEQ: raw data -> ``SALMON``; submitter-processed only -> ``NONE`` (RNA-seq is processed
       from SRA reads, as in refine.bio, issue #966);
    5. no raw data, or every file is an ArrayExpress ``.processed`` file -> ``NO_OP``;
    6. ILLUMINA microarray -> ``ILLUMINA_TO_PCL``;
    7. AFFYMETRIX microarray: files but none is a CEL (e.g. only ``.txt``) -> ``NO_OP``, else
       ``AFFY_TO_PCL``;
    8. anything else (Agilent, unknown manufacturer or technology) -> ``NONE``.

    Raises ValueError for a technology or manufacturer outside the model's vocabularies.
    """
    if technology not in TECHNOLOGIES:
        raise ValueError(f"unknown technology {technology!r}; expected one of {TECHNOLOGIES}")
    if manufacturer not in MANUFACTURERS:
        raise ValueError(f"unknown manufacturer {manufacturer!r}; expected one of {MANUFACTURERS}")
    names = [_basename(f) for f in filenames if f and _basename(f)]
    if any(_CEL_FILE.search(n) for n in names):
        return "AFFY_TO_PCL"
    if not supported:
        return "NONE"
    if any(_SEQUENCING_FILE.search(n) for n in names):
        return "SALMON"
    if technology == "RNA-SEQ":
        return "SALMON" if has_raw else "NONE"
    if not has_raw or (names and all(".processed" in n.lower() for n in names)):
        return "NO_OP"
    if technology == "MICROARRAY" and manufacturer == "ILLUMINA":
        return "ILLUMINA_TO_PCL"
    if technology == "MICROARRAY" and manufacturer == "AFFYMETRIX":
        return "NO_OP" if names else "AFFY_TO_PCL"
    return "NONE"
