"""Gene identifier crosswalks: other gene/transcript identifiers -> Ensembl gene ids, for one organism.

A :class:`GeneCrosswalk` holds, per identifier type, the distinct ``(key, ensembl_gene_id)`` pairs of
one organism. It is what :mod:`refine_assets.lib.idmap` uses to turn the annotation columns of a
platform table (GEO GPL table, ``.annot`` file) into Ensembl gene ids for submitter-processed data
(refine.bio ``gene_convert.R`` used pre-built identifier-refinery tables for the same purpose:
``refinebio-teardown.md`` §4.3).

Identifier types and how each maps (keys are normalised by :func:`normalize_keys`):

* ``entrez``  NCBI Gene id (digits) -> Ensembl gene id(s), straight from the file's pairs;
* ``symbol``  official gene symbol (exact, case-sensitive: human symbols are upper case, mouse ones
  capitalised; aliases and withdrawn symbols do **not** map) -> Ensembl via the symbol's Entrez gene;
* ``refseq``  RefSeq RNA accession (``NM_``/``NR_``/``XM_``/``XR_``, version stripped) -> Ensembl gene.
  Only NCBI ``gene2ensembl`` (its ``RNA_nucleotide_accession.version`` column) or a TSV with a
  ``refseq`` column provides this; the org.Hs.eg.db-derived TSV used in tests does not;
* ``genbank`` GenBank/INSDC nucleotide accession (version stripped) -> Ensembl gene, only from a TSV
  with a ``genbank`` column (none of the standard resources has it: NCBI's ``gene2accession`` would).
  Platform tables nearly always carry Entrez ids or symbols next to GenBank accessions, and
  :mod:`idmap` picks whichever column maps best, so GenBank-only platforms are the rare case;
* ``ensembl`` Ensembl gene ids map to themselves (version stripped); :mod:`idmap` does not need the
  crosswalk for them, but :attr:`GeneCrosswalk.ensembl_ids` lists the ids the crosswalk knows.

One-to-many pairs are kept (an Entrez gene annotated with two Ensembl genes yields two pairs); the
caller decides what to do with them (``idmap``: duplicate the value, as the refine.bio docs say).

Accepted files (plain or gzip, recognised by content, not by name):

1. **TSV with a header** (the test resource ``human_gene_ids.tsv.gz``: ``entrez_id``,
   ``ensembl_gene_id``, ``symbol``; one row per (Entrez, Ensembl) pair; rows with an empty Ensembl id
   are genes without an Ensembl counterpart and are ignored). Recognised header names, case-insensitive,
   a leading ``#`` ignored: Ensembl ``ensembl_gene_id``/``ensembl``/``gene stable id``; Entrez
   ``entrez_id``/``entrez``/``entrezid``/``geneid``/``ncbi gene (formerly entrezgene) id``/``ncbi gene
   id``; symbol ``symbol``/``gene_symbol``/``gene name``/``hgnc symbol``; RefSeq ``refseq``/
   ``refseq_accession``/``refseq mrna id``/``refseq ncrna id``; GenBank ``genbank``/
   ``genbank_accession``. So an Ensembl BioMart export with those attributes is accepted too.
2. **NCBI gene2ensembl** (``#tax_id GeneID Ensembl_gene_identifier RNA_nucleotide_accession.version
   Ensembl_rna_identifier protein_accession.version Ensembl_protein_identifier``, all species in one
   file, ``-`` for missing): filtered to ``tax_id`` (required when the file holds several species),
   read in streamed blocks so only that species is held in memory. It gives ``entrez`` and ``refseq``;
   symbols come from an optional NCBI ``gene_info`` file of the same species (``gene_info=``; its
   ``Symbol`` column joined on ``GeneID``).

Errors: :class:`CrosswalkError` (a ``ValueError``) names the file and says what is wrong: unknown
header, no Ensembl column, no usable identifier column, no row for the requested taxon, a multi-species
gene2ensembl without ``tax_id``, an empty file.

Tolerance: exact (string identity after the documented normalisation). Verified in
``refine_assets_tests/unit/test_idmap.py`` against rows read directly from ``human_gene_ids.tsv.gz``
(e.g. Entrez 780 -> ENSG00000204580 and ENSG00000215522 (DDR1), symbol HSPA6 -> ENSG00000173110) and on
small generated gene2ensembl/gene_info/BioMart files.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ID_TYPES = ("ensembl", "entrez", "refseq", "symbol", "genbank")

_HEADER_ALIASES: dict[str, str] = {
    "ensembl_gene_id": "ensembl",
    "ensembl": "ensembl",
    "ensembl_gene": "ensembl",
    "ensembl gene id": "ensembl",
    "gene stable id": "ensembl",
    "ensembl_gene_identifier": "ensembl",
    "entrez_id": "entrez",
    "entrez": "entrez",
    "entrezid": "entrez",
    "entrez_gene_id": "entrez",
    "geneid": "entrez",
    "gene_id": "entrez",
    "ncbi gene (formerly entrezgene) id": "entrez",
    "ncbi gene id": "entrez",
    "symbol": "symbol",
    "gene_symbol": "symbol",
    "gene name": "symbol",
    "hgnc symbol": "symbol",
    "refseq": "refseq",
    "refseq_accession": "refseq",
    "refseq mrna id": "refseq",
    "refseq ncrna id": "refseq",
    "rna_nucleotide_accession.version": "refseq",
    "genbank": "genbank",
    "genbank_accession": "genbank",
}
_MISSING = ("", "-", "NA", "na", "N/A", "null", "NULL", "None")
_VERSION = re.compile(r"\.\d+$")
_BLOCK = 1 << 24


class CrosswalkError(ValueError):
    """A crosswalk file cannot be used; the message names the file and the problem."""


def normalize_keys(id_type: str, keys: pa.Array | pa.ChunkedArray | Iterable[str]) -> pa.Array:
    """Identifiers as the crosswalk stores them (strings; nulls stay null).

    All types: surrounding whitespace stripped, empty -> null. ``entrez``: digits only, else null
    (``"780.0"`` from a float-typed column becomes ``"780"``). ``refseq``/``genbank``: upper case,
    trailing ``.version`` removed. ``ensembl``: trailing ``.version`` removed. ``symbol``: as is.
    """
    arr = keys if isinstance(keys, pa.Array | pa.ChunkedArray) else pa.array(list(keys), pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    if id_type == "entrez":
        arr = pc.replace_substring_regex(arr, r"\.0+$", "")
        ok = pc.match_substring_regex(arr, r"^\d+$")
        arr = pc.if_else(ok, arr, pa.scalar(None, pa.string()))
    elif id_type in ("refseq", "genbank"):
        arr = pc.replace_substring_regex(pc.utf8_upper(arr), r"\.\d+$", "")
    elif id_type == "ensembl":
        arr = pc.replace_substring_regex(arr, r"\.\d+$", "")
    elif id_type != "symbol":
        raise ValueError(f"unknown identifier type {id_type!r} (expected one of {', '.join(ID_TYPES)})")
    empty = pc.equal(arr, "")
    return pc.if_else(empty, pa.scalar(None, pa.string()), arr)


@dataclass
class GeneCrosswalk:
    """Distinct ``(key, ensembl_gene_id)`` pairs per identifier type, for one organism.

    ``pairs[id_type]`` is a DataFrame with string columns ``key`` and ``ensembl_gene_id`` (distinct
    rows). ``source`` names the file(s), ``format`` is ``tsv`` or ``gene2ensembl``, ``sha256`` the
    content hash of the main file (a reference version for skip-if-done), ``tax_id`` the NCBI taxon
    when known, ``organism`` an optional refine.bio-style organism name (``HOMO_SAPIENS``).
    """

    pairs: dict[str, pd.DataFrame]
    source: str = ""
    format: str = "tsv"
    sha256: str | None = None
    tax_id: int | None = None
    organism: str | None = None
    ensembl_ids: frozenset[str] = field(default_factory=frozenset)
    _indexes: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def id_types(self) -> tuple[str, ...]:
        """Identifier types this crosswalk can map (``ensembl`` always: identity)."""
        return tuple(t for t in ID_TYPES if t == "ensembl" or t in self.pairs)

    def can_map(self, id_type: str) -> bool:
        """True when identifiers of ``id_type`` can be converted."""
        return id_type in self.id_types

    def lookup(self, id_type: str, keys: pa.Array | Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Map normalised ``keys``: ``(positions, ensembl_ids)``, one entry per (key, gene) pair.

        ``positions`` are indices into ``keys`` (a key mapping to two genes appears twice, an unknown
        key not at all); ``ensembl_ids`` is an object array of the genes. ``ensembl`` is identity
        (after normalisation). Raises :class:`CrosswalkError` for a type the crosswalk lacks.
        """
        arr = normalize_keys(id_type, keys)
        if id_type == "ensembl":
            valid = np.flatnonzero(np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False)))
            values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
            return valid, values[valid]
        index = self._index(id_type)
        query = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
        keys_index, starts, counts, genes = index
        codes = keys_index.get_indexer(query)
        hit = np.flatnonzero(codes >= 0)
        c = codes[hit]
        n = counts[c]
        positions = np.repeat(hit, n)
        offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        return positions, genes[np.repeat(starts[c], n) + offsets]

    def _index(self, id_type: str) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
        """(distinct keys, start and count of each key's genes, genes sorted by key), cached."""
        cached = self._indexes.get(id_type)
        if cached is not None:
            return cached
        table = self.pairs.get(id_type)
        if table is None:
            raise CrosswalkError(f"{self.source}: crosswalk has no {id_type} -> Ensembl mapping")
        ordered = table.sort_values(["key", "ensembl_gene_id"], kind="stable")
        keys = ordered["key"].to_numpy(dtype=object)
        genes = ordered["ensembl_gene_id"].to_numpy(dtype=object)
        uniq, starts, counts = np.unique(keys.astype(str), return_index=True, return_counts=True)
        cached = (pd.Index(uniq.astype(object), dtype=object), starts, counts, genes)
        self._indexes[id_type] = cached
        return cached

    def describe(self) -> dict:
        """A JSON-able summary (recorded with every mapping report)."""
        return {
            "source": self.source,
            "format": self.format,
            "sha256": self.sha256,
            "tax_id": self.tax_id,
            "organism": self.organism,
            "id_types": list(self.id_types),
            "pairs": {t: len(p) for t, p in self.pairs.items()},
            "ensembl_genes": len(self.ensembl_ids),
        }


