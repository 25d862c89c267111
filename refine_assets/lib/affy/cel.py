"""Affymetrix CEL readers (text v3, binary XDA v4, Command Console "Calvin") and an XDA v4 writer.

Contract
--------
:func:`read_cel` takes a path or the file's bytes, plain or gzip (recognised by the gzip magic
``1f 8b``, never by the file name), sniffs the format from the content and returns a
:class:`CelFile` whose ``intensities`` are float64 in **cell-index order**: the value of the cell at
0-based (x, y) is at ``x + cols * y`` (= the pd-package ``fid - 1``; methods spec section 3). A file
that cannot be read completely raises :class:`CelFormatError` (a ``ValueError``) naming the file and
the problem; there is never a partial result.

Formats (methods spec sections 3.1-3.3, following Bioconductor ``affyio`` 1.48 ``read_abatch.c`` /
``read_generic.c`` and the Affymetrix file-format documentation):

* ``text-v3``: INI-like ``[CEL]``/``[HEADER]``/``[INTENSITY]``/``[MASKS]``/``[OUTLIERS]``/
  ``[MODIFIED]`` sections; CRLF or LF; rows of whitespace-separated numbers (tabs or spaces,
  leading spaces). The rows are parsed by :mod:`refine_assets.lib.affy.text_table` with numpy
  only (vectorized, nothing heavy imported on the read path), correctly rounded like affyio's
  ``atof``: values are bit-identical to ``float(token)`` and to affyio 1.68 itself (tolerance 0;
  verified over all cells of C30057 against both, and random 1- to 17-digit decimals).
* ``xda-v4``: little-endian, magic 64, version 4; cell records (float32 mean, float32 stdev, int16
  pixels) read with one ``numpy.frombuffer``; float32 widened exactly to float64.
* ``calvin``: big-endian generic data file, magic 59, version 1; header parameters
  (name, typed value, MIME type), parent-header chain searched depth first; data sets located through
  their file offsets (not assumed contiguous); ``Intensity``/``StdDev`` float32, ``Pixel`` int16.

Chip type: the raw header value. Text/XDA: the first token of ``DatHeader`` (split on spaces and the
0x14 separator bytes) ending in ``.1sq``, minus that suffix (affyio); Calvin: parameter
``affymetrix-array-type`` (falling back to the DatHeader rule on ``affymetrix-dat-header``).
``platform`` is :func:`refine_assets.lib.survey.platforms.platform_code_from_chip_type` of it (no
``v1``/``v2`` stripping, unlike refine.bio; see ``docs/affymetrix-formats.md``).

Tolerances and deliberate choices (documented in ``docs/affymetrix-formats.md``):

* v3 INTENSITY rows are placed by their own X, Y (not by line number). ``NumberCells`` must equal
  Cols*Rows; the number of data rows may differ from it only if every cell of the grid is given at
  least once: duplicates are resolved "last row wins" (what Biopython does with its hand-edited
  example) with a :class:`CelWarning`. A missing cell, a coordinate outside the grid, a short or
  non-numeric row is an error.
* v4 whose declared header length does not lead to a consistent algorithm/parameter/count block (the
  Biopython example): the cell block is located from the end of the file instead - the first offset
  ``p`` after the header where the four int32 (cell margin, outliers, masks, sub-grids) make
  ``p + 16 + 10*cells + 4*(outliers+masks) + 56*subgrids`` equal the file size - with a warning;
  the algorithm name and parameters then come from the header's ``Algorithm=`` and
  ``AlgorithmParameters=`` lines.
* v4 dimensions: affyio reads rows then cols, the Affymetrix document cols then rows; when the header
  text has ``Rows=``/``Cols=`` lines they decide, otherwise affyio's order is used.
* Intensities must be finite in every format; v4 additionally rejects means < 0 or > 65536 as affyio
  does ("corrupted"), which also catches a misaligned cell block.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refine_assets.lib.affy.text_table import TextTableError, parse_number_table
from refine_assets.lib.gz import gunzip
from refine_assets.lib.survey import platforms

FORMAT_TEXT = "text-v3"
FORMAT_XDA = "xda-v4"
FORMAT_CALVIN = "calvin"
FORMATS = (FORMAT_TEXT, FORMAT_XDA, FORMAT_CALVIN)

XDA_MAGIC = 64
CALVIN_MAGIC = 59
GZIP_MAGIC = b"\x1f\x8b"

#: Bytes of one sub-grid record of a v4 file (2 int32, 8 float32, 4 int32; Affymetrix CEL v4 document).
#: Only used to locate the cell block when the declared header length is wrong.
XDA_SUBGRID_BYTES = 56
#: affyio's sanity bounds for a v4 cell mean.
XDA_MAX_MEAN = 65536.0

_XDA_CELL_DTYPE = np.dtype([("mean", "<f4"), ("stdev", "<f4"), ("npixels", "<i2")])


class CelFormatError(ValueError):
    """A CEL file that cannot be read completely; the message names the file and the problem."""


class CelWarning(UserWarning):
    """A CEL file that was read with a documented, tolerant repair (see :class:`CelFile.warnings`)."""


@dataclass(frozen=True, eq=False)
class CelFile:
    """One Affymetrix array scan.

    ``intensities``/``stdev``/``npixels`` have length ``rows * cols`` in cell-index order (index =
    x + cols*y). ``masks``/``outliers`` are int32 arrays of shape (n, 2) of (x, y); ``modified`` is
    float64 (n, 3) of (x, y, original mean) (text v3 only; empty otherwise). ``header`` holds the
    text header keys (v3 ``[HEADER]``, v4 header lines) or, for Calvin, every header parameter
    (top header first, then parents depth first; first occurrence wins) as strings.
    ``scan_date`` is ISO 8601 where it could be parsed (v3/v4 DatHeader ``MM/DD/YY hh:mm:ss``,
    two-digit years < 70 read as 20yy), else the raw text, else None.
    """

    format: str
    chip_type: str
    platform: str
    rows: int
    cols: int
    intensities: np.ndarray
    stdev: np.ndarray
    npixels: np.ndarray
    masks: np.ndarray
    outliers: np.ndarray
    modified: np.ndarray
    header: dict[str, str]
    algorithm: str
    algorithm_parameters: dict[str, str]
    scan_date: str | None
    source: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def num_cells(self) -> int:
        """``rows * cols``."""
        return self.rows * self.cols

    @property
    def internal_code(self) -> str | None:
        """The supported-platforms internal code of the chip (``hgu95av2``), or None if unsupported."""
        return platforms.internal_code_for_chip_type(self.chip_type)

    @property
    def float32_values(self) -> bool:
        """True when the file stores means/stdevs as float32 (XDA, Calvin), i.e. float32 is lossless."""
        return self.format != FORMAT_TEXT

    def cell_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) int32 arrays of every cell in index order."""
        index = np.arange(self.num_cells, dtype=np.int64)
        return (index % self.cols).astype(np.int32), (index // self.cols).astype(np.int32)

    def cell_index(self, x: np.ndarray | int, y: np.ndarray | int) -> np.ndarray | int:
        """Cell index of 0-based (x, y): ``x + cols * y`` (no range check)."""
        return np.asarray(x, dtype=np.int64) + self.cols * np.asarray(y, dtype=np.int64)

    def info(self) -> dict[str, object]:
        """Summary fields (what ``refine-assets cel-info`` prints)."""
        return {
            "source": self.source,
            "format": self.format,
            "chip_type": self.chip_type,
            "platform": self.platform,
            "internal_code": self.internal_code,
            "rows": self.rows,
            "cols": self.cols,
            "num_cells": self.num_cells,
            "num_masks": int(self.masks.shape[0]),
            "num_outliers": int(self.outliers.shape[0]),
            "num_modified": int(self.modified.shape[0]),
            "scan_date": self.scan_date,
            "algorithm": self.algorithm,
            "warnings": list(self.warnings),
        }


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def read_cel(source: str | Path | bytes, *, name: str | None = None) -> CelFile:
    """Read a CEL file of any of the three formats, plain or gzip.

    ``source`` is a path or the raw (possibly gzip) bytes; ``name`` labels the file in errors and in
    ``CelFile.source`` (default: the path, or ``"<bytes>"``). Raises :class:`CelFormatError` for an
    empty, truncated or corrupt file, wrong magic, inconsistent dimensions or a missing chip type;
    ``FileNotFoundError`` if the path does not exist. Tolerant repairs emit :class:`CelWarning` and
    are listed in ``CelFile.warnings``.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        label = name or "<bytes>"
    else:
        path = Path(source)
        label = name or str(path)
        raw = path.read_bytes()
    data = _maybe_gunzip(raw, label)
    fmt = sniff_format(data, label)
    notes: list[str] = []
    if fmt == FORMAT_TEXT:
        cel = _parse_text_v3(data, label, notes)
    elif fmt == FORMAT_XDA:
        cel = _parse_xda_v4(data, label, notes)
    else:
        cel = _parse_calvin(data, label, notes)
    for note in notes:
        warnings.warn(f"{label}: {note}", CelWarning, stacklevel=2)
    return cel


def sniff_format(data: bytes, name: str = "<bytes>") -> str:
    """The format of (already decompressed) CEL bytes, in affyio's order: text, XDA v4, Calvin."""
    if not data:
        raise CelFormatError(f"{name}: empty file")
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"[CEL]"):
        return FORMAT_TEXT
    if len(data) >= 8 and struct.unpack_from("<i", data, 0)[0] == XDA_MAGIC:
        version = struct.unpack_from("<i", data, 4)[0]
        if version != 4:
            raise CelFormatError(
                f"{name}: binary CEL (magic 64) of unsupported version {version}, expected 4"
            )
        return FORMAT_XDA
    if data[0] == CALVIN_MAGIC:
        if len(data) < 2 or data[1] != 1:
            version = data[1] if len(data) > 1 else "missing"
            raise CelFormatError(
                f"{name}: Calvin file (magic 59) of unsupported version {version}, expected 1"
            )
        return FORMAT_CALVIN
    raise CelFormatError(
        f"{name}: not a CEL file (starts with {data[:8]!r}; expected '[CEL]', int32 magic 64 or byte 59)"
    )


