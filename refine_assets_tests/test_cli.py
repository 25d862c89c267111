"""The ``refine-assets`` command line: survey with --replay, warehouse SQL, status, help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refine_assets.cli import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFINE_ASSETS_HOME", str(tmp_path))
    for var in ("REFINE_ASSETS_STORAGE_ROOT", "REFINE_ASSETS_WAREHOUSE", "REFINE_ASSETS_HTTP_MODE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _survey(accession: str, *replay: Path, extra: tuple[str, ...] = ()) -> dict:
    args = ["survey", accession, *extra]
    for r in replay:
        args += ["--replay", str(r)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_survey_geo_soft_file_fills_warehouse(env: Path, shared_data: Path) -> None:
    out = _survey("GSE781", shared_data / "geo/geoquery/GSE781_family.soft.gz")
    rows = out["warehouse_rows"]
    assert out["summary"]["num_samples"] == 34
    assert rows["experiments"] == 1 and rows["samples"] == 34 and rows["platforms"] == 2
    assert rows["sample_attributes"] > 34 and rows["sample_harmonized"] == 34 and rows["original_files"] >= 34
    res = runner.invoke(
        app,
        [
            "warehouse",
            str(env / "warehouse.duckdb"),
            "--sql",
            "SELECT count(*) AS n FROM samples",
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0 and json.loads(res.output) == [{"n": 34}]
    res = runner.invoke(app, ["status", "GSE781"])
    assert res.exit_code == 0 and "0 of 34 samples processed" in res.output and "34 pending" in res.output


def test_survey_arrayexpress_and_sra_cassettes(env: Path, cassettes: Path) -> None:
    ae = _survey("E-MEXP-2381", cassettes / "surveyor.array_express.survey_with_protocol_list.yaml.gz")
    assert ae["summary"]["organisms"] == {"DANIO_RERIO": 2}
    sra = _survey("SRP048683", cassettes / "surveyor.sra.survey_unmated_reads.yaml.gz")
    assert sra["summary"]["num_samples"] == 12 and sra["summary"]["technologies"] == {"RNA-SEQ": 12}
    # both experiments are in one warehouse now
    assert sra["warehouse_rows"]["experiments"] == 2
    res = runner.invoke(
        app,
        [
            "warehouse",
            str(env / "warehouse.duckdb"),
            "--sql",
            "SELECT accession FROM experiments ORDER BY 1",
            "--format",
            "csv",
        ],
    )
    assert res.output.split() == ["accession", "E-MEXP-2381", "SRP048683"]


def test_replay_folder_and_explicit_warehouse(env: Path, cassettes: Path, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.duckdb"
    out = _survey("ERP108370", cassettes, extra=("--warehouse", str(db)))
    assert out["warehouse"] == str(db) and out["summary"]["num_samples"] == 27
    assert db.exists()


@pytest.mark.parametrize(
    ("accession", "expected"),
    [("NOTANACCESSION", "unrecognized accession"), ("ERP006216", "ERP006216: not found in ENA")],
)
def test_survey_errors_name_the_accession(env: Path, cassettes: Path, accession: str, expected: str) -> None:
    res = runner.invoke(
        app, ["survey", accession, "--replay", str(cassettes / "surveyor.sra.survey_nonexistant.yaml.gz")]
    )
    assert res.exit_code == 1
    assert expected in res.output
    assert not (env / "storage" / "surveys" / accession).exists()


def test_bad_replay_file(env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("just: text\n")
    res = runner.invoke(app, ["survey", "GSE781", "--replay", str(bad)])
    assert res.exit_code == 1 and "not a vcrpy cassette" in res.output


def test_every_command_has_help() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    commands = ["survey", "warehouse", "status", "demo", "fetch-demo-data", "asset-graph"]
    for cmd in commands:
        assert cmd in res.output
        sub = runner.invoke(app, [cmd, "--help"])
        assert sub.exit_code == 0 and "Usage" in sub.output, cmd


def test_help_imports_no_heavy_library() -> None:
    """``--help`` of the app and of commands renders without rich, pydantic or any data library
    (what makes it answer at once; timings are in the README, not asserted here)."""
    import subprocess
    import sys

    heavy = ("rich", "pydantic", "numpy", "pandas", "polars", "pyarrow", "dagster", "duckdb")
    for args in (["--help"], ["qn", "--help"], ["references", "qn-target", "--help"], ["survey", "--help"]):
        code = (
            "import sys; from refine_assets.cli import app\n"
            f"sys.argv = ['refine-assets', *{args!r}]\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            f"print('LOADED', [m for m in {heavy!r} if m in sys.modules])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert "Usage" in out and out.strip().splitlines()[-1] == "LOADED []", (args, out[-300:])
