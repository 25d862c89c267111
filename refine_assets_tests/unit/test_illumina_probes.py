"""Illumina probe tables read from Bioconductor ``illumina*.db`` tarballs (SQLite in the real schema)."""

from __future__ import annotations

import io
import sqlite3
import tarfile

import numpy as np
import pytest

from refine_assets.lib.illumina.probes import (
    IlluminaProbeStore,
    ProbeTableError,
    good_quality,
    illumina_probe_table_to_parquet,
    read_illumina_db_package,
    read_illumina_probe_table_parquet,
    read_org_package,
    read_tiebreak_map,
)
from refine_assets_tests.illumina_generator import (
    EXTRA_INFO_COLUMNS,
    build_illumina_db_tarball,
    build_org_db_tarball,
    make_platform,
)


@pytest.fixture(scope="module")
def platform():
    return make_platform(600, seed=7)


@pytest.fixture()
def tarballs(tmp_path, platform):
    pkg = build_illumina_db_tarball(
        tmp_path,
        platform,
        extra_keys=("ILMN_CTRL_1", "ILMN_CTRL_2"),
        missing_sequence=(platform.probe_ids[5],),
    )
    org = build_org_db_tarball(tmp_path, platform.entrez_to_ensembl())
    return pkg, org


def _sqlite_of(tarball):
    with tarfile.open(tarball) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".sqlite"))
        data = tar.extractfile(member).read()
    con = sqlite3.connect(":memory:")
    con.deserialize(data)
    return con, member.name


def test_generated_package_has_the_documented_schema(tarballs):
    """The test tarballs follow the layout/schema the reader documents (guards the generator)."""
    con, name = _sqlite_of(tarballs[0])
    assert name == "illuminaHumanv4.db/inst/extdata/illuminaHumanv4.sqlite"
    cols = [r[1] for r in con.execute("PRAGMA table_info(ExtraInfo)")]
    assert tuple(cols) == EXTRA_INFO_COLUMNS
    assert [r[1] for r in con.execute("PRAGMA table_info(probes)")] == ["probe_id", "is_multiple", "gene_id"]
    meta = dict(con.execute("SELECT name, value FROM metadata"))
    assert meta["DBSCHEMA"] == "HUMANCHIP_DB" and meta["ORGPKG"] == "org.Hs.eg"


def test_table_from_package_with_org_mapping(tarballs, platform):
    pkg, org = tarballs
    t = read_illumina_db_package(pkg, org_package=org, source_url="https://bioconductor.org/x.tar.gz")
    assert t.platform == "illuminaHumanv4" and t.version == "1.26.0"
    assert t.ensembl_source == "ENSEMBL via org.Hs.eg.db 3.15.0"
    keys = set(t.keys())
    assert keys == set(platform.probe_ids) | {"ILMN_CTRL_1", "ILMN_CTRL_2"}
    info = t.lookup(platform.probe_ids)
    seq = info["sequence"].to_numpy(dtype=object)
    assert seq[5] is None or seq[5] != seq[5]
    assert list(seq[6:]) == list(platform.sequences[6:])
    assert list(info["quality"]) == list(platform.quality)
    assert [tuple(v) for v in info["ensembl_ids"]] == [tuple(sorted(e)) for e in platform.ensembl]
    assert len(t.sequences()) == 599
    ctrl = t.lookup(["ILMN_CTRL_1", "not_there"])
    assert ctrl["is_key"].tolist() == [True, False] and ctrl["ensembl_ids"].tolist() == [[], []]
    prov = t.provenance()
    assert prov["keys"] == 602 and prov["with_sequence"] == 599 and prov["org_version"] == "3.15.0"


def test_reannotated_ensembl_without_org_package(tarballs, platform):
    t = read_illumina_db_package(tarballs[0])
    assert t.ensembl_source == "EnsemblReannotated"
    info = t.lookup(platform.probe_ids)
    assert [tuple(v) for v in info["ensembl_ids"]] == [tuple(sorted(e)) for e in platform.ensembl]


def test_org_package_reader(tarballs, platform):
    mapping, version, name = read_org_package(tarballs[1])
    assert name == "org.Hs.eg.db" and version == "3.15.0"
    assert mapping == platform.entrez_to_ensembl()