def _maybe_gunzip(raw: bytes, name: str) -> bytes:
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gunzip(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise CelFormatError(f"{name}: truncated or corrupt gzip stream ({exc})") from exc


def _finish(
    *,
    fmt: str,
    chip_type: str,
    rows: int,
    cols: int,
    intensities: np.ndarray,
    stdev: np.ndarray,
    npixels: np.ndarray,
    masks: np.ndarray,
    outliers: np.ndarray,
    modified: np.ndarray | None,
    header: dict[str, str],
    algorithm: str,
    algorithm_parameters: dict[str, str],
    scan_date: str | None,
    name: str,
    notes: list[str],
) -> CelFile:
    try:
        platform = platforms.platform_code_from_chip_type(chip_type)
    except ValueError as exc:
        raise CelFormatError(f"{name}: unusable chip type {chip_type!r}") from exc
    intensities = np.ascontiguousarray(intensities, dtype=np.float64)
    if not np.isfinite(intensities).all():
        bad = int(np.flatnonzero(~np.isfinite(intensities))[0])
        raise CelFormatError(f"{name}: non-finite intensity at cell {bad} (x={bad % cols}, y={bad // cols})")
    return CelFile(
        format=fmt,
        chip_type=chip_type,
        platform=platform,
        rows=rows,
        cols=cols,
        intensities=intensities,
        stdev=np.ascontiguousarray(stdev, dtype=np.float64),
        npixels=np.ascontiguousarray(npixels, dtype=np.int32),
        masks=np.ascontiguousarray(masks, dtype=np.int32).reshape(-1, 2),
        outliers=np.ascontiguousarray(outliers, dtype=np.int32).reshape(-1, 2),
        modified=(
            np.zeros((0, 3))
            if modified is None
            else np.ascontiguousarray(modified, np.float64).reshape(-1, 3)
        ),
        header=header,
        algorithm=algorithm,
        algorithm_parameters=algorithm_parameters,
        scan_date=scan_date,
        source=name,
        warnings=tuple(notes),
    )


# ------------------------------------------------------------------------------------------------
# Shared header helpers
# ------------------------------------------------------------------------------------------------

_DAT_TOKEN_SPLIT = re.compile(r"[ \x14]+")
_DAT_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})")


