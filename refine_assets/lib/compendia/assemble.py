"""Assemble per-sample vectors into one on-disk float32 genes x samples matrix (memory-mapped).

Replaces refine.bio's ``smashing_utils.process_frames_for_key`` (``refinebio-teardown.md`` §8.2 step 2),
which loads every file twice into pandas and fills two preallocated float32 DataFrames. Here:

* **Pass 1** reads every vector (``processed/<EXP>/<SAMPLE>.parquet``: ``id``, ``value``; see
  ``refine_assets.lib.processing.vectors``) and counts in how many samples each id has a value. As in
  refine.bio the gene universe is the ids present in **more than ``min_presence`` (50 %) of all
  loaded samples** (microarray and RNA-seq together), sorted. Worker threads read the Parquet files
  and look the ids up in the universe with Arrow's hash-based ``index_in`` (the GIL is released);
  the main thread only adds the rare new ids and the counts.
* **Pass 2** reads every vector again, maps its ids to the sorted gene rows (``index_in``), averages
  duplicate ids, and writes the sample's values into its column of a ``numpy.memmap`` of shape
  (genes, samples), float32, **Fortran order** (each sample's column is contiguous on disk: a block of
  samples is one sequential write; QN and the KS gate read whole columns; the imputation reads the same
  bytes as a C-order samples x genes matrix, the orientation refine.bio hands to fancyimpute). Absent
  genes are NaN. Columns: microarray samples sorted by accession, then RNA-seq samples sorted
  (refine.bio's order), written in blocks of ``batch_columns`` samples.

Nothing is ever merged: no pandas frame per sample, no join. Memory: the id universe and its counts,
one batch of columns (``batch_columns`` x genes float32, plus the workers' columns of that batch) and
the vectors being read. The matrix lives on disk (page cache).

Differences from refine.bio, deliberate: presence counts ids with a finite value (refine.bio counts an
id even when its value is NaN); ``+-inf`` values are treated as missing from the start (refine.bio
counts them as present in the filters and turns them into NaN just before imputation); duplicate ids
within a sample are averaged over their finite values (refine.bio: ``groupby(index).mean()``, same
result). Ids are used as stored (the processors already strip Brainarray ``_at`` suffixes).
Unreadable vectors are recorded with a reason instead of failing the build.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refine_assets.lib.storage import ArtifactStore

__all__ = [
    "MICROARRAY",
    "RNASEQ",
    "AssembledMatrix",
    "AssemblyError",
    "SampleVector",
    "assemble_matrix",
    "normalize_technology",
]

MICROARRAY = "MICROARRAY"
RNASEQ = "RNA-SEQ"
_TECH_ALIASES = {"MICROARRAY": MICROARRAY, "RNA-SEQ": RNASEQ, "RNASEQ": RNASEQ, "RNA_SEQ": RNASEQ}
METADATA_KEY = b"refine_assets"


class AssemblyError(ValueError):
    """Bad input to the assembly (duplicate samples, unknown technology, nothing readable)."""


@dataclass(frozen=True)
class SampleVector:
    """One sample's processed vector: accession, technology (MICROARRAY | RNA-SEQ), storage key."""

    sample: str
    technology: str
    key: str


def normalize_technology(value: str, sample: str = "") -> str:
    """``MICROARRAY`` or ``RNA-SEQ`` from any case/spelling (rna-seq, RNASEQ, ...); AssemblyError else."""
    norm = _TECH_ALIASES.get(str(value).strip().upper())
    if norm is None:
        where = f" for sample {sample!r}" if sample else ""
        raise AssemblyError(f"unknown technology {value!r}{where} (expected MICROARRAY or RNA-SEQ)")
    return norm


@dataclass
class AssembledMatrix:
    """The assembled matrix on disk and what describes its rows and columns.

    ``path``: raw float32 file, shape ``(len(genes), len(samples))``, Fortran order (open with
    :meth:`open`). ``technologies``/``keys``/``provenance``/``n_values`` are per column;
    ``n_values`` = genes of the universe with a finite value in that sample. ``dropped`` maps samples
    that could not be used to the reason. ``universe_size`` = distinct ids seen before the presence
    filter; ``n_loaded`` = samples read successfully in pass 1 (the presence denominator).
    """

    path: Path
    genes: list[str]
    samples: list[str]
    technologies: list[str]
    keys: list[str]
    provenance: list[dict]
    n_values: np.ndarray
    dropped: dict[str, str] = field(default_factory=dict)
    universe_size: int = 0
    n_loaded: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.genes), len(self.samples))

    def open(self, mode: str = "r") -> np.memmap:
        """The matrix as a memmap (genes x samples, Fortran order); ``mode`` "r" or "r+"."""
        return np.memmap(self.path, dtype=np.float32, mode=mode, shape=self.shape, order="F")


