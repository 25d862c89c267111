"""Probe tables for SCAN (refine_assets.lib.affy.probes): TSV, probe_tab, R packages, Parquet.

R probe packages are built in the test: the .rda is written by ``Rscript`` (``save()`` of a real
subset of the HG-U95Av2 rows, as AnnotationForge's probe packages and Brainarray's ensgprobe packages
store them) and packed with the package layout; the reader must not need R.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refine_assets.lib.affy.probes import (
    PROBE_TAB_HEADER,
    ProbeTable,
    ProbeTableError,
    probe_table_to_parquet,
    read_probe_package,
    read_probe_tab,
    read_probe_table,
    read_probe_table_parquet,
    read_probe_tsv,
)
from refine_assets.lib.affy.scan_affy import prepare_scan_probes, scan_affy


@pytest.fixture(scope="module")
def u95(shared_data) -> ProbeTable:
    return read_probe_tsv(shared_data / "probes" / "HG-U95Av2_probes.tsv.gz")


@pytest.fixture(scope="module")
def subset(u95) -> pd.DataFrame:
    """A real subset: 40 probesets (incl. AFFX controls), all their probes."""
    frame = u95.frame
    sets = (
        list(frame["probeset_id"].unique()[:30])
        + [s for s in frame["probeset_id"].unique() if s.startswith("AFFX")][:10]
    )
    return frame[frame["probeset_id"].isin(sets)].reset_index(drop=True)


def test_read_real_tsv(u95):
    frame = u95.frame
    assert len(u95) == 199084
    assert frame["probeset_id"].nunique() == 12453
    assert list(frame.columns[:4]) == ["probeset_id", "x", "y", "sequence"]
    assert frame["x"].dtype == np.int32 and frame["y"].dtype == np.int32
    assert frame["x"].between(1, 638).all() and frame["y"].between(1, 637).all()  # MANIFEST
    assert (frame["sequence"].str.len() == 25).all()
    assert (frame["target_strandedness"] == "Sense").sum() == 300
    first = frame.iloc[0]
    assert (first["probeset_id"], first["x"], first["y"], first["sequence"]) == (
        "1000_at",
        399,
        559,
        "TCTCCTTTGCTGAGGCCTCCAGCTT",
    )
    assert u95.platform == "HG-U95Av2"
    idx = u95.cell_index(640)
    assert idx[0] == 399 + 640 * 559 and np.unique(idx).size == len(u95)  # no duplicate cell
    assert u95.with_index(640)["index"].iloc[0] == idx[0]
    with pytest.raises(ProbeTableError, match="columns"):
        u95.cell_index(600)


def test_read_probe_tab(subset, tmp_path):
    path = tmp_path / "HG-U95Av2_probe_tab.gz"
    df = pd.DataFrame(
        {
            "Probe Set Name": subset["probeset_id"],
            "Probe X": subset["x"],
            "Probe Y": subset["y"],
            "Probe Interrogation Position": subset["interrogation_position"],
            "Probe Sequence": subset["sequence"],
            "Target Strandedness": subset["target_strandedness"],
        }
    )
    assert tuple(df.columns) == PROBE_TAB_HEADER
    with gzip.open(path, "wt") as fh:
        df.to_csv(fh, sep="\t", index=False)
    for table in (read_probe_tab(path), read_probe_table(path)):
        pd.testing.assert_frame_equal(table.frame, subset, check_dtype=False)
        assert table.platform == "HG-U95Av2"


def test_tsv_errors_name_the_file(tmp_path, subset):
    bad = tmp_path / "bad.tsv"
    subset.drop(columns=["sequence"]).rename(columns={"probeset_id": "probe_set_id"}).to_csv(
        bad, sep="\t", index=False
    )
    with pytest.raises(ProbeTableError, match=r"bad\.tsv.*missing columns"):
        read_probe_tsv(bad)
    neg = subset.rename(columns={"probeset_id": "probe_set_id"}).copy()
    neg.loc[3, "x"] = -1
    neg.to_csv(bad, sep="\t", index=False)
    with pytest.raises(ProbeTableError, match=r"row 4: x = '-1'"):
        read_probe_table(bad)
    miss = subset.rename(columns={"probeset_id": "probe_set_id"}).copy()
    miss.loc[5, "probe_set_id"] = None
    miss.to_csv(bad, sep="\t", index=False)
    with pytest.raises(ProbeTableError, match="row 6 has no probe set id"):
        read_probe_tsv(bad)
    bad.write_text("something else\n1\n")
    with pytest.raises(ProbeTableError, match="unrecognised"):
        read_probe_table(bad)
    with pytest.raises(ProbeTableError, match="no such"):
        read_probe_table(tmp_path / "missing.tsv")


def test_parquet_round_trip(u95, tmp_path):
    path = tmp_path / "tables" / "HG-U95Av2.parquet"
    probe_table_to_parquet(
        u95, path, version="AnnotationDbi 1.60.0", source_url="https://example.org/HG-U95Av2_probe_tab.gz"
    )
    assert [p.name for p in path.parent.iterdir()] == ["HG-U95Av2.parquet"]  # atomic: no temp left
    assert path.stat().st_size < 2_500_000  # compact: 199,084 probes in < 2.5 MB
    back = read_probe_table_parquet(path)
    pd.testing.assert_frame_equal(back.frame, u95.frame, check_dtype=False)
    assert (back.version, back.source_url, back.platform) == (
        "AnnotationDbi 1.60.0",
        "https://example.org/HG-U95Av2_probe_tab.gz",
        "HG-U95Av2",
    )
    assert read_probe_table(path).frame.shape == u95.frame.shape
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1]}), plain)
    with pytest.raises(ProbeTableError, match="metadata"):
        read_probe_table(plain)


def _write_package(
    rscript: str, tmp_path: Path, name: str, frame: pd.DataFrame, compress: str, factors: bool
) -> Path:
    """Build ``<name>_1.0.0.tar.gz`` with DESCRIPTION and data/<name>.rda saved by R."""
    work = tmp_path / f"build_{name}"
    (work / name / "data").mkdir(parents=True)
    frame.to_csv(work / "rows.tsv", sep="\t", index=False)
    as_factor = "TRUE" if factors else "FALSE"
    script = f"""
    d <- read.delim("rows.tsv", stringsAsFactors = FALSE, colClasses = c(x = "integer", y = "integer"))
    df <- data.frame(sequence = d$sequence, x = d$x, y = d$y, Probe.Set.Name = d$probeset_id,
                     Probe.Interrogation.Position = as.integer(d$interrogation_position),
                     Target.Strandedness = factor(d$target_strandedness), stringsAsFactors = {as_factor})
    class(df) <- c("probetable", "data.frame")
    assign("{name}", df)
    other <- 1:3
    save(list = c("{name}", "other"), file = file.path("{name}", "data", "{name}.rda"), compress = "{compress}")
    """
    (work / "make.R").write_text(script)
    proc = subprocess.run([rscript, "make.R"], cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (work / name / "DESCRIPTION").write_text(
        f"Package: {name}\nTitle: Probe sequence data for microarrays of type {name}\nVersion: 22.0.0\n"
        "License: Artistic-2.0\n"
    )
    (work / name / "NAMESPACE").write_text("")
    tarball = tmp_path / f"{name}_22.0.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(work / name, arcname=name)
    return tarball


@pytest.mark.parametrize(("compress", "factors"), [("xz", False), ("gzip", True), ("bzip2", False)])
def test_read_bioconductor_probe_package(rscript, tmp_path, subset, compress, factors):
    tarball = _write_package(rscript, tmp_path, "hgu95av2probe", subset, compress, factors)
    for table in (read_probe_package(tarball), read_probe_table(tarball)):
        assert table.platform == "hgu95av2probe" and table.version == "22.0.0"
        pd.testing.assert_frame_equal(table.frame, subset, check_dtype=False)


def test_probe_package_errors(tmp_path):
    empty = tmp_path / "emptyprobe_1.0.tar.gz"
    with tarfile.open(empty, "w:gz") as tar:
        info = tarfile.TarInfo("emptyprobe/DESCRIPTION")
        data = b"Package: emptyprobe\nVersion: 1.0\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ProbeTableError, match="no data/"):
        read_probe_package(empty)
    broken = tmp_path / "brokenprobe_1.0.tar.gz"
    with tarfile.open(broken, "w:gz") as tar:
        info = tarfile.TarInfo("brokenprobe/data/brokenprobe.rda")
        data = b"RDX2\nnot really R data"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ProbeTableError, match="cannot read R data"):
        read_probe_package(broken)
    with pytest.raises(ProbeTableError, match="not a package tarball"):
        read_probe_package(tmp_path / "nothing.tar.gz")


@pytest.fixture(scope="module")
def c30057(shared_data):
    from refine_assets.lib.affy.cel import read_cel

    return read_cel(shared_data / "microarray" / "C30057.CEL.gz")


def test_brainarray_package_drives_scan(rscript, tmp_path, u95, c30057):
    """A Brainarray-style ensgprobe package (ENSG..._at probesets over real HG-U95Av2 cells)."""
    frame = u95.frame
    sets = frame["probeset_id"].unique()
    rng = np.random.default_rng(7)
    gene = dict(zip(sets, [f"ENSG{k:011d}_at" for k in rng.integers(0, 2000, sets.size)], strict=True))
    ba = frame.assign(probeset_id=frame["probeset_id"].map(gene)).iloc[::2].reset_index(drop=True)
    tarball = _write_package(rscript, tmp_path, "hgu95av2hsensgprobe", ba, "xz", True)
    table = read_probe_table(tarball)
    assert table.platform == "hgu95av2hsensgprobe" and len(table) == len(ba)
    prepared = prepare_scan_probes(u95, c30057.cols)
    via_package = scan_affy(c30057.intensities, c30057.cols, prepared, brainarray=table)
    direct = scan_affy(c30057.intensities, c30057.cols, prepared, brainarray=ProbeTable(frame=ba))
    pd.testing.assert_series_equal(via_package.values, direct.values)
    assert via_package.values.index.str.match(r"ENSG\d{11}_at").all()
    assert len(via_package.values) == ba["probeset_id"].nunique()


def test_prepare_scan_probes_order_filter_and_duplicates(subset):
    frame = subset.copy()
    frame.loc[0, "sequence"] = frame.loc[0, "sequence"][:24]  # not a 25-mer: not used by SCAN
    frame.loc[1, "sequence"] = None
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    prep = prepare_scan_probes(ProbeTable(frame=shuffled), cols=640)
    cells = frame["x"].to_numpy(np.int64) + 640 * frame["y"].to_numpy(np.int64)
    np.testing.assert_array_equal(prep.pm_index, np.sort(cells))  # oligo fid order
    assert prep.keep.sum() == len(frame) - 2
    assert prep.X.shape == (len(frame) - 2, 80)
    kept = frame.iloc[2:].assign(index=cells[2:]).sort_values("index")
    np.testing.assert_array_equal(prep.index, kept["index"].to_numpy())
    np.testing.assert_array_equal(prep.probeset_ids, kept["probeset_id"].to_numpy(dtype=str))
    # the same cell in two probesets is kept twice, ordered by (cell, probeset id)
    two = pd.concat([frame.iloc[[5]].assign(probeset_id="zzz_at"), frame.iloc[[5]]], ignore_index=True)
    prep2 = prepare_scan_probes(ProbeTable(frame=pd.concat([frame.iloc[2:], two.iloc[:1]])), cols=640)
    at = np.flatnonzero(prep2.index == cells[5])
    assert prep2.probeset_ids[at].tolist() == [frame.loc[5, "probeset_id"], "zzz_at"]
    with pytest.raises(ValueError, match="listed twice"):
        prepare_scan_probes(ProbeTable(frame=pd.concat([frame, frame.iloc[[7]]])), cols=640)
    with pytest.raises(ValueError, match="empty"):
        prepare_scan_probes(ProbeTable(frame=frame.iloc[:0]), cols=640)
