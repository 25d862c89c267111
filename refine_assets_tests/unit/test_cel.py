"""CEL readers: real files (text v3, Calvin, Biopython v3/v4 fixtures), a v4 round trip, bad inputs, CLI.

Expected values come from reading the files independently (plain Python over the text, raw byte
offsets for Calvin), from the MANIFEST of ``../shared/data`` and methods spec section 3, and from the
physical layout of 3' IVT arrays (a PM cell at (x, y) has its MM at (x, y + 1)).
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.commands.cel import register
from refine_assets.lib.affy.cel import (
    FORMAT_CALVIN,
    FORMAT_TEXT,
    FORMAT_XDA,
    CelFile,
    CelFormatError,
    CelWarning,
    chip_type_from_dat_header,
    read_cel,
    write_cel_v4,
)

C30057 = "microarray/C30057.CEL.gz"
MOUSE = "microarray/Mouse430_2_97.CEL.gz"
BIO_V3 = "microarray/biopython_affy_v3_example.CEL"
BIO_V4 = "microarray/biopython_affy_v4_example.CEL"


@pytest.fixture(scope="module")
def c30057(shared_data: Path) -> CelFile:
    return read_cel(shared_data / C30057)


@pytest.fixture(scope="module")
def c30057_text(shared_data: Path) -> bytes:
    return gzip.decompress((shared_data / C30057).read_bytes())


@pytest.fixture(scope="module")
def mouse(shared_data: Path) -> CelFile:
    return read_cel(shared_data / MOUSE)


@pytest.fixture(scope="module")
def mouse_raw(shared_data: Path) -> bytes:
    return gzip.decompress((shared_data / MOUSE).read_bytes())


# ------------------------------------------------------------------------------------------------
# Text v3: C30057 (HG_U95Av2)
# ------------------------------------------------------------------------------------------------


def test_c30057_header_facts(c30057: CelFile) -> None:
    assert c30057.format == FORMAT_TEXT
    assert c30057.chip_type == "HG_U95Av2"  # raw, from "HG_U95Av2.1sq" in the DatHeader
    assert c30057.platform == "hgu95av2"
    assert c30057.internal_code == "hgu95av2"
    assert (c30057.rows, c30057.cols, c30057.num_cells) == (640, 640, 409_600)
    assert c30057.masks.shape == (0, 2)
    assert c30057.outliers.shape == (145, 2)
    assert c30057.modified.shape == (0, 3)
    assert c30057.scan_date == "2003-03-18T11:38:54"
    assert c30057.algorithm == "Percentile"
    assert c30057.algorithm_parameters == {
        "Percentile": "75",
        "CellMargin": "2",
        "OutlierHigh": "1.500",
        "OutlierLow": "1.004",
    }
    assert c30057.header["GridCornerUL"] == "233 236"
    assert c30057.warnings == ()
    assert c30057.intensities.dtype == np.float64 and c30057.npixels.dtype == np.int32


def test_c30057_every_cell_matches_a_plain_python_reading(c30057: CelFile, c30057_text: bytes) -> None:
    lines = c30057_text.decode("latin-1").splitlines()
    start = lines.index("[INTENSITY]") + 3  # NumberCells=, CellHeader=
    rows = [line.split() for line in lines[start : start + 409_600]]
    x = np.array([int(r[0]) for r in rows])
    y = np.array([int(r[1]) for r in rows])
    index = x + 640 * y
    mean = np.empty(409_600)
    stdev = np.empty(409_600)
    npix = np.empty(409_600, dtype=np.int64)
    mean[index] = [float(r[2]) for r in rows]
    stdev[index] = [float(r[3]) for r in rows]
    npix[index] = [int(r[4]) for r in rows]
    assert np.array_equal(np.sort(index), np.arange(409_600))
    assert np.array_equal(c30057.intensities, mean)  # bit-identical to Python's float()
    assert np.array_equal(c30057.stdev, stdev)
    assert np.array_equal(c30057.npixels, npix)
    # Values quoted in methods spec section 3.1, and the last cell of the file.
    assert c30057.intensities[:3].tolist() == [256.0, 20759.0, 261.0]
    last = c30057.cell_index(639, 639)
    assert (c30057.intensities[last], c30057.stdev[last], c30057.npixels[last]) == (192.0, 35.7, 25)
    assert (c30057.intensities[c30057.cell_index(4, 0)], c30057.stdev[4]) == (116.5, 25.2)
    out_start = lines.index("[OUTLIERS]") + 3
    outliers = [tuple(map(int, line.split())) for line in lines[out_start : out_start + 145]]
    assert c30057.outliers.tolist() == [list(o) for o in outliers]
    assert outliers[0] == (572, 2) and outliers[-1] == (617, 638)


def test_c30057_pm_brighter_than_mm_with_probe_table(c30057: CelFile, shared_data: Path) -> None:
    """MANIFEST: (x, y) brighter than (x, y+1) for 71.8 % of probes, medians 303 vs 193.5."""
    probes = pl.read_csv(shared_data / "probes/HG-U95Av2_probes.tsv.gz", separator="\t", columns=["x", "y"])
    x, y = probes["x"].to_numpy(), probes["y"].to_numpy()
    assert len(x) == 199_084
    pm = c30057.intensities[c30057.cell_index(x, y)]
    mm = c30057.intensities[c30057.cell_index(x, y + 1)]
    assert round(float((pm > mm).mean()), 3) == 0.718
    assert (float(np.median(pm)), float(np.median(mm))) == (303.0, 193.5)
    # The same comparison on transposed coordinates is a coin toss: the index convention matters.
    pm_t = c30057.intensities[c30057.cell_index(y, x)]
    mm_t = c30057.intensities[c30057.cell_index(y + 1, x)]
    assert abs(float((pm_t > mm_t).mean()) - 0.5) < 0.02


def _pair_correlations(cel: CelFile) -> dict[str, float]:
    grid = np.log2(cel.intensities).reshape(cel.rows, cel.cols)  # grid[y, x]
    out = {}
    for parity in (0, 1):
        a, b = grid[parity:-1:2, :], grid[parity + 1 :: 2, :]
        out[f"vertical{parity}"] = float(np.corrcoef(a.ravel(), b[: a.shape[0]].ravel())[0, 1])
        a, b = grid[:, parity:-1:2], grid[:, parity + 1 :: 2]
        out[f"horizontal{parity}"] = float(np.corrcoef(a.ravel(), b[:, : a.shape[1]].ravel())[0, 1])
    return out


def test_pm_mm_rows_correlate_only_vertically(c30057: CelFile, mouse: CelFile) -> None:
    """3' IVT layout: PM at odd y pairs with its MM at y+1 (correlated); other neighbours are not."""
    for cel in (c30057, mouse):
        corr = _pair_correlations(cel)
        assert corr["vertical1"] > 0.7, (cel.source, corr)
        assert max(corr["vertical0"], corr["horizontal0"], corr["horizontal1"]) < 0.4, (cel.source, corr)