def crosswalk_from_frame(
    frame: pd.DataFrame,
    *,
    source: str = "<frame>",
    sha256: str | None = None,
    tax_id: int | None = None,
    organism: str | None = None,
    fmt: str = "tsv",
) -> GeneCrosswalk:
    """Build a crosswalk from a DataFrame whose columns are identifier types (``ensembl`` required).

    Each non-``ensembl`` column gives ``(value, ensembl)`` pairs for the rows where both are present;
    several columns of the same type are allowed by passing names ``refseq``, ``refseq.1`` ... .
    """
    cols = {c: c.split(".")[0] for c in frame.columns}
    ens_cols = [c for c, t in cols.items() if t == "ensembl"]
    if len(ens_cols) != 1:
        raise CrosswalkError(f"{source}: need exactly one Ensembl gene id column, found {len(ens_cols)}")
    ensembl = normalize_keys("ensembl", pa.array(frame[ens_cols[0]].astype(object), pa.string()))
    pairs: dict[str, pd.DataFrame] = {}
    for col, id_type in cols.items():
        if id_type == "ensembl" or id_type not in ID_TYPES:
            continue
        keys = normalize_keys(id_type, pa.array(frame[col].astype(object), pa.string()))
        both = pc.and_(pc.is_valid(keys), pc.is_valid(ensembl))
        part = pd.DataFrame(
            {
                "key": pc.filter(keys, both).to_numpy(zero_copy_only=False),
                "ensembl_gene_id": pc.filter(ensembl, both).to_numpy(zero_copy_only=False),
            }
        )
        if id_type in pairs:
            part = pd.concat([pairs[id_type], part], ignore_index=True)
        pairs[id_type] = part
    for id_type, part in list(pairs.items()):
        part = part.drop_duplicates(ignore_index=True)
        if part.empty:
            del pairs[id_type]
            continue
        pairs[id_type] = part.astype(object)
    if not pairs:
        raise CrosswalkError(
            f"{source}: no identifier column with values next to an Ensembl id "
            f"(need one of entrez/symbol/refseq/genbank)"
        )
    genes = frozenset(ensembl.drop_null().to_pylist())
    return GeneCrosswalk(
        pairs=pairs,
        source=source,
        format=fmt,
        sha256=sha256,
        tax_id=tax_id,
        organism=organism,
        ensembl_ids=genes,
    )


