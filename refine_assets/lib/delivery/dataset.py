"""Build a dataset zip from a request: refine.bio's smasher, re-done deterministically and streaming.

refine.bio ``processors/smasher.py`` + ``smashing_utils.py`` (teardown §6; reference doc "Aggregations" to
"Downloadable Files"). :func:`build_dataset` does, in order (``docs/datasets.md`` has the full contract):

1. **Resolve** the request against the warehouse: every experiment must exist, every listed sample must
   belong to its experiment (else :class:`UnknownAccessionError` listing all of them); ``ALL`` expands to
   the experiment's samples.
2. **Usable vectors**: a sample is delivered from the vector of its latest non-survey ledger outcome
   when that succeeded with a ``.parquet`` vector (``sample_status``); when it has none under the
   requested experiment, a usable vector recorded under another experiment of the same sample (GEO
   super-/sub-series) is used. Other samples go to the filtered-samples files with the reason
   (``pending``, ``failed (<step>): <reason>``, ``not supported``, ``tximport pending`` ...).
3. **Groups**: ``EXPERIMENT`` -> one matrix per requested experiment (a sample requested under two
   experiments is in both); ``SPECIES`` -> one per organism; ``ALL`` -> one (``ALL``). Within a
   species/ALL group a sample appears once.
4. **QN targets** (when ``quantile_normalize``): each sample is normalized with the target of **its own
   organism** (:func:`refine_assets.lib.delivery.targets.load_qn_target`); refine.bio used the first
   sample's organism for every group (teardown §12 item 5). Samples whose organism has no target (or is
   unknown) are filtered with that reason.
5. Per group, in key order: **load** each vector (:mod:`~refine_assets.lib.delivery.vectors`: ``_at``,
   ``AFFX-``, versions, duplicates -> mean; ``log2(x + 1)`` once for RNA-seq/tximport vectors when
   aggregating by species, refine.bio's rule — experiment/all aggregation delivers RNA-seq as
   lengthScaledTPM, which QN makes irrelevant since QN depends only on ranks); **inner join**
   (:mod:`~refine_assets.lib.delivery.join`, samples sorted by accession, genes sorted: independent of
   request order; an empty intersection raises :class:`DatasetError`); **QN**
   (:func:`refine_assets.lib.qn.quantile_normalize_to_target`, per organism's columns); **KS gate**
   (:func:`refine_assets.lib.ks.ks_gate` against the same target; failing samples are removed and listed
   in the filtered files unless ``keep_ks_failures``); **scaling** per gene across the remaining samples
   (:mod:`~refine_assets.lib.delivery.transform`); then the group's files are written into the zip.
6. **Zip** (``ZIP_DEFLATED``, zip64) in refine.bio's names (``docs/datasets.md``), every member streamed
   (matrix rows in blocks): ``<KEY>/<KEY>.tsv`` (genes x samples, header ``Gene`` + sample accessions),
   after the last matrix every ``<KEY>/metadata_<KEY>.tsv`` with one header for the dataset
   (:mod:`~refine_assets.lib.delivery.metadata_tsv`) and for species ``<KEY>/metadata_<KEY>.json``; top
   level ``aggregated_metadata.json``, ``README.md``, ``LICENSE.TXT`` and, if any sample was dropped,
   ``filtered_samples_metadata.json`` and ``.tsv`` (with ``reason``). ``quant_sf_only`` requests get
   ``<KEY>/<RUN>_quant.sf`` files instead of matrices (:mod:`~refine_assets.lib.delivery.quantsf`).
   Written to a temp file beside the output, then made 0644 and renamed (no partial zip ever visible);
   sha256 and size computed from the file.
7. **Record**: ``datasets/<id>/record.json`` in the store and (``record_in_warehouse``) a row in the
   warehouse table ``datasets`` (:func:`record_dataset`), both with URL, size and sha256; optionally the
   zip itself is uploaded to the store (``publish_key``).

Precision: vectors are float64; the joined matrix is stored as ``float32`` by default (refine.bio wrote
float32 values) or ``float64`` (``precision="float64"``); QN, KS and scaling compute in float64 and the
results are stored in the matrix dtype; TSV values are the shortest decimal that reads back to the
stored float32/float64 exactly. float32 storage: relative error <= 2**-24 (6e-8) per value vs the float64
computation.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import tempfile
import uuid
import warnings as _warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from refine_assets.lib.delivery.request import (
    ALL,
    DatasetRequest,
    DatasetRequestError,
    load_request,
    parse_request,
)
from refine_assets.lib.jsonsafe import json_default, json_safe
from refine_assets.lib.storage import ArtifactStore

__all__ = [
    "DatasetError",
    "DatasetResult",
    "UnknownAccessionError",
    "build_dataset",
    "dataset_record_key",
    "record_dataset",
]

PRECISIONS = {"float32": np.float32, "float64": np.float64}
MATRIX_BLOCK_VALUES = 1_000_000  # values per block when writing a matrix TSV
README_NAME = "README.md"
LICENSE_NAME = "LICENSE.TXT"  # refine.bio's name (its docs say LICENSE.txt)
#: aggregated_metadata.json keys that a quant_sf_only dataset does not have (refine.bio's compile_metadata)
QUANT_SF_ABSENT_KEYS = (
    "aggregate_by",
    "scale_by",
    "ks_statistic",
    "ks_pvalue",
    "ks_warning",
    "quantile_normalized",
    "qn_targets",
    "ks_gate",
    "ks_results",
    "precision",
    "rnaseq_value_transform",
)
ZIP_MODE = 0o644  # readable like any download (mkstemp creates 0600)
RNASEQ_STEP = "tximport"


class DatasetError(ValueError):
    """A dataset that cannot be built; the message says which group/sample and why."""


class UnknownAccessionError(DatasetError, DatasetRequestError):
    """Experiments or samples of the request that the warehouse does not know (all of them listed)."""


@dataclass
class DatasetResult:
    """What :func:`build_dataset` published.

    ``groups``: key -> {path, samples, num_genes, organisms}; ``filtered``: one dict per dropped
    (sample, group) with ``reason`` and ``stage`` (request | processing | organism | qn_target | load |
    ks); ``ks``: per-sample KS results; ``record``: the dataset record (also in the store/warehouse).
    """

    dataset_id: str
    path: Path
    url: str
    size: int
    sha256: str
    created_at: str
    num_samples: int
    groups: dict[str, dict] = field(default_factory=dict)
    filtered: list[dict] = field(default_factory=list)
    ks: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    record: dict = field(default_factory=dict)
    #: up to 8 samples of the first quantile-normalized group: {"group", "before", "after"}, each
    #: {sample: values} (for the distribution plots in the UI)
    qn_preview: dict = field(default_factory=dict)


def dataset_record_key(dataset_id: str) -> str:
    """Storage key of a dataset's record (``datasets/<id>/record.json``)."""
    return f"datasets/{dataset_id}/record.json"


