"""Native tximport (``lib.rnaseq.tximport``), the quant.sf reader (``lib.rnaseq.quant``) and the CLI.

References: R tximport (``rscript`` fixture; tximport 1.26.1 installed, same numbers as 1.6.0 on
this path) on real SRP095529 zebrafish quant.sf files and on generated edge cases; hand-computed
small examples; refine.bio's eligibility rule (``rna_seq.should_run_tximport``).
"""

from __future__ import annotations

import gzip
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from refine_assets.commands.tximport import register
from refine_assets.lib.rnaseq.quant import (
    QUANT_HEADER,
    QuantFileError,
    QuantIndexMismatchError,
    QuantMatrix,
    read_quant_file,
    read_quant_files,
    resolve_quant_path,
)
from refine_assets.lib.rnaseq.tximport import (
    Tx2GeneError,
    TximportError,
    read_tx2gene,
    tximport,
    tximport_eligible,
    tximport_files,
    write_gene_table,
)

RUNS = [f"SRR51256{n}" for n in range(21, 41)]
R_RUNS = RUNS[:4]
RTOL = 1e-9


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def srp(shared_data: Path) -> Path:
    return shared_data / "rnaseq" / "SRP095529"


@pytest.fixture(scope="session")
def zebrafish_tx2gene(shared_data: Path) -> Path:
    return shared_data / "rnaseq" / "ZEBRAFISH_INDEX_SHORT" / "genes_to_transcripts.txt.gz"


