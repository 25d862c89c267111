"""GEO surveyor: one series (``GSEnnn``) -> :class:`SurveyResult`, from its family SOFT file.

refine.bio (``foreman/.../surveyor/geo.py``) downloads the same file through GEOparse. We fetch it
ourselves from the canonical FTP-over-HTTPS location (:func:`family_soft_url`) and parse it with
:mod:`refine_assets.lib.survey.geo_soft`; every sample's submitter table and every platform table
comes with it, so no MINiML download is needed for submitter-processed (NO_OP) samples.

What is built (see :func:`survey_geo`):

* Experiment: title, summary + overall design as description, unique contact institutes,
  PubMed ids (+ title/DOI/authors of the first one from E-utilities esummary), submission and
  last-update dates as ISO dates, related super/sub-series from ``!Series_relation``, alternate
  accessions (BioProject, SRA study) from the other relations. Every series field is also kept
  in ``experiment_attributes`` (key lower-cased, all values).
* Samples with platform/technology/manufacturer from :func:`platforms.lookup_platform` (a GEO
  platform whose ``!Platform_technology`` is high-throughput sequencing is RNA-SEQ), ``has_raw``
  from the supplementary files (CEL, Illumina non-normalized) or, for sequencing, the SRA
  relation, and the pipeline from :func:`platforms.choose_pipeline`.
* SampleAttribute rows: each ``characteristics_chN`` entry split at the first ``:`` (key stripped
  but spelled as the submitter wrote it, so that delivered columns read ``characteristics_ch1_Sex``
  exactly as refine.bio's; harmonization compares keys lower-cased; value stripped; source ``geo_characteristics``; entries without ``:`` are kept
  under the key ``characteristics_chN`` where refine.bio's ``preprocess_geo_sample`` drops them),
  every other field as ``geo_field`` (key lower-cased, values joined with one space, as refine.bio)
  and each ``!Sample_relation`` as ``geo_relation``.
* OriginalFiles for every supplementary file of every sample and of the series.
* ``sample_tables`` / ``platform_tables``: the GSM data tables and GPL annotation tables.

Errors: an accession that is not ``GSE<digits>``, a 404 or any other HTTP failure of the family
SOFT, a truncated/malformed SOFT, a SOFT without the series, or a series whose listed samples are
missing from the file raise :class:`SurveyError`. Publication and taxonomy look-ups are optional:
their failures become warnings.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from refine_assets.lib.http import HttpClient, HttpError, HttpStatusError
from refine_assets.lib.survey import platforms, taxonomy
from refine_assets.lib.survey.geo_soft import SoftDocument, SoftEntity, SoftParseError, parse_soft
from refine_assets.lib.survey.model import (
    Experiment,
    Organism,
    OriginalFile,
    Platform,
    Sample,
    SampleAttribute,
    SurveyError,
    SurveyResult,
    organism_name,
)
from refine_assets.lib.survey.publications import PubmedSummary, pubmed_summary
from refine_assets.lib.survey.routing import unsupported_rnaseq_reason

GEO_FTP_HTTPS = "https://ftp.ncbi.nlm.nih.gov/geo"
GEO_ACC_URL = "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi"
EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"

_GEO_ACCESSION = re.compile(r"^(GSE|GSM|GPL|GDS)(\d+)$")
_CHARACTERISTICS = re.compile(r"^characteristics_ch\d+$", re.IGNORECASE)
_NON_NORMALIZED = re.compile(r"non[-_]normali[sz]ed", re.IGNORECASE)
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".rar", ".7z")
_PROCESSED_SUFFIXES = (".txt", ".tsv", ".csv", ".xls", ".xlsx", ".soft", ".tab", ".gpr")
_SRA_ACCESSION = re.compile(r"\b([SED]R[XPRS]\d+)\b")


# --------------------------------------------------------------------------------------------------
# URLs


def _split_accession(accession: str, kinds: Iterable[str]) -> tuple[str, str]:
    acc = (accession or "").strip().upper()
    match = _GEO_ACCESSION.match(acc)
    if not match or match.group(1) not in set(kinds):
        wanted = "/".join(f"{k}<digits>" for k in kinds)
        raise SurveyError(accession, f"not a GEO accession of the form {wanted}")
    return match.group(1), match.group(2)


def geo_stem(accession: str) -> str:
    """GEO's directory stem: the accession with its last three digits replaced by ``nnn``.

    ``GSE781`` -> ``GSEnnn``, ``GSE12345`` -> ``GSE12nnn``, ``GPL96`` -> ``GPLnnn``.
    Raises :class:`SurveyError` for anything that is not ``GSE/GSM/GPL/GDS<digits>``.
    """
    prefix, digits = _split_accession(accession, ("GSE", "GSM", "GPL", "GDS"))
    return f"{prefix}{digits[:-3]}nnn"


def family_soft_url(accession: str) -> str:
    """The family SOFT of a series on NCBI's FTP server over HTTPS.

    ``GSE781`` -> ``https://ftp.ncbi.nlm.nih.gov/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz``.
    Raises :class:`SurveyError` unless ``accession`` is ``GSE<digits>``.
    """
    prefix, digits = _split_accession(accession, ("GSE",))
    acc = prefix + digits
    return f"{GEO_FTP_HTTPS}/series/{geo_stem(acc)}/{acc}/soft/{acc}_family.soft.gz"


def platform_text_url(gpl: str) -> str:
    """GEO's full SOFT text of one platform (``acc.cgi?targ=self&acc=GPLn&form=text&view=full``)."""
    prefix, digits = _split_accession(gpl, ("GPL",))
    return f"{GEO_ACC_URL}?targ=self&acc={prefix}{digits}&form=text&view=full"


