"""Dataset requests: refine.bio's shape, defaults, normalization and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refine_assets.lib.delivery.request import DatasetRequestError, load_request, parse_request


def test_refinebio_shape_and_defaults() -> None:
    req = parse_request({"data": {"GSE2": ["GSM3", " GSM1 ", "GSM3"], "SRP1": ["ALL"], "E-MTAB-1": "ALL"}})
    assert req.aggregate_by == "EXPERIMENT"
    assert req.scale_by == "NONE"
    assert req.quantile_normalize is True
    assert req.data["GSE2"] == ("GSM1", "GSM3")  # stripped, deduplicated, sorted
    assert req.is_all("SRP1") and req.is_all("E-MTAB-1") and not req.is_all("GSE2")
    assert req.experiments == ["E-MTAB-1", "GSE2", "SRP1"]
    assert req.to_dict()["data"] == {"E-MTAB-1": ["ALL"], "GSE2": ["GSM1", "GSM3"], "SRP1": ["ALL"]}


def test_options_are_case_insensitive_and_stored_upper_case() -> None:
    req = parse_request(
        {
            "data": {"GSE1": ["GSM1"]},
            "aggregate_by": "species",
            "scale_by": "MinMax",
            "quantile_normalize": False,
        }
    )
    assert (req.aggregate_by, req.scale_by, req.quantile_normalize) == ("SPECIES", "MINMAX", False)
    assert parse_request({"data": {"GSE1": "all"}, "aggregate_by": "ALL"}).aggregate_by == "ALL"
    assert parse_request({"data": {"GSE1": ["x"]}, "scale_by": "robust"}).scale_by == "ROBUST"


def test_refinebio_api_object_is_accepted(tmp_path: Path) -> None:
    api = {
        "id": "0b5d2e9c-8f7f-4f43-9d8e-111111111111",
        "data": {"GSE1": ["GSM1"]},
        "aggregate_by": "EXPERIMENT",
        "scale_by": "NONE",
        "is_processing": False,
        "is_processed": True,
        "email_address": "someone@example.org",
        "quant_sf_only": False,
        "svd_algorithm": "ARPACK",
        "quantile_normalize": True,
    }
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(api))
    req = load_request(path)
    assert req.dataset_id == api["id"]
    assert req.to_dict()["dataset_id"] == api["id"]
    assert req.quant_sf_only is False and "quant_sf_only" not in req.to_dict()
    quant = parse_request({**api, "quant_sf_only": True})
    assert quant.quant_sf_only is True and quant.to_dict()["quant_sf_only"] is True


def test_yaml_request(tmp_path: Path) -> None:
    path = tmp_path / "request.yaml"
    path.write_text(
        "data:\n  GSE781: [GSM11805, GSM11810]\n  SRP095529: ALL\naggregate_by: species\nquantile_normalize: false\n"
    )
    req = load_request(path)
    assert req.data == {"GSE781": ("GSM11805", "GSM11810"), "SRP095529": ("ALL",)}
    assert req.aggregate_by == "SPECIES" and req.quantile_normalize is False
    other = tmp_path / "request.txt"  # no suffix hint: JSON first, then YAML
    other.write_text("data: {GSE1: [GSM1]}\n")
    assert load_request(other).data == {"GSE1": ("GSM1",)}


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ([], "must be a JSON/YAML object"),
        ({}, "data must be a non-empty object"),
        ({"data": {}}, "data must be a non-empty object"),
        ({"data": ["GSE1"]}, "data must be a non-empty object"),
        ({"data": {"GSE1": []}}, "non-empty list"),
        ({"data": {"GSE1": ["GSM1", "ALL"]}}, "mixes 'ALL'"),
        ({"data": {"GSE1": [5]}}, "must be a string accession"),
        ({"data": {"GSE1": ["GSM 1"]}}, "is not an accession"),
        ({"data": {"GSE1": [""]}}, "is empty"),
        ({"data": {"GSE1": ["GSM1"]}, "aggregate_by": "platform"}, "aggregate_by must be one of"),
        ({"data": {"GSE1": ["GSM1"]}, "scale_by": "zscore"}, "scale_by must be one of"),
        (
            {"data": {"GSE1": ["GSM1"]}, "quantile_normalize": "no"},
            "quantile_normalize must be true or false",
        ),
        ({"data": {"GSE1": ["GSM1"]}, "scale": "STANDARD"}, "unknown request field(s) 'scale'"),
        ({"data": {"GSE1": ["GSM1"]}, "quant_sf_only": "yes"}, "quant_sf_only must be true or false"),
        ({"data": {"GSE1": ["GSM1"]}, "id": "../etc"}, "dataset id"),
    ],
)
def test_bad_requests_name_the_problem(obj, fragment: str) -> None:
    with pytest.raises(DatasetRequestError) as err:
        parse_request(obj)
    assert fragment in str(err.value)


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetRequestError, match="no such request file"):
        load_request(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": {')
    with pytest.raises(DatasetRequestError, match=r"broken\.json: not valid JSON/YAML"):
        load_request(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"data": {"GSE1": ["GSM1"]}, "aggregate_by": "x"}')
    with pytest.raises(DatasetRequestError, match=r"wrong\.json: aggregate_by"):
        load_request(wrong)
