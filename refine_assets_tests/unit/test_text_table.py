"""The CEL text-table parser (``lib/affy/text_table.py``) and the shared gunzip (``lib/gz.py``).

Every value must equal Python's ``float()`` of its text (correct rounding, what C ``atof`` gives
affyio), whichever path the parser takes: the vectorized fast path (tab-separated rows, fields of up
to 8 digits with at most one dot, leading spaces), its per-field fallback (longer fields, signs,
exponents) or the line-by-line path (space-separated rows, blank lines). The last test compares
``read_cel`` with Bioconductor affyio itself on the real files.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from refine_assets.lib.affy.text_table import TextTableError, parse_number_table
from refine_assets.lib.gz import gunzip, maybe_gunzip


def _expected(rows: list[list[str]]) -> np.ndarray:
    return np.array([[float(t) for t in r] for r in rows])


def _random_tokens(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    for _ in range(n):
        v = rng.random() * 10.0 ** int(rng.integers(-5, 9))
        kind = int(rng.integers(0, 10))
        out.append(
            [
                f"{v:.{int(rng.integers(0, 7))}f}",  # fast path when <= 8 bytes
                repr(float(v)),  # often longer: per-field fallback
                f"{int(v)}",
                " " * int(rng.integers(1, 4)) + f"{v:.1f}",  # leading spaces
                f"{v:.3e}",  # exponent: fallback
                f"-{v:.2f}",  # sign: fallback
                ".5",
                "5.",
                f"00{int(v) % 1000}",
                f"{v:.1f}",  # the CEL mean/stdev layout (dot before the last digit)
            ][kind]
        )
    return out


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_fast_path_equals_float_of_the_text(newline: str) -> None:
    rng = np.random.default_rng(5)
    for _ in range(60):
        nrows, ncols = int(rng.integers(1, 400)), int(rng.integers(2, 7))
        rows = [_random_tokens(rng, ncols) for _ in range(nrows)]
        text = newline.join("\t".join(r) for r in rows) + newline
        got = parse_number_table(text.encode(), ncols)
        assert np.array_equal(got, _expected([[t.strip() for t in r] for r in rows]))


def test_cel_layout() -> None:
    """The INTENSITY layout: right-aligned X/Y and pixel counts, one-decimal means and SDs."""
    cols = 7
    cells = [
        f"{i % cols:3d}\t{i // cols:3d}\t{100.5 + i:.1f}\t{i / 10:.1f}\t {16 + i % 3}" for i in range(35)
    ]
    want = np.array([[i % cols, i // cols, 100.5 + i, float(f"{i / 10:.1f}"), 16 + i % 3] for i in range(35)])
    got = parse_number_table("\r\n".join(cells).encode(), 5)
    assert np.array_equal(got, want) and got[:, 2].flags.c_contiguous  # callers take whole columns


def test_general_path_and_blank_lines() -> None:
    got = parse_number_table(b"  1 2.5\r\n\r\n3\t 4 \n\n", 2)
    assert got.tolist() == [[1.0, 2.5], [3.0, 4.0]]
    short = parse_number_table(b"1 2\n3", 2)  # a short row: NaN where a value is missing
    assert short[0].tolist() == [1.0, 2.0] and short[1, 0] == 3.0 and np.isnan(short[1, 1])
    assert parse_number_table(b"\r\n \r\n", 3).shape == (0, 3)
    assert parse_number_table(b"1\t2\t3", 3).tolist() == [[1.0, 2.0, 3.0]]  # one row, no newline


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"1\t2\n3\tx", "non-numeric value b'x' in row 2"),
        (b"1\t2\n3\t1_0", "non-numeric value b'1_0'"),  # float() would accept it, C atof not
        (b"1\t2\n3\t.", r"non-numeric value b'\.'"),
        (b"1\t2\n3\t2 5", "non-numeric value b'2 5'"),  # a space inside a field
        (b"1\t  \n3\t4", "non-numeric value b.  . in row 1"),  # a field of spaces
        (b"1 2\n3 4 5", "expected 2 fields in row 2, saw 3"),
        (b"1 2 3\n3 4 5", "3 values per row, expected 2"),
    ],
)
def test_errors(text: bytes, message: str) -> None:
    with pytest.raises(TextTableError, match=message):
        parse_number_table(text, 2)


def test_gunzip_matches_the_gzip_module() -> None:
    payload = bytes(np.random.default_rng(1).integers(0, 40, 200_000, dtype=np.uint8))
    one = gzip.compress(payload)
    assert gunzip(one) == payload and isinstance(gunzip(one), bytes)
    assert gunzip(one + gzip.compress(b"tail")) == payload + b"tail"  # several members
    assert gunzip(gzip.compress(b"")) == b""
    assert maybe_gunzip(b"plain text") == b"plain text" and maybe_gunzip(one) == payload
    for damaged, error in (
        (one[: len(one) // 2], EOFError),
        (one + b"xx", gzip.BadGzipFile),  # trailing garbage: the standard library's verdict
        (one[:20] + bytes([one[20] ^ 0xFF]) + one[21:], (zlib.error, gzip.BadGzipFile, EOFError)),
    ):
        with pytest.raises(error):
            gunzip(damaged)


AFFYIO_READ = r"""
suppressPackageStartupMessages(library(affyio))
args <- commandArgs(TRUE)
x <- read.celfile(args[1], intensity.means.only = FALSE)
writeBin(c(x$INTENSITY$MEAN, x$INTENSITY$STDEV, as.double(x$INTENSITY$NPIXELS)), args[2])
writeLines(as.character(c(NROW(x$OUTLIERS), NROW(x$MASKS))), args[3])
"""


def test_read_cel_equals_affyio(rscript: str, shared_data: Path, tmp_path: Path) -> None:
    """Bioconductor affyio 1.68 (Debian r-bioc-affyio) reads exactly the same cells from the real
    text v3, Calvin and (written here) XDA v4 files: means, SDs and pixel counts bit for bit."""
    from refine_assets.lib.affy.cel import read_cel, write_cel_v4

    if subprocess.run([rscript, "-e", "library(affyio)"], capture_output=True).returncode != 0:
        import os

        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("R package affyio missing (scripts/setup.sh installs r-bioc-affyio)")
        pytest.skip("R package affyio not installed (scripts/setup.sh installs r-bioc-affyio)")
    c30057 = shared_data / "microarray" / "C30057.CEL.gz"
    files = [c30057, shared_data / "microarray" / "Mouse430_2_97.CEL.gz"]
    files.append(write_cel_v4(read_cel(c30057), tmp_path / "C30057_v4.CEL"))
    plain = tmp_path / "C30057.CEL"  # the same text without gzip: read by content either way
    with gzip.open(c30057, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    files.append(plain)
    (tmp_path / "read.R").write_text(AFFYIO_READ)
    for path in files:
        cel = read_cel(path)
        out, counts = tmp_path / "cells.bin", tmp_path / "counts.txt"
        subprocess.run([rscript, str(tmp_path / "read.R"), str(path), str(out), str(counts)], check=True)
        ref = np.fromfile(out, dtype="<f8").reshape(3, -1)
        assert np.array_equal(cel.intensities, ref[0]), path.name
        assert np.array_equal(cel.stdev, ref[1]), path.name
        assert np.array_equal(cel.npixels.astype(np.float64), ref[2]), path.name
        assert counts.read_text().split() == [str(cel.outliers.shape[0]), str(cel.masks.shape[0])]
