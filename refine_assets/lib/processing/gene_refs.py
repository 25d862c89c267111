"""Gene-mapping references for processors: an organism's crosswalk and a platform's annotation table.

Both come from the :class:`~refine_assets.lib.references.provision.ReferenceProvider` (built on first
need); a reference that cannot be had becomes the sample's :class:`ProcessingError`, naming it and the
URL it needed. The crosswalk is loaded (and indexed) once per version and run.
"""

from __future__ import annotations

from refine_assets.lib.crosswalk import GeneCrosswalk
from refine_assets.lib.references.provision import ReferenceProvider
from refine_assets.lib.references.sources import ReferenceUnavailable

__all__ = ["annotation_for", "load_crosswalk_for"]


def load_crosswalk_for(provider: ReferenceProvider, organism: str | None) -> tuple[GeneCrosswalk, dict]:
    """(crosswalk, record) of ``organism``; raises ProcessingError when it cannot be had."""
    from refine_assets.lib.processing.framework import ProcessingError
    from refine_assets.lib.references.crosswalks import crosswalk_from_record

    if not organism:
        raise ProcessingError("the sample has no organism: no gene-id crosswalk can be chosen")
    try:
        return provider.loaded("crosswalk", organism, lambda rec: crosswalk_from_record(provider.store, rec))
    except ReferenceUnavailable as exc:
        raise ProcessingError(str(exc)) from exc


def annotation_for(provider: ReferenceProvider, code: str | None) -> tuple[str, str] | None:
    """(storage key, version) of the annotation table of a platform (probe id -> gene ids), or None.

    Illumina platforms (``illumina<Org>v<N>``) use the Illumina package's probe -> Ensembl table, the
    others the ChipDb ``<code>.db`` probeset -> Entrez table. Raises ProcessingError when the
    reference exists at its source but cannot be built; returns None when there is no platform code.
    """
    from refine_assets.lib.processing.framework import ProcessingError

    if not code:
        return None
    kind = "illumina" if code.startswith("illumina") else "annotation"
    try:
        record = provider.get(kind, code)
    except ReferenceUnavailable as exc:
        raise ProcessingError(str(exc)) from exc
    key = (record.get("files") or {}).get("annotation.parquet", record["key"])
    return key, record["version"]
