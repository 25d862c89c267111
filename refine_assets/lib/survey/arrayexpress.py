"""ArrayExpress surveyor: one ``E-XXXX-n`` accession -> one :class:`SurveyResult`.

Two backends fetch the experiment; one shared, SDRF-driven step builds the records.

* **BioStudies** (live default; ArrayExpress moved into the BioStudies ``ArrayExpress`` collection in
  2022): study JSON ``https://www.ebi.ac.uk/biostudies/api/v1/studies/<ACC>`` (title, description,
  release date, links), ``.../studies/<ACC>/info`` (``httpLink``/``ftpLink`` of the file mirror,
  ``modified``), then the IDF and SDRF from ``<httpLink>/Files/<ACC>.idf.txt`` (the SDRF name comes
  from the IDF ``SDRF File`` row). Without ``httpLink`` the mirror path is derived as
  ``https://ftp.ebi.ac.uk/biostudies/fire/E-MTAB-/050/E-MTAB-3050/Files/``.
* **Legacy ArrayExpress JSON v3** (what the refine.bio cassettes of July 2021 hold):
  ``https://www.ebi.ac.uk/arrayexpress/json/v3/experiments/<ACC>`` (+ ``/protocols``, ``/samples``)
  and ``https://www.ebi.ac.uk/arrayexpress/files/<ACC>/<ACC>.idf.txt`` / ``.sdrf.txt``.

:func:`survey_arrayexpress` tries BioStudies first and falls back to the legacy API when any
BioStudies request raises :class:`HttpError` (in replay: :class:`NotRecordedError`); the backend that
answered is recorded in ``experiment_attributes["survey_backend"]`` (``biostudies`` or
``arrayexpress_v3``).

Record building follows refine.bio's ``surveyor/array_express.py`` (teardown 2.2) with these
differences, each deliberate:

* Samples come from the SDRF rows (every row kept), not from the JSON sample list; SDRF rows that
  resolve to the same sample accession (paired-end FASTQ rows, several files) are merged.
* The array design is read per sample from ``Array Design REF`` (refine.bio used the experiment-level
  design list and set UNKNOWN when there were several).
* Every SDRF column of every sample is kept as a ``SampleAttribute(source="sdrf")`` with the header as
  written, repeated columns included; the legacy JSON sample (when the backend has one) is kept
  flattened as ``source="ae_json"`` (``characteristic[age]``, ``variable[dose]``, ``scan.comment[ENA_RUN]``
  ...; refine.bio lost the ``variable_*`` columns, teardown 12.8). Values the surveyor derived (ENA
  accessions, the one-colour decision) are ``source="ae_derived"``.
* Both raw and processed files are listed as :class:`OriginalFile` (``is_raw`` tells which); refine.bio
  dropped processed files when raw ones existed.
* A one-colour assay (``Label`` Cy3 with no Cy5 anywhere in the same assay) is not raw (refine.bio:
  ``'Cy3' in str(sample) and 'Cy5' not in str(sample)``: one-colour Agilent is treated as processed).

Errors: an accession that is not ``E-XXXX-n``, an experiment neither backend knows (HTTP 404), any
other HTTP failure, and a malformed IDF/SDRF raise :class:`SurveyError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from refine_assets.lib.http import HttpClient, HttpError, HttpStatusError
from refine_assets.lib.survey import platforms, taxonomy
from refine_assets.lib.survey.magetab import (
    Idf,
    Sdrf,
    SdrfRow,
    bracket_name,
    normalize_key,
    parse_idf,
    parse_sdrf,
)
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

SOURCE_DATABASE = "ARRAY_EXPRESS"
BACKEND_BIOSTUDIES = "biostudies"
BACKEND_LEGACY = "arrayexpress_v3"

BIOSTUDIES_STUDY_URL = "https://www.ebi.ac.uk/biostudies/api/v1/studies/{acc}"
BIOSTUDIES_INFO_URL = "https://www.ebi.ac.uk/biostudies/api/v1/studies/{acc}/info"
BIOSTUDIES_FIRE_URL = "https://ftp.ebi.ac.uk/biostudies/fire/{prefix}/{bucket}/{acc}/Files/"
LEGACY_EXPERIMENT_URL = "https://www.ebi.ac.uk/arrayexpress/json/v3/experiments/{acc}"
LEGACY_FILE_URL = "https://www.ebi.ac.uk/arrayexpress/files/{acc}/{name}"

ACCESSION_RE = re.compile(r"^E-[A-Z]{4}-\d+$")

# SDRF file columns: normalized header -> (is_raw, file_type)
_FILE_COLUMNS: dict[str, tuple[bool, str]] = {
    "array data file": (True, "RAW"),
    "array data matrix file": (True, "NON_NORMALIZED"),
    "derived array data file": (False, "PROCESSED"),
    "derived array data matrix file": (False, "PROCESSED"),
}
_FASTQ_COLUMNS = ("comment[fastq_uri]",)
_INSTRUMENT_COLUMNS = (
    "Parameter Value[sequencing instrument]",
    "Comment[INSTRUMENT_MODEL]",
    "Parameter Value[instrument_model]",
    "Comment[sequencing instrument]",
)
_TITLE_COLUMNS = (
    "Comment[Sample_title]",
    "Characteristics[sample title]",
    "Characteristics[title]",
    "Comment[sample title]",
)
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz")
_NON_NORMALIZED = re.compile(r"[_-]non[_-]normali[sz]ed", re.IGNORECASE)


# --------------------------------------------------------------------------------------------------
# Sample accession heuristic


def _file_stem(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    for suffix in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return name.rsplit(".", 1)[0] if "." in name else ""


def determine_sample_accession(
    experiment_accession: str, source_name: str | None, assay_name: str | None, filename: str | None
) -> str:
    """The sample accession ``<experiment>-<name>``, refine.bio's ``determine_sample_accession``.

    Neither the source name nor the assay name is reliably the sample id (E-MEXP-669 has it in the
    assay name, E-MTAB-3050 in neither alone), so: (1) prefer the field that contains the data file
    name without its extension (``.CEL``; a compression suffix such as ``.gz`` is removed first,
    an extension refine.bio kept); (2) else the field without spaces when the other has spaces;
    (3) else the longer field (the source name on a tie). The experiment accession is prefixed
    because names like ``Sample 1`` repeat across experiments. A missing name falls back to the other
    one; raises :class:`ValueError` when both are empty.
    """
    source = (source_name or "").strip()
    assay = (assay_name or "").strip()
    if not source and not assay:
        raise ValueError(f"{experiment_accession}: sample has neither a source name nor an assay name")
    if not assay:
        return f"{experiment_accession}-{source}"
    if not source:
        return f"{experiment_accession}-{assay}"
    stem = _file_stem(filename) if filename else ""
    if stem:
        if stem in source:
            return f"{experiment_accession}-{source}"
        if stem in assay:
            return f"{experiment_accession}-{assay}"
    if " " in assay and " " not in source:
        return f"{experiment_accession}-{source}"
    if " " in source and " " not in assay:
        return f"{experiment_accession}-{assay}"
    if len(source) >= len(assay):
        return f"{experiment_accession}-{source}"
    return f"{experiment_accession}-{assay}"


def _as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def ae_json_sample_accession(experiment_accession: str, sample: dict) -> str:
    """The sample accession of one legacy JSON v3 sample (``experiment.sample[]``).

    The file given to :func:`determine_sample_accession` is the first file of type ``data`` (raw),
    else the first file of any type, as refine.bio's survey loop ended up using.
    """
    files = [f for f in _as_list(sample.get("file")) if isinstance(f, dict)]
    raw = [f for f in files if f.get("type") == "data" and f.get("name")]
    chosen = (raw or [f for f in files if f.get("name")] or [{}])[0]
    return determine_sample_accession(
        experiment_accession,
        _name_of(sample.get("source")),
        _name_of(sample.get("assay")),
        chosen.get("name"),
    )


def _name_of(node: object) -> str:
    if isinstance(node, dict) and node.get("name") is not None:
        return str(node["name"]).strip()
    return ""


# --------------------------------------------------------------------------------------------------
# Organisms


def fetch_taxonomy_id(name: str, client: HttpClient) -> int | None:
    """NCBI taxonomy id of an organism from E-utilities esearch (``db=taxonomy&field=scin``).

    Thin wrapper of :func:`refine_assets.lib.survey.taxonomy.esearch_taxonomy_id`: ``name`` is sent as
    given (refine.bio sends the UPPER_SNAKE name, e.g. ``DANIO_RERIO``). Returns the first id, or None
    when NCBI finds none. Raises :class:`HttpError` on HTTP failure and :class:`ValueError` when the
    answer is not esearch XML.
    """
    return taxonomy.esearch_taxonomy_id(name, client)


def resolve_organism(scientific_name: str, client: HttpClient, warnings: list[str]) -> Organism:
    """The :class:`Organism` for a scientific name: built-in table first, else NCBI esearch.

    Uses :func:`refine_assets.lib.survey.taxonomy.taxonomy_id_for` (table ``organisms.csv``, then
    esearch). Failure to find a taxonomy id (no hit, HTTP error, unreadable answer) gives
    ``taxonomy_id=None`` and appends a warning; it never fails the survey.
    """
    name = organism_name(scientific_name)
    sci = " ".join(scientific_name.split())
    try:
        taxonomy_id = taxonomy.taxonomy_id_for(name, client)
    except ValueError as exc:
        warnings.append(f"taxonomy id of {name} not found: {exc}")
        return Organism(name, None, sci)
    if taxonomy_id is None:
        warnings.append(f"taxonomy id of {name} not found: NCBI taxonomy has no entry")
    return Organism(name, taxonomy_id, sci)


# --------------------------------------------------------------------------------------------------
# What a backend fetched


@dataclass
class ArrayExpressRecord:
    """Everything a backend fetched for one experiment: the input of :func:`build_survey_result`.

    ``idf``/``sdrf`` are required; the other fields come from the backend's JSON when it has them.
    ``files_base_url`` (BioStudies ``<httpLink>/Files/``) is where data files named in the SDRF live
    when the SDRF gives no URL for them. ``sample_json`` is the legacy ``experiment.sample[]`` list.
    """

    accession: str
    backend: str
    idf: Idf
    sdrf: Sdrf
    idf_url: str
    sdrf_url: str
    source_url: str
    title: str | None = None
    description: str | None = None
    release_date: str | None = None
    last_modified: str | None = None
    pubmed_ids: list[str] = field(default_factory=list)
    publication_titles: list[str] = field(default_factory=list)
    publication_dois: list[str] = field(default_factory=list)
    publication_authors: list[str] = field(default_factory=list)
    alternate_accessions: list[str] = field(default_factory=list)
    array_design_names: dict[str, str] = field(default_factory=dict)
    sample_json: list[dict] = field(default_factory=list)
    experiment_attributes: dict[str, list[str]] = field(default_factory=dict)
    files_base_url: str | None = None


def _iso_date(value: object) -> str | None:
    """YYYY-MM-DD from an ISO-like string or epoch milliseconds (BioStudies ``modified``)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, tz=UTC).date().isoformat()
    match = re.match(r"^\s*(\d{4}-\d{2}-\d{2})", str(value))
    return match.group(1) if match else None


