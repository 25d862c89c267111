"""refine.bio's error bodies (``api/data_refinery_api/exceptions.py``, ``urls.py`` handlers, DRF 3.13).

| situation | status | body |
|---|---|---|
| unknown object (accession, id) | 404 | ``{"detail": "Not found."}`` (DRF ``Http404``) |
| unknown path | 404 | ``{"message": ..., "docs": ..., "status_code": 404}`` (``handle404error``) |
| unknown query parameter | 400 | ``{"error_type": "invalid_filters", "message": ..., "details": [params]}`` |
| invalid dataset data | 400 | ``{"error_type": "invalid_data", "message": ..., "details": ...}`` |
| invalid field value | 400 | ``{"error_type": <code>, "message": ..., "details": <field>}`` (one), or ``multiple_errors`` |
| missing/inactive token | 400 | ``{"error_type": "invalid_token", "message": "You must provide an active API token ID", "details": ""}`` |
| malformed JSON body | 400 | ``{"detail": "JSON parse error - ..."}`` |
| wrong method | 405 | ``{"detail": "Method \\"X\\" not allowed."}`` |
| throttled | 429 | ``{"detail": "Request was throttled. Expected available in N seconds."}`` + ``Retry-After`` |
| server error | 500 | ``{"message": "A server error occured. This has been reported.", "status_code": 500}`` |
"""

from __future__ import annotations

from typing import Any

DOCS_URL = "docs/api.md"


class ApiError(Exception):
    """An error answered with ``status`` and the refine.bio-shaped ``body``."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("message") or body.get("detail") or str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def not_found(detail: str = "Not found.") -> ApiError:
    """DRF's 404 for an unknown object."""
    return ApiError(404, {"detail": detail})


def path_not_found(path: str) -> ApiError:
    """refine.bio's ``handle404error`` for a path no route matches."""
    message = "The requested resource was not found on this server."
    if not path.startswith("/v1/"):
        message = "refine.bio API resources are only available through versioned requests."
    return ApiError(404, {"message": message, "docs": DOCS_URL, "status_code": 404})


def invalid_filters(params: list[str], message: str | None = None) -> ApiError:
    """Unknown or malformed query parameters (``InvalidFilters``)."""
    return ApiError(
        400,
        {
            "error_type": "invalid_filters",
            "message": message or "You have supplied invalid filters. See `details` for a full list.",
            "details": params,
        },
    )


def invalid_data(message: str, details: Any = "") -> ApiError:
    """Dataset ``data`` that cannot be accepted (``InvalidData``)."""
    return ApiError(400, {"error_type": "invalid_data", "message": message, "details": details})


def bad_request(message: str, error_type: str = "bad_request") -> ApiError:
    """``BadRequest`` (e.g. ``invalid_token``, updating a processed dataset)."""
    return ApiError(400, {"error_type": error_type, "message": message, "details": ""})


def field_errors(errors: list[tuple[str, str, str]]) -> ApiError:
    """DRF ``ValidationError`` through refine.bio's handler: ``(field, code, message)`` triples."""
    items = [{"error_type": code, "message": msg, "details": field} for field, code, msg in errors]
    if len(items) == 1:
        return ApiError(400, items[0])
    return ApiError(
        400,
        {
            "error_type": "multiple_errors",
            "message": "Multiple errors have occurred. See `details` for a full list.",
            "details": items,
        },
    )


def parse_error(detail: str) -> ApiError:
    return ApiError(400, {"detail": f"JSON parse error - {detail}"})


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, {"detail": f'Method "{method}" not allowed.'})


def throttled(wait_seconds: int) -> ApiError:
    return ApiError(
        429,
        {"detail": f"Request was throttled. Expected available in {wait_seconds} seconds."},
        {"Retry-After": str(wait_seconds)},
    )


SERVER_ERROR_BODY = {"message": "A server error occured. This has been reported.", "status_code": 500}
