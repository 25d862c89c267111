"""Tests of refine_assets.lib.harmonize: key table (key by key), value rules, conflicts, real records."""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from refine_assets.lib.harmonize import (
    BASE_KEYS,
    CONFLICTS_SCHEMA,
    HARMONIZED_FIELDS,
    SAMPLES_SCHEMA,
    WRAPPERS,
    harmonize,
    key_table,
    space_variants,
)
from refine_assets.lib.http import ReplayHttpClient
from refine_assets.lib.survey.model import ATTRIBUTE_SCHEMA, SampleAttribute


def attrs(*rows: tuple) -> pl.DataFrame:
    """Rows of (sample, key, value[, position]) as an attribute frame."""
    out = []
    for i, row in enumerate(rows):
        sample, key, value, *rest = row
        out.append(
            {
                "sample_accession": sample,
                "key": key,
                "value": value,
                "source": "test",
                "position": rest[0] if rest else i,
            }
        )
    return pl.DataFrame(
        out,
        schema={
            "sample_accession": pl.String,
            "key": pl.String,
            "value": pl.String,
            "source": pl.String,
            "position": pl.Int64,
        },
    )


def one(result, sample: str = "S1") -> dict:
    rows = result.samples.filter(pl.col("sample_accession") == sample).to_dicts()
    assert len(rows) == 1
    return rows[0]


def filled(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "sample_accession" and v is not None}


# --------------------------------------------------------------------------------------------- key table


def test_fields_and_schema() -> None:
    assert HARMONIZED_FIELDS == (
        "title", "sex", "age", "specimen_part", "genetic_information", "disease", "disease_stage",
        "cell_line", "treatment", "race", "subject", "compound", "time", "developmental_stage",
    )  # fmt: skip
    assert set(BASE_KEYS) == set(HARMONIZED_FIELDS)
    result = harmonize(attrs(("S1", "noise", "x")))
    assert result.samples.schema == pl.Schema(SAMPLES_SCHEMA)
    assert result.conflicts.schema == pl.Schema(CONFLICTS_SCHEMA)


def test_space_variants() -> None:
    assert space_variants("cell type") == ["cell type", "cell_type", "cell-type", "celltype"]
    assert space_variants("tissue") == ["tissue"]
    assert space_variants("age at diagnosis") == [
        "age at diagnosis", "age_at_diagnosis", "age-at-diagnosis", "ageatdiagnosis",
    ]  # fmt: skip


def test_key_table_shape() -> None:
    kt = key_table()
    assert kt.columns[:3] == ["key", "field", "priority"]
    assert kt.filter(pl.col("kind") == "exact").select("key", "field").is_duplicated().sum() == 0
    # 16 forms per space variant; "tissue" (one variant) gives exactly 16 exact keys.
    assert kt.filter((pl.col("base_key") == "tissue") & (pl.col("kind") == "exact")).height == 16
    # doc example keys, each with its field and priority
    rows = {(r["key"], r["field"]): r["priority"] for r in kt.iter_rows(named=True)}
    assert rows[("characteristics [age]", "age")] == 0  # wrapper of "age" beats the base key entry (13)
    assert rows[("age (years)", "age")] == 3
    assert rows[("sample_source_name", "subject")] == 15
    assert rows[("disease state", "disease")] == 1
    assert rows[("disease state", "disease_stage")] == 0
    assert rows[("sample_strain", "cell_line")] == 1
    assert rows[("sample_strain", "genetic_information")] == 1  # wrapper sample_ + "strain"
    assert ("source name", "subject") not in rows
    assert rows[(r"characteristics_tissue(_\d+_text)?", "specimen_part")] == 2
    # the table is a fresh copy
    kt.clear()
    assert key_table().height > 6000


BASE_CASES = [(field, base) for field, bases in BASE_KEYS.items() for base in bases]


def _expected(field: str, value: str):
    if field == "age":
        return float(value)
    return value.strip().lower()


@pytest.mark.parametrize(("field", "base"), BASE_CASES, ids=[f"{f}:{b}" for f, b in BASE_CASES])
def test_every_base_key(field: str, base: str) -> None:
    """Each base key, upper-cased and padded, fills its field with the normalized value."""
    value = " 42 " if field == "age" else " Some VALUE "
    row = one(harmonize(attrs(("S1", f"  {base.upper()} ", value))))
    assert row[field] == _expected(field, value)
    fields_of_key = set(key_table().filter(pl.col("key") == base).get_column("field"))
    assert set(filled(row)) == fields_of_key


