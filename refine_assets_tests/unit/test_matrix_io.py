"""The one matrix reader/writer (``lib/matrix_io.py``) and the commands that take matrices.

TSV (plain or gzip) and Parquet are recognised by content, whatever the file is called; Parquet is
written when the output name ends in ``.parquet``. A matrix read from any encoding and written to
any other reads back to the same ids, names and float64 values (bit for bit).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.lib.matrix_io import (
    MatrixFormatError,
    is_parquet,
    read_matrix,
    write_matrix,
    write_matrix_tsv,
)


def _matrix(rng: np.random.Generator, rows: int = 40, cols: int = 5) -> np.ndarray:
    x = rng.lognormal(3, 2, (rows, cols))
    x[rng.random((rows, cols)) < 0.05] = np.nan
    x[0, 0], x[1, 1], x[2, 2] = np.inf, -np.inf, 5e-324
    return x


@pytest.mark.parametrize("first", ["m.tsv", "m.tsv.gz", "m.parquet"])
@pytest.mark.parametrize("second", ["n.tsv", "n.parquet"])
def test_round_trips_between_encodings(tmp_path: Path, first: str, second: str) -> None:
    x = _matrix(np.random.default_rng(3))
    ids = [f"ENSG{i % 37:05d}" for i in range(x.shape[0])]  # duplicated ids are allowed
    cols = [f"GSM{j}" for j in range(x.shape[1])]
    path = tmp_path / first
    write_matrix(path, x, ids, cols, "Gene")
    if first.endswith(".gz"):  # written as TSV (the name does not select gzip); compress it
        path.write_bytes(gzip.compress(path.read_bytes()))
    m = read_matrix(path)
    assert (m.row_ids, m.columns, m.id_header) == (ids, cols, "Gene")
    assert np.array_equal(m.values, x, equal_nan=True) and m.values.flags.f_contiguous
    write_matrix(tmp_path / second, m.values, m.row_ids, m.columns, m.id_header)
    back = read_matrix(tmp_path / second)
    assert (back.row_ids, back.columns, back.id_header) == (ids, cols, "Gene")
    assert np.array_equal(back.values, x, equal_nan=True)
    assert is_parquet((tmp_path / second).read_bytes()) == second.endswith(".parquet")


def test_encoding_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    x = np.arange(6.0).reshape(3, 2)
    write_matrix(tmp_path / "real.parquet", x, ["a", "b", "c"], ["S1", "S2"], "id")
    disguised = tmp_path / "looks_like.tsv"  # Parquet bytes under a .tsv name
    disguised.write_bytes((tmp_path / "real.parquet").read_bytes())
    assert read_matrix(disguised).values.tolist() == x.tolist()
    zipped = tmp_path / "plain_name.tsv"  # gzip under a plain name
    zipped.write_bytes(gzip.compress(b"id\tS1\na\t1.5\n"))
    assert read_matrix(zipped).values.tolist() == [[1.5]]
    text = tmp_path / "text.tsv.gz"  # a plain TSV whose name says gzip
    text.write_text("id\tS1\na\t2.5\n")
    assert read_matrix(text).values.tolist() == [[2.5]]


def test_parquet_written_for_duckdb_and_foreign_parquet_read(tmp_path: Path) -> None:
    x = np.array([[1.0, np.nan], [3.5, 4.0]])
    write_matrix(tmp_path / "o.parquet", x, ["g1", "g2"], ["S1", "S2"], "Gene")
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.column_names == ["Gene", "S1", "S2"]
    assert table.column("S2").null_count == 1  # missing is null, as SQL expects
    # integer samples, integer ids and NaN in a foreign file
    pq.write_table(
        pa.table({"id": pa.array([7, 8]), "A": pa.array([1, 2], pa.int32()), "B": pa.array([0.5, np.nan])}),
        tmp_path / "foreign.pq",
    )
    m = read_matrix(tmp_path / "foreign.pq")
    assert m.row_ids == ["7", "8"] and m.columns == ["A", "B"] and m.id_header == "id"
    assert np.array_equal(m.values, [[1.0, 0.5], [2.0, np.nan]], equal_nan=True)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"id": ["a", "b"], "A": ["x", "y"]}, "column 'A' is string, not numeric"),
        ({"id": ["a", None], "A": [1.0, 2.0]}, "empty row id in data row 2"),
        ({"id": ["a", ""], "A": [1.0, 2.0]}, "empty row id in data row 2"),
        ({"id": [1.5, 2.5], "A": [1.0, 2.0]}, "must hold the row ids"),
        ({"id": ["a"]}, "no sample columns"),
        ({"id": pa.array([], pa.string()), "A": pa.array([], pa.float64())}, "no data rows"),
    ],
)
def test_parquet_errors_name_the_file(tmp_path: Path, table: dict, message: str) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(table), path)
    with pytest.raises(MatrixFormatError, match=message) as info:
        read_matrix(path)
    assert str(path) in str(info.value)


def test_tsv_errors_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text("id\tA\tB\nx\t1\t2\n\ny\t3\tzz\n")
    with pytest.raises(MatrixFormatError, match=r"line 4, column 3 \('B'\): non-numeric value 'zz'"):
        read_matrix(path)
    path.write_text("id\tA\tB\nx\t1\t2\ny\t3\n")
    with pytest.raises(
        MatrixFormatError, match="wrong number of fields: line 3 has 2 fields, the header has 3"
    ):
        read_matrix(path)
    broken = tmp_path / "broken.tsv.gz"
    broken.write_bytes(gzip.compress(b"id\tA\nx\t1\n")[:-6])
    with pytest.raises(MatrixFormatError, match="broken gzip stream"):
        read_matrix(broken)
    with pytest.raises(MatrixFormatError, match="cannot read"):
        read_matrix(tmp_path / "missing.tsv")


def test_nan_text_and_atomic_write(tmp_path: Path) -> None:
    out = tmp_path / "t.tsv"
    write_matrix_tsv(out, np.array([[np.nan, 1.0]]), ["g"], ["a", "b"], "Gene", nan_text="NaN")
    assert out.read_text() == "Gene\ta\tb\ng\tNaN\t1.0\n"
    out.write_text("keep\n")
    with pytest.raises(MatrixFormatError, match="does not match"):
        write_matrix(out, np.zeros((2, 2)), ["g"], ["a", "b"])
    with pytest.raises(MatrixFormatError):
        write_matrix(tmp_path / "x.parquet", np.zeros((1, 1)), ["g"], ["a", "b"])
    assert out.read_text() == "keep\n" and sorted(p.name for p in tmp_path.iterdir()) == ["t.tsv"]


# --------------------------------------------------------------------------------------------------
# commands


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from refine_assets.commands import compendia, illumina, qn, tximport

    a = typer.Typer()
    for module in (qn, illumina, compendia, tximport):
        module.register(a)
    return a


def test_qn_reads_parquet_writes_parquet_same_numbers(app: typer.Typer, tmp_path: Path) -> None:
    from refine_assets.lib.qn import quantile_normalize_to_target, write_target

    rng = np.random.default_rng(9)
    x = rng.standard_normal((50, 4))
    ids, cols = [f"g{i}" for i in range(50)], ["a", "b", "c", "d"]
    write_matrix(tmp_path / "m.tsv", x, ids, cols, "Gene")
    write_matrix(tmp_path / "m.parquet", x, ids, cols, "Gene")
    write_target(tmp_path / "t.txt", np.sort(rng.standard_normal(30)))
    runner = CliRunner()
    outputs = {}
    for source, target in (("m.tsv", "o.tsv"), ("m.parquet", "o.parquet"), ("m.parquet", "o2.tsv")):
        res = runner.invoke(
            app,
            ["qn", str(tmp_path / source), "--target", str(tmp_path / "t.txt"), "-o", str(tmp_path / target)],
        )
        assert res.exit_code == 0, res.output
        outputs[target] = read_matrix(tmp_path / target)
    expected = quantile_normalize_to_target(x, np.sort(np.loadtxt(tmp_path / "t.txt")))
    for m in outputs.values():
        assert m.row_ids == ids and m.columns == cols and np.array_equal(m.values, expected)
    assert is_parquet((tmp_path / "o.parquet").read_bytes())
    assert (tmp_path / "o2.tsv").read_bytes() == (tmp_path / "o.tsv").read_bytes()
    res = runner.invoke(app, ["qn-target", str(tmp_path / "m.parquet"), "-o", str(tmp_path / "t2.txt")])
    assert res.exit_code == 0 and json.loads(res.output)["samples"] == 4


def test_nec_and_impute_take_parquet(app: typer.Typer, tmp_path: Path) -> None:
    from refine_assets.lib.illumina.nec import nec
    from refine_assets_tests.illumina_generator import simulate_beadchip

    sim = simulate_beadchip(400, 3, seed=4)
    ids = [f"ILMN_{i}" for i in range(400)]
    write_matrix(tmp_path / "sig.parquet", sim.signal, ids, ["A", "B", "C"], "PROBE_ID")
    write_matrix(tmp_path / "p.tsv", sim.detection_p, ids, ["A", "B", "C"], "PROBE_ID")
    res = CliRunner().invoke(
        app,
        [
            "nec",
            str(tmp_path / "sig.parquet"),
            "--detection-p",
            str(tmp_path / "p.tsv"),
            "-o",
            str(tmp_path / "o.parquet"),
        ],
    )
    assert res.exit_code == 0, res.output
    out = read_matrix(tmp_path / "o.parquet")
    assert out.id_header == "PROBE_ID" and out.row_ids == ids
    assert np.array_equal(out.values, nec(sim.signal, sim.detection_p).values)
    x = np.random.default_rng(2).standard_normal((30, 8))
    x[3, 4] = np.nan
    write_matrix(
        tmp_path / "imp.parquet", x, [f"s{i}" for i in range(30)], [f"g{j}" for j in range(8)], "sample"
    )
    res = CliRunner().invoke(
        app, ["impute", str(tmp_path / "imp.parquet"), "--rank", "2", "-o", str(tmp_path / "i.parquet")]
    )
    assert res.exit_code == 0, res.output
    filled = read_matrix(tmp_path / "i.parquet").values
    assert not np.isnan(filled).any() and np.array_equal(
        np.delete(filled.ravel(), 3 * 8 + 4), np.delete(x.ravel(), 3 * 8 + 4)
    )


def test_tximport_writes_parquet(app: typer.Typer, shared_data: Path, tmp_path: Path) -> None:
    runs = sorted((shared_data / "rnaseq" / "SRP095529").iterdir())[:3]
    t2g = shared_data / "rnaseq" / "ZEBRAFISH_INDEX_SHORT" / "genes_to_transcripts.txt.gz"
    tables = {}
    for name in ("g.tsv", "g.parquet"):
        res = CliRunner().invoke(
            app, ["tximport", "--quant", *map(str, runs), "--tx2gene", str(t2g), "-o", str(tmp_path / name)]
        )
        assert res.exit_code == 0, res.output
        tables[name] = read_matrix(tmp_path / name)
    a, b = tables["g.tsv"], tables["g.parquet"]
    assert (
        a.row_ids == b.row_ids and a.columns == b.columns == [r.name for r in runs] and b.id_header == "Gene"
    )
    assert np.array_equal(a.values, b.values, equal_nan=True)
