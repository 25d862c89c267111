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


def build_processors(env: ProcessingEnv) -> dict[str, SampleProcessor]:
    """Processors by pipeline name. Pipelines absent here are recorded as unsupported."""
    from refine_assets.lib.processing.affy import AffymetrixProcessor
    from refine_assets.lib.processing.submitter import SubmitterProcessor

    processors: dict[str, SampleProcessor] = {
        "AFFY_TO_PCL": AffymetrixProcessor(env),
        "NO_OP": SubmitterProcessor(env),
    }
    return processors
