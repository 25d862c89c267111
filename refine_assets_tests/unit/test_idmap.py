"""Gene-id crosswalks and probe -> Ensembl gene mapping (``lib.crosswalk``, ``lib.idmap``).

Real data: the org.Hs.eg.db-derived crosswalk ``annotation/human_gene_ids.tsv.gz``, the GPL96/GPL97
platform tables of the GSE781 family SOFT and the GPL97 ``.annot`` file. Expected mappings are read
from the crosswalk file directly (csv module, no project code) and compared with what the code does.
"""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from refine_assets.lib.crosswalk import (
    CrosswalkError,
    crosswalk_from_frame,
    load_crosswalk,
    normalize_keys,
)
from refine_assets.lib.idmap import (
    IdMappingError,
    PlatformMapper,
    classify_tokens,
    detect_columns,
    map_probes,
)
from refine_assets.lib.survey.geo_soft import parse_soft

# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def crosswalk_path(shared_data: Path) -> Path:
    return shared_data / "annotation" / "human_gene_ids.tsv.gz"


@pytest.fixture(scope="module")
def human(crosswalk_path: Path):
    return load_crosswalk(crosswalk_path, organism="HOMO_SAPIENS")


@pytest.fixture(scope="module")
def raw_crosswalk(crosswalk_path: Path) -> dict[str, dict[str, set[str]]]:
    """entrez -> {ensembl}, symbol -> {ensembl}, read with the csv module only."""
    by_entrez: dict[str, set[str]] = defaultdict(set)
    by_symbol: dict[str, set[str]] = defaultdict(set)
    with gzip.open(crosswalk_path, "rt") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["ensembl_gene_id"]:
                by_entrez[row["entrez_id"]].add(row["ensembl_gene_id"])
                by_symbol[row["symbol"]].add(row["ensembl_gene_id"])
    return {"entrez": by_entrez, "symbol": by_symbol}


@pytest.fixture(scope="module")
def gse781(shared_data: Path):
    return parse_soft(shared_data / "geo" / "geoquery" / "GSE781_family.soft.gz")


@pytest.fixture(scope="module")
def mappers(gse781, human) -> dict[str, PlatformMapper]:
    return {gpl: PlatformMapper(e.table, human, name=gpl) for gpl, e in gse781.platforms.items()}


def _small_crosswalk():
    frame = pd.DataFrame(
        {
            "entrez": ["1", "2", "2", "3", "4", None],
            "ensembl": [
                "ENSG00000000001",
                "ENSG00000000002",
                "ENSG00000000022",
                "ENSG00000000003",
                "ENSG00000000003",
                "ENSG00000000005",
            ],
            "symbol": ["A1", "B2", "B2", "C3", "D4", "E5"],
        }
    )
    return crosswalk_from_frame(frame, source="small")


# --------------------------------------------------------------------------------------------------
# Crosswalk


def test_real_crosswalk_counts_match_the_manifest(human) -> None:
    d = human.describe()
    # MANIFEST: 81,120 rows, 41,018 without an Ensembl id -> 40,102 pairs; 39,708 distinct Ensembl ids
    assert d["pairs"] == {"entrez": 40_102, "symbol": 40_102}
    assert d["ensembl_genes"] == 39_708
    assert human.id_types == ("ensembl", "entrez", "symbol")
    assert human.sha256 and human.sha256.startswith("5900f2809070b963")


def test_real_crosswalk_lookups_equal_the_file_rows(human, raw_crosswalk) -> None:
    keys = ["780", "3310", "2597", "100616237", "999999999", "7314"]
    pos, genes = human.lookup("entrez", keys)
    got: dict[str, set[str]] = defaultdict(set)
    for p, g in zip(pos, genes, strict=True):
        got[keys[p]].add(g)
    for k in keys:
        assert got.get(k, set()) == raw_crosswalk["entrez"].get(k, set())
    assert len(got["780"]) == 7  # DDR1: the primary locus and six MHC alternate-haplotype genes
    assert got["3310"] == {"ENSG00000173110"}  # HSPA6
    pos, genes = human.lookup("symbol", ["GAPDH", "gapdh", "HSPA6"])
    assert list(pos) == [0, 2] and list(genes) == ["ENSG00000111640", "ENSG00000173110"]  # exact case


