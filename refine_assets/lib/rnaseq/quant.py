"""Fast, validating reader of salmon ``quant.sf`` files, and their alignment across samples.

``quant.sf`` (salmon docs, "Output"; all salmon versions refine.bio used, 0.9.1–0.13.1, and 1.x) is a
tab-separated table with exactly the header ``Name Length EffectiveLength TPM NumReads``: transcript
id, transcript length (integer), effective length, TPM and estimated reads. tximport reads the same
columns for ``type="salmon"`` (txIdCol ``Name``, abundance ``TPM``, counts ``NumReads``, length
``EffectiveLength``; methods.md §6).

Validation (refine.bio teardown §5.4 lists truncated quant.sf, issue #2191, and mixed indices,
issue #1496, among its tximport failures): every problem raises :class:`QuantFileError` (a
``ValueError``) whose message names the file and what is wrong — unreadable or truncated gzip
stream, wrong header, last line not newline-terminated (a file cut in the middle of a line would
otherwise parse silently with a shortened last number), missing or extra fields, non-numeric,
non-finite or negative values, empty or duplicated transcript ids, no rows. A file truncated exactly
at a line boundary cannot be recognised on its own; it is caught when samples are aligned, because
its transcript set then differs from the other samples'.

Alignment (:func:`read_quant_files`, :func:`iter_quant_samples`): all samples of one tximport must
come from the same salmon index. The first sample is the reference; a later sample with the same
transcripts in the same order is used as is (the common case), one with the same transcripts in a
different order is reordered to the reference order (R tximport would stop; the numbers are those
R gives on reordered files), and a sample whose transcript set or transcript lengths differ raises
:class:`QuantIndexMismatchError` naming both files (never mixed, never intersected). Two indices
built from the same transcriptome with different k (refine.bio's LONG k=31 / SHORT k=23) have
identical transcript sets and lengths; telling those apart needs provenance from the caller
(``index_ids`` of :func:`refine_assets.lib.rnaseq.tximport.tximport`).

Numbers are parsed by polars' CSV reader (correctly rounded decimal→float64), so values equal R's
``read.delim``/``readr`` parse to the last bit or within 1 ulp. Reading is parallel over files
(threads; gzip and the parser release the GIL) with a bounded prefetch window so memory stays at a
few files at a time when streaming.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from refine_assets.lib.gz import gunzip

QUANT_COLUMNS: tuple[str, ...] = ("Name", "Length", "EffectiveLength", "TPM", "NumReads")
QUANT_HEADER = "\t".join(QUANT_COLUMNS)
QUANT_FILE_NAMES: tuple[str, ...] = ("quant.sf", "quant.sf.gz")

_SCHEMA = {
    "Name": pl.Utf8,
    "Length": pl.Int64,
    "EffectiveLength": pl.Float64,
    "TPM": pl.Float64,
    "NumReads": pl.Float64,
}
_T = TypeVar("_T")
_R = TypeVar("_R")


class QuantFileError(ValueError):
    """A ``quant.sf`` file is missing, truncated or garbled; the message names the file."""


class QuantIndexMismatchError(QuantFileError):
    """Samples were quantified against different salmon indices (transcript sets or lengths differ)."""


@dataclass(frozen=True, eq=False)
class QuantSample:
    """One parsed ``quant.sf``: per-transcript arrays in file order.

    ``transcripts`` is an object array of ``str``; ``length`` int64; the others float64 — all of
    length ``n_transcripts``.
    """

    name: str
    path: Path
    transcripts: np.ndarray
    length: np.ndarray
    effective_length: np.ndarray
    tpm: np.ndarray
    num_reads: np.ndarray
    #: the transcript ids as parsed (compared with the next files' ids without Python strings)
    names: pl.Series | None = field(default=None, repr=False)

    @property
    def n_transcripts(self) -> int:
        return int(self.transcripts.shape[0])

    def index_signature(self) -> str:
        """sha256 (hex) of the transcript ids and lengths, in file order.

        Equal for samples quantified against indices with the same transcripts (same order and
        lengths); use it to group runs by index before calling tximport.
        """
        return index_signature(self.transcripts, self.length)


@dataclass(frozen=True, eq=False)
class QuantMatrix:
    """Transcript × sample matrices of one experiment, aligned to a common transcript order.

    ``transcripts`` (object array of str, length T), ``length`` (int64, T; identical in every
    sample), ``effective_length`` / ``tpm`` / ``num_reads`` (float64, T × S, column j = sample
    ``samples[j]``). ``paths`` are the files read (empty when built from arrays).
    """

    samples: tuple[str, ...]
    transcripts: np.ndarray
    length: np.ndarray
    effective_length: np.ndarray
    tpm: np.ndarray
    num_reads: np.ndarray
    paths: tuple[Path, ...] = field(default=())

    def __post_init__(self) -> None:
        n_tx, n_s = self.transcripts.shape[0], len(self.samples)
        if n_s == 0 or n_tx == 0:
            raise ValueError("QuantMatrix needs at least one sample and one transcript")
        if len(set(self.samples)) != n_s:
            raise ValueError(f"QuantMatrix sample names are not unique: {list(self.samples)}")
        if self.length.shape != (n_tx,):
            raise ValueError(f"length has shape {self.length.shape}, expected ({n_tx},)")
        for name in ("effective_length", "tpm", "num_reads"):
            arr = getattr(self, name)
            if arr.shape != (n_tx, n_s):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({n_tx}, {n_s})")
        if self.paths and len(self.paths) != n_s:
            raise ValueError("QuantMatrix paths must be empty or one per sample")

    @classmethod
    def from_arrays(
        cls,
        samples: Sequence[str],
        transcripts: Sequence[str],
        effective_length: Any,
        tpm: Any,
        num_reads: Any,
        length: Any | None = None,
    ) -> QuantMatrix:
        """Build from array-likes (T × S matrices; ``length`` defaults to rounded mean EffectiveLength).

        Values are checked like the file reader does (finite, >= 0); ``ValueError`` otherwise.
        """
        eff = np.asarray(effective_length, dtype=np.float64).reshape(len(transcripts), len(samples))
        tx = np.asarray(list(transcripts), dtype=object)
        if length is None:
            length = np.rint(eff.mean(axis=1))
        tpm_a = np.asarray(tpm, dtype=np.float64).reshape(eff.shape)
        reads_a = np.asarray(num_reads, dtype=np.float64).reshape(eff.shape)
        for label, arr in (("effective_length", eff), ("tpm", tpm_a), ("num_reads", reads_a)):
            if not (np.isfinite(arr) & (arr >= 0)).all():
                raise ValueError(f"{label} must be finite and >= 0")
        return cls(
            samples=tuple(samples),
            transcripts=tx,
            length=np.asarray(length, dtype=np.int64),
            effective_length=eff,
            tpm=tpm_a,
            num_reads=reads_a,
        )

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def n_transcripts(self) -> int:
        return int(self.transcripts.shape[0])

    def sample(self, j: int) -> QuantSample:
        """Column ``j`` as a :class:`QuantSample` (views, no copy)."""
        return QuantSample(
            name=self.samples[j],
            path=self.paths[j] if self.paths else Path(self.samples[j]),
            transcripts=self.transcripts,
            length=self.length,
            effective_length=self.effective_length[:, j],
            tpm=self.tpm[:, j],
            num_reads=self.num_reads[:, j],
        )


def index_signature(transcripts: np.ndarray, length: np.ndarray) -> str:
    """sha256 hex digest of transcript ids (newline-joined, UTF-8) and their int64 lengths."""
    digest = hashlib.sha256()
    digest.update("\n".join(transcripts.tolist()).encode())
    digest.update(b"\0")
    digest.update(np.ascontiguousarray(length, dtype="<i8").tobytes())
    return digest.hexdigest()


def resolve_quant_path(path: str | os.PathLike[str]) -> tuple[str, Path]:
    """(sample name, quant file) for a command-line PATH.

    A directory must hold exactly one of ``quant.sf`` / ``quant.sf.gz``; the sample name is the
    directory's name. A file named ``quant.sf``/``quant.sf.gz`` is named after its directory; any
    other file after its name without ``.gz`` and then without its last suffix
    (``SRR1.sf.gz`` → ``SRR1``).
    """
    p = Path(path)
    absolute = Path(os.path.abspath(p))
    if p.is_dir():
        found = [p / n for n in QUANT_FILE_NAMES if (p / n).is_file()]
        if not found:
            raise QuantFileError(f"{p}: directory holds no quant.sf or quant.sf.gz")
        if len(found) > 1:
            raise QuantFileError(f"{p}: directory holds both quant.sf and quant.sf.gz; keep one")
        return absolute.name, found[0]
    if not p.is_file():
        raise QuantFileError(f"{p}: no such quant.sf file or directory")
    if p.name in QUANT_FILE_NAMES:
        return absolute.parent.name, p
    stem = p.name[:-3] if p.name.endswith(".gz") else p.name
    return Path(stem).stem or stem, p


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise QuantFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gunzip(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise QuantFileError(f"{path}: truncated or corrupt gzip stream ({exc})") from exc
    return data


def _first_bad_line(mask: np.ndarray) -> int:
    """1-based file line number of the first True row (line 1 is the header)."""
    return int(np.flatnonzero(mask)[0]) + 2


def parse_quant_sf(data: bytes, path: Path, name: str, reference: QuantSample | None = None) -> QuantSample:
    """Parse and validate the (decompressed) bytes of one ``quant.sf``; see the module docstring.

    ``reference``: a sample already read; when this file lists exactly its transcript ids (the
    usual case within an experiment) they are shared with it instead of being converted again.
    """
    newline = data.find(b"\n")
    header = (data if newline < 0 else data[:newline]).rstrip(b"\r").decode("utf-8", "replace")
    if header != QUANT_HEADER:
        shown = header[:200] if header else "(empty file)"
        raise QuantFileError(
            f"{path}: not a salmon quant.sf: header is {shown!r}, expected {QUANT_HEADER!r} (tab-separated)"
        )
    if not data.endswith(b"\n"):
        last = data[data.rfind(b"\n") + 1 :][:80].decode("utf-8", "replace")
        raise QuantFileError(
            f"{path}: truncated: the last line {last!r} has no newline (file cut while being written?)"
        )
    try:
        df = pl.read_csv(data, separator="\t", has_header=True, schema=_SCHEMA, quote_char=None)
    except pl.exceptions.PolarsError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QuantFileError(f"{path}: garbled quant.sf: {detail}") from exc
    if df.height == 0:
        raise QuantFileError(f"{path}: quant.sf has a header but no transcripts")
    if any(column.null_count() for column in df.get_columns()):  # Series calls: no query to plan
        nulls = df.select(pl.any_horizontal(pl.all().is_null())).to_series().to_numpy()
        raise QuantFileError(
            f"{path}: line {_first_bad_line(nulls)}: missing fields (blank, truncated or garbled line)"
        )
    names = df.get_column("Name")
    shared = reference is not None and reference.names is not None and names.equals(reference.names)
    if not shared:
        name_bytes = names.str.len_bytes()
        if name_bytes.min() == 0:
            raise QuantFileError(
                f"{path}: line {_first_bad_line((name_bytes == 0).to_numpy())}: empty transcript id"
            )
    length = df.get_column("Length").to_numpy()
    cols = {c: df.get_column(c).to_numpy() for c in ("EffectiveLength", "TPM", "NumReads")}
    if (length < 0).any():
        raise QuantFileError(f"{path}: line {_first_bad_line(length < 0)}: negative Length")
    for col, arr in cols.items():
        bad = ~(np.isfinite(arr) & (arr >= 0))
        if bad.any():
            line = _first_bad_line(bad)
            value = float(arr[line - 2])
            raise QuantFileError(f"{path}: line {line}: {col} is {value!r} (must be finite and >= 0)")
    if not shared and names.n_unique() != df.height:
        dup = names.is_duplicated()
        examples = names.filter(dup).unique(maintain_order=True).head(3).to_list()
        raise QuantFileError(
            f"{path}: {int(dup.sum())} rows have duplicated transcript ids (e.g. {examples}); "
            "a salmon quant.sf lists each transcript once"
        )
    return QuantSample(
        name=name,
        path=path,
        transcripts=reference.transcripts if shared else names.to_numpy().astype(object, copy=False),
        length=length.astype(np.int64, copy=False),
        effective_length=cols["EffectiveLength"],
        tpm=cols["TPM"],
        num_reads=cols["NumReads"],
        names=names,
    )


def read_quant_file(path: str | os.PathLike[str], name: str | None = None) -> QuantSample:
    """Read and validate one ``quant.sf`` (plain or gzip) or a directory holding one.

    ``name`` defaults to the sample name of :func:`resolve_quant_path`. Raises
    :class:`QuantFileError` naming the file on any problem.
    """
    default_name, file = resolve_quant_path(path)
    return parse_quant_sf(_read_bytes(file), file, name or default_name)


def read_salmon_meta(quant_file: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``aux_info/meta_info.json`` beside a quant.sf (salmon writes it), or None if absent/unreadable."""
    meta = Path(quant_file).parent / "aux_info" / "meta_info.json"
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError):
        return None