def chip_type_from_dat_header(dat_header: str | None) -> str | None:
    """The chip type in a DatHeader: first token ending in ``.1sq`` minus the suffix (affyio), or None."""
    if not dat_header:
        return None
    for token in _DAT_TOKEN_SPLIT.split(dat_header):
        if len(token) > 4 and token.lower().endswith(".1sq"):
            return token[:-4]
    return None


def _scan_date_from_dat_header(dat_header: str | None) -> str | None:
    if not dat_header:
        return None
    m = _DAT_DATE.search(dat_header)
    if not m:
        return None
    month, day, year, hh, mm, ss = (int(g) for g in m.groups())
    if year < 100:
        year += 2000 if year < 70 else 1900
    if not (1 <= month <= 12 and 1 <= day <= 31 and hh < 24 and mm < 60 and ss < 62):
        return m.group(0)
    return f"{year:04d}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}"


def parse_algorithm_parameters(text: str | None) -> dict[str, str]:
    """``k:v;k:v`` (v3/v4 ``AlgorithmParameters``) as a dict; split on the first ``:`` of each item."""
    out: dict[str, str] = {}
    for item in (text or "").split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(":")
        out[key.strip()] = value.strip()
    return out


def _header_int(header: dict[str, str], key: str, name: str) -> int | None:
    value = header.get(key)
    if value is None or not value.strip():
        return None
    try:
        number = int(value.strip())
    except ValueError as exc:
        raise CelFormatError(f"{name}: header {key}={value!r} is not an integer") from exc
    return number


def _require_chip_type(dat_header: str | None, name: str) -> str:
    chip = chip_type_from_dat_header(dat_header)
    if chip is None:
        raise CelFormatError(
            f"{name}: no chip type: the DatHeader has no '<chip>.1sq' token ({(dat_header or '')[:120]!r})"
        )
    return chip


# ------------------------------------------------------------------------------------------------
# Version 3 (text)
# ------------------------------------------------------------------------------------------------

_SECTION_RE = re.compile(rb"[ \t]*\[([A-Za-z]+)\][ \t]*\r?$", re.M)
_KEY_LINES_RE = re.compile(rb"(?:[ \t]*[A-Za-z][\w\-]*[ \t]*=[^\n]*(?:\n|\Z)|[ \t]*\r?\n)*")


def _section_headers(data: bytes) -> list[tuple[str, int, int]]:
    """(name, line start, line end) of every ``[Name]`` line; jumps from ``[`` to ``[`` (memchr speed)."""
    found = []
    pos = data.find(b"[")
    while pos >= 0:
        line_start = data.rfind(b"\n", 0, pos) + 1
        if not data[line_start:pos].strip(b" \t"):
            m = _SECTION_RE.match(data, line_start)
            if m:
                found.append((m.group(1).decode("ascii").upper(), line_start, m.end()))
        next_line = data.find(b"\n", pos)
        if next_line < 0:
            break
        pos = data.find(b"[", next_line)
    return found


def _text_sections(data: bytes) -> dict[str, tuple[bytes, memoryview]]:
    """Section name (upper case) -> (key-value part, data part) of its body; first occurrence wins.

    The data part is a view into ``data`` (the INTENSITY rows are most of the file: no copy).
    """
    matches = _section_headers(data)
    view = memoryview(data)
    out: dict[str, tuple[bytes, memoryview]] = {}
    for i, (section, _, header_end) in enumerate(matches):
        if section in out:
            continue
        body_start = header_end + 1
        body_end = matches[i + 1][1] if i + 1 < len(matches) else len(data)
        body_end = max(body_start, body_end)
        key_part = _KEY_LINES_RE.match(data, body_start, body_end)
        split = key_part.end() if key_part else body_start
        out[section] = (data[body_start:split], view[split:body_end])
    return out


def _key_values(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("latin-1").splitlines():
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), value.rstrip("\r\n").strip(" "))
    return out


def _parse_number_table(block: bytes, ncols: int, what: str, name: str) -> np.ndarray:
    """Whitespace-separated numeric rows -> float64 (n, ncols), correctly rounded; errors name the file."""
    try:
        table = parse_number_table(block, ncols)
    except TextTableError as exc:
        raise CelFormatError(f"{name}: malformed {what} rows: {exc}") from exc
    if table.size and np.isnan(table).any():
        row = int(np.flatnonzero(np.isnan(table).any(axis=1))[0])
        raise CelFormatError(
            f"{name}: {what} row {row + 1} has fewer than {ncols} values (file truncated or corrupt?)"
        )
    return table


def _integral_coords(table: np.ndarray, rows: int, cols: int, what: str, name: str) -> np.ndarray:
    xy = table[:, :2]
    if xy.size and (not np.array_equal(xy, np.round(xy))):
        raise CelFormatError(f"{name}: {what} has non-integer X/Y values")
    xy = xy.astype(np.int64)
    bad = (xy[:, 0] < 0) | (xy[:, 0] >= cols) | (xy[:, 1] < 0) | (xy[:, 1] >= rows)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CelFormatError(
            f"{name}: {what} row {i + 1} has cell ({xy[i, 0]}, {xy[i, 1]}) outside the {cols}x{rows} grid"
        )
    return xy


def _number_cells(keys: dict[str, str], section: str, name: str) -> int:
    value = keys.get("NumberCells")
    if value is None:
        raise CelFormatError(f"{name}: [{section}] has no NumberCells line (file truncated?)")
    try:
        return int(value)
    except ValueError as exc:
        raise CelFormatError(f"{name}: [{section}] NumberCells={value!r} is not an integer") from exc


