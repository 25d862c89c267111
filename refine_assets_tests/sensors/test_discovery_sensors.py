"""Discovery sensors (``refine_assets.defs.survey.sensors``) ticked against real-format answers.

The HTTP resource is the real :class:`ReplayHttpResource`: answers are the constructed fixtures of
``fixtures/discovery`` registered for the exact URLs the sensors build, and error answers are small
vcrpy cassettes written to ``tmp_path``. "Today" is fixed at 2024-03-15 through the factory's clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from refine_assets.defs.partitions import experiment_partitions
from refine_assets.defs.survey import sensors as s
from refine_assets.lib import discovery as d
from refine_assets.lib.http import build_url
from refine_assets.resources import ReplayHttpResource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "discovery"
TODAY = date(2024, 3, 15)
WEEK_AGO = date(2024, 3, 8)
TAXA = [9606, 10090]


@pytest.fixture(autouse=True)
def _no_start_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(s.START_DATE_ENV, raising=False)


@pytest.fixture(scope="module")
def _module_instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def instance(_module_instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """An instance with on-disk storage (it has an InstanceRef, like the daemon's) and no
    experiment partitions; shared by the module (creating one takes seconds), emptied per test."""
    for key in _module_instance.get_dynamic_partitions("experiment"):
        _module_instance.delete_dynamic_partition("experiment", key)
    return _module_instance


def geo_url(start: date, end: date, offset: int, limit: int) -> str:
    return build_url(d.GEO_ESEARCH_URL, d.geo_search_params(start, end, TAXA, offset, limit))


def ena_url(start: date, end: date, offset: int, limit: int) -> str:
    return build_url(d.ENA_SEARCH_URL, d.ena_search_params(start, end, TAXA, offset, limit))


def ae_url(start: date, end: date, offset: int, limit: int) -> str:
    return build_url(d.ARRAYEXPRESS_SEARCH_URL, d.arrayexpress_search_params(start, end, offset, limit))


def replay(files: dict[str, str] | None = None, cassettes: list[str] | None = None) -> ReplayHttpResource:
    return ReplayHttpResource(
        files={url: str(FIXTURES / name) for url, name in (files or {}).items()}, cassettes=cassettes or []
    )


def error_cassette(tmp_path: Path, url: str, status: int, body: str) -> str:
    """A vcrpy cassette holding one recorded error answer for GET ``url``."""
    doc = {
        "version": 1,
        "interactions": [
            {
                "request": {"method": "GET", "uri": url, "body": None, "headers": {}},
                "response": {
                    "status": {"code": status, "message": "Internal Server Error"},
                    "headers": {"Content-Type": ["text/html"]},
                    "body": {"string": body},
                },
            }
        ],
    }
    path = tmp_path / "error.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@dg.asset(key="experiment_processed", partitions_def=experiment_partitions, deps=["experiment_survey"])
def stub_experiment_processed() -> None:
    """Stand-in for the processing asset (same key and partitions)."""


@dg.asset(key="experiment_survey", partitions_def=experiment_partitions)
def stub_experiment_survey() -> None:
    """Stands in for the real survey asset (same key and partitions) so run requests resolve."""


def tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, http: ReplayHttpResource, cursor: str | None
) -> Any:
    """One tick as the daemon evaluates it: inside a partition-loading context backed by the
    instance, with run requests resolved and validated against the asset graph (partition keys
    added by the same tick's requests count as existing)."""
    defs = dg.Definitions(assets=[stub_experiment_survey, stub_experiment_processed], sensors=[sensor])
    context = dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),  # as in the daemon: enables the partition-request-aware loader
        cursor=cursor,
        resources={"http": http},
        definitions=defs,
    )
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return sensor.evaluate_tick(context)


def apply_partition_requests(instance: dg.DagsterInstance, result: Any) -> None:
    """What the daemon does after a tick: add the requested partitions."""
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def added_keys(result: Any) -> list[str]:
    (request,) = result.dynamic_partitions_requests
    assert isinstance(request, dg.AddDynamicPartitionsRequest)
    assert request.partitions_def_name == "experiment"
    return list(request.partition_keys)


def cursor_of(result: Any) -> dict:
    return json.loads(result.cursor)


