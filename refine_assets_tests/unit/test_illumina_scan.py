"""Illumina SCAN pipeline (refine.bio illumina.R on the shared SCAN core): wiring, decisions, genes."""

from __future__ import annotations

import numpy as np
import pytest

from refine_assets.lib.illumina.nec import nec
from refine_assets.lib.illumina.parse import SampleRef, parse_illumina_bytes
from refine_assets.lib.illumina.probes import read_illumina_db_package
from refine_assets.lib.illumina.scan_illumina import (
    IlluminaScanError,
    IlluminaScanOptions,
    illumina_scan,
)
from refine_assets.lib.scan import ScanParams, scan_probe_values, sequence_design_matrix
from refine_assets_tests.illumina_generator import (
    build_illumina_db_tarball,
    build_org_db_tarball,
    default_samples,
    make_platform,
    simulate_beadchip,
    write_nonnormalized,
)

N = 1400


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ilmn")
    pl = make_platform(N, seed=21)
    # a probe whose sequence is missing, one with a 49-mer: both excluded from SCAN
    seqs = pl.sequences.copy()
    seqs[7] = seqs[7][:49]
    pl = type(pl)(pl.name, pl.probe_ids, seqs, pl.quality, pl.entrez, pl.ensembl)
    build_illumina_db_tarball(tmp, pl, missing_sequence=(pl.probe_ids[3],))
    build_org_db_tarball(tmp, pl.entrez_to_ensembl())
    table = read_illumina_db_package(
        tmp / "illuminaHumanv4.db_1.26.0.tar.gz", org_package=tmp / "org.Hs.eg.db_3.15.0.tar.gz"
    )
    return pl, table


def _file(pl, sim, samples, *, extra_rows=True, decimals=4):
    ids = list(pl.probe_ids)
    signal, p = sim.signal, sim.detection_p
    if extra_rows:  # a duplicated probe (second copy must be ignored) and a probe unknown to the platform
        ids = [*ids, ids[10], "ILMN_UNKNOWN"]
        signal = np.vstack([signal, signal[[20, 30]] * 3])
        p = np.vstack([p, p[[20, 30]]])
    return write_nonnormalized(
        "geo", np.array(ids, dtype=object), signal, p, samples, signal_decimals=decimals
    )


def _manual(matrix, table, y_of):
    """Independent composition: first occurrences with a 50-mer, in file order -> y -> SCAN core."""
    seqs = table.sequences()
    seen, rows = set(), []
    for i, pid in enumerate(matrix.probe_ids):
        if pid in seen:
            continue
        seen.add(pid)
        if pid in seqs.index and len(seqs[pid]) == 50:
            rows.append(i)
    rows = np.array(rows)
    X = sequence_design_matrix(seqs[matrix.probe_ids[rows]].tolist(), 50, t_offset=60)
    Y = y_of(matrix.signal[rows], matrix.detection_p[rows])
    return rows, np.column_stack(
        [scan_probe_values(Y[:, j], X, ScanParams.illumina()).values for j in range(Y.shape[1])]
    )


def test_pipeline_equals_its_composition(setup):
    pl, table = setup
    sim = simulate_beadchip(N, 2, seed=22, sequences=pl.sequences)
    samples = default_samples(2)
    m = parse_illumina_bytes(_file(pl, sim, samples), [SampleRef(s.accession, s.title) for s in samples])
    res = illumina_scan(m, table)
    rows, expect = _manual(m, table, lambda S, P: np.log2(nec(S, P).values))
    assert res.probe_ids.tolist() == m.probe_ids[rows].tolist()
    assert res.counts["common"] == N - 2 and res.counts["wrong_length_sequence"] == 1
    assert np.array_equal(res.values, expect)
    b = res.background
    assert b.applied and b.input_scale == "linear" and b.nec_scale == "linear" and not b.upstream_corrected
    assert b.nec_flipped is True and len(b.nec_params) == 2
    for j, info in enumerate(res.samples):
        assert info.status == "ok" and info.em_iterations >= 1
        assert info.sample_accession == samples[j].accession
        # quirk Q1 with bins of 50: the 49 probes with the lowest predicted background stay 0
        assert int(np.sum(res.values[:, j] == 0)) == 49
        assert 0.2 < info.fraction_detected < 0.8
    assert np.all(np.round(res.values, 8) == res.values)


def test_genes_quality_filter_and_tiebreak(setup):
    pl, table = setup
    sim = simulate_beadchip(N, 1, seed=23, sequences=pl.sequences)
    samples = default_samples(1)
    m = parse_illumina_bytes(
        _file(pl, sim, samples, extra_rows=False), [SampleRef(s.accession, s.title) for s in samples]
    )
    multi = [
        pid
        for pid, e, q in zip(pl.probe_ids, pl.ensembl, pl.quality, strict=True)
        if len(e) > 1 and ("Good" in q or "Perfect" in q)
    ]
    tiebreak = {multi[0]: pl.ensembl[list(pl.probe_ids).index(multi[0])][1]}
    res = illumina_scan(m, table, tiebreak=tiebreak)
    c = res.counts
    assert c["multi_gene_tiebroken"] == 1 and c["multi_gene_dropped"] == len(multi) - 1
    good = np.array(
        ["Good" in q or "Perfect" in q for q in table.lookup(res.probe_ids)["quality"].fillna("")]
    )
    assert np.array_equal(res.good_quality, good)
    genes, probes = res.vectors()[samples[0].accession]
    assert len(genes) == c["gene_rows"] == c["one_gene"] + 1
    kept = res.probe_ids[res.gene_rows]
    assert good[res.gene_rows].all()
    assert np.array_equal(genes.to_numpy(), probes[kept].to_numpy())
    pos = list(kept).index(multi[0])
    assert genes.index[pos] == tiebreak[multi[0]]
    one = {p: e[0] for p, e in zip(pl.probe_ids, pl.ensembl, strict=True) if len(e) == 1}
    assert all(one[p] == g for p, g in zip(kept, genes.index, strict=True) if p != multi[0])


