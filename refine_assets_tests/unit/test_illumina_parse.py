"""Parser of Illumina non-normalized files: header variants, pairing by name, sample mapping, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from refine_assets.lib.illumina.parse import (
    IlluminaParseError,
    SampleRef,
    classify_header,
    parse_illumina_bytes,
    parse_illumina_file,
    read_numeric_matrix,
    write_numeric_matrix,
)
from refine_assets_tests.illumina_generator import (
    VARIANTS,
    default_samples,
    make_platform,
    simulate_beadchip,
    write_nonnormalized,
)

N = 400
K = 5
BARCODE_VARIANTS = {"genomestudio", "beadstudio_scores", "r_dots", "shuffled"}
HAZARDS = {
    "plain": {},
    "windows_latin1_comments": dict(
        newline="\r\n", encoding="latin-1", comments=True, trailing_delimiter=True
    ),
    "bom_cr": dict(bom=True, newline="\r"),
}


@pytest.fixture(scope="module")
def data():
    pl = make_platform(N, seed=1)
    sim = simulate_beadchip(N, K, seed=2, sequences=pl.sequences)
    return pl, sim


def refs(samples, *, aliases=True):
    return [SampleRef(s.accession, s.title, aliases=(s.key,) if aliases else ()) for s in samples]


@pytest.mark.parametrize("hazard", sorted(HAZARDS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_round_trips(data, variant, hazard):
    pl, sim = data
    opts = HAZARDS[hazard]
    samples = default_samples(
        K, latin1=opts.get("encoding") == "latin-1", barcodes=variant in BARCODE_VARIANTS
    )
    raw = write_nonnormalized(variant, pl.probe_ids, sim.signal, sim.detection_p, samples, **opts)
    m = parse_illumina_bytes(raw, refs(samples), source=f"{variant}.txt")
    assert m.n_probes == N
    assert list(m.probe_ids) == list(pl.probe_ids)
    accs = [c.sample_accession for c in m.columns]
    assert sorted(accs) == sorted(s.accession for s in samples)
    order = [[s.accession for s in samples].index(a) for a in accs]
    # values as written (4 decimals for signal, 5 significant digits for p)
    assert np.allclose(m.signal, sim.signal[:, order], rtol=0, atol=5e-5)
    assert np.allclose(m.detection_p, sim.detection_p[:, order], rtol=1e-4, atol=1e-12)
    kinds = {c.detection_kind for c in m.columns}
    assert kinds == ({"score"} if variant == "beadstudio_scores" else {"p_value"})
    assert m.unmatched_samples == [] and m.unmapped_columns == []
    if opts.get("encoding") == "latin-1" and variant in ("geo", "underscore", "csv_quoted", "no_id_header"):
        assert m.encoding == "latin-1"
        assert any("é" in c.signal_column for c in m.columns)


def test_pairs_by_name_not_by_order(data):
    """Detection columns in another order than the signals (refine.bio paired by position: Q6)."""
    pl, sim = data
    samples = default_samples(K, barcodes=True)
    raw = write_nonnormalized("shuffled", pl.probe_ids, sim.signal, sim.detection_p, samples, seed=4)
    m = parse_illumina_bytes(raw, refs(samples))
    for j, c in enumerate(m.columns):
        assert c.pairing == "name"
        assert c.pvalue_column == f"{c.key}.Detection Pval"
        src = [s.key for s in samples].index(c.key)
        assert np.allclose(m.detection_p[:, j], sim.detection_p[:, src], rtol=1e-4)
    assert m.extra_columns == ["SYMBOL"]
    # the detection columns really were shuffled relative to the signals
    assert [c.pvalue_index for c in m.columns] != sorted(c.pvalue_index for c in m.columns)


def test_many_samples_geo_layout_pairs_each_with_its_own_pvalues():
    """40 samples (more than the hash-set size that reordered refine.bio's column list)."""
    n, k = 300, 40
    pl = make_platform(n, seed=5)
    sim = simulate_beadchip(n, k, seed=6)
    samples = default_samples(k)
    raw = write_nonnormalized("geo", pl.probe_ids, sim.signal, sim.detection_p, samples)
    m = parse_illumina_bytes(raw, refs(samples))
    assert [c.sample_accession for c in m.columns] == [s.accession for s in samples]
    assert all(c.pairing == "adjacent" and c.pvalue_index == c.signal_index + 1 for c in m.columns)
    assert np.allclose(m.detection_p, sim.detection_p, rtol=1e-4)


def test_detection_scores_are_converted(data):
    pl, sim = data
    samples = default_samples(K, barcodes=True)
    raw = write_nonnormalized("beadstudio_scores", pl.probe_ids, sim.signal, sim.detection_p, samples)
    m = parse_illumina_bytes(raw, refs(samples))
    assert all(c.detection_kind == "score" for c in m.columns)
    assert np.allclose(m.detection_p, sim.detection_p, atol=1e-5)
    assert m.probe_column == "ProbeID" and "TargetID" in m.extra_columns
    assert any("converted" in n for n in m.notes)


def test_genomestudio_preamble_and_extra_columns(data):
    pl, sim = data
    samples = default_samples(K, barcodes=True)
    raw = write_nonnormalized("genomestudio", pl.probe_ids, sim.signal, sim.detection_p, samples)
    m = parse_illumina_bytes(raw, refs(samples))
    assert m.header_line == 8 and m.skipped_lines == 6
    assert m.extra_columns[0] == "SYMBOL"
    assert sum(".BEAD_STDERR" in e for e in m.extra_columns) == K
    assert sum(".Avg_NBEADS" in e for e in m.extra_columns) == K
    assert [c.key for c in m.columns] == [s.key for s in samples]
    assert all(c.match == "alias" for c in m.columns)
    prov = m.provenance()
    assert prov["columns"][0]["detection"] == f"{samples[0].key}.Detection Pval"


def test_header_classification_variants():
    cols = classify_header(
        [
            "ID_REF",
            "S1.AVG_Signal",
            "S1.Detection Pval",
            "S1.Detection.Pval",
            "Detection-S1",
            "S1_Detection_Pval",
            "DetectionPval S1",
            "S1 Detection p-value",
            "S1.BEAD_STDERR",
            "S1.Avg_NBEADS",
            "MIN_Signal-S1",
            "STD_A.AVG_Signal",
            "SYMBOL",
            "Detection Pval",
            "Detection Count",
            "",
            "tumor 1",
        ]
    )
    kinds = [(c.kind, c.key) for c in cols]
    assert kinds == [
        ("id", ""),
        ("signal", "S1"),
        ("detection", "S1"),
        ("detection", "S1"),
        ("detection", "S1"),
        ("detection", "S1"),
        ("detection", "S1"),
        ("detection", "S1"),
        ("stat", "S1"),
        ("stat", "S1"),
        ("stat", "S1"),
        ("signal", "STD_A"),
        ("annotation", ""),
        ("detection", ""),
        ("stat", ""),
        ("empty", ""),
        ("plain", "tumor 1"),
    ]


def test_sample_mapping_levels_and_ambiguity():
    header = "ID_REF\tA\tDetection Pval\tGSM2\tDetection Pval\tpatient-3\tDetection Pval\tx 4\tDetection Pval\tdup\tDetection Pval\n"
    rows = "".join(
        f"P{i}\t{10 + i}\t0.1\t{20 + i}\t0.2\t{30 + i}\t0.3\t{5 + i}\t0.4\t{i + 1}\t0.5\n" for i in range(20)
    )
    samples = [
        SampleRef("GSM1", "A"),
        SampleRef("GSM2", "something else"),
        SampleRef("GSM3", "Patient 3"),
        SampleRef("GSM4", "biopsy x 4"),
        SampleRef("GSM5", "dup"),
        SampleRef("GSM6", "dup"),
        SampleRef("GSM7", "not in file"),
    ]
    m = parse_illumina_bytes((header + rows).encode(), samples)
    got = {c.signal_column: (c.sample_accession, c.match) for c in m.columns}
    assert got["A"] == ("GSM1", "title")
    assert got["GSM2"] == ("GSM2", "accession")
    assert got["patient-3"] == ("GSM3", "title-normalized")
    assert got["x 4"] == ("GSM4", "suffix")
    assert got["dup"] == (None, None)  # two samples have that title: never guess
    assert m.unmapped_columns == ["dup"]
    assert sorted(m.unmatched_samples) == ["GSM5", "GSM6", "GSM7"]
    assert m.sample_index() == {"GSM1": 0, "GSM2": 1, "GSM3": 2, "GSM4": 3}


def test_single_sample_table_maps_to_its_sample():
    text = "ID_REF\tVALUE\tDetection Pval\n" + "".join(
        f"ILMN_{i}\t{100 + i}.5\t0.0{i % 10}\n" for i in range(30)
    )
    m = parse_illumina_bytes(text.encode(), [SampleRef("GSM9", "some title")])
    assert m.columns[0].sample_accession == "GSM9" and m.columns[0].match == "single"


def test_duplicates_and_empty_ids_are_counted():
    text = (
        "PROBE_ID\tS1\tDetection Pval\n"
        + "ILMN_1\t10\t0.5\nILMN_2\t20\t0.1\nILMN_1\t11\t0.5\n\t30\t0.0\n" * 5
    )
    m = parse_illumina_bytes(text.encode())
    assert m.n_probes == 15 and m.empty_id_rows == 5 and m.duplicate_probe_ids == 13


def test_missing_values_are_nan():
    text = "ID_REF\tS1\tDetection Pval\tS2\tDetection Pval\nA\t1.5\t0.1\tNA\t0.2\nB\t\t0.3\t4\t\n"
    m = parse_illumina_bytes(text.encode())
    assert np.isnan(m.signal[0, 1]) and np.isnan(m.signal[1, 0]) and np.isnan(m.detection_p[1, 1])


# ---- bad input -------------------------------------------------------------------------------------


def _geo(n=12, k=3):
    pl = make_platform(n, seed=9)
    sim = simulate_beadchip(n, k, seed=9)
    return write_nonnormalized("geo", pl.probe_ids, sim.signal, sim.detection_p, default_samples(k)).decode()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: "", "empty file"),
        (lambda t: "# only a comment\n\n!Series_title = x\n", "empty file"),
        (lambda t: t.split("\n", 1)[0] + "\n", "no data rows"),
        (
            lambda t: t.replace("\tDetection Pval", "\tBEAD_STDERR", 1),
            r"column 'Patient 1 normal' \(column 2\) looks like the signal of sample GSM1000001 but has no detection",
        ),
        (lambda t: t.replace("\tDetection Pval", "\tjunk", 3), "no detection p-value column"),
        (
            lambda t: "ID_REF\tA.AVG_Signal\tB.AVG_Signal\tA.Detection Pval\nX\t1\t2\t0.1\nY\t3\t4\t0.5\n",
            r"no detection p-value column for signal column\(s\) \['B.AVG_Signal'\]",
        ),
        (
            lambda t: "ID_REF\tA\tB\tDetection Pval\tDetection Pval\nX\t1\t2\t0.1\t0.2\n",
            "cannot pair detection column 'Detection Pval' \\(column 5\\)",
        ),
        (
            lambda t: "ID_REF\tA.AVG_Signal\tC.Detection Pval\nX\t1\t0.1\n",
            "detection column 'C.Detection Pval' \\(column 3\\) has no signal column",
        ),
        (
            lambda t: _replace_cell(t, 3, 4, "abc"),
            r"line 4, column 5 \('Detection Pval'\): non-numeric value 'abc'",
        ),
        (lambda t: _replace_cell(t, 2, 1, "1,5"), r"line 3, column 2 .*non-numeric value '1,5'"),
        (lambda t: _truncate_row(t, 5), r"line 6 has 3 fields but the header needs 7"),
        (
            lambda t: _replace_cell(t, 2, 2, "1.5"),
            r"line 3, column 'Detection Pval': detection value 1.5 is not a probability",
        ),
        (lambda t: "SYMBOL\tDEFINITION\nA\tB\n", "no probe id column"),
    ],
)
def test_bad_inputs_fail_clearly(tmp_path, mutate, message):
    text = mutate(_geo())
    path = tmp_path / "GSE1_non-normalized.txt"
    path.write_text(text)
    with pytest.raises(IlluminaParseError, match=message) as info:
        parse_illumina_file(path, [SampleRef(s.accession, s.title) for s in default_samples(3)])
    assert str(path) in str(info.value)