def test_module_sensors_shape() -> None:
    sensors = [s.geo_discovery_sensor, s.ena_discovery_sensor, s.arrayexpress_discovery_sensor]
    assert [x.name for x in sensors] == [
        "geo_discovery_sensor",
        "ena_discovery_sensor",
        "arrayexpress_discovery_sensor",
    ]
    for sensor in sensors:
        assert sensor.minimum_interval_seconds == 3600
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
        assert sensor.required_resource_keys == {"http"}
        (target,) = sensor.targets
        assert target.resolvable_to_job.selection.selected_keys == [
            dg.AssetKey("experiment_survey"),
            dg.AssetKey("experiment_processed"),
        ]
    with pytest.raises(ValueError, match="unknown discovery source"):
        s.build_discovery_sensor("PRIDE")
    # They load beside an experiment_survey asset with an http resource bound.
    dg.Definitions.validate_loadable(
        dg.Definitions(
            assets=[stub_experiment_survey, stub_experiment_processed],
            sensors=sensors,
            resources={"http": ReplayHttpResource()},
        )
    )


def test_geo_first_tick_caps_runs_and_pages_on_across_ticks(instance: dg.DagsterInstance) -> None:
    """More series than the cap: 4 now (offset kept), the other 2 next tick, then nothing new."""
    sensor = s.build_discovery_sensor(d.GEO, taxa=TAXA, max_runs_per_tick=4, clock=lambda: TODAY)
    http = replay(
        {
            geo_url(WEEK_AGO, TODAY, 0, 4): "geo_esearch_page1.json",
            geo_url(WEEK_AGO, TODAY, 4, 4): "geo_esearch_page2.json",
            geo_url(TODAY, TODAY, 0, 4): "geo_esearch_empty.json",
        }
    )

    first = tick(sensor, instance, http, cursor=None)
    assert added_keys(first) == ["GSE262100", "GSE262054", "GSE261987", "GSE261950"]
    assert [r.partition_key for r in first.run_requests] == added_keys(first)
    request = first.run_requests[0]
    assert request.run_key == "GSE262100:discovered"
    assert request.asset_selection == [dg.AssetKey("experiment_survey"), dg.AssetKey("experiment_processed")]
    assert request.tags[s.SOURCE_TAG] == "geo"
    # The window [03-08 .. 03-15] has 6 series: not exhausted, so the high-water mark stays.
    assert cursor_of(first) == {"high_water": "2024-03-08", "offset": 4}
    apply_partition_requests(instance, first)

    second = tick(sensor, instance, http, cursor=first.cursor)
    assert added_keys(second) == ["GSE261902", "GSE261875"]
    assert [r.run_key for r in second.run_requests] == ["GSE261902:discovered", "GSE261875:discovered"]
    assert cursor_of(second) == {"high_water": "2024-03-15", "offset": 0}
    apply_partition_requests(instance, second)
    assert len(instance.get_dynamic_partitions("experiment")) == 6

    third = tick(sensor, instance, http, cursor=second.cursor)
    assert third.run_requests == [] and third.dynamic_partitions_requests == []
    assert "no new GEO accessions in [2024-03-15 .. 2024-03-15]" in third.skip_message
    assert cursor_of(third) == {"high_water": "2024-03-15", "offset": 0}


def test_ena_first_tick_then_no_new_data(instance: dg.DagsterInstance) -> None:
    sensor = s.build_discovery_sensor(d.ENA, taxa=TAXA, clock=lambda: TODAY)
    http = replay(
        {
            ena_url(WEEK_AGO, TODAY, 0, 25): "ena_read_study_window.json",
            ena_url(TODAY, TODAY, 0, 25): "ena_read_study_today.json",
        }
    )
    first = tick(sensor, instance, http, cursor=None)
    expected = ["SRP494101", "ERP156020", "DRP010501", "PRJNA1090155", "SRP494180"]
    assert added_keys(first) == expected
    assert [r.partition_key for r in first.run_requests] == expected
    assert {r.tags[s.SOURCE_TAG] for r in first.run_requests} == {"ena"}
    assert cursor_of(first) == {"high_water": "2024-03-15", "offset": 0}
    apply_partition_requests(instance, first)

    # Today is listed again (studies keep appearing during the day): its only study is known.
    second = tick(sensor, instance, http, cursor=first.cursor)
    assert second.run_requests == [] and second.dynamic_partitions_requests == []
    assert second.skip_message.startswith("no new ENA accessions")
    assert cursor_of(second) == {"high_water": "2024-03-15", "offset": 0}


