"""The Illumina BeadArray (``ILLUMINA_TO_PCL``) processor.

Illumina non-normalized data arrive as one experiment-level matrix (signal + detection p-value
columns per sample). The processor therefore works per experiment behind the per-sample interface:
the first sample of an experiment fetches and parses the file (columns mapped to sample accessions
by title), detects the platform by probe-id overlap (accepted above 75 %), and runs nec + Illumina
SCAN on every column (:func:`refine_assets.lib.illumina.scan_illumina.illumina_scan`); each sample
then takes its own vectors or its own failure reason. The candidate platforms' Bioconductor
``illumina<Org>v<N>.db`` packages (with the organism's ``org.<Xx>.eg.db`` for ``<pkg>ENSEMBL``) come
from the environment's reference provider, built on first need (references ``illumina/<pkg>``); a
candidate the release does not have is skipped, a catalogue that cannot be read fails the samples
naming its URL. When the platform is not accepted the sample fails with that reason and the framework
falls back to the submitter-processed table when the survey has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refine_assets.lib.illumina.detect import candidate_platforms, detect_platform
from refine_assets.lib.illumina.parse import IlluminaParseError, SampleRef, parse_illumina_file
from refine_assets.lib.illumina.probes import IlluminaProbeTable, read_illumina_probe_table_parquet
from refine_assets.lib.illumina.scan_illumina import IlluminaScanError, illumina_scan
from refine_assets.lib.processing.fetch import FetchError
from refine_assets.lib.processing.framework import ProcessedSample, ProcessingError, SampleInput
from refine_assets.lib.processing.registry import ProcessingEnv
from refine_assets.lib.references.sources import ReferenceUnavailable
from refine_assets.lib.scan import ScanParams
from refine_assets.lib.storage import file_sha256
from refine_assets.lib.survey.pipeline import code_version


class IlluminaProcessor:
    """``ILLUMINA_TO_PCL`` (see module docstring)."""

    step = "illumina_scan"

    def __init__(self, env: ProcessingEnv):
        self.env = env
        self.refs = env.provider
        self._results: dict[str, Any] = {}

    def versions(self, sample: SampleInput) -> dict[str, Any]:
        from refine_assets.lib.illumina.detect import candidate_platforms

        candidates = candidate_platforms(sample.organism or "") if sample.organism else ()
        records = {c: self.refs.existing("illumina", c) for c in candidates}
        return {
            "refine_assets": code_version(),
            "scan": ScanParams.illumina().as_dict(),
            "packages": {c: r["version"] for c, r in sorted(records.items()) if r} or None,
        }

    def _table(self, platform: str) -> tuple[IlluminaProbeTable, dict[str, str] | None]:
        """The platform's probe table and refine.bio's tie-break map (None when not part of the reference)."""

        def load(record: dict):
            with self.env.store.local_path(record["key"]) as path:
                table = read_illumina_probe_table_parquet(path)
            tb_key = (record.get("files") or {}).get("tiebreak.parquet")
            tiebreak = None
            if tb_key:
                tb = self.env.store.read_parquet(tb_key)
                tiebreak = dict(zip(tb["probe_id"].to_pylist(), tb["ensembl_id"].to_pylist(), strict=True))
            return table, tiebreak

        return self.refs.loaded("illumina", platform, load)[0]

    def _candidate_tables(self, organism: str) -> dict[str, tuple[IlluminaProbeTable, dict | None]]:
        """The candidate platforms' tables (built on first need); absent packages are skipped."""
        tables = {}
        for name in candidate_platforms(organism):
            try:
                if self.refs.optional("illumina", name) is None:
                    continue
                tables[name] = self._table(name)
            except ReferenceUnavailable as exc:
                raise ProcessingError(str(exc)) from exc
        return tables

    def _matrix_file(self, sample: SampleInput) -> dict:
        files = [f for f in sample.files if f.get("file_type") == "NON_NORMALIZED"]
        if not files:
            raise ProcessingError(f"{sample.accession}: no Illumina non-normalized file in the survey")
        return files[0]

    def _experiment_result(self, sample: SampleInput):
        f = self._matrix_file(sample)
        url = f["source_url"]
        if url in self._results:
            return self._results[url]
        try:
            path = Path(self.env.fetcher.fetch(url, f.get("filename")))
            siblings = self.env.samples or [sample]
            refs = [SampleRef(s.accession, s.title) for s in siblings if s.pipeline == "ILLUMINA_TO_PCL"]
            matrix = parse_illumina_file(path, refs)
            organism = sample.organism or ""
            tables = self._candidate_tables(organism)
            detection = detect_platform(
                matrix.probe_ids, {n: t.keys() for n, (t, _tb) in tables.items()}, organism=organism
            )
            if not detection.accepted:
                raise ProcessingError(f"Illumina platform not detected: {detection.reason}")
            table, tiebreak = tables[detection.best]
            result = illumina_scan(matrix, table, tiebreak=tiebreak)
            sha, _ = file_sha256(path)
            outcome = (result, detection, matrix.provenance(), sha)
        except (FetchError, IlluminaParseError, IlluminaScanError, ValueError) as exc:
            outcome = ProcessingError(str(exc))
        except ProcessingError as exc:
            outcome = exc
        self._results[url] = outcome
        return outcome

    def process(self, sample: SampleInput) -> ProcessedSample:
        outcome = self._experiment_result(sample)
        if isinstance(outcome, ProcessingError):
            raise ProcessingError(f"{sample.accession}: {outcome}")
        result, detection, parse_prov, sha = outcome
        vectors = result.vectors()
        if sample.accession not in vectors:
            info = next((s for s in result.samples if s.sample_accession == sample.accession), None)
            reason = info.reason if info else "no column of the non-normalized file matched the sample"
            raise ProcessingError(f"{sample.accession}: {reason}")
        genes, probes = vectors[sample.accession]
        info = next(s for s in result.samples if s.sample_accession == sample.accession)
        metrics = {
            "platform_detection": detection.as_annotation(),
            "background": result.background.__dict__
            if hasattr(result.background, "__dict__")
            else str(result.background),
            "em_iterations": info.em_iterations,
            "em_converged": info.em_converged,
            "fraction_detected": info.fraction_detected,
            "parse": parse_prov,
        }
        return ProcessedSample(
            genes, probes, metrics=metrics, input_checksums={"non_normalized": sha}, method="Illumina SCAN"
        )