def _get(client: HttpClient, url: str):
    return client.get(url)


def _json(resp, url: str) -> object:
    try:
        return resp.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{url}: answer is not JSON ({exc})") from exc


def _biostudies_files_base(accession: str) -> str:
    prefix, number = accession.rsplit("-", 1)
    return BIOSTUDIES_FIRE_URL.format(prefix=prefix + "-", bucket=number[-3:].zfill(3), acc=accession)


def _flatten_sections(items: object) -> list[dict]:
    out: list[dict] = []
    for item in _as_list(items):
        if isinstance(item, list):
            out.extend(i for i in item if isinstance(i, dict))
        elif isinstance(item, dict):
            out.append(item)
    return out


def _bs_attributes(node: dict) -> list[tuple[str, str]]:
    out = []
    for attr in _as_list(node.get("attributes")):
        if isinstance(attr, dict) and attr.get("name") and attr.get("value") is not None:
            out.append((str(attr["name"]), str(attr["value"])))
    return out


def fetch_biostudies(accession: str, client: HttpClient) -> ArrayExpressRecord:
    """Fetch an experiment through the BioStudies API and its FIRE file mirror.

    Raises :class:`HttpError` when any request fails (the caller may fall back to the legacy API)
    and :class:`ValueError` when an answer is malformed.
    """
    study_url = BIOSTUDIES_STUDY_URL.format(acc=accession)
    study = _json(_get(client, study_url), study_url)
    info_url = BIOSTUDIES_INFO_URL.format(acc=accession)
    info = _json(_get(client, info_url), info_url)
    if not isinstance(study, dict) or not isinstance(study.get("section"), dict):
        raise ValueError(f"{study_url}: no 'section' in the study JSON")
    if not isinstance(info, dict):
        raise ValueError(f"{info_url}: info answer is not a JSON object")
    http_link = info.get("httpLink")
    files_base = http_link.rstrip("/") + "/Files/" if http_link else _biostudies_files_base(accession)

    idf_url = files_base + f"{accession}.idf.txt"
    idf = parse_idf(_get(client, idf_url).content, idf_url)
    sdrf_name = idf.first("SDRF File") or f"{accession}.sdrf.txt"
    sdrf_url = files_base + quote(sdrf_name)
    sdrf = parse_sdrf(_get(client, sdrf_url).content, sdrf_url)

    top = _bs_attributes(study)
    section = study["section"]
    sect = _bs_attributes(section)
    attrs: dict[str, list[str]] = {}
    for name, value in top + sect:
        attrs.setdefault(f"biostudies:{name}", []).append(value)
    alternates: list[str] = []
    for link in _flatten_sections(section.get("links")):
        link_type = dict(_bs_attributes(link)).get("Type", "link")
        url = str(link.get("url") or "")
        if url:
            attrs.setdefault(f"biostudies_link:{link_type}", []).append(url)
            if link_type.upper() in ("ENA", "GEO", "BIOSAMPLES") and "://" not in url:
                alternates.append(url)
    for key in ("ftpLink", "httpLink"):
        if info.get(key):
            attrs[f"biostudies:{key}"] = [str(info[key])]

    def first(pairs: list[tuple[str, str]], name: str) -> str | None:
        return next((v for n, v in pairs if n.lower() == name.lower() and v), None)

    return ArrayExpressRecord(
        accession=accession,
        backend=BACKEND_BIOSTUDIES,
        idf=idf,
        sdrf=sdrf,
        idf_url=idf_url,
        sdrf_url=sdrf_url,
        source_url=study_url,
        title=first(sect, "Title") or first(top, "Title"),
        description=first(sect, "Description"),
        release_date=_iso_date(first(top, "ReleaseDate") or info.get("released")),
        last_modified=_iso_date(info.get("modified")),
        alternate_accessions=alternates,
        experiment_attributes=attrs,
        files_base_url=files_base,
    )


