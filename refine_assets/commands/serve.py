"""``refine-assets serve``: the refine.bio-compatible HTTP API (``refine_assets/api``, ``docs/api.md``)."""

from __future__ import annotations

from typing import Annotated

import typer

from refine_assets.commands import fail as _fail


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
        workers: Annotated[int, typer.Option(help="uvicorn worker processes.", min=1)] = 1,
        forwarded_allow_ips: Annotated[
            str | None,
            typer.Option(
                help="Proxies whose X-Forwarded-For is trusted (uvicorn's option; default 127.0.0.1)."
            ),
        ] = None,
    ) -> None:
        """Serve refine.bio's API v1 (search, experiments, samples, datasets, tokens, downloads, ...).

        Reads the warehouse read-only ($REFINE_ASSETS_WAREHOUSE) and the store
        ($REFINE_ASSETS_STORAGE_ROOT); keeps tokens and datasets in $REFINE_ASSETS_API_STATE
        (default $REFINE_ASSETS_HOME/api). Point a refine.bio client at it with
        REFINEBIO_BASE_URL=http://HOST:PORT/v1/. Health: GET /health.
        """
        import uvicorn

        from refine_assets.api.config import ApiConfig, ConfigError

        try:
            config = ApiConfig.from_env()
        except (ConfigError, ValueError) as exc:
            _fail(str(exc))
        config.state_dir.mkdir(parents=True, exist_ok=True)
        uvicorn.run(
            "refine_assets.api.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,  # the app logs requests itself, without tokens or e-mail addresses
            forwarded_allow_ips=forwarded_allow_ips,
            log_level="info",
        )
