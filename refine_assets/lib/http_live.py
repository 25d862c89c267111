"""The live :class:`~refine_assets.lib.http.HttpClient`: httpx with timeouts, retries and per-host rate limits.

Behaviour (the contract surveyors and sensors rely on):

* Redirects are followed; ``Content-Encoding: gzip``/``deflate`` bodies are decoded, so
  :attr:`HttpResponse.content` is always the resource itself (a served ``.gz`` *file* stays gzipped).
* Transient failures are retried with exponential backoff plus jitter: statuses 429, 500, 502, 503,
  504 and transport errors (connection refused/reset, timeouts). A ``Retry-After`` header (seconds or
  an HTTP date) replaces the computed delay. Any other non-2xx status raises
  :class:`~refine_assets.lib.http.HttpStatusError` at once; when retries are exhausted the last status
  raises ``HttpStatusError`` and the last transport failure raises
  :class:`~refine_assets.lib.http.HttpTransportError`.
* Requests are rate limited per host (a thread-safe "next free slot" per host, so concurrent threads
  share one budget). NCBI asks for at most 3 requests/s per client without an API key and 10/s with
  one (https://www.ncbi.nlm.nih.gov/books/NBK25497/, "Usage Guidelines and Requirements"); that limit
  applies to ``eutils``, ``www`` and ``ftp.ncbi.nlm.nih.gov``. Extra limits come from ``rate_limits``.
* E-utilities requests (host ``eutils.ncbi.nlm.nih.gov``) get ``tool=refine-assets`` and, when
  configured, ``api_key`` and ``email`` appended, as NCBI requests. No other host receives them: the
  API key is a credential, and E-utilities is the only NCBI service that reads these parameters.
  Parameters the caller already set are never overridden.
* Every request carries a polite ``User-Agent`` naming the project and the contact address.

``sleep`` and ``clock`` are injectable so tests can run retries and rate limits on a fake clock.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from urllib.parse import parse_qsl, urlsplit

import httpx

from refine_assets.lib.http import (
    HttpResponse,
    HttpStatusError,
    HttpTransportError,
    build_url,
)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
NCBI_HOSTS = frozenset({"eutils.ncbi.nlm.nih.gov", "www.ncbi.nlm.nih.gov", "ftp.ncbi.nlm.nih.gov"})
EUTILS_HOST = "eutils.ncbi.nlm.nih.gov"
NCBI_RATE_WITHOUT_KEY = 3.0  # requests per second
NCBI_RATE_WITH_KEY = 10.0
TOOL_NAME = "refine-assets"
PROJECT_URL = "https://github.com/refine-assets"


def _package_version() -> str:
    try:
        return metadata.version("refine-assets")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def default_user_agent(email_address: str | None = None) -> str:
    """``refine-assets/<version> (+https://github.com/refine-assets; mailto:<email>)``.

    The ``mailto:`` part is left out when no address is configured.
    """
    contact = f"+{PROJECT_URL}" + (f"; mailto:{email_address}" if email_address else "")
    return f"{TOOL_NAME}/{_package_version()} ({contact})"


class HostRateLimiter:
    """Per-host minimum spacing between request starts; safe to share between threads.

    ``acquire(host)`` reserves the next free slot for ``host`` under a lock (slot = max(now, previous
    slot + 1/rate)) and then sleeps, outside the lock, until that slot. Hosts without a rate are not
    limited. ``clock`` must be monotonic and ``sleep`` must advance it (a fake pair in tests).
    """

    def __init__(
        self,
        rates: Mapping[str, float],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        for host, rate in rates.items():
            if rate <= 0:
                raise ValueError(f"rate limit for {host} must be > 0 requests/s, got {rate}")
        self._rates = {host.lower(): float(rate) for host, rate in rates.items()}
        self._clock = clock
        self._sleep = sleep
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def rate_for(self, host: str) -> float | None:
        """Requests per second allowed for ``host`` (None: unlimited)."""
        return self._rates.get(host.lower())

    def acquire(self, host: str) -> float:
        """Wait for a slot for ``host``; returns the seconds waited (0.0 when not limited)."""
        rate = self.rate_for(host)
        if rate is None:
            return 0.0
        key = host.lower()
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot.get(key, now))
            self._next_slot[key] = slot + 1.0 / rate
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class LiveHttpClient:
    """HTTP over the network with retries, backoff and per-host rate limits (see the module docstring).

    Args:
        user_agent: the ``User-Agent`` header; default :func:`default_user_agent` with ``email``.
        timeout: seconds for connect/read/write/pool, per attempt.
        max_retries: retries after the first attempt (total attempts = ``max_retries + 1``).
        backoff: base delay; attempt *n* (1-based) waits ``backoff * 2**(n-1)`` times a jitter factor
            in [1, 1.25), capped at ``max_wait``; a ``Retry-After`` header replaces it (also capped).
        ncbi_api_key: NCBI API key: raises the NCBI rate to 10/s and is appended to E-utilities calls.
        email: contact address for the User-Agent and NCBI's ``email`` parameter.
        rate_limits: extra or overriding ``{host: requests_per_second}``.
        sleep, clock: injectable time (``clock`` monotonic seconds; ``sleep`` must advance it).
        rng: random source for the jitter.
        proxy: optional HTTP proxy URL passed to httpx.
        max_wait: upper bound of a single backoff sleep, seconds.

    Raises (from ``get``/``post``/``head``): :class:`HttpStatusError` for non-2xx answers,
    :class:`HttpTransportError` when no answer came after all attempts.
    """

    def __init__(
        self,
        user_agent: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        ncbi_api_key: str | None = None,
        email: str | None = None,
        rate_limits: Mapping[str, float] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        proxy: str | None = None,
        max_wait: float = 300.0,
    ):
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.user_agent = user_agent or default_user_agent(email)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.ncbi_api_key = ncbi_api_key or None
        self.email = email or None
        self.max_wait = max_wait
        self._sleep = sleep
        self._rng = rng or random.Random()
        ncbi_rate = NCBI_RATE_WITH_KEY if self.ncbi_api_key else NCBI_RATE_WITHOUT_KEY
        rates: dict[str, float] = dict.fromkeys(NCBI_HOSTS, ncbi_rate)
        rates.update({h.lower(): r for h, r in (rate_limits or {}).items()})
        self.rate_limiter = HostRateLimiter(rates, clock=clock, sleep=sleep)
        self.attempts = 0  # requests actually sent (including retries and redirect hops)
        self._attempts_lock = threading.Lock()
        self._client = httpx.Client(
            follow_redirects=True,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": self.user_agent},
            proxy=proxy,
            event_hooks={"request": [self._before_send]},
        )

    # -- httpx hook: runs for every request sent, redirect hops included ------------------------
    def _before_send(self, request: httpx.Request) -> None:
        self.rate_limiter.acquire(request.url.host)
        with self._attempts_lock:
            self.attempts += 1

    def _caller_params(self, url: str, params: Mapping[str, str] | None) -> dict[str, str]:
        """``params`` plus tool/api_key/email for E-utilities URLs (never overriding the caller's)."""
        merged = {k: str(v) for k, v in (params or {}).items()}
        if (urlsplit(url).hostname or "").lower() != EUTILS_HOST:
            return merged
        present = {k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)} | set(merged)
        extra = {"tool": TOOL_NAME, "api_key": self.ncbi_api_key, "email": self.email}
        for name, value in extra.items():
            if value and name not in present:
                merged[name] = value
        return merged

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                return min(retry_after, self.max_wait)
        base = self.backoff * (2 ** (attempt - 1))
        return min(base * (1.0 + 0.25 * self._rng.random()), self.max_wait)

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Send one logical request (with retries). ``params`` go to the query string, ``data`` is a form body."""
        full_url = build_url(url, self._caller_params(url, params))
        last_error: Exception | None = None
        for attempt in range(1, self.max_retries + 2):
            response: httpx.Response | None = None
            try:
                response = self._client.request(method, full_url, data=dict(data) if data else None)
            except httpx.TransportError as exc:  # connect/read/write errors and timeouts
                last_error = exc
            else:
                if 200 <= response.status_code < 300:
                    headers = {k.lower(): v for k, v in response.headers.items()}
                    headers.pop("content-encoding", None)  # the body handed out is decoded
                    return HttpResponse(
                        url=str(response.url),
                        status=response.status_code,
                        content=response.content,
                        headers=headers,
                    )
                if response.status_code not in RETRY_STATUSES:
                    raise HttpStatusError(str(response.url), response.status_code, response.text[:500])
                last_error = HttpStatusError(str(response.url), response.status_code, response.text[:500])
            if attempt <= self.max_retries:
                self._sleep(self._delay(attempt, response))
        attempts = self.max_retries + 1
        if isinstance(last_error, HttpStatusError):
            raise last_error
        raise HttpTransportError(
            full_url, f"{type(last_error).__name__}: {last_error} after {attempts} attempt(s)"
        ) from last_error

    def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse:
        return self.request("GET", url, params=params)

    def post(
        self, url: str, data: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> HttpResponse:
        return self.request("POST", url, params=params, data=data)

    def head(self, url: str) -> HttpResponse:
        return self.request("HEAD", url)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> LiveHttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
