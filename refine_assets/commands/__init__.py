"""Subcommands of ``refine-assets`` grouped by domain.

Each module defines ``register(app: typer.Typer) -> None`` that adds its commands to the main app
(``refine_assets/cli.py`` lists the modules). Keep heavy imports inside the command functions so
``refine-assets --help`` stays fast.
"""

from __future__ import annotations

import typer


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` in red on stderr and exit with ``code`` (never returns)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def load_settings():
    """Settings from the environment; a bad variable is a clean CLI error."""
    from refine_assets.settings import Settings

    try:
        return Settings.from_env()
    except ValueError as exc:
        fail(str(exc))


def open_cli_store(root: str | None, settings):
    """The artifact store at ``root`` (default: the settings'), with an S3 client for ``s3://`` roots."""
    from refine_assets.lib.storage import open_store

    root = str(root or settings.storage_root)
    if root.startswith("s3://"):
        import boto3

        return open_store(root, s3_client=boto3.client("s3", endpoint_url=settings.s3_endpoint_url))
    return open_store(root)
