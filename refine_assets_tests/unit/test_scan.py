"""SCAN / SCANfast core (refine_assets.lib.scan) and the Affymetrix driver (lib.affy.scan_affy).

SCAN.UPC and oligo/pd packages are not installed here, so agreement with SCAN.UPC is argued through
(docs/scan.md): R's RNG and ``mean(x, trim=0.1)`` checked bit for bit against Rscript; hand-computed
design matrices, bins and normalization blocks; synthetic mixtures with known parameters; the
invariants of methods.md 1.5/1.11; the figures SCAN.UPC recorded on C30057 (methods.md 1.0); an
independent base-R transcription of the spec run on C30057; and a regression summary of our values.
"""

from __future__ import annotations

import dataclasses
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.lib.scan import (
    ScanError,
    ScanParams,
    _block_normalize,
    assign_bin,
    design_dot,
    em_mixture,
    r_rnorm,
    r_round,
    r_runif,
    r_trimmed_mean,
    sample_indices,
    scan_normalize,
    scan_probe_values,
    sequence_design_matrix,
    trimmed_mean_summarize,
)

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def random_sequences(n: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = BASES[rng.integers(0, 4, size=(n, length))]
    return np.frombuffer(codes.tobytes(), dtype=f"S{length}").astype(str)


def run_r(rscript: str, code: str, cwd: Path) -> None:
    script = cwd / "script.R"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.run([rscript, str(script)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------------


def test_params_constructors_match_spec():
    fast, full, ill = ScanParams.scanfast(), ScanParams.scan(), ScanParams.illumina()
    assert (fast.interval_n, fast.conv_threshold, fast.binsize, fast.nbins, fast.max_iter) == (
        10000,
        0.5,
        5000,
        25,
        100,
    )
    assert (full.interval_n, full.conv_threshold, full.binsize) == (50000, 0.01, 5000)
    assert (fast.probe_length, fast.t_offset, fast.jitter_seed, fast.bin_retry_seed) == (
        25,
        25,
        None,
        "increment",
    )
    assert (ill.interval_n, ill.conv_threshold, ill.binsize, ill.probe_length, ill.t_offset) == (
        10000,
        0.5,
        50,
        50,
        60,
    )
    assert (ill.jitter_seed, ill.bin_retry_seed, ill.initial_conv) == (0, "fixed", 1e6)
    with pytest.raises(ValueError, match="lower than 1"):
        dataclasses.replace(fast, conv_threshold=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.binsize = 10  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------
# R's RNG and rounding
# ---------------------------------------------------------------------------------------------------


def test_r_rng_values_from_spec():
    # methods.md 2.4 (checked against R by the spec's author)
    np.testing.assert_allclose(r_runif(3, 0), [0.8966972, 0.2655087, 0.3721239], atol=5e-8)
    np.testing.assert_allclose(
        r_rnorm(5, 0), [1.2629543, -0.3262334, 1.3297993, 1.2724293, 0.4146414], atol=5e-8
    )
    np.testing.assert_allclose(r_rnorm(3, 1), [-0.6264538, 0.1836433, -0.8356286], atol=5e-8)


def test_r_rng_matches_rscript(rscript, tmp_path):
    run_r(
        rscript,
        """
        for (s in c(0, 1, 2, 42, 123456)) {
          set.seed(s); writeBin(runif(3000), sprintf("u%d.bin", s))
          set.seed(s); writeBin(rnorm(3000), sprintf("n%d.bin", s))
        }
        """,
        tmp_path,
    )
    for s in (0, 1, 2, 42, 123456):
        np.testing.assert_array_equal(r_runif(3000, s), np.fromfile(tmp_path / f"u{s}.bin"))
        np.testing.assert_allclose(
            r_rnorm(3000, s), np.fromfile(tmp_path / f"n{s}.bin"), rtol=1e-13, atol=1e-15
        )


def test_r_round_against_rscript(rscript, tmp_path):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 3, 20000), [0.0, -0.0, 1e-9, -4e-9, 123456.123456789, np.inf]])
    x.tofile(tmp_path / "x.bin")
    run_r(rscript, 'x <- readBin("x.bin", "double", 1e6); writeBin(round(x, 8), "r.bin")', tmp_path)
    expected = np.fromfile(tmp_path / "r.bin")
    got = r_round(x, 8)
    # R 4.2 (here) and R 3.4 (refine.bio, which r_round follows) agree except at the last ulp.
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-15)
    assert np.count_nonzero(got != expected) <= 20
    assert np.isnan(r_round(np.array([np.nan]), 8)[0])
    # hand cases: half-way of the 8th decimal is never exact in binary; these are clear-cut
    np.testing.assert_array_equal(
        r_round(np.array([0.123456784, -0.123456786, 2.0]), 8), [0.12345678, -0.12345679, 2.0]
    )


