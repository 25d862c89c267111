"""Probe / probe-set ids -> Ensembl gene ids from a platform annotation table and a gene-id crosswalk.

Used for submitter-processed data (GEO sample tables, ArrayExpress processed files), whose rows are
probes of a platform. refine.bio (``gene_convert.R``, ``refinebio-teardown.md`` §4.3,
``methods.md`` §10) reads a pre-built per-platform table (columns PROBEID, ENSEMBL, SYMBOL, ENTREZID,
UNIGENE, REFSEQ), computes for each column ``overlap = |file ids ∩ column| / |file ids|``, requires the
best overlap to be at least **0.5** and inner-joins the distinct ``(ENSEMBL, id)`` pairs. We have no
such pre-built tables for arbitrary platforms, so the same idea is applied to the platform's own
annotation table (GEO GPL table or ``.annot`` file) plus a :class:`~refine_assets.lib.crosswalk.GeneCrosswalk`:

1. **Column detection by content** (:func:`detect_columns`). Every column is classified from up to
   ``sample_rows`` evenly spaced non-empty cells. Cells are split at ``///`` (GEO's separator for
   multi-valued cells, e.g. ``780 /// 100616237``), tokens are trimmed and each token takes the first
   matching type of: ``ensembl`` (``ENS[A-Z]*G`` + digits, optional ``.version``), ``refseq``
   (``NM_``/``NR_``/``XM_``/``XR_`` + digits), ``genbank`` (1-2 letters + 5-6 digits, or 4 letters +
   8-10 digits, optional version), ``entrez`` (digits only), ``unigene`` (``Hs.12345``), ``cytoband``
   (``17p13.3``, ``1p36.1-p35``), ``symbol`` (a letter or digit then up to 39 of ``A-Za-z0-9._-@``, no
   spaces). UniGene clusters and cytobands are recognised only so that they are not taken for
   symbols; nothing maps them. A column's type is the most frequent token type if it covers
   at least half of the tokens; free text, GO terms, titles and mixed columns get no type.
   All-digit columns are Entrez ids **only when the header names them** (``entrez``, ``locuslink``,
   ``gene id``/``gene_id``/``geneid``, ``gene``, not ``unigene``): GPL tables also hold GI numbers,
   array addresses, coordinates and clone ids, which are digits too and would map by coincidence.
   The platform's own id column is a candidate as well (custom platforms whose ids are Ensembl ids or
   symbols), never as Entrez.
2. **Scoring**: for each candidate column whose type the crosswalk can map, the coverage is the
   fraction of the sample's distinct probe ids that map to **at least one** Ensembl gene through that
   column. The best column wins (ties: the more stable id type in the order ensembl, entrez, refseq,
   symbol, genbank; then table order). Coverage below ``min_coverage`` (default 0.5, refine.bio's
   threshold) raises :class:`IdMappingError` listing every candidate and its coverage. One column is
   used, never a mix of columns (as refine.bio).
3. **Pairs**: the distinct ``(probe, gene)`` pairs of that column for the sample's probes. A probe with
   several genes (multi-valued cell, or an Entrez gene with several Ensembl genes) yields one pair per
   gene, so its value is **duplicated** to every gene — exactly the reference doc's rule ("if a probe
   maps to two Ensembl gene ids, those two Ensembl gene ids will both have the probe's expression
   value"). Several probes of one gene (many-to-one) are **kept as separate entries** of the same gene
   id: the per-sample vector may repeat a gene id, and the delivery step takes the mean of duplicate
   genes ("we summarize duplicate Ensembl gene IDs to the mean expression value", reference doc;
   refine.bio leaves them to the smasher the same way). Probes without a gene in that column are
   dropped (counted in the report).

The report (:attr:`ProbeMapping.report`) records the column, id type, coverage, ``n_probes``,
``n_mapped``, ``n_genes``, ``n_pairs``, one-to-many/many-to-one counts, the crosswalk (file, sha256)
and every candidate's coverage; it goes into the processing ledger.

Tolerance: exact (set operations on strings). Verified in ``refine_assets_tests/unit/test_idmap.py`` on
the real GPL96/GPL97 tables of GSE781 and the GPL97 ``.annot`` file with the org.Hs.eg.db crosswalk
(ENTREZ_GENE_ID chosen; GPL96 coverage 20,617/22,283 = 0.9252, GPL97 13,665/22,645 = 0.6034; GPL97's
Gene Symbol column alone, 0.4836, is rejected by the 0.5 rule), with probe -> gene pairs checked against
rows read from the crosswalk file, and on small hand-built tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from refine_assets.lib.crosswalk import ID_TYPES, GeneCrosswalk

MIN_COVERAGE = 0.5
MIN_TYPE_FRACTION = 0.5
SAMPLE_ROWS = 20_000
SEPARATOR = "///"

# First match wins, in this order.
TOKEN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("ensembl", r"^ENS[A-Z]*G\d{6,}(\.\d+)?$"),
    ("refseq", r"^[NX][MR]_\d+(\.\d+)?$"),
    ("genbank", r"^([A-Z]{1,2}\d{5,6}|[A-Z]{4}\d{8,10})(\.\d+)?$"),
    ("entrez", r"^\d+$"),
    ("unigene", r"^[A-Z][a-z]{1,3}\.\d+$"),
    ("cytoband", r"^(\d{1,2}|X|Y)(cen|[pq]\d*(\.\d+)?)([-|](\d{1,2}|X|Y)?(cen|[pq]\d*(\.\d+)?|ter))?$"),
    ("symbol", r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,39}$"),
)
_ENTREZ_HEADER = re.compile(r"entrez|locuslink|gene[ _]?id|^gene$", re.IGNORECASE)
_NOT_ENTREZ_HEADER = re.compile(r"unigene", re.IGNORECASE)
_PRIORITY = {t: i for i, t in enumerate(ID_TYPES)}


class IdMappingError(ValueError):
    """Identifiers cannot be converted (no usable column, coverage below the threshold ...)."""


@dataclass(frozen=True)
class ColumnCandidate:
    """What :func:`detect_columns` concluded about one platform-table column.

    ``id_type`` is the detected identifier type (None: not an identifier column; ``numeric``: digits
    under a header that does not name Entrez Gene); ``token_fraction`` the share of sampled tokens of
    that type; ``mappable`` whether the crosswalk converts that type; ``note`` explains a rejection.
    """

    column: str
    id_type: str | None
    token_fraction: float
    n_tokens: int
    mappable: bool
    note: str = ""
    is_id_column: bool = False


@dataclass
class ProbeMapping:
    """Distinct ``(probe, gene)`` pairs for a set of probe ids and the report of how they were made.

    ``probe_ids``/``gene_ids`` are parallel object arrays, sorted by probe then gene;
    ``query_positions[i]`` is the position of ``probe_ids[i]`` among the distinct (cleaned) probe ids
    asked for, in first-appearance order (so, for distinct ids, the position in the argument).
    """

    probe_ids: np.ndarray
    gene_ids: np.ndarray
    report: dict = field(default_factory=dict)
    query_positions: np.ndarray | None = None

    def as_frame(self) -> pd.DataFrame:
        """The pairs as a DataFrame (``probe_id``, ``ensembl_gene_id``)."""
        return pd.DataFrame({"probe_id": self.probe_ids, "ensembl_gene_id": self.gene_ids})


@dataclass(frozen=True)
class _ColumnPairs:
    """One column's distinct pairs as codes: ``probe_codes`` index the mapper's distinct probe ids,
    ``gene_codes`` index ``gene_ids``; sorted by probe id then gene id. ``mapped[i]``: probe ``i`` has
    at least one gene."""

    probe_codes: np.ndarray
    gene_codes: np.ndarray
    gene_ids: np.ndarray
    mapped: np.ndarray


def _as_string_table(table: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table.astype(object).where(table.notna(), None), preserve_index=False)
    if not isinstance(table, pa.Table):
        raise TypeError(
            f"platform table must be a pyarrow Table or pandas DataFrame, not {type(table).__name__}"
        )
    cols = []
    for col in table.columns:
        if col.type != pa.string():
            col = (
                pc.cast(col, pa.string())
                if not pa.types.is_null(col.type)
                else pa.nulls(len(col), pa.string())
            )
        cols.append(col)
    return pa.table(cols, names=[str(n) for n in table.column_names])


def find_id_column(table: pa.Table | pd.DataFrame, id_column: str | None = None) -> str:
    """The probe id column: ``id_column`` if given, else ``ID``, else ``ID_REF`` (any case), else the first."""
    names = list(table.column_names if isinstance(table, pa.Table) else table.columns)
    if not names:
        raise IdMappingError("platform table has no columns")
    if id_column is not None:
        if id_column not in names:
            raise IdMappingError(f"platform table has no column {id_column!r} (columns: {names[:8]!r} ...)")
        return id_column
    lowered = {str(n).lower(): n for n in names}
    for wanted in ("id", "id_ref"):
        if wanted in lowered:
            return str(lowered[wanted])
    return str(names[0])


def _tokens(col: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(trimmed non-empty tokens, row index of each token) of a string column split at ``///``."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    lists = pc.split_pattern(arr, SEPARATOR)
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False))
    flat = pc.utf8_trim_whitespace(pc.list_flatten(lists))
    keep = pc.and_(pc.is_valid(flat), pc.not_equal(flat, ""))
    keep_np = np.asarray(keep.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return pc.filter(flat, keep), parents[keep_np]


def classify_tokens(tokens: pa.Array) -> np.ndarray:
    """Index into :data:`TOKEN_PATTERNS` of each token's type (-1: none), first match wins."""
    out = np.full(len(tokens), -1, dtype=np.int8)
    for i, (_name, pattern) in enumerate(TOKEN_PATTERNS):
        todo = out < 0
        if not todo.any():
            break
        hit = np.asarray(
            pc.match_substring_regex(tokens, pattern).fill_null(False).to_numpy(zero_copy_only=False)
        )
        out[todo & hit] = i
    return out


