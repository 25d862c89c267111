"""Dataset requests: parse and validate the JSON/YAML a user sends (refine.bio's dataset shape).

A request is a mapping (``docs/datasets.md``; refine.bio API ``/v1/dataset/``, teardown §6.1)::

    {
      "data": {"GSE781": ["GSM11805", "GSM11810"], "SRP095529": ["ALL"]},
      "aggregate_by": "EXPERIMENT",          # EXPERIMENT | SPECIES | ALL        (default EXPERIMENT)
      "scale_by": "NONE",                    # NONE | STANDARD | MINMAX | ROBUST (default NONE)
      "quantile_normalize": true             # default true
    }

Rules (each violation raises :class:`DatasetRequestError` naming the field and the value):

* ``data`` is a non-empty mapping from experiment accession to a non-empty list of sample accessions,
  or ``"ALL"`` / ``["ALL"]`` (every sample of the experiment). Accessions are non-empty strings without
  whitespace inside; surrounding blanks are stripped; repeated samples in one list are kept once. ``ALL``
  mixed with accessions is an error.
* ``aggregate_by`` and ``scale_by`` are case-insensitive and stored upper-case, as refine.bio writes
  them in ``aggregated_metadata.json``. ``quantile_normalize`` must be a JSON boolean. Skipping QN is
  accepted for any dataset, as refine.bio's API does (its web UI offers it only for RNA-seq aggregated
  by experiment; the reference doc: "Skipping quantile normalization for RNA-seq experiments").
* ``quant_sf_only`` (boolean, default false): deliver each RNA-seq run's salmon ``quant.sf`` instead of
  expression matrices (:mod:`refine_assets.lib.delivery.quantsf`); ``scale_by`` and
  ``quantile_normalize`` are then ignored, as refine.bio ignores them.
* Other keys refine.bio's API returns for a dataset (``id``, ``is_processed``, ``email_address`` ...) are
  ignored so that a dataset JSON fetched from refine.bio can be replayed; ``id`` (or ``dataset_id``)
  becomes the dataset id. Any other key is an error (a typo such as ``scale`` must not silently
  fall back to a default).

Whether the accessions exist and the samples are processed is checked against the warehouse by
:func:`refine_assets.lib.delivery.dataset.build_dataset`, not here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALL = "ALL"
AGGREGATE_BY = ("EXPERIMENT", "SPECIES", "ALL")
SCALE_BY = ("NONE", "STANDARD", "MINMAX", "ROBUST")

#: Keys of refine.bio's dataset API objects that carry no delivery option: accepted and ignored.
IGNORED_REFINEBIO_KEYS = frozenset(
    {
        "is_processing",
        "is_processed",
        "is_available",
        "has_email",
        "email_address",
        "email_ccdl_ok",
        "notify_me",
        "expires_on",
        "s3_bucket",
        "s3_key",
        "success",
        "failure_reason",
        "created_at",
        "last_modified",
        "start",
        "size_in_bytes",
        "sha1",
        "experiments",
        "organism_samples",
        "worker_version",
        "download_url",
        "svd_algorithm",
        "services",
    }
)
_KNOWN_KEYS = frozenset(
    {"data", "aggregate_by", "scale_by", "quantile_normalize", "quant_sf_only", "id", "dataset_id"}
)
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class DatasetRequestError(ValueError):
    """A dataset request that cannot be delivered as written; the message names the field and value."""


@dataclass(frozen=True)
class DatasetRequest:
    """A validated request.

    ``data`` maps experiment accession -> sorted tuple of sample accessions, or ``("ALL",)``.
    ``aggregate_by`` in :data:`AGGREGATE_BY`, ``scale_by`` in :data:`SCALE_BY`. ``dataset_id`` is the id
    given in the request (``id``/``dataset_id``) or None.
    """

    data: Mapping[str, tuple[str, ...]]
    aggregate_by: str = "EXPERIMENT"
    scale_by: str = "NONE"
    quantile_normalize: bool = True
    dataset_id: str | None = None
    quant_sf_only: bool = False

    def is_all(self, experiment: str) -> bool:
        """Whether every sample of ``experiment`` was requested."""
        return tuple(self.data[experiment]) == (ALL,)

    @property
    def experiments(self) -> list[str]:
        """Requested experiment accessions, sorted."""
        return sorted(self.data)

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-ready form (sorted experiments, ``["ALL"]`` for all samples)."""
        out: dict[str, Any] = {
            "data": {e: list(self.data[e]) for e in sorted(self.data)},
            "aggregate_by": self.aggregate_by,
            "scale_by": self.scale_by,
            "quantile_normalize": self.quantile_normalize,
        }
        if self.quant_sf_only:
            out["quant_sf_only"] = True
        if self.dataset_id:
            out["dataset_id"] = self.dataset_id
        return out