def _coordinate_section(
    sections: dict[str, tuple[bytes, bytes]],
    section: str,
    ncols: int,
    rows: int,
    cols: int,
    name: str,
    *,
    required: bool,
) -> np.ndarray | None:
    if section not in sections:
        if required:
            raise CelFormatError(f"{name}: no [{section}] section (file truncated?)")
        return None
    keys_block, rows_block = sections[section]
    expected = _number_cells(_key_values(keys_block), section, name)
    table = _parse_number_table(rows_block, ncols, f"[{section}]", name)
    if table.shape[0] != expected:
        raise CelFormatError(
            f"{name}: [{section}] NumberCells={expected} but {table.shape[0]} rows (file truncated or corrupt?)"
        )
    xy = _integral_coords(table, rows, cols, f"[{section}]", name)
    if ncols == 2:
        return xy
    out = table.copy()
    out[:, :2] = xy
    return out


def _parse_text_v3(data: bytes, name: str, notes: list[str]) -> CelFile:
    sections = _text_sections(data)
    cel_keys = _key_values(sections.get("CEL", (b"", b""))[0])
    version = cel_keys.get("Version", "3").strip()
    if version != "3":
        raise CelFormatError(f"{name}: text CEL of version {version!r}, only version 3 is supported")
    if "HEADER" not in sections:
        raise CelFormatError(f"{name}: no [HEADER] section")
    header = _key_values(sections["HEADER"][0] + bytes(sections["HEADER"][1]))
    cols = _header_int(header, "Cols", name)
    rows = _header_int(header, "Rows", name)
    if cols is None or rows is None or cols <= 0 or rows <= 0:
        raise CelFormatError(f"{name}: [HEADER] needs positive Cols and Rows (got Cols={cols}, Rows={rows})")
    ncells = rows * cols
    chip_type = _require_chip_type(header.get("DatHeader"), name)

    if "INTENSITY" not in sections:
        raise CelFormatError(f"{name}: no [INTENSITY] section (file truncated?)")
    keys_block, rows_block = sections["INTENSITY"]
    declared = _number_cells(_key_values(keys_block), "INTENSITY", name)
    if declared != ncells:
        raise CelFormatError(
            f"{name}: [INTENSITY] NumberCells={declared} but Cols*Rows = {cols}*{rows} = {ncells}"
        )
    table = _parse_number_table(rows_block, 5, "[INTENSITY]", name)
    xy = _integral_coords(table, rows, cols, "[INTENSITY]", name)
    index = xy[:, 0] + cols * xy[:, 1]
    nrows_data = table.shape[0]
    if nrows_data == ncells and np.array_equal(index, np.arange(ncells)):
        values = table
    else:
        # Place rows by their own coordinates; the last row for a cell wins (Biopython's behaviour).
        reversed_index = index[::-1]
        unique, first_in_reversed = np.unique(reversed_index, return_index=True)
        if unique.size != ncells:
            missing = np.setdiff1d(np.arange(ncells), unique)
            first = int(missing[0])
            raise CelFormatError(
                f"{name}: [INTENSITY] has {nrows_data} rows covering {unique.size} of {ncells} cells; "
                f"{missing.size} missing, first ({first % cols}, {first // cols}) (file truncated?)"
            )
        last_rows = nrows_data - 1 - first_in_reversed
        values = table[last_rows]
        duplicates = nrows_data - ncells
        note = f"[INTENSITY] has {nrows_data} rows for NumberCells={declared}"
        if duplicates:
            note += f"; {duplicates} rows repeat a cell, the last row for each cell was kept"
        else:
            note += "; rows are out of cell-index order and were placed by their X, Y"
        notes.append(note)
    npixels = values[:, 4]
    if not np.array_equal(npixels, np.round(npixels)):
        raise CelFormatError(f"{name}: [INTENSITY] NPIXELS values are not integers")

    masks = _coordinate_section(sections, "MASKS", 2, rows, cols, name, required=True)
    outliers = _coordinate_section(sections, "OUTLIERS", 2, rows, cols, name, required=True)
    modified = _coordinate_section(sections, "MODIFIED", 3, rows, cols, name, required=False)
    return _finish(
        fmt=FORMAT_TEXT,
        chip_type=chip_type,
        rows=rows,
        cols=cols,
        intensities=values[:, 2],
        stdev=values[:, 3],
        npixels=npixels.astype(np.int32),
        masks=masks,
        outliers=outliers,
        modified=modified,
        header=header,
        algorithm=header.get("Algorithm", ""),
        algorithm_parameters=parse_algorithm_parameters(header.get("AlgorithmParameters")),
        scan_date=_scan_date_from_dat_header(header.get("DatHeader")),
        name=name,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------------
# Version 4 (binary XDA, little-endian)
# ------------------------------------------------------------------------------------------------


def _xda_header_dict(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), value.strip(" \r\x00"))
    return out


def _printable(raw: bytes) -> bool:
    return all(b >= 32 or b in (9, 10, 13, 0x14) for b in raw)


@dataclass(frozen=True)
class _XdaLayout:
    cells_at: int
    n_outliers: int
    n_masks: int
    algorithm: str | None
    parameters: str | None


def _xda_counts_ok(counts: tuple[int, int, int, int], ncells: int) -> bool:
    margin, n_out, n_mask, n_sub = counts
    return 0 <= margin <= 1000 and 0 <= n_out <= ncells and 0 <= n_mask <= ncells and 0 <= n_sub <= 1_000_000


def _xda_means_ok(data: bytes, cells_at: int, ncells: int) -> bool:
    means = np.frombuffer(data, dtype=_XDA_CELL_DTYPE, count=ncells, offset=cells_at)["mean"]
    return bool(np.isfinite(means).all() and (means >= 0).all() and (means <= XDA_MAX_MEAN).all())


