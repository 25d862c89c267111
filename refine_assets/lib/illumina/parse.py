"""Parser for Illumina BeadArray "non-normalized" files (GEO / ArrayExpress experiment-level matrices).

Input: one text file holding, for several samples, the BeadStudio/GenomeStudio summary values of
every probe: a probe id column, one signal column and one detection p-value column per sample,
and often extra per-sample statistics and annotation columns. Output: an :class:`IlluminaMatrix`
(probe ids, signal and detection p-value matrices with columns in the same order, each column
mapped to a sample accession where the sample titles allow it) plus a record of every decision.

Header variants recognised (all are exercised by ``refine_assets_tests/illumina_generator.py``):

* GEO style: ``ID_REF  <title 1>  Detection Pval  <title 2>  Detection Pval ...`` (bare p-value
  headers that follow their signal column); single-sample ``ID_REF  VALUE  Detection Pval``;
* GenomeStudio "Sample Probe Profile": ``ProbeID  SYMBOL  <key>.AVG_Signal  <key>.Detection Pval
  <key>.BEAD_STDERR  <key>.Avg_NBEADS ...`` (key = sample name or chip barcode such as
  ``5408416005_A``), also ``PROBE_ID`` / ``TargetID  ProbeID`` first columns;
* old BeadStudio prefix style: ``AVG_Signal-<key>  Detection-<key>  BEAD_STDERR-<key>`` where
  ``Detection`` holds detection *scores* (1 - p);
* R ``check.names`` style: ``<key>.AVG_Signal  <key>.Detection.Pval``; underscores
  (``<key>_Detection_Pval``), ``DetectionPval``, ``Detection p-value``, ``Detection Score``...;
* preambles (GenomeStudio ``Key = value`` lines), comment lines (``#``, ``!``, ``^``, quoted or
  not), blank lines, a header with one field fewer than the rows (the id header is missing:
  ``ID_REF`` is assumed, as refine.bio does), trailing delimiters, quoted fields, tab- or
  comma-separated, CRLF/CR line ends, UTF-8 (with or without BOM) or Latin-1 bytes.

Pairing (fixes refine.bio quirk Q6, ``specs/methods.md`` section 2.1, teardown section 12): every
signal column is paired with *its own* detection column, never by list or set order:

1. a detection header with a sample part (``<key>.Detection Pval``, ``Detection-<key>``) pairs with
   the signal column whose sample part is the same key (exact, then ignoring case and
   punctuation); a plain header equal to the key is that signal column;
2. a bare detection header (``Detection Pval``) pairs with the nearest column on its left,
   skipping per-sample statistics (BEAD_STDERR, Avg_NBEADS ...); if that column is not an
   unpaired signal candidate the layout is ambiguous and parsing fails.

A signal column without a detection column (or the reverse) is an error naming the column.

Sample mapping: columns are matched to the caller's samples (``SampleRef``: accession, title,
aliases) by the sample part of their headers, trying in turn exact title, accession, title
ignoring case and punctuation, alias, and finally a word-boundary suffix match (``Patient 1`` vs
``tumor Patient 1``); only one-to-one matches are accepted; the rest is recorded as unmapped.

Detection scores: BeadStudio's older ``Detection`` columns hold 1 - p. The orientation is decided
per column from the data: p-values fall with intensity, scores rise, judged by the mean value over
the brightest vs the dimmest 10% of probes; scores are converted to p = 1 - score and the decision
is recorded (``ColumnPair.detection_kind``).

Errors: :class:`IlluminaParseError` (a ``ValueError``) names the file, line and column.
Nothing here imports dagster.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "ColumnPair",
    "HeaderColumn",
    "IlluminaMatrix",
    "IlluminaParseError",
    "SampleRef",
    "classify_header",
    "parse_illumina_bytes",
    "parse_illumina_file",
    "read_numeric_matrix",
    "write_numeric_matrix",
]


class IlluminaParseError(ValueError):
    """The file cannot be read as an Illumina non-normalized matrix (message names file/line/column)."""


@dataclass(frozen=True)
class SampleRef:
    """A sample the file may contain: accession, title (warehouse ``samples.title``) and other names."""

    accession: str
    title: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnPair:
    """One sample's columns in the file.

    Attributes:
        key: sample part of the headers (``5408416005_A``, a title, or ``""`` in one-sample files).
        signal_column / signal_index: header and 0-based position of the signal column.
        pvalue_column / pvalue_index: header and position of its detection column.
        pairing: ``name`` (same sample part) or ``adjacent`` (bare detection header next to it).
        sample_accession: the sample it was mapped to, or None.
        match: how it was mapped (``title``, ``accession``, ``title-normalized``, ``alias``,
            ``suffix``) or None.
        detection_kind: ``p_value``, ``score`` (converted to 1 - score) or ``undetermined``
            (kept as given).
    """

    key: str
    signal_column: str
    signal_index: int
    pvalue_column: str
    pvalue_index: int
    pairing: str
    sample_accession: str | None = None
    match: str | None = None
    detection_kind: str = "p_value"


@dataclass
class IlluminaMatrix:
    """A parsed file: probes x samples signal and detection p-values (p-value orientation).

    ``signal[:, j]`` and ``detection_p[:, j]`` belong to ``columns[j]``. Rows are the file's rows
    with a non-empty probe id, in file order (duplicates kept; ``duplicate_probe_ids`` counts them).
    """

    source: str
    probe_column: str
    probe_ids: np.ndarray
    signal: np.ndarray
    detection_p: np.ndarray
    columns: list[ColumnPair]
    encoding: str
    delimiter: str
    header_line: int
    skipped_lines: int = 0
    extra_columns: list[str] = field(default_factory=list)
    unmapped_columns: list[str] = field(default_factory=list)
    unmatched_samples: list[str] = field(default_factory=list)
    duplicate_probe_ids: int = 0
    empty_id_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n_probes(self) -> int:
        return int(self.probe_ids.size)

    @property
    def column_names(self) -> list[str]:
        return [c.signal_column for c in self.columns]

    def sample_index(self) -> dict[str, int]:
        """Sample accession -> column position, for mapped columns."""
        return {c.sample_accession: j for j, c in enumerate(self.columns) if c.sample_accession}

    def provenance(self) -> dict:
        """JSON-able record of how the file was read (for the processing ledger)."""
        return {
            "source": self.source,
            "encoding": self.encoding,
            "delimiter": "tab" if self.delimiter == "\t" else self.delimiter,
            "header_line": self.header_line,
            "skipped_lines": self.skipped_lines,
            "probe_column": self.probe_column,
            "probes": self.n_probes,
            "duplicate_probe_ids": self.duplicate_probe_ids,
            "empty_id_rows": self.empty_id_rows,
            "columns": [
                {
                    "key": c.key,
                    "signal": c.signal_column,
                    "detection": c.pvalue_column,
                    "pairing": c.pairing,
                    "sample": c.sample_accession,
                    "match": c.match,
                    "detection_kind": c.detection_kind,
                }
                for c in self.columns
            ],
            "extra_columns": self.extra_columns,
            "unmapped_columns": self.unmapped_columns,
            "unmatched_samples": self.unmatched_samples,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------------
# Header classification
# ---------------------------------------------------------------------------------------------------

_SEP = r"[\s._:\-]*"
_B = r"(?<![A-Za-z0-9])"  # token start
_E = r"(?![A-Za-z0-9])"  # token end
DETECTION_RE = re.compile(
    rf"{_B}(?:detection{_SEP}(?:p{_SEP}val(?:ue)?s?|p|scores?)?|det{_SEP}p{_SEP}val(?:ue)?|p{_SEP}val(?:ue)?s?){_E}",
    re.IGNORECASE,
)
# Per-sample statistics that are neither signal nor detection.
STAT_RE = re.compile(
    rf"{_B}(?:bead{_SEP}std(?:err|ev)?|bead{_SEP}se|(?:avg|num|n){_SEP}n?beads?|nbeads?|narrays?|"
    rf"array{_SEP}st(?:d|dev|derr)|std(?:err|ev)?|min{_SEP}signal|max{_SEP}signal|"
    rf"signal{_SEP}(?:std|stdev|sd|se)|bead{_SEP}count|detection{_SEP}count){_E}",
    re.IGNORECASE,
)
SIGNAL_RE = re.compile(rf"{_B}(?:(?:avg|average|mean){_SEP})?signal{_E}", re.IGNORECASE)
# Probe id headers, compared with case and punctuation removed (refine.bio's list plus a few).
PROBE_ID_NAMES = (
    "idref",
    "probeid",
    "refid",
    "idprobe",
    "probeidentifier",
    "reporteridentifier",
    "reporterid",
    "illuminaid",
    "ilmnid",
)
# Annotation columns (not per-sample), compared the same way.
ANNOTATION_NAMES = frozenset(
    {
        "targetid",
        "symbol",
        "definition",
        "synonyms",
        "searchkey",
        "ilmngene",
        "chromosome",
        "accession",
        "entrezgeneid",
        "probesequence",
        "gi",
        "refseqid",
        "probetype",
        "probestart",
        "probechrorientation",
        "probecoordinates",
        "cytoband",
        "ontologycomponent",
        "ontologyprocess",
        "ontologyfunction",
        "proteinproduct",
        "arrayaddressid",
        "species",
        "source",
        "sourcereferenceid",
        "transcript",
        "unigeneid",
        "obsoleteprobeid",
        "genename",
        "genesymbol",
        "description",
        "spotid",
        "seqid",
        "ilmnstrand",
        "refseqtranscripts",
    }
)
_SQUASH_RE = re.compile(r"[^a-z0-9]+")
_TRIM = " \t._:-"


def _squash(s: str) -> str:
    return _SQUASH_RE.sub("", s.lower())


def _norm(s: str) -> str:
    """Lower case, punctuation runs -> one space (for tolerant name comparison)."""
    return _SQUASH_RE.sub(" ", s.lower()).strip()


def _residual(header: str, m: re.Match) -> str:
    rest = header[: m.start()] + " " + header[m.end() :]
    return re.sub(r"\s+", " ", rest).strip(_TRIM + " ")


def _overlap(a: re.Match, b: re.Match) -> bool:
    return a.start() < b.end() and b.start() < a.end()


@dataclass(frozen=True)
class HeaderColumn:
    """One header field: 0-based ``index``, ``name``, ``kind`` and sample part ``key``."""

    index: int
    name: str
    kind: str  # id | detection | signal | stat | annotation | plain | empty
    key: str


def classify_header(header: Sequence[str]) -> list[HeaderColumn]:
    """Classify every header field with its sample part (the header minus the type token).

    Kinds: ``id`` (probe id names), ``annotation`` (SYMBOL, DEFINITION, TargetID ...), ``detection``
    (``Detection``, ``Detection Pval``, ``Detection.Pval``, ``DetectionPval``, ``Detection p-value``,
    ``Detection Score``, ``Pval`` ...), ``signal`` (``AVG_Signal``, ``Signal``), ``stat`` (BEAD_STDERR,
    Avg_NBEADS, NARRAYS, ARRAY_STDEV, MIN/MAX_Signal ...), ``plain`` (anything else: a sample name
    or an unknown column) and ``empty``.
    """
    out = []
    for i, raw in enumerate(header):
        name = raw.strip()
        sq = _squash(name)
        if not name:
            out.append(HeaderColumn(i, name, "empty", ""))
            continue
        if sq in PROBE_ID_NAMES:
            out.append(HeaderColumn(i, name, "id", ""))
            continue
        if sq in ANNOTATION_NAMES:
            out.append(HeaderColumn(i, name, "annotation", ""))
            continue
        stat = STAT_RE.search(name)
        det = DETECTION_RE.search(name)
        if det and not (stat and _overlap(stat, det)):
            out.append(HeaderColumn(i, name, "detection", _residual(name, det)))
            continue
        sig = SIGNAL_RE.search(name)
        if sig and not (stat and _overlap(stat, sig)):
            out.append(HeaderColumn(i, name, "signal", _residual(name, sig)))
            continue
        if stat:
            out.append(HeaderColumn(i, name, "stat", _residual(name, stat)))
            continue
        out.append(HeaderColumn(i, name, "plain", name))
    return out


# ---------------------------------------------------------------------------------------------------
# Text handling
# ---------------------------------------------------------------------------------------------------

_COMMENT_RE = re.compile(r'^[\s"\']*[#!^]')


_CHUNK = 1 << 24  # bytes scanned per vectorized pass (bounded temporaries)


def _detect_encoding(data: bytes) -> str:
    """``utf-8`` for ASCII or valid UTF-8 bytes, else ``latin-1`` (accepts any byte)."""
    if data.isascii():
        return "utf-8"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _normalize_newlines(data: bytes) -> bytes:
    """Drop a UTF-8 BOM; old Mac files (CR only) get LF line ends."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")
    return data


