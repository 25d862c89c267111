"""Offline reference catalogues for the demo and the tests, built from real data in Debian packages.

No machine here reaches Bioconductor or Brainarray, so the demo serves, under their **real URLs**
through the replay HTTP client and fetcher, packages written in the real formats
(:mod:`refine_assets.lib.references.package_writer`) from real data. The processing code then runs the
same path as live: read the release's ``PACKAGES`` index and Brainarray's ENSG page, download the
packages, build the references. What is real and what is built:

==================================== ====================================================================
served as                            content
==================================== ====================================================================
``org.Hs.eg.db_<v>.tar.gz``          **real**: the SQLite and DESCRIPTION of Debian's r-bioc-org.hs.eg.db,
                                     re-packed in the source-tarball layout (``demo/data.py``)
``hgu95av2probe_<v>.tar.gz``         **real probes** (r-bioc-annotationdbi ``HG-U95Av2_probe_tab``: 199,084
                                     PM probes), package and ``.rda`` written by R's ``save()``
``hgu95av2.db_<v>.tar.gz``           ChipDb ``probes`` table **derived** from real data: probeset ->
                                     GenBank (AnnotationDbi ``hgu95av2_ID``) -> Entrez (org.Hs.eg.db
                                     ``accessions``)
``hgu95av2hsensgprobe_22.0.0``       Brainarray-format package **derived** from the same real data: the
                                     real probes regrouped as ``ENSG..._at`` probesets through probeset ->
                                     Entrez -> Ensembl (probesets with exactly one Ensembl gene). Real
                                     Brainarray packages regroup probes by aligning each probe to Ensembl
                                     transcripts, so gene membership differs; the format is the same.
``PACKAGES``, ``ensg.asp``           indexes listing the packages above, in the real formats
==================================== ====================================================================

Package versions are those of the Debian packages the data came from, and every DESCRIPTION says it is
a format-faithful build.
"""

from __future__ import annotations

import gzip
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import pandas as pd

from refine_assets.lib.references.bioconductor import (
    DEFAULT_RELEASE,
    annotation_index_url,
    annotation_repository,
)
from refine_assets.lib.references.brainarray import DEFAULT_VERSION, ensg_index_url
from refine_assets.lib.references.package_writer import (
    brainarray_index_page,
    package_description,
    packages_index,
    write_chipdb_package,
    write_probe_package,
)
from refine_assets.lib.references.packages import read_package_sqlite

__all__ = ["OfflineCatalogue", "build_hgu95av2_catalogue"]


@dataclass
class OfflineCatalogue:
    """URLs to serve: ``http_files`` through the replay HTTP client (indexes), ``downloads`` through
    the replay fetcher (package tarballs)."""

    http_files: dict[str, str] = field(default_factory=dict)
    downloads: dict[str, str] = field(default_factory=dict)

    def merge(self, other: OfflineCatalogue) -> OfflineCatalogue:
        return OfflineCatalogue(
            {**self.http_files, **other.http_files}, {**self.downloads, **other.downloads}
        )

    def save(self, folder: Path) -> Path:
        """Write ``catalogue.json`` (what ``refine-assets process --replay FOLDER`` reads)."""
        import json

        path = Path(folder) / "catalogue.json"
        path.write_text(json.dumps({"http_files": self.http_files, "downloads": self.downloads}, indent=1))
        return path


