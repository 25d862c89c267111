"""Writing R source packages and repository indexes in their published formats.

Used to pre-seed an offline site with references built from local data, and by the demo and the tests,
which cannot reach Bioconductor or Brainarray: the packages written here have the layout and formats
the real ones have, so the live reading code (:mod:`~refine_assets.lib.affy.probes`,
:mod:`~refine_assets.lib.references.chipdb`, :mod:`~refine_assets.lib.references.bioconductor`,
:mod:`~refine_assets.lib.references.brainarray`) reads them unchanged.

* :func:`write_tarball`: a gzip'd tar with fixed mtimes, owners and member order, so the same content
  always gives the same bytes (and the same SHA-256);
* :func:`write_probe_package`: ``<pkg>/DESCRIPTION`` + ``<pkg>/data/<pkg>.rda``, the data.frame saved
  by **R's own** ``save()`` (``Rscript``, R >= 3.5 serialization) with class ``c("probetable",
  "data.frame")`` and the columns of AnnotationForge's probe packages (``sequence, x, y,
  Probe.Set.Name, Probe.Interrogation.Position, Target.Strandedness``) - the layout of Bioconductor
  ``<chip>probe`` and Brainarray ``<chip><sp>ensgprobe`` packages;
* :func:`write_chipdb_package`: ``<pkg>/inst/extdata/<chip>.sqlite`` with AnnotationDbi's ChipDb
  tables ``metadata(name, value)`` and ``probes(probe_id, is_multiple, gene_id)``;
* :func:`packages_index`: a CRAN-style ``PACKAGES`` index (one stanza per tarball, with ``MD5sum``);
* :func:`brainarray_index_page`: an HTML page with the table layout refine.bio's
  ``install_ensg_pkgs.R`` parses (second table, chip in column 3, C and P package links in column 16).

Nothing here imports dagster.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from refine_assets.lib.references.packages import description_fields

__all__ = [
    "brainarray_index_page",
    "package_description",
    "packages_index",
    "write_chipdb_package",
    "write_probe_package",
    "write_tarball",
]

PROBE_COLUMNS = (
    "sequence",
    "x",
    "y",
    "Probe.Set.Name",
    "Probe.Interrogation.Position",
    "Target.Strandedness",
)


def write_tarball(out: Path, members: Mapping[str, bytes | Path], *, compresslevel: int = 1) -> Path:
    """Write ``out`` (``.tar.gz``) with ``members`` (name -> bytes or file), byte-reproducibly; atomic.

    gzip level 1 by default: a 344 MB organism SQLite packs in ~4 s instead of ~150 s at level 9.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
        ):
            for name in sorted(members):
                value = members[name]
                info = tarfile.TarInfo(name)
                info.mtime, info.mode, info.uid, info.gid = 0, 0o644, 0, 0
                info.uname = info.gname = ""
                if isinstance(value, bytes):
                    info.size = len(value)
                    tar.addfile(info, io.BytesIO(value))
                else:
                    info.size = Path(value).stat().st_size
                    with open(value, "rb") as fh:
                        tar.addfile(info, fh)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _description(fields: Mapping[str, str]) -> bytes:
    return "".join(f"{k}: {v}\n" for k, v in fields.items()).encode()


_SAVE_R = r"""
args <- commandArgs(trailingOnly = TRUE)
df <- read.delim(args[1], colClasses = c("character", "integer", "integer", "character", "integer",
                 "character"), check.names = FALSE, na.strings = "", stringsAsFactors = FALSE,
                 quote = "")
class(df) <- c("probetable", "data.frame")
assign(args[2], df)
save(list = args[2], file = args[3], compress = TRUE)
"""


