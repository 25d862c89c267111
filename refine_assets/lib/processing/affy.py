"""The Affymetrix (``AFFY_TO_PCL``) processor: CEL -> SCANfast -> probeset and Ensembl gene vectors.

Steps per sample (refine.bio ``array_express.py`` with SCAN.UPC, re-implemented natively):

1. fetch the sample's CEL (an archive member when the source packs several arrays);
2. read it (:func:`refine_assets.lib.affy.cel.read_cel`); the chip type in the CEL header is the
   truth: when it disagrees with the survey's platform, the header wins and the metrics record both;
3. SCANfast with the platform's probe table (reference ``references/probes/<code>``), summarized by
   Brainarray ENSG probesets when a Brainarray table exists for the platform (``references/brainarray``),
   else by the platform's probesets;
4. gene level: Brainarray ids (``ENSG..._at``) are genes already; otherwise probesets are mapped to
   Ensembl through the survey's platform annotation table and the organism's crosswalk (one-to-many
   duplicated). When no annotation exists, the sample fails at gene level with that reason (the
   probeset-level vector is still not published: a vector without genes cannot be delivered).

QC recorded in the metrics: zero-intensity fraction (SCAN rejects > 1 %), EM iterations and
convergence, probe and probeset counts.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from refine_assets.lib.affy.cel import CelFormatError, read_cel
from refine_assets.lib.affy.probes import read_probe_table_parquet
from refine_assets.lib.affy.scan_affy import ScanError, prepare_scan_probes, scan_affy
from refine_assets.lib.idmap import IdMappingError, PlatformMapper
from refine_assets.lib.processing.fetch import FetchError
from refine_assets.lib.processing.framework import ProcessedSample, ProcessingError, SampleInput
from refine_assets.lib.processing.registry import ProcessingEnv
from refine_assets.lib.references.artifacts import read_record
from refine_assets.lib.references.crosswalks import load_crosswalk_reference
from refine_assets.lib.storage import file_sha256
from refine_assets.lib.survey.pipeline import code_version
from refine_assets.lib.survey.platforms import internal_code_for_chip_type

MODE = "fast"  # refine.bio runs SCANfast


class AffymetrixProcessor:
    """``AFFY_TO_PCL`` (see module docstring)."""

    step = "affy_scan"

    def __init__(self, env: ProcessingEnv):
        self.env = env
        self._probes: dict[str, Any] = {}

    def _probe_record(self, code: str | None) -> dict | None:
        return read_record(self.env.store, "probes", code) if code else None

    def versions(self, sample: SampleInput) -> dict[str, Any]:
        code = sample.internal_platform_code
        probes = self._probe_record(code)
        brainarray = read_record(self.env.store, "brainarray", code) if code else None
        cw = read_record(self.env.store, "crosswalk", sample.organism) if sample.organism else None
        annotation = read_record(self.env.store, "annotation", code) if code else None
        return {
            "annotation": annotation["version"] if annotation and not brainarray else None,
            "refine_assets": code_version(),
            "scan": MODE,
            "probe_table": probes["version"] if probes else None,
            "brainarray": brainarray["version"] if brainarray else None,
            "crosswalk": cw["version"] if cw and not brainarray else None,
        }

    def _scan_probes(self, code: str, cols: int):
        cache_key = (code, cols)
        if cache_key not in self._probes:
            record = self._probe_record(code)
            if record is None:
                raise ProcessingError(
                    f"no probe table for platform {code} (materialize affy_probe_table[{code}])"
                )
            with self.env.store.local_path(record["key"]) as path:
                table = read_probe_table_parquet(path)
            self._probes[cache_key] = (prepare_scan_probes(table, cols), record)
        return self._probes[cache_key]

    def process(self, sample: SampleInput) -> ProcessedSample:
        cel_files = [f for f in sample.files if f.get("file_type") == "CEL" and f.get("sample_accession")]
        if not cel_files:
            raise ProcessingError(f"{sample.accession}: no CEL file listed for the sample")
        f = cel_files[0]
        try:
            path = self.env.fetcher.fetch(
                f["source_url"],
                f.get("filename"),
                expected_size=f.get("expected_size"),
                expected_md5=f.get("expected_md5"),
            )
            cel = read_cel(path)
        except (FetchError, CelFormatError) as exc:
            raise ProcessingError(str(exc)) from exc
        header_code = internal_code_for_chip_type(cel.chip_type) or cel.platform
        metrics: dict[str, Any] = {
            "cel_format": cel.format,
            "chip_type": cel.chip_type,
            "survey_platform_code": sample.internal_platform_code,
            "header_platform_code": header_code,
            "platform_mismatch": bool(
                sample.internal_platform_code and header_code != sample.internal_platform_code
            ),
        }
        probes, _record = self._scan_probes(header_code, cel.cols)
        pm = cel.intensities[probes.pm_index]
        metrics["zero_intensity_fraction"] = float(np.mean(pm == 0)) if pm.size else None
        brainarray_record = read_record(self.env.store, "brainarray", header_code)
        brainarray = None
        if brainarray_record:
            with self.env.store.local_path(brainarray_record["key"]) as bpath:
                brainarray = read_probe_table_parquet(bpath)
        try:
            result = scan_affy(cel.intensities, cel.cols, probes, mode=MODE, brainarray=brainarray)
        except (ScanError, ValueError) as exc:
            raise ProcessingError(f"{sample.accession}: SCAN failed: {exc}") from exc
        metrics.update(result.provenance())
        sha, _ = file_sha256(path)
        checksums = {"cel": sha}
        probeset_values = result.values
        if brainarray is not None:
            genes = probeset_values.copy()
            genes.index = genes.index.str.replace(r"_at$", "", regex=True)
            metrics["gene_mapping"] = {"source": "brainarray", "version": brainarray_record["version"]}
            return ProcessedSample(
                genes, metrics=metrics, input_checksums=checksums, method="SCANfast+Brainarray"
            )
        genes = self._genes_from_annotation(sample, probeset_values, metrics)
        return ProcessedSample(
            genes, probeset_values, metrics=metrics, input_checksums=checksums, method="SCANfast"
        )

    def _genes_from_annotation(self, sample: SampleInput, values: pd.Series, metrics: dict) -> pd.Series:
        store = self.env.store
        gpl = sample.platform_accession
        code = metrics.get("header_platform_code") or sample.internal_platform_code
        pkey = f"surveys/{sample.experiment_accession}/platform_tables/{gpl}.parquet"
        source = "survey_platform_table"
        annotation = read_record(store, "annotation", code) if code else None
        if not store.exists(pkey) and annotation is not None:
            pkey, source = annotation["key"], f"platform_annotation:{annotation['version']}"
        cw = load_crosswalk_reference(store, sample.organism) if sample.organism else None
        if not store.exists(pkey) or cw is None:
            missing = (
                "platform annotation table"
                if not store.exists(pkey)
                else f"gene-id crosswalk for {sample.organism}"
            )
            raise ProcessingError(
                f"{sample.accession}: SCAN done ({len(values)} probesets) but no Brainarray table and no {missing} "
                f"to map probesets of {code} to Ensembl genes"
            )
        mapper = PlatformMapper(pq.read_table(io.BytesIO(store.get_bytes(pkey))), cw[0], name=gpl or code)
        try:
            mapping = mapper.map(values.index.to_numpy(dtype=object), label=sample.accession)
        except IdMappingError as exc:
            raise ProcessingError(str(exc)) from exc
        metrics["gene_mapping"] = {
            "source": source,
            **{k: v for k, v in mapping.report.items() if k != "candidates"},
        }
        pos = values.index.get_indexer(mapping.probe_ids)
        return pd.Series(values.to_numpy()[pos], index=pd.Index(mapping.gene_ids, name="id"))
