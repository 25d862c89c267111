"""The ``refine-assets`` command line (``refine-assets --help``; every subcommand has ``--help``)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from refine_assets.commands import fail as _fail
from refine_assets.commands import open_cli_store


class _QuickHelpGroup(TyperGroup):
    """A command group whose own ``--help`` flag defaults to ``False`` rather than ``None``.

    typer converts every parameter value through pydantic unless it is already a bool; the group's
    unused ``--help`` (``None``) was the one value that imported pydantic (~0.2-0.4 s) on the way to
    a subcommand's ``--help``.
    """

    def get_help_option(self, ctx: typer.Context) -> typer.core.TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


# Plain help (click's formatter): typer's rich help imports rich, markdown-it and pygments (~0.5 s)
# before printing anything. With it and the group above, ``--help`` of every command imports
# neither rich nor pydantic nor any command's libraries (they are imported inside the commands).
app = typer.Typer(
    name="refine-assets",
    cls=_QuickHelpGroup,
    help="Harmonized gene expression from GEO, ArrayExpress and SRA, as a Dagster asset graph.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def replay_client_for(accession: str, replay: list[Path]):
    """A replay client from cassettes, cassette folders and GEO SOFT files.

    A file whose name ends in ``.soft``/``.soft.gz`` (or ``.txt(.gz)`` starting with ``^``) is served
    as the GEO family SOFT of ``accession``; folders contribute all their cassettes.
    """
    import gzip

    from refine_assets.lib.http import ReplayHttpClient
    from refine_assets.settings import expand_cassettes

    client = ReplayHttpClient()
    for path in replay:
        if not path.exists():
            _fail(f"--replay {path}: no such file or folder")
        if path.is_dir():
            for cassette in expand_cassettes([str(path)]):
                client.add_cassette(cassette)
            continue
        head = path.read_bytes()[:4096]
        if head[:2] == b"\x1f\x8b":
            try:
                with gzip.open(path, "rb") as fh:
                    head = fh.read(4096)
            except OSError as exc:
                _fail(f"--replay {path}: unreadable gzip file ({exc})")
        if head.lstrip().startswith(b"^"):
            from refine_assets.lib.survey.geo import family_soft_url

            client.add_file(family_soft_url(accession), path)
        else:
            try:
                client.add_cassette(path)
            except ValueError as exc:
                _fail(str(exc))
    return client


@app.command()
def survey(
    accession: Annotated[str, typer.Argument(help="GSE..., E-XXXX-n, or SRP/ERP/DRP (or a run SRR/ERR/DRR)")],
    replay: Annotated[
        list[Path] | None,
        typer.Option(
            "--replay",
            help="Serve recorded responses instead of the network: a vcrpy cassette (YAML, .gz ok), a folder "
            "of cassettes, or a GEO family SOFT file. Repeatable.",
        ),
    ] = None,
    warehouse: Annotated[
        Path | None, typer.Option(help="DuckDB warehouse to load into (default: $REFINE_ASSETS_WAREHOUSE)")
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Artifact store root: path or s3://bucket/prefix (default: settings)")
    ] = None,
) -> None:
    """Survey one experiment into storage (Parquet) and load it into the DuckDB warehouse."""
    from refine_assets.lib.survey.model import SurveyError
    from refine_assets.lib.survey.pipeline import run_survey
    from refine_assets.lib.warehouse import build_warehouse
    from refine_assets.settings import Settings

    settings = Settings.from_env()
    store = open_cli_store(storage, settings)
    if replay:
        client = replay_client_for(accession, replay)
    else:
        from refine_assets.lib.http_live import LiveHttpClient

        client = LiveHttpClient(ncbi_api_key=settings.ncbi_api_key, email=settings.ncbi_email)
    try:
        manifest = run_survey(accession, client, store)
    except SurveyError as exc:
        _fail(str(exc))
    db = (warehouse or settings.warehouse_path).resolve()
    report = build_warehouse(db, store, [manifest.accession])
    typer.echo(
        json.dumps(
            {
                "accession": manifest.accession,
                "manifest": manifest.url,
                "warehouse": str(db),
                "summary": manifest.summary,
                "warnings": manifest.warnings,
                "warehouse_rows": report.row_counts,
            },
            indent=1,
        )
    )


@app.command("warehouse")
def warehouse_query(
    path: Annotated[Path, typer.Argument(help="DuckDB warehouse file")],
    sql: Annotated[str, typer.Option("--sql", help="SQL to run (read-only connection)")] = (
        "SELECT * FROM experiment_summary"
    ),
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Run read-only SQL against the warehouse (tables and views: see sql/ and the README)."""
    import duckdb

    if not path.exists():
        _fail(f"{path}: no warehouse there (run a survey or the demo first)")
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            rel = con.sql(sql)
        except duckdb.Error as exc:
            _fail(f"SQL failed: {exc}")
        if rel is None:
            return
        if fmt == "table":
            rel.show(max_rows=200, max_width=200)
        elif fmt == "csv":
            df = rel.pl()
            sys.stdout.write(df.write_csv())
        elif fmt == "json":
            typer.echo(json.dumps(rel.pl().to_dicts(), indent=1, default=str))
        else:
            _fail("--format must be table, csv or json")