def finish_zip(tmp: Path, out: Path) -> None:
    """fsync the finished zip, make it readable like any download (0644) and rename it to ``out``."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, ZIP_MODE)
    os.replace(tmp, out)


def _dir_name(key: str) -> str:
    """A zip folder/file stem for a group key: ASCII letters, digits, ``.``, ``_``, ``-`` only."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", key.encode("ascii", "ignore").decode()).strip("._")
    return clean or "group"


def _json_bytes(obj: Any) -> bytes:
    return (
        json.dumps(json_safe(obj), indent=4, sort_keys=True, default=json_default, allow_nan=False) + "\n"
    ).encode()


def _package_text(name: str) -> bytes:
    return resources.files("refine_assets.lib.delivery").joinpath(name).read_bytes()


class _ZipOut:
    """A zip being written member by member (each streamed; fixed timestamps)."""

    def __init__(
        self, path: Path, date_time: tuple[int, int, int, int, int, int], compresslevel: int = 6
    ) -> None:
        self.zf = zipfile.ZipFile(
            path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel, allowZip64=True
        )
        self.compresslevel = compresslevel
        self.date_time = date_time
        self.members: list[str] = []

    def _info(self, name: str) -> zipfile.ZipInfo:
        if name in self.members:
            raise DatasetError(f"zip member {name} written twice")
        self.members.append(name)
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = self.compresslevel  # ZipFile.open(ZipInfo, "w") reads this (3.11-3.13 alias)
        info.external_attr = 0o644 << 16
        return info

    @contextlib.contextmanager
    def binary(self, name: str) -> Iterator[io.BufferedIOBase]:
        with self.zf.open(self._info(name), "w", force_zip64=True) as fh:
            yield fh

    @contextlib.contextmanager
    def text(self, name: str) -> Iterator[io.TextIOWrapper]:
        with self.zf.open(self._info(name), "w", force_zip64=True) as raw:
            wrapper = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            try:
                yield wrapper
            finally:
                wrapper.flush()
                wrapper.detach()

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.binary(name) as fh:
            fh.write(data)

    def write_matrix(self, name: str, genes: np.ndarray, samples: list[str], values: np.ndarray) -> None:
        """``Gene`` + samples header, then one row per gene; values at their dtype's shortest repr."""
        import polars as pl

        n_genes, n_samples = values.shape
        step = max(1, MATRIX_BLOCK_VALUES // max(1, n_samples))
        with self.binary(name) as fh:
            fh.write(("\t".join(["Gene", *samples]) + "\n").encode("utf-8"))
            for r0 in range(0, n_genes, step):
                r1 = min(r0 + step, n_genes)
                cols = [pl.Series("Gene", genes[r0:r1].tolist(), dtype=pl.String)]
                cols += [pl.Series(f"c{j}", np.ascontiguousarray(values[r0:r1, j])) for j in range(n_samples)]
                buf = io.BytesIO()
                pl.DataFrame(cols).write_csv(buf, separator="\t", include_header=False, quote_style="never")
                fh.write(buf.getvalue())

    def close(self) -> None:
        self.zf.close()


@dataclass
class _Member:
    """One requested (sample, experiment) pair and what was found for it."""

    sample: str
    experiment: str
    row: dict | None = None
    processing: dict | None = None  # the ledger row whose vector is used
    key: str | None = None
    reason: str = ""


def _resolve(con, req: DatasetRequest) -> tuple[list[_Member], list[str]]:
    """Members of the request (sorted), or UnknownAccessionError listing every unknown accession."""
    from refine_assets.lib.delivery.metadata import fetch_experiments

    warnings: list[str] = []
    known = fetch_experiments(con, req.experiments)
    problems = [f"unknown experiment accession {e}" for e in req.experiments if e not in known]
    listed = sorted({s for e in req.experiments if not req.is_all(e) for s in req.data[e]})
    where: dict[str, list[str]] = {}
    if listed:
        import pyarrow as pa

        con.register("_listed", pa.table({"accession": pa.array(listed, pa.string())}))
        try:
            for s, e in con.execute(
                "SELECT s.accession, s.experiment_accession FROM samples s JOIN _listed l ON l.accession = s.accession"
            ).fetchall():
                where.setdefault(s, []).append(e)
        finally:
            con.unregister("_listed")
    members: list[_Member] = []
    for exp in req.experiments:
        if exp not in known:
            continue
        if req.is_all(exp):
            samples = [
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT accession FROM samples WHERE experiment_accession = ? ORDER BY accession",
                    [exp],
                ).fetchall()
            ]
            if not samples:
                warnings.append(f"experiment {exp} has no samples in the warehouse")
            members += [_Member(s, exp) for s in samples]
            continue
        for s in req.data[exp]:
            exps = where.get(s)
            if not exps:
                problems.append(f"unknown sample accession {s} (requested under {exp})")
            elif exp not in exps:
                problems.append(
                    f"sample {s} is not part of experiment {exp} (it is in {', '.join(sorted(exps))})"
                )
            else:
                members.append(_Member(s, exp))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise UnknownAccessionError(
            "dataset request has accessions the warehouse does not know: " + "; ".join(shown)
        )
    members.sort(key=lambda m: (m.sample, m.experiment))
    return members, warnings


