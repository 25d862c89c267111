"""The ASGI application: services (snapshots, store, API state, builder, signer), middleware, errors.

:func:`create_app` builds a Starlette app for an :class:`~refine_assets.api.config.ApiConfig`;
:func:`create_app_from_env` is the uvicorn factory ``refine-assets serve`` runs (one app per worker
process). Handlers in :mod:`refine_assets.api.routes` are synchronous and run in Starlette's thread
pool, each with its own DuckDB cursor on the current warehouse snapshot.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from refine_assets.api.builds import Builder
from refine_assets.api.config import ApiConfig
from refine_assets.api.downloads import Signer
from refine_assets.api.errors import (
    SERVER_ERROR_BODY,
    ApiError,
    method_not_allowed,
    parse_error,
    path_not_found,
)
from refine_assets.api.middleware import AccessLogMiddleware, RateLimitMiddleware
from refine_assets.api.params import Query
from refine_assets.api.snapshot import Snapshots, WarehouseUnavailable
from refine_assets.api.state import StateStore
from refine_assets.lib.storage import ArtifactStore

log = logging.getLogger("refine_assets.api")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        from refine_assets.api.render import iso

        return iso(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class ApiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, default=_default, separators=(",", ":")
        ).encode()


@dataclass
class Services:
    """What handlers use; one per worker process."""

    config: ApiConfig
    store: ArtifactStore
    state: StateStore
    snapshots: Snapshots
    builder: Builder
    signer: Signer


@dataclass
class Req:
    """The parts of a request a handler needs."""

    query: Query
    params: dict[str, str]
    headers: Any
    body: Any
    base_url: str
    url: str  # absolute URL of the path, without query (for next/previous links)

    @property
    def api_key(self) -> str | None:
        return self.headers.get("api-key") or None


Handler = Callable[[Services, Req], Any]


def endpoint(services: Services, handler: Handler, status: int = 200):
    """Wrap a synchronous handler: parse JSON bodies, map ApiError to refine.bio bodies, run in a thread."""

    async def run(request: Request) -> Response:
        body = None
        if request.method in ("POST", "PUT"):
            raw = await request.body()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    return _error(parse_error(str(exc)))
            else:
                body = {}
        base = services.config.base_url or str(request.base_url).rstrip("/")
        req = Req(
            Query(request.query_params.multi_items()),
            dict(request.path_params),
            request.headers,
            body,
            base,
            f"{base}{request.url.path}",
        )
        try:
            result = await run_in_threadpool(handler, services, req)
        except ApiError as exc:
            return _error(exc)
        except WarehouseUnavailable as exc:
            return ApiJSONResponse({"detail": f"warehouse unavailable: {exc}"}, status_code=503)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return ApiJSONResponse(SERVER_ERROR_BODY, status_code=500)
        if isinstance(result, Response):
            return result
        return ApiJSONResponse(result, status_code=status)

    return run


def _error(exc: ApiError) -> Response:
    return ApiJSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


async def _not_found(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 405:
        return _error(method_not_allowed(request.method))
    if exc.status_code == 404:
        return _error(path_not_found(request.url.path))
    return ApiJSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def open_services(config: ApiConfig) -> Services:
    from refine_assets.commands import open_cli_store
    from refine_assets.settings import Settings

    settings = Settings(
        home=config.state_dir.parent,
        storage_root=config.storage_root,
        warehouse_path=config.warehouse_path,
        s3_endpoint_url=config.s3_endpoint_url,
    )
    store = open_cli_store(config.storage_root, settings)
    state = StateStore(config.state_dir)
    snapshots = Snapshots(config.warehouse_path, store.root_url, config.snapshot_check_seconds)
    builder = Builder(state, store, config.warehouse_path, config.build_mode)
    return Services(config, store, state, snapshots, builder, Signer(state.secret(), config.download_ttl))


def create_app(config: ApiConfig) -> Starlette:
    from refine_assets.api.routes import route_table

    services = open_services(config)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        services.builder.shutdown()
        services.snapshots.close()

    app = Starlette(
        routes=route_table(services, endpoint),
        exception_handlers={404: _not_found, 405: _not_found},
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(RateLimitMiddleware, rate=config.rate_per_second),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app


def create_app_from_env() -> Starlette:
    """uvicorn factory: configuration from the environment (``refine_assets/api/config.py``).

    ``kill -USR1 <worker pid>`` writes every thread's stack to stderr (diagnosing a stuck request).
    """
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(ApiConfig.from_env())


def redirect_to_v1(request: Request) -> Response:
    return RedirectResponse(url="/v1/")


__all__ = ["ApiJSONResponse", "Req", "Services", "create_app", "create_app_from_env"]
