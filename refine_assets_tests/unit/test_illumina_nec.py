"""limma ``nec`` port: equality with limma (Rscript) within 1e-10 on both branches, and edge cases."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from refine_assets.lib.illumina.nec import (
    NecError,
    huber,
    log_upper_normal,
    nec,
    normexp_fit_control,
    normexp_fit_detection_p,
)
from refine_assets_tests.illumina_generator import simulate_beadchip

TOL = 1e-10


def _write(path: Path, a: np.ndarray) -> None:
    np.savetxt(path, np.atleast_2d(a.T).T if a.ndim == 1 else a, delimiter="\t", fmt="%.17g")


def run_r(rscript: str, tmp: Path, code: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Write ``inputs`` as TSV (``%.17g``), run ``code`` (which reads them by name and sets ``out``),
    read ``out`` back (written with ``sprintf('%.17g')``; NA -> NaN)."""
    reads = []
    for name, arr in inputs.items():
        if arr.dtype.kind in ("U", "S", "O"):
            path = tmp / f"{name}.txt"
            path.write_text("\n".join(map(str, arr)) + "\n")
            reads.append(f'{name} <- readLines("{path}")')
        else:
            path = tmp / f"{name}.tsv"
            _write(path, arr)
            reads.append(f'{name} <- as.matrix(read.table("{path}", colClasses = "numeric"))')
    out = tmp / "out.tsv"
    script = "\n".join(
        [
            "suppressMessages(library(limma))",
            *reads,
            code,
            "out <- as.matrix(out)",
            f'write.table(matrix(sprintf("%.17g", out), nrow(out)), "{out}", quote = FALSE, '
            'row.names = FALSE, col.names = FALSE, sep = "\\t")',
        ]
    )
    (tmp / "run.R").write_text(script)
    proc = subprocess.run([rscript, str(tmp / "run.R")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.loadtxt(out, delimiter="\t", ndmin=2)


@pytest.fixture(scope="module")
def sim():
    return simulate_beadchip(3000, 4, seed=11)


def test_detection_branch_matches_limma(rscript, tmp_path, sim):
    x, p = sim.signal, sim.detection_p
    ours = nec(x, p)
    assert ours.params.flipped  # BeadStudio p-values fall with intensity: limma uses 1 - p
    ref = run_r(rscript, tmp_path, "out <- nec(x, detection.p = p)", {"x": x, "p": p})
    assert ref.shape == ours.values.shape
    assert np.max(np.abs(ours.values - ref)) < TOL
    params = run_r(rscript, tmp_path, "out <- limma:::normexp.fit.detection.p(x, p)", {"x": x, "p": p})
    fitted = normexp_fit_detection_p(x, p)
    assert np.allclose(params[:, 0], fitted.mu, rtol=1e-13, atol=0)
    assert np.allclose(params[:, 1], fitted.log_sigma, rtol=1e-12, atol=0)
    assert np.allclose(params[:, 2], fitted.log_alpha, rtol=1e-13, atol=0)


def test_detection_scores_and_offset_match_limma(rscript, tmp_path, sim):
    """Scores (1 - p) need no flip; ``offset`` is added after correction."""
    x, s = sim.signal, 1 - sim.detection_p
    ours = nec(x, s, offset=3.25)
    assert not ours.params.flipped
    ref = run_r(rscript, tmp_path, "out <- nec(x, detection.p = p, offset = 3.25)", {"x": x, "p": s})
    assert np.max(np.abs(ours.values - ref)) < TOL
    # The orientation does not change the estimate (limma flips p-values into scores).
    assert np.allclose(nec(x, sim.detection_p, offset=3.25).values, ours.values, rtol=0, atol=1e-12)


def test_refinebio_log2_input_matches_limma(rscript, tmp_path, sim):
    """refine.bio called nec on log2 values (alpha clamps to 10): same equality there."""
    lx = np.log2(sim.signal)
    ours = nec(lx, sim.detection_p, offset=0)
    assert np.allclose(np.exp(ours.params.log_alpha), 10.0)
    ref = run_r(
        rscript, tmp_path, "out <- nec(x, detection.p = p, offset = 0)", {"x": lx, "p": sim.detection_p}
    )
    assert np.max(np.abs(ours.values - ref)) < TOL


def test_negative_control_branch_matches_limma(rscript, tmp_path, sim):
    x = np.vstack([sim.signal, sim.negatives[:200]])
    status = np.array(["regular"] * sim.signal.shape[0] + ["NEGATIVE"] * 200, dtype=object)
    status[:3] = "positive"  # other types are ignored by the fit but corrected too
    ours = nec(x, status=status, offset=10)
    assert ours.params.method == "control"
    ref = run_r(
        rscript,
        tmp_path,
        'out <- nec(x, status = status, negctrl = "negative", offset = 10)',
        {"x": x, "status": status},
    )
    assert np.max(np.abs(ours.values - ref)) < TOL
    fitted = normexp_fit_control(x, status)
    assert np.allclose(fitted.mu, sim.negatives[:200].mean(axis=0), rtol=1e-13)
    assert np.allclose(np.exp(fitted.log_sigma), sim.negatives[:200].std(axis=0, ddof=1), rtol=1e-12)


def test_missing_values_and_far_tail_match_limma(rscript, tmp_path, sim):
    """NaN intensities away from p-value jumps give NaN like R; probes far below the background
    (hundreds of SDs, where normexp.signal cancels badly) still agree within 1e-10."""
    x = sim.signal.copy()
    p = sim.detection_p.copy()
    bright = np.flatnonzero(p[:, 1] == 0)[:3]
    x[bright, 1] = np.nan
    x[:4, 0] = [-2000.0, -5000.0, -10000.0, 10.0]
    p[:4, 0] = 1.0
    ours = nec(x, p)
    ref = run_r(rscript, tmp_path, "out <- nec(x, detection.p = p)", {"x": x, "p": p})
    assert np.array_equal(np.isnan(ours.values), np.isnan(ref))
    assert np.isnan(ours.values[bright, 1]).all()
    ok = ~np.isnan(ref)
    assert np.max(np.abs(ours.values[ok] - ref[ok])) < TOL
    assert (ours.values[ok] > 16).all()


def test_log_upper_normal_matches_r_pnorm(rscript, tmp_path):
    z = np.concatenate(
        [np.linspace(-40, 40, 4001), -np.logspace(-18, 4, 200), np.logspace(-18, 4, 200), [0.0]]
    )
    ref = run_r(rscript, tmp_path, "out <- pnorm(z, lower.tail = FALSE, log.p = TRUE)", {"z": z[:, None]})[
        :, 0
    ]
    ours = log_upper_normal(z)
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(ours), fin)
    assert np.max(np.abs(ours[fin] - ref[fin]) / np.maximum(np.abs(ref[fin]), 1e-300)) < 2e-15


def test_hand_computed_detection_estimate():
    """Tiny case computed by hand from limma's definition."""
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    p = np.array([0.0, 0.0, 0.25, 0.5, 1.0, 1.0])  # scores: already increasing, no flip
    par = normexp_fit_detection_p(y[:, None], p[:, None])
    assert not par.flipped
    # jumps at sorted positions 2, 3, 4: midpoints 2.5, 3.5, 4.5; d = .25, .25, .5 -> freq 1, 1, 2
    mu = (2.5 + 3.5 + 2 * 4.5) / 4
    var = ((2.5 - mu) ** 2 + (3.5 - mu) ** 2 + 2 * (4.5 - mu) ** 2) / 4 * 4 / 3
    assert par.mu[0] == pytest.approx(mu, rel=1e-15)
    assert np.exp(par.log_sigma[0]) == pytest.approx(np.sqrt(var), rel=1e-14)
    assert np.exp(par.log_alpha[0]) == pytest.approx(10.0)  # mean(y) - mu = -0.25 -> clamped


def test_signal_monotone_and_above_offset(sim):
    res = nec(sim.signal, sim.detection_p)
    for j in range(sim.signal.shape[1]):
        o = np.argsort(sim.signal[:, j])
        assert np.all(np.diff(res.values[o, j]) >= -1e-9)
    assert (res.values > 16).all()
    # far above the background, signal -> x - mu - sigma^2/alpha
    par = res.params
    top = np.argmax(sim.signal[:, 0])
    expect = sim.signal[top, 0] - par.mu[0] - par.sigma[0] ** 2 / par.alpha[0] + 16
    assert res.values[top, 0] == pytest.approx(expect, rel=1e-12)


def test_recovers_negative_control_distribution():
    sim = simulate_beadchip(20000, 2, seed=3, n_negatives=2000, p_decimals=None)
    par = normexp_fit_detection_p(sim.signal, sim.detection_p)
    assert np.allclose(par.mu, sim.negatives.mean(axis=0), rtol=0.01)
    assert np.allclose(par.sigma, sim.negatives.std(axis=0), rtol=0.05)


def test_clamp_applies_to_whole_array():
    """If any corrected value of an array is negative (cancellation far below the background),
    limma raises every value of that array to at least 1e-6 and leaves the other arrays alone."""
    from refine_assets.lib.illumina.nec import NormexpParams, log_upper_normal, normexp_signal

    x = np.column_stack([np.concatenate([-np.logspace(3, 9, 200), [1e-7, 5.0]]), np.linspace(0.0, 50.0, 202)])
    par = NormexpParams(mu=np.zeros(2), log_sigma=np.zeros(2), log_alpha=np.zeros(2), method="test")
    sig, clamped = normexp_signal(par, x)
    # the same formula without the clamp
    mu_sf = x - 1.0
    raw = mu_sf + np.exp(-(0.9189385332046727 + 0.5 * mu_sf**2) - log_upper_normal(-mu_sf))
    assert (raw[:, 0] < 0).any() and not (raw[:, 1] < 0).any()
    assert clamped.tolist() == [True, False]
    assert sig[:, 0].min() == 1e-6 and (sig[raw[:, 0] < 0, 0] == 1e-6).all()
    assert np.allclose(sig[:, 0], np.maximum(raw[:, 0], 1e-6), rtol=1e-14, atol=0)
    assert np.allclose(sig[:, 1], raw[:, 1], rtol=1e-14, atol=0)


def test_errors_name_the_array_and_nan_mode_isolates_it(sim):
    x = sim.signal.copy()
    p = sim.detection_p.copy()
    p[5, 2] = np.nan
    with pytest.raises(NecError, match="S3: detection p-values contain missing values"):
        nec(x, p, names=["S1", "S2", "S3", "S4"])
    res = nec(x, p, errors="nan")
    assert res.failed == (2,)
    assert np.isnan(res.values[:, 2]).all()
    full = nec(sim.signal, sim.detection_p)
    assert np.array_equal(res.values[:, [0, 1, 3]], full.values[:, [0, 1, 3]])
    q = sim.detection_p.copy()
    q[:, 1] = 0.5
    with pytest.raises(NecError, match="only 1 distinct detection p-value"):
        nec(x, q)
    with pytest.raises(NecError, match="same dimension"):
        nec(x, p[:-1])
    with pytest.raises(NecError, match="required"):
        nec(x)
    with pytest.raises(NecError, match="Fewer than two negative"):
        nec(x[:3], status=["negative", "regular", "regular"])
    with pytest.raises(NecError, match="No regular probes"):
        nec(x[:3], status=["negative", "negative", "other"])
    with pytest.raises(NecError, match="empty"):
        nec(np.empty((0, 2)), np.empty((0, 2)))


def test_huber_matches_mass_reference():
    """MASS::huber(chem) = (mu 3.2067, s 0.5263) — Venables & Ripley, MASS 4th ed., section 5.5."""
    chem = np.array(
        [2.90, 3.10, 3.40, 3.40, 3.70, 3.70, 2.80, 2.50, 2.40, 2.40, 2.70, 2.20,
         5.28, 3.37, 3.03, 3.03, 28.95, 3.77, 3.40, 2.20, 3.50, 3.60, 3.70, 3.70]
    )  # fmt: skip
    mu, s = huber(chem)
    assert mu == pytest.approx(3.2067, abs=5e-5)
    assert s == pytest.approx(0.5263, abs=5e-5)
    with pytest.raises(NecError, match="MAD is zero"):
        huber(np.ones(5))


def test_robust_control_branch_uses_lognormal_moments(sim):
    x = np.vstack([sim.signal, sim.negatives])
    status = ["regular"] * sim.signal.shape[0] + ["negative"] * sim.negatives.shape[0]
    par = normexp_fit_control(x, status, robust=True)
    assert par.method == "control-robust"
    m, s = huber(np.log(sim.negatives[:, 0]))
    assert par.mu[0] == pytest.approx(np.exp(m + s * s / 2), rel=1e-14)
    assert par.sigma[0] == pytest.approx(np.sqrt(np.exp(s * s) * (np.exp(s * s) - 1)) * np.exp(m), rel=1e-12)
    # log-normal moments of a near-normal negative population approximate its mean and SD
    assert par.mu[0] == pytest.approx(sim.negatives[:, 0].mean(), rel=0.02)


def test_p_values_closer_than_the_presort_buckets_match_limma(rscript, tmp_path, sim):
    """Detection p-values a millionth apart share the radix pre-sort's 16-bit buckets: those arrays
    are ordered by value instead, and the estimate still equals limma's; layout does not matter."""
    x = sim.signal
    p = sim.detection_p * 1e-6 + 0.5  # ~hundreds of distinct values inside a few buckets
    ours = nec(x, p)
    ref = run_r(rscript, tmp_path, "out <- nec(x, detection.p = p)", {"x": x, "p": p})
    assert np.max(np.abs(ours.values - ref)) < TOL
    again = nec(np.asfortranarray(x), np.asfortranarray(p))
    assert np.array_equal(again.values, ours.values) and np.array_equal(again.params.mu, ours.params.mu)
