"""Parsers for the ENA browser XML API and the ENA portal file report.

The ENA browser API (``https://www.ebi.ac.uk/ena/browser/api/xml/<accession>``) answers one
``<RUN_SET>``, ``<EXPERIMENT_SET>``, ``<SAMPLE_SET>``, ``<STUDY_SET>`` or ``<SUBMISSION_SET>``
document per accession (SRA XML schema, https://github.com/enasequence/schema). refine.bio's
pre-2023 SRA surveyor walked exactly this chain (run -> experiment -> sample -> study ->
submission); :mod:`refine_assets.lib.survey.sra` uses these parsers for its fallback backend.

Each ``parse_*`` function takes the raw response body and the accession that was asked for, and
returns a small record: the typed values the surveyor needs plus ``fields``, every value of the
record as ``(key, value)`` pairs in document order (these become ``SampleAttribute`` rows).
Key naming:

* fixed elements get descriptive snake_case keys (``library_strategy``, ``instrument_model``,
  ``sample_title``, ...);
* ``*_ATTRIBUTE`` TAG/VALUE pairs keep the submitter's TAG verbatim (``tissue``, ``cell type``),
  except ENA's own statistics tags (``ENA-FIRST-PUBLIC`` ...), which become
  ``<record>_ena_first_public`` like refine.bio's keys;
* study keys are all prefixed ``study_ena_`` (refine.bio copies study fields into every sample
  under that prefix).

Errors: a body that is not XML, that has no record of the expected type, or that lacks a
required element raises :class:`~refine_assets.lib.survey.model.SurveyError` naming the
accession.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from lxml import etree

from refine_assets.lib.survey.model import SurveyError

# Link databases that only point back at ENA file reports: not metadata.
_FILE_LINK_DBS = frozenset({"ENA-FASTQ-FILES", "ENA-SUBMITTED-FILES"})
_LINK_KEYS = {
    "ENA-STUDY": "study_accession",
    "ENA-SAMPLE": "sample_accession",
    "ENA-EXPERIMENT": "experiment_accession",
    "ENA-RUN": "run_accession",
    "ENA-SUBMISSION": "submission_accession",
}
_ACCESSION_RANGE = re.compile(r"^([A-Z]+)(\d+)-([A-Z]+)(\d+)$")
_ACCESSION = re.compile(r"^[A-Z]+\d+$")
# Expanding a range larger than this is refused (a typo in a record must not create 10^9 runs).
MAX_RANGE = 100_000


@dataclass
class RunXml:
    """One ``<RUN>``: the run accession, its experiment and the links to sample/study/submission."""

    accession: str
    experiment_accession: str
    title: str | None = None
    study_accession: str | None = None
    sample_accession: str | None = None
    submission_accession: str | None = None
    first_public: str | None = None
    last_update: str | None = None
    arrayexpress_accessions: list[str] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ExperimentXml:
    """One ``<EXPERIMENT>`` (an SRA library): design, library and instrument."""

    accession: str
    study_accession: str | None = None
    sample_accession: str | None = None
    title: str | None = None
    library_strategy: str | None = None
    library_source: str | None = None
    library_layout: str | None = None  # PAIRED / SINGLE
    instrument_platform: str | None = None  # element name under PLATFORM, e.g. ILLUMINA
    instrument_model: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SampleXml:
    """One ``<SAMPLE>``: organism and submitter attributes."""

    accession: str
    title: str | None = None
    scientific_name: str | None = None
    taxonomy_id: int | None = None
    center_name: str | None = None
    biosample_accession: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class StudyXml:
    """One ``<STUDY>``: the experiment-level record. ``fields`` keys all start with ``study_ena_``."""

    accession: str
    secondary_ids: list[str] = field(default_factory=list)
    title: str | None = None
    description: str | None = None
    abstract: str | None = None
    center_name: str | None = None
    alias: str | None = None
    geo_accessions: list[str] = field(default_factory=list)
    arrayexpress_accessions: list[str] = field(default_factory=list)
    pubmed_ids: list[str] = field(default_factory=list)
    run_accessions: list[str] = field(default_factory=list)
    first_public: str | None = None
    last_update: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SubmissionXml:
    """One ``<SUBMISSION>``: who brokered the data, and ArrayExpress links."""

    accession: str
    arrayexpress_accessions: list[str] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class FastqFile:
    """One fastq file of a run as ENA lists it (URL with scheme, size in bytes, MD5)."""

    url: str
    size: int | None = None
    md5: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass
class FileReport:
    """One run's row of the ENA portal ``filereport`` (``result=read_run``)."""

    run_accession: str
    fastq: list[FastqFile] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# helpers


