"""The main job on real demo data, with embedded defaults (local files, DuckDB, local Dagster storage).

Inputs, all real and replayed (the demo never touches the network beyond the package registries):

* from Debian packages (fetched at set-up, see :mod:`refine_assets.demo.data`): GEO series
  GSE781 (family SOFT with 34 submitter-processed MAS5 tables, r-bioc-geoquery), the HG-U95Av2
  probe sequences and probeset annotation (r-bioc-annotationdbi), the org.Hs.eg.db organism package,
  the E-MTAB-1147 reads (r-bioc-shortread) and salmon's example reads and transcripts (salmon);
* the offline reference catalogue built from them (:mod:`refine_assets.demo.references`: Bioconductor
  and Brainarray packages in their real formats, served under their real URLs) and the offline
  RNA-seq example ERP990001 (:mod:`refine_assets.demo.rnaseq`: real reads in real .sra files, an
  Ensembl-format genome excerpt);
* where ``../shared/data`` exists: the recorded ArrayExpress, SRA/ENA and Ensembl responses of its
  ``cassettes/`` folder (E-MTAB-3050, E-GEOD-44719, E-MEXP-2381, SRP068364, SRP048683, ERP108370) and
  the raw array C30057.CEL of E-MTAB-3050.

Steps, each a Dagster run in the instance at ``$DAGSTER_HOME`` (default
``$REFINE_ASSETS_HOME/dagster_home``) so the UI shows everything afterwards: survey every experiment
partition; build the warehouse; process every experiment's samples (the references they need, probe
tables, Brainarray packages, crosswalks, the salmon index, are located in the replayed catalogues and
built on demand, reported as materializations of the reference assets); with the shared data, import
refine.bio's recorded Salmon outputs of SRP095529 (20 zebrafish runs, ``demo/recorded.py``) and run
their tximport; rebuild the warehouse; with the shared data, the QN targets (human blocked below the
minimum, zebrafish under the demo's recorded minimum), a dataset zip of GSE781 + E-MTAB-3050
(``datasets`` table), and the zebrafish compendium and quantpendium (``compendia``). A failing
experiment is reported and does not stop the others; samples that cannot be processed offline are
recorded in the ledger with the reason, or fall back to their submitter-processed table.
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


def demo_settings(settings, demo_dir: Path, shared: Path | None, catalogue=None, rnaseq=None):
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
    if rnaseq is not None:
        rnaseq_catalogue, override = rnaseq
        settings.replay_files.update(rnaseq_catalogue.http_files)
        settings.replay_downloads.update(rnaseq_catalogue.downloads)
        if shared is None:
            # without refine.bio's recorded Ensembl REST answers the genome excerpt is given directly
            settings.reference_sources["transcriptomes"] = override
    return settings


def salmon_examples(shared: Path | None) -> Path | None:
    """salmon's example folder (transcripts and reads): the installed Debian package, else the shared copy."""
    for candidate in (
        Path("/usr/share/doc/salmon/examples"),
        shared / "rnaseq/salmon_example" if shared else None,
    ):
        if candidate is not None and (
            (candidate / "transcripts.fasta").is_file() or (candidate / "transcripts.fasta.gz").is_file()
        ):
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
    rnaseq = None
    examples = salmon_examples(shared)
    if examples is not None:
        from refine_assets.demo.rnaseq import STUDY, build_rnaseq_example

        try:
            rnaseq = build_rnaseq_example(
                demo_dir / "rnaseq",
                examples,
                (demo_dir / "ERR127302_1_subset.fastq.gz", demo_dir / "ERR127302_2_subset.fastq.gz"),
            )
            experiments.append(STUDY)
            _say(f"offline RNA-seq example {STUDY} (real reads in .sra files, Ensembl-format genome excerpt)")
        except RuntimeError as exc:
            _say(f"no RNA-seq example: {exc}")
    if shared:
        experiments += list(SHARED_EXPERIMENTS)
        _say(f"using recorded HTTP responses and raw files from {shared}")
    else:
        _say("no ../shared/data: the Debian-data experiments only")
    settings = demo_settings(settings, demo_dir, shared, catalogue, rnaseq)

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