def _attach_processing(con, members: list[_Member], quant_sf: bool = False) -> None:
    """Fill ``row``, ``processing``, ``key`` / ``reason`` of every member (step 2 of the module doc);
    ``quant_sf``: the latest salmon outcome and its quant.sf instead of the expression vector."""
    from refine_assets.lib.delivery.metadata import (
        fetch_latest_processing,
        fetch_sample_rows,
        usable_vector_key,
    )
    from refine_assets.lib.delivery.quantsf import SALMON_STEP, usable_quant_sf_key

    usable = usable_quant_sf_key if quant_sf else usable_vector_key
    rows = fetch_sample_rows(con, [(m.sample, m.experiment) for m in members])
    latest = fetch_latest_processing(con, [m.sample for m in members], [SALMON_STEP] if quant_sf else None)
    by_sample: dict[str, list[dict]] = {}
    for (s, _e), r in latest.items():
        by_sample.setdefault(s, []).append(r)
    for m in members:
        m.row = rows.get((m.sample, m.experiment))
        own = latest.get((m.sample, m.experiment))
        key, reason = usable(own, (m.row or {}).get("pipeline"))
        if key:
            m.processing, m.key = own, key
            continue
        others = sorted(
            (r for r in by_sample.get(m.sample, []) if r["experiment_accession"] != m.experiment),
            key=lambda r: (str(r.get("recorded_at")), r["experiment_accession"]),
            reverse=True,
        )
        for r in others:
            k, _ = usable(r)
            if k:
                m.processing, m.key = r, k
                break
        else:
            m.reason = reason


