"""Native tximport: salmon transcript quantifications → gene-level abundance, counts and length.

Follows Bioconductor ``tximport`` 1.6.0 (the version refine.bio runs; ``R/tximport.R``,
``R/summarizeToGene.R``, ``R/helper.R``) as called by refine.bio's ``tximport.R``:
``tximport(files, type="salmon", txOut=FALSE, tx2gene, countsFromAbundance=...)``, see
methods.md §6 and refinebio-teardown.md §5.4. For transcripts t of gene g and samples s:

1. tx2gene: duplicated transcript rows dropped (first kept); transcripts of the quant files absent
   from tx2gene are dropped and counted (R: ``message("transcripts missing from tx2gene: n")``);
   none present → error.
2. ``abundance[g,s] = Σ_t TPM[t,s]``; ``counts[g,s] = Σ_t NumReads[t,s]`` (R ``rowsum``).
3. ``length[g,s] = Σ_t TPM[t,s]·EffectiveLength[t,s] / abundance[g,s]`` (abundance-weighted mean
   effective length; NaN where the gene's abundance is 0).
4. NaN repair per gene (``replaceMissingLength``): all samples NaN → mean over the gene's
   transcripts of (mean over samples of EffectiveLength); otherwise each NaN ← geometric mean of the
   gene's non-NaN lengths.
5. ``countsFromAbundance``: ``"no"`` keeps (2); ``"scaledTPM"``: ``N = abundance``;
   ``"lengthScaledTPM"``: ``N[g,s] = abundance[g,s] · mean_s' length[g,s']`` (arithmetic mean over
   all samples of the run); then ``counts[:,s] = N[:,s] · Σ_g counts[g,s] / Σ_g N[g,s]``
   (``makeCountsFromAbundance``). A sample whose retained TPMs are all 0 gets a NaN column, as in R.

Genes are rows sorted by id (Python code-point order; R sorts factor levels in the locale's
collation, identical for Ensembl ids), samples are columns in input order.

Tolerance: equal to R tximport to 1e-9 relative (atol 0) on every value; verified in
``refine_assets_tests/unit/test_tximport.py`` against R tximport 1.26.1 (``rscript`` fixture) on 4
real SRP095529 zebrafish samples in all three modes, with a tx2gene missing 5% of the transcripts,
and on synthetic files exercising both NaN-repair branches and an all-zero sample; observed
differences are ≤ 1e-14 relative (summation order only). Also checked against hand-computed
examples. tximport 1.6.0 and 1.26.1 compute the same numbers on this path (the summarisation code
is unchanged; 1.26 additionally drops duplicated tx2gene rows up front where 1.6 relied on
``match``'s first hit — same result, except that 1.6 stops with an error when a gene is reachable
only through a duplicated transcript row); see ``docs/tximport.md``.

Deliberate differences from refine.bio/tximport (all documented in ``docs/tximport.md``): a
tx2gene missing more than ``max_missing_fraction`` (default 50%) of the quantified transcripts is an
error (tximport only fails at 100%); samples from different indices are never mixed (transcript sets
are checked by :mod:`.quant`; ``index_ids`` lets the caller pass index provenance, e.g. LONG vs
SHORT, which quant.sf cannot reveal); same transcripts in another order are re-aligned instead of
stopping.

Memory: gene-level accumulation. :func:`tximport_files` streams files (a few held at a time) and
keeps only G × S matrices plus one T-vector: peak ≈ 4·8·G·S bytes (G genes, S samples) plus a few
parsed files.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from refine_assets.lib.gz import maybe_gunzip
from refine_assets.lib.rnaseq.quant import QuantMatrix, iter_quant_samples, resolve_sample_names

COUNTS_FROM_ABUNDANCE: tuple[str, ...] = ("no", "scaledTPM", "lengthScaledTPM")
#: refine.bio ``common/data_refinery_common/rna_seq.py`` (EARLY_TXIMPORT_MIN_SIZE / _MIN_PERCENT).
EARLY_TXIMPORT_MIN_SIZE = 25
EARLY_TXIMPORT_MIN_FRACTION = 0.80
#: Fail when more than this fraction of quantified transcripts is absent from tx2gene.
DEFAULT_MAX_MISSING_FRACTION = 0.5
#: Version of the tximport algorithm followed (for provenance).
TXIMPORT_REFERENCE = "tximport 1.6.0 (verified against 1.26.1)"

Tx2GeneLike = pd.DataFrame | Mapping[str, str] | str | os.PathLike[str]


class TximportError(ValueError):
    """tximport cannot run on these inputs (bad tx2gene, mixed indices, ...); message says why."""


class Tx2GeneError(TximportError):
    """A tx2gene file is unreadable or its transcript column cannot be identified."""


# ---------------------------------------------------------------------------------------------
# tx2gene


_TX_HEADERS = {
    "tx",
    "txname",
    "txid",
    "transcript",
    "transcripts",
    "transcriptid",
    "transcriptname",
    "transcriptstableid",
    "ensembltranscriptid",
    "targetid",
    "name",
}
_GENE_HEADERS = {
    "gene",
    "genes",
    "geneid",
    "genename",
    "genestableid",
    "ensemblgeneid",
    "genesymbol",
    "symbol",
}
_ENSEMBL_TX = re.compile(r"^ENS[A-Z]*T\d")
_ENSEMBL_GENE = re.compile(r"^ENS[A-Z]*G\d")


def _norm_header(cell: str) -> str:
    return re.sub(r"[^a-z0-9]", "", cell.lower())


def _header_role(cell: str) -> str | None:
    key = _norm_header(cell)
    if key in _TX_HEADERS:
        return "tx"
    if key in _GENE_HEADERS:
        return "gene"
    return None


def read_tx2gene(
    path: str | os.PathLike[str], transcripts: Sequence[str] | np.ndarray | None = None
) -> pd.DataFrame:
    """Read a two-column transcript↔gene TSV (plain or gzip), with or without header, either order.

    Returns a DataFrame with string columns ``tx``, ``gene`` in file order (header removed);
    ``df.attrs["tx2gene"]`` records the path, whether a header was found, which file column (1 or 2)
    held the transcript ids and how that was decided. The transcript column is identified by, in
    order: overlap with ``transcripts`` (the quantified ids, when given); a recognised header
    (``transcript_id``/``tx``/``TXNAME``/... vs ``gene_id``/``gene``/``GENEID``/...); Ensembl id
    patterns (``ENS…T…`` vs ``ENS…G…``); the column with more distinct values (a gene has ≥ 1
    transcript). refine.bio's ``genes_to_transcripts.txt`` is ``gene<TAB>transcript`` without header.
    Raises :class:`Tx2GeneError` naming the file.
    """
    table, info = _read_tx2gene_table(path, transcripts)
    out = pd.DataFrame(
        {
            "tx": table.get_column("tx").to_numpy().astype(object),
            "gene": table.get_column("gene").to_numpy().astype(object),
        }
    )
    out.attrs["tx2gene"] = info
    return out


def _read_tx2gene_table(
    path: str | os.PathLike[str], transcripts: Sequence[str] | np.ndarray | pl.Series | None
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """:func:`read_tx2gene` as a polars frame (``tx``, ``gene``) and its provenance record."""
    path = Path(path)
    try:
        data = maybe_gunzip(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise Tx2GeneError(f"{path}: cannot read tx2gene ({exc})") from exc
    if not data.strip():
        raise Tx2GeneError(f"{path}: tx2gene file is empty")
    try:
        df = pl.read_csv(data, separator="\t", has_header=False, infer_schema=False, quote_char=None)
    except pl.exceptions.PolarsError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Tx2GeneError(f"{path}: garbled tx2gene: {detail}") from exc
    if df.width != 2:
        raise Tx2GeneError(
            f"{path}: tx2gene must have exactly 2 tab-separated columns (transcript, gene in either "
            f"order), found {df.width}"
        )
    df.columns = ["c1", "c2"]
    stripped = [pl.col(c).str.strip_chars() for c in ("c1", "c2")]
    empty = [(s.is_null() | (s == "")).alias(f"e{c}") for s, c in zip(stripped, ("c1", "c2"), strict=True)]
    df = df.select(*stripped, *empty)
    flags = np.column_stack([df.get_column("ec1").to_numpy(), df.get_column("ec2").to_numpy()])
    blank, partial = flags.all(axis=1), flags.any(axis=1) & ~flags.all(axis=1)
    if partial.any():
        line = int(np.flatnonzero(partial)[0]) + 1
        raise Tx2GeneError(f"{path}: line {line}: one of the two columns is empty")
    df = df.drop("ec1", "ec2")
    if blank.any():
        df = df.filter(~pl.Series(blank))
    if df.height == 0:
        raise Tx2GeneError(f"{path}: tx2gene has no rows")

    first = df.row(0)
    roles = (_header_role(first[0]), _header_role(first[1]))
    header = roles[0] is not None and roles[1] is not None and roles[0] != roles[1]
    if header:
        df = df.slice(1)
    if df.height == 0:
        raise Tx2GeneError(f"{path}: tx2gene has a header but no rows")

    if df.get_column("c1").equals(df.get_column("c2")):
        # identity map (transcripts with no gene annotation): either column will do
        tx_col, how = "c1", "identity map (both columns equal)"
    else:
        tx_col, how = _detect_transcript_column(df, transcripts, roles if header else None, path)
    gene_col = "c2" if tx_col == "c1" else "c1"
    table = df.select(pl.col(tx_col).alias("tx"), pl.col(gene_col).alias("gene"))
    info = {
        "path": str(path),
        "header": header,
        "transcript_column": 1 if tx_col == "c1" else 2,
        "detected_by": how,
        "rows": int(table.height),
    }
    return table, info


def _detect_transcript_column(
    df: pl.DataFrame,
    transcripts: Sequence[str] | np.ndarray | pl.Series | None,
    header_roles: tuple[str | None, str | None] | None,
    path: Path,
) -> tuple[str, str]:
    if transcripts is not None:
        quantified = transcripts if isinstance(transcripts, pl.Series) else _utf8(transcripts)
        o1 = int(df.get_column("c1").is_in(quantified.implode()).sum())
        o2 = int(df.get_column("c2").is_in(quantified.implode()).sum())
        if o1 == 0 and o2 == 0:
            ex_q = ", ".join(quantified.head(3).to_list())
            ex_t = ", ".join(f"{a}/{b}" for a, b in df.head(3).rows())
            raise Tx2GeneError(
                f"{path}: none of the {quantified.len()} quantified transcripts appear in either column "
                f"of tx2gene (quant ids e.g. [{ex_q}]; tx2gene rows e.g. [{ex_t}]): wrong annotation, "
                "or transcript versions differ"
            )
        if o1 != o2:
            return ("c1" if o1 > o2 else "c2"), "overlap with quantified transcripts"
    if header_roles is not None:
        return ("c1" if header_roles[0] == "tx" else "c2"), "header"
    sample = df.head(10_000)
    frac = {}
    for c in ("c1", "c2"):
        values = sample.get_column(c).to_list()
        frac[c] = (
            sum(bool(_ENSEMBL_TX.match(v)) for v in values) / len(values),
            sum(bool(_ENSEMBL_GENE.match(v)) for v in values) / len(values),
        )
    if frac["c1"][0] > 0.9 and frac["c2"][1] > 0.9:
        return "c1", "Ensembl id pattern"
    if frac["c2"][0] > 0.9 and frac["c1"][1] > 0.9:
        return "c2", "Ensembl id pattern"
    n1, n2 = df.get_column("c1").n_unique(), df.get_column("c2").n_unique()
    if n1 != n2:
        return ("c1" if n1 > n2 else "c2"), "distinct counts"
    raise Tx2GeneError(
        f"{path}: cannot tell which tx2gene column holds transcript ids (both have {n1} distinct "
        "values, no recognised header, no Ensembl ids); add a header 'transcript_id<TAB>gene_id'"
    )


def _utf8(values: Sequence[str] | np.ndarray) -> pl.Series:
    return pl.Series(values if isinstance(values, np.ndarray) else list(values), dtype=pl.Utf8)


def _tx2gene_columns(tx2gene: Tx2GeneLike, transcripts: pl.Series) -> tuple[pl.Series, pl.Series, str]:
    """(tx ids, gene ids, description) from any accepted tx2gene form."""
    if isinstance(tx2gene, str | os.PathLike):
        table, _ = _read_tx2gene_table(tx2gene, transcripts)
        return table.get_column("tx"), table.get_column("gene"), str(tx2gene)
    if isinstance(tx2gene, pd.DataFrame):
        if {"tx", "gene"} <= set(tx2gene.columns):
            tx, gene = tx2gene["tx"], tx2gene["gene"]
        elif tx2gene.shape[1] == 2:  # R tximport: first column transcript, second gene
            tx, gene = tx2gene.iloc[:, 0], tx2gene.iloc[:, 1]
        else:
            raise TximportError("tx2gene DataFrame needs columns 'tx' and 'gene' (or exactly two columns)")
        if tx.isna().any() or gene.isna().any():
            raise TximportError("tx2gene DataFrame has missing transcript or gene ids")
        return _utf8(tx.astype(str).to_numpy(object)), _utf8(gene.astype(str).to_numpy(object)), "DataFrame"
    if isinstance(tx2gene, Mapping):
        return _utf8(list(tx2gene.keys())), _utf8([str(v) for v in tx2gene.values()]), "mapping"
    raise TypeError(f"tx2gene must be a DataFrame, a mapping or a path, not {type(tx2gene).__name__}")


@dataclass(frozen=True)
class _GeneMap:
    genes: np.ndarray  # sorted gene ids (object)
    kept: np.ndarray  # indices of transcripts mapped to a gene
    gene_index: np.ndarray  # gene row of each kept transcript
    n_transcripts: int
    missing: int
    missing_examples: tuple[str, ...]
    duplicated_rows: int
    source: str


def _gene_map(
    transcripts: np.ndarray,
    tx2gene: Tx2GeneLike,
    max_missing_fraction: float | None,
    names: pl.Series | None = None,
) -> _GeneMap:
    """Which gene each quantified transcript belongs to; ``names``: ``transcripts`` as a polars Series."""
    quantified = names if names is not None else _utf8(transcripts)
    tx, gene, source = _tx2gene_columns(tx2gene, quantified)
    if tx.len() == 0:
        raise TximportError(f"tx2gene ({source}) is empty")
    n_dup = tx.len() - tx.n_unique()
    if n_dup:  # R: tx2gene[!duplicated(tx), ]
        first = pl.DataFrame({"tx": tx, "gene": gene}).unique(subset="tx", keep="first", maintain_order=True)
        tx, gene = first.get_column("tx"), first.get_column("gene")
    gene_of = quantified.replace_strict(tx, gene, default=None, return_dtype=pl.String)  # R: match()
    code = gene_of.rank("dense")  # genes in code-point order
    mapped = gene_of.is_not_null().to_numpy()
    kept = np.flatnonzero(mapped)
    n_tx = int(transcripts.shape[0])
    missing = n_tx - kept.size
    missing_examples = tuple(transcripts[~mapped][:5].tolist())
    if kept.size == 0:
        raise TximportError(
            f"none of the {n_tx} quantified transcripts are in tx2gene ({source}); quant ids e.g. "
            f"{list(transcripts[:3])}, tx2gene ids e.g. {tx.head(3).to_list()}: check the annotation / index"
        )
    if max_missing_fraction is not None and missing > max_missing_fraction * n_tx:
        raise TximportError(
            f"{missing} of {n_tx} quantified transcripts ({missing / n_tx:.1%}) are missing from "
            f"tx2gene ({source}), more than the allowed {max_missing_fraction:.0%} (e.g. "
            f"{list(missing_examples[:3])}): tx2gene and salmon index come from different annotations"
        )
    codes = code.to_numpy()[kept].astype(np.intp) - 1
    genes = np.empty(int(codes.max()) + 1, dtype=object)
    genes[codes] = gene_of.filter(pl.Series(mapped)).to_numpy()
    return _GeneMap(
        genes=genes,
        kept=kept,
        gene_index=codes,
        n_transcripts=n_tx,
        missing=missing,
        missing_examples=missing_examples,
        duplicated_rows=n_dup,
        source=source,
    )


# ---------------------------------------------------------------------------------------------
# summarisation


@dataclass(frozen=True)
class TximportResult:
    """Gene × sample outputs of :func:`tximport` (rows sorted gene ids, columns = samples in input order).

    ``counts`` holds the values refine.bio ships as ``gene_lengthScaledTPM.tsv`` when
    ``counts_from_abundance == "lengthScaledTPM"``. ``missing_transcripts``: quantified transcripts
    absent from tx2gene (dropped, as tximport does). ``imputed_lengths``: NaN length cells filled by
    the tximport rule. ``zero_abundance_samples``: samples whose retained TPMs are all 0 (NaN
    counts columns for the scaled modes, as in R).
    """

    abundance: pd.DataFrame
    counts: pd.DataFrame
    length: pd.DataFrame
    counts_from_abundance: str
    samples: tuple[str, ...]
    n_transcripts: int
    missing_transcripts: int
    missing_transcript_examples: tuple[str, ...] = ()
    duplicated_tx2gene_rows: int = 0
    imputed_lengths: int = 0
    zero_abundance_samples: tuple[str, ...] = ()
    source_paths: tuple[str, ...] = ()
    tx2gene_source: str = ""
    index_ids: tuple[str, ...] | None = None
    reference: str = field(default=TXIMPORT_REFERENCE)

    @property
    def n_genes(self) -> int:
        return int(self.counts.shape[0])

    def provenance(self) -> dict[str, Any]:
        """JSON-serialisable summary (method, mode, samples/runs used, inputs, diagnostics)."""
        return {
            "method": "tximport",
            "reference": self.reference,
            "counts_from_abundance": self.counts_from_abundance,
            "samples": list(self.samples),
            "source_paths": list(self.source_paths),
            "tx2gene": self.tx2gene_source,
            "index_ids": list(self.index_ids) if self.index_ids is not None else None,
            "genes": self.n_genes,
            "transcripts": self.n_transcripts,
            "missing_transcripts": self.missing_transcripts,
            "missing_transcript_examples": list(self.missing_transcript_examples),
            "duplicated_tx2gene_rows": self.duplicated_tx2gene_rows,
            "imputed_lengths": self.imputed_lengths,
            "zero_abundance_samples": list(self.zero_abundance_samples),
        }


class _Accumulator:
    """Per-gene sums of one experiment, filled one sample at a time (R ``rowsum`` equivalents)."""

    def __init__(self, gmap: _GeneMap, samples: Sequence[str]) -> None:
        self.gmap = gmap
        self.samples = list(samples)
        n_genes, n_s = gmap.genes.shape[0], len(samples)
        self.abundance = np.empty((n_genes, n_s), order="F")
        self.counts = np.empty((n_genes, n_s), order="F")
        self.weighted = np.empty((n_genes, n_s), order="F")
        self.efflen_sum = np.zeros(gmap.kept.shape[0])
        self.filled = 0

    def add(self, j: int, tpm: np.ndarray, num_reads: np.ndarray, effective_length: np.ndarray) -> None:
        k, gi, n_genes = self.gmap.kept, self.gmap.gene_index, self.gmap.genes.shape[0]
        every = k.size == tpm.size  # every transcript has a gene: no gather needed
        t, e = (tpm, effective_length) if every else (tpm[k], effective_length[k])
        self.abundance[:, j] = np.bincount(gi, weights=t, minlength=n_genes)
        self.counts[:, j] = np.bincount(gi, weights=num_reads if every else num_reads[k], minlength=n_genes)
        self.weighted[:, j] = np.bincount(gi, weights=t * e, minlength=n_genes)
        self.efflen_sum += e
        self.filled += 1

    def finish(self, mode: str, **extra: Any) -> TximportResult:
        gmap, n_s = self.gmap, len(self.samples)
        if self.filled != n_s or self.weighted.shape[1] != n_s:
            raise RuntimeError(f"{self.filled} of {n_s} samples summarised (or finish() called twice)")
        n_genes = gmap.genes.shape[0]
        abundance, counts = self.abundance, self.counts
        # in place (the accumulator is single-use): weighted sums become lengths
        length, self.weighted = self.weighted, np.empty((0, 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(length, abundance, out=length)
        # replaceMissingLength: simple average over the gene's transcripts of their mean over samples
        ave_len_tx = self.efflen_sum / n_s
        n_tx_gene = np.bincount(gmap.gene_index, minlength=n_genes)
        ave_len_gene = np.bincount(gmap.gene_index, weights=ave_len_tx, minlength=n_genes) / n_tx_gene
        nan = np.isnan(length)
        imputed = int(nan.sum())
        if imputed:
            all_nan = nan.all(axis=1)
            length[all_nan, :] = ave_len_gene[all_nan, None]
            some = nan.any(axis=1) & ~all_nan
            if some.any():
                rows = length[some]
                with np.errstate(divide="ignore"):
                    geo = np.exp(np.nanmean(np.log(rows), axis=1))
                length[some] = np.where(np.isnan(rows), geo[:, None], rows)
        del nan
        totals = abundance.sum(axis=0)
        zero = tuple(s for s, tot in zip(self.samples, totals, strict=True) if tot == 0)
        if mode != "no":  # makeCountsFromAbundance
            if mode == "scaledTPM":
                new = abundance.copy(order="F")
            else:
                new = abundance * length.mean(axis=1)[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                new *= counts.sum(axis=0) / new.sum(axis=0)
            counts = new
        self.counts = self.abundance = np.empty((0, 0))

        index = pd.Index(gmap.genes, name="Gene", dtype=object)  # object: no string inference pass

        def frame(values: np.ndarray) -> pd.DataFrame:
            return pd.DataFrame(values, index=index, columns=list(self.samples), copy=False)

        return TximportResult(
            abundance=frame(abundance),
            counts=frame(counts),
            length=frame(length),
            counts_from_abundance=mode,
            samples=tuple(self.samples),
            n_transcripts=gmap.n_transcripts,
            missing_transcripts=gmap.missing,
            missing_transcript_examples=gmap.missing_examples,
            duplicated_tx2gene_rows=gmap.duplicated_rows,
            imputed_lengths=imputed,
            zero_abundance_samples=zero,
            tx2gene_source=gmap.source,
            **extra,
        )


def _check_mode(mode: str) -> str:
    if mode not in COUNTS_FROM_ABUNDANCE:
        raise ValueError(f"counts_from_abundance must be one of {COUNTS_FROM_ABUNDANCE}, not {mode!r}")
    return mode


def check_single_index(samples: Sequence[str], index_ids: Sequence[str] | None) -> tuple[str, ...] | None:
    """``index_ids`` as a tuple; :class:`TximportError` listing the groups if they hold several indices."""
    if index_ids is None:
        return None
    ids = tuple(str(i) for i in index_ids)
    if len(ids) != len(samples):
        raise ValueError(f"{len(ids)} index ids for {len(samples)} samples")
    groups: dict[str, list[str]] = {}
    for s, i in zip(samples, ids, strict=True):
        groups.setdefault(i, []).append(s)
    if len(groups) > 1:
        shown = "; ".join(
            f"{i}: {', '.join(g[:5])}{', ...' if len(g) > 5 else ''}" for i, g in groups.items()
        )
        raise TximportError(
            f"samples were quantified with {len(groups)} different salmon indices ({shown}); runs "
            "quantified with different indices are never mixed in one tximport — run it per index"
        )
    return ids


def tximport(
    quant: QuantMatrix,
    tx2gene: Tx2GeneLike,
    counts_from_abundance: str = "lengthScaledTPM",
    *,
    max_missing_fraction: float | None = DEFAULT_MAX_MISSING_FRACTION,
    index_ids: Sequence[str] | None = None,
) -> TximportResult:
    """Gene-level summary of a :class:`QuantMatrix`, exactly as tximport 1.6.0 (module docstring).

    ``tx2gene``: DataFrame (columns ``tx``/``gene``, or two columns transcript then gene as in R),
    a transcript→gene mapping, or a tx2gene file path (read by :func:`read_tx2gene`).
    ``counts_from_abundance``: ``"no"``, ``"scaledTPM"`` or ``"lengthScaledTPM"`` (refine.bio's).
    ``max_missing_fraction``: error when more quantified transcripts than this fraction are missing
    from tx2gene (None: only when all are, as tximport). ``index_ids``: optional per-sample index
    identity; more than one distinct value raises :class:`TximportError`.
    Tolerance vs R: 1e-9 relative (observed ≤ 1e-14).
    """
    mode = _check_mode(counts_from_abundance)
    ids = check_single_index(quant.samples, index_ids)
    gmap = _gene_map(quant.transcripts, tx2gene, max_missing_fraction)
    acc = _Accumulator(gmap, quant.samples)
    for j in range(quant.n_samples):
        acc.add(j, quant.tpm[:, j], quant.num_reads[:, j], quant.effective_length[:, j])
    return acc.finish(mode, source_paths=tuple(str(p) for p in quant.paths), index_ids=ids)


def tximport_files(
    paths: Sequence[str | os.PathLike[str]],
    tx2gene: Tx2GeneLike,
    counts_from_abundance: str = "lengthScaledTPM",
    *,
    names: Sequence[str] | None = None,
    max_missing_fraction: float | None = DEFAULT_MAX_MISSING_FRACTION,
    index_ids: Sequence[str] | None = None,
    threads: int | None = None,
) -> TximportResult:
    """:func:`tximport` straight from quant files, streaming (never holds all transcript matrices).

    ``paths``: quant.sf files (plain/gz) or directories holding one (sample names as
    :func:`refine_assets.lib.rnaseq.quant.resolve_quant_path`, or ``names``). Same numbers as
    ``tximport(read_quant_files(paths), ...)``. Bad files raise ``QuantFileError`` naming the file;
    transcript sets that differ between samples raise ``QuantIndexMismatchError``.
    """
    mode = _check_mode(counts_from_abundance)
    resolved = resolve_sample_names(paths, names)
    sample_names = [n for n, _ in resolved]
    ids = check_single_index(sample_names, index_ids)
    acc: _Accumulator | None = None
    for j, sample in enumerate(iter_quant_samples([f for _, f in resolved], sample_names, threads=threads)):
        if acc is None:
            gmap = _gene_map(sample.transcripts, tx2gene, max_missing_fraction, names=sample.names)
            acc = _Accumulator(gmap, sample_names)
        acc.add(j, sample.tpm, sample.num_reads, sample.effective_length)
    assert acc is not None
    return acc.finish(mode, source_paths=tuple(str(f) for _, f in resolved), index_ids=ids)


def write_gene_table(values: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a genes × samples frame as ``Gene<TAB>sample...`` (rows in index order), atomically.

    Floats in shortest round-trip form (every double reproduced exactly; R's ``write.table`` would
    round to 15 significant digits), NaN as ``NaN``; a name ending in ``.parquet`` writes Parquet
    instead (:func:`refine_assets.lib.matrix_io.write_matrix`). Written to a temporary file in the
    target folder (normal permissions), then renamed: no partial output on failure. Returns the path.
    """
    from refine_assets.lib.matrix_io import write_matrix

    if "Gene" in values.columns:
        raise ValueError("a sample is named 'Gene', which is the name of the id column")
    path = Path(path)
    write_matrix(
        path,
        values.to_numpy(dtype=np.float64),
        values.index.to_numpy().astype(str).tolist(),
        [str(c) for c in values.columns],
        "Gene",
        nan_text="NaN",
    )
    return path


# ---------------------------------------------------------------------------------------------
# when to run


@dataclass(frozen=True)
class TximportEligibility:
    """Decision of :func:`tximport_eligible`; truthy when tximport should run."""

    run: bool
    early: bool
    n_total: int
    n_quantified: int
    reason: str

    def __bool__(self) -> bool:
        return self.run


def tximport_eligible(
    n_total: int,
    n_quantified: int,
    *,
    allow_early: bool = True,
    min_size: int = EARLY_TXIMPORT_MIN_SIZE,
    min_fraction: float = EARLY_TXIMPORT_MIN_FRACTION,
) -> TximportEligibility:
    """refine.bio's rule for running tximport on an experiment (``rna_seq.should_run_tximport``).

    ``n_total``: eligible runs of the experiment (refine.bio: its SRA RNA-seq samples, minus those
    marked unable to be processed); ``n_quantified``: those with a usable quant.sf from the current
    index. Run when every eligible run is quantified; with ``allow_early`` (refine.bio: the periodic
    standalone tximport job; our default) also when ``n_total >= min_size`` (25) and
    ``n_quantified / n_total >= min_fraction`` (0.80; float comparison as refine.bio, so 20/25 runs).
    Never with 0 quantified runs. The refine.bio docs' ">80% and more than 20 samples" disagree with
    its code; the code is followed. ``n_quantified > n_total`` raises ``ValueError``.
    """
    if n_total < 0 or n_quantified < 0:
        raise ValueError(f"run counts must be >= 0 (total {n_total}, quantified {n_quantified})")
    if n_quantified > n_total:
        raise ValueError(f"{n_quantified} quantified runs but only {n_total} eligible runs")

    def decide(run: bool, early: bool, reason: str) -> TximportEligibility:
        return TximportEligibility(run, early, n_total, n_quantified, reason)

    if n_quantified == 0:
        return decide(False, False, "no run is quantified yet")
    if n_quantified == n_total:
        return decide(True, False, f"all {n_total} runs quantified")
    fraction = n_quantified / n_total
    if allow_early and n_total >= min_size and fraction >= min_fraction:
        return decide(
            True,
            True,
            f"early run: {n_quantified}/{n_total} runs quantified ({fraction:.0%} >= {min_fraction:.0%}, "
            f"experiment >= {min_size} runs); values will change when the rest finish",
        )
    need = f">= {min_size} runs and >= {min_fraction:.0%} quantified" if allow_early else "all runs"
    return decide(False, False, f"{n_quantified}/{n_total} runs quantified; waiting ({need})")
