"""Locating references in the public catalogues: Bioconductor PACKAGES, Brainarray's ENSG page, NCBI.

The catalogue documents are written in their published formats (package_writer) or by hand where the
format is the point of the test; everything is served through the replay HTTP client, as live."""

from __future__ import annotations

from pathlib import Path

import pytest

from refine_assets.lib.http import ReplayHttpClient
from refine_assets.lib.references.bioconductor import (
    BioconductorIndex,
    BioconductorIndexError,
    annotation_index_url,
    parse_packages_index,
)
from refine_assets.lib.references.brainarray import chip_key, ensg_index_url, parse_ensg_index
from refine_assets.lib.references.package_writer import brainarray_index_page
from refine_assets.lib.references.sources import (
    GENE2ENSEMBL_URL,
    ReferenceLocator,
    ReferenceOverrides,
    ReferenceUnavailable,
    gene_info_url,
    orgdb_package,
)

REPO = "https://bioconductor.org/packages/3.20/data/annotation/src/contrib"
PACKAGES = """\
Package: hgu95av2probe
Version: 2.18.0
Depends: R (>= 1.6.0), AnnotationDbi (>=
        1.11.9)
License: LGPL
MD5sum: 0123456789abcdef0123456789abcdef
NeedsCompilation: no

Package: hgu95av2.db
Version: 3.13.0
Depends: R (>= 2.7.0), methods, AnnotationDbi (>= 1.63.2), org.Hs.eg.db
License: Artistic-2.0
MD5sum: fedcba9876543210fedcba9876543210
NeedsCompilation: no

Package: illuminaHumanv3.db
Version: 1.26.0
License: Artistic-2.0

Package: org.Hs.eg.db
Version: 3.20.0
License: Artistic-2.0

Package: broken
"""


def _client(packages: str | None = PACKAGES, ensg: str | None = None) -> ReplayHttpClient:
    client = ReplayHttpClient()
    if packages is not None:
        client.add_response("GET", annotation_index_url("3.20"), 200, packages)
    if ensg is not None:
        client.add_response("GET", ensg_index_url("22.0.0"), 200, ensg)
    return client


ENSG_PAGE = brainarray_index_page(
    [
        (
            "Hs",
            "HG_U95Av2",
            "/customcdf/22.0.0/ensg.download/hgu95av2hsensgcdf_22.0.0.tar.gz",
            "/customcdf/22.0.0/ensg.download/hgu95av2hsensgprobe_22.0.0.tar.gz",
        ),
        (
            "Hs",
            "HuGene-1_0-st",
            "/customcdf/22.0.0/ensg.download/hugene10sthsensgcdf_22.0.0.tar.gz",
            "/customcdf/22.0.0/ensg.download/hugene10sthsensgprobe_22.0.0.tar.gz",
        ),
    ],
    "22.0.0",
)


def test_packages_index_stanzas_and_continuation_lines() -> None:
    index = parse_packages_index(PACKAGES)
    assert sorted(index) == ["hgu95av2.db", "hgu95av2probe", "illuminaHumanv3.db", "org.Hs.eg.db"]
    assert index["hgu95av2probe"]["Depends"] == "R (>= 1.6.0), AnnotationDbi (>= 1.11.9)"
    entry = BioconductorIndex(_client(), "3.20").find("hgu95av2probe")
    assert entry is not None and entry.url == f"{REPO}/hgu95av2probe_2.18.0.tar.gz"
    assert entry.md5 == "0123456789abcdef0123456789abcdef"
    assert BioconductorIndex(_client(), "3.20").find("mouse4302probe") is None


def test_unreadable_index_names_its_url() -> None:
    with pytest.raises(BioconductorIndexError, match=r"3\.20 annotation index unavailable.*PACKAGES"):
        BioconductorIndex(_client(packages=None), "3.20").find("hgu95av2probe")
    with pytest.raises(BioconductorIndexError, match="no package stanza"):
        BioconductorIndex(_client(packages="<html>maintenance</html>"), "3.20").packages()


def test_ensg_page_parsed_like_refinebio_install_script() -> None:
    base = ensg_index_url("22.0.0")
    found = parse_ensg_index(ENSG_PAGE, base)
    # relative links resolved against the page (xml2::url_absolute), chip names normalized
    assert found == {
        "hgu95av2": "http://brainarray.mbni.med.umich.edu/customcdf/22.0.0/ensg.download/hgu95av2hsensgprobe_22.0.0.tar.gz",
        "hugene10st": "http://brainarray.mbni.med.umich.edu/customcdf/22.0.0/ensg.download/hugene10sthsensgprobe_22.0.0.tar.gz",
    }
    assert chip_key(" HG-U133_Plus_2 ") == "hgu133plus2"
    # the probe link is found by its name even when the cell holds other links first
    row = (
        "<tr>"
        + "<td>x</td>" * 2
        + "<td>Mouse430_2</td>"
        + "<td></td>" * 12
        + (
            '<td><a href="/readme.txt">?</a><a href="/c.tar.gz">C</a>'
            '<a href="http://mbni.org/customcdf/22.0.0/ensg.download/mouse4302mmensgprobe_22.0.0.tar.gz">P</a></td></tr>'
        )
    )
    page = f"<html><table></table><table>{row}</table></html>"
    assert parse_ensg_index(page, base) == {
        "mouse4302": "http://mbni.org/customcdf/22.0.0/ensg.download/mouse4302mmensgprobe_22.0.0.tar.gz"
    }


