"""Species compendia: per-sample vectors -> filtered, IterativeSVD-imputed, quantile-normalized matrix.

Modules: ``assemble`` (vectors -> float32 memmap, genes x samples), ``filters`` (RNA-seq low-count genes,
log2(x + 1) once, missingness filters, zero handling), ``impute`` (IterativeSVD, fancyimpute 0.7.0
semantics: native out-of-core backend and fancyimpute), ``build`` (the whole sequence and the published
folder). See ``docs/compendia.md``. No Dagster imports here.
"""

from refine_assets.lib.compendia.assemble import AssembledMatrix, AssemblyError, SampleVector, assemble_matrix
from refine_assets.lib.compendia.build import (
    CompendiumError,
    CompendiumResult,
    build_compendium,
    memory_model,
)
from refine_assets.lib.compendia.filters import FilterError, FilterResult, apply_filters
from refine_assets.lib.compendia.impute import ImputeError, ImputeReport, impute

__all__ = [
    "AssembledMatrix",
    "AssemblyError",
    "CompendiumError",
    "CompendiumResult",
    "FilterError",
    "FilterResult",
    "ImputeError",
    "ImputeReport",
    "SampleVector",
    "apply_filters",
    "assemble_matrix",
    "build_compendium",
    "impute",
    "memory_model",
]
