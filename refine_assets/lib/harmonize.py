"""Harmonization of submitter sample metadata into refine.bio's ``refinebio_*`` fields, vectorized.

Input: the long-format raw attributes of :class:`refine_assets.lib.survey.model.SampleAttribute`
(columns ``sample_accession, key, value, source, position``). Output: one row per sample with the
15 harmonized fields (:data:`HARMONIZED_FIELDS`) plus a table of the conflicts met on the way.

The key table reproduces refine.bio (``foreman/data_refinery_foreman/surveyor/harmony.py``, see
``/work/shared/specs/refinebio-teardown.md`` section 3 and the "harmonized metadata" table of the
refine.bio processing docs): every base key is expanded with ``create_variants``

* space variants: the key itself and, when it contains a space, the key with spaces replaced by
  ``_``, by ``-`` and removed;
* for every space variant ``k``: ``k`` and the wrappers ``characteristic [k]``, ``characteristic[k]``,
  ``characteristics [k]``, ``characteristics[k]``, ``comment [k]``, ``comment[k]``, ``comments [k]``,
  ``comments[k]``, ``factorvalue[k]``, ``factor value[k]``, ``factorvalue [k]``, ``factor value [k]``,
  ``sample_k``, ``sample_hostk``, ``sample_sample_k``;
* the BioSample flattened-JSON pattern ``characteristics_<k>(_\\d+_text)?`` (full match, ``k`` taken
  literally), e.g. ``characteristics_tissue_0_text``.

Raw keys are compared after ``lower()`` and ``strip()``. A key may feed several fields (``disease
state`` feeds ``disease`` and ``disease_stage``, ``sample_strain`` feeds ``genetic_information`` and
``cell_line``) exactly as in refine.bio, where every field scans every key independently.

Value rules (refine.bio's ``harmonize_value``, with the defects of teardown section 12 item 10 fixed):

* every value is stripped and lower-cased; empty values are ignored;
* ``sex``: ``f``/``female``/``woman`` -> ``female``, ``m``/``male``/``man`` -> ``male`` (after stripping:
  refine.bio did not strip sex values), anything else kept lower-cased;
* ``age``: ``float(value)``, else the float of the first whitespace token (``"12 weeks"`` -> 12.0);
  non-finite or non-numeric values are dropped and reported as ``unparseable_age``; age ``0`` is kept
  (refine.bio dropped it as falsy); units are not normalized. One age is kept: the one from the key
  with the best priority (position of its base key in the age key list), ties broken by the record
  ``position`` then the input row order; differing numbers are reported as ``age_conflict``
  (refine.bio kept an arbitrary element of a set);
* ``title``: a single value, chosen like age (title key priority, then position); differing titles are
  reported as ``title_conflict``;
* every other field: the distinct values, sorted (code-point order) and joined with ``";"``.

Everything is done with polars expressions and joins (the key table join runs on the distinct raw
keys only); there is no Python loop over rows. See ``docs/harmonization.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import polars as pl
import pyarrow as pa

HARMONIZED_FIELDS: tuple[str, ...] = (
    "title",
    "sex",
    "age",
    "specimen_part",
    "genetic_information",
    "disease",
    "disease_stage",
    "cell_line",
    "treatment",
    "race",
    "subject",
    "compound",
    "time",
    "developmental_stage",
)
"""The harmonized columns of :attr:`HarmonizationResult.samples` (after ``sample_accession``), in order."""

SINGLE_VALUE_FIELDS: tuple[str, ...] = ("title", "age")
"""Fields that keep one value chosen by key priority instead of joining all distinct values."""

# Base keys per field, in priority order (lower index = preferred for single-value fields).
# Source: refine.bio harmony.py lists, which are a superset of the processing docs' table, in the
# same relative order. Entries marked below differ between the docs, the code and the teardown.
BASE_KEYS: dict[str, tuple[str, ...]] = {
    "title": (
        "sample name",
        "sample title",
        "title",
        "subject number",
        "extract name",
        "labeled extract name",
    ),
    "sex": (
        "sex",
        "gender",
        "subject gender",
        "subject sex",
        "subjext sex",  # refine.bio's misspelling of "subject sex", kept so such keys still match
        "characteristic [sex]",
        "characteristics [sex]",
    ),
    "age": (
        "age",
        "patient age",
        "age of patient",
        "age (years)",
        "age (yrs)",
        "age (months)",
        "age (days)",
        "age (hours)",
        "age at diagnosis",
        "age at diagnosis years",
        "age at diagnosis months",
        "age at diagnosis days",
        "age at diagnosis hours",
        "characteristic [age]",
        "characteristics [age]",
    ),
    "specimen_part": (
        "organism part",
        "cell type",
        "tissue",
        "tissue type",
        "tissue source",
        "tissue origin",
        "source tissue",
        "tissue subtype",
        "tissue/cell type",
        "tissue region",
        "tissue compartment",
        "tissues",
        "tissue of origin",
        "tissue-type",
        "tissue harvested",
        "cell/tissue type",
        "tissue subregion",
        "organ",
        "characteristic [organism part]",
        "characteristics [organism part]",
        "cell_type",
        "organismpart",
        "isolation source",
        "tissue sampled",
        "cell description",
    ),
    "genetic_information": (
        "strain/background",
        "strain",
        "strain or line",
        "background strain",
        "genotype",
        "genetic background",
        "genetic information",  # in the code, missing from the docs' table
        "genotype/variation",
        "ecotype",
        "cultivar",
        "strain/genotype",
    ),
    "disease": (
        "disease",
        "disease state",
        "disease status",
        "diagnosis",
        "infection with",
        "sample type",
    ),
    "disease_stage": (
        "disease state",
        "disease staging",
        "disease stage",
        "grade",
        "tumor grade",
        "who grade",
        "histological grade",
        "tumor grading",
        "disease outcome",
        "subject status",
    ),
    "cell_line": ("cell line", "sample strain"),
    "treatment": (
        "treatment",
        "treatment group",
        "treatment protocol",
        "drug treatment",
        "clinical treatment",
    ),
    "race": ("race", "ethnicity", "race/ethnicity"),
    "subject": (
        "subject",
        "subject id",
        "subject/sample source id",
        "subject identifier",
        "human subject anonymized id",
        "individual",
        "individual identifier",
        "individual id",
        "patient",
        "patient id",
        "patient identifier",
        "patient number",
        "patient no",
        "donor id",
        "donor",
        "sample_source_name",  # docs + code; the teardown paraphrases it as "source name"
    ),
    "compound": (
        "compound",
        "compound1",
        "compound2",
        "compound name",
        "drug",
        "drugs",
        "immunosuppressive drugs",
    ),
    "time": (
        "time",  # in the code, missing from the docs' table
        "initial time point",
        "start time",
        "stop time",
        "time point",
        "sampling time point",
        "sampling time",
        "time post infection",
    ),
    "developmental_stage": (
        "developmental stage",
        "development stage",
        "development stages",
        "dev stage",  # teardown section 3 (newer harmony.py); not in the docs' table
    ),
}

WRAPPERS: tuple[str, ...] = (
    "{k}",
    "characteristic [{k}]",
    "characteristic[{k}]",
    "characteristics [{k}]",
    "characteristics[{k}]",
    "comment [{k}]",
    "comment[{k}]",
    "comments [{k}]",
    "comments[{k}]",
    "factorvalue[{k}]",
    "factor value[{k}]",
    "factorvalue [{k}]",
    "factor value [{k}]",
    "sample_{k}",
    "sample_host{k}",
    "sample_sample_{k}",
)
"""refine.bio ``create_variants`` forms, applied to every space variant ``k`` of a base key."""

BIOSAMPLE_PATTERN = r"characteristics_{k}(_\d+_text)?"
"""Flattened BioSample key pattern (full match), ``k`` being a space variant taken literally."""

# Extracts the candidate k of a flattened BioSample key; the lazy group plus the anchored optional
# suffix give the k of the only possible full match, as no key variant itself ends in _<n>_text.
_BIOSAMPLE_EXTRACT = r"^characteristics_(.+?)(?:_\d+_text)?$"

SAMPLES_SCHEMA: dict[str, pl.DataType] = {
    "sample_accession": pl.String(),
    **{f: (pl.Float64() if f == "age" else pl.String()) for f in HARMONIZED_FIELDS},
}
CONFLICTS_SCHEMA: dict[str, pl.DataType] = {
    "sample_accession": pl.String(),
    "field": pl.String(),
    "chosen_value": pl.String(),
    "other_values": pl.List(pl.String()),
    "reason": pl.String(),
}
CONFLICT_REASONS: tuple[str, ...] = ("age_conflict", "unparseable_age", "title_conflict")

_REQUIRED_COLUMNS = ("sample_accession", "key", "value")


@dataclass(frozen=True)
class HarmonizationResult:
    """The output of :func:`harmonize`.

    ``samples``: one row per distinct input ``sample_accession`` (first-appearance order), columns
    ``sample_accession`` + :data:`HARMONIZED_FIELDS` (schema :data:`SAMPLES_SCHEMA`; ``age`` is
    Float64, the rest strings; null where no key matched).

    ``conflicts``: ``sample_accession, field, chosen_value, other_values (list of strings), reason``
    with reason in :data:`CONFLICT_REASONS`, sorted by sample, field and reason.
    """

    samples: pl.DataFrame
    conflicts: pl.DataFrame


def space_variants(base_key: str) -> list[str]:
    """refine.bio's space variants: the key, then (if it has a space) with ``_``, ``-``, and none.

    >>> space_variants("cell type")
    ['cell type', 'cell_type', 'cell-type', 'celltype']
    """
    if " " not in base_key:
        return [base_key]
    return [base_key, base_key.replace(" ", "_"), base_key.replace(" ", "-"), base_key.replace(" ", "")]


@lru_cache(maxsize=1)
def _key_table() -> pl.DataFrame:
    rows: list[tuple[str, str, int, str, str, str]] = []
    for field, bases in BASE_KEYS.items():
        for priority, base in enumerate(bases):
            for variant in space_variants(base):
                for wrapper in WRAPPERS:
                    rows.append((wrapper.format(k=variant), field, priority, base, variant, "exact"))
                pattern = BIOSAMPLE_PATTERN.format(k=re.escape(variant))
                rows.append((pattern, field, priority, base, variant, "biosample_regex"))
    table = pl.DataFrame(
        rows,
        schema={
            "key": pl.String,
            "field": pl.String,
            "priority": pl.Int32,
            "base_key": pl.String,
            "variant": pl.String,
            "kind": pl.String,
        },
        orient="row",
    )
    # A key reached from several base keys of one field keeps its best (lowest) priority.
    table = table.sort("priority", maintain_order=True).unique(
        ["key", "field"], keep="first", maintain_order=True
    )
    order = {f: i for i, f in enumerate(HARMONIZED_FIELDS)}
    return (
        table.with_columns(pl.col("field").replace_strict(order, return_dtype=pl.Int32).alias("_f"))
        .with_columns((pl.col("kind") != "exact").alias("_regex"))
        .sort(["_f", "priority", "_regex"], maintain_order=True)
        .drop("_f", "_regex")
    )


def key_table() -> pl.DataFrame:
    """The full expanded key table: ``key, field, priority, base_key, variant, kind``.

    ``kind`` is ``exact`` (``key`` is compared with the lower-cased, stripped raw key) or
    ``biosample_regex`` (``key`` is a regular expression that must match the whole raw key).
    ``priority`` is the index of ``base_key`` in the field's list of :data:`BASE_KEYS` (0 = best);
    it decides which value is kept for the single-value fields ``title`` and ``age``. A key that
    feeds several fields has one row per field. Returns a fresh copy each call.
    """
    return _key_table().clone()


def _as_frame(attributes: pl.DataFrame | pa.Table) -> pl.DataFrame:
    if isinstance(attributes, pa.Table):
        frame = pl.from_arrow(attributes)
        assert isinstance(frame, pl.DataFrame)
    elif isinstance(attributes, pl.DataFrame):
        frame = attributes
    else:
        raise TypeError(
            f"harmonize() needs a polars DataFrame or pyarrow Table, got {type(attributes).__name__}"
        )
    missing = [c for c in _REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"attributes lack required column(s) {missing}; got {frame.columns}")
    if frame.get_column("sample_accession").null_count():
        raise ValueError("attributes have rows with a null sample_accession")
    position = pl.col("position").cast(pl.Int64).fill_null(0) if "position" in frame.columns else pl.lit(0)
    return frame.select(
        pl.col("sample_accession").cast(pl.String),
        pl.col("key").cast(pl.String),
        pl.col("value").cast(pl.String),
        position.alias("position"),
    ).with_row_index("_row")


def _key_mapping(raw_keys: pl.Series) -> pl.DataFrame:
    """Map the distinct raw keys to ``(key, field, priority)`` rows (exact and BioSample regex)."""
    table = _key_table()
    keys = (
        pl.DataFrame({"key": raw_keys})
        .drop_nulls()
        .with_columns(pl.col("key").str.strip_chars().str.to_lowercase().alias("_lk"))
    )
    exact = table.filter(pl.col("kind") == "exact").select(pl.col("key").alias("_lk"), "field", "priority")
    by_variant = table.filter(pl.col("kind") == "biosample_regex").select(
        pl.col("variant").alias("_k"), "field", "priority"
    )
    exact_hits = keys.join(exact, on="_lk", how="inner")
    regex_hits = (
        keys.with_columns(pl.col("_lk").str.extract(_BIOSAMPLE_EXTRACT, 1).alias("_k"))
        .filter(pl.col("_k").is_not_null())
        .join(by_variant, on="_k", how="inner")
        .drop("_k")
    )
    return pl.concat([exact_hits, regex_hits]).group_by(["key", "field"]).agg(pl.col("priority").min())


def _pick_first(
    rows: pl.DataFrame, value: str, field: str, reason: str, out: pl.DataType
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Single-value choice: best priority, then position, then row. Returns (chosen, conflicts)."""
    ordered = rows.sort(["sample_accession", "priority", "position", "_row"])
    grouped = ordered.group_by("sample_accession", maintain_order=True).agg(
        pl.col(value).first().alias(field), pl.col(value).unique(maintain_order=True).alias("_all")
    )
    conflicts = grouped.filter(pl.col("_all").list.len() > 1).select(
        "sample_accession",
        pl.lit(field).alias("field"),
        pl.col(field).cast(pl.String).alias("chosen_value"),
        pl.col("_all").list.slice(1).cast(pl.List(pl.String)).alias("other_values"),
        pl.lit(reason).alias("reason"),
    )
    return grouped.select("sample_accession", pl.col(field).cast(out)), conflicts