WRAPPER_CASES = [(w, v) for w in WRAPPERS for v in space_variants("organism part")]


@pytest.mark.parametrize(("wrapper", "variant"), WRAPPER_CASES, ids=[w.format(k=v) for w, v in WRAPPER_CASES])
def test_every_wrapper_and_space_variant(wrapper: str, variant: str) -> None:
    key = wrapper.format(k=variant)
    row = one(harmonize(attrs(("S1", key.title(), "Liver"))))
    assert filled(row) == {"specimen_part": "liver"}


def test_whole_key_table_key_by_key() -> None:
    """Every exact key of the table, one sample per key, maps to exactly the fields the table says."""
    kt = key_table()
    exact = kt.filter(pl.col("kind") == "exact")
    expected = exact.group_by("key").agg(pl.col("field").unique().sort().alias("fields"))
    keys = expected.get_column("key").to_list()
    frame = attrs(*[(f"S{i}", k.upper(), "7") for i, k in enumerate(keys)])
    samples = harmonize(frame).samples
    melted = samples.unpivot(index="sample_accession", on=list(HARMONIZED_FIELDS)).filter(
        pl.col("value").is_not_null()
    )
    got = melted.group_by("sample_accession").agg(pl.col("variable").unique().sort().alias("got"))
    by_sample = dict(got.iter_rows())
    mismatches = [
        (k, sorted(fields), sorted(by_sample.get(f"S{i}", [])))
        for i, (k, fields) in enumerate(expected.iter_rows())
        if sorted(fields) != sorted(by_sample.get(f"S{i}", []))
    ]
    assert mismatches == []
    assert samples.height == len(keys)
    assert samples.filter(pl.col("age").is_not_null()).get_column("age").unique().to_list() == [7.0]


def test_biosample_regex_keys() -> None:
    frame = attrs(
        ("S1", "characteristics_tissue_0_text", "Liver"),
        ("S1", "characteristics_cell_type", "Hepatocyte"),
        ("S1", "Characteristics_Sex_12_text", "F"),
        ("S1", "characteristics_age_(years)_0_text", "3"),
        ("S2", "characteristics_tissue_0_textx", "no"),
        ("S2", "characteristics_tissue_a_text", "no"),
        ("S2", "characteristicstissue", "no"),
        ("S2", "characteristics_tissue_0", "no"),
        ("S2", "characteristics_age years_0_text", "no"),  # the key's parentheses are literal
        ("S3", "characteristics_disease_state_1_text", "Asthma"),
    )
    result = harmonize(frame)
    assert filled(one(result, "S1")) == {"specimen_part": "hepatocyte;liver", "sex": "female", "age": 3.0}
    assert filled(one(result, "S2")) == {}
    assert filled(one(result, "S3")) == {"disease": "asthma", "disease_stage": "asthma"}
    regex_rows = key_table().filter(pl.col("kind") == "biosample_regex")
    assert all(
        re.fullmatch(p, "characteristics_" + v + "_3_text")
        for p, v in regex_rows.select("key", "variant").rows()[:50]
    )


# ----------------------------------------------------------------------------------------- value rules


def test_age_values() -> None:
    frame = attrs(
        ("S0", "age", "0"),
        ("S1", "age", "12 weeks"),
        ("S2", "Age", " n/a "),
        ("S3", "age", "9yrs 2mos"),
        ("S4", "age", "65.5"),
        ("S5", "age", "nan"),
        ("S6", "age", "-"),
        ("S7", "age", "1e1 days"),
    )
    result = harmonize(frame)
    ages = dict(result.samples.select("sample_accession", "age").iter_rows())
    assert ages == {
        "S0": 0.0,
        "S1": 12.0,
        "S2": None,
        "S3": None,
        "S4": 65.5,
        "S5": None,
        "S6": None,
        "S7": 10.0,
    }
    bad = result.conflicts.filter(pl.col("reason") == "unparseable_age")
    assert bad.select("sample_accession", "chosen_value", "other_values").rows() == [
        ("S2", None, ["n/a"]),
        ("S3", None, ["9yrs 2mos"]),
        ("S5", None, ["nan"]),
        ("S6", None, ["-"]),
    ]
    assert result.conflicts.filter(pl.col("reason") != "unparseable_age").is_empty()