def _xda_documented_layout(data: bytes, pos: int, ncells: int) -> _XdaLayout | None:
    """The layout of the Affymetrix document after the header, or None if it is not consistent."""
    size = len(data)
    strings = []
    for _ in range(2):
        if pos + 4 > size:
            return None
        length = struct.unpack_from("<i", data, pos)[0]
        pos += 4
        if length < 0 or pos + length > size or not _printable(data[pos : pos + length]):
            return None
        strings.append(data[pos : pos + length].decode("latin-1").rstrip("\x00"))
        pos += length
    if pos + 16 > size:
        return None
    counts = struct.unpack_from("<iIIi", data, pos)
    if not _xda_counts_ok(counts, ncells):
        return None
    cells_at = pos + 16
    if cells_at + 10 * ncells + 4 * (counts[1] + counts[2]) > size:
        return None
    if not _xda_means_ok(data, cells_at, ncells):
        return None
    return _XdaLayout(cells_at, counts[1], counts[2], strings[0], strings[1])


def _xda_layout_from_end(data: bytes, pos: int, ncells: int) -> _XdaLayout | None:
    """Find the count block whose totals end exactly at the end of the file (see module docstring)."""
    size = len(data)
    last = size - 16 - 10 * ncells
    for p in range(pos, last + 1):
        counts = struct.unpack_from("<iIIi", data, p)
        if not _xda_counts_ok(counts, ncells):
            continue
        _, n_out, n_mask, n_sub = counts
        if p + 16 + 10 * ncells + 4 * (n_out + n_mask) + XDA_SUBGRID_BYTES * n_sub != size:
            continue
        if _xda_means_ok(data, p + 16, ncells):
            return _XdaLayout(p + 16, n_out, n_mask, None, None)
    return None