def harmonize(attributes: pl.DataFrame | pa.Table) -> HarmonizationResult:
    """Harmonize raw sample attributes (long format) into one row of refine.bio fields per sample.

    ``attributes`` needs columns ``sample_accession``, ``key``, ``value`` (strings) and may have
    ``position`` (int, record order; null/absent = 0) and ``source`` (ignored by the rules). Rows
    with a null key or a null/blank value are ignored. Every distinct sample accession of the input
    gets a row, all-null when none of its keys matched.

    Rules: see the module docstring and ``docs/harmonization.md``. Raises ``TypeError`` for another
    input type and ``ValueError`` when a required column is missing or a sample accession is null.
    """
    frame = _as_frame(attributes)
    all_samples = frame.select(pl.col("sample_accession").unique(maintain_order=True))

    mapping = _key_mapping(frame.get_column("key").unique())
    matched = (
        frame.join(mapping, on="key", how="inner")
        .with_columns(pl.col("value").str.strip_chars().alias("_raw"))
        .filter(pl.col("_raw").is_not_null() & (pl.col("_raw") != ""))
        .with_columns(pl.col("_raw").str.to_lowercase().alias("_v"))
    )

    # Age: float(value), else float(first whitespace token); non-finite or failing -> unparseable.
    ages = matched.filter(pl.col("field") == "age").with_columns(
        pl.coalesce(
            pl.col("_v").cast(pl.Float64, strict=False),
            pl.col("_v").str.extract(r"^(\S+)", 1).cast(pl.Float64, strict=False),
        ).alias("_age")
    )
    ages = ages.with_columns(pl.when(pl.col("_age").is_finite()).then(pl.col("_age")).alias("_age"))
    age_values, age_conflicts = _pick_first(
        ages.filter(pl.col("_age").is_not_null()), "_age", "age", "age_conflict", pl.Float64()
    )
    unparseable = (
        ages.filter(pl.col("_age").is_null())
        .sort(["sample_accession", "priority", "position", "_row"])
        .group_by("sample_accession", maintain_order=True)
        .agg(pl.col("_raw").unique(maintain_order=True).alias("other_values"))
        .join(age_values, on="sample_accession", how="left")
        .select(
            "sample_accession",
            pl.lit("age").alias("field"),
            pl.col("age").cast(pl.String).alias("chosen_value"),
            "other_values",
            pl.lit("unparseable_age").alias("reason"),
        )
    )

    title_values, title_conflicts = _pick_first(
        matched.filter(pl.col("field") == "title"), "_v", "title", "title_conflict", pl.String()
    )

    sex_map = {
        "f": "female",
        "female": "female",
        "woman": "female",
        "m": "male",
        "male": "male",
        "man": "male",
    }
    multi = (
        matched.filter(~pl.col("field").is_in(SINGLE_VALUE_FIELDS))
        .with_columns(
            pl.when(pl.col("field") == "sex")
            .then(pl.col("_v").replace(sex_map))
            .otherwise(pl.col("_v"))
            .alias("_v")
        )
        .group_by(["sample_accession", "field"])
        .agg(pl.col("_v").unique().sort().str.join(";"))
    )
    multi_fields = [f for f in HARMONIZED_FIELDS if f not in SINGLE_VALUE_FIELDS]
    if multi.is_empty():
        wide = all_samples.select("sample_accession")
    else:
        wide = multi.pivot(on="field", index="sample_accession", values="_v")

    samples = (
        all_samples.join(wide, on="sample_accession", how="left", maintain_order="left")
        .join(title_values, on="sample_accession", how="left", maintain_order="left")
        .join(age_values, on="sample_accession", how="left", maintain_order="left")
    )
    samples = samples.with_columns(
        [pl.lit(None, dtype=pl.String).alias(f) for f in multi_fields if f not in samples.columns]
    )
    samples = samples.select([pl.col(c).cast(t) for c, t in SAMPLES_SCHEMA.items()])

    conflicts = pl.concat(
        [
            c.select([pl.col(n).cast(t) for n, t in CONFLICTS_SCHEMA.items()])
            for c in (age_conflicts, unparseable, title_conflicts)
        ]
    ).sort(["sample_accession", "field", "reason"])
    return HarmonizationResult(samples=samples, conflicts=conflicts)