def _ks_summary(results: list[dict]) -> dict[str, Any]:
    stats = [
        r["statistic"] for r in results if r.get("statistic") is not None and math.isfinite(r["statistic"])
    ]
    pvals = [r["pvalue"] for r in results if r.get("pvalue") is not None and math.isfinite(r["pvalue"])]
    failed = [r["sample"] for r in results if not r["passed"]]
    return {
        "ks_statistic": max(stats) if stats else None,
        "ks_pvalue": min(pvals) if pvals else None,
        "ks_warning": (
            f"{len(failed)} sample(s) failed the KS gate: {', '.join(sorted(set(failed))[:20])}"
            if failed
            else None
        ),
    }


def build_dataset(
    request: DatasetRequest | Mapping[str, Any] | str | Path,
    warehouse_path: str | Path,
    store: ArtifactStore,
    out_zip_path: str | Path,
    *,
    keep_ks_failures: bool = False,
    precision: str = "float32",
    dataset_id: str | None = None,
    publish_key: str | None = None,
    record_in_warehouse: bool = True,
    ks_options: Mapping[str, Any] | None = None,
    compresslevel: int = 6,
    log: Callable[[str], None] = lambda _m: None,
) -> DatasetResult:
    """Build, write and publish the dataset zip of ``request`` (module docstring).

    ``request``: a :class:`DatasetRequest`, a request mapping or a JSON/YAML file path.
    ``warehouse_path``: the DuckDB warehouse (read-only, plus the ``datasets`` row when
    ``record_in_warehouse``). ``store``: where vectors and QN targets are read and the record written.
    ``out_zip_path``: the local zip (replaced atomically). ``precision``: ``float32`` (default) or
    ``float64`` matrix storage. ``ks_options``: keyword arguments for :func:`refine_assets.lib.ks.ks_gate`
    (thresholds, ``method``). ``publish_key``: also upload the zip to the store under that key (the
    record's URL is then the store URL). ``compresslevel``: deflate level of the zip members (6, zlib's
    default as refine.bio's ``zipfile``; 1 is ~7x faster for ~10% larger matrices).

    Raises :class:`DatasetRequestError` for a malformed request, :class:`UnknownAccessionError` for
    accessions the warehouse does not know, :class:`DatasetError` for a group whose samples share no
    gene, or when no sample at all can be delivered (the message lists the reasons). Nothing is written
    at ``out_zip_path`` on error.
    """
    import duckdb

    from refine_assets.lib.survey.pipeline import code_version

    req = (
        request
        if isinstance(request, DatasetRequest)
        else (load_request(request) if isinstance(request, str | Path) else parse_request(request))
    )
    if precision not in PRECISIONS:
        raise DatasetError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    db = Path(warehouse_path)
    if not db.is_file():
        raise DatasetError(f"warehouse {db} not found")
    ds_id = dataset_id or req.dataset_id or str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    created_at = now.strftime("%Y-%m-%dT%H:%M:%S")

    from refine_assets.lib.delivery.metadata import fetch_attributes, fetch_experiments

    with duckdb.connect(str(db), read_only=True) as con:
        members, warnings = _resolve(con, req)
        _attach_processing(con, members, quant_sf=req.quant_sf_only)
        usable_pairs = [(m.sample, m.experiment) for m in members if m.row is not None]
        attributes = fetch_attributes(con, usable_pairs)
        exp_rows = fetch_experiments(con, req.experiments)

    filtered: list[dict] = []

    def drop(m: _Member, reason: str, stage: str, group: str | None = None) -> None:
        filtered.append(
            {
                "sample": m.sample,
                "experiment": m.experiment,
                "group": group,
                "reason": reason,
                "stage": stage,
                "member": m,
            }
        )

    live = []
    for m in members:
        if m.key is None:
            drop(m, m.reason, "processing")
        else:
            live.append(m)

    # groups: key -> {sample: [members]} (several members when a sample was requested under several experiments)
    groups: dict[str, dict[str, list[_Member]]] = {}
    for m in live:
        organism = (m.row or {}).get("organism")
        if req.aggregate_by == "SPECIES" and not organism:
            drop(m, "organism unknown: cannot aggregate by species", "organism")
            continue
        gkey = {"EXPERIMENT": m.experiment, "SPECIES": organism, "ALL": ALL}[req.aggregate_by]
        groups.setdefault(gkey, {}).setdefault(m.sample, []).append(m)

    targets: dict[str, tuple[np.ndarray, dict] | str] = {}
    if req.quantile_normalize and not req.quant_sf_only:
        from refine_assets.lib.delivery.targets import QnTargetError, load_qn_target

        for organism in sorted(
            {(ms[0].row or {}).get("organism") or "" for g in groups.values() for ms in g.values()}
        ):
            if not organism:
                continue
            try:
                targets[organism] = load_qn_target(store, organism)
            except QnTargetError as exc:
                targets[organism] = str(exc)

    ks_opts = dict(ks_options or {})
    ks_results: list[dict] = []
    qn_preview: dict = {}
    group_summaries: dict[str, dict] = {}
    delivered: dict[str, dict] = {}  # sample -> sample dict (as in aggregated_metadata.json)
    delivered_exps: dict[str, set[str]] = {}  # experiment -> delivered samples
    sample_organism: dict[str, str] = {}

    out = Path(out_zip_path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".refine-tmp-", suffix=f"-{out.name}", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    zout = _ZipOut(tmp, now.timetuple()[:6], compresslevel)
    try:
        for gkey in sorted(groups):
            if req.quant_sf_only:
                from refine_assets.lib.delivery.quantsf import write_quant_sf_group

                summary = write_quant_sf_group(
                    gkey,
                    _dir_name(gkey),
                    groups[gkey],
                    req.aggregate_by,
                    store,
                    attributes,
                    zout,
                    drop,
                    delivered,
                    delivered_exps,
                    sample_organism,
                )
            else:
                summary = _build_group(
                    gkey,
                    groups[gkey],
                    req,
                    store,
                    dtype,
                    targets,
                    ks_opts,
                    keep_ks_failures,
                    attributes,
                    exp_rows,
                    zout,
                    drop,
                    ks_results,
                    delivered,
                    delivered_exps,
                    sample_organism,
                    log,
                    qn_preview=qn_preview,
                )
            if summary is None:
                warnings.append(f"group {gkey}: no sample left to deliver")
            else:
                group_summaries[gkey] = summary
        if not group_summaries:
            reasons = sorted({f["reason"] for f in filtered})
            raise DatasetError(
                f"no sample of the request can be delivered ({len(filtered)} filtered): "
                + "; ".join(reasons[:10])
            )
        _write_group_metadata(zout, req, group_summaries, exp_rows)
        _write_top_level(
            zout,
            req,
            ds_id,
            created_at,
            group_summaries,
            delivered,
            delivered_exps,
            exp_rows,
            sample_organism,
            targets,
            filtered,
            attributes,
            ks_results,
            keep_ks_failures,
            ks_opts,
            precision,
            warnings,
            code_version(),
        )
        zout.close()
        finish_zip(tmp, out)
    except BaseException:
        with contextlib.suppress(Exception):
            zout.close()
        tmp.unlink(missing_ok=True)
        raise
    from refine_assets.lib.storage import file_sha256

    sha, size = file_sha256(out)
    url = out.as_uri()
    if publish_key:
        url = store.put_file(publish_key, out).url
    public_filtered = [{k: v for k, v in f.items() if k != "member"} for f in filtered]
    record = {
        "dataset_id": ds_id,
        "url": url,
        "size": size,
        "sha256": sha,
        "created_at": created_at,
        "aggregate_by": req.aggregate_by,
        "scale_by": req.scale_by,
        "quantile_normalized": req.quantile_normalize,
        "num_samples": len(delivered),
        "num_filtered": len(public_filtered),
        "groups": sorted(group_summaries),
        "request": req.to_dict(),
        "precision": precision,
        "code_version": code_version(),
    }
    record["record_url"] = store.put_bytes(dataset_record_key(ds_id), _json_bytes(record)).url
    if record_in_warehouse:
        record_dataset(db, record)
    log(
        f"dataset {ds_id}: {len(delivered)} samples in {len(group_summaries)} group(s), {size} bytes -> {url}"
    )
    return DatasetResult(
        dataset_id=ds_id,
        path=out,
        url=url,
        size=size,
        sha256=sha,
        created_at=created_at,
        num_samples=len(delivered),
        groups=group_summaries,
        filtered=public_filtered,
        ks=ks_results,
        warnings=warnings,
        record=record,
        qn_preview=qn_preview,
    )


def _build_group(
    gkey,
    members_by_sample,
    req,
    store,
    dtype,
    targets,
    ks_opts,
    keep_ks_failures,
    attributes,
    exp_rows,
    zout,
    drop,
    ks_results,
    delivered,
    delivered_exps,
    sample_organism,
    log,
    qn_preview: dict | None = None,
) -> dict | None:
    """Steps 4-6 for one group; returns its summary, or None when no sample is left.

    ``qn_preview`` (filled once, by the first normalized group): a few columns before and after QN.
    """
    from refine_assets.lib.delivery.join import InnerJoin, JoinError
    from refine_assets.lib.delivery.metadata import sample_metadata
    from refine_assets.lib.delivery.transform import scale_rows
    from refine_assets.lib.delivery.vectors import VectorError, load_sample_vector
    from refine_assets.lib.ks import ks_gate
    from refine_assets.lib.qn import quantile_normalize_to_target

    join = InnerJoin(dtype)
    info: dict[str, dict] = {}
    for sample in sorted(members_by_sample):
        ms = members_by_sample[sample]
        m = ms[0]
        organism = (m.row or {}).get("organism") or ""
        if req.quantile_normalize:
            tgt = targets.get(organism)
            if not organism:
                for x in ms:
                    drop(x, "organism unknown: no QN target can be chosen", "organism", gkey)
                continue
            if isinstance(tgt, str):
                reason = f"{tgt}; or request quantile_normalize=false to get unnormalized values"
                for x in ms:
                    drop(x, reason, "qn_target", gkey)
                continue
        step = (m.processing or {}).get("step")
        log2 = req.aggregate_by == "SPECIES" and step == RNASEQ_STEP
        try:
            vec = load_sample_vector(store, m.key, sample, log2_plus_one=log2)
        except VectorError as exc:
            for x in ms:
                drop(x, str(exc), "load", gkey)
            continue
        join.add(sample, vec.ids, vec.values)
        # keep only what the metadata needs: the ids and values now live (compactly) in the join
        info[sample] = {
            "members": ms,
            "organism": organism,
            "provenance": vec.provenance,
            "transform": vec.transform,
            "n_genes": vec.stats.get("n_genes"),
        }
        del vec
    if not info:
        return None
    organisms = sorted({i["organism"] for i in info.values() if i["organism"]})
    try:
        joined = join.result()
    except JoinError as exc:  # no gene common to all samples
        hint = (
            f" (organisms {', '.join(organisms)}: Ensembl gene ids differ between species; aggregate by species)"
            if len(organisms) > 1
            else ""
        )
        raise DatasetError(f"group {gkey}: {exc}{hint}") from None
    mat = joined.values
    samples = joined.samples
    log(f"group {gkey}: {len(samples)} samples x {len(joined.genes)} genes")
    ks_rows: dict[str, dict] = {}
    qn_used: dict[str, dict] = {}
    if req.quantile_normalize:
        for organism in organisms:
            tgt, rec = targets[organism]
            cols = [j for j, s in enumerate(samples) if info[s]["organism"] == organism]
            preview = qn_preview is not None and not qn_preview
            if preview:
                before = {samples[j]: np.array(mat[:, j], dtype=np.float64) for j in cols[:8]}
            if len(cols) == len(samples) and mat.dtype == np.float32:
                quantile_normalize_to_target(mat, tgt, out=mat)
                sub = mat
            else:
                sub = quantile_normalize_to_target(mat[:, cols], tgt)
                mat[:, cols] = sub
                sub = mat[:, cols]
            if preview:
                after = {samples[j]: np.array(mat[:, j], dtype=np.float64) for j in cols[:8]}
                qn_preview.update(group=gkey, organism=organism, before=before, after=after)
            names = [samples[j] for j in cols]
            with _warnings.catch_warnings():
                # scipy falls back from the exact to the asymptotic p-value on heavily tied data and
                # says so; the fallback is expected (RNA-seq zeros) and the statistic is unaffected.
                _warnings.filterwarnings("ignore", message=".*Exact calculation unsuccessful.*")
                results = ks_gate(sub, tgt, sample_names=names, **ks_opts)
            for r in results:
                row = {"group": gkey, "organism": organism, **r.as_dict()}
                ks_rows[r.sample] = row
                ks_results.append(row)
            del sub
            qn_used[organism] = _target_summary(rec)
    keep = list(range(len(samples)))
    if ks_rows and not keep_ks_failures:
        failed = {s for s, r in ks_rows.items() if not r["passed"]}
        for s in sorted(failed):
            for x in info[s]["members"]:
                drop(
                    x, f"failed the KS gate after quantile normalization: {ks_rows[s]['reason']}", "ks", gkey
                )
        keep = [j for j, s in enumerate(samples) if s not in failed]
        if not keep:
            return None
        if len(keep) < len(samples):
            mat = np.asfortranarray(mat[:, keep])
            samples = [samples[j] for j in keep]
    if req.scale_by != "NONE":
        scale_rows(mat, req.scale_by, out=mat)
    # metadata of the delivered samples (written with the dataset-wide header by _write_group_metadata)
    sample_dicts = []
    for s in samples:
        i = info[s]
        ms = i["members"]
        exps = sorted({x.experiment for x in ms})
        m = ms[0]
        d = sample_metadata(
            m.row,
            attributes.get((m.sample, m.experiment), []),
            m.processing,
            experiment_accession=gkey if req.aggregate_by == "EXPERIMENT" else exps[0],
            experiments=exps,
            provenance=i["provenance"],
            value_transform=i["transform"],
            genes_in_vector=i["n_genes"],
        )
        if s in ks_rows:
            r = ks_rows[s]
            d["refinebio_ks_statistic"] = r["statistic"]
            d["refinebio_ks_pvalue"] = r["pvalue"]
            d["refinebio_ks_passed"] = r["passed"]
        sample_dicts.append(d)
        delivered.setdefault(s, d)
        sample_organism[s] = i["organism"]
        for e in exps:
            delivered_exps.setdefault(e, set()).add(s)
    name = _dir_name(gkey)
    zout.write_matrix(f"{name}/{name}.tsv", joined.genes, samples, mat)
    return {
        "path": f"{name}/{name}.tsv",
        "metadata_path": f"{name}/metadata_{name}.tsv",
        "samples": samples,
        "num_samples": len(samples),
        "num_genes": len(joined.genes),
        "organisms": organisms,
        "qn_targets": qn_used,
        "sample_dicts": sample_dicts,
    }


def _write_group_metadata(zout: _ZipOut, req: DatasetRequest, groups: dict[str, dict], exp_rows) -> None:
    """Every group's ``metadata_<KEY>.tsv`` (and, by species, ``metadata_<KEY>.json``) with one header
    for the whole dataset (refine.bio's ``write_tsv_json``); moves ``sample_dicts`` out of the summaries."""
    from refine_assets.lib.delivery.metadata_tsv import tsv_columns, tsv_row, write_metadata_tsv

    columns = tsv_columns(tsv_row(d) for g in groups.values() for d in g["sample_dicts"])
    for gkey, summary in groups.items():
        sample_dicts = summary.pop("sample_dicts")
        summary["metadata_columns"] = len(columns)
        name = _dir_name(gkey)
        with zout.text(summary["metadata_path"]) as fh:
            write_metadata_tsv(fh, sample_dicts, columns)
        if req.aggregate_by == "SPECIES":
            exps = sorted({e for d in sample_dicts for e in d["refinebio_experiment_accessions"]})
            species_json = {
                "species": gkey,
                "samples": sample_dicts,
                "experiments": {
                    e: _experiment_dict(
                        exp_rows,
                        e,
                        [
                            d["refinebio_accession_code"]
                            for d in sample_dicts
                            if e in d["refinebio_experiment_accessions"]
                        ],
                        [gkey],
                    )
                    for e in exps
                },
            }
            zout.write_bytes(f"{name}/metadata_{name}.json", _json_bytes(species_json))


def _target_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    d = record.get("details") or {}
    return {
        "url": record.get("url"),
        "sha256": record.get("sha256"),
        "version": record.get("version"),
        "method": d.get("method"),
        "flagged": d.get("flagged"),
        "flag_reason": d.get("flag_reason"),
        "platform": d.get("platform"),
        "technology": d.get("technology"),
        "num_samples": d.get("num_samples"),
        "num_genes": d.get("num_genes"),
        "value_transform": d.get("value_transform"),
    }


def _experiment_dict(
    exp_rows: Mapping[str, dict], acc: str, samples: list[str], organisms: list[str]
) -> dict:
    from refine_assets.lib.delivery.metadata import experiment_metadata

    return experiment_metadata(exp_rows.get(acc) or {"accession": acc}, samples, organisms)


def _write_top_level(
    zout,
    req,
    ds_id,
    created_at,
    group_summaries,
    delivered,
    delivered_exps,
    exp_rows,
    sample_organism,
    targets,
    filtered,
    attributes,
    ks_results,
    keep_ks_failures,
    ks_opts,
    precision,
    warnings,
    version,
) -> None:
    from refine_assets.lib.ks import DEFAULT_MIN_PRESENT_FRACTION, DEFAULT_PVALUE_MIN, DEFAULT_STATISTIC_MAX

    experiments = {
        e: _experiment_dict(
            exp_rows, e, sorted(ss), [sample_organism.get(s, "") for s in ss if sample_organism.get(s)]
        )
        for e, ss in sorted(delivered_exps.items())
    }
    qn_targets = {}
    for organism, t in sorted(targets.items()):
        qn_targets[organism] = _target_summary(t[1]) if isinstance(t, tuple) else {"error": t}
    meta = {
        # refine.bio's keys (smashing_utils.compile_metadata)
        "num_experiments": len(experiments),
        "quant_sf_only": False,
        "aggregate_by": req.aggregate_by,
        "scale_by": req.scale_by,
        **_ks_summary(ks_results),
        "quantile_normalized": req.quantile_normalize,
        "samples": delivered,
        "num_samples": len(delivered),
        "experiments": experiments,
        "created_at": created_at,
        # ours
        "dataset_id": ds_id,
        "num_filtered_samples": len({f["sample"] for f in filtered}),
        "groups": group_summaries,
        "qn_targets": qn_targets,
        "ks_gate": {
            "applied": req.quantile_normalize,
            "compared_with": "the QN target of the sample's organism",
            "top_half": ks_opts.get("top_half", True),
            "statistic_max": ks_opts.get("statistic_max", DEFAULT_STATISTIC_MAX),
            "pvalue_min": ks_opts.get("pvalue_min", DEFAULT_PVALUE_MIN),
            "min_present_fraction": ks_opts.get("min_present_fraction", DEFAULT_MIN_PRESENT_FRACTION),
            "method": ks_opts.get("method", "auto"),
            "failures_kept": keep_ks_failures,
        },
        "ks_results": ks_results,
        "precision": precision,
        "rnaseq_value_transform": "log2(x+1)" if req.aggregate_by == "SPECIES" else "none",
        "request": req.to_dict(),
        "software": {"refine_assets": version},
        "warnings": warnings,
    }
    if req.quant_sf_only:  # refine.bio writes only the keys that mean something for quant.sf files
        meta["quant_sf_only"] = True
        for key in QUANT_SF_ABSENT_KEYS:
            meta.pop(key)
    zout.write_bytes("aggregated_metadata.json", _json_bytes(meta))
    if filtered:
        write_filtered(zout, filtered, attributes)
    write_texts(zout)


def write_texts(zout: _ZipOut, readme: str = "README_DATASET.md") -> None:
    """``README.md`` and ``LICENSE.TXT`` (package data) into the zip."""
    zout.write_bytes(README_NAME, _package_text(readme))
    zout.write_bytes(LICENSE_NAME, _package_text("LICENSE_DATASET.txt"))


def write_filtered(zout: _ZipOut, filtered: list[dict], attributes: Mapping[tuple[str, str], list]) -> int:
    """``filtered_samples_metadata.json`` and ``.tsv`` in refine.bio's shape; returns the sample count.

    JSON: ``{accession: sample dict + "reason" + "experiment_accession_code"}`` (refine.bio's keys; no
    processor keys, as refine.bio's ``to_metadata_dict()`` without a file), plus ours:
    ``refinebio_filter_stage`` (processing | organism | qn_target | load | ks | quant_sf),
    ``refinebio_filter_group`` and ``refinebio_filtered_in`` (every (experiment, group, stage, reason)
    the sample was dropped from; the first one gives ``reason``). TSV: the same dicts flattened.
    """
    from refine_assets.lib.delivery.metadata import sample_metadata
    from refine_assets.lib.delivery.metadata_tsv import write_metadata_tsv

    by_sample: dict[str, dict] = {}
    for f in sorted(filtered, key=lambda f: (f["sample"], f["experiment"], f["group"] or "")):
        m = f["member"]
        entry = {
            "experiment": f["experiment"],
            "group": f["group"],
            "stage": f["stage"],
            "reason": f["reason"],
        }
        if f["sample"] in by_sample:
            by_sample[f["sample"]]["refinebio_filtered_in"].append(entry)
            continue
        if m.row is not None:
            d = sample_metadata(
                m.row, attributes.get((m.sample, m.experiment), []), None, experiment_accession=m.experiment
            )
        else:
            d = {"refinebio_accession_code": m.sample, "experiment_accession": m.experiment}
        d.update(
            {
                "reason": f["reason"],
                "experiment_accession_code": m.experiment,
                "refinebio_filter_stage": f["stage"],
                "refinebio_filter_group": f["group"],
                "refinebio_filtered_in": [entry],
            }
        )
        by_sample[f["sample"]] = d
    zout.write_bytes("filtered_samples_metadata.json", _json_bytes(by_sample))
    with zout.text("filtered_samples_metadata.tsv") as fh:
        write_metadata_tsv(fh, list(by_sample.values()))
    return len(by_sample)


def record_dataset(warehouse_path: str | Path, record: Mapping[str, Any]) -> None:
    """Insert (or replace) a dataset record in the warehouse table ``datasets`` (``sql/schema.sql``).

    Uses the warehouse's writer lock and atomic publish (:func:`refine_assets.lib.warehouse.building`),
    so readers keep a consistent snapshot; the table is created when missing.
    """
    from refine_assets.lib.warehouse import building, writer_lock

    db = Path(warehouse_path).resolve()
    with writer_lock(db), building(db) as con:
        con.execute(
            "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?, TRY_CAST(? AS TIMESTAMP))",
            [
                record["dataset_id"],
                record.get("url"),
                record.get("size"),
                record.get("sha256"),
                record.get("aggregate_by"),
                record.get("scale_by"),
                record.get("quantile_normalized"),
                record.get("num_samples"),
                record.get("num_filtered"),
                list(record.get("groups") or []),
                json.dumps(record.get("request") or {}, sort_keys=True),
                record.get("record_url"),
                record.get("created_at"),
            ],
        )
