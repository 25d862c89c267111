"""SRA / ENA surveyor: one SRA study (SRP/ERP/DRP) or run (SRR/ERR/DRR) into a :class:`SurveyResult`.

Two backends fill the same intermediate records, from which one builder makes the result:

(a) **ENA portal API** (refine.bio's surveyor since 2023-07, "new ENA endpoint"; tried first):

* run list: ``GET https://www.ebi.ac.uk/ena/portal/api/search?format=json&result=read_run&fields=all``
  with ``includeAccessions=<run>`` for a run, or with
  ``query=study_accession="<acc>" OR secondary_study_accession="<acc>"`` and ``limit=0`` for a
  study (the portal's documented way to list every run of a study);
* study: the same search with ``result=study&includeAccessions=<SRP/ERP/DRP>``;
* BioSamples JSON ``https://www.ebi.ac.uk/biosamples/samples/<SAM...>?format=json`` for every run
  (refine.bio flattened it with ``_`` separators, e.g. ``characteristics_tissue_0_text``; we keep
  those keys and add one clean row per characteristic named like the characteristic);
* PubMed ids from ENA's cross-reference service (``/ena/xref/rest/json/search?source=PubMed``);
* fastq URLs, sizes and MD5s come with ``fields=all`` in the run record (``fastq_ftp`` ...).

(b) **ENA browser XML API** (refine.bio's pre-2023 surveyor; what most recordings hold):
``https://www.ebi.ac.uk/ena/browser/api/xml/<acc>`` for the study (its ``ENA-RUN`` link lists the
runs as ``SRR1-SRR4,SRR9``), each run, its experiment, sample and submission, plus
``https://www.ebi.ac.uk/ena/portal/api/filereport?accession=<run>&result=read_run`` (TSV).

(a) is used unless it raises :class:`HttpError` (a replay raises :class:`NotRecordedError` for
requests it has no recording of) or finds nothing; then (b). The backend used is recorded in
``experiment_attributes["survey_backend"]`` (``ena_portal`` or ``ena_browser_xml``).

Records (teardown 2.3):

* Experiment: accession = the SRA study accession (SRP/ERP/DRP, ENA's ``secondary_study_accession``);
  title, description, center name as ``submitter_institution`` (when that is a broker name such as
  ``GEO`` or ``BioProject``, the first run's submitting center), first public / last updated dates,
  GEO series and ArrayExpress ``E-XXXX-n`` accessions as ``alternate_accessions``, PubMed ids
  (title/authors/DOI of the first from NCBI esummary; failure is a warning).
* Sample = run. Manufacturer, platform accession (model without spaces) and support come from
  :func:`platforms.sequencing_platform`. Technology is ``RNA-SEQ`` only for library strategy
  ``RNA-Seq`` with source ``TRANSCRIPTOMIC`` or ``OTHER`` (the pre-2023 surveyor's rule) or
  ``TRANSCRIPTOMIC SINGLE CELL`` (kept as RNA-SEQ like refine.bio, which processed single cell as
  bulk, but flagged with the attribute ``single_cell=true`` and a warning); anything else is
  technology ``UNKNOWN`` with pipeline ``NONE``.
* Attributes: every run / experiment / sample field (sources ``ena_run``, ``ena_experiment``,
  ``ena_sample``), the study fields copied into every sample with ``study_ena_`` keys (source
  ``ena_study``), BioSample characteristics (source ``biosample``), submission fields
  (``ena_submission``) and flags we add (``survey_flag``).
* Original files: normally the NCBI SRA file
  ``https://sra-pub-run-odp.s3.amazonaws.com/sra/<RUN>/<RUN>`` (``file_type="SRA"``) plus ENA's
  fastq files (``file_type="FASTQ"``, expected size and MD5), all ``is_raw``; a downloader takes
  the SRA file when a sample has one and the fastq files otherwise. When ENA lists more than two
  fastq files, or an unpaired file beside ``_1``/``_2`` files, the run has unmated reads that the
  SRA file cannot be split into reliably (refine.bio ``_generate_original_files``): the sample gets
  ``unmated_reads=True`` and only the ``_1``/``_2`` fastq files; the unpaired file is recorded as
  the attribute ``unpaired_fastq``.

Errors: an accession that is not SRP/ERP/DRP/SRR/ERR/DRR, an accession both backends cannot find
(HTTP 404), any other failure to fetch a required record, malformed XML/JSON, a run without
sample or organism, raise :class:`SurveyError` naming the surveyed accession. Optional look-ups
(submission, file report, PubMed) add a warning instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from refine_assets.lib.http import HttpClient, HttpError, HttpStatusError
from refine_assets.lib.survey import ena_xml, platforms
from refine_assets.lib.survey.ena_xml import FastqFile
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
from refine_assets.lib.survey.publications import pubmed_summary
from refine_assets.lib.survey.routing import unsupported_rnaseq_reason

ENA_PORTAL_SEARCH = "https://www.ebi.ac.uk/ena/portal/api/search"
ENA_FILEREPORT = "https://www.ebi.ac.uk/ena/portal/api/filereport"
ENA_BROWSER_XML = "https://www.ebi.ac.uk/ena/browser/api/xml/{accession}"
ENA_XREF_PUBMED = "https://www.ebi.ac.uk/ena/xref/rest/json/search"
ENA_VIEW_URL = "https://www.ebi.ac.uk/ena/browser/view/{accession}"
BIOSAMPLES_URL = "https://www.ebi.ac.uk/biosamples/samples/{accession}"
NCBI_SRA_URL = "https://sra-pub-run-odp.s3.amazonaws.com/sra/{accession}/{accession}"

BACKEND_PORTAL = "ena_portal"
BACKEND_XML = "ena_browser_xml"

STUDY_ACCESSION = re.compile(r"^[SED]RP\d+$")
RUN_ACCESSION = re.compile(r"^[SED]RR\d+$")
_MATE_FILE = re.compile(r"_[12]\.f(ast)?q(\.gz|\.bz2)?$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_GEO_SERIES = re.compile(r"^GSE\d+$")
_AE_ACCESSION = re.compile(r"^E-[A-Z]{4}-\d+$")
# Broker names some studies carry as center name; the first run's center (XML: its sample's) is more telling.
_BROKER_CENTERS = frozenset({"GEO", "BIOPROJECT", "NCBI", "ARRAYEXPRESS"})


@dataclass
class _Study:
    """Experiment-level values gathered by either backend."""

    accession: str
    title: str | None = None
    description: str | None = None
    center_name: str | None = None
    first_public: str | None = None
    last_updated: str | None = None
    alternate_accessions: list[str] = field(default_factory=list)
    pubmed_ids: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str]] = field(default_factory=list)  # study_ena_* keys
    experiment_attributes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Run:
    """One run's values gathered by either backend; ``fastq`` None means the file list is unknown."""

    accession: str
    title: str | None
    scientific_name: str
    taxonomy_id: int | None
    instrument_platform: str | None
    instrument_model: str | None
    library_strategy: str | None
    library_source: str | None
    library_layout: str | None
    first_public: str | None
    last_updated: str | None
    center_name: str | None = None
    fastq: list[FastqFile] | None = None
    alternate_accessions: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # key, value, source


