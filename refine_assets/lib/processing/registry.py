"""Which processor handles which pipeline (``samples.pipeline``), built for one environment.

:class:`ProcessingEnv` is the typed hand-off from the orchestration layer (a Dagster asset, the CLI, a
test) to the processors: storage, the fetcher for original files, a work folder, the
:class:`~refine_assets.lib.references.provision.ReferenceProvider` that hands out (and builds on first
need) the references processors use, and the experiment's samples (the Illumina processor pairs the
columns of an experiment-level file with them). Every field is required or has a safe default, so a
missing wiring is a type error or a test failure, never a silently empty option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from refine_assets.lib.processing.fetch import Fetcher
from refine_assets.lib.references.provision import ReferenceProvider
from refine_assets.lib.storage import ArtifactStore

if TYPE_CHECKING:
    from refine_assets.lib.processing.framework import SampleInput, SampleProcessor

__all__ = ["ProcessingEnv", "build_processors"]


@dataclass
class ProcessingEnv:
    """What processors may use (see the module docstring).

    ``references`` defaults to a provider that only reads references already in storage (no source
    resolver): processing then fails a sample whose reference is missing, naming it.
    """

    store: ArtifactStore
    fetcher: Fetcher
    work_dir: Path
    log: Callable[[str], None] = lambda _m: None
    references: ReferenceProvider | None = None
    samples: list[SampleInput] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.references is None:
            self.references = ReferenceProvider(self.store, None, None, log=self.log)

    @property
    def provider(self) -> ReferenceProvider:
        assert self.references is not None
        return self.references


def build_processors(env: ProcessingEnv) -> dict[str, SampleProcessor]:
    """Processors by pipeline name. Pipelines absent here are recorded as unsupported."""
    from refine_assets.lib.processing.affy import AffymetrixProcessor
    from refine_assets.lib.processing.illumina import IlluminaProcessor
    from refine_assets.lib.processing.salmon import SalmonProcessor
    from refine_assets.lib.submitter.process import SubmitterProcessor

    return {
        "AFFY_TO_PCL": AffymetrixProcessor(env),
        "NO_OP": SubmitterProcessor.for_env(env),
        "SALMON": SalmonProcessor(env),
        "ILLUMINA_TO_PCL": IlluminaProcessor(env),
    }
