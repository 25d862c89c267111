"""refine.bio's metadata TSV: submitter attributes in refine.bio's annotation shape, flattened to its columns.

refine.bio stores a sample's raw submitter metadata as *annotations* (``SampleAnnotation.data``) and
flattens them into the metadata TSV with ``smashing_utils.get_tsv_columns`` / ``get_tsv_row_data``
(teardown §6.6). The warehouse keeps the same metadata verbatim in long format (``sample_attributes``:
``source, key, value`` in record order). This module turns those rows back into refine.bio's annotation
dicts (:func:`refinebio_annotations`) and flattens them with refine.bio's rules (:func:`tsv_row`), so
that readers written for refine.bio's downloads find the columns they select.

**Annotations** (one dict per source, in order of appearance):

* GEO (``geo_field``, ``geo_characteristics``): one dict as GEOparse gives it, every key a list of
  strings: ``{"geo_accession": ["GSM11805"], "characteristics_ch1": ["tissue: kidney", ...], ...}``.
  Our surveyor joins a multi-valued GEO field with one space, so such a field is one string here.
  ``geo_relation`` rows (derived from the ``relation`` field, which is kept) are left out.
* ArrayExpress legacy JSON (``ae_json``): the sample object: ``characteristic`` =
  ``[{"category", "value"(, "unit")}]``, ``variable`` = ``[{"name", "value"(, "unit")}]``, nested nodes
  ``{"assay": {"name": ...}, "file": [{"type", "name", "url", "comment": [{"name", "value"}]}, ...]}``.
* ArrayExpress SDRF (``sdrf``): ``Characteristics[c]`` -> ``characteristic``, ``Factor Value[n]`` ->
  ``variable`` (same shapes), every other column under its header (a repeated header is a list).
* any other source (``ena_run``, ``ena_sample``, ``biosample`` ...; refine.bio kept no annotations for
  SRA samples): ``{key: value}``; a key equal to a TSV column of the sample dict (``experiment_accession``
  of ENA runs) is stored as ``<source>_<key>``.

**Flattening** (``get_tsv_row_data``; ``source_database`` is the sample's):

* ARRAY_EXPRESS ``characteristic`` -> ``characteristic_<category>``; ``variable`` ->
  ``variable_<name>`` (refine.bio built the header as ``characteristic_<name>`` but wrote the row under
  ``variable_<name>``, so these values were silently dropped - fixed here); ``source`` skipped (as
  refine.bio; it stays in the JSON annotations). A unit becomes ``characteristic_<category>.unit``.
* GEO ``characteristics_ch1`` entries ``"k: v"`` -> ``characteristics_ch1_<k>`` = ``v`` stripped;
  an entry without ``:`` (refine.bio dropped it) -> column ``characteristics_ch1``.
* otherwise one column per annotation key: a dict holding only ``name`` -> that name, a one-element
  list -> the element, anything else the value itself.
* a column equal to a sample-dict column or starting with ``refinebio_`` (refine.bio skipped or
  overwrote those) is written as ``annotation_<column>``.
* the same column with the same value again is written once; a *different* value goes to
  ``<column>#2``, ``#3`` ... (refine.bio kept the first and only logged the conflict).

**Header** (``get_tsv_columns``): ``refinebio_accession_code``, ``experiment_accession``, every other
key of the sample dicts sorted, then every annotation column sorted (plain code-point order), the union
over the samples of the file. **Cells**: as Python's ``csv`` module writes them (refine.bio used
``csv.DictWriter(delimiter="\\t")``): ``None`` -> empty, booleans ``True``/``False``, numbers ``str``,
fields containing a tab, newline or quote quoted; lines end with ``\\r\\n``. Where refine.bio wrote a
Python ``repr`` of a list or dict, the cell is compact JSON (sorted keys) instead; ``refinebio_age``
is written with three decimals like refine.bio's ``Decimal(8, 3)`` column.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = [
    "FIRST_COLUMNS",
    "NOT_IN_TSV",
    "flatten_annotations",
    "refinebio_annotations",
    "tsv_cell",
    "tsv_columns",
    "tsv_row",
    "write_metadata_tsv",
]

FIRST_COLUMNS = ("refinebio_accession_code", "experiment_accession")
#: sample-dict keys that are not TSV columns (annotations are flattened instead; metrics stay in the JSON)
NOT_IN_TSV = frozenset({"refinebio_annotations", "refinebio_attributes", "refinebio_processing_metrics"})
GEO = "GEO"
ARRAY_EXPRESS = "ARRAY_EXPRESS"

_SDRF_CHARACTERISTIC = re.compile(r"^\s*characteristics?\s*\[(.*)\]\s*$", re.IGNORECASE)
_SDRF_FACTOR = re.compile(r"^\s*factor\s*value\s*\[(.*)\]\s*$", re.IGNORECASE)
_AE_PAIR = re.compile(r"^(characteristic|variable)\[(.*)\]( unit)?$")
_AE_COMMENT = re.compile(r"^comment\[(.*)\]$")
_GEO_CHARACTERISTICS = re.compile(r"^characteristics_ch\d+$", re.IGNORECASE)


def _add(d: dict, key: str, value: Any) -> None:
    """``d[key] = value``; a repeated key collects its values in a list."""
    if key not in d:
        d[key] = value
    elif isinstance(d[key], list):
        d[key].append(value)
    else:
        d[key] = [d[key], value]


def _geo(rows: Sequence[tuple[str, str, str]]) -> dict:
    d: dict[str, list[str]] = {}
    for source, key, value in rows:
        if source == "geo_characteristics" and not _GEO_CHARACTERISTICS.match(key):
            d.setdefault("characteristics_ch1", []).append(f"{key}: {value}")
        else:  # geo_field, or a characteristics entry that had no "key:" (kept under its field name)
            d.setdefault(key, []).append(value)
    return d


def _pair(d: dict, kind: str, name: str, value: str, unit: bool) -> None:
    label = "category" if kind == "characteristic" else "name"
    entries = d.setdefault(kind, [])
    if unit:
        for entry in reversed(entries):
            if entry.get(label) == name and "unit" not in entry:
                entry["unit"] = value
                return
        entries.append({label: name, "unit": value})
    else:
        entries.append({label: name, "value": value})


def _ae_json(rows: Sequence[tuple[str, str, str]]) -> dict:
    d: dict[str, Any] = {}
    for _source, key, value in rows:
        m = _AE_PAIR.match(key)
        if m:
            _pair(d, m.group(1), m.group(2), value, bool(m.group(3)))
            continue
        node, dot, fieldname = key.partition(".")
        current = d.get(node)
        if not dot or not (current is None or isinstance(current, dict) or _dict_list(current)):
            _add(d, key, value)
            continue
        comment = _AE_COMMENT.match(fieldname)
        slot = "comment" if comment else fieldname
        instance = current[-1] if isinstance(current, list) else current
        if instance is None or (not comment and slot in instance):  # a new instance of the node
            instance = {}
            if current is None:
                d[node] = instance
            elif isinstance(current, list):
                current.append(instance)
            else:
                d[node] = [current, instance]
        if comment:
            instance.setdefault("comment", []).append({"name": comment.group(1), "value": value})
        else:
            instance[slot] = value
    return d


def _dict_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _sdrf(rows: Sequence[tuple[str, str, str]]) -> dict:
    d: dict[str, Any] = {}
    for _source, key, value in rows:
        m = _SDRF_CHARACTERISTIC.match(key)
        if m:
            d.setdefault("characteristic", []).append({"category": m.group(1).strip(), "value": value})
            continue
        m = _SDRF_FACTOR.match(key)
        if m:
            d.setdefault("variable", []).append({"name": m.group(1).strip(), "value": value})
            continue
        _add(d, key, value)
    return d


def _plain(rows: Sequence[tuple[str, str, str]], reserved: frozenset[str]) -> dict:
    d: dict[str, Any] = {}
    for source, key, value in rows:
        _add(d, f"{source}_{key}" if key in reserved or key.startswith("refinebio_") else key, value)
    return d


def refinebio_annotations(
    attributes: Iterable[Mapping[str, Any]], reserved: Iterable[str] = FIRST_COLUMNS
) -> list[dict]:
    """refine.bio-shaped annotation dicts of one sample's attribute rows (module docstring).

    ``attributes``: ``{"source", "key", "value"}`` in record order. ``reserved``: the sample dict's own
    keys (a plain-source key equal to one of them is prefixed with its source).
    """
    reserved = frozenset(reserved)
    by_source: dict[str, list[tuple[str, str, str]]] = {}
    for a in attributes:
        source = str(a.get("source") or "")
        if source == "geo_relation":
            continue
        group = "geo" if source in ("geo_field", "geo_characteristics") else source
        by_source.setdefault(group, []).append(
            (source, str(a.get("key")), "" if a.get("value") is None else str(a.get("value")))
        )
    out = []
    for group, rows in by_source.items():
        if group == "geo":
            out.append(_geo(rows))
        elif group == "ae_json":
            out.append(_ae_json(rows))
        elif group == "sdrf":
            out.append(_sdrf(rows))
        else:
            out.append(_plain(rows, reserved))
    return out


def tsv_cell(value: Any) -> str:
    """One cell as ``csv`` writes it (``str``; ``None``/NaN empty; booleans ``True``/``False``);
    lists and dicts as compact sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return str(value)


