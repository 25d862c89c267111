"""The ``/v1/`` routes: each handler parses its request and calls one resource module.

Paths as refine.bio's ``api/data_refinery_api/urls.py`` (a path without its trailing slash redirects
to it), plus ``/v1/downloads/<kind>/<ref>/`` (signed download links) and ``/health``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import FileResponse, RedirectResponse, StreamingResponse
from starlette.routing import Route

from refine_assets.api import datasets, experiments, files, references, samples, search
from refine_assets.api.errors import ApiError, field_errors, not_found
from refine_assets.api.snapshot import WarehouseUnavailable

UUID_CHARS = set("0123456789abcdef-")


def _uuid_like(value: str) -> bool:
    return bool(value) and set(value.lower()) <= UUID_CHARS and len(value) <= 64


# --- links ----------------------------------------------------------------------------------------
def file_link(s, req, row: dict[str, Any]) -> str | None:
    """A download link for a computed file row (None when it is not in the store)."""
    from refine_assets.api.downloads import presigned_url

    if not row.get("key"):
        return None
    if row["kind"] not in ("compendium", "quantpendium"):
        url = presigned_url(s.store, row["key"], s.config.download_ttl)
        if url:
            return url
    return s.signer.link(req.base_url, "file", str(row["id"]))


def token_file_link(s, req):
    """``download_url`` for files: a link with an activated token, else None (field omitted)."""
    active = s.state.is_active_token(req.api_key)
    return (lambda row: file_link(s, req, row)) if active else (lambda row: None)


def dataset_link(s, req, row: dict[str, Any]) -> str | None:
    from refine_assets.api.downloads import presigned_url

    if not (row["is_available"] and row.get("store_key")):
        return None
    return presigned_url(s.store, row["store_key"], s.config.download_ttl) or s.signer.link(
        req.base_url, "dataset", row["id"]
    )


# --- resources ------------------------------------------------------------------------------------
def h_search(s, req):
    snap = s.snapshots.current()
    with snap.cursor() as cur:
        return search.search(cur, req.query, req.url, snap.fts)


def h_experiments(s, req):
    with s.snapshots.current().cursor() as cur:
        return experiments.list_experiments(cur, req.query, req.url)


def h_experiment(s, req):
    req.query.check([])
    with s.snapshots.current().cursor() as cur:
        return experiments.experiment_detail(cur, req.params["accession"])


def _dataset_data(s):
    def data(dataset_id: str):
        row = s.state.get_dataset(dataset_id) if _uuid_like(dataset_id) else None
        return row["data"] if row else None

    return data


def h_samples(s, req):
    with s.snapshots.current().cursor() as cur:
        return samples.list_samples(cur, req.query, req.url, _dataset_data(s), s.store)


def h_sample(s, req):
    req.query.check([])
    with s.snapshots.current().cursor() as cur:
        return samples.sample_detail(cur, req.params["accession"], s.store)


def h_organisms(s, req):
    with s.snapshots.current().cursor() as cur:
        return references.list_organisms(cur, req.query, req.url)


def h_organism(s, req):
    req.query.check([])
    with s.snapshots.current().cursor() as cur:
        return references.organism_detail(cur, req.params["name"])


def h_platforms(s, req):
    with s.snapshots.current().cursor() as cur:
        return references.list_platforms(cur, req.query)


def h_institutions(s, req):
    with s.snapshots.current().cursor() as cur:
        return references.list_institutions(cur, req.query)


def h_qn_targets(s, req):
    with s.snapshots.current().cursor() as cur:
        return references.list_qn_targets(cur, req.query)


def h_qn_target(s, req):
    req.query.check([])
    with s.snapshots.current().cursor() as cur:
        return references.qn_target_detail(
            cur, req.params["organism"], s.store, lambda r: file_link(s, req, r)
        )


def h_indices(s, req):
    with s.snapshots.current().cursor() as cur:
        return references.list_transcriptome_indices(
            cur, req.query, req.url, s.store, lambda r: file_link(s, req, r)
        )


def h_index(s, req):
    req.query.check([])
    with s.snapshots.current().cursor() as cur:
        return references.transcriptome_index_detail(
            cur, req.params["id"], s.store, lambda r: file_link(s, req, r)
        )


def h_compendia(s, req):
    with s.snapshots.current().cursor() as cur:
        return references.list_compendia(cur, req.query, req.url, s.store, token_file_link(s, req))


def h_compendium(s, req):
    req.query.check([])
    with s.snapshots.current().cursor() as cur:
        return references.compendium_detail(cur, req.params["id"], s.store, token_file_link(s, req))


def h_computed_files(s, req):
    with s.snapshots.current().cursor() as cur:
        return files.list_computed_files(cur, req.query, req.url, s.store, token_file_link(s, req))


def h_computed_file(s, req):
    req.query.check([])
    with s.snapshots.current().cursor() as cur:
        return files.computed_file_detail(cur, req.params["id"], s.store, token_file_link(s, req))


def h_original_files(s, req):
    with s.snapshots.current().cursor() as cur:
        return files.list_original_files(cur, req.query, req.url)


def h_original_file(s, req):
    req.query.check([])
    with s.snapshots.current().cursor() as cur:
        return files.original_file_detail(cur, req.params["id"])


def h_stats_about(s, req):
    with s.snapshots.current().cursor() as cur:
        return references.stats_about(cur, req.query)


# --- tokens ---------------------------------------------------------------------------------------
def _token_body(s, token: dict[str, Any]) -> dict[str, Any]:
    return {"id": token["id"], "is_activated": token["is_activated"], "terms_and_conditions": s.config.terms}


def _is_activated(body: Any) -> bool | None:
    if not isinstance(body, dict):
        raise field_errors([("non_field_errors", "invalid", "Invalid data. Expected a dictionary.")])
    unknown = sorted(set(body) - {"is_activated", "id", "terms_and_conditions"})
    if unknown:
        raise field_errors([(k, "invalid", f"Unknown field {k!r}.") for k in unknown])
    value = body.get("is_activated")
    if value is None:
        return None
    if not isinstance(value, bool):
        raise field_errors([("is_activated", "invalid", "Must be a valid boolean.")])
    return value


def h_token_create(s, req):
    req.query.check([])
    activated = _is_activated(req.body)
    return _token_body(s, s.state.create_token(bool(activated)))


def h_token(s, req):
    req.query.check([])
    token = s.state.get_token(req.params["id"]) if _uuid_like(req.params["id"]) else None
    if token is None:
        raise not_found()
    return _token_body(s, token)


def h_token_update(s, req):
    req.query.check([])
    token_id = req.params["id"]
    if not _uuid_like(token_id) or s.state.get_token(token_id) is None:
        raise not_found()
    activated = _is_activated(req.body)
    token = s.state.set_token(token_id, activated) if activated is not None else s.state.get_token(token_id)
    return _token_body(s, token)


# --- datasets -------------------------------------------------------------------------------------
def _dataset_body(s, req, row: dict[str, Any]) -> dict[str, Any]:
    from refine_assets.api.downloads import s3_location

    row = s.builder.check_stale(row)
    with_url = s.state.is_active_token(req.api_key)
    details = req.query.get("details") is not None
    cur_ctx = s.snapshots.current().cursor() if details else None
    if cur_ctx is None:
        return datasets.serialize(
            row,
            with_url=with_url,
            download_url=dataset_link(s, req, row) if with_url else None,
            details=False,
            s3=s3_location(s.store, row.get("store_key")),
        )
    with cur_ctx as cur:
        return datasets.serialize(
            row,
            with_url=with_url,
            download_url=dataset_link(s, req, row) if with_url else None,
            details=True,
            s3=s3_location(s.store, row.get("store_key")),
            cur=cur,
        )


def h_dataset_create(s, req):
    req.query.check(["details"])
    with s.snapshots.current().cursor() as cur:
        row = datasets.create(s.state, cur, req.body, req.api_key, s.builder)
    return _dataset_body(s, req, row)


def h_dataset(s, req):
    req.query.check(["details"])
    if not _uuid_like(req.params["id"]):
        raise not_found()
    return _dataset_body(s, req, datasets.get_or_404(s.state, req.params["id"]))


def h_dataset_update(s, req):
    req.query.check(["details"])
    if not _uuid_like(req.params["id"]):
        raise not_found()
    with s.snapshots.current().cursor() as cur:
        row = datasets.update(s.state, cur, req.params["id"], req.body, req.api_key, s.builder)
    return _dataset_body(s, req, row)


# --- downloads, health, index ---------------------------------------------------------------------
def h_download(s, req):
    from refine_assets.api.downloads import file_response_parts, zip_stream

    kind, ref = req.params["kind"], req.params["ref"]
    req.query.check(["expires", "signature"])
    if not s.signer.valid(kind, ref, req.query.get("expires"), req.query.get("signature")):
        raise ApiError(403, {"detail": "This download link is invalid or has expired."})
    if kind == "dataset":
        row = s.state.get_dataset(ref) if _uuid_like(ref) else None
        if not row or not row["is_available"] or not row.get("store_key"):
            raise not_found()
        keys, prefix, name = [row["store_key"]], "", f"{ref}.zip"
    elif kind == "file":
        with s.snapshots.current().cursor() as cur:
            row = files.computed_file_row(cur, ref)
        keys, prefix = files.download_keys(s.store, row)
        name = files.display_filename(row)
    else:
        raise not_found()
    if not keys:
        raise not_found()
    if len(keys) == 1 and not (kind == "file" and row["kind"] == "compendium"):
        parts = file_response_parts(s.store, keys[0])
        if "path" in parts:
            return FileResponse(
                parts["path"], filename=name if kind == "dataset" else keys[0].rsplit("/", 1)[-1]
            )
        if "redirect" in parts:
            return RedirectResponse(parts["redirect"], status_code=302)
        raise not_found()
    return StreamingResponse(
        zip_stream(s.store, keys, prefix),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def h_health(s, req):
    from starlette.responses import JSONResponse

    body: dict[str, Any] = {"status": "ok", "build_mode": s.config.build_mode, "storage": s.store.root_url}
    try:
        snap = s.snapshots.current()
    except WarehouseUnavailable as exc:
        return JSONResponse({**body, "status": "unavailable", "detail": str(exc)}, status_code=503)
    body["warehouse"] = {
        "path": str(s.config.warehouse_path),
        "snapshot_opened_at": snap.opened_at,
        "snapshot_build_seconds": round(snap.build_seconds, 3),
        "full_text_search": "fts" if snap.fts else "fallback",
        "refresh_error": s.snapshots.last_error,
    }
    return body


ENDPOINTS = (
    "search/",
    "experiments/",
    "samples/",
    "organisms/",
    "platforms/",
    "institutions/",
    "dataset/",
    "token/",
    "qn_targets/",
    "transcriptome_indices/",
    "compendia/",
    "computed_files/",
    "original_files/",
    "stats-about/",
)


def h_index_v1(s, req):
    return {
        "api": "refine.bio v1 compatible",
        "docs": "docs/api.md",
        "endpoints": [f"{req.base_url}/v1/{e}" for e in ENDPOINTS],
    }


def route_table(s, endpoint) -> list[Route]:
    from refine_assets.api.app import redirect_to_v1

    def r(path, handler, methods=("GET",), status=200):
        return Route(path, endpoint(s, handler, status), methods=list(methods))

    return [
        Route("/", redirect_to_v1, methods=["GET"]),
        r("/health", h_health),
        r("/v1/", h_index_v1),
        r("/v1/search/", h_search),
        r("/v1/experiments/", h_experiments),
        r("/v1/experiments/{accession}/", h_experiment),
        r("/v1/samples/", h_samples),
        r("/v1/samples/{accession}/", h_sample),
        r("/v1/organisms/", h_organisms),
        r("/v1/organisms/{name}/", h_organism),
        r("/v1/platforms/", h_platforms),
        r("/v1/institutions/", h_institutions),
        r("/v1/dataset/", h_dataset_create, ("POST",), 201),
        r("/v1/dataset/{id}/", h_dataset, ("GET",)),
        Route("/v1/dataset/{id}/", endpoint(s, h_dataset_update), methods=["PUT"]),
        r("/v1/token/", h_token_create, ("POST",), 201),
        r("/v1/token/{id}/", h_token, ("GET",)),
        Route("/v1/token/{id}/", endpoint(s, h_token_update), methods=["PUT"]),
        r("/v1/qn_targets/", h_qn_targets),
        r("/v1/qn_targets/{organism}", h_qn_target),
        r("/v1/qn_targets/{organism}/", h_qn_target),
        r("/v1/transcriptome_indices/", h_indices),
        r("/v1/transcriptome_indices/{id}", h_index),
        r("/v1/compendia/", h_compendia),
        r("/v1/compendia/{id}/", h_compendium),
        r("/v1/computed_files/", h_computed_files),
        r("/v1/computed_files/{id}/", h_computed_file),
        r("/v1/original_files/", h_original_files),
        r("/v1/original_files/{id}/", h_original_file),
        r("/v1/stats-about/", h_stats_about),
        r("/v1/downloads/{kind}/{ref}/", h_download),
    ]