# --------------------------------------------------------------------------------------------------
# E-utilities


def taxonomy_id(scientific_name: str, client: HttpClient) -> int | None:
    """NCBI taxonomy id of a scientific name via E-utilities esearch (refine.bio's
    ``Organism.get_or_create_object_for_name``: the term is the UPPER_SNAKE name). Raises
    :class:`HttpError`; see :func:`taxonomy.esearch_taxonomy_id`."""
    return taxonomy.esearch_taxonomy_id(organism_name(scientific_name), client)


# --------------------------------------------------------------------------------------------------
# Platforms


def platform_from_soft(entity: SoftEntity) -> Platform:
    """Our decision for a GEO PLATFORM entity (``lookup_platform`` with its title and organism).

    GEO says ``!Platform_technology = high-throughput sequencing`` for sequencing "platforms"
    (an instrument per organism); those are RNA-SEQ whatever the title says.
    """
    gpl = entity.accession or ""
    decision = platforms.lookup_platform(
        gpl, "GEO", title=entity.get("title"), organism=entity.get("organism")
    )
    if "sequencing" in (entity.get("technology") or "").lower() and decision.technology != "RNA-SEQ":
        decision = dataclasses.replace(decision, technology="RNA-SEQ")
    return decision


def survey_geo_platform_text(gpl: str, client: HttpClient) -> Platform:
    """Fetch one platform's SOFT text from GEO ``acc.cgi`` and return our decision about it.

    Raises :class:`SurveyError` for a malformed accession, an HTTP failure (404: not found) or an
    answer without that platform.
    """
    url = platform_text_url(gpl)
    acc = gpl.strip().upper()
    try:
        response = client.get(url)
    except HttpStatusError as exc:
        if exc.status == 404:
            raise SurveyError(acc, f"GEO platform not found ({url})") from exc
        raise SurveyError(acc, f"GEO platform text download failed: {exc}") from exc
    except HttpError as exc:
        raise SurveyError(acc, f"GEO platform text download failed: {exc}") from exc
    try:
        doc = parse_soft(response.content, name=url, parse_tables=False)
    except SoftParseError as exc:
        raise SurveyError(acc, f"malformed GEO platform text: {exc}") from exc
    entity = doc.platforms.get(acc)
    if entity is None:
        raise SurveyError(acc, f"GEO answer has no ^PLATFORM = {acc} ({url})")
    return platform_from_soft(entity)


# --------------------------------------------------------------------------------------------------
# Helpers


