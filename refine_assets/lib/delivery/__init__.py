"""Dataset delivery: QN reference targets, dataset zips in refine.bio's names, and the expression store.

Modules (``docs/datasets.md`` describes the whole method, the zip layout and every column):

* :mod:`~refine_assets.lib.delivery.request` — parse and validate a dataset request (JSON/YAML, the
  shape of refine.bio's dataset API: ``data`` = experiment -> samples or ``ALL``, ``aggregate_by``,
  ``scale_by``, ``quantile_normalize``);
* :mod:`~refine_assets.lib.delivery.vectors` — load one sample's vector and sanitize its ids
  (Brainarray ``_at``, ``AFFX-`` controls, Ensembl versions, mean of duplicates);
* :mod:`~refine_assets.lib.delivery.join` — deterministic inner join of sample vectors;
* :mod:`~refine_assets.lib.delivery.transform` — per-gene scaling (sklearn semantics, numpy);
* :mod:`~refine_assets.lib.delivery.metadata` — sample and experiment metadata from the warehouse, in
  refine.bio's keys;
* :mod:`~refine_assets.lib.delivery.metadata_tsv` — refine.bio's annotation shape and metadata TSV columns;
* :mod:`~refine_assets.lib.delivery.quantsf` — ``quant_sf_only`` datasets (salmon quant.sf files);
* :mod:`~refine_assets.lib.delivery.expression_store` — processed vectors compacted into one Parquet
  dataset and the warehouse's ``expression`` views (``docs/expression-store.md``);
* :mod:`~refine_assets.lib.delivery.targets` — build/read per-organism QN targets;
* :mod:`~refine_assets.lib.delivery.dataset` — :func:`build_dataset`, the orchestration and zip writer.

Quantile normalization and the KS gate are :mod:`refine_assets.lib.qn` and :mod:`refine_assets.lib.ks`.
No module here imports dagster.
"""

from __future__ import annotations

__all__ = [
    "DatasetError",
    "DatasetRequest",
    "DatasetRequestError",
    "DatasetResult",
    "build_dataset",
    "build_qn_target",
    "load_request",
    "parse_request",
    "qn_target_record",
]


def __getattr__(name: str):
    # Lazy re-exports: importing the package stays cheap (the CLI imports submodules on demand).
    if name in ("DatasetRequest", "DatasetRequestError", "load_request", "parse_request"):
        from refine_assets.lib.delivery import request

        return getattr(request, name)
    if name in ("DatasetError", "DatasetResult", "build_dataset"):
        from refine_assets.lib.delivery import dataset

        return getattr(dataset, name)
    if name in ("build_qn_target", "qn_target_record"):
        from refine_assets.lib.delivery import targets

        return getattr(targets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