def _read_table(store: ArtifactStore, key: str):
    """(table with ``id`` and ``value``, provenance, None) or (None, None, reason); never raises."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from refine_assets.lib.arrow_buffers import native_reader

    try:
        data = store.get_bytes(key)
    except (KeyError, FileNotFoundError, OSError) as exc:
        return None, None, f"the processed vector could not be read ({key}: {exc})"
    try:
        table = pq.read_table(native_reader(data), columns=["id", "value"])
    except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, None, f"the processed vector is not a readable id/value Parquet file ({key}: {first})"
    del data
    if table.num_rows == 0:
        return None, None, f"the processed vector has no rows ({key})"
    id_type = table.schema.field("id").type
    if not (pa.types.is_string(id_type) or pa.types.is_large_string(id_type)):
        return None, None, f"the processed vector's id column is not text ({key})"
    if not pa.types.is_floating(table.schema.field("value").type) and not pa.types.is_integer(
        table.schema.field("value").type
    ):
        return None, None, f"the processed vector's value column is not numeric ({key})"
    if table.column("id").null_count:
        return None, None, f"the processed vector has missing ids ({key})"
    meta = table.schema.metadata or {}
    try:
        prov = json.loads(meta.get(METADATA_KEY, b"{}"))
    except ValueError:
        prov = {}
    return table, prov, None


@dataclass
class _Pass1:
    ok: bool
    reason: str = ""
    codes: np.ndarray | None = None  # universe codes (at the batch's snapshot) with a finite value
    new_ids: list[str] | None = None  # ids with a finite value not in the snapshot (unique)
    provenance: dict | None = None


def _pass1(store: ArtifactStore, key: str, lookup, n_universe: int) -> _Pass1:
    """Worker: which universe ids have a finite value in this vector, and which ids are new."""
    import pyarrow.compute as pc

    table, prov, reason = _read_table(store, key)
    if table is None:
        return _Pass1(False, reason)
    ids = table.column("id")
    vals = table.column("value").cast("float64")
    ids = pc.filter(ids, pc.fill_null(pc.is_finite(vals), False))
    if n_universe:
        idx = pc.index_in(ids, options=lookup)
        found = idx.drop_null().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        seen = np.zeros(n_universe, dtype=bool)
        seen[found] = True  # de-duplicates repeated ids
        codes = np.flatnonzero(seen)
        missing = pc.filter(ids, pc.is_null(idx))
    else:
        codes = np.zeros(0, dtype=np.int64)
        missing = ids
    new_ids = pc.unique(missing).to_pylist() if len(missing) else []
    return _Pass1(True, codes=codes, new_ids=new_ids, provenance=prov)


@dataclass
class _Pass2:
    ok: bool
    reason: str = ""
    column: np.ndarray | None = None
    n_values: int = 0


def _pass2(store: ArtifactStore, key: str, lookup, n_genes: int) -> _Pass2:
    """Worker: the sample's column over the gene rows (duplicates averaged, missing = NaN)."""
    import pyarrow.compute as pc

    table, _prov, reason = _read_table(store, key)
    if table is None:
        return _Pass2(False, reason)
    rows = pc.index_in(table.column("id"), options=lookup).fill_null(-1).to_numpy(zero_copy_only=False)
    vals = table.column("value").cast("float64").to_numpy(zero_copy_only=False)
    ok = (rows >= 0) & np.isfinite(vals)
    r = rows[ok].astype(np.int64, copy=False)
    v = vals[ok]
    col = np.full(n_genes, np.nan, dtype=np.float32)
    if r.size:
        cnt = np.bincount(r, minlength=n_genes)
        if cnt.max() > 1:  # duplicate ids: mean of their finite values (refine.bio squish_duplicates)
            sums = np.bincount(r, weights=v, minlength=n_genes)
            hit = cnt > 0
            col[hit] = sums[hit] / cnt[hit]
        else:
            col[r] = v
    return _Pass2(True, column=col, n_values=int(np.count_nonzero(~np.isnan(col))))


