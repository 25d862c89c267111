"""The code location loads, validates, and has the shape the architecture requires."""

from __future__ import annotations

import re

import dagster as dg

from refine_assets.definitions import build_defs
from refine_assets.defs.partitions import (
    affy_platform_partitions,
    experiment_partitions,
    illumina_platform_partitions,
    organism_length_partitions,
    organism_partitions,
    read_length_partitions,
)
from refine_assets.graph_diagram import asset_graph_mermaid
from refine_assets.settings import Settings
from refine_assets_tests.conftest import REPO_ROOT


def _defs(tmp_path) -> dg.Definitions:
    settings = Settings(home=tmp_path, storage_root=str(tmp_path / "s"), warehouse_path=tmp_path / "w.duckdb")
    return build_defs(settings)


def test_definitions_validate(tmp_path) -> None:
    defs = _defs(tmp_path)
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"experiment_survey", "metadata_warehouse"} <= keys
    for name in ("survey_job", "warehouse_job"):
        assert defs.resolve_job_def(name).name == name


def test_every_asset_in_a_group_and_partitioned_by_shared_defs(tmp_path) -> None:
    graph = _defs(tmp_path).resolve_asset_graph()
    for node in graph.asset_nodes:
        assert node.group_name and node.group_name != "default", node.key
        if node.partitions_def is not None:
            assert node.partitions_def in (
                experiment_partitions,
                organism_partitions,
                affy_platform_partitions,
                illumina_platform_partitions,
                organism_length_partitions,
            ), node.key
    # no organism x experiment cross product anywhere: the only multi-partition is organism x the
    # two static read-length classes of the salmon indices
    multi = [n for n in graph.asset_nodes if isinstance(n.partitions_def, dg.MultiPartitionsDefinition)]
    assert [n.key.to_user_string() for n in multi] == ["transcriptome_index"]
    dims = {d.name: d.partitions_def for d in organism_length_partitions.partitions_defs}
    assert dims == {"organism": organism_partitions, "length": read_length_partitions}


def test_warehouse_is_single_writer(tmp_path) -> None:
    graph = _defs(tmp_path).resolve_asset_graph()
    node = graph.get(dg.AssetKey("metadata_warehouse"))
    assert node.pools == {"warehouse"}


def test_replay_mode_selects_replay_resource(tmp_path) -> None:
    from refine_assets.resources import ReplayHttpResource

    settings = Settings(
        home=tmp_path,
        storage_root=str(tmp_path / "s"),
        warehouse_path=tmp_path / "w.duckdb",
        http_mode="replay",
    )
    defs = build_defs(settings)
    assert isinstance(defs.resources["http"], ReplayHttpResource)


def test_readme_asset_graph_is_current(tmp_path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- asset-graph:start -->\n```mermaid\n(.*?)```\n<!-- asset-graph:end -->", readme, re.S
    )
    assert block, "README lost its asset-graph block"
    assert block.group(1) == asset_graph_mermaid(_defs(tmp_path)), (
        "regenerate with: refine-assets asset-graph"
    )
