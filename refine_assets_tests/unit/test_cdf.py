"""CDF readers: the real Hu6800 text CDF, XDA round trip, a hand-packed XDA file, bad inputs."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from refine_assets.lib.affy.cdf import CdfFile, CdfFormatError, is_pm, read_cdf, write_cdf_xda

HU6800 = "microarray/Hu6800.CDF.gz"


@pytest.fixture(scope="module")
def hu6800_text(shared_data: Path) -> bytes:
    return gzip.decompress((shared_data / HU6800).read_bytes())


@pytest.fixture(scope="module")
def hu6800(shared_data: Path) -> CdfFile:
    return read_cdf(shared_data / HU6800)


def test_hu6800_header_and_counts(hu6800: CdfFile) -> None:
    """MANIFEST: chip 3101_a03, GC2.0, 536x536, 7,129 units (MaxUnit 7323), 10 QC units."""
    assert (hu6800.format, hu6800.version, hu6800.chip_name) == ("text", "GC2.0", "3101_a03")
    assert (hu6800.rows, hu6800.cols) == (536, 536)
    assert hu6800.num_units == 7129 and hu6800.units["unit_number"].max() == 7323
    assert hu6800.units["unit"].to_list() == list(range(1, 7130))
    assert set(hu6800.units["unit_type"]) == {"expression"} and set(hu6800.units["unit_type_code"]) == {3}
    assert hu6800.probes.height == hu6800.units["num_cells"].sum() == 281_966
    assert hu6800.probes["index"].n_unique() == hu6800.probes.height  # no cell in two probe sets
    assert hu6800.qc_units["qc_type"].to_list() == [10, 9, 2, 1, 4, 3, 15, 16, 11, 12]
    assert hu6800.qc_probes.height == hu6800.qc_units["num_cells"].sum() == 3020
    first = hu6800.units.row(0, named=True)
    assert (first["name"], first["probeset"], first["num_cells"], first["unit_number"]) == (
        "NONE",
        "AFFX-BioB-5_at",
        40,
        10,
    )


def test_hu6800_probes_match_a_plain_python_reading(hu6800: CdfFile, hu6800_text: bytes) -> None:
    rows = []
    section = ""
    block_name = ""
    for line in hu6800_text.decode("latin-1").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "_Block" in section and line.startswith("Name="):
            block_name = line[5:]
        elif "_Block" in section and line.startswith("Cell") and not line.startswith("CellHeader"):
            f = line.split("=", 1)[1].split("\t")
            rows.append((block_name, int(f[0]), int(f[1]), f[8], f[9], int(f[10]), int(f[11])))
    assert len(rows) == 281_966
    p = hu6800.probes
    assert p["probeset"].to_list() == [r[0] for r in rows]
    assert p["x"].to_list() == [r[1] for r in rows] and p["y"].to_list() == [r[2] for r in rows]
    assert p["pbase"].to_list() == [r[3] for r in rows] and p["tbase"].to_list() == [r[4] for r in rows]
    assert p["atom"].to_list() == [r[5] for r in rows] and p["index"].to_list() == [r[6] for r in rows]
    head = p.head(4).select("x", "y", "pbase", "tbase", "is_pm").rows()
    assert head == [
        (1, 11, "A", "T", True),
        (1, 12, "T", "T", False),
        (2, 11, "C", "G", True),
        (2, 12, "G", "G", False),
    ]


def test_hu6800_pm_mm_rule_agrees_with_the_physical_layout(hu6800: CdfFile) -> None:
    """Every atom has one PM and one MM (by the base rule), and the MM sits at (x, y + 1)."""
    p = hu6800.probes
    per_atom = p.group_by("unit", "atom").agg(pl.col("is_pm").sum().alias("pm"), pl.len().alias("n"))
    assert per_atom["pm"].to_list() == [1] * per_atom.height and set(per_atom["n"]) == {2}
    pm = p.filter(pl.col("is_pm")).select("unit", "atom", "x", "y")
    mm = p.filter(~pl.col("is_pm")).select("unit", "atom", pl.col("x").alias("mx"), pl.col("y").alias("my"))
    pairs = pm.join(mm, on=["unit", "atom"])
    assert pairs.height == 140_983
    assert pairs.filter((pl.col("mx") != pl.col("x")) | (pl.col("my") != pl.col("y") + 1)).height == 0
    assert hu6800.pm_probes().height == 140_983


def test_is_pm_rule() -> None:
    pbase = ["a", "T", "C", "g", "N", "A", "T", "C"]
    tbase = ["t", "a", "G", "C", "N", "A", "G", "!"]
    assert is_pm(pbase, tbase).tolist() == [True, True, True, True, False, False, False, False]


def test_hu6800_qc_probes(hu6800: CdfFile, hu6800_text: bytes) -> None:
    q = hu6800.qc_probes
    assert q.row(0, named=True) == {
        "qc": 1,
        "x": 167,
        "y": 70,
        "index": 37687,
        "probe_length": 20,
        "atom": 0,
        "pm_flag": 0,
        "bg_flag": 0,
    }
    fifth = q.row(4, named=True)  # Cell5=167 74 ! 1 0 39831 -1 1
    assert (fifth["x"], fifth["y"], fifth["probe_length"], fifth["pm_flag"], fifth["bg_flag"]) == (
        167,
        74,
        1,
        -1,
        1,
    )
    # QC units whose CellHeader has no MATCH/BG columns give nulls, not zeros.
    no_match = q.filter(pl.col("qc") == 3)
    assert no_match.height == 32 and no_match["pm_flag"].null_count() == 32


@pytest.fixture(scope="module")
def hu6800_xda(hu6800: CdfFile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cdf_xda(hu6800, tmp_path_factory.mktemp("cdf") / "Hu6800.cdf")


def test_xda_round_trip(hu6800: CdfFile, hu6800_xda: Path) -> None:
    back = read_cdf(hu6800_xda)
    assert (back.format, back.chip_name, back.rows, back.cols) == ("xda", "Hu6800", 536, 536)
    assert back.probes.equals(hu6800.probes)
    same_units = [
        "unit",
        "unit_number",
        "unit_type",
        "direction",
        "num_atoms",
        "num_cells",
        "num_blocks",
        "probeset",
    ]
    assert back.units.select(same_units).equals(hu6800.units.select(same_units))
    assert set(back.units["unit_type_code"]) == {1}  # XDA code of "expression"
    assert back.units["name"].equals(hu6800.units["probeset"].alias("name"))  # XDA stores the probe set name
    assert back.qc_units.equals(hu6800.qc_units)
    same_qc = ["qc", "x", "y", "index", "probe_length"]
    assert back.qc_probes.select(same_qc).equals(hu6800.qc_probes.select(same_qc))
    flags = hu6800.qc_probes["pm_flag"].fill_null(0).to_numpy() & 0xFF  # -1 is stored as the byte 255
    assert np.array_equal(back.qc_probes["pm_flag"].to_numpy(), flags)
    gz = hu6800_xda.with_name("Hu6800.CDF.gz")
    gz.write_bytes(gzip.compress(hu6800_xda.read_bytes(), compresslevel=1))
    assert read_cdf(gz).chip_name == "Hu6800" and read_cdf(gz).probes.equals(back.probes)


def _xda_cdf_bytes(*, cut: int | None = None, version: int = 1, declared_cells: int = 4) -> bytes:
    """A 4x3 XDA CDF packed by hand after affyio read_cdf_xda.c: 1 QC unit, 2 expression units."""
    cols, rows = 4, 3
    qc = (
        struct.pack("<HI", 7, 2)
        + struct.pack("<HHBBB", 0, 0, 25, 1, 0)
        + struct.pack("<HHBBB", 3, 2, 25, 0, 1)
    )

    def unit(number: int, name: bytes, cells: list[tuple[int, int, int, bytes, bytes]], ncells: int) -> bytes:
        out = struct.pack("<HBiiiiB", 1, 1, 2, 1, ncells, number, 2)
        out += struct.pack("<iiBBii64s", 2, len(cells), 2, 1, 0, 1, name)
        for atom, x, y, pbase, tbase in cells:
            out += struct.pack("<iHHicc", atom, x, y, atom, pbase, tbase)
        return out

    u1 = unit(
        5,
        b"ps_one_at",
        [(0, 1, 0, b"A", b"T"), (0, 1, 1, b"T", b"T"), (1, 2, 0, b"G", b"C"), (1, 2, 1, b"C", b"C")],
        declared_cells,
    )
    u2 = unit(9, b"ps_two_at", [(0, 3, 0, b"c", b"g"), (0, 3, 1, b"G", b"g")], 2)
    names = b"ps_one_at".ljust(64, b"\0") + b"ps_two_at".ljust(64, b"\0")
    head = struct.pack("<iiHHiii", 67, version, cols, rows, 2, 1, 3) + b"REF" + names
    first = len(head) + 4 * 3
    offsets = struct.pack("<3i", first, first + len(qc), first + len(qc) + len(u1))
    data = head + offsets + qc + u1 + u2
    return data if cut is None else data[:cut]


def test_hand_packed_xda_cdf() -> None:
    cdf = read_cdf(_xda_cdf_bytes(), name="tiny.cdf")
    assert (cdf.chip_name, cdf.rows, cdf.cols, cdf.chip_reference) == ("tiny", 3, 4, "REF")
    assert cdf.units.select("unit", "name", "unit_number", "unit_type", "num_cells").rows() == [
        (1, "ps_one_at", 5, "expression", 4),
        (2, "ps_two_at", 9, "expression", 2),
    ]
    p = cdf.probes
    assert p["probeset"].to_list() == ["ps_one_at"] * 4 + ["ps_two_at"] * 2
    assert p.select("x", "y", "index").rows() == [
        (1, 0, 1),
        (1, 1, 5),
        (2, 0, 2),
        (2, 1, 6),
        (3, 0, 3),
        (3, 1, 7),
    ]
    assert p["is_pm"].to_list() == [True, False, True, False, True, False]
    assert p["pbase"].to_list()[4:] == ["C", "G"]  # upper-cased
    assert cdf.qc_probes.select("x", "y", "probe_length", "pm_flag", "bg_flag").rows() == [
        (0, 0, 25, 1, 0),
        (3, 2, 25, 0, 1),
    ]


def test_xda_cdf_bad_inputs() -> None:
    full = _xda_cdf_bytes()
    for cut in (6, 30, 150, len(full) - 20, len(full) - 1):
        with pytest.raises(CdfFormatError, match="truncated or corrupt XDA CDF"):
            read_cdf(_xda_cdf_bytes(cut=cut), name="cut.cdf")
    with pytest.raises(CdfFormatError, match="unsupported version 2"):
        read_cdf(_xda_cdf_bytes(version=2))
    with pytest.raises(CdfFormatError, match="declares 5 cells but its blocks hold 4"):
        read_cdf(_xda_cdf_bytes(declared_cells=5))


def _tiny_text_cdf(
    *, cols: int = 4, units: int = 1, num_cells: int = 2, cells: list[str] | None = None, blocks: int = 1
) -> bytes:
    # INDEX values 1 and 5 are x + 4*y: right for the default Cols=4 only.
    cells = cells or [
        "Cell1=1\t0\tN\tcontrol\tps\t0\t13\tA\tA\tT\t0\t1\t-1\t-1\t99",
        "Cell2=1\t1\tN\tcontrol\tps\t0\t13\tA\tT\tT\t0\t5\t-1\t-1\t99",
    ]
    lines = [
        "[CDF]",
        "Version=GC3.0",
        "",
        "[Chip]",
        "Name=tiny",
        "Rows=3",
        f"Cols={cols}",
        f"NumberOfUnits={units}",
        "MaxUnit=1",
        "NumQCUnits=0",
        "ChipReference=",
        "",
        "[Unit1]",
        "Name=NONE",
        "Direction=1",
        "NumAtoms=1",
        f"NumCells={num_cells}",
        "UnitNumber=1",
        "UnitType=3",
        f"NumberBlocks={blocks}",
        "",
        "[Unit1_Block1]",
        "Name=ps",
        "BlockNumber=1",
        "NumAtoms=1",
        f"NumCells={num_cells}",
        "StartPosition=0",
        "StopPosition=0",
        "CellHeader=X\tY\tPROBE\tFEAT\tQUAL\tEXPOS\tPOS\tCBASE\tPBASE\tTBASE\tATOM\tINDEX\tCODONIND\tCODON"
        "\tREGIONTYPE\tREGION",
        *cells,
        "",
    ]
    return "\n".join(lines).encode()


def test_tiny_text_cdf_without_trailing_tab() -> None:
    cdf = read_cdf(_tiny_text_cdf(), name="tiny.CDF")
    assert (cdf.version, cdf.rows, cdf.cols, cdf.num_units) == ("GC3.0", 3, 4, 1)
    # PBASE A / TBASE T is complementary (PM); T / T is not (MM).
    assert cdf.probes.select("x", "y", "index", "pbase", "tbase", "is_pm").rows() == [
        (1, 0, 1, "A", "T", True),
        (1, 1, 5, "T", "T", False),
    ]
    assert cdf.qc_units.height == 0 and cdf.qc_probes.height == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"units": 2}, r"NumberOfUnits=2 but 1 \[Unit\] sections"),
        ({"num_cells": 3}, r"\[Unit1_Block1\] NumCells=3 but 2 cell rows"),
        ({"blocks": 2}, "NumberBlocks=2 but 1 block sections"),
        ({"cols": 5}, r"INDEX != x \+ cols\*y"),
        (
            {
                "cells": [
                    "Cell1=9\t0\tN\tc\tps\t0\t13\tA\tA\tT\t0\t9\t-1\t-1\t99",
                    "Cell2=1\t1\tN\tc\tps\t0\t13\tA\tT\tT\t0\t5\t-1\t-1\t99",
                ]
            },
            "outside the 4x3 grid",
        ),
        ({"cells": ["Cell1=1\t0\tN", "Cell2=1\t1\tN"]}, "too few"),
        (
            {
                "cells": [
                    "Cell1=1\tq\tN\tc\tps\t0\t13\tA\tA\tT\t0\t1\t-1\t-1\t99",
                    "Cell2=1\t1\tN\tc\tps\t0\t13\tA\tT\tT\t0\t5\t-1\t-1\t99",
                ]
            },
            "malformed",
        ),
    ],
)
def test_text_cdf_bad_inputs(kwargs: dict, message: str) -> None:
    with pytest.raises(CdfFormatError, match=message):
        read_cdf(_tiny_text_cdf(**kwargs), name="tiny.CDF")


def test_truncated_hu6800_and_other_bad_files(hu6800_text: bytes, tmp_path: Path) -> None:
    for cut in (len(hu6800_text) // 2, len(hu6800_text) - 100):
        path = tmp_path / f"cut{cut}.CDF"
        path.write_bytes(hu6800_text[:cut])
        with pytest.raises(CdfFormatError, match=f"cut{cut}.CDF: .*(NumberOfUnits|NumCells|malformed)"):
            read_cdf(path)
    with pytest.raises(CdfFormatError, match="empty file"):
        read_cdf(b"")
    with pytest.raises(CdfFormatError, match="not a CDF file"):
        read_cdf(b"[CEL]\nVersion=3\n")
    with pytest.raises(CdfFormatError, match="truncated or corrupt gzip"):
        read_cdf(gzip.compress(hu6800_text[:100000], compresslevel=1)[:5000])
