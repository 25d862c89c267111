"""Exact, vectorized parser of the numeric tables of text (v3) CEL files.

``parse_number_table(block, ncols)`` turns whitespace-separated rows of decimal numbers (a CEL
``[INTENSITY]``, ``[MASKS]``, ``[OUTLIERS]`` or ``[MODIFIED]`` body) into a float64 ``(rows, ncols)``
array, with numpy only (no pandas, no pyarrow: nothing heavy is imported on the read path).

Fast path, for the layout every CEL writer uses (one row per line, fields separated by single tabs,
optional leading spaces in a field, LF or CRLF line ends), in chunks of whole lines (~512 KB, so that
the work arrays stay in the CPU caches): the separators of a chunk are located in one scan, the row
structure is checked (every line has exactly ``ncols - 1`` tabs), and every field of up to 8
bytes made of digits and at most one ``.`` is converted in SIMD-within-a-register fashion: the 8
bytes ending at the field are loaded as one little-endian uint64 (an unaligned strided view of the
buffer), bytes before the field and leading spaces become ``0``, the dot is squeezed out, and the
eight digits are combined with three multiply-shift steps (Lemire's ``parse_eight_digits``). The
value is ``mantissa / 10**fraction_digits``: both operands are exact doubles (mantissa < 10**8), so
IEEE division rounds the exact quotient once - the result is the correctly rounded value of the
decimal text, bit-identical to Python's ``float(text)`` and to C ``atof`` (affyio). Integers and
numbers with one decimal (the CEL columns) take shorter routes than other dot positions. Fields the fast
path does not cover (longer fields, signs, exponents, ``nan``...) are converted one by one with
``float()``, so every value is correctly rounded.

Other layouts (space-separated rows, blank lines inside the table, ragged rows) go through a
line-by-line parser with the same results and error rules (tolerance 0 in both paths).

Errors raise :class:`TextTableError` (a ``ValueError``) describing the row; callers add the file
name. A row with fewer fields than ``ncols`` yields NaN for the missing ones (the caller decides), a
row with more fields, or a first row with another width, is an error.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TextTableError", "parse_number_table"]


class TextTableError(ValueError):
    """A numeric table that cannot be parsed (message without the file name)."""


_U = np.uint64
_HI = _U(0x8080808080808080)
_LO7 = _U(0x7F7F7F7F7F7F7F7F)
_ZEROS = _U(0x3030303030303030)
_SPACES = _U(0x2020202020202020)
_DOTS = _U(0x2E2E2E2E2E2E2E2E)
_ABOVE_NINE_V = _U(0x7676767676767676)  # 0x80 - 10 per byte: sets bit 7 of digit values > 9
_M1 = _U(0x000000FF000000FF)
_MUL1 = _U(0x000F424000000064)  # 100 + (1000000 << 32)
_MUL2 = _U(0x0000271000000001)  # 1 + (10000 << 32)
#: KEEP[L]: the top L bytes of a word (the field, right-aligned), L = 0..8.
_KEEP = np.array([0] + [(2**64 - 1) ^ (2 ** (8 * (8 - n)) - 1) for n in range(1, 9)], dtype=np.uint64)
_PAD = _ZEROS & ~_KEEP  # '0' in the bytes before the field
_TOP_BYTE = _U(0xFF << 56)
_LOW_SIX = _U(2**48 - 1)
_KEEP_HI = _KEEP & _HI
_POW10 = 10.0 ** np.arange(9)
#: Bytes of text per chunk of the fast path (~20,000 CEL rows: its work arrays stay in the caches).
_CHUNK_BYTES = 1 << 19


def _zero_bytes(x: np.ndarray) -> np.ndarray:
    """Bit 7 set in every byte of ``x`` that is zero (exact: no carry between bytes)."""
    return ~((((x & _LO7) + _LO7) | x) & _HI) & _HI


def _digits(v: np.ndarray) -> np.ndarray:
    """For ``v = w - '00000000'``: True where every byte of ``w`` was a digit.

    A byte below ``'0'`` borrows (its ``v`` byte is >= 0xD0) and a byte above ``'9'`` leaves more
    than 9; ``(b & 0x7F) + 0x76`` sets bit 7 of every byte above 9 without carrying into the next.
    """
    return ((((v & _LO7) + _ABOVE_NINE_V) | v) & _HI) == 0


def _eight_digits(v: np.ndarray) -> np.ndarray:
    """The number written by 8 digit values (one per byte, most significant first), as float64."""
    v = v * _U(10) + (v >> _U(8))
    v = (((v & _M1) * _MUL1) + (((v >> _U(16)) & _M1) * _MUL2)) >> _U(32)
    return v.astype(np.float64)


def _decimal_words(w: np.ndarray, length: np.ndarray, spaced: bool) -> tuple[np.ndarray, np.ndarray]:
    """Values of fields held right-aligned in uint64 words, and which fields the fast path covers.

    ``w``: the 8 bytes ending at each field (little-endian: the field's last byte is the top byte);
    ``length``: field lengths (>= 0); ``spaced``: whether some field may start with a space. Covered:
    1..8 bytes of optional leading spaces, then digits with at most one ``.``, at least one digit.
    Integers and one-decimal numbers (the CEL columns) take the shortest routes.
    """
    size = np.minimum(length, 8)
    w &= _KEEP[size]
    w |= _PAD[size]
    ok = (length >= 1) & (length <= 8)
    solid = None
    if spaced:
        spaces = _zero_bytes(w ^ _SPACES)
        solid = _KEEP_HI[size] & ~spaces  # bit 7 of the field's non-space bytes
        ok &= (solid != 0) & (spaces < (solid & np.negative(solid)))  # spaces only leading
        w |= spaces >> _U(3)  # ' ' -> '0'
    v = w - _ZEROS
    digits = _digits(v)
    if digits.all():  # integers
        return _eight_digits(v), ok
    if (((w >> _U(48)) & _U(0xFF)) == _U(0x2E)).all():  # "ddddd.d" everywhere (CEL means and SDs)
        v = ((w & _TOP_BYTE) | ((w & _LOW_SIX) << _U(8)) | _U(0x30)) - _ZEROS
        ok &= _digits(v)
        return _eight_digits(v) / 10.0, ok
    dots = _zero_bytes(w ^ _DOTS)
    ndots = np.bitwise_count(dots)
    ok &= ndots <= 1
    one = np.flatnonzero(ndots == 1)
    at = np.bitwise_count(dots[one] - _U(1)).astype(np.uint64) & ~_U(7)  # dot's byte * 8
    word = w[one]
    below = word & ((_U(1) << at) - _U(1))  # characters before the dot: move up one byte
    w[one] = (word & ~((_U(1) << (at + _U(8))) - _U(1))) | (below << _U(8)) | _U(0x30)
    fraction = np.zeros(w.size, dtype=np.intp)
    fraction[one] = 7 - (at >> _U(3)).astype(np.intp)
    ok[one] &= (np.bitwise_count(solid[one]) if solid is not None else length[one]) >= 2  # not just "."
    v = w - _ZEROS
    ok &= _digits(v)
    return _eight_digits(v) / _POW10[fraction], ok


def _words_ending_at(a: np.ndarray, view: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The 8 bytes ``a[s : s + 8]`` of every ``s`` (ascending; ``s < 0``: spaces before ``a``) as uint64."""
    if starts[0] >= 0:
        return view[starts]
    early = starts < 0
    w = np.empty(starts.size, dtype=np.uint64)
    w[~early] = view[starts[~early]]
    head = np.full(16, 32, dtype=np.uint8)
    head[8 : 8 + min(8, a.size)] = a[:8]
    w[early] = np.ndarray((9,), dtype="<u8", buffer=head, strides=(1,))[starts[early] + 8]
    return w


def _fast_chunk(a: np.ndarray, c0: int, c1: int, ncols: int, last: bool, view: np.ndarray,
                out: np.ndarray, row0: int) -> int | None:  # fmt: skip
    """Parse the rows in ``a[c0:c1]`` (whole lines; the last chunk may end without a line break) into
    ``out[:, row0:]`` (field-major) and return their number, or None when the layout is not exactly
    ``ncols`` tab-separated fields per line with one line-ending style."""
    sub = a[c0:c1]
    seps = np.flatnonzero(sub <= 13)  # \t \n \v \f \r and control bytes
    kinds = sub[seps]
    tabs = ncols - 1
    if seps.size == tabs and last:  # one row without a line break
        per_row, ending = tabs, np.empty(0, dtype=np.uint8)
    elif seps.size > tabs and kinds[tabs] == 13:
        per_row, ending = tabs + 2, np.array([13, 10], dtype=np.uint8)
    elif seps.size > tabs and kinds[tabs] == 10:
        per_row, ending = tabs + 1, np.array([10], dtype=np.uint8)
    else:
        return None
    tail = tabs if last else 0  # the last row of the table has no line break
    n_full = (seps.size - tail) // per_row if per_row > tabs else 0
    if n_full * per_row + tail != seps.size:
        return None
    pattern = np.concatenate([np.full(tabs, 9, dtype=np.uint8), ending])
    if not (kinds[: n_full * per_row].reshape(n_full, per_row) == pattern).all():
        return None
    if not (kinds[n_full * per_row :] == 9).all():
        return None
    grid = seps[: n_full * per_row].reshape(n_full, per_row) + c0
    nrows = n_full + (1 if last else 0)
    # field f of every row spans [starts[f], ends[f]) in ``a``
    ends = np.empty((ncols, nrows), dtype=np.int64)
    ends[:tabs, :n_full] = grid[:, :tabs].T
    ends[tabs, :n_full] = grid[:, tabs] if per_row > tabs else 0
    if last:
        ends[:tabs, n_full] = seps[n_full * per_row :] + c0
        ends[tabs, n_full] = c1
    starts = np.empty_like(ends)
    starts[0, 0] = c0
    starts[0, 1:] = grid[: nrows - 1, -1] + 1
    starts[1:] = ends[:tabs] + 1
    for f in range(ncols):
        start, end = starts[f], ends[f]
        spaced = bool((a[start] == 32).any())
        values, ok = _decimal_words(_words_ending_at(a, view, end - 8), end - start, spaced)
        if not ok.all():
            for i in np.flatnonzero(~ok):
                values[i] = _float_field(a[start[i] : end[i]].tobytes(), row0 + int(i))
        out[f, row0 : row0 + nrows] = values
    return nrows


def _fast_table(a: np.ndarray, ncols: int) -> np.ndarray | None:
    """The table if it is one row per line of exactly ``ncols`` tab-separated fields, else None.

    Parsed in chunks of whole lines (about ``_CHUNK_BYTES`` each) so that every work array is small,
    stays in the CPU caches and is reused by the allocator instead of being mapped afresh.
    """
    view = np.ndarray((max(a.size - 7, 0),), dtype="<u8", buffer=a, strides=(1,))
    # Every row takes at least 2 * ncols bytes: allocate for the most rows there can be (untouched
    # pages cost no memory) and parse each chunk straight into place.
    out = np.empty((ncols, a.size // (2 * ncols) + 1))
    c0 = rows = 0
    while c0 < a.size:
        c1 = c0 + _CHUNK_BYTES
        if c1 >= a.size:
            c1 = a.size
        else:
            found = np.flatnonzero(a[c1 : c1 + 65536] == 10)
            c1 = a.size if found.size == 0 else c1 + int(found[0]) + 1
        parsed = _fast_chunk(a, c0, c1, ncols, c1 == a.size, view, out, rows)
        if parsed is None:
            return None
        rows += parsed
        c0 = c1
    return out[:, :rows].T  # (rows, ncols); every column is contiguous: callers take whole columns


def _float_field(token: bytes, row: int) -> float:
    try:
        if b"_" in token:
            raise ValueError
        return float(token)
    except ValueError:
        raise TextTableError(f"non-numeric value {token[:40]!r} in row {row + 1}") from None


def _general_table(block: bytes, ncols: int) -> np.ndarray:
    """Any whitespace layout, line by line: the first row's width rules; short rows padded with NaN."""
    rows = [line.split() for line in block.splitlines()]
    rows = [r for r in rows if r]
    width = len(rows[0])
    if width != ncols:
        raise TextTableError(f"{width} values per row, expected {ncols}")
    out = np.full((len(rows), ncols), np.nan)
    for i, fields in enumerate(rows):
        if len(fields) > ncols:
            raise TextTableError(f"expected {ncols} fields in row {i + 1}, saw {len(fields)}")
        out[i, : len(fields)] = [_float_field(t, i) for t in fields]
    return out


def parse_number_table(block: bytes, ncols: int) -> np.ndarray:
    """Rows of ``ncols`` whitespace-separated decimal numbers -> float64 ``(rows, ncols)``.

    Values are correctly rounded (equal to ``float(text)``). Leading and trailing blank lines are
    ignored; an empty block gives ``(0, ncols)``. Raises :class:`TextTableError` for a first row that
    does not have ``ncols`` values, a longer row, or a non-numeric value; shorter rows give NaN.
    """
    n = len(block)
    lo, hi = 0, n
    while lo < hi and block[lo] <= 32:
        lo += 1
    while hi > lo and block[hi - 1] <= 32:
        hi -= 1
    if lo == hi:
        return np.zeros((0, ncols))
    a = np.frombuffer(block, dtype=np.uint8, count=hi - lo, offset=lo)
    table = _fast_table(a, ncols) if ncols >= 2 else None
    return table if table is not None else _general_table(bytes(block[lo:hi]), ncols)