def test_age_conflict_priority_then_position() -> None:
    frame = attrs(
        # "age (years)" comes first in the record but "age" has the better key priority
        ("S1", "Characteristics [Age (years)]", "30", 0),
        ("S1", "age", "31", 5),
        ("S1", "patient age", "n/a", 6),
        # same key priority: the earlier position wins
        ("S2", "characteristics[age]", "40", 9),
        ("S2", "age", "41", 2),
        # same number from two keys: no conflict
        ("S3", "age", "50", 0),
        ("S3", "age (years)", "50.0 years", 1),
    )
    result = harmonize(frame)
    ages = dict(result.samples.select("sample_accession", "age").iter_rows())
    assert ages == {"S1": 31.0, "S2": 41.0, "S3": 50.0}
    conflicts = result.conflicts.select("sample_accession", "field", "chosen_value", "other_values", "reason")
    assert conflicts.rows() == [
        ("S1", "age", "31.0", ["30.0"], "age_conflict"),
        ("S1", "age", "31.0", ["n/a"], "unparseable_age"),
        ("S2", "age", "41.0", ["40.0"], "age_conflict"),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("F", "female"), (" f ", "female"), ("Female", "female"), (" WOMAN", "female"),
        ("M", "male"), ("male ", "male"), (" Man ", "male"),
        ("Unknown ", "unknown"), ("mixed sex", "mixed sex"),
    ],
)  # fmt: skip
def test_sex_values(raw: str, expected: str) -> None:
    assert one(harmonize(attrs(("S1", "Sex", raw))))["sex"] == expected


def test_sex_from_two_keys_joined() -> None:
    frame = attrs(("S1", "sex", " F"), ("S1", "gender", "female"), ("S2", "sex", "m"), ("S2", "gender", "F"))
    result = harmonize(frame)
    assert one(result, "S1")["sex"] == "female"
    assert one(result, "S2")["sex"] == "female;male"


def test_multi_value_join_is_sorted_and_deduplicated() -> None:
    rows = [("S1", "tissue", "Kidney"), ("S1", "organism part", "B cell"), ("S1", "cell type", " kidney ")]
    first = one(harmonize(attrs(*rows)))
    second = one(harmonize(attrs(*reversed(rows))))
    assert first["specimen_part"] == second["specimen_part"] == "b cell;kidney"  # the docs' example
    assert (
        one(
            harmonize(
                attrs(("S1", "treatment", "b"), ("S1", "drug treatment", "B"), ("S1", "treatment group", "a"))
            )
        )["treatment"]
        == "a;b"
    )


def test_disease_state_feeds_disease_and_stage() -> None:
    row = one(harmonize(attrs(("S1", "Disease State", "Stage II"), ("S1", "tumor grade", "G2"))))
    assert filled(row) == {"disease": "stage ii", "disease_stage": "g2;stage ii"}


def test_title_single_value_by_priority() -> None:
    frame = attrs(
        ("S1", "title", "Rep 1", 0),
        ("S1", "Sample Name", " Liver A ", 3),
        ("S1", "extract name", "liver a", 4),
        ("S2", "labeled extract name", "LEX", 0),
        ("S2", "extract name", "RNA", 1),
    )
    result = harmonize(frame)
    assert one(result, "S1")["title"] == "liver a"
    assert one(result, "S2")["title"] == "rna"
    assert result.conflicts.select("sample_accession", "chosen_value", "other_values", "reason").rows() == [
        ("S1", "liver a", ["rep 1"], "title_conflict"),
        ("S2", "rna", ["lex"], "title_conflict"),
    ]


def test_no_match_empty_values_and_row_order() -> None:
    frame = attrs(
        ("S9", "protocol", "none"),
        ("S1", "tissue", "   "),
        ("S1", "age", ""),
        ("S2", "tissue", None),
        ("S3", None, "x"),
        ("S2", "tissue", "lung"),
    )
    result = harmonize(frame)
    assert result.samples.get_column("sample_accession").to_list() == ["S9", "S1", "S2", "S3"]
    for sample in ("S9", "S1", "S3"):
        assert filled(one(result, sample)) == {}
    assert filled(one(result, "S2")) == {"specimen_part": "lung"}
    assert result.conflicts.is_empty()


