"""Submitter-processed path: log2 detection, table processing, the framework processor, ``convert-ids``.

Real data: the 34 MAS 5.0 sample tables and GPL96/GPL97 platform tables of GSE781 (family SOFT),
GSM11805 as a single GSM SOFT, the GPL97 ``.annot`` file, the MAS 4 "average difference" table of
GSM645 (negative values) and the CGH log2 ratios of GSM804; crosswalk ``human_gene_ids.tsv.gz``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.commands.convert import register
from refine_assets.lib.crosswalk import crosswalk_from_frame, load_crosswalk
from refine_assets.lib.idmap import IdMappingError, PlatformMapper
from refine_assets.lib.submitter import (
    Log2Error,
    SubmitterProcessor,
    SubmitterTableError,
    apply_log2,
    detect_log2,
    mean_of_duplicates,
    process_sample_table,
    read_platform_table,
    read_sample_table,
)
from refine_assets.lib.submitter.process import parse_values
from refine_assets.lib.survey.geo_soft import parse_soft

# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def geoquery(shared_data: Path) -> Path:
    return shared_data / "geo" / "geoquery"


@pytest.fixture(scope="module")
def crosswalk_path(shared_data: Path) -> Path:
    return shared_data / "annotation" / "human_gene_ids.tsv.gz"


@pytest.fixture(scope="module")
def human(crosswalk_path: Path):
    return load_crosswalk(crosswalk_path, organism="HOMO_SAPIENS")


@pytest.fixture(scope="module")
def gse781(geoquery: Path):
    return parse_soft(geoquery / "GSE781_family.soft.gz")


@pytest.fixture(scope="module")
def mappers(gse781, human) -> dict[str, PlatformMapper]:
    return {gpl: PlatformMapper(e.table, human, name=gpl) for gpl, e in gse781.platforms.items()}


@pytest.fixture(scope="module")
def gsm11805_values(gse781) -> pd.Series:
    t = gse781.samples["GSM11805"].table
    return pd.Series(
        np.asarray(t.column("VALUE").to_pylist(), dtype=float), index=t.column("ID_REF").to_pylist()
    )


E1, E2, E22, E3 = "ENSG00000000001", "ENSG00000000002", "ENSG00000000022", "ENSG00000000003"


def _small_crosswalk():
    frame = pd.DataFrame(
        {"entrez": ["1", "2", "2", "3", "4"], "ensembl": [E1, E2, E22, E3, E3], "symbol": list("ABBCD")}
    )
    return crosswalk_from_frame(frame, source="small")


def _small_platform() -> pd.DataFrame:
    ids = [f"p{i}" for i in range(1, 13)]
    entrez = ["1 /// 2", "3", "4", None, "1", "1", "1", "1", "1", "1", "1", "1"]
    return pd.DataFrame({"ID": ids, "ENTREZ_GENE_ID": entrez, "GO": ["x y"] * 12})


# --------------------------------------------------------------------------------------------------
# log2 detection on real tables


def test_gse781_mas5_tables_are_linear_and_their_log2_is_log_scale(gse781) -> None:
    assert len(gse781.samples) == 34
    for acc, entity in gse781.samples.items():
        values, counts = parse_values(entity.table.column("VALUE"), label=acc)
        assert counts == {"n_missing": 0, "n_nonfinite": 0}
        d = detect_log2(values, label=acc)
        assert (d.is_log2, d.rule, d.refinebio_would_log) == (False, "linear_range", True), acc
        assert d.q99 > 5000 and d.n_nonpositive == 0 and d.spread > 200 and d.tail_ratio > 15
        logged = detect_log2(np.log2(values), label=acc)
        assert (logged.is_log2, logged.rule) == (True, "log_range"), acc
        assert logged.q99 < 15 and logged.warnings == ()


def test_cases_where_the_max_100_rule_is_wrong(gsm11805_values: pd.Series) -> None:
    v = gsm11805_values.to_numpy()
    logged = np.log2(v)
    # log data with 0.5% sentinel values (999): refine.bio would log2 the log values
    sentinel = np.where(np.arange(v.size) % 200 == 0, 999.0, logged)
    d = detect_log2(sentinel)
    assert d.is_log2 and d.refinebio_would_log
    assert d.warnings == ("112 values above 32 (max 999) in log-scale data: outliers or sentinels",)
    # linear data scaled below 100 (max 57.5): refine.bio would leave it linear
    for scaled in (v / 1000, v / v.mean()):
        d = detect_log2(scaled)
        assert (d.is_log2, d.rule, d.refinebio_would_log) == (False, "linear_spread", False)
        out = apply_log2(scaled, d)
        np.testing.assert_array_equal(out.values, np.log2(scaled))
    # log10 data: left as is, with a warning
    d = detect_log2(np.log10(v))
    assert d.is_log2 and any("possibly log10" in w for w in d.warnings)


def test_real_mas4_average_differences_with_negatives(shared_data: Path) -> None:
    """GSM645 (MAS 4, 'Average Difference Intensity'): 6 of 20 values negative."""
    doc = parse_soft(shared_data / "geo" / "biopython" / "GSM645.txt")
    table = doc.samples["GSM645"].table
    values, _ = parse_values(table.column("VALUE"))
    d = detect_log2(values)
    assert (d.is_log2, d.rule, d.n_negative, d.n_zero, d.n_values) == (False, "linear_range", 6, 0, 20)
    with np.errstate(all="raise"):  # log2 is never evaluated on a value <= 0
        result = apply_log2(values, d)
    assert result.n_floored == 6 and result.floor_value == 24.0  # smallest positive value (AFFX-BioB-M_st)
    np.testing.assert_array_equal(result.values, np.log2(np.maximum(values, 24.0)))
    assert np.isfinite(result.values).all()
    # refine.bio's log2(x) on the same column: 6 NaN
    with np.errstate(invalid="ignore"):
        assert np.isnan(np.log2(values)).sum() == 6
    dropped = apply_log2(values, d, nonpositive="nan")
    assert dropped.n_dropped == 6 and np.isnan(dropped.values).sum() == 6


def test_real_cgh_log2_ratios(shared_data: Path) -> None:
    """GSM804: VALUE = log2 ratios with empty cells; LINEAR_RATIO near 1 (documented ambiguity)."""
    table = parse_soft(shared_data / "geo" / "biopython" / "GSM804.txt").samples["GSM804"].table
    values, counts = parse_values(table.column("VALUE"))
    assert counts["n_missing"] == 3 and np.isnan(values).sum() == 3
    d = detect_log2(values)
    assert d.is_log2 and d.rule == "log_range" and d.n_negative == 6 and "1st percentile" in d.reason
    ratios, _ = parse_values(table.column("LINEAR_RATIO"))
    d = detect_log2(ratios)
    assert d.is_log2 and "0.2 doublings" in d.reason  # cannot be told from log values: left unchanged


def test_rule_boundaries_by_hand() -> None:
    base = np.arange(1, 101, dtype=float)  # numpy linear quantiles: q01 = 1.99, q50 = 50.5, q99 = 99.01
    d = detect_log2(base * 0.33)  # q99 = 32.6733 > 32
    assert d.rule == "linear_range" and d.q99 == pytest.approx(32.6733)
    d = detect_log2(base * 0.32)  # q99 = 31.68, q99/q01 = 49.75 < 64
    assert d.rule == "log_range" and d.spread == pytest.approx(99.01 / 1.99)
    rng = np.random.default_rng(0)
    # lognormal linear ratios: sigma 1 spans 6.8 doublings (q99/q01 ~ e^(4.65)) with tail ratio ~10
    d = detect_log2(rng.lognormal(0.0, 1.0, 20_000))
    assert d.rule == "linear_spread" and 90 < d.spread < 130 and d.tail_ratio > 8
    # sigma 0.5 spans only ~3.3 doublings: indistinguishable from log values, left unchanged
    assert detect_log2(rng.lognormal(0.0, 0.5, 20_000)).rule == "log_range"
    # large spread but a symmetric distribution (tail ratio ~1): log-scale values near 0
    symmetric = np.concatenate([np.linspace(0.01, 1, 50), np.linspace(1, 1.99, 50)])
    d = detect_log2(symmetric)
    assert d.spread > 64 and d.tail_ratio < 3 and d.is_log2


def test_log2_errors() -> None:
    with pytest.raises(Log2Error, match="S1: only 9 finite values"):
        detect_log2([1.0] * 9 + [np.nan, np.inf], label="S1")
    with pytest.raises(Log2Error, match="S1: values are \\(nearly\\) constant"):
        detect_log2([5.0] * 200 + [1000.0], label="S1")
    many_negative = np.concatenate([-np.arange(1, 61, dtype=float), np.arange(100, 5000, 100, dtype=float)])
    d = detect_log2(many_negative)
    assert not d.is_log2 and d.n_nonpositive == 60
    with pytest.raises(Log2Error, match="60 of 109 linear-scale values are <= 0"):
        apply_log2(many_negative, d, label="S2")
    with pytest.raises(ValueError, match="nonpositive must be one of"):
        apply_log2([1.0] * 20, nonpositive="clip")
    logged = apply_log2(np.array([1.0, 2.0, np.inf] + [3.0] * 10 + [4.0]))
    assert not logged.transformed and np.isnan(logged.values[2])


# --------------------------------------------------------------------------------------------------
# process_sample_table on hand-built tables


def _sample_frame() -> pd.DataFrame:
    # values are powers of two, so log2 is exact; p2 repeated (2^6 and 2^8 -> mean of logs 7)
    rows = [
        ("p1", "1024", "P"),
        ("p2", "64", "P"),
        ("p2", "256", "P"),
        ("p3", "32", "A"),
        ("p4", "8192", "P"),  # no Entrez id on the platform
        ("p5", " NA ", "A"),  # missing value
        (None, "512", "P"),  # no id
        ("p6", "2", "P"),
        ("p7", "4", "P"),
        ("p8", "16", "P"),
        ("p9", "128", "P"),
        ("p10", "2048", "P"),
        ("p11", "4096", "P"),
        ("p12", "1e3", "P"),
        ("p99", "8", "P"),  # not on the platform
    ]
    return pd.DataFrame(rows, columns=["ID_REF", "VALUE", "ABS_CALL"])


def test_process_small_table_by_hand() -> None:
    r = process_sample_table(
        _sample_frame(), _small_platform(), _small_crosswalk(), sample_accession="GSMX", platform="GPLX"
    )
    assert r.log2.rule == "linear_range" and r.log2_transform["transformed"]
    got = list(zip(r.values.index, r.values.to_numpy(), strict=True))
    expected = [
        # p1 (Entrez 1 and 2; 2 has two Ensembl genes): one-to-many, the value duplicated
        (E1, 10.0),
        (E2, 10.0),
        (E22, 10.0),
        (E3, 7.0),  # p2: duplicated id averaged on the log2 scale
        (E3, 5.0),  # p3: many-to-one, kept as a second entry of E3
        (E1, 1.0),  # p6 .. p12 -> Entrez 1
        (E1, 2.0),
        (E1, 4.0),
        (E1, 7.0),
        (E1, 11.0),
        (E1, 12.0),
        (E1, float(np.log2(1000.0))),
    ]
    assert sorted(got) == sorted(expected)
    assert r.values.name == "GSMX" and r.values.index.name == "id"
    assert r.table == {
        "id_column": "ID_REF",
        "value_column": "VALUE",
        "n_rows": 15,
        "n_missing_ids": 1,
        "n_probes": 13,
        "n_duplicate_rows": 1,
        "n_duplicate_ids": 1,
        "n_missing_values": 1,
        "n_nonfinite_values": 0,
        "n_probes_without_value": 1,
        "n_mapped_probes_with_value": 10,
    }
    # coverage: 11 of the 13 distinct ids map (p5 maps but has no value; p4 and p99 do not map)
    assert r.mapping["n_probes"] == 13 and r.mapping["n_mapped"] == 11
    assert r.mapping["coverage"] == pytest.approx(11 / 13) and r.mapping["platform"] == "GPLX"
    assert "1 rows without an id dropped" in r.warnings
    m = r.metrics()
    assert m["submitter_processed"] is True and m["mapping"]["column"] == "ENTREZ_GENE_ID"
    assert m["n_genes"] == 4 and m["n_values"] == 12
    json.dumps(m)  # JSON-able for the ledger
    collapsed = mean_of_duplicates(r.values)
    assert collapsed[E3] == 6.0 and collapsed[E2] == 10.0 and list(collapsed.index) == sorted(collapsed.index)


def test_keep_scale_and_arrow_and_numeric_inputs() -> None:
    frame = _sample_frame().dropna(subset=["ID_REF"])
    frame = frame[frame["VALUE"].str.strip() != "NA"]
    numeric = frame.assign(VALUE=frame["VALUE"].astype(float))
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    a = process_sample_table(numeric, _small_platform(), _small_crosswalk(), sample_accession="S")
    b = process_sample_table(arrow, _small_platform(), _small_crosswalk(), sample_accession="S")
    pd.testing.assert_series_equal(a.values, b.values)
    raw = process_sample_table(
        numeric, _small_platform(), _small_crosswalk(), sample_accession="S", log2=False
    )
    assert raw.log2 is None and raw.log2_transform == {"transformed": False, "skipped": True}
    # duplicated p2 (64, 256) is averaged on the scale given: 160 unlogged, 2^7 after log2
    assert sorted(raw.values.loc[E3].tolist()) == [32.0, 160.0]
    assert sorted(a.values.loc[E3].tolist()) == [5.0, 7.0]
    others = raw.values.drop(E3)
    np.testing.assert_array_equal(np.log2(others.to_numpy()), a.values.drop(E3).to_numpy())


def test_pandas_inputs_with_missing_cells_and_integer_ids() -> None:
    ids = list(range(1, 11))
    platform = pd.DataFrame({"ID": ids, "ENTREZ_GENE_ID": [1, 3, 4, 2, 1, 1, 1, 1, 1, 1]})  # integer columns
    sample = pd.DataFrame(
        {
            "ID_REF": [*ids, 1, 4],
            "VALUE": pd.array([str(2.0**k) for k in range(3, 14)] + [None], dtype="str"),  # pandas str, NaN
        }
    )
    r = process_sample_table(sample, platform, _small_crosswalk(), sample_accession="GSMP")
    assert r.table["n_missing_values"] == 1 and r.table["n_duplicate_ids"] == 2
    # log2 per id: 1 -> mean(3, 13) = 8; 2 -> 4; 3 -> 5; 4 -> 6 (its repeat is missing); 5..10 -> 7..12
    collapsed = mean_of_duplicates(r.values)
    assert collapsed.to_dict() == {E1: 65 / 7, E2: 6.0, E3: 4.5, E22: 6.0}
    mixed = pd.Series(["1.5", 2, None, float("nan"), "NA", "7"] * 3, dtype=object)
    parsed, counts = parse_values(mixed)
    assert counts["n_missing"] == 9 and parsed[:2].tolist() == [1.5, 2.0]


def test_bad_tables() -> None:
    platform, cw = _small_platform(), _small_crosswalk()
    bad = _sample_frame()
    bad.loc[3, "VALUE"] = "12,5"
    bad.loc[8, "VALUE"] = "high"
    with pytest.raises(
        SubmitterTableError, match=r"GSMB: 2 value cells are not numbers \(e.g. '12,5', 'high'\)"
    ):
        process_sample_table(bad, platform, cw, sample_accession="GSMB")
    empty = pd.DataFrame({"ID_REF": pd.Series([], dtype=object), "VALUE": pd.Series([], dtype=object)})
    with pytest.raises(SubmitterTableError, match="GSMB: the sample table has no rows"):
        process_sample_table(empty, platform, cw, sample_accession="GSMB")
    with pytest.raises(SubmitterTableError, match="need an id and a value column"):
        process_sample_table(pd.DataFrame({"ID_REF": ["p1"]}), platform, cw, sample_accession="GSMB")
    with pytest.raises(SubmitterTableError, match="no value column 'SIGNAL'"):
        process_sample_table(_sample_frame(), platform, cw, sample_accession="GSMB", value_column="SIGNAL")
    all_missing = _sample_frame().assign(VALUE="null")
    with pytest.raises(Log2Error, match="GSMB: only 0 finite values"):
        process_sample_table(all_missing, platform, cw, sample_accession="GSMB")
    doubled = pd.concat([_sample_frame()] * 3, ignore_index=True)
    with pytest.raises(SubmitterTableError, match="GSMB: 29 of 42 rows repeat an id"):
        process_sample_table(doubled, platform, cw, sample_accession="GSMB")
    other = _sample_frame().assign(ID_REF=[f"x{i}" for i in range(15)])
    with pytest.raises(IdMappingError, match=r"GSMB \(platform\): best identifier column"):
        process_sample_table(other, platform, cw, sample_accession="GSMB")
    no_ids = _sample_frame().assign(ID_REF="  ")
    with pytest.raises(SubmitterTableError, match="no row has an id"):
        process_sample_table(no_ids, platform, cw, sample_accession="GSMB")
    with pytest.raises(ValueError, match="crosswalk is required"):
        process_sample_table(_sample_frame(), platform, None, sample_accession="GSMB")


# --------------------------------------------------------------------------------------------------
# Real GSE781 samples


def _expected_pairs(mapper: PlatformMapper, values: pd.Series) -> pd.DataFrame:
    frame = mapper.map(values.index.to_numpy(dtype=object)).as_frame()
    frame["value"] = np.log2(values.reindex(frame["probe_id"]).to_numpy())
    return frame


@pytest.mark.slow
def test_all_34_gse781_samples(gse781, mappers) -> None:
    sizes = {"GPL96": (26_106, 15_172, 20_617), "GPL97": (15_236, 9_802, 13_665)}
    for acc, entity in gse781.samples.items():
        gpl = entity.get("platform_id")
        r = process_sample_table(entity.table, mappers[gpl], sample_accession=acc)
        n_values, n_genes, n_mapped = sizes[gpl]
        assert (len(r.values), r.values.index.nunique(), r.mapping["n_mapped"]) == (
            n_values,
            n_genes,
            n_mapped,
        )
        assert r.mapping["column"] == "ENTREZ_GENE_ID" and r.log2.rule == "linear_range"
        assert np.isfinite(r.values.to_numpy()).all() and r.warnings == []
        # every entry is log2 of its probe's VALUE: the multiset of (gene, value) equals the reference
        t = entity.table
        raw = pd.Series(
            np.asarray(t.column("VALUE").to_pylist(), float), index=t.column("ID_REF").to_pylist()
        )
        ref = _expected_pairs(mappers[gpl], raw).sort_values(["ensembl_gene_id", "value"], kind="stable")
        got = r.values.reset_index().sort_values(["id", acc], kind="stable")
        assert got["id"].tolist() == ref["ensembl_gene_id"].tolist()
        np.testing.assert_array_equal(got[acc].to_numpy(), ref["value"].to_numpy())


def test_gse781_specific_genes(gse781, mappers, gsm11805_values: pd.Series) -> None:
    r = process_sample_table(gse781.samples["GSM11805"].table, mappers["GPL96"], sample_accession="GSM11805")
    v = gsm11805_values
    assert v["117_at"] == 134.0 and v["1007_s_at"] == 1946.9
    hspa6 = sorted(r.values.loc["ENSG00000173110"].tolist())  # 117_at and 213418_at
    assert hspa6 == sorted([np.log2(134.0), np.log2(v["213418_at"])])
    # 1007_s_at (Entrez 780, DDR1) -> 7 Ensembl genes, each with log2(1946.9); every DDR1 probe set
    # of GPL96 contributes one entry to each of the 7 genes
    platform = gse781.platforms["GPL96"].table
    ddr1_probes = [
        p
        for p, e in zip(
            platform.column("ID").to_pylist(), platform.column("ENTREZ_GENE_ID").to_pylist(), strict=True
        )
        if e == "780"
    ]
    assert "1007_s_at" in ddr1_probes and len(ddr1_probes) > 1
    expected = sorted(np.log2(v[ddr1_probes].to_numpy()).tolist())
    for gene in ("ENSG00000204580", "ENSG00000137332", "ENSG00000234078"):
        assert sorted(r.values.loc[[gene]].tolist()) == expected
    # GAPDH: six probe sets -> six entries, averaged later
    gapdh = r.values.loc["ENSG00000111640"]
    assert len(gapdh) == 6 and mean_of_duplicates(r.values)["ENSG00000111640"] == pytest.approx(gapdh.mean())


@pytest.mark.slow
def test_gse781_end_to_end_through_survey_storage_and_framework(
    shared_data: Path, human, tmp_path: Path
) -> None:
    from refine_assets.lib.http import ReplayHttpClient
    from refine_assets.lib.processing.framework import process_samples, read_ledger, write_ledger
    from refine_assets.lib.processing.inputs import load_sample_inputs
    from refine_assets.lib.processing.vectors import read_vector
    from refine_assets.lib.storage import open_store
    from refine_assets.lib.survey.geo import family_soft_url
    from refine_assets.lib.survey.pipeline import run_survey

    soft = shared_data / "geo" / "geoquery" / "GSE781_family.soft.gz"
    store = open_store(str(tmp_path / "store"))
    run_survey("GSE781", ReplayHttpClient(files={family_soft_url("GSE781"): soft}), store)
    samples = load_sample_inputs(store, "GSE781")
    assert len(samples) == 34 and all(s.has_submitter_table for s in samples)

    class Counting(SubmitterProcessor):
        calls = 0

        def process(self, sample):
            Counting.calls += 1
            return super().process(sample)

    processor = Counting(store, human)
    outcomes = process_samples(samples, {"NO_OP": processor}, store)
    assert [o.status for o in outcomes] == ["succeeded"] * 34 and Counting.calls == 34
    coverage = {o.metrics["mapping"]["platform"]: o.metrics["mapping"]["coverage"] for o in outcomes}
    assert coverage == {"GPL96": pytest.approx(20_617 / 22_283), "GPL97": pytest.approx(13_665 / 22_645)}
    for o in outcomes:
        assert o.step == "submitter_processed" and o.metrics["submitter_processed"] is True
        assert o.metrics["mapping"]["crosswalk"]["source"] == "human_gene_ids.tsv.gz"
        assert set(o.input_checksums) == {"sample_table", "platform_table", "crosswalk"}
    write_ledger(store, "GSE781", outcomes)
    ledger = read_ledger(store, "GSE781")
    stored = ledger[("GSM11805", "submitter_processed")]
    assert stored.metrics["mapping"]["column"] == "ENTREZ_GENE_ID"
    assert stored.metrics["log2"]["rule"] == "linear_range"
    vector, provenance = read_vector(store, stored.output_key)
    assert provenance["method"] == "submitter_processed" and provenance["step"] == "submitter_processed"
    assert len(vector) == 26_106 and vector.index.is_monotonic_increasing
    assert sorted(vector.loc["ENSG00000173110"].tolist())[0] == pytest.approx(np.log2(134.0), abs=0)
    # re-running with the same versions skips every sample
    again = process_samples(samples, {"NO_OP": processor}, store, previous=ledger)
    assert Counting.calls == 34 and [o.status for o in again] == ["succeeded"] * 34
    # a sample without a stored table, and an organism without a crosswalk, fail with reasons
    import dataclasses

    missing = dataclasses.replace(samples[0], accession="GSM0", has_submitter_table=True, pipeline="NO_OP")
    mouse = dataclasses.replace(samples[1], organism="MUS_MUSCULUS", pipeline="NO_OP")
    failed = process_samples([missing, mouse], {"NO_OP": SubmitterProcessor(store, human)}, store)
    assert failed[0].status == "failed" and "no submitter-processed table or file" in failed[0].reason
    assert failed[1].status == "failed" and "no gene crosswalk for organism MUS_MUSCULUS" in failed[1].reason
    by_organism = SubmitterProcessor(store, {"HOMO_SAPIENS": human})
    assert process_samples([samples[2]], {"NO_OP": by_organism}, store)[0].status == "succeeded"


# --------------------------------------------------------------------------------------------------
# File readers and the convert-ids command


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:
        """Placeholder so typer keeps subcommands."""

    return app


def test_cli_gsm11805_against_the_family_soft(
    geoquery: Path, crosswalk_path: Path, tmp_path: Path, mappers, gse781
) -> None:
    out = tmp_path / "out" / "GSM11805.tsv"
    result = CliRunner().invoke(
        _app(),
        [
            "convert-ids",
            str(geoquery / "GSM11805.txt.gz"),
            "--platform-table",
            str(geoquery / "GSE781_family.soft.gz"),  # two platforms: GPL96 chosen from the GSM's platform_id
            "--crosswalk",
            str(crosswalk_path),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["sample"], summary["platform"], summary["column"]) == (
        "GSM11805",
        "GPL96",
        "ENTREZ_GENE_ID",
    )
    assert (summary["n_probes"], summary["n_mapped"], summary["rows"]) == (22_283, 20_617, 26_106)
    assert summary["log2"]["rule"] == "linear_range"
    written = pd.read_csv(out, sep="\t", dtype={"ID": str})
    assert list(written.columns) == ["ID", "GSM11805"] and len(written) == 26_106
    assert written["ID"].is_monotonic_increasing
    direct = process_sample_table(
        gse781.samples["GSM11805"].table, mappers["GPL96"], sample_accession="GSM11805"
    )
    ref = direct.values.reset_index().sort_values(["id", "GSM11805"], kind="stable")
    mine = written.sort_values(["ID", "GSM11805"], kind="stable")
    np.testing.assert_array_equal(mine["GSM11805"].to_numpy(), ref["GSM11805"].to_numpy())  # repr round-trips
    assert [p.name for p in out.parent.iterdir()] == ["GSM11805.tsv"]  # no temp file left


def test_cli_annot_platform_and_sample_choice(geoquery: Path, crosswalk_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.tsv"
    args = [
        "convert-ids",
        str(geoquery / "GSE781_family.soft.gz"),
        "--platform-table",
        str(geoquery / "GPL97.annot.gz"),
    ]
    args += ["--crosswalk", str(crosswalk_path), "-o", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 1 and "34 samples" in result.output and "--sample" in result.output
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        _app(), [*args, "--sample", "GSM11810", "--mean-duplicates", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["column"], summary["n_mapped"], summary["genes"]) == ("Gene ID", 12_423, summary["rows"])
    assert summary["platform"] == "GPL97"
    full = json.loads(report.read_text())
    assert full["mapping"]["coverage"] == pytest.approx(12_423 / 22_645)
    assert any(c["column"] == "GI" and c["id_type"] == "numeric" for c in full["mapping"]["candidates"])


def _write(path: Path, text: str, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def test_cli_text_inputs_by_hand(tmp_path: Path) -> None:
    # headerless MINiML-style table with a comment line; platform TSV with '#' and '!' lines
    values = [1024, 64, 32, 2, 4, 16, 128, 2048, 4096, 8, 512, 256]
    sample = "# exported\n" + "".join(f"p{i + 1}\t{v}\tP\n" for i, v in enumerate(values))
    sample_path = _write(tmp_path / "GSM9-tbl-1.txt.gz", sample, gz=True)
    platform = "!platform_table_begin\n#ID = probe\nID\tENTREZ_GENE_ID\tDesc\n"
    platform += "".join(
        f"p{i}\t{e}\tsome text\n"
        for i, e in enumerate(["1 /// 2", "3", "4", "", "1", "1", "1", "1", "1", "1", "1", "1"], 1)
    )
    platform += "!platform_table_end\n"
    platform_path = _write(tmp_path / "GPL9.txt", platform)
    cw_path = _write(
        tmp_path / "cw.tsv",
        f"entrez_id\tensembl_gene_id\tsymbol\n1\t{E1}\tA\n2\t{E2}\tB\n2\t{E22}\tB\n3\t{E3}\tC\n4\t{E3}\tD\n5\t\tE\n",
    )
    out = tmp_path / "gene.tsv"
    base = [
        "convert-ids",
        str(sample_path),
        "--platform-table",
        str(platform_path),
        "--crosswalk",
        str(cw_path),
    ]
    result = CliRunner().invoke(_app(), [*base, "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "ID\tGSM9-tbl-1"  # headerless: named after the file stem
    rows = [tuple(line.split("\t")) for line in lines[1:]]
    # p1 -> E1, E2, E22 (10.0); p2 -> E3 (6.0); p3 -> E3 (5.0); p4 unmapped; p5..p12 -> E1
    assert sorted(rows) == sorted(
        [(E1, "10.0"), (E2, "10.0"), (E22, "10.0"), (E3, "6.0"), (E3, "5.0")]
        + [(E1, repr(float(np.log2(v)))) for v in values[4:]]
    )
    result = CliRunner().invoke(_app(), [*base, "-o", str(out), "--mean-duplicates", "--sample", "S9"])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    e1_mean = 66 / 9  # log2 values of E1's probes are the integers 10, 2, 4, 7, 11, 12, 3, 9, 8
    assert lines == ["ID\tS9", f"{E1}\t{e1_mean!r}", f"{E2}\t10.0", f"{E3}\t5.5", f"{E22}\t10.0"]
    result = CliRunner().invoke(_app(), [*base, "-o", str(tmp_path / "k.tsv"), "--keep-scale"])
    assert result.exit_code == 0 and json.loads(result.stdout)["log2"] == {
        "transformed": False,
        "skipped": True,
    }
    assert f"{E3}\t64.0" in (tmp_path / "k.tsv").read_text()


def test_cli_errors_leave_no_output(tmp_path: Path, crosswalk_path: Path) -> None:
    sample = _write(tmp_path / "s.tsv", "ID_REF\tVALUE\n" + "".join(f"p{i}\t{i}0,5\n" for i in range(20)))
    platform = _write(tmp_path / "p.tsv", "ID\tENTREZ_GENE_ID\n" + "".join(f"p{i}\t1\n" for i in range(20)))
    out = tmp_path / "o.tsv"
    base = [
        "convert-ids",
        str(sample),
        "--platform-table",
        str(platform),
        "--crosswalk",
        str(crosswalk_path),
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(_app(), base)
    assert result.exit_code == 1 and "20 value cells are not numbers" in result.output
    assert "s.tsv" in result.output and not out.exists()
    result = CliRunner().invoke(
        _app(), [*base[:-4], "--crosswalk", str(tmp_path / "nope.tsv"), "-o", str(out)]
    )
    assert result.exit_code == 1 and "nope.tsv" in result.output
    result = CliRunner().invoke(_app(), [*base, "--min-coverage", "1.5"])
    assert result.exit_code == 1 and "--min-coverage" in result.output
    result = CliRunner().invoke(_app(), ["convert-ids", str(tmp_path / "none.tsv"), *base[2:]])
    assert result.exit_code == 1 and "none.tsv: no such file" in result.output
    assert list(tmp_path.glob("*.part")) == [] and not out.exists()


def test_cli_tsv_sample_with_a_two_platform_soft(
    geoquery: Path, crosswalk_path: Path, tmp_path: Path, gse781
) -> None:
    t = gse781.samples["GSM11810"].table  # a GPL97 sample, written as a plain TSV
    sample = tmp_path / "GSM11810.tsv"
    sample.write_text(
        "ID_REF\tVALUE\n"
        + "".join(
            f"{i}\t{v}\n"
            for i, v in zip(t.column("ID_REF").to_pylist(), t.column("VALUE").to_pylist(), strict=True)
        )
    )
    args = ["convert-ids", str(sample), "--platform-table", str(geoquery / "GSE781_family.soft.gz")]
    args += ["--crosswalk", str(crosswalk_path), "-o", str(tmp_path / "o.tsv")]
    result = CliRunner().invoke(_app(), args)
    assert (
        result.exit_code == 1
        and "2 platform tables (GPL96, GPL97); choose one with --platform" in result.output
    )
    result = CliRunner().invoke(_app(), [*args, "--platform", "GPL97"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["sample"], summary["platform"], summary["n_mapped"], summary["rows"]) == (
        "GSM11810",
        "GPL97",
        13_665,
        15_236,
    )


def test_read_sample_table_variants(tmp_path: Path) -> None:
    csv_path = _write(tmp_path / "a.csv", 'ID_REF,"sample_7"\n"p1",1.5\np2,2\n')
    table, name, platform = read_sample_table(csv_path)
    assert name == "sample_7" and platform is None and table.column("ID_REF").to_pylist() == ["p1", "p2"]
    magetab = _write(
        tmp_path / "E-MTAB-1.processed.txt",
        "Hybridization REF\tS1\nReporter REF\tnormalized\np1\t3.5\np2\t4.5\n",
    )
    table, name, _ = read_sample_table(magetab)
    assert table.column_names == ["Reporter REF", "S1"] and name == "S1" and table.num_rows == 2
    generic = _write(tmp_path / "GSM5.txt", "ID_REF\tVALUE\np1\t1\n")
    assert read_sample_table(generic)[1] == "GSM5"
    with pytest.raises(SubmitterTableError, match="only comments"):
        read_sample_table(_write(tmp_path / "c.txt", "# nothing\n!x\n"))
    with pytest.raises(SubmitterTableError, match="empty file"):
        read_sample_table(_write(tmp_path / "e.txt", "\n \n"))
    bad_gz = tmp_path / "t.txt.gz"
    bad_gz.write_bytes(gzip.compress(b"ID_REF\tVALUE\n" * 1000)[:30])
    with pytest.raises(SubmitterTableError, match="truncated or corrupt gzip"):
        read_sample_table(bad_gz)
    with pytest.raises(SubmitterTableError, match="platform table needs a header"):
        read_platform_table(_write(tmp_path / "np.txt", "p1\t1\np2\t2\n"))
