"""LiveHttpClient against a real HTTP server on 127.0.0.1 (no internet).

The server is a ``ThreadingHTTPServer`` in a thread. It also acts as a plain HTTP forward proxy
(requests in absolute form), so requests to ``http://eutils.ncbi.nlm.nih.gov/...`` reach it when the
client is given ``proxy=``: that exercises the NCBI host rules (rate limit, E-utilities parameters)
without leaving the machine. Retries and rate limits run on a fake clock.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pytest

from refine_assets.lib.http import HttpClient, HttpStatusError, HttpTransportError, NotRecordedError
from refine_assets.lib.http_live import HostRateLimiter, LiveHttpClient, default_user_agent, parse_retry_after
from refine_assets.resources import HttpClientResource, LiveHttpResource, ReplayHttpResource

GZIP_PAYLOAD = b"!Series_geo_accession = GSE781\n" * 200


class FakeClock:
    """Monotonic clock that only moves when ``sleep`` is called; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class _Handler(BaseHTTPRequestHandler):
    hits: Counter  # path -> number of requests, set per server
    lock: threading.Lock

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _count(self, path: str) -> int:
        with self.lock:
            self.hits[path] += 1
            return self.hits[path]

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        parts = urlsplit(self.path)  # absolute form when used as a proxy
        host = parts.hostname or self.headers.get("Host", "").split(":")[0]
        path = parts.path
        n = self._count(path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if path == "/ok":
            self._send(200, b"hello")
        elif path.startswith("/flaky/"):
            self._send(503, b"busy") if n <= 2 else self._send(200, b"recovered")
        elif path.startswith("/retry-after/"):
            self._send(429, b"slow down", {"Retry-After": "7"}) if n == 1 else self._send(200, b"after")
        elif path.startswith("/always/"):
            self._send(int(path.rsplit("/", 1)[1]), b"failing")
        elif path == "/missing":
            self._send(404, b"no such accession GSE0")
        elif path == "/slow":
            time.sleep(1.0)
            self._send(200, b"late")
        elif path == "/gzip":
            self._send(200, gzip.compress(GZIP_PAYLOAD), {"Content-Encoding": "gzip"})
        elif path == "/redirect":
            self._send(302, b"", {"Location": "/gzip"})
        else:  # echo
            echo = {
                "method": self.command,
                "host": host,
                "path": path,
                "query": parse_qs(parts.query, keep_blank_values=True),
                "user_agent": self.headers.get("User-Agent"),
                "body": parse_qs(body),
            }
            self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})

    do_GET = do_POST = do_HEAD = _handle


class LocalServer:
    def __init__(self) -> None:
        handler = type("Handler", (_Handler,), {"hits": Counter(), "lock": threading.Lock()})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.hits: Counter = handler.hits
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.stop()


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock()


def _client(fake: FakeClock, **kwargs) -> LiveHttpClient:
    kwargs.setdefault("rng", random.Random(0))
    return LiveHttpClient(sleep=fake.sleep, clock=fake.clock, **kwargs)


def test_satisfies_protocol_and_default_user_agent(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake, email="curator@example.org")
    assert isinstance(client, HttpClient)
    echo = client.get(f"{server.url}/echo").json()
    assert echo["user_agent"] == default_user_agent("curator@example.org")
    assert echo["user_agent"].startswith("refine-assets/")
    assert echo["user_agent"].endswith("(+https://github.com/refine-assets; mailto:curator@example.org)")
    assert default_user_agent(None).endswith("(+https://github.com/refine-assets)")


def test_503_twice_then_200_is_retried_with_backoff(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake, backoff=1.0)
    resp = client.get(f"{server.url}/flaky/a")
    assert resp.status == 200 and resp.content == b"recovered"
    assert server.hits["/flaky/a"] == 3
    assert client.attempts == 3
    # exponential backoff with up to 25 % jitter: ~1 s then ~2 s
    assert len(fake.sleeps) == 2
    assert 1.0 <= fake.sleeps[0] < 1.25
    assert 2.0 <= fake.sleeps[1] < 2.5


