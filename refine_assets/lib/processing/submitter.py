"""The submitter-processed (``NO_OP``) processor: a GEO sample table -> Ensembl gene vector.

Inputs from storage: the sample's table (``surveys/<EXP>/sample_tables/<SAMPLE>.parquet``), its
platform's annotation table (``surveys/<EXP>/platform_tables/<GPL>.parquet``) and the organism's
gene-id crosswalk reference (``references/crosswalk/<ORG>``). Method: :mod:`refine_assets.lib.submitter`
(log2 decision, probe -> Ensembl through the best-mapping annotation column, one-to-many
duplicated). Output flagged ``submitter_processed`` in the ledger metrics.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq

from refine_assets.lib.idmap import PlatformMapper
from refine_assets.lib.processing.framework import ProcessedSample, ProcessingError, SampleInput
from refine_assets.lib.processing.registry import ProcessingEnv
from refine_assets.lib.references.crosswalks import load_crosswalk_reference
from refine_assets.lib.submitter.process import METHOD_VERSION, process_sample_table
from refine_assets.lib.survey.pipeline import code_version


class SubmitterProcessor:
    """``NO_OP``: convert a submitter-processed table (see module docstring)."""

    step = "no_op"

    def __init__(self, env: ProcessingEnv):
        self.env = env
        self._crosswalks: dict[str, Any] = {}
        self._mappers: dict[tuple[str, str], PlatformMapper] = {}

    def _crosswalk(self, organism: str | None):
        if organism not in self._crosswalks:
            self._crosswalks[organism] = (
                load_crosswalk_reference(self.env.store, organism) if organism else None
            )
        return self._crosswalks[organism]

    def _table_key(self, sample: SampleInput) -> str:
        return f"surveys/{sample.experiment_accession}/sample_tables/{sample.accession}.parquet"

    def versions(self, sample: SampleInput) -> dict[str, Any]:
        cw = self._crosswalk(sample.organism)
        store = self.env.store
        key = self._table_key(sample)
        return {
            "refine_assets": code_version(),
            "method": METHOD_VERSION,
            "crosswalk": cw[1]["version"] if cw else None,
            "sample_table": store.read_sha256(key) if store.exists(key) else None,
        }

    def process(self, sample: SampleInput) -> ProcessedSample:
        store = self.env.store
        key = self._table_key(sample)
        if not store.exists(key):
            raise ProcessingError(f"{sample.accession}: no submitter-processed table in the survey")
        cw = self._crosswalk(sample.organism)
        if cw is None:
            raise ProcessingError(
                f"{sample.accession}: no gene-id crosswalk for {sample.organism} (materialize gene_crosswalk)"
            )
        gpl = sample.platform_accession
        mapper_key = (sample.experiment_accession, gpl or "")
        if mapper_key not in self._mappers:
            pkey = f"surveys/{sample.experiment_accession}/platform_tables/{gpl}.parquet"
            if not gpl or not store.exists(pkey):
                raise ProcessingError(
                    f"{sample.accession}: no annotation table for platform {gpl} in the survey"
                )
            platform_table = pq.read_table(io.BytesIO(store.get_bytes(pkey)))
            self._mappers[mapper_key] = PlatformMapper(platform_table, cw[0], name=gpl)
        table = pq.read_table(io.BytesIO(store.get_bytes(key)))
        try:
            result = process_sample_table(table, self._mappers[mapper_key], sample_accession=sample.accession)
        except ValueError as exc:
            raise ProcessingError(str(exc)) from exc
        metrics = result.metrics()
        metrics["crosswalk"] = cw[1].get("source_url")
        return ProcessedSample(
            values=result.values,
            metrics=metrics,
            input_checksums={"sample_table": store.read_sha256(key)},
            method=result.method,
        )