class _PortalMiss(Exception):
    """The portal answered but found nothing: try the browser XML API."""


class _NotFound(Exception):
    """The browser XML API answered 404 for the surveyed accession."""


# --------------------------------------------------------------------------------------------------
# entry point


def survey_sra(accession: str, client: HttpClient) -> SurveyResult:
    """Survey an SRA study (SRP/ERP/DRP: all its runs) or a single run (SRR/ERR/DRR).

    A run survey gives the run's study as experiment with that one run as sample (refine.bio's
    behaviour). Tries the ENA portal API, falls back to the ENA browser XML API on HTTP errors or an
    empty answer (see the module docstring). Returns a complete :class:`SurveyResult`; raises
    :class:`SurveyError` (message starting with ``accession``) when the accession is not an SRA
    study/run, is unknown to ENA, or a required record cannot be fetched or parsed.
    """
    acc = (accession or "").strip().upper()
    if not (STUDY_ACCESSION.match(acc) or RUN_ACCESSION.match(acc)):
        raise SurveyError(accession, "not an SRA study (SRP/ERP/DRP) or run (SRR/ERR/DRR) accession")
    try:
        try:
            warnings: list[str] = []
            study, runs = _gather_portal(acc, client, warnings)
            backend = BACKEND_PORTAL
        except (HttpError, _PortalMiss) as portal_exc:
            warnings = [f"ENA portal API not usable ({portal_exc}); used the ENA browser XML API"]
            try:
                study, runs = _gather_xml(acc, client, warnings)
            except _NotFound as exc:
                raise SurveyError(
                    acc, f"not found in ENA (browser XML API: {exc}; portal API: {portal_exc})"
                ) from exc
            backend = BACKEND_XML
        return _build_result(study, runs, backend, client, warnings)
    except SurveyError as exc:
        if exc.accession != acc:
            raise SurveyError(acc, f"{exc.accession}: {exc.problem}") from exc
        raise