def test_normalize_keys() -> None:
    assert normalize_keys("entrez", [" 780 ", "780.0", "x1", "", None]).to_pylist() == [
        "780",
        "780",
        None,
        None,
        None,
    ]
    assert normalize_keys("refseq", ["nm_001954.3", "NR_0001"]).to_pylist() == ["NM_001954", "NR_0001"]
    assert normalize_keys("ensembl", ["ENSG00000121410.12"]).to_pylist() == ["ENSG00000121410"]
    with pytest.raises(ValueError, match="unknown identifier type"):
        normalize_keys("unigene", ["Hs.1"])


def _write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


GENE2ENSEMBL = (
    "#tax_id\tGeneID\tEnsembl_gene_identifier\tRNA_nucleotide_accession.version\tEnsembl_rna_identifier\t"
    "protein_accession.version\tEnsembl_protein_identifier\n"
    "9606\t780\tENSG00000204580\tNM_001954.5\tENST1\tNP_1\tENSP1\n"
    "9606\t780\tENSG00000204580\tNM_013993.3\tENST2\tNP_2\tENSP2\n"
    "9606\t3310\tENSG00000173110\tNM_002155.5\tENST3\tNP_3\tENSP3\n"
    "9606\t5982\tENSG00000049541\t-\t-\t-\t-\n"
    "10090\t12345\tENSMUSG00000000001\tNM_000001.1\tENSMUST1\tNP_9\tENSMUSP1\n"
)


def test_gene2ensembl_filtered_by_taxon_with_refseq_and_gene_info(tmp_path: Path) -> None:
    g2e = _write(tmp_path / "gene2ensembl.gz", GENE2ENSEMBL, gz=True)
    with pytest.raises(CrosswalkError, match="several species"):
        load_crosswalk(g2e)
    with pytest.raises(CrosswalkError, match="no gene2ensembl rows for tax_id 7955"):
        load_crosswalk(g2e, tax_id=7955)
    info = _write(
        tmp_path / "Homo_sapiens.gene_info",
        "#tax_id\tGeneID\tSymbol\tLocusTag\n9606\t780\tDDR1\t-\n9606\t3310\tHSPA6\t-\n10090\t12345\tFoo\t-\n",
    )
    cw = load_crosswalk(g2e, tax_id=9606, gene_info=info)
    assert cw.format == "gene2ensembl" and cw.tax_id == 9606
    assert cw.id_types == ("ensembl", "entrez", "refseq", "symbol")
    pos, genes = cw.lookup("refseq", ["NM_013993.9", "NM_000001", "NM_002155"])
    assert list(pos) == [0, 2] and list(genes) == ["ENSG00000204580", "ENSG00000173110"]
    pos, genes = cw.lookup("entrez", ["5982", "12345"])
    assert list(pos) == [0] and list(genes) == ["ENSG00000049541"]
    assert cw.lookup("symbol", ["HSPA6"])[1].tolist() == ["ENSG00000173110"]
    single = _write(tmp_path / "human.g2e", "\n".join(GENE2ENSEMBL.splitlines()[:5]) + "\n")
    assert load_crosswalk(single).tax_id == 9606  # one species: taxon taken from the file


def test_biomart_export_and_bad_files(tmp_path: Path) -> None:
    mart = _write(
        tmp_path / "mart.txt",
        "Gene stable ID\tNCBI gene (formerly Entrezgene) ID\tGene name\tRefSeq mRNA ID\n"
        "ENSG00000173110\t3310\tHSPA6\tNM_002155\nENSG00000204580\t780\tDDR1\t\n",
    )
    cw = load_crosswalk(mart)
    assert cw.lookup("refseq", ["NM_002155.4"])[1].tolist() == ["ENSG00000173110"]
    assert cw.lookup("symbol", ["DDR1"])[1].tolist() == ["ENSG00000204580"]
    with pytest.raises(CrosswalkError, match="not found"):
        load_crosswalk(tmp_path / "missing.tsv")
    with pytest.raises(CrosswalkError, match="empty crosswalk"):
        load_crosswalk(_write(tmp_path / "empty.tsv", "\n\n"))
    with pytest.raises(CrosswalkError, match="no Ensembl gene id column"):
        load_crosswalk(_write(tmp_path / "noens.tsv", "entrez_id\tsymbol\n1\tA\n"))
    with pytest.raises(CrosswalkError, match="no entrez/symbol"):
        load_crosswalk(_write(tmp_path / "onlyens.tsv", "ensembl_gene_id\tdescription\nENSG1\tx\n"))
    with pytest.raises(CrosswalkError, match="no rows"):
        load_crosswalk(_write(tmp_path / "header.tsv", "entrez_id\tensembl_gene_id\n"))
    truncated = tmp_path / "trunc.tsv.gz"
    truncated.write_bytes(gzip.compress(b"entrez_id\tensembl_gene_id\n" + b"1\tENSG1\n" * 5000)[:60])
    with pytest.raises(CrosswalkError, match="unreadable"):
        load_crosswalk(truncated)