def write_probe_package(
    frame: pd.DataFrame,
    out_dir: Path,
    package: str,
    version: str,
    *,
    title: str,
    description: str,
    rscript: str = "Rscript",
) -> Path:
    """``<out_dir>/<package>_<version>.tar.gz``: a probe package whose ``data/<package>.rda`` R saved.

    ``frame`` has the columns of :data:`PROBE_COLUMNS` (x/y 0-based, as in the packages). Raises
    ``RuntimeError`` when R fails (the message has R's stderr).
    """
    missing = [c for c in PROBE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{package}: probe frame lacks columns {missing}")
    if shutil.which(rscript) is None:
        raise RuntimeError(f"{rscript} not found: R writes the package's .rda (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="refine-rpkg-") as tmp:
        tsv = Path(tmp) / "probes.tsv"
        frame.loc[:, list(PROBE_COLUMNS)].to_csv(tsv, sep="\t", index=False)
        script = Path(tmp) / "save.R"
        script.write_text(_SAVE_R)
        rda = Path(tmp) / f"{package}.rda"
        run = subprocess.run(
            [rscript, "--vanilla", str(script), str(tsv), package, str(rda)], capture_output=True, text=True
        )
        if run.returncode != 0 or not rda.is_file():
            raise RuntimeError(f"R could not save {package}: {run.stderr.strip()[-500:]}")
        desc = _description(
            {
                "Package": package,
                "Title": title,
                "Version": version,
                "Description": description,
                "Depends": "R (>= 1.6.0), AnnotationDbi (>= 1.11.9)",
                "License": "LGPL",
                "NeedsCompilation": "no",
            }
        )
        return write_tarball(
            Path(out_dir) / f"{package}_{version}.tar.gz",
            {f"{package}/DESCRIPTION": desc, f"{package}/data/{package}.rda": rda.read_bytes()},
        )


def write_chipdb_package(
    pairs: Iterable[tuple[str, str | None]],
    out_dir: Path,
    chip: str,
    version: str,
    *,
    organism: str,
    description: str,
) -> Path:
    """``<out_dir>/<chip>.db_<version>.tar.gz``: a ChipDb package with ``probes(probe_id, is_multiple,
    gene_id)`` filled from ``pairs`` (probe id, Entrez gene id or None)."""
    rows = sorted(
        {(str(p), None if g is None else str(g)) for p, g in pairs}, key=lambda r: (r[0], r[1] or "")
    )
    per_probe: dict[str, int] = {}
    for p, g in rows:
        if g is not None:
            per_probe[p] = per_probe.get(p, 0) + 1
    with tempfile.TemporaryDirectory(prefix="refine-chipdb-") as tmp:
        db = Path(tmp) / f"{chip}.sqlite"
        con = sqlite3.connect(db)
        con.executescript(
            "CREATE TABLE metadata (name VARCHAR(80) PRIMARY KEY, value VARCHAR(255));"
            "CREATE TABLE probes (probe_id VARCHAR(80) NOT NULL, is_multiple SMALLINT NOT NULL, gene_id VARCHAR(10));"
            "CREATE INDEX Fprobes ON probes (probe_id);"
        )
        con.executemany(
            "INSERT INTO metadata VALUES (?, ?)",
            [("DBSCHEMA", "CHIP_DB"), ("ORGANISM", organism), ("PKGNAME", chip), ("DBSCHEMAVERSION", "2.1")],
        )
        con.executemany(
            "INSERT INTO probes VALUES (?, ?, ?)",
            [(p, int(per_probe.get(p, 0) > 1), g) for p, g in rows],
        )
        con.commit()
        con.close()
        package = f"{chip}.db"
        desc = _description(
            {
                "Package": package,
                "Title": f"Annotation data ({chip}) for {organism}",
                "Version": version,
                "Description": description,
                "Depends": "R (>= 2.7.0), methods, AnnotationDbi (>= 1.9.7)",
                "License": "Artistic-2.0",
                "NeedsCompilation": "no",
            }
        )
        return write_tarball(
            Path(out_dir) / f"{package}_{version}.tar.gz",
            {f"{package}/DESCRIPTION": desc, f"{package}/inst/extdata/{chip}.sqlite": db},
        )


def package_description(path: Path) -> dict[str, str]:
    """The DESCRIPTION fields of a source tarball (``<pkg>/DESCRIPTION``)."""
    with tarfile.open(path, "r:*") as tar:
        for m in tar.getmembers():
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 2 and parts[1] == "DESCRIPTION":
                fh = tar.extractfile(m)
                return description_fields(fh.read().decode("utf-8", "replace")) if fh else {}
    raise ValueError(f"{path}: no <pkg>/DESCRIPTION in the tarball")


def packages_index(tarballs: Iterable[Path]) -> str:
    """A ``PACKAGES`` index of source tarballs (Package, Version, Depends, License, MD5sum, NeedsCompilation)."""
    stanzas = []
    for path in sorted(tarballs, key=lambda p: Path(p).name):
        desc = package_description(Path(path))
        md5 = hashlib.md5(Path(path).read_bytes()).hexdigest()
        fields = {"Package": desc["Package"], "Version": desc["Version"]}
        for key in ("Depends", "License"):
            if desc.get(key):
                fields[key] = desc[key]
        fields["MD5sum"] = md5
        fields["NeedsCompilation"] = desc.get("NeedsCompilation", "no")
        stanzas.append("".join(f"{k}: {v}\n" for k, v in fields.items()))
    return "\n".join(stanzas)


def brainarray_index_page(rows: Iterable[tuple[str, str, str, str]], version: str) -> str:
    """The ENSG download page: ``rows`` of (species, chip name, CDF package path, probe package path)."""
    cells = []
    for species, chip, cdf, probe in rows:
        tds = [""] * 16
        tds[0], tds[1], tds[2] = species, "ENSG", html.escape(chip)
        tds[15] = f'<a href="{html.escape(cdf)}">C</a> <a href="{html.escape(probe)}">P</a>'
        cells.append("<tr>" + "".join(f"<td>{t}</td>" for t in tds) + "</tr>")
    header = "<tr>" + "".join(f"<th>c{i}</th>" for i in range(1, 17)) + "</tr>"
    return (
        f"<html><head><title>CustomCDF {version} ENSG</title></head><body>"
        "<table><tr><td>Brainarray custom CDF</td></tr></table>"
        f"<table><tr><th colspan=16>Version {version}, ENSG</th></tr>{header}{''.join(cells)}</table>"
        "</body></html>"
    )
