"""Subcommands of ``refine-assets`` grouped by domain.

Each module defines ``register(app: typer.Typer) -> None`` that adds its commands to the main app
(``refine_assets/cli.py`` lists the modules). Keep heavy imports inside the command functions so
``refine-assets --help`` stays fast.
"""