def _batched(seq: Sequence, size: int) -> Iterable[Sequence]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def assemble_matrix(
    vectors: Sequence[SampleVector | tuple[str, str, str]],
    store: ArtifactStore,
    path: str | Path,
    *,
    min_presence: float = 0.5,
    workers: int = 4,
    batch_columns: int = 256,
    log: Callable[[str], None] | None = None,
) -> AssembledMatrix:
    """Build the genes x samples float32 memmap at ``path`` from per-sample vectors in ``store``.

    Contract: ``vectors`` lists (sample, technology, key); sample accessions must be unique and
    technologies MICROARRAY or RNA-SEQ (AssemblyError otherwise). Samples whose vector cannot be read
    go to ``dropped`` with a reason; if none can be read, or no id is present in more than
    ``min_presence`` of the loaded samples, AssemblyError is raised. The file at ``path`` is
    (over)written; the caller owns and deletes it. Values are the stored values rounded to float32
    (refine.bio's matrices are float32 too). ``workers`` threads read and map vectors (pyarrow releases
    the GIL); ``batch_columns`` samples are written per contiguous block.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    items: list[SampleVector] = []
    seen: set[str] = set()
    for v in vectors:
        sv = v if isinstance(v, SampleVector) else SampleVector(*v)
        sv = SampleVector(str(sv.sample), normalize_technology(sv.technology, sv.sample), str(sv.key))
        if sv.sample in seen:
            raise AssemblyError(f"sample {sv.sample!r} is listed more than once")
        seen.add(sv.sample)
        items.append(sv)
    if not items:
        raise AssemblyError("no sample vectors given")
    say = log or (lambda _m: None)
    workers = max(1, int(workers))
    batch_columns = max(1, int(batch_columns))

    # ---- pass 1: id universe and presence counts (ids with a finite value)
    universe: list[str] = []
    code_of: dict[str, int] = {}
    counts = np.zeros(0, dtype=np.int64)
    dropped: dict[str, str] = {}
    loaded: list[tuple[SampleVector, dict]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # the first vector alone seeds the universe, so later batches look most ids up in C++
        for batch in [items[:1], *_batched(items[1:], batch_columns)]:
            n_u = len(universe)
            lookup = pc.SetLookupOptions(value_set=pa.array(universe, pa.string())) if n_u else None
            results = list(pool.map(lambda sv, lk=lookup, n=n_u: _pass1(store, sv.key, lk, n), batch))
            for sv, res in zip(batch, results, strict=True):
                if not res.ok:
                    dropped[sv.sample] = res.reason
                    continue
                present = res.codes
                if res.new_ids:
                    extra = []
                    for gid in res.new_ids:
                        code = code_of.get(gid)
                        if code is None:
                            code = len(universe)
                            universe.append(gid)
                            code_of[gid] = code
                        extra.append(code)
                    present = np.concatenate([present, np.asarray(extra, dtype=np.int64)])
                if len(universe) > counts.size:
                    counts = np.concatenate([counts, np.zeros(len(universe) - counts.size, dtype=np.int64)])
                counts[present] += 1  # codes are unique within a sample
                loaded.append((sv, res.provenance or {}))
    n_loaded = len(loaded)
    if n_loaded == 0:
        raise AssemblyError(
            f"none of the {len(items)} sample vectors could be read; first problem: "
            f"{next(iter(dropped.values()))}"
        )
    keep = counts > min_presence * n_loaded  # refine.bio: count > total_samples * 0.5
    genes = sorted(universe[i] for i in np.flatnonzero(keep))
    say(
        f"pass 1: {n_loaded} vectors read, {len(universe)} distinct ids, {len(genes)} present in more than "
        f"{min_presence:.0%} of the samples"
    )
    if not genes:
        raise AssemblyError(
            f"no gene id has a value in more than {min_presence:.0%} of the {n_loaded} samples "
            "(do the vectors use the same gene ids?)"
        )
    universe_size = len(universe)
    del universe, code_of, counts

    # ---- column order: microarray sorted, then RNA-seq sorted
    loaded.sort(key=lambda t: (t[0].technology != MICROARRAY, t[0].sample))
    n_genes, n_samples = len(genes), len(loaded)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_genes, n_samples), order="F")
    n_values = np.zeros(n_samples, dtype=np.int64)
    lookup = pc.SetLookupOptions(value_set=pa.array(genes, pa.string()))

    # ---- pass 2: values into columns, one contiguous block of columns at a time
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for j0 in range(0, n_samples, batch_columns):
            batch = loaded[j0 : j0 + batch_columns]
            results = list(pool.map(lambda t: _pass2(store, t[0].key, lookup, n_genes), batch))
            buf = np.full((n_genes, len(batch)), np.nan, dtype=np.float32, order="F")
            for b, ((sv, _prov), res) in enumerate(zip(batch, results, strict=True)):
                if not res.ok:  # vanished or broken since pass 1
                    dropped[sv.sample] = res.reason
                    continue
                buf[:, b] = res.column
                n_values[j0 + b] = res.n_values
            del results
            mm[:, j0 : j0 + len(batch)] = buf
            del buf
    mm.flush()
    del mm
    say(f"pass 2: {n_genes} genes x {n_samples} samples written to {path}")
    return AssembledMatrix(
        path=path,
        genes=genes,
        samples=[t[0].sample for t in loaded],
        technologies=[t[0].technology for t in loaded],
        keys=[t[0].key for t in loaded],
        provenance=[t[1] for t in loaded],
        n_values=n_values,
        dropped=dropped,
        universe_size=universe_size,
        n_loaded=n_loaded,
    )
