"""``refine-assets nec SIGNAL.tsv --detection-p P.tsv [--offset N] -o OUT.tsv``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.commands.illumina import register
from refine_assets.lib.illumina.nec import nec
from refine_assets.lib.illumina.parse import read_numeric_matrix, write_numeric_matrix
from refine_assets_tests.illumina_generator import simulate_beadchip
from refine_assets_tests.unit.test_illumina_nec import run_r


@pytest.fixture(scope="module")
def app():
    a = typer.Typer()
    register(a)

    @a.command("noop")
    def _noop() -> None:  # a second command keeps typer from collapsing the app
        """Nothing."""

    return a


@pytest.fixture()
def inputs(tmp_path):
    sim = simulate_beadchip(500, 3, seed=31)
    ids = np.array([f"ILMN_{1000 + i}" for i in range(500)], dtype=object)
    sig = tmp_path / "signal.tsv"
    pv = tmp_path / "p.tsv"
    write_numeric_matrix(sig, "PROBE_ID", ["A", "B", "C"], ids, sim.signal)
    write_numeric_matrix(
        pv, "PROBE_ID", ["A.Detection Pval", "B.Detection Pval", "C.Detection Pval"], ids, sim.detection_p
    )
    return sim, ids, sig, pv


def test_nec_command_matches_limma(app, inputs, tmp_path, rscript):
    sim, ids, sig, pv = inputs
    out = tmp_path / "out" / "nec.tsv"
    r = CliRunner().invoke(
        app, ["nec", str(sig), "--detection-p", str(pv), "--offset", "12.5", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["samples"] == 3 and summary["probes"] == 500 and summary["flipped_detection_p"] is True
    assert [p["array"] for p in summary["params"]] == ["A", "B", "C"]
    assert out.read_text().splitlines()[0] == "PROBE_ID\tA\tB\tC"
    cols, rids, values = read_numeric_matrix(out)
    assert cols == ["A", "B", "C"] and list(rids) == list(ids)
    assert np.array_equal(values, nec(sim.signal, sim.detection_p, offset=12.5).values)
    ref = run_r(
        rscript,
        tmp_path,
        "out <- nec(x, detection.p = p, offset = 12.5)",
        {"x": sim.signal, "p": sim.detection_p},
    )
    assert np.max(np.abs(values - ref)) < 1e-10


def test_default_offset_is_16(app, inputs, tmp_path):
    sim, _ids, sig, pv = inputs
    out = tmp_path / "o.tsv"
    r = CliRunner().invoke(app, ["nec", str(sig), "--detection-p", str(pv), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert np.array_equal(read_numeric_matrix(out)[2], nec(sim.signal, sim.detection_p).values)


def _fails(app, args, message, out):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1
    assert message in r.output, r.output
    assert not out.exists()
    assert not list(out.parent.glob(".refine-tmp-*"))


def test_bad_inputs_fail_and_write_nothing(app, inputs, tmp_path):
    sim, ids, sig, pv = inputs
    out = tmp_path / "res.tsv"
    # mismatched column counts
    two = tmp_path / "p2.tsv"
    write_numeric_matrix(two, "PROBE_ID", ["A", "B"], ids, sim.detection_p[:, :2])
    _fails(
        app, ["nec", str(sig), "--detection-p", str(two), "-o", str(out)], "has 3 sample column(s) but", out
    )
    # different probes
    other = tmp_path / "p3.tsv"
    ids2 = ids.copy()
    ids2[7] = "ILMN_X"
    write_numeric_matrix(other, "PROBE_ID", ["A", "B", "C"], ids2, sim.detection_p)
    _fails(
        app,
        ["nec", str(sig), "--detection-p", str(other), "-o", str(out)],
        "probe ids differ between the files at data row 8",
        out,
    )
    # fewer rows
    short = tmp_path / "p4.tsv"
    write_numeric_matrix(short, "PROBE_ID", ["A", "B", "C"], ids[:-1], sim.detection_p[:-1])
    _fails(app, ["nec", str(sig), "--detection-p", str(short), "-o", str(out)], "500 probe rows but", out)
    # non-numeric cell
    bad = tmp_path / "bad.tsv"
    lines = sig.read_text().splitlines()
    lines[4] = lines[4].rsplit("\t", 1)[0] + "\tn/a?"
    bad.write_text("\n".join(lines) + "\n")
    _fails(
        app,
        ["nec", str(bad), "--detection-p", str(pv), "-o", str(out)],
        "line 5, column 4 ('C'): non-numeric value 'n/a?'",
        out,
    )
    # ragged row
    ragged = tmp_path / "ragged.tsv"
    lines = sig.read_text().splitlines()
    lines[9] += "\t1.0"
    ragged.write_text("\n".join(lines) + "\n")
    _fails(
        app,
        ["nec", str(ragged), "--detection-p", str(pv), "-o", str(out)],
        "line 10 has 5 fields, the header has 4",
        out,
    )
    # empty and header-only files
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    _fails(app, ["nec", str(empty), "--detection-p", str(pv), "-o", str(out)], "empty file", out)
    head = tmp_path / "head.tsv"
    head.write_text("PROBE_ID\tA\tB\tC\n")
    _fails(app, ["nec", str(head), "--detection-p", str(pv), "-o", str(out)], "no data rows", out)
    # missing file
    _fails(
        app,
        ["nec", str(tmp_path / "none.tsv"), "--detection-p", str(pv), "-o", str(out)],
        "no such file",
        out,
    )
    # a sample whose p-values cannot give the background
    flat = tmp_path / "flat.tsv"
    p = sim.detection_p.copy()
    p[:, 1] = 0.25
    write_numeric_matrix(flat, "PROBE_ID", ["A", "B", "C"], ids, p)
    _fails(
        app,
        ["nec", str(sig), "--detection-p", str(flat), "-o", str(out)],
        "B: only 1 distinct detection p-value",
        out,
    )


def test_failure_keeps_an_existing_output(app, inputs, tmp_path):
    _sim, _ids, _sig, pv = inputs
    out = tmp_path / "keep.tsv"
    out.write_text("old\n")
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n\n")
    r = CliRunner().invoke(app, ["nec", str(empty), "--detection-p", str(pv), "-o", str(out)])
    assert r.exit_code == 1 and out.read_text() == "old\n"


def test_help(app):
    r = CliRunner().invoke(app, ["nec", "--help"])
    assert r.exit_code == 0 and "--detection-p" in r.output and "--offset" in r.output
