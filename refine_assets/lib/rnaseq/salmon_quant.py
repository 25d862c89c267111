"""Salmon quantification of one run: .sra -> fastq-dump into named pipes -> salmon quant -> QC gates.

As refine.bio does (``processors/salmon.py``), reads never touch the disk: ``fastq-dump --split-3``
writes into FIFOs that ``salmon quant`` reads. For a paired run the unmated reads (``<run>.fastq``
of ``--split-3``) are drained and discarded. The read length that chooses the index (long when the
mean read length is > 75 bp) is measured on the first 2,000 spots (``fastq-dump -X``). salmon runs
with ``-l A --seqBias --validateMappings`` and, for paired-end data, ``--gcBias`` (refine.bio's
docs say it uses it; its code forgot it). ENA fastq files (runs with unmated reads) go to salmon as
files, without fastq-dump.

QC gates (refine.bio had none; :func:`qc_gates`): minimum mapping rate (default 10 %), at least one
read processed, a detected library type, and flags for likely single-cell (read 1 of 26-28 bp, the
10x barcode read) or long-read data (mean > 500 bp).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

LONG_READ_THRESHOLD = 75.0  # refine.bio: mean read length > 75 -> long index (k=31)
DEFAULT_MIN_MAPPING_RATE = 10.0


class ToolMissingError(RuntimeError):
    """A required command-line tool is not installed (message says how to install it)."""


class QuantificationError(ValueError):
    """fastq-dump or salmon failed on a run (the message names the run and the tool's last words)."""


def tool_version(name: str) -> str:
    """``salmon`` / ``fastq-dump`` version string; :class:`ToolMissingError` when absent."""
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(
            f"{name} not found: install the Debian packages salmon and sra-toolkit (scripts/setup.sh)"
        )
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    text = (out.stdout + out.stderr).strip()
    match = re.search(r"(\d+\.\d+\.\d+)", text)
    return match.group(1) if match else text


@dataclass
class ReadInfo:
    """Layout and read lengths of a run, from its first spots."""

    paired: bool
    mean_length: float
    mean_length_read1: float
    spots_sampled: int

    @property
    def length_class(self) -> str:
        return "long" if self.mean_length > LONG_READ_THRESHOLD else "short"


def _fastq_lengths(path: Path) -> list[int]:
    with open(path) as fh:
        return [len(line.rstrip("\n")) for i, line in enumerate(fh) if i % 4 == 1]


def fastq_read_info(paths: list[Path], reads: int = 2000) -> ReadInfo:
    """Layout and mean read length of fastq files (plain or gzip, decided by content) from their first
    ``reads`` records, over both mates (refine.bio's FASTQ rule: the mean length of the sequence lines)."""
    import gzip

    lengths: list[list[int]] = []
    for path in paths:
        with open(path, "rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        seen: list[int] = []
        try:
            with opener(path, "rt", errors="replace") as fh:
                for i, line in enumerate(fh):
                    if i % 4 == 1:
                        seen.append(len(line.rstrip("\n")))
                        if len(seen) >= reads:
                            break
        except (OSError, EOFError) as exc:
            raise QuantificationError(f"{Path(path).name}: unreadable fastq ({exc})") from exc
        lengths.append(seen)
    every = [x for ls in lengths for x in ls]
    if not every:
        raise QuantificationError(f"{', '.join(Path(p).name for p in paths)}: no reads")
    return ReadInfo(
        paired=len(paths) == 2,
        mean_length=sum(every) / len(every),
        mean_length_read1=sum(lengths[0]) / max(len(lengths[0]), 1),
        spots_sampled=len(lengths[0]),
    )


def read_info(sra: str | Path, spots: int = 2000) -> ReadInfo:
    """Measure layout and mean read length on the first ``spots`` spots of a .sra file."""
    sra = Path(sra)
    with tempfile.TemporaryDirectory(prefix="refine-sra-") as tmp:
        proc = subprocess.run(
            [shutil.which("fastq-dump") or "fastq-dump", "-X", str(spots), "--split-3", "-O", tmp, str(sra)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise QuantificationError(f"{sra.name}: fastq-dump cannot read it ({proc.stderr.strip()[-300:]})")
        files = sorted(Path(tmp).glob("*.fastq"))
        mates = [f for f in files if re.search(r"_[12]\.fastq$", f.name)]
        use = mates or files
        if not use:
            raise QuantificationError(f"{sra.name}: no reads")
        lengths = [_fastq_lengths(f) for f in use]
        all_lengths = [x for ls in lengths for x in ls]
        return ReadInfo(
            paired=len(mates) == 2,
            mean_length=sum(all_lengths) / len(all_lengths),
            mean_length_read1=sum(lengths[0]) / max(len(lengths[0]), 1),
            spots_sampled=len(lengths[0]),
        )


@dataclass
class QuantRun:
    """What salmon wrote for one run and how it was called."""

    out_dir: Path
    command: list[str]
    salmon_version: str
    paired: bool
    seconds: float = 0.0

    @property
    def quant_sf(self) -> Path:
        return self.out_dir / "quant.sf"


def _salmon_cmd(index: Path, reads: list[Path], paired: bool, out_dir: Path, threads: int) -> list[str]:
    cmd = [shutil.which("salmon") or "salmon", "--no-version-check", "quant", "-i", str(index), "-l", "A"]
    cmd += ["-1", str(reads[0]), "-2", str(reads[1])] if paired else ["-r", str(reads[0])]
    # --minAssignedFrags 1: salmon's default (10) aborts a badly mapping run without writing
    # quant.sf or its mapping rate; the QC gates below decide instead, with the measured figures
    cmd += ["-p", str(threads), "--validateMappings", "--seqBias", "--minAssignedFrags", "1"]
    cmd += ["-o", str(out_dir)]
    if paired:
        cmd.append("--gcBias")
    return cmd


def _drain(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 16):
            pass


class _MateRelay:
    """Copies one mate's FIFO (written by fastq-dump) into the FIFO salmon reads, through a queue.

    Why: fastq-dump writes each mate file in large buffered blocks, while salmon reads the two mates
    in lockstep. With the two FIFOs connected directly, fastq-dump can block writing a block of
    read 1 that salmon will not read before it has read 2, which fastq-dump holds back: a deadlock
    (it hung our chain test on real paired reads). The relay decouples the two writers; the memory
    it holds is bounded: at most ``MAX_CHUNKS`` pipe reads (<= 64 KiB each, so <= 128 MiB per mate),
    far more than fastq-dump's output skew between the mates (a few of its buffers); when salmon
    is slower than fastq-dump the full queue simply makes fastq-dump wait, as a plain pipe would.
    If salmon stops reading (it failed), the relay keeps draining so fastq-dump can finish.
    """

    MAX_CHUNKS = 2048

    def __init__(self, source: Path, target: Path) -> None:
        import queue

        self.source, self.target = source, target
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=self.MAX_CHUNKS)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)

    def start(self) -> None:
        self.reader.start()
        self.writer.start()

    def _read(self) -> None:
        try:
            with open(self.source, "rb", buffering=0) as fh:  # unbuffered: whatever the pipe holds
                while chunk := fh.read(1 << 16):
                    self.chunks.put(chunk)
        finally:
            self.chunks.put(None)

    def _write(self) -> None:
        try:
            with open(self.target, "wb") as out:
                while (chunk := self.chunks.get()) is not None:
                    out.write(chunk)
        except OSError:  # salmon closed its end (it failed): drop the rest
            while self.chunks.get() is not None:
                pass

    def join(self) -> None:
        self.reader.join(timeout=5)
        self.writer.join(timeout=5)


def _unblock(paths: list[Path], flag: int) -> None:
    """Open each FIFO's other end without blocking, so a thread stuck in ``open`` returns."""
    for p in paths:
        with contextlib.suppress(OSError):
            os.close(os.open(p, flag | os.O_NONBLOCK))


def quantify_sra(
    sra: str | Path, index: str | Path, out_dir: str | Path, *, paired: bool, threads: int = 2
) -> QuantRun:
    """fastq-dump of ``sra`` through FIFOs into ``salmon quant`` (see module docstring).

    Paired runs go through :class:`_MateRelay` (one per mate); unmated reads are discarded.
    """
    import time

    sra, index, out_dir = Path(sra), Path(index), Path(out_dir)
    run = sra.name.split(".")[0]
    version = tool_version("salmon")
    tool_version("fastq-dump")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="refine-fifo-") as tmp:
        fifo_dir = Path(tmp)
        dump_dir = fifo_dir / "dump"
        dump_dir.mkdir()
        mates = [dump_dir / f"{run}_1.fastq", dump_dir / f"{run}_2.fastq"]
        single = dump_dir / f"{run}.fastq"
        salmon_in = [fifo_dir / "mate_1.fastq", fifo_dir / "mate_2.fastq"]
        for p in [*mates, single, *salmon_in]:
            os.mkfifo(p)
        relays = [_MateRelay(m, s) for m, s in zip(mates, salmon_in, strict=True)] if paired else []
        reads = salmon_in if paired else [single]
        drains = [single] if paired else mates
        drainers = [threading.Thread(target=_drain, args=(p,), daemon=True) for p in drains]
        for t in drainers:
            t.start()
        for r in relays:
            r.start()
        cmd = _salmon_cmd(index, reads, paired, out_dir, threads)
        # salmon's progress output goes to a file: an unread pipe would fill and block salmon
        salmon_log = open(fifo_dir / "salmon.log", "w+")  # noqa: SIM115 - closed below
        salmon = subprocess.Popen(cmd, stdout=salmon_log, stderr=subprocess.STDOUT, text=True)
        dump = subprocess.Popen(
            [shutil.which("fastq-dump") or "fastq-dump", "--split-3", "-O", str(dump_dir), str(sra)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        while True:
            try:
                _out, dump_err = dump.communicate(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if salmon.poll() is not None:
                    if paired:  # relays switch to draining once their writers see the closed end
                        _unblock(salmon_in, os.O_RDONLY)
                    else:  # nothing reads the direct FIFO any more: stop fastq-dump
                        dump.kill()
        # FIFOs fastq-dump never opened: release their readers (EOF reaches salmon / the relays)
        _unblock([*drains, *mates, single], os.O_WRONLY)
        for r in relays:
            r.reader.join(timeout=30)
        # salmon may have died before opening its inputs: release relay writers stuck in open()
        if salmon.poll() is not None:
            _unblock(salmon_in, os.O_RDONLY)
        for r in relays:
            r.join()
        try:
            salmon.wait(timeout=24 * 3600)
        finally:
            salmon_log.seek(0)
            s_err = salmon_log.read()
            salmon_log.close()
        for t in drainers:
            t.join(timeout=5)
    if dump.returncode != 0:
        raise QuantificationError(f"{run}: fastq-dump failed ({dump_err.strip()[-300:]})")
    if salmon.returncode != 0 or not (out_dir / "quant.sf").is_file():
        raise QuantificationError(
            f"{run}: salmon quant failed (exit {salmon.returncode}: {s_err.strip()[-300:]})"
        )
    return QuantRun(out_dir, cmd, version, paired, time.perf_counter() - t0)


def quantify_fastq(
    fastq: list[Path], index: str | Path, out_dir: str | Path, *, threads: int = 2
) -> QuantRun:
    """salmon quant on fastq files (ENA ``_1``/``_2`` for runs with unmated reads, or one file)."""
    import time

    version = tool_version("salmon")
    paired = len(fastq) == 2
    cmd = _salmon_cmd(Path(index), fastq, paired, Path(out_dir), threads)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (Path(out_dir) / "quant.sf").is_file():
        raise QuantificationError(
            f"salmon quant failed (exit {proc.returncode}: {proc.stderr.strip()[-300:]})"
        )
    return QuantRun(Path(out_dir), cmd, version, paired, time.perf_counter() - t0)


@dataclass
class QcResult:
    """QC gate outcome of one salmon run."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    mapping_rate: float | None = None
    num_processed: int | None = None
    library_type: str | None = None
    single_cell_suspect: bool = False
    long_read_suspect: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def qc_gates(
    out_dir: str | Path, reads: ReadInfo | None = None, *, min_mapping_rate: float = DEFAULT_MIN_MAPPING_RATE
) -> QcResult:
    """Evaluate the gates on salmon's ``aux_info/meta_info.json`` and ``lib_format_counts.json``."""
    out_dir = Path(out_dir)
    try:
        meta = json.loads((out_dir / "aux_info" / "meta_info.json").read_text())
    except (OSError, ValueError) as exc:
        return QcResult(False, [f"salmon meta_info.json unreadable ({exc})"])
    try:
        fmt = json.loads((out_dir / "lib_format_counts.json").read_text())
    except (OSError, ValueError):
        fmt = {}
    rate = float(meta.get("percent_mapped", 0.0))
    processed = int(meta.get("num_processed", 0))
    lib = fmt.get("expected_format") or (meta.get("library_types") or [None])[0]
    res = QcResult(True, mapping_rate=rate, num_processed=processed, library_type=lib)
    if processed == 0:
        res.reasons.append("no reads processed")
    if rate < min_mapping_rate:
        res.reasons.append(f"mapping rate {rate:.3g}% below the {min_mapping_rate:g}% minimum")
    if not lib or (lib == "U" and not fmt):
        res.reasons.append("library type not detected")
    if reads is not None:
        res.single_cell_suspect = 24 <= reads.mean_length_read1 <= 30 and reads.paired
        res.long_read_suspect = reads.mean_length > 500
        if res.single_cell_suspect:
            res.reasons.append("read 1 looks like a single-cell barcode read (26-28 bp): not bulk RNA-seq")
        if res.long_read_suspect:
            res.reasons.append("mean read length > 500 bp: long-read data, not short-read RNA-seq")
    res.passed = not res.reasons
    return res
