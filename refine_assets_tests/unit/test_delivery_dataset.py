"""Dataset zips end to end: layout and every column against the reference doc, values, bad inputs.

The world (module fixture) has human Affymetrix (two platforms, a submitter-processed sample with
versioned and duplicate ids, a pending and a failed sample), mouse Affymetrix from ArrayExpress, zebrafish
RNA-seq (one run with 80% zeros, which cannot be quantile normalized), rat RNA-seq without a QN target,
and a GEO SuperSeries that lists two human samples processed under their SubSeries.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import typer
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from refine_assets.commands.delivery import register
from refine_assets.lib.delivery.dataset import DatasetError, UnknownAccessionError, build_dataset
from refine_assets.lib.delivery.metadata import HARMONIZED_FIELDS
from refine_assets.lib.delivery.targets import build_qn_target, load_qn_target
from refine_assets.lib.qn import quantile_normalize_to_target
from refine_assets.lib.storage import file_sha256
from refine_assets_tests.unit.test_delivery_world import (
    HUMAN,
    MOUSE,
    RAT,
    ZEBRAFISH,
    S,
    affy,
    make_world,
    rnaseq,
)

GSE1_ATTRS = [
    ("tissue", "kidney", "geo_characteristics"),
    ("tissue", "cortex", "geo_characteristics"),
    ("Sex", "F", "geo_characteristics"),
    ("age", "42", "geo_characteristics"),
    ("source_name_ch1", "kidney biopsy", "geo_field"),
]
AE_ATTRS = [
    ("Characteristics[organism part]", "liver", "sdrf"),
    ("Factor Value[dose]", "5 mg/kg", "sdrf"),
    ("variable[dose]", "5 mg/kg", "ae_json"),  # refine.bio dropped these (teardown §12 item 8)
    ("characteristic[sex]", "male", "ae_json"),
]


def _submitter_sample() -> S:
    """A submitter-processed human sample: versioned ids, duplicates (one-to-many), AFFX controls."""
    rng = np.random.default_rng(99)
    ids = [f"ENSG{i:011d}.{i % 7 + 1}" for i in range(1, 281)] + [f"ENSG{i:011d}" for i in range(1, 41)]
    ids += ["AFFX-HUMGAPDH/M33197_5_at"]
    values = rng.normal(7.0, 2.0, len(ids))
    return affy(
        "GSM21",
        has_raw=False,
        pipeline="NO_OP",
        step="submitter_processed",
        method="submitter_processed",
        platform="GPL96",
        code="hgu133a",
        platform_name="[HG-U133A] Affymetrix Human Genome U133A Array",
        values=pd.Series(values, index=ids),
    )


def _experiments() -> dict[str, list[S]]:
    return {
        "GSE1": [affy(f"GSM1{i}", seed=i, attrs=GSE1_ATTRS) for i in range(1, 6)]
        + [
            affy("GSM16", step=None),
            affy("GSM17", seed=7, status="failed", reason="affy_scan: truncated CEL file"),
        ],
        "GSE2": [
            _submitter_sample(),
            affy("GSM22", seed=22, n=250, platform="GPL96", code="hgu133a", platform_name="[HG-U133A] x"),
        ],
        "E-MTAB-9": [
            affy(
                f"E-MTAB-9-S{i}",
                MOUSE,
                seed=30 + i,
                platform="A-AFFY-45",
                code="mouse4302",
                platform_name="Affymetrix GeneChip Mouse Genome 430 2.0 [Mouse430_2]",
                attrs=AE_ATTRS,
            )
            for i in range(1, 5)
        ],
        "SRP1": [rnaseq(f"SRR1{i}", ZEBRAFISH, seed=40 + i) for i in range(1, 4)]
        + [rnaseq("SRR14", ZEBRAFISH, seed=44, zeros=0.8)],
        "SRP2": [rnaseq(f"SRR2{i}", RAT, seed=50 + i) for i in range(1, 3)],
        # SuperSeries listing two samples of GSE1; processed (ledger) only under GSE1
        "GSE9": [
            affy("GSM11", step=None, values=None, attrs=GSE1_ATTRS),
            affy("GSM12", step=None, values=None),
        ],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dataset")
    experiments = _experiments()
    store, db = make_world(
        tmp, experiments, sources={"E-MTAB-9": "ARRAY_EXPRESS", "SRP1": "SRA", "SRP2": "SRA"}
    )
    build_qn_target(db, store, HUMAN, min_samples=5)
    build_qn_target(db, store, MOUSE, min_samples=3)  # 4 candidates, 3 share the gene set
    build_qn_target(db, store, ZEBRAFISH, min_samples=3)  # RNA-seq-only organism, tximport target
    samples = {s.accession: s for ss in experiments.values() for s in ss if s.step and s.values is not None}
    return store, db, samples, tmp


def _refinebio_column(source: str, key: str) -> str:
    """refine.bio's TSV column of one attribute (written out independently of metadata_tsv)."""
    if source == "geo_characteristics":
        return f"characteristics_ch1_{key}"
    m = re.fullmatch(r"(?:Characteristics\s*\[|characteristic\[)(.*)\]", key)
    if m:
        return f"characteristic_{m.group(1)}"
    m = re.fullmatch(r"(?:Factor Value\s*\[|variable\[)(.*)\]", key)
    if m:
        return f"variable_{m.group(1)}"
    return key