def _age_cell(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.3f}"
    return tsv_cell(value)


def flatten_annotations(
    annotations: Sequence[Any], source_database: str | None, taken: Iterable[str] = ()
) -> dict[str, str]:
    """``{column: cell}`` of refine.bio-shaped annotations (flattening rules of the module docstring).

    ``taken``: the sample dict's own columns; an annotation column equal to one of them (or starting with
    ``refinebio_``) is written as ``annotation_<column>``.
    """
    taken = frozenset(taken) | set(FIRST_COLUMNS)
    out: dict[str, str] = {}
    seen: dict[str, list[str]] = {}

    def put(column: Any, value: Any) -> None:
        column = str(column)
        if column in taken or column.startswith("refinebio_"):
            column = f"annotation_{column}"
        cell = tsv_cell(value)
        values = seen.setdefault(column, [])
        if cell in values:
            return
        values.append(cell)
        out[column if len(values) == 1 else f"{column}#{len(values)}"] = cell

    ae, geo = source_database == ARRAY_EXPRESS, source_database == GEO
    for annotation in annotations:
        if not isinstance(annotation, Mapping):
            continue
        for key, value in annotation.items():
            if ae and key in ("characteristic", "variable"):
                label = "category" if key == "characteristic" else "name"
                for pair in value if isinstance(value, list) else [value]:
                    if isinstance(pair, Mapping) and label in pair:
                        if "value" in pair:
                            put(f"{key}_{pair[label]}", pair["value"])
                        if pair.get("unit") is not None:
                            put(f"{key}_{pair[label]}.unit", pair["unit"])
            elif ae and key == "source":
                continue
            elif geo and key == "characteristics_ch1":
                for entry in value if isinstance(value, list) else [value]:
                    name, sep, text = str(entry).partition(":")
                    if sep:
                        put(f"characteristics_ch1_{name}", text.strip())
                    else:
                        put("characteristics_ch1", entry)
            elif isinstance(value, Mapping) and len(value) == 1 and "name" in value:
                put(key, value["name"])
            elif isinstance(value, list) and len(value) == 1:
                put(key, value[0])
            else:
                put(key, value)
    return out