# ------------------------------------------------------------------------------------------------
# Calvin: Mouse430_2_97
# ------------------------------------------------------------------------------------------------


def test_mouse_calvin_header_facts(mouse: CelFile) -> None:
    assert mouse.format == FORMAT_CALVIN
    assert mouse.chip_type == "Mouse430_2"
    assert mouse.platform == "mouse4302" and mouse.internal_code == "mouse4302"
    assert (mouse.rows, mouse.cols, mouse.num_cells) == (1002, 1002, 1_004_004)
    assert mouse.outliers.shape == (310, 2) and mouse.masks.shape == (0, 2)
    assert mouse.scan_date is not None and mouse.scan_date.startswith("2010-02-04")
    assert mouse.intensities[:5].tolist() == [293.0, 10758.0, 374.0, 11088.0, 112.0]  # spec section 3.3
    assert mouse.header["affymetrix-cel-rows"] == "1002"
    assert mouse.algorithm_parameters["CellMargin"] == "2"
    assert mouse.warnings == ()


def _utf16_name(text: str) -> bytes:
    return struct.pack(">i", len(text)) + text.encode("utf-16-be")


def test_mouse_calvin_data_sets_match_raw_byte_offsets(mouse: CelFile, mouse_raw: bytes) -> None:
    """Independent reading: a data set header is (uint32 data offset, uint32 next offset, name)."""

    def data_set(name: str) -> tuple[int, int]:
        at = mouse_raw.find(_utf16_name(name))  # first occurrence: the data set (then its column)
        start, end = struct.unpack_from(">II", mouse_raw, at - 8)
        assert at < start < end <= len(mouse_raw)
        return start, end

    start, end = data_set("Intensity")
    assert end - start == 4 * 1_004_004 + 1  # every data set of this file is followed by one byte
    assert np.array_equal(mouse.intensities, np.frombuffer(mouse_raw, ">f4", 1_004_004, start).astype(float))
    start, _ = data_set("StdDev")
    assert np.array_equal(mouse.stdev, np.frombuffer(mouse_raw, ">f4", 1_004_004, start).astype(float))
    start, _ = data_set("Pixel")
    assert np.array_equal(mouse.npixels, np.frombuffer(mouse_raw, ">i2", 1_004_004, start))
    start, end = data_set("Outlier")
    assert end - start == 310 * 4 + 1
    assert np.array_equal(mouse.outliers, np.frombuffer(mouse_raw, ">i2", 620, start).reshape(-1, 2))
    assert _utf16_name("affymetrix-array-type") in mouse_raw
    assert "Mouse430_2".encode("utf-16-be") in mouse_raw


