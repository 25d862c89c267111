"""Bioconductor annotation packages: where they are and which version a release holds.

Bioconductor publishes each release's annotation packages as source tarballs in a CRAN-style
repository (https://bioconductor.org/packages/<release>/data/annotation/src/contrib/). The
repository's ``PACKAGES`` file (the index R's ``available.packages()`` reads; "Writing R
Extensions" / ``tools::write_PACKAGES``) lists one stanza per package::

    Package: hgu95av2probe
    Version: 2.18.0
    Depends: R (>= 1.6.0), AnnotationDbi (>= 1.11.9)
    License: LGPL
    MD5sum: 8c5a7d0f3d3a3b1d3a2e1b0c9d8e7f6a
    NeedsCompilation: no

separated by blank lines. A package's tarball is ``<repository>/<Package>_<Version>.tar.gz``, so one
request for the index resolves every package of a release (the live path; in tests a recorded or
format-faithful ``PACKAGES`` is replayed under the same URL).

Packages used by refine-assets (names as Bioconductor spells them):

* ``<chip>probe`` (e.g. ``hgu95av2probe``, ``mouse4302probe``): Affymetrix perfect-match probe
  sequences and cell coordinates (``data/<chip>probe.rda``), what SCAN's background model needs;
* ``<chip>.db`` (``hgu95av2.db``): ChipDb annotation, probeset -> Entrez gene (``probes`` table);
* ``illumina<Org>v<N>.db``: Illumina BeadArray annotation (probe sequences, quality, genes);
* ``org.<Xx>.eg.db``: organism gene annotation keyed by Entrez gene (Ensembl, symbol, RefSeq, GenBank).

Nothing here imports dagster.
"""

from __future__ import annotations

from dataclasses import dataclass

from refine_assets.lib.http import HttpClient, HttpError
from refine_assets.lib.references.packages import description_fields

__all__ = [
    "DEFAULT_RELEASE",
    "BioconductorIndex",
    "BioconductorIndexError",
    "PackageEntry",
    "annotation_index_url",
    "annotation_repository",
    "parse_packages_index",
]

# Release whose annotation repository is read by default (configurable per deployment:
# ``reference_sources.bioconductor_release``). Annotation packages change rarely between releases.
DEFAULT_RELEASE = "3.20"


class BioconductorIndexError(LookupError):
    """The release's package index could not be read; the message names the URL."""


@dataclass(frozen=True)
class PackageEntry:
    """One package of a repository index: name, version, tarball URL and the index it came from."""

    name: str
    version: str
    url: str
    index_url: str
    md5: str | None = None


def annotation_repository(release: str = DEFAULT_RELEASE) -> str:
    """The annotation repository of a release (no trailing slash)."""
    return f"https://bioconductor.org/packages/{release}/data/annotation/src/contrib"


def annotation_index_url(release: str = DEFAULT_RELEASE) -> str:
    """URL of the ``PACKAGES`` index of a release's annotation repository."""
    return f"{annotation_repository(release)}/PACKAGES"


def parse_packages_index(text: str) -> dict[str, dict[str, str]]:
    """Stanzas of a ``PACKAGES`` file by package name (blank-line separated ``Field: value`` blocks).

    A package listed twice keeps its last stanza (as ``available.packages`` does for one repository).
    Stanzas without ``Package`` or ``Version`` are ignored.
    """
    out: dict[str, dict[str, str]] = {}
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = description_fields(block)
        if fields.get("Package") and fields.get("Version"):
            out[fields["Package"]] = fields
    return out


class BioconductorIndex:
    """A release's annotation repository, read once through an :class:`HttpClient` and cached."""

    def __init__(self, http: HttpClient, release: str = DEFAULT_RELEASE):
        self.http = http
        self.release = release
        self._packages: dict[str, dict[str, str]] | None = None

    @property
    def index_url(self) -> str:
        return annotation_index_url(self.release)

    def packages(self) -> dict[str, dict[str, str]]:
        """All stanzas of the index (fetched on first use).

        Raises:
            BioconductorIndexError: the index could not be fetched (network, not recorded, HTTP error)
                or holds no package.
        """
        if self._packages is None:
            try:
                text = self.http.get(self.index_url).text
            except HttpError as exc:
                raise BioconductorIndexError(
                    f"Bioconductor {self.release} annotation index unavailable: {exc}"
                ) from exc
            packages = parse_packages_index(text)
            if not packages:
                raise BioconductorIndexError(f"{self.index_url}: no package stanza in the index")
            self._packages = packages
        return self._packages

    def find(self, name: str) -> PackageEntry | None:
        """The entry of package ``name`` (exact name), or None when the release does not have it."""
        fields = self.packages().get(name)
        if fields is None:
            return None
        version = fields["Version"]
        return PackageEntry(
            name=name,
            version=version,
            url=f"{annotation_repository(self.release)}/{name}_{version}.tar.gz",
            index_url=self.index_url,
            md5=fields.get("MD5sum"),
        )