def test_arrayexpress_does_not_readd_known_partitions(instance: dg.DagsterInstance) -> None:
    sensor = s.build_discovery_sensor(d.ARRAY_EXPRESS, clock=lambda: TODAY)
    instance.add_dynamic_partitions("experiment", ["E-MTAB-13901", "GSE1"])
    http = replay({ae_url(WEEK_AGO, TODAY, 0, 25): "arrayexpress_search_window.json"})
    result = tick(sensor, instance, http, cursor=None)
    assert added_keys(result) == ["E-MTAB-13925", "E-MEXP-3999"]
    assert [r.run_key for r in result.run_requests] == ["E-MTAB-13925:discovered", "E-MEXP-3999:discovered"]
    assert {r.tags[s.SOURCE_TAG] for r in result.run_requests} == {"arrayexpress"}
    assert cursor_of(result) == {"high_water": "2024-03-15", "offset": 0}


def test_http_500_skips_and_keeps_cursor(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    sensor = s.build_discovery_sensor(d.GEO, taxa=TAXA, max_runs_per_tick=4, clock=lambda: TODAY)
    cursor = json.dumps({"high_water": "2024-03-08", "offset": 4})
    cassette = error_cassette(
        tmp_path, geo_url(WEEK_AGO, TODAY, 4, 4), 500, "<html>Internal Server Error</html>"
    )
    result = tick(sensor, instance, replay(cassettes=[cassette]), cursor=cursor)
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert "HTTP 500" in result.skip_message
    assert result.cursor == cursor  # unchanged: the next tick retries the same page
    # Calling the sensor directly returns a SkipReason (no cursor update at all).
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={"http": replay(cassettes=[cassette])},
    )
    assert isinstance(sensor(context), dg.SkipReason)


def test_malformed_answer_skips_and_keeps_cursor(instance: dg.DagsterInstance) -> None:
    sensor = s.build_discovery_sensor(d.ARRAY_EXPRESS, clock=lambda: TODAY)
    http = replay({ae_url(WEEK_AGO, TODAY, 0, 25): "arrayexpress_search_malformed.json"})
    result = tick(sensor, instance, http, cursor=None)
    assert result.run_requests == []
    assert "ARRAY_EXPRESS discovery: search answer has no 'totalHits'" in result.skip_message
    assert result.cursor is None  # still no cursor: the first tick will be retried


def test_unrecorded_request_and_bad_cursor_skip(instance: dg.DagsterInstance) -> None:
    sensor = s.build_discovery_sensor(d.ENA, taxa=TAXA, clock=lambda: TODAY)
    result = tick(sensor, instance, replay(), cursor=None)
    assert "no recorded response" in result.skip_message
    bad = tick(sensor, instance, replay(), cursor="not json")
    assert "unreadable discovery cursor" in bad.skip_message
    assert bad.cursor == "not json"


def test_start_date_from_environment(monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance) -> None:
    monkeypatch.setenv(s.START_DATE_ENV, "2024-03-15")
    sensor = s.build_discovery_sensor(d.GEO, taxa=TAXA, clock=lambda: TODAY)
    http = replay({geo_url(TODAY, TODAY, 0, 25): "geo_esearch_empty.json"})
    result = tick(sensor, instance, http, cursor=None)
    assert "[2024-03-15 .. 2024-03-15]" in result.skip_message
    assert cursor_of(result) == {"high_water": "2024-03-15", "offset": 0}
    monkeypatch.setenv(s.START_DATE_ENV, "last week")
    with pytest.raises(ValueError, match=s.START_DATE_ENV):
        s.first_start(TODAY, 7)


def test_experiment_partitions_definition_is_the_shared_one() -> None:
    request = experiment_partitions.build_add_request(["GSE1"])
    assert request.partitions_def_name == "experiment"
