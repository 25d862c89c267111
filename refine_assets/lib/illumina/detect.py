"""Illumina platform detection by probe-id overlap (refine.bio ``illumina.py::_detect_platform``).

refine.bio does not trust the platform a submitter declares (versions are often mislabelled: e.g.
GSE54661 is labelled HumanHT-12 v4 but is v3). For each annotation package of the sample's organism
it measures (``specs/methods.md`` 2.5, ``detect_database.R``):

* ``percent_of_platform`` = 100 |file ids ∩ keys(pkg)| / |keys(pkg)| (coverage of the package),
* ``percent_of_file`` = 100 |file ids ∩ keys(pkg)| / |file ids| (how much of the file maps),

chooses the package with the highest coverage (strictly greater; the first candidate wins ties) and
processes the file with Illumina SCAN only if that package maps **more than 75%** of the file's ids;
otherwise the samples go to the submitter-processed (NO_OP) path. Every overlap is recorded.

Deliberate difference: ``file ids`` are the *distinct* non-empty probe ids of the file. refine.bio
divided by the id column including duplicates, so a file listing each probe twice looked only 50%
mapped; distinct ids make the fraction independent of repeated rows. (Recorded as
``file_probes``/``file_rows`` in the result.)

Candidates per organism (refine.bio's list; Mousev1/v1p1 were never installed there, so their
detection silently failed; here they are candidates whenever their tables are available):
human ``illuminaHumanv1..v4``, mouse ``illuminaMousev1``, ``illuminaMousev1p1``, ``illuminaMousev2``,
rat ``illuminaRatv1``.

Pure function of the ids (vectorized with pandas hash joins); nothing here imports dagster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "ACCEPT_THRESHOLD",
    "ORGANISM_PLATFORMS",
    "PlatformDetection",
    "PlatformOverlap",
    "candidate_platforms",
    "detect_platform",
    "organism_key",
]

ACCEPT_THRESHOLD = 75.0
ORGANISM_PLATFORMS: dict[str, tuple[str, ...]] = {
    "HOMO_SAPIENS": ("illuminaHumanv1", "illuminaHumanv2", "illuminaHumanv3", "illuminaHumanv4"),
    "MUS_MUSCULUS": ("illuminaMousev1", "illuminaMousev1p1", "illuminaMousev2"),
    "RATTUS_NORVEGICUS": ("illuminaRatv1",),
}
_TAXON = {9606: "HOMO_SAPIENS", 10090: "MUS_MUSCULUS", 10116: "RATTUS_NORVEGICUS"}

ROUTE_SCAN = "ILLUMINA_SCAN"
ROUTE_NO_OP = "NO_OP"


def organism_key(organism: str | int) -> str:
    """``Homo sapiens`` / ``HOMO_SAPIENS`` / ``homo_sapiens`` / 9606 -> ``HOMO_SAPIENS``."""
    if isinstance(organism, (int, np.integer)) or (isinstance(organism, str) and organism.strip().isdigit()):
        return _TAXON.get(int(organism), str(organism))
    return "_".join(str(organism).strip().upper().replace("-", " ").split())


def candidate_platforms(organism: str | int) -> tuple[str, ...]:
    """Annotation packages to try for an organism (empty when refine.bio supports none)."""
    return ORGANISM_PLATFORMS.get(organism_key(organism), ())


@dataclass(frozen=True)
class PlatformOverlap:
    """Overlap of a file's probe ids with one package's keys."""

    platform: str
    platform_probes: int
    common: int
    percent_of_platform: float
    percent_of_file: float


@dataclass(frozen=True)
class PlatformDetection:
    """Outcome: the chosen package (or None), whether it is accepted, and the route for the samples.

    ``route`` is ``ILLUMINA_SCAN`` when accepted, else ``NO_OP`` (submitter-processed path).
    ``overlaps`` lists every candidate in candidate order. ``detection_percentage`` /
    ``mapped_percentage`` are the best package's two percentages under refine.bio's annotation names.
    """

    organism: str
    best: str | None
    accepted: bool
    route: str
    reason: str
    overlaps: tuple[PlatformOverlap, ...]
    file_probes: int
    file_rows: int
    threshold: float = ACCEPT_THRESHOLD
    missing_tables: tuple[str, ...] = field(default=())

    @property
    def detection_percentage(self) -> float:
        o = self._best()
        return o.percent_of_platform if o else 0.0

    @property
    def mapped_percentage(self) -> float:
        o = self._best()
        return o.percent_of_file if o else 0.0

    def _best(self) -> PlatformOverlap | None:
        return next((o for o in self.overlaps if o.platform == self.best), None)

    def as_annotation(self) -> dict:
        """refine.bio's per-sample annotation (``detected_platform``, ``detection_percentage``,
        ``mapped_percentage``) plus every overlap and the decision."""
        return {
            "detected_platform": self.best,
            "detection_percentage": self.detection_percentage,
            "mapped_percentage": self.mapped_percentage,
            "accepted": self.accepted,
            "route": self.route,
            "reason": self.reason,
            "threshold": self.threshold,
            "file_probes": self.file_probes,
            "file_rows": self.file_rows,
            "overlaps": [asdict(o) for o in self.overlaps],
            "missing_tables": list(self.missing_tables),
        }


def detect_platform(
    file_probe_ids: Iterable[str],
    platform_keys: Mapping[str, Iterable[str]],
    *,
    organism: str | int = "",
    candidates: Iterable[str] | None = None,
    threshold: float = ACCEPT_THRESHOLD,
) -> PlatformDetection:
    """Choose the Illumina platform of a file (see module doc).

    Args:
        file_probe_ids: the file's probe id column (duplicates and blanks allowed).
        platform_keys: package name -> its keys (e.g. ``IlluminaProbeStore.platform_keys``).
        organism: the samples' organism; selects the candidates unless ``candidates`` is given.
        candidates: explicit candidate order (default: ``candidate_platforms(organism)``; if the
            organism is unknown, all packages in ``platform_keys`` in their given order).
        threshold: minimum ``percent_of_file`` (exclusive) to accept the best package.

    Returns:
        :class:`PlatformDetection`. Candidates without keys in ``platform_keys`` are listed in
        ``missing_tables`` and skipped.
    """
    ids = pd.Series(
        np.asarray(
            list(file_probe_ids) if not isinstance(file_probe_ids, np.ndarray) else file_probe_ids,
            dtype=object,
        )
    )
    rows = int(ids.size)
    ids = ids.dropna().astype(str).str.strip()
    uniq = pd.Index(pd.unique(ids[ids != ""]))
    org = organism_key(organism) if organism != "" else ""
    if candidates is None:
        cands = candidate_platforms(organism) if org else ()
        if not cands and not org:
            cands = tuple(platform_keys)
    else:
        cands = tuple(candidates)
    overlaps = []
    missing = []
    for name in cands:
        if name not in platform_keys:
            missing.append(name)
            continue
        keys = pd.Index(
            pd.unique(pd.Series(np.asarray(list(platform_keys[name]), dtype=object)).dropna().astype(str))
        )
        common = int(uniq.isin(keys).sum())
        overlaps.append(
            PlatformOverlap(
                platform=name,
                platform_probes=int(keys.size),
                common=common,
                percent_of_platform=100.0 * common / keys.size if keys.size else 0.0,
                percent_of_file=100.0 * common / uniq.size if uniq.size else 0.0,
            )
        )
    best = None
    best_pct = 0.0
    for o in overlaps:  # strictly greater: the first candidate wins ties (refine.bio)
        if o.percent_of_platform > best_pct:
            best, best_pct = o.platform, o.percent_of_platform
    if not cands:
        reason = f"no Illumina annotation package is known for organism {org or '?'}"
        accepted = False
    elif not overlaps:
        reason = f"no probe table available for any candidate ({', '.join(cands)})"
        accepted = False
    elif best is None:
        reason = "no probe id of the file is a key of any candidate package"
        accepted = False
    else:
        mapped = next(o.percent_of_file for o in overlaps if o.platform == best)
        accepted = mapped > threshold
        reason = (
            f"{best} covers {best_pct:.2f}% of its probes and maps {mapped:.2f}% of the file's "
            f"{uniq.size} probe ids ({'>' if accepted else '<='} {threshold:g}%)"
        )
    return PlatformDetection(
        organism=org,
        best=best,
        accepted=accepted,
        route=ROUTE_SCAN if accepted else ROUTE_NO_OP,
        reason=reason,
        overlaps=tuple(overlaps),
        file_probes=int(uniq.size),
        file_rows=rows,
        threshold=threshold,
        missing_tables=tuple(missing),
    )
