"""Submitter-processed samples (refine.bio's NO_OP path, ``refinebio-teardown.md`` §4.3).

* :mod:`.log2` - is a sample already log-scale? (:func:`detect_log2`, :func:`apply_log2`)
* :mod:`.process` - a submitter table -> log2 Ensembl gene vector (:func:`process_sample_table`),
  file readers for the ``convert-ids`` command, and :class:`SubmitterProcessor` for the framework.

Probe -> gene conversion lives in :mod:`refine_assets.lib.idmap` and gene-id crosswalks in
:mod:`refine_assets.lib.crosswalk`. Method notes: ``docs/submitter-processed.md``.
"""

from refine_assets.lib.submitter.log2 import Log2Decision, Log2Error, Log2Result, apply_log2, detect_log2
from refine_assets.lib.submitter.process import (
    SubmitterProcessor,
    SubmitterResult,
    SubmitterTableError,
    mean_of_duplicates,
    process_sample_table,
    read_platform_table,
    read_sample_table,
)

__all__ = [
    "Log2Decision",
    "Log2Error",
    "Log2Result",
    "SubmitterProcessor",
    "SubmitterResult",
    "SubmitterTableError",
    "apply_log2",
    "detect_log2",
    "mean_of_duplicates",
    "process_sample_table",
    "read_platform_table",
    "read_sample_table",
]