def fetch_legacy(accession: str, client: HttpClient) -> ArrayExpressRecord:
    """Fetch an experiment through the legacy ArrayExpress JSON v3 API and files endpoint.

    Requests, in refine.bio's order: experiment JSON, IDF, protocols JSON, samples JSON, SDRF.
    Raises :class:`HttpError` on HTTP failure, :class:`LookupError` when the API answers but knows no
    such experiment, and :class:`ValueError` for malformed answers.
    """
    exp_url = LEGACY_EXPERIMENT_URL.format(acc=accession)
    doc = _json(_get(client, exp_url), exp_url)
    experiments = doc.get("experiments") if isinstance(doc, dict) else None
    if not isinstance(experiments, dict):
        raise ValueError(f"{exp_url}: no 'experiments' object in the answer")
    found = [e for e in _as_list(experiments.get("experiment")) if isinstance(e, dict)]
    if not found:
        raise LookupError(f"{exp_url}: the ArrayExpress API lists no experiment {accession}")
    exp = found[0]

    idf_url = LEGACY_FILE_URL.format(acc=accession, name=f"{accession}.idf.txt")
    idf = parse_idf(_get(client, idf_url).content, idf_url)

    protocols_url = exp_url + "/protocols"
    protocols_doc = _json(_get(client, protocols_url), protocols_url)
    samples_url = exp_url + "/samples"
    samples_doc = _json(_get(client, samples_url), samples_url)
    try:
        sample_json = [s for s in _as_list(samples_doc["experiment"]["sample"]) if isinstance(s, dict)]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{samples_url}: no experiment.sample list in the answer") from exc

    sdrf_name = idf.first("SDRF File") or f"{accession}.sdrf.txt"
    sdrf_url = LEGACY_FILE_URL.format(acc=accession, name=quote(sdrf_name))
    sdrf = parse_sdrf(_get(client, sdrf_url).content, sdrf_url)

    attrs: dict[str, list[str]] = {}
    for key in ("experimenttype", "experimentdesign", "organism"):
        values = [str(v) for v in _as_list(exp.get(key)) if v]
        if values:
            attrs[f"ae_json:{key}"] = values
    for var in _as_list(exp.get("experimentalvariable")):
        if isinstance(var, dict) and var.get("name"):
            attrs[f"ae_json:experimentalvariable[{var['name']}]"] = [
                str(v) for v in _as_list(var.get("value"))
            ]
    for provider in _as_list(exp.get("provider")):
        if isinstance(provider, dict) and provider.get("contact"):
            role = provider.get("role") or "provider"
            attrs.setdefault(f"ae_json:provider[{role}]", []).append(str(provider["contact"]))
    protocols = protocols_doc.get("protocols", {}) if isinstance(protocols_doc, dict) else {}
    for protocol in _as_list(protocols.get("protocol") if isinstance(protocols, dict) else None):
        if not isinstance(protocol, dict):
            continue
        acc = str(protocol.get("accession") or "").strip()
        if not acc:
            continue
        if protocol.get("type"):
            attrs[f"protocol_type[{acc}]"] = [str(protocol["type"])]
        if protocol.get("text"):
            attrs[f"protocol[{acc}]"] = [str(protocol["text"])]

    designs = {
        str(d["accession"]).strip(): str(d.get("name") or "")
        for d in _as_list(exp.get("arraydesign"))
        if isinstance(d, dict) and d.get("accession")
    }
    description = "\n".join(
        str(d["text"]).strip()
        for d in _as_list(exp.get("description"))
        if isinstance(d, dict) and d.get("text")
    )
    bibliography = [b for b in _as_list(exp.get("bibliography")) if isinstance(b, dict)]
    pubmed = [str(b["accession"]).strip() for b in bibliography if b.get("accession")]
    return ArrayExpressRecord(
        accession=accession,
        backend=BACKEND_LEGACY,
        idf=idf,
        sdrf=sdrf,
        idf_url=idf_url,
        sdrf_url=sdrf_url,
        source_url=exp_url,
        title=exp.get("name"),
        description=description or None,
        release_date=_iso_date(exp.get("releasedate")),
        last_modified=_iso_date(exp.get("lastupdatedate")),
        pubmed_ids=pubmed,
        publication_titles=[str(b["title"]).strip() for b in bibliography if b.get("title")],
        publication_dois=[str(b["doi"]).strip() for b in bibliography if b.get("doi")],
        publication_authors=[
            a.strip()
            for b in bibliography
            if b.get("authors")
            for a in str(b["authors"]).rstrip(".").split(",")
        ],
        alternate_accessions=[str(a) for a in _as_list(exp.get("secondaryaccession")) if a],
        array_design_names=designs,
        sample_json=sample_json,
        experiment_attributes=attrs,
    )