# --------------------------------------------------------------------------------------------------
# Column detection


def test_classify_tokens() -> None:
    tokens = pa.array(
        [
            *["ENSG00000121410.5", "ENSMUSG00000000001", "NM_001954.3", "XR_12", "U48705", "AAAA01000001"],
            *[
                "780",
                "Hs.1234",
                "17p13.3",
                "1p36.1-p35",
                "DDR1",
                "HLA-DRB1",
                "1110002E22Rik",
                "protein binding",
            ],
        ]
    )
    names = ["ensembl", "refseq", "genbank", "entrez", "unigene", "cytoband", "symbol"]
    got = [names[i] if i >= 0 else None for i in classify_tokens(tokens)]
    assert got == [
        "ensembl",
        "ensembl",
        "refseq",
        "refseq",
        "genbank",
        "genbank",
        "entrez",
        "unigene",
        "cytoband",
        "cytoband",
        "symbol",
        "symbol",
        "symbol",
        None,
    ]


def test_detect_columns_by_content_and_header() -> None:
    table = pd.DataFrame(
        {
            "ID": ["p1", "p2", "p3", "p4"],
            "GI": ["91208425", "51599152", "78190471", "34486095"],
            "Array_Address_Id": ["1", "2", "3", "4"],
            "ENTREZ_GENE_ID": ["1 /// 2", "3", "4", None],
            "Gene Symbol": ["A1", "C3", "D4", "Z9"],
            "Ensembl": ["ENSG00000000001.1", None, None, "ENSG00000000005"],
            "RefSeq": ["NM_1", "NR_2", "NM_3 /// NM_4", "NM_5"],
            "GO": ["0006468 // protein amino acid phosphorylation"] * 4,
        }
    )
    cands = {c.column: c for c in detect_columns(table, _small_crosswalk())}
    assert cands["GI"].id_type == "numeric" and not cands["GI"].mappable
    assert cands["Array_Address_Id"].id_type == "numeric"
    assert cands["ENTREZ_GENE_ID"].id_type == "entrez" and cands["ENTREZ_GENE_ID"].mappable
    assert cands["ENTREZ_GENE_ID"].n_tokens == 4  # "1 /// 2" is two tokens; the null cell none
    assert cands["Gene Symbol"].id_type == "symbol" and cands["Gene Symbol"].mappable
    assert cands["Ensembl"].id_type == "ensembl" and cands["Ensembl"].mappable
    assert cands["RefSeq"].id_type == "refseq" and not cands["RefSeq"].mappable
    assert "no refseq" in cands["RefSeq"].note
    assert cands["GO"].id_type is None
    assert cands["ID"].is_id_column


# --------------------------------------------------------------------------------------------------
# Mapping rules on a hand-built table


def test_one_to_many_many_to_one_and_coverage_by_hand() -> None:
    platform = pd.DataFrame(
        {
            "ID": ["p1", "p2", "p3", "p4", "p5"],
            "ENTREZ_GENE_ID": ["1 /// 2", "3", "4", "99", "2"],
        }
    )
    mapping = map_probes(platform, _small_crosswalk(), probe_ids=["p1", "p2", "p3", "p4", "p9"], name="GPLx")
    # p1 -> entrez 1 and 2 -> ENSG01, ENSG02, ENSG22 (entrez 2 has two Ensembl genes): one-to-many
    # p2 (entrez 3) and p3 (entrez 4) -> ENSG03: many-to-one, kept as two pairs
    # p4 (entrez 99) unmapped; p9 not on the platform; p5 not asked for
    assert mapping.as_frame().values.tolist() == [
        ["p1", "ENSG00000000001"],
        ["p1", "ENSG00000000002"],
        ["p1", "ENSG00000000022"],
        ["p2", "ENSG00000000003"],
        ["p3", "ENSG00000000003"],
    ]
    r = mapping.report
    assert (r["column"], r["id_type"], r["n_probes"], r["n_mapped"], r["n_genes"], r["n_pairs"]) == (
        "ENTREZ_GENE_ID",
        "entrez",
        5,
        3,
        4,
        5,
    )
    assert r["coverage"] == pytest.approx(3 / 5)
    assert r["n_probes_multi_gene"] == 1 and r["n_genes_multi_probe"] == 1
    assert r["crosswalk"]["source"] == "small"


