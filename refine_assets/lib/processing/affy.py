"""The Affymetrix (``AFFY_TO_PCL``) processor: CEL -> SCANfast -> probeset and Ensembl gene vectors.

Steps per sample (refine.bio ``array_express.py`` with SCAN.UPC, re-implemented natively):

1. fetch the sample's CEL (an archive member when the source packs several arrays);
2. read it (:func:`refine_assets.lib.affy.cel.read_cel`); the chip type in the CEL header is the
   truth: when it disagrees with the survey's platform, the header wins and the metrics record both;
3. references of the header's platform from the :class:`~refine_assets.lib.references.provision.ReferenceProvider`,
   built on first need: the PM probe table (``probes``) and, for the platforms refine.bio processes
   with Brainarray (``supported_platforms.csv``), the Brainarray 22.0.0 ENSG package (``brainarray``);
4. SCANfast with the probe table, summarized by Brainarray ENSG probesets when a Brainarray package
   exists for the chip (refine.bio's behaviour), else by the manufacturer's probesets;
5. gene level: Brainarray ids (``ENSG..._at``) are genes already; otherwise probesets are mapped to
   Ensembl through the platform annotation (the survey's GEO platform table, else the Bioconductor
   ChipDb ``<chip>.db`` reference) and the organism's gene-id crosswalk (one-to-many duplicated). The
   mapping used (``brainarray`` or ``manufacturer``, with the reference versions) is recorded in the
   metrics (``gene_mapping``), hence in the ledger and the delivered metadata.

A missing reference fails the sample with the reference's name and the URL it needed; the other
samples go on. QC recorded in the metrics: zero-intensity fraction (SCAN rejects > 1 %), EM
iterations and convergence, probe and probeset counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from refine_assets.lib.affy.cel import CelFormatError, read_cel
from refine_assets.lib.affy.probes import read_probe_table_parquet
from refine_assets.lib.affy.scan_affy import ScanError, prepare_scan_probes, scan_affy
from refine_assets.lib.idmap import IdMappingError, PlatformMapper
from refine_assets.lib.processing.fetch import FetchError
from refine_assets.lib.processing.framework import ProcessedSample, ProcessingError, SampleInput
from refine_assets.lib.processing.gene_refs import load_crosswalk_for
from refine_assets.lib.processing.registry import ProcessingEnv
from refine_assets.lib.references.sources import ReferenceUnavailable
from refine_assets.lib.storage import file_sha256
from refine_assets.lib.survey.pipeline import code_version
from refine_assets.lib.survey.platforms import internal_code_for_chip_type

MODE = "fast"  # refine.bio runs SCANfast


class AffymetrixProcessor:
    """``AFFY_TO_PCL`` (see module docstring)."""

    step = "affy_scan"

    def __init__(self, env: ProcessingEnv):
        self.env = env
        self.refs = env.provider
        self._mappings: dict[tuple, tuple[np.ndarray, np.ndarray, dict]] = {}
        self._prepared: dict[tuple, Any] = {}

    def versions(self, sample: SampleInput) -> dict[str, Any]:
        """Versions of the references in storage for the survey's platform (never builds anything)."""
        code = sample.internal_platform_code
        probes = self.refs.existing("probes", code)
        brainarray = self.refs.existing("brainarray", code)
        cw = self.refs.existing("crosswalk", sample.organism)
        annotation = self.refs.existing("annotation", code)
        return {
            "annotation": annotation["version"] if annotation and not brainarray else None,
            "refine_assets": code_version(),
            "scan": MODE,
            "probe_table": probes["version"] if probes else None,
            "brainarray": brainarray["version"] if brainarray else None,
            "crosswalk": cw["version"] if cw and not brainarray else None,
        }

    def _reference(self, kind: str, code: str) -> dict:
        try:
            return self.refs.get(kind, code)
        except ReferenceUnavailable as exc:
            raise ProcessingError(str(exc)) from exc

    def _scan_probes(self, code: str, cols: int):
        def load(record: dict):
            with self.env.store.local_path(record["key"]) as path:
                return read_probe_table_parquet(path)

        try:
            table, record = self.refs.loaded("probes", code, load)
        except ReferenceUnavailable as exc:
            raise ProcessingError(str(exc)) from exc
        cache_key = (code, cols, record.get("version"))
        if cache_key not in self._prepared:
            self._prepared[cache_key] = prepare_scan_probes(table, cols)
        return self._prepared[cache_key], record

    def _brainarray(self, code: str):
        """(Brainarray probe table, record), or (None, reason) when the chip has no package."""
        if not self.refs.uses_brainarray(code):
            return None, "refine.bio does not use Brainarray for this platform"
        try:
            record = self.refs.optional("brainarray", code)
        except ReferenceUnavailable as exc:
            raise ProcessingError(str(exc)) from exc
        if record is None:
            return None, "Brainarray has no ENSG package for this chip"

        def load(rec: dict):
            with self.env.store.local_path(rec["key"]) as path:
                return read_probe_table_parquet(path)

        table, _ = self.refs.loaded("brainarray", code, load)
        return table, record

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
        probes, probe_record = self._scan_probes(header_code, cel.cols)
        pm = cel.intensities[probes.pm_index]
        metrics["zero_intensity_fraction"] = float(np.mean(pm == 0)) if pm.size else None
        metrics["probe_table"] = {
            "version": probe_record["version"],
            "source": probe_record.get("source_url"),
        }
        brainarray, ba_record = self._brainarray(header_code)
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
            metrics["gene_mapping"] = {
                "mapping": "brainarray",
                "source": "brainarray",
                "version": ba_record["version"],
                "package": (ba_record.get("source") or {}).get("package"),
                "source_url": ba_record.get("source_url"),
            }
            return ProcessedSample(
                genes, metrics=metrics, input_checksums=checksums, method="SCANfast+Brainarray"
            )
        genes = self._genes_from_annotation(sample, header_code, probeset_values, metrics)
        metrics["gene_mapping"]["brainarray_absent"] = ba_record
        return ProcessedSample(
            genes, probeset_values, metrics=metrics, input_checksums=checksums, method="SCANfast"
        )

    def _annotation_table(self, sample: SampleInput, code: str):
        """(Arrow annotation table, label): the survey's GEO platform table, else the ChipDb reference."""
        store = self.env.store
        gpl = sample.platform_accession
        pkey = f"surveys/{sample.experiment_accession}/platform_tables/{gpl}.parquet"
        if gpl and code == sample.internal_platform_code and store.exists(pkey):
            return pkey, "survey_platform_table", None
        record = self._reference("annotation", code)
        return record["key"], f"platform_annotation:{record['version']}", record["version"]

    def _genes_from_annotation(
        self, sample: SampleInput, code: str, values: pd.Series, metrics: dict
    ) -> pd.Series:
        key, source, _version = self._annotation_table(sample, code)
        cw, cw_record = load_crosswalk_for(self.refs, sample.organism)
        ids = values.index.to_numpy(dtype=object)
        cache_key = (key, cw_record["version"], len(ids), hash(tuple(ids)))
        if cache_key not in self._mappings:
            mapper = PlatformMapper(
                self.env.store.read_parquet(key),
                cw,
                name=sample.platform_accession or code,
            )
            try:
                mapping = mapper.map(ids, label=sample.accession)
            except IdMappingError as exc:
                raise ProcessingError(str(exc)) from exc
            positions = values.index.get_indexer(mapping.probe_ids)
            report = {k: v for k, v in mapping.report.items() if k != "candidates"}
            self._mappings[cache_key] = (positions, np.asarray(mapping.gene_ids, dtype=object), report)
        positions, gene_ids, report = self._mappings[cache_key]
        metrics["gene_mapping"] = {
            "mapping": "manufacturer",
            "source": source,
            "crosswalk_version": cw_record["version"],
            **report,
        }
        return pd.Series(values.to_numpy()[positions], index=pd.Index(gene_ids, name="id"))