def _ordered_map(func: Callable[[_T], _R], items: Sequence[_T], threads: int, window: int) -> Iterator[_R]:
    """``map(func, items)`` in order, ``threads`` at a time, at most ``window`` results held ahead.

    The first ``window`` items are submitted at once, when this is called (not when the first result
    is asked for): the caller's work before it iterates overlaps with the reading.
    """
    if threads <= 1 or len(items) <= 1:
        return map(func, items)
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="quant-read")
    pending: deque[Future[_R]] = deque(executor.submit(func, item) for item in items[:window])

    def results() -> Iterator[_R]:
        try:
            for nxt in range(window, len(items) + window):
                result = pending.popleft().result()
                if nxt < len(items):
                    pending.append(executor.submit(func, items[nxt]))
                yield result
                if not pending:
                    return
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    return results()


def _default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def resolve_sample_names(
    paths: Sequence[str | os.PathLike[str]], names: Sequence[str] | None
) -> list[tuple[str, Path]]:
    """[(sample name, quant file)] for ``paths`` (:func:`resolve_quant_path`, or ``names``); names must be unique."""
    resolved = [resolve_quant_path(p) for p in paths]
    if names is not None:
        if len(names) != len(resolved):
            raise ValueError(f"{len(names)} sample names for {len(resolved)} quant files")
        resolved = [(n, f) for n, (_, f) in zip(names, resolved, strict=True)]
    seen: dict[str, Path] = {}
    for n, f in resolved:
        if not n:
            raise QuantFileError(f"{f}: empty sample name")
        if n in seen:
            raise QuantFileError(
                f"two quant files have the same sample name {n!r}: {seen[n]} and {f} "
                "(sample names come from the directory names)"
            )
        seen[n] = f
    return resolved