def _parse_xda_v4(data: bytes, name: str, notes: list[str]) -> CelFile:
    size = len(data)
    if size < 24:
        raise CelFormatError(f"{name}: truncated XDA CEL: {size} bytes, the fixed header needs 24")
    _, _, first, second, ncells, header_len = struct.unpack_from("<6i", data, 0)
    if header_len < 0 or 24 + header_len > size:
        raise CelFormatError(f"{name}: truncated XDA CEL: header of {header_len} bytes, file has {size}")
    header_text = data[24 : 24 + header_len].decode("latin-1")
    header = _xda_header_dict(header_text)
    h_rows, h_cols = _header_int(header, "Rows", name), _header_int(header, "Cols", name)
    # affyio reads rows then cols; the Affymetrix document says cols then rows. Header lines decide.
    if h_rows is None or h_cols is None or (h_rows, h_cols) == (first, second):
        rows, cols = first, second
    elif (h_rows, h_cols) == (second, first):
        rows, cols = second, first
    else:
        raise CelFormatError(
            f"{name}: XDA dimensions {first}x{second} disagree with header Rows={h_rows}, Cols={h_cols}"
        )
    if rows <= 0 or cols <= 0:
        raise CelFormatError(f"{name}: XDA CEL has non-positive dimensions rows={rows}, cols={cols}")
    if ncells != rows * cols:
        raise CelFormatError(f"{name}: XDA number of cells {ncells} != rows*cols = {rows}*{cols}")
    chip_type = _require_chip_type(header.get("DatHeader"), name)
    pos = 24 + header_len
    if pos + 16 + 10 * ncells > size:
        raise CelFormatError(
            f"{name}: truncated XDA CEL: {size} bytes cannot hold {ncells} cells after the header"
        )
    layout = _xda_documented_layout(data, pos, ncells)
    if layout is None:
        layout = _xda_layout_from_end(data, pos, ncells)
        if layout is None:
            raise CelFormatError(
                f"{name}: XDA CEL is truncated or corrupt: no consistent algorithm/count block after the "
                f"{header_len}-byte header and no cell block ending at the end of the file"
            )
        notes.append(
            f"XDA header length {header_len} does not lead to a valid algorithm block; the cell block was "
            f"located at byte {layout.cells_at} from the end of the file and the algorithm was taken "
            "from the header text"
        )
    cells = np.frombuffer(data, dtype=_XDA_CELL_DTYPE, count=ncells, offset=layout.cells_at)
    pairs_at = layout.cells_at + 10 * ncells
    pairs = np.frombuffer(data, dtype="<i2", count=2 * (layout.n_masks + layout.n_outliers), offset=pairs_at)
    pairs = pairs.astype(np.int32).reshape(-1, 2)
    masks, outliers = pairs[: layout.n_masks], pairs[layout.n_masks :]
    for what, xy in (("mask", masks), ("outlier", outliers)):
        if xy.size and (
            (xy[:, 0] < 0).any()
            or (xy[:, 0] >= cols).any()
            or (xy[:, 1] < 0).any()
            or (xy[:, 1] >= rows).any()
        ):
            raise CelFormatError(f"{name}: XDA {what} coordinates outside the {cols}x{rows} grid (corrupt?)")
    algorithm = layout.algorithm if layout.algorithm is not None else header.get("Algorithm", "")
    parameters = layout.parameters if layout.parameters is not None else header.get("AlgorithmParameters")
    return _finish(
        fmt=FORMAT_XDA,
        chip_type=chip_type,
        rows=rows,
        cols=cols,
        intensities=cells["mean"].astype(np.float64),
        stdev=cells["stdev"].astype(np.float64),
        npixels=cells["npixels"].astype(np.int32),
        masks=masks,
        outliers=outliers,
        modified=None,
        header=header,
        algorithm=algorithm,
        algorithm_parameters=parse_algorithm_parameters(parameters),
        scan_date=_scan_date_from_dat_header(header.get("DatHeader")),
        name=name,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------------
# Command Console / AGCC "Calvin" generic (big-endian)
# ------------------------------------------------------------------------------------------------

_CALVIN_TYPES = {0: ">i1", 1: ">u1", 2: ">i2", 3: ">u2", 4: ">i4", 5: ">u4", 6: ">f4"}
_CALVIN_MIME_NUMBERS = {
    "text/x-calvin-integer-8": ">i1",
    "text/x-calvin-unsigned-integer-8": ">u1",
    "text/x-calvin-integer-16": ">i2",
    "text/x-calvin-unsigned-integer-16": ">u2",
    "text/x-calvin-integer-32": ">i4",
    "text/x-calvin-unsigned-integer-32": ">u4",
    "text/x-calvin-float": ">f4",
}
_CALVIN_MAX_DEPTH = 32
_CALVIN_MAX_ITEMS = 4096  # groups, data sets per group, columns per data set: more means a corrupt file


class _Reader:
    """Bounds-checked big-endian reads from a byte string."""

    def __init__(self, data: bytes, name: str):
        self.data = data
        self.name = name

    def need(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > len(self.data):
            raise CelFormatError(
                f"{self.name}: truncated or corrupt Calvin file: {what} at byte {pos} needs {n} bytes, "
                f"the file has {len(self.data)}"
            )

    def unpack(self, fmt: str, pos: int, what: str) -> tuple:
        n = struct.calcsize(fmt)
        self.need(pos, n, what)
        return struct.unpack_from(fmt, self.data, pos)

    def astring(self, pos: int, what: str) -> tuple[bytes, int]:
        (length,) = self.unpack(">i", pos, what)
        self.need(pos + 4, length, what)
        return self.data[pos + 4 : pos + 4 + length], pos + 4 + length

    def wstring(self, pos: int, what: str) -> tuple[str, int]:
        (count,) = self.unpack(">i", pos, what)
        self.need(pos + 4, 2 * count, what)
        raw = self.data[pos + 4 : pos + 4 + 2 * count]
        return raw.decode("utf-16-be", errors="replace").split("\x00", 1)[0], pos + 4 + 2 * count


def _calvin_value(blob: bytes, mime: str) -> str | int | float:
    mime = mime.strip().lower()
    if mime in _CALVIN_MIME_NUMBERS:
        dtype = np.dtype(_CALVIN_MIME_NUMBERS[mime])
        if len(blob) >= dtype.itemsize:
            value = np.frombuffer(blob, dtype=dtype, count=1)[0]
            return float(value) if dtype.kind == "f" else int(value)
        return blob.hex()
    if mime == "text/plain":
        return blob[: len(blob) - len(blob) % 2].decode("utf-16-be", errors="replace").split("\x00", 1)[0]
    return blob.decode("latin-1").split("\x00", 1)[0]


def _calvin_params(r: _Reader, pos: int, what: str) -> tuple[list[tuple[str, str | int | float]], int]:
    (count,) = r.unpack(">i", pos, f"{what} parameter count")
    if count < 0:
        raise CelFormatError(f"{r.name}: corrupt Calvin file: negative parameter count in {what}")
    pos += 4
    params = []
    for _ in range(count):
        key, pos = r.wstring(pos, f"{what} parameter name")
        blob, pos = r.astring(pos, f"{what} parameter {key!r}")
        mime, pos = r.wstring(pos, f"{what} parameter type")
        params.append((key, _calvin_value(blob, mime)))
    return params, pos


@dataclass
class _CalvinHeader:
    data_type: str
    params: list[tuple[str, str | int | float]]
    parents: list[_CalvinHeader]

    def walk(self) -> Iterator[_CalvinHeader]:
        yield self
        for parent in self.parents:
            yield from parent.walk()

    def lookup(self, key: str) -> str | int | float | None:
        for h in self.walk():
            for k, v in h.params:
                if k == key:
                    return v
        return None


def _calvin_header(r: _Reader, pos: int, depth: int = 0) -> tuple[_CalvinHeader, int]:
    if depth > _CALVIN_MAX_DEPTH:
        raise CelFormatError(f"{r.name}: corrupt Calvin file: parent headers nested deeper than {depth}")
    data_type, pos = r.astring(pos, "data type id")
    _, pos = r.astring(pos, "file id")
    _, pos = r.wstring(pos, "date-time")
    _, pos = r.wstring(pos, "locale")
    params, pos = _calvin_params(r, pos, "file header")
    (nparents,) = r.unpack(">i", pos, "parent header count")
    pos += 4
    if nparents < 0:
        raise CelFormatError(f"{r.name}: corrupt Calvin file: negative parent header count")
    parents = []
    for _ in range(nparents):
        parent, pos = _calvin_header(r, pos, depth + 1)
        parents.append(parent)
    return _CalvinHeader(data_type.decode("latin-1"), params, parents), pos


@dataclass(frozen=True)
class _CalvinDataSet:
    name: str
    columns: tuple[tuple[str, int, int], ...]
    nrows: int
    data_at: int

    def read(self, r: _Reader) -> np.ndarray:
        names, formats, offsets = [], [], []
        offset = 0
        for i, (col, ctype, csize) in enumerate(self.columns):
            names.append(col or f"col{i}")
            formats.append(_CALVIN_TYPES.get(ctype, f"V{csize}"))
            offsets.append(offset)
            offset += csize
        if len(set(names)) != len(names):
            names = [f"{n}_{i}" for i, n in enumerate(names)]
        dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": max(offset, 1)})
        r.need(self.data_at, self.nrows * offset, f"data set {self.name!r} ({self.nrows} rows)")
        return np.frombuffer(r.data, dtype=dtype, count=self.nrows, offset=self.data_at)


def _calvin_datasets(r: _Reader, group_at: int, ngroups: int) -> list[list[_CalvinDataSet]]:
    groups = []
    pos = group_at
    if ngroups > _CALVIN_MAX_ITEMS:
        raise CelFormatError(f"{r.name}: corrupt Calvin file: {ngroups} data groups")
    for g in range(ngroups):
        next_group, first_set, nsets = r.unpack(">IIi", pos, f"data group {g}")
        _, _ = r.wstring(pos + 12, f"data group {g} name")
        if nsets > _CALVIN_MAX_ITEMS:
            raise CelFormatError(f"{r.name}: corrupt Calvin file: {nsets} data sets in group {g}")
        sets = []
        set_pos = first_set
        for s in range(max(nsets, 0)):
            data_at, next_set = r.unpack(">II", set_pos, f"data set {s} header")
            set_name, p = r.wstring(set_pos + 8, f"data set {s} name")
            _, p = _calvin_params(r, p, f"data set {set_name!r}")
            (ncols,) = r.unpack(">I", p, f"data set {set_name!r} column count")
            p += 4
            if ncols > _CALVIN_MAX_ITEMS:
                raise CelFormatError(f"{r.name}: corrupt Calvin file: {ncols} columns in {set_name!r}")
            columns = []
            for _ in range(ncols):
                col, p = r.wstring(p, f"data set {set_name!r} column name")
                ctype, csize = r.unpack(">Bi", p, f"data set {set_name!r} column type")
                p += 5
                if csize < 0 or (ctype in _CALVIN_TYPES and np.dtype(_CALVIN_TYPES[ctype]).itemsize != csize):
                    raise CelFormatError(
                        f"{r.name}: corrupt Calvin file: column {col!r} of {set_name!r} has type {ctype} "
                        f"and size {csize}"
                    )
                columns.append((col, ctype, csize))
            (nrows,) = r.unpack(">I", p, f"data set {set_name!r} row count")
            sets.append(_CalvinDataSet(set_name, tuple(columns), nrows, data_at))
            set_pos = next_set
        groups.append(sets)
        pos = next_group
    return groups


def _calvin_column(ds: _CalvinDataSet, r: _Reader, expected_rows: int) -> np.ndarray:
    if ds.nrows != expected_rows:
        raise CelFormatError(
            f"{r.name}: Calvin data set {ds.name!r} has {ds.nrows} rows but rows*cols = {expected_rows}"
        )
    if not ds.columns or ds.columns[0][1] not in _CALVIN_TYPES:
        raise CelFormatError(f"{r.name}: Calvin data set {ds.name!r} has no numeric column")
    table = ds.read(r)
    return table[table.dtype.names[0]]


def _calvin_xy(ds: _CalvinDataSet | None, r: _Reader, rows: int, cols: int) -> np.ndarray:
    if ds is None or ds.nrows == 0:
        return np.zeros((0, 2), dtype=np.int32)
    if len(ds.columns) < 2 or any(c[1] not in _CALVIN_TYPES for c in ds.columns[:2]):
        raise CelFormatError(f"{r.name}: Calvin data set {ds.name!r} is not a table of X, Y")
    table = ds.read(r)
    names = table.dtype.names
    xy = np.column_stack([table[names[0]].astype(np.int64), table[names[1]].astype(np.int64)])
    if (xy[:, 0] < 0).any() or (xy[:, 0] >= cols).any() or (xy[:, 1] < 0).any() or (xy[:, 1] >= rows).any():
        raise CelFormatError(f"{r.name}: Calvin {ds.name!r} coordinates outside the {cols}x{rows} grid")
    return xy.astype(np.int32)


def _parse_calvin(data: bytes, name: str, notes: list[str]) -> CelFile:
    r = _Reader(data, name)
    _, _, ngroups, group_at = r.unpack(">BBiI", 0, "file header")
    if ngroups < 1:
        raise CelFormatError(f"{name}: Calvin file has {ngroups} data groups")
    header, _ = _calvin_header(r, 10)
    if header.data_type not in ("affymetrix-calvin-intensity", "affymetrix-calvin-multi-intensity"):
        raise CelFormatError(f"{name}: Calvin file of data type {header.data_type!r}, not a CEL file")

    flat: dict[str, str] = {}
    for h in header.walk():
        for k, v in h.params:
            flat.setdefault(k, str(v))

    def int_param(key: str) -> int:
        value = header.lookup(key)
        try:
            return int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise CelFormatError(f"{name}: Calvin header parameter {key} missing or not an integer") from exc

    rows, cols = int_param("affymetrix-cel-rows"), int_param("affymetrix-cel-cols")
    if rows <= 0 or cols <= 0:
        raise CelFormatError(f"{name}: Calvin CEL has non-positive dimensions rows={rows}, cols={cols}")
    chip_type = str(header.lookup("affymetrix-array-type") or "").strip()
    if not chip_type:
        chip_type = chip_type_from_dat_header(str(header.lookup("affymetrix-dat-header") or "")) or ""
    if not chip_type:
        raise CelFormatError(
            f"{name}: no chip type: no affymetrix-array-type parameter and no .1sq DatHeader"
        )

    groups = _calvin_datasets(r, group_at, ngroups)
    by_name = {ds.name: ds for ds in groups[0]}
    if len(groups) > 1:
        notes.append(f"{len(groups)} data groups (multi-channel?); the first group was read")
    for needed in ("Intensity", "StdDev", "Pixel"):
        if needed not in by_name:
            raise CelFormatError(f"{name}: Calvin CEL has no {needed!r} data set (found {sorted(by_name)})")
    ncells = rows * cols
    intensities = _calvin_column(by_name["Intensity"], r, ncells).astype(np.float64)
    stdev = _calvin_column(by_name["StdDev"], r, ncells).astype(np.float64)
    npixels = _calvin_column(by_name["Pixel"], r, ncells).astype(np.int32)
    masks = _calvin_xy(by_name.get("Mask"), r, rows, cols)
    outliers = _calvin_xy(by_name.get("Outlier"), r, rows, cols)

    prefix = "affymetrix-algorithm-param-"
    algorithm_parameters = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
    scan_date = header.lookup("affymetrix-scan-date")
    scan_date_text = str(scan_date).strip() if scan_date not in (None, "") else None
    if scan_date_text is None:
        scan_date_text = _scan_date_from_dat_header(str(header.lookup("affymetrix-dat-header") or ""))
    return _finish(
        fmt=FORMAT_CALVIN,
        chip_type=chip_type,
        rows=rows,
        cols=cols,
        intensities=intensities,
        stdev=stdev,
        npixels=npixels,
        masks=masks,
        outliers=outliers,
        modified=None,
        header=flat,
        algorithm=flat.get("affymetrix-algorithm-name", ""),
        algorithm_parameters=algorithm_parameters,
        scan_date=scan_date_text,
        name=name,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


_V3_HEADER_ORDER = (
    "Cols",
    "Rows",
    "TotalX",
    "TotalY",
    "OffsetX",
    "OffsetY",
    "GridCornerUL",
    "GridCornerUR",
    "GridCornerLR",
    "GridCornerLL",
    "Axis-invertX",
    "AxisInvertY",
    "swapXY",
    "DatHeader",
    "Algorithm",
    "AlgorithmParameters",
)


def _clean_header_value(value: str) -> str:
    return str(value).replace("\r", " ").replace("\n", " ")


def _v4_header_text(cel: CelFile) -> str:
    header: dict[str, str] = {}
    if cel.format in (FORMAT_TEXT, FORMAT_XDA):
        header.update(cel.header)
    elif cel.header.get("affymetrix-dat-header"):
        header["DatHeader"] = cel.header["affymetrix-dat-header"]
    header["Cols"], header["Rows"] = str(cel.cols), str(cel.rows)
    header.setdefault("TotalX", str(cel.cols))
    header.setdefault("TotalY", str(cel.rows))
    if chip_type_from_dat_header(header.get("DatHeader")) != cel.chip_type:
        header["DatHeader"] = (
            f"[0..65535]  :CLS={cel.cols} RWS={cel.rows}  \x14  \x14 {cel.chip_type}.1sq \x14 "
        )
    header["Algorithm"] = cel.algorithm
    header["AlgorithmParameters"] = ";".join(f"{k}:{v}" for k, v in cel.algorithm_parameters.items())
    ordered = [k for k in _V3_HEADER_ORDER if k in header] + [k for k in header if k not in _V3_HEADER_ORDER]
    return "\n".join(f"{k}={_clean_header_value(header[k])}" for k in ordered) + "\n"


def _int16_pairs(xy: np.ndarray, what: str) -> np.ndarray:
    xy = np.asarray(xy).reshape(-1, 2)
    if xy.size and (xy.min() < -32768 or xy.max() > 32767):
        raise CelFormatError(f"cannot write XDA CEL: {what} coordinates do not fit int16")
    return xy.astype("<i2")


def write_cel_v4(cel: CelFile, path: str | Path) -> Path:
    """Write ``cel`` as a binary XDA version 4 CEL (little-endian; atomic temp file + rename).

    Layout of the Affymetrix document with affyio's dimension order (rows, then cols) and a header
    text holding ``Rows=``/``Cols=`` and a DatHeader with ``<chip>.1sq`` (synthesised when the source
    has none), so either reading order gives the same grid. Means and stdevs are stored as float32:
    reading the file back gives ``float32(x)`` widened to float64, exactly the input for XDA/Calvin
    sources and the float32 rounding (relative error <= 2**-24) for text sources. Raises
    :class:`CelFormatError` when pixels or coordinates do not fit int16.
    """
    header_bytes = _v4_header_text(cel).encode("latin-1", errors="replace")
    algorithm = cel.algorithm.encode("latin-1", errors="replace")
    parameters = ";".join(f"{k}:{v}" for k, v in cel.algorithm_parameters.items()).encode(
        "latin-1", "replace"
    )
    try:
        margin = int(float(cel.algorithm_parameters.get("CellMargin", 0)))
    except ValueError:
        margin = 0
    npixels = np.asarray(cel.npixels)
    if npixels.size and (npixels.min() < -32768 or npixels.max() > 32767):
        raise CelFormatError(f"cannot write XDA CEL for {cel.source}: pixel counts do not fit int16")
    cells = np.empty(cel.num_cells, dtype=_XDA_CELL_DTYPE)
    cells["mean"] = cel.intensities
    cells["stdev"] = cel.stdev
    cells["npixels"] = npixels
    masks = _int16_pairs(cel.masks, "mask")
    outliers = _int16_pairs(cel.outliers, "outlier")
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(struct.pack("<5i", XDA_MAGIC, 4, cel.rows, cel.cols, cel.num_cells))
        fh.write(struct.pack("<i", len(header_bytes)) + header_bytes)
        fh.write(struct.pack("<i", len(algorithm)) + algorithm)
        fh.write(struct.pack("<i", len(parameters)) + parameters)
        fh.write(struct.pack("<iIIi", margin, outliers.shape[0], masks.shape[0], 0))
        fh.write(cells.tobytes())
        fh.write(masks.tobytes())
        fh.write(outliers.tobytes())
    return Path(path)


def write_intensities_tsv(
    cel: CelFile, path: str | Path, *, compresslevel: int = 1, chunk_rows: int = 262_144
) -> Path:
    """Write one row per cell in index order: header ``x\ty\tmean\tstdev\tnpixels``; gzip if ``.gz``.

    Numbers use the shortest text that reads back to the same value: float32 columns for XDA/Calvin
    sources (``65.2``, not ``65.19999694824219``), float64 for text v3; integral values print without
    a decimal point (``256``). Formatting is vectorized (pyarrow CSV writer) in chunks of
    ``chunk_rows`` rows; gzip output uses zlib level ``compresslevel`` (default 1: about 4x faster than
    level 6 for a 20 % larger file). The file is written to a temp file and renamed.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    value_type = np.float32 if cel.float32_values else np.float64
    x, y = cel.cell_xy()
    table = pa.table(
        {
            "x": x,
            "y": y,
            "mean": cel.intensities.astype(value_type),
            "stdev": cel.stdev.astype(value_type),
            "npixels": cel.npixels,
        }
    )
    options = pacsv.WriteOptions(delimiter="\t", include_header=False, batch_size=65_536)
    target = Path(path)
    compress = target.name.endswith(".gz")
    with atomic_output(target) as tmp, open(tmp, "wb") as fh:
        packer = zlib.compressobj(compresslevel, zlib.DEFLATED, 31) if compress else None

        def emit(chunk: bytes) -> None:
            fh.write(packer.compress(chunk) if packer is not None else chunk)

        emit(b"x\ty\tmean\tstdev\tnpixels\n")
        for start in range(0, table.num_rows, chunk_rows):
            buffer = io.BytesIO()
            pacsv.write_csv(table.slice(start, chunk_rows), buffer, options)
            emit(buffer.getvalue())
        if packer is not None:
            fh.write(packer.flush())
    return target