def _zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        return {i.filename: z.read(i) for i in z.infolist()}


def _tsv(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), sep="\t", index_col=0)


def _expected(samples: dict[str, S], accessions: list[str], target=None, *, log2=False, dtype=np.float32):
    """Independent reconstruction: clean ids, mean duplicates, pandas inner join, float32, QN."""
    cols = []
    for acc in accessions:
        s = samples[acc].values
        ids = s.index.str.replace(r"_at$", "", regex=True)
        keep = ~ids.str.contains("AFFX-", case=False)
        ids = ids[keep].str.replace(r"\.\d+$", "", regex=True)
        v = pd.Series(s.to_numpy()[keep], index=ids).groupby(level=0).mean()
        if log2:
            v = np.log2(v + 1.0)
        cols.append(v.rename(acc))
    frame = pd.concat(cols, axis=1, join="inner").sort_index().sort_index(axis=1).astype(dtype)
    if target is not None:
        frame[:] = quantile_normalize_to_target(frame.to_numpy(), target).astype(dtype)
    return frame


def test_species_zip_every_file_and_column_against_the_doc(world) -> None:
    store, db, samples, tmp = world
    request = {
        "data": {"GSE1": ["ALL"], "GSE2": ["ALL"], "E-MTAB-9": ["ALL"], "SRP1": ["ALL"]},
        "aggregate_by": "SPECIES",
        "scale_by": "NONE",
        "quantile_normalize": True,
    }
    result = build_dataset(request, db, store, tmp / "species.zip", record_in_warehouse=False)
    files = _zip(tmp / "species.zip")
    species = ["DANIO_RERIO", "HOMO_SAPIENS", "MUS_MUSCULUS"]
    expected_members = {f"{o}/{o}.tsv" for o in species} | {f"{o}/metadata_{o}.tsv" for o in species}
    expected_members |= {f"{o}/metadata_{o}.json" for o in species}
    expected_members |= {
        "aggregated_metadata.json",
        "README.md",
        "LICENSE.TXT",
        "filtered_samples_metadata.json",
        "filtered_samples_metadata.tsv",
    }
    assert set(files) == expected_members

    delivered = {
        "HOMO_SAPIENS": ["GSM11", "GSM12", "GSM13", "GSM14", "GSM15", "GSM21", "GSM22"],
        "MUS_MUSCULUS": [f"E-MTAB-9-S{i}" for i in range(1, 5)],
        "DANIO_RERIO": ["SRR11", "SRR12", "SRR13"],  # SRR14 fails the KS gate
    }
    for organism in species:
        # gene expression matrix: genes x samples, header "Gene" + sample accessions
        raw = files[f"{organism}/{organism}.tsv"].decode("utf-8")
        header = raw.split("\n", 1)[0].split("\t")
        assert header[0] == "Gene" and header[1:] == delivered[organism]
        matrix = _tsv(files[f"{organism}/{organism}.tsv"])
        genes = matrix.index.tolist()
        assert genes == sorted(genes) and len(set(genes)) == len(genes)
        assert not any(g.endswith("_at") or "AFFX" in g or re.search(r"\.\d+$", g) for g in genes)
        assert np.isfinite(matrix.to_numpy()).all()
        assert all(len(line.split("\t")) == len(header) for line in raw.splitlines())
        # metadata TSV (refine.bio's get_tsv_columns): refinebio_accession_code, experiment_accession, the
        # other sample-dict keys sorted, then the annotation columns sorted
        meta = pd.read_csv(
            io.BytesIO(files[f"{organism}/metadata_{organism}.tsv"]), sep="\t", dtype=str
        ).fillna("")
        cols = meta.columns.tolist()
        assert cols[:2] == ["refinebio_accession_code", "experiment_accession"]
        n_refinebio = sum(c.startswith("refinebio_") for c in cols)
        assert all(c.startswith("refinebio_") for c in cols[2 : n_refinebio + 1])
        assert cols[2 : n_refinebio + 1] == sorted(cols[2 : n_refinebio + 1])
        submitter = cols[n_refinebio + 1 :]
        assert submitter == sorted(submitter)
        assert meta["refinebio_accession_code"].tolist() == delivered[organism]  # same order as the matrix
        for f in HARMONIZED_FIELDS:
            assert f"refinebio_{f}" in cols
        for col in (
            "refinebio_organism",
            "refinebio_source_database",
            "refinebio_source_archive_url",
            "refinebio_platform",
            "refinebio_processor_id",
            "refinebio_processor_name",
            "refinebio_processor_version",
            "refinebio_processor_step",
            "refinebio_processor_method",
            "refinebio_processor_versions",
            "refinebio_processed_url",
            "refinebio_processed_sha256",
            "refinebio_value_scale",
            "refinebio_value_transform",
            "refinebio_ks_statistic",
            "refinebio_ks_passed",
        ):
            assert (meta[col] != "").all(), col
        assert (meta["refinebio_organism"] == organism).all()
        assert meta["refinebio_processor_id"].str.fullmatch(r"\d+").all()
        # every submitter attribute of every sample is a value of its refine.bio column (nothing dropped)
        for _, row in meta.iterrows():
            for key, value, source in samples[row["refinebio_accession_code"]].attrs:
                column = _refinebio_column(source, key)
                found = [row[c] for c in submitter if c == column or c.startswith(column + "#")]
                assert value in found, (row["refinebio_accession_code"], column)
        # species JSON: samples with verbatim attributes and refine.bio-shaped annotations, experiments
        js = json.loads(files[f"{organism}/metadata_{organism}.json"])
        assert js["species"] == organism
        assert [d["refinebio_accession_code"] for d in js["samples"]] == delivered[organism]
        for d in js["samples"]:
            attrs = samples[d["refinebio_accession_code"]].attrs
            assert [(a["key"], a["value"], a["source"]) for a in d["refinebio_attributes"]] == attrs
            assert isinstance(d["refinebio_annotations"], list)
        assert all(e["title"] and e["description"] for e in js["experiments"].values())

    human = pd.read_csv(
        io.BytesIO(files["HOMO_SAPIENS/metadata_HOMO_SAPIENS.tsv"]), sep="\t", dtype=str
    ).fillna("")
    gsm11 = human.set_index("refinebio_accession_code").loc["GSM11"]
    assert (
        gsm11["characteristics_ch1_tissue"] == "kidney" and gsm11["characteristics_ch1_tissue#2"] == "cortex"
    )
    assert gsm11["characteristics_ch1_Sex"] == "F" and gsm11["source_name_ch1"] == "kidney biopsy"
    assert gsm11["refinebio_sex"] == "female" and gsm11["refinebio_age"] == "42.000"
    assert gsm11["experiment_accession"] == "GSE1" and gsm11["refinebio_processed"] == "True"
    assert (gsm11["refinebio_processor_name"], gsm11["refinebio_processor_step"]) == (
        "Affymetrix SCAN",
        "affy_scan",
    )
    assert gsm11["refinebio_processor_version"] == "0.1.0" and gsm11["refinebio_value_scale"] == "scan"
    assert json.loads(gsm11["refinebio_processor_versions"]) == {
        "brainarray": "22.0.0",
        "refine_assets": "0.1.0",
        "scan": "fast",
    }
    gsm21 = human.set_index("refinebio_accession_code").loc["GSM21"]
    assert (
        gsm21["refinebio_processor_name"] == "Submitter-processed" and gsm21["refinebio_processed"] == "False"
    )
    mouse = pd.read_csv(io.BytesIO(files["MUS_MUSCULUS/metadata_MUS_MUSCULUS.tsv"]), sep="\t", dtype=str)
    # SDRF Factor Value[dose] and the JSON variable[dose] agree: one column, refine.bio's name
    assert (mouse["variable_dose"] == "5 mg/kg").all() and "variable_dose#2" not in mouse
    assert (mouse["characteristic_organism part"] == "liver").all() and (
        mouse["characteristic_sex"] == "male"
    ).all()
    zebrafish = pd.read_csv(io.BytesIO(files["DANIO_RERIO/metadata_DANIO_RERIO.tsv"]), sep="\t", dtype=str)
    assert (zebrafish["refinebio_value_transform"] == "log2(x+1)").all()
    assert (zebrafish["refinebio_processor_name"] == "Tximport").all()
    assert (zebrafish["refinebio_value_scale"] == "length_scaled_tpm").all()
    # one header for every metadata TSV of the dataset (refine.bio's write_tsv_json)
    assert human.columns.tolist() == mouse.columns.tolist() == zebrafish.columns.tolist()

    # aggregated_metadata.json: options, samples, experiments, KS, targets
    agg = json.loads(files["aggregated_metadata.json"])
    for key in (
        "aggregate_by",
        "scale_by",
        "quantile_normalized",
        "samples",
        "experiments",
        "num_samples",
        "num_experiments",
        "created_at",
        "ks_results",
        "ks_gate",
        "ks_statistic",
        "ks_pvalue",
        "ks_warning",
        "qn_targets",
        "groups",
        "precision",
        "request",
        "quant_sf_only",
    ):
        assert key in agg, key
    assert (agg["aggregate_by"], agg["scale_by"], agg["quantile_normalized"]) == ("SPECIES", "NONE", True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", agg["created_at"])
    all_delivered = sorted(s for ss in delivered.values() for s in ss)
    assert sorted(agg["samples"]) == all_delivered and agg["num_samples"] == len(all_delivered)
    assert sorted(agg["experiments"]) == ["E-MTAB-9", "GSE1", "GSE2", "SRP1"]
    assert agg["experiments"]["GSE1"]["sample_accession_codes"] == [
        "GSM11",
        "GSM12",
        "GSM13",
        "GSM14",
        "GSM15",
    ]
    assert agg["experiments"]["SRP1"]["sample_accession_codes"] == ["SRR11", "SRR12", "SRR13"]
    ks = {r["sample"]: r for r in agg["ks_results"]}
    assert sorted(ks) == sorted([*all_delivered, "SRR14"])
    assert ks["SRR14"]["passed"] is False and "KS statistic" in ks["SRR14"]["reason"]
    assert "SRR14" in agg["ks_warning"]
    assert agg["qn_targets"]["DANIO_RERIO"]["flagged"] is False  # built under its (lowered) minimum
    assert agg["qn_targets"]["HOMO_SAPIENS"]["platform"] == "hgu133plus2"
    assert agg["groups"]["HOMO_SAPIENS"]["num_genes"] == len(_tsv(files["HOMO_SAPIENS/HOMO_SAPIENS.tsv"]))

    # filtered samples: every dropped sample with refine.bio's keys (reason, experiment_accession_code)
    filt = pd.read_csv(io.BytesIO(files["filtered_samples_metadata.tsv"]), sep="\t", dtype=str).fillna("")
    fcols = filt.columns.tolist()
    assert fcols[:2] == ["refinebio_accession_code", "experiment_accession"]
    assert {"reason", "experiment_accession_code", "refinebio_filter_stage"} <= set(fcols)
    reasons = dict(zip(filt["refinebio_accession_code"], filt["reason"], strict=True))
    assert set(reasons) == {"GSM16", "GSM17", "SRR14"}
    assert reasons["GSM16"] == "not processed yet (no processing outcome recorded)"
    assert reasons["GSM17"] == "processing failed (affy_scan): affy_scan: truncated CEL file"
    assert reasons["SRR14"].startswith("failed the KS gate after quantile normalization: KS statistic")
    fj = json.loads(files["filtered_samples_metadata.json"])
    assert {k: v["reason"] for k, v in fj.items()} == reasons
    assert (
        fj["SRR14"]["experiment_accession_code"] == "SRP1" and fj["SRR14"]["refinebio_filter_stage"] == "ks"
    )
    assert agg["num_filtered_samples"] == 3

    from importlib import resources

    pkg = resources.files("refine_assets.lib.delivery")
    assert files["README.md"] == pkg.joinpath("README_DATASET.md").read_bytes()
    assert files["LICENSE.TXT"] == pkg.joinpath("LICENSE_DATASET.txt").read_bytes()
    assert result.num_samples == len(all_delivered) and {f["sample"] for f in result.filtered} == set(reasons)


def test_values_are_normalized_to_each_organisms_own_target(world) -> None:
    store, db, samples, tmp = world
    request = {
        "data": {"GSE1": ["GSM11", "GSM12", "GSM13"], "GSE2": ["ALL"], "E-MTAB-9": ["ALL"]},
        "aggregate_by": "species",
    }
    result = build_dataset(request, db, store, tmp / "qn.zip", record_in_warehouse=False)
    files = _zip(tmp / "qn.zip")
    human_t, _ = load_qn_target(store, HUMAN)
    # the preview for the UI plots: the first group's columns before and after QN, as delivered
    preview = result.qn_preview
    assert preview["group"] == "HOMO_SAPIENS" and list(preview["after"]) == list(preview["before"])
    delivered = _tsv(files["HOMO_SAPIENS/HOMO_SAPIENS.tsv"])
    for sample, after in preview["after"].items():
        np.testing.assert_allclose(after, delivered[sample].to_numpy(), rtol=1e-6)
        assert not np.allclose(np.sort(preview["before"][sample]), np.sort(after))
    mouse_t, _ = load_qn_target(store, MOUSE)
    human = _tsv(files["HOMO_SAPIENS/HOMO_SAPIENS.tsv"]).astype(np.float32)
    exp_h = _expected(samples, ["GSM11", "GSM12", "GSM13", "GSM21", "GSM22"], human_t)
    assert human.index.tolist() == exp_h.index.tolist() and len(human) == 250  # hgu133a 250, submitter 280
    np.testing.assert_array_equal(human.to_numpy(), exp_h.to_numpy())  # float32 round trip is exact
    mouse = _tsv(files["MUS_MUSCULUS/MUS_MUSCULUS.tsv"]).astype(np.float32)
    exp_m = _expected(samples, [f"E-MTAB-9-S{i}" for i in range(1, 5)], mouse_t)
    np.testing.assert_array_equal(mouse.to_numpy(), exp_m.to_numpy())
    # refine.bio normalized every group with the first sample's organism (human): visibly different
    wrong = _expected(samples, [f"E-MTAB-9-S{i}" for i in range(1, 5)], human_t)
    assert np.abs(wrong.to_numpy() - mouse.to_numpy()).max() > 0.01


def test_experiment_aggregation_is_independent_of_request_order(world) -> None:
    store, db, samples, tmp = world
    a = {
        "data": {"GSE1": ["GSM13", "GSM11", "GSM12"], "E-MTAB-9": "ALL", "GSE9": ["GSM12"]},
        "aggregate_by": "EXPERIMENT",
    }
    b = {"data": {"GSE9": ["GSM12"], "E-MTAB-9": ["ALL"], "GSE1": ["GSM12", "GSM13", "GSM11"]}}
    build_dataset(a, db, store, tmp / "a.zip", record_in_warehouse=False, dataset_id="a")
    build_dataset(b, db, store, tmp / "b.zip", record_in_warehouse=False, dataset_id="b")
    fa, fb = _zip(tmp / "a.zip"), _zip(tmp / "b.zip")
    assert set(fa) == {
        "GSE1/GSE1.tsv",
        "GSE1/metadata_GSE1.tsv",
        "GSE9/GSE9.tsv",
        "GSE9/metadata_GSE9.tsv",
        "E-MTAB-9/E-MTAB-9.tsv",
        "E-MTAB-9/metadata_E-MTAB-9.tsv",
        "aggregated_metadata.json",
        "README.md",
        "LICENSE.TXT",
    }
    for name in fa:
        if name.endswith(".tsv"):
            assert fa[name] == fb[name], name
    # GSM12 of the SuperSeries is delivered from the vector processed under its SubSeries
    gse9 = pd.read_csv(io.BytesIO(fa["GSE9/metadata_GSE9.tsv"]), sep="\t", dtype=str)
    assert gse9["experiment_accession"].tolist() == ["GSE9"]
    assert gse9["refinebio_processed_experiment"].tolist() == ["GSE1"]
    human_t, _ = load_qn_target(store, HUMAN)
    np.testing.assert_array_equal(
        _tsv(fa["GSE1/GSE1.tsv"]).astype(np.float32).to_numpy(),
        _expected(samples, ["GSM11", "GSM12", "GSM13"], human_t).to_numpy(),
    )


def test_species_aggregation_merges_a_sample_listed_twice(world) -> None:
    store, db, _samples, tmp = world
    req = {"data": {"GSE1": ["GSM11", "GSM13"], "GSE9": ["GSM11"]}, "aggregate_by": "SPECIES"}
    build_dataset(req, db, store, tmp / "twice.zip", record_in_warehouse=False)
    files = _zip(tmp / "twice.zip")
    assert _tsv(files["HOMO_SAPIENS/HOMO_SAPIENS.tsv"]).columns.tolist() == ["GSM11", "GSM13"]
    meta = pd.read_csv(io.BytesIO(files["HOMO_SAPIENS/metadata_HOMO_SAPIENS.tsv"]), sep="\t", dtype=str)
    # refine.bio's single experiment_accession (the first experiment listing it), and all of them
    assert meta["experiment_accession"].tolist() == ["GSE1", "GSE1"]
    assert [json.loads(v) for v in meta["refinebio_experiment_accessions"]] == [["GSE1", "GSE9"], ["GSE1"]]


def test_all_aggregation(world) -> None:
    store, db, samples, tmp = world
    req = {
        "data": {"GSE1": ["GSM11", "GSM12"], "GSE2": "ALL"},
        "aggregate_by": "ALL",
        "quantile_normalize": False,
    }
    build_dataset(req, db, store, tmp / "all.zip", record_in_warehouse=False)
    files = _zip(tmp / "all.zip")
    assert {"ALL/ALL.tsv", "ALL/metadata_ALL.tsv"} <= set(files)
    assert not any(n.endswith(".json") and n.startswith("ALL/") for n in files)
    got = _tsv(files["ALL/ALL.tsv"]).astype(np.float32)
    np.testing.assert_array_equal(
        got.to_numpy(), _expected(samples, ["GSM11", "GSM12", "GSM21", "GSM22"]).to_numpy()
    )


def test_all_aggregation_across_species_has_no_common_gene(world) -> None:
    store, db, _samples, tmp = world
    out = tmp / "cross.zip"
    with pytest.raises(DatasetError) as err:
        build_dataset({"data": {"GSE1": ["GSM11"], "E-MTAB-9": "ALL"}, "aggregate_by": "ALL"}, db, store, out)
    msg = str(err.value)
    assert "group ALL: no gene id is present in all 5 samples" in msg
    assert "organisms HOMO_SAPIENS, MUS_MUSCULUS" in msg and "aggregate by species" in msg
    assert not out.exists() and not list(tmp.glob(".refine-tmp-*"))


def test_unknown_accessions_are_all_listed(world) -> None:
    store, db, _samples, tmp = world
    req = {"data": {"GSE404": ["GSM1"], "GSE1": ["GSM11", "GSM999", "GSM22"]}}
    with pytest.raises(UnknownAccessionError) as err:
        build_dataset(req, db, store, tmp / "unknown.zip")
    msg = str(err.value)
    assert "unknown experiment accession GSE404" in msg
    assert "unknown sample accession GSM999 (requested under GSE1)" in msg
    assert "sample GSM22 is not part of experiment GSE1 (it is in GSE2)" in msg


def test_nothing_deliverable_leaves_existing_output_untouched(world) -> None:
    store, db, _samples, tmp = world
    out = tmp / "keep.zip"
    out.write_bytes(b"previous dataset")
    with pytest.raises(
        DatasetError, match=r"no sample of the request can be delivered \(2 filtered\)"
    ) as err:
        build_dataset({"data": {"GSE1": ["GSM16", "GSM17"]}}, db, store, out)
    assert "truncated CEL file" in str(err.value)
    assert out.read_bytes() == b"previous dataset" and not list(tmp.glob(".refine-tmp-*"))


def test_organism_without_target_is_filtered_and_deliverable_without_qn(world) -> None:
    store, db, samples, tmp = world
    req = {"data": {"SRP2": "ALL", "GSE1": ["GSM11"]}}
    result = build_dataset(req, db, store, tmp / "rat.zip", record_in_warehouse=False)
    assert sorted(result.groups) == ["GSE1"]
    reasons = {f["sample"]: f["reason"] for f in result.filtered}
    assert set(reasons) == {"SRR21", "SRR22"}
    assert reasons["SRR21"].startswith("no QN target for organism RATTUS_NORVEGICUS")
    assert "quantile_normalize=false" in reasons["SRR21"]
    assert "group SRP2: no sample left to deliver" in result.warnings
    # skipping QN (the doc's RNA-seq option): the tximport output itself, not logged, no KS
    raw = build_dataset(
        {**req, "quantile_normalize": False}, db, store, tmp / "rat_raw.zip", record_in_warehouse=False
    )
    assert raw.filtered == [] and raw.ks == []
    files = _zip(tmp / "rat_raw.zip")
    got = _tsv(files["SRP2/SRP2.tsv"]).astype(np.float32)
    np.testing.assert_array_equal(got.to_numpy(), _expected(samples, ["SRR21", "SRR22"]).to_numpy())
    agg = json.loads(files["aggregated_metadata.json"])
    assert agg["quantile_normalized"] is False and agg["ks_results"] == [] and agg["ks_statistic"] is None
    meta = pd.read_csv(io.BytesIO(files["SRP2/metadata_SRP2.tsv"]), sep="\t", dtype=str)
    assert (meta["refinebio_value_transform"] == "none").all()


def test_species_rnaseq_without_qn_is_log2_once(world) -> None:
    store, db, samples, tmp = world
    req = {"data": {"SRP1": ["SRR11", "SRR12"]}, "aggregate_by": "SPECIES", "quantile_normalize": False}
    build_dataset(req, db, store, tmp / "log.zip", record_in_warehouse=False)
    got = _tsv(_zip(tmp / "log.zip")["DANIO_RERIO/DANIO_RERIO.tsv"]).astype(np.float32)
    np.testing.assert_array_equal(
        got.to_numpy(), _expected(samples, ["SRR11", "SRR12"], log2=True).to_numpy()
    )


def test_ks_failures_kept_on_request(world) -> None:
    store, db, _samples, tmp = world
    req = {"data": {"SRP1": "ALL"}}
    result = build_dataset(req, db, store, tmp / "ks.zip", keep_ks_failures=True, record_in_warehouse=False)
    assert result.filtered == [] and result.groups["SRP1"]["samples"] == ["SRR11", "SRR12", "SRR13", "SRR14"]
    files = _zip(tmp / "ks.zip")
    meta = pd.read_csv(io.BytesIO(files["SRP1/metadata_SRP1.tsv"]), sep="\t", dtype=str).set_index(
        "refinebio_accession_code"
    )
    assert (
        meta.loc["SRR14", "refinebio_ks_passed"] == "False"
        and meta.loc["SRR11", "refinebio_ks_passed"] == "True"
    )
    agg = json.loads(files["aggregated_metadata.json"])
    assert agg["ks_gate"]["failures_kept"] is True and "SRR14" in agg["ks_warning"]
    assert agg["ks_statistic"] > 0.5  # 80% zeros: D = 2f - 1 = 0.6


def test_standard_scaling_after_qn_matches_sklearn(world) -> None:
    store, db, samples, tmp = world
    req = {"data": {"GSE1": ["GSM11", "GSM12", "GSM13", "GSM14"]}, "scale_by": "STANDARD"}
    build_dataset(req, db, store, tmp / "z.zip", record_in_warehouse=False)
    got = _tsv(_zip(tmp / "z.zip")["GSE1/GSE1.tsv"]).astype(np.float32)
    human_t, _ = load_qn_target(store, HUMAN)
    qn = _expected(samples, ["GSM11", "GSM12", "GSM13", "GSM14"], human_t).to_numpy().astype(np.float64)
    ref = StandardScaler().fit_transform(qn.T).T.astype(np.float32)
    np.testing.assert_allclose(got.to_numpy(), ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.to_numpy().mean(axis=1), 0.0, atol=1e-6)


def test_float64_precision(world) -> None:
    store, db, samples, tmp = world
    req = {"data": {"GSE1": ["GSM11", "GSM12"]}}
    build_dataset(req, db, store, tmp / "f64.zip", precision="float64", record_in_warehouse=False)
    got = _tsv(_zip(tmp / "f64.zip")["GSE1/GSE1.tsv"])
    human_t, _ = load_qn_target(store, HUMAN)
    exp = _expected(samples, ["GSM11", "GSM12"], human_t, dtype=np.float64)
    np.testing.assert_array_equal(got.to_numpy(), exp.to_numpy())
    with pytest.raises(DatasetError, match="precision must be one of"):
        build_dataset(req, db, store, tmp / "x.zip", precision="float16")


def test_records_in_store_and_warehouse(world) -> None:
    store, db, _samples, tmp = world
    req = {"data": {"GSE1": ["GSM11", "GSM12"]}, "id": "my-dataset-1"}
    result = build_dataset(
        req, db, store, tmp / "rec.zip", publish_key="datasets/my-dataset-1/my-dataset-1.zip"
    )
    sha, size = file_sha256(tmp / "rec.zip")
    assert (result.sha256, result.size, result.dataset_id) == (sha, size, "my-dataset-1")
    assert result.url == store.url_for("datasets/my-dataset-1/my-dataset-1.zip")
    assert store.read_sha256("datasets/my-dataset-1/my-dataset-1.zip") == sha
    record = json.loads(store.get_bytes("datasets/my-dataset-1/record.json"))
    assert (record["sha256"], record["size"], record["url"]) == (sha, size, result.url)
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT url, size, sha256, num_samples, groups, aggregate_by FROM datasets WHERE dataset_id = 'my-dataset-1'"
        ).fetchone()
        # the warehouse views still work after the record was added
        assert con.execute("SELECT count(*) FROM sample_status").fetchone()[0] > 0
    assert row == (result.url, size, sha, 2, ["GSE1"], "EXPERIMENT")


