"""Deterministic inner join of sanitized sample vectors into a genes x samples matrix.

Reference doc ("Aggregations"): "only include genes (rows) that are represented in all samples being
aggregated. This is also known as an inner join". refine.bio (``smasher._inner_join``, teardown §6.3)
merged pandas frames one after another in input order, skipped a sample whose column already existed,
and silently skipped ("bad merge frame") a sample whose merge would leave no rows — so the result
depended on the input order and a sample could vanish without a reason (teardown §12 item 6).

Here (:class:`InnerJoin`):

* the gene set is the intersection of all samples' id sets — exactly, whatever the order;
* columns are the samples sorted by accession, rows the genes sorted by id (byte order): the matrix is a
  pure function of the *set* of (sample, vector) pairs, bit for bit;
* adding a sample twice, ids that repeat within a sample, or a values/ids length mismatch raise
  :class:`JoinError`; an empty intersection raises :class:`JoinError` with the per-sample gene counts,
  never a silent drop.

Memory: ids are interned once into integer codes (a pandas hash index), each sample keeps only its
int32 codes and its values in the storage dtype (``float32`` by default: 8 bytes per value instead of
an object id + float64), and the matrix is filled column by column (Fortran order, one contiguous column
per sample), releasing each sample's arrays as it goes. Peak: about codes + values of all samples + the
matrix.

Tolerance: values are copied, not computed; with ``dtype=float32`` each is rounded to the nearest
float32 (relative error <= 2**-24 ~ 6e-8), with ``float64`` they are exact. Verified in
``refine_assets_tests/unit/test_delivery_join.py`` (hand-built cases, all input permutations).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["InnerJoin", "JoinError", "JoinedMatrix", "inner_join"]


class JoinError(ValueError):
    """Samples that cannot be joined (duplicate sample, repeated ids, no gene common to all)."""


@dataclass
class JoinedMatrix:
    """``values`` genes x samples (Fortran order), ``genes`` (sorted, object array), ``samples`` (sorted);
    ``genes_per_sample`` = each sample's gene count before the join."""

    genes: np.ndarray
    samples: list[str]
    values: np.ndarray
    genes_per_sample: dict[str, int] = field(default_factory=dict)


class InnerJoin:
    """Accumulate samples (:meth:`add`), then build the matrix (:meth:`result`). See module docstring."""

    def __init__(self, dtype: np.dtype | type = np.float32) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise JoinError(f"storage dtype must be a float type, got {self.dtype}")
        self._vocab = pd.Index([], dtype=object)
        self._codes: dict[str, np.ndarray] = {}
        self._values: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._codes)

    def add(self, sample: str, ids: np.ndarray | list[str], values: np.ndarray) -> None:
        """Add one sample: unique ``ids`` (any order) and their ``values``."""
        if sample in self._codes:
            raise JoinError(f"sample {sample} added twice to the join")
        id_index = pd.Index(np.asarray(ids, dtype=object))
        vals = np.asarray(values)
        if vals.ndim != 1 or vals.shape[0] != len(id_index):
            raise JoinError(f"{sample}: {len(id_index)} ids but values of shape {vals.shape}")
        if not id_index.is_unique:
            dup = id_index[id_index.duplicated()][0]
            raise JoinError(f"{sample}: gene id {dup!r} repeats (sanitize the vector first)")
        codes = self._vocab.get_indexer(id_index)
        new = codes < 0
        if new.any():
            n_old = len(self._vocab)
            codes[new] = n_old + np.arange(int(new.sum()))
            self._vocab = self._vocab.append(id_index[new])
        self._codes[sample] = codes.astype(np.int32)
        self._values[sample] = vals.astype(self.dtype, copy=True)

    def result(self) -> JoinedMatrix:
        """The joined matrix; consumes the accumulated samples. JoinError if empty or no common gene."""
        samples = sorted(self._codes)
        n = len(samples)
        if n == 0:
            raise JoinError("no sample to join")
        per_sample = {s: int(self._codes[s].size) for s in samples}
        counts = np.zeros(len(self._vocab), dtype=np.int64)
        for s in samples:
            counts += np.bincount(self._codes[s], minlength=len(self._vocab))
        common = np.flatnonzero(counts == n)
        if common.size == 0:
            fewest = sorted(per_sample.items(), key=lambda kv: (kv[1], kv[0]))[:5]
            raise JoinError(
                f"no gene id is present in all {n} samples (genes per sample: "
                + ", ".join(f"{s}={c}" for s, c in fewest)
                + (", ..." if n > 5 else "")
                + ")"
            )
        names = self._vocab.to_numpy(dtype=object)[common]
        order = np.argsort(names.astype(str), kind="stable")
        genes = names[order]
        row_of = np.full(len(self._vocab), -1, dtype=np.int64)
        row_of[common[order]] = np.arange(common.size)
        matrix = np.empty((common.size, n), dtype=self.dtype, order="F")
        for j, s in enumerate(samples):
            codes = self._codes.pop(s)
            vals = self._values.pop(s)
            rows = row_of[codes]
            keep = rows >= 0
            matrix[rows[keep], j] = vals[keep]
        self._vocab = pd.Index([], dtype=object)
        return JoinedMatrix(genes, samples, matrix, per_sample)


def inner_join(
    vectors: Iterable[tuple[str, np.ndarray, np.ndarray]], *, dtype: np.dtype | type = np.float32
) -> JoinedMatrix:
    """Inner join of ``(sample, ids, values)`` triples (any order): see :class:`InnerJoin`."""
    join = InnerJoin(dtype)
    for sample, ids, values in vectors:
        join.add(sample, ids, values)
    return join.result()
