"""Per-organism quantile-normalization reference targets ("QN targets").

refine.bio (``processors/qn_reference.py``, ``dispatch_qn_jobs.py``; teardown §7; reference doc
"Reference distribution"): the target of an organism is the element-wise mean of the **sorted** expression
vectors of all samples *processed from raw* on the organism's Affymetrix platform with the most such
samples (at least 100). Organisms without such a platform had no target, so none of their samples were
downloadable (teardown §12 item 12).

Choice of the source samples (:func:`plan_qn_target`), from the warehouse. A sample is *usable* when its
latest non-survey ledger row succeeded with a ``.parquet`` vector (``sample_status``); it is *processed
from raw* when ``samples.has_raw`` is true and that step is not the submitter-processed fallback
(``submitter_processed``). A sample listed in several experiments counts once (its newest vector).

1. **Affymetrix** (``method = "affymetrix_largest_platform"``): raw-processed microarray samples of the
   organism whose manufacturer is Affymetrix (or whose platform title names Affymetrix), grouped by
   platform (``internal_platform_code``, e.g. ``hgu133plus2``, so GEO ``GPL570`` and ArrayExpress
   ``A-AFFY-44`` count together; the accession when no code is known). The platform with the most
   samples wins (ties: the smaller code); it is used when it has at least ``min_samples`` (default
   100, ``>=``) samples.
2. **RNA-seq** (``method = "rnaseq_tximport"``), when no Affymetrix platform qualifies (RNA-seq-only
   organisms): every tximport vector of the organism, **log2(x + 1)-transformed** (lengthScaledTPM is not
   logged; the target then lives on the log2 scale, like the microarray ones), used under **the same
   minimum** ``min_samples``. refine.bio built none, so none of those organisms' samples were
   downloadable with QN.
3. **Below the minimum** (``method = "below_minimum_largest_technology"``, ``flagged: true`` with the
   reason): otherwise, a target of the technology with the most raw-processed samples (ties:
   MICROARRAY; for microarrays its largest platform) is still built for inspection (at least
   ``fallback_min_samples``, default 1), but it is **never used silently**: :func:`load_qn_target`
   refuses it (datasets then drop those samples with that reason, compendia fail), and the blocking
   asset check ``qn_target_valid`` fails. A target whose usable samples fall below the minimum after
   unreadable vectors are skipped is flagged the same way.

The minimum is configurable (``min_samples``: the ``qn_target`` asset's config, the CLI's
``--min-samples``) and recorded in the target's record; ``docs/quantile-normalization.md``.

4. ``platform=`` overrides the choice (refine.bio's ``create_qn_target --platform``):
   ``method = "platform_override"``, any raw-processed samples of that platform code or accession.

Build (:func:`build_qn_target`): each chosen vector is loaded and sanitized exactly as for delivery
(:func:`refine_assets.lib.delivery.vectors.load_sample_vector`: ``_at``/``AFFX-``/versions/mean of
duplicates/missing values dropped). refine.bio took the gene set of the first sample and skipped samples
with another gene set or any NaN; here the **gene set shared by the most samples** is used (ties: the
set of the sample that sorts first), independent of order, and every skipped sample is recorded with its
reason. Sorted values are accumulated with :class:`refine_assets.lib.qn.StreamingTarget` (extended
precision sum, one sample in memory); the first pass accumulates the first sample's gene set, and a
second pass is made only when another gene set turns out to be the most common one.

Storage (``references/qn_targets/<ORGANISM>/``): ``target.txt`` (one value per line, ascending, full
precision, :func:`refine_assets.lib.qn.write_target`), ``genes.txt`` (the gene set, one id per line,
sorted) and ``record.json`` (written last; :mod:`refine_assets.lib.references.artifacts`) with organism,
method, flagged/flag_reason, technology, platform (code), platform accessions, manufacturer, num_samples,
samples, num_genes, genes_sha256/genes_url, skipped samples and reasons, candidate platform counts,
min_samples, value_transform, url/sha256/version of ``target.txt``. The URL is stable (the key does not
change between builds).

Tolerance: the target equals :func:`refine_assets.lib.qn.determine_target` of the matrix of the chosen
sanitized vectors to 1e-15 relative (``StreamingTarget``'s contract); verified in
``refine_assets_tests/unit/test_delivery_targets.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refine_assets.lib.storage import ArtifactStore

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "QN_TARGET_KIND",
    "QnTargetBelowMinimumError",
    "QnTargetError",
    "QnTargetNotFoundError",
    "TargetPlan",
    "build_qn_target",
    "load_qn_target",
    "normalize_organism",
    "plan_qn_target",
    "qn_target_key",
    "qn_target_record",
]

QN_TARGET_KIND = "qn_targets"
DEFAULT_MIN_SAMPLES = 100
DEFAULT_FALLBACK_MIN_SAMPLES = 1
RNASEQ_STEP = "tximport"


class QnTargetError(ValueError):
    """A QN target that cannot be chosen or built (no eligible samples, unknown platform ...)."""


class QnTargetNotFoundError(QnTargetError, LookupError):
    """No QN target has been built for the organism."""


class QnTargetBelowMinimumError(QnTargetError):
    """The organism's target was built from fewer samples than its minimum: not to be used."""


