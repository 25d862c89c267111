"""The UI in a real browser: headless Chromium drives the Dagster webserver serving our code location.

The browser is Debian's ``chromium`` package (``/usr/bin/chromium``, or ``$REFINE_ASSETS_CHROMIUM``)
driven by Playwright's Python client with ``executable_path``; Playwright's own browser download is
never used. The webserver runs on 127.0.0.1 in its own process group and is stopped with SIGINT
(environment.md A.4), over an instance using ``deploy/dagster.local.yaml`` in which GSE781 was
surveyed and processed (real GEO SOFT, replayed) and E-MTAB-3050 is a known, missing partition.

Pages visited, each asserted on visible text and saved as a PNG in ``<tmp_path>/screenshots``
(also copied to ``$REFINE_ASSETS_TEST_ARTIFACTS/browser`` when that variable is set, e.g. for CI
artifacts): the global asset lineage, the processing group's graph with check status, the
``experiment_survey`` partition GSE781 with its metadata, the ``experiment_processed`` partition
GSE781 with its QC metadata and value-distribution plot, and the asset checks.

Skips where chromium or the ``playwright`` package is missing, except under ``CI=true`` (fails).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from refine_assets_tests.conftest import REPO_ROOT
from refine_assets_tests.fixtures_servers import free_port, wait_for_webserver

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

MATERIALIZE = """
import dagster as dg
from refine_assets.definitions import defs
inst = dg.DagsterInstance.get()
inst.add_dynamic_partitions('experiment', ['GSE781', 'E-MTAB-3050'])
inst.add_dynamic_partitions('organism', ['HOMO_SAPIENS'])
for job, key in (('crosswalk_job', 'HOMO_SAPIENS'), ('experiment_job', 'GSE781')):
    assert defs.resolve_job_def(job).execute_in_process(partition_key=key, instance=inst).success, job
"""


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of the system Chromium (Debian package ``chromium``)."""
    path = os.environ.get("REFINE_ASSETS_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).is_file():
        _unavailable(f"chromium not found at {path} (Debian package chromium; scripts/setup.sh installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright Python package is not installed (dev dependency)")
    return path


def test_ui_in_chromium_shows_graph_and_partition_qc(
    tmp_path: Path, shared_data: Path, chromium: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from refine_assets.lib.survey.geo import family_soft_url

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    env = dict(os.environ)
    env.update(
        {
            "DAGSTER_HOME": str(dagster_home),
            "REFINE_ASSETS_HOME": str(tmp_path / "home"),
            "REFINE_ASSETS_HTTP_MODE": "replay",
            "REFINE_ASSETS_REPLAY_FILES": json.dumps(
                {family_soft_url("GSE781"): str(shared_data / "geo/geoquery/GSE781_family.soft.gz")}
            ),
            "REFINE_ASSETS_REFERENCE_SOURCES": json.dumps(
                {"crosswalks": {"HOMO_SAPIENS": str(shared_data / "annotation/human_gene_ids.tsv.gz")}}
            ),
        }
    )
    for name in ("REFINE_ASSETS_STORAGE_ROOT", "REFINE_ASSETS_WAREHOUSE", "REFINE_ASSETS_REPLAY_CASSETTES"):
        env.pop(name, None)
    subprocess.run(
        [sys.executable, "-c", MATERIALIZE],
        env=env,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )

    shots = tmp_path / "screenshots"
    shots.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "webserver.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster-webserver")),
                *("-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)),
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_webserver(port, proc, log_path)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
                page.set_default_timeout(60_000)

                def visit(path: str) -> None:
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    skip = page.get_by_role("button", name="Skip")  # first-visit community dialog
                    if skip.count():
                        skip.click()

                # 1. global asset lineage: one node per group
                visit("/asset-groups")
                expect(page.get_by_text("Global asset lineage")).to_be_visible()
                for group in ("survey", "processing", "references", "warehouse"):
                    expect(page.get_by_text(group, exact=True).first).to_be_visible()
                page.screenshot(path=shots / "01_global_asset_lineage.png")

                # 2. the processing group's graph: asset nodes with partition and check status
                visit("/locations/refine_assets/asset-groups/processing")
                expect(page.get_by_text("experiment_processed", exact=True).first).to_be_visible()
                expect(page.get_by_text("experiment_tximport", exact=True).first).to_be_visible()
                expect(page.get_by_text("4 / 4 Passed")).to_be_visible()
                expect(page.get_by_text("50% filled").first).to_be_visible()  # 1 of 2 partitions
                page.screenshot(path=shots / "02_processing_graph.png")

                # 3. the experiment_survey partition GSE781: its latest materialization's metadata
                visit("/assets/experiment_survey?view=partitions&partition=GSE781")
                expect(page.get_by_text("Missing (1)")).to_be_visible()  # E-MTAB-3050 not surveyed
                metadata = page.locator("tr", has_text="num_samples").first
                expect(metadata).to_contain_text("34")
                for text in ("source_database", "GEO", "GPL96", "GPL97", "HOMO_SAPIENS"):
                    expect(page.get_by_text(text, exact=True).first).to_be_visible()
                page.screenshot(path=shots / "03_experiment_survey_GSE781.png", full_page=True)

                # 4. the experiment_processed partition GSE781: QC metadata and the value plot
                visit("/assets/experiment_processed?view=partitions&partition=GSE781")
                expect(page.get_by_text("34 of 34 samples processed")).to_be_visible()
                expect(page.get_by_text("all processed")).to_be_visible()
                expect(page.locator("tr", has_text="num_failed").first).to_contain_text("0")
                page.screenshot(path=shots / "04_experiment_processed_GSE781.png", full_page=True)
                page.locator("tr", has_text="value_distribution").get_by_text("[Show Markdown]").click()
                plot = page.get_by_role("img", name="value distribution")
                expect(plot).to_be_visible()
                assert plot.evaluate("img => img.complete && img.naturalWidth") > 100  # the SVG rendered
                page.screenshot(path=shots / "05_value_distribution_GSE781.png")
                page.get_by_role("button", name="Close").click()

                # 5. the asset checks of experiment_processed (QC gates)
                visit("/assets/experiment_processed?view=checks")
                for check in ("samples_processed", "affymetrix_qc", "salmon_mapping_rate", "illumina_qc"):
                    expect(page.get_by_text(check, exact=True).first).to_be_visible()
                page.get_by_text("samples_processed", exact=True).first.click()
                expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
                for key in ("processed", "supported", "fraction", "threshold"):
                    expect(page.get_by_text(key, exact=True).first).to_be_visible()
                page.screenshot(path=shots / "06_experiment_processed_checks.png")
            finally:
                browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    pngs = sorted(shots.glob("*.png"))
    assert len(pngs) == 6
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png.name
    artifacts = os.environ.get("REFINE_ASSETS_TEST_ARTIFACTS")
    if artifacts:
        shutil.copytree(shots, Path(artifacts) / "browser", dirs_exist_ok=True)