def test_intensity_invariants(c30057: CelFile, mouse: CelFile) -> None:
    for cel in (c30057, mouse):
        assert (cel.intensities > 0).all() and (cel.stdev >= 0).all() and (cel.npixels > 0).all()
        ratio = float(np.median(cel.stdev / cel.intensities))
        assert 0.05 < ratio < 0.5, (cel.source, ratio)  # a pixel spread, not a count or a position
        assert cel.npixels.max() <= 49  # at most the 7x7 full feature of these scans
        xy = cel.outliers
        assert len({tuple(p) for p in xy.tolist()}) == len(xy)


# ------------------------------------------------------------------------------------------------
# XDA v4: the Biopython fixture, a full-size round trip, non-square dimensions
# ------------------------------------------------------------------------------------------------


def test_biopython_v4_cell_block_found_from_the_end(shared_data: Path) -> None:
    with pytest.warns(CelWarning, match="located at byte 829"):
        cel = read_cel(shared_data / BIO_V4)
    assert cel.format == FORMAT_XDA
    assert (cel.rows, cel.cols) == (5, 5)
    assert cel.chip_type == "HuEx-1_0-st-v2" and cel.platform == "huex10stv2"
    i = np.arange(25, dtype=float)
    assert np.array_equal(cel.intensities, i)  # MANIFEST: mean = i, stdev = -i, pixels = 9
    assert np.array_equal(cel.stdev, -i)
    assert (cel.npixels == 9).all()
    assert cel.algorithm == "Percentile"
    assert cel.algorithm_parameters["CellMargin"] == "4"
    assert cel.algorithm_parameters["NumDATSubgrids"] == "169"
    assert cel.scan_date == "2005-05-25T23:19:07"
    assert cel.masks.shape == (0, 2) and cel.outliers.shape == (0, 2)
    assert len(cel.warnings) == 1


