"""Per-organism QN targets: platform choice, fallback, gene-set rule, storage and the CLI (teardown §7)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.commands.delivery import register
from refine_assets.lib.delivery.targets import (
    QnTargetBelowMinimumError,
    QnTargetError,
    QnTargetNotFoundError,
    build_qn_target,
    load_qn_target,
    normalize_organism,
    plan_qn_target,
    qn_target_record,
)
from refine_assets.lib.delivery.vectors import sanitize_vector
from refine_assets.lib.qn import determine_target, read_target
from refine_assets_tests.unit.test_delivery_world import (
    HUMAN,
    MOUSE,
    RAT,
    ZEBRAFISH,
    affy,
    make_world,
    rnaseq,
    scan_like,
    tpm_like,
)

AE_PLUS2 = "Affymetrix GeneChip Human Genome U133 Plus 2.0 [HG-U133_Plus_2]"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("targets")
    experiments = {
        "GSE1": [affy(f"GSM1{i}", seed=i) for i in range(4)]
        + [
            # submitter-processed only: not "processed from raw"
            affy("GSM1N", seed=40, has_raw=False, pipeline="NO_OP", step="submitter_processed"),
            # raw data, but the raw path failed and the submitter table was used
            affy("GSM1F", seed=41, step="submitter_processed", method="submitter_processed"),
            affy("GSM1P", seed=42, step=None),  # not processed
        ],
        "E-MTAB-1": [affy("E-MTAB-1:S1", seed=5, platform="A-AFFY-44", platform_name=AE_PLUS2)],
        "GSE2": [
            affy(
                f"GSM2{i}",
                seed=20 + i,
                n=250,
                platform="GPL96",
                code="hgu133a",
                platform_name="[HG-U133A] Affymetrix HG-U133A",
            )
            for i in range(3)
        ],
        "GSE3": [
            affy(
                "GSM31",
                seed=30,
                platform="GPL10558",
                code="illuminaHumanv4",
                platform_name="Illumina HumanHT-12 V4.0",
                manufacturer="ILLUMINA",
                pipeline="ILLUMINA_TO_PCL",
                step="illumina_scan",
            )
        ],
        # mouse: the first sample (sorted) has another gene set than the three others
        "GSE5": [affy("GSM50", MOUSE, seed=50, n=280, platform="GPL1261", code="mouse4302")]
        + [affy(f"GSM5{i}", MOUSE, seed=50 + i, platform="GPL1261", code="mouse4302") for i in range(1, 4)],
        "SRP1": [rnaseq(f"SRR1{i}", ZEBRAFISH, seed=60 + i) for i in range(3)],
        "GSE6": [affy("GSM61", RAT, seed=61, status="failed", reason="affy_scan: corrupt CEL")],
    }
    store, db = make_world(tmp, experiments, sources={"E-MTAB-1": "ARRAY_EXPRESS"})
    return store, db, experiments


def _sanitized(experiments, accessions, log2=False) -> np.ndarray:
    cols = []
    for samples in experiments.values():
        for s in samples:
            if s.accession in accessions:
                _, v, _ = sanitize_vector(s.values.index, s.values.to_numpy())
                cols.append(np.log2(v + 1.0) if log2 else v)
    return np.column_stack(cols)


def test_largest_affymetrix_platform_across_geo_and_arrayexpress(world) -> None:
    store, db, experiments = world
    record = build_qn_target(db, store, "Homo sapiens", min_samples=5)
    d = record["details"]
    assert d["method"] == "affymetrix_largest_platform" and d["flagged"] is False
    assert d["platform"] == "hgu133plus2"
    assert d["platform_accessions"] == ["A-AFFY-44", "GPL570"]  # same chip, counted together
    assert d["samples"] == ["E-MTAB-1:S1", "GSM10", "GSM11", "GSM12", "GSM13"]  # not GSM1N/GSM1F/GSM1P
    assert d["num_samples"] == 5 and d["num_genes"] == 300 and d["length"] == 300
    assert [c["platform"] for c in d["candidates"]] == ["hgu133plus2", "hgu133a"]
    # the target is the mean of the sorted sanitized vectors (preprocessCore determine.target)
    matrix = _sanitized(experiments, set(d["samples"]))
    target, rec = load_qn_target(store, HUMAN)
    np.testing.assert_allclose(target, determine_target(matrix), rtol=1e-15, atol=0)
    np.testing.assert_allclose(target, np.sort(matrix, axis=0).mean(axis=1), rtol=1e-13)
    assert rec["sha256"] == record["sha256"] and record["version"] == record["sha256"][:16]
    # published as text, one value per line, ascending, at a stable key
    with store.local_path("references/qn_targets/HOMO_SAPIENS/target.txt") as p:
        lines = p.read_text().splitlines()
        assert len(lines) == 300 and np.all(np.diff(read_target(p)) >= 0)
    assert record["url"].endswith("references/qn_targets/HOMO_SAPIENS/target.txt")
    genes = store.get_bytes("references/qn_targets/HOMO_SAPIENS/genes.txt").decode().split()
    assert (
        genes[0] == "ENSG00000000001" and len(genes) == 300 and not any(g.startswith("AFFX") for g in genes)
    )
    assert qn_target_record(store, "homo_sapiens")["sha256"] == record["sha256"]


def test_below_minimum_target_is_flagged_and_never_used_silently(world) -> None:
    store, db, _ = world
    with duckdb.connect(str(db), read_only=True) as con:
        plan = plan_qn_target(con, HUMAN, min_samples=6)
    assert plan.method == "below_minimum_largest_technology" and plan.flagged
    assert plan.technology == "MICROARRAY" and plan.platform == "hgu133plus2"
    assert (
        "no Affymetrix platform with at least 6 samples processed from raw (largest: hgu133plus2 with 5)"
        in (plan.flag_reason or "")
    )
    record = build_qn_target(db, store, HUMAN, min_samples=6)
    assert record["details"]["flagged"] is True and record["details"]["min_samples"] == 6
    with pytest.raises(
        QnTargetBelowMinimumError, match="QN target of HOMO_SAPIENS is not used: below the minimum"
    ):
        load_qn_target(store, HUMAN)
    target, rec = load_qn_target(store, HUMAN, allow_below_minimum=True)  # inspection only
    assert target.size == rec["details"]["num_genes"]
    with duckdb.connect(str(db), read_only=True) as con:
        override = plan_qn_target(con, HUMAN, platform="GPL96")
    assert override.method == "platform_override" and [s[0] for s in override.samples] == [
        "GSM20",
        "GSM21",
        "GSM22",
    ]


def test_rnaseq_only_organism_gets_a_log2_target_under_the_same_minimum(world) -> None:
    store, db, experiments = world
    flagged = build_qn_target(db, store, ZEBRAFISH)  # 3 runs < 100: built, flagged, refused
    assert (
        flagged["details"]["method"] == "below_minimum_largest_technology" and flagged["details"]["flagged"]
    )
    assert "no Affymetrix sample processed from raw" in flagged["details"]["flag_reason"]
    with pytest.raises(QnTargetBelowMinimumError):
        load_qn_target(store, ZEBRAFISH)
    record = build_qn_target(db, store, ZEBRAFISH, min_samples=3)
    d = record["details"]
    assert d["method"] == "rnaseq_tximport" and d["flagged"] is False and d["min_samples"] == 3
    assert d["technology"] == "RNA-SEQ" and d["value_transform"] == "log2(x+1)"
    target, _ = load_qn_target(store, ZEBRAFISH)
    matrix = _sanitized(experiments, {"SRR10", "SRR11", "SRR12"}, log2=True)
    np.testing.assert_allclose(target, determine_target(matrix), rtol=1e-15)
    assert target.max() < 32  # log scale, not TPM


def test_gene_set_shared_by_most_samples_wins(world) -> None:
    store, db, experiments = world
    record = build_qn_target(db, store, MOUSE, min_samples=3)
    d = record["details"]
    assert d["samples"] == ["GSM51", "GSM52", "GSM53"] and d["flagged"] is False
    assert d["skipped_samples"] == {"GSM50": "gene set differs from the one shared by most samples"}
    target, _ = load_qn_target(store, MOUSE)
    np.testing.assert_allclose(
        target, determine_target(_sanitized(experiments, set(d["samples"]))), rtol=1e-15
    )


def test_unreadable_vectors_are_skipped_with_reason(tmp_path: Path) -> None:
    store, db = make_world(tmp_path, {"GSE1": [affy(f"GSM{i}", seed=i) for i in range(3)]})
    store.delete("processed/GSE1/GSM1.parquet")
    record = build_qn_target(db, store, HUMAN, min_samples=3)
    assert record["details"]["samples"] == ["GSM0", "GSM2"]
    assert "missing from storage" in record["details"]["skipped_samples"]["GSM1"]
    # 3 candidates met the minimum, 2 usable ones do not: flagged, not used
    assert record["details"]["flagged"] and "2 usable of 3" in record["details"]["flag_reason"]


def test_no_target_possible_and_not_found(world, tmp_path: Path) -> None:
    store, db, _ = world
    with pytest.raises(QnTargetError, match="RATTUS_NORVEGICUS: no QN target possible"):
        build_qn_target(db, store, RAT)
    with pytest.raises(QnTargetError, match="no raw-processed sample with a vector on platform GPL0"):
        build_qn_target(db, store, HUMAN, platform="GPL0")
    assert qn_target_record(store, RAT) is None
    with pytest.raises(QnTargetNotFoundError, match="no QN target for organism RATTUS_NORVEGICUS"):
        load_qn_target(store, RAT)
    with pytest.raises(QnTargetError, match=r"warehouse .* not found"):
        build_qn_target(tmp_path / "none.duckdb", store, HUMAN)
    assert normalize_organism(" danio  rerio ") == "DANIO_RERIO"


def test_tampered_target_is_detected(tmp_path: Path) -> None:
    store, db = make_world(tmp_path, {"GSE1": [affy(f"GSM{i}", seed=i) for i in range(2)]})
    build_qn_target(db, store, HUMAN, min_samples=2)
    store.put_bytes("references/qn_targets/HOMO_SAPIENS/target.txt", b"1.0\n2.0\n")
    with pytest.raises(QnTargetError, match=r"has sha256 .* its record says"):
        load_qn_target(store, HUMAN)


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_references_qn_target(world, tmp_path: Path) -> None:
    store, db, _ = world
    runner = CliRunner()
    app = _app()
    args = ["references", "qn-target", "Danio rerio", "--storage", str(store.root)]
    built = runner.invoke(app, [*args, "--build", "--warehouse", str(db)])
    assert built.exit_code == 0, built.output
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    out = json.loads(shown.stdout)
    assert out["organism"] == "DANIO_RERIO" and out["num_samples"] == 3 and out["flagged"] is True
    assert "below the minimum of 100 samples" in out["flag_reason"]
    assert out["url"] == store.url_for("references/qn_targets/DANIO_RERIO/target.txt")
    assert out["platform"] is None and out["technology"] == "RNA-SEQ"
    missing = runner.invoke(app, ["references", "qn-target", RAT, "--storage", str(store.root)])
    assert missing.exit_code == 1 and "no QN target for RATTUS_NORVEGICUS" in missing.output
    failing = runner.invoke(
        app, ["references", "qn-target", RAT, "--build", "--warehouse", str(db), "--storage", str(store.root)]
    )
    assert failing.exit_code == 1 and "no QN target possible" in failing.output
    helped = runner.invoke(app, ["references", "--help"])
    assert helped.exit_code == 0 and "qn-target" in helped.output


def test_vectors_used_are_scan_like_and_tpm_like() -> None:
    # guard the generators the world relies on: AFFX controls present, TPM not logged with zeros
    s = scan_like(HUMAN, 50, 0)
    assert any(i.startswith("AFFX-") for i in s.index)
    t = tpm_like(ZEBRAFISH, 1000, 0)
    assert (t == 0).mean() > 0.2 and t.max() > 100