def _root(content: bytes, accession: str, set_tag: str) -> etree._Element:
    if not content or not content.strip():
        raise SurveyError(accession, f"ENA browser API returned an empty {set_tag} document")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise SurveyError(accession, f"malformed ENA XML ({set_tag}): {exc}") from exc
    if root.tag != set_tag:
        raise SurveyError(accession, f"ENA XML is a <{root.tag}>, expected <{set_tag}>")
    return root


def _record(root: etree._Element, accession: str, tag: str) -> etree._Element:
    records = root.findall(tag)
    if not records:
        raise SurveyError(accession, f"ENA XML <{root.tag}> holds no <{tag}> record")
    for rec in records:
        if rec.get("accession") == accession:
            return rec
    return records[0]


def _text(el: etree._Element | None, path: str | None = None) -> str | None:
    """Stripped text of ``el`` (or of its descendant ``path``); None when absent or blank."""
    if el is None:
        return None
    if path is not None:
        el = el.find(path)
        if el is None:
            return None
    text = "".join(el.itertext()).strip()
    return text or None


def _accession_of(el: etree._Element, what: str, accession: str) -> str:
    acc = el.get("accession") or _text(el, "IDENTIFIERS/PRIMARY_ID")
    if not acc:
        raise SurveyError(accession, f"ENA XML <{el.tag}> has no accession ({what})")
    return acc


def _attribute_pairs(el: etree._Element, container: str, item: str) -> list[tuple[str, str]]:
    out = []
    for attr in el.findall(f"{container}/{item}"):
        tag = _text(attr, "TAG")
        value = _text(attr, "VALUE")
        if tag and value is not None:
            out.append((tag, value))
    return out


def _ena_tag_key(prefix: str, tag: str) -> str:
    """``ENA-FIRST-PUBLIC`` -> ``<prefix>_ena_first_public``."""
    return f"{prefix}_" + tag.lower().replace("-", "_").replace(" ", "_")


def _xref_links(el: etree._Element) -> list[tuple[str, str]]:
    out = []
    for xref in el.iter("XREF_LINK"):
        db = _text(xref, "DB")
        ident = _text(xref, "ID")
        if db and ident:
            out.append((db, ident))
    return out


def _url_links(el: etree._Element) -> list[tuple[str, str]]:
    out = []
    for link in el.iter("URL_LINK"):
        label = _text(link, "LABEL")
        url = _text(link, "URL")
        if url:
            out.append((label or "url", url))
    return out


def _add(fields: list[tuple[str, str]], key: str, value: str | None) -> None:
    if value is not None and value != "" and (key, value) not in fields:
        fields.append((key, value))


def _attribute_fields(
    fields: list[tuple[str, str]], pairs: list[tuple[str, str]], prefix: str
) -> dict[str, str]:
    """Append TAG/VALUE pairs; returns the ENA statistics tags keyed by their ``*_ena_*`` key."""
    ena: dict[str, str] = {}
    for tag, value in pairs:
        if tag.upper().startswith("ENA-"):
            key = _ena_tag_key(prefix, tag)
            ena[key] = value
            _add(fields, key, value)
        else:
            _add(fields, tag, value)
    return ena


_E_ACCESSION = re.compile(r"\bE-[A-Z]{4}-\d+\b")


