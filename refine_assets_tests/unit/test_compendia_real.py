"""A compendium built end to end from real data: the 20 SRP095529 zebrafish runs (refine.bio's Salmon
outputs) through the native tximport into per-run gene vectors, mixed with zebrafish microarray
vectors (SCAN-like scores on a subset of the same genes; no raw zebrafish array ships with the test
data). Every output file is checked, and the kept genes and samples against a plain-pandas oracle of
the documented filter rules."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from refine_assets.lib.compendia.build import build_compendium
from refine_assets.lib.processing.vectors import vector_key, write_vector
from refine_assets.lib.qn import determine_target
from refine_assets.lib.rnaseq.tximport import read_tx2gene, tximport_files
from refine_assets.lib.storage import LocalArtifactStore
from refine_assets_tests.unit.test_compendia_build import reference_filters


@pytest.fixture(scope="module")
def real(tmp_path_factory, shared_data: Path):
    root = tmp_path_factory.mktemp("real_compendium")
    store = LocalArtifactStore(root / "store")
    srp = shared_data / "rnaseq/SRP095529"
    runs = sorted(p.name for p in srp.iterdir())
    tx2gene = read_tx2gene(shared_data / "rnaseq/ZEBRAFISH_INDEX_SHORT/genes_to_transcripts.txt.gz")
    result = tximport_files([srp / r / "quant.sf.gz" for r in runs], tx2gene, names=runs)
    counts = result.counts
    vectors = []
    for r in runs:
        key = vector_key("SRP095529", r)
        write_vector(store, key, counts[r].dropna(), {"step": "tximport", "method": "lengthScaledTPM"})
        vectors.append((r, "RNA-SEQ", key))
    # microarray: the 8,000 most expressed genes of the real data, as SCAN-like scores, ~10 % missing
    rng = np.random.default_rng(3)
    expressed = counts.mean(axis=1).sort_values(ascending=False).index[:8000]
    base = np.log2(counts.loc[expressed].mean(axis=1).to_numpy() + 1)
    for j in range(12):
        v = (base - base.mean()) / base.std() + 0.4 * rng.standard_normal(base.size)
        keep = rng.random(base.size) > 0.1  # each array misses ~10 % of the genes: work for the imputation
        key = vector_key("GSE_ZF", f"GSM9{j:02d}")
        series = pd.Series(v[keep], index=expressed[keep])
        write_vector(store, key, series, {"step": "affy_scan", "method": "SCANfast"})
        vectors.append((f"GSM9{j:02d}", "MICROARRAY", key))
    target = determine_target(np.log2(counts.fillna(0).to_numpy()[:, :10] + 1))
    res = build_compendium(
        "DANIO_RERIO",
        vectors,
        store,
        root / "out",
        target,
        target_info={"key": "references/qn_targets/DANIO_RERIO/target.txt"},
        write_tsv=True,
    )
    return root, res, vectors, counts


def test_real_rnaseq_compendium_outputs(real) -> None:
    root, res, vectors, counts = real
    out = root / "out"
    genes, samples, missing = reference_filters(root / "store", vectors)
    assert res.n_genes == len(genes) and res.n_samples == len(samples) == 32
    # every output file, with its content
    md = json.loads((out / "metadata.json").read_text())
    assert md["num_samples_by_technology"] == {"MICROARRAY": 12, "RNA-SEQ": 20}
    assert md["filters"]["rnaseq_genes_measured"] == int((counts.notna().any(axis=1)).sum())
    assert md["filters"]["rnaseq_genes_dropped"] > 0 and md["imputation"]["converged"]
    assert abs(md["percent_imputed"] - 100 * missing.to_numpy().mean()) < 1e-9
    st = pd.read_csv(out / "samples.tsv", sep="\t")
    assert st["sample"].tolist() == samples and set(st["technology"]) == {"MICROARRAY", "RNA-SEQ"}
    assert pd.read_csv(out / "genes.tsv", sep="\t")["gene"].tolist() == genes
    assert json.loads((out / "filtered_samples.json").read_text()) in ([], {})
    matrix = f"{out}/matrix/*.parquet"
    n, n_imputed = duckdb.sql(f"SELECT count(*), sum(imputed::INT) FROM read_parquet('{matrix}')").fetchall()[
        0
    ]
    assert n == len(genes) * len(samples) and n_imputed == int(missing.to_numpy().sum())
    wide = pd.read_csv(out / "DANIO_RERIO" / "DANIO_RERIO.tsv", sep="\t", index_col=0)
    assert wide.shape == (len(genes), len(samples)) and not wide.isna().any().any()
    # QN: microarray and RNA-seq columns share the target's distribution (ties take middle values)
    from scipy.stats import ks_2samp

    first, last = wide.iloc[:, 0].to_numpy(), wide.iloc[:, -1].to_numpy()
    assert st["technology"].iloc[0] != st["technology"].iloc[-1]
    assert ks_2samp(first, last).statistic < 0.01
    assert abs(np.median(first) - np.median(last)) < 0.05
    assert (out / "README.md").read_text().startswith("#")
