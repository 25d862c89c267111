"""Shared fixtures.

Real test data lives in ``../shared/data`` beside the repository (never copied into it). Every test
that needs it takes the ``shared_data`` fixture: where the folder is missing the test is skipped with
a clear reason, except under ``CI=true``, where a missing folder is an error.
The location can be overridden with ``REFINE_ASSETS_SHARED_DATA``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the shared real data is expected (``$REFINE_ASSETS_SHARED_DATA`` or ``../shared/data``)."""
    env = os.environ.get("REFINE_ASSETS_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public test data (see its MANIFEST.md)."""
    path = shared_data_dir()
    if not (path / "MANIFEST.md").is_file():
        message = (
            f"shared test data not found at {path} (set REFINE_ASSETS_SHARED_DATA or check out ../shared)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def cassettes(shared_data: Path) -> Path:
    """The folder of recorded real HTTP responses (vcrpy cassettes)."""
    return shared_data / "cassettes"


def _require_tool(name: str) -> str:
    import shutil

    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (scripts/setup.sh installs it from Debian packages)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def rscript() -> str:
    """Path of Rscript, for comparing native methods with the R reference implementations.

    R with limma, preprocessCore and tximport comes from Debian packages (scripts/setup.sh). Skips
    where missing, except under ``CI=true`` where it fails.
    """
    path = _require_tool("Rscript")
    return path


@pytest.fixture(scope="session")
def salmon_bin() -> str:
    """Path of the salmon binary (Debian package ``salmon``)."""
    return _require_tool("salmon")


@pytest.fixture(scope="session")
def demo_data() -> Path:
    """Real demo inputs from Debian packages (``refine_assets.demo.data``), cached across runs.

    Cached in ``$REFINE_ASSETS_TEST_CACHE`` (default ``~/.cache/refine-assets-tests``); needs
    ``apt-get download`` and ``dpkg-deb``: skips where missing, fails under ``CI=true``.
    """
    import shutil

    from refine_assets.demo.data import DemoDataError, fetch_demo_data

    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            message = f"{tool} not available: cannot fetch the Debian demo data"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)
    cache = Path(os.environ.get("REFINE_ASSETS_TEST_CACHE", Path.home() / ".cache" / "refine-assets-tests"))
    try:
        fetch_demo_data(cache / "demo_data")
    except DemoDataError as exc:
        pytest.fail(str(exc))
    return cache / "demo_data"


@pytest.fixture(scope="session")
def offline_world(demo_data: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The offline reference catalogue and Illumina inputs (``refine_assets_tests/offline_fixtures.py``):
    format-faithful Bioconductor/Brainarray packages from real Debian data, a generated Illumina package,
    a synthetic Illumina GEO series and E-GEOD-44719's processed archive. Needs R (the probe packages'
    .rda files are written by R's save())."""
    from refine_assets_tests.offline_fixtures import build_offline_world

    _require_tool("Rscript")
    return build_offline_world(tmp_path_factory.mktemp("offline"), demo_data, shared_data)


@pytest.fixture(scope="session")
def rnaseq_world(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The offline RNA-seq experiment of ``refine_assets/demo/rnaseq.py`` (synthetic ENA study ERP990001,
    real reads packed in real .sra files, an Ensembl-format genome excerpt); needs sra-toolkit."""
    from refine_assets.demo.rnaseq import build_rnaseq_example

    for tool in ("latf-load", "kar", "fastq-dump", "salmon", "rsem-prepare-reference"):
        _require_tool(tool)
    em = shared_data / "rnaseq/E-MTAB-1147"
    return build_rnaseq_example(
        tmp_path_factory.mktemp("rnaseq"),
        shared_data / "rnaseq/salmon_example",
        (em / "ERR127302_1_subset.fastq.gz", em / "ERR127302_2_subset.fastq.gz"),
    )
