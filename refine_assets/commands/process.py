"""``refine-assets process ACCESSION``: survey (if needed), provision references, process, load the warehouse.

Everything runs through the same Dagster definitions the UI uses (``refine_assets.definitions``), as
runs in the local instance (``$DAGSTER_HOME``, default ``$REFINE_ASSETS_HOME/dagster_home``), so the UI
shows them afterwards:

1. ``survey_job[ACC]`` when the experiment has no survey in storage yet;
2. ``processing_job[ACC]`` (every sample on its own; missing references are located in the public
   catalogues, downloaded and built on the way, and reported as materializations of the reference
   assets);
3. ``warehouse_job``.

``--replay`` switches the HTTP client to recorded responses: cassette files or folders, GEO family SOFT
files (served as the accession's family SOFT), and reference catalogue folders (a ``catalogue.json``
mapping URLs to files, as ``refine-assets demo`` writes under ``demo_data/catalogue``). ``--files DIR``
serves local copies of original files matched by file name before any download.

Output: one JSON object on stdout ``{"accession", "samples", "processed", "failed", "unsupported",
"pending", "reasons": {reason: count}, "runs": {...}}``; exit 0 when the runs completed (sample
failures included), 1 with a one-line error otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail, load_settings


def apply_replay(settings, accession: str, replay: list[Path]) -> None:
    """Switch ``settings`` to replay mode with the given cassettes, SOFT files and catalogue folders."""
    import gzip

    from refine_assets.lib.survey.geo import family_soft_url
    from refine_assets.settings import expand_cassettes

    settings.http_mode = "replay"
    for path in replay:
        if not path.exists():
            fail(f"--replay {path}: no such file or folder")
        if path.is_dir() and (path / "catalogue.json").is_file():
            try:
                catalogue = json.loads((path / "catalogue.json").read_text())
                settings.replay_files.update(catalogue["http_files"])
                settings.replay_downloads.update(catalogue["downloads"])
            except (ValueError, KeyError) as exc:
                fail(f"--replay {path}/catalogue.json: not a reference catalogue ({exc})")
            continue
        if path.is_dir():
            settings.replay_cassettes.extend(expand_cassettes([str(path)]))
            continue
        head = path.read_bytes()[:4096]
        if head[:2] == b"\x1f\x8b":
            try:
                with gzip.open(path, "rb") as fh:
                    head = fh.read(4096)
            except OSError as exc:
                fail(f"--replay {path}: unreadable gzip file ({exc})")
        if head.lstrip().startswith(b"^"):
            settings.replay_files[family_soft_url(accession)] = str(path)
        else:
            settings.replay_cassettes.append(str(path))


def process_accession(settings, accession: str, *, log=lambda _m: None) -> dict:
    """Run survey (if needed), processing and the warehouse for ``accession``; returns the summary.

    Raises ``RuntimeError`` naming the run that failed (not a sample failure: those are in the summary).
    """
    from refine_assets.definitions import build_defs
    from refine_assets.lib.processing.framework import read_ledger
    from refine_assets.lib.processing.inputs import load_sample_inputs
    from refine_assets.lib.processing.summary import processing_summary
    from refine_assets.local_instance import local_dagster_instance

    instance = local_dagster_instance(settings.home)
    defs = build_defs(settings)
    store = defs.resources["storage"].get_store()
    runs: dict[str, str] = {}

    def run(job: str, partition: str | None = None) -> None:
        result = defs.resolve_job_def(job).execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=False
        )
        runs[job] = result.run_id
        if not result.success:
            failure = next((e for e in result.all_events if e.is_failure), None)
            message = (failure.message if failure else "failed").strip().splitlines()[0]
            raise RuntimeError(f"{job}[{partition or ''}] failed: {message}")
        log(f"{job}[{partition or ''}] done")

    if accession not in instance.get_dynamic_partitions("experiment"):
        instance.add_dynamic_partitions("experiment", [accession])
    if not store.exists(f"surveys/{accession}/manifest.json"):
        run("survey_job", accession)
    run("processing_job", accession)
    run("warehouse_job")
    samples = [s.accession for s in load_sample_inputs(store, accession)]
    summary = processing_summary(accession, samples, read_ledger(store, accession))
    summary["runs"] = runs
    return summary


def register(app: typer.Typer) -> None:
    """Add ``process`` to ``app``."""

    @app.command("process")
    def process(
        accession: Annotated[str, typer.Argument(help="GSE..., E-XXXX-n or SRP/ERP/DRP accession")],
        replay: Annotated[
            list[Path] | None,
            typer.Option(
                "--replay",
                help="Recorded responses instead of the network: a vcrpy cassette, a folder of cassettes, a "
                "GEO family SOFT file, or a reference catalogue folder (with catalogue.json). Repeatable.",
            ),
        ] = None,
        files: Annotated[
            Path | None,
            typer.Option("--files", help="Folder of local copies of original files, matched by file name."),
        ] = None,
    ) -> None:
        """Survey (if needed), provision references, process every sample and load the warehouse.

        Prints one JSON object (x of y processed, and why not) and exits 0 when the runs completed.
        """
        from refine_assets.lib.survey.model import SurveyError
        from refine_assets.lib.survey.pipeline import source_for_accession
        from refine_assets.settings import local_files_in

        accession = accession.strip()
        try:
            source_for_accession(accession)
        except SurveyError as exc:
            fail(str(exc))
        settings = load_settings()
        if replay:
            apply_replay(settings, accession, replay)
        if files is not None:
            try:
                settings.local_files.update(local_files_in(files))
            except ValueError as exc:
                fail(f"--files {exc}")
        try:
            summary = process_accession(
                settings, accession, log=lambda m: typer.echo(f"[refine-assets process] {m}", err=True)
            )
        except (RuntimeError, FileNotFoundError) as exc:
            fail(str(exc))
        sys.stdout.write(json.dumps(summary, indent=1) + "\n")
