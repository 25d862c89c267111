"""Request logging without secrets, and a per-client rate limit (pure ASGI middleware).

Access log (logger ``refine_assets.api.access``, one line per request): client address, method, path,
query, status, duration. Token ids in paths (``/v1/token/<id>/``), and the values of ``email_address``,
``token``, ``token_id``, ``api_key``, ``signature`` and of any parameter containing ``@`` are replaced
by ``<redacted>``; request headers (``API-KEY``) and bodies (e-mail addresses) are never logged.

Rate limit: a token bucket per client address and worker process (refine.bio throttled anonymous
clients to 10 requests/second with DRF's ``AnonRateThrottle``); over the limit the answer is refine.bio's
429 body with ``Retry-After``. ``/health`` is exempt. With several uvicorn workers each has its own
buckets, so the effective limit is at most workers x rate; behind a proxy run uvicorn with
``--forwarded-allow-ips`` so the client address is the real one.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from urllib.parse import parse_qsl, urlencode

from refine_assets.api.errors import throttled

access_log = logging.getLogger("refine_assets.api.access")

SECRET_PARAMS = {"email_address", "token", "token_id", "api_key", "signature"}
_TOKEN_PATH = re.compile(r"(/token/)[^/]+")


def redact(path: str, query: str) -> str:
    """The request target with secrets replaced by ``<redacted>``."""
    path = _TOKEN_PATH.sub(r"\1<redacted>", path)
    if not query:
        return path
    items = [
        (k, "<redacted>" if k.lower() in SECRET_PARAMS or "@" in v else v)
        for k, v in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{path}?{urlencode(items, safe='<>')}"


def _client(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "-"


class AccessLogMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            target = redact(scope.get("path", ""), scope.get("query_string", b"").decode("latin-1"))
            access_log.info(
                '%s "%s %s" %d %.1fms',
                _client(scope),
                scope.get("method", "-"),
                target,
                status["code"],
                (time.perf_counter() - start) * 1000,
            )


class RateLimitMiddleware:
    """Token bucket per client: ``rate`` requests/second, bursts up to ``max(1, rate)``."""

    def __init__(self, app, rate: float, exempt: tuple[str, ...] = ("/health",)):
        self.app = app
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.exempt = exempt
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _take(self, client: str) -> float:
        """0 when allowed, else the seconds until a request is allowed."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                if len(self._buckets) > 100_000:  # forget idle clients
                    self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.rate <= 0 or scope.get("path") in self.exempt:
            return await self.app(scope, receive, send)
        wait = self._take(_client(scope))
        if wait <= 0:
            return await self.app(scope, receive, send)
        err = throttled(max(1, math.ceil(wait)))
        body = json.dumps(err.body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