def normalize_organism(name: str) -> str:
    """``Homo sapiens`` / ``homo_sapiens`` -> ``HOMO_SAPIENS`` (the warehouse's organism names)."""
    text = "_".join(str(name).strip().replace("-", " ").split()).upper()
    if not text:
        raise QnTargetError("organism name is empty")
    return text


def qn_target_key(organism: str, filename: str = "target.txt") -> str:
    """Storage key of a target file (``references/qn_targets/<ORGANISM>/<filename>``)."""
    return f"references/{QN_TARGET_KIND}/{normalize_organism(organism)}/{filename}"


@dataclass
class TargetPlan:
    """Which samples make an organism's target, and why (module docstring)."""

    organism: str
    method: str
    technology: str
    platform: str | None
    platform_accessions: list[str]
    manufacturer: str | None
    samples: list[tuple[str, str, str, str]]  # (sample, experiment, vector key, step), sorted by sample
    flagged: bool = False
    flag_reason: str | None = None
    candidates: list[dict] = field(default_factory=list)
    value_transform: str = "none"
    min_samples: int = DEFAULT_MIN_SAMPLES


def _usable_samples(con, organism: str):
    """Usable raw-processed vectors of an organism, one row per sample (pandas DataFrame)."""
    df = con.execute(
        """
        SELECT sample_accession AS accession, experiment_accession, platform_accession,
               internal_platform_code, platform_name, manufacturer, technology, step, output_key,
               recorded_at
        FROM raw_processed_vectors WHERE organism = upper(?)
        ORDER BY accession
        """,
        [organism],
    ).df()
    df["platform"] = df["internal_platform_code"].where(
        df["internal_platform_code"].notna() & (df["internal_platform_code"] != ""), df["platform_accession"]
    )
    is_affy = (df["manufacturer"] == "AFFYMETRIX") | df["platform_name"].fillna("").str.contains(
        "affymetrix", case=False, regex=False
    )
    df["is_affy"] = is_affy & (df["technology"] == "MICROARRAY")
    return df.reset_index(drop=True)


def _platform_counts(df) -> list[dict]:
    if df.empty:
        return []
    out = []
    for platform, part in df.groupby("platform", sort=True, dropna=False):
        out.append(
            {
                "platform": None if platform is None or platform != platform else str(platform),
                "samples": len(part),
                "accessions": sorted(str(a) for a in part["platform_accession"].dropna().unique()),
                "manufacturer": str(part["manufacturer"].iloc[0]) or None,
                "technology": str(part["technology"].iloc[0]) or None,
            }
        )
    return sorted(out, key=lambda c: (-c["samples"], c["platform"] or ""))


