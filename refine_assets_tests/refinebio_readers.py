"""Readers' compatibility checks for dataset zips: refine.bio's contract, pandas and R (readr + dplyr).

Used by ``unit/test_refinebio_compat.py`` (synthetic world, every aggregation) and
``integration/test_demo.py`` (the demo's real GSE781 + E-MTAB-3050 zip and a species zip).

* :func:`check_contract` - every file, key and JSON type refine.bio's downloads carry
  (``fixtures/refinebio/download_contract.json``, written out from refine.bio's code);
* :func:`read_with_pandas` - the refinebio-examples import steps done with pandas;
* :func:`read_with_r` - the same steps in R exactly as the notebooks write them
  (``fixtures/refinebio/read_like_refinebio_examples.R``: ``readr::read_tsv``, ``dplyr::select(metadata$geo_accession)``
  ...), through Debian's R.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

FIXTURES = Path(__file__).parent / "fixtures" / "refinebio"
CONTRACT = json.loads((FIXTURES / "download_contract.json").read_text())
R_SCRIPT = FIXTURES / "read_like_refinebio_examples.R"
#: the sample annotation columns the refinebio-examples notebooks select
NOTEBOOK_COLUMNS = [
    "refinebio_accession_code",
    "refinebio_title",
    "refinebio_cell_line",
    "refinebio_treatment",
    "refinebio_disease",
    "refinebio_subject",
    "refinebio_sex",
    "refinebio_age",
    "refinebio_specimen_part",
]


def _is(value: Any, spec: str) -> bool:
    checks = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, float),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "list": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
        "any": lambda v: True,
    }
    return any(checks[t](value) for t in spec.split("|"))


def _check_keys(obj: dict, spec: dict[str, str], what: str) -> None:
    for key, types in spec.items():
        assert key in obj, f"{what}: refine.bio key {key!r} missing"
        assert _is(obj[key], types), f"{what}: {key}={obj[key]!r} is not {types}"


def groups_of(names: list[str]) -> list[str]:
    """Group folders of a dataset zip (every top-level folder)."""
    return sorted({n.split("/", 1)[0] for n in names if "/" in n})


def check_contract(zip_path: Path) -> dict[str, Any]:
    """Assert that the zip carries every file, key and type of refine.bio's downloads; returns the
    parsed ``aggregated_metadata.json``."""
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        files = {n: zf.read(n) for n in names}
    for name in CONTRACT["top_level_files"]:
        assert name in files, f"{name} missing"
    agg = json.loads(files["aggregated_metadata.json"])
    quant = agg.get("quant_sf_only") is True
    _check_keys(
        agg, CONTRACT["aggregated_metadata_quant_sf_only" if quant else "aggregated_metadata"], "aggregated"
    )
    if quant:
        for key in CONTRACT["aggregated_metadata_quant_sf_only_absent"]:
            assert key not in agg, f"quant_sf_only dataset has {key}"
    assert re.match(CONTRACT["created_at_format"], agg["created_at"])
    assert agg["num_samples"] == len(agg["samples"]) and agg["num_experiments"] == len(agg["experiments"])
    for acc, sample in agg["samples"].items():
        _check_keys(sample, CONTRACT["sample"], f"sample {acc}")
        assert sample["refinebio_accession_code"] == acc
    for acc, exp in agg["experiments"].items():
        _check_keys(exp, CONTRACT["experiment"], f"experiment {acc}")
        for key in ("source_first_published", "source_last_modified"):
            assert re.match(CONTRACT["experiment_date_format"], exp[key]), (acc, key, exp[key])
    if any(n in files for n in CONTRACT["filtered_files"]):
        for name in CONTRACT["filtered_files"]:
            assert name in files, f"{name} missing"
        for acc, sample in json.loads(files["filtered_samples_metadata.json"]).items():
            _check_keys(sample, CONTRACT["filtered_sample"], f"filtered {acc}")
    layout = "QUANT_SF" if quant else agg["aggregate_by"]
    headers = []
    delivered: set[str] = set()
    for key in groups_of(names):
        for pattern in CONTRACT["group_files"][layout]:
            assert pattern.format(key=key) in files, f"{pattern.format(key=key)} missing"
        meta = pd.read_csv(
            io.BytesIO(files[f"{key}/metadata_{key}.tsv"]), sep="\t", dtype=str, keep_default_na=False
        )
        cols = meta.columns.tolist()
        assert cols[:2] == CONTRACT["tsv_first_columns"]
        for column in CONTRACT["sample"]:
            if column != "refinebio_annotations":
                assert column in cols, f"metadata_{key}.tsv: column {column} missing"
        for column, pattern in CONTRACT["tsv_cells"].items():
            bad = [v for v in meta[column] if not re.match(pattern, v)]
            assert not bad, f"metadata_{key}.tsv: {column} cells {bad[:3]} do not match {pattern}"
        headers.append(cols)
        samples = meta["refinebio_accession_code"].tolist()
        delivered.update(samples)
        if quant:
            for s in samples:
                assert CONTRACT["quant_sf_member"].format(key=key, sample=s) in files
        else:
            matrix_header = files[f"{key}/{key}.tsv"].split(b"\n", 1)[0].decode().split("\t")
            assert matrix_header[0] == CONTRACT["matrix_first_column"]
            assert sorted(matrix_header[1:]) == sorted(samples)
        if layout == "SPECIES":
            species = json.loads(files[f"{key}/metadata_{key}.json"])
            _check_keys(species, CONTRACT["species_json"], f"metadata_{key}.json")
    assert all(h == headers[0] for h in headers), "metadata TSVs of one dataset share one header"
    assert delivered == set(agg["samples"])
    return agg


def id_column(meta: pd.DataFrame) -> str:
    """``geo_accession`` for GEO-only groups (what the microarray notebooks select; a zip without that
    column fails there, as those notebooks would), else the accession."""
    return (
        "geo_accession" if (meta["refinebio_source_database"] == "GEO").all() else "refinebio_accession_code"
    )


def read_with_pandas(zip_path: Path) -> dict[str, dict[str, Any]]:
    """The notebooks' import steps in pandas, per group: ``{group: {samples, n_genes, columns}}``."""
    out = {}
    with zipfile.ZipFile(zip_path) as zf:
        for key in groups_of(zf.namelist()):
            metadata = pd.read_csv(zf.open(f"{key}/metadata_{key}.tsv"), sep="\t")
            expression = pd.read_csv(zf.open(f"{key}/{key}.tsv"), sep="\t").set_index("Gene")
            ids = metadata[id_column(metadata)].tolist()
            expression = expression[ids]  # KeyError if an id is not a matrix column
            assert expression.columns.tolist() == ids
            annotation = metadata[NOTEBOOK_COLUMNS].set_index("refinebio_accession_code")
            assert len(annotation) == len(ids)
            out[key] = {
                "samples": ids,
                "n_genes": len(expression),
                "first_value": float(expression.iloc[0, 0]),
                "age_dtype": str(metadata["refinebio_age"].dtype),
            }
    return out


def read_with_r(zip_path: Path, rscript: str, workdir: Path) -> dict[str, dict[str, Any]]:
    """The notebooks' import steps in R (readr, tibble, dplyr), per group; fails with R's message."""
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(workdir)
        keys = groups_of(zf.namelist())
    out = {}
    for key in keys:
        meta = pd.read_csv(workdir / key / f"metadata_{key}.tsv", sep="\t", dtype=str)
        proc = subprocess.run(
            [
                rscript,
                str(R_SCRIPT),
                str(workdir / key / f"metadata_{key}.tsv"),
                str(workdir / key / f"{key}.tsv"),
                id_column(meta),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"R failed on {key}: {proc.stderr[-2000:]}"
        out[key] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out
