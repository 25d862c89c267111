"""Which processor handles which pipeline (``samples.pipeline``), built for one environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from refine_assets.lib.processing.fetch import Fetcher
from refine_assets.lib.processing.framework import SampleProcessor
from refine_assets.lib.storage import ArtifactStore


@dataclass
class ProcessingEnv:
    """What processors may use: storage (surveys, references, outputs), a fetcher, a work folder."""

    store: ArtifactStore
    fetcher: Fetcher
    work_dir: Path
    log: Callable[[str], None] = lambda _m: None
    options: dict = field(default_factory=dict)


def annotation_for(store: ArtifactStore, code: str | None) -> tuple[str, str] | None:
    """(storage key, version) of a platform's annotation reference, or None."""
    from refine_assets.lib.references.artifacts import read_record

    record = read_record(store, "annotation", code) if code else None
    return (record["key"], record["version"]) if record else None


def build_processors(env: ProcessingEnv, samples: list | None = None) -> dict[str, SampleProcessor]:
    """Processors by pipeline name. Pipelines absent here are recorded as unsupported."""
    from refine_assets.lib.processing.affy import AffymetrixProcessor
    from refine_assets.lib.processing.framework import ProcessingError
    from refine_assets.lib.processing.illumina import IlluminaProcessor
    from refine_assets.lib.processing.salmon import SalmonProcessor
    from refine_assets.lib.references.crosswalks import load_crosswalk_reference
    from refine_assets.lib.submitter.process import SubmitterProcessor

    crosswalks: dict = {}

    def crosswalk_for(organism: str | None):
        if organism not in crosswalks:
            loaded = load_crosswalk_reference(env.store, organism) if organism else None
            crosswalks[organism] = loaded[0] if loaded else None
        if crosswalks[organism] is None:
            raise ProcessingError(
                f"no gene-id crosswalk for {organism} (materialize gene_crosswalk[{organism}])"
            )
        return crosswalks[organism]

    processors: dict[str, SampleProcessor] = {
        "AFFY_TO_PCL": AffymetrixProcessor(env),
        "NO_OP": SubmitterProcessor(
            env.store,
            crosswalk_for,
            fetcher=env.fetcher,
            annotation_for=lambda code: annotation_for(env.store, code),
        ),
        "SALMON": SalmonProcessor(env),
        "ILLUMINA_TO_PCL": IlluminaProcessor(env, env.options.get("illumina_packages"), list(samples or [])),
    }
    return processors