def geo_date(value: str | None) -> str | None:
    """GEO's ``Oct 24 2003`` as ``2003-10-24`` (None for missing or unreadable dates)."""
    if not value:
        return None
    text = value.strip()
    text = re.sub(r"^Public on\s+", "", text)
    for fmt in ("%b %d %Y", "%B %d %Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def classify_supplementary_file(url: str) -> tuple[str, bool, bool]:
    """(file_type, is_raw, is_archive) of a GEO supplementary file URL, judged by its name.

    ``.CEL``/``.CEL.gz`` -> CEL (raw); Illumina ``*non_normalized*.txt`` (``_``/``-`` variants, as
    refine.bio) -> NON_NORMALIZED (raw); tar/zip -> ARCHIVE; tables (txt/tsv/csv/xls, gz or not) ->
    PROCESSED; anything else (idat, chp, bed, bigwig ...) -> OTHER.
    """
    name = url.rstrip("/").rsplit("/", 1)[-1].lower()
    bare = name[:-3] if name.endswith(".gz") else name
    if bare.endswith(".cel"):
        return "CEL", True, False
    if _NON_NORMALIZED.search(name) and bare.endswith(".txt"):
        return "NON_NORMALIZED", True, False
    if name.endswith(_ARCHIVE_SUFFIXES):
        return "ARCHIVE", False, True
    if bare.endswith(_PROCESSED_SUFFIXES):
        return "PROCESSED", False, False
    return "OTHER", False, False


def _supplementary_urls(entity: SoftEntity) -> list[str]:
    urls: list[str] = []
    for key, values in entity.attributes.items():
        if key.lower().startswith("supplementary_file"):
            urls.extend(v for v in values if v and v.upper() != "NONE")
    return urls


def _relation_parts(value: str) -> tuple[str, str]:
    kind, _, target = value.partition(":")
    return kind.strip(), target.strip()


def _accession_from_relation(target: str) -> str | None:
    """``https://www.ncbi.nlm.nih.gov/bioproject/PRJNA293166`` -> ``PRJNA293166``; ``sra?term=SRP1`` -> ``SRP1``."""
    parts = urlsplit(target)
    if parts.scheme:
        term = parse_qs(parts.query).get("term")
        if term:
            return term[0].strip() or None
        last = parts.path.rstrip("/").rsplit("/", 1)[-1]
        return last or None
    return target.split()[0] if target else None


def _original_file(url: str, experiment: str, sample: str | None) -> OriginalFile:
    file_type, is_raw, is_archive = classify_supplementary_file(url)
    return OriginalFile(
        source_url=url,
        experiment_accession=experiment,
        sample_accession=sample,
        filename=url.rstrip("/").rsplit("/", 1)[-1],
        file_type=file_type,
        is_raw=is_raw,
        is_archive=is_archive,
    )


def _first(entity: SoftEntity, *keys: str) -> str | None:
    for key in keys:
        value = entity.get(key)
        if value:
            return value
    return None


def sample_attributes(entity: SoftEntity) -> list[SampleAttribute]:
    """The raw metadata of one GSM as long-format attribute rows (see module doc)."""
    acc = entity.accession or ""
    rows: list[SampleAttribute] = []
    for key, values in entity.attributes.items():
        if _CHARACTERISTICS.match(key):
            for entry in values:
                entry = entry.strip()
                if not entry:
                    continue
                name, sep, value = entry.partition(":")
                if sep and name.strip():
                    rows.append(
                        SampleAttribute(acc, name.strip(), value.strip(), "geo_characteristics")
                    )
                else:
                    rows.append(SampleAttribute(acc, key.lower(), entry, "geo_characteristics"))
            continue
        rows.append(SampleAttribute(acc, key.lower(), " ".join(values), "geo_field"))
        if key.lower() == "relation":
            for value in values:
                kind, target = _relation_parts(value)
                if kind and target:
                    rows.append(SampleAttribute(acc, kind.lower(), target, "geo_relation"))
                    if kind.upper() == "SRA":
                        sra = _SRA_ACCESSION.search(target)
                        if sra:
                            rows.append(SampleAttribute(acc, "sra_accession", sra.group(1), "geo_relation"))
    for position, row in enumerate(rows):
        row.position = position
    return rows


# --------------------------------------------------------------------------------------------------
# The survey


def survey_geo(accession: str, client: HttpClient, *, fetch_publications: bool = True) -> SurveyResult:
    """Survey one GEO series from its family SOFT (see the module doc for what is built).

    ``client`` serves ``family_soft_url(accession)`` (live, or a replay with the file registered),
    E-utilities esummary (when ``fetch_publications``) and, for organisms whose taxonomy id neither
    the SOFT nor the package's organism table gives, E-utilities esearch; those two look-ups are optional (failures become warnings).
    A SuperSeries whose family SOFT holds no samples returns the experiment with its sub-series in
    ``related_accessions`` and a warning. Raises :class:`SurveyError` (see module doc).
    """
    _split_accession(accession, ("GSE",))
    acc = accession.strip().upper()
    url = family_soft_url(acc)
    try:
        response = client.get(url)
    except HttpStatusError as exc:
        if exc.status == 404:
            raise SurveyError(acc, f"GEO series not found: no family SOFT at {url} (HTTP 404)") from exc
        raise SurveyError(acc, f"family SOFT download failed: {exc}") from exc
    except HttpError as exc:
        raise SurveyError(acc, f"family SOFT download failed: {exc}") from exc
    try:
        doc = parse_soft(response.content, name=url)
    except SoftParseError as exc:
        raise SurveyError(acc, f"malformed family SOFT: {exc}") from exc
    return survey_from_soft(acc, doc, client, fetch_publications=fetch_publications, source_url=url)


def survey_from_soft(
    accession: str,
    doc: SoftDocument,
    client: HttpClient | None,
    *,
    fetch_publications: bool = True,
    source_url: str | None = None,
) -> SurveyResult:
    """Build the :class:`SurveyResult` of series ``accession`` from a parsed family SOFT.

    ``client`` (optional) is used for PubMed/taxonomy look-ups and for platforms missing from the
    SOFT; without it those are skipped with a warning. Raises :class:`SurveyError`.
    """
    acc = accession
    series = doc.series.get(acc)
    if series is None:
        found = ", ".join(f"{e.entity_type} {e.accession}" for e in doc.entities[:5])
        raise SurveyError(acc, f"family SOFT has no ^SERIES = {acc} (found {found or 'nothing'})")
    warnings = [f"SOFT {w}" for w in doc.warnings]

    experiment = _experiment(acc, series)
    result = SurveyResult(experiment=experiment, warnings=warnings)
    result.experiment_attributes = {k.lower(): list(v) for k, v in series.attributes.items()}

    if fetch_publications and client is not None:
        _add_publications(result, client)

    sample_entities = doc.of_type("SAMPLE")
    listed = series.get_all("sample_id")
    present = {e.accession for e in sample_entities}
    missing = [s for s in listed if s not in present]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise SurveyError(
            acc,
            f"family SOFT lacks {len(missing)} of the {len(listed)} samples listed in !Series_sample_id "
            f"({shown}); truncated or metadata-only file",
        )
    if not sample_entities:
        if any(r.startswith("GSE") for r in experiment.related_accessions) and _is_superseries(series):
            result.warnings.append(
                f"{acc} is a SuperSeries without samples of its own; survey its sub-series: "
                + ", ".join(experiment.related_accessions)
            )
            return result
        raise SurveyError(acc, "family SOFT has no samples")

    # Platforms
    platform_decisions: dict[str, Platform] = {}
    platform_entities = doc.platforms
    for gpl, entity in platform_entities.items():
        platform_decisions[gpl] = platform_from_soft(entity)
        if entity.table is not None:
            result.platform_tables[gpl] = entity.table
    for entity in sample_entities:
        gpl = (entity.get("platform_id") or "").strip()
        if gpl and gpl not in platform_decisions:
            platform_decisions[gpl] = _missing_platform(gpl, client, result)
    result.platforms = list(platform_decisions.values())

    # Series-level files; a non-normalized matrix is every sample's raw data (refine.bio).
    series_files = [_original_file(u, acc, None) for u in _supplementary_urls(series)]
    result.original_files.extend(series_files)
    series_raw = [f for f in series_files if f.file_type == "NON_NORMALIZED"]

    organisms: dict[str, Organism] = {}
    taxid_cache: dict[str, int | None] = {}
    for entity in sample_entities:
        sample = _sample(acc, entity, platform_decisions, platform_entities, series_raw, result)
        result.samples.append(sample)
        result.attributes.extend(sample_attributes(entity))
        if entity.table is not None:
            result.sample_tables[sample.accession] = entity.table
        scientific = _first(entity, "organism_ch1", "organism")
        if scientific:
            name = organism_name(scientific)
            taxid = sample.taxonomy_id
            if taxid is None:
                taxid = _platform_taxid(entity, platform_entities, scientific)
            if taxid is None:
                known_organism = platforms.organism_by_name(scientific)
                taxid = known_organism.taxonomy_id if known_organism else None
            if taxid is None:
                taxid = _lookup_taxid(scientific, client, taxid_cache, result)
            sample.taxonomy_id = taxid
            known = organisms.get(name)
            if known is None:
                organisms[name] = Organism(name=name, taxonomy_id=taxid, scientific_name=scientific.strip())
            elif known.taxonomy_id is None and taxid is not None:
                known.taxonomy_id = taxid
    result.organisms = list(organisms.values())

    technologies = {s.technology for s in result.samples}
    experiment.technology = technologies.pop() if len(technologies) == 1 else "UNKNOWN"
    if source_url and "family_soft_url" not in result.experiment_attributes:
        result.experiment_attributes["family_soft_url"] = [source_url]
    return result


def _is_superseries(series: SoftEntity) -> bool:
    return any(_relation_parts(r)[0].lower() == "superseries of" for r in series.get_all("relation"))


def _experiment(acc: str, series: SoftEntity) -> Experiment:
    summary = "\n".join(series.get_all("summary")).strip()
    design = "\n".join(series.get_all("overall_design")).strip()
    description = summary
    if design:
        description = f"{summary}\n\nOverall design: {design}" if summary else design
    institutes: list[str] = []
    for value in series.get_all("contact_institute"):
        value = value.strip()
        if value and value not in institutes:
            institutes.append(value)
    related: list[str] = []
    alternate: list[str] = []
    for relation in series.get_all("relation"):
        kind, target = _relation_parts(relation)
        lowered = kind.lower()
        if lowered in ("superseries of", "subseries of"):
            related.extend(t for t in re.findall(r"GSE\d+", target) if t not in related)
        elif lowered in ("bioproject", "sra"):
            other = _accession_from_relation(target)
            if other and other not in alternate:
                alternate.append(other)
    pubmed_ids = []
    for pmid in series.get_all("pubmed_id"):
        pmid = pmid.strip()
        if pmid and pmid not in pubmed_ids:
            pubmed_ids.append(pmid)
    return Experiment(
        accession=acc,
        source_database="GEO",
        title=series.get("title") or None,
        description=description or None,
        submitter_institution=", ".join(institutes) or None,
        pubmed_ids=pubmed_ids,
        source_first_published=geo_date(series.get("submission_date")),
        source_last_modified=geo_date(series.get("last_update_date")),
        alternate_accessions=alternate,
        related_accessions=related,
        source_url=f"{GEO_ACC_URL}?acc={acc}",
    )


def _add_publications(result: SurveyResult, client: HttpClient) -> None:
    exp = result.experiment
    for pmid in exp.pubmed_ids:
        try:
            summary = pubmed_summary(pmid, client)
        except (HttpError, ValueError) as exc:
            result.warnings.append(f"PubMed {pmid}: publication look-up failed, continuing: {exc}")
            continue
        if exp.publication_title is None:
            exp.publication_title = summary.title
            exp.publication_doi = summary.doi
            exp.publication_authors = list(summary.authors)
        if summary.title:
            result.experiment_attributes.setdefault("publication_title", []).append(summary.title)
        if summary.doi:
            result.experiment_attributes.setdefault("publication_doi", []).append(summary.doi)


def _missing_platform(gpl: str, client: HttpClient | None, result: SurveyResult) -> Platform:
    if client is not None:
        try:
            return survey_geo_platform_text(gpl, client)
        except SurveyError as exc:
            result.warnings.append(f"{gpl} not in the family SOFT and its text look-up failed: {exc}")
    else:
        result.warnings.append(f"{gpl} not in the family SOFT; decided from its accession only")
    return platforms.lookup_platform(gpl, "GEO")


def _platform_taxid(
    entity: SoftEntity, platform_entities: dict[str, SoftEntity], scientific: str
) -> int | None:
    platform = platform_entities.get(entity.get("platform_id") or "")
    if platform is None:
        return None
    organisms = [o.strip().lower() for o in platform.get_all("organism")]
    taxids = platform.get_all("taxid")
    if organisms == [scientific.strip().lower()] and len(taxids) == 1 and taxids[0].strip().isdigit():
        return int(taxids[0])
    return None


def _lookup_taxid(
    scientific: str, client: HttpClient | None, cache: dict[str, int | None], result: SurveyResult
) -> int | None:
    key = organism_name(scientific)
    if key in cache:
        return cache[key]
    taxid = None
    if client is not None:
        try:
            taxid = taxonomy_id(scientific, client)
        except HttpError as exc:
            result.warnings.append(f"taxonomy id of {scientific!r} unknown (look-up failed: {exc})")
        else:
            if taxid is None:
                result.warnings.append(f"taxonomy id of {scientific!r} unknown (no single esearch hit)")
    cache[key] = taxid
    return taxid


def _sample(
    experiment: str,
    entity: SoftEntity,
    platform_decisions: dict[str, Platform],
    platform_entities: dict[str, SoftEntity],
    series_raw: list[OriginalFile],
    result: SurveyResult,
) -> Sample:
    acc = entity.accession or ""
    gpl = (entity.get("platform_id") or "").strip() or None
    platform = platform_decisions.get(gpl) if gpl else None
    scientific = _first(entity, "organism_ch1", "organism")
    taxid_text = _first(entity, "taxid_ch1", "taxid")
    channel_text = (entity.get("channel_count") or "").strip()

    files = [_original_file(u, experiment, acc) for u in _supplementary_urls(entity)]
    technology = platform.technology if platform else "UNKNOWN"
    manufacturer = platform.manufacturer if platform else "UNKNOWN"
    source_url = None
    has_raw = False
    library_strategy = entity.get("library_strategy")
    if technology == "RNA-SEQ":
        # GEO holds no reads: they are in SRA, linked by the sample's "SRA:" relation (refine.bio #966).
        sra = [t for k, t in map(_relation_parts, entity.get_all("relation")) if k.upper() == "SRA" and t]
        if sra:
            has_raw = True
            source_url = sra[0]
    else:
        raw_files = [f for f in files if f.is_raw]
        if not raw_files and series_raw:
            raw_files = [dataclasses.replace(f, sample_accession=acc) for f in series_raw]
            files.extend(raw_files)
        if raw_files:
            has_raw = True
            source_url = raw_files[0].source_url
    result.original_files.extend(files)

    if platform is None:
        pipeline = "NONE"
    else:
        pipeline = platforms.choose_pipeline(
            technology=technology,
            manufacturer=manufacturer,
            supported=platform.supported,
            has_raw=has_raw,
            filenames=[f.filename or "" for f in files if f.is_raw or technology != "RNA-SEQ"],
        )
    route_reason = None
    if technology == "RNA-SEQ":
        # decided before any download (lib/survey/routing.py): non-RNA-Seq libraries (refine.bio's
        # filter), single-cell libraries or wording in the series or sample title, unsupported or
        # long-read instruments
        route_reason = unsupported_rnaseq_reason(
            library_strategy=library_strategy,
            library_source=entity.get("library_source"),
            instrument_platform=None,
            instrument_model=entity.get("instrument_model") or (platform.title if platform else None),
            supported_instrument=bool(platform and platform.supported),
            texts=[("series title", result.experiment.title), ("sample title", entity.get("title"))],
        )
        if route_reason:
            pipeline = "NONE"
    elif pipeline == "NONE" and platform is not None and not platform.supported:
        route_reason = f"platform {gpl} ({platform.title or 'unknown'}) is not supported"

    platform_entity = platform_entities.get(gpl or "")
    return Sample(
        accession=acc,
        experiment_accession=experiment,
        source_database="GEO",
        title=entity.get("title") or None,
        organism=organism_name(scientific) if scientific else None,
        taxonomy_id=int(taxid_text) if taxid_text and taxid_text.strip().isdigit() else None,
        platform_accession=gpl,
        platform_name=(platform.title if platform and platform.title else None)
        or (platform_entity.get("title") if platform_entity else None),
        internal_platform_code=platform.internal_code if platform else None,
        technology=technology,
        manufacturer=manufacturer,
        has_raw=has_raw,
        pipeline=pipeline,
        pipeline_reason=route_reason if pipeline == "NONE" else None,
        source_url=source_url,
        channel_count=int(channel_text) if channel_text.isdigit() else None,
        library_strategy=library_strategy,
        library_source=entity.get("library_source"),
        instrument_model=entity.get("instrument_model"),
        source_first_published=geo_date(entity.get("submission_date")),
        source_last_modified=geo_date(entity.get("last_update_date")),
    )


__all__ = [
    "PubmedSummary",
    "classify_supplementary_file",
    "family_soft_url",
    "geo_date",
    "geo_stem",
    "platform_from_soft",
    "platform_text_url",
    "pubmed_summary",
    "sample_attributes",
    "survey_from_soft",
    "survey_geo",
    "survey_geo_platform_text",
    "taxonomy_id",
]