def tsv_row(sample: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """``(own cells, annotation cells)`` of a sample dict: every key except :data:`NOT_IN_TSV` as a cell,
    and the flattened ``refinebio_annotations``."""
    own = {
        k: (_age_cell(v) if k == "refinebio_age" else tsv_cell(v))
        for k, v in sample.items()
        if k not in NOT_IN_TSV
    }
    annotations = flatten_annotations(
        sample.get("refinebio_annotations") or [], sample.get("refinebio_source_database"), own
    )
    return own, annotations


def tsv_columns(rows: Iterable[tuple[Mapping[str, str], Mapping[str, str]]]) -> list[str]:
    """Header over ``tsv_row`` results: the first two columns, other own keys sorted, annotation columns
    sorted."""
    own: set[str] = set()
    annotation: set[str] = set()
    for o, a in rows:
        own.update(o)
        annotation.update(a)
    own.difference_update(FIRST_COLUMNS)
    annotation.difference_update(own | set(FIRST_COLUMNS))
    return [*FIRST_COLUMNS, *sorted(own), *sorted(annotation)]


def write_metadata_tsv(
    fh: TextIO, samples: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> list[str]:
    """Write the metadata TSV of ``samples`` (sample dicts) to a text stream; returns the header.

    ``columns``: a header shared by several files (refine.bio wrote one header per dataset); default the
    union over ``samples``. Cells a sample lacks are empty.
    """
    rows = [tsv_row(s) for s in samples]
    header = list(columns) if columns is not None else tsv_columns(rows)
    writer = csv.DictWriter(fh, header, delimiter="\t", extrasaction="ignore", restval="")
    writer.writeheader()
    for own, annotation in rows:
        writer.writerow({**annotation, **own})
    return header
