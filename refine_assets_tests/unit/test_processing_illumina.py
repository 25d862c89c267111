"""The Illumina processor inside the processing framework, on generated real-format inputs
(no real Illumina non-normalized file or illumina*.db package ships with the test data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refine_assets.lib.http import ReplayHttpClient
from refine_assets.lib.processing.fetch import ReplayFetcher
from refine_assets.lib.processing.framework import process_samples
from refine_assets.lib.processing.inputs import load_sample_inputs
from refine_assets.lib.processing.registry import ProcessingEnv, build_processors
from refine_assets.lib.processing.vectors import read_vector
from refine_assets.lib.references.provision import ReferenceProvider
from refine_assets.lib.references.sources import ReferenceLocator, ReferenceOverrides
from refine_assets.lib.storage import open_store
from refine_assets.lib.survey.model import Experiment, OriginalFile, Sample, SurveyResult
from refine_assets.lib.survey.pipeline import write_survey
from refine_assets_tests.illumina_generator import (
    build_illumina_db_tarball,
    build_org_db_tarball,
    default_samples,
    make_platform,
    simulate_beadchip,
    write_nonnormalized,
)

URL = "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE9nnn/GSE9001/suppl/GSE9001_non-normalized.txt.gz"


@pytest.fixture
def setup(tmp_path: Path):
    packages = tmp_path / "packages"
    packages.mkdir()
    pl = make_platform(1400, seed=31)
    build_illumina_db_tarball(packages, pl)
    build_org_db_tarball(packages, pl.entrez_to_ensembl())
    gens = default_samples(3)
    sim = simulate_beadchip(1400, 3, seed=32, sequences=pl.sequences)
    data = write_nonnormalized(
        "geo", np.asarray(pl.probe_ids, dtype=object), sim.signal, sim.detection_p, gens
    )
    matrix = tmp_path / "GSE9001_non-normalized.txt"
    matrix.write_bytes(data)
    store = open_store(str(tmp_path / "storage"))
    samples = [
        Sample(
            g.accession,
            "GSE9001",
            "GEO",
            title=g.title,
            organism="HOMO_SAPIENS",
            platform_accession="GPL10558",
            technology="MICROARRAY",
            manufacturer="ILLUMINA",
            has_raw=True,
            pipeline="ILLUMINA_TO_PCL",
        )
        for g in gens
    ]
    result = SurveyResult(
        Experiment("GSE9001", "GEO"),
        samples=samples,
        original_files=[OriginalFile(URL, "GSE9001", None, matrix.name, "NON_NORMALIZED", True)],
    )
    write_survey(result, store)
    return store, packages, matrix, gens


def _run(store, packages, fetch_files, tmp_path):
    samples = load_sample_inputs(store, "GSE9001")
    # no folder: the live catalogue path, replayed with nothing recorded
    locator = ReferenceLocator(ReplayHttpClient(), overrides=ReferenceOverrides(illumina_packages=packages))
    fetcher = ReplayFetcher(fetch_files)
    env = ProcessingEnv(
        store,
        fetcher,
        tmp_path,
        references=ReferenceProvider(store, locator, fetcher.fetch),
        samples=samples,
    )
    return {o.sample_accession: o for o in process_samples(samples, build_processors(env), store)}


def test_illumina_experiment_processed_per_sample(setup, tmp_path: Path) -> None:
    store, packages, matrix, gens = setup
    out = _run(store, str(packages), {URL: str(matrix)}, tmp_path)
    assert {o.status for o in out.values()} == {"succeeded"}
    o = out[gens[0].accession]
    assert o.step == "illumina_scan"
    assert o.metrics["platform_detection"]["detected_platform"] == "illuminaHumanv4"
    assert o.metrics["platform_detection"]["accepted"] is True
    genes, prov = read_vector(store, o.output_key)
    assert len(genes) > 500 and genes.index.str.startswith("ENSG").all()
    assert prov["step"] == "illumina_scan"


def test_missing_packages_or_file_fail_each_sample_with_reason(setup, tmp_path: Path) -> None:
    store, packages, matrix, _gens = setup
    out = _run(store, None, {URL: str(matrix)}, tmp_path)
    # no package folder and a catalogue that cannot be read: the reason names the reference and the URL
    index = "https://bioconductor.org/packages/3.20/data/annotation/src/contrib/PACKAGES"
    assert all(
        o.status == "failed" and "illumina_annotation[illuminaHumanv1]" in o.reason and index in o.reason
        for o in out.values()
    )
    out = _run(store, str(packages), {}, tmp_path)
    assert all(o.status == "failed" and "not available offline" in o.reason for o in out.values())
