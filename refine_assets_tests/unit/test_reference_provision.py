"""Building references from their packages: formats written by R / the package writer and read back,
content versions that ignore compression, idempotent rebuilds, failures that name the URL."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refine_assets.lib.affy.probes import read_probe_package
from refine_assets.lib.http import ReplayHttpClient
from refine_assets.lib.processing.fetch import FetchError, ReplayFetcher
from refine_assets.lib.processing.summary import generic_reason, processing_summary
from refine_assets.lib.references.artifacts import read_record
from refine_assets.lib.references.bioconductor import annotation_index_url
from refine_assets.lib.references.chipdb import read_chipdb_annotation
from refine_assets.lib.references.package_writer import (
    packages_index,
    write_chipdb_package,
    write_probe_package,
    write_tarball,
)
from refine_assets.lib.references.provision import ReferenceProvider, build_reference, table_version
from refine_assets.lib.references.sources import ReferenceLocator, ReferenceSource, ReferenceUnavailable
from refine_assets.lib.storage import open_store
from refine_assets.settings import local_files_in

REPO = "https://bioconductor.org/packages/3.20/data/annotation/src/contrib"


def _probe_frame(shared_data: Path, n: int = 400) -> pd.DataFrame:
    """The first ``n`` real HG-U95Av2 probes in the probe-package columns."""
    df = pd.read_csv(shared_data / "probes/HG-U95Av2_probes.tsv.gz", sep="\t", dtype=str, nrows=n)
    return pd.DataFrame(
        {
            "sequence": df["sequence"],
            "x": df["x"].astype(int),
            "y": df["y"].astype(int),
            "Probe.Set.Name": df["probe_set_id"],
            "Probe.Interrogation.Position": df["probe_interrogation_position"].astype(int),
            "Target.Strandedness": df["target_strandedness"],
        }
    )


def test_probe_package_written_by_r_reads_back_exactly(
    tmp_path: Path, shared_data: Path, rscript: str
) -> None:
    frame = _probe_frame(shared_data)
    pkg = write_probe_package(
        frame, tmp_path, "hgu95av2probe", "1.60.0", title="t", description="d", rscript=rscript
    )
    assert pkg.name == "hgu95av2probe_1.60.0.tar.gz"
    table = read_probe_package(pkg)
    assert table.platform == "hgu95av2probe" and table.version == "1.60.0"
    got = table.frame
    assert got["probeset_id"].tolist() == frame["Probe.Set.Name"].tolist()
    assert got["sequence"].tolist() == frame["sequence"].tolist()
    np.testing.assert_array_equal(got["x"].to_numpy(), frame["x"].to_numpy())
    np.testing.assert_array_equal(got["y"].to_numpy(), frame["y"].to_numpy())
    # byte-reproducible: the same content gives the same tarball (same sha256, same version)
    again = write_probe_package(
        frame, tmp_path / "again", "hgu95av2probe", "1.60.0", title="t", description="d", rscript=rscript
    )
    assert again.read_bytes() == pkg.read_bytes()
    index = packages_index([pkg])
    assert "Package: hgu95av2probe\nVersion: 1.60.0\n" in index and "MD5sum: " in index


def test_chipdb_package_probes_table(tmp_path: Path) -> None:
    pkg = write_chipdb_package(
        [("1000_at", "5595"), ("1001_at", "7075"), ("1001_at", "9999"), ("AFFX-x", None)],
        tmp_path,
        "hgu95av2",
        "1.0",
        organism="Homo sapiens",
        description="test",
    )
    table, desc = read_chipdb_annotation(pkg)
    assert desc["Package"] == "hgu95av2.db"
    assert table.to_pydict() == {
        "ID": ["1000_at", "1001_at", "AFFX-x"],
        "ENTREZ_GENE_ID": ["5595", "7075 /// 9999", None],
    }


def _crosswalk_tsv(path: Path, mtime: int) -> Path:
    text = "entrez_id\tensembl_gene_id\tsymbol\n7157\tENSG00000141510\tTP53\n672\tENSG00000012048\tBRCA1\n"
    path.write_bytes(gzip.compress(text.encode(), mtime=mtime))
    return path


def test_content_version_ignores_compression_and_rebuilds_publish_nothing(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    a = _crosswalk_tsv(tmp_path / "a.tsv.gz", mtime=1)
    b = _crosswalk_tsv(tmp_path / "b.tsv.gz", mtime=2_000_000_000)
    assert a.read_bytes() != b.read_bytes()
    source = ReferenceSource("crosswalk", "HOMO_SAPIENS", str(a), "override", tax_id=9606)
    first = build_reference(store, source, lambda u: Path(u))
    key = "references/crosswalk/HOMO_SAPIENS/record.json"
    before = store.get_bytes(key)
    second = build_reference(store, ReferenceSource("crosswalk", "HOMO_SAPIENS", str(b), "override"), Path)
    assert second["version"] == first["version"]  # same content, other gzip header
    assert store.get_bytes(key) == before  # nothing re-published
    assert first["details"]["pairs"] == {"entrez": 2, "symbol": 2}


def test_table_version_is_the_content() -> None:
    import pyarrow as pa

    t = pa.table({"k": ["a", "b"], "v": [["x"], ["y", "z"]]})
    assert table_version(t) == table_version(pa.table({"k": ["a", "b"], "v": [["x"], ["y", "z"]]}))
    assert table_version(t) != table_version(pa.table({"k": ["a", "b"], "v": [["x"], ["z", "y"]]}))


def test_provider_builds_once_remembers_failures_and_names_urls(
    tmp_path: Path, shared_data: Path, rscript: str
) -> None:
    store = open_store(str(tmp_path / "store"))
    frame = _probe_frame(shared_data)
    pkg = write_probe_package(
        frame,
        tmp_path / "pkgs",
        "hgu95av2probe",
        "1.60.0",
        title="t",
        description="d",
        rscript=rscript,
    )
    client = ReplayHttpClient()
    (tmp_path / "PACKAGES").write_text(packages_index([pkg]))
    client.add_file(annotation_index_url("3.20"), tmp_path / "PACKAGES")
    fetched: list[str] = []
    fetcher = ReplayFetcher({f"{REPO}/{pkg.name}": pkg})

    def fetch(url: str) -> Path:
        fetched.append(url)
        return fetcher.fetch(url)

    provider = ReferenceProvider(store, ReferenceLocator(client), fetch)
    record = provider.get("probes", "hgu95av2")
    assert record["details"] == {
        "probes": 400,
        "probesets": frame["Probe.Set.Name"].nunique(),
        "package": "hgu95av2probe",
        "package_version": "1.60.0",
    }
    assert provider.get("probes", "hgu95av2")["version"] == record["version"] and len(fetched) == 1
    assert [r["name"] for r in provider.built] == ["hgu95av2"]
    assert read_record(store, "probes", "hgu95av2")["source"]["origin"] == "bioconductor 3.20"
    # a package listed in the index whose download is missing: the reason names the tarball URL, once
    (tmp_path / "PACKAGES").write_text(packages_index([pkg]).replace("hgu95av2probe", "hgu133aprobe"))
    other = ReferenceProvider(
        store,
        ReferenceLocator(ReplayHttpClient(files={annotation_index_url("3.20"): tmp_path / "PACKAGES"})),
        fetch,
    )
    for _ in range(2):
        with pytest.raises(ReferenceUnavailable) as info:
            other.get("probes", "hgu133a")
        assert f"{REPO}/hgu133aprobe_1.60.0.tar.gz" in str(info.value)
    assert fetched.count(f"{REPO}/hgu133aprobe_1.60.0.tar.gz") == 1
    # absent from the catalogue: optional() says None instead of failing
    assert other.optional("brainarray", "ath1121501") is None


def test_deterministic_tarball(tmp_path: Path) -> None:
    a = write_tarball(tmp_path / "a.tar.gz", {"p/DESCRIPTION": b"Package: p\n", "p/data/x": b"1"})
    b = write_tarball(tmp_path / "b.tar.gz", {"p/data/x": b"1", "p/DESCRIPTION": b"Package: p\n"})
    assert a.read_bytes() == b.read_bytes()


def test_processing_summary_groups_reasons(tmp_path: Path) -> None:
    from refine_assets.lib.processing.framework import SampleOutcome

    def o(sample, step, status, reason=None, t="2026-01-01T00:00:00"):
        return SampleOutcome(sample, "E", step, status, reason=reason, recorded_at=t)

    url = "ftp://x/E.processed.1.zip"
    ledger = {
        ("S1", "affy_scan"): o(
            "S1", "affy_scan", "failed", "affy_scan: S1.CEL missing", "2026-01-01T00:00:01"
        ),
        ("S1", "submitter_processed"): o("S1", "submitter_processed", "succeeded", t="2026-01-01T00:00:02"),
        ("S2", "submitter_processed"): o(
            "S2", "submitter_processed", "failed", f"S2: {url}: not available offline"
        ),
        ("S3", "submitter_processed"): o(
            "S3", "submitter_processed", "failed", f"S3: {url}: not available offline"
        ),
        ("S4", "none"): o("S4", "none", "unsupported", "no processor for pipeline NONE"),
        ("S1", "survey"): o("S1", "survey", "succeeded", t="2030-01-01"),
    }
    summary = processing_summary("E", ["S1", "S2", "S3", "S4", "S5"], ledger)
    assert summary == {
        "accession": "E",
        "samples": 5,
        "processed": 1,
        "failed": 2,
        "unsupported": 1,
        "pending": 1,
        "reasons": {f"<sample>: {url}: not available offline": 2, "no processor for pipeline NONE": 1},
    }
    assert generic_reason("GSM12: ftp://x/GSM12nnn/GSM12/GSM12.CEL.gz", "GSM12") == (
        "<sample>: ftp://x/GSM12nnn/<sample>/<sample>.CEL.gz"
    )
    assert generic_reason("sibling GSM99 failed", "GSM12") == "sibling GSM… failed"


def test_local_files_matched_by_name_gzip_or_not(tmp_path: Path) -> None:
    from refine_assets.lib.processing.fetch import LiveFetcher

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "C30057.CEL.gz").write_bytes(b"gz")
    files = local_files_in(tmp_path)
    assert files["C30057.CEL"] == files["C30057.CEL.gz"] == str(tmp_path / "sub/C30057.CEL.gz")

    def no_network(*_a, **_k):
        raise AssertionError("the local copy must be used")

    fetcher = LiveFetcher(tmp_path / "cache", download=no_network, local_files=files)
    assert fetcher.fetch("ftp://x/E-MTAB-3050.raw.1.zip", "C30057.CEL") == tmp_path / "sub/C30057.CEL.gz"
    with pytest.raises(FetchError, match="download failed"):
        LiveFetcher(
            tmp_path / "cache",
            download=lambda *a, **k: (_ for _ in ()).throw(OSError("offline")),
            local_files=files,
        ).fetch("https://x/other.CEL")
    with pytest.raises(ValueError, match="not a folder"):
        local_files_in(tmp_path / "none")


def test_replay_fetcher_extracts_the_member_of_a_registered_archive(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "E.processed.1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("S1_sample_table.txt", "ID_REF\tVALUE\n")
    url = "ftp://x/E.processed.1.zip"
    for key in (url, "E.processed.1.zip"):
        got = ReplayFetcher({key: archive}, tmp_path / "work").fetch(url, "S1_sample_table.txt")
        assert got.name == "S1_sample_table.txt" and got.read_text() == "ID_REF\tVALUE\n"
    with pytest.raises(FetchError, match=r"no member named S2_sample_table\.txt"):
        ReplayFetcher({url: archive}, tmp_path / "work").fetch(url, "S2_sample_table.txt")


def test_fast_rda_reader_equals_the_rdata_library_on_factors_and_missing_values(
    tmp_path: Path, rscript: str
) -> None:
    import subprocess
    import warnings

    import rdata
    import rdata.conversion

    from refine_assets.lib.references.rdata_xdr import UnsupportedRData, read_rda_data_frames

    script = tmp_path / "save.R"
    rda = tmp_path / "x.rda"
    script.write_text(
        "df <- data.frame(sequence = c('ACGT', NA, 'TTTT'), x = c(1L, NA, 3L), score = c(0.5, NA, -1e-300),\n"
        "  Target.Strandedness = factor(c('Antisense', 'Sense', NA)), stringsAsFactors = FALSE)\n"
        "class(df) <- c('probetable', 'data.frame')\n"
        f"pkgprobe <- df; other <- 1:10; save(pkgprobe, other, file = '{rda}', compress = 'xz')\n"
    )
    subprocess.run([rscript, "--vanilla", str(script)], check=True, capture_output=True)
    fast = read_rda_data_frames(rda.read_bytes())
    assert list(fast) == ["pkgprobe"]  # the integer vector is not a data.frame
    got = fast["pkgprobe"]
    constructors = dict(rdata.conversion.DEFAULT_CLASS_MAP)
    constructors["probetable"] = rdata.conversion.dataframe_constructor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = rdata.conversion.convert(rdata.parser.parse_data(rda.read_bytes()), constructors)["pkgprobe"]
    assert got["sequence"].tolist() == ["ACGT", None, "TTTT"]
    assert got["Target.Strandedness"].tolist() == ["Antisense", "Sense", None]
    assert [str(v) for v in ref["Target.Strandedness"]] == ["Antisense", "Sense", "nan"]
    np.testing.assert_array_equal(got["x"].to_numpy(), [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(got["score"].to_numpy(), ref["score"].to_numpy())
    with pytest.raises(UnsupportedRData):
        read_rda_data_frames(b"RDA2\nA\n")