def test_inputs_arrow_and_errors() -> None:
    records = [SampleAttribute("GSM1", "characteristics_ch1_key", "x", "geo_characteristics", 0),
               SampleAttribute("GSM1", "cell line", "HeLa", "geo_characteristics", 1)]  # fmt: skip
    table = pa.Table.from_pylist([r.__dict__ for r in records], schema=ATTRIBUTE_SCHEMA)
    assert filled(one(harmonize(table), "GSM1")) == {"cell_line": "hela"}
    # position and source are optional
    assert filled(
        one(harmonize(pl.DataFrame({"sample_accession": ["S1"], "key": ["race"], "value": ["X"]})))
    ) == {"race": "x"}
    empty = harmonize(pa.Table.from_pylist([], schema=ATTRIBUTE_SCHEMA))
    assert empty.samples.is_empty() and empty.samples.schema == pl.Schema(SAMPLES_SCHEMA)
    assert empty.conflicts.is_empty()
    with pytest.raises(ValueError, match="value"):
        harmonize(pl.DataFrame({"sample_accession": ["S1"], "key": ["race"]}))
    with pytest.raises(ValueError, match="null sample_accession"):
        harmonize(pl.DataFrame({"sample_accession": [None], "key": ["race"], "value": ["x"]}))
    with pytest.raises(TypeError):
        harmonize([{"sample_accession": "S1"}])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ real records


def _geo_sample_attributes(soft: Path, wanted: set[str]) -> pl.DataFrame:
    """!Sample_* lines of the wanted samples as raw attributes (GEO characteristics split on ':')."""
    rows: list[dict] = []
    sample = None
    with gzip.open(soft, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("^SAMPLE = "):
                sample = line.split("=", 1)[1].strip()
                position = 0
            elif sample in wanted and line.startswith("!Sample_"):
                key, _, value = line[len("!Sample_") :].rstrip("\n").partition(" = ")
                source = "geo_field"
                if key.startswith("characteristics_ch") and ":" in value:
                    key, value = (p.strip() for p in value.split(":", 1))
                    source = "geo_characteristics"
                rows.append({"sample_accession": sample, "key": key, "value": value, "source": source,
                             "position": position})  # fmt: skip
                position += 1
    return pl.DataFrame(rows)


def test_real_geo_gse781(shared_data: Path) -> None:
    """GSE781 (GEOquery's test series): titles harmonize; its free-text descriptions do not.

    GSE781 samples carry no !Sample_characteristics_ch1 lines; "Age = 70; Gender = Female" only
    appears inside !Sample_description, which refine.bio does not harmonize either.
    """
    soft = shared_data / "geo" / "geoquery" / "GSE781_family.soft.gz"
    wanted = {"GSM11805", "GSM11814", "GSM12268"}
    frame = _geo_sample_attributes(soft, wanted)
    assert frame.filter(pl.col("source") == "geo_characteristics").is_empty()
    assert frame.filter(pl.col("key") == "description").get_column("value").str.contains("Age = 70").any()
    result = harmonize(frame)
    titles = dict(result.samples.select("sample_accession", "title").iter_rows())
    assert titles == {
        "GSM11805": "n035 normal human kidney u133a",
        "GSM11814": "c035 renal clear cell carcinoma u133a",
        "GSM12268": "n1 normal human kidney u133a",
    }
    assert all(filled(row) == {"title": titles[row["sample_accession"]]} for row in result.samples.to_dicts())
    assert result.conflicts.is_empty()


def test_real_sdrf_e_mtab_3050(cassettes: Path) -> None:
    """E-MTAB-3050 SDRF (refine.bio's own harmony test cassette), headers used as raw keys."""
    client = ReplayHttpClient([cassettes / "surveyor.harmony.sdrf_harmony.yaml.gz"])
    text = client.get("https://www.ebi.ac.uk/arrayexpress/files/E-MTAB-3050/E-MTAB-3050.sdrf.txt").text
    table = list(csv.reader(io.StringIO(text), delimiter="\t"))
    header, body = table[0], table[1:]
    assay = header.index("Assay Name")
    frame = attrs(
        *[(row[assay], k, v, i) for row in body for i, (k, v) in enumerate(zip(header, row, strict=True))]
    )
    result = harmonize(frame)
    assert result.samples.height == len(body) == 5
    row = one(result, "1007409-C30057")
    assert filled(row) == {
        "title": "donor a islets rna",  # extract name (priority 4) beats labeled extract name (5)
        "sex": "female",
        "age": 54.0,
        "specimen_part": "freshly isolated;islet",  # Characteristics[organism part] + Factor Value[cell type]
        "subject": "a",  # Factor Value[individual]
        "developmental_stage": "adult",
    }
    assert not math.isnan(row["age"])
    titles = result.conflicts.filter(
        (pl.col("reason") == "title_conflict") & (pl.col("sample_accession") == "1007409-C30057")
    )
    assert titles.select("chosen_value", "other_values").rows() == [
        ("donor a islets rna", ["donor a islets lex"])
    ]
    assert result.conflicts.filter(pl.col("field") == "age").is_empty()
