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

* files, Ensembl Genomes, in the archive's layout ``pub/release-<eg>/<short>/`` (``<short>`` is the
  division without ``Ensembl``, lower-case; refine.bio's ``url_root``, and what its recorded surveys of
  octopus, arabidopsis, leishmania and candida found)::

    http://ftp.ensemblgenomes.org/pub/release-<eg>/<short>/fasta/[<collection>/]<sp>/dna/<Sp>.<asm>.dna.<kind>.fa.gz
    http://ftp.ensemblgenomes.org/pub/release-<eg>/<short>/gtf/[<collection>/]<sp>/<Sp>.<asm>.<eg>.gtf.gz

  EnsemblFungi and EnsemblBacteria keep most genomes in collection folders
  (``fungi_ascomycota2_collection``); the folder and the species directory are read from the
  division's species file ``http://ftp.ensemblgenomes.org/pub/<short>/current/species_<Division>.txt``
  (row of the genome's assembly, columns ``species`` and ``core_db``), as refine.bio does; EnsemblFungi's
  assembly ``TIGR`` is named ``CADRE`` on the FTP site.

``<kind>`` is ``primary_assembly`` when that file exists (checked with HEAD) and ``toplevel``
otherwise; for fungi and bacteria a file name with an underscore after the assembly is tried last, as
refine.bio does. **Strain pinning**: for microbes with many strains, ``organism_strains.csv`` (the
choices of refine.bio's ``organism_strain_mapping.csv``) names the division and the assembly to use
(``CANDIDA_ALBICANS`` -> SC5314, ``Cand_albi_SC5314_V4``). **Division**: given, pinned, or found by
looking the organism up in the main site and then in each Ensembl Genomes division (plants, fungi,
metazoa, protists, bacteria).

Differences from refine.bio, deliberate: a missing GTF or a FASTA that is missing in every variant is
an error naming organism and URL (refine.bio queued downloads that then failed); only an HTTP status
answer to a HEAD triggers a fallback (refine.bio fell back on any exception, network failures
included).

Errors: :class:`EnsemblError` (a :class:`ValueError`) for an unknown division, an organism the
division does not list, a REST answer without the expected fields, or a missing file; REST HTTP
failures in :func:`ensembl_release` / :func:`ensembl_species` raise :class:`HttpError` as is and are
wrapped into :class:`EnsemblError` by :func:`transcriptome_sources`.
"""

from __future__ import annotations

import dataclasses
import functools
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
GENOMES_FTP_ROOT = "http://ftp.ensemblgenomes.org/pub/release-{release}/{short}"
SPECIES_DETAIL_URL = "http://ftp.ensemblgenomes.org/pub/{short}/current/species_{division}.txt"
# divisions whose genomes may sit in collection folders (refine.bio's Fungi and Bacteria URL builders)
COLLECTION_DIVISIONS = ("EnsemblFungi", "EnsemblBacteria")
# order in which divisions are searched for an organism whose division is not known
SEARCH_ORDER = (
    "EnsemblMain",
    "EnsemblPlants",
    "EnsemblFungi",
    "EnsemblMetazoa",
    "EnsemblProtists",
    "EnsemblBacteria",
)

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


@dataclass(frozen=True)
class StrainPin:
    """The strain/assembly a species' index is built from (``organism_strains.csv``)."""

    organism: str
    species_taxonomy_id: int
    division: str
    strain: str
    assembly: str


@functools.cache
def strain_pins() -> dict[str, StrainPin]:
    """Pinned strains by UPPER_SNAKE organism."""
    from refine_assets.lib.survey.platforms import read_data_csv

    return {
        r["organism"]: StrainPin(
            r["organism"], int(r["species_taxonomy_id"]), r["ensembl_division"], r["strain"], r["assembly"]
        )
        for r in read_data_csv("organism_strains.csv")
    }


def _assembly_key(name: str) -> str:
    return name.strip().replace(" ", "_")


def pinned_species(species: list[SpeciesInfo], pin: StrainPin) -> SpeciesInfo | None:
    """The genome of ``pin``: the entry with its assembly among the species' genomes."""
    want = _assembly_key(pin.assembly)
    prefix = pin.organism.lower()
    for sp in species:
        if sp.assembly == want and (sp.name.startswith(prefix) or sp.taxon_id == pin.species_taxonomy_id):
            return sp
    return None


def species_detail_url(division: str) -> str:
    short = GENOMES_DIVISIONS[normalize_division(division)]
    return SPECIES_DETAIL_URL.format(short=short, division=normalize_division(division))


def species_detail(client: HttpClient, division: str, assembly: str) -> dict[str, str] | None:
    """The row of the division's species file for ``assembly`` (first match), or None.

    The file is tab-separated with a ``#``-prefixed header (``#name species division taxonomy_id assembly
    ... core_db species_id``). Raises :class:`HttpError` when it cannot be fetched.
    """
    import csv

    text = client.get(species_detail_url(division)).text
    lines = text.splitlines()
    if not lines:
        return None
    lines[0] = lines[0].replace("#", "", 1)
    for row in csv.DictReader(lines, delimiter="\t"):
        if _assembly_key(row.get("assembly") or "") == _assembly_key(assembly):
            return row
    return None


def with_collection(species: SpeciesInfo, client: HttpClient) -> SpeciesInfo:
    """For EnsemblFungi/EnsemblBacteria genomes: the FTP species directory and collection folder from the
    division's species file (unchanged when the file has no row for the assembly)."""
    if species.division not in COLLECTION_DIVISIONS:
        return species
    assembly = (
        "CADRE" if species.division == "EnsemblFungi" and species.assembly == "TIGR" else species.assembly
    )
    detail = species_detail(client, species.division, assembly)
    if not detail:
        return dataclasses.replace(species, assembly=assembly)
    match = re.match(r"((?:fungi|bacteria)_.+?_collection)", detail.get("core_db") or "")
    return dataclasses.replace(
        species,
        name=(detail.get("species") or species.name).strip().lower(),
        assembly=assembly,
        collection=match.group(1) if match else None,
    )


def _locate(client: HttpClient, org: str, division: str | None) -> tuple[str, SpeciesInfo]:
    """(division, genome) of ``org``: in ``division`` when given (or pinned), else the first division
    of :data:`SEARCH_ORDER` that lists it. Raises :class:`EnsemblError`."""
    pin = strain_pins().get(org)
    if division is None and pin is not None:
        division = pin.division
    divisions = [normalize_division(division)] if division else list(SEARCH_ORDER)
    for div in divisions:
        try:
            species_list = ensembl_species(client, div)
        except HttpError as exc:
            raise EnsemblError(f"{org}: cannot list the species of {div}: {exc}") from exc
        found = pinned_species(species_list, pin) if pin is not None else find_species(species_list, org)
        if found is not None:
            return div, found
    where = (
        f"Ensembl division {divisions[0]} ({species_list_url(divisions[0])})"
        if len(divisions) == 1
        else "any Ensembl division (" + ", ".join(divisions) + ")"
    )
    what = f"strain {pin.strain} (assembly {pin.assembly}) of {org}" if pin else org
    raise EnsemblError(f"{org}: {what} is not a species of {where}")


def transcriptome_sources(
    organism: str,
    client: HttpClient,
    division: str | None = None,
    release: int | None = None,
    verify: bool = True,
) -> TranscriptomeSources:
    """Genome FASTA and GTF of ``organism`` (UPPER_SNAKE like ``DANIO_RERIO``) in Ensembl.

    Requests, in order: the species list(s) (``division``, the pinned division, or the search order), the
    division's species file for fungi/bacteria (collections), the release (unless ``release`` is given),
    and when ``verify`` HEADs of the FASTA variants (primary assembly, toplevel, then for fungi/bacteria
    ``<assembly>_``) until one exists and of the GTF (then its ``<assembly>_`` variant). Without
    ``verify`` no HEAD is made and the primary assembly is assumed.

    Raises :class:`EnsemblError` naming the organism and the URL when no division lists the organism, a
    REST request fails or answers unexpectedly, or a file is missing in every variant.
    """
    org = organism_name(organism or "")
    if not org:
        raise EnsemblError(f"no organism given: {organism!r}")
    div, species = _locate(client, org, division)
    if species.division in COLLECTION_DIVISIONS:
        try:
            species = with_collection(species, client)
        except HttpError as exc:
            raise EnsemblError(f"{org}: cannot read {species_detail_url(species.division)}: {exc}") from exc
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
        underscored = dataclasses.replace(species, assembly=species.assembly + "_")
        variants = [(kind, species), ("toplevel", species)]
        if species.division in COLLECTION_DIVISIONS:
            variants.append(("toplevel", underscored))
        tried = []
        for k, sp in variants:
            url = genome_fasta_url(sp, release, k)
            try:
                _head(client, org, url)
                kind, fasta = k, url
                break
            except HttpStatusError as exc:
                tried.append(f"{url} (HTTP {exc.status})")
        else:
            raise EnsemblError(f"{org}: no genome FASTA in Ensembl release {release}: " + " and ".join(tried))
        gtf_variants = [species] + ([underscored] if species.division in COLLECTION_DIVISIONS else [])
        tried = []
        for sp in gtf_variants:
            url = gtf_url(sp, release)
            try:
                _head(client, org, url)
                gtf = url
                break
            except HttpStatusError as exc:
                tried.append(f"{url} (HTTP {exc.status})")
        else:
            raise EnsemblError(f"{org}: no GTF in Ensembl release {release}: " + " and ".join(tried))
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
