"""Illumina platform detection by probe-id overlap (refine.bio's > 75% rule, every overlap recorded)."""

from __future__ import annotations

import numpy as np
import pytest

from refine_assets.lib.illumina.detect import (
    candidate_platforms,
    detect_platform,
    organism_key,
)
from refine_assets.lib.illumina.parse import parse_illumina_bytes
from refine_assets.lib.illumina.probes import IlluminaProbeStore
from refine_assets_tests.illumina_generator import (
    build_illumina_db_tarball,
    default_samples,
    make_platform,
    simulate_beadchip,
    write_nonnormalized,
)


def ids(a, b):
    return [f"ILMN_{i}" for i in range(a, b)]


# v3 = ILMN_0..999, v4 = ILMN_200..1099 (overlapping generations, as real HumanHT-12 v3/v4)
KEYS = {
    "illuminaHumanv1": ids(5000, 6000),
    "illuminaHumanv2": ids(4000, 5200),
    "illuminaHumanv3": ids(0, 1000),
    "illuminaHumanv4": ids(200, 1100),
}


def test_v4_file_is_detected_and_accepted():
    d = detect_platform(ids(200, 1100), KEYS, organism="Homo sapiens")
    assert d.best == "illuminaHumanv4" and d.accepted and d.route == "ILLUMINA_SCAN"
    by = {o.platform: o for o in d.overlaps}
    assert [o.platform for o in d.overlaps] == list(KEYS)  # every candidate recorded, in order
    assert by["illuminaHumanv3"].common == 800
    assert by["illuminaHumanv3"].percent_of_platform == pytest.approx(80.0)
    assert by["illuminaHumanv3"].percent_of_file == pytest.approx(100 * 800 / 900)
    assert by["illuminaHumanv1"].common == 0
    ann = d.as_annotation()
    assert ann["detected_platform"] == "illuminaHumanv4"
    assert ann["detection_percentage"] == pytest.approx(100.0) and ann["mapped_percentage"] == pytest.approx(
        100.0
    )


def test_mislabelled_v3_file_is_detected_as_v3():
    """A v3 file (refine.bio's GSE54661 case) covers v3 fully and v4 only partly."""
    d = detect_platform(ids(0, 1000), KEYS, organism="HOMO_SAPIENS")
    assert d.best == "illuminaHumanv3" and d.accepted


def test_low_overlap_routes_to_submitter_processed():
    # 700 of 1000 file ids are v4 probes: best = v4 (coverage 77.8%) but maps only 70% of the file
    file_ids = ids(400, 1100) + [f"custom_{i}" for i in range(300)]
    d = detect_platform(file_ids, KEYS, organism=9606)
    assert d.best == "illuminaHumanv4"
    assert d.mapped_percentage == pytest.approx(70.0)
    assert not d.accepted and d.route == "NO_OP"
    assert "<= 75%" in d.reason


def test_threshold_is_strict():
    keys = {"illuminaHumanv4": ids(0, 100)}
    d = detect_platform(ids(25, 100) + [f"x{i}" for i in range(25)], keys, organism="Homo sapiens")
    assert d.mapped_percentage == 75.0 and not d.accepted
    d = detect_platform(ids(24, 100) + [f"x{i}" for i in range(25)], keys, organism="Homo sapiens")
    assert d.mapped_percentage > 75.0 and d.accepted


def test_ties_go_to_the_first_candidate():
    keys = {"illuminaHumanv3": ids(0, 100), "illuminaHumanv4": ids(0, 100)}
    d = detect_platform(ids(0, 100), keys, organism="Homo sapiens")
    assert d.best == "illuminaHumanv3"


def test_duplicates_and_blanks_do_not_dilute():
    file_ids = ids(200, 1100) * 2 + ["", None, "  "]
    d = detect_platform(np.array(file_ids, dtype=object), KEYS, organism="Homo sapiens")
    assert d.file_rows == 1803 and d.file_probes == 900
    assert d.mapped_percentage == pytest.approx(100.0) and d.accepted


def test_unknown_organism_and_missing_tables():
    d = detect_platform(ids(0, 10), KEYS, organism="Danio rerio")
    assert not d.accepted and d.best is None and "DANIO_RERIO" in d.reason
    d = detect_platform(ids(0, 10), {}, organism="Mus musculus")
    assert not d.accepted and d.missing_tables == ("illuminaMousev1", "illuminaMousev1p1", "illuminaMousev2")
    d = detect_platform(["nothing"], KEYS, organism="Homo sapiens")
    assert d.best is None and d.route == "NO_OP" and "no probe id" in d.reason


def test_organism_keys_and_candidates():
    assert (
        organism_key("Homo sapiens") == organism_key(9606) == organism_key("homo_sapiens") == "HOMO_SAPIENS"
    )
    assert organism_key("10116") == "RATTUS_NORVEGICUS"
    assert candidate_platforms("Mus musculus") == ("illuminaMousev1", "illuminaMousev1p1", "illuminaMousev2")
    assert candidate_platforms("Danio rerio") == ()


def test_end_to_end_with_parsed_file_and_package_tables(tmp_path):
    """Parsed file ids against keys read from generated .db tarballs."""
    v3 = make_platform(1500, seed=1, name="illuminaHumanv3", id_start=1000000)
    v4_ids = np.concatenate([v3.probe_ids[300:], [f"ILMN_{2000000 + i}" for i in range(300)]])
    v4 = make_platform(0, seed=2, name="illuminaHumanv4", ids=v4_ids)
    build_illumina_db_tarball(tmp_path, v3, chip_name="HumanHT12v3")
    build_illumina_db_tarball(tmp_path, v4)
    sim = simulate_beadchip(v4.probe_ids.size, 2, seed=3)
    raw = write_nonnormalized("geo", v4.probe_ids, sim.signal, sim.detection_p, default_samples(2))
    m = parse_illumina_bytes(raw)
    store = IlluminaProbeStore(tmp_path)
    d = detect_platform(
        m.probe_ids, store.platform_keys(candidate_platforms("Homo sapiens")), organism="Homo sapiens"
    )
    assert d.best == "illuminaHumanv4" and d.accepted
    assert d.missing_tables == ("illuminaHumanv1", "illuminaHumanv2")
    assert {o.platform: o.common for o in d.overlaps} == {"illuminaHumanv3": 1200, "illuminaHumanv4": 1500}
