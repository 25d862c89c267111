"""Species compendium build (``refine_assets.lib.compendia.build``) on a small synthetic organism."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from refine_assets.lib.compendia.build import CompendiumError, build_compendium, memory_model
from refine_assets.lib.compendia.filters import FilterError
from refine_assets.lib.processing.vectors import vector_key, write_vector
from refine_assets.lib.qn import determine_target
from refine_assets.lib.storage import LocalArtifactStore

N_GENES = 300
GENES = [f"ENSDARG{i:011d}" for i in range(N_GENES)]


def make_organism(
    root: Path, seed: int = 0
) -> tuple[LocalArtifactStore, list[tuple[str, str, str]], np.ndarray]:
    """Vectors of a synthetic organism in a local store, and a QN target.

    24 samples on platform A (genes 0..279), 12 on platform B (genes 20..299), 14 RNA-seq samples (all
    genes, lengthScaledTPM with zeros), plus: RNA-seq SRR_ZEROS with 70 % zeros (-> fewer than 50 %
    present), microarray GSM_FEW with 30 genes (-> fewer than 50 %), GSM_GONE without a file.
    """
    store = LocalArtifactStore(root / "store")
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((N_GENES, 4))
    means = 7 + 1.5 * rng.standard_normal(N_GENES)
    vectors = []

    def microarray(name: str, genes: np.ndarray) -> None:
        v = means[genes] + loadings[genes] @ rng.standard_normal(4) + 0.3 * rng.standard_normal(genes.size)
        key = vector_key("GSE1", name)
        write_vector(store, key, pd.Series(v, index=[GENES[g] for g in genes]), {"method": "SCAN"})
        vectors.append((name, "MICROARRAY", key))

    for j in range(24):
        microarray(f"GSM{j:03d}", np.arange(0, 280))
    for j in range(12):
        microarray(f"GSM{100 + j:03d}", np.arange(20, 300))
    microarray("GSM_FEW", np.arange(0, 30))
    for j in range(15):
        name = "SRR_ZEROS" if j == 14 else f"SRR{j:03d}"
        tpm = 2.0 ** (means + loadings @ rng.standard_normal(4) + 0.3 * rng.standard_normal(N_GENES)) - 1
        tpm[rng.random(N_GENES) < (0.7 if j == 14 else 0.03)] = 0.0
        key = vector_key("SRP1", name)
        write_vector(store, key, pd.Series(np.maximum(tpm, 0), index=GENES), {"method": "tximport"})
        vectors.append((name, "RNA-SEQ", key))
    vectors.append(("GSM_GONE", "MICROARRAY", "processed/GSE1/GSM_GONE.parquet"))
    target = determine_target(7 + 1.5 * rng.standard_normal((250, 5)))
    return store, vectors, target


def reference_filters(store_root: Path, vectors) -> tuple[list[str], list[str], pd.DataFrame]:
    """The documented filter rules in plain pandas (outer join of all vectors), as an oracle.

    Returns (kept genes, kept samples in column order, missing-cell mask genes x samples).
    """
    from refine_assets.lib.processing.vectors import read_vector

    store = LocalArtifactStore(store_root)
    cols, tech = {}, {}
    for name, t, key in vectors:
        if store.exists(key):
            cols[name] = read_vector(store, key)[0]
            tech[name] = t
    frame = pd.concat(cols, axis=1, join="outer")  # small: the oracle may merge
    n = frame.shape[1]
    frame = frame[frame.notna().sum(axis=1) > 0.5 * n]  # universe: ids in > 50 % of the samples
    rna = [c for c in frame.columns if tech[c] == "RNA-SEQ"]
    sums = frame[rna].sum(axis=1)
    measured = frame[rna].notna().any(axis=1)
    low = measured & (sums < np.percentile(sums[measured], 10))
    frame.loc[low, rna] = np.nan
    frame[rna] = np.log2(frame[rna] + 1)
    present = frame.notna()
    present[rna] &= frame[rna] != 0  # RNA-seq zeros count as missing for the filters
    genes_kept = present.sum(axis=1) >= 0.7 * n
    present = present[genes_kept]
    samples_kept = present.sum(axis=0) >= 0.5 * int(genes_kept.sum())
    order = sorted((tech[c] != "MICROARRAY", c) for c in frame.columns if samples_kept[c])
    samples = [c for _, c in order]
    missing = frame.loc[genes_kept, samples].isna()
    return sorted(frame.index[genes_kept]), samples, missing


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, object, list]:
    root = tmp_path_factory.mktemp("compendium")
    store, vectors, target = make_organism(root)
    meta = {"GSM000": {"refinebio_title": "liver 1", "experiment_accession": "GSE1"}}
    res = build_compendium(
        "DANIO_RERIO",
        vectors,
        store,
        root / "out",
        target,
        sample_metadata=meta,
        target_info={"key": "references/qn_target/DANIO_RERIO/target.txt"},
        write_tsv=True,
        genes_per_file=100,
        chunk_values=300 * 16,
    )
    return root, res, vectors


def test_outputs_and_counts(built) -> None:
    root, res, vectors = built
    out = root / "out"
    assert res.out_dir == out.resolve()
    names = {p.name for p in out.iterdir()}
    assert {
        "matrix",
        "samples.tsv",
        "samples.parquet",
        "filtered_samples.tsv",
        "filtered_samples.json",
        "genes.tsv",
        "metadata.json",
        "README.md",
        "DANIO_RERIO",
        "aggregated_metadata.json",
    } <= names
    assert sorted(p.name for p in root.iterdir()) == ["out", "store"]  # no staging or work folders left
    # filtered samples with reasons
    assert set(res.filtered) == {"GSM_GONE", "GSM_FEW", "SRR_ZEROS"}
    assert "could not be read" in res.filtered["GSM_GONE"]
    assert "less than 50% present values" in res.filtered["GSM_FEW"]
    assert "less than 50% present values" in res.filtered["SRR_ZEROS"]
    assert res.n_samples == len(vectors) - 3 == 50
    genes, samples, _ = reference_filters(root / "store", vectors)
    assert res.n_genes == len(genes) and 200 < len(genes) < 300
    assert pd.read_csv(out / "samples.tsv", sep="\t")["sample"].tolist() == samples
    md = json.loads((out / "metadata.json").read_text())
    assert md["num_samples"] == 50 and md["num_genes"] == len(genes)
    assert md["num_samples_by_technology"] == {"MICROARRAY": 36, "RNA-SEQ": 14}
    assert md["versions"]["numpy"] == np.__version__
    assert md["imputation"]["backend"] == "native" and md["imputation"]["converged"]
    assert md["qn_target"] == {"length": 250, "key": "references/qn_target/DANIO_RERIO/target.txt"}
    assert md["filters"]["rnaseq_genes_dropped"] > 0  # bottom decile of RNA-seq row sums
    assert md["peak_rss_bytes"] > 0 and md["memory_model"]["bytes_per_value"] == 4.125


def test_parquet_matrix_is_queryable_and_flags_imputed_cells(built) -> None:
    root, res, _ = built
    out = root / "out"
    con = duckdb.connect()
    glob = str(out / "matrix" / "*.parquet")
    n, n_imp, n_genes, n_samples = con.execute(
        f"SELECT count(*), sum(imputed::INT), count(DISTINCT gene), count(DISTINCT sample) FROM read_parquet('{glob}')"
    ).fetchone()
    genes, _, missing = reference_filters(root / "store", built[2])
    assert (n, n_genes, n_samples) == (len(genes) * 50, len(genes), 50)
    md = json.loads((out / "metadata.json").read_text())
    assert n_imp == md["imputed_cells"] == int(missing.to_numpy().sum())
    assert res.percent_imputed == pytest.approx(100 * n_imp / n)
    # the imputed flags are exactly the cells missing after the filters (RNA-seq zeros are values)
    flags = con.execute(f"SELECT gene, sample FROM read_parquet('{glob}') WHERE imputed").fetchall()
    expected = {(g, s) for g, s in missing.stack()[missing.stack()].index}
    assert set(flags) == expected
    assert (
        con.execute(f"SELECT list(DISTINCT gene ORDER BY gene) FROM read_parquet('{glob}')").fetchone()[0]
        == genes
    )
    assert len(list((out / "matrix").glob("part-*.parquet"))) == -(-len(genes) // 100)  # 100 genes per file
    # one gene's values across samples, sorted by column order, equal the TSV layout
    gene = GENES[5]
    vals = con.execute(f"SELECT sample, value FROM read_parquet('{glob}') WHERE gene = ?", [gene]).fetchall()
    tsv = pd.read_csv(out / "DANIO_RERIO" / "DANIO_RERIO.tsv", sep="\t", index_col=0)
    assert tsv.shape == (len(genes), 50) and tsv.index.name == "Gene"
    np.testing.assert_allclose(
        [v for _, v in vals], tsv.loc[gene, [s for s, _ in vals]].to_numpy(), rtol=1e-6
    )
    # samples.parquet joins on sample
    k = con.execute(
        f"SELECT count(DISTINCT m.sample) FROM read_parquet('{glob}') m "
        f"JOIN read_parquet('{out / 'samples.parquet'}') s USING (sample) WHERE s.technology = 'RNA-SEQ'"
    ).fetchone()[0]
    assert k == 14


def test_every_sample_is_quantile_normalized_to_the_target(built) -> None:
    root, res, _ = built
    tsv = pd.read_csv(root / "out" / "DANIO_RERIO" / "DANIO_RERIO.tsv", sep="\t", index_col=0)
    samples = pd.read_csv(root / "out" / "samples.tsv", sep="\t")
    assert (samples["ks_passed"]).all() and res.ks_failed == []
    assert samples["ks_statistic"].max() < 0.05
    md = json.loads((root / "out" / "metadata.json").read_text())
    assert md["ks"]["passed"] == 50
    x = tsv[[c for c in tsv.columns if c.startswith("GSM")]].to_numpy()
    # QN output: every microarray column (no ties) is the same set of target quantiles in some order
    srt = np.sort(x, axis=0)
    np.testing.assert_allclose(srt, srt[:, [0]].repeat(x.shape[1], axis=1), rtol=1e-6)
    row = samples[samples["sample"] == "GSM000"].iloc[0]
    assert row["refinebio_title"] == "liver 1" and row["technology"] == "MICROARRAY"
    genes, _, missing = reference_filters(root / "store", built[2])
    assert row["fraction_imputed"] == pytest.approx(missing["GSM000"].mean())
    assert missing["GSM000"].sum() == sum(
        1 for g in genes if int(g[-11:]) >= 280
    )  # platform A lacks 280..299


def test_failed_build_leaves_the_published_compendium_untouched(built, tmp_path: Path) -> None:
    root, _, vectors = built
    store = LocalArtifactStore(root / "store")
    before = (root / "out" / "metadata.json").read_text()
    few = [v for v in vectors if v[0].startswith("GSM0")][:8]
    with pytest.raises(CompendiumError, match=r"only 280 genes x 8 samples passed the filters; a rank-10"):
        build_compendium("DANIO_RERIO", few, store, root / "out", np.arange(10.0))
    with pytest.raises(CompendiumError, match="unusable QN target"):
        build_compendium("DANIO_RERIO", vectors, store, root / "out", np.array([np.nan]))
    with pytest.raises(CompendiumError, match="invalid organism name"):
        build_compendium("../x", vectors, store, root / "out", np.arange(10.0))
    assert (root / "out" / "metadata.json").read_text() == before
    assert sorted(p.name for p in root.iterdir()) == ["out", "store"]


def test_every_gene_filtered_out_fails_clearly(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    vectors = []
    for j in range(20):  # every gene present in 60 % of the samples: universe ok, 70 % filter not
        genes = [g for i, g in enumerate(GENES[:50]) if (i + j) % 5 < 3]
        key = vector_key("E", f"S{j}")
        write_vector(store, key, pd.Series(np.arange(len(genes), dtype=float), index=genes))
        vectors.append((f"S{j}", "MICROARRAY", key))
    with pytest.raises(FilterError, match="every gene was filtered out"):
        build_compendium("DANIO_RERIO", vectors, store, tmp_path / "out", np.arange(10.0))
    assert not (tmp_path / "out").exists()


def test_memory_model() -> None:
    mm = memory_model(20000, 20000)
    assert mm["matrix_bytes"] == 1_600_000_000 and mm["mask_bytes"] == 50_000_000