def expand_accessions(text: str, accession: str = "") -> list[str]:
    """Expand ENA's compact accession lists: ``SRR1,SRR3-SRR5`` -> ``[SRR1, SRR3, SRR4, SRR5]``.

    ENA writes run/sample lists in ``XREF_LINK/ID`` as comma-separated items where an item may be
    an inclusive range ``<prefix><n>-<prefix><m>``; the numbers keep their zero-padded width.
    Raises :class:`SurveyError` for a malformed item or a range that is reversed, mixes prefixes
    or exceeds :data:`MAX_RANGE` accessions.
    """
    out: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        m = _ACCESSION_RANGE.match(item)
        if m:
            p1, n1, p2, n2 = m.groups()
            start, end = int(n1), int(n2)
            if p1 != p2 or end < start or end - start >= MAX_RANGE:
                raise SurveyError(accession or item, f"malformed accession range {item!r} in ENA XML")
            width = len(n1)
            out.extend(f"{p1}{i:0{width}d}" for i in range(start, end + 1))
        elif _ACCESSION.match(item):
            out.append(item)
        else:
            raise SurveyError(accession or item, f"malformed accession {item!r} in ENA XML link list")
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------------------------------
# records


def parse_run(content: bytes, accession: str) -> RunXml:
    """Parse ``/ena/browser/api/xml/<run>``. Requires ``EXPERIMENT_REF``."""
    root = _root(content, accession, "RUN_SET")
    rec = _record(root, accession, "RUN")
    run_acc = _accession_of(rec, "run", accession)
    exp_ref = rec.find("EXPERIMENT_REF")
    exp_acc = None
    if exp_ref is not None:
        exp_acc = exp_ref.get("accession") or _text(exp_ref, "IDENTIFIERS/PRIMARY_ID")
    if not exp_acc:
        raise SurveyError(accession, f"run {run_acc} has no EXPERIMENT_REF in ENA XML")
    run = RunXml(accession=run_acc, experiment_accession=exp_acc, title=_text(rec, "TITLE"))
    f = run.fields
    _add(f, "run_accession", run_acc)
    _add(f, "run_alias", rec.get("alias"))
    _add(f, "run_center_name", rec.get("center_name"))
    _add(f, "run_center", rec.get("run_center"))
    _add(f, "run_date", rec.get("run_date"))
    _add(f, "broker_name", rec.get("broker_name"))
    _add(f, "run_title", run.title)
    _add(f, "experiment_accession", exp_acc)
    for db, ident in _xref_links(rec):
        if db in _FILE_LINK_DBS:
            continue
        key = _LINK_KEYS.get(db)
        if key == "study_accession":
            run.study_accession = run.study_accession or ident
        elif key == "sample_accession":
            run.sample_accession = run.sample_accession or ident
        elif key == "submission_accession":
            run.submission_accession = run.submission_accession or ident
        elif db.upper() == "ARRAYEXPRESS":
            run.arrayexpress_accessions.append(ident)
        _add(f, key or f"xref_{db.lower()}", ident)
    for fe in rec.findall("DATA_BLOCK/FILES/FILE"):
        _add(f, "submitted_file", fe.get("filename"))
    ena = _attribute_fields(f, _attribute_pairs(rec, "RUN_ATTRIBUTES", "RUN_ATTRIBUTE"), "run")
    run.first_public = ena.get("run_ena_first_public")
    run.last_update = ena.get("run_ena_last_update")
    return run