def test_best_column_tie_break_and_threshold() -> None:
    platform = pd.DataFrame(
        {
            "ID": ["p1", "p2", "p3", "p4"],
            "Gene Symbol": ["A1", "C3", "Q", "R"],
            "Gene ID": ["1", "3", "77", "78"],
        }
    )
    mapper = PlatformMapper(platform, _small_crosswalk(), name="GPLy")
    m = mapper.map()
    # symbol and Entrez both map 2 of 4: the more stable id type (Entrez) wins the tie
    assert m.report["column"] == "Gene ID" and m.report["coverage"] == 0.5
    with pytest.raises(IdMappingError, match=r"GPLy.*maps only 2 of 4 probe ids \(0\.500 < 0\.6\)"):
        mapper.map(min_coverage=0.6, label="GSM1")
    with pytest.raises(
        IdMappingError, match=r"GSM1 \(GPLy\): best identifier column 'Gene ID'.*'Gene Symbol'"
    ):
        mapper.map(["p1", "p3", "p4"], label="GSM1")
    forced = mapper.map(column="Gene Symbol")
    assert forced.report["column"] == "Gene Symbol"
    assert forced.gene_ids.tolist() == ["ENSG00000000001", "ENSG00000000003"]


def test_ensembl_column_identity_and_unmappable_platforms() -> None:
    platform = pd.DataFrame(
        {
            "ID": ["a", "b", "c"],
            "ENSEMBL_ID": ["ENSG00000000007.3", "ENSG00000000008 /// ENSG00000000009", None],
        }
    )
    m = map_probes(platform, _small_crosswalk())
    assert m.as_frame().values.tolist() == [
        ["a", "ENSG00000000007"],
        ["b", "ENSG00000000008"],
        ["b", "ENSG00000000009"],
    ]
    assert m.report["id_type"] == "ensembl"
    only_gb = pd.DataFrame({"ID": ["a", "b"], "GB_ACC": ["U48705", "X51757"]})
    entrez_only = crosswalk_from_frame(
        pd.DataFrame({"entrez": ["1"], "ensembl": ["ENSG00000000001"]}), source="entrez-only"
    )
    with pytest.raises(
        IdMappingError, match=r"GPLz: no annotation column holds identifiers.*'GB_ACC'=genbank"
    ):
        map_probes(only_gb, entrez_only, name="GPLz")
    # with symbols mappable, the probe ids themselves are tried (as symbols) and fail the coverage rule
    with pytest.raises(IdMappingError, match=r"GPLz: best identifier column 'ID' maps only 0 of 2"):
        map_probes(only_gb, _small_crosswalk(), name="GPLz")
    with pytest.raises(IdMappingError, match="no rows"):
        PlatformMapper(only_gb.iloc[:0], _small_crosswalk())
    with pytest.raises(IdMappingError, match="no probe ids"):
        map_probes(platform, _small_crosswalk(), probe_ids=["", None])


def test_platform_ids_are_ensembl_symbols() -> None:
    """A custom platform whose own ids are gene symbols maps through its id column."""
    platform = pd.DataFrame({"ID": ["A1", "B2", "C3", "nope"], "Desc": ["x y", "y z", "z w", "w v"]})
    m = map_probes(platform, _small_crosswalk())
    assert m.report["column"] == "ID" and m.report["id_type"] == "symbol"
    assert m.as_frame().values.tolist() == [
        ["A1", "ENSG00000000001"],
        ["B2", "ENSG00000000002"],
        ["B2", "ENSG00000000022"],
        ["C3", "ENSG00000000003"],
    ]


# --------------------------------------------------------------------------------------------------
# Real platforms


def _reference_coverage(table: pa.Table, column: str, ids: dict[str, set[str]]) -> tuple[int, set]:
    """Plain-Python reference: probes with >= 1 gene and the (probe, gene) pairs."""
    pairs = set()
    mapped = 0
    for probe, cell in zip(table.column("ID").to_pylist(), table.column(column).to_pylist(), strict=True):
        genes = set()
        for token in (cell or "").split("///"):
            genes |= ids.get(token.strip(), set())
        if genes:
            mapped += 1
            pairs |= {(probe, g) for g in genes}
    return mapped, pairs


