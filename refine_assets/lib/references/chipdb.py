"""Probe -> Entrez gene maps from Bioconductor ChipDb annotation packages (``<chip>.db``).

A ChipDb package (AnnotationDbi's ``HUMANCHIP_DB`` / ``MOUSECHIP_DB`` ... schema 2.1, e.g.
``hgu95av2.db``) ships ``<chip>.db/inst/extdata/<chip>.sqlite`` whose table ``probes(probe_id,
is_multiple, gene_id)`` has one row per probe and Entrez gene (``gene_id`` NULL for unmapped probes);
``<chip>ENTREZID`` and, through the organism package, ``<chip>ENSEMBL`` are built on it.
:func:`read_chipdb_annotation` turns it into the annotation table that
:class:`refine_assets.lib.idmap.PlatformMapper` reads: ``ID`` (probeset) and ``ENTREZ_GENE_ID``
(Entrez ids joined with GEO's ``///`` separator), one row per probeset in id order.

Nothing here imports dagster.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from refine_assets.lib.references.packages import (
    PackageError,
    connect_sqlite_bytes,
    read_package_sqlite,
    sqlite_tables,
)

__all__ = ["read_chipdb_annotation"]


def read_chipdb_annotation(path: str | Path) -> tuple[pa.Table, dict[str, str]]:
    """(annotation table, DESCRIPTION fields) of a ChipDb package tarball.

    Raises:
        PackageError: not a package, no SQLite, or no ``probes(probe_id, gene_id)`` table.
    """
    p = Path(path)
    data, desc, _member = read_package_sqlite(p)
    con = connect_sqlite_bytes(data, str(p))
    try:
        tables = sqlite_tables(con)
        cols = tables.get("probes", [])
        if "probe_id" not in cols or "gene_id" not in cols:
            raise PackageError(f"{p}: not a ChipDb package (no probes(probe_id, gene_id) table)")
        rows = con.execute(
            "SELECT probe_id, gene_id FROM probes WHERE probe_id IS NOT NULL ORDER BY probe_id, gene_id"
        ).fetchall()
    finally:
        con.close()
    genes: dict[str, list[str]] = {}
    for probe, gene in rows:
        lst = genes.setdefault(str(probe), [])
        if gene is not None and str(gene) not in lst:
            lst.append(str(gene))
    if not genes:
        raise PackageError(f"{p}: the probes table is empty")
    ids = sorted(genes)
    table = pa.table(
        {
            "ID": pa.array(ids, pa.string()),
            "ENTREZ_GENE_ID": pa.array([" /// ".join(genes[i]) or None for i in ids], pa.string()),
        }
    )
    return table, desc