def parse_experiment(content: bytes, accession: str) -> ExperimentXml:
    """Parse ``/ena/browser/api/xml/<experiment>`` (library strategy/source/layout, instrument)."""
    root = _root(content, accession, "EXPERIMENT_SET")
    rec = _record(root, accession, "EXPERIMENT")
    exp = ExperimentXml(accession=_accession_of(rec, "experiment", accession), title=_text(rec, "TITLE"))
    f = exp.fields
    _add(f, "experiment_accession", exp.accession)
    _add(f, "experiment_alias", rec.get("alias"))
    _add(f, "experiment_center_name", rec.get("center_name"))
    _add(f, "experiment_title", exp.title)
    study_ref = rec.find("STUDY_REF")
    if study_ref is not None:
        exp.study_accession = study_ref.get("accession") or _text(study_ref, "IDENTIFIERS/PRIMARY_ID")
        _add(f, "study_accession", exp.study_accession)
    design = rec.find("DESIGN")
    if design is not None:
        _add(f, "design_description", _text(design, "DESIGN_DESCRIPTION"))
        sd = design.find("SAMPLE_DESCRIPTOR")
        if sd is not None:
            exp.sample_accession = sd.get("accession") or _text(sd, "IDENTIFIERS/PRIMARY_ID")
            _add(f, "sample_accession", exp.sample_accession)
            for ext in sd.findall("IDENTIFIERS/EXTERNAL_ID"):
                ns = (ext.get("namespace") or "external").lower()
                _add(f, f"sample_{ns}_id", _text(ext))
        lib = design.find("LIBRARY_DESCRIPTOR")
        if lib is not None:
            exp.library_strategy = _text(lib, "LIBRARY_STRATEGY")
            exp.library_source = _text(lib, "LIBRARY_SOURCE")
            layout = lib.find("LIBRARY_LAYOUT")
            if layout is not None and len(layout):
                child = layout[0]
                exp.library_layout = str(child.tag).upper()
            _add(f, "library_name", _text(lib, "LIBRARY_NAME"))
            _add(f, "library_strategy", exp.library_strategy)
            _add(f, "library_source", exp.library_source)
            _add(f, "library_selection", _text(lib, "LIBRARY_SELECTION"))
            _add(f, "library_layout", exp.library_layout)
            if layout is not None and len(layout):
                _add(f, "nominal_length", layout[0].get("NOMINAL_LENGTH"))
                _add(f, "nominal_sdev", layout[0].get("NOMINAL_SDEV"))
            _add(f, "library_construction_protocol", _text(lib, "LIBRARY_CONSTRUCTION_PROTOCOL"))
    platform = rec.find("PLATFORM")
    if platform is not None and len(platform):
        exp.instrument_platform = str(platform[0].tag).upper()
        exp.instrument_model = _text(platform[0], "INSTRUMENT_MODEL")
        _add(f, "instrument_platform", exp.instrument_platform)
        _add(f, "instrument_model", exp.instrument_model)
    for db, ident in _xref_links(rec):
        if db not in _FILE_LINK_DBS and db not in _LINK_KEYS:
            _add(f, f"xref_{db.lower()}", ident)
    _attribute_fields(f, _attribute_pairs(rec, "EXPERIMENT_ATTRIBUTES", "EXPERIMENT_ATTRIBUTE"), "experiment")
    return exp


def parse_sample(content: bytes, accession: str) -> SampleXml:
    """Parse ``/ena/browser/api/xml/<sample>`` (organism, title, submitter attributes)."""
    root = _root(content, accession, "SAMPLE_SET")
    rec = _record(root, accession, "SAMPLE")
    sample = SampleXml(
        accession=_accession_of(rec, "sample", accession),
        title=_text(rec, "TITLE"),
        center_name=rec.get("center_name"),
    )
    f = sample.fields
    _add(f, "sample_accession", sample.accession)
    for ext in rec.findall("IDENTIFIERS/EXTERNAL_ID"):
        if (ext.get("namespace") or "").lower() == "biosample":
            sample.biosample_accession = _text(ext)
            _add(f, "biosample_accession", sample.biosample_accession)
        else:
            _add(f, f"sample_{(ext.get('namespace') or 'external').lower()}_id", _text(ext))
    _add(f, "sample_alias", rec.get("alias"))
    _add(f, "sample_center_name", sample.center_name)
    _add(f, "sample_title", sample.title)
    _add(f, "sample_description", _text(rec, "DESCRIPTION"))
    name = rec.find("SAMPLE_NAME")
    if name is not None:
        sample.scientific_name = _text(name, "SCIENTIFIC_NAME")
        taxon = _text(name, "TAXON_ID")
        if taxon:
            try:
                sample.taxonomy_id = int(taxon)
            except ValueError as exc:
                raise SurveyError(accession, f"sample {sample.accession} has a non-numeric TAXON_ID") from exc
        _add(f, "tax_id", taxon)
        _add(f, "scientific_name", sample.scientific_name)
        _add(f, "common_name", _text(name, "COMMON_NAME"))
    _attribute_fields(f, _attribute_pairs(rec, "SAMPLE_ATTRIBUTES", "SAMPLE_ATTRIBUTE"), "sample")
    return sample


