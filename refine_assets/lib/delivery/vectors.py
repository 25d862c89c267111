"""Load one sample's expression vector for delivery and sanitize its gene ids.

refine.bio's ``smashing_utils._load_and_sanitize_file`` / ``process_frame`` (teardown §6.2), applied to
our per-sample vectors (``processed/<EXP>/<SAMPLE>.parquet``, :mod:`refine_assets.lib.processing.vectors`):

1. ids are stripped of surrounding blanks; a trailing Brainarray suffix ``_at`` is removed
   (``ENSG00000000003_at`` -> ``ENSG00000000003``). refine.bio removed the substring ``_at`` anywhere
   in the id; only the suffix is Brainarray's, so only the suffix is removed here;
2. ids containing ``AFFX-`` (Affymetrix control probesets, any case) are dropped;
3. an Ensembl version suffix ``.<digits>`` is removed (``ENSG00000000003.14`` -> ``ENSG00000000003``).
   refine.bio's regex removed the last ``.<anything>`` segment, which also truncates ids that contain
   a dot without being versioned; Ensembl versions are digits, so only digits are removed;
4. values that are missing or not finite are dropped (a gene without a value is a gene the sample did
   not measure: the inner join then removes it, so delivered matrices have no missing cells);
5. duplicate ids (one-to-many probe mappings, ids equal after steps 1-3) are replaced by the **mean**
   of their values (refine.bio ``utils.squish_duplicates``: pandas ``groupby().mean()``);
6. ids are sorted (code-point order) and unique.

The only value transform is ``log2(x + 1)`` for RNA-seq vectors (tximport lengthScaledTPM, not
logged) when the caller asks for it (species aggregation and RNA-seq QN targets; ``docs/datasets.md``).
refine.bio's other transform, ``log2(x)`` of any column whose maximum exceeds 100, is *not* applied:
submitter-processed data are put on a log scale at processing time
(:mod:`refine_assets.lib.submitter.log2`), and the heuristic is wrong in both directions (teardown §12
item 4).

Tolerance: a duplicate's mean is the float64 sum of its values (in sorted-id order) divided by their
count, equal to pandas ``groupby().mean()`` to 1e-15 (tested); ``log2(x + 1)`` is ``numpy.log2(x + 1.0)`` in float64 (correctly rounded to
the last ulp). Verified in ``refine_assets_tests/unit/test_delivery_vectors.py`` on hand-built
vectors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from refine_assets.lib.storage import ArtifactStore

__all__ = ["SampleVector", "VectorError", "load_sample_vector", "read_vector_arrays", "sanitize_vector"]


class VectorError(ValueError):
    """A sample vector that cannot be delivered (unreadable, empty after cleaning, negative counts).

    The message names the sample and the storage key; it becomes the sample's filtered-sample reason.
    """


@dataclass
class SampleVector:
    """A sanitized vector: ``ids`` (sorted, unique, object array of str) and float64 ``values``.

    ``provenance`` is the JSON stored with the vector (method, versions ...); ``stats`` counts what the
    cleaning did (``n_input``, ``n_affx_dropped``, ``n_missing_dropped``, ``n_duplicate_ids_merged``,
    ``n_genes``); ``transform`` is ``"none"`` or ``"log2(x+1)"``.
    """

    accession: str
    ids: np.ndarray
    values: np.ndarray
    provenance: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    transform: str = "none"


def _as_string_array(ids) -> pa.Array:
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(ids, pa.Array):
        return (
            ids
            if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)
            else ids.cast(pa.string())
        )
    return pa.array(np.asarray(ids, dtype=object).astype(str), pa.string())


def sanitize_vector(
    ids: np.ndarray | list[str] | pd.Index | pa.Array | pa.ChunkedArray,
    values: np.ndarray,
    *,
    arrow_ids: bool = False,
) -> tuple[np.ndarray | pa.Array, np.ndarray, dict]:
    """Steps 1-6 of the module docstring: ``(sorted unique ids, float64 values, stats)``.

    ``arrow_ids``: return the ids as an Arrow string array instead of a numpy object array (no Python
    string per id; the expression store keeps thousands of vectors at once).

    Vectorized: Arrow compute kernels for the id edits (RE2 regexes ``_at$`` and ``\\.\\d+$``), one
    ``sort_indices``, and duplicate means as ``bincount`` sums / counts over runs of equal sorted ids.
    Ids sort by code point (UTF-8 byte order). Raises ValueError when ``ids`` and ``values`` differ in
    length.
    """
    arr = _as_string_array(ids)
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 1 or len(arr) != vals.shape[0]:
        raise ValueError(f"{len(arr)} ids but values of shape {vals.shape}")
    n_input = len(arr)
    clean = pc.utf8_trim_whitespace(arr)
    clean = pc.replace_substring_regex(clean, pattern="_at$", replacement="")
    affx = (
        pc.match_substring(clean, "AFFX-", ignore_case=True).fill_null(False).to_numpy(zero_copy_only=False)
    )
    clean = pc.replace_substring_regex(clean, pattern=r"\.\d+$", replacement="")
    empty = pc.equal(pc.utf8_length(clean), 0).fill_null(True).to_numpy(zero_copy_only=False)
    finite = np.isfinite(vals)
    keep = ~affx & finite & ~empty
    kept = clean.filter(pa.array(keep))
    kept_vals = vals[keep]
    order = pc.sort_indices(kept).to_numpy()
    sorted_ids = kept.take(pa.array(order))
    sorted_vals = kept_vals[order]
    n_kept = len(sorted_ids)
    if n_kept > 1:
        same = pc.equal(sorted_ids.slice(1), sorted_ids.slice(0, n_kept - 1)).to_numpy(zero_copy_only=False)
    else:
        same = np.zeros(0, dtype=bool)
    if same.any():
        starts = np.concatenate([[True], ~same])
        group = np.cumsum(starts) - 1
        sums = np.bincount(group, weights=sorted_vals)
        counts = np.bincount(group)
        out_vals = sums / counts
        sorted_ids = sorted_ids.filter(pa.array(starts))
    else:
        out_vals = sorted_vals.copy()
    if isinstance(sorted_ids, pa.ChunkedArray):
        sorted_ids = sorted_ids.combine_chunks()
    out_ids = sorted_ids if arrow_ids else np.asarray(sorted_ids.to_numpy(zero_copy_only=False), dtype=object)
    stats = {
        "n_input": int(n_input),
        "n_affx_dropped": int(affx.sum()),
        "n_missing_dropped": int((~affx & ~finite).sum()),
        "n_empty_ids_dropped": int((~affx & finite & empty).sum()),
        "n_duplicate_ids_merged": int(n_kept - len(out_ids)),
        "n_genes": len(out_ids),
    }
    return out_ids, out_vals, stats


#: value scale of a per-sample vector by the ledger step that wrote it (see :func:`value_scale`)
STEP_SCALES = {"affy_scan": "scan", "illumina_scan": "scan", "tximport": "length_scaled_tpm"}


def value_scale(step: str | None, metrics: dict | None = None) -> str:
    """The scale of a stored vector's values: ``scan`` (Affymetrix/Illumina SCAN: background-standardised
    scores on a log scale, ``docs/scan.md``), ``length_scaled_tpm`` (tximport, not logged), ``log2``
    (submitter-processed values we log2-transformed) or ``log_as_submitted`` (submitter-processed values
    already on a log scale, base unknown; the ``log2`` metrics of ``lib/submitter/log2.py`` decide), else
    ``unknown``."""
    if step in STEP_SCALES:
        return STEP_SCALES[step]
    if step in ("submitter_processed", "no_op"):
        log2 = (metrics or {}).get("log2")
        if isinstance(log2, dict) and log2.get("transformed") is False:
            return "log_as_submitted"
        return "log2"
    return "unknown"


def read_vector_arrays(store: ArtifactStore, key: str) -> tuple[pa.Array, np.ndarray, dict]:
    """``(ids as Arrow strings, float64 values, provenance)`` of a stored vector.

    Same file as :func:`refine_assets.lib.processing.vectors.read_vector` (Parquet ``id``/``value`` with
    provenance JSON under the ``refine_assets`` metadata key), read without converting ids to Python
    objects.
    """

    from refine_assets.lib.processing.vectors import METADATA_KEY

    table = store.read_parquet(key, columns=["id", "value"])
    meta = table.schema.metadata or {}
    provenance = json.loads(meta.get(METADATA_KEY, b"{}"))
    values = table.column("value").to_numpy().astype(np.float64, copy=False)
    return table.column("id").combine_chunks(), values, provenance


def load_sample_vector(
    store: ArtifactStore, key: str, accession: str, *, log2_plus_one: bool = False
) -> SampleVector:
    """Read ``key`` (a per-sample Parquet vector) and sanitize it; optionally ``log2(x + 1)`` the values.

    ``log2_plus_one`` is for RNA-seq (tximport lengthScaledTPM) vectors: negative values are then an
    error (counts cannot be negative). Raises :class:`VectorError` naming the sample and key when the file
    is missing or unreadable, or when no gene is left after cleaning.
    """
    from refine_assets.lib.storage import ArtifactNotFoundError

    try:
        raw_ids, raw_values, provenance = read_vector_arrays(store, key)
    except ArtifactNotFoundError:
        raise VectorError(f"{accession}: processed vector {key} is missing from storage") from None
    except Exception as exc:  # corrupt Parquet, wrong columns
        raise VectorError(
            f"{accession}: cannot read processed vector {key} ({type(exc).__name__}: {exc})"
        ) from None
    ids, values, stats = sanitize_vector(raw_ids, raw_values)
    if ids.size == 0:
        raise VectorError(f"{accession}: no gene id left in {key} after cleaning ({stats})")
    transform = "none"
    if log2_plus_one:
        if (values < 0).any():
            raise VectorError(
                f"{accession}: {int((values < 0).sum())} negative values in RNA-seq vector {key} "
                "(lengthScaledTPM cannot be negative)"
            )
        values = np.log2(values + 1.0)
        transform = "log2(x+1)"
    return SampleVector(accession, ids, values, provenance, stats, transform)
