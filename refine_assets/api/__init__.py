"""refine.bio-compatible HTTP API (``/v1/``) over the DuckDB warehouse and the artifact store.

``refine-assets serve`` runs :func:`refine_assets.api.app.create_app_from_env` under uvicorn. Routes
(:mod:`~refine_assets.api.routes`) are thin: they parse the request, call a query module
(:mod:`~refine_assets.api.experiments`, :mod:`~refine_assets.api.samples`, :mod:`~refine_assets.api.search`,
:mod:`~refine_assets.api.references`, :mod:`~refine_assets.api.files`, :mod:`~refine_assets.api.datasets`)
and return its dict. The warehouse is read through read-only snapshots
(:mod:`~refine_assets.api.snapshot`); tokens and datasets live in the API's own SQLite store
(:mod:`~refine_assets.api.state`), never in the warehouse. ``docs/api.md`` lists every endpoint and
every difference from refine.bio's API.
"""