# --------------------------------------------------------------------------------------------------
# Shared record building


@dataclass
class _File:
    filename: str | None
    is_raw: bool
    file_type: str
    url: str | None = None
    md5: str | None = None
    size: int | None = None


def _row_files(row: SdrfRow) -> list[_File]:
    """Data files of one SDRF row: file columns with the ``Comment[...]`` columns that follow them."""
    files: list[_File] = []
    current: _File | None = None
    for norm, (_header, value) in zip(row.normalized_headers(), row.cells, strict=True):
        if norm in _FILE_COLUMNS:
            current = None
            if value:
                is_raw, file_type = _FILE_COLUMNS[norm]
                if file_type == "RAW":
                    file_type = "CEL" if re.search(r"\.cel(\.gz)?$", value, re.IGNORECASE) else "RAW"
                current = _File(value, is_raw, file_type)
                files.append(current)
            continue
        if norm in _FASTQ_COLUMNS:
            current = None
            if value:
                files.append(_File(value.rstrip("/").rsplit("/", 1)[-1], True, "FASTQ", url=value))
            continue
        if not norm.startswith("comment["):
            current = None
            continue
        if current is None or not value:
            continue
        name = (bracket_name(norm) or "").lower()
        if ("ftp file" in name or name.endswith(("uri", "url"))) and current.url is None:
            current.url = value
        elif "md5" in name:
            current.md5 = value
        elif name in ("size", "file size") and value.isdigit():
            current.size = int(value)
    return files