def _read_probe_tab(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", dtype=str)
    df.columns = [c.strip() for c in df.columns]
    out = pd.DataFrame(
        {
            "sequence": df["Probe Sequence"],
            "x": df["Probe X"].astype(int),
            "y": df["Probe Y"].astype(int),
            "Probe.Set.Name": df["Probe Set Name"],
            "Probe.Interrogation.Position": df["Probe Interrogation Position"].astype(int),
            "Target.Strandedness": df["Target Strandedness"],
        }
    )
    return out


def _probeset_genes(id_map: Path, orgdb_sqlite: Path) -> pd.DataFrame:
    """(probeset, entrez, ensembl) of HG-U95Av2 through GenBank accessions of org.Hs.eg.db."""
    opener = gzip.open if id_map.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(id_map, "rt") as fh:
        ids = pd.read_csv(fh, sep="\t", header=None, names=["probeset", "genbank"], dtype=str)
    ids["genbank"] = ids["genbank"].str.strip().str.replace(r"\.\d+$", "", regex=True)
    con = sqlite3.connect(f"file:{orgdb_sqlite}?mode=ro", uri=True)
    try:
        acc = pd.read_sql(
            "SELECT a.accession AS genbank, g.gene_id AS entrez FROM accessions a JOIN genes g USING (_id)",
            con,
        )
        ens = pd.read_sql(
            "SELECT g.gene_id AS entrez, e.ensembl_id AS ensembl FROM ensembl e JOIN genes g USING (_id)", con
        )
    finally:
        con.close()
    acc["genbank"] = acc["genbank"].str.replace(r"\.\d+$", "", regex=True)
    pairs = ids.merge(acc, on="genbank", how="left").drop_duplicates(["probeset", "entrez"])
    return pairs.merge(ens, on="entrez", how="left")


def build_hgu95av2_catalogue(
    demo_dir: Path,
    out_dir: Path,
    *,
    release: str = DEFAULT_RELEASE,
    brainarray_version: str = DEFAULT_VERSION,
    versions: dict[str, str] | None = None,
    extra_packages: tuple[Path, ...] = (),
) -> OfflineCatalogue:
    """Write the packages and indexes of the module table into ``out_dir`` from the demo's Debian files
    (``HG-U95Av2_probe_tab.gz``, ``hgu95av2_ID``, ``org.Hs.eg.db.tar.gz``); idempotent (byte-identical
    rebuilds). ``versions``: Debian package versions by file name (``demo_data.json``);
    ``extra_packages``: more Bioconductor source tarballs to list in the same ``PACKAGES`` index."""
    versions = versions or {}
    out_dir.mkdir(parents=True, exist_ok=True)
    annotationdbi = versions.get("HG-U95Av2_probe_tab.gz", "0")
    orgdb = demo_dir / "org.Hs.eg.db.tar.gz"
    note = "Format-faithful build by refine-assets (not the Bioconductor/Brainarray release): "
    probes = _read_probe_tab(demo_dir / "HG-U95Av2_probe_tab.gz")
    probe_pkg = write_probe_package(
        probes,
        out_dir,
        "hgu95av2probe",
        annotationdbi.split("-")[0],
        title="Probe sequence data for microarrays of type hgu95av2",
        description=note + "probes of r-bioc-annotationdbi extdata/HG-U95Av2_probe_tab.",
    )
    data, _desc, _m = read_package_sqlite(orgdb)
    with tempfile.TemporaryDirectory(prefix="refine-orgdb-") as tmp:
        sqlite_path = Path(tmp) / "org.Hs.eg.sqlite"
        sqlite_path.write_bytes(data)
        genes = _probeset_genes(demo_dir / "hgu95av2_ID", sqlite_path)
    chipdb = write_chipdb_package(
        genes[["probeset", "entrez"]].drop_duplicates().itertuples(index=False, name=None),
        out_dir,
        "hgu95av2",
        annotationdbi.split("-")[0],
        organism="Homo sapiens",
        description=note
        + "probeset -> GenBank (AnnotationDbi hgu95av2_ID) -> Entrez (org.Hs.eg.db accessions).",
    )
    one_gene = genes.dropna(subset=["ensembl"]).drop_duplicates(["probeset", "ensembl"])
    one_gene = one_gene[~one_gene["probeset"].duplicated(keep=False)]
    ensg = probes.merge(one_gene[["probeset", "ensembl"]], left_on="Probe.Set.Name", right_on="probeset")
    ensg["Probe.Set.Name"] = ensg["ensembl"] + "_at"
    ba_name = "hgu95av2hsensgprobe"
    brainarray = write_probe_package(
        ensg,
        out_dir,
        ba_name,
        brainarray_version,
        title="Probe sequence data for microarrays of type hgu95av2hsensg",
        description=note + "real HG-U95Av2 probes grouped by Ensembl gene through probeset -> Entrez -> "
        "Ensembl (probesets with one gene); Brainarray groups probes by alignment instead.",
    )
    tarballs = [probe_pkg, chipdb, orgdb, *extra_packages]
    index = out_dir / "PACKAGES"
    index.write_text(packages_index(tarballs))
    repo = annotation_repository(release)
    downloads = {}
    for path in tarballs:
        desc = package_description(path)
        downloads[f"{repo}/{desc['Package']}_{desc['Version']}.tar.gz"] = str(path)
    ba_path = f"/customcdf/{brainarray_version}/ensg.download/{ba_name}_{brainarray_version}.tar.gz"
    ba_url = urljoin(
        ensg_index_url(brainarray_version), ba_path
    )  # as refine.bio's url_absolute() resolves it
    page = out_dir / "ensg.asp"
    page.write_text(
        brainarray_index_page(
            [
                (
                    "Hs",
                    "HG_U95Av2",
                    f"/customcdf/{brainarray_version}/ensg.download/hgu95av2hsensgcdf_{brainarray_version}.tar.gz",
                    ba_path,
                )
            ],
            brainarray_version,
        )
    )
    catalogue = OfflineCatalogue(
        http_files={annotation_index_url(release): str(index), ensg_index_url(brainarray_version): str(page)},
        downloads={**downloads, ba_url: str(brainarray)},
    )
    catalogue.save(out_dir)
    return catalogue
