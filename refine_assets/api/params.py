"""Query parameters as refine.bio's list views take them: allowed names, limit/offset, booleans, ordering.

refine.bio's views reject unknown parameters (``check_filters``: ``InvalidFilters`` listing them) and
paginate with DRF's ``LimitOffsetPagination`` (default limit 25, at most 1000). Unlike DRF, a limit or
offset that is not a non-negative integer is rejected here (DRF silently used the default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from refine_assets.api.errors import invalid_filters

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class Query:
    """The query string of a request: repeated keys kept, names checked against what a view allows."""

    def __init__(self, items: Iterable[tuple[str, str]]):
        self.items = list(items)

    def check(self, allowed: Iterable[str]) -> None:
        """400 ``invalid_filters`` naming every parameter not in ``allowed``."""
        allowed = set(allowed)
        bad = sorted({k for k, _ in self.items if k not in allowed})
        if bad:
            raise invalid_filters(bad)

    def get(self, name: str) -> str | None:
        """The last value of ``name`` (None when absent)."""
        values = self.getlist(name)
        return values[-1] if values else None

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.items if k == name]

    def names(self) -> set[str]:
        return {k for k, _ in self.items}

    def bool(self, name: str) -> bool | None:
        """``true``/``false``/``1``/``0`` (any case) or None when absent; anything else is a 400."""
        value = self.get(name)
        if value is None:
            return None
        return parse_bool(value, name)


def parse_bool(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise invalid_filters([name], f"{name} must be true or false, got {value!r}")


def parse_int(value: str, name: str, *, minimum: int = 0) -> int:
    text = value.strip()
    if not text.lstrip("-").isdigit() or int(text) < minimum:
        raise invalid_filters([name], f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(text)


@dataclass(frozen=True)
class Page:
    """A limit/offset window."""

    limit: int
    offset: int

    @classmethod
    def from_query(cls, query: Query) -> Page:
        limit = query.get("limit")
        offset = query.get("offset")
        lim = DEFAULT_LIMIT if limit is None else parse_int(limit, "limit", minimum=1)
        off = 0 if offset is None else parse_int(offset, "offset", minimum=0)
        return cls(min(lim, MAX_LIMIT), off)


def paginated(
    results: Sequence[Any],
    count: int,
    page: Page,
    url: str,
    query: Query,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """DRF's ``{"count", "next", "previous", "results"}`` (``extra``, e.g. ``facets``, before ``results``).

    ``next``/``previous`` are ``url`` with the request's parameters and the new ``limit``/``offset``.
    """

    def link(offset: int | None) -> str:
        items = [(k, v) for k, v in query.items if k not in ("limit", "offset")]
        items.append(("limit", str(page.limit)))
        if offset:
            items.append(("offset", str(offset)))
        return f"{url}?{urlencode(items)}"

    nxt = link(page.offset + page.limit) if page.offset + page.limit < count else None
    prev = None
    if page.offset > 0:
        prev = link(max(0, page.offset - page.limit))
    body: dict[str, Any] = {"count": count, "next": nxt, "previous": prev}
    body.update(extra or {})
    body["results"] = list(results)
    return body


def ordering(query: Query, fields: Mapping[str, str], default: Sequence[str]) -> list[str]:
    """SQL ORDER BY terms for ``?ordering=a,-b`` (DRF ``OrderingFilter``); ``fields`` maps names to SQL.

    An unknown field is a 400 (DRF ignored it).
    """
    value = query.get("ordering")
    names = [n.strip() for n in value.split(",") if n.strip()] if value else list(default)
    terms = []
    for name in names:
        desc = name.startswith("-")
        key = name[1:] if desc else name
        if key not in fields:
            raise invalid_filters(
                ["ordering"], f"cannot order by {key!r}; use one of {', '.join(sorted(fields))}"
            )
        terms.append(f"{fields[key]} {'DESC' if desc else 'ASC'} NULLS LAST")
    return terms