# --------------------------------------------------------------------------------------------------
# (a) ENA portal API


def _portal_search(client: HttpClient, params: dict[str, str], what: str, acc: str) -> list[dict[str, Any]]:
    resp = client.get(ENA_PORTAL_SEARCH, params=params)
    if not resp.content.strip():
        return []  # the portal answers an empty body when nothing matches
    try:
        data = resp.json()
    except ValueError as exc:
        raise SurveyError(acc, f"ENA portal {what} search returned malformed JSON: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise SurveyError(acc, f"ENA portal {what} search returned JSON that is not a list of records")
    return data


def _first_match(value: str | None, pattern: re.Pattern[str]) -> str | None:
    for part in (value or "").split(";"):
        if pattern.match(part.strip()):
            return part.strip()
    return None


def _gather_portal(acc: str, client: HttpClient, warnings: list[str]) -> tuple[_Study, list[_Run]]:
    params = {"format": "json", "result": "read_run", "fields": "all"}
    if STUDY_ACCESSION.match(acc):
        params |= {"query": f'study_accession="{acc}" OR secondary_study_accession="{acc}"', "limit": "0"}
    else:
        params["includeAccessions"] = acc
    records = _portal_search(client, params, "read_run", acc)
    if not records:
        raise _PortalMiss(f"no runs for {acc}")
    if STUDY_ACCESSION.match(acc):
        study_acc = acc
    else:
        study_acc = _first_match(records[0].get("secondary_study_accession"), STUDY_ACCESSION)
        if not study_acc:
            raise SurveyError(acc, "ENA portal run record has no SRA study (secondary_study_accession)")
    studies = _portal_search(
        client,
        {"format": "json", "includeAccessions": study_acc, "result": "study", "fields": "all"},
        "study",
        acc,
    )
    if not studies:
        raise _PortalMiss(f"no study record for {study_acc}")
    study = _portal_study(study_acc, studies[0], client, warnings)
    runs = [_portal_run(rec, client, acc) for rec in records]
    return study, runs


def _clean(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, str(v).strip()) for k, v in record.items() if v is not None and str(v).strip() != ""]


def _portal_study(study_acc: str, rec: dict[str, Any], client: HttpClient, warnings: list[str]) -> _Study:
    geo = [g.strip() for g in str(rec.get("geo_accession") or "").split(";") if g.strip()]
    alternates = [g for g in geo if _GEO_SERIES.match(g)]
    for alias_key in ("study_alias", "secondary_study_alias"):
        for alias in str(rec.get(alias_key) or "").split(";"):
            alias = alias.strip()
            if _AE_ACCESSION.match(alias) or _GEO_SERIES.match(alias):
                alternates.append(alias)
    study = _Study(
        accession=study_acc,
        title=rec.get("study_title") or rec.get("study_name") or None,
        description=rec.get("study_description") or rec.get("description") or None,
        center_name=rec.get("center_name") or None,
        first_public=_iso_date(rec.get("first_public")),
        last_updated=_iso_date(rec.get("last_updated")),
        alternate_accessions=list(dict.fromkeys(alternates)),
        attributes=[(f"study_ena_{k}", v) for k, v in _clean(rec)],
    )
    project = rec.get("study_accession") or rec.get("accession")
    if project:
        study.experiment_attributes["bioproject"] = [str(project)]
        study.pubmed_ids = _portal_pubmed_ids(str(project), client, warnings)
    return study


def _portal_pubmed_ids(project: str, client: HttpClient, warnings: list[str]) -> list[str]:
    """PubMed ids linked to a study via ENA's cross-reference service (refine.bio's source)."""
    try:
        resp = client.get(
            ENA_XREF_PUBMED, params={"accession": project, "expanded": "true", "source": "PubMed"}
        )
        data = resp.json() if resp.content.strip() else []
    except (HttpError, ValueError) as exc:
        warnings.append(f"PubMed links of {project} not available from ENA xref: {exc}")
        return []
    ids = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and item.get("Source Primary Accession"):
            ids.append(str(item["Source Primary Accession"]))
    return list(dict.fromkeys(ids))


