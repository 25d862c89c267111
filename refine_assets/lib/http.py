"""The HTTP contract every surveyor and sensor uses, and the replay client for recorded responses.

Surveyors never import httpx: they take any object that satisfies :class:`HttpClient`. Two
implementations exist: :class:`refine_assets.lib.http_live.LiveHttpClient` (httpx, timeouts,
retries with backoff, per-host rate limits) and :class:`ReplayHttpClient`, which serves real
responses recorded as vcrpy cassettes (``interactions: [{request, response}]``, plain or gzipped
YAML) and local files registered for a URL (e.g. a GEO family SOFT file).

Errors: a response whose status is not 2xx raises :class:`HttpStatusError`; a request the replay
has no recording for raises :class:`NotRecordedError`; network failures after all retries raise
:class:`HttpTransportError`. All derive from :class:`HttpError`, whose message names the URL.
"""

from __future__ import annotations

import gzip
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import yaml

# Query parameters that identify the caller, not the resource: ignored when matching recordings.
IGNORED_QUERY_PARAMS = frozenset({"api_key", "tool", "email"})


class HttpError(Exception):
    """Base class of HTTP failures; ``url`` is the request URL."""

    def __init__(self, url: str, message: str):
        self.url = url
        super().__init__(f"{message} ({url})")


class HttpStatusError(HttpError):
    """The server answered with a non-2xx status."""

    def __init__(self, url: str, status: int, body: str = ""):
        self.status = status
        self.body = body
        super().__init__(url, f"HTTP {status}")


class HttpTransportError(HttpError):
    """No usable answer: connection error or timeout, after all retries."""


class NotRecordedError(HttpError):
    """Replay only: no recorded response for this request."""


@dataclass
class HttpResponse:
    """A response: final URL, status, headers (lower-case keys) and the body."""

    url: str
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced; GEO and ENA answer in UTF-8)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        import json

        return json.loads(self.content)


@runtime_checkable
class HttpClient(Protocol):
    """What surveyors need from HTTP. ``get``/``post`` raise :class:`HttpError` unless 2xx."""

    def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse: ...

    def post(
        self, url: str, data: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> HttpResponse: ...

    def head(self, url: str) -> HttpResponse: ...


def build_url(url: str, params: Mapping[str, str] | None = None) -> str:
    """``url`` with ``params`` appended to its query string (in the given order)."""
    if not params:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, str(v)) for k, v in params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def request_key(method: str, url: str, body: str | None = None) -> tuple[str, str, str, str]:
    """Normalized identity of a request: method, host, path and sorted query (caller ids dropped).

    The scheme is not part of the key (recordings hold both http and https for one resource); a
    trailing slash on the path is ignored; for POST the sorted form body is part of the key.
    """
    parts = urlsplit(url)
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in IGNORED_QUERY_PARAMS
    )
    body_key = ""
    if body:
        body_key = urlencode(sorted(parse_qsl(body, keep_blank_values=True)))
    return (method.upper(), parts.netloc.lower(), parts.path.rstrip("/") or "/", urlencode(query) + body_key)


@dataclass
class _Recording:
    status: int
    content: bytes
    headers: dict[str, str]


def _read_yaml(path: Path) -> dict:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        doc = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not a readable vcrpy cassette: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("interactions"), list):
        raise ValueError(f"{path}: not a vcrpy cassette (no 'interactions' list)")
    return doc


class ReplayHttpClient:
    """Serves recorded real responses; never touches the network.

    Built from vcrpy cassettes and/or files registered for a URL. When one request was recorded
    several times the recordings are served in order and the last one repeats. A recorded
    redirect (3xx with ``Location``) is followed like a live client would. Unknown requests raise
    :class:`NotRecordedError`; recorded error statuses raise :class:`HttpStatusError` as live.
    """

    def __init__(
        self,
        cassettes: list[str | Path] | tuple[str | Path, ...] = (),
        files: Mapping[str, str | Path] | None = None,
    ):
        self._recordings: dict[tuple, list[_Recording]] = defaultdict(list)
        self._served: dict[tuple, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (method, url) of every request answered
        for cassette in cassettes:
            self.add_cassette(cassette)
        for url, path in (files or {}).items():
            self.add_file(url, path)

    def add_cassette(self, path: str | Path) -> None:
        """Load every interaction of a vcrpy cassette (plain or gzipped YAML)."""
        doc = _read_yaml(Path(path))
        for interaction in doc["interactions"]:
            req, resp = interaction["request"], interaction["response"]
            body = resp.get("body") or {}
            content = body.get("string", b"")
            if content is None:
                content = b""
            if isinstance(content, str):
                content = content.encode("utf-8")
            headers = {
                k.lower(): (v[0] if isinstance(v, list) and v else v)
                for k, v in (resp.get("headers") or {}).items()
            }
            if headers.get("content-encoding", "").lower() == "gzip" and content[:2] == b"\x1f\x8b":
                # vcrpy stores the wire bytes; a live client hands surveyors the decoded body.
                content = gzip.decompress(content)
                headers.pop("content-encoding")
            req_body = req.get("body")
            if isinstance(req_body, bytes):
                req_body = req_body.decode("utf-8", errors="replace")
            key = request_key(req["method"], req["uri"], req_body)
            self._recordings[key].append(_Recording(int(resp["status"]["code"]), content, headers))

    def add_file(self, url: str, path: str | Path) -> None:
        """Answer GET ``url`` with the bytes of a local file (status 200), and HEAD ``url`` with its
        ``content-length`` (what a server holding the file answers)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"replay file not found: {p}")
        self._recordings[request_key("GET", url)].append(_Recording(200, p.read_bytes(), {}))
        head = {"content-length": str(p.stat().st_size)}
        self._recordings[request_key("HEAD", url)].append(_Recording(200, b"", head))

    def add_response(
        self,
        method: str,
        url: str,
        status: int,
        content: bytes | str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Register one response by hand (tests of error paths)."""
        if isinstance(content, str):
            content = content.encode()
        self._recordings[request_key(method, url)].append(_Recording(status, content, dict(headers or {})))

    def recorded_urls(self) -> list[tuple[str, str, str, str]]:
        return list(self._recordings)

    def _serve(self, method: str, url: str, body: str | None = None, _hops: int = 0) -> HttpResponse:
        key = request_key(method, url, body)
        with self._lock:
            recs = self._recordings.get(key)
            if not recs:
                raise NotRecordedError(url, f"no recorded response for {method.upper()}")
            idx = min(self._served[key], len(recs) - 1)
            self._served[key] += 1
            rec = recs[idx]
            self.requests.append((method.upper(), url))
        if 300 <= rec.status < 400 and "location" in rec.headers and _hops < 5:
            return self._serve(method, urljoin(url, rec.headers["location"]), body, _hops + 1)
        if not 200 <= rec.status < 300:
            raise HttpStatusError(url, rec.status, rec.content.decode("utf-8", errors="replace")[:500])
        return HttpResponse(url=url, status=rec.status, content=rec.content, headers=dict(rec.headers))

    def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse:
        return self._serve("GET", build_url(url, params))

    def post(
        self, url: str, data: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> HttpResponse:
        body = urlencode(list((data or {}).items())) if data else None
        return self._serve("POST", build_url(url, params), body)

    def head(self, url: str) -> HttpResponse:
        return self._serve("HEAD", url)