def write_quant(path: Path, names, efflen, tpm, reads, length=None, gz: bool = False) -> Path:
    """Write a salmon-style quant.sf (floats in repr form, so every reader sees the same doubles)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if length is None:
        length = [max(1, round(e)) for e in efflen]
    lines = [QUANT_HEADER] + [
        f"{n}\t{int(ln)}\t{float(e)!r}\t{float(t)!r}\t{float(r)!r}"
        for n, ln, e, t, r in zip(names, length, efflen, tpm, reads, strict=True)
    ]
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def quant_text(srp: Path, run: str) -> str:
    return gzip.decompress((srp / run / "quant.sf.gz").read_bytes()).decode()


def assert_frame_close(ours: pd.DataFrame, ref: pd.DataFrame, rtol: float = RTOL) -> None:
    assert list(ours.index) == list(ref.index)
    assert list(ours.columns) == list(ref.columns)
    a, b = ours.to_numpy(), ref.to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, atol=0)


# --------------------------------------------------------------------------------------------- hand-computed


def example_two_genes() -> tuple[QuantMatrix, dict[str, str]]:
    """2 genes / 3 transcripts (+ t4 absent from tx2gene), 2 samples."""
    quant = QuantMatrix.from_arrays(
        samples=["s1", "s2"],
        transcripts=["t1", "t2", "t3", "t4"],
        effective_length=[[100, 110], [200, 190], [50, 60], [10, 10]],
        tpm=[[10, 40], [30, 10], [60, 50], [5, 0]],
        num_reads=[[4, 20], [24, 8], [12, 15], [1, 0]],
    )
    return quant, {"t1": "g1", "t2": "g1", "t3": "g2"}


def test_hand_computed_two_genes_three_transcripts() -> None:
    quant, t2g = example_two_genes()
    no = tximport(quant, t2g, "no", max_missing_fraction=None)
    assert no.missing_transcripts == 1 and no.missing_transcript_examples == ("t4",)
    assert list(no.counts.index) == ["g1", "g2"] and no.samples == ("s1", "s2")
    # abundance = Σ TPM; counts = Σ NumReads over retained transcripts (t4 dropped)
    np.testing.assert_array_equal(no.abundance.to_numpy(), [[40, 50], [60, 50]])
    np.testing.assert_array_equal(no.counts.to_numpy(), [[28, 28], [12, 15]])
    # length = Σ TPM·EffLen / Σ TPM: g1 s1 (10·100 + 30·200)/40 = 175, s2 (40·110 + 10·190)/50 = 126
    np.testing.assert_allclose(no.length.to_numpy(), [[175, 126], [50, 60]], rtol=1e-15)

    scaled = tximport(quant, t2g, "scaledTPM", max_missing_fraction=None)
    # abundance rescaled to the sample's read total: s1 40·(40, 60)/100, s2 43·(50, 50)/100
    np.testing.assert_allclose(scaled.counts.to_numpy(), [[16, 21.5], [24, 21.5]], rtol=1e-15)

    lstpm = tximport(quant, t2g, "lengthScaledTPM", max_missing_fraction=None)
    # mean length over samples: g1 (175 + 126)/2 = 150.5, g2 (50 + 60)/2 = 55
    # s1: N = (40·150.5, 60·55) = (6020, 3300), Σ 9320, reads 40; s2: (7525, 2750), Σ 10275, reads 43
    expected = [[6020 * 40 / 9320, 7525 * 43 / 10275], [3300 * 40 / 9320, 2750 * 43 / 10275]]
    np.testing.assert_allclose(lstpm.counts.to_numpy(), expected, rtol=1e-15)
    np.testing.assert_allclose(lstpm.counts.sum().to_numpy(), [40, 43], rtol=1e-15)
    # the same length and abundance in every mode
    assert lstpm.length.equals(no.length) and lstpm.abundance.equals(no.abundance)


def test_hand_computed_missing_length_repair() -> None:
    """replaceMissingLength: geometric mean for a partly-zero gene, simple average for an all-zero gene."""
    quant = QuantMatrix.from_arrays(
        samples=["a", "b", "c"],
        transcripts=["t1", "t2", "t3", "t4", "t5"],
        effective_length=[
            [100, 100, 100],
            [300, 900, 500],
            [40, 50, 60],
            [100, 100, 130],
            [1000, 1100, 1200],
        ],
        tpm=[[10, 30, 0], [10, 10, 0], [0, 0, 0], [0, 0, 0], [80, 60, 100]],
        num_reads=[[5, 15, 0], [15, 45, 0], [0, 0, 0], [0, 0, 0], [400, 330, 600]],
    )
    t2g = pd.DataFrame({"tx": ["t1", "t2", "t3", "t4", "t5"], "gene": ["g1", "g1", "g2", "g2", "g3"]})
    res = tximport(quant, t2g, "lengthScaledTPM")
    # g1: a (10·100 + 10·300)/20 = 200, b (30·100 + 10·900)/40 = 300, c NaN → √(200·300)
    # g2: NaN everywhere → mean over t3, t4 of their mean EffLen over samples = (50 + 110)/2 = 80
    g1c = math.sqrt(200 * 300)
    expected_len = [[200, 300, g1c], [80, 80, 80], [1000, 1100, 1200]]
    np.testing.assert_allclose(res.length.to_numpy(), expected_len, rtol=1e-15)
    assert res.imputed_lengths == 1 + 3
    mean_len = np.array([(200 + 300 + g1c) / 3, 80, 1100])
    abundance = np.array([[20, 40, 0], [0, 0, 0], [80, 60, 100]], dtype=float)
    reads = np.array([20 + 400, 60 + 330, 600])
    new = abundance * mean_len[:, None]
    np.testing.assert_allclose(res.counts.to_numpy(), new * reads / new.sum(axis=0), rtol=1e-14)


def test_all_zero_sample_gives_nan_column_like_r() -> None:
    quant = QuantMatrix.from_arrays(
        samples=["ok", "empty"],
        transcripts=["t1", "t2"],
        effective_length=[[100, 100], [200, 200]],
        tpm=[[5, 0], [5, 0]],
        num_reads=[[1, 0], [3, 0]],
    )
    res = tximport(quant, {"t1": "g1", "t2": "g2"}, "lengthScaledTPM")
    assert res.zero_abundance_samples == ("empty",)
    assert np.isnan(res.counts["empty"]).all() and not np.isnan(res.counts["ok"]).any()
    assert (tximport(quant, {"t1": "g1", "t2": "g2"}, "no").counts["empty"] == 0).all()


# --------------------------------------------------------------------------------------------- R reference

R_SCRIPT = r"""
suppressPackageStartupMessages(library(tximport))
jobs <- read.delim(commandArgs(TRUE)[1], stringsAsFactors = FALSE, colClasses = "character")
for (i in seq_len(nrow(jobs))) {
  files <- strsplit(jobs$files[i], ",", fixed = TRUE)[[1]]
  names(files) <- strsplit(jobs$names[i], ",", fixed = TRUE)[[1]]
  t2g <- read.delim(jobs$tx2gene[i], header = FALSE, colClasses = "character")
  msgs <- character()
  txi <- withCallingHandlers(
    tximport(files, type = "salmon", tx2gene = t2g, countsFromAbundance = jobs$mode[i]),
    message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") })
  for (what in c("abundance", "counts", "length")) {
    m <- txi[[what]]
    out <- data.frame(Gene = rownames(m), matrix(sprintf("%.17g", m), nrow = nrow(m)))
    colnames(out) <- c("Gene", colnames(m))
    write.table(out, paste0(jobs$out[i], ".", what, ".tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
  }
  writeLines(msgs, paste0(jobs$out[i], ".messages.txt"))
}
"""


def run_r_tximport(rscript: str, workdir: Path, jobs: dict[str, dict]) -> dict[str, dict]:
    """Run R tximport(type="salmon") for each job {files, names, tx2gene (tx, gene; no header), mode}."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "run.R").write_text(R_SCRIPT)
    rows = [
        {
            "job": name,
            "files": ",".join(str(f) for f in job["files"]),
            "names": ",".join(job["names"]),
            "tx2gene": str(job["tx2gene"]),
            "mode": job["mode"],
            "out": str(workdir / name),
        }
        for name, job in jobs.items()
    ]
    pd.DataFrame(rows).to_csv(workdir / "jobs.tsv", sep="\t", index=False)
    proc = subprocess.run(
        [rscript, str(workdir / "run.R"), str(workdir / "jobs.tsv")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for name in jobs:
        res = {
            w: pd.read_csv(workdir / f"{name}.{w}.tsv", sep="\t", index_col=0)
            for w in ("abundance", "counts", "length")
        }
        for frame in res.values():
            frame.index = frame.index.astype(str)
            frame.index.name = "Gene"
        msgs = (workdir / f"{name}.messages.txt").read_text()
        missing = [int(line.split(":")[1]) for line in msgs.splitlines() if "missing from tx2gene" in line]
        res["missing"] = missing[0] if missing else 0
        out[name] = res
    return out


def synthetic_experiment(root: Path, rng: np.random.Generator, n_samples: int = 5) -> tuple[list[Path], Path]:
    """Generated quant files with genes that are zero in some / all samples, and a zero sample."""
    n_genes = 60
    genes = [f"G{g:03d}" for g in range(n_genes)]
    per_gene = rng.integers(1, 5, n_genes)
    tx_gene = [(f"T{g:03d}_{k}", genes[g]) for g in range(n_genes) for k in range(per_gene[g])]
    names = [t for t, _ in tx_gene] + ["UNMAPPED_1", "UNMAPPED_2"]
    gene_of = np.array([g for _, g in tx_gene] + ["-", "-"])
    n_tx = len(names)
    length = rng.integers(200, 5000, n_tx)
    files = []
    for s in range(n_samples):
        eff = np.maximum(1.0, length - rng.uniform(50, 250, n_tx))
        tpm = rng.lognormal(2, 2, n_tx) * (rng.random(n_tx) > 0.3)
        tpm[np.isin(gene_of, genes[:5])] = 0  # genes 0-4: zero in every sample → all-NaN length rows
        if s % 2 == 0:
            tpm[np.isin(gene_of, genes[5:15])] = 0  # genes 5-14: zero in some samples → geometric mean
        if s == n_samples - 1:
            tpm[:] = 0  # a sample with nothing quantified → NaN column in the scaled modes
        tpm = tpm / tpm.sum() * 1e6 if tpm.sum() else tpm
        reads = tpm * eff / 1e3 * rng.uniform(0.5, 2)
        files.append(write_quant(root / f"S{s}" / "quant.sf", names, eff, tpm, reads, length=length))
    t2g = root / "tx2gene.tsv"
    t2g.write_text("".join(f"{t}\t{g}\n" for t, g in tx_gene))
    return files, t2g


@pytest.fixture(scope="session")
def r_reference(rscript: str, srp: Path, zebrafish_tx2gene: Path, tmp_path_factory: pytest.TempPathFactory):
    """R tximport outputs for the real 4-run subset (3 modes + a 5%-missing tx2gene) and synthetic edge cases."""
    work = tmp_path_factory.mktemp("tximport_r")
    full = read_tx2gene(zebrafish_tx2gene)
    tx_gene = work / "tx2gene_tx_gene.tsv"
    full[["tx", "gene"]].to_csv(tx_gene, sep="\t", header=False, index=False)
    quant_tx = read_quant_file(srp / R_RUNS[0]).transcripts
    drop = set(np.random.default_rng(7).choice(quant_tx, size=len(quant_tx) // 20, replace=False))
    partial = work / "tx2gene_partial.tsv"
    full[~full["tx"].isin(drop)].to_csv(partial, sep="\t", header=False, index=False)
    syn_files, syn_t2g = synthetic_experiment(work / "synthetic", np.random.default_rng(42))
    real_files = [srp / r / "quant.sf.gz" for r in R_RUNS]
    jobs = {
        f"real_{m}": {"files": real_files, "names": R_RUNS, "tx2gene": tx_gene, "mode": m}
        for m in ("no", "scaledTPM", "lengthScaledTPM")
    }
    jobs["real_partial"] = {
        "files": real_files,
        "names": R_RUNS,
        "tx2gene": partial,
        "mode": "lengthScaledTPM",
    }
    syn_names = [f.parent.name for f in syn_files]
    for m in ("no", "scaledTPM", "lengthScaledTPM"):
        jobs[f"syn_{m}"] = {"files": syn_files, "names": syn_names, "tx2gene": syn_t2g, "mode": m}
    ref = run_r_tximport(rscript, work / "out", jobs)
    return {"ref": ref, "partial": partial, "synthetic": (syn_files, syn_t2g), "dropped": len(drop)}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["no", "scaledTPM", "lengthScaledTPM"])
def test_real_srp095529_matches_r_tximport(
    mode: str, r_reference, srp: Path, zebrafish_tx2gene: Path
) -> None:
    ref = r_reference["ref"][f"real_{mode}"]
    ours = tximport_files([srp / r for r in R_RUNS], zebrafish_tx2gene, mode)
    assert ours.missing_transcripts == ref["missing"] == 0
    assert ours.n_genes == 31_882
    for what in ("abundance", "counts", "length"):
        assert_frame_close(getattr(ours, what), ref[what])
    if mode == "lengthScaledTPM":  # the real data exercise the geometric-mean length repair
        assert ours.imputed_lengths > 1000


@pytest.mark.slow
def test_real_with_missing_transcripts_matches_r(r_reference, srp: Path) -> None:
    ref = r_reference["ref"]["real_partial"]
    ours = tximport(read_quant_files([srp / r for r in R_RUNS]), r_reference["partial"], "lengthScaledTPM")
    assert ours.missing_transcripts == ref["missing"] == r_reference["dropped"] > 0
    for what in ("abundance", "counts", "length"):
        assert_frame_close(getattr(ours, what), ref[what])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["no", "scaledTPM", "lengthScaledTPM"])
def test_synthetic_edge_cases_match_r(mode: str, r_reference) -> None:
    files, t2g = r_reference["synthetic"]
    ref = r_reference["ref"][f"syn_{mode}"]
    ours = tximport_files(files, t2g, mode)
    assert ours.missing_transcripts == ref["missing"] == 2
    assert ours.zero_abundance_samples == ("S4",)
    for what in ("abundance", "counts", "length"):
        assert_frame_close(getattr(ours, what), ref[what])
    if mode != "no":
        assert ours.counts["S4"].isna().all()


# --------------------------------------------------------------------------------------------- invariants (real)


def test_real_invariants_all_20_runs(srp: Path, zebrafish_tx2gene: Path) -> None:
    paths = [srp / r for r in RUNS]
    quant = read_quant_files(paths)
    assert quant.samples == tuple(RUNS) and quant.n_transcripts == 59_071
    lst = tximport(quant, zebrafish_tx2gene)
    no = tximport(quant, zebrafish_tx2gene, "no")
    assert lst.missing_transcripts == 0 and lst.n_genes == 31_882
    # column sums equal the sample's NumReads total over retained transcripts
    np.testing.assert_allclose(lst.counts.sum().to_numpy(), quant.num_reads.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(no.counts.sum().to_numpy(), quant.num_reads.sum(axis=0), rtol=1e-12)
    # streaming and in-memory paths give identical numbers
    streamed = tximport_files(paths, zebrafish_tx2gene)
    pd.testing.assert_frame_equal(streamed.counts, lst.counts)
    # permuting samples permutes columns only
    perm = RUNS[::-1]
    permuted = tximport_files([srp / r for r in perm], zebrafish_tx2gene)
    pd.testing.assert_frame_equal(permuted.counts[RUNS], lst.counts, rtol=1e-13)
    # adding samples changes a sample's values only through the mean length: with 2 samples the
    # ratio counts/abundance differs, but abundance and per-sample lengths stay the same
    two = tximport_files(paths[:2], zebrafish_tx2gene)
    pd.testing.assert_frame_equal(two.abundance, lst.abundance[RUNS[:2]])
    assert not np.allclose(two.counts.to_numpy(), lst.counts[RUNS[:2]].to_numpy())
    assert (lst.counts.index == np.sort(lst.counts.index.to_numpy())).all()


def test_reordered_transcripts_are_realigned(srp: Path, tmp_path: Path, zebrafish_tx2gene: Path) -> None:
    lines = quant_text(srp, RUNS[1]).splitlines()
    body = lines[1:]
    np.random.default_rng(0).shuffle(body)
    shuffled = tmp_path / RUNS[1] / "quant.sf"
    shuffled.parent.mkdir()
    shuffled.write_text("\n".join([lines[0], *body]) + "\n")
    a = tximport_files([srp / RUNS[0], shuffled], zebrafish_tx2gene)
    b = tximport_files([srp / RUNS[0], srp / RUNS[1]], zebrafish_tx2gene)
    pd.testing.assert_frame_equal(a.counts, b.counts, rtol=1e-14)


# --------------------------------------------------------------------------------------------- bad inputs


def test_truncated_gzip_fails_naming_file(srp: Path, tmp_path: Path) -> None:
    raw = (srp / RUNS[0] / "quant.sf.gz").read_bytes()
    bad = tmp_path / RUNS[0] / "quant.sf.gz"
    bad.parent.mkdir()
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(QuantFileError, match=r"quant\.sf\.gz: truncated or corrupt gzip"):
        read_quant_file(bad)


def test_truncated_mid_line_fails(srp: Path, tmp_path: Path) -> None:
    text = quant_text(srp, RUNS[0])
    cut = text[: len(text) // 2]
    assert not cut.endswith("\n")
    bad = write_text(tmp_path / "a" / "quant.sf", cut)
    with pytest.raises(QuantFileError, match=r"quant\.sf: truncated: the last line"):
        read_quant_file(bad)


def test_truncated_at_line_boundary_fails_when_aligned(
    srp: Path, tmp_path: Path, zebrafish_tx2gene: Path
) -> None:
    lines = quant_text(srp, RUNS[1]).splitlines(keepends=True)
    bad = write_text(tmp_path / RUNS[1] / "quant.sf", "".join(lines[: len(lines) // 3]))
    with pytest.raises(
        QuantIndexMismatchError, match=rf"{RUNS[1]}.*different salmon index.*only in {RUNS[0]}"
    ):
        tximport_files([srp / RUNS[0], bad], zebrafish_tx2gene)


def test_different_transcript_lengths_are_different_indices(srp: Path, tmp_path: Path) -> None:
    lines = quant_text(srp, RUNS[1]).splitlines()
    name, length, *rest = lines[5].split("\t")
    lines[5] = "\t".join([name, str(int(length) + 1), *rest])
    bad = write_text(tmp_path / RUNS[1] / "quant.sf", "\n".join(lines) + "\n")
    with pytest.raises(QuantIndexMismatchError, match=rf"different lengths \(e\.g\. {name}"):
        read_quant_files([srp / RUNS[0], bad])


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", r"header but no transcripts"),
        ("t1\t100\t80.5\t1.0\n", r"line 2: missing fields"),
        ("t1\t100\t80.5\t1.0\t2.0\nt2\t100\t80.5\tabc\t2.0\n", r"garbled quant\.sf"),
        ("t1\t100\t80.5\t1.0\t2.0\t9\n", r"garbled quant\.sf"),
        ("t1\t100\t80.5\t1.0\t2.0\n\nt2\t1\t1\t1\t1\n", r"line 3: missing fields"),
        ("t1\t100\t80.5\tnan\t2.0\n", r"line 2: TPM is nan"),
        ("t1\t100\t80.5\t1.0\t2.0\nt2\t100\t80.5\t1.0\t-2.0\n", r"line 3: NumReads is -2\.0"),
        (
            "t1\t100\t80.5\t1.0\t2.0\nt1\t100\t80.5\t1.0\t2.0\n",
            r"duplicated transcript ids \(e\.g\. \['t1'\]\)",
        ),
        ("t1\t100.5\t80.5\t1.0\t2.0\n", r"garbled quant\.sf"),
    ],
)
def test_garbled_quant_sf_fails_clearly(tmp_path: Path, body: str, message: str) -> None:
    path = write_text(tmp_path / "x" / "quant.sf", QUANT_HEADER + "\n" + body)
    with pytest.raises(QuantFileError, match=message) as info:
        read_quant_file(path)
    assert str(path) in str(info.value)


def test_wrong_header_fails(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "k" / "abundance.tsv", "target_id\tlength\teff_length\test_counts\ttpm\nt1\t1\t1\t1\t1\n"
    )
    with pytest.raises(QuantFileError, match=r"abundance\.tsv: not a salmon quant\.sf: header is 'target_id"):
        read_quant_file(path)


def test_sample_names_and_directories(tmp_path: Path) -> None:
    q = write_quant(tmp_path / "SRR1" / "quant.sf.gz", ["t1"], [10.0], [1.0], [1.0], gz=True)
    assert resolve_quant_path(tmp_path / "SRR1") == ("SRR1", q)
    assert resolve_quant_path(q) == ("SRR1", q)
    other = write_quant(tmp_path / "SRR2.sf.gz", ["t1"], [10.0], [1.0], [1.0], gz=True)
    assert resolve_quant_path(other)[0] == "SRR2"
    write_quant(tmp_path / "SRR1" / "quant.sf", ["t1"], [10.0], [1.0], [1.0])
    with pytest.raises(QuantFileError, match=r"both quant\.sf and quant\.sf\.gz"):
        resolve_quant_path(tmp_path / "SRR1")
    with pytest.raises(QuantFileError, match=r"no quant\.sf or quant\.sf\.gz"):
        resolve_quant_path(write_text(tmp_path / "empty" / "x.txt", "").parent)
    with pytest.raises(QuantFileError, match="same sample name 'SRR1'"):
        read_quant_files([tmp_path / "SRR1" / "quant.sf", tmp_path / "SRR1" / "quant.sf.gz"])


# --------------------------------------------------------------------------------------------- tx2gene


@pytest.mark.parametrize(
    ("header", "order"), [(False, "gene_tx"), (False, "tx_gene"), (True, "gene_tx"), (True, "tx_gene")]
)
def test_tx2gene_any_order_with_or_without_header(tmp_path: Path, header: bool, order: str) -> None:
    tx = [f"ENSDART{i:011d}" for i in range(40)]
    gene = [f"ENSDARG{i // 3:011d}" for i in range(40)]
    cols = (gene, tx) if order == "gene_tx" else (tx, gene)
    names = ("gene_id", "transcript_id") if order == "gene_tx" else ("TXNAME", "GENEID")
    text = ("\t".join(names) + "\n" if header else "") + "".join(
        f"{a}\t{b}\n" for a, b in zip(*cols, strict=True)
    )
    path = tmp_path / "t2g.tsv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    for transcripts in (None, tx[:10]):
        df = read_tx2gene(path, transcripts)
        assert df["tx"].tolist() == tx and df["gene"].tolist() == gene
        assert df.attrs["tx2gene"]["header"] is header
        assert df.attrs["tx2gene"]["transcript_column"] == (2 if order == "gene_tx" else 1)


def test_tx2gene_detection_without_ensembl_ids(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.tsv", "geneA\ttx1\ngeneA\ttx2\ngeneB\ttx3\n")
    df = read_tx2gene(path)  # more distinct values in column 2 → transcripts
    assert df.attrs["tx2gene"]["detected_by"] == "distinct counts" and df["tx"].tolist() == [
        "tx1",
        "tx2",
        "tx3",
    ]
    # by overlap with the quantified ids even when distinct counts would say otherwise
    path2 = write_text(tmp_path / "u.tsv", "a\tx\nb\tx\n")
    assert read_tx2gene(path2, ["x"])["tx"].tolist() == ["x", "x"]
    ambiguous = write_text(tmp_path / "v.tsv", "a\tb\nc\td\n")
    with pytest.raises(Tx2GeneError, match="cannot tell which tx2gene column"):
        read_tx2gene(ambiguous)
    with pytest.raises(Tx2GeneError, match="none of the 1 quantified transcripts"):
        read_tx2gene(ambiguous, ["zzz"])
    with pytest.raises(Tx2GeneError, match="exactly 2 tab-separated columns"):
        read_tx2gene(write_text(tmp_path / "w.tsv", "a\tb\tc\n"))


def test_tx2gene_duplicates_keep_first_like_r() -> None:
    quant, _ = example_two_genes()
    t2g = pd.DataFrame({"tx": ["t1", "t2", "t3", "t4", "t1"], "gene": ["g1", "g1", "g2", "g2", "g2"]})
    res = tximport(quant, t2g, "no")
    assert res.duplicated_tx2gene_rows == 1 and res.missing_transcripts == 0
    np.testing.assert_array_equal(res.counts.to_numpy(), [[28, 28], [13, 15]])


def test_tx2gene_missing_most_transcripts_fails(srp: Path, zebrafish_tx2gene: Path, tmp_path: Path) -> None:
    full = read_tx2gene(zebrafish_tx2gene)
    small = tmp_path / "t2g_small.tsv"
    full.iloc[:10_000][["gene", "tx"]].to_csv(small, sep="\t", header=False, index=False)
    with pytest.raises(
        TximportError, match=r"of 59071 quantified transcripts \(\d+\.\d%\) are missing from tx2gene"
    ):
        tximport_files([srp / RUNS[0]], small)
    # tximport's own behaviour (only all-missing fails) is available explicitly
    res = tximport_files([srp / RUNS[0]], small, max_missing_fraction=None)
    assert res.missing_transcripts > 40_000


def test_mixed_index_ids_are_refused() -> None:
    quant, t2g = example_two_genes()
    with pytest.raises(TximportError, match="2 different salmon indices"):
        tximport(quant, t2g, index_ids=["DANIO_RERIO_LONG", "DANIO_RERIO_SHORT"])
    assert tximport(quant, t2g, index_ids=["X", "X"], max_missing_fraction=None).index_ids == ("X", "X")


# --------------------------------------------------------------------------------------------- eligibility


@pytest.mark.parametrize(
    ("total", "quantified", "run", "early"),
    [
        (10, 10, True, False),  # complete, any size
        (1, 1, True, False),
        (10, 9, False, False),  # small experiments wait for 100%
        (25, 20, True, True),  # 80% of 25 runs: early run
        (25, 19, False, False),
        (24, 23, False, False),  # < 25 runs: must be complete
        (192, 150, False, False),  # refine.bio #1732: 78% stays waiting
        (30, 24, True, True),
        (0, 0, False, False),
        (5, 0, False, False),
    ],
)
def test_eligibility_rule(total: int, quantified: int, run: bool, early: bool) -> None:
    decision = tximport_eligible(total, quantified)
    assert bool(decision) is run and decision.early is early and decision.reason


def test_eligibility_without_early_runs_and_bad_counts() -> None:
    assert not tximport_eligible(100, 99, allow_early=False)
    assert tximport_eligible(100, 100, allow_early=False)
    with pytest.raises(ValueError, match="only 3 eligible runs"):
        tximport_eligible(3, 4)


# --------------------------------------------------------------------------------------------- CLI


def cli_app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command so typer keeps sub-command names
        """Nothing."""

    return app


def test_cli_writes_gene_table(srp: Path, zebrafish_tx2gene: Path, tmp_path: Path) -> None:
    out = tmp_path / "res" / "gene_lengthScaledTPM.tsv"
    dirs = [str(srp / r) for r in RUNS[:3]]
    res = CliRunner().invoke(
        cli_app(), ["tximport", "--quant", *dirs, "--tx2gene", str(zebrafish_tx2gene), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["samples"] == RUNS[:3] and summary["missing_transcripts"] == 0
    assert summary["counts_from_abundance"] == "lengthScaledTPM"
    header = out.read_text().split("\n", 1)[0]
    assert header == "Gene\t" + "\t".join(RUNS[:3])
    table = pd.read_csv(out, sep="\t", index_col=0)
    ref = tximport_files(dirs, zebrafish_tx2gene).counts
    assert table.index.is_monotonic_increasing
    np.testing.assert_array_equal(table.to_numpy(), ref.to_numpy())  # full precision round trip
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_cli_repeated_quant_and_modes(srp: Path, zebrafish_tx2gene: Path, tmp_path: Path) -> None:
    out = tmp_path / "no.tsv"
    args = ["tximport", "--quant", str(srp / RUNS[0] / "quant.sf.gz"), "--quant", str(srp / RUNS[1])]
    res = CliRunner().invoke(
        cli_app(),
        [*args, "--tx2gene", str(zebrafish_tx2gene), "--counts-from-abundance", "no", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, sep="\t", index_col=0)
    assert list(table.columns) == RUNS[:2]
    quant = read_quant_files([srp / r for r in RUNS[:2]])
    np.testing.assert_allclose(table.sum().to_numpy(), quant.num_reads.sum(axis=0), rtol=1e-12)
    mixed = CliRunner().invoke(
        cli_app(), [*args, str(srp / RUNS[2]), "--tx2gene", str(zebrafish_tx2gene), "-o", str(out)]
    )
    assert mixed.exit_code != 0 and "not both" in mixed.output


def test_cli_bad_inputs_fail_without_output(srp: Path, zebrafish_tx2gene: Path, tmp_path: Path) -> None:
    raw = (srp / RUNS[1] / "quant.sf.gz").read_bytes()
    bad = tmp_path / "in" / RUNS[1] / "quant.sf.gz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(raw[:-100])
    out = tmp_path / "out" / "x.tsv"
    res = CliRunner().invoke(
        cli_app(),
        [
            "tximport",
            "--quant",
            str(srp / RUNS[0]),
            str(bad.parent),
            "--tx2gene",
            str(zebrafish_tx2gene),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 1
    assert str(bad) in res.output and "truncated or corrupt gzip" in res.output
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_cli_refuses_runs_from_different_salmon_versions(tmp_path: Path) -> None:
    for run, version in (("A", "0.13.1"), ("B", "0.9.1")):
        write_quant(tmp_path / run / "quant.sf", ["t1", "t2"], [10.0, 20.0], [1.0, 2.0], [3.0, 4.0])
        (tmp_path / run / "aux_info").mkdir()
        (tmp_path / run / "aux_info" / "meta_info.json").write_text(
            json.dumps({"salmon_version": version, "index_seq_hash": "abc", "index_name_hash": "def"})
        )
    t2g = write_text(tmp_path / "t2g.tsv", "t1\tg1\nt2\tg1\n")
    res = CliRunner().invoke(
        cli_app(),
        [
            "tximport",
            "--quant",
            str(tmp_path / "A"),
            str(tmp_path / "B"),
            "--tx2gene",
            str(t2g),
            "-o",
            str(tmp_path / "o.tsv"),
        ],
    )
    assert res.exit_code == 1 and "different salmon indices" in res.output
    assert not (tmp_path / "o.tsv").exists()


def test_write_gene_table_exact_and_atomic(tmp_path: Path) -> None:
    values = pd.DataFrame(
        {"s1": [1 / 3, 5e-324, np.nan], "s2": [1e300, 0.0, 49.380595474530061]},
        index=pd.Index(["g1", "g2", "g3"], name="Gene"),
    )
    out = write_gene_table(values, tmp_path / "sub" / "t.tsv")
    text = out.read_text()
    assert text.splitlines()[0] == "Gene\ts1\ts2" and "\tNaN\t" in text
    back = pd.read_csv(out, sep="\t", index_col=0)
    np.testing.assert_array_equal(back.to_numpy(), values.to_numpy())
    with pytest.raises(ValueError, match="named 'Gene'"):
        write_gene_table(values.rename(columns={"s1": "Gene"}), tmp_path / "bad.tsv")
    assert (
        sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["t.tsv"]
        and not (tmp_path / "bad.tsv").exists()
    )


def test_quant_matrix_from_arrays_validates() -> None:
    with pytest.raises(ValueError, match="tpm must be finite and >= 0"):
        QuantMatrix.from_arrays(["a"], ["t1"], [[10.0]], [[-1.0]], [[1.0]])
    with pytest.raises(ValueError, match="not unique"):
        QuantMatrix.from_arrays(["a", "a"], ["t1"], [[10.0, 10.0]], [[1.0, 1.0]], [[1.0, 1.0]])
