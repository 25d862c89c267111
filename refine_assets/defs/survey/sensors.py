"""Discovery sensors: one per source, adding new experiment partitions and requesting their survey.

Each sensor lists one date window of its source per tick (:mod:`refine_assets.lib.discovery`),
registers accessions that are not yet ``experiment`` partitions with
``experiment_partitions.build_add_request`` and asks for one ``experiment_survey`` run per new
partition (``run_key = "<accession>:discovered"``). Ticks stay small and idempotent (architecture
notes, pitfalls 6-7): the cursor is a high-water mark ``{"high_water": "YYYY-MM-DD", "offset": n}``,
at most ``max_runs_per_tick`` runs and ``max_pages_per_tick`` requests per tick, paging continues
across ticks through the offset, and the high-water mark moves only when a window is exhausted.
An HTTP failure or a malformed answer skips the tick and leaves the cursor as it was, so the next
tick retries the same page.

The first tick (no cursor) starts ``lookback_days`` before today, or at the date in
``$REFINE_ASSETS_DISCOVERY_START_DATE`` (``YYYY-MM-DD``) when set. Sensors are created STOPPED;
the initial bulk load is a backfill, not sensor output.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from refine_assets.defs.partitions import experiment_partitions
from refine_assets.lib.discovery import (
    ARRAY_EXPRESS,
    DEFAULT_TAXA,
    ENA,
    GEO,
    DiscoveryCursor,
    DiscoveryError,
    make_fetcher,
    plan_tick,
)
from refine_assets.lib.http import HttpError
from refine_assets.resources import HttpClientResource

SURVEY_ASSET = dg.AssetKey("experiment_survey")
PROCESSED_ASSET = dg.AssetKey("experiment_processed")
# A discovered experiment is surveyed and its samples processed in the same run.
RUN_ASSETS = [SURVEY_ASSET, PROCESSED_ASSET]
SOURCE_TAG = "refine_assets/source"
START_DATE_ENV = "REFINE_ASSETS_DISCOVERY_START_DATE"

# Source constant -> short label used in sensor names and in the run tag.
SOURCE_LABELS: dict[str, str] = {GEO: "geo", ENA: "ena", ARRAY_EXPRESS: "arrayexpress"}


def utc_today() -> date:
    """Today's date in UTC (the sensors' clock)."""
    return datetime.now(UTC).date()


def first_start(today: date, lookback_days: int, start_date: date | None = None) -> date:
    """Where a sensor without cursor starts: ``start_date``, else ``$REFINE_ASSETS_DISCOVERY_START_DATE``,
    else ``today - lookback_days``. An unreadable environment value raises ``ValueError``."""
    if start_date is not None:
        return start_date
    env = os.environ.get(START_DATE_ENV, "").strip()
    if env:
        try:
            return date.fromisoformat(env)
        except ValueError as exc:
            raise ValueError(f"${START_DATE_ENV} is not a YYYY-MM-DD date: {env!r}") from exc
    return today - timedelta(days=lookback_days)


def build_discovery_sensor(
    source: str,
    *,
    taxa: Sequence[int | str] = DEFAULT_TAXA,
    options: Mapping[str, Any] | None = None,
    name: str | None = None,
    max_runs_per_tick: int = 25,
    max_pages_per_tick: int = 4,
    window_days: int = 7,
    lookback_days: int = 7,
    start_date: date | None = None,
    minimum_interval_seconds: int = 3600,
    clock: Callable[[], date] = utc_today,
) -> dg.SensorDefinition:
    """A discovery sensor for ``source`` (``GEO``, ``ENA`` or ``ARRAY_EXPRESS``).

    ``taxa`` filter GEO and ENA listings (NCBI taxonomy ids); ``options`` are extra arguments of
    the source's ``*_discover`` function. Each tick requests pages of ``max_runs_per_tick`` rows,
    so it never has more new accessions than that cap. ``clock`` gives "today" (tests fix it).
    The sensor needs an ``http`` resource (:class:`HttpClientResource`). Returns the definition
    named ``<label>_discovery_sensor`` unless ``name`` is given.
    """
    if source not in SOURCE_LABELS:
        raise ValueError(f"unknown discovery source {source!r}")
    label = SOURCE_LABELS[source]
    if max_runs_per_tick <= 0:
        raise ValueError("max_runs_per_tick must be positive")

    @dg.sensor(
        name=name or f"{label}_discovery_sensor",
        target=RUN_ASSETS,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Lists {source} experiments published in a date window (high-water-mark cursor), adds the new "
            f"ones as 'experiment' partitions and requests at most {max_runs_per_tick} "
            "experiment_survey runs per tick."
        ),
    )
    def _discovery_sensor(
        context: dg.SensorEvaluationContext, http: HttpClientResource
    ) -> dg.SensorResult | dg.SkipReason:
        today = clock()
        try:
            cursor = DiscoveryCursor.from_json(context.cursor, first_start(today, lookback_days, start_date))
        except ValueError as exc:
            return dg.SkipReason(f"{source} discovery: {exc}; fix or reset the sensor cursor")
        fetch = make_fetcher(source, http.get_client(), taxa, options)
        instance = context.instance

        def is_known(accession: str) -> bool:
            return instance.has_dynamic_partition(experiment_partitions.name, accession)

        try:
            plan = plan_tick(
                fetch,
                cursor,
                today,
                is_known,
                max_new=max_runs_per_tick,
                window_days=window_days,
                max_pages=max_pages_per_tick,
                errors=(DiscoveryError, HttpError),
            )
        except (DiscoveryError, HttpError) as exc:
            context.log.warning(f"{source} discovery failed at {cursor.to_json()}: {exc}")
            return dg.SkipReason(f"{source} discovery failed, cursor kept at {cursor.to_json()}: {exc}")
        if plan.error is not None:
            context.log.warning(f"{source} discovery stopped early, will resume next tick: {plan.error}")
        windows = ", ".join(f"[{s.isoformat()} .. {e.isoformat()}]" for s, e in plan.windows)
        new = plan.new_accessions
        if not new:
            return dg.SensorResult(
                skip_reason=f"no new {source} accessions in {windows} ({plan.pages} page(s))",
                cursor=plan.cursor.to_json(),
            )
        context.log.info(f"{source}: {len(new)} new accession(s) in {windows}: {', '.join(new)}")
        run_requests = [
            dg.RunRequest(
                partition_key=accession,
                run_key=f"{accession}:discovered",
                asset_selection=RUN_ASSETS,
                tags={SOURCE_TAG: label},
            )
            for accession in new
        ][:max_runs_per_tick]
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[experiment_partitions.build_add_request(new)],
            cursor=plan.cursor.to_json(),
        )

    return _discovery_sensor


geo_discovery_sensor = build_discovery_sensor(GEO)
ena_discovery_sensor = build_discovery_sensor(ENA)
arrayexpress_discovery_sensor = build_discovery_sensor(ARRAY_EXPRESS)
