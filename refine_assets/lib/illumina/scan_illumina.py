"""refine.bio's Illumina SCAN (``illumina.R``) on a parsed non-normalized file, natively.

Pipeline (``specs/methods.md`` 2.1-2.3; the SCAN numerics are :mod:`refine_assets.lib.scan`):

1. **Probes**: the file's probe ids (first occurrence of each, in file order, as R's ``intersect``)
   that have a 50-mer in the platform's table (``<pkg>PROBESEQUENCE``); fewer than 1000 -> error.
   Sequences of another length cannot enter the 50-mer design matrix and are dropped (counted).
2. **Scale and background decision** (recorded in :class:`BackgroundDecision`):
   ``input_scale`` is ``linear`` when the signal's maximum exceeds 100, else ``log2``
   (``doLog2``). The data are taken as already background-corrected upstream (BeadStudio background
   subtraction) when any signal value is <= 0 (refine.bio: nec only if ``all(signal > 0)``). With
   ``background="auto"`` nec runs only on data not corrected upstream; ``"always"``/``"never"``
   force it.
3. **nec** (:func:`refine_assets.lib.illumina.nec.nec`, offset 16) with the file's detection
   p-values, on the common probes of all columns. Deliberate difference from refine.bio (teardown
   section 12 item 9, quirk Q7): nec runs on the **linear** scale it is designed for (log2 inputs
   are exponentiated first) and the corrected values are then log2-transformed; refine.bio ran nec
   on log2 values (so alpha was always clamped to 10). ``nec_scale="log2"`` reproduces refine.bio.
   Without nec, log2 is applied to linear data; non-positive values then make those samples fail
   with a clear reason (refine.bio failed them too, inside R).
4. **SCAN per sample** (:func:`refine_assets.lib.scan.scan_probe_values` with
   ``ScanParams.illumina()``: seed-0 jitter ``rnorm(n)/1e7`` reproduced with R's RNG as the spec
   requires (2.2, 2.4), 50-mer design with ``nT = 60 - (nA + nC + nG)``, EM (conv 0.5, intervalN
   10000, 25 bins), normalization in bins of **50** probes, 8-decimal rounding). Samples are
   independent; one sample's failure (non-finite values, EM failure) does not stop the others.
5. **Quality filter** after normalization (so the EM sees every probe with a sequence): only probes
   whose quality contains ``Good`` or ``Perfect``.
6. **Genes**: Ensembl ids of the probe (``<pkg>ENSEMBL``): one gene -> it; several -> the gene of
   refine.bio's tie-break map when given, else the probe is dropped; none -> dropped. Several probes
   may give the same gene (averaged at delivery, as refine.bio's smasher does).

Tolerance: the probe values inherit :mod:`refine_assets.lib.scan`'s agreement with R (~1e-8 given
identical inputs); nec agrees with limma to 1e-10. Nothing here imports dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from refine_assets.lib.illumina.nec import NecError, nec
from refine_assets.lib.illumina.parse import ColumnPair, IlluminaMatrix
from refine_assets.lib.illumina.probes import IlluminaProbeTable, good_quality
from refine_assets.lib.scan import ScanError, ScanParams, scan_probe_values, sequence_design_matrix

__all__ = [
    "BackgroundDecision",
    "IlluminaScanError",
    "IlluminaScanOptions",
    "IlluminaScanResult",
    "SampleScanInfo",
    "common_probes",
    "illumina_scan",
    "map_probes_to_genes",
]


class IlluminaScanError(ValueError):
    """The file cannot be processed at all (too few probes with sequences, invalid options)."""


@dataclass(frozen=True)
class IlluminaScanOptions:
    """Knobs of :func:`illumina_scan` (defaults = our method; see module doc for refine.bio's)."""

    background: Literal["auto", "always", "never"] = "auto"
    nec_scale: Literal["linear", "log2"] = "linear"
    offset: float = 16.0
    min_common_probes: int = 1000
    only_mapped: bool = True
    params: ScanParams = field(default_factory=ScanParams.illumina)


@dataclass(frozen=True)
class BackgroundDecision:
    """How the file's values were prepared for SCAN (recorded for every sample)."""

    input_scale: str
    max_signal: float
    nonpositive_values: int
    upstream_corrected: bool
    mode: str
    applied: bool
    nec_scale: str | None
    offset: float | None
    reason: str
    nec_params: list[dict] = field(default_factory=list)
    nec_flipped: bool | None = None
    nec_clamped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SampleScanInfo:
    """Per column: status (``ok``, ``failed``, ``skipped``), reason, EM diagnostics, detection QC."""

    column: str
    sample_accession: str | None
    status: str
    reason: str | None = None
    em_iterations: int | None = None
    em_converged: bool | None = None
    em_sample_size: int | None = None
    fraction_detected: float | None = None


@dataclass
class IlluminaScanResult:
    """SCAN output for one file.

    ``values[:, j]`` are the probe-level SCAN values of ``columns[j]`` for ``probe_ids`` (the common
    probes, file order), NaN for failed or skipped columns. ``gene_rows`` indexes ``probe_ids`` for
    every (probe, gene) pair kept after the quality filter and gene mapping, ``gene_ids`` the genes.
    """

    platform: str
    probe_ids: np.ndarray
    values: np.ndarray
    columns: list[ColumnPair]
    samples: list[SampleScanInfo]
    background: BackgroundDecision
    good_quality: np.ndarray
    gene_rows: np.ndarray
    gene_ids: np.ndarray
    counts: dict
    table_provenance: dict

    def probe_vector(self, j: int) -> pd.Series:
        """All common probes' SCAN values of column ``j`` (index = probe id)."""
        return pd.Series(self.values[:, j], index=pd.Index(self.probe_ids, name="id"), name="value")

    def gene_vector(self, j: int) -> pd.Series:
        """Column ``j`` by Ensembl gene (good-quality probes; a gene can repeat)."""
        return pd.Series(
            self.values[self.gene_rows, j], index=pd.Index(self.gene_ids, name="id"), name="value"
        )

    def vectors(self) -> dict[str, tuple[pd.Series, pd.Series]]:
        """``{sample accession: (gene vector, probe vector)}`` for mapped columns that succeeded."""
        out = {}
        for j, info in enumerate(self.samples):
            if info.status == "ok" and info.sample_accession:
                out[info.sample_accession] = (self.gene_vector(j), self.probe_vector(j))
        return out

    def provenance(self) -> dict:
        return {
            "platform": self.platform,
            "probe_table": self.table_provenance,
            "background": self.background.as_dict(),
            "counts": self.counts,
            "samples": [s.__dict__ for s in self.samples],
        }


def common_probes(
    matrix: IlluminaMatrix, table: IlluminaProbeTable, probe_length: int = 50
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(row indices into the file, sequences, counts): first occurrence of each file probe id that has a
    sequence of ``probe_length`` in the table, in file order."""
    ids = pd.Series(matrix.probe_ids, dtype=object)
    first = ~ids.duplicated(keep="first").to_numpy()
    seqs = table.sequences()
    seq_for = ids.map(seqs)
    has = seq_for.notna().to_numpy()
    lengths = seq_for.fillna("").astype(str).str.len().to_numpy()
    ok = first & has & (lengths == probe_length)
    rows = np.flatnonzero(ok)
    counts = {
        "file_rows": int(ids.size),
        "file_probes": int(first.sum()),
        "with_sequence": int((first & has).sum()),
        "wrong_length_sequence": int((first & has & (lengths != probe_length)).sum()),
        "common": int(rows.size),
    }
    return rows, seq_for.to_numpy(dtype=object)[rows], counts


def map_probes_to_genes(
    probe_ids: np.ndarray, table: IlluminaProbeTable, tiebreak: Mapping[str, str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(good-quality mask, row indices, Ensembl ids, counts) for ``probe_ids`` (spec 2.3).

    Good quality = ``Good``/``Perfect`` substring. Genes: one -> it; several -> ``tiebreak[probe]``
    when present, else dropped; none -> dropped.
    """
    info = table.lookup(probe_ids)
    good = good_quality(info["quality"].to_numpy(dtype=object))
    rows: list[int] = []
    genes: list[str] = []
    n_single = n_tie = n_multi_dropped = n_unmapped = 0
    for i in np.flatnonzero(good):  # per good probe: list handling, ~50k iterations, not numeric
        ens = info.at[i, "ensembl_ids"]
        if len(ens) == 1:
            rows.append(int(i))
            genes.append(ens[0])
            n_single += 1
        elif len(ens) > 1:
            pick = tiebreak.get(str(probe_ids[i])) if tiebreak else None
            if pick:
                rows.append(int(i))
                genes.append(pick)
                n_tie += 1
            else:
                n_multi_dropped += 1
        else:
            n_unmapped += 1
    counts = {
        "good_quality": int(good.sum()),
        "bad_quality": int((~good).sum()),
        "one_gene": n_single,
        "multi_gene_tiebroken": n_tie,
        "multi_gene_dropped": n_multi_dropped,
        "no_gene": n_unmapped,
    }
    return good, np.asarray(rows, dtype=np.int64), np.asarray(genes, dtype=object), counts


def _background(
    S: np.ndarray, P: np.ndarray, names: list[str], opts: IlluminaScanOptions
) -> tuple[np.ndarray, BackgroundDecision, dict[int, str]]:
    """log2-scale values for SCAN, the decision record, and per-column failures from nec."""
    finite = S[np.isfinite(S)]
    if finite.size == 0:
        raise IlluminaScanError("the signal has no finite value")
    mx = float(finite.max())
    scale = "linear" if mx > 100 else "log2"
    nonpos = int(np.count_nonzero(finite <= 0))
    upstream = nonpos > 0
    if opts.background not in ("auto", "always", "never"):
        raise IlluminaScanError(f"background must be auto, always or never (got {opts.background!r})")
    if opts.nec_scale not in ("linear", "log2"):
        raise IlluminaScanError(f"nec_scale must be linear or log2 (got {opts.nec_scale!r})")
    apply = opts.background == "always" or (opts.background == "auto" and not upstream)
    failures: dict[int, str] = {}
    if not apply:
        why = (
            f"{nonpos} signal value(s) <= 0: background already subtracted upstream"
            if upstream
            else "background correction disabled"
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            Y = np.log2(S) if scale == "linear" else S.copy()
        return (
            Y,
            BackgroundDecision(scale, mx, nonpos, upstream, opts.background, False, None, None, why),
            failures,
        )
    if opts.nec_scale == "linear":
        X = S if scale == "linear" else np.exp2(S)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            X = np.log2(S) if scale == "linear" else S
    try:
        res = nec(X, P, offset=opts.offset, names=names, errors="nan")
    except NecError as exc:
        raise IlluminaScanError(f"nec failed: {exc}") from exc
    for j in res.failed:
        failures[j] = f"nec: normexp parameters could not be estimated ({res.reasons.get(j, 'invalid')})"
    if opts.nec_scale == "linear":
        with np.errstate(invalid="ignore", divide="ignore"):
            Y = np.log2(res.values)
    else:
        Y = res.values
    why = (
        f"nec on {opts.nec_scale} scale (input {scale}, max {mx:.6g}; "
        + ("no value <= 0" if not upstream else f"{nonpos} value(s) <= 0, forced")
        + ")"
    )
    decision = BackgroundDecision(
        input_scale=scale,
        max_signal=mx,
        nonpositive_values=nonpos,
        upstream_corrected=upstream,
        mode=opts.background,
        applied=True,
        nec_scale=opts.nec_scale,
        offset=opts.offset,
        reason=why,
        nec_params=res.params.as_records(names),
        nec_flipped=res.params.flipped,
        nec_clamped=[names[j] for j in np.flatnonzero(res.clamped)],
    )
    return Y, decision, failures


def illumina_scan(
    matrix: IlluminaMatrix,
    table: IlluminaProbeTable,
    options: IlluminaScanOptions | None = None,
    *,
    tiebreak: Mapping[str, str] | None = None,
) -> IlluminaScanResult:
    """Background-correct and SCAN-normalize every sample of a parsed file (see module doc).

    Args:
        matrix: from :func:`refine_assets.lib.illumina.parse.parse_illumina_file`.
        table: the detected platform's probe table.
        options: :class:`IlluminaScanOptions`.
        tiebreak: refine.bio's probe -> gene map for multi-gene probes (optional).

    Raises:
        IlluminaScanError: fewer than ``min_common_probes`` probes with a 50-mer, no finite signal.
        Per-sample problems do not raise: they are recorded in ``samples`` with status ``failed``.
    """
    opts = options or IlluminaScanOptions()
    params = opts.params
    rows, seqs, counts = common_probes(matrix, table, params.probe_length)
    if rows.size < opts.min_common_probes:
        raise IlluminaScanError(
            f"{matrix.source}: only {rows.size} probes of the file have a {params.probe_length}-mer in "
            f"{table.platform} (at least {opts.min_common_probes} needed)"
        )
    probe_ids = matrix.probe_ids[rows]
    S = matrix.signal[rows]
    P = matrix.detection_p[rows]
    names = [c.signal_column for c in matrix.columns]
    Y, decision, failures = _background(S, P, names, opts)
    del S
    X = sequence_design_matrix(seqs, params.probe_length, t_offset=params.t_offset)
    k = len(matrix.columns)
    values = np.full((rows.size, k), np.nan)
    any_mapped = any(c.sample_accession for c in matrix.columns)
    infos = []
    for j, col in enumerate(matrix.columns):  # per sample: SCAN is single-sample by design
        with np.errstate(invalid="ignore"):
            detected = float(np.mean(P[:, j] < 0.01)) if np.isfinite(P[:, j]).any() else None
        base = {
            "column": col.signal_column,
            "sample_accession": col.sample_accession,
            "fraction_detected": detected,
        }
        if opts.only_mapped and any_mapped and not col.sample_accession:
            infos.append(SampleScanInfo(status="skipped", reason="column not mapped to a sample", **base))
            continue
        if j in failures:
            infos.append(SampleScanInfo(status="failed", reason=failures[j], **base))
            continue
        y = Y[:, j]
        bad = ~np.isfinite(y)
        if bad.any():
            nonpos = int(np.count_nonzero(matrix.signal[rows, j] <= 0))
            why = (
                f"{int(bad.sum())} non-finite value(s) after log2"
                + (
                    f" ({nonpos} signal value(s) <= 0: background-subtracted data without nec)"
                    if nonpos
                    else ""
                )
                + (" (missing values in the file)" if np.isnan(matrix.signal[rows, j]).any() else "")
            )
            infos.append(SampleScanInfo(status="failed", reason=why, **base))
            continue
        try:
            res = scan_probe_values(y, X, params)
        except ScanError as exc:
            infos.append(SampleScanInfo(status="failed", reason=f"SCAN: {exc}", **base))
            continue
        values[:, j] = res.values
        infos.append(
            SampleScanInfo(
                status="ok",
                em_iterations=res.em.iterations,
                em_converged=res.em.converged,
                em_sample_size=res.em.sample_size,
                **base,
            )
        )
    good, gene_rows, gene_ids, gcounts = map_probes_to_genes(probe_ids, table, tiebreak)
    counts.update(gcounts)
    counts["gene_rows"] = int(gene_rows.size)
    counts["tiebreak_map"] = tiebreak is not None
    return IlluminaScanResult(
        platform=table.platform,
        probe_ids=probe_ids,
        values=values,
        columns=list(matrix.columns),
        samples=infos,
        background=decision,
        good_quality=good,
        gene_rows=gene_rows,
        gene_ids=gene_ids,
        counts=counts,
        table_provenance=table.provenance(),
    )
