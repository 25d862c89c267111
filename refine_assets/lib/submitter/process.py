"""Submitter-processed samples: a submitter's table of probe values -> a log2 gene vector (Ensembl ids).

The fallback when a sample's raw data are missing or unusable (refine.bio's NO_OP processor,
``refinebio-teardown.md`` §4.3; reference doc section "Submitter processed"): take the values the
submitter deposited (GEO sample table ``ID_REF``/``VALUE`` from the family SOFT or MINiML, an
ArrayExpress processed file), log2-transform them where they are not already log-scale, and convert
probe ids to Ensembl gene ids through the platform's annotation table.

:func:`process_sample_table` does, in order:

1. **Columns**: the id column is ``ID_REF`` (any case) else the first column; the value column is
   ``value_column`` if given, else ``VALUE`` (any case), else the second column. Other columns
   (``ABS_CALL``, detection p-values ...) are ignored (refine.bio instead *failed* any file with more
   than two columns, §4.3 ``check_output_quality``).
2. **Cells** (:func:`parse_values`): surrounding whitespace trimmed; empty, ``NA``, ``NaN``, ``N/A``,
   ``null``, ``None``, ``-``, ``--``, ``.`` (any case) are missing; ``inf``/``-inf`` are missing too
   (counted as non-finite); any other non-numeric cell (``12,5``, ``1,234``, ``high``) raises
   :class:`SubmitterTableError` with the count and examples, because it means a wrong column or a
   malformed file. Rows without an id are dropped and counted.
3. **Scale**: :func:`~refine_assets.lib.submitter.log2.detect_log2` on every finite value of the sample,
   then :func:`~refine_assets.lib.submitter.log2.apply_log2` (values ``<= 0`` of linear data floored to
   the smallest positive value, never passed to log2).
4. **Duplicated ids**: rows sharing an ``ID_REF`` are averaged (mean of their finite log2 values, the
   same summary the delivery step applies to duplicate genes) and counted; more than half of the rows
   being duplicates raises :class:`SubmitterTableError` (several tables concatenated, or the wrong id
   column).
5. **Ids -> genes**: :class:`~refine_assets.lib.idmap.PlatformMapper` over the sample's distinct ids
   (best annotation column, coverage >= 0.5, one-to-many duplicated, many-to-one kept as repeated gene
   ids for the delivery mean: see :mod:`refine_assets.lib.idmap`). Probes whose value is missing are
   left out of the vector.

The result (:class:`SubmitterResult`) holds the gene vector (``pd.Series`` of float64 indexed by
Ensembl gene id, repeats allowed, no NaN) - the same artifact the raw-data paths produce
(:mod:`refine_assets.lib.processing.vectors`) - and the log2 decision, mapping report and table counts
that :meth:`SubmitterResult.metrics` flattens for the processing ledger (``submitter_processed: true``,
mapping column/source/coverage).

:class:`SubmitterProcessor` is the per-sample processor for the processing framework (pipeline
``NO_OP``, step ``submitter_processed``): it reads ``surveys/<EXP>/sample_tables/<GSM>.parquet`` and
``surveys/<EXP>/platform_tables/<GPL>.parquet`` from the artifact store (written by the survey,
:mod:`refine_assets.lib.survey.pipeline`), caches one mapper per platform, and records the crosswalk
and table checksums as versions/inputs.

:func:`read_sample_table` / :func:`read_platform_table` read the files the ``convert-ids`` command
takes: GEO SOFT (a single GSM, a family SOFT, a GPL, an ``.annot`` file), or tab/comma separated text
with comment lines starting with ``#`` or ``!`` (plain or gzip).

Tolerance: values are the submitter's numbers through ``float()`` and ``numpy.log2`` (float64, exact to
the ulp); ids are exact string matches. Verified in ``refine_assets_tests/unit/test_submitter.py``:
hand-computed small tables (one-to-many duplication, many-to-one repeats, duplicated ids, missing and
bad cells), and all 34 real GSE781 samples end to end (values equal ``log2(VALUE)`` of the probe for
checked probe -> gene pairs read from the crosswalk file; GPL96 coverage 0.9252, GPL97 0.6034).
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from refine_assets.lib.arrow_buffers import native_reader
from refine_assets.lib.crosswalk import GeneCrosswalk
from refine_assets.lib.idmap import MIN_COVERAGE, IdMappingError, PlatformMapper
from refine_assets.lib.submitter.log2 import Log2Decision, Log2Error, Log2Result, apply_log2, detect_log2

METHOD = "submitter_processed"
METHOD_VERSION = "1"
MISSING_TOKENS = ("", "na", "nan", "n/a", "null", "none", "-", "--", ".")
MAX_DUPLICATE_FRACTION = 0.5
GENERIC_VALUE_NAMES = frozenset({"value", "values", "signal", "expression", "intensity"})


class SubmitterTableError(ValueError):
    """A submitter table cannot be processed; the message names the sample (or file) and the problem."""


@dataclass
class SubmitterResult:
    """The gene vector of one submitter-processed sample and how it was made (see module docstring)."""

    sample_accession: str
    values: pd.Series
    log2: Log2Decision | None
    log2_transform: dict
    mapping: dict
    table: dict
    warnings: list[str] = field(default_factory=list)
    method: str = METHOD

    def metrics(self) -> dict[str, Any]:
        """Ledger metrics: flagged ``submitter_processed``, with mapping source/coverage and scale."""
        m = self.mapping
        compact_candidates = [
            {k: c.get(k) for k in ("column", "id_type", "coverage")}
            for c in m.get("candidates", [])
            if c.get("coverage") is not None
        ]
        return {
            "submitter_processed": True,
            "method": self.method,
            "method_version": METHOD_VERSION,
            "n_genes": int(self.values.index.nunique()),
            "n_values": len(self.values),
            "mapping": {
                **{k: v for k, v in m.items() if k != "candidates"},
                "candidates": compact_candidates,
            },
            "log2": self.log2_transform,
            "table": self.table,
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------------------
# Cells and columns


def _to_string_array(values) -> pa.Array:
    """Any 1-D column (Arrow, pandas, numpy, list) as an Arrow string array; NaN/None -> null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == pa.string() else pc.cast(values, pa.string())
    obj = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    try:
        arr = pa.array(obj, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python types: rare, slow path
        arr = pa.array([None if x is None or x is pd.NA or x != x else str(x) for x in obj], pa.string())
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    return arr if arr.type == pa.string() else pc.cast(arr, pa.string())


def parse_values(cells, *, label: str = "sample") -> tuple[np.ndarray, dict]:
    """Numbers of a value column: (float64 array with NaN for missing, counts).

    Rules in the module docstring. Counts: ``n_missing`` (missing tokens and nulls), ``n_nonfinite``
    (``inf``/``-inf``, set to NaN). Raises :class:`SubmitterTableError` naming ``label`` for cells that
    are neither numbers nor missing tokens.
    """
    numeric = None
    if isinstance(cells, pd.Series) and pd.api.types.is_numeric_dtype(cells.dtype):
        numeric = cells.to_numpy(dtype=np.float64, na_value=np.nan)
    elif isinstance(cells, np.ndarray) and cells.dtype.kind in "fiub":
        numeric = cells.astype(np.float64)
    elif isinstance(cells, pa.Array | pa.ChunkedArray) and (
        pa.types.is_floating(cells.type) or pa.types.is_integer(cells.type)
    ):
        numeric = pc.cast(cells, pa.float64()).to_numpy(zero_copy_only=False)
    if numeric is not None:
        values = np.array(numeric, dtype=np.float64)
        n_missing = int(np.count_nonzero(np.isnan(values)))
    else:
        text = pc.utf8_trim_whitespace(_to_string_array(cells))
        missing = pc.or_(pc.is_null(text), pc.is_in(pc.utf8_lower(text), pa.array(MISSING_TOKENS)))
        missing_np = np.asarray(missing.fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
        present = pc.if_else(missing, pa.scalar(None, pa.string()), text)
        try:  # fast path: Arrow's C++ parser (decimal and exponent notation, inf, nan)
            values = np.array(pc.cast(present, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            bad = np.zeros(len(values), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            obj = np.asarray(present.to_numpy(zero_copy_only=False), dtype=object)
            values = np.array(
                pd.to_numeric(pd.Series(obj, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
            )
            bad = np.isnan(values) & ~missing_np
        if bad.any():
            examples = ", ".join(repr(x) for x in pd.unique(obj[bad])[:5])
            raise SubmitterTableError(
                f"{label}: {int(bad.sum())} value cells are not numbers (e.g. {examples}); "
                "wrong value column, decimal commas or thousands separators?"
            )
        n_missing = int(missing_np.sum())
    nonfinite = np.isinf(values)
    values[nonfinite] = np.nan
    return values, {"n_missing": n_missing, "n_nonfinite": int(nonfinite.sum())}


def select_columns(
    names: list[str], *, id_column: str | None = None, value_column: str | None = None, label: str = "sample"
) -> tuple[str, str]:
    """(id column, value column) of a sample table; rules in the module docstring."""
    if len(names) < 2 and not (id_column and value_column):
        raise SubmitterTableError(f"{label}: table has {len(names)} column(s); need an id and a value column")
    lowered = {n.lower(): n for n in names}
    if id_column is not None and id_column not in names:
        raise SubmitterTableError(f"{label}: no id column {id_column!r} (columns: {names[:8]!r})")
    if value_column is not None and value_column not in names:
        raise SubmitterTableError(f"{label}: no value column {value_column!r} (columns: {names[:8]!r})")
    idc = id_column or lowered.get("id_ref") or names[0]
    valc = value_column or lowered.get("value")
    if valc is None:
        rest = [n for n in names if n != idc]
        valc = rest[0]
    if valc == idc:
        raise SubmitterTableError(f"{label}: id and value column are the same ({idc!r})")
    return idc, valc


def _string_ids(col) -> np.ndarray:
    arr = pc.utf8_trim_whitespace(_to_string_array(col))
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


# --------------------------------------------------------------------------------------------------
# Processing


def process_sample_table(
    table: pa.Table | pd.DataFrame,
    platform_table: pa.Table | pd.DataFrame | PlatformMapper,
    crosswalk: GeneCrosswalk | None = None,
    *,
    sample_accession: str,
    id_column: str | None = None,
    value_column: str | None = None,
    min_coverage: float = MIN_COVERAGE,
    nonpositive: str = "floor",
    log2: bool = True,
    platform: str | None = None,
) -> SubmitterResult:
    """One submitter table -> :class:`SubmitterResult` (steps in the module docstring).

    ``platform_table`` is the platform's annotation table (then ``crosswalk`` is required) or a
    prepared :class:`PlatformMapper` (reused across the samples of a platform). ``log2=False`` skips
    the scale decision and transform (ids converted only). Raises :class:`SubmitterTableError`,
    :class:`~refine_assets.lib.submitter.log2.Log2Error` or :class:`~refine_assets.lib.idmap.IdMappingError`
    (all ``ValueError``), each naming the sample.
    """
    label = sample_accession
    if isinstance(platform_table, PlatformMapper):
        mapper = platform_table
    else:
        if crosswalk is None:
            raise ValueError("crosswalk is required when platform_table is a table")
        mapper = PlatformMapper(platform_table, crosswalk, name=platform or "platform")
    names = [str(n) for n in (table.column_names if isinstance(table, pa.Table) else table.columns)]
    idc, valc = select_columns(names, id_column=id_column, value_column=value_column, label=label)
    if isinstance(table, pa.Table):
        id_cells, value_cells = table.column(idc), table.column(valc)
    else:
        id_cells, value_cells = table[idc], table[valc]
    n_rows = len(id_cells)
    if n_rows == 0:
        raise SubmitterTableError(f"{label}: the sample table has no rows")
    ids = _string_ids(id_cells)
    values, counts = parse_values(value_cells, label=label)
    has_id = pd.notna(ids) & (ids != "")
    n_missing_ids = int(n_rows - has_id.sum())
    ids, values = ids[has_id], values[has_id]
    if ids.size == 0:
        raise SubmitterTableError(f"{label}: no row has an id in column {idc!r}")
    warnings: list[str] = []
    if n_missing_ids:
        warnings.append(f"{n_missing_ids} rows without an id dropped")

    decision: Log2Decision | None = None
    if log2:
        result: Log2Result = apply_log2(
            values, detect_log2(values, label=label), nonpositive=nonpositive, label=label
        )
        decision = result.decision
        logged = result.values
        transform = result.as_dict()
        warnings.extend(decision.warnings)
    else:
        logged = values
        transform = {"transformed": False, "skipped": True}

    codes, uniques = pd.factorize(pd.Series(ids, dtype=object), sort=False)
    n_unique = len(uniques)
    n_duplicate_rows = int(ids.size - n_unique)
    if n_duplicate_rows > MAX_DUPLICATE_FRACTION * ids.size:
        raise SubmitterTableError(
            f"{label}: {n_duplicate_rows} of {ids.size} rows repeat an id of column {idc!r}; "
            "several tables concatenated or the wrong id column?"
        )
    finite = np.isfinite(logged)
    if n_duplicate_rows:
        sums = np.bincount(codes, weights=np.where(finite, logged, 0.0), minlength=n_unique)
        cnt = np.bincount(codes, weights=finite.astype(np.float64), minlength=n_unique)
        with np.errstate(invalid="ignore", divide="ignore"):
            probe_values = np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan)
        n_dup_ids = int(np.count_nonzero(np.bincount(codes, minlength=n_unique) > 1))
        warnings.append(f"{n_dup_ids} ids appear on several rows ({n_duplicate_rows} extra rows); averaged")
    else:
        probe_values = logged
        n_dup_ids = 0
    probe_ids = np.asarray(uniques, dtype=object)

    mapping = mapper.map(probe_ids, min_coverage=min_coverage, label=label)
    pos = mapping.query_positions  # probe_ids are distinct: positions index them directly
    gene_values = probe_values[pos]
    keep = np.isfinite(gene_values)
    series = pd.Series(
        gene_values[keep],
        index=pd.Index(mapping.gene_ids[keep], name="id", dtype=object),
        name=sample_accession,
    )
    if series.empty:
        raise SubmitterTableError(f"{label}: no mapped probe has a value; the gene vector would be empty")
    n_probe_missing = int(np.count_nonzero(~np.isfinite(probe_values)))
    table_report = {
        "id_column": idc,
        "value_column": valc,
        "n_rows": n_rows,
        "n_missing_ids": n_missing_ids,
        "n_probes": n_unique,
        "n_duplicate_rows": n_duplicate_rows,
        "n_duplicate_ids": n_dup_ids,
        "n_missing_values": counts["n_missing"],
        "n_nonfinite_values": counts["n_nonfinite"],
        "n_probes_without_value": n_probe_missing,
        "n_mapped_probes_with_value": int(pd.unique(mapping.probe_ids[keep]).size),
    }
    return SubmitterResult(
        sample_accession=sample_accession,
        values=series,
        log2=decision,
        log2_transform=transform,
        mapping=mapping.report,
        table=table_report,
        warnings=warnings,
    )


def mean_of_duplicates(values: pd.Series) -> pd.Series:
    """One value per gene id: the mean of repeated ids (the delivery step's summary), sorted by id."""
    return values.groupby(level=0, sort=True).mean()


# --------------------------------------------------------------------------------------------------
# Files (the convert-ids command)

_SOFT_START = re.compile(rb"^\s*\^", re.MULTILINE)


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise SubmitterTableError(f"{path}: truncated or corrupt gzip file ({exc})") from exc
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    if not raw.strip():
        raise SubmitterTableError(f"{path}: empty file")
    return raw


def _first_content_line(raw: bytes) -> bytes:
    for line in raw.split(b"\n", 50)[:50]:
        if line.strip():
            return line.strip()
    return b""


def file_stem(path: Path) -> str:
    """``GSM11805.txt.gz`` -> ``GSM11805`` (compression and one table suffix removed)."""
    name = path.name
    for suffix in (".gz", ".bz2", ".zip"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    for suffix in (".txt", ".tsv", ".csv", ".tab", ".soft", ".annot"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _delimited_table(raw: bytes, label: str) -> tuple[pa.Table, bool]:
    """Parse delimited text with ``#``/``!`` comment lines: (string table, had a header)."""
    lines = raw.split(b"\n")
    content = [ln.rstrip(b"\r") for ln in lines if ln.strip() and ln[:1] not in (b"#", b"!")]
    if not content:
        raise SubmitterTableError(f"{label}: no table rows (only comments or blank lines)")
    header_line = content[0]
    delimiter = "\t" if b"\t" in header_line else ("," if b"," in header_line else "\t")
    header = [c.strip().strip('"') for c in header_line.decode("utf-8", errors="replace").split(delimiter)]
    body = content[1:]
    # MAGE-TAB processed data matrix: a second header row naming the quantitation types.
    if body and header and header[0].lower() == "hybridization ref":
        second = body[0].decode("utf-8", errors="replace").split(delimiter)[0].strip().lower()
        if second.endswith(" ref") or second in ("reporter identifier", "compositeelement ref"):
            header[0] = body[0].decode("utf-8", errors="replace").split(delimiter)[0].strip()
            body = body[1:]
    has_header = not (len(header) >= 2 and _is_number(header[1]))
    if not has_header:
        body = content
        width = len(header)
        header = ["ID_REF", "VALUE", *[f"column_{i + 1}" for i in range(2, width)]]
    header = [h or f"column_{i + 1}" for i, h in enumerate(header)]
    seen: dict[str, int] = {}
    names = []
    for h in header:
        if h in seen:
            seen[h] += 1
            h = f"{h}.{seen[h]}"
        else:
            seen[h] = 0
        names.append(h)
    if not body:
        return pa.table({n: pa.array([], pa.string()) for n in names}), has_header
    width = len(names)
    rows = b"\n".join(body)
    internal = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            native_reader(rows),
            pacsv.ReadOptions(column_names=internal, block_size=1 << 24),
            pacsv.ParseOptions(
                delimiter=delimiter, quote_char=False, double_quote=False, ignore_empty_lines=True
            ),
            pacsv.ConvertOptions(
                column_types=dict.fromkeys(internal, pa.string()), null_values=[""], strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SubmitterTableError(f"{label}: rows do not match the {width}-column header ({exc})") from exc
    table = table.rename_columns(names)
    cols = []
    for col in table.columns:
        if col.null_count < len(col) and pc.any(pc.starts_with(col, '"')).as_py():
            col = pc.replace_substring_regex(col, pattern=r'^"(.*)"$', replacement=r"\1")
        cols.append(col)
    return pa.table(cols, names=names), has_header


def read_sample_table(
    path: str | Path, *, sample: str | None = None, value_column: str | None = None
) -> tuple[pa.Table, str, str | None]:
    """A sample table file -> (string table, sample name, platform accession or None).

    SOFT input (first line ``^...``: a GSM record or a family SOFT) gives the ``SAMPLE`` entity's table
    (``sample`` chooses one when there are several), its accession as the name and its
    ``!Sample_platform_id``. Delimited text: ``#``/``!`` lines skipped; a first row whose second field
    is a number means no header (MINiML ``GSM...-tbl-1.txt``: columns become ``ID_REF``, ``VALUE``);
    the name is ``sample``, else the value column's header unless generic (``VALUE`` ...), else the file
    stem. Raises :class:`SubmitterTableError` / ``FileNotFoundError`` naming the file.
    """
    from refine_assets.lib.survey.geo_soft import SoftParseError, parse_soft

    path = Path(path)
    raw = _read_bytes(path)
    if _first_content_line(raw).startswith(b"^"):
        try:
            doc = parse_soft(raw, name=str(path))
        except SoftParseError as exc:
            raise SubmitterTableError(str(exc)) from exc
        entities = [e for e in doc.of_type("SAMPLE") if e.table is not None]
        if sample is not None:
            entities = [e for e in entities if e.accession == sample]
        if not entities:
            raise SubmitterTableError(
                f"{path}: no SAMPLE with a data table" + (f" named {sample}" if sample else "")
            )
        if len(entities) > 1:
            shown = ", ".join(e.accession or "?" for e in entities[:6])
            raise SubmitterTableError(
                f"{path}: {len(entities)} samples ({shown} ...); choose one with --sample"
            )
        entity = entities[0]
        assert entity.table is not None
        return (
            entity.table,
            sample or entity.accession or file_stem(path),
            (entity.get("platform_id") or None),
        )
    table, _ = _delimited_table(raw, str(path))
    names = table.column_names
    if sample:
        name = sample
    else:
        _, valc = select_columns(names, value_column=value_column, label=str(path))
        generic = valc.lower() in GENERIC_VALUE_NAMES or re.fullmatch(r"column_\d+", valc)
        name = file_stem(path) if generic else valc
    return table, name, None


def read_platform_table(path: str | Path, *, platform: str | None = None) -> tuple[pa.Table, str]:
    """A platform annotation file -> (string table, platform name).

    SOFT input (a GPL record, a family SOFT, a GEO ``.annot`` file starting ``^Annotation``) gives the
    ``PLATFORM``/``ANNOTATION`` table (``platform`` chooses among several, matching the accession or
    ``!Annotation_platform``). Delimited text: ``#``/``!`` lines skipped, first row is the header; the
    name is ``platform`` or the file stem. Raises :class:`SubmitterTableError` / ``FileNotFoundError``.
    """
    from refine_assets.lib.survey.geo_soft import SoftParseError, parse_soft

    path = Path(path)
    raw = _read_bytes(path)
    if _first_content_line(raw).startswith(b"^"):
        try:
            doc = parse_soft(raw, name=str(path))
        except SoftParseError as exc:
            raise SubmitterTableError(str(exc)) from exc
        found = [
            (e.accession or e.get("platform") or file_stem(path), e)
            for e in doc.entities
            if e.entity_type in ("PLATFORM", "ANNOTATION") and e.table is not None
        ]
        if platform is not None:
            chosen = [f for f in found if f[0] == platform]
            if not chosen and len(found) == 1:
                chosen = found
            found = chosen
        if not found:
            raise SubmitterTableError(
                f"{path}: no platform table" + (f" for {platform}" if platform else "") + " in this SOFT file"
            )
        if len(found) > 1:
            shown = ", ".join(name for name, _ in found[:6])
            raise SubmitterTableError(
                f"{path}: {len(found)} platform tables ({shown}); choose one with --platform"
            )
        name, entity = found[0]
        assert entity.table is not None
        return entity.table, name
    table, has_header = _delimited_table(raw, str(path))
    if not has_header:
        raise SubmitterTableError(f"{path}: platform table needs a header row (ID and annotation columns)")
    return table, platform or file_stem(path)


# --------------------------------------------------------------------------------------------------
# The processing-framework processor

CrosswalkSource = GeneCrosswalk | Mapping[str, GeneCrosswalk] | Callable[[str | None], GeneCrosswalk]


class SubmitterProcessor:
    """Processor of pipeline ``NO_OP`` (and the fallback of raw pipelines) for the processing framework.

    ``crosswalks`` is one :class:`GeneCrosswalk` (used for every sample; refused for a sample whose
    organism differs from the crosswalk's ``organism`` when both are known), a mapping organism ->
    crosswalk (refine.bio names, ``HOMO_SAPIENS``), or a callable organism -> crosswalk. Failures
    raise :class:`~refine_assets.lib.processing.framework.ProcessingError` with the reason.
    """

    step = METHOD

    def __init__(
        self,
        store,
        crosswalks: CrosswalkSource,
        *,
        min_coverage: float = MIN_COVERAGE,
        nonpositive: str = "floor",
        fetcher=None,
        annotation_for: Callable[[str | None], tuple[str, str] | None] | None = None,
    ):
        """``fetcher`` (a :class:`~refine_assets.lib.processing.fetch.Fetcher`) and ``annotation_for``
        (platform code -> (storage key of an annotation table, version) or None) enable samples whose
        submitter data is a processed *file* listed in the survey (ArrayExpress ``Derived Array Data
        File``) rather than a table stored by the survey (GEO)."""
        self.fetcher = fetcher
        self.annotation_for = annotation_for
        self.store = store
        self._crosswalks = crosswalks
        self.min_coverage = min_coverage
        self.nonpositive = nonpositive
        self._manifests: dict[str, dict] = {}
        self._mappers: dict[tuple[str, str, int], PlatformMapper] = {}

    @classmethod
    def for_env(cls, env) -> SubmitterProcessor:
        """The processor for a :class:`~refine_assets.lib.processing.registry.ProcessingEnv`: crosswalks
        and platform annotations come from its reference provider (built on first need)."""
        from refine_assets.lib.processing.gene_refs import annotation_for, load_crosswalk_for

        provider = env.provider
        return cls(
            env.store,
            lambda organism: load_crosswalk_for(provider, organism)[0],
            fetcher=env.fetcher,
            annotation_for=lambda code: annotation_for(provider, code),
        )

    def crosswalk_for(self, organism: str | None) -> GeneCrosswalk:
        """The crosswalk of an organism; raises ProcessingError when there is none."""
        from refine_assets.lib.processing.framework import ProcessingError

        source = self._crosswalks
        if isinstance(source, GeneCrosswalk):
            if source.organism and organism and source.organism.upper() != organism.upper():
                raise ProcessingError(f"no gene crosswalk for organism {organism} (have {source.organism})")
            return source
        if isinstance(source, Mapping):
            cw = source.get(organism or "") or source.get((organism or "").upper())
            if cw is None:
                raise ProcessingError(f"no gene crosswalk for organism {organism}")
            return cw
        return source(organism)

    def _manifest(self, experiment: str) -> dict:
        if experiment not in self._manifests:
            from refine_assets.lib.processing.inputs import survey_manifest

            self._manifests[experiment] = survey_manifest(self.store, experiment)
        return self._manifests[experiment]

    def versions(self, sample) -> dict[str, Any]:
        """Method version, crosswalk checksum, platform table checksum and the thresholds."""
        try:
            cw = self.crosswalk_for(sample.organism)
            cw_sha = cw.sha256 or cw.source
        except Exception:  # reported by process(); the version key only needs to be stable
            cw_sha = None
        platform_sha = None
        try:
            entry = (
                self._manifest(sample.experiment_accession)
                .get("platform_tables", {})
                .get(sample.platform_accession or "")
            )
            platform_sha = entry.get("sha256") if entry else None
        except FileNotFoundError:
            pass
        return {
            "method": METHOD,
            "method_version": METHOD_VERSION,
            "crosswalk": cw_sha,
            "platform_table": platform_sha,
            "min_coverage": self.min_coverage,
            "nonpositive": self.nonpositive,
        }

    def process(self, sample):
        """The gene vector of ``sample`` from its stored submitter table (ProcessedSample)."""

        from refine_assets.lib.processing.framework import ProcessedSample, ProcessingError

        manifest = self._manifest(sample.experiment_accession)
        table_entry = manifest.get("sample_tables", {}).get(sample.accession)
        if table_entry is None:
            return self._process_file(sample)
        gpl = sample.platform_accession
        platform_entry = manifest.get("platform_tables", {}).get(gpl or "")
        if platform_entry is None:
            raise ProcessingError(
                f"{sample.accession}: the survey stored no platform table for {gpl or 'its (unknown) platform'}"
            )
        cw = self.crosswalk_for(sample.organism)
        key = (sample.experiment_accession, gpl or "", id(cw))
        try:
            mapper = self._mappers.get(key)
            if mapper is None:
                ptable = self.store.read_parquet(platform_entry["key"])
                mapper = PlatformMapper(ptable, cw, name=gpl or "platform")
                self._mappers[key] = mapper
            stable = self.store.read_parquet(table_entry["key"])
            result = process_sample_table(
                stable,
                mapper,
                sample_accession=sample.accession,
                min_coverage=self.min_coverage,
                nonpositive=self.nonpositive,
            )
        except (SubmitterTableError, Log2Error, IdMappingError) as exc:
            raise ProcessingError(str(exc)) from exc
        return ProcessedSample(
            values=result.values,
            metrics=result.metrics(),
            input_checksums={
                "sample_table": table_entry.get("sha256", ""),
                "platform_table": platform_entry.get("sha256", ""),
                "crosswalk": cw.sha256 or "",
            },
            method=METHOD,
        )

    def _process_file(self, sample):
        """A processed file listed for the sample (ArrayExpress): fetch, read, map with the platform's
        annotation reference."""
        from refine_assets.lib.processing.fetch import FetchError
        from refine_assets.lib.processing.framework import ProcessedSample, ProcessingError
        from refine_assets.lib.storage import file_sha256

        files = [
            f
            for f in sample.files
            if f.get("file_type") == "PROCESSED" and f.get("sample_accession") == sample.accession
        ]
        if not files:
            raise ProcessingError(f"{sample.accession}: no submitter-processed table or file for this sample")
        if self.fetcher is None or self.annotation_for is None:
            raise ProcessingError(
                f"{sample.accession}: processed files need a fetcher and platform annotations"
            )
        f = files[0]
        try:
            path = self.fetcher.fetch(f["source_url"], f.get("filename"))
            table, _, _ = read_sample_table(path, sample=sample.accession)
        except (FetchError, SubmitterTableError, FileNotFoundError) as exc:
            raise ProcessingError(f"{sample.accession}: {exc}") from exc
        # the platform annotation is located (and built) only once the file is in hand
        annotation = self.annotation_for(sample.internal_platform_code)
        if annotation is None:
            raise ProcessingError(
                f"{sample.accession}: the sample has no platform code, so no annotation can convert its "
                "processed file"
            )
        cw = self.crosswalk_for(sample.organism)
        key = (f"annotation:{annotation[0]}", sample.internal_platform_code or "", id(cw))
        try:
            mapper = self._mappers.get(key)
            if mapper is None:
                ptable = self.store.read_parquet(annotation[0])
                mapper = PlatformMapper(ptable, cw, name=sample.internal_platform_code or "platform")
                self._mappers[key] = mapper
            result = process_sample_table(
                table,
                mapper,
                sample_accession=sample.accession,
                min_coverage=self.min_coverage,
                nonpositive=self.nonpositive,
            )
        except (SubmitterTableError, Log2Error, IdMappingError) as exc:
            raise ProcessingError(str(exc)) from exc
        sha, _ = file_sha256(path)
        metrics = result.metrics()
        metrics["source_file"] = f.get("filename")
        return ProcessedSample(
            values=result.values,
            metrics=metrics,
            input_checksums={
                "processed_file": sha,
                "annotation": annotation[1],
                "crosswalk": cw.sha256 or "",
            },
            method=METHOD,
        )


__all__ = [
    "METHOD",
    "SubmitterProcessor",
    "SubmitterResult",
    "SubmitterTableError",
    "file_stem",
    "mean_of_duplicates",
    "parse_values",
    "process_sample_table",
    "read_platform_table",
    "read_sample_table",
    "select_columns",
]