@dataclass
class _Lines:
    """Byte offsets of every line of a file (``\n`` separated; a trailing ``\r`` excluded)."""

    data: bytes
    encoding: str
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return int(self.starts.size)

    def text(self, i: int) -> str:
        return self.data[int(self.starts[i]) : int(self.ends[i])].decode(self.encoding)

    def count(self, byte: int) -> np.ndarray:
        """Occurrences of ``byte`` in every line (vectorized over 16 MB chunks)."""
        arr = np.frombuffer(self.data, dtype=np.uint8)
        cs = np.zeros(self.starts.size, dtype=np.int64)
        ce = np.zeros(self.starts.size, dtype=np.int64)
        for off in range(0, arr.size, _CHUNK):
            pos = np.flatnonzero(arr[off : off + _CHUNK] == byte) + off
            if pos.size:
                cs += np.searchsorted(pos, self.starts)
                ce += np.searchsorted(pos, self.ends)
        return ce - cs


def _index_lines(data: bytes, encoding: str) -> _Lines:
    arr = np.frombuffer(data, dtype=np.uint8)
    parts = [np.flatnonzero(arr[off : off + _CHUNK] == 10) + off for off in range(0, arr.size, _CHUNK)]
    nl = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    starts = np.concatenate([[0], nl + 1]).astype(np.int64)
    ends = np.concatenate([nl, [arr.size]]).astype(np.int64)
    if starts.size and starts[-1] >= arr.size:  # file ends with a newline: no last line
        starts, ends = starts[:-1], ends[:-1]
    if ends.size:
        cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13)
        ends = ends - cr
    return _Lines(data, encoding, starts, ends)


