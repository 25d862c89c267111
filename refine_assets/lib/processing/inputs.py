"""Sample inputs of an experiment, read from its survey in storage."""

from __future__ import annotations

import json

from refine_assets.lib.processing.framework import SampleInput
from refine_assets.lib.storage import ArtifactStore


def survey_manifest(store: ArtifactStore, experiment: str) -> dict:
    """The experiment's survey manifest; raises a clear error when it was never surveyed."""
    key = f"surveys/{experiment}/manifest.json"
    if not store.exists(key):
        raise FileNotFoundError(f"{experiment}: no survey in storage ({store.url_for(key)}); survey it first")
    return json.loads(store.get_bytes(key))


def _rows(store: ArtifactStore, key: str) -> list[dict]:
    return store.read_parquet(key).to_pylist()


def load_sample_inputs(store: ArtifactStore, experiment: str) -> list[SampleInput]:
    """One :class:`SampleInput` per surveyed sample, with its original files.

    Experiment-level files (no sample accession, e.g. a series' non-normalized matrix) are attached
    to every sample. ``has_submitter_table`` is true when the survey stored the sample's submitter
    table (GEO) or lists a processed file for the sample (ArrayExpress).
    """
    manifest = survey_manifest(store, experiment)
    samples = _rows(store, manifest["tables"]["samples"]["key"])
    files = _rows(store, manifest["tables"]["original_files"]["key"])
    by_sample: dict[str | None, list[dict]] = {}
    for f in files:
        by_sample.setdefault(f.get("sample_accession"), []).append(f)
    shared = by_sample.get(None, [])
    tables = set(manifest.get("sample_tables", {}))
    return [
        SampleInput(
            accession=s["accession"],
            experiment_accession=experiment,
            pipeline=s.get("pipeline") or "NONE",
            pipeline_reason=s.get("pipeline_reason"),
            organism=s.get("organism"),
            platform_accession=s.get("platform_accession"),
            internal_platform_code=s.get("internal_platform_code"),
            technology=s.get("technology"),
            manufacturer=s.get("manufacturer"),
            title=s.get("title"),
            has_raw=bool(s.get("has_raw")),
            library_layout=s.get("library_layout"),
            files=by_sample.get(s["accession"], []) + shared,
            has_submitter_table=s["accession"] in tables
            or any(f.get("file_type") == "PROCESSED" for f in by_sample.get(s["accession"], [])),
        )
        for s in samples
    ]