def test_429_honours_retry_after(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake)
    resp = client.get(f"{server.url}/retry-after/a")
    assert resp.text == "after"
    assert server.hits["/retry-after/a"] == 2
    assert fake.sleeps == [7.0]


def test_retries_exhausted_raise_last_status(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake, max_retries=2)
    with pytest.raises(HttpStatusError) as info:
        client.get(f"{server.url}/always/502")
    assert info.value.status == 502
    assert info.value.body == "failing"
    assert server.hits["/always/502"] == 3
    assert len(fake.sleeps) == 2


def test_404_fails_at_once(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake)
    with pytest.raises(HttpStatusError) as info:
        client.get(f"{server.url}/missing")
    assert info.value.status == 404
    assert "no such accession GSE0" in info.value.body
    assert f"{server.url}/missing" in str(info.value)
    assert server.hits["/missing"] == 1
    assert fake.sleeps == []


def test_timeout_is_retried_then_transport_error(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake, timeout=0.2, max_retries=1)
    started = time.monotonic()
    with pytest.raises(HttpTransportError) as info:
        client.get(f"{server.url}/slow")
    assert time.monotonic() - started < 1.0  # two 0.2 s attempts, not the server's 1 s answers
    assert "Timeout" in str(info.value) and "after 2 attempt(s)" in str(info.value)
    assert client.attempts == 2
    assert len(fake.sleeps) == 1


