"""Real demo inputs taken from Debian packages, downloaded and unpacked without installing them.

``apt-get download <pkg>`` fetches the .deb into a cache folder, ``dpkg-deb -x`` unpacks it, and the
files below are copied to ``<dest>/<name>``. A ``demo_data.json`` records each file's package,
package version, path inside the package and sha256. Nothing is downloaded when the cache already
holds a file with the recorded hash (idempotent).

| name | package | what |
|---|---|---|
| ``GSE781_family.soft.gz`` | r-bioc-geoquery | GEO series GSE781: 34 HG-U133A/B samples with MAS5 tables |
| ``GSM11805.txt.gz`` | r-bioc-geoquery | one GEO sample (GPL96) |
| ``GPL97.annot.gz`` | r-bioc-geoquery | HG-U133B annotation |
| ``ERR127302_1_subset.fastq.gz`` / ``_2`` | r-bioc-shortread | E-MTAB-1147 reads, 20,000 pairs |
| ``HG-U95Av2_probe_tab.gz`` | r-bioc-annotationdbi | HG-U95Av2 probe sequences |
| ``hgu95av2_ID`` | r-bioc-annotationdbi | HG-U95Av2 probeset -> GenBank accession |
| ``org.Hs.eg.db.tar.gz`` | r-bioc-org.hs.eg.db | the organism package (real SQLite: Entrez, Ensembl, symbol, RefSeq, GenBank), re-packed from the installed layout into Bioconductor's source-tarball layout (``org.Hs.eg.db/DESCRIPTION``, ``org.Hs.eg.db/inst/extdata/org.Hs.eg.sqlite``) |
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoFile:
    name: str
    package: str
    path_in_package: str
    convert: str | None = None  # "source_tarball": an installed R package folder -> its source tarball layout


DEMO_FILES: tuple[DemoFile, ...] = (
    DemoFile(
        "GSE781_family.soft.gz",
        "r-bioc-geoquery",
        "usr/lib/R/site-library/GEOquery/extdata/GSE781_family.soft.gz",
    ),
    DemoFile("GSM11805.txt.gz", "r-bioc-geoquery", "usr/lib/R/site-library/GEOquery/extdata/GSM11805.txt.gz"),
    DemoFile("GPL97.annot.gz", "r-bioc-geoquery", "usr/lib/R/site-library/GEOquery/extdata/GPL97.annot.gz"),
    DemoFile(
        "ERR127302_1_subset.fastq.gz",
        "r-bioc-shortread",
        "usr/lib/R/site-library/ShortRead/extdata/E-MTAB-1147/ERR127302_1_subset.fastq.gz",
    ),
    DemoFile(
        "ERR127302_2_subset.fastq.gz",
        "r-bioc-shortread",
        "usr/lib/R/site-library/ShortRead/extdata/E-MTAB-1147/ERR127302_2_subset.fastq.gz",
    ),
    DemoFile(
        "HG-U95Av2_probe_tab.gz",
        "r-bioc-annotationdbi",
        "usr/lib/R/site-library/AnnotationDbi/extdata/HG-U95Av2_probe_tab.gz",
    ),
    DemoFile(
        "hgu95av2_ID", "r-bioc-annotationdbi", "usr/lib/R/site-library/AnnotationDbi/extdata/hgu95av2_ID"
    ),
    DemoFile(
        "org.Hs.eg.db.tar.gz",
        "r-bioc-org.hs.eg.db",
        "usr/lib/R/site-library/org.Hs.eg.db",
        convert="source_tarball",
    ),
)


class DemoDataError(RuntimeError):
    """A Debian package could not be downloaded or did not hold the expected file."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _deb_version(deb: Path) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def installed_to_source_tarball(installed: Path, out: Path) -> Path:
    """Re-pack an installed R data package (``<pkg>/DESCRIPTION``, ``<pkg>/extdata/*``) in the source
    layout Bioconductor publishes (``<pkg>/DESCRIPTION``, ``<pkg>/inst/extdata/*``), deterministically."""
    from refine_assets.lib.references.package_writer import write_tarball

    name = installed.name
    members = {f"{name}/DESCRIPTION": (installed / "DESCRIPTION").read_bytes()}
    for path in sorted((installed / "extdata").iterdir()):
        if path.is_file():
            members[f"{name}/inst/extdata/{path.name}"] = path
    return write_tarball(out, members)


def fetch_demo_data(dest: Path, files: tuple[DemoFile, ...] = DEMO_FILES) -> dict[str, dict]:
    """Make sure every demo file is in ``dest``; return the ``demo_data.json`` records by name."""
    dest.mkdir(parents=True, exist_ok=True)
    record_path = dest / "demo_data.json"
    records: dict[str, dict] = json.loads(record_path.read_text()) if record_path.exists() else {}
    missing = [
        f
        for f in files
        if not (dest / f.name).is_file() or records.get(f.name, {}).get("sha256") != _sha256(dest / f.name)
    ]
    for package in sorted({f.package for f in missing}):
        with tempfile.TemporaryDirectory(prefix="refine-demo-") as tmp:
            run = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
            debs = list(Path(tmp).glob(f"{package}_*.deb"))
            if run.returncode != 0 or not debs:
                raise DemoDataError(
                    f"apt-get download {package} failed (run 'apt-get update' first?): {run.stderr.strip()[-400:]}"
                )
            deb = debs[0]
            version = _deb_version(deb)
            root = Path(tmp) / "x"
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            for f in missing:
                if f.package != package:
                    continue
                src = root / f.path_in_package
                if not (src.is_dir() if f.convert == "source_tarball" else src.is_file()):
                    raise DemoDataError(f"{package} {version} has no {f.path_in_package}")
                if f.convert == "source_tarball":
                    installed_to_source_tarball(src, dest / f.name)
                else:
                    tmp_dest = dest / (f.name + ".part")
                    shutil.copyfile(src, tmp_dest)
                    tmp_dest.replace(dest / f.name)
                records[f.name] = {
                    "package": package,
                    "version": version,
                    "path_in_package": f.path_in_package,
                    "sha256": _sha256(dest / f.name),
                    "bytes": (dest / f.name).stat().st_size,
                }
    record_path.write_text(json.dumps(records, indent=1, sort_keys=True))
    return records