def parse_study(content: bytes, accession: str) -> StudyXml:
    """Parse ``/ena/browser/api/xml/<study>``: title, abstract, GEO/ArrayExpress ids, PubMed, runs."""
    root = _root(content, accession, "STUDY_SET")
    rec = _record(root, accession, "STUDY")
    study = StudyXml(accession=_accession_of(rec, "study", accession), center_name=rec.get("center_name"))
    study.alias = rec.get("alias")
    f = study.fields
    p = "study_ena_"
    _add(f, p + "accession", study.accession)
    _add(f, p + "alias", study.alias)
    _add(f, p + "center_name", study.center_name)
    _add(f, p + "broker_name", rec.get("broker_name"))
    for sec in rec.findall("IDENTIFIERS/SECONDARY_ID"):
        secondary = _text(sec)
        if secondary:
            study.secondary_ids.append(secondary)
            _add(f, p + "secondary_id", secondary)
    for ext in rec.findall("IDENTIFIERS/EXTERNAL_ID"):
        ns = (ext.get("namespace") or "external").lower()
        value = _text(ext)
        if ns == "geo" and value:
            study.geo_accessions.append(value)
        _add(f, f"{p}{ns}_id", value)
    desc = rec.find("DESCRIPTOR")
    study.title = _text(desc, "STUDY_TITLE")
    study.abstract = _text(desc, "STUDY_ABSTRACT")
    study.description = _text(desc, "STUDY_DESCRIPTION")
    _add(f, p + "title", study.title)
    study_type = desc.find("STUDY_TYPE") if desc is not None else None
    if study_type is not None:
        _add(f, p + "type", study_type.get("existing_study_type"))
    _add(f, p + "abstract", study.abstract)
    _add(f, p + "description", study.description)
    _add(f, p + "center_project_name", _text(desc, "CENTER_PROJECT_NAME"))
    if study.alias and _E_ACCESSION.fullmatch(study.alias):
        study.arrayexpress_accessions.append(study.alias)
    if study.alias and re.fullmatch(r"GSE\d+", study.alias) and study.alias not in study.geo_accessions:
        study.geo_accessions.append(study.alias)
    for label, url in _url_links(rec):
        _add(f, p + "url_link", f"{label}: {url}")
        for m in _E_ACCESSION.findall(f"{label} {url}"):
            study.arrayexpress_accessions.append(m)
    for db, ident in _xref_links(rec):
        if db in _FILE_LINK_DBS:
            continue
        if db.lower() == "pubmed":
            study.pubmed_ids.append(ident)
            _add(f, p + "pubmed_id", ident)
        elif db == "ENA-RUN":
            study.run_accessions.extend(expand_accessions(ident, accession))
            _add(f, p + "runs", ident)
        elif db.upper() == "ARRAYEXPRESS":
            study.arrayexpress_accessions.append(ident)
            _add(f, p + "arrayexpress_id", ident)
        elif db in _LINK_KEYS:
            _add(f, p + _LINK_KEYS[db].replace("_accession", "s"), ident)
        else:
            _add(f, f"{p}xref_{db.lower()}", ident)
    ena: dict[str, str] = {}
    for tag, value in _attribute_pairs(rec, "STUDY_ATTRIBUTES", "STUDY_ATTRIBUTE"):
        if tag.upper().startswith("ENA-"):
            key = p + tag[4:].lower().replace("-", "_")
            ena[key] = value
        else:
            key = p + tag
        _add(f, key, value)
    study.first_public = ena.get(p + "first_public")
    study.last_update = ena.get(p + "last_update")
    study.arrayexpress_accessions = list(dict.fromkeys(study.arrayexpress_accessions))
    study.run_accessions = list(dict.fromkeys(study.run_accessions))
    return study