@pytest.mark.parametrize(
    ("gpl", "n_probes", "n_mapped", "symbol_coverage"),
    [("GPL96", 22_283, 20_617, 0.8325), ("GPL97", 22_645, 13_665, 0.4836)],
)
def test_gse781_platforms(gse781, mappers, raw_crosswalk, gpl, n_probes, n_mapped, symbol_coverage) -> None:
    mapping = mappers[gpl].map()
    r = mapping.report
    assert (r["platform"], r["column"], r["id_type"]) == (gpl, "ENTREZ_GENE_ID", "entrez")
    assert (r["n_probes"], r["n_mapped"]) == (n_probes, n_mapped)
    assert r["coverage"] == pytest.approx(n_mapped / n_probes)
    by_col = {c["column"]: c for c in r["candidates"]}
    assert by_col["Gene Symbol"]["coverage"] == pytest.approx(symbol_coverage, abs=5e-5)
    assert by_col["GB_ACC"]["mappable"] is False and by_col["RefSeq Transcript ID"]["mappable"] is False
    # every pair equals the plain-Python reference built from the crosswalk file
    ref_mapped, ref_pairs = _reference_coverage(
        gse781.platforms[gpl].table, "ENTREZ_GENE_ID", raw_crosswalk["entrez"]
    )
    assert ref_mapped == n_mapped
    assert set(zip(mapping.probe_ids, mapping.gene_ids, strict=True)) == ref_pairs
    assert r["n_pairs"] == len(ref_pairs) and r["n_genes"] == len({g for _, g in ref_pairs})


def test_gse781_specific_probes(mappers, raw_crosswalk) -> None:
    frame = mappers["GPL96"].map().as_frame()
    genes = frame.groupby("probe_id")["ensembl_gene_id"].apply(set)
    assert genes["117_at"] == {"ENSG00000173110"}  # HSPA6, Entrez 3310
    assert genes["1007_s_at"] == raw_crosswalk["entrez"]["780"] and len(genes["1007_s_at"]) == 7  # DDR1
    # 200017_at is annotated "6233 /// 7314 /// 7316" (RPS27A, UBB, UBC): one pair per gene
    expected = set().union(*(raw_crosswalk["entrez"][e] for e in ("6233", "7314", "7316")))
    assert genes["200017_at"] == expected and len(expected) == 3
    # many-to-one: six probe sets (three AFFX controls) of GAPDH, two of HSPA6
    per_gene = frame.groupby("ensembl_gene_id")["probe_id"].apply(set)
    assert per_gene["ENSG00000111640"] == {
        "212581_x_at",
        "213453_x_at",
        "217398_x_at",
        "AFFX-HUMGAPDH/M33197_3_at",
        "AFFX-HUMGAPDH/M33197_5_at",
        "AFFX-HUMGAPDH/M33197_M_at",
    }
    assert per_gene["ENSG00000173110"] == {"117_at", "213418_at"}


def test_gpl97_symbol_column_alone_fails_the_half_rule(mappers) -> None:
    with pytest.raises(IdMappingError, match=r"GSM11810 \(GPL97\).*'Gene Symbol'.*\(0\.484 < 0\.5\)"):
        mappers["GPL97"].map(column="Gene Symbol", label="GSM11810")


def test_gpl97_annot_file(shared_data: Path, human, mappers) -> None:
    annot = parse_soft(shared_data / "geo" / "geoquery" / "GPL97.annot.gz").entities[0]
    assert annot.entity_type == "ANNOTATION" and annot.get("platform") == "GPL97"
    mapper = PlatformMapper(annot.table, human, name="GPL97.annot")
    cands = {c.column: c for c in mapper.candidates}
    assert cands["GI"].id_type == "numeric" and not cands["GI"].mappable  # GenBank GI numbers, not Entrez
    assert cands["UniGene ID"].id_type == "unigene" and cands["Chromosome location"].id_type == "cytoband"
    r = mapper.map().report
    assert (r["column"], r["id_type"], r["n_probes"], r["n_mapped"]) == ("Gene ID", "entrez", 22_645, 12_423)
    # the 2008 annotation maps fewer probe sets than the 2009 platform table of the family SOFT
    assert r["n_mapped"] < mappers["GPL97"].map().report["n_mapped"]


def test_string_index_speed_path_returns_object_arrays(mappers) -> None:
    m = mappers["GPL97"].map(["200000_s_at", "200001_at", "not_a_probe"])
    assert m.probe_ids.dtype == object and m.gene_ids.dtype == object
    assert m.report["n_probes"] == 3 and m.report["n_mapped"] == 2
    assert m.query_positions.tolist() == [0] * int((m.probe_ids == "200000_s_at").sum()) + [1] * int(
        (m.probe_ids == "200001_at").sum()
    )
    assert np.all(np.isin(m.probe_ids, ["200000_s_at", "200001_at"]))
