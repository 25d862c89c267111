"""``refine-assets references transcriptome-index``: build real salmon indices from the salmon example
transcripts and print their records as JSON, as refine.bio's transcriptome-index API does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refine_assets.cli import app


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("salmon") is None:
        pytest.fail("salmon missing: scripts/setup.sh installs the Debian package")
    monkeypatch.setenv("REFINE_ASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REFINE_ASSETS_STORAGE_ROOT", str(tmp_path / "store"))
    return tmp_path


def test_build_then_lookup_both_lengths(env: Path, shared_data: Path) -> None:
    runner = CliRunner()
    fasta = shared_data / "rnaseq/salmon_example/transcripts.fasta.gz"
    missing = runner.invoke(app, ["references", "transcriptome-index", "Homo sapiens", "--length", "short"])
    assert missing.exit_code == 1 and "no short transcriptome index for HOMO_SAPIENS" in missing.output

    built = runner.invoke(
        app,
        [
            "references",
            "transcriptome-index",
            "Homo sapiens",
            "--length",
            "short",
            "--build",
            "--transcripts",
            str(fasta),
            "--ensembl-release",
            "110",
            "--assembly",
            "GRCh38",
        ],
    )
    assert built.exit_code == 0, built.output
    short = json.loads(built.stdout)
    assert short["organism"] == "HOMO_SAPIENS" and short["k"] == 23 and short["transcripts"] == 15
    assert short["ensembl_release"] == 110 and short["assembly"] == "GRCh38"
    assert short["salmon_version"].count(".") == 2
    index = Path(short["url"].removeprefix("file://"))
    assert index.is_file() and index.name == "index.tar.gz"
    assert short["record_url"].endswith("HOMO_SAPIENS_short/record.json")

    long = runner.invoke(app, ["references", "transcriptome-index", "HOMO_SAPIENS", "--length", "long"])
    assert long.exit_code == 0, long.output
    rec = json.loads(long.stdout)
    assert rec["k"] == 31 and rec["url"] != short["url"] and rec["transcripts"] == 15


def test_bad_length_and_bad_input(env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["references", "transcriptome-index", "HOMO_SAPIENS", "--length", "medium"])
    assert bad.exit_code == 1 and "--length must be short or long" in bad.output
    nothing = runner.invoke(app, ["references", "transcriptome-index", "HOMO_SAPIENS", "--build"])
    assert nothing.exit_code == 1 and "need a transcript FASTA, or a genome FASTA and a GTF" in nothing.output