def _plan(
    organism, method, df, technology, platform, candidates, *, flagged=False, reason=None, min_samples=0
):
    rows = df.sort_values("accession")
    samples = [
        (str(r.accession), str(r.experiment_accession), str(r.output_key), str(r.step))
        for r in rows.itertuples(index=False)
    ]
    manufacturers = sorted({m for m in rows["manufacturer"] if m})
    return TargetPlan(
        organism=organism,
        method=method,
        technology=technology,
        platform=platform,
        platform_accessions=sorted({str(a) for a in rows["platform_accession"].dropna()}),
        manufacturer=manufacturers[0] if len(manufacturers) == 1 else (",".join(manufacturers) or None),
        samples=samples,
        flagged=flagged,
        flag_reason=reason,
        candidates=candidates,
        value_transform="log2(x+1)" if technology == "RNA-SEQ" else "none",
        min_samples=min_samples,
    )


def plan_qn_target(
    con,
    organism: str,
    *,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    platform: str | None = None,
    fallback_min_samples: int = DEFAULT_FALLBACK_MIN_SAMPLES,
) -> TargetPlan:
    """Choose the samples of an organism's target from the warehouse (``con``: a DuckDB connection).

    Rules in the module docstring. Raises :class:`QnTargetError` naming the organism when nothing
    qualifies (with the per-platform counts), or when ``platform`` has no raw-processed sample.
    """
    organism = normalize_organism(organism)
    df = _usable_samples(con, organism)
    if platform:
        part = df[(df["platform"] == platform) | (df["platform_accession"] == platform)]
        if part.empty:
            raise QnTargetError(
                f"{organism}: no raw-processed sample with a vector on platform {platform} "
                f"(platforms: {_describe(_platform_counts(df))})"
            )
        tech = str(part["technology"].iloc[0])
        return _plan(
            organism, "platform_override", part, tech, str(part["platform"].iloc[0]), _platform_counts(part)
        )
    affy = df[df["is_affy"]]
    affy_counts = _platform_counts(affy)
    if affy_counts and affy_counts[0]["samples"] >= min_samples:
        best = affy_counts[0]["platform"]
        return _plan(
            organism,
            "affymetrix_largest_platform",
            affy[affy["platform"] == best],
            "MICROARRAY",
            best,
            affy_counts,
            min_samples=min_samples,
        )
    why = (
        f"no Affymetrix platform with at least {min_samples} samples processed from raw "
        f"(largest: {affy_counts[0]['platform']} with {affy_counts[0]['samples']})"
        if affy_counts
        else "no Affymetrix sample processed from raw"
    )
    rnaseq = df[(df["technology"] == "RNA-SEQ") & (df["step"] == RNASEQ_STEP)]
    if len(rnaseq) >= min_samples:
        # the same minimum, for organisms whose Affymetrix platforms do not qualify (RNA-seq-only ones)
        return _plan(
            organism,
            "rnaseq_tximport",
            rnaseq,
            "RNA-SEQ",
            None,
            _platform_counts(rnaseq),
            min_samples=min_samples,
        )
    by_tech = df[df["technology"].isin(["MICROARRAY", "RNA-SEQ"])]
    if by_tech.empty:
        raise QnTargetError(f"{organism}: no QN target possible: {why}, and no other raw-processed sample")
    tech_counts = by_tech.groupby("technology").size().to_dict()
    tech = sorted(tech_counts, key=lambda t: (-tech_counts[t], t))[0]
    part = by_tech[by_tech["technology"] == tech]
    counts = _platform_counts(part)
    if tech == "MICROARRAY":
        best = counts[0]["platform"]
        part = part[part["platform"] == best]
        platform_name: str | None = best
    else:
        part = part[part["step"] == RNASEQ_STEP]
        platform_name = None
    if len(part) < fallback_min_samples:
        raise QnTargetError(
            f"{organism}: no QN target possible: {why}; the largest technology {tech} has "
            f"{len(part)} usable samples (< {fallback_min_samples})"
        )
    reason = (
        f"below the minimum of {min_samples} samples: {why}; built from the largest technology {tech} "
        f"({len(part)} samples)"
    )
    if tech == "RNA-SEQ":
        reason += " on log2(lengthScaledTPM + 1)"
    return _plan(
        organism,
        "below_minimum_largest_technology",
        part,
        tech,
        platform_name,
        counts,
        flagged=True,
        reason=reason,
        min_samples=min_samples,
    )


