"""``dataset/`` (POST) and ``dataset/<id>/`` (GET, PUT): refine.bio's ``DatasetView`` over the API store.

Validation follows refine.bio's ``DatasetSerializer`` + ``validate_dataset`` and is complete before
anything is written (a rejected request leaves the store untouched):

* field types and choices -> 400 ``{"error_type", "message", "details": <field>}`` (``multiple_errors``
  when several); ``aggregate_by``/``scale_by``/``svd_algorithm`` are accepted in any case; unknown
  fields are rejected (DRF ignored them); ``quant_sf_only: true`` is rejected (not supported);
* ``data`` -> 400 ``invalid_data``: a dict of non-empty lists without duplicates (``["ALL"]`` allowed),
  then the project's request rules (:func:`refine_assets.lib.delivery.request.parse_request`), then the
  warehouse: unknown experiments, unknown samples, samples listed under an experiment they are not in,
  and ``ALL`` of an experiment with no processed sample are each reported with their accessions;
* ``start: true`` needs an activated token (``API-KEY`` header or ``token_id``) -> else 400
  ``invalid_token``.

Starting hands the dataset to :class:`refine_assets.api.builds.Builder`, which builds it with the same
builder as ``refine-assets dataset`` (a Dagster run of the ``dataset`` asset, or a worker thread).
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from refine_assets.api.errors import bad_request, field_errors, invalid_data, not_found
from refine_assets.api.render import rows

CHOICES = {
    "aggregate_by": ("ALL", "EXPERIMENT", "SPECIES"),
    "scale_by": ("NONE", "MINMAX", "STANDARD", "ROBUST"),
    "svd_algorithm": ("NONE", "RANDOMIZED", "ARPACK"),
}
DEFAULTS = {
    "aggregate_by": "EXPERIMENT",
    "scale_by": "NONE",
    "svd_algorithm": "NONE",
    "quantile_normalize": True,
    "quant_sf_only": False,
    "email_ccdl_ok": False,
    "notify_me": True,
}
BOOLEANS = ("quantile_normalize", "quant_sf_only", "email_ccdl_ok", "notify_me", "start")
WRITE_ONLY = ("email_address", "email_ccdl_ok", "notify_me", "token_id", "no_send_job")
READ_ONLY = (
    "id",
    "is_processing",
    "is_processed",
    "is_available",
    "has_email",
    "expires_on",
    "s3_bucket",
    "s3_key",
    "success",
    "failure_reason",
    "created_at",
    "last_modified",
    "size_in_bytes",
    "sha1",
    "sha256",
    "experiments",
    "organism_samples",
    "download_url",
    "worker_version",
)
WRITABLE = ("data", *CHOICES, *BOOLEANS, *WRITE_ONLY)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = (True, 1, "true", "True", "1", "yes")
_FALSE = (False, 0, "false", "False", "0", "no")


def _bool(value: Any) -> bool | None:
    if value in _TRUE and value is not None:
        return True
    if value in _FALSE and value is not None:
        return False
    return None


def validate_fields(body: Any) -> dict[str, Any]:
    """Field-level validation (DRF serializer); returns the accepted writable values."""
    if not isinstance(body, dict):
        raise field_errors(
            [
                (
                    "non_field_errors",
                    "invalid",
                    f"Invalid data. Expected a dictionary, but got {type(body).__name__}.",
                )
            ]
        )
    errors: list[tuple[str, str, str]] = []
    out: dict[str, Any] = {}
    for key in body:
        if key not in WRITABLE and key not in READ_ONLY:
            errors.append((str(key), "invalid", f"Unknown field {key!r}."))
    if "data" not in body:
        errors.append(("data", "required", "This field is required."))
    else:
        out["data"] = body["data"]
    for key, choices in CHOICES.items():
        if body.get(key) is None:
            continue
        value = body[key]
        if not isinstance(value, str) or value.strip().upper() not in choices:
            errors.append((key, "invalid_choice", f'"{value}" is not a valid choice.'))
        else:
            out[key] = value.strip().upper()
    for key in BOOLEANS:
        if key not in body or body[key] is None:
            continue
        parsed = _bool(body[key])
        if parsed is None:
            errors.append((key, "invalid", "Must be a valid boolean."))
        else:
            out[key] = parsed
    if out.get("quant_sf_only"):
        errors.append(
            (
                "quant_sf_only",
                "unsupported",
                "quant_sf_only datasets (raw salmon quant.sf files) are not supported.",
            )
        )
    email = body.get("email_address")
    if email not in (None, ""):
        if not isinstance(email, str) or not EMAIL_RE.match(email.strip()):
            errors.append(("email_address", "invalid", "Enter a valid email address."))
        else:
            out["has_email"] = True
    elif "email_address" in body:
        out["has_email"] = False
    token = body.get("token_id")
    if token is not None and not isinstance(token, str):
        errors.append(("token_id", "invalid", "Not a valid string."))
    elif token:
        out["token_id"] = token
    if errors:
        raise field_errors(errors)
    return out


def validate_data(
    data: Any, fields: dict[str, Any], cur: duckdb.DuckDBPyConnection, *, starting: bool
) -> dict[str, list[str]]:
    """refine.bio's ``validate_dataset`` + the project's request rules + the warehouse; the canonical data."""
    from refine_assets.lib.delivery.request import DatasetRequestError, parse_request

    if not isinstance(data, dict):
        raise invalid_data("`data` must be a dict of lists.")
    if starting and not data:
        raise invalid_data("`data` must contain at least one experiment.")
    for key, value in data.items():
        if not isinstance(value, list):
            raise invalid_data(f"`data` must be a dict of lists. Problem with `{key}`")
        if not value:
            raise invalid_data(
                f"`data` must be a dict of lists, each with one or more elements. Problem with `{key}`"
            )
        if len(value) != len({str(v) for v in value}):
            raise invalid_data(f"Duplicate values detected in {value}")
    if not data:
        return {}
    try:
        req = parse_request(
            {
                "data": data,
                **{k: fields[k] for k in ("aggregate_by", "scale_by", "quantile_normalize") if k in fields},
            }
        )
    except DatasetRequestError as exc:
        raise invalid_data(str(exc)) from None
    canonical = {e: list(req.data[e]) for e in req.experiments}
    _check_accessions(cur, canonical)
    return canonical


def _check_accessions(cur: duckdb.DuckDBPyConnection, data: dict[str, list[str]]) -> None:
    exps = sorted(data)
    known = {
        r["accession"]: r["num_processed_samples"]
        for r in rows(
            cur.execute(
                "SELECT accession, num_processed_samples FROM api_experiments WHERE list_contains(?, accession)",
                [exps],
            )
        )
    }
    unknown = [e for e in exps if e not in known]
    if unknown:
        raise invalid_data(
            "Experiment(s) in dataset do not exist on this server. See `details` for a full list", unknown
        )
    empty = [e for e in exps if data[e] == ["ALL"] and not known[e]]
    if empty:
        raise invalid_data(
            "Experiment(s) in dataset have zero downloadable samples. See `details` for a full list", empty
        )
    listed = sorted({s for e in exps if data[e] != ["ALL"] for s in data[e]})
    if not listed:
        return
    where: dict[str, set[str]] = {}
    for s, e in cur.execute(
        "SELECT accession, experiment_accession FROM api_membership WHERE list_contains(?, accession)",
        [listed],
    ).fetchall():
        where.setdefault(s, set()).add(e)
    missing = [s for s in listed if s not in where]
    if missing:
        raise invalid_data(
            "Sample(s) in dataset do not exist on this server. See `details` for a full list", missing
        )
    misplaced = sorted(f"{s} ({e})" for e in exps if data[e] != ["ALL"] for s in data[e] if e not in where[s])
    if misplaced:
        raise invalid_data(
            "Sample(s) in dataset are not part of the experiment they are listed under. See `details` for a full list",
            misplaced,
        )


def to_store_fields(fields: dict[str, Any], data: dict[str, list[str]]) -> dict[str, Any]:
    """The columns a create/update writes (only what the request set, defaults on create)."""
    out = {
        k: v
        for k, v in fields.items()
        if k in (*CHOICES, "quantile_normalize", "quant_sf_only", "email_ccdl_ok", "notify_me", "has_email")
    }
    out["data"] = data
    return out


def require_token(state, fields: dict[str, Any], header_token: str | None) -> None:
    token = fields.get("token_id") or header_token
    if not state.is_active_token(token):
        raise bad_request("You must provide an active API token ID", "invalid_token")


def create(state, cur, body: Any, header_token: str | None, builder) -> dict[str, Any]:
    fields = validate_fields(body)
    starting = bool(fields.get("start"))
    data = validate_data(fields["data"], fields, cur, starting=starting)
    if starting:
        require_token(state, fields, header_token)
    row = state.insert_dataset({**DEFAULTS, **to_store_fields(fields, data)})
    if starting:
        row = builder.start(row["id"]) or row
    return row


def update(state, cur, dataset_id: str, body: Any, header_token: str | None, builder) -> dict[str, Any]:
    old = state.get_dataset(dataset_id)
    if old is None:
        raise not_found()
    if old["is_processed"]:
        raise bad_request("You may not update Datasets which have already been processed")
    fields = validate_fields(body)
    if old["is_processing"]:
        # refine.bio: data and aggregation of a submitted dataset are kept; only e-mail settings change
        keep = {k: v for k, v in fields.items() if k in ("email_ccdl_ok", "notify_me", "has_email")}
        if keep:
            state.update_dataset(dataset_id, keep)
        return state.get_dataset(dataset_id)
    starting = bool(fields.get("start"))
    merged = {**{k: old[k] for k in ("aggregate_by", "scale_by", "quantile_normalize")}, **fields}
    data = validate_data(fields["data"], merged, cur, starting=starting)
    if starting:
        require_token(state, fields, header_token)
    state.update_dataset(dataset_id, to_store_fields(fields, data), only_if={"is_processing": False})
    if starting:
        builder.start(dataset_id)
    return state.get_dataset(dataset_id)


def serialize(
    row: dict[str, Any],
    *,
    with_url: bool,
    download_url: str | None,
    details: bool,
    s3: tuple[str, str] = ("", ""),
    cur: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, Any]:
    """refine.bio's ``DatasetSerializer`` (``download_url`` only with an activated token; ``details``
    adds ``experiments``, ``organism_samples`` and ``worker_version``)."""
    bucket, key = s3
    out: dict[str, Any] = {
        "id": row["id"],
        "data": row["data"],
        "aggregate_by": row["aggregate_by"],
        "scale_by": row["scale_by"],
        "is_processing": row["is_processing"],
        "is_processed": row["is_processed"],
        "is_available": row["is_available"],
        "has_email": row["has_email"],
        "expires_on": None,
        "s3_bucket": bucket,
        "s3_key": key,
        "success": row["success"],
        "failure_reason": row["failure_reason"] or "",
        "created_at": row["created_at"],
        "last_modified": row["last_modified"],
        "size_in_bytes": row["size_in_bytes"] or 0,
        "sha1": "",
        "sha256": row["sha256"] or "",
        "quantile_normalize": row["quantile_normalize"],
        "quant_sf_only": row["quant_sf_only"],
        "svd_algorithm": row["svd_algorithm"],
    }
    if with_url:
        out["download_url"] = download_url
    if details and cur is not None:
        out.update(_details(cur, row))
    return out


def _details(cur: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> dict[str, Any]:
    data = row["data"]
    exps = sorted(data)
    experiments = [
        {
            "title": r["title"] or "",
            "accession_code": r["accession"],
            "organism_names": list(r["organism_names"]),
            "sample_metadata": list(r["sample_metadata_fields"]),
            "technology": r["technology"],
        }
        for r in rows(
            cur.execute(
                "SELECT * FROM api_experiments WHERE list_contains(?, accession) ORDER BY accession", [exps]
            )
        )
    ]
    listed = sorted({s for v in data.values() if v != ["ALL"] for s in v})
    all_exps = [e for e, v in data.items() if v == ["ALL"]]
    organism_samples: dict[str, list[str]] = {}
    for org, acc in cur.execute(
        "SELECT organism, accession FROM api_samples WHERE list_contains(?, accession) OR accession IN "
        "(SELECT accession FROM api_membership WHERE list_contains(?, experiment_accession)) ORDER BY organism, accession",
        [listed, all_exps],
    ).fetchall():
        organism_samples.setdefault(org, []).append(acc)
    summary = row.get("summary") or {}
    return {
        "experiments": experiments,
        "organism_samples": organism_samples,
        "worker_version": summary.get("code_version"),
    }


def get_or_404(state, dataset_id: str) -> dict[str, Any]:
    row = state.get_dataset(dataset_id)
    if row is None:
        raise not_found()
    return row
