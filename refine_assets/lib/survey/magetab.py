"""Parsers for MAGE-TAB: the IDF (investigation description) and SDRF (sample and data relationships).

ArrayExpress (now the BioStudies ``ArrayExpress`` collection) describes every experiment with two
tab-separated files:

* the **IDF** ``<acc>.idf.txt``: one row per field, the field name in the first cell and its values in
  the following cells (``Investigation Title``, ``Person Affiliation``, ``PubMed ID``,
  ``Comment[SecondaryAccession]`` ...). :func:`parse_idf` returns an :class:`Idf`, a read-only
  mapping of key -> list of values with case- and spacing-insensitive lookup.
* the **SDRF** ``<acc>.sdrf.txt``: a table with one row per (material, assay, data file) chain.
  Column names repeat legitimately (several ``Protocol REF``, ``Term Source REF``, ``Comment[...]``,
  ``Characteristics[...]``, ``Factor Value[...]``, ``Parameter Value[...]``), so a row is kept as the
  ordered list of ``(header, value)`` pairs of *every* column (:class:`SdrfRow`) with accessors on
  top. refine.bio turned each row into a dict (``harmony.parse_sdrf``), so repeated columns
  overwrote each other; nothing is lost here.

Both parsers accept ``str`` or ``bytes`` (UTF-8 with or without BOM, falling back to Latin-1),
Windows/Mac/Unix line endings, ``#`` comment lines, blank lines, and values wrapped in double
quotes (``"a ""quoted"" value"``). Quoted values cannot span lines. Values are stripped of
surrounding white space (ArrayExpress writes two spaces for an empty cell).

Errors: malformed input raises :class:`ValueError` whose message starts with the ``source`` name
given by the caller (file name or URL): an empty file, an IDF without any known IDF field, an SDRF
whose data rows do not have as many cells as the header, an SDRF without a ``Source Name`` /
``Sample Name`` column or without an ``Assay Name`` / ``Hybridization Name`` / ``Scan Name`` column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

# IDF fields of MAGE-TAB 1.0/1.1: a parsed IDF must contain at least one of them.
_KNOWN_IDF_KEYS = frozenset(
    {
        "mage-tab version",
        "investigation title",
        "experiment description",
        "sdrf file",
        "public release date",
        "person last name",
        "protocol name",
        "experimental design",
        "experimental factor name",
        "term source name",
        "date of experiment",
    }
)

# Columns that name a material (the start of an SDRF chain) and an assay (hybridization/run).
SOURCE_NAME_COLUMNS = ("source name", "sample name")
ASSAY_NAME_COLUMNS = ("assay name", "hybridization name", "scan name")

_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_SPACES = re.compile(r"\s+")


def decode_text(data: str | bytes) -> str:
    """Text of a MAGE-TAB file: bytes decoded as UTF-8 (BOM removed), else Latin-1; a str BOM removed."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        text = data
    return text.lstrip("\ufeff")


def normalize_key(key: str) -> str:
    """Lookup form of an IDF key or SDRF header: lower case, single spaces, no space around brackets.

    ``FactorValue`` becomes ``factor value``, ``Characteristic`` ``characteristics`` and ``Comments``
    ``comment``, so that the spellings found in real files compare equal:

    >>> normalize_key("Characteristics [Organism Part]")
    'characteristics[organism part]'
    >>> normalize_key("FactorValue [dose]")
    'factor value[dose]'
    >>> normalize_key(" Comment[ArrayExpress FTP file] ")
    'comment[arrayexpress ftp file]'
    """
    key = _SPACES.sub(" ", key.strip().lower())
    key = re.sub(r"\s*\[\s*", "[", key)
    key = re.sub(r"\s*\]", "]", key)
    key = re.sub(r"^factorvalue\b", "factor value", key)
    key = re.sub(r"^characteristic\[", "characteristics[", key)
    key = re.sub(r"^comments\[", "comment[", key)
    key = re.sub(r"^parametervalue\b", "parameter value", key)
    return key


