"""Discovery queries, answer parsing and the tick plan (``refine_assets.lib.discovery``).

Answers are the constructed real-format fixtures of ``fixtures/discovery`` (see its README).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from refine_assets.lib import discovery as d
from refine_assets.lib.http import HttpStatusError, ReplayHttpClient, build_url

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "discovery"
START, END = date(2024, 3, 8), date(2024, 3, 15)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# --------------------------------------------------------------------------------------------- GEO


def test_geo_query_term_shape() -> None:
    assert d.geo_query_term(START, END, [9606, "10090", "Danio rerio"]) == (
        '(gse[Entry Type]) AND (txid9606[Organism] OR txid10090[Organism] OR "Danio rerio"[Organism]) '
        'AND ("2024/03/08"[PDAT] : "2024/03/15"[PDAT])'
    )


def test_geo_search_params() -> None:
    params = d.geo_search_params(START, END, [9606], offset=50, limit=25)
    assert params["db"] == "gds"
    assert params["retmode"] == "json"
    assert (params["retstart"], params["retmax"]) == ("50", "25")
    assert "usehistory" not in params
    with pytest.raises(ValueError, match="retmax"):
        d.geo_search_params(START, END, [9606], limit=20_000)
    with pytest.raises(ValueError, match="empty date window"):
        d.geo_query_term(END, START, [9606])


def test_parse_geo_search_pages() -> None:
    first = d.parse_geo_search(fixture("geo_esearch_page1.json"))
    assert first.accessions == ["GSE262100", "GSE262054", "GSE261987", "GSE261950"]
    assert (first.total, first.next_offset, first.newest_date) == (6, 4, None)
    second = d.parse_geo_search(fixture("geo_esearch_page2.json"))
    assert second.accessions == ["GSE261902", "GSE261875"]
    assert (second.total, second.next_offset) == (6, None)
    empty = d.parse_geo_search(fixture("geo_esearch_empty.json"))
    assert (empty.accessions, empty.total, empty.next_offset) == ([], 0, None)


def test_geo_uid_conversion() -> None:
    assert d.geo_uid_to_accession("200000001") == "GSE1"
    assert d.geo_uid_to_accession("200262100") == "GSE262100"
    with pytest.raises(d.DiscoveryError, match="not a GEO series"):
        d.geo_uid_to_accession("300123456")  # a GSM UID
    with pytest.raises(d.DiscoveryError, match="not a number"):
        d.geo_uid_to_accession("GSE1")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (fixture("geo_esearch_error.json"), "Empty term and query_key"),
        (fixture("geo_rate_limit.json"), "API rate limit exceeded"),
        (b'{"header": {"type": "esearch"}}', "no 'esearchresult'"),
        (b'{"esearchresult": {"count": "2", "retstart": "0"}}', "no 'idlist'"),
        (b'{"esearchresult": {"count": "many", "retstart": "0", "idlist": []}}', "count is not an integer"),
        (b"<html>502 Bad Gateway</html>", "not JSON"),
    ],
)
def test_parse_geo_search_rejects_bad_answers(content: bytes, problem: str) -> None:
    with pytest.raises(d.DiscoveryError, match=problem) as info:
        d.parse_geo_search(content)
    assert info.value.source == "GEO"


def test_parse_geo_summary_dates() -> None:
    dates = d.parse_geo_summary(fixture("geo_esummary_page1.json"))
    assert dates == {
        "GSE262100": date(2024, 3, 14),
        "GSE262054": date(2024, 3, 15),
        "GSE261987": date(2024, 3, 11),
        "GSE261950": date(2024, 3, 8),
    }
    broken = json.loads(fixture("geo_esummary_page1.json"))
    broken["result"]["200262100"]["pdat"] = "14 March 2024"
    with pytest.raises(d.DiscoveryError, match="GSE262100 pdat"):
        d.parse_geo_summary(json.dumps(broken))
    broken["result"]["200262100"]["pdat"] = "2024/03/14"
    del broken["result"]["200262054"]
    with pytest.raises(d.DiscoveryError, match="without its document"):
        d.parse_geo_summary(json.dumps(broken))


def test_geo_discover_through_client_with_dates() -> None:
    client = ReplayHttpClient()
    search_url = build_url(d.GEO_ESEARCH_URL, d.geo_search_params(START, END, [9606, 10090], 0, 4))
    client.add_response("GET", search_url, 200, fixture("geo_esearch_page1.json"))
    summary_url = build_url(
        d.GEO_ESUMMARY_URL,
        {"db": "gds", "id": "200262100,200262054,200261987,200261950", "retmode": "json"},
    )
    client.add_response("GET", summary_url, 200, fixture("geo_esummary_page1.json"))
    page = d.geo_discover(client, START, END, [9606, 10090], max_results=4, with_dates=True)
    assert page.accessions[0] == "GSE262100"
    assert page.newest_date == date(2024, 3, 15)
    assert page.next_offset == 4
    assert [method for method, _ in client.requests] == ["GET", "GET"]
    query = parse_qs(urlsplit(client.requests[0][1]).query)
    assert query["term"] == [d.geo_query_term(START, END, [9606, 10090])]


def test_geo_discover_http_error_propagates() -> None:
    client = ReplayHttpClient()
    url = build_url(d.GEO_ESEARCH_URL, d.geo_search_params(START, END, [9606], 0, 10))
    client.add_response("GET", url, 500, "Internal Server Error")
    with pytest.raises(HttpStatusError) as info:
        d.geo_discover(client, START, END, [9606], max_results=10)
    assert info.value.status == 500


# --------------------------------------------------------------------------------------------- ENA


def test_ena_query_and_params() -> None:
    assert d.ena_query(START, END, [9606, 10090]) == (
        'library_source="TRANSCRIPTOMIC" AND library_strategy="RNA-Seq" AND first_public>=2024-03-08 '
        "AND first_public<=2024-03-15 AND (tax_eq(9606) OR tax_eq(10090))"
    )
    params = d.ena_search_params(START, END, [9606], offset=10, limit=5)
    assert params["result"] == "read_study"
    assert params["fields"] == "secondary_study_accession,study_accession,first_public"
    assert (params["format"], params["limit"], params["offset"]) == ("json", "5", "10")
    with pytest.raises(ValueError, match="taxonomy ids"):
        d.ena_query(START, END, ["Homo sapiens"])


def test_parse_ena_search() -> None:
    page = d.parse_ena_search(fixture("ena_read_study_window.json"), offset=0, limit=25)
    # The study without a secondary (SRA) accession falls back to its PRJ accession.
    assert page.accessions == ["SRP494101", "ERP156020", "DRP010501", "PRJNA1090155", "SRP494180"]
    assert (page.total, page.next_offset, page.newest_date) == (5, None, date(2024, 3, 15))
    full = d.parse_ena_search(fixture("ena_read_study_window.json"), offset=20, limit=5)
    assert (full.total, full.next_offset) == (25, 25)  # a full page: there may be more


def test_parse_ena_search_empty_body_is_no_rows() -> None:
    page = d.parse_ena_search(b"", offset=30, limit=10)
    assert (page.accessions, page.next_offset, page.total) == ([], None, 30)
    assert d.parse_ena_search(b"[]", offset=0, limit=10).accessions == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"message": "Invalid query"}', "not a list of rows"),
        (b'[{"first_public": "2024-03-08"}]', "no study accession"),
        (b'[{"secondary_study_accession": "SRP1", "first_public": "08/03/2024"}]', "first_public"),
        (b"[1, 2]", "not an object"),
        (b'[{"secondary_study_accession": "SRP1"', "not JSON"),
    ],
)
def test_parse_ena_search_rejects_bad_answers(content: bytes, problem: str) -> None:
    with pytest.raises(d.DiscoveryError, match=problem) as info:
        d.parse_ena_search(content, offset=0, limit=10)
    assert info.value.source == "ENA"


def test_ena_discover_through_client() -> None:
    client = ReplayHttpClient()
    url = build_url(d.ENA_SEARCH_URL, d.ena_search_params(START, END, [9606], 0, 3))
    client.add_response("GET", url, 200, fixture("ena_read_study_today.json"))
    page = d.ena_discover(client, START, END, [9606], max_results=3)
    assert page.accessions == ["SRP494180"]
    assert page.next_offset is None


# ------------------------------------------------------------------------------------ ArrayExpress


def test_arrayexpress_params() -> None:
    params = d.arrayexpress_search_params(START, END, offset=50, limit=25)
    assert params == {
        "release_date": "[2024-03-08 TO 2024-03-15]",
        "sortBy": "release_date",
        "sortOrder": "ascending",
        "page": "3",
        "pageSize": "25",
    }
    assert d.arrayexpress_search_params(START, END, query="homo sapiens")["query"] == "homo sapiens"
    with pytest.raises(ValueError, match="pageSize"):
        d.arrayexpress_search_params(START, END, limit=500)


def test_parse_arrayexpress_search() -> None:
    page = d.parse_arrayexpress_search(fixture("arrayexpress_search_window.json"))
    # E-GEOD (a GEO import, found by GEO discovery) and the non-ArrayExpress S-BSST hit are dropped.
    assert page.accessions == ["E-MTAB-13901", "E-MTAB-13925", "E-MEXP-3999"]
    assert (page.total, page.next_offset, page.newest_date) == (5, None, date(2024, 3, 14))
    with_imports = d.parse_arrayexpress_search(
        fixture("arrayexpress_search_window.json"), skip_geo_imports=False
    )
    assert "E-GEOD-261001" in with_imports.accessions
    # An offset inside the answered page skips the hits before it.
    tail = d.parse_arrayexpress_search(fixture("arrayexpress_search_window.json"), offset=3)
    assert tail.accessions == ["E-MEXP-3999"]


def test_parse_arrayexpress_search_paging() -> None:
    doc = json.loads(fixture("arrayexpress_search_window.json"))
    doc.update(pageSize=2, totalHits=5, hits=doc["hits"][:2])
    page = d.parse_arrayexpress_search(json.dumps(doc), offset=0)
    assert (page.accessions, page.next_offset) == (["E-MTAB-13901"], 2)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (fixture("arrayexpress_search_malformed.json"), "no 'totalHits'"),
        (b'{"page": 1, "pageSize": 25, "totalHits": 1, "hits": [{"title": "x"}]}', "hit 0 has no accession"),
        (b'{"page": 1, "pageSize": 25, "totalHits": 1, "hits": {"accession": "E-1"}}', "not a list"),
        (b"[]", "not an object"),
    ],
)
def test_parse_arrayexpress_search_rejects_bad_answers(content: bytes, problem: str) -> None:
    with pytest.raises(d.DiscoveryError, match=problem) as info:
        d.parse_arrayexpress_search(content)
    assert info.value.source == "ARRAY_EXPRESS"


def test_arrayexpress_discover_through_client() -> None:
    client = ReplayHttpClient()
    url = build_url(d.ARRAYEXPRESS_SEARCH_URL, d.arrayexpress_search_params(START, END, 0, 25))
    client.add_response("GET", url, 200, fixture("arrayexpress_search_window.json"))
    page = d.arrayexpress_discover(client, START, END, max_results=25)
    assert page.accessions == ["E-MTAB-13901", "E-MTAB-13925", "E-MEXP-3999"]


def test_make_fetcher_rejects_unknown_source() -> None:
    with pytest.raises(ValueError, match="unknown discovery source"):
        d.make_fetcher("PRIDE", ReplayHttpClient())


# ------------------------------------------------------------------------------- cursor and plan


def test_cursor_round_trip_and_first_tick() -> None:
    cursor = d.DiscoveryCursor(date(2024, 3, 8), 50)
    assert json.loads(cursor.to_json()) == {"high_water": "2024-03-08", "offset": 50}
    assert d.DiscoveryCursor.from_json(cursor.to_json(), date(2000, 1, 1)) == cursor
    assert d.DiscoveryCursor.from_json(None, date(2024, 1, 1)) == d.DiscoveryCursor(date(2024, 1, 1), 0)
    for bad in ("2024-03-08", '{"offset": 3}', '{"high_water": "March", "offset": 0}'):
        with pytest.raises(ValueError, match="unreadable discovery cursor"):
            d.DiscoveryCursor.from_json(bad, date(2024, 1, 1))


class FakeSource:
    """A date-keyed listing served in pages, recording every request (start, end, offset, limit)."""

    def __init__(self, by_day: dict[date, list[str]], fail_at: int | None = None):
        self.by_day = by_day
        self.fail_at = fail_at
        self.calls: list[tuple[date, date, int, int]] = []

    def __call__(self, start: date, end: date, offset: int, limit: int) -> d.DiscoveryPage:
        self.calls.append((start, end, offset, limit))
        if self.fail_at is not None and len(self.calls) > self.fail_at:
            raise d.DiscoveryError("GEO", "answer is not JSON")
        rows = [acc for day in sorted(self.by_day) if start <= day <= end for acc in self.by_day[day]]
        chunk = rows[offset : offset + limit]
        nxt = offset + len(chunk) if offset + len(chunk) < len(rows) else None
        return d.DiscoveryPage(chunk, None, len(rows), nxt)


TODAY = date(2024, 3, 15)


def test_plan_tick_caps_and_resumes_with_offset() -> None:
    source = FakeSource({date(2024, 3, 9): ["A1", "A2", "A3"], date(2024, 3, 10): ["A4", "A5"]})
    known: set[str] = set()
    plan = d.plan_tick(source, d.DiscoveryCursor(date(2024, 3, 8)), TODAY, known.__contains__, max_new=3)
    assert plan.new_accessions == ["A1", "A2", "A3"]
    assert plan.cursor == d.DiscoveryCursor(date(2024, 3, 8), 3)  # window not exhausted: mark kept
    assert source.calls == [(date(2024, 3, 8), TODAY, 0, 3)]
    known.update(plan.new_accessions)
    plan = d.plan_tick(source, plan.cursor, TODAY, known.__contains__, max_new=3)
    assert plan.new_accessions == ["A4", "A5"]
    assert plan.cursor == d.DiscoveryCursor(TODAY, 0)  # exhausted up to today


def test_plan_tick_catches_up_over_windows_and_relists_today() -> None:
    source = FakeSource({date(2024, 3, 2): ["B1"], date(2024, 3, 15): ["B2"]})
    known = {"B1"}
    plan = d.plan_tick(
        source, d.DiscoveryCursor(date(2024, 3, 1)), TODAY, known.__contains__, max_new=5, window_days=7
    )
    # [03-01 .. 03-08] had nothing new, so the tick moved on to [03-08 .. 03-15].
    assert plan.windows == [(date(2024, 3, 1), date(2024, 3, 8)), (date(2024, 3, 8), TODAY)]
    assert plan.new_accessions == ["B2"]
    assert plan.cursor == d.DiscoveryCursor(TODAY, 0)
    # Caught up: the next tick lists today again (one request) and finds nothing new.
    known.add("B2")
    again = d.plan_tick(source, plan.cursor, TODAY, known.__contains__, max_new=5)
    assert (again.new_accessions, again.pages, again.cursor) == ([], 1, d.DiscoveryCursor(TODAY, 0))


def test_plan_tick_bounds_pages_when_everything_is_known() -> None:
    rows = [f"C{i}" for i in range(20)]
    source = FakeSource({date(2024, 3, 9): rows})
    plan = d.plan_tick(
        source, d.DiscoveryCursor(date(2024, 3, 8)), TODAY, set(rows).__contains__, max_new=3, max_pages=4
    )
    assert plan.pages == 4 and plan.new_accessions == []
    assert plan.cursor == d.DiscoveryCursor(date(2024, 3, 8), 12)


def test_plan_tick_errors() -> None:
    source = FakeSource({date(2024, 3, 9): ["D1", "D2"]}, fail_at=0)
    with pytest.raises(d.DiscoveryError):
        d.plan_tick(source, d.DiscoveryCursor(date(2024, 3, 8)), TODAY, lambda _: False)
    # A failure after a good page keeps what that page gave, with the cursor after it.
    source = FakeSource({date(2024, 3, 9): ["D1", "D2"], date(2024, 3, 20): []}, fail_at=1)
    plan = d.plan_tick(
        source, d.DiscoveryCursor(date(2024, 3, 8)), TODAY, {"D1", "D2"}.__contains__, max_new=1
    )
    assert isinstance(plan.error, d.DiscoveryError)
    assert (plan.pages, plan.cursor) == (1, d.DiscoveryCursor(date(2024, 3, 8), 1))


def test_plan_tick_rejects_settings_that_cannot_progress() -> None:
    for kwargs in ({"window_days": 0}, {"max_new": 0}, {"max_pages": 0}):
        with pytest.raises(ValueError, match="must be positive"):
            d.plan_tick(FakeSource({}), d.DiscoveryCursor(TODAY), TODAY, lambda _: False, **kwargs)


def test_plan_tick_clamps_future_cursor() -> None:
    source = FakeSource({TODAY: ["E1"]})
    plan = d.plan_tick(source, d.DiscoveryCursor(date(2024, 4, 1), 7), TODAY, lambda _: False)
    assert source.calls == [(TODAY, TODAY, 0, 25)]
    assert plan.new_accessions == ["E1"]
