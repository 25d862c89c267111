"""species_compendium and quantpendium assets: versions in storage, unchanged inputs publish nothing,
the warehouse lists every version, the percent-imputed check, and real quant.sf files zipped as is."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest

from refine_assets.defs.delivery.compendia import quantpendium, species_compendium
from refine_assets.lib.delivery.targets import build_qn_target
from refine_assets.lib.processing.framework import SampleOutcome, read_ledger, write_ledger
from refine_assets.lib.warehouse import build_warehouse
from refine_assets.resources import StorageResource
from refine_assets.resources.warehouse import WarehouseResource
from refine_assets_tests.unit.test_delivery_world import HUMAN, affy, make_world, rnaseq


@pytest.fixture()
def world(tmp_path: Path, shared_data: Path):
    rng = np.random.default_rng(5)
    micro = [affy(f"GSM{i:03d}", seed=i, n=400) for i in range(30)]
    for s in micro[:6]:  # some genes missing in a few samples: imputation has work to do
        assert s.values is not None
        s.values.iloc[rng.choice(400, 40, replace=False)] = np.nan
        s.values = s.values.dropna()
    runs = sorted(p.name for p in (shared_data / "rnaseq/SRP095529").iterdir())[:4]
    seq = [rnaseq(r, seed=100 + i, n=400) for i, r in enumerate(runs)]
    seq.append(rnaseq("SRR0000BAD", step=None))  # surveyed; its salmon outcome (failed) follows
    store, db = make_world(tmp_path, {"GSE100": micro, "SRP095529": seq})
    # the runs' real salmon outputs where the ledger says they are, plus one run that failed QC
    for r in runs:
        store.put_file(f"processed/SRP095529/{r}/quant.sf", _gunzip(shared_data, r, tmp_path))
    ledger = read_ledger(store, "SRP095529")
    ledger[("SRR0000BAD", "salmon")] = SampleOutcome(
        "SRR0000BAD",
        "SRP095529",
        "salmon",
        "failed",
        reason="QC gate failed: mapping rate 2.1 % < 10 %",
        recorded_at="2024-02-01T00:00:00",
    )
    write_ledger(store, "SRP095529", list(ledger.values()))
    build_warehouse(db, store)
    build_qn_target(db, store, HUMAN, min_samples=10)
    return store, db, runs


def _gunzip(shared_data: Path, run: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{run}.quant.sf"
    out.write_bytes(gzip.decompress((shared_data / f"rnaseq/SRP095529/{run}/quant.sf.gz").read_bytes()))
    return out


def _run(assets, store, db, config=None):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("organism", [HUMAN])
        return dg.materialize(
            assets,
            partition_key=HUMAN,
            instance=instance,
            resources={
                "storage": StorageResource(root=str(store.root)),
                "warehouse": WarehouseResource(path=str(db)),
            },
            run_config=config,
        )


def test_compendium_versions_and_check(world) -> None:
    store, db, _runs = world
    first = _run([species_compendium], store, db)
    md = first.asset_materializations_for_node("species_compendium")[0].metadata
    assert md["version"].value == 1 and md["unchanged"].value is False
    assert md["num_samples"].value == 34 and md["num_genes"].value > 300
    assert 0 < md["percent_imputed"].value < 25
    check = first.get_asset_check_evaluations()[0]
    assert check.check_name == "compendium_percent_imputed" and check.passed
    rec = json.loads(store.get_bytes(f"compendia/{HUMAN}/v1/record.json"))
    assert rec["num_samples"] == 34 and any(k.startswith("matrix/") for k in rec["files"])
    matrix = store.root / f"compendia/{HUMAN}/v1/matrix"
    n = duckdb.sql(f"SELECT count(DISTINCT sample) FROM read_parquet('{matrix}/*.parquet')").fetchall()[0][0]
    assert n == 34

    again = _run([species_compendium], store, db)  # same inputs: nothing new
    md2 = again.asset_materializations_for_node("species_compendium")[0].metadata
    assert md2["version"].value == 1 and md2["unchanged"].value is True
    strict = {"ops": {"species_compendium": {"config": {"force": True, "max_percent_imputed": 0.0}}}}
    forced = _run([species_compendium], store, db, strict)
    assert forced.asset_materializations_for_node("species_compendium")[0].metadata["version"].value == 2
    assert not forced.get_asset_check_evaluations()[0].passed  # imputed > 0 % limit: the check warns

    build_warehouse(db, store)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT kind, version, num_samples FROM compendia WHERE organism = ? ORDER BY version", [HUMAN]
        ).fetchall()
    assert rows == [("compendium", 1, 34), ("compendium", 2, 34)]


def test_quantpendium_zips_real_quant_files(world, shared_data: Path) -> None:
    store, db, runs = world
    result = _run([quantpendium], store, db)
    md = result.asset_materializations_for_node("quantpendium")[0].metadata
    assert md["version"].value == 1 and md["num_runs"].value == 4 and md["num_filtered"].value == 1
    zpath = store.root / f"quantpendia/{HUMAN}/v1/{HUMAN}_quantpendium.zip"
    with zipfile.ZipFile(zpath) as zf:
        for r in runs:
            real = gzip.decompress((shared_data / f"rnaseq/SRP095529/{r}/quant.sf.gz").read_bytes())
            assert zf.read(f"SRP095529/{r}/quant.sf") == real
        meta = zf.read("metadata.tsv").decode().splitlines()
        header = meta[0].split("\t")
        assert len(meta) == 5 and header[:2] == ["run_accession", "experiment_accession"]
        assert "salmon_version" in header and "refinebio_title" in header
        filtered = zf.read("filtered_samples.tsv").decode()
        assert "SRR0000BAD\tSRP095529\tfailed\tQC gate failed: mapping rate 2.1 % < 10 %" in filtered
        agg = json.loads(zf.read("aggregated_metadata.json"))
        assert agg["num_runs"] == 4 and agg["organism"] == HUMAN
        assert json.load(io.BytesIO(zf.read("metadata.json")))[0]["run_accession"] == runs[0]
    again = _run([quantpendium], store, db)
    assert again.asset_materializations_for_node("quantpendium")[0].metadata["unchanged"].value is True


def test_compendium_without_target_fails_clearly(tmp_path: Path) -> None:
    store, db = make_world(tmp_path, {"GSE1": [affy(f"GSM{i}", seed=i) for i in range(3)]})
    with pytest.raises(dg.Failure, match="no QN target for organism HOMO_SAPIENS"):
        _run([species_compendium], store, db)
    assert not store.list_keys("compendia/")


def test_genus_grouping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mus spretus arrays on the Mus musculus platform join the Mus musculus compendium; Mus caroli
    (RNA-seq only, no shared array platform) stays on its own; Rattus is another genus."""
    import duckdb as ddb

    from refine_assets.lib.compendia.select import GroupedOrganismError, genus_groups, select_samples
    from refine_assets_tests.unit import test_delivery_world as world
    from refine_assets_tests.unit.test_delivery_world import MOUSE, RAT

    for name, taxon in (("MUS_SPRETUS", 10096), ("MUS_CAROLI", 10089)):
        monkeypatch.setitem(world.TAXA, name, taxon)
        monkeypatch.setitem(world.PREFIX, name, "ENSMUSG")
    mouse = [affy(f"GSM1{i}", organism=MOUSE, seed=i, platform="GPL1261") for i in range(3)]
    mouse += [affy("GSM19", organism=MOUSE, seed=9, platform="GPL6246")]
    spretus = [affy(f"GSM2{i}", organism="MUS_SPRETUS", seed=20 + i, platform="GPL1261") for i in range(2)]
    caroli = [rnaseq("SRR31", organism="MUS_CAROLI", seed=31)]
    rat = [affy("GSM41", organism=RAT, seed=41, platform="GPL1355")]
    _store, db = make_world(tmp_path, {"GSE10": mouse, "GSE20": spretus, "SRP30": caroli, "GSE40": rat})
    with ddb.connect(str(db), read_only=True) as con:
        groups = genus_groups(con)
    assert groups == {
        MOUSE: MOUSE,
        "MUS_SPRETUS": MOUSE,
        "MUS_CAROLI": "MUS_CAROLI",
        RAT: RAT,
    }
    vectors, meta = select_samples(db, MOUSE)
    assert [v[0] for v in vectors] == ["GSM10", "GSM11", "GSM12", "GSM19", "GSM20", "GSM21"]
    assert meta["GSM20"]["organism"] == "MUS_SPRETUS"
    with pytest.raises(GroupedOrganismError, match="MUS_SPRETUS is part of the MUS_MUSCULUS compendium"):
        select_samples(db, "MUS_SPRETUS")
    assert [v[0] for v in select_samples(db, "MUS_CAROLI")[0]] == ["SRR31"]