def test_connection_refused_is_transport_error(fake: FakeClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket is closed
    client = _client(fake, max_retries=3)
    with pytest.raises(HttpTransportError) as info:
        client.get(f"http://127.0.0.1:{port}/x")
    assert info.value.url == f"http://127.0.0.1:{port}/x"
    assert client.attempts == 4
    assert len(fake.sleeps) == 3


def test_gzip_body_is_decoded_and_redirects_followed(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake)
    resp = client.get(f"{server.url}/redirect")
    assert resp.url == f"{server.url}/gzip"
    assert resp.content == GZIP_PAYLOAD
    assert "content-encoding" not in resp.headers
    head = client.head(f"{server.url}/ok")
    assert head.status == 200 and head.content == b""


def test_post_sends_form_body_and_query_params(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake)
    echo = client.post(f"{server.url}/echo", data={"id": "1,2,3"}, params={"db": "gds"}).json()
    assert echo["method"] == "POST"
    assert echo["body"] == {"id": ["1,2,3"]}
    assert echo["query"] == {"db": ["gds"]}


def test_ncbi_params_only_on_eutils(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake, proxy=server.url, ncbi_api_key="KEY123", email="curator@example.org")
    eutils = client.get(
        "http://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi", params={"db": "gds", "term": "GSE781"}
    ).json()
    assert eutils["host"] == "eutils.ncbi.nlm.nih.gov"
    assert eutils["query"] == {
        "db": ["gds"],
        "term": ["GSE781"],
        "tool": ["refine-assets"],
        "api_key": ["KEY123"],
        "email": ["curator@example.org"],
    }
    # POST to E-utilities: the identifiers go in the query string, never into the form body
    epost = client.post("http://eutils.ncbi.nlm.nih.gov/entrez/eutils/epost.fcgi", data={"id": "1"}).json()
    assert epost["body"] == {"id": ["1"]}
    assert epost["query"]["api_key"] == ["KEY123"]
    # another NCBI host and a non-NCBI host get nothing
    geo = client.get("http://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc=GSE781").json()
    assert geo["query"] == {"acc": ["GSE781"]}
    local = client.get(f"{server.url}/echo", params={"a": "1"}).json()
    assert local["query"] == {"a": ["1"]}
    # a caller-supplied value is kept, not duplicated
    own = client.get("http://eutils.ncbi.nlm.nih.gov/entrez/eutils/einfo.fcgi?api_key=CALLER").json()
    assert own["query"]["api_key"] == ["CALLER"]


def test_eutils_without_key_gets_tool_only(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake, proxy=server.url)
    echo = client.get("http://eutils.ncbi.nlm.nih.gov/entrez/eutils/einfo.fcgi").json()
    assert echo["query"] == {"tool": ["refine-assets"]}


@pytest.mark.parametrize(("api_key", "expected_seconds"), [(None, 3.0), ("KEY", 0.9)])
def test_ncbi_rate_limit_3_or_10_per_second(
    server: LocalServer, fake: FakeClock, api_key: str | None, expected_seconds: float
) -> None:
    client = _client(fake, proxy=server.url, ncbi_api_key=api_key)
    for _ in range(10):
        client.get("http://eutils.ncbi.nlm.nih.gov/entrez/eutils/einfo.fcgi")
    # 10 requests: the first is free, 9 waits of 1/3 s (no key) or 1/10 s (key)
    assert fake.now == pytest.approx(expected_seconds)
    assert len(fake.sleeps) == 9
    # the local host is not limited
    before = fake.now
    for _ in range(5):
        client.get(f"{server.url}/ok")
    assert fake.now == before


def test_custom_rate_limit_for_a_host(server: LocalServer, fake: FakeClock) -> None:
    client = _client(fake, rate_limits={"127.0.0.1": 5})
    for _ in range(6):
        client.get(f"{server.url}/ok")
    assert fake.now == pytest.approx(1.0)  # 5 waits of 0.2 s


def test_rate_limiter_is_thread_safe() -> None:
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            waits.append(round(seconds, 6))

    limiter = HostRateLimiter({"eutils.ncbi.nlm.nih.gov": 10}, clock=lambda: 0.0, sleep=record)
    threads = [threading.Thread(target=limiter.acquire, args=("eutils.ncbi.nlm.nih.gov",)) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # each thread got its own slot: waits 0.1 .. 2.9 (the first one did not sleep)
    assert sorted(waits) == [round(i / 10, 6) for i in range(1, 30)]
    with pytest.raises(ValueError):
        HostRateLimiter({"x": 0})


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# -- Dagster resources ----------------------------------------------------------------------------


def test_live_http_resource_builds_configured_client_once() -> None:
    resource = LiveHttpResource(ncbi_api_key="KEY", email="curator@example.org", timeout=5, max_retries=2)
    assert isinstance(resource, HttpClientResource)
    client = resource.get_client()
    assert isinstance(client, LiveHttpClient)
    assert client is resource.get_client()
    assert (client.ncbi_api_key, client.email, client.timeout, client.max_retries) == (
        "KEY",
        "curator@example.org",
        5,
        2,
    )
    assert client.rate_limiter.rate_for("eutils.ncbi.nlm.nih.gov") == 10.0
    assert LiveHttpResource().get_client().rate_limiter.rate_for("ftp.ncbi.nlm.nih.gov") == 3.0


def test_replay_http_resource_serves_real_recordings(cassettes: Path, shared_data: Path) -> None:
    soft_url = "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc=GSM11805&targ=self&form=text"
    resource = ReplayHttpResource(
        cassettes=[str(cassettes / "surveyor.geo.get_pubmet_id_title.yaml.gz")],
        files={soft_url: str(shared_data / "geo/geoquery/GSM11805.txt.gz")},
    )
    assert resource.get_client() is resource.get_client()

    @dg.asset
    def pubmed_title(http: HttpClientResource) -> str:
        client = http.get_client()
        summary = client.get(
            "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esummary.fcgi",
            params={"db": "pubmed", "id": "22367537", "retmode": "json"},
        ).json()
        assert gzip.decompress(client.get(soft_url).content).startswith(b"^SAMPLE = GSM11805")
        return summary["result"]["22367537"]["title"]

    result = dg.materialize([pubmed_title], resources={"http": resource})
    assert result.success
    assert result.output_for_node("pubmed_title") == (
        "Sequencing of neuroblastoma identifies chromothripsis and defects in neuritogenesis genes."
    )
    with pytest.raises(NotRecordedError):
        ReplayHttpResource().get_client().get("https://eutils.ncbi.nlm.nih.gov/entrez/eutils/einfo.fcgi")
