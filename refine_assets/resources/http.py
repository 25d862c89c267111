"""Dagster resources that hand out an :class:`~refine_assets.lib.http.HttpClient` (thin wrappers).

``LiveHttpResource`` is the production client (httpx, retries, NCBI rate limits);
``ReplayHttpResource`` serves recorded real responses for tests and offline demos. Assets and
sensors depend on the abstract :class:`HttpClientResource`, so either can be bound.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field, PrivateAttr

from refine_assets.lib.http import HttpClient, ReplayHttpClient
from refine_assets.lib.http_live import LiveHttpClient


class HttpClientResource(dg.ConfigurableResource, ABC):
    """Anything that provides an :class:`HttpClient`."""

    @abstractmethod
    def get_client(self) -> HttpClient:
        """The HTTP client (the same object for the life of this resource instance)."""


class LiveHttpResource(HttpClientResource):
    """Live HTTP through :class:`LiveHttpClient` (NCBI key raises the E-utilities rate to 10/s)."""

    ncbi_api_key: str | None = Field(default=None, description="NCBI API key (E-utilities).")
    email: str | None = Field(default=None, description="Contact address for NCBI and the User-Agent.")
    timeout: float = Field(default=30, description="Seconds per attempt.")
    max_retries: int = Field(default=5, description="Retries after the first attempt.")

    _client: LiveHttpClient | None = PrivateAttr(default=None)

    def get_client(self) -> HttpClient:
        if self._client is None:
            self._client = LiveHttpClient(
                ncbi_api_key=self.ncbi_api_key,
                email=self.email,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self._client


class ReplayHttpResource(HttpClientResource):
    """Recorded responses through :class:`ReplayHttpClient` (vcrpy cassettes and files per URL)."""

    cassettes: list[str] = Field(default=[], description="Paths of vcrpy cassettes (YAML, may be gzipped).")
    files: dict[str, str] = Field(default={}, description="URL -> local file served for GET of that URL.")

    _client: ReplayHttpClient | None = PrivateAttr(default=None)

    def get_client(self) -> HttpClient:
        if self._client is None:
            self._client = ReplayHttpClient(cassettes=self.cassettes, files=self.files)
        return self._client