# --------------------------------------------------------------------------------------------------
# Files


def _open_text_stream(path: Path) -> pa.NativeFile:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return pa.input_stream(str(path), compression="gzip" if magic == b"\x1f\x8b" else None)


def _first_line(path: Path) -> str:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    return line.rstrip("\r\n")
    except (OSError, EOFError) as exc:
        raise CrosswalkError(f"{path}: unreadable file ({exc})") from exc
    raise CrosswalkError(f"{path}: empty crosswalk file")


def _header_names(line: str) -> list[str]:
    return [c.strip().lstrip("#").strip() for c in line.split("\t")]


def _read_columns(
    path: Path, names: list[str], keep: list[str], filter_col: str | None, filter_value: str | None
):
    """Stream a headered TSV (header already known) keeping ``keep`` columns, optionally filtered."""
    read_opts = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=_BLOCK, use_threads=True)
    parse_opts = pacsv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False)
    convert_opts = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        include_columns=sorted(set(keep) | ({filter_col} if filter_col else set())),
        null_values=list(_MISSING),
        strings_can_be_null=True,
    )
    batches = []
    taxa: set[str] = set()
    try:
        with _open_text_stream(path) as stream:
            reader = pacsv.open_csv(stream, read_opts, parse_opts, convert_opts)
            for batch in reader:
                if filter_col is not None:
                    col = batch.column(filter_col)
                    if filter_value is None:
                        taxa.update(v for v in pc.unique(col).to_pylist() if v)
                        if len(taxa) > 1:
                            raise CrosswalkError(
                                f"{path}: gene2ensembl file holds several species "
                                f"(tax_id {', '.join(sorted(taxa)[:5])} ...); pass tax_id"
                            )
                    else:
                        batch = batch.filter(pc.equal(col, filter_value))
                batches.append(batch)
    except pa.ArrowInvalid as exc:
        raise CrosswalkError(f"{path}: unreadable crosswalk table ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise CrosswalkError(f"{path}: unreadable file ({exc})") from exc
    if not batches:
        return pa.table({c: pa.array([], pa.string()) for c in convert_opts.include_columns}), taxa
    return pa.Table.from_batches(batches), taxa


def load_crosswalk(
    path: str | Path,
    *,
    tax_id: int | None = None,
    gene_info: str | Path | None = None,
    organism: str | None = None,
) -> GeneCrosswalk:
    """Load a crosswalk file (formats in the module docstring); raises :class:`CrosswalkError`.

    ``tax_id`` selects the species of a gene2ensembl file (required when it holds several) and is
    recorded for a TSV. ``gene_info`` (NCBI ``gene_info`` of the same species, plain or gzip) adds
    ``symbol`` to a gene2ensembl crosswalk. ``organism`` is recorded as given.
    """
    from refine_assets.lib.storage import file_sha256

    path = Path(path)
    if not path.is_file():
        raise CrosswalkError(f"{path}: crosswalk file not found")
    header = _first_line(path)
    names = _header_names(header)
    lowered = [n.lower() for n in names]
    sha, _ = file_sha256(path)
    if "ensembl_gene_identifier" in lowered and "tax_id" in lowered:
        return _load_gene2ensembl(path, names, tax_id, gene_info, organism, sha)
    types: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name, low in zip(names, lowered, strict=True):
        id_type = _HEADER_ALIASES.get(low)
        if id_type is None:
            continue
        n = counts.get(id_type, 0)
        counts[id_type] = n + 1
        types[name] = id_type if n == 0 else f"{id_type}.{n}"
    if "ensembl" not in counts:
        raise CrosswalkError(
            f"{path}: no Ensembl gene id column in header {names!r} "
            "(expected e.g. entrez_id, ensembl_gene_id, symbol; or an NCBI gene2ensembl file)"
        )
    if len(counts) < 2:
        raise CrosswalkError(f"{path}: header {names!r} has no entrez/symbol/refseq/genbank column")
    table, _ = _read_columns(path, _unique(names), [*_unique_subset(names, types)], None, None)
    renamed = {src: types[orig] for src, orig in zip(_unique(names), names, strict=True) if orig in types}
    frame = pd.DataFrame({renamed[c]: table.column(c).to_numpy(zero_copy_only=False) for c in renamed})
    if frame.empty:
        raise CrosswalkError(f"{path}: crosswalk file has a header but no rows")
    return crosswalk_from_frame(frame, source=path.name, sha256=sha, tax_id=tax_id, organism=organism)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, n in enumerate(names):
        n = n or f"column_{i + 1}"
        if n in seen:
            seen[n] += 1
            n = f"{n}__{seen[n]}"
        else:
            seen[n] = 0
        out.append(n)
    return out


def _unique_subset(names: list[str], wanted: dict[str, str]) -> list[str]:
    return [u for u, n in zip(_unique(names), names, strict=True) if n in wanted]


def _load_gene2ensembl(
    path: Path,
    names: list[str],
    tax_id: int | None,
    gene_info: str | Path | None,
    organism: str | None,
    sha: str,
) -> GeneCrosswalk:
    idx = {n.lower(): n for n in names}
    tax_col, gene_col, ens_col = idx["tax_id"], idx.get("geneid"), idx["ensembl_gene_identifier"]
    rna_col = idx.get("rna_nucleotide_accession.version")
    if gene_col is None:
        raise CrosswalkError(f"{path}: gene2ensembl header lacks GeneID ({names!r})")
    keep = [gene_col, ens_col] + ([rna_col] if rna_col else [])
    table, taxa = _read_columns(path, names, keep, tax_col, None if tax_id is None else str(tax_id))
    if table.num_rows == 0:
        raise CrosswalkError(f"{path}: no gene2ensembl rows for tax_id {tax_id}")
    if tax_id is None and len(taxa) == 1:
        tax_id = int(next(iter(taxa)))
    frame = pd.DataFrame(
        {
            "entrez": table.column(gene_col).to_numpy(zero_copy_only=False),
            "ensembl": table.column(ens_col).to_numpy(zero_copy_only=False),
        }
    )
    if rna_col:
        frame["refseq"] = table.column(rna_col).to_numpy(zero_copy_only=False)
    source = path.name
    if gene_info is not None:
        symbols = _gene_info_symbols(Path(gene_info), tax_id)
        frame = frame.merge(symbols, on="entrez", how="left")
        source = f"{path.name} + {Path(gene_info).name}"
    return crosswalk_from_frame(
        frame, source=source, sha256=sha, tax_id=tax_id, organism=organism, fmt="gene2ensembl"
    )


def _gene_info_symbols(path: Path, tax_id: int | None) -> pd.DataFrame:
    if not path.is_file():
        raise CrosswalkError(f"{path}: gene_info file not found")
    names = _header_names(_first_line(path))
    idx = {n.lower(): n for n in names}
    if not {"tax_id", "geneid", "symbol"} <= set(idx):
        raise CrosswalkError(f"{path}: not an NCBI gene_info file (header {names[:4]!r} ...)")
    table, _ = _read_columns(
        path, names, [idx["geneid"], idx["symbol"]], idx["tax_id"], None if tax_id is None else str(tax_id)
    )
    return pd.DataFrame(
        {
            "entrez": table.column(idx["geneid"]).to_numpy(zero_copy_only=False),
            "symbol": table.column(idx["symbol"]).to_numpy(zero_copy_only=False),
        }
    ).drop_duplicates()


__all__ = [
    "ID_TYPES",
    "CrosswalkError",
    "GeneCrosswalk",
    "crosswalk_from_frame",
    "load_crosswalk",
    "normalize_keys",
]
