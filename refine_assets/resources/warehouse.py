"""The DuckDB warehouse as a Dagster resource (path only; logic in ``lib/warehouse.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    import duckdb

    from refine_assets.lib import warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The metadata warehouse file. Writers go through :func:`lib.warehouse.build_warehouse`."""

    path: str

    def db_path(self) -> Path:
        return Path(self.path).resolve()

    def connect_readonly(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the published warehouse (raises if not built yet)."""
        import duckdb

        if not self.db_path().exists():
            raise FileNotFoundError(f"warehouse not built yet: {self.db_path()}")
        return duckdb.connect(str(self.db_path()), read_only=True)

    def build(self, store, accessions: list[str] | None = None) -> warehouse.LoadReport:
        from refine_assets.lib import warehouse  # heavy (pandas, pyarrow): not at code-location load

        return warehouse.build_warehouse(self.db_path(), store, accessions)