def _flatten_json(prefix: str, node: object, out: list[tuple[str, str]]) -> None:
    if node is None:
        return
    if isinstance(node, dict):
        if "name" in node and "value" in node and len(node) <= 3 and prefix.endswith("comment"):
            out.append((f"{prefix}[{node['name']}]", str(node["value"])))
            return
        for key, value in node.items():
            _flatten_json(f"{prefix}.{key}" if prefix else str(key), value, out)
    elif isinstance(node, list):
        for item in node:
            _flatten_json(prefix, item, out)
    else:
        out.append((prefix, str(node)))


def flatten_ae_json_sample(sample: dict) -> list[tuple[str, str]]:
    """Key/value pairs of one legacy JSON v3 sample, nothing dropped.

    ``characteristic`` and ``variable`` entries become ``characteristic[<category>]`` /
    ``variable[<name>]`` (with ``... unit`` for units); comments ``<node>.comment[<name>]``; other
    nested fields ``<node>.<field>`` (``source.name``, ``labeled-extract.label``, ``file.url``...).
    """
    out: list[tuple[str, str]] = []
    for key, node in sample.items():
        if key in ("characteristic", "variable"):
            label = "category" if key == "characteristic" else "name"
            for entry in _as_list(node):
                if not isinstance(entry, dict):
                    continue
                name = entry.get(label) or entry.get("name") or entry.get("category") or ""
                for value in _as_list(entry.get("value")):
                    if value is not None:
                        out.append((f"{key}[{name}]", str(value)))
                if entry.get("unit"):
                    out.append((f"{key}[{name}] unit", str(entry["unit"])))
        else:
            _flatten_json(key, node, out)
    return out