def _mismatch_message(
    ref: QuantSample, other: QuantSample, only_ref: np.ndarray, only_other: np.ndarray
) -> str:
    def show(a: np.ndarray) -> str:
        return ", ".join(map(str, a[:3].tolist())) + (", ..." if a.size > 3 else "")

    parts = [
        f"{other.path} ({other.name}, {other.n_transcripts} transcripts) was quantified against a "
        f"different salmon index than {ref.path} ({ref.name}, {ref.n_transcripts} transcripts)"
    ]
    if only_other.size:
        parts.append(f"{only_other.size} transcripts only in {other.name} [{show(only_other)}]")
    if only_ref.size:
        parts.append(f"{only_ref.size} only in {ref.name} [{show(only_ref)}]")
    parts.append("runs quantified with different indices are never mixed in one tximport (refine.bio #1496)")
    return "; ".join(parts)


def align_to_reference(ref: QuantSample, other: QuantSample) -> QuantSample:
    """``other`` with its rows in ``ref``'s transcript order, or :class:`QuantIndexMismatchError`.

    Same ids in the same order: returned unchanged. Same id set, other order: reordered. Different
    sets (or a truncated file) or different transcript lengths: error naming both files.
    """
    if other.transcripts is ref.transcripts or (
        other.n_transcripts == ref.n_transcripts and np.array_equal(other.transcripts, ref.transcripts)
    ):
        perm = None
    else:
        ref_s = pl.Series(ref.transcripts.tolist(), dtype=pl.Utf8)
        oth_s = pl.Series(other.transcripts.tolist(), dtype=pl.Utf8)
        in_ref = oth_s.is_in(ref_s.implode()).to_numpy()
        in_other = ref_s.is_in(oth_s.implode()).to_numpy()
        if other.n_transcripts != ref.n_transcripts or not in_ref.all() or not in_other.all():
            raise QuantIndexMismatchError(
                _mismatch_message(ref, other, ref.transcripts[~in_other], other.transcripts[~in_ref])
            )
        position = {t: i for i, t in enumerate(other.transcripts.tolist())}
        perm = np.fromiter(
            (position[t] for t in ref.transcripts.tolist()), dtype=np.int64, count=ref.n_transcripts
        )
    length = other.length if perm is None else other.length[perm]
    if not np.array_equal(length, ref.length):
        bad = np.flatnonzero(length != ref.length)
        t = ref.transcripts[bad[0]]
        raise QuantIndexMismatchError(
            f"{other.path} ({other.name}) and {ref.path} ({ref.name}) list the same transcripts but "
            f"{bad.size} have different lengths (e.g. {t}: {int(length[bad[0]])} vs {int(ref.length[bad[0]])}): "
            "different salmon indices (transcriptome releases) are never mixed in one tximport"
        )
    if perm is None:
        return other
    return QuantSample(
        name=other.name,
        path=other.path,
        transcripts=ref.transcripts,
        length=ref.length,
        effective_length=other.effective_length[perm],
        tpm=other.tpm[perm],
        num_reads=other.num_reads[perm],
    )