def detect_columns(
    table: pa.Table | pd.DataFrame,
    crosswalk: GeneCrosswalk | None = None,
    *,
    id_column: str | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> list[ColumnCandidate]:
    """Classify every column of a platform table (rules in the module docstring), in table order."""
    table = _as_string_table(table)
    idc = find_id_column(table, id_column)
    out: list[ColumnCandidate] = []
    for name in table.column_names:
        col = table.column(name)
        nonnull = col.drop_null()
        if len(nonnull) == 0:
            out.append(ColumnCandidate(name, None, 0.0, 0, False, "empty column", name == idc))
            continue
        if len(nonnull) > sample_rows:
            picks = np.linspace(0, len(nonnull) - 1, sample_rows).round().astype(np.int64)
            nonnull = nonnull.take(pa.array(picks))
        tokens, _ = _tokens(nonnull)
        if len(tokens) == 0:
            out.append(ColumnCandidate(name, None, 0.0, 0, False, "no identifier tokens", name == idc))
            continue
        kinds = classify_tokens(tokens)
        counts = np.bincount(kinds[kinds >= 0], minlength=len(TOKEN_PATTERNS))
        best = int(np.argmax(counts))
        fraction = float(counts[best]) / len(tokens)
        id_type: str | None = TOKEN_PATTERNS[best][0]
        note = ""
        if fraction < MIN_TYPE_FRACTION:
            note = f"no identifier type covers half of the tokens (best {id_type} {fraction:.2f})"
            id_type = None
        elif id_type == "entrez" and (
            name == idc or not _ENTREZ_HEADER.search(name) or _NOT_ENTREZ_HEADER.search(name)
        ):
            note = "digits under a header that does not name Entrez Gene ids (GI, address, coordinate ...)"
            id_type = "numeric"
        mappable = id_type in ID_TYPES
        if id_type is not None and not mappable and not note:
            note = f"{id_type} identifiers are not converted to Ensembl genes"
        if mappable and crosswalk is not None and not crosswalk.can_map(id_type):
            mappable = False
            note = f"the crosswalk ({crosswalk.source}) has no {id_type} -> Ensembl mapping"
        out.append(ColumnCandidate(name, id_type, fraction, len(tokens), mappable, note, name == idc))
    return out


def _clean_ids(ids) -> np.ndarray:
    arr = pa.array(ids, pa.string()) if not isinstance(ids, pa.Array | pa.ChunkedArray) else ids
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


class PlatformMapper:
    """The candidate columns of one platform table and their probe -> gene pairs (computed lazily).

    Build once per (platform, crosswalk) and call :meth:`map` for every sample of that platform.
    ``name`` (e.g. ``GPL96``) appears in reports and error messages.
    """

    def __init__(
        self,
        platform_table: pa.Table | pd.DataFrame,
        crosswalk: GeneCrosswalk,
        *,
        id_column: str | None = None,
        name: str = "platform",
        sample_rows: int = SAMPLE_ROWS,
    ):
        table = _as_string_table(platform_table)
        if table.num_rows == 0:
            raise IdMappingError(f"{name}: platform table has no rows")
        self.name = name
        self.crosswalk = crosswalk
        self.id_column = find_id_column(table, id_column)
        self._table = table
        self.platform_ids = _clean_ids(table.column(self.id_column))
        valid = pd.notna(self.platform_ids) & (self.platform_ids != "")
        # Distinct platform ids; pairs and masks below refer to probes by their position here.
        self._codes, uniques = pd.factorize(pd.Series(self.platform_ids, dtype=object), use_na_sentinel=True)
        self._codes[~valid] = -1
        self._probes = np.asarray(uniques, dtype=object)
        self._probe_index = pd.Index(self._probes, dtype=object)
        self.candidates = detect_columns(table, crosswalk, id_column=self.id_column, sample_rows=sample_rows)
        self._pairs: dict[str, _ColumnPairs] = {}

    def column_pairs(self, column: str) -> _ColumnPairs:
        """Distinct (probe, gene) pairs of every platform row through ``column`` (cached)."""
        cached = self._pairs.get(column)
        if cached is not None:
            return cached
        cand = next((c for c in self.candidates if c.column == column), None)
        if cand is None or not cand.mappable or cand.id_type is None:
            raise IdMappingError(f"{self.name}: column {column!r} is not a mappable identifier column")
        tokens, rows = _tokens(self._table.column(column))
        positions, genes = self.crosswalk.lookup(cand.id_type, tokens)
        probe_codes = self._codes[rows[positions]]
        keep = probe_codes >= 0
        gene_codes, gene_ids = pd.factorize(pd.Series(genes[keep], dtype=object))
        frame = pd.DataFrame({"p": probe_codes[keep], "g": gene_codes}).drop_duplicates()
        # sorted by probe id then gene id (codes follow first appearance, so sort on the strings' order)
        gene_ids = np.asarray(gene_ids, dtype=object)
        order = np.lexsort((gene_ids[frame["g"].to_numpy()], self._probes[frame["p"].to_numpy()]))
        p = frame["p"].to_numpy()[order]
        g = frame["g"].to_numpy()[order]
        mapped = np.zeros(len(self._probes), dtype=bool)
        mapped[p] = True
        cached = _ColumnPairs(p, g, gene_ids, mapped)
        self._pairs[column] = cached
        return cached

    def map(
        self,
        probe_ids=None,
        *,
        min_coverage: float = MIN_COVERAGE,
        column: str | None = None,
        label: str | None = None,
    ) -> ProbeMapping:
        """Pairs for ``probe_ids`` (default: every platform id) through the best column (or ``column``).

        Raises :class:`IdMappingError` (naming ``label``, e.g. the sample, and the platform) when no
        column is mappable or the chosen one covers less than ``min_coverage`` of the probe ids.
        """
        who = f"{label} ({self.name})" if label else self.name
        ids = self.platform_ids if probe_ids is None else _clean_ids(probe_ids)
        ids = ids[pd.notna(ids) & (ids != "")]
        wanted = pd.unique(pd.Series(ids, dtype=object))
        n_wanted = len(wanted)
        if n_wanted == 0:
            raise IdMappingError(f"{who}: no probe ids to map")
        where = self._probe_index.get_indexer(pd.Index(wanted, dtype=object))
        on_platform = where[where >= 0]
        scored = []
        for order, cand in enumerate(self.candidates):
            if not cand.mappable:
                continue
            n_mapped = int(np.count_nonzero(self.column_pairs(cand.column).mapped[on_platform]))
            scored.append((cand, n_mapped, order))
        candidates_report = [
            {
                "column": c.column,
                "id_type": c.id_type,
                "token_fraction": round(c.token_fraction, 4),
                "coverage": next((n / n_wanted for s, n, _ in scored if s is c), None),
                "mappable": c.mappable,
                **({"note": c.note} if c.note else {}),
            }
            for c in self.candidates
            if c.id_type is not None
        ]
        if not scored:
            raise IdMappingError(
                f"{who}: no annotation column holds identifiers the crosswalk ({self.crosswalk.source}) can "
                f"map; columns seen: {_describe(self.candidates)}"
            )
        if column is not None:
            chosen = next((s for s in scored if s[0].column == column), None)
            if chosen is None:
                raise IdMappingError(f"{who}: column {column!r} is not a mappable identifier column")
        else:
            chosen = max(scored, key=lambda s: (s[1], -_PRIORITY.get(s[0].id_type or "", 99), -s[2]))
        cand, n_mapped, _ = chosen
        coverage = n_mapped / n_wanted
        if coverage < min_coverage:
            tried = ", ".join(
                f"{s.column!r} ({s.id_type}) {n / n_wanted:.3f}"
                for s, n, _ in sorted(scored, key=lambda x: -x[1])
            )
            raise IdMappingError(
                f"{who}: best identifier column {cand.column!r} maps only {n_mapped} of {n_wanted} probe "
                f"ids ({coverage:.3f} < {min_coverage}); columns tried: {tried}"
            )
        pairs = self.column_pairs(cand.column)
        asked = np.zeros(len(self._probes), dtype=bool)
        asked[on_platform] = True
        sel = asked[pairs.probe_codes]
        p, g = pairs.probe_codes[sel], pairs.gene_codes[sel]
        per_probe = np.bincount(p, minlength=len(self._probes))
        per_gene = np.bincount(g, minlength=len(pairs.gene_ids))
        report = {
            "platform": self.name,
            "column": cand.column,
            "id_type": cand.id_type,
            "coverage": coverage,
            "n_probes": n_wanted,
            "n_mapped": n_mapped,
            "n_unmapped": n_wanted - n_mapped,
            "n_genes": int(np.count_nonzero(per_gene)),
            "n_pairs": len(p),
            "n_probes_multi_gene": int(np.count_nonzero(per_probe > 1)),
            "n_genes_multi_probe": int(np.count_nonzero(per_gene > 1)),
            "min_coverage": min_coverage,
            "crosswalk": {
                "source": self.crosswalk.source,
                "format": self.crosswalk.format,
                "sha256": self.crosswalk.sha256,
                "tax_id": self.crosswalk.tax_id,
            },
            "candidates": candidates_report,
        }
        inverse = np.full(len(self._probes), -1, dtype=np.int64)
        inverse[on_platform] = np.flatnonzero(where >= 0)
        return ProbeMapping(self._probes[p], pairs.gene_ids[g], report, inverse[p])


def _describe(cands: list[ColumnCandidate]) -> str:
    parts = [f"{c.column!r}={c.id_type or '-'}" + (f" ({c.note})" if c.note else "") for c in cands]
    return "; ".join(parts[:12]) + (" ..." if len(parts) > 12 else "")


def map_probes(
    platform_table: pa.Table | pd.DataFrame,
    crosswalk: GeneCrosswalk,
    *,
    probe_ids=None,
    id_column: str | None = None,
    column: str | None = None,
    min_coverage: float = MIN_COVERAGE,
    name: str = "platform",
) -> ProbeMapping:
    """One-shot :class:`PlatformMapper` ``(...).map(probe_ids)``; see the module docstring."""
    mapper = PlatformMapper(platform_table, crosswalk, id_column=id_column, name=name)
    return mapper.map(probe_ids, min_coverage=min_coverage, column=column)


__all__ = [
    "MIN_COVERAGE",
    "ColumnCandidate",
    "IdMappingError",
    "PlatformMapper",
    "ProbeMapping",
    "classify_tokens",
    "detect_columns",
    "find_id_column",
    "map_probes",
]
