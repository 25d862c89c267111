"""Pytest fixtures that run real local servers for tests.

``moto_server`` (session scope) starts moto's S3 server (``moto_server -H 127.0.0.1 -p <free port>``,
the executable next to ``sys.executable``) in its own process group, waits until it answers, sets
dummy AWS credentials in the environment for the session (``AWS_ACCESS_KEY_ID=test``,
``AWS_SECRET_ACCESS_KEY=test``, ``AWS_DEFAULT_REGION=us-east-1``), creates the bucket
:data:`DEFAULT_BUCKET`, and on teardown stops the server with SIGINT to its process group (SIGKILL if
it does not exit within 5 s; see specs/environment.md section D and the webserver notes in A.4).

``moto_bucket`` (function scope) creates a fresh, empty bucket per test.

Use from a test package with a conftest.py containing::

    from refine_assets_tests.fixtures_servers import moto_bucket, moto_server  # noqa: F401

Where moto's server entry point is not installed the fixtures skip (fail under ``CI=true``).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEFAULT_BUCKET = "refine-assets-test"
REGION = "us-east-1"
_bucket_counter = itertools.count(1)


@dataclass(frozen=True)
class MotoServer:
    """A running moto S3 server: ``endpoint_url`` (http://127.0.0.1:<port>), region and default bucket."""

    endpoint_url: str
    region: str = REGION
    bucket: str = DEFAULT_BUCKET

    def client(self) -> Any:
        """A boto3 S3 client for this server (dummy credentials)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` (us-east-1 needs no location constraint); returns the name."""
        self.client().create_bucket(Bucket=name)
        return name


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, n: int = 3000) -> str:
    """The last ``n`` characters of a server log (for failure messages)."""
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def wait_for_webserver(port: int, proc: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    """Wait until the Dagster webserver on ``port`` answers ``/server_info``; fail with its log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as resp:
                if b"dagster_webserver_version" in resp.read():
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"webserver did not come up (rc={proc.poll()}): {log_tail(log_path)}")
        time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto S3 server on 127.0.0.1 for the whole session, with bucket :data:`DEFAULT_BUCKET`."""
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.is_file():
        message = f"moto_server not found next to {sys.executable} (install the dev extra: moto[server])"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "test")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "test")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])))
        port = free_port()
        log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(exe), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            endpoint = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while not _answers(endpoint):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not start on port {port} (rc={proc.poll()}): {log_path.read_text()[-2000:]}"
                    )
                time.sleep(0.05)
            server = MotoServer(endpoint_url=endpoint)
            server.create_bucket(server.bucket)
            yield server
        finally:
            _stop(proc)


@pytest.fixture
def moto_bucket(moto_server: MotoServer) -> str:
    """A new empty bucket on the session's moto server (name unique within the session)."""
    return moto_server.create_bucket(f"refine-assets-test-{os.getpid()}-{next(_bucket_counter)}")