def iter_quant_samples(
    paths: Sequence[str | os.PathLike[str]],
    names: Sequence[str] | None = None,
    *,
    threads: int | None = None,
    window: int = 4,
) -> Iterator[QuantSample]:
    """Read quant files in order, each aligned to the first one's transcript order.

    Streams: at most ``window`` parsed files are held at a time. Raises :class:`QuantFileError` /
    :class:`QuantIndexMismatchError` (see :func:`align_to_reference`) naming the file.
    """
    if not paths:
        raise ValueError("no quant files given")
    resolved = resolve_sample_names(paths, names)

    first_name, first_file = resolved[0]
    ref = parse_quant_sf(_read_bytes(first_file), first_file, first_name)

    def load(item: tuple[str, Path]) -> QuantSample:
        n, f = item
        return parse_quant_sf(_read_bytes(f), f, n, reference=ref)

    # the next files are being read while the caller works on the first (e.g. builds its gene map)
    rest = _ordered_map(load, resolved[1:], threads or _default_threads(), max(1, window))
    yield ref
    for sample in rest:
        yield align_to_reference(ref, sample)


def read_quant_files(
    paths: Sequence[str | os.PathLike[str]],
    names: Sequence[str] | None = None,
    *,
    threads: int | None = None,
) -> QuantMatrix:
    """Read several quant files into one :class:`QuantMatrix` (transcripts aligned across samples).

    ``paths``: quant.sf files (plain or gz) or directories holding one; ``names`` overrides the
    sample names (default: :func:`resolve_quant_path`). Fails clearly when a file is bad or when
    transcript sets/lengths differ between samples (different indices are never mixed).
    Memory: 3 float64 matrices of T × S.
    """
    samples: list[QuantSample] = []
    eff = tpm = reads = None
    for j, s in enumerate(iter_quant_samples(paths, names, threads=threads)):
        if eff is None:
            shape = (s.n_transcripts, len(paths))
            eff, tpm, reads = (np.empty(shape, order="F") for _ in range(3))
        eff[:, j], tpm[:, j], reads[:, j] = s.effective_length, s.tpm, s.num_reads
        samples.append(s)
    assert eff is not None and tpm is not None and reads is not None
    return QuantMatrix(
        samples=tuple(s.name for s in samples),
        transcripts=samples[0].transcripts,
        length=samples[0].length,
        effective_length=eff,
        tpm=tpm,
        num_reads=reads,
        paths=tuple(s.path for s in samples),
    )
