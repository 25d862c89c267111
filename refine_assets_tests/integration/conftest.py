"""Fixtures for integration tests: real local servers (see ``refine_assets_tests.fixtures_servers``)."""

from refine_assets_tests.fixtures_servers import moto_bucket, moto_server  # noqa: F401