def test_parquet_round_trip_and_store_cache(tmp_path, tarballs, platform):
    t = read_illumina_db_package(tarballs[0], org_package=tarballs[1])
    out = illumina_probe_table_to_parquet(t, tmp_path / "cache" / "illuminaHumanv4.parquet")
    back = read_illumina_probe_table_parquet(out)
    assert back.provenance() == t.provenance()
    assert back.frame["probe_id"].tolist() == t.frame["probe_id"].tolist()
    assert back.frame["ensembl_ids"].tolist() == t.frame["ensembl_ids"].tolist()
    assert back.frame["sequence"].tolist() == t.frame["sequence"].tolist()
    assert back.frame["is_key"].tolist() == t.frame["is_key"].tolist()

    store = IlluminaProbeStore(tmp_path)
    assert store.available() == ["illuminaHumanv4"]
    first = store.table("illuminaHumanv4")
    assert first.ensembl_source.startswith("ENSEMBL via org.Hs.eg.db")  # org tarball picked up
    assert (tmp_path / "illuminaHumanv4.parquet").is_file()
    tarballs[0].unlink()  # the cache is enough from now on
    again = IlluminaProbeStore(tmp_path).table("illuminaHumanv4")
    assert again.frame["probe_id"].tolist() == first.frame["probe_id"].tolist()
    keys = IlluminaProbeStore(tmp_path).platform_keys(["illuminaHumanv3", "illuminaHumanv4"])
    assert list(keys) == ["illuminaHumanv4"] and len(keys["illuminaHumanv4"]) == 602
    with pytest.raises(ProbeTableError, match="no probe table for illuminaHumanv3"):
        store.table("illuminaHumanv3")


def test_good_quality_is_a_case_sensitive_substring_match():
    q = ["Perfect", "Perfect***", "Good****", "Good", "Bad", "No match", None, "good", "perfect"]
    assert good_quality(q).tolist() == [True, True, True, True, False, False, False, False, False]


def test_tiebreak_map(tmp_path):
    p = tmp_path / "illuminaHumanv4.tsv"
    p.write_text("probe_id\tensembl_id\nILMN_1\tENSG1\nILMN_2\tENSG2\nILMN_1\tENSG9\n")
    assert read_tiebreak_map(p) == {"ILMN_1": "ENSG1", "ILMN_2": "ENSG2"}
    store = IlluminaProbeStore(tmp_path)
    assert store.tiebreak("illuminaHumanv4") == {"ILMN_1": "ENSG1", "ILMN_2": "ENSG2"}
    assert store.tiebreak("illuminaHumanv3") is None
    bad = tmp_path / "bad.tsv"
    bad.write_text("probe\tgene\nA\tB\n")
    with pytest.raises(ProbeTableError, match="lacks column 'probe_id'"):
        read_tiebreak_map(bad)


def _tar_with(tmp_path, members: dict[str, bytes]):
    path = tmp_path / "illuminaHumanv9.db_1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_bad_packages(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    with pytest.raises(ProbeTableError, match="not a readable package tarball"):
        read_illumina_db_package(junk)
    with pytest.raises(ProbeTableError, match="no inst/extdata"):
        read_illumina_db_package(_tar_with(tmp_path, {"x.db/DESCRIPTION": b"Package: x.db\n"}))
    with pytest.raises(ProbeTableError, match="not an SQLite database"):
        read_illumina_db_package(_tar_with(tmp_path, {"x.db/inst/extdata/x.sqlite": b"garbage" * 100}))
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE probes (probe_id TEXT, is_multiple INTEGER, gene_id TEXT)")
    with pytest.raises(ProbeTableError, match="no ExtraInfo"):
        read_illumina_db_package(_tar_with(tmp_path, {"x.db/inst/extdata/x.sqlite": con.serialize()}))
    con.execute("CREATE TABLE ExtraInfo (IlluminaID TEXT, ProbeQuality TEXT)")
    with pytest.raises(ProbeTableError, match="lacks column ProbeSequence"):
        read_illumina_db_package(_tar_with(tmp_path, {"x.db/inst/extdata/x.sqlite": con.serialize()}))


def test_old_probeinfo_schema(tmp_path):
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE probeinfo (ProbeID TEXT, ProbeQuality TEXT, ProbeSequence TEXT)")
    seq = "A" * 50
    con.executemany("INSERT INTO probeinfo VALUES (?, ?, ?)", [("P1", "Good", seq), ("P2", "Bad", None)])
    path = _tar_with(
        tmp_path, {"illuminaOld.db/DESCRIPTION": b"Package: illuminaOld.db\nVersion: 0.9\n",
                   "illuminaOld.db/inst/extdata/illuminaOld.sqlite": con.serialize()}
    )  # fmt: skip
    t = read_illumina_db_package(path)
    assert t.platform == "illuminaOld" and t.version == "0.9" and t.ensembl_source is None
    assert t.sequences().to_dict() == {"P1": seq}
    assert sorted(t.keys()) == ["P1", "P2"]
    assert np.array_equal(good_quality(t.lookup(["P1", "P2"])["quality"]), [True, False])