def _pubmed_ids(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        for token in re.split(r"[,;\s]+", value):
            if token.isdigit() and token not in out:
                out.append(token)
    return out


def _unique(values: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value and value not in out:
            out.append(value)
    return out


def _instrument_platform(model: str | None) -> str | None:
    if not model:
        return None
    low = model.lower()
    if "illumina" in low or any(
        k in low for k in ("hiseq", "nextseq", "novaseq", "miseq", "genome analyzer")
    ):
        return "ILLUMINA"
    if "ion torrent" in low or "ion s5" in low or "ion proton" in low:
        return "ION_TORRENT"
    return None


@dataclass
class _SampleGroup:
    accession: str
    rows: list[SdrfRow] = field(default_factory=list)
    files: list[_File] = field(default_factory=list)


def build_survey_result(record: ArrayExpressRecord, client: HttpClient) -> SurveyResult:
    """Turn a fetched experiment into a :class:`SurveyResult` (shared by both backends).

    ``client`` is used only for NCBI taxonomy look-ups of organisms outside the built-in
    ``organisms.csv`` table. Raises :class:`SurveyError` when an SDRF row names no sample.
    """
    acc = record.accession
    idf, sdrf = record.idf, record.sdrf
    warnings: list[str] = []

    # ---- experiment
    affiliations = _unique(idf.values_of("Person Affiliation"))
    experiment_types = [t.lower() for t in idf.values_of("Comment[AEExperimentType]")]
    experiment_types += [t.lower() for t in record.experiment_attributes.get("ae_json:experimenttype", [])]
    experiment_types += [t.lower() for t in record.experiment_attributes.get("biostudies:Study type", [])]
    experiment = Experiment(
        accession=acc,
        source_database=SOURCE_DATABASE,
        title=idf.first("Investigation Title") or record.title,
        description="\n".join(idf.values_of("Experiment Description")) or record.description,
        submitter_institution=", ".join(affiliations) or None,
        pubmed_ids=_pubmed_ids(list(idf.values_of("PubMed ID")) + record.pubmed_ids),
        publication_title="; ".join(idf.values_of("Publication Title") or record.publication_titles) or None,
        publication_doi=", ".join(idf.values_of("Publication DOI") or record.publication_dois) or None,
        publication_authors=_unique(
            [a.strip() for v in idf.values_of("Publication Author List") for a in re.split(r"[;,]", v)]
            or record.publication_authors
        ),
        source_first_published=record.release_date or _iso_date(idf.first("Public Release Date")),
        source_last_modified=record.last_modified
        or record.release_date
        or _iso_date(idf.first("Public Release Date")),
        alternate_accessions=_unique(
            record.alternate_accessions
            + idf.values_of("Comment[SecondaryAccession]")
            + ([f"GSE{acc.rsplit('-', 1)[1]}"] if acc.startswith("E-GEOD-") else [])
        ),
        source_url=record.source_url,
    )
    exp_attrs: dict[str, list[str]] = {"survey_backend": [record.backend]}
    exp_attrs["idf_url"] = [record.idf_url]
    exp_attrs["sdrf_url"] = [record.sdrf_url]
    for key in idf:
        exp_attrs[f"idf:{key}"] = list(idf[key])
    exp_attrs.update(record.experiment_attributes)

    # ---- group SDRF rows into samples
    labels_by_assay: dict[str, set[str]] = {}
    for row in sdrf.rows:
        if row.assay_name:
            labels_by_assay.setdefault(row.assay_name, set()).update(
                v.lower() for v in row.values("Label") if v
            )
    groups: dict[str, _SampleGroup] = {}
    for row in sdrf.rows:
        files = _row_files(row)
        raw = [f for f in files if f.is_raw and f.filename]
        named = raw or [f for f in files if f.filename]
        scan = row.get("Comment[SUBMITTED_FILE_NAME]") or row.get("Scan Name")
        filename = named[0].filename if named else scan
        try:
            sample_acc = determine_sample_accession(acc, row.source_name, row.assay_name, filename)
        except ValueError as exc:
            raise SurveyError(acc, f"{sdrf.source}: line {row.line}: {exc}") from exc
        group = groups.setdefault(sample_acc, _SampleGroup(sample_acc))
        group.rows.append(row)
        group.files.extend(files)

    # ---- legacy JSON samples, matched by (source name, assay name)
    json_by_names: dict[tuple[str, str], dict] = {}
    for sample in record.sample_json:
        json_by_names.setdefault((_name_of(sample.get("source")), _name_of(sample.get("assay"))), sample)
    matched_json: set[int] = set()

    result = SurveyResult(experiment=experiment, experiment_attributes=exp_attrs, warnings=warnings)
    organisms: dict[str, Organism] = {}
    platforms_seen: dict[str, Platform] = {}
    ena_runs: list[str] = []

    for group in groups.values():
        rows = group.rows
        first = rows[0]
        sample_acc = group.accession

        # organism
        sci = next((r.characteristic("organism") for r in rows if r.characteristic("organism")), None)
        json_samples = [
            json_by_names[k]
            for k in _unique_keys((r.source_name or "", r.assay_name or "") for r in rows)
            if k in json_by_names
        ]
        if sci is None:
            for js in json_samples:
                for entry in _as_list(js.get("characteristic")):
                    if isinstance(entry, dict) and str(entry.get("category", "")).upper() == "ORGANISM":
                        sci = sci or (str(entry["value"]) if entry.get("value") else None)
        organism = None
        if sci:
            name = organism_name(sci)
            if name not in organisms:
                organisms[name] = resolve_organism(sci, client, warnings)
            organism = organisms[name]
        else:
            warnings.append(f"{sample_acc}: no Characteristics[organism]")

        # technology and platform
        strategy = first_value(rows, "Comment[LIBRARY_STRATEGY]")
        library_source = first_value(rows, "Comment[LIBRARY_SOURCE]")
        runs = _unique(v for r in rows for v in r.values("Comment[ENA_RUN]"))
        technology_type = (first_value(rows, "Technology Type") or "").lower()
        has_fastq = any(f.file_type == "FASTQ" for f in group.files)
        is_sequencing = bool(runs) or has_fastq or "sequencing" in technology_type or strategy is not None
        design = first_value(rows, "Array Design REF")
        designs = _unique(v for r in rows for v in r.values("Array Design REF"))
        if len(designs) > 1:
            warnings.append(f"{sample_acc}: several array designs {designs}; using {designs[0]}")
        instrument = next(
            (r.first_of(_INSTRUMENT_COLUMNS) for r in rows if r.first_of(_INSTRUMENT_COLUMNS)), None
        )

        platform: Platform | None = None
        if is_sequencing:
            if strategy is not None:
                is_rnaseq = strategy.lower() == "rna-seq" and (
                    library_source or "TRANSCRIPTOMIC"
                ).upper() in (
                    "TRANSCRIPTOMIC",
                    "OTHER",
                )
            else:
                is_rnaseq = any("rna-seq" in t or "high throughput sequencing" in t for t in experiment_types)
            technology = "RNA-SEQ" if is_rnaseq else "UNKNOWN"
            platform = platforms.sequencing_platform(instrument, _instrument_platform(instrument))
            if not is_rnaseq:
                warnings.append(
                    f"{sample_acc}: sequencing assay that is not RNA-seq (library strategy {strategy!r})"
                )
        elif design:
            platform = platforms.lookup_platform(
                design,
                SOURCE_DATABASE,
                record.array_design_names.get(design) or None,
                organism.name if organism else None,
            )
            technology = platform.technology if platform.technology != "UNKNOWN" else "MICROARRAY"
        else:
            technology = "UNKNOWN"
            warnings.append(f"{sample_acc}: no Array Design REF and no sequencing run")
        if platform is not None:
            platforms_seen.setdefault(platform.accession, platform)

        # raw or processed; one-colour rule
        has_raw = any(f.is_raw for f in group.files)
        one_color = False
        if has_raw and not is_sequencing:
            assay_labels: set[str] = set()
            for r in rows:
                assay_labels |= labels_by_assay.get(r.assay_name or "", set())
            if any("cy3" in lab for lab in assay_labels) and not any("cy5" in lab for lab in assay_labels):
                has_raw = False
                one_color = True
        pipeline_files = [f.filename or "" for f in group.files if f.is_raw == has_raw]
        if technology == "UNKNOWN" or platform is None:
            pipeline = "NONE"
        else:
            pipeline = platforms.choose_pipeline(
                technology=technology,
                manufacturer=platform.manufacturer,
                supported=platform.supported,
                has_raw=has_raw,
                filenames=pipeline_files,
            )

        labels = {lab for r in rows for lab in labels_by_assay.get(r.assay_name or "", set())}
        title = next((r.first_of(_TITLE_COLUMNS) for r in rows if r.first_of(_TITLE_COLUMNS)), None)
        result.samples.append(
            Sample(
                accession=sample_acc,
                experiment_accession=acc,
                source_database=SOURCE_DATABASE,
                title=title or first.source_name or first.assay_name,
                organism=organism.name if organism else None,
                taxonomy_id=organism.taxonomy_id if organism else None,
                platform_accession=platform.accession if platform else None,
                platform_name=(platform.title or instrument or platform.accession) if platform else None,
                internal_platform_code=platform.internal_code if platform else None,
                technology=technology,
                manufacturer=platform.manufacturer if platform else "UNKNOWN",
                has_raw=has_raw,
                pipeline=pipeline,
                source_url=record.sdrf_url,
                channel_count=None if is_sequencing else (2 if len(labels) >= 2 else 1),
                library_layout=(first_value(rows, "Comment[LIBRARY_LAYOUT]") or "").upper() or None,
                library_strategy=strategy,
                library_source=library_source,
                instrument_model=instrument if is_sequencing else None,
                source_first_published=experiment.source_first_published,
                source_last_modified=experiment.source_last_modified,
            )
        )

        # attributes: every SDRF cell, then the JSON sample, then derived values
        position = 0
        seen_cells: set[tuple[int, str]] = set()  # a merged row repeats most cells of the first
        for row in rows:
            for column, (header, value) in enumerate(row.cells):
                position += 1
                if not value or (column, value) in seen_cells:
                    continue
                seen_cells.add((column, value))
                result.attributes.append(SampleAttribute(sample_acc, header, value, "sdrf", position))
        for js in json_samples:
            matched_json.add(id(js))
            for key, value in flatten_ae_json_sample(js):
                position += 1
                result.attributes.append(SampleAttribute(sample_acc, key, value, "ae_json", position))
        derived: list[tuple[str, str]] = [("ena_run", r) for r in runs]
        derived += [
            ("ena_experiment", v)
            for v in _unique(v for r in rows for v in r.values("Comment[ENA_EXPERIMENT]"))
        ]
        derived += [
            ("ena_sample", v) for v in _unique(v for r in rows for v in r.values("Comment[ENA_SAMPLE]"))
        ]
        derived += [
            ("biosample", v) for v in _unique(v for r in rows for v in r.values("Comment[BioSD_SAMPLE]"))
        ]
        if one_color:
            derived.append(("raw_data_ignored", "one-colour array (Cy3 without Cy5): treated as processed"))
        for key, value in derived:
            position += 1
            result.attributes.append(SampleAttribute(sample_acc, key, value, "ae_derived", position))
        ena_runs.extend(r for r in runs if r not in ena_runs)

        # files
        seen_files: set[tuple[str, str | None]] = set()
        for f in group.files:
            url = _file_url(f, record)
            if url is None:
                warnings.append(f"{sample_acc}: no download URL for {f.filename}")
                continue
            if (url, f.filename) in seen_files:
                continue
            seen_files.add((url, f.filename))
            result.original_files.append(
                OriginalFile(
                    source_url=url,
                    experiment_accession=acc,
                    sample_accession=sample_acc,
                    filename=f.filename,
                    file_type=f.file_type,
                    is_raw=f.is_raw,
                    is_archive=url.lower().endswith(_ARCHIVE_SUFFIXES)
                    and not (f.filename or "").lower().endswith(_ARCHIVE_SUFFIXES),
                    expected_size=f.size,
                    expected_md5=f.md5,
                )
            )

    # Experiment-level additional files (IDF Comment[AdditionalFile:...], e.g. a GEO non-normalized
    # matrix): listed where their URL is known (BioStudies Files/); otherwise kept in the idf: attributes.
    files_base = record.files_base_url
    for key in idf if files_base else ():
        if normalize_key(key).startswith("comment[additionalfile"):
            for name in idf.values_of(key):
                url = f"{files_base}{quote(name)}"
                non_normalized = bool(_NON_NORMALIZED.search(name))
                result.original_files.append(
                    OriginalFile(
                        source_url=url,
                        experiment_accession=acc,
                        filename=name,
                        file_type="NON_NORMALIZED" if non_normalized else "OTHER",
                        is_raw=non_normalized,
                        is_archive=name.lower().endswith(_ARCHIVE_SUFFIXES),
                    )
                )

    unmatched = [s for s in record.sample_json if id(s) not in matched_json]
    if unmatched:
        warnings.append(f"{len(unmatched)} JSON sample(s) match no SDRF row by source and assay name")
    if ena_runs:
        exp_attrs["ena_runs"] = ena_runs
    designs_all = _unique(s.platform_accession for s in result.samples if s.technology == "MICROARRAY")
    if designs_all:
        exp_attrs["array_designs"] = designs_all
    techs = [s.technology for s in result.samples if s.technology != "UNKNOWN"]
    if techs:
        experiment.technology = max(sorted(set(techs)), key=techs.count)
    result.organisms = list(organisms.values())
    result.platforms = list(platforms_seen.values())
    return result


def _unique_keys(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key in keys:
        if key not in out:
            out.append(key)
    return out


def first_value(rows: list[SdrfRow], header: str) -> str | None:
    """The first non-empty value of ``header`` over ``rows``."""
    for row in rows:
        value = row.get(header)
        if value:
            return value
    return None


def _file_url(f: _File, record: ArrayExpressRecord) -> str | None:
    if f.file_type == "FASTQ":
        return f.url
    if record.files_base_url and f.filename:
        # BioStudies keeps every data file unpacked under Files/; the old FTP archive URLs are gone.
        return record.files_base_url + quote(f.filename)
    return f.url


# --------------------------------------------------------------------------------------------------
# Entry point


def survey_arrayexpress(accession: str, client: HttpClient) -> SurveyResult:
    """Survey one ArrayExpress experiment (``E-XXXX-n``) into a :class:`SurveyResult`.

    Tries the BioStudies backend, then the legacy ArrayExpress JSON v3 backend when BioStudies
    raises :class:`HttpError`. Raises :class:`SurveyError` for a malformed accession, an experiment
    neither backend has (HTTP 404 / empty answer), other HTTP failures, and malformed JSON, IDF or
    SDRF (empty, ragged rows, no name columns); the message names the failing URL.
    """
    accession = accession.strip()
    if not ACCESSION_RE.match(accession):
        raise SurveyError(accession, "not an ArrayExpress accession (expected E-XXXX-n, e.g. E-MTAB-3050)")
    try:
        try:
            record = fetch_biostudies(accession, client)
        except HttpError as bs_error:
            try:
                record = fetch_legacy(accession, client)
            except HttpError as legacy_error:
                raise SurveyError(accession, _http_problem(bs_error, legacy_error)) from legacy_error
    except (ValueError, LookupError) as exc:
        raise SurveyError(accession, str(exc)) from exc
    return build_survey_result(record, client)


def _http_problem(bs_error: HttpError, legacy_error: HttpError) -> str:
    statuses = [e.status for e in (bs_error, legacy_error) if isinstance(e, HttpStatusError)]
    prefix = "unknown experiment (HTTP 404)" if 404 in statuses else "experiment could not be fetched"
    return f"{prefix}: BioStudies: {bs_error}; legacy ArrayExpress: {legacy_error}"