def flatten_biosample(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """Flatten BioSamples JSON like refine.bio's ``flatten_dict``: nested keys and list indexes
    joined with ``_`` and spaces in keys turned into ``_`` (``characteristics_INSDC_center_name_0_text``,
    as refine.bio's test asserts). ``accession`` and ``status`` are dropped (refine.bio: they would
    overwrite run fields), and so are the HAL ``_links``."""
    out: list[tuple[str, str]] = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                k = "_".join(str(k).split())
                walk(v, f"{key}_{k}" if key else k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}_{i}")
        elif value is not None and str(value).strip() != "":
            out.append((key, str(value).strip()))

    walk({k: v for k, v in doc.items() if k not in ("accession", "status", "_links")}, "")
    return out


def _biosample_attributes(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = [(k, v, "biosample") for k, v in flatten_biosample(doc)]
    characteristics = doc.get("characteristics")
    if isinstance(characteristics, dict):
        for name, values in characteristics.items():
            for item in values if isinstance(values, list) else []:
                if isinstance(item, dict) and str(item.get("text") or "").strip():
                    rows.append((str(name), str(item["text"]).strip(), "biosample"))
    return rows


def _portal_run(rec: dict[str, Any], client: HttpClient, acc: str) -> _Run:
    run_acc = str(rec.get("run_accession") or "").strip()
    if not RUN_ACCESSION.match(run_acc):
        raise SurveyError(acc, f"ENA portal run record without a valid run_accession ({run_acc!r})")
    sample_acc = str(rec.get("sample_accession") or "").strip()
    if not sample_acc:
        raise SurveyError(acc, f"run {run_acc} has no sample (empty sample_accession in the ENA portal)")
    scientific_name = str(rec.get("scientific_name") or "").strip()
    if not scientific_name:
        raise SurveyError(acc, f"run {run_acc} has no organism (scientific_name) in the ENA portal")
    resp = client.get(BIOSAMPLES_URL.format(accession=sample_acc), params={"format": "json"})
    try:
        biosample = resp.json()
    except ValueError as exc:
        raise SurveyError(acc, f"BioSamples returned malformed JSON for {sample_acc}: {exc}") from exc
    if not isinstance(biosample, dict):
        raise SurveyError(acc, f"BioSamples JSON for {sample_acc} is not an object")
    fastq = None
    if "fastq_ftp" in rec:
        fastq = ena_xml.fastq_files(rec.get("fastq_ftp"), rec.get("fastq_bytes"), rec.get("fastq_md5"))
    return _Run(
        accession=run_acc,
        title=rec.get("sample_title") or rec.get("experiment_title") or None,
        scientific_name=scientific_name,
        taxonomy_id=_int(rec.get("tax_id")),
        instrument_platform=rec.get("instrument_platform") or None,
        instrument_model=rec.get("instrument_model") or None,
        library_strategy=rec.get("library_strategy") or None,
        library_source=rec.get("library_source") or None,
        library_layout=(rec.get("library_layout") or "").upper() or None,
        first_public=_iso_date(rec.get("first_public")),
        last_updated=_iso_date(rec.get("last_updated")),
        center_name=rec.get("center_name") or None,
        fastq=fastq,
        attributes=[(k, v, "ena_run") for k, v in _clean(rec)] + _biosample_attributes(biosample),
    )


# --------------------------------------------------------------------------------------------------
# (b) ENA browser XML API


class _XmlFetcher:
    """Fetches browser-API XML once per accession; 404 of the surveyed accession is :class:`_NotFound`."""

    def __init__(self, client: HttpClient, top: str):
        self.client = client
        self.top = top
        self.cache: dict[str, bytes] = {}

    def get(self, accession: str, what: str) -> bytes:
        if accession in self.cache:
            return self.cache[accession]
        url = ENA_BROWSER_XML.format(accession=accession)
        try:
            content = self.client.get(url).content
        except HttpStatusError as exc:
            if exc.status == 404 and accession == self.top:
                raise _NotFound(str(exc)) from exc
            raise SurveyError(self.top, f"could not fetch the ENA XML of {what} {accession}: {exc}") from exc
        except HttpError as exc:
            raise SurveyError(self.top, f"could not fetch the ENA XML of {what} {accession}: {exc}") from exc
        self.cache[accession] = content
        return content


def _gather_xml(acc: str, client: HttpClient, warnings: list[str]) -> tuple[_Study, list[_Run]]:
    fetch = _XmlFetcher(client, acc)
    if STUDY_ACCESSION.match(acc):
        study_xml = ena_xml.parse_study(fetch.get(acc, "study"), acc)
        run_accs = study_xml.run_accessions
        if not run_accs:
            raise SurveyError(acc, "study lists no runs (no ENA-RUN link in the ENA XML)")
        runs = [_xml_run(r, fetch, client, warnings) for r in run_accs]
    else:
        runs = [_xml_run(acc, fetch, client, warnings)]
        study_ref = runs[0].attributes and _attr(runs[0].attributes, "study_accession")
        if not study_ref:
            raise SurveyError(acc, "run has no study (no ENA-STUDY link or STUDY_REF in the ENA XML)")
        study_xml = ena_xml.parse_study(fetch.get(study_ref, "study"), study_ref)
    study_acc = next(
        (a for a in [study_xml.accession, *study_xml.secondary_ids] if STUDY_ACCESSION.match(a)), None
    )
    if not study_acc:
        raise SurveyError(acc, f"ENA study {study_xml.accession} has no SRA study accession (SRP/ERP/DRP)")
    alternates = list(study_xml.geo_accessions) + list(study_xml.arrayexpress_accessions)
    for run in runs:
        alternates.extend(run.alternate_accessions)
    study = _Study(
        accession=study_acc,
        title=study_xml.title,
        description=study_xml.description or study_xml.abstract,
        center_name=study_xml.center_name,
        first_public=_iso_date(study_xml.first_public),
        last_updated=_iso_date(study_xml.last_update),
        alternate_accessions=list(dict.fromkeys(a for a in alternates if a != study_acc)),
        pubmed_ids=list(dict.fromkeys(study_xml.pubmed_ids)),
        attributes=study_xml.fields,
    )
    projects = [s for s in study_xml.secondary_ids if s.startswith("PRJ")]
    if projects:
        study.experiment_attributes["bioproject"] = projects
    return study, runs


def _attr(rows: list[tuple[str, str, str]], key: str) -> str | None:
    return next((v for k, v, _ in rows if k == key), None)


def _xml_run(run_acc: str, fetch: _XmlFetcher, client: HttpClient, warnings: list[str]) -> _Run:
    run = ena_xml.parse_run(fetch.get(run_acc, "run"), run_acc)
    exp = ena_xml.parse_experiment(
        fetch.get(run.experiment_accession, "experiment"), run.experiment_accession
    )
    sample_acc = run.sample_accession or exp.sample_accession
    if not sample_acc:
        raise SurveyError(
            run_acc, "run has no sample (no ENA-SAMPLE link or SAMPLE_DESCRIPTOR in the ENA XML)"
        )
    sample = ena_xml.parse_sample(fetch.get(sample_acc, "sample"), sample_acc)
    if not sample.scientific_name:
        raise SurveyError(run_acc, f"sample {sample_acc} has no organism (SAMPLE_NAME/SCIENTIFIC_NAME)")
    rows: list[tuple[str, str, str]] = [(k, v, "ena_run") for k, v in run.fields]
    if not any(k == "study_accession" for k, _, _ in rows) and exp.study_accession:
        rows.append(("study_accession", exp.study_accession, "ena_run"))
    rows += [(k, v, "ena_experiment") for k, v in exp.fields]
    rows += [(k, v, "ena_sample") for k, v in sample.fields]
    alternates = list(run.arrayexpress_accessions)
    if run.submission_accession:
        try:
            sub = ena_xml.parse_submission(
                fetch.get(run.submission_accession, "submission"), run.submission_accession
            )
            rows += [(k, v, "ena_submission") for k, v in sub.fields]
            alternates += sub.arrayexpress_accessions
        except SurveyError as exc:
            warnings.append(f"{run_acc}: submission {run.submission_accession} skipped: {exc.problem}")
    fastq = None
    try:
        resp = client.get(ENA_FILEREPORT, params={"accession": run_acc, "result": "read_run"})
        report = ena_xml.parse_filereport(resp.content, run_acc)
        if report is None:
            warnings.append(f"{run_acc}: ENA file report has no row for the run; fastq files unknown")
        else:
            fastq = report.fastq
            rows += [(k, v, "ena_run") for k, v in report.fields if k != "run_accession"]
    except HttpError as exc:
        warnings.append(f"{run_acc}: ENA file report not available ({exc}); fastq files unknown")
    return _Run(
        accession=run.accession,
        title=sample.title or run.title,
        scientific_name=sample.scientific_name,
        taxonomy_id=sample.taxonomy_id,
        instrument_platform=exp.instrument_platform,
        instrument_model=exp.instrument_model,
        library_strategy=exp.library_strategy,
        library_source=exp.library_source,
        library_layout=exp.library_layout,
        first_public=_iso_date(run.first_public),
        last_updated=_iso_date(run.last_update),
        center_name=sample.center_name,
        fastq=fastq,
        alternate_accessions=alternates,
        attributes=rows,
    )


# --------------------------------------------------------------------------------------------------
# shared record building


def _iso_date(value: Any) -> str | None:
    text = str(value or "").strip()
    return text[:10] if _DATE.match(text) else None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def technology_for(library_strategy: str | None, library_source: str | None) -> tuple[str, bool]:
    """``(technology, single_cell)`` of a run from its library strategy and source.

    RNA-SEQ for strategy ``RNA-Seq`` with source TRANSCRIPTOMIC or OTHER (refine.bio's pre-2023
    rule) and for TRANSCRIPTOMIC SINGLE CELL (flagged single cell); UNKNOWN otherwise.
    """
    if (library_strategy or "").strip().lower() == "rna-seq":
        source = " ".join((library_source or "").upper().split())
        if source in ("TRANSCRIPTOMIC", "OTHER"):
            return "RNA-SEQ", False
        if source == "TRANSCRIPTOMIC SINGLE CELL":
            return "RNA-SEQ", True
    return "UNKNOWN", False


def split_unmated(files: list[FastqFile]) -> tuple[bool, list[FastqFile], list[FastqFile]]:
    """``(unmated, mate_files, unpaired_files)``: unmated when ENA lists more than two fastq files or
    an unpaired file beside ``_1``/``_2`` files (refine.bio: ``len(file_reports) > 2``)."""
    mates = [f for f in files if _MATE_FILE.search(f.filename)]
    unpaired = [f for f in files if not _MATE_FILE.search(f.filename)]
    return (len(files) > 2 or bool(mates and unpaired)), mates, unpaired


def _publication(
    pmid: str, client: HttpClient, warnings: list[str]
) -> tuple[str | None, list[str], str | None]:
    """Title, authors and DOI of a PubMed id from NCBI esummary (refine.bio
    ``get_title_and_authors_for_pubmed_id``); failures are warnings."""
    try:
        summary = pubmed_summary(pmid, client)
        return summary.title, summary.authors, summary.doi
    except (HttpError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.append(f"PubMed {pmid}: publication details not available ({type(exc).__name__}: {exc})")
        return None, [], None


def _build_result(
    study: _Study, runs: list[_Run], backend: str, client: HttpClient, warnings: list[str]
) -> SurveyResult:
    center = study.center_name
    if (not center or center.upper() in _BROKER_CENTERS) and runs and runs[0].center_name:
        center = runs[0].center_name
    alternates = list(study.alternate_accessions)
    for run in runs:
        alternates.extend(a for a in run.alternate_accessions if a not in alternates)
    experiment = Experiment(
        accession=study.accession,
        source_database="SRA",
        title=study.title,
        description=study.description,
        submitter_institution=center,
        pubmed_ids=list(study.pubmed_ids),
        source_first_published=study.first_public,
        source_last_modified=study.last_updated,
        alternate_accessions=[a for a in dict.fromkeys(alternates) if a != study.accession],
        source_url=ENA_VIEW_URL.format(accession=study.accession),
    )
    if study.pubmed_ids:
        title, authors, doi = _publication(study.pubmed_ids[0], client, warnings)
        experiment.publication_title, experiment.publication_authors, experiment.publication_doi = (
            title,
            authors,
            doi,
        )
    result = SurveyResult(experiment=experiment, warnings=warnings)
    result.experiment_attributes = {"survey_backend": [backend], **study.experiment_attributes}
    platforms_seen: dict[str, Platform] = {}
    organisms_seen: dict[str, Organism] = {}
    seen_runs: set[str] = set()
    for run in runs:
        if run.accession in seen_runs:
            continue
        seen_runs.add(run.accession)
        _add_run(result, study, run, platforms_seen, organisms_seen)
    result.platforms = list(platforms_seen.values())
    result.organisms = list(organisms_seen.values())
    experiment.technology = "RNA-SEQ" if any(s.technology == "RNA-SEQ" for s in result.samples) else "UNKNOWN"
    return result


def _add_run(
    result: SurveyResult,
    study: _Study,
    run: _Run,
    platforms_seen: dict[str, Platform],
    organisms_seen: dict[str, Organism],
) -> None:
    exp_acc = study.accession
    platform = platforms.sequencing_platform(run.instrument_model, run.instrument_platform)
    platforms_seen.setdefault(platform.accession, platform)
    org = organism_name(run.scientific_name)
    organisms_seen.setdefault(org, Organism(org, run.taxonomy_id, run.scientific_name.strip()))
    technology, single_cell = technology_for(run.library_strategy, run.library_source)
    sra_url = NCBI_SRA_URL.format(accession=run.accession)
    rows = list(run.attributes)
    if technology != "RNA-SEQ":
        result.warnings.append(
            f"{run.accession}: library {run.library_strategy}/{run.library_source} is not bulk RNA-seq; "
            "technology UNKNOWN, not processed"
        )
    if single_cell:
        rows.append(("single_cell", "true", "survey_flag"))
    route_reason = unsupported_rnaseq_reason(
        library_strategy=run.library_strategy,
        library_source=run.library_source,
        instrument_platform=run.instrument_platform,
        instrument_model=run.instrument_model,
        supported_instrument=platform.supported,
    )
    files: list[OriginalFile] = []
    unmated = False
    fastq = run.fastq or []
    if fastq:
        unmated, mates, unpaired = split_unmated(fastq)
        if unmated:
            rows += [("unpaired_fastq", f.url, "survey_flag") for f in unpaired]
            fastq = mates
            if not mates:
                raise SurveyError(run.accession, "ENA lists unmated reads but no _1/_2 fastq files")
    if not unmated:
        files.append(
            OriginalFile(
                source_url=sra_url,
                experiment_accession=exp_acc,
                sample_accession=run.accession,
                filename=run.accession,
                file_type="SRA",
                is_raw=True,
            )
        )
    for f in fastq:
        files.append(
            OriginalFile(
                source_url=f.url,
                experiment_accession=exp_acc,
                sample_accession=run.accession,
                filename=f.filename,
                file_type="FASTQ",
                is_raw=True,
                expected_size=f.size,
                expected_md5=f.md5,
            )
        )
    if technology == "RNA-SEQ" and route_reason is None:
        pipeline = platforms.choose_pipeline(
            technology=technology,
            manufacturer=platform.manufacturer,
            supported=platform.supported,
            has_raw=True,
            filenames=[f.filename or "" for f in files],
        )
    else:
        pipeline = "NONE"
    if route_reason:
        result.warnings.append(f"{run.accession}: not quantified: {route_reason}")
    result.samples.append(
        Sample(
            accession=run.accession,
            experiment_accession=exp_acc,
            source_database="SRA",
            title=run.title,
            organism=org,
            taxonomy_id=run.taxonomy_id,
            platform_accession=platform.accession,
            platform_name=run.instrument_model,
            internal_platform_code=platform.internal_code,
            technology=technology,
            manufacturer=platform.manufacturer,
            has_raw=True,
            pipeline=pipeline,
            pipeline_reason=route_reason if pipeline == "NONE" else None,
            source_url=sra_url,
            library_layout=run.library_layout,
            library_strategy=run.library_strategy,
            library_source=run.library_source,
            instrument_model=run.instrument_model,
            unmated_reads=unmated,
            source_first_published=run.first_public,
            source_last_modified=run.last_updated,
        )
    )
    rows += [(k, v, "ena_study") for k, v in study.attributes]
    for position, (key, value, source) in enumerate(rows):
        result.attributes.append(SampleAttribute(run.accession, key, value, source, position))
    result.original_files.extend(files)
