"""The expression store: per-sample vectors compacted into Parquet parts that the warehouse's views query.

Worlds are written as production writes them (surveys, ``write_vector``, ``write_ledger``) and loaded with
``build_warehouse``; values are checked against an independent pandas reconstruction of the delivery rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from refine_assets.lib.delivery.expression_store import (
    STORE_PREFIX,
    VectorRef,
    compact_experiment,
    part_key,
    row_group_rows,
)
from refine_assets.lib.processing.vectors import vector_key, write_vector
from refine_assets.lib.warehouse import build_warehouse
from refine_assets_tests.unit.test_delivery_world import (
    HUMAN,
    ZEBRAFISH,
    S,
    affy,
    make_world,
    rnaseq,
    write_experiment,
)

TP53 = "ENSG00000141510"


def _duplicated(seed: int) -> pd.Series:
    """A submitter-processed vector: TP53 twice (one-to-many probes), a versioned id, AFFX controls."""
    rng = np.random.default_rng(seed)
    ids = [f"ENSG{i:011d}" for i in range(1, 201)] + [TP53, TP53, "ENSG00000000007.3", "AFFX-BioB-5_at"]
    return pd.Series(rng.normal(7.0, 2.0, len(ids)), index=ids)


def _expected(values: pd.Series) -> pd.Series:
    """The delivery rule written out with pandas: trailing _at and .version removed, AFFX dropped, mean."""
    ids = values.index.str.strip().str.replace(r"_at$", "", regex=True)
    keep = ~ids.str.contains("AFFX-", case=False)
    ids = ids[keep].str.replace(r"\.\d+$", "", regex=True)
    return pd.Series(values.to_numpy()[keep], index=ids).groupby(level=0).mean().astype(np.float32)


def _samples() -> dict[str, list[S]]:
    return {
        "GSE1": [
            affy("GSM1", values=_duplicated(1), step="submitter_processed", has_raw=False, pipeline="NO_OP"),
            affy("GSM2", seed=2, n=150),
            affy("GSM3", step=None),  # never processed: not in the store
            affy("GSM4", status="failed", reason="affy_scan: truncated CEL file"),
            affy("GSM5", seed=5, n=120, platform="GPL96", code="hgu133a"),
        ],
        "SRP1": [rnaseq("SRR1", ZEBRAFISH, seed=3, n=90), rnaseq("SRR2", ZEBRAFISH, seed=4, n=90)],
    }


@pytest.fixture
def world(tmp_path: Path):
    experiments = _samples()
    store, db = make_world(tmp_path, experiments, sources={"SRP1": "SRA"})
    vectors = {s.accession: s.values for ss in experiments.values() for s in ss if s.values is not None}
    return store, db, vectors, tmp_path


def test_store_holds_one_sanitized_value_per_sample_and_gene(world) -> None:
    store, db, vectors, _ = world
    keys = store.list_keys(STORE_PREFIX)
    assert sorted(keys) == [
        part_key(ZEBRAFISH, "IlluminaHiSeq2500", "SRP1"),
        part_key(HUMAN, "GPL570", "GSE1"),
        part_key(HUMAN, "GPL96", "GSE1"),
    ]
    assert not any("ledger" in k for k in keys)  # the ledgers stay under processed/
    part = pq.read_table(store.path_for(part_key(HUMAN, "GPL570", "GSE1")))
    assert part.column_names == ["sample_accession", "gene_id", "value", "value_scale"]
    frame = part.to_pandas()
    assert list(zip(frame.gene_id, frame.sample_accession, strict=True)) == sorted(
        zip(frame.gene_id, frame.sample_accession, strict=True)
    )  # sorted by gene, then sample: a gene is one contiguous run
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT sample_accession, gene_id, value, value_scale FROM expression ORDER BY 1, 2"
        ).fetchall()
        stats = dict(
            con.execute("SELECT sample_accession, n_duplicate_ids_merged FROM expression_samples").fetchall()
        )
    got = pd.DataFrame(rows, columns=["sample", "gene", "value", "scale"])
    assert set(got["sample"]) == {"GSM1", "GSM2", "GSM5", "SRR1", "SRR2"}
    assert not got.duplicated(["sample", "gene"]).any()
    for sample, sub in got.groupby("sample"):
        expected = _expected(vectors[sample])
        s = sub.set_index("gene")["value"].astype(np.float32)
        assert s.index.tolist() == expected.index.tolist()
        np.testing.assert_array_equal(s.to_numpy(), expected.to_numpy())  # float32 of the float64 mean
    tp53 = got[(got["sample"] == "GSM1") & (got["gene"] == TP53)]["value"].item()
    assert tp53 == pytest.approx(vectors["GSM1"][TP53].mean(), rel=2**-23)
    assert "ENSG00000000007" in set(got[got["sample"] == "GSM1"]["gene"])  # version removed
    assert not got["gene"].str.contains("AFFX").any()
    scales = dict(zip(got["sample"], got["scale"], strict=False))
    assert scales == {
        "GSM1": "log2",
        "GSM2": "scan",
        "GSM5": "scan",
        "SRR1": "length_scaled_tpm",
        "SRR2": "length_scaled_tpm",
    }
    assert stats["GSM1"] == 2 and stats["GSM2"] == 0  # TP53 twice; ENSG...7 and ENSG...7.3


def test_view_joins_harmonized_metadata_one_row_per_sample(tmp_path: Path) -> None:
    experiments = _samples()
    # a SuperSeries listing GSM2 again, processed there too: `expression` keeps one vector per sample
    experiments["GSE9"] = [affy("GSM2", seed=2, n=150, attrs=[("sex", "female", "geo_characteristics")])]
    _store, db = make_world(tmp_path, experiments, sources={"SRP1": "SRA"})
    query = f"""
        SELECT e.sample_accession, h.refinebio_sex, e.value
        FROM expression e
        JOIN samples_harmonized h
          ON h.refinebio_accession_code = e.sample_accession AND h.experiment_accession = e.experiment_accession
        WHERE e.gene_id = '{TP53}' AND e.organism = 'HOMO_SAPIENS'
    """
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(query).fetchall()
        by_exp = con.execute(
            "SELECT experiment_accession, count(DISTINCT sample_accession) FROM expression_by_experiment "
            "WHERE sample_accession = 'GSM2' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        n = con.execute("SELECT count(*) FROM expression WHERE sample_accession = 'GSM2'").fetchone()[0]
    assert [r[0] for r in rows] == ["GSM1"]  # only GSM1's vector has TP53
    assert by_exp == [("GSE1", 1), ("GSE9", 1)] and n == 150  # one copy in `expression`


def test_adding_an_experiment_writes_only_its_parts(world) -> None:
    store, db, _vectors, _ = world
    before = {
        k: (store.read_sha256(k), store.path_for(k).stat().st_mtime_ns) for k in store.list_keys(STORE_PREFIX)
    }
    write_experiment(store, "GSE2", [affy("GSM21", seed=21, n=100)])
    report = build_warehouse(db, store)
    assert report.expression_compacted == ["GSE2"]
    after = {
        k: (store.read_sha256(k), store.path_for(k).stat().st_mtime_ns) for k in store.list_keys(STORE_PREFIX)
    }
    assert set(after) - set(before) == {part_key(HUMAN, "GPL570", "GSE2")}
    assert all(after[k] == before[k] for k in before)  # nothing else rewritten
    assert build_warehouse(db, store).expression_compacted == []  # idempotent
    # GSE1 re-processed: GSM5 (the only GPL96 sample) now failed -> its part is deleted, GSM1 stays
    write_experiment(
        store,
        "GSE1",
        [
            affy("GSM1", values=_duplicated(1), step="submitter_processed", has_raw=False, pipeline="NO_OP"),
            affy("GSM5", platform="GPL96", code="hgu133a", status="failed", reason="affy_scan: bad CEL"),
        ],
    )
    report = build_warehouse(db, store)
    assert report.expression_compacted == ["GSE1"]
    assert not store.exists(part_key(HUMAN, "GPL96", "GSE1"))
    with duckdb.connect(str(db), read_only=True) as con:
        samples = con.execute("SELECT DISTINCT sample_accession FROM expression ORDER BY 1").fetchall()
        parts = con.execute(
            "SELECT count(*) FROM expression_parts WHERE experiment_accession = 'GSE1'"
        ).fetchone()
    assert [s[0] for s in samples] == ["GSM1", "GSM21", "SRR1", "SRR2"] and parts == (1,)


def test_organism_filter_never_opens_other_organisms_files(world) -> None:
    store, db, vectors, _ = world
    # corrupt both human parts: a query restricted to zebrafish (or to SRP1) must not open them
    for platform in ("GPL570", "GPL96"):
        store.path_for(part_key(HUMAN, platform, "GSE1")).write_bytes(b"not parquet")
    gene = vectors["SRR1"].index[0]
    with duckdb.connect(str(db), read_only=True) as con:
        for where in ("organism = 'DANIO_RERIO'", "experiment_accession = 'SRP1'"):
            n = con.execute(f"SELECT count(*) FROM expression WHERE {where} AND gene_id = '{gene}'")
            assert n.fetchone() == (2,)
        with pytest.raises(duckdb.Error, match=r"too small|Parquet"):
            con.execute("SELECT count(*) FROM expression").fetchall()


def test_unreadable_vectors_are_listed_not_fatal(tmp_path: Path) -> None:
    store, _db = make_world(tmp_path, {"GSE1": [affy("GSM1", seed=1), affy("GSM2", seed=2)]})
    refs = [
        VectorRef("GSM1", "GSE1", vector_key("GSE1", "GSM1"), HUMAN, "GPL570", "affy_scan"),
        VectorRef("GSM9", "GSE1", vector_key("GSE1", "GSM9"), HUMAN, "GPL570", "affy_scan"),
    ]
    result = compact_experiment(store, "GSE1", refs)
    assert [s.sample_accession for s in result.samples] == ["GSM1"]
    assert result.failed == [("GSM9", "processed vector processed/GSE1/GSM9.parquet is missing from storage")]


def test_views_exist_before_anything_is_processed_and_cli_reads_them(tmp_path: Path) -> None:
    store, db = make_world(tmp_path, {"GSE1": [affy("GSM1", step=None)]})
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM expression").fetchone() == (0,)
    write_vector(store, vector_key("GSE1", "GSMX"), _duplicated(3))  # not in any ledger: not in the store
    write_experiment(store, "GSE2", [affy("GSM21", seed=21, n=100)])
    build_warehouse(db, store)
    from typer.testing import CliRunner

    from refine_assets.cli import app

    out = CliRunner().invoke(
        app,
        [
            "warehouse",
            str(db),
            "--format",
            "json",
            "--sql",
            "SELECT sample_accession, experiment_accession, organism, count(*) AS genes, any_value(value_scale) AS scale "
            "FROM expression GROUP BY ALL",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [
        {
            "sample_accession": "GSM21",
            "experiment_accession": "GSE2",
            "organism": HUMAN,
            "genes": 100,
            "scale": "scan",
        }
    ]


def test_missing_parts_make_the_view_fail_with_the_reason(world) -> None:
    store, db, _vectors, _ = world
    for key in store.list_keys(STORE_PREFIX):
        store.delete(key)
    write_experiment(store, "GSE3", [affy("GSM31", step=None)])  # something to rebuild
    report = build_warehouse(db, store)
    assert report.expression_warning and "cannot be read" in report.expression_warning
    with duckdb.connect(str(db), read_only=True) as con, pytest.raises(duckdb.Error, match="cannot be read"):
        con.execute("SELECT * FROM expression").fetchall()


def test_row_groups() -> None:
    assert (
        row_group_rows(10) == 65536 and row_group_rows(1_000_000) == 65536 and row_group_rows(10**8) == 640000
    )
    assert row_group_rows(10**12) == 1 << 20


def test_part_writer_streams_sorted_row_groups(tmp_path: Path) -> None:
    """Samples with different gene sets, more rows than one row group: the file holds exactly the input,
    sorted by gene then sample, in several row groups with gene_id statistics and a page index."""
    from refine_assets.lib.delivery.expression_store import PartInput, write_part
    from refine_assets.lib.storage import LocalArtifactStore

    rng = np.random.default_rng(7)
    store = LocalArtifactStore(tmp_path / "s")
    part, expected = PartInput(), []
    for k in rng.permutation(40):  # samples arrive in any order
        genes = sorted(f"ENSG{g:011d}" for g in rng.choice(4000, 3000, replace=False))
        values = rng.normal(size=len(genes))
        part.add(f"GSM{k:03d}", genes, values, "scan" if k % 2 else "log2")
        expected += [
            (g, f"GSM{k:03d}", np.float32(v), "scan" if k % 2 else "log2")
            for g, v in zip(genes, values, strict=True)
        ]
    info = write_part(store, "expression/x/part.parquet", part)
    expected.sort(key=lambda r: (r[0], r[1]))
    table = pq.read_table(store.path_for("expression/x/part.parquet"))
    got = list(
        zip(
            table.column("gene_id").to_pylist(),
            table.column("sample_accession").to_pylist(),
            table.column("value").to_numpy(),
            table.column("value_scale").to_pylist(),
            strict=True,
        )
    )
    assert info["num_rows"] == len(expected) == 120_000 and got == expected
    meta = pq.ParquetFile(store.path_for("expression/x/part.parquet")).metadata
    assert meta.num_row_groups == 2 and meta.row_group(0).num_rows >= row_group_rows(120_000)
    stats = [meta.row_group(i).column(1).statistics for i in range(2)]
    assert stats[0].max < stats[1].min  # a gene never spans two row groups
    assert meta.row_group(0).column(2).statistics is None  # statistics on gene_id only
    assert meta.row_group(0).column(1).has_column_index  # page index for in-row-group skipping