def parse_submission(content: bytes, accession: str) -> SubmissionXml:
    """Parse ``/ena/browser/api/xml/<submission>`` (ERA/SRA/DRA): broker, lab, ArrayExpress link."""
    root = _root(content, accession, "SUBMISSION_SET")
    rec = _record(root, accession, "SUBMISSION")
    sub = SubmissionXml(accession=_accession_of(rec, "submission", accession))
    f = sub.fields
    _add(f, "submission_accession", sub.accession)
    _add(f, "submission_alias", rec.get("alias"))
    _add(f, "submission_center_name", rec.get("center_name"))
    _add(f, "submission_lab_name", rec.get("lab_name"))
    _add(f, "submission_broker_name", rec.get("broker_name"))
    _add(f, "submission_comment", rec.get("submission_comment"))
    _add(f, "submission_title", _text(rec, "TITLE"))
    for db, ident in _xref_links(rec):
        if db.upper() == "ARRAYEXPRESS":
            sub.arrayexpress_accessions.append(ident)
            _add(f, "submission_arrayexpress_id", ident)
    return sub


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(";")] if value else []


def fastq_files(ftp: str | None, sizes: str | None, md5s: str | None) -> list[FastqFile]:
    """Zip ENA's ``;``-separated ``fastq_ftp``/``fastq_bytes``/``fastq_md5`` into files.

    ENA gives host paths without a scheme (``ftp.sra.ebi.ac.uk/vol1/fastq/...``); the URL gets
    ``https://`` (ENA serves the same paths over HTTPS). Sizes/MD5s missing for a file stay None.
    """
    urls = [u for u in _split(ftp) if u]
    size_list = _split(sizes)
    md5_list = _split(md5s)
    out = []
    for i, url in enumerate(urls):
        if "://" not in url:
            url = "https://" + url
        size = size_list[i] if i < len(size_list) else ""
        md5 = md5_list[i] if i < len(md5_list) else ""
        out.append(FastqFile(url=url, size=int(size) if size.isdigit() else None, md5=md5 or None))
    return out


def parse_filereport(content: bytes, run_accession: str) -> FileReport | None:
    """Parse the TSV of ``/ena/portal/api/filereport?accession=<run>&result=read_run``.

    Returns the row of ``run_accession`` (None when the report has no row for it). Raises
    :class:`SurveyError` when the body is not a report (no ``run_accession`` column) or its
    ``fastq_ftp``/``fastq_bytes``/``fastq_md5`` lists disagree in length.
    """
    text = content.decode("utf-8", errors="replace")
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    if not reader.fieldnames or "run_accession" not in reader.fieldnames:
        raise SurveyError(run_accession, "ENA file report is malformed (no run_accession column)")
    for row in reader:
        if (row.get("run_accession") or "").strip() != run_accession:
            continue
        fields = [(k, v.strip()) for k, v in row.items() if k and isinstance(v, str) and v.strip()]
        n_ftp = len(_split(row.get("fastq_ftp")))
        for col in ("fastq_bytes", "fastq_md5"):
            if row.get(col) and len(_split(row.get(col))) != n_ftp:
                raise SurveyError(
                    run_accession, f"ENA file report lists {n_ftp} fastq files but a different {col}"
                )
        files = fastq_files(row.get("fastq_ftp"), row.get("fastq_bytes"), row.get("fastq_md5"))
        return FileReport(run_accession=run_accession, fastq=files, fields=fields)
    return None
