"""Quantpendia: per organism, the raw ``quant.sf`` of every quantified RNA-seq run, with metadata, zipped.

refine.bio's "RNA-seq sample compendium" (reference doc, "Species compendia"): the Salmon output of
every run of the organism that passed quantification, so users can do their own summarization. The
zip holds ``<EXPERIMENT>/<RUN>/quant.sf`` (byte-identical to what salmon wrote), ``metadata.tsv``
and ``metadata.json`` (harmonized sample metadata plus the run's QC metrics: mapping rate, reads
processed, library type, index, salmon version), ``aggregated_metadata.json`` (organism, counts,
index versions, build time) and a ``README.md``. Runs that failed quantification or a QC gate are
not in it; they are listed in ``filtered_samples.tsv`` with their reason, so nothing is silently
dropped. The zip is written to a temporary file and renamed (never half-written).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refine_assets.lib.compendia.select import harmonized_metadata
from refine_assets.lib.storage import ArtifactStore

SELECT_RUNS = """
SELECT l.sample_accession, l.experiment_accession, l.status, l.reason, l.output_key, l.metrics,
       l.versions, l.recorded_at
FROM ledger_latest l
JOIN samples s ON s.accession = l.sample_accession AND s.experiment_accession = l.experiment_accession
WHERE upper(s.organism) = ? AND l.step = 'salmon'
QUALIFY row_number() OVER (PARTITION BY l.sample_accession ORDER BY l.recorded_at DESC, l.experiment_accession) = 1
ORDER BY l.experiment_accession, l.sample_accession
"""

QC_FIELDS = (
    "mapping_rate",
    "num_processed",
    "num_mapped",
    "library_type",
    "paired",
    "mean_read_length",
    "index",
)


class QuantpendiumError(ValueError):
    """No quantified runs for the organism, or a quant.sf missing from storage."""


@dataclass
class QuantpendiumResult:
    """The zip written, with its content summary."""

    path: Path
    organism: str
    num_runs: int
    num_experiments: int
    filtered: list[dict] = field(default_factory=list)
    content_sha256: str = ""
    size: int = 0


def _as_dict(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            out = json.loads(value)
            return out if isinstance(out, dict) else {}
        except json.JSONDecodeError:
            return {}
    return {}


def select_runs(warehouse: Path, organism: str) -> tuple[list[dict], list[dict], dict[str, dict]]:
    """``(quantified runs, failed runs, {run: harmonized metadata})`` of ``organism`` from the ledger."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rel = con.execute(SELECT_RUNS, [organism])
        cols = [d[0] for d in rel.description]
        rows = [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
        meta = harmonized_metadata(con, [r["sample_accession"] for r in rows])
    ok = [
        r
        for r in rows
        if r["status"] == "succeeded" and (r["output_key"] or "").endswith(("quant.sf", "quant.sf.gz"))
    ]
    failed = [r for r in rows if r not in ok]
    return ok, failed, meta


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v).replace("\t", " ").replace("\n", " ")


def build_quantpendium(
    warehouse: Path, store: ArtifactStore, organism: str, output: Path
) -> QuantpendiumResult:
    """Write ``output`` (zip) for ``organism`` (upper-case key); see the module docstring."""
    runs, failed, meta = select_runs(warehouse, organism)
    if not runs:
        raise QuantpendiumError(
            f"{organism}: no quantified RNA-seq runs in {warehouse} "
            f"({len(failed)} salmon outcomes, none succeeded)"
        )
    rows: list[dict] = []
    digest = hashlib.sha256()
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for r in runs:
                run, exp, key = r["sample_accession"], r["experiment_accession"], r["output_key"]
                if not store.exists(key):
                    raise QuantpendiumError(f"{organism}: {run}: quant.sf missing from storage ({key})")
                with store.local_path(key) as path:
                    if key.endswith(".gz"):  # stored compressed: ship salmon's plain quant.sf
                        with (
                            gzip.open(path, "rb") as src,
                            zf.open(f"{exp}/{run}/quant.sf", "w", force_zip64=True) as dst,
                        ):
                            shutil.copyfileobj(src, dst, 1 << 20)
                    else:
                        zf.write(path, f"{exp}/{run}/quant.sf")
                sha = store.read_sha256(key)
                digest.update(f"{run}\t{sha}\n".encode())
                metrics, versions = _as_dict(r["metrics"]), _as_dict(r["versions"])
                row = {
                    "run_accession": run,
                    "experiment_accession": exp,
                    "quant_sf": f"{exp}/{run}/quant.sf",
                    "stored_quant_sf_sha256": sha,
                    **{f"salmon_{k}": metrics.get(k) for k in QC_FIELDS},
                    "salmon_version": metrics.get("salmon_version") or versions.get("salmon"),
                    "quantified_at": str(r["recorded_at"]),
                }
                for k, v in (meta.get(run) or {}).items():
                    if k not in ("refinebio_accession_code", "experiment_accession"):
                        row.setdefault(k, v)
                rows.append(row)
            cols: list[str] = []
            for row in rows:
                cols += [c for c in row if c not in cols]
            lines = ["\t".join(cols)] + ["\t".join(_cell(row.get(c)) for c in cols) for row in rows]
            zf.writestr("metadata.tsv", "\n".join(lines) + "\n")
            zf.writestr("metadata.json", json.dumps(rows, indent=1, sort_keys=True, default=str))
            filtered = [
                {
                    "run_accession": r["sample_accession"],
                    "experiment_accession": r["experiment_accession"],
                    "status": r["status"],
                    "reason": r["reason"] or "",
                }
                for r in failed
            ]
            ftsv = ["run_accession\texperiment_accession\tstatus\treason"] + [
                "\t".join(_cell(f[c]) for c in ("run_accession", "experiment_accession", "status", "reason"))
                for f in filtered
            ]
            zf.writestr("filtered_samples.tsv", "\n".join(ftsv) + "\n")
            indices = sorted({str(row.get("salmon_index")) for row in rows})
            agg = {
                "organism": organism,
                "num_runs": len(rows),
                "num_experiments": len({row["experiment_accession"] for row in rows}),
                "num_filtered": len(filtered),
                "indices": indices,
                "content_sha256": digest.hexdigest(),
                "created_at": datetime.now(UTC).isoformat(),
            }
            zf.writestr("aggregated_metadata.json", json.dumps(agg, indent=1))
            zf.writestr(
                "README.md",
                f"# {organism} quantpendium\n\nThe salmon `quant.sf` of {len(rows)} RNA-seq runs "
                f"({agg['num_experiments']} experiments), as quantified (no tximport, no normalization), "
                "at `<experiment>/<run>/quant.sf`. `metadata.tsv`/`.json`: sample metadata and each run's "
                "QC (mapping rate, reads processed, library type, index). `filtered_samples.tsv`: runs left "
                "out and why.\n",
            )
        os.chmod(tmp, 0o644)  # readable like any download (mkstemp creates 0600)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return QuantpendiumResult(
        path=output,
        organism=organism,
        num_runs=len(rows),
        num_experiments=agg["num_experiments"],
        filtered=filtered,
        content_sha256=digest.hexdigest(),
        size=output.stat().st_size,
    )