def _split_fields(line: str, delim: str) -> list[str]:
    return next(csv.reader([line], delimiter=delim, quotechar='"'))


def _is_blank(line: str, delim: str) -> bool:
    return not line.replace(delim, "").strip().strip('"')


def _looks_like_header(fields: list[str]) -> bool:
    cols = classify_header(fields)
    return any(c.kind in ("id", "detection", "signal") for c in cols)


# ---------------------------------------------------------------------------------------------------
# Pairing and sample mapping
# ---------------------------------------------------------------------------------------------------


def _pair_columns(
    cols: list[HeaderColumn], where: str
) -> tuple[list[tuple[HeaderColumn, HeaderColumn, str]], list[str]]:
    """[(signal col, detection col, pairing)] in signal-column order, plus notes."""
    notes: list[str] = []
    dets = [c for c in cols if c.kind == "detection"]
    if not dets:
        raise IlluminaParseError(
            f"{where}: no detection p-value column (looked for headers like 'Detection Pval', "
            "'<sample>.Detection Pval', 'Detection-<sample>', 'Detection')"
        )
    signals = [c for c in cols if c.kind == "signal"]
    plains = [c for c in cols if c.kind == "plain"]
    paired: dict[int, tuple[HeaderColumn, HeaderColumn, str]] = {}  # signal index -> pair
    used_det: set[int] = set()

    def find_signal_by_key(key: str) -> HeaderColumn | None:
        for pool in (signals, plains):
            exact = [c for c in pool if c.key == key]
            if len(exact) == 1:
                return exact[0]
            if len(exact) > 1:
                raise IlluminaParseError(
                    f"{where}: several columns for sample '{key}': {[c.name for c in exact]}"
                )
        for pool in (signals, plains):
            loose = [c for c in pool if _norm(c.key) == _norm(key) and _norm(key)]
            if len(loose) == 1:
                return loose[0]
            if len(loose) > 1:
                raise IlluminaParseError(
                    f"{where}: several columns for sample '{key}': {[c.name for c in loose]}"
                )
        return None

    # 1. named detection columns
    for d in dets:
        if not d.key:
            continue
        s = find_signal_by_key(d.key)
        if s is None:
            raise IlluminaParseError(
                f"{where}: detection column '{d.name}' (column {d.index + 1}) has no signal column for "
                f"sample '{d.key}'"
            )
        if s.index in paired:
            raise IlluminaParseError(
                f"{where}: signal column '{s.name}' matches two detection columns "
                f"('{paired[s.index][1].name}', '{d.name}')"
            )
        paired[s.index] = (s, d, "name")
        used_det.add(d.index)
    # 2. bare detection columns: nearest column on the left, skipping statistics
    by_index = {c.index: c for c in cols}
    for d in dets:
        if d.key:
            continue
        j = d.index - 1
        while j >= 0 and by_index[j].kind in ("stat", "empty"):
            j -= 1
        left = by_index.get(j)
        if left is None or left.kind not in ("signal", "plain") or left.index in paired:
            what = "nothing" if left is None else f"'{left.name}' ({left.kind})"
            raise IlluminaParseError(
                f"{where}: cannot pair detection column '{d.name}' (column {d.index + 1}): the column on its "
                f"left is {what}, not an unpaired signal column"
            )
        paired[left.index] = (left, d, "adjacent")
        used_det.add(d.index)
    # 3. signal-named columns must all be paired
    missing = [s.name for s in signals if s.index not in paired]
    if missing:
        raise IlluminaParseError(
            f"{where}: no detection p-value column for signal column(s) {missing[:10]}"
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        )
    pairs = [paired[i] for i in sorted(paired)]
    keys = [p[0].key for p in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup and any(k for k in dup):
        raise IlluminaParseError(f"{where}: the sample part {dup[:5]} occurs in several signal columns")
    return pairs, notes


_MATCH_LEVELS = ("title", "accession", "title-normalized", "alias", "suffix")  # then "single"


def _candidates(key: str, header: str, s: SampleRef, level: str) -> bool:
    names = {key, header} - {""}
    if level == "title":
        return bool(s.title) and s.title.strip() in {n.strip() for n in names}
    if level == "accession":
        return any(n.strip().upper() == s.accession.upper() for n in names)
    if level == "title-normalized":
        return bool(s.title) and _norm(s.title) != "" and any(_norm(n) == _norm(s.title) for n in names)
    if level == "alias":
        al = {_norm(a) for a in s.aliases if a and _norm(a)}
        return any(_norm(n) in al for n in names)
    if level == "suffix":
        if not s.title or not key:
            return False
        t, k = _norm(s.title), _norm(key)
        if not t or not k or t == k:
            return False
        return t.endswith(" " + k) or k.endswith(" " + t)
    raise AssertionError(level)


def _map_samples(
    pairs: list[tuple[HeaderColumn, HeaderColumn, str]], samples: Sequence[SampleRef]
) -> list[tuple[str | None, str | None]]:
    result: list[tuple[str | None, str | None]] = [(None, None)] * len(pairs)
    free_samples = {s.accession: s for s in samples}
    for level in _MATCH_LEVELS:
        hits: dict[int, list[str]] = {}
        for j, (sig, _d, _how) in enumerate(pairs):
            if result[j][0] is not None:
                continue
            hits[j] = [a for a, s in free_samples.items() if _candidates(sig.key, sig.name, s, level)]
        by_sample: dict[str, list[int]] = {}
        for j, accs in hits.items():
            for a in accs:
                by_sample.setdefault(a, []).append(j)
        for j, accs in hits.items():
            if len(accs) == 1 and len(by_sample[accs[0]]) == 1:
                result[j] = (accs[0], level)
        for acc, _lvl in result:
            if acc is not None:
                free_samples.pop(acc, None)
    if len(pairs) == 1 and len(samples) == 1 and result[0][0] is None and free_samples:
        result[0] = (samples[0].accession, "single")  # one-sample file (GSM table: ID_REF VALUE Detection)
    return result


def _detection_orientation(signal: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per column +1 (scores: rise with intensity), -1 (p-values), 0 (undecidable).

    Compares the mean detection value over the brightest 10% of probes with that over the
    dimmest 10% (NaN ignored), vectorized over columns.
    """
    n = signal.shape[0]
    if n < 10:
        return np.zeros(signal.shape[1], dtype=int)
    with np.errstate(invalid="ignore"):
        s = np.where(np.isnan(p), np.nan, signal)
        lo = np.nanpercentile(s, 10, axis=0)
        hi = np.nanpercentile(s, 90, axis=0)
        top = np.where(s >= hi, p, np.nan)
        bottom = np.where(s <= lo, p, np.nan)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        diff = np.nanmean(top, axis=0) - np.nanmean(bottom, axis=0)
    out = np.sign(np.nan_to_num(diff, nan=0.0)).astype(int)
    return out


# ---------------------------------------------------------------------------------------------------
# Main entry points
# ---------------------------------------------------------------------------------------------------


def parse_illumina_file(path: str | os.PathLike, samples: Sequence[SampleRef] = ()) -> IlluminaMatrix:
    """Parse an Illumina non-normalized file, plain or gzip (see module doc); ``samples`` maps columns
    to accessions.

    Raises:
        IlluminaParseError: unreadable/empty file, no probe id or detection column, unpairable or
            missing detection columns, non-numeric cells, rows with too few fields, detection
            values outside [0, 1]. The message names the file and, where it applies, line and column.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
        if data[:2] == b"\x1f\x8b":  # GEO serves the matrices gzip'd: decided by content, not name
            import gzip

            data = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise IlluminaParseError(f"{p}: cannot read ({exc})") from exc
    return parse_illumina_bytes(data, samples, source=str(p))


def parse_illumina_bytes(
    data: bytes, samples: Sequence[SampleRef] = (), *, source: str = "<bytes>"
) -> IlluminaMatrix:
    """:func:`parse_illumina_file` on bytes already in memory (``source`` names them in messages).

    Memory: the numbers are parsed straight from the bytes (pandas' C reader, only the needed
    columns); lines are located with vectorized byte scans, so the file is never held as Python
    strings (peak ~2x the file size plus the result, measured in ``benchmarks/bench_illumina.py``).
    """
    data = _normalize_newlines(data)
    encoding = _detect_encoding(data)
    lines = _index_lines(data, encoding)
    where = source
    # -- header: first delimited line that names a probe id, signal or detection column
    delim = None
    header_at = None
    first_candidate = None
    for i in range(len(lines)):
        line = lines.text(i)
        if not line.strip() or _COMMENT_RE.match(line):
            continue
        d = "\t" if "\t" in line else ("," if "," in line else None)
        if d is None or _is_blank(line, d):
            continue
        fields = _split_fields(line, d)
        if len(fields) < 2:
            continue
        if first_candidate is None:
            first_candidate = (i, d)
        if _looks_like_header(fields):
            header_at, delim = i, d
            break
        if i - first_candidate[0] > 50:
            break
    if header_at is None:
        if first_candidate is None:
            raise IlluminaParseError(f"{where}: empty file (no delimited header line)")
        header_at, delim = first_candidate
    header_text = lines.text(header_at)
    header = [h.strip() for h in _split_fields(header_text, delim)]
    skipped = sum(1 for i in range(header_at) if lines.text(i).strip())
    # -- data lines: drop blank, delimiter-only and comment lines (vectorized; Python only for lines
    # starting with a quote or a space)
    dbyte = ord(delim)
    n_delims = lines.count(dbyte)
    body = np.arange(header_at + 1, len(lines), dtype=np.int64)
    length = lines.ends[body] - lines.starts[body]
    blank = (length == 0) | (length == n_delims[body])
    arr = np.frombuffer(data, dtype=np.uint8)
    first = np.where(length > 0, arr[np.minimum(lines.starts[body], max(arr.size - 1, 0))], 0)
    comment = np.isin(first, np.frombuffer(b"#!^", dtype=np.uint8)) & ~blank
    unsure = np.flatnonzero(np.isin(first, np.frombuffer(b" \t\"'", dtype=np.uint8)) & ~blank & ~comment)
    for u in unsure:
        t = lines.text(int(body[u]))
        if _COMMENT_RE.match(t):
            comment[u] = True
        elif _is_blank(t, delim):
            blank[u] = True
    skipped += int(comment.sum())
    keep = ~(blank | comment)
    body_idx = body[keep]
    if body_idx.size == 0:
        raise IlluminaParseError(f"{where}: no data rows after the header (line {header_at + 1})")
    quoted = '"' in header_text or any('"' in lines.text(int(i)) for i in body_idx[:200])
    if quoted:  # delimiters may sit inside quoted fields: count fields properly
        reader = csv.reader((lines.text(int(i)) for i in body_idx), delimiter=delim, quotechar='"')
        counts = np.fromiter((len(r) for r in reader), dtype=np.int64, count=body_idx.size)
    else:
        counts = n_delims[body_idx] + 1
    del n_delims
    notes: list[str] = []
    # Trailing empty header fields (trailing delimiters); a header one field short lacks the id.
    while header and not header[-1] and len(header) > 1:
        header.pop()
    first_fields = _split_fields(lines.text(int(body_idx[0])), delim)
    first_width = len(first_fields)
    while first_width > len(header) and not first_fields[first_width - 1].strip():
        first_width -= 1
    if first_width == len(header) + 1:
        header = ["ID_REF", *header]
        notes.append("header has one field fewer than the rows: first column taken as ID_REF")
    cols = classify_header(header)
    # -- probe id column
    ids = [c for c in cols if c.kind == "id"]
    if ids:
        id_col = min(ids, key=lambda c: PROBE_ID_NAMES.index(_squash(c.name)))
    elif cols[0].kind in ("empty", "plain"):
        id_col = HeaderColumn(0, cols[0].name or "ID_REF", "id", "")
        cols[0] = id_col
        notes.append(f"no probe id header found: column 1 ('{header[0]}') used as probe id")
    else:
        raise IlluminaParseError(
            f"{where}: no probe id column (expected one of ID_REF, PROBE_ID, ProbeID, IDREF, REF_ID, ...); "
            f"header starts {header[:4]}"
        )
    pairs, pnotes = _pair_columns([c for c in cols if c.index != id_col.index], where)
    notes += pnotes
    if not pairs:
        raise IlluminaParseError(f"{where}: no sample columns found")
    used = {id_col.index} | {p[0].index for p in pairs} | {p[1].index for p in pairs}
    if samples:  # a plain column named like a sample but without detection column: a missing p-value column
        for c in cols:
            if c.kind == "plain" and c.index not in used:
                hit = next(
                    (s for s in samples for lvl in _MATCH_LEVELS[:4] if _candidates(c.key, c.name, s, lvl)),
                    None,
                )
                if hit is not None:
                    raise IlluminaParseError(
                        f"{where}: column '{c.name}' (column {c.index + 1}) looks like the signal of sample "
                        f"{hit.accession} but has no detection p-value column"
                    )
    extra = [c.name for c in cols if c.index not in used and c.kind != "empty"]
    num_idx = sorted({p[0].index for p in pairs} | {p[1].index for p in pairs})
    need = max([*num_idx, id_col.index]) + 1
    short = np.flatnonzero(counts < need)
    if short.size:
        ln = int(body_idx[int(short[0])])
        raise IlluminaParseError(
            f"{where}: line {ln + 1} has {int(counts[short[0]])} fields but the header needs {need} "
            f"({short.size} short row(s))"
        )
    width = max(len(header), int(counts.max()))
    line_of_row = body_idx + 1
    skip = np.setdiff1d(np.arange(len(lines), dtype=np.int64), body_idx, assume_unique=True)
    read = dict(
        sep=delim,
        header=None,
        names=list(range(width)),
        quotechar='"',
        skip_blank_lines=False,
        skiprows=set(skip.tolist()),
        encoding=encoding,
        engine="c",
        index_col=False,
    )
    try:
        df = pd.read_csv(
            io.BytesIO(data),
            usecols=[id_col.index, *num_idx],
            dtype={id_col.index: str, **{i: np.float64 for i in num_idx}},
            **read,
        )
    except ValueError as exc:
        _raise_cell_error(data, read, num_idx, header, line_of_row, where, exc)
        raise  # unreachable
    if len(df) != line_of_row.size:
        raise IlluminaParseError(
            f"{where}: read {len(df)} rows for {line_of_row.size} data lines (stray quotes or carriage returns?)"
        )
    probe = df[id_col.index].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    keep = probe != ""
    empty_rows = int((~keep).sum())
    sig_idx = [p[0].index for p in pairs]
    det_idx = [p[1].index for p in pairs]
    signal = df[sig_idx].to_numpy(dtype=np.float64, copy=True)
    detp = df[det_idx].to_numpy(dtype=np.float64, copy=True)
    del df
    if empty_rows:
        probe, signal, detp, line_of_row = probe[keep], signal[keep], detp[keep], line_of_row[keep]
        notes.append(f"{empty_rows} row(s) without a probe id dropped")
    if probe.size == 0:
        raise IlluminaParseError(f"{where}: no rows with a probe id")
    # -- detection values must be probabilities
    with np.errstate(invalid="ignore"):
        bad = (detp < -1e-9) | (detp > 1 + 1e-9)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise IlluminaParseError(
            f"{where}: line {int(line_of_row[r])}, column '{pairs[c][1].name}': detection value "
            f"{float(detp[r, c])!r} is not a probability in [0, 1]"
        )
    orient = _detection_orientation(signal, detp)
    kinds = []
    for j, o in enumerate(orient):
        if o > 0:
            detp[:, j] = 1.0 - detp[:, j]
            kinds.append("score")
        elif o < 0:
            kinds.append("p_value")
        else:
            kinds.append("undetermined")
    n_scores = sum(k == "score" for k in kinds)
    if n_scores:
        notes.append(f"detection scores (1 - p) converted to p-values for {n_scores} column(s)")
    mapping = _map_samples(pairs, samples)
    columns = [
        ColumnPair(
            key=s.key,
            signal_column=s.name,
            signal_index=s.index,
            pvalue_column=d.name,
            pvalue_index=d.index,
            pairing=how,
            sample_accession=acc,
            match=lvl,
            detection_kind=kinds[j],
        )
        for j, ((s, d, how), (acc, lvl)) in enumerate(zip(pairs, mapping, strict=True))
    ]
    mapped = {c.sample_accession for c in columns if c.sample_accession}
    dup_ids = int(probe.size - pd.unique(probe).size)
    return IlluminaMatrix(
        source=source,
        probe_column=id_col.name,
        probe_ids=probe,
        signal=signal,
        detection_p=detp,
        columns=columns,
        encoding=encoding,
        delimiter=delim,
        header_line=header_at + 1,
        skipped_lines=skipped,
        extra_columns=extra,
        unmapped_columns=[c.signal_column for c in columns if not c.sample_accession] if samples else [],
        unmatched_samples=[s.accession for s in samples if s.accession not in mapped],
        duplicate_probe_ids=dup_ids,
        empty_id_rows=empty_rows,
        notes=notes,
    )


def _raise_cell_error(data: bytes, read: dict, num_idx, header, line_of_row, where, exc) -> None:
    """Find the first non-numeric cell (slow path, only on error) and raise a clear message."""
    try:
        raw = pd.read_csv(io.BytesIO(data), usecols=num_idx, dtype=str, keep_default_na=True, **read)
    except (ValueError, pd.errors.ParserError) as exc2:
        raise IlluminaParseError(f"{where}: malformed table ({exc2})") from exc2
    for i in num_idx:
        col = raw[i]
        conv = pd.to_numeric(col, errors="coerce")
        bad = (conv.isna() & col.notna()).to_numpy()
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            name = header[i] if i < len(header) else ""
            raise IlluminaParseError(
                f"{where}: line {int(line_of_row[r])}, column {i + 1} ('{name}'): non-numeric value {col.iloc[r]!r}"
            ) from exc
    raise IlluminaParseError(f"{where}: malformed table ({exc})") from exc


# ---------------------------------------------------------------------------------------------------
# Plain numeric matrices (the ``nec`` command's input and output)
# ---------------------------------------------------------------------------------------------------


def read_numeric_matrix(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read a TSV matrix: header row, first column the probe id, then one numeric column per sample.

    Returns (column names without the id header, probe ids, float64 values). Empty cells and NA
    are NaN; blank lines are ignored.

    Raises:
        IlluminaParseError: missing/empty file, no data rows, ragged rows, non-numeric cells
            (message names file, line and column).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise IlluminaParseError(f"{p}: cannot read ({exc})") from exc
    data = _normalize_newlines(data)
    lines = _index_lines(data, _detect_encoding(data))
    length = lines.ends - lines.starts
    nonblank = np.flatnonzero(length > lines.count(9) + lines.count(32))  # not empty, not only whitespace
    if nonblank.size == 0:
        raise IlluminaParseError(f"{p}: empty file")
    head_i = int(nonblank[0])
    header = _split_fields(lines.text(head_i), "\t")
    if len(header) < 2:
        raise IlluminaParseError(
            f"{p}: the header must have a probe id column and at least one sample column"
        )
    body_idx = nonblank[1:]
    if body_idx.size == 0:
        raise IlluminaParseError(f"{p}: no data rows")
    width = len(header)
    counts = lines.count(9)[body_idx] + 1
    bad = np.flatnonzero(counts != width)
    if bad.size:
        r = int(bad[0])
        raise IlluminaParseError(
            f"{p}: line {int(body_idx[r]) + 1} has {int(counts[r])} fields, the header has {width}"
        )
    line_of_row = body_idx + 1
    skip = np.setdiff1d(np.arange(len(lines), dtype=np.int64), body_idx, assume_unique=True)
    num_idx = list(range(1, width))
    read = dict(
        sep="\t",
        header=None,
        names=list(range(width)),
        skip_blank_lines=False,
        skiprows=set(skip.tolist()),
        encoding=lines.encoding,
        engine="c",
        index_col=False,
    )
    try:
        df = pd.read_csv(io.BytesIO(data), dtype={0: str, **{i: np.float64 for i in num_idx}}, **read)
    except ValueError as exc:
        _raise_cell_error(data, read, num_idx, header, line_of_row, str(p), exc)
        raise
    ids = df[0].fillna("").astype(str).to_numpy(dtype=object)
    values = df[num_idx].to_numpy(dtype=np.float64)
    return [h.strip() for h in header[1:]], ids, values


def write_numeric_matrix(
    path: str | os.PathLike, id_header: str, columns: Sequence[str], ids, values
) -> None:
    """Write a TSV matrix atomically (temp file in the same folder, then rename).

    Values are written with Python's shortest round-trip representation, so reading the file back
    gives the same doubles bit for bit. Nothing is left behind if writing fails.
    """
    target = Path(path)
    values = np.asarray(values, dtype=np.float64)
    ids = np.asarray(ids, dtype=object)
    if values.shape != (ids.size, len(columns)):
        raise ValueError(
            f"values shape {values.shape} does not match {ids.size} ids x {len(columns)} columns"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".refine-tmp-", suffix=f"-{target.name}", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\t".join([id_header, *columns]) + "\n")
            chunk = 20000
            for start in range(0, ids.size, chunk):
                stop = min(start + chunk, ids.size)
                frame = pd.DataFrame(values[start:stop], index=pd.Index(ids[start:stop]))
                # float_format=None: pandas writes repr(float), the shortest round-trip form.
                frame.to_csv(fh, sep="\t", header=False, index=True, na_rep="NA", lineterminator="\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
