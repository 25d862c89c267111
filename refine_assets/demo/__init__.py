"""The main job on real demo data, with embedded defaults (local files, DuckDB, local Dagster storage).

Inputs, all real and replayed (the demo never touches the network beyond the package registries):

* from Debian packages (fetched at set-up, see :mod:`refine_assets.demo.data`): GEO series
  GSE781 (family SOFT with 34 submitter-processed MAS5 tables, r-bioc-geoquery), the HG-U95Av2
  probe sequences and probeset annotation (r-bioc-annotationdbi), the human gene-id crosswalk from
  org.Hs.eg.db, the E-MTAB-1147 reads (r-bioc-shortread);
* where ``../shared/data`` exists: the recorded ArrayExpress and SRA/ENA responses of its
  ``cassettes/`` folder (E-MTAB-3050, E-GEOD-44719, E-MEXP-2381, SRP068364, SRP048683, ERP108370) and
  the raw array C30057.CEL of E-MTAB-3050.

Steps, each a Dagster run in the instance at ``$DAGSTER_HOME`` (default
``$REFINE_ASSETS_HOME/dagster_home``) so the UI shows everything afterwards: survey every
experiment partition; build the warehouse (registers organism and platform partitions); build the
references that have a source (probe table + annotation of hgu95av2, human crosswalk, and two
salmon indices, k=23 and k=31, of salmon's 15 example human transcripts from the Debian salmon
package: a demo index, recorded with its source); process every
experiment's samples; with the shared data, import refine.bio's recorded Salmon outputs of
SRP095529 (20 zebrafish runs, ``demo/recorded.py``) and run their tximport; rebuild the
warehouse; with the shared data, the human and zebrafish QN targets, a dataset zip of GSE781 +
E-MTAB-3050 (``datasets`` table), and the zebrafish compendium and quantpendium (``compendia``). A failing experiment is reported and does not stop the
others; samples that cannot be processed offline (raw files not available) are recorded in the
ledger with the reason, or fall back to their submitter-processed table.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

# The demo's QN-target minimum for zebrafish (20 SRP095529 runs); refine.bio's rule, the default, is 100.
DEMO_MIN_SAMPLES = 20
SHARED_EXPERIMENTS = ("E-MTAB-3050", "E-GEOD-44719", "E-MEXP-2381", "SRP068364", "SRP048683", "ERP108370")


def default_shared_data() -> Path | None:
    env = os.environ.get("REFINE_ASSETS_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2].parent / "shared" / "data")
    for c in candidates:
        if (c / "cassettes").is_dir():
            return c
    return None


def _say(msg: str) -> None:
    print(f"[refine-assets demo] {msg}", flush=True)


def demo_settings(settings, demo_dir: Path, shared: Path | None, catalogue=None):
    """Settings for the demo: replayed HTTP and downloads (recorded responses, local copies of raw files
    and the offline reference catalogue of :mod:`refine_assets.demo.references`); no reference is
    configured by hand: processing finds them in the (replayed) Bioconductor and Brainarray indexes."""
    from refine_assets.lib.survey.geo import family_soft_url
    from refine_assets.settings import expand_cassettes

    settings.http_mode = "replay"
    settings.replay_files = {family_soft_url("GSE781"): str(demo_dir / "GSE781_family.soft.gz")}
    settings.replay_cassettes = expand_cassettes([str(shared / "cassettes")]) if shared else []
    settings.replay_downloads = {"C30057.CEL": str(shared / "microarray" / "C30057.CEL.gz")} if shared else {}
    if catalogue is not None:
        settings.replay_files.update(catalogue.http_files)
        settings.replay_downloads.update(catalogue.downloads)
    settings.reference_sources = {}
    transcripts = salmon_example_transcripts(shared)
    if transcripts is not None:
        # a 15-transcript human RefSeq set (salmon's own example): a demo index, recorded as such
        settings.reference_sources["transcriptomes"] = {"HOMO_SAPIENS": {"transcripts": str(transcripts)}}
    return settings


def salmon_example_transcripts(shared: Path | None) -> Path | None:
    """salmon's example transcripts: from the installed Debian package, else the shared data copy."""
    for candidate in (
        Path("/usr/share/doc/salmon/examples/transcripts.fasta"),
        shared / "rnaseq/salmon_example/transcripts.fasta.gz" if shared else None,
    ):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def run_demo(shared_data: Path | None = None) -> int:
    """Run the demo; returns a process exit code (0 when every run succeeded)."""
    from refine_assets.demo.data import fetch_demo_data
    from refine_assets.settings import Settings

    settings = Settings.from_env()
    home = settings.home
    from refine_assets.local_instance import local_dagster_instance

    instance = local_dagster_instance(home)
    dagster_home = Path(os.environ["DAGSTER_HOME"])

    demo_dir = home / "demo_data"
    _say(f"fetching demo data from Debian packages into {demo_dir}")
    records = fetch_demo_data(demo_dir)
    for name, rec in sorted(records.items()):
        _say(f"  {name}: {rec['package']} {rec['version']} ({rec['bytes']:,} bytes)")
    from refine_assets.demo.references import build_hgu95av2_catalogue

    catalogue = build_hgu95av2_catalogue(
        demo_dir, demo_dir / "catalogue", versions={k: r["version"] for k, r in records.items()}
    )
    _say(
        f"offline reference catalogue (Bioconductor/Brainarray formats, real data): {demo_dir / 'catalogue'}"
    )

    shared = shared_data or default_shared_data()
    experiments = ["GSE781"]
    if shared:
        experiments += list(SHARED_EXPERIMENTS)
        _say(f"using recorded HTTP responses and raw files from {shared}")
    else:
        _say("no ../shared/data: surveying GSE781 only")
    settings = demo_settings(settings, demo_dir, shared, catalogue)

    from refine_assets.definitions import build_defs

    defs = build_defs(settings)
    failures: list[str] = []

    def run(
        job: str, partition: str | None = None, config: dict | None = None, expect_blocked: bool = False
    ) -> bool:
        t0 = time.perf_counter()
        result = defs.resolve_job_def(job).execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=False, run_config=config
        )
        label = f"{job}[{partition}]" if partition else job
        if expect_blocked:
            checks = result.get_asset_check_evaluations()
            blocked = any(not c.passed for c in checks)
            if not blocked:
                failures.append(label)
                _say(f"FAILED {label}: expected its blocking check to fail")
            return blocked
        if result.success:
            _say(f"{label} done in {time.perf_counter() - t0:.1f} s")
        else:
            failure = next((e for e in result.all_events if e.is_failure), None)
            failures.append(label)
            _say(f"FAILED {label}: {failure.message if failure else 'failed'}")
        return result.success

    known = set(instance.get_dynamic_partitions("experiment"))
    instance.add_dynamic_partitions("experiment", [e for e in experiments if e not in known])
    surveyed = [acc for acc in experiments if run("survey_job", acc)]
    run("warehouse_job")
    if "HOMO_SAPIENS" in settings.reference_sources.get("transcriptomes", {}) and (
        "HOMO_SAPIENS" in instance.get_dynamic_partitions("organism")
    ):
        for length in ("short", "long"):
            run("transcriptome_index_job", f"{length}|HOMO_SAPIENS")
    for acc in surveyed:
        run("processing_job", acc)
    if shared:
        # RNA-seq from refine.bio's recorded Salmon outputs (refine_assets.demo.recorded.py),
        # then tximport for real
        from refine_assets.demo.recorded import EXPERIMENT, import_recorded_rnaseq

        runs = import_recorded_rnaseq(defs.resources["storage"].get_store(), shared)
        _say(f"{EXPERIMENT}: {len(runs)} recorded salmon outputs imported")
        if EXPERIMENT not in instance.get_dynamic_partitions("experiment"):
            instance.add_dynamic_partitions("experiment", [EXPERIMENT])
        run("tximport_job", EXPERIMENT)
    run("warehouse_job")
    if shared:
        # delivery. QN targets follow refine.bio's rule (>= 100 raw-processed samples). The demo has one
        # raw human array: the human target is built for inspection, flagged and blocked (its check
        # fails, datasets refuse it). Zebrafish has the 20 SRP095529 runs: the demo lowers the minimum
        # to DEMO_MIN_SAMPLES for it, recorded in the target, so the compendium can be built.
        human = run("qn_target_job", "HOMO_SAPIENS", expect_blocked=True)
        if human:
            _say("HOMO_SAPIENS: QN target below the minimum of 100 samples: flagged, check failed, not used")
        qn_config = {"ops": {"qn_target": {"config": {"min_samples": DEMO_MIN_SAMPLES}}}}
        run("qn_target_job", "DANIO_RERIO", qn_config)
        run("compendia_job", "DANIO_RERIO")
        request = {
            "data": {"GSE781": "ALL", "E-MTAB-3050": "ALL"},
            "aggregate_by": "EXPERIMENT",
            "scale_by": "NONE",
            "quantile_normalize": False,  # no usable human QN target (above)
        }
        run("dataset_job", config={"ops": {"dataset": {"config": {"request": json.dumps(request)}}}})
        run("warehouse_job")

    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.sql(
            "SELECT accession, source_database AS source, num_samples AS samples, num_processed AS processed, "
            "num_failed AS failed, num_unsupported AS unsupported, organisms FROM experiment_summary ORDER BY 1"
        ).show(max_width=160)
        if shared:
            con.sql(
                "SELECT dataset_id, num_samples AS samples, num_filtered AS filtered, size, url "
                "FROM datasets ORDER BY created_at DESC LIMIT 1"
            ).show(max_width=160)
            con.sql(
                "SELECT kind, organism, version, num_samples AS samples, num_genes AS genes, "
                "round(percent_imputed, 2) AS pct_imputed, url FROM compendia ORDER BY kind, version"
            ).show(max_width=160)
    _say(f"storage:   {settings.storage_root}")
    _say(f"warehouse: {settings.warehouse_path}  (try: uv run refine-assets status GSE781)")
    _say(
        f"UI:        DAGSTER_HOME={dagster_home} uv run dagster dev -h 127.0.0.1 -p 3000  "
        "then open http://127.0.0.1:3000"
    )
    return 1 if failures else 0
