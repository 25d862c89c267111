"""Gene-id crosswalks from Bioconductor ``org.*.eg.db`` SQLite databases (e.g. org.Hs.eg.db).

The org packages (Debian ``r-bioc-org.hs.eg.db``; Bioconductor for other species) ship a SQLite
file keyed by Entrez gene: tables ``genes`` (Entrez id), ``ensembl``, ``gene_info`` (symbol),
``refseq`` and ``accessions`` (GenBank/INSDC nucleotide accessions). :func:`orgdb_to_crosswalk_tsv`
writes them as a crosswalk TSV readable by :func:`refine_assets.lib.crosswalk.load_crosswalk`:
columns ``entrez_id, ensembl_gene_id, symbol, refseq, genbank``, one identifier per row besides the
Entrez/Ensembl pair (rows are a union, not a cross product, so the file stays linear in size).
GenBank accessions are what old Affymetrix annotation (e.g. HG-U95Av2's ``hgu95av2_ID``) uses.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
from pathlib import Path

QUERY = """
SELECT g.gene_id, e.ensembl_id, i.symbol, NULL, NULL
  FROM genes g JOIN ensembl e USING (_id) LEFT JOIN gene_info i USING (_id)
UNION ALL
SELECT g.gene_id, e.ensembl_id, NULL, r.accession, NULL
  FROM genes g JOIN ensembl e USING (_id) JOIN refseq r USING (_id)
UNION ALL
SELECT g.gene_id, e.ensembl_id, NULL, NULL, a.accession
  FROM genes g JOIN ensembl e USING (_id) JOIN accessions a USING (_id)
"""


def orgdb_to_crosswalk_tsv(sqlite_path: str | Path, out_path: str | Path) -> int:
    """Write the crosswalk TSV (gzip when ``out_path`` ends in .gz) atomically; returns the row count.

    Raises ``ValueError`` naming the file when it is not an org.*.eg.db database.
    """
    sqlite_path, out_path = Path(sqlite_path), Path(out_path)
    try:
        con = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise ValueError(f"{sqlite_path}: not a SQLite database ({exc})") from exc
    missing = {"genes", "ensembl", "gene_info", "refseq", "accessions"} - tables
    if missing:
        con.close()
        raise ValueError(f"{sqlite_path}: not an org.*.eg.db database (missing tables {sorted(missing)})")
    tmp = out_path.with_name(out_path.name + ".part")
    opener = gzip.open if out_path.name.endswith(".gz") else open
    n = 0
    try:
        with opener(tmp, "wt", encoding="utf-8") as fh:
            fh.write("entrez_id\tensembl_gene_id\tsymbol\trefseq\tgenbank\n")
            for row in con.execute(QUERY):
                fh.write("\t".join("" if v is None else str(v) for v in row) + "\n")
                n += 1
        os.replace(tmp, out_path)
    finally:
        con.close()
        tmp.unlink(missing_ok=True)
    return n
