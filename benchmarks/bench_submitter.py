"""Benchmark the submitter-processed path on the 34 real samples of GSE781.

Usage::

    uv run python benchmarks/bench_submitter.py [--shared-data ../shared/data] [--repeat 3]

Phases (wall seconds; ``convert`` is the best of ``--repeat`` runs):

* ``parse_soft``: parse the GSE781 family SOFT (10 MB gzip, 34 sample tables, GPL96/GPL97 tables);
* ``load_crosswalk``: read ``annotation/human_gene_ids.tsv.gz`` (org.Hs.eg.db; Entrez/symbol -> Ensembl);
* ``build_mappers``: column detection for both platform tables (:class:`PlatformMapper`);
* ``convert``: :func:`process_sample_table` for all 34 samples (parse values, log2 decision and
  transform, duplicate ids, probe -> gene mapping with coverage scoring, gene vector);
* ``end_to_end``: survey GSE781 from the SOFT into a temporary local artifact store, then the
  processing framework with :class:`SubmitterProcessor` (reads the stored Parquet tables, builds the
  mappers, writes 34 Parquet gene vectors) - what a Dagster run does.

Prints one JSON line with the times, per-sample mean, mapping coverage per platform, output sizes and
the peak RSS of the process (``ru_maxrss``) after the in-memory phases and at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from refine_assets.lib.crosswalk import load_crosswalk
from refine_assets.lib.idmap import PlatformMapper
from refine_assets.lib.submitter import SubmitterProcessor, process_sample_table
from refine_assets.lib.survey.geo_soft import parse_soft

DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    soft = args.shared_data / "geo" / "geoquery" / "GSE781_family.soft.gz"
    cw_path = args.shared_data / "annotation" / "human_gene_ids.tsv.gz"
    out: dict = {"benchmark": "submitter_gse781"}

    t = time.perf_counter()
    doc = parse_soft(soft)
    out["parse_soft_s"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    crosswalk = load_crosswalk(cw_path, organism="HOMO_SAPIENS")
    out["load_crosswalk_s"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    mappers = {gpl: PlatformMapper(e.table, crosswalk, name=gpl) for gpl, e in doc.platforms.items()}
    out["build_mappers_s"] = round(time.perf_counter() - t, 3)

    samples = list(doc.samples.items())
    best = float("inf")
    results = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        results = [
            process_sample_table(e.table, mappers[e.get("platform_id")], sample_accession=acc)
            for acc, e in samples
        ]
        best = min(best, time.perf_counter() - t)
    out["samples"] = len(results)
    out["convert_s"] = round(best, 3)
    out["convert_per_sample_ms"] = round(1000 * best / len(results), 2)
    out["coverage"] = {r.mapping["platform"]: round(r.mapping["coverage"], 4) for r in results}
    out["values_per_sample"] = {r.mapping["platform"]: len(r.values) for r in results}
    out["log2_rules"] = sorted({r.log2.rule for r in results if r.log2})
    out["peak_rss_mb_after_convert"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    from refine_assets.lib.http import ReplayHttpClient
    from refine_assets.lib.processing.framework import process_samples
    from refine_assets.lib.processing.inputs import load_sample_inputs
    from refine_assets.lib.storage import open_store
    from refine_assets.lib.survey.geo import family_soft_url
    from refine_assets.lib.survey.pipeline import run_survey

    with tempfile.TemporaryDirectory(prefix="bench_submitter_") as tmp:
        store = open_store(tmp)
        t = time.perf_counter()
        run_survey("GSE781", ReplayHttpClient(files={family_soft_url("GSE781"): soft}), store)
        survey_s = time.perf_counter() - t
        t = time.perf_counter()
        inputs = load_sample_inputs(store, "GSE781")
        outcomes = process_samples(inputs, {"NO_OP": SubmitterProcessor(store, crosswalk)}, store)
        process_s = time.perf_counter() - t
        out["end_to_end"] = {
            "survey_s": round(survey_s, 3),
            "process_34_s": round(process_s, 3),
            "succeeded": sum(o.status == "succeeded" for o in outcomes),
            "vector_bytes": sum(store.size(o.output_key) for o in outcomes if o.output_key),
        }
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