@pytest.fixture(scope="module")
def c30057_v4(c30057: CelFile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cel_v4(c30057, tmp_path_factory.mktemp("v4") / "C30057_v4.CEL")


def test_v4_round_trip_full_size(c30057: CelFile, c30057_v4: Path) -> None:
    back = read_cel(c30057_v4)
    assert back.format == FORMAT_XDA and back.warnings == ()
    assert (back.chip_type, back.platform, back.rows, back.cols) == ("HG_U95Av2", "hgu95av2", 640, 640)
    assert np.array_equal(back.intensities, c30057.intensities.astype(np.float32).astype(np.float64))
    assert np.array_equal(back.stdev, c30057.stdev.astype(np.float32).astype(np.float64))
    # Every C30057 mean is a multiple of 0.1 below 65536: float32 keeps it to 1 part in 2**24.
    assert np.allclose(back.intensities, c30057.intensities, rtol=2**-24, atol=0)
    assert np.array_equal(back.npixels, c30057.npixels)
    assert np.array_equal(back.outliers, c30057.outliers) and back.masks.shape == (0, 2)
    assert back.algorithm == "Percentile" and back.algorithm_parameters == c30057.algorithm_parameters
    assert back.header["DatHeader"] == c30057.header["DatHeader"]
    assert back.scan_date == c30057.scan_date
    # Layout: 24 fixed bytes, header, two strings, 16 count bytes, 10 per cell, 4 per outlier.
    header_len = struct.unpack_from("<i", c30057_v4.read_bytes(), 20)[0]
    algorithm_block = (
        4 + len("Percentile") + 4 + len("Percentile:75;CellMargin:2;OutlierHigh:1.500;OutlierLow:1.004")
    )
    assert c30057_v4.stat().st_size == 24 + header_len + algorithm_block + 16 + 10 * 409_600 + 4 * 145


def test_v4_gzip_and_bytes_sources(c30057_v4: Path, tmp_path: Path) -> None:
    raw = c30057_v4.read_bytes()
    misnamed = tmp_path / "plain_name.CEL"  # gzip content without a .gz name: sniffed by magic
    misnamed.write_bytes(gzip.compress(raw, compresslevel=1))
    a = read_cel(misnamed)
    b = read_cel(raw, name="sample-1")
    assert b.source == "sample-1"
    assert np.array_equal(a.intensities, b.intensities)


def _xda_bytes(
    first: int, second: int, header: str, means: np.ndarray, *, ncells: int | None = None
) -> bytes:
    """A v4 file packed by hand, independent of write_cel_v4."""
    n = means.size
    head = header.encode("latin-1")
    out = struct.pack("<6i", 64, 4, first, second, n if ncells is None else ncells, len(head)) + head
    out += struct.pack("<i", 3) + b"Alg" + struct.pack("<i", 12) + b"CellMargin:3"
    out += struct.pack("<iIIi", 3, 1, 1, 0)
    cells = np.zeros(n, dtype=[("m", "<f4"), ("s", "<f4"), ("p", "<i2")])
    cells["m"], cells["s"], cells["p"] = means, means / 10, 16
    return out + cells.tobytes() + struct.pack("<4h", 2, 0, 0, 1)  # mask (2,0), outlier (0,1)


@pytest.mark.parametrize("doc_order", [False, True])
def test_v4_non_square_dimensions_follow_the_header_lines(doc_order: bool) -> None:
    rows, cols = 2, 3
    dat = "DatHeader=[0..65535]  x:CLS=3 RWS=2 \x14 Test_Chip-1.1sq \x14 6"
    means = np.arange(6, dtype=np.float32) * 1.5
    first, second = (cols, rows) if doc_order else (rows, cols)
    cel = read_cel(_xda_bytes(first, second, f"Cols={cols}\nRows={rows}\n{dat}\n", means))
    assert (cel.rows, cel.cols) == (rows, cols)
    assert cel.chip_type == "Test_Chip-1" and cel.platform == "testchip1"
    assert np.array_equal(cel.intensities, means.astype(float))
    assert cel.masks.tolist() == [[2, 0]] and cel.outliers.tolist() == [[0, 1]]
    assert cel.algorithm == "Alg" and cel.algorithm_parameters == {"CellMargin": "3"}
    x, y = cel.cell_xy()
    assert x.tolist() == [0, 1, 2, 0, 1, 2] and y.tolist() == [0, 0, 0, 1, 1, 1]


def test_v4_writer_round_trips_non_square(tmp_path: Path) -> None:
    dat = "DatHeader=[0..65535]  x:CLS=3 RWS=2 \x14 Test_Chip-1.1sq \x14 6"
    means = np.array([1.25, 2.5, 3.0, 4.0, 5.5, 65000.0], dtype=np.float32)
    cel = read_cel(_xda_bytes(2, 3, f"Cols=3\nRows=2\n{dat}\n", means))
    back = read_cel(write_cel_v4(cel, tmp_path / "ns.CEL"))
    assert (back.rows, back.cols) == (2, 3)
    for field in ("intensities", "stdev", "npixels", "masks", "outliers"):
        assert np.array_equal(getattr(back, field), getattr(cel, field)), field


def test_v4_rejects_inconsistent_or_truncated(c30057_v4: Path) -> None:
    raw = c30057_v4.read_bytes()
    for cut in (10, 23, 200, 24 + 700, len(raw) // 2, len(raw) - 1):
        with pytest.raises(CelFormatError, match=r"truncated|corrupt"):
            read_cel(raw[:cut], name=f"cut{cut}")
    dat = "DatHeader= \x14 Chip.1sq \x14"
    means = np.ones(6, dtype=np.float32)
    with pytest.raises(CelFormatError, match="number of cells 7 != rows\\*cols"):
        read_cel(_xda_bytes(2, 3, f"{dat}\n", means, ncells=7))
    with pytest.raises(CelFormatError, match="disagree with header"):
        read_cel(_xda_bytes(2, 3, f"Cols=4\nRows=2\n{dat}\n", means))
    with pytest.raises(CelFormatError, match="no chip type"):
        read_cel(_xda_bytes(2, 3, "DatHeader=no chip here\n", means))
    with pytest.raises(CelFormatError, match="unsupported version 5"):
        read_cel(struct.pack("<2i", 64, 5) + b"\0" * 40)
    bad = np.ones(6, dtype=np.float32)
    bad[2] = -5.0  # affyio: a negative mean means a corrupt file
    with pytest.raises(CelFormatError, match="truncated or corrupt"):
        read_cel(_xda_bytes(2, 3, f"{dat}\n", bad))


# ------------------------------------------------------------------------------------------------
# Text v3: the Biopython fixture and bad inputs
# ------------------------------------------------------------------------------------------------

# From the file itself (the last row given for a cell wins; rows y = 0..4, x = 0..4).
BIO_V3_MEANS = [
    [234.0, 170.0, 22177.0, 164.0, 22104.0],
    [188.0, 188.0, 21871.0, 168.0, 21883.0],
    [188.0, 193.0, 21455.0, 198.0, 21300.0],
    [188.0, 182.0, 21438.0, 188.0, 20945.0],
    [193.0, 20370.0, 174.0, 20605.0, 168.0],
]
BIO_V3_STDEVS = [
    [24.0, 34.5, 2669.0, 19.7, 3661.2],
    [29.8, 29.8, 2795.9, 67.9, 2792.4],
    [29.8, 88.7, 2976.5, 62.0, 2914.5],
    [29.8, 76.2, 2759.5, 49.2, 2762.0],
    [38.8, 2611.8, 26.6, 2810.7, 24.1],
]


def test_biopython_v3_duplicates_last_row_wins(shared_data: Path) -> None:
    with pytest.warns(CelWarning, match="29 rows for NumberCells=25; 4 rows repeat a cell"):
        cel = read_cel(shared_data / BIO_V3)
    assert cel.format == FORMAT_TEXT
    assert (cel.rows, cel.cols) == (5, 5)
    assert cel.chip_type == "Tgondii_SNP1" and cel.platform == "tgondiisnp1" and cel.internal_code is None
    assert cel.intensities.reshape(5, 5).tolist() == BIO_V3_MEANS
    assert cel.stdev.reshape(5, 5).tolist() == BIO_V3_STDEVS
    assert (cel.npixels == 25).all()
    assert cel.masks.tolist() == [[4, 1], [4, 2], [3, 1]]
    assert cel.outliers.tolist() == [[1, 1], [2, 1], [1, 3]]
    assert cel.modified.tolist() == [[3, 1, 189.0], [3, 2, 21775.0], [4, 1, 220.0]]
    assert cel.scan_date == "2007-08-23T11:23:24"
    assert cel.algorithm_parameters["StdMult"] == "1.000000"


def _tiny_v3(
    *,
    cols: int = 3,
    rows: int = 2,
    number_cells: int | None = None,
    cells: list[str] | None = None,
    dat: str = "[0..65535]  t:CLS=3 RWS=2 XIN=3 YIN=3 VE=17 2.0 01/02/99 10:11:12 \x14 Tiny_Chip.1sq \x14 6",
    tail: str = "[MASKS]\r\nNumberCells=0\r\nCellHeader=X\tY\r\n\r\n[OUTLIERS]\r\nNumberCells=1\r\n"
    "CellHeader=X\tY\r\n2\t1\r\n\r\n",
) -> bytes:
    if cells is None:
        cells = [f"{i % cols:3d}\t{i // cols:3d}\t{100.5 + i}\t{i / 10}\t 16" for i in range(cols * rows)]
    lines = [
        "[CEL]",
        "Version=3",
        "",
        "[HEADER]",
        f"Cols={cols}",
        f"Rows={rows}",
        f"DatHeader={dat}",
        "Algorithm=Percentile",
        "AlgorithmParameters=Percentile:75;CellMargin:2",
        "",
        "[INTENSITY]",
        f"NumberCells={rows * cols if number_cells is None else number_cells}",
        "CellHeader=X\tY\tMEAN\tSTDV\tNPIXELS",
        *cells,
        "",
    ]
    return ("\r\n".join(lines) + "\r\n" + tail).encode("latin-1")


def test_v3_values_are_correctly_rounded() -> None:
    """Means/stdevs equal Python's float() of the text (what C atof gives affyio), for long decimals too."""
    rng = np.random.default_rng(7)
    n = 40 * 50
    values = rng.random(n) * 10.0 ** rng.integers(-3, 6, n)
    texts = [
        repr(float(v)) if i % 3 == 0 else f"{v:.7g}" if i % 3 == 1 else f"{v:.17g}"
        for i, v in enumerate(values)
    ]
    cells = [f"{i % 50}\t{i // 50}\t{t}\t{t}\t 9" for i, t in enumerate(texts)]
    cel = read_cel(_tiny_v3(cols=50, rows=40, cells=cells))
    expected = np.array([float(t) for t in texts])
    assert np.array_equal(cel.intensities, expected) and np.array_equal(cel.stdev, expected)


def test_tiny_v3_and_placement_by_coordinates() -> None:
    cel = read_cel(_tiny_v3())
    assert cel.intensities.tolist() == [100.5, 101.5, 102.5, 103.5, 104.5, 105.5]
    assert cel.outliers.tolist() == [[2, 1]] and cel.scan_date == "1999-01-02T10:11:12"
    shuffled = _tiny_v3(cells=[f"{i % 3} {i // 3} {100.5 + i} 0.5 16" for i in (5, 0, 4, 1, 3, 2)])
    with pytest.warns(CelWarning, match="placed by their X, Y"):
        again = read_cel(shuffled)
    assert again.intensities.tolist() == cel.intensities.tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"number_cells": 5}, r"NumberCells=5 but Cols\*Rows = 3\*2 = 6"),
        (
            {"cols": 4, "number_cells": 8, "cells": [f"{i % 3} {i // 3} 1 1 16" for i in range(6)]},
            r"covering 6 of 8 cells; 2 missing, first \(3, 0\)",
        ),
        ({"cells": ["0 0 1 1 16"] * 6}, r"covering 1 of 6 cells; 5 missing, first \(1, 0\)"),
        (
            {"cells": ["0 0 1 1 16", "1 0 1 1 16", "2 0 1 1 16", "0 1 1 1 16", "1 1 1 1 16", "3 1 1 1 16"]},
            r"row 6 has cell \(3, 1\) outside the 3x2 grid",
        ),
        ({"cells": ["0 0 1 1 16"] * 5 + ["2 1 1 1"]}, "row 6 has fewer than 5 values"),
        ({"cells": ["0 0 1 1 16 9"] * 6}, "malformed .* 6 values per row, expected 5"),
        ({"cells": ["0 0 1 1 16"] * 5 + ["2 1 1 1 16 9"]}, "malformed"),
        ({"cells": ["0 0 abc 1 16"] * 6}, "malformed"),
        ({"dat": "no chip name"}, "no chip type"),
        ({"tail": ""}, r"no \[MASKS\] section"),
        (
            {"tail": "[MASKS]\r\nNumberCells=0\r\n\r\n[OUTLIERS]\r\nNumberCells=3\r\n1 1\r\n"},
            r"\[OUTLIERS\] NumberCells=3 but 1 rows",
        ),
    ],
)
def test_v3_bad_inputs(kwargs: dict, message: str) -> None:
    with pytest.raises(CelFormatError, match=message):
        read_cel(_tiny_v3(**kwargs), name="tiny.CEL")


