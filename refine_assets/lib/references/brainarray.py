"""Brainarray custom-CDF ENSG probe packages: which chip has one and where to download it.

refine.bio summarizes Affymetrix arrays by Brainarray's re-annotated probesets (Dai et al. 2005,
"Evolving gene/transcript definitions significantly alter the interpretation of GeneChip data",
Nucleic Acids Res. 33:e175), version **22.0.0**, ENSG flavour: each probeset ``ENSG..._at`` groups the
probes that align uniquely to one Ensembl gene. The packages are listed on Brainarray's download page
for a version and flavour, ``.../CustomCDF/<version>/ensg.asp``: an HTML page whose second table has
one row per chip, the chip name in column 3 and, in column 16 ("R Source Packages (C and P)"), two
links, the CDF package (C) and the probe package (P), e.g.
``/customcdf/22.0.0/ensg.download/hgu133plus2hsensgprobe_22.0.0.tar.gz``. refine.bio's image build
(``install_ensg_pkgs.R``) scrapes exactly that page and lower-cases the chip name with ``-``, ``_``
and spaces removed; :func:`parse_ensg_index` does the same in Python (stdlib ``html.parser``),
taking, in every table row with at least 16 cells, the link of column 16 whose file name ends in
``probe_<version>.tar.gz`` (else the second link), so a page re-laid out with extra tables still parses.

A probe package holds ``data/<pkg>.rda`` with a ``probetable`` data.frame (``sequence, x, y,
Probe.Set.Name, ...``) read by :func:`refine_assets.lib.affy.probes.read_probe_package`.

Nothing here imports dagster.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

from refine_assets.lib.http import HttpClient, HttpError

__all__ = [
    "DEFAULT_VERSION",
    "BrainarrayIndex",
    "BrainarrayIndexError",
    "chip_key",
    "ensg_index_url",
    "parse_ensg_index",
]

DEFAULT_VERSION = "22.0.0"


class BrainarrayIndexError(LookupError):
    """The Brainarray download page could not be read or parsed; the message names the URL."""


def ensg_index_url(version: str = DEFAULT_VERSION) -> str:
    """The ENSG download page of a Brainarray version (refine.bio's ``ensg_url``)."""
    return f"http://brainarray.mbni.med.umich.edu/Brainarray/Database/CustomCDF/{version}/ensg.asp"


def chip_key(name: str) -> str:
    """refine.bio's chip normalization: lower case, ``-``, ``_`` and spaces removed."""
    return re.sub(r"[-_ ]", "", name.strip().lower())


class _Tables(HTMLParser):
    """Collects every table row as a list of cells; a cell is (text, [hrefs])."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, list[str]]]] = []
        self._row: list[tuple[str, list[str]]] | None = None
        self._cell: tuple[list[str], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._close_row()
            self._row = []
        elif tag in ("td", "th"):
            self._close_cell()
            if self._row is None:
                self._row = []
            self._cell = ([], [])
        elif tag == "a" and self._cell is not None:
            href = dict(attrs).get("href")
            if href:
                self._cell[1].append(href.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._close_cell()
        elif tag in ("tr", "table"):
            self._close_row()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[0].append(data)

    def _close_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.append((" ".join("".join(self._cell[0]).split()), self._cell[1]))
        self._cell = None

    def _close_row(self) -> None:
        self._close_cell()
        if self._row:
            self.rows.append(self._row)
        self._row = None

    def close(self) -> None:
        super().close()
        self._close_row()


def parse_ensg_index(html: str, base_url: str, version: str = DEFAULT_VERSION) -> dict[str, str]:
    """Chip key (:func:`chip_key`) -> absolute URL of its ENSG probe package (see module docstring)."""
    parser = _Tables()
    parser.feed(html)
    parser.close()
    suffix = f"probe_{version}.tar.gz"
    out: dict[str, str] = {}
    for row in parser.rows:
        if len(row) < 16:
            continue
        chip = chip_key(row[2][0])
        links = row[15][1]
        probe = next((h for h in links if h.rsplit("/", 1)[-1].endswith(suffix)), None)
        if probe is None and len(links) >= 2:
            probe = links[1]
        if chip and probe:
            out[chip] = urljoin(base_url, probe)
    return out


class BrainarrayIndex:
    """The ENSG packages of one Brainarray version, read once through an :class:`HttpClient`."""

    def __init__(self, http: HttpClient, version: str = DEFAULT_VERSION):
        self.http = http
        self.version = version
        self._packages: dict[str, str] | None = None

    @property
    def index_url(self) -> str:
        return ensg_index_url(self.version)

    def packages(self) -> dict[str, str]:
        """Chip key -> probe package URL (fetched on first use).

        Raises:
            BrainarrayIndexError: the page could not be fetched or lists no package.
        """
        if self._packages is None:
            try:
                html = self.http.get(self.index_url).text
            except HttpError as exc:
                raise BrainarrayIndexError(
                    f"Brainarray {self.version} ENSG index unavailable: {exc}"
                ) from exc
            packages = parse_ensg_index(html, self.index_url, self.version)
            if not packages:
                raise BrainarrayIndexError(f"{self.index_url}: no ENSG probe package found on the page")
            self._packages = packages
        return self._packages

    def find(self, code: str) -> str | None:
        """The probe package URL of a platform code (``hgu133plus2``), or None when Brainarray has none."""
        return self.packages().get(chip_key(code))
