"""Where each processing reference comes from, resolved without hand configuration.

:class:`ReferenceLocator` answers "which file do I download to build reference *kind* for *name*?"
for the five references per-sample processing needs. Sources, in order (a configured local override
first, then the public source refine.bio used):

=============== ============== ===============================================================
kind            name           source
=============== ============== ===============================================================
``probes``      platform code  Bioconductor ``<code>probe`` (PM probe sequences); else the probes of
                               the Brainarray ENSG package (chips without a Bioconductor probe
                               package, e.g. the Gene ST arrays)
``brainarray``  platform code  Brainarray 22.0.0 ENSG probe package ``<code><sp>ensgprobe``, for
                               platforms refine.bio supports with Brainarray
                               (``supported_platforms.csv`` column ``brainarray``)
``annotation``  platform code  Bioconductor ChipDb ``<code>.db`` (probeset -> Entrez gene)
``illumina``    package stem   Bioconductor ``illumina<Org>v<N>.db`` + the organism's ``org.<Xx>.eg.db``
``crosswalk``   organism       Bioconductor ``org.<Xx>.eg.db`` where the organism has one
                               (``organism_references.csv``), else NCBI ``gene2ensembl`` filtered to
                               the organism's taxon + its NCBI ``gene_info`` (symbols)
=============== ============== ===============================================================

Bioconductor packages are resolved through the release's ``PACKAGES`` index
(:mod:`~refine_assets.lib.references.bioconductor`), Brainarray's through its ENSG download page
(:mod:`~refine_assets.lib.references.brainarray`); both are read once per locator through the
:class:`~refine_assets.lib.http.HttpClient` (live: retries and rate limits; replay: recorded or
format-faithful responses under the same URLs).

A reference that cannot be located raises :class:`ReferenceUnavailable`, whose message names the
reference (``affy_probe_table[mouse4302]``) and every URL that was needed (an index that could not be
read, or the index that lacks the package), never just "not configured".

Nothing here imports dagster.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from refine_assets.lib.references.bioconductor import (
    DEFAULT_RELEASE,
    BioconductorIndex,
    BioconductorIndexError,
    PackageEntry,
)
from refine_assets.lib.references.brainarray import DEFAULT_VERSION, BrainarrayIndex, BrainarrayIndexError

__all__ = [
    "ASSET_FOR_KIND",
    "GENE2ENSEMBL_URL",
    "ILLUMINA_TIEBREAK_URL",
    "KINDS",
    "ReferenceLocator",
    "ReferenceOverrides",
    "ReferenceSource",
    "ReferenceUnavailable",
    "gene_info_url",
    "orgdb_package",
]

KINDS = ("probes", "brainarray", "annotation", "illumina", "crosswalk", "transcriptome_index")
LENGTHS = ("short", "long")
# The Dagster asset that materializes each kind (partition = the reference's name).
ASSET_FOR_KIND = {
    "probes": "affy_probe_table",
    "brainarray": "brainarray_probes",
    "annotation": "platform_annotation",
    "illumina": "illumina_annotation",
    "crosswalk": "gene_crosswalk",
    "transcriptome_index": "transcriptome_index",
}
GENE2ENSEMBL_URL = "https://ftp.ncbi.nlm.nih.gov/gene/DATA/gene2ensembl.gz"
# refine.bio's probe -> gene tie-break maps for Illumina probes with several Ensembl genes (built by
# AlexsLemonade/illumina-refinery), at the refine.bio commit this project follows.
ILLUMINA_TIEBREAK_URL = (
    "https://raw.githubusercontent.com/AlexsLemonade/refinebio/288d43cad259daecc95d6a3d43f74fd92ccbf57d/"
    "workers/illumina_probe_maps/{platform}.tsv"
)
GENE_INFO_ROOT = "https://ftp.ncbi.nlm.nih.gov/gene/DATA/GENE_INFO"
# Organism packages keyed by the Illumina package prefix (refine.bio's platform candidates).
_ILLUMINA_ORGANISM = {
    "illuminaHuman": "HOMO_SAPIENS",
    "illuminaMouse": "MUS_MUSCULUS",
    "illuminaRat": "RATTUS_NORVEGICUS",
}


class ReferenceUnavailable(LookupError):
    """A reference cannot be located or built; the message names the reference and the URL(s)."""

    def __init__(
        self, kind: str, name: str, message: str, urls: tuple[str, ...] = (), *, absent: bool = False
    ):
        self.kind, self.name, self.urls = kind, name, urls
        self.absent = absent  # True: the catalogue was read and does not have it (not a fetch failure)
        label = f"{ASSET_FOR_KIND.get(kind, kind)}[{name}]"
        super().__init__(f"{label}: {message}")


@dataclass(frozen=True)
class ReferenceSource:
    """The input(s) a reference is built from.

    ``url`` is the main input (a URL, or a local path for an override); ``inputs`` names the others
    (``org_package`` of an Illumina platform, ``gene_info`` of an NCBI crosswalk); ``origin`` says
    which catalogue resolved it (``bioconductor 3.20``, ``brainarray 22.0.0``, ``ncbi``, ``override``).
    """

    kind: str
    name: str
    url: str
    origin: str
    package: str | None = None
    version: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    tax_id: int | None = None
    note: str | None = None
    details: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """JSON-able description (recorded in the reference's record)."""
        return {
            "url": self.url,
            "origin": self.origin,
            "package": self.package,
            "package_version": self.version,
            "inputs": dict(self.inputs),
            "tax_id": self.tax_id,
            "note": self.note,
            **({"details": dict(self.details)} if self.details else {}),
        }


@dataclass(frozen=True)
class ReferenceOverrides:
    """Local overrides (paths or URLs) that take precedence over the public sources (offline sites)."""

    probe_tables: dict[str, str] = field(default_factory=dict)
    brainarray: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    illumina_packages: str | None = None  # folder of <pkg>.db_<version>.tar.gz (+ org.<Xx>.eg.db)
    crosswalks: dict[str, str] = field(default_factory=dict)
    crosswalk_tax_ids: dict[str, int] = field(default_factory=dict)
    # ORGANISM -> {transcripts: FASTA} or {genome, gtf} (+ ensembl_release, assembly), or only
    # {division, ensembl_release} to steer the Ensembl look-up
    transcriptomes: dict[str, dict] = field(default_factory=dict)


@functools.cache
def _organism_references() -> dict[str, tuple[str | None, str | None]]:
    from refine_assets.lib.survey.platforms import read_data_csv

    return {
        r["name"]: (r["orgdb_package"] or None, r["ncbi_gene_info"] or None)
        for r in read_data_csv("organism_references.csv")
    }


def orgdb_package(organism: str) -> str | None:
    """The Bioconductor ``org.<Xx>.eg.db`` package of an organism, or None."""
    return _organism_references().get(organism.upper(), (None, None))[0]


def gene_info_url(organism: str) -> str | None:
    """URL of the organism's NCBI ``gene_info`` file, or None when unknown."""
    path = _organism_references().get(organism.upper(), (None, None))[1]
    return f"{GENE_INFO_ROOT}/{path}" if path else None


def _brainarray_platforms() -> set[str]:
    from refine_assets.lib.survey.platforms import supported_platforms

    return {p.internal_code for p in supported_platforms() if p.brainarray}


class ReferenceLocator:
    """Resolves references to their sources (see the module docstring); indexes are read lazily, once."""

    def __init__(
        self,
        http,
        *,
        bioconductor_release: str = DEFAULT_RELEASE,
        brainarray_version: str = DEFAULT_VERSION,
        overrides: ReferenceOverrides | None = None,
    ):
        self.http = http
        self.bioconductor = BioconductorIndex(http, bioconductor_release)
        self.brainarray_index = BrainarrayIndex(http, brainarray_version)
        self.overrides = overrides or ReferenceOverrides()

    # -- catalogue look-ups -------------------------------------------------------------------------

    def _bioc(self, kind: str, name: str, package: str) -> PackageEntry | None:
        try:
            return self.bioconductor.find(package)
        except BioconductorIndexError as exc:
            raise ReferenceUnavailable(kind, name, str(exc), (self.bioconductor.index_url,)) from exc

    def _brainarray_url(self, kind: str, name: str) -> str | None:
        try:
            return self.brainarray_index.find(name)
        except BrainarrayIndexError as exc:
            raise ReferenceUnavailable(kind, name, str(exc), (self.brainarray_index.index_url,)) from exc

    @staticmethod
    def _override(kind: str, name: str, value: str, **kw) -> ReferenceSource:
        return ReferenceSource(kind, name, value, "override", package=Path(value).name, **kw)

    # -- per kind -----------------------------------------------------------------------------------

    def locate(self, kind: str, name: str) -> ReferenceSource:
        """The source of reference ``kind`` for ``name``; raises :class:`ReferenceUnavailable`."""
        if kind not in KINDS:
            raise ValueError(f"unknown reference kind {kind!r} (expected one of {KINDS})")
        return getattr(self, f"_locate_{kind}")(name)

    def uses_brainarray(self, code: str) -> bool:
        """True when refine.bio processes the platform with a Brainarray package (or one is configured)."""
        return code in self.overrides.brainarray or code in _brainarray_platforms()

    def _locate_probes(self, code: str) -> ReferenceSource:
        if code in self.overrides.probe_tables:
            return self._override("probes", code, self.overrides.probe_tables[code])
        entry = self._bioc("probes", code, f"{code}probe")
        if entry is not None:
            return ReferenceSource(
                "probes",
                code,
                entry.url,
                f"bioconductor {self.bioconductor.release}",
                entry.name,
                entry.version,
            )
        url = self._brainarray_url("probes", code) if self.uses_brainarray(code) else None
        if url is not None:
            return ReferenceSource(
                "probes",
                code,
                url,
                f"brainarray {self.brainarray_index.version}",
                _package_name(url),
                self.brainarray_index.version,
                note=f"Bioconductor {self.bioconductor.release} has no {code}probe package: PM probes are "
                "those of the Brainarray ENSG package (probes that align to one Ensembl gene)",
            )
        raise ReferenceUnavailable(
            "probes",
            code,
            f"no probe sequences: Bioconductor {self.bioconductor.release} has no {code}probe package "
            f"({self.bioconductor.index_url})"
            + (
                f" and Brainarray {self.brainarray_index.version} lists no ENSG package for {code} "
                f"({self.brainarray_index.index_url})"
                if self.uses_brainarray(code)
                else ""
            ),
            (self.bioconductor.index_url,),
            absent=True,
        )

    def _locate_brainarray(self, code: str) -> ReferenceSource:
        if code in self.overrides.brainarray:
            return self._override("brainarray", code, self.overrides.brainarray[code])
        if not self.uses_brainarray(code):
            raise ReferenceUnavailable(
                "brainarray",
                code,
                "refine.bio does not process this platform with a Brainarray package",
                absent=True,
            )
        url = self._brainarray_url("brainarray", code)
        if url is None:
            raise ReferenceUnavailable(
                "brainarray",
                code,
                f"Brainarray {self.brainarray_index.version} lists no ENSG package for {code} "
                f"({self.brainarray_index.index_url})",
                (self.brainarray_index.index_url,),
                absent=True,
            )
        return ReferenceSource(
            "brainarray",
            code,
            url,
            f"brainarray {self.brainarray_index.version}",
            _package_name(url),
            self.brainarray_index.version,
        )

    def _locate_annotation(self, code: str) -> ReferenceSource:
        if code in self.overrides.annotations:
            return self._override("annotation", code, self.overrides.annotations[code])
        entry = self._bioc("annotation", code, f"{code}.db")
        if entry is None:
            raise ReferenceUnavailable(
                "annotation",
                code,
                f"Bioconductor {self.bioconductor.release} has no {code}.db annotation package "
                f"({self.bioconductor.index_url})",
                (self.bioconductor.index_url,),
                absent=True,
            )
        return ReferenceSource(
            "annotation",
            code,
            entry.url,
            f"bioconductor {self.bioconductor.release}",
            entry.name,
            entry.version,
        )

    def _locate_illumina(self, platform: str) -> ReferenceSource:
        organism = next((o for p, o in _ILLUMINA_ORGANISM.items() if platform.startswith(p)), None)
        folder = self.overrides.illumina_packages
        if folder:
            found = sorted(Path(folder).glob(f"{platform}.db_*.tar.gz"))
            if found:
                org = orgdb_package(organism) if organism else None
                orgs = sorted(Path(folder).glob(f"{org}_*.tar.gz")) if org else []
                tiebreak = Path(folder) / f"{platform}.tsv"
                inputs = {"org_package": str(orgs[-1])} if orgs else {}
                if tiebreak.is_file():
                    inputs["tiebreak"] = str(tiebreak)
                return self._override("illumina", platform, str(found[-1]), inputs=inputs)
            # a configured folder is authoritative for Illumina packages (offline sites)
            raise ReferenceUnavailable(
                "illumina",
                platform,
                f"no {platform}.db_<version>.tar.gz in the configured folder {folder}",
                absent=True,
            )
        entry = self._bioc("illumina", platform, f"{platform}.db")
        if entry is None:
            raise ReferenceUnavailable(
                "illumina",
                platform,
                f"Bioconductor {self.bioconductor.release} has no {platform}.db package ({self.bioconductor.index_url})",
                (self.bioconductor.index_url,),
                absent=True,
            )
        inputs = {"tiebreak": ILLUMINA_TIEBREAK_URL.format(platform=platform)}
        org = orgdb_package(organism) if organism else None
        org_entry = self._bioc("illumina", platform, org) if org else None
        if org_entry is not None:
            inputs["org_package"] = org_entry.url
        return ReferenceSource(
            "illumina",
            platform,
            entry.url,
            f"bioconductor {self.bioconductor.release}",
            entry.name,
            entry.version,
            inputs=inputs,
            note=None
            if "org_package" in inputs
            else "no organism package: Ensembl ids from the package's EnsemblReannotated",
        )

    def _locate_transcriptome_index(self, name: str) -> ReferenceSource:
        """Genome + GTF (or a transcript FASTA) of an organism's salmon index of one read-length class:
        a configured source, else Ensembl (``lib/references/ensembl.py``: REST species lists, the
        release, HEAD-verified FASTA and GTF in the archive's layout)."""
        from refine_assets.lib.references.ensembl import EnsemblError, transcriptome_sources

        try:
            organism, length = split_index_name(name)
        except ValueError as exc:
            raise ReferenceUnavailable("transcriptome_index", name, str(exc), absent=True) from exc
        conf = dict(self.overrides.transcriptomes.get(organism) or {})
        details = {"organism": organism, "length": length}
        if "transcripts" in conf or ("genome" in conf and "gtf" in conf):
            main = conf.get("transcripts") or conf["genome"]
            inputs = {} if "transcripts" in conf else {"gtf": conf["gtf"]}
            details.update(
                ensembl_release=conf.get("ensembl_release"),
                assembly=conf.get("assembly"),
                kind=("transcripts" if "transcripts" in conf else "genome"),
            )
            return self._override("transcriptome_index", name, str(main), inputs=inputs, details=details)
        try:
            found = transcriptome_sources(
                organism, self.http, division=conf.get("division"), release=conf.get("ensembl_release")
            )
        except EnsemblError as exc:
            urls = tuple(re.findall(r"https?://\S+?(?=[)\s]|$)", str(exc)))
            raise ReferenceUnavailable("transcriptome_index", name, str(exc), urls) from exc
        details.update(
            ensembl_release=found.release,
            assembly=found.assembly,
            division=found.division,
            fasta_kind=found.fasta_kind,
            kind="genome",
        )
        return ReferenceSource(
            "transcriptome_index",
            name,
            found.genome_fasta_url,
            f"ensembl {found.release}",
            package=f"{found.species.name} {found.assembly}",
            version=str(found.release),
            inputs={"gtf": found.gtf_url},
            tax_id=found.taxonomy_id,
            details=details,
        )

    def _locate_crosswalk(self, organism: str) -> ReferenceSource:
        from refine_assets.lib.survey.platforms import organism_by_name

        org = organism_by_name(organism)
        tax_id = self.overrides.crosswalk_tax_ids.get(organism) or (org.taxonomy_id if org else None)
        if organism in self.overrides.crosswalks:
            return self._override("crosswalk", organism, self.overrides.crosswalks[organism], tax_id=tax_id)
        package = orgdb_package(organism)
        entry = self._bioc("crosswalk", organism, package) if package else None
        if entry is not None:
            return ReferenceSource(
                "crosswalk",
                organism,
                entry.url,
                f"bioconductor {self.bioconductor.release}",
                entry.name,
                entry.version,
                tax_id=tax_id,
            )
        if tax_id is None:
            raise ReferenceUnavailable(
                "crosswalk",
                organism,
                "unknown organism (no NCBI taxonomy id in organisms.csv) and no Bioconductor organism package",
                absent=True,
            )
        info = gene_info_url(organism)
        return ReferenceSource(
            "crosswalk",
            organism,
            GENE2ENSEMBL_URL,
            "ncbi",
            "gene2ensembl",
            inputs={"gene_info": info} if info else {},
            tax_id=tax_id,
            note=None if info else "no NCBI gene_info file known for the organism: no symbol mapping",
        )


def split_index_name(name: str) -> tuple[str, str]:
    """``DANIO_RERIO_short`` -> (``DANIO_RERIO``, ``short``); ValueError for another shape."""
    organism, _, length = name.rpartition("_")
    if not organism or length not in LENGTHS:
        raise ValueError(f"not a transcriptome index name (ORGANISM_short|long): {name!r}")
    return organism, length


def _package_name(url: str) -> str:
    """``.../hgu95av2hsensgprobe_22.0.0.tar.gz`` -> ``hgu95av2hsensgprobe``."""
    base = url.rsplit("/", 1)[-1]
    return base.split("_", 1)[0] if base.endswith(".tar.gz") else base
