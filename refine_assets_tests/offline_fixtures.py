"""Offline inputs for bare-home tests: an Illumina annotation package, an Illumina GEO series and the
submitter-processed archive of E-GEOD-44719, in their real formats.

What is real and what is generated (no real Illumina file or package ships with the test data):

* ``illuminaHumanv3.db_<v>.tar.gz``: the real package layout and AnnotationDbi schema
  (:func:`refine_assets_tests.illumina_generator.build_illumina_db_tarball`) over **generated** probes
  (``ILMN_`` ids, random 50-mers, ReMOAT quality labels) whose genes are **real human Entrez ids**
  taken from the real org.Hs.eg.db (so ``<pkg>ENSEMBL`` through the real organism package gives real
  Ensembl ids);
* ``illuminaHumanv3.tsv``: a tie-break map in refine.bio's format (``probe_id``, ``ensembl_id``) for the
  generated multi-gene probes (first gene);
* ``GSE99990_family.soft``: a GEO family SOFT (real SOFT syntax, as GEO serves it) of a **synthetic**
  series on GPL6947 (HumanHT-12 V3.0) whose samples' raw data is an experiment-level
  ``GSE99990_non-normalized.txt.gz`` in GEO's non-normalized template, with **simulated** BeadStudio
  intensities and detection p-values (:func:`~refine_assets_tests.illumina_generator.simulate_beadchip`);
* ``E-GEOD-44719.processed.1.zip``: ArrayExpress's archive of GEO sample tables
  (``GSMnnnn_sample_table.txt``: ``ID_REF``, ``VALUE``, ``Detection Pval``) for the **real** samples of the
  recorded E-GEOD-44719 survey, with **generated** values over the generated platform's probes.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import sqlite3
import zipfile
from pathlib import Path

import numpy as np

from refine_assets.lib.references.packages import read_package_sqlite
from refine_assets.lib.references.sources import ILLUMINA_TIEBREAK_URL
from refine_assets_tests.illumina_generator import (
    GenSample,
    Platform,
    build_illumina_db_tarball,
    make_platform,
    simulate_beadchip,
    write_nonnormalized,
)

SERIES = "GSE99990"
NON_NORMALIZED_URL = (
    f"ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE99nnn/{SERIES}/suppl/{SERIES}_non-normalized.txt.gz"
)
PROCESSED_ZIP_URL = "ftp://ftp.ebi.ac.uk/pub/databases/microarray/data/experiment/GEOD/E-GEOD-44719/E-GEOD-44719.processed.1.zip"


def human_v3_platform(orgdb_tarball: Path, n_probes: int = 1500, seed: int = 41) -> Platform:
    """A generated illuminaHumanv3 platform whose probes map to real human Entrez genes (see module doc)."""
    data, _desc, _m = read_package_sqlite(orgdb_tarball)
    con = sqlite3.connect(":memory:")
    con.deserialize(data)
    rows = con.execute(
        "SELECT g.gene_id, min(e.ensembl_id) FROM genes g JOIN ensembl e USING (_id) "
        "GROUP BY g.gene_id HAVING count(*) = 1 ORDER BY CAST(g.gene_id AS INTEGER) LIMIT ?",
        (2 * n_probes,),
    ).fetchall()
    con.close()
    pl = make_platform(n_probes, seed=seed, name="illuminaHumanv3")
    entrez, ensembl = [], []
    for i, (ents, _ens) in enumerate(zip(pl.entrez, pl.ensembl, strict=True)):
        if not ents:
            entrez.append(())
            ensembl.append(())
        elif len(ents) == 2:
            a, b = rows[2 * i % len(rows)], rows[(2 * i + 1) % len(rows)]
            entrez.append((a[0], b[0]))
            ensembl.append((a[1], b[1]))
        else:
            a = rows[2 * i % len(rows)]
            entrez.append((a[0],))
            ensembl.append((a[1],))
    return dataclasses.replace(pl, entrez=entrez, ensembl=ensembl)


def illumina_package(folder: Path, platform: Platform) -> tuple[Path, Path]:
    """(package tarball, tie-break map) of the platform, written into ``folder``."""
    tarball = build_illumina_db_tarball(folder, platform, chip_name="HumanHT12v3")
    tiebreak = folder / f"{platform.name}.tsv"
    lines = ["probe_id\tensembl_id"] + [
        f"{pid}\t{ens[0]}"
        for pid, ens in zip(platform.probe_ids, platform.ensembl, strict=True)
        if len(ens) > 1
    ]
    tiebreak.write_text("\n".join(lines) + "\n")
    return tarball, tiebreak


def illumina_series(
    folder: Path, platform: Platform, n_samples: int = 4
) -> tuple[Path, Path, list[GenSample]]:
    """(family SOFT, non-normalized file, samples) of the synthetic Illumina series GSE99990.

    One more sample is listed in the SOFT than the file holds, so that one sample fails with the reason
    that its column is missing.
    """
    samples = [
        GenSample(
            accession=f"GSM99999{i + 1:02d}",
            title=f"Donor {i + 1} {'lesion' if i % 2 else 'control'}",
            key="",
        )
        for i in range(n_samples + 1)
    ]
    samples = [dataclasses.replace(s, key=s.title) for s in samples]
    sim = simulate_beadchip(len(platform.probe_ids), n_samples, seed=42, sequences=platform.sequences)
    data = write_nonnormalized("geo", platform.probe_ids, sim.signal, sim.detection_p, samples[:n_samples])
    nonnorm = folder / f"{SERIES}_non-normalized.txt.gz"
    nonnorm.write_bytes(gzip.compress(data, mtime=0))
    soft = [
        f"^SERIES = {SERIES}",
        f"!Series_title = Synthetic Illumina HumanHT-12 V3 series for refine-assets tests ({SERIES})",
        f"!Series_geo_accession = {SERIES}",
        "!Series_summary = Simulated BeadStudio intensities in GEO's non-normalized template.",
        *[f"!Series_sample_id = {s.accession}" for s in samples],
        f"!Series_supplementary_file = {NON_NORMALIZED_URL}",
        "^PLATFORM = GPL6947",
        "!Platform_title = Illumina HumanHT-12 V3.0 expression beadchip",
        "!Platform_technology = oligonucleotide beads",
        "!Platform_organism = Homo sapiens",
        "!Platform_manufacturer = Illumina Inc.",
    ]
    for s in samples:
        soft += [
            f"^SAMPLE = {s.accession}",
            f"!Sample_title = {s.title}",
            f"!Sample_geo_accession = {s.accession}",
            "!Sample_organism_ch1 = Homo sapiens",
            "!Sample_characteristics_ch1 = tissue: skin",
            "!Sample_platform_id = GPL6947",
            "!Sample_supplementary_file = NONE",
        ]
    path = folder / f"{SERIES}_family.soft"
    path.write_text("\n".join(soft) + "\n")
    return path, nonnorm, samples


def processed_zip(folder: Path, filenames: list[str], platform: Platform, *, leave_out: int = 1) -> Path:
    """``E-GEOD-44719.processed.1.zip`` with a sample table per file name (the last ``leave_out`` omitted)."""
    rng = np.random.default_rng(44719)
    path = folder / "E-GEOD-44719.processed.1.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(filenames)[: len(filenames) - leave_out]:
            values = rng.lognormal(6, 1.4, len(platform.probe_ids))
            pvals = rng.uniform(0, 0.2, len(platform.probe_ids))
            buf = io.StringIO()
            buf.write("ID_REF\tVALUE\tDetection Pval\n")
            for pid, v, p in zip(platform.probe_ids, values, pvals, strict=True):
                buf.write(f"{pid}\t{v:.2f}\t{p:.4f}\n")
            zf.writestr(name, buf.getvalue())
    return path


def tiebreak_url(platform: str) -> str:
    return ILLUMINA_TIEBREAK_URL.format(platform=platform)


@dataclasses.dataclass
class OfflineWorld:
    """Everything a bare-home run needs offline (built once per test session)."""

    catalogue: object  # refine_assets.demo.references.OfflineCatalogue
    platform: Platform
    soft: Path
    non_normalized: Path
    series_samples: list[GenSample]
    processed_zip: Path
    processed_missing: list[str]
    catalogue_folder: Path

    def http_files(self) -> dict[str, str]:
        from refine_assets.lib.survey.geo import family_soft_url

        return {**self.catalogue.http_files, family_soft_url(SERIES): str(self.soft)}

    def downloads(self, shared_data: Path) -> dict[str, str]:
        return {
            **self.catalogue.downloads,
            NON_NORMALIZED_URL: str(self.non_normalized),
            PROCESSED_ZIP_URL: str(self.processed_zip),
            "C30057.CEL": str(shared_data / "microarray/C30057.CEL.gz"),
        }


def build_offline_world(folder: Path, demo_data: Path, shared_data: Path) -> OfflineWorld:
    """The offline catalogue (hgu95av2 from real Debian data + the generated illuminaHumanv3 package) and
    the Illumina inputs of the module docstring."""
    import json

    from refine_assets.demo.references import build_hgu95av2_catalogue
    from refine_assets.lib.http import ReplayHttpClient
    from refine_assets.lib.storage import open_store
    from refine_assets.lib.survey.pipeline import run_survey

    folder.mkdir(parents=True, exist_ok=True)
    platform = human_v3_platform(demo_data / "org.Hs.eg.db.tar.gz")
    package, tiebreak = illumina_package(folder / "illumina", platform)
    versions = {k: r["version"] for k, r in json.loads((demo_data / "demo_data.json").read_text()).items()}
    catalogue = build_hgu95av2_catalogue(
        demo_data, folder / "catalogue", versions=versions, extra_packages=(package,)
    )
    catalogue.downloads[tiebreak_url(platform.name)] = str(tiebreak)
    catalogue.save(folder / "catalogue")
    soft, nonnorm, samples = illumina_series(folder, platform)
    store = open_store(str(folder / "survey_scratch"))
    client = ReplayHttpClient(cassettes=[shared_data / "cassettes/surveyor.array_express.survey.yaml.gz"])
    run_survey("E-GEOD-44719", client, store)
    import pyarrow.parquet as pq

    files = pq.read_table(
        io.BytesIO(store.get_bytes("surveys/E-GEOD-44719/original_files.parquet"))
    ).to_pylist()
    names = sorted({f["filename"] for f in files if f["file_type"] == "PROCESSED"})
    zip_path = processed_zip(folder, names, platform, leave_out=1)
    return OfflineWorld(
        catalogue, platform, soft, nonnorm, samples, zip_path, names[-1:], folder / "catalogue"
    )