def test_upstream_background_subtracted_data(setup):
    pl, table = setup
    sim = simulate_beadchip(N, 2, seed=24, sequences=pl.sequences, background_subtracted=True)
    samples = default_samples(2)
    m = parse_illumina_bytes(
        _file(pl, sim, samples, extra_rows=False), [SampleRef(s.accession, s.title) for s in samples]
    )
    res = illumina_scan(m, table)
    b = res.background
    assert b.upstream_corrected and not b.applied and b.nonpositive_values > 0
    assert "already subtracted upstream" in b.reason
    assert all(
        s.status == "failed" and "background-subtracted data without nec" in s.reason for s in res.samples
    )
    assert np.isnan(res.values).all()
    forced = illumina_scan(m, table, IlluminaScanOptions(background="always"))
    assert forced.background.applied and forced.background.upstream_corrected
    assert all(s.status == "ok" for s in forced.samples)


def test_log2_input_is_corrected_on_the_linear_scale(setup):
    pl, table = setup
    sim = simulate_beadchip(N, 1, seed=25, sequences=pl.sequences)
    samples = default_samples(1)
    logged = type(sim)(np.log2(sim.signal), sim.detection_p, sim.negatives, sim.expressed)
    m = parse_illumina_bytes(_file(pl, logged, samples, extra_rows=False, decimals=None))
    res = illumina_scan(m, table)
    assert res.background.input_scale == "log2" and res.background.applied
    rows, _ = _manual(m, table, lambda S, P: S)
    ref = nec(np.exp2(m.signal[rows]), m.detection_p[rows])
    assert res.background.nec_params[0]["mu"] == ref.params.mu[0]
    assert res.background.nec_params[0]["alpha"] > 10


def test_refinebio_mode_runs_nec_on_log2_values(setup):
    pl, table = setup
    sim = simulate_beadchip(N, 1, seed=26, sequences=pl.sequences)
    samples = default_samples(1)
    m = parse_illumina_bytes(_file(pl, sim, samples, extra_rows=False))
    res = illumina_scan(m, table, IlluminaScanOptions(nec_scale="log2"))
    assert res.background.nec_scale == "log2"
    assert res.background.nec_params[0]["alpha"] == pytest.approx(10.0)  # Q7: alpha clamps on log2 data
    _, expect = _manual(m, table, lambda S, P: nec(np.log2(S), P).values)
    assert np.array_equal(res.values, expect)


def test_per_sample_failures_and_unmapped_columns(setup):
    pl, table = setup
    sim = simulate_beadchip(N, 3, seed=27, sequences=pl.sequences)
    sim.signal[100, 1] = np.nan  # a missing value in sample 2
    samples = default_samples(3)
    m = parse_illumina_bytes(
        _file(pl, sim, samples, extra_rows=False), [SampleRef(s.accession, s.title) for s in samples[:2]]
    )
    res = illumina_scan(m, table)
    status = [(s.status, s.reason) for s in res.samples]
    assert status[0] == ("ok", None)
    # a missing intensity next to a detection p-value jump leaves nec's background undefined
    assert (
        status[1][0] == "failed"
        and status[1][1].startswith("nec: ")
        and "missing intensities" in status[1][1]
    )
    assert status[2] == ("skipped", "column not mapped to a sample")
    assert list(res.vectors()) == [samples[0].accession]
    assert np.isnan(res.values[:, 1:]).all() and np.isfinite(res.values[:, 0]).all()


def test_missing_bright_value_fails_only_that_sample(setup):
    pl, table = setup
    sim = simulate_beadchip(N, 2, seed=29, sequences=pl.sequences)
    bright = int(np.argmax(sim.signal[:, 1]))  # p = 0: sorts last, nec stays defined
    sim.signal[bright, 1] = np.nan
    samples = default_samples(2)
    m = parse_illumina_bytes(
        _file(pl, sim, samples, extra_rows=False), [SampleRef(s.accession, s.title) for s in samples]
    )
    res = illumina_scan(m, table)
    assert res.samples[0].status == "ok"
    assert res.samples[1].status == "failed"
    assert res.samples[1].reason == "1 non-finite value(s) after log2 (missing values in the file)"


def test_too_few_probes(setup):
    pl, table = setup
    sim = simulate_beadchip(N, 1, seed=28)
    ids = np.array([f"OTHER_{i}" if i % 2 else pid for i, pid in enumerate(pl.probe_ids)], dtype=object)
    m = parse_illumina_bytes(write_nonnormalized("geo", ids, sim.signal, sim.detection_p, default_samples(1)))
    with pytest.raises(
        IlluminaScanError, match=r"only 700 probes .* have a 50-mer in illuminaHumanv4 \(at least 1000"
    ):
        illumina_scan(m, table)
    with pytest.raises(IlluminaScanError, match="background must be"):
        illumina_scan(m, table, IlluminaScanOptions(background="sometimes", min_common_probes=10))