@app.command()
def status(
    accession: Annotated[str, typer.Argument(help="experiment accession")],
    warehouse: Annotated[Path | None, typer.Option(help="warehouse file (default: settings)")] = None,
) -> None:
    """'x of y samples processed, and why not' for one experiment, from the warehouse."""
    import duckdb

    from refine_assets.settings import Settings

    db = warehouse or Settings.from_env().warehouse_path
    if not Path(db).exists():
        _fail(f"{db}: no warehouse there")
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT num_samples, num_processed, num_failed, num_unsupported, num_pending "
            "FROM experiment_summary WHERE accession = ?",
            [accession],
        ).fetchone()
        if row is None:
            _fail(f"{accession}: not in the warehouse")
        rows = con.execute(
            "SELECT sample_accession, status, coalesce(last_step, pipeline), coalesce(reason, '') "
            "FROM sample_status WHERE experiment_accession = ?",
            [accession],
        ).fetchall()
    n, done, failed, unsupported, pending = row
    typer.echo(
        f"{accession}: {done} of {n} samples processed "
        f"({failed} failed, {unsupported} unsupported, {pending} pending)"
    )
    groups: dict[tuple[str, str, str], int] = {}
    for sample, st, step, reason in rows:
        generic = re.sub(r"\S+://\S+", "<url>", reason.replace(sample, "<sample>"))
        generic = re.sub(r"(GSM|SRR|ERR|DRR)\d+", r"\1…", generic)
        key = (st, str(step).lower(), generic)
        groups[key] = groups.get(key, 0) + 1
    for (st, step, reason), count in sorted(groups.items(), key=lambda kv: -kv[1])[:15]:
        typer.echo(f"  {count:6d}  {st:11s} {step:12s} {reason}")
    if len(groups) > 15:
        typer.echo(f"  ... {len(groups) - 15} more kinds of outcome (see the sample_status view)")


@app.command("fetch-demo-data")
def fetch_demo_data_cmd(
    dest: Annotated[Path | None, typer.Option(help="folder (default: $REFINE_ASSETS_HOME/demo_data)")] = None,
) -> None:
    """Download the real demo inputs from Debian packages (apt-get download + dpkg-deb -x)."""
    from refine_assets.demo.data import DemoDataError, fetch_demo_data
    from refine_assets.settings import Settings

    dest = dest or Settings.from_env().home / "demo_data"
    try:
        records = fetch_demo_data(dest)
    except DemoDataError as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"folder": str(dest), "files": records}, indent=1))


@app.command()
def demo(
    shared_data: Annotated[
        Path | None,
        typer.Option(
            help="extra real data (default: $REFINE_ASSETS_SHARED_DATA or ../shared/data if present)"
        ),
    ] = None,
) -> None:
    """The main job: survey real demo experiments (replayed, no network) and build the warehouse.

    Materializes through Dagster into the instance at $DAGSTER_HOME (default
    $REFINE_ASSETS_HOME/dagster_home), so the UI shows every partition afterwards.
    """
    from refine_assets.demo import run_demo

    sys.exit(run_demo(shared_data))


@app.command("asset-graph")
def asset_graph() -> None:
    """Print the asset graph as a Mermaid diagram (the README's picture is this output)."""
    from refine_assets.definitions import build_defs
    from refine_assets.graph_diagram import asset_graph_mermaid

    typer.echo(asset_graph_mermaid(build_defs()), nl=False)


# Domain command modules (each has ``register(app)``); see refine_assets/commands/__init__.py.
COMMAND_MODULES: tuple[str, ...] = (
    "cel",
    "compendia",
    "convert",
    "delivery",
    "illumina",
    "process",
    "qn",
    "references",
    "scan",
    "serve",
    "tximport",
)


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"refine_assets.commands.{name}").register(app)
    for group in app.registered_groups:  # sub-apps (``references``) render help like the main app
        if group.typer_instance is not None:
            group.typer_instance.rich_markup_mode = app.rich_markup_mode
            group.typer_instance.info.cls = _QuickHelpGroup


_register_commands()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