def bracket_name(header: str) -> str | None:
    """The text inside the brackets of ``Kind[name]`` headers, stripped; None without brackets.

    >>> bracket_name("Characteristics [organism part]")
    'organism part'
    """
    match = re.search(r"\[(.*)\]", header)
    return match.group(1).strip() if match else None


def _unquote(cell: str) -> str:
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == '"' and cell[-1] == '"':
        cell = cell[1:-1].replace('""', '"').strip()
    return cell


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, cells) of every non-blank, non-comment line."""
    for number, line in enumerate(_LINE_SPLIT.split(text), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        yield number, [_unquote(c) for c in line.split("\t")]


# --------------------------------------------------------------------------------------------------
# IDF


class Idf(Mapping[str, list[str]]):
    """A parsed IDF: key (as first written in the file) -> values, looked up case-insensitively.

    Trailing empty cells are dropped; empty cells between values are kept as ``""`` because IDF
    columns are positional (the n-th ``Person Affiliation`` belongs to the n-th ``Person Last Name``).
    A key that appears on several rows (``Comment[AdditionalFile:DAT]``) has its values appended.
    """

    def __init__(self, source: str):
        self.source = source
        self._values: dict[str, list[str]] = {}
        self._keys: dict[str, str] = {}  # normalized -> original spelling

    def _add(self, key: str, values: list[str]) -> None:
        norm = normalize_key(key)
        if norm not in self._keys:
            self._keys[norm] = key
            self._values[norm] = []
        self._values[norm].extend(values)

    def __getitem__(self, key: str) -> list[str]:
        return self._values[normalize_key(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and normalize_key(key) in self._values

    def values_of(self, key: str) -> list[str]:
        """The non-empty values of ``key`` (empty list when the key is absent)."""
        return [v for v in self._values.get(normalize_key(key), []) if v]

    def first(self, key: str) -> str | None:
        """The first non-empty value of ``key``, or None."""
        values = self.values_of(key)
        return values[0] if values else None


def parse_idf(data: str | bytes, source: str = "IDF") -> Idf:
    """Parse an IDF file into an :class:`Idf` (key -> list of values).

    ``source`` names the file in error messages. Raises :class:`ValueError` when the file is empty
    or has none of the standard IDF fields (e.g. an HTML error page served instead of the file).
    """
    text = decode_text(data)
    idf = Idf(source)
    for _number, cells in _records(text):
        key = cells[0]
        if not key or (key.startswith("[") and key.endswith("]")):  # "[IDF]" section marker
            continue
        values = cells[1:]
        while values and not values[-1]:
            values.pop()
        idf._add(key, values)
    if not len(idf):
        raise ValueError(f"{source}: empty IDF (no key/value rows)")
    if not any(normalize_key(k) in _KNOWN_IDF_KEYS for k in idf):
        first = next(iter(idf))[:60]
        raise ValueError(f"{source}: not a MAGE-TAB IDF (no standard IDF field; first key {first!r})")
    return idf


# --------------------------------------------------------------------------------------------------
# SDRF


@dataclass
class SdrfRow:
    """One SDRF data row: every ``(header, value)`` pair in column order, headers as written.

    ``line`` is the 1-based line number in the file. Values are stripped; an empty cell is ``""``.
    """

    cells: list[tuple[str, str]]
    line: int = 0
    _norm: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self._norm:
            self._norm = [normalize_key(h) for h, _ in self.cells]

    def values(self, header: str) -> list[str]:
        """Values of every column named ``header`` (spelling-insensitive), empty ones included."""
        norm = normalize_key(header)
        return [v for n, (_, v) in zip(self._norm, self.cells, strict=True) if n == norm]

    def get(self, header: str, default: str | None = None) -> str | None:
        """The first non-empty value of the columns named ``header``, else ``default``."""
        for value in self.values(header):
            if value:
                return value
        return default

    def first_of(self, headers: tuple[str, ...] | list[str]) -> str | None:
        """The first non-empty value among ``headers``, tried in the given order."""
        for header in headers:
            value = self.get(header)
            if value:
                return value
        return None

    def prefixed(self, kind: str) -> list[tuple[str, str]]:
        """``(name in brackets, value)`` of the columns ``kind[...]`` in order, e.g. ``Characteristics``.

        ``kind`` is normalized like headers (``Factor Value`` matches ``FactorValue [dose]``).
        """
        prefix = normalize_key(kind) + "["
        out = []
        for norm, (header, value) in zip(self._norm, self.cells, strict=True):
            if norm.startswith(prefix):
                out.append((bracket_name(header) or "", value))
        return out

    def characteristics(self) -> list[tuple[str, str]]:
        """``(category, value)`` of the ``Characteristics[...]`` columns."""
        return self.prefixed("Characteristics")

    def factor_values(self) -> list[tuple[str, str]]:
        """``(factor, value)`` of the ``Factor Value[...]`` columns."""
        return self.prefixed("Factor Value")

    def comments(self) -> list[tuple[str, str]]:
        """``(name, value)`` of the ``Comment[...]`` columns."""
        return self.prefixed("Comment")

    def characteristic(self, category: str) -> str | None:
        """First non-empty ``Characteristics[category]`` value (category case-insensitive)."""
        return self.get(f"Characteristics[{category}]")

    @property
    def source_name(self) -> str | None:
        """``Source Name`` (or ``Sample Name``)."""
        return self.first_of(SOURCE_NAME_COLUMNS)

    @property
    def assay_name(self) -> str | None:
        """``Assay Name`` (MAGE-TAB 1.1), ``Hybridization Name`` (1.0) or ``Scan Name``."""
        return self.first_of(ASSAY_NAME_COLUMNS)

    def normalized_headers(self) -> list[str]:
        return list(self._norm)


@dataclass
class Sdrf:
    """A parsed SDRF: the header row as written and the data rows."""

    source: str
    headers: list[str]
    rows: list[SdrfRow]

    def has_column(self, header: str) -> bool:
        norm = normalize_key(header)
        return any(normalize_key(h) == norm for h in self.headers)

    def column(self, header: str) -> list[str]:
        """The first non-empty value of ``header`` in every row (``""`` where none)."""
        return [row.get(header, "") or "" for row in self.rows]


def parse_sdrf(data: str | bytes, source: str = "SDRF") -> Sdrf:
    """Parse an SDRF file into an :class:`Sdrf` that keeps every column of every row.

    Trailing empty header cells are ignored, and so are trailing cells of a data row beyond the
    header when they are empty. Raises :class:`ValueError` (message starts with ``source``) when the
    file is empty or has no data rows, when a data row has a different number of cells than the
    header (truncated or garbled file; the line number is given), or when the header lacks a
    ``Source Name``/``Sample Name`` column or an ``Assay Name``/``Hybridization Name``/``Scan Name``
    column.
    """
    text = decode_text(data)
    records = iter(_records(text))
    try:
        _header_line, headers = next(records)
    except StopIteration:
        raise ValueError(f"{source}: empty SDRF") from None
    while headers and not headers[-1]:
        headers.pop()
    norm_headers = [normalize_key(h) for h in headers]
    if not any(h in SOURCE_NAME_COLUMNS for h in norm_headers):
        raise ValueError(
            f"{source}: SDRF has no 'Source Name' or 'Sample Name' column (header starts {headers[:4]!r})"
        )
    if not any(h in ASSAY_NAME_COLUMNS for h in norm_headers):
        raise ValueError(f"{source}: SDRF has no 'Assay Name', 'Hybridization Name' or 'Scan Name' column")
    if any(not h for h in headers):
        raise ValueError(f"{source}: SDRF header has an empty column name at column {headers.index('') + 1}")
    rows = []
    for number, cells in records:
        if len(cells) > len(headers) and not any(cells[len(headers) :]):
            cells = cells[: len(headers)]
        if len(cells) != len(headers):
            raise ValueError(
                f"{source}: line {number} has {len(cells)} cells but the header has {len(headers)} columns"
            )
        rows.append(SdrfRow(list(zip(headers, cells, strict=True)), number, list(norm_headers)))
    if not rows:
        raise ValueError(f"{source}: SDRF has a header but no data rows")
    return Sdrf(source, headers, rows)
