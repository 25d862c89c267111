"""``refine-assets impute`` and ``refine-assets compendium`` (``refine_assets.commands.compendia``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.commands.compendia import register
from refine_assets.lib.compendia.impute import impute
from refine_assets.lib.delivery.targets import qn_target_key
from refine_assets.lib.qn import read_matrix_tsv, write_target
from refine_assets.lib.references.artifacts import write_record
from refine_assets.lib.warehouse import apply_schema
from refine_assets_tests.unit.test_compendia_build import make_organism

runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def write_tsv(path: Path, x: np.ndarray, empty_cells: tuple = ()) -> None:
    rows = [["sample", *[f"ENSG{j:05d}" for j in range(x.shape[1])]]]
    for i, row in enumerate(x):
        cells = ["NA" if np.isnan(v) else repr(float(v)) for v in row]
        for r, c in empty_cells:
            if r == i:
                cells[c] = ""
        rows.append([f"S{i}", *cells])
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n")


def test_impute_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = 7 + rng.standard_normal((30, 4)) @ rng.standard_normal((4, 60)) + 0.2 * rng.standard_normal((30, 60))
    x = np.round(x, 4)
    mask = rng.random(x.shape) < 0.15
    xm = np.where(mask, np.nan, x)
    empty = [(0, 1), (3, 7)]  # empty cells are missing too
    for r, c in empty:
        xm[r, c] = np.nan
    write_tsv(tmp_path / "in.tsv", xm, tuple(empty))
    res = runner.invoke(
        make_app(), ["impute", str(tmp_path / "in.tsv"), "--rank", "10", "-o", str(tmp_path / "out.tsv")]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    missing = np.isnan(xm)
    assert summary["imputed_cells"] == int(missing.sum()) and summary["converged"]
    assert summary["rows"] == 30 and summary["columns"] == 60 and summary["backend"] == "native"
    out = read_matrix_tsv(tmp_path / "out.tsv")
    assert out.row_ids == [f"S{i}" for i in range(30)] and out.columns[0] == "ENSG00000"
    assert out.id_header == "sample"
    assert not np.isnan(out.values).any()
    assert np.array_equal(out.values[~missing], xm[~missing])  # observed values exactly as read
    ref, _ = impute(xm, 10)
    np.testing.assert_allclose(
        out.values[missing], ref[missing], atol=2e-5
    )  # F- vs C-order: float32 rounding
    res2 = runner.invoke(
        make_app(),
        ["impute", str(tmp_path / "in.tsv"), "--backend", "fancyimpute", "-o", str(tmp_path / "out2.tsv")],
    )
    assert res2.exit_code == 0, res2.output
    out2 = read_matrix_tsv(tmp_path / "out2.tsv")
    d = out2.values[missing] - out.values[missing]
    assert np.sqrt(np.mean(d**2)) < 1e-4


def test_impute_bad_inputs_fail_clearly(tmp_path: Path) -> None:
    app = make_app()
    x = np.arange(200, dtype=float).reshape(5, 40)
    x[1, 3] = np.nan
    write_tsv(tmp_path / "small.tsv", x)
    res = runner.invoke(
        app, ["impute", str(tmp_path / "small.tsv"), "--rank", "10", "-o", str(tmp_path / "o.tsv")]
    )
    assert res.exit_code == 1
    assert "small.tsv: rank 10 is too large for a 5 x 40 matrix" in res.output
    assert not (tmp_path / "o.tsv").exists()
    res = runner.invoke(app, ["impute", str(tmp_path / "nope.tsv"), "-o", str(tmp_path / "o.tsv")])
    assert res.exit_code == 1 and "nope.tsv: no such file" in res.output
    (tmp_path / "bad.tsv").write_text("id\ta\tb\nS1\t1\tx\nS2\t2\t3\n")
    res = runner.invoke(
        app, ["impute", str(tmp_path / "bad.tsv"), "--rank", "1", "-o", str(tmp_path / "o.tsv")]
    )
    assert res.exit_code == 1 and "non-numeric value 'x' in column 'b'" in res.output
    res = runner.invoke(
        app, ["impute", str(tmp_path / "small.tsv"), "--backend", "R", "-o", str(tmp_path / "o.tsv")]
    )
    assert res.exit_code == 1 and "--backend must be native or fancyimpute" in res.output


@pytest.fixture()
def warehouse_and_store(tmp_path: Path):
    store, vectors, target = make_organism(tmp_path)
    db = tmp_path / "warehouse.duckdb"
    t0 = datetime(2026, 1, 1)
    with duckdb.connect(str(db)) as con:
        apply_schema(con)
        for i, (name, tech, key) in enumerate(vectors):
            exp = key.split("/")[1] if key.startswith("processed/") else "GSE1"
            step = "tximport" if tech == "RNA-SEQ" else "affy_scan"
            con.execute(
                "INSERT INTO samples (accession, experiment_accession, organism, technology, has_raw) VALUES (?, ?, ?, ?, TRUE)",
                [name, exp, "DANIO_RERIO", tech],
            )
            con.execute(
                "INSERT INTO processing_ledger (sample_accession, experiment_accession, step, status, recorded_at,"
                " output_key) VALUES (?, ?, ?, 'succeeded', ?, ?)",
                [name, exp, step, t0 + timedelta(minutes=i), key],
            )
        con.execute(
            "INSERT INTO sample_harmonized (sample_accession, experiment_accession, title) VALUES ('GSM000', 'GSE1', 'liver 1')"
        )
        # not used: submitter-processed (no_op), a later failed attempt, another organism
        con.execute(
            "INSERT INTO samples (accession, experiment_accession, organism, technology, has_raw) VALUES "
            "('GSM_NOOP', 'GSE1', 'DANIO_RERIO', 'MICROARRAY', FALSE), ('GSM001', 'GSE9', 'DANIO_RERIO', 'MICROARRAY', TRUE), "
            "('GSM_MOUSE', 'GSE7', 'MUS_MUSCULUS', 'MICROARRAY', TRUE)"
        )
        con.execute(
            "INSERT INTO processing_ledger (sample_accession, experiment_accession, step, status, recorded_at, output_key) VALUES "
            "('GSM_NOOP', 'GSE1', 'no_op', 'succeeded', ?, 'processed/GSE1/GSM000.parquet'),"
            "('GSM001', 'GSE9', 'affy_scan', 'failed', ?, NULL),"
            "('GSM_MOUSE', 'GSE7', 'affy_scan', 'succeeded', ?, 'processed/GSE1/GSM000.parquet')",
            [t0, t0, t0],
        )
    return tmp_path, db, store, target


def test_compendium_command(warehouse_and_store) -> None:
    root, db, store, target = warehouse_and_store
    app = make_app()
    args = [
        "compendium",
        "Danio rerio",
        "-o",
        str(root / "out"),
        "--warehouse",
        str(db),
        "--storage",
        str(store.root),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "no QN target for organism DANIO_RERIO" in res.output
    assert "refine-assets references qn-target DANIO_RERIO --build" in res.output
    write_target(store.path_for(qn_target_key("DANIO_RERIO")), target)
    sha = store.read_sha256(qn_target_key("DANIO_RERIO"))
    write_record(store, "qn_targets", "DANIO_RERIO", {"sha256": sha, "version": sha[:16], "url": "x"})
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["organism"] == "DANIO_RERIO" and summary["samples"] == 50
    assert summary["filtered_samples"] == 3 and summary["iterations"] > 2
    md = json.loads((root / "out" / "metadata.json").read_text())
    assert md["qn_target"]["key"] == "references/qn_targets/DANIO_RERIO/target.txt"
    assert md["qn_target"]["sha256"] == store.read_sha256(qn_target_key("DANIO_RERIO"))
    rows = (root / "out" / "samples.tsv").read_text().splitlines()
    header = rows[0].split("\t")
    gsm0 = dict(zip(header, next(r for r in rows if r.startswith("GSM000\t")).split("\t"), strict=True))
    assert gsm0["refinebio_title"] == "liver 1" and gsm0["processing_step"] == "affy_scan"
    assert gsm0["experiment_accession"] == "GSE1"
    assert not any(r.startswith(("GSM_NOOP\t", "GSM_MOUSE\t")) for r in rows)
    res = runner.invoke(
        app,
        [
            "compendium",
            "MUS_MUSCULUS",
            "-o",
            str(root / "m"),
            "--warehouse",
            str(db),
            "--storage",
            str(store.root),
        ],
    )
    assert res.exit_code == 1 and "no QN target for organism MUS_MUSCULUS" in res.output
    write_target(store.path_for(qn_target_key("HOMO_SAPIENS")), target)
    sha = store.read_sha256(qn_target_key("HOMO_SAPIENS"))
    write_record(store, "qn_targets", "HOMO_SAPIENS", {"sha256": sha, "version": sha[:16], "url": "x"})
    res = runner.invoke(
        app,
        [
            "compendium",
            "HOMO_SAPIENS",
            "-o",
            str(root / "h"),
            "--warehouse",
            str(db),
            "--storage",
            str(store.root),
        ],
    )
    assert res.exit_code == 1 and "no samples of HOMO_SAPIENS processed from raw" in res.output
    res = runner.invoke(
        app, ["compendium", "DANIO_RERIO", "-o", str(root / "x"), "--warehouse", str(root / "no.duckdb")]
    )
    assert res.exit_code == 1 and "no warehouse there" in res.output
