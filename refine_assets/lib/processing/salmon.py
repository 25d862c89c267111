"""The RNA-seq (``SALMON``) processor: one run -> quant.sf, behind QC gates.

Input: the run's SRA file (``file_type == "SRA"``, the SRA open-data mirror) quantified through
fastq-dump FIFOs, or, when the survey lists no SRA file (runs with unmated reads: ENA ``_1``/``_2``
fastq), the fastq files directly. The read length is measured first (``sra`` through fastq-dump's
first spots, fastq from the first records, both mates): above 75 bp the run uses the organism's
``long`` index (k=31), else ``short`` (k=23), refine.bio's rule. The index is the
``transcriptome_index[<length>|<ORGANISM>]`` reference from the environment's provider, built on first
need (Ensembl genome + GTF, ``docs/rnaseq.md``).

Provenance: the outcome's ``versions`` name the index (``index``: ``<ORGANISM>_<length>``,
``index_version``), salmon's version, the Ensembl release and assembly and k, so tximport groups runs by
the index they used and a changed index re-quantifies exactly its runs; the metrics repeat them with
the QC values and the tx2gene key. Outputs kept per run: ``quant.sf``, ``meta_info.json``,
``lib_format_counts.json``. A run failing a QC gate fails with the reasons (and its metrics) and is
therefore excluded from tximport.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from refine_assets.lib.processing.fetch import FetchError
from refine_assets.lib.processing.framework import ProcessedSample, ProcessingError, SampleInput
from refine_assets.lib.processing.registry import ProcessingEnv
from refine_assets.lib.references.sources import ReferenceUnavailable
from refine_assets.lib.rnaseq.salmon_quant import (
    QuantificationError,
    ToolMissingError,
    fastq_read_info,
    qc_gates,
    quantify_fastq,
    quantify_sra,
    read_info,
    tool_version,
)
from refine_assets.lib.storage import file_sha256
from refine_assets.lib.survey.pipeline import code_version

KIND = "transcriptome_index"


def index_name(organism: str, length: str) -> str:
    return f"{organism}_{length}"


def index_provenance(record: dict) -> dict[str, Any]:
    """What a quantification cites of its index: name, version, k, salmon version of the index,
    Ensembl release and assembly (None when the index was built from a configured FASTA)."""
    return {
        "index": record["name"],
        "index_version": record.get("version"),
        "index_k": record.get("k"),
        "index_salmon_version": record.get("salmon_version"),
        "ensembl_release": record.get("ensembl_release"),
        "assembly": record.get("assembly"),
    }


class SalmonProcessor:
    """``SALMON`` (see module docstring)."""

    step = "salmon"

    def __init__(self, env: ProcessingEnv, *, min_mapping_rate: float = 10.0, threads: int = 2):
        self.env = env
        self.min_mapping_rate = min_mapping_rate
        self.threads = threads
        self._used: dict[str, dict] = {}  # run -> record of the index it was quantified with

    def versions(self, sample: SampleInput) -> dict[str, Any]:
        """The index the run used (recorded in its metrics by :meth:`process`), else the stored index
        records of both length classes; never builds anything."""
        try:
            salmon = tool_version("salmon")
        except ToolMissingError:
            salmon = None
        used = self._used.get(sample.accession)
        if used is not None:
            return {
                "refine_assets": code_version(),
                "salmon": salmon,
                **index_provenance(used),
                "min_mapping_rate": self.min_mapping_rate,
            }
        records = {
            length: self.env.provider.existing(KIND, index_name(sample.organism or "", length))
            for length in ("short", "long")
        }
        return {
            "refine_assets": code_version(),
            "salmon": salmon,
            "indices": {k: (r or {}).get("version") for k, r in records.items()},
            "min_mapping_rate": self.min_mapping_rate,
        }

    def _index(self, organism: str, length: str) -> tuple[Path, dict]:
        name = index_name(organism, length)

        def extract(record: dict) -> Path:
            dest = self.env.work_dir / "indices" / name / record["version"]
            with self.env.store.local_path(record["key"]) as tar_path, tarfile.open(tar_path) as tf:
                tf.extractall(dest, filter="data")
            return dest

        try:
            return self.env.provider.loaded(KIND, name, extract)
        except ReferenceUnavailable as exc:
            raise ProcessingError(str(exc)) from exc

    def process(self, sample: SampleInput) -> ProcessedSample:
        try:
            tool_version("salmon")
            tool_version("fastq-dump")
        except ToolMissingError as exc:
            raise ProcessingError(str(exc)) from exc
        mine = [f for f in sample.files if f.get("sample_accession") == sample.accession]
        sra = [f for f in mine if f.get("file_type") == "SRA"]
        fastq = sorted(
            (f for f in mine if f.get("file_type") == "FASTQ"), key=lambda f: f.get("filename") or ""
        )
        out_dir = self.env.work_dir / "salmon" / sample.accession
        try:
            if sra:
                f = sra[0]
                path = self.env.fetcher.fetch(
                    f["source_url"],
                    f.get("filename"),
                    expected_size=f.get("expected_size"),
                    expected_md5=f.get("expected_md5"),
                )
                info = read_info(path)
                index, record = self._index(sample.organism or "", info.length_class)
                run = quantify_sra(path, index / "index", out_dir, paired=info.paired, threads=self.threads)
                checksums = {"sra": file_sha256(path)[0]}
            elif fastq:
                paths = [
                    self.env.fetcher.fetch(
                        f["source_url"],
                        f.get("filename"),
                        expected_size=f.get("expected_size"),
                        expected_md5=f.get("expected_md5"),
                    )
                    for f in fastq[:2]
                ]
                info = fastq_read_info(paths)
                index, record = self._index(sample.organism or "", info.length_class)
                run = quantify_fastq(paths, index / "index", out_dir, threads=self.threads)
                checksums = {p.name: file_sha256(p)[0] for p in paths}
            else:
                raise ProcessingError(f"{sample.accession}: no SRA or fastq file listed for the run")
        except (FetchError, QuantificationError) as exc:
            raise ProcessingError(f"{sample.accession}: {exc}") from exc
        self._used[sample.accession] = record
        qc = qc_gates(out_dir, info if info.spots_sampled else None, min_mapping_rate=self.min_mapping_rate)
        metrics = {
            **qc.as_dict(),
            "paired": info.paired,
            "mean_read_length": round(info.mean_length, 2),
            "length_class": info.length_class,
            **index_provenance(record),
            "tx2gene_key": record.get("tx2gene_key"),
            "salmon_version": run.salmon_version,
            "command": " ".join(run.command[1:]),
            "seconds": round(run.seconds, 2),
        }
        if not qc.passed:
            err = ProcessingError(f"{sample.accession}: QC gate failed: " + "; ".join(qc.reasons))
            err.metrics = metrics  # type: ignore[attr-defined]
            raise err
        artifacts = {"quant.sf": run.quant_sf}
        for name in ("aux_info/meta_info.json", "lib_format_counts.json", "cmd_info.json"):
            if (out_dir / name).is_file():
                artifacts[Path(name).name] = out_dir / name
        return ProcessedSample(
            values=None,
            artifacts=artifacts,
            metrics=metrics,
            input_checksums=checksums,
            method=f"salmon {run.salmon_version}",
        )