def _accession(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise DatasetRequestError(f"{what} must be a string accession, got {type(value).__name__} {value!r}")
    text = value.strip()
    if not text:
        raise DatasetRequestError(f"{what} is empty")
    if any(ch.isspace() for ch in text) or "/" in text:
        raise DatasetRequestError(f"{what} {value!r} is not an accession (whitespace or '/')")
    return text


def _choice(obj: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    if key not in obj or obj[key] is None:
        return default
    value = obj[key]
    if not isinstance(value, str) or value.strip().upper() not in choices:
        raise DatasetRequestError(f"{key} must be one of {', '.join(choices)} (any case), got {value!r}")
    return value.strip().upper()


def parse_request(obj: Any) -> DatasetRequest:
    """Validate a request mapping (module docstring) and return a :class:`DatasetRequest`."""
    if not isinstance(obj, Mapping):
        raise DatasetRequestError(f"a dataset request must be a JSON/YAML object, got {type(obj).__name__}")
    unknown = sorted(str(k) for k in obj if k not in _KNOWN_KEYS and k not in IGNORED_REFINEBIO_KEYS)
    if unknown:
        raise DatasetRequestError(
            f"unknown request field(s) {', '.join(map(repr, unknown))}; expected data, aggregate_by, "
            "scale_by, quantile_normalize, quant_sf_only"
        )
    quant_sf_only = obj.get("quant_sf_only", False)
    if quant_sf_only is None:
        quant_sf_only = False
    if not isinstance(quant_sf_only, bool):
        raise DatasetRequestError(f"quant_sf_only must be true or false, got {quant_sf_only!r}")
    data = obj.get("data")
    if not isinstance(data, Mapping) or not data:
        raise DatasetRequestError(
            "data must be a non-empty object mapping experiment accessions to sample lists or 'ALL', "
            f"got {data!r}"[:300]
        )
    parsed: dict[str, tuple[str, ...]] = {}
    for raw_exp, raw_samples in data.items():
        exp = _accession(raw_exp, "experiment accession")
        if exp in parsed:
            raise DatasetRequestError(f"experiment {exp} is listed twice in data")
        if isinstance(raw_samples, str):
            raw_samples = [raw_samples]
        if not isinstance(raw_samples, list | tuple) or not raw_samples:
            raise DatasetRequestError(
                f"data[{exp!r}] must be a non-empty list of sample accessions or 'ALL', got {raw_samples!r}"
            )
        samples = [_accession(s, f"sample in data[{exp!r}]") for s in raw_samples]
        if any(s.upper() == ALL for s in samples):
            if len(samples) != 1:
                raise DatasetRequestError(f"data[{exp!r}] mixes 'ALL' with sample accessions")
            parsed[exp] = (ALL,)
        else:
            parsed[exp] = tuple(sorted(set(samples)))
    qn = obj.get("quantile_normalize", True)
    if qn is None:
        qn = True
    if not isinstance(qn, bool):
        raise DatasetRequestError(f"quantile_normalize must be true or false, got {qn!r}")
    dataset_id = obj.get("dataset_id", obj.get("id"))
    if dataset_id is not None:
        dataset_id = str(dataset_id).strip()
        if not _ID_RE.match(dataset_id):
            raise DatasetRequestError(
                f"dataset id {dataset_id!r} must be 1-128 characters of letters, digits, '.', '_' or '-'"
            )
    return DatasetRequest(
        data=parsed,
        aggregate_by=_choice(obj, "aggregate_by", AGGREGATE_BY, "EXPERIMENT"),
        scale_by=_choice(obj, "scale_by", SCALE_BY, "NONE"),
        quantile_normalize=qn,
        dataset_id=dataset_id,
        quant_sf_only=quant_sf_only,
    )


def load_request(path: str | Path) -> DatasetRequest:
    """Read and validate a request file: JSON (``.json``) or YAML (``.yaml``/``.yml``; other names are
    tried as JSON, then YAML). Errors name the file."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetRequestError(f"{p}: no such request file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetRequestError(f"{p}: cannot read the request ({exc})") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            obj = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            obj = yaml.safe_load(text)
        else:
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                obj = yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise DatasetRequestError(f"{p}: not valid JSON/YAML ({str(exc).splitlines()[0]})") from None
    try:
        return parse_request(obj)
    except DatasetRequestError as exc:
        raise DatasetRequestError(f"{p}: {exc}") from None