def test_failure_while_writing_leaves_nothing(world, monkeypatch) -> None:
    from refine_assets.lib.delivery import dataset as ds

    store, db, _samples, tmp = world
    out_dir = tmp / "crash"
    out_dir.mkdir()

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(ds._ZipOut, "write_matrix", boom)
    with pytest.raises(OSError, match="disk full"):
        build_dataset({"data": {"GSE1": ["GSM11"]}}, db, store, out_dir / "d.zip", record_in_warehouse=False)
    assert list(out_dir.iterdir()) == []


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_dataset(world) -> None:
    store, db, _samples, tmp = world
    runner = CliRunner()
    request = tmp / "request.json"
    request.write_text(json.dumps({"data": {"GSE1": ["GSM11", "GSM16"]}, "scale_by": "MINMAX"}))
    args = [
        "dataset",
        str(request),
        "-o",
        str(tmp / "cli.zip"),
        "--warehouse",
        str(db),
        "--storage",
        str(store.root),
    ]
    res = runner.invoke(_app(), [*args, "--no-record"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["groups"] == {"GSE1": {"samples": 1, "genes": 300, "path": "GSE1/GSE1.tsv"}}
    assert out["filtered"][0]["sample"] == "GSM16" and out["sha256"] == file_sha256(tmp / "cli.zip")[0]
    got = _tsv(_zip(tmp / "cli.zip")["GSE1/GSE1.tsv"])
    assert (got["GSM11"] == 0.0).all()  # one sample: every gene is constant, sklearn's MinMaxScaler gives 0
    bad = tmp / "bad.json"
    bad.write_text(json.dumps({"data": {"GSE1": ["GSM11"]}, "aggregate_by": "platform"}))
    res = runner.invoke(_app(), ["dataset", str(bad), "-o", str(tmp / "bad.zip"), "--warehouse", str(db)])
    assert res.exit_code == 1 and "aggregate_by must be one of" in res.output
    res = runner.invoke(_app(), ["dataset", "--help"])
    assert res.exit_code == 0 and "--keep-ks-failures" in res.output


def test_compression_level_changes_only_the_zip_size(world) -> None:
    store, db, _samples, tmp = world
    req = {"data": {"GSE1": ["GSM11", "GSM12", "GSM13"]}}
    fast = build_dataset(req, db, store, tmp / "l1.zip", compresslevel=1, record_in_warehouse=False)
    small = build_dataset(req, db, store, tmp / "l9.zip", compresslevel=9, record_in_warehouse=False)
    assert fast.size > small.size
    a, b = _zip(tmp / "l1.zip"), _zip(tmp / "l9.zip")
    assert a["GSE1/GSE1.tsv"] == b["GSE1/GSE1.tsv"]


def test_quant_sf_only_dataset(world, shared_data: Path) -> None:
    """refine.bio's test_quant_sf_only_smash on real salmon output: <KEY>/<RUN>_quant.sf, truncated and
    missing files filtered with refine.bio's reasons, no matrix/QN/scaling keys in the metadata."""
    import gzip

    store, db, _samples, tmp = world
    real = [
        gzip.decompress((shared_data / f"rnaseq/SRP095529/SRR512562{i}/quant.sf.gz").read_bytes())
        for i in (1, 2)
    ]
    store.put_bytes("processed/SRP1/SRR11/quant.sf", real[0])
    store.put_bytes("processed/SRP1/SRR12/quant.sf", real[1])
    store.put_bytes("processed/SRP1/SRR13/quant.sf", real[0].split(b"\n", 1)[1])  # header lost (#2191)
    # SRR14: the ledger names a quant.sf that is not in storage
    req = {
        "data": {"SRP1": "ALL"},
        "aggregate_by": "EXPERIMENT",
        "scale_by": "STANDARD",
        "quant_sf_only": True,
    }
    result = build_dataset(req, db, store, tmp / "quant.zip", record_in_warehouse=False)
    files = _zip(tmp / "quant.zip")
    assert set(files) == {
        "SRP1/SRR11_quant.sf",
        "SRP1/SRR12_quant.sf",
        "SRP1/metadata_SRP1.tsv",
        "aggregated_metadata.json",
        "filtered_samples_metadata.json",
        "filtered_samples_metadata.tsv",
        "README.md",
        "LICENSE.TXT",
    }
    assert files["SRP1/SRR11_quant.sf"] == real[0] and files["SRP1/SRR12_quant.sf"] == real[1]
    agg = json.loads(files["aggregated_metadata.json"])
    assert agg["quant_sf_only"] is True and agg["num_samples"] == 2 and agg["num_experiments"] == 1
    for absent in (
        "aggregate_by",
        "scale_by",
        "quantile_normalized",
        "ks_statistic",
        "ks_pvalue",
        "ks_warning",
    ):
        assert absent not in agg
    assert agg["samples"]["SRR11"]["refinebio_processor_name"] == "Salmon Quant"
    fj = json.loads(files["filtered_samples_metadata.json"])
    assert fj["SRR13"]["reason"] == "This sample's quant.sf file was truncated and missing its header"
    assert (
        fj["SRR14"]["reason"] == "This sample did not have a quant file associated with it in our database."
    )
    meta = pd.read_csv(io.BytesIO(files["SRP1/metadata_SRP1.tsv"]), sep="\t", dtype=str)
    assert meta["refinebio_accession_code"].tolist() == ["SRR11", "SRR12"]
    assert result.groups["SRP1"]["quant_sf_files"] == ["SRP1/SRR11_quant.sf", "SRP1/SRR12_quant.sf"]
    # microarray samples have no quant.sf: nothing to deliver is an error naming the reason
    with pytest.raises(DatasetError, match="did not have a quant file"):
        build_dataset({"data": {"GSE1": "ALL"}, "quant_sf_only": True}, db, store, tmp / "none.zip")


def test_zip_is_readable_like_any_download(world) -> None:
    store, db, _samples, tmp = world
    build_dataset({"data": {"GSE2": "ALL"}}, db, store, tmp / "mode.zip", record_in_warehouse=False)
    assert (tmp / "mode.zip").stat().st_mode & 0o777 == 0o644