def _replace_cell(text: str, line_index: int, col: int, value: str) -> str:
    lines = text.split("\n")
    fields = lines[line_index].split("\t")
    fields[col] = value
    lines[line_index] = "\t".join(fields)
    return "\n".join(lines)


def _truncate_row(text: str, line_index: int) -> str:
    lines = text.split("\n")
    lines[line_index] = "\t".join(lines[line_index].split("\t")[:3])
    return "\n".join(lines)


def test_missing_file(tmp_path):
    with pytest.raises(IlluminaParseError, match="cannot read"):
        parse_illumina_file(tmp_path / "nope.txt")


# ---- plain matrices --------------------------------------------------------------------------------


def test_numeric_matrix_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 3)) * 10.0 ** rng.integers(-5, 8, size=(50, 3))
    values[3, 1] = np.nan
    ids = np.array([f"ILMN_{i}" for i in range(50)], dtype=object)
    out = tmp_path / "m.tsv"
    write_numeric_matrix(out, "ID_REF", ["a", "b", "c"], ids, values)
    cols, rids, back = read_numeric_matrix(out)
    assert cols == ["a", "b", "c"] and list(rids) == list(ids)
    assert np.array_equal(back, values, equal_nan=True)
    assert not list(tmp_path.glob(".refine-tmp-*"))