def test_locator_probes_from_bioconductor_then_brainarray_then_unavailable() -> None:
    loc = ReferenceLocator(_client(ensg=ENSG_PAGE))
    src = loc.locate("probes", "hgu95av2")
    assert (src.origin, src.package, src.version, src.url) == (
        "bioconductor 3.20",
        "hgu95av2probe",
        "2.18.0",
        f"{REPO}/hgu95av2probe_2.18.0.tar.gz",
    )
    gene_st = loc.locate("probes", "hugene10st")  # no hugene10stprobe in Bioconductor
    assert gene_st.origin == "brainarray 22.0.0" and gene_st.package == "hugene10sthsensgprobe"
    assert "PM probes are those of the Brainarray ENSG package" in (gene_st.note or "")
    with pytest.raises(ReferenceUnavailable) as info:
        loc.locate("probes", "mouse4302")
    message = str(info.value)
    assert message.startswith("affy_probe_table[mouse4302]: no probe sequences")
    assert annotation_index_url("3.20") in message and ensg_index_url("22.0.0") in message
    assert info.value.absent


def test_locator_brainarray_absent_versus_unreachable() -> None:
    loc = ReferenceLocator(_client(ensg=ENSG_PAGE))
    assert loc.locate("brainarray", "hgu95av2").package == "hgu95av2hsensgprobe"
    with pytest.raises(ReferenceUnavailable) as absent:
        loc.locate("brainarray", "hgu133a")  # Brainarray platform, but the page lists no package
    assert absent.value.absent and "lists no ENSG package for hgu133a" in str(absent.value)
    with pytest.raises(ReferenceUnavailable) as not_brainarray:
        loc.locate("brainarray", "ath1121501")  # refine.bio uses no Brainarray package for it
    assert not_brainarray.value.absent
    with pytest.raises(ReferenceUnavailable) as unreachable:
        ReferenceLocator(_client()).locate("brainarray", "hgu95av2")  # page not recorded
    assert not unreachable.value.absent and ensg_index_url("22.0.0") in str(unreachable.value)


def test_locator_annotation_illumina_and_crosswalk_sources() -> None:
    loc = ReferenceLocator(_client(ensg=ENSG_PAGE))
    assert loc.locate("annotation", "hgu95av2").url == f"{REPO}/hgu95av2.db_3.13.0.tar.gz"
    ill = loc.locate("illumina", "illuminaHumanv3")
    assert ill.url == f"{REPO}/illuminaHumanv3.db_1.26.0.tar.gz"
    assert ill.inputs["org_package"] == f"{REPO}/org.Hs.eg.db_3.20.0.tar.gz"
    assert ill.inputs["tiebreak"].endswith("/workers/illumina_probe_maps/illuminaHumanv3.tsv")
    with pytest.raises(
        ReferenceUnavailable, match=r"illumina_annotation\[illuminaMousev2\].*no illuminaMousev2.db"
    ):
        loc.locate("illumina", "illuminaMousev2")
    human = loc.locate("crosswalk", "HOMO_SAPIENS")
    assert (human.package, human.tax_id) == ("org.Hs.eg.db", 9606)
    fish = loc.locate("crosswalk", "DANIO_RERIO")  # org.Dr.eg.db not in this release's index: NCBI
    assert fish.url == GENE2ENSEMBL_URL and fish.origin == "ncbi" and fish.tax_id == 7955
    assert fish.inputs["gene_info"] == gene_info_url("DANIO_RERIO")
    assert gene_info_url("DANIO_RERIO").endswith(
        "GENE_INFO/Non-mammalian_vertebrates/Danio_rerio.gene_info.gz"
    )
    assert orgdb_package("MUS_MUSCULUS") == "org.Mm.eg.db" and orgdb_package("ARABIDOPSIS_THALIANA") is None
    with pytest.raises(ReferenceUnavailable, match="unknown organism"):
        loc.locate("crosswalk", "NOT_AN_ORGANISM")


def test_overrides_take_precedence_and_an_illumina_folder_is_authoritative(tmp_path: Path) -> None:
    (tmp_path / "illuminaHumanv4.db_1.26.0.tar.gz").write_bytes(b"x")
    (tmp_path / "org.Hs.eg.db_3.16.0.tar.gz").write_bytes(b"x")
    (tmp_path / "illuminaHumanv4.tsv").write_text("probe_id\tensembl_id\n")
    overrides = ReferenceOverrides(
        probe_tables={"mouse4302": "/data/Mouse430_2_probe_tab"},
        crosswalks={"DANIO_RERIO": "/data/zebrafish.tsv"},
        illumina_packages=str(tmp_path),
    )
    loc = ReferenceLocator(_client(packages=None), overrides=overrides)  # nothing reachable
    assert loc.locate("probes", "mouse4302").origin == "override"
    assert loc.locate("crosswalk", "DANIO_RERIO").url == "/data/zebrafish.tsv"
    v4 = loc.locate("illumina", "illuminaHumanv4")
    assert v4.url.endswith("illuminaHumanv4.db_1.26.0.tar.gz") and set(v4.inputs) == {
        "org_package",
        "tiebreak",
    }
    with pytest.raises(ReferenceUnavailable) as missing:
        loc.locate("illumina", "illuminaHumanv3")  # not in the folder: absent, Bioconductor not consulted
    assert missing.value.absent and str(tmp_path) in str(missing.value)