def test_v3_truncated_copies_of_c30057(c30057_text: bytes, tmp_path: Path) -> None:
    gz = gzip.compress(c30057_text, compresslevel=1)
    cases = {
        "gzip_cut.CEL.gz": gz[: len(gz) // 2],
        "mid_intensity.CEL": c30057_text[: len(c30057_text) // 2],
        "mid_line.CEL": c30057_text[: c30057_text.find(b"[MASKS]") - 7],
        "before_masks.CEL": c30057_text[: c30057_text.find(b"[MASKS]")],
        "mid_outliers.CEL": c30057_text[: c30057_text.find(b"[MODIFIED]") - 40],
    }
    for file_name, content in cases.items():
        path = tmp_path / file_name
        path.write_bytes(content)
        with pytest.raises(CelFormatError) as info:
            read_cel(path)
        assert file_name in str(info.value)


def test_empty_wrong_magic_and_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.CEL"
    empty.write_bytes(b"")
    with pytest.raises(CelFormatError, match=r"empty\.CEL: empty file"):
        read_cel(empty)
    with pytest.raises(CelFormatError, match="empty file"):
        read_cel(gzip.compress(b""))
    with pytest.raises(CelFormatError, match="not a CEL file"):
        read_cel(b"GIF89a not a cel file")
    with pytest.raises(CelFormatError, match="text CEL of version '4'"):
        read_cel(b"[CEL]\r\nVersion=4\r\n")
    with pytest.raises(FileNotFoundError):
        read_cel(tmp_path / "missing.CEL")


def test_chip_type_from_dat_header() -> None:
    assert chip_type_from_dat_header("a  \x14 HG-U133_Plus_2.1sq \x14 6") == "HG-U133_Plus_2"
    assert chip_type_from_dat_header("x\x14Mouse430_2.1sq\x14") == "Mouse430_2"
    assert chip_type_from_dat_header("no chip") is None and chip_type_from_dat_header(None) is None


# ------------------------------------------------------------------------------------------------
# Calvin: synthetic files packed by hand
# ------------------------------------------------------------------------------------------------


def _astr(raw: bytes) -> bytes:
    return struct.pack(">i", len(raw)) + raw


def _param(name: str, value: str | int) -> bytes:
    if isinstance(value, int):
        blob, mime = struct.pack(">i", value) + b"\0" * 12, "text/x-calvin-integer-32"
    else:
        blob, mime = value.encode("utf-16-be") + b"\0\0" * 4, "text/plain"
    return _utf16_name(name) + _astr(blob) + _utf16_name(mime)


def _data_header(data_type: str, params: list[bytes], parents: list[bytes]) -> bytes:
    out = _astr(data_type.encode()) + _astr(b"guid") + _utf16_name("") + _utf16_name("en-US")
    out += struct.pack(">i", len(params)) + b"".join(params)
    return out + struct.pack(">i", len(parents)) + b"".join(parents)


def _calvin_bytes(
    rows: int,
    cols: int,
    intensity: np.ndarray,
    *,
    array_type: str | None = "Tiny-Chip_1",
    pixel_rows: int | None = None,
) -> bytes:
    """A Calvin CEL with array type in a parent header and data sets laid out back to back."""
    n = intensity.size
    scan = [_param("affymetrix-array-type", array_type)] if array_type else []
    parent = _data_header("affymetrix-calvin-scan-acquisition", scan, [])
    top = _data_header(
        "affymetrix-calvin-intensity",
        [
            _param("affymetrix-cel-rows", rows),
            _param("affymetrix-cel-cols", cols),
            _param("affymetrix-algorithm-name", "Percentile"),
            _param("affymetrix-algorithm-param-CellMargin", 2),
        ],
        [parent],
    )
    sets = [
        ("Intensity", [("Intensity", 6, 4)], intensity.astype(">f4").tobytes(), n),
        ("StdDev", [("StdDev", 6, 4)], (intensity / 10).astype(">f4").tobytes(), n),
        ("Pixel", [("Pixel", 2, 2)], np.full(pixel_rows or n, 25, ">i2").tobytes(), pixel_rows or n),
        ("Outlier", [("X", 2, 2), ("Y", 2, 2)], np.array([1, 0], ">i2").tobytes(), 1),
        ("Mask", [("X", 2, 2), ("Y", 2, 2)], b"", 0),
    ]
    group_at = 10 + len(top)
    group = struct.pack(">IIi", 0, 0, len(sets)) + _utf16_name("Default Group")
    pos = group_at + len(group)
    group = struct.pack(">IIi", 0, pos, len(sets)) + _utf16_name("Default Group")
    body = b""
    for name, columns, payload, nrows in sets:
        head = _utf16_name(name) + struct.pack(">i", 0) + struct.pack(">I", len(columns))
        head += b"".join(_utf16_name(c) + struct.pack(">Bi", t, s) for c, t, s in columns)
        head += struct.pack(">I", nrows)
        data_at = pos + 8 + len(head)
        next_at = data_at + len(payload)
        body += struct.pack(">II", data_at, next_at) + head + payload
        pos = next_at
    return bytes([59, 1]) + struct.pack(">iI", 1, group_at) + top + group + body


def test_calvin_synthetic_non_square() -> None:
    values = np.array([10.5, 20.0, 30.25, 40.0, 50.0, 60.0], dtype=np.float32)
    cel = read_cel(_calvin_bytes(2, 3, values))
    assert cel.format == FORMAT_CALVIN and (cel.rows, cel.cols) == (2, 3)
    assert cel.chip_type == "Tiny-Chip_1" and cel.platform == "tinychip1"  # found in the parent header
    assert cel.intensities.tolist() == values.tolist()
    assert np.array_equal(cel.stdev, (values / 10).astype(np.float32).astype(float))
    assert cel.outliers.tolist() == [[1, 0]] and cel.masks.shape == (0, 2)
    assert cel.algorithm == "Percentile" and cel.algorithm_parameters == {"CellMargin": "2"}
    assert cel.header["affymetrix-cel-cols"] == "3"


def test_calvin_bad_inputs() -> None:
    values = np.ones(6, dtype=np.float32)
    good = _calvin_bytes(2, 3, values)
    for cut in (5, 40, len(good) // 2, len(good) - 3):
        with pytest.raises(CelFormatError, match="truncated or corrupt Calvin"):
            read_cel(good[:cut], name="cut")
    with pytest.raises(CelFormatError, match="no chip type"):
        read_cel(_calvin_bytes(2, 3, values, array_type=None))
    with pytest.raises(CelFormatError, match="'Pixel' has 5 rows but rows\\*cols = 6"):
        read_cel(_calvin_bytes(2, 3, values, pixel_rows=5))
    with pytest.raises(CelFormatError, match="'Intensity' has 6 rows but rows\\*cols = 4"):
        read_cel(_calvin_bytes(2, 2, values))
    with pytest.raises(CelFormatError, match="unsupported version 2"):
        read_cel(bytes([59, 2]) + good[2:])
    nan = values.copy()
    nan[3] = np.nan
    with pytest.raises(CelFormatError, match=r"non-finite intensity at cell 3 \(x=0, y=1\)"):
        read_cel(_calvin_bytes(2, 3, nan))


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> tuple[typer.Typer, CliRunner]:
    app = typer.Typer()
    register(app)
    return app, CliRunner()


def test_cli_cel_info(cli: tuple[typer.Typer, CliRunner], shared_data: Path) -> None:
    app, runner = cli
    res = runner.invoke(app, ["cel-info", str(shared_data / MOUSE)])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert (
        info["format"] == "calvin" and info["chip_type"] == "Mouse430_2" and info["platform"] == "mouse4302"
    )
    assert (info["rows"], info["cols"], info["num_cells"]) == (1002, 1002, 1_004_004)
    assert (info["num_masks"], info["num_outliers"]) == (0, 310)
    assert info["scan_date"].startswith("2010-02-04") and info["algorithm"]


def test_cli_cel_intensities_gz(
    cli: tuple[typer.Typer, CliRunner], shared_data: Path, tmp_path: Path
) -> None:
    app, runner = cli
    out = tmp_path / "deep" / "c30057.tsv.gz"
    res = runner.invoke(app, ["cel-intensities", str(shared_data / C30057), "-o", str(out)])
    assert res.exit_code == 0, res.output
    lines = gzip.decompress(out.read_bytes()).decode().splitlines()
    assert lines[0] == "x\ty\tmean\tstdev\tnpixels"
    assert len(lines) == 1 + 409_600
    assert lines[1:4] == ["0\t0\t256\t59.1\t25", "1\t0\t20759\t2280.1\t20", "2\t0\t261\t28.4\t25"]
    assert lines[641].startswith("0\t1\t") and lines[-1] == "639\t639\t192\t35.7\t25"
    table = np.array([line.split("\t") for line in lines[1:]], dtype=float)
    cel = read_cel(shared_data / C30057)
    x, y = cel.cell_xy()
    assert np.array_equal(table[:, 0], x) and np.array_equal(table[:, 1], y)
    assert np.array_equal(table[:, 2], cel.intensities) and np.array_equal(table[:, 3], cel.stdev)
    assert [p.name for p in out.parent.iterdir()] == ["c30057.tsv.gz"]  # no temp file left behind


def test_cli_cel_intensities_float32_text_and_errors(
    cli: tuple[typer.Typer, CliRunner], shared_data: Path, tmp_path: Path
) -> None:
    app, runner = cli
    out = tmp_path / "mouse.tsv"
    res = runner.invoke(app, ["cel-intensities", str(shared_data / MOUSE), "-o", str(out)])
    assert res.exit_code == 0, res.output
    with out.open() as fh:
        head = [next(fh).rstrip("\n") for _ in range(3)]
    assert head == ["x\ty\tmean\tstdev\tnpixels", "0\t0\t293\t65.2\t25", "1\t0\t10758\t1790.7\t25"]
    bad = tmp_path / "bad.CEL"
    bad.write_bytes(b"nonsense")
    res = runner.invoke(app, ["cel-info", str(bad)])
    assert res.exit_code == 1 and "not a CEL file" in res.output
    res = runner.invoke(app, ["cel-intensities", str(bad), "-o", str(tmp_path / "x.tsv")])
    assert res.exit_code == 1 and not (tmp_path / "x.tsv").exists()
    res = runner.invoke(app, ["cel-info", str(shared_data / BIO_V3)])
    assert res.exit_code == 0 and json.loads(res.stdout)["warnings"]