# ---------------------------------------------------------------------------------------------------
# Design matrix
# ---------------------------------------------------------------------------------------------------


def test_design_matrix_hand_written_row():
    seq = "ACGTNacgtAAAAACCCCCGGGGGT"  # 25 bases; N and lowercase count as T (oligo's C code)
    row = sequence_design_matrix([seq], 25)[0]
    a = [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    c = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    g = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    n_a, n_c, n_g = 6, 6, 6
    n_t = 25 - 18  # T, N, a, c, g, t, final T
    expected = [n_t, *a, *c, *g, n_a**2, n_c**2, n_g**2, n_t**2]
    assert row.tolist() == expected
    assert row.dtype == np.int16


def test_design_matrix_all_a_and_input_types():
    all_a = "A" * 25
    for seqs in (
        [all_a, "T" * 25],
        np.array([all_a, "T" * 25]),
        np.array([all_a, "T" * 25], dtype=object),
        pd.Series([all_a, "T" * 25]),
        np.array([b"A" * 25, b"T" * 25], dtype="S25"),
    ):
        X = sequence_design_matrix(seqs, 25)
        assert X.shape == (2, 80)
        assert X[0, 0] == 0 and X[0, 1:26].sum() == 25 and X[0, 26:76].sum() == 0
        assert X[0, 76:].tolist() == [625, 0, 0, 0]
        assert X[1, 0] == 25 and X[1, 1:76].sum() == 0 and X[1, 76:].tolist() == [0, 0, 0, 625]


def test_design_matrix_illumina_50mer():
    seq = "A" * 10 + "C" * 20 + "G" * 5 + "T" * 15
    X = sequence_design_matrix([seq], 50, t_offset=60)
    assert X.shape == (1, 155)
    n_t = 60 - (10 + 20 + 5)  # quirk Q7: 60, not 50
    assert X[0, 0] == n_t
    assert X[0, 1:51].tolist() == [1] * 10 + [0] * 40
    assert X[0, 51:101].tolist() == [0] * 10 + [1] * 20 + [0] * 20
    assert X[0, 101:151].tolist() == [0] * 30 + [1] * 5 + [0] * 15
    assert X[0, 151:].tolist() == [100, 400, 25, n_t**2]


def test_design_matrix_rejects_bad_sequences():
    with pytest.raises(ValueError, match="length 25"):
        sequence_design_matrix(["A" * 25, "A" * 24], 25)
    with pytest.raises(ValueError, match="length 25"):
        sequence_design_matrix(np.array([b"A" * 24], dtype="S25"), 25)
    with pytest.raises(ValueError, match="missing"):
        sequence_design_matrix(["A" * 25, None], 25)
    with pytest.raises(ValueError, match="ASCII"):
        sequence_design_matrix(["A" * 24 + "é"], 25)


def test_design_dot_matches_float_product():
    X = sequence_design_matrix(random_sequences(20001, 25, 3), 25)
    b = np.random.default_rng(0).normal(size=80)
    np.testing.assert_allclose(
        design_dot(X, b, chunk_rows=777), X.astype(np.float64) @ b, rtol=1e-13, atol=1e-10
    )


# ---------------------------------------------------------------------------------------------------
# Subsample and bins
# ---------------------------------------------------------------------------------------------------


def test_sample_indices_spec_figures():
    fast = sample_indices(199084, 10000)  # methods.md 1.0: 10,479 probes, every 19th
    assert fast.size == 10479 and fast[1] == 19 and fast[0] == 0 and fast[-1] == 19 * 10478
    assert sample_indices(199084, 50000).size == 66362  # every 3rd
    assert sample_indices(604258, 10000)[1] == 60  # HG-U133 Plus 2 example of 1.4
    np.testing.assert_array_equal(sample_indices(15, 10000), np.arange(15))


def test_assign_bin_hand_computed():
    v = np.arange(50, dtype=float)[::-1].copy()  # n = 50, K = 25: q_k = sort(v)[2k] (1-based)
    bins = assign_bin(v, 25)
    np.testing.assert_array_equal(bins, (v // 2).astype(int))  # values 2k-2, 2k-1 -> bin k-1 (0-based)
    # ties at a boundary value go to the lower bin ("v > q_k" is strict)
    w = np.array([0.0, 1, 1, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(assign_bin(w, 2), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])


def test_assign_bin_tie_retry_matches_r(rscript, tmp_path):
    # Heavy ties (as raw CEL log-intensities have): fewer than 25 distinct bins on the first pass,
    # then R adds rnorm(n)/1e7 after set.seed(1). The R snippet is the spec's formula, run by R.
    rng = np.random.default_rng(5)
    v = np.round(rng.normal(8, 1, 400), 1)
    v[:150] = 7.0
    v.tofile(tmp_path / "v.bin")
    run_r(
        rscript,
        """
        v <- readBin("v.bin", "double", 1e5); K <- 25
        bins <- function(v) { q <- sort(v)[floor(length(v) * 1:K / K)]; sapply(v, function(x) sum(x > q)) + 1 }
        b <- bins(v); first <- length(unique(b))
        set.seed(1); b2 <- bins(v + rnorm(length(v)) / 1e7)
        writeBin(as.integer(c(first, b2)), "b.bin", size = 4)
        """,
        tmp_path,
    )
    r = np.fromfile(tmp_path / "b.bin", dtype=np.int32)
    assert r[0] < 25  # the crafted ties force the retry path
    np.testing.assert_array_equal(assign_bin(v, 25), r[1:] - 1)
    np.testing.assert_array_equal(assign_bin(v, 25, retry_seed="fixed"), r[1:] - 1)  # one retry: same


def test_assign_bin_gives_up_when_noise_cannot_break_ties():
    with pytest.raises(ScanError, match="bins"):
        assign_bin(np.full(100, 1e12), 25)
    with pytest.raises(ScanError):
        assign_bin(np.arange(10.0), 25)
    with pytest.raises(ScanError, match="non-finite"):
        assign_bin(np.r_[np.arange(30.0), np.nan], 25)


# ---------------------------------------------------------------------------------------------------
# EM
# ---------------------------------------------------------------------------------------------------


def synthetic_mixture(n: int, seed: int, p_background: float = 0.6, sd: float = 0.3):
    rng = np.random.default_rng(seed)
    X = sequence_design_matrix(random_sequences(n, 25, seed), 25)
    b_true = np.zeros(80)
    b_true[1:76] = rng.normal(0, 0.08, 75)  # base/position effects
    b_true[0] = 7.0 / 25  # nT * 0.28 + ... : the intercept lives in the span (nT + sum(indicators) = 25)
    b_true[1:76] += 7.0 / 25
    b_true[76:80] = rng.normal(0, 0.002, 4)
    m_bg = X.astype(float) @ b_true
    signal = rng.random(n) > p_background
    y = m_bg + rng.normal(0, sd, n) + np.where(signal, 3.0 + rng.exponential(1.0, n), 0.0)
    return y, X, m_bg, signal


def test_em_recovers_known_background_model():
    y, X, m_bg, signal = synthetic_mixture(20000, seed=11)
    params = dataclasses.replace(ScanParams.scan(), interval_n=20000)  # use every probe
    em = em_mixture(y, X, params)
    assert em.converged and em.iterations < 100 and em.sample_size == 20000
    Xf = X.astype(float)
    m_hat = Xf @ em.b1
    # the best possible estimate: OLS on the true background probes (RMS error ~ 0.3 sqrt(80/12000))
    b_oracle = np.linalg.lstsq(Xf[~signal], y[~signal], rcond=None)[0]
    assert np.sqrt(np.mean((m_hat - Xf @ b_oracle) ** 2)) < 0.005
    assert np.sqrt(np.mean((m_hat - m_bg) ** 2)) < 0.03
    assert abs(em.p[0] - np.mean(~signal)) < 0.01
    # per-bin variances carry SCAN's +0.01 weight floor (vsig): signal probes leak into s1
    w = (~signal) + 0.01
    pooled = np.sum(w * (y - Xf @ b_oracle) ** 2) / np.sum(w)
    np.testing.assert_allclose(np.mean(em.s1), pooled, rtol=0.1)
    assert em.bins.min() == 0 and em.bins.max() == 24


def test_em_stops_early_with_scanfast_threshold():
    y, X, _, _ = synthetic_mixture(20000, seed=12)
    fast = em_mixture(y, X, ScanParams.scanfast())
    full = em_mixture(y, X, dataclasses.replace(ScanParams.scan(), interval_n=10000))
    assert fast.sample_size == full.sample_size == 10000
    assert 1 <= fast.iterations < full.iterations
    assert fast.converged and fast.conv <= 0.5 < fast.conv_trace[-2]
    assert full.conv <= 0.01 if full.converged else full.iterations == 100
    assert len(full.conv_trace) == full.iterations and full.conv_trace[-1] == full.conv
    capped = em_mixture(y, X, dataclasses.replace(ScanParams.scan(), interval_n=10000, max_iter=3))
    assert capped.iterations == 3 and not capped.converged
    np.testing.assert_array_equal(capped.conv_trace, full.conv_trace[:3])


def test_em_errors_are_clear():
    y, X, _, _ = synthetic_mixture(200, seed=1)
    with pytest.raises(ScanError, match="too few probes"):
        em_mixture(y[:50], X[:50], ScanParams.scanfast())
    bad = y.copy()
    bad[3] = -np.inf
    with pytest.raises(ScanError, match="finite"):
        em_mixture(bad, X, ScanParams.scanfast())
    with pytest.raises(ValueError, match="rows"):
        em_mixture(y, X[:-1], ScanParams.scanfast())


# ---------------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------------


def test_block_normalize_hand_computed():
    # n = 7, binsize 3: blocks of sorted 1-based positions 3..6 and 6..7; position 6 is overwritten
    # by block 2; positions 1..2 stay 0 (Q1).
    m1 = np.array([5.0, 1.0, 3.0, 2.0, 7.0, 4.0, 6.0])  # sorted order: idx 1, 3, 2, 5, 0, 6, 4
    r_sorted = np.array([0.5, -1.0, 2.0, -0.5, 1.0, 3.0, -2.0])
    order = np.argsort(m1, kind="stable")
    y = m1.copy()
    y[order] += r_sorted
    sd1 = np.sqrt((2.0**2 + 0.5**2 + 1.0**2 + 3.0**2) / 4)
    sd2 = np.sqrt((3.0**2 + 2.0**2) / 2)
    expected_sorted = np.array([0, 0, 2.0 / sd1, -0.5 / sd1, 1.0 / sd1, 3.0 / sd2, -2.0 / sd2])
    got = _block_normalize(y, m1, 3)
    np.testing.assert_allclose(got[order], expected_sorted, rtol=1e-15)


def test_block_normalize_exact_multiple_leaves_single_probe_block():
    # n divisible by binsize: the last block is the single sorted position n -> value +-1.
    rng = np.random.default_rng(0)
    m1 = rng.normal(size=50)
    y = m1 + rng.normal(size=50)
    got = _block_normalize(y, m1, 10)
    last = np.argsort(m1, kind="stable")[-1]
    assert abs(got[last]) == 1.0
    with pytest.raises(ScanError, match="binsize"):
        _block_normalize(y[:9], m1[:9], 10)


@pytest.mark.parametrize(("n", "binsize"), [(1003, 50), (1000, 50), (5731, 500)])
def test_block_invariants(n, binsize):
    """methods.md 1.5/1.11: exactly binsize-1 zeros at the lowest m1; RMS 1 in every block."""
    rng = np.random.default_rng(n)
    m1 = np.round(rng.normal(size=n), 2)  # ties in m1: stable order decides
    y = m1 + rng.normal(size=n) * rng.uniform(0.5, 2, size=n)
    z = _block_normalize(y, m1, binsize)
    order = np.argsort(m1, kind="stable")
    assert np.count_nonzero(z == 0) == binsize - 1
    assert np.all(z[order[: binsize - 1]] == 0)
    r = (y - m1)[order]
    zs = z[order]
    n_groups = n // binsize
    for i in range(1, n_groups + 1):
        lo, hi = binsize * i - 1, min(binsize * i + binsize, n)
        own_hi = hi - 1 if i < n_groups else hi  # the shared last probe belongs to the next block
        sd = r[lo] / zs[lo]
        np.testing.assert_allclose(r[lo:own_hi] / zs[lo:own_hi], sd, rtol=1e-12)
        np.testing.assert_allclose(np.sqrt(np.mean((r[lo:hi] / sd) ** 2)), 1.0, rtol=1e-12)


def test_scan_normalize_rounds_to_8_decimals():
    y, X, _, _ = synthetic_mixture(12000, seed=4)
    params = ScanParams.scanfast()
    em = em_mixture(y, X, params)
    v = scan_normalize(y, X, params, em=em)
    raw = scan_normalize(y, X, dataclasses.replace(params, round_digits=None), em=em)
    assert np.max(np.abs(v - raw)) <= 5e-9 + 1e-15
    np.testing.assert_allclose(v * 1e8, np.round(v * 1e8), atol=1e-6)
    assert np.count_nonzero(v == 0) == 4999


def test_probe_order_matters_but_only_through_the_subsample():
    """methods.md 1.11 / Q2: permuting probes changes the subsample and hence the values."""
    y, X, _, _ = synthetic_mixture(30000, seed=8)
    params = ScanParams.scanfast()
    base = scan_probe_values(y, X, params).values
    perm = np.random.default_rng(0).permutation(y.size)
    moved = scan_probe_values(y[perm], X[perm], params).values
    assert np.max(np.abs(moved - base[perm])) > 1e-4
    # with every probe in the subsample (interval 1) the fit is order-independent up to rounding
    all_probes = dataclasses.replace(params, interval_n=30000)
    a = scan_probe_values(y, X, all_probes).values
    b = scan_probe_values(y[perm], X[perm], all_probes).values
    assert np.max(np.abs(b - a[perm])) <= 2e-8


def test_illumina_variant_jitter_and_zeros():
    rng = np.random.default_rng(3)
    n = 3000
    X = sequence_design_matrix(random_sequences(n, 50, 3), 50, t_offset=60)
    y = 7 + rng.normal(0, 0.4, n) + np.where(rng.random(n) > 0.6, 3.0, 0.0)
    res = scan_probe_values(y, X, ScanParams.illumina())
    np.testing.assert_array_equal(res.y, y + r_rnorm(n, 0) / 10000000)
    assert np.count_nonzero(res.values == 0) == 49
    assert res.em.sample_size == n


# ---------------------------------------------------------------------------------------------------
# Trimmed mean
# ---------------------------------------------------------------------------------------------------


def test_trimmed_mean_hand_cases():
    x = np.arange(1.0, 21.0)  # n = 20: drop 2 each side -> mean of 3..18
    assert r_trimmed_mean(x, 0.1) == np.mean(np.arange(3.0, 19.0))
    assert r_trimmed_mean(np.array([1.0, 2, 3, 100]), 0.1) == 26.5  # n < 10: plain mean
    ids, vals = trimmed_mean_summarize(np.array([1.0, np.nan, 3.0, 4.0]), ["b", "b", "a", "a"])
    assert ids.tolist() == ["a", "b"] and vals[0] == 3.5 and np.isnan(vals[1])
    with pytest.raises(ValueError):
        trimmed_mean_summarize(np.ones(3), ["a", "b"])


def test_trimmed_mean_matches_r(rscript, tmp_path):
    rng = np.random.default_rng(2)
    sizes = rng.integers(1, 45, 400)
    g = np.repeat(np.arange(sizes.size), sizes)
    v = rng.normal(0, 2, g.size)
    mask = rng.random(g.size) < 0.2
    v[mask] = v[mask].round(2)  # ties
    perm = rng.permutation(g.size)
    g, v = g[perm], v[perm]
    labels = np.array([f"p{i:03d}" for i in g])
    v.tofile(tmp_path / "v.bin")
    (tmp_path / "g.txt").write_text("\n".join(labels) + "\n")
    run_r(
        rscript,
        """
        v <- readBin("v.bin", "double", 1e6); g <- readLines("g.txt")
        r <- tapply(v, g, mean, trim = 0.1)
        writeBin(as.numeric(r), "m.bin"); writeLines(names(r), "n.txt")
        """,
        tmp_path,
    )
    ids, means = trimmed_mean_summarize(v, labels)
    assert ids.tolist() == (tmp_path / "n.txt").read_text().split()
    expected = np.fromfile(tmp_path / "m.bin")
    np.testing.assert_allclose(means, expected, rtol=0, atol=1e-17)
    assert np.count_nonzero(means != expected) <= 3  # bit-identical but for long-double ulps
    from scipy.stats import trim_mean

    for i in range(0, 400, 37):
        assert abs(trim_mean(v[g == i], 0.1) - means[i]) < 1e-14


# ---------------------------------------------------------------------------------------------------
# The real array: C30057 (HG_U95Av2) with the HG-U95Av2 probe table
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c30057(shared_data):
    from refine_assets.lib.affy.cel import read_cel

    return read_cel(shared_data / "microarray" / "C30057.CEL.gz")


@pytest.fixture(scope="module")
def u95_probes(shared_data):
    from refine_assets.lib.affy.probes import read_probe_table

    return read_probe_table(shared_data / "probes" / "HG-U95Av2_probes.tsv.gz")


@pytest.fixture(scope="module")
def u95_prepared(u95_probes, c30057):
    from refine_assets.lib.affy.scan_affy import prepare_scan_probes

    return prepare_scan_probes(u95_probes, c30057.cols)


# Regression summary of our own output (not a copy of inputs): quantiles and a few probesets.
REGRESSION = {
    "fast": {
        "quantiles": {
            0.0: -1.31413095,
            0.25: -0.06865443,
            0.5: 0.17114932,
            0.75: 0.73255068,
            1.0: 3.83610285,
        },
        "probesets": {
            "1000_at": 0.1863693,
            "1001_at": -0.4494975,
            "31307_at": -0.0500688,
            "36711_at": 2.93128757,
            "41768_at": 2.52118515,
            "AFFX-HUMGAPDH/M33197_3_at": 2.64927929,
            "AFFX-HSAC07/X00351_3_at": 2.31969086,
            "AFFX-BioB-5_at": 0.37079631,
        },
        "p_background": 0.622941313627699,
    },
    "full": {
        "quantiles": {0.0: -1.1429867, 0.25: -0.05266341, 0.5: 0.1905804, 0.75: 0.74839748, 1.0: 3.88859165},
        "probesets": {
            "1000_at": 0.22922277,
            "1001_at": -0.42952083,
            "31307_at": -0.05907295,
            "36711_at": 2.88507768,
            "41768_at": 2.53290442,
            "AFFX-HUMGAPDH/M33197_3_at": 2.65374784,
            "AFFX-HSAC07/X00351_3_at": 2.30011182,
            "AFFX-BioB-5_at": 0.38025455,
        },
        "p_background": 0.6136049684150264,
    },
}
# methods.md 1.0: what SCAN.UPC itself did on this array.
SPEC_FIGURES = {"fast": (8, 10479, 19), "full": (32, 66362, 3)}


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_c30057_reproduces_scan_upc_figures_and_regression(mode, c30057, u95_prepared):
    from refine_assets.lib.affy.scan_affy import scan_affy

    res = scan_affy(c30057.intensities, c30057.cols, u95_prepared, mode=mode)
    iterations, sample_size, interval = SPEC_FIGURES[mode]
    assert res.n_probes == 199084
    assert res.iterations == iterations and res.converged
    assert (res.em.sample_size, res.em.interval) == (sample_size, interval)
    assert res.n_zero_probes == 4999  # quirk Q1
    assert not res.shifted_by_one
    assert len(res.values) == 12453 and res.values.index.is_monotonic_increasing
    ref = REGRESSION[mode]
    for q, value in ref["quantiles"].items():
        assert abs(res.values.quantile(q) - value) <= 2e-8
    for pid, value in ref["probesets"].items():
        assert abs(res.values[pid] - value) <= 2e-8, pid
    assert abs(res.em.p[0] - ref["p_background"]) < 1e-9
    # probeset values are trimmed means of 8-decimal probe values, rounded again to 8 decimals
    np.testing.assert_allclose(res.values * 1e8, np.round(res.values * 1e8), atol=1e-5)


def test_c30057_row_order_of_the_table_is_irrelevant(c30057, u95_probes, u95_prepared):
    from refine_assets.lib.affy.probes import ProbeTable
    from refine_assets.lib.affy.scan_affy import scan_affy

    shuffled = ProbeTable(frame=u95_probes.frame.sample(frac=1.0, random_state=1).reset_index(drop=True))
    a = scan_affy(c30057.intensities, c30057.cols, u95_prepared).values
    b = scan_affy(c30057.intensities, c30057.cols, shuffled).values
    pd.testing.assert_series_equal(a, b)


def test_c30057_brainarray_regrouping(c30057, u95_probes, u95_prepared):
    """Brainarray path: inner many-to-many join on (x, y), trimmed means per custom probeset."""
    from refine_assets.lib.affy.probes import ProbeTable
    from refine_assets.lib.affy.scan_affy import scan_affy

    frame = u95_probes.frame
    rng = np.random.default_rng(0)
    sets = frame["probeset_id"].unique()
    gene_of = dict(zip(sets, [f"ENSG{k:011d}_at" for k in rng.integers(0, 3000, sets.size)], strict=True))
    ba = pd.DataFrame({"probeset_id": frame["probeset_id"].map(gene_of), "x": frame["x"], "y": frame["y"]})
    ba = ba.iloc[rng.permutation(len(ba))[: len(ba) * 3 // 4]]  # some probes not in the custom CDF
    extra = ba.iloc[:500].assign(probeset_id="ENSG99999999999_at")  # probes counted in two genes
    ghost = pd.DataFrame({"probeset_id": ["ENSG88888888888_at"], "x": [0], "y": [0]})  # not a PM probe
    ba = pd.concat([ba, extra, ghost], ignore_index=True).assign(sequence=None)
    res = scan_affy(c30057.intensities, c30057.cols, u95_prepared, brainarray=ProbeTable(frame=ba))

    probe = scan_probe_values(
        np.log2(c30057.intensities[u95_prepared.index]), u95_prepared.X, ScanParams.scanfast()
    ).values
    value_of_cell = pd.Series(probe, index=u95_prepared.index)
    cells = ba["x"].to_numpy() + c30057.cols * ba["y"].to_numpy()
    known = np.isin(cells, u95_prepared.index)
    assert "ENSG88888888888_at" not in res.values.index
    ids, means = trimmed_mean_summarize(
        value_of_cell.loc[cells[known]].to_numpy(), ba["probeset_id"][known].to_numpy()
    )
    np.testing.assert_array_equal(res.values.index.to_numpy(), ids)
    np.testing.assert_array_equal(res.values.to_numpy(), r_round(means, 8))
    assert (
        res.values["ENSG99999999999_at"]
        == r_round(np.array([r_trimmed_mean(value_of_cell.loc[cells[-501:-1]].to_numpy())]), 8)[0]
    )


def test_zero_intensities_shift_or_reject(c30057, u95_prepared):
    from refine_assets.lib.affy.scan_affy import ScanRejectedError, scan_affy

    inten = c30057.intensities.copy()
    cells = u95_prepared.pm_index
    inten[cells[:100]] = 0.0  # 0.05% zeros: processed, all intensities + 1
    res = scan_affy(inten, c30057.cols, u95_prepared)
    assert res.shifted_by_one and np.all(np.isfinite(res.values))
    inten[cells[: len(cells) // 50]] = 0.0  # 2% zeros: SCAN.UPC refuses the array
    with pytest.raises(ScanRejectedError, match="more than 1%"):
        scan_affy(inten, c30057.cols, u95_prepared)
    with pytest.raises(ValueError, match="outside"):
        scan_affy(c30057.intensities[:1000], c30057.cols, u95_prepared)
    with pytest.raises(ValueError, match="mode"):
        scan_affy(c30057.intensities, c30057.cols, u95_prepared, mode="slow")  # type: ignore[arg-type]


# Independent base-R transcription of methods.md 1.3-1.6 (design built in R from the sequences, EM
# with R's sort/solve/rnorm, normalization loop, R's round and tapply(mean, trim = 0.1)).
R_ORACLE = r"""
args <- commandArgs(trailingOnly = TRUE)
d <- args[1]; intervalN <- as.numeric(args[2]); convThreshold <- as.numeric(args[3]); literal <- args[4] == "literal"
y_all <- readBin(file.path(d, "y.bin"), "double", n = 1e7)
seqs <- readLines(file.path(d, "seq.txt")); ids <- readLines(file.path(d, "ids.txt"))
N <- length(y_all); K <- 25; binsize <- 5000
ch <- matrix(unlist(strsplit(seqs, "")), ncol = 25, byrow = TRUE)
A <- (ch == "A") * 1L; C <- (ch == "C") * 1L; G <- (ch == "G") * 1L
nA <- rowSums(A); nC <- rowSums(C); nG <- rowSums(G); nT <- 25 - nA - nC - nG
X_all <- cbind(nT, A, C, G, nA^2, nC^2, nG^2, nT^2); storage.mode(X_all) <- "double"
s <- seq(1, N, by = max(floor(N / intervalN), 1))
y <- y_all[s]; X <- X_all[s, , drop = FALSE]; n <- length(y)
bins_of <- function(v) {
  seed <- 1
  repeat {
    q <- sort(v)[floor(length(v) * (1:K) / K)]
    b <- rowSums(outer(as.vector(v), q, ">")) + 1
    if (length(unique(b)) == K) return(b)
    set.seed(seed); v <- v + rnorm(length(v)) / 1e7; seed <- seed + 1
  }
}
fitw <- function(w) {
  Xw <- sqrt(w) * X; yw <- sqrt(w) * y
  if (literal) return(as.numeric(solve(t(Xw) %*% Xw) %*% t(Xw) %*% yw))
  as.numeric(solve(crossprod(Xw), crossprod(Xw, yw)))
}
varbin <- function(b, g, bin) {
  r <- as.numeric(y - X %*% b); g <- g + 0.01
  sapply(1:K, function(k) sum((r * g)[bin == k] * r[bin == k]) / sum(g[bin == k]))
}
dens <- function(m, v) 1 / sqrt(2 * pi * v) * exp(-1 / (2 * v) * (y - m)^2)
cut <- sort(y)[floor(n / 2) - 1]
g1 <- as.numeric(y <= cut); g2 <- as.numeric(y > cut); p <- c(mean(g1), mean(g2))
b1 <- fitw(g1); b2 <- fitw(g2); bin <- bins_of(y)
s1 <- varbin(b1, g1, bin); s2 <- varbin(b2, g1, bin)
old <- c(p, b1, s1, b2, s2); it <- 0; cv <- 1
while (cv > convThreshold && it < 100) {
  L0 <- dens(as.numeric(X %*% b1), s1[bin]); L1 <- dens(as.numeric(X %*% b2), s2[bin])
  g1 <- p[1] * L0 / (p[1] * L0 + p[2] * L1); g2 <- 1 - g1; p <- c(mean(g1), mean(g2))
  b1 <- fitw(g1 / s1[bin]); bin <- bins_of(X %*% b1); b2 <- fitw(g2 / s2[bin])
  s1 <- varbin(b1, g1, bin); s2 <- varbin(b2, g2, bin)
  th <- c(p, b1, s1, b2, s2); cv <- max(abs(th - old) / old); old <- th; it <- it + 1
}
m1 <- as.numeric(X_all %*% b1); o <- order(m1); yn <- numeric(N)
for (i in 1:floor(N / binsize)) {
  blk <- o[(binsize * i):min(binsize * i + binsize, N)]
  r <- y_all[blk] - m1[blk]; yn[blk] <- r / sqrt(sum(r^2) / length(r))
}
yn <- round(yn, 8); ps <- tapply(yn, ids, mean, trim = 0.1)
writeLines(as.character(it), file.path(d, "it.txt")); writeBin(b1, file.path(d, "b1.bin"))
writeBin(yn, file.path(d, "yn.bin")); writeLines(names(ps), file.path(d, "ps_ids.txt"))
writeBin(as.numeric(round(ps, 8)), file.path(d, "ps.bin"))
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "full"])
def test_c30057_against_base_r_transcription(mode, rscript, tmp_path, c30057, u95_probes, u95_prepared):
    """SCANfast (literal R: explicit inverse) and SCAN (crossprod; ~30 s of R) on the real array."""
    from refine_assets.lib.affy.scan_affy import scan_affy

    frame = u95_probes.frame
    cells = u95_probes.cell_index(c30057.cols)
    ids = frame["probeset_id"].to_numpy(dtype=object).astype(str)
    order = np.lexsort((ids, cells))
    y = np.log2(c30057.intensities[cells[order]])
    y.tofile(tmp_path / "y.bin")
    (tmp_path / "seq.txt").write_text("\n".join(frame["sequence"].to_numpy(dtype=object)[order]) + "\n")
    (tmp_path / "ids.txt").write_text("\n".join(ids[order]) + "\n")
    (tmp_path / "oracle.R").write_text(R_ORACLE)
    interval_n, conv, how = ("10000", "0.5", "literal") if mode == "fast" else ("50000", "0.01", "crossprod")
    proc = subprocess.run(
        [rscript, str(tmp_path / "oracle.R"), str(tmp_path), interval_n, conv, how],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr

    res = scan_affy(c30057.intensities, c30057.cols, u95_prepared, mode=mode)
    assert res.iterations == int((tmp_path / "it.txt").read_text())
    b1_r = np.fromfile(tmp_path / "b1.bin")
    np.testing.assert_allclose(res.em.b1, b1_r, rtol=1e-8, atol=1e-11)
    probe = scan_normalize(y, u95_prepared.X, res.params, em=res.em)
    yn_r = np.fromfile(tmp_path / "yn.bin")
    assert np.max(np.abs(probe - yn_r)) <= 1.5e-8  # one unit of the 8th decimal at most
    assert np.count_nonzero(probe != yn_r) < 0.002 * probe.size
    r_values = pd.Series(
        np.fromfile(tmp_path / "ps.bin"), index=(tmp_path / "ps_ids.txt").read_text().split()
    )
    ours = res.values.loc[r_values.index]
    assert np.max(np.abs(ours.to_numpy() - r_values.to_numpy())) <= 1.5e-8
    assert np.count_nonzero(ours.to_numpy() != r_values.to_numpy()) < 0.03 * len(r_values)


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------


def cli_app() -> typer.Typer:
    from refine_assets.commands.scan import register

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command so typer keeps sub-command names
        """Nothing."""

    return app


def test_cli_scan_writes_tsv(shared_data, tmp_path, c30057, u95_prepared):
    from refine_assets.lib.affy.scan_affy import scan_affy

    cel = shared_data / "microarray" / "C30057.CEL.gz"
    probes = shared_data / "probes" / "HG-U95Av2_probes.tsv.gz"
    out = tmp_path / "out" / "C30057.tsv"
    res = CliRunner().invoke(cli_app(), ["scan", str(cel), "--probes", str(probes), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert '"em_iterations": 8' in res.output
    lines = out.read_text().splitlines()
    assert lines[0] == "ID\tC30057"
    table = pd.read_csv(out, sep="\t", index_col=0)
    expected = scan_affy(c30057.intensities, c30057.cols, u95_prepared).values
    assert table.index.tolist() == expected.index.tolist()
    # written as R does (15 significant digits): the text parses back to the 8-decimal value
    np.testing.assert_allclose(table["C30057"].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-15)
    assert [p.name for p in out.parent.iterdir()] == ["C30057.tsv"]  # no temp files left


def test_cli_scan_errors(shared_data, tmp_path):
    cel = shared_data / "microarray" / "C30057.CEL.gz"
    bad = tmp_path / "bad.tsv"
    bad.write_text("foo\tbar\n1\t2\n")
    out = tmp_path / "out.tsv"
    res = CliRunner().invoke(cli_app(), ["scan", str(cel), "--probes", str(bad), "-o", str(out)])
    assert res.exit_code != 0 and "unrecognised probe table" in res.output
    assert not out.exists()
    res = CliRunner().invoke(
        cli_app(), ["scan", str(tmp_path / "none.CEL"), "--probes", str(bad), "-o", str(out)]
    )
    assert res.exit_code != 0 and "no such file" in res.output
    res = CliRunner().invoke(
        cli_app(), ["scan", str(cel), "--probes", str(bad), "--mode", "slow", "-o", str(out)]
    )
    assert res.exit_code != 0


def test_cli_sample_name():
    from refine_assets.commands.scan import sample_name

    assert sample_name(Path("/a/GSM1.CEL.gz")) == "GSM1"
    assert sample_name(Path("x.cel")) == "x"
    assert sample_name(Path("y.txt")) == "y.txt"
