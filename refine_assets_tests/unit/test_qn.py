"""Quantile normalization to a target (``refine_assets.lib.qn``) against R preprocessCore and invariants.

R comparisons run one ``Rscript`` per test module (all cases in one session): matrices are exchanged as
little-endian float64 binaries (bit-exact both ways; NaN becomes R's NA). Agreement: 1e-12 absolute
for ``use.target`` (observed bit-identical) and 1e-12 relative for ``determine.target``.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.commands.qn import register
from refine_assets.lib.qn import (
    MatrixFormatError,
    QuantileNormalizationError,
    StreamingTarget,
    TargetFormatError,
    determine_target,
    quantile_normalize_to_target,
    read_matrix_tsv,
    read_target,
    write_matrix_tsv,
    write_target,
)

R_SCRIPT = r"""
suppressPackageStartupMessages(library(preprocessCore))
d <- commandArgs(TRUE)[1]
m <- read.delim(file.path(d, "manifest.tsv"), header = FALSE, stringsAsFactors = FALSE)
rd <- function(name, n) {
  v <- readBin(file.path(d, name), "double", n, size = 8, endian = "little")
  v[is.na(v)] <- NA
  v
}
for (k in seq_len(nrow(m))) {
  nm <- m[k, 1]; kind <- m[k, 2]; nr <- m[k, 3]; nc <- m[k, 4]; tl <- m[k, 5]
  x <- matrix(rd(paste0(nm, ".x.bin"), nr * nc), nr, nc)
  if (kind == "use") {
    r <- normalize.quantiles.use.target(x, rd(paste0(nm, ".t.bin"), tl))
  } else if (tl > 0) {
    r <- normalize.quantiles.determine.target(x, target.length = tl)
  } else {
    r <- normalize.quantiles.determine.target(x)
  }
  writeBin(as.vector(r), file.path(d, paste0(nm, ".out.bin")), size = 8, endian = "little")
}
"""


def run_r(rscript: str, workdir: Path, cases: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Run preprocessCore on ``cases``: name -> ("use", matrix, target) or ("det", matrix, length|None)."""
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (kind, x, extra) in cases.items():
        x = np.asarray(x, dtype=np.float64)
        x.T.astype("<f8").tofile(workdir / f"{name}.x.bin")  # column-major
        if kind == "use":
            t = np.asarray(extra, dtype="<f8")
            t.tofile(workdir / f"{name}.t.bin")
            tl = t.size
        else:
            tl = extra or 0
        rows.append(f"{name}\t{kind}\t{x.shape[0]}\t{x.shape[1]}\t{tl}")
    (workdir / "manifest.tsv").write_text("\n".join(rows) + "\n")
    (workdir / "run.R").write_text(R_SCRIPT)
    proc = subprocess.run(
        [rscript, str(workdir / "run.R"), str(workdir)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = {}
    for name, (kind, x, _extra) in cases.items():
        v = np.fromfile(workdir / f"{name}.out.bin", dtype="<f8")
        out[name] = v.reshape(x.shape[1], x.shape[0]).T if kind == "use" else v
    return out


def _with_na(x: np.ndarray, rng: np.random.Generator, cols: list[int], frac: float) -> np.ndarray:
    x = x.copy()
    for j in cols:
        x[rng.random(x.shape[0]) < frac, j] = np.nan
    return x


def build_cases() -> dict[str, tuple]:
    rng = np.random.default_rng(20240611)
    g = 300
    rand = rng.standard_normal((g, 8)) * 2 + 7
    ints = rng.integers(0, 10, size=(g, 10)).astype(np.float64)  # ties of every size, odd and even
    mixed = rng.standard_normal((g, 9))
    mixed = _with_na(mixed, rng, [1, 3], 0.1)
    mixed[:, 4] = np.nan  # all NA
    mixed[:, 5] = 3.25  # constant
    mixed[:, 6] = np.nan
    mixed[17, 6] = 1.5  # a single value
    mixed[:, 7] = np.nan
    mixed[[3, 250], 7] = [2.0, -1.0]  # two values
    mixed[:, 8] = np.where(rng.random(g) < 0.3, np.nan, rng.integers(0, 4, g))  # ties + NA
    infs = rng.standard_normal((g, 3))
    infs[:20, 0] = -np.inf  # log2(0) artifacts, tied
    infs[5, 1] = np.inf
    infs_na = infs.copy()
    infs_na[50:60, 1] = np.nan  # NaN together with +inf in one column (the sort cannot use +inf for NaN)
    infs_na[70:75, 0] = np.nan
    f32 = (rng.standard_normal((g, 5)) * 3).astype(np.float32).astype(np.float64)
    ties_target = np.repeat(rng.standard_normal(g // 3), 3)  # a target with tied values
    target_na = rng.standard_normal(g + 25)
    target_na[rng.choice(g + 25, 25, replace=False)] = np.nan  # non-NA count == rows -> case A
    wide = rng.gamma(2.0, 2.0, size=(1000, 37)).round(1)  # rounded data: realistic ties
    wide = _with_na(wide, rng, [0, 5, 36], 0.02)
    cases: dict[str, tuple] = {
        "rand_equal": ("use", rand, rng.standard_normal(g)),
        "rand_longer": ("use", rand, rng.standard_normal(517)),
        "rand_shorter": ("use", rand, rng.standard_normal(123)),
        "ints_equal": ("use", ints, rng.standard_normal(g)),
        "ints_longer": ("use", ints, rng.standard_normal(401)),
        "ints_shorter": ("use", ints, rng.integers(0, 50, 77).astype(np.float64)),
        "mixed_equal": ("use", mixed, rng.standard_normal(g)),
        "mixed_shorter": ("use", mixed, rng.standard_normal(200)),
        "mixed_longer": ("use", mixed, rng.standard_normal(1000)),
        "infs_equal": ("use", infs, rng.standard_normal(g)),
        "infs_longer": ("use", infs, rng.standard_normal(333)),
        "infs_na": ("use", infs_na, rng.standard_normal(g)),
        "f32_equal": ("use", f32, rng.standard_normal(g)),
        "ties_target": ("use", ints, ties_target),
        "target_na": ("use", rand, target_na),
        "target_len1": ("use", rand, np.array([4.5])),
        "target_len2": ("use", mixed, np.array([9.0, -1.0])),
        "wide_other_len": ("use", wide, np.sort(rng.gamma(2.0, 2.0, 800))),
        "one_row": ("use", np.array([[5.0, np.nan, -2.0]]), np.array([3.0, 1.0, 2.0])),
        "one_row_one_target": ("use", np.array([[5.0, np.nan, -2.0]]), np.array([7.5])),
        "det_rand": ("det", rand, None),
        "det_ints": ("det", ints, None),
        "det_na": ("det", _with_na(rand, rng, [0, 2, 7], 0.2), None),
        "det_short": ("det", rand, 101),
        "det_long": ("det", _with_na(ints, rng, [4], 0.5), 777),
        "det_len1": ("det", rand, 1),
        "det_sparse": ("det", np.delete(mixed, 4, axis=1), None),  # single/two-value, constant columns
        "det_len2": ("det", rand, 2),
    }
    return cases


@pytest.fixture(scope="module")
def r_results(rscript: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    cases = build_cases()
    return cases, run_r(rscript, tmp_path_factory.mktemp("qn_r"), cases)


USE_CASES = [n for n, c in build_cases().items() if c[0] == "use"]
DET_CASES = [n for n, c in build_cases().items() if c[0] == "det"]


def assert_same_as_r(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.max(np.abs(ours[ok] - ref[ok]), initial=0.0) <= 1e-12


@pytest.mark.parametrize("name", USE_CASES)
def test_use_target_matches_preprocesscore(r_results: tuple[dict, dict], name: str) -> None:
    cases, ref = r_results
    _, x, target = cases[name]
    ours = quantile_normalize_to_target(x, target)
    assert_same_as_r(ours, ref[name])
    # batching and threads do not change anything (column independence)
    again = quantile_normalize_to_target(x, target, chunk_columns=3, workers=2)
    np.testing.assert_array_equal(again, ours)


@pytest.mark.parametrize("name", DET_CASES)
def test_determine_target_matches_preprocesscore(r_results: tuple[dict, dict], name: str) -> None:
    cases, ref = r_results
    _, x, length = cases[name]
    ours = determine_target(x, length, chunk_columns=3)
    assert ours.shape == ref[name].shape
    np.testing.assert_allclose(ours, ref[name], rtol=1e-12, atol=0)


def test_r_quirk_cases_by_hand(r_results: tuple[dict, dict]) -> None:
    """The documented edge cases, read off R's output: all-NA stays NA, constant -> target median,
    single value -> target maximum, two values -> target extremes."""
    cases, ref = r_results
    _, _x, target = cases["mixed_equal"]
    t = np.sort(target)
    r = ref["mixed_equal"]
    assert np.isnan(r[:, 4]).all()
    assert np.all(r[:, 5] == 0.5 * (t[149] + t[150]))  # 300 tied values: mean of the two middle ones
    assert r[17, 6] == t[-1] and np.isnan(np.delete(r[:, 6], 17)).all()
    assert (r[3, 7], r[250, 7]) == (t[-1], t[0])
    _, _, t_odd = cases["ints_shorter"]  # constant column against an odd-length target: exact median
    const = quantile_normalize_to_target(np.full((9, 1), 2.0), t_odd)
    assert np.all(const == np.sort(t_odd)[38])


def test_real_gds507_matches_preprocesscore(rscript: str, shared_data: Path, tmp_path: Path) -> None:
    """Real MAS5 data (GEO GDS507, 22,645 probesets x 17 samples, one decimal: many ties)."""
    with gzip.open(shared_data / "geo/geoquery/GDS507.soft.gz", "rt") as fh:
        text = fh.read()
    table = text.split("!dataset_table_begin\n", 1)[1].split("!dataset_table_end", 1)[0]
    lines = table.strip("\n").split("\n")
    x = np.array([[float(v) for v in line.split("\t")[2:]] for line in lines[1:]])
    assert x.shape == (22645, 17)
    lx = np.log2(x)
    rng = np.random.default_rng(7)
    lx_na = _with_na(lx, rng, [2, 9], 0.05)
    cases = {
        "gds_det": ("det", lx, None),
        "gds_det_na_short": ("det", lx_na, 20000),
        "gds_self": ("use", x, determine_target(x)),
        "gds_other": ("use", lx_na, determine_target(lx, 12000)),
    }
    ref = run_r(rscript, tmp_path, cases)
    np.testing.assert_allclose(determine_target(lx), ref["gds_det"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(determine_target(lx_na, 20000), ref["gds_det_na_short"], rtol=1e-12, atol=0)
    assert_same_as_r(quantile_normalize_to_target(x, cases["gds_self"][2]), ref["gds_self"])
    assert_same_as_r(quantile_normalize_to_target(lx_na, cases["gds_other"][2]), ref["gds_other"])


# --------------------------------------------------------------------------------------------------
# invariants (no R)


def test_no_ties_equal_length_places_sorted_target_by_rank() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 6))
    target = rng.standard_normal(500)
    out = quantile_normalize_to_target(x, target)
    ts = np.sort(target)
    for j in range(x.shape[1]):
        rank = np.argsort(np.argsort(x[:, j]))
        np.testing.assert_array_equal(out[:, j], ts[rank])


def test_normalizing_the_target_returns_the_target() -> None:
    rng = np.random.default_rng(2)
    target = rng.standard_normal(400)
    np.testing.assert_array_equal(quantile_normalize_to_target(target[:, None], target)[:, 0], target)
    tied = np.repeat(rng.standard_normal(100), 4)  # also with tied target values
    rng.shuffle(tied)
    np.testing.assert_array_equal(quantile_normalize_to_target(tied[:, None], tied)[:, 0], tied)


def test_sample_order_and_row_order_do_not_matter() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 20, size=(200, 12)).astype(float)
    x[rng.random(x.shape) < 0.05] = np.nan
    target = rng.standard_normal(150)
    out = quantile_normalize_to_target(x, target)
    perm = rng.permutation(12)
    np.testing.assert_array_equal(quantile_normalize_to_target(x[:, perm], target), out[:, perm])
    rows = rng.permutation(200)
    np.testing.assert_array_equal(quantile_normalize_to_target(x[rows], target[::-1]), out[rows])


def test_case_b_is_linear_interpolation_of_the_target() -> None:
    """methods.md §5.4: no ties -> np.interp((r-1)/(n-1), linspace(0,1,T), target) up to rounding."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 4))
    x[rng.random(x.shape) < 0.1] = np.nan
    target = np.sort(rng.standard_normal(1000))
    out = quantile_normalize_to_target(x, target)
    for j in range(4):
        ok = ~np.isnan(x[:, j])
        n = ok.sum()
        r = np.argsort(np.argsort(x[ok, j])) + 1
        expected = np.interp((r - 1) / (n - 1), np.linspace(0, 1, target.size), target)
        np.testing.assert_allclose(out[ok, j], expected, rtol=0, atol=1e-12)
        assert np.isnan(out[~ok, j]).all()


def test_float32_input_equals_float64_of_the_same_values() -> None:
    rng = np.random.default_rng(5)
    x32 = rng.standard_normal((257, 7)).astype(np.float32)
    target = rng.standard_normal(300)
    out = quantile_normalize_to_target(x32, target)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, quantile_normalize_to_target(x32.astype(np.float64), target))


def test_out_argument_and_memory_bounded_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((100, 20))
    target = rng.standard_normal(100)
    mm = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float64, shape=x.shape)
    res = quantile_normalize_to_target(x, target, out=mm, chunk_columns=1)
    assert res is mm
    np.testing.assert_array_equal(np.asarray(mm), quantile_normalize_to_target(x, target))


def test_ties_get_the_middle_target_values() -> None:
    x = np.array([[5.0], [1.0], [5.0], [5.0], [2.0], [2.0]])  # ranks 5,1,5,5,2.5,2.5
    target = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    out = quantile_normalize_to_target(x, target)[:, 0]
    np.testing.assert_array_equal(out, [50.0, 10.0, 50.0, 50.0, 25.0, 25.0])


@pytest.mark.parametrize(
    ("matrix", "target", "message"),
    [
        (np.zeros((2, 2, 2)), np.zeros(2), "2-D"),
        (np.array([["a", "b"]]), np.zeros(2), "numeric"),
        (np.zeros((3, 2), dtype=bool), np.zeros(3), "numeric"),
        (np.zeros((3, 2)), np.array([np.nan, np.nan]), "no non-missing"),
        (np.zeros((3, 2)), np.array([]), "no non-missing"),
        (np.zeros((3, 2)), np.array([1.0, np.inf]), "infinite"),
        (np.zeros((3, 2)), np.zeros((3, 1)), "1-D"),
    ],
)
def test_bad_input_raises(matrix: np.ndarray, target: np.ndarray, message: str) -> None:
    with pytest.raises(QuantileNormalizationError, match=message):
        quantile_normalize_to_target(matrix, target)


def test_out_with_wrong_shape_raises() -> None:
    with pytest.raises(QuantileNormalizationError, match="out has shape"):
        quantile_normalize_to_target(np.zeros((3, 2)), np.arange(3.0), out=np.empty((2, 3)))


# --------------------------------------------------------------------------------------------------
# determine_target / StreamingTarget


def test_determine_target_without_na_is_mean_of_sorted_columns() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1000, 30)) * 3
    np.testing.assert_allclose(determine_target(x), np.sort(x, axis=0).mean(axis=1), rtol=1e-14)


def test_streaming_target_equals_determine_target() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((400, 25))
    x[rng.random(x.shape) < 0.03] = np.nan
    acc = StreamingTarget(400)
    for j in range(x.shape[1]):
        acc.add(x[:, j], name=f"S{j}")
    assert acc.count == 25
    np.testing.assert_allclose(acc.result(), determine_target(x), rtol=1e-15, atol=0)
    np.testing.assert_allclose(acc.result(123), determine_target(x, 123), rtol=1e-15, atol=0)


def test_streaming_target_length_rules() -> None:
    acc = StreamingTarget(5)
    with pytest.raises(QuantileNormalizationError, match="sample 'B': has 4 values"):
        acc.add(np.arange(4.0), name="B")
    with pytest.raises(QuantileNormalizationError, match="no non-missing"):
        acc.add(np.full(5, np.nan))
    with pytest.raises(QuantileNormalizationError, match="no samples"):
        acc.result()
    interp = StreamingTarget(5, interpolate=True)
    interp.add(np.array([0.0, 4.0, 8.0]))  # 3 values -> 5 points: 0, 2, 4, 6, 8
    np.testing.assert_array_equal(interp.result(), [0.0, 2.0, 4.0, 6.0, 8.0])


def test_determine_target_rejects_all_na_column() -> None:
    x = np.ones((4, 3))
    x[:, 1] = np.nan
    with pytest.raises(QuantileNormalizationError, match="column 1 has no non-missing") as info:
        determine_target(x)
    assert info.value.column == 1
    with pytest.raises(QuantileNormalizationError, match="positive integer"):
        determine_target(np.ones((4, 3)), 0)


# --------------------------------------------------------------------------------------------------
# files and command line


def test_target_file_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    t = rng.standard_normal(1000) * 10.0 ** rng.integers(-20, 20, 1000)
    write_target(tmp_path / "t.txt", t)
    back = read_target(tmp_path / "t.txt")
    np.testing.assert_array_equal(back, np.sort(t))
    lines = (tmp_path / "t.txt").read_text().splitlines()
    assert len(lines) == 1000 and float(lines[0]) == back[0]
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]  # no temp file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1.0\nabc\n", "line 2: not a number"),
        ("1.0\nNA\n", "line 2: missing or infinite"),
        ("2.0\n1.0\n", "not in ascending order"),
        ("\n\n", "no values"),
    ],
)
def test_read_target_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "t.txt").write_text(content)
    with pytest.raises(TargetFormatError, match=message):
        read_target(tmp_path / "t.txt")


def test_write_target_refuses_nan_without_leaving_files(tmp_path: Path) -> None:
    with pytest.raises(QuantileNormalizationError):
        write_target(tmp_path / "t.txt", np.array([1.0, np.nan]))
    assert list(tmp_path.iterdir()) == []


def test_matrix_tsv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text("gene\tS1\tS2\r\nENSG1\t1.5\tNA\r\n\r\nENSG2\t\t-inf\r\nENSG1\t 3 \tNaN\r\n")
    m = read_matrix_tsv(path)
    assert m.id_header == "gene" and m.columns == ["S1", "S2"] and m.row_ids == ["ENSG1", "ENSG2", "ENSG1"]
    np.testing.assert_array_equal(m.values, [[1.5, np.nan], [np.nan, -np.inf], [3.0, np.nan]])
    out = tmp_path / "o.tsv"
    write_matrix_tsv(out, m.values, m.row_ids, m.columns, m.id_header)
    assert out.read_text() == "gene\tS1\tS2\nENSG1\t1.5\tNA\nENSG2\tNA\t-inf\nENSG1\t3.0\tNA\n"
    # R write.table style header (no id column name) and gzip input
    # fast (typed) parser path: an id "NA" stays an id, NA/empty/NaN cells are missing, values exact
    fast = tmp_path / "f.tsv"
    fast.write_text("id\tS1\tS2\nNA\t0.1\t\nx\tNaN\t-1e-300\n")
    f = read_matrix_tsv(fast)
    assert f.row_ids == ["NA", "x"]
    np.testing.assert_array_equal(f.values, [[0.1, np.nan], [np.nan, -1e-300]])
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # published with the usual mode, not mkstemp's
    gz = tmp_path / "r.tsv.gz"
    gz.write_bytes(gzip.compress(b"S1\tS2\na\t1\t2\n"))
    r = read_matrix_tsv(gz)
    assert r.id_header == "" and r.columns == ["S1", "S2"] and r.values.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id\tA\tB\nx\t1\tabc\n", "non-numeric value 'abc' in column 'B', row 'x'"),
        ("id\tA\tB\nx\t1\t2\ny\t3\n", "wrong number of fields"),
        ("id\tA\tB\nx\t1\t2\t3\t4\n", "header has 3 fields"),
        ("id\tA\tA\nx\t1\t2\n", "duplicate sample column 'A'"),
        ("id\tA\n", "no data rows"),
        ("", "empty"),
        ("id\nx\n", "no sample columns"),
        ("id\tA\n\t1\n", "empty row id"),
    ],
)
def test_matrix_tsv_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(MatrixFormatError, match=message) as info:
        read_matrix_tsv(path)
    assert str(path) in str(info.value)


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_qn_and_qn_target(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((50, 4))
    x[3, 1] = np.nan
    ids = [f"G{i}" for i in range(50)]
    write_matrix_tsv(tmp_path / "m.tsv", x, ids, ["a", "b", "c", "d"], "Gene")
    runner = CliRunner()
    res = runner.invoke(_app(), ["qn-target", str(tmp_path / "m.tsv"), "-o", str(tmp_path / "t.txt")])
    assert res.exit_code == 0, res.output
    target = read_target(tmp_path / "t.txt")
    np.testing.assert_array_equal(target, determine_target(x))
    res = runner.invoke(
        _app(),
        [
            "qn",
            str(tmp_path / "m.tsv"),
            "--target",
            str(tmp_path / "t.txt"),
            "-o",
            str(tmp_path / "o.tsv"),
            "--ks-report",
            str(tmp_path / "ks.tsv"),
        ],
    )
    assert res.exit_code == 0, res.output
    m = read_matrix_tsv(tmp_path / "o.tsv")
    assert m.row_ids == ids and m.columns == ["a", "b", "c", "d"] and m.id_header == "Gene"
    np.testing.assert_array_equal(m.values, quantile_normalize_to_target(x, target))  # full precision
    report = (tmp_path / "ks.tsv").read_text().splitlines()
    assert report[0].startswith("sample\tpassed\tstatistic") and len(report) == 5
    assert '"ks_failed": {}' in res.output
    res = runner.invoke(
        _app(), ["qn-target", str(tmp_path / "m.tsv"), "-o", str(tmp_path / "t7.txt"), "--length", "7"]
    )
    assert res.exit_code == 0 and read_target(tmp_path / "t7.txt").size == 7


def test_cli_errors_are_clear_and_write_nothing(tmp_path: Path) -> None:
    (tmp_path / "m.tsv").write_text("id\tA\tB\nx\t1\t?\n")
    write_target(tmp_path / "t.txt", np.arange(3.0))
    runner = CliRunner()
    res = runner.invoke(
        _app(),
        ["qn", str(tmp_path / "m.tsv"), "--target", str(tmp_path / "t.txt"), "-o", str(tmp_path / "o.tsv")],
    )
    assert res.exit_code == 1 and "non-numeric value '?'" in res.output
    assert not (tmp_path / "o.tsv").exists()
    (tmp_path / "n.tsv").write_text("id\tA\tB\nx\t1\tNA\ny\t2\t\n")
    res = runner.invoke(_app(), ["qn-target", str(tmp_path / "n.tsv"), "-o", str(tmp_path / "o.txt")])
    assert res.exit_code == 1 and "sample 'B' has no non-missing values" in res.output
    assert not (tmp_path / "o.txt").exists()
    res = runner.invoke(
        _app(),
        ["qn", str(tmp_path / "n.tsv"), "--target", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o")],
    )
    assert res.exit_code == 1 and "nope.txt" in res.output


def test_cli_help_lists_both_commands() -> None:
    res = CliRunner().invoke(_app(), ["--help"])
    assert res.exit_code == 0 and "qn-target" in res.output and "qn " in res.output


def test_memory_layout_changes_nothing_but_the_output_layout() -> None:
    """A column-major matrix (as R and the matrix reader hold it) gives the same bits, column-major."""
    rng = np.random.default_rng(12)
    x = np.round(rng.standard_normal((300, 37)), 1)  # ties
    x[rng.random(x.shape) < 0.02] = np.nan
    target = np.sort(rng.standard_normal(250))
    c = quantile_normalize_to_target(x, target, chunk_columns=5)
    f = quantile_normalize_to_target(np.asfortranarray(x), target, chunk_columns=5, workers=2)
    assert np.array_equal(c, f, equal_nan=True) and f.flags.f_contiguous and c.flags.c_contiguous
