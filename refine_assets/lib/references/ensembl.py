"""Ensembl REST and FTP layout: organism -> release, assembly, genome FASTA and GTF URLs.

Follows refine.bio's transcriptome surveyor (``foreman/.../surveyor/transcriptome_index.py``, teardown
2.4), which feeds the transcriptome index processor (teardown 5.1: genome DNA FASTA, primary assembly
else toplevel, plus the GTF of the current release):

* release: ``https://rest.ensembl.org/info/software`` -> ``release`` for the main (vertebrate) site,
  ``/info/eg_version`` -> ``version`` for the Ensembl Genomes divisions;
* species: ``/info/species`` (main; ``{"species": [...]}``) or ``/info/genomes/division/<division>``
  (Ensembl Genomes; a JSON list);
* files, main site (the URLs refine.bio recorded in ``surveyor.transcriptome.correct_index_location_danio_rerio``)::

    http://ftp.ensembl.org/pub/release-110/fasta/danio_rerio/dna/Danio_rerio.GRCz11.dna.primary_assembly.fa.gz
    http://ftp.ensembl.org/pub/release-110/gtf/danio_rerio/Danio_rerio.GRCz11.110.gtf.gz

* files, Ensembl Genomes (``<short>`` is the division without ``Ensembl``, lower-case; species that
  live in a collection, e.g. most bacteria, have the collection folder before the species folder)::

    http://ftp.ensemblgenomes.org/pub/<short>/release-<eg>/fasta/[<collection>/]<sp>/dna/<Sp>.<asm>.dna.<kind>.fa.gz
    http://ftp.ensemblgenomes.org/pub/<short>/release-<eg>/gtf/[<collection>/]<sp>/<Sp>.<asm>.<eg>.gtf.gz

``<kind>`` is ``primary_assembly`` when that file exists (checked with HEAD) and ``toplevel``
otherwise, as refine.bio does. Differences from refine.bio, deliberate: a missing GTF or a FASTA that
is missing in both kinds is an error naming organism and URL (refine.bio queued downloads that then
failed); only an HTTP status answer to the primary-assembly HEAD triggers the fallback (refine.bio
fell back on any exception, network failures included); the microbe strain pinning of
``config/organism_strain_mapping.csv`` is not built in: pass the full Ensembl name (e.g.
``ESCHERICHIA_COLI_STR_K_12_SUBSTR_MG1655_GCA_000005845``) to choose one strain.

Errors: :class:`EnsemblError` (a :class:`ValueError`) for an unknown division, an organism the
division does not list, a REST answer without the expected fields, or a missing file; REST HTTP
failures in :func:`ensembl_release` / :func:`ensembl_species` raise :class:`HttpError` as is and are
wrapped into :class:`EnsemblError` by :func:`transcriptome_sources`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from refine_assets.lib.http import HttpClient, HttpError, HttpStatusError
from refine_assets.lib.survey.model import organism_name

REST_ROOT = "https://rest.ensembl.org"
SOFTWARE_URL = f"{REST_ROOT}/info/software?content-type=application/json"
EG_VERSION_URL = f"{REST_ROOT}/info/eg_version?content-type=application/json"
SPECIES_URL = f"{REST_ROOT}/info/species?content-type=application/json"
DIVISION_SPECIES_URL = REST_ROOT + "/info/genomes/division/{division}?content-type=application/json"

MAIN_FTP_ROOT = "http://ftp.ensembl.org/pub/release-{release}"
GENOMES_FTP_ROOT = "http://ftp.ensemblgenomes.org/pub/{short}/release-{release}"

MAIN_DIVISION = "EnsemblMain"
# Names accepted for the main site: ours, refine.bio's survey-job key, and what /info/species reports.
_MAIN_ALIASES = frozenset({"ensemblmain", "ensembl", "ensemblvertebrates"})
# Ensembl Genomes divisions and their FTP folder (refine.bio DIVISION_LOOKUP).
GENOMES_DIVISIONS: dict[str, str] = {
    "EnsemblPlants": "plants",
    "EnsemblFungi": "fungi",
    "EnsemblMetazoa": "metazoa",
    "EnsemblProtists": "protists",
    "EnsemblBacteria": "bacteria",
}
FASTA_KINDS = ("primary_assembly", "toplevel")
_COLLECTION_RE = re.compile(r"^([a-z0-9_]+?_collection)_")


class EnsemblError(ValueError):
    """Ensembl cannot provide what was asked; the message names the organism/division and the URL."""


@dataclass(frozen=True)
class SpeciesInfo:
    """One species (genome) as an Ensembl REST species list describes it.

    ``name`` is Ensembl's production name (``danio_rerio``); ``scientific_name`` is the REST field when
    present, else derived from ``name`` (``Danio rerio``); ``taxon_id`` is the species-level NCBI id
    (Ensembl Genomes ``species_taxonomy_id`` preferred over the strain's ``taxonomy_id``, as refine.bio);
    ``division`` is as reported (``EnsemblVertebrates`` for the main site); ``collection`` is the FTP
    collection folder (``bacteria_0_collection``) or None.
    """

    name: str
    display_name: str | None
    scientific_name: str
    assembly: str
    taxon_id: int | None
    division: str
    collection: str | None = None

    @property
    def organism(self) -> str:
        """refine.bio's UPPER_SNAKE key of this genome (``DANIO_RERIO``)."""
        return self.name.upper()


@dataclass(frozen=True)
class TranscriptomeSources:
    """What a transcriptome index of ``organism`` is built from.

    ``fasta_kind`` is ``primary_assembly`` or ``toplevel``; ``verified`` tells whether both URLs were
    checked with HEAD (without verification the primary assembly is assumed).
    """

    organism: str
    species: SpeciesInfo
    division: str
    release: int
    genome_fasta_url: str
    gtf_url: str
    fasta_kind: str
    verified: bool

    @property
    def assembly(self) -> str:
        return self.species.assembly

    @property
    def taxonomy_id(self) -> int | None:
        return self.species.taxon_id


def normalize_division(division: str) -> str:
    """``EnsemblMain`` for the main site (also ``Ensembl``/``EnsemblVertebrates``, any case) or the
    canonical Ensembl Genomes division name (``EnsemblPlants`` ...). Raises :class:`EnsemblError`."""
    key = (division or "").strip().lower()
    if key in _MAIN_ALIASES:
        return MAIN_DIVISION
    for name in GENOMES_DIVISIONS:
        if name.lower() == key:
            return name
    known = ", ".join([MAIN_DIVISION, *GENOMES_DIVISIONS])
    raise EnsemblError(f"unknown Ensembl division {division!r} (known: {known})")


def _json(client: HttpClient, url: str) -> object:
    resp = client.get(url)
    try:
        return json.loads(resp.content)
    except ValueError as exc:
        raise EnsemblError(f"Ensembl REST answer is not JSON: {exc} ({url})") from exc


def ensembl_release(client: HttpClient, division: str = MAIN_DIVISION) -> int:
    """Current release: main ``/info/software`` ``release`` or Ensembl Genomes ``/info/eg_version``
    ``version`` (a string such as ``"57"``). Raises :class:`HttpError` on HTTP failure and
    :class:`EnsemblError` for an unknown division or an answer without an integer release."""
    div = normalize_division(division)
    url, field = (SOFTWARE_URL, "release") if div == MAIN_DIVISION else (EG_VERSION_URL, "version")
    doc = _json(client, url)
    value = doc.get(field) if isinstance(doc, dict) else None
    try:
        release = int(str(value).strip())
    except ValueError:
        release = 0
    if release <= 0:
        raise EnsemblError(f"Ensembl REST answer has no {field!r} release number: {doc!r:.200} ({url})")
    return release


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def parse_species(entry: dict) -> SpeciesInfo:
    """One entry of ``/info/species`` or ``/info/genomes/division/<div>`` as :class:`SpeciesInfo`.

    Main-site keys: ``name``, ``display_name``, ``assembly``, ``taxon_id``, ``division``. Ensembl
    Genomes keys: ``name`` (or ``species``), ``display_name``, ``assembly_name``, ``species_taxonomy_id``
    / ``taxonomy_id``, ``division``, ``dbname`` (``bacteria_0_collection_core_...`` gives the collection).
    Raises :class:`EnsemblError` when the name or assembly is missing.
    """
    name = str(entry.get("name") or entry.get("species") or "").strip().lower()
    assembly = str(entry.get("assembly") or entry.get("assembly_name") or "").strip().replace(" ", "_")
    if not name or not assembly:
        raise EnsemblError(f"Ensembl species entry without name or assembly: {entry!r:.200}")
    taxon = _int_or_none(entry.get("species_taxonomy_id"))
    if taxon is None:
        taxon = _int_or_none(entry.get("taxon_id") or entry.get("taxonomy_id"))
    match = _COLLECTION_RE.match(str(entry.get("dbname") or ""))
    scientific = str(entry.get("scientific_name") or "").strip() or name.replace("_", " ").capitalize()
    return SpeciesInfo(
        name=name,
        display_name=(str(entry["display_name"]) if entry.get("display_name") else None),
        scientific_name=scientific,
        assembly=assembly,
        taxon_id=taxon,
        division=str(entry.get("division") or ""),
        collection=match.group(1) if match else None,
    )


def species_list_url(division: str = MAIN_DIVISION) -> str:
    """The REST URL listing the species of ``division``."""
    div = normalize_division(division)
    return SPECIES_URL if div == MAIN_DIVISION else DIVISION_SPECIES_URL.format(division=div)


def ensembl_species(client: HttpClient, division: str = MAIN_DIVISION) -> list[SpeciesInfo]:
    """All species of a division, in the order the REST API lists them.

    Raises :class:`HttpError` on HTTP failure and :class:`EnsemblError` for an unknown division, an
    answer that is not a species list, or an entry without name/assembly (no partial lists).
    """
    url = species_list_url(division)
    doc = _json(client, url)
    entries = doc.get("species") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise EnsemblError(f"Ensembl REST answer is not a species list ({url})")
    try:
        return [parse_species(e) for e in entries]
    except EnsemblError as exc:
        raise EnsemblError(f"{exc} ({url})") from exc


def find_species(species: list[SpeciesInfo], organism: str) -> SpeciesInfo | None:
    """The entry for ``organism`` (``DANIO_RERIO``, ``Danio rerio`` or a full Ensembl name).

    An exact name match wins; else the single entry whose name starts with ``<organism>_`` (one strain
    listed under the species). Returns None when nothing matches; raises :class:`EnsemblError` when
    several strains match, listing them.
    """
    key = organism_name(organism).lower()
    for sp in species:
        if sp.name == key:
            return sp
    strains = [sp for sp in species if sp.name.startswith(key + "_")]
    if len(strains) == 1:
        return strains[0]
    if strains:
        names = ", ".join(sp.name for sp in strains[:5]) + (" ..." if len(strains) > 5 else "")
        raise EnsemblError(
            f"{organism_name(organism)}: {len(strains)} Ensembl genomes match ({names}); pass the full name"
        )
    return None


def _release_root(species: SpeciesInfo, release: int) -> str:
    short = GENOMES_DIVISIONS.get(species.division)
    if short is None:
        return MAIN_FTP_ROOT.format(release=release)
    return GENOMES_FTP_ROOT.format(short=short, release=release)


def _species_dir(species: SpeciesInfo) -> str:
    return f"{species.collection}/{species.name}" if species.collection else species.name


def genome_fasta_url(species: SpeciesInfo, release: int, kind: str = "primary_assembly") -> str:
    """Genome DNA FASTA URL of ``species`` in ``release`` (the site follows ``species.division``).

    ``kind`` is ``primary_assembly`` or ``toplevel``; raises :class:`EnsemblError` otherwise.
    """
    if kind not in FASTA_KINDS:
        raise EnsemblError(f"unknown genome FASTA kind {kind!r} (known: {', '.join(FASTA_KINDS)})")
    file_species = species.name.capitalize()
    return (
        f"{_release_root(species, release)}/fasta/{_species_dir(species)}/dna/"
        f"{file_species}.{species.assembly}.dna.{kind}.fa.gz"
    )


def gtf_url(species: SpeciesInfo, release: int) -> str:
    """GTF annotation URL of ``species`` in ``release``: ``<Sp>.<assembly>.<release>.gtf.gz``."""
    file_species = species.name.capitalize()
    return (
        f"{_release_root(species, release)}/gtf/{_species_dir(species)}/"
        f"{file_species}.{species.assembly}.{release}.gtf.gz"
    )


def transcriptome_sources(
    organism: str,
    client: HttpClient,
    division: str = MAIN_DIVISION,
    release: int | None = None,
    verify: bool = True,
) -> TranscriptomeSources:
    """Genome FASTA and GTF of ``organism`` (UPPER_SNAKE like ``DANIO_RERIO``) in an Ensembl division.

    Requests, in order: the species list, the release (unless ``release`` is given), and when
    ``verify`` a HEAD of the primary-assembly FASTA (on an HTTP error status, a HEAD of the toplevel
    FASTA instead) and a HEAD of the GTF. Without ``verify`` no HEAD is made and the primary assembly
    is assumed.

    Raises :class:`EnsemblError` naming the organism and the URL when the division is unknown, the
    division does not list the organism, a REST request fails or answers unexpectedly, or a file is
    missing (FASTA missing in both kinds, or GTF missing).
    """
    div = normalize_division(division)
    org = organism_name(organism or "")
    if not org:
        raise EnsemblError(f"no organism given: {organism!r}")
    list_url = species_list_url(div)
    try:
        species_list = ensembl_species(client, div)
    except HttpError as exc:
        raise EnsemblError(f"{org}: cannot list the species of {div}: {exc}") from exc
    species = find_species(species_list, org)
    if species is None:
        raise EnsemblError(f"{org}: not a species of Ensembl division {div} ({list_url})")
    if release is None:
        try:
            release = ensembl_release(client, div)
        except HttpError as exc:
            raise EnsemblError(f"{org}: cannot read the {div} release: {exc}") from exc
    elif release <= 0:
        raise EnsemblError(f"{org}: not an Ensembl release: {release!r}")

    kind = "primary_assembly"
    fasta = genome_fasta_url(species, release, kind)
    gtf = gtf_url(species, release)
    if verify:
        try:
            _head(client, org, fasta)
        except HttpStatusError as primary_error:
            kind = "toplevel"
            toplevel = genome_fasta_url(species, release, kind)
            try:
                _head(client, org, toplevel)
            except HttpStatusError as exc:
                raise EnsemblError(
                    f"{org}: no genome FASTA in Ensembl release {release}: "
                    f"{fasta} (HTTP {primary_error.status}) and {toplevel} (HTTP {exc.status})"
                ) from exc
            fasta = toplevel
        try:
            _head(client, org, gtf)
        except HttpStatusError as exc:
            raise EnsemblError(
                f"{org}: no GTF in Ensembl release {release}: {gtf} (HTTP {exc.status})"
            ) from exc
    return TranscriptomeSources(
        organism=org,
        species=species,
        division=div,
        release=release,
        genome_fasta_url=fasta,
        gtf_url=gtf,
        fasta_kind=kind,
        verified=verify,
    )


def _head(client: HttpClient, organism: str, url: str) -> None:
    """HEAD ``url``; an HTTP status error is let through, any other HTTP failure is an EnsemblError."""
    try:
        client.head(url)
    except HttpStatusError:
        raise
    except HttpError as exc:
        raise EnsemblError(f"{organism}: cannot check {url}: {exc}") from exc