def _describe(counts: list[dict]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{c['platform']}={c['samples']}" for c in counts[:10])


def _geneset_hash(ids: np.ndarray) -> str:
    return hashlib.sha256("\n".join(ids.tolist()).encode()).hexdigest()


def build_qn_target(
    warehouse_path: str | Path,
    store: ArtifactStore,
    organism: str,
    *,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    platform: str | None = None,
    fallback_min_samples: int = DEFAULT_FALLBACK_MIN_SAMPLES,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Choose, build and publish an organism's target; returns the published record (module docstring).

    Raises :class:`QnTargetError` when no sample qualifies or none could be read.
    """
    import duckdb

    from refine_assets.lib.delivery.vectors import VectorError, load_sample_vector
    from refine_assets.lib.qn import StreamingTarget, write_target
    from refine_assets.lib.references.artifacts import write_record
    from refine_assets.lib.storage import file_sha256
    from refine_assets.lib.survey.pipeline import code_version

    organism = normalize_organism(organism)
    db = Path(warehouse_path)
    if not db.is_file():
        raise QnTargetError(f"warehouse {db} not found")
    with duckdb.connect(str(db), read_only=True) as con:
        plan = plan_qn_target(
            con,
            organism,
            min_samples=min_samples,
            platform=platform,
            fallback_min_samples=fallback_min_samples,
        )
    log(
        f"{organism}: {plan.method}, {len(plan.samples)} candidate samples ({plan.platform or plan.technology})"
    )
    log2 = plan.value_transform == "log2(x+1)"

    def load(sample: str, key: str, step: str):
        return load_sample_vector(store, key, sample, log2_plus_one=log2 and step == RNASEQ_STEP)

    skipped: dict[str, str] = {}
    hashes: dict[str, str] = {}
    first_hash: str | None = None
    first_ids: np.ndarray | None = None
    acc: StreamingTarget | None = None
    used: list[str] = []
    for sample, _exp, key, step in plan.samples:
        try:
            vec = load(sample, key, step)
        except VectorError as exc:
            skipped[sample] = str(exc)
            continue
        h = _geneset_hash(vec.ids)
        hashes[sample] = h
        if first_hash is None:
            first_hash, first_ids = h, vec.ids
            acc = StreamingTarget(vec.ids.size)
        if h == first_hash:
            acc.add(vec.values, name=sample)
            used.append(sample)
    if not hashes:
        raise QnTargetError(
            f"{organism}: none of the {len(plan.samples)} chosen vectors could be read: {skipped}"
        )
    sizes: dict[str, int] = {}
    for h in hashes.values():
        sizes[h] = sizes.get(h, 0) + 1
    best = max(sizes, key=lambda h: (sizes[h], h == first_hash))
    if best != first_hash:  # another gene set is more common: second pass over its samples
        acc, used, first_ids = None, [], None
        for sample, _exp, key, step in plan.samples:
            if hashes.get(sample) != best:
                continue
            vec = load(sample, key, step)
            if acc is None:
                acc, first_ids = StreamingTarget(vec.ids.size), vec.ids
            acc.add(vec.values, name=sample)
            used.append(sample)
    for sample, h in hashes.items():
        if h != best:
            skipped[sample] = "gene set differs from the one shared by most samples"
    target = acc.result()
    genes = first_ids
    flagged, flag_reason = plan.flagged, plan.flag_reason
    if not flagged and len(used) < plan.min_samples:  # enough candidates, too few readable ones
        flagged = True
        flag_reason = (
            f"below the minimum of {plan.min_samples} samples: {len(used)} usable of {len(plan.samples)}"
        )
    base = f"references/{QN_TARGET_KIND}/{organism}"
    with store.writer(f"{base}/genes.txt") as path:
        path.write_text("\n".join(genes.tolist()) + "\n", encoding="utf-8")
        genes_sha, _ = file_sha256(path)
    with store.writer(f"{base}/target.txt") as path:
        write_target(path, target)
        target_sha, target_size = file_sha256(path)
    experiments = {s: e for s, e, _k, _st in plan.samples}
    record = {
        "version": target_sha[:16],
        "url": store.url_for(f"{base}/target.txt"),
        "sha256": target_sha,
        "size": target_size,
        "source_url": None,
        "details": {
            "organism": organism,
            "method": plan.method,
            "flagged": flagged,
            "flag_reason": flag_reason,
            "technology": plan.technology,
            "platform": plan.platform,
            "platform_accessions": plan.platform_accessions,
            "manufacturer": plan.manufacturer,
            "num_samples": len(used),
            "samples": used,
            "sample_experiments": {s: experiments[s] for s in used},
            "num_genes": int(genes.size),
            "genes_url": store.url_for(f"{base}/genes.txt"),
            "genes_sha256": genes_sha,
            "length": int(target.size),
            "value_transform": plan.value_transform,
            "skipped_samples": dict(sorted(skipped.items())),
            "candidates": plan.candidates,
            "min_samples": plan.min_samples,
            "fallback_min_samples": fallback_min_samples,
            "code_version": code_version(),
        },
    }
    full = write_record(store, QN_TARGET_KIND, organism, record)
    log(f"{organism}: target of {len(used)} samples x {genes.size} genes -> {record['url']}")
    return full


def qn_target_record(store: ArtifactStore, organism: str) -> dict[str, Any] | None:
    """The published record of an organism's target, or None when none was built."""
    from refine_assets.lib.references.artifacts import read_record

    return read_record(store, QN_TARGET_KIND, normalize_organism(organism))


def load_qn_target(
    store: ArtifactStore, organism: str, *, allow_below_minimum: bool = False
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(target values, record)`` of an organism; :class:`QnTargetNotFoundError` when not built.

    The file's sha256 is checked against the record (a mismatch raises :class:`QnTargetError`). A target
    built from fewer samples than its minimum (``details.flagged``) is never used silently: it raises
    :class:`QnTargetBelowMinimumError` unless ``allow_below_minimum`` (inspection, tests) is given.
    """
    from refine_assets.lib.qn import TargetFormatError, read_target
    from refine_assets.lib.storage import file_sha256

    organism = normalize_organism(organism)
    record = qn_target_record(store, organism)
    if record is None:
        raise QnTargetNotFoundError(
            f"no QN target for organism {organism} (build it with `refine-assets references qn-target "
            f"{organism} --build`)"
        )
    details = record.get("details") or {}
    if details.get("flagged") and not allow_below_minimum:
        raise QnTargetBelowMinimumError(
            f"QN target of {organism} is not used: {details.get('flag_reason') or 'below its minimum'} "
            f"(refine.bio builds a target only from at least {details.get('min_samples', DEFAULT_MIN_SAMPLES)} "
            "samples; lower the minimum explicitly to accept it)"
        )
    key = qn_target_key(organism)
    try:
        with store.local_path(key) as path:
            sha, _ = file_sha256(path)
            if record.get("sha256") and sha != record["sha256"]:
                raise QnTargetError(
                    f"QN target of {organism} ({store.url_for(key)}) has sha256 {sha}, its record says "
                    f"{record['sha256']} (rebuild the target)"
                )
            target = read_target(path)
    except TargetFormatError as exc:
        raise QnTargetError(f"QN target of {organism} is unreadable: {exc}") from None
    except FileNotFoundError:
        raise QnTargetNotFoundError(
            f"QN target of {organism}: record exists but {store.url_for(key)} is missing"
        ) from None
    return target, record


def plan_as_dict(plan: TargetPlan) -> dict[str, Any]:
    """A plan as a JSON-ready dict (for logs and the CLI)."""
    d = asdict(plan)
    d["samples"] = [list(s) for s in plan.samples]
    return d
