"""The short path for API clients' GETs of negotiations (exchanges/api/fast_reads.py)
answers exactly what the DRF views answer: status, body and headers, page after page,
for every kind of visibility, filter, ordering and cursor; and every case it does not
handle reaches the view untouched."""
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exchanges import policy, services
from exchanges.api.fast_reads import FastReadMiddleware
from exchanges.api.throttling import PrincipalRateThrottle
from exchanges.models import ApiClient, AuditEntry, Negotiation
from tests.factories import NegotiationFactory
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgres():
    require_postgres()  # the short path runs on PostgreSQL only


FAST_SQL = "FROM exchanges_apiclient c LEFT JOIN LATERAL"
#: Differ between any two responses whatever the path.
VOLATILE = {"X-Request-ID"}


@pytest.fixture
def record(ukraine, russia, icrc, outsider, garrison):
    """Negotiations of every visibility from a Ukrainian client's point of view, some
    stalled, several created in the same instant (so cursors need offsets)."""
    made = {
        "public": NegotiationFactory(title="Public exchange", visibility="all_partners", participants=[(russia, "side"), (icrc, "facilitator")]),
        "ours": NegotiationFactory(title="Ours", visibility="participants", participants=[(ukraine, "side"), (russia, "side")], groups=[garrison]),
        "recorded by us": NegotiationFactory(title="Recorded by us", visibility="participants", participants=[(icrc, "mediator")]),
        "between others": NegotiationFactory(title="Between others", visibility="participants", participants=[(russia, "side"), (outsider, "mediator")]),
        "staff only": NegotiationFactory(title="Staff only", visibility="staff_only", participants=[(ukraine, "side")]),
    }
    for n in range(7):
        made[f"batch {n}"] = NegotiationFactory(title=f"Batch {n}", visibility="all_partners" if n % 2 else "participants", participants=[(ukraine, "side")])
    Negotiation.objects.filter(title="Recorded by us").update(created_by_party=ukraine)  # gives no access
    instant = (timezone.now() - timedelta(days=3)).replace(microsecond=0)  # whole seconds: written without a fraction
    Negotiation.objects.filter(title__startswith="Batch").update(created_at=instant)
    Negotiation.objects.filter(title__in=["Ours", "Batch 3"]).update(stalled=True, stalled_since=instant)
    Negotiation.objects.filter(title="Batch 5").update(updated_at=instant - timedelta(days=1, microseconds=1))
    Negotiation.objects.filter(title="Batch 6").update(next_step_due=date(2022, 6, 1), last_activity_at=instant - timedelta(microseconds=120000))
    return made


@pytest.fixture
def api(ukraine, make_api):
    api = make_api(ukraine)
    assert api.get("/api/v1/me/").status_code == 200  # the first use writes last_used_at (the view's job)
    return api


@pytest.fixture(autouse=True)
def mark_short_answers(monkeypatch):
    """Responses the short path made itself carry `answered_fast` (handed on: they don't)."""
    answer = FastReadMiddleware.answer

    def spy(self, request):
        response = answer(self, request)
        if response is not None:
            response.answered_fast = True
        return response

    monkeypatch.setattr(FastReadMiddleware, "answer", spy)


def both(api, url, settings, **headers):
    """The short path's answer and the view's, to the same request."""
    with CaptureQueriesContext(connection) as fast_queries:
        fast = api.get(url, **headers)
    settings.TRACKER_FAST_READS = False
    try:
        with CaptureQueriesContext(connection) as view_queries:
            view = api.get(url, **headers)
    finally:
        settings.TRACKER_FAST_READS = True
    assert not any(FAST_SQL in query["sql"] for query in view_queries.captured_queries)
    assert not getattr(view, "answered_fast", False)
    fast.answered_fast = getattr(fast, "answered_fast", False)
    fast.queries = len(fast_queries.captured_queries)
    return fast, view


def assert_same(fast, view):
    assert fast.status_code == view.status_code
    assert fast.content == view.content
    assert {k: v for k, v in fast.headers.items() if k not in VOLATILE} == {
        k: v for k, v in view.headers.items() if k not in VOLATILE
    }


def walk(api, url, settings):
    """Follow `next` to the end, checking each page on both paths; then come back with
    `previous` from the last page. Returns the ids in order."""
    ids, pages = [], []
    while url:
        fast, view = both(api, url, settings)
        assert fast.answered_fast, url
        assert_same(fast, view)
        page = fast.json()
        pages.append(url)
        ids += [row["id"] for row in page["results"]]
        url = page["next"]
    previous = fast.json()["previous"]
    while previous:
        fast, view = both(api, previous, settings)
        assert fast.answered_fast and fast.status_code == 200
        assert_same(fast, view)
        previous = fast.json()["previous"]
    return ids


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?page_size=3",
        "?page_size=1",
        "?page_size=2&ordering=updated_at",
        "?page_size=2&ordering=-updated_at",
        "?page_size=4&ordering=created_at",
        "?page_size=2&stalled=true",
        "?page_size=5&stalled=false",
        "?page_size=2&ordering=updated_at&updated_since={since}",
        "?page_size=2&updated_since={since}&stalled=false",
    ],
)
def test_every_page_of_the_list_is_the_views_answer(record, api, ukraine, settings, query):
    since = (timezone.now() - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    ids = walk(api, "/api/v1/negotiations/" + query.format(since=since.replace(":", "%3A")), settings)
    expected = policy.negotiations_visible_to(api.api_client)
    if "stalled=true" in query:
        expected = expected.filter(stalled=True)
    if "stalled=false" in query:
        expected = expected.filter(stalled=False)
    if "updated_since" in query:
        expected = expected.filter(updated_at__gte=since)
    assert sorted(ids) == sorted(str(pk) for pk in expected.values_list("pk", flat=True))
    assert len(ids) == len(set(ids))
    titles = set(Negotiation.objects.filter(pk__in=ids).values_list("title", flat=True))
    assert not titles & {"Between others", "Staff only", "Recorded by us"}


def test_the_list_is_one_statement_and_logs_confidential_reads(record, api, settings):
    fast, _ = both(api, "/api/v1/negotiations/?page_size=200", settings)
    assert fast.answered_fast
    assert fast.queries == 2  # the page with the token check, and the read log's one INSERT
    reads = AuditEntry.objects.filter(action="read", actor_id=str(api.api_client.pk))
    assert sorted(r.split(" ", 1)[1] for r in reads.values_list("object_repr", flat=True)) == [
        "Batch 0", "Batch 2", "Batch 4", "Batch 6", "Ours",
    ]  # fmt: skip
    assert set(reads.values_list("actor_label", "channel")) == {("UA system (API client)", "api")}


@pytest.mark.parametrize("name", ["public", "ours", "batch 0"])
def test_a_visible_negotiation_and_its_304_are_the_views_answers(record, api, settings, name):
    url = f"/api/v1/negotiations/{record[name].pk}/"
    fast, view = both(api, url, settings)
    assert fast.answered_fast and fast.status_code == 200 and fast.queries <= 2
    assert_same(fast, view)
    tag = fast["ETag"]
    for header in (tag, f'W/{tag}, "other"', "*"):
        fast, view = both(api, url, settings, HTTP_IF_NONE_MATCH=header)
        assert fast.answered_fast and fast.status_code == 304
        assert_same(fast, view)
    fast, view = both(api, url, settings, HTTP_IF_NONE_MATCH='"stale"')
    assert fast.status_code == 200
    assert_same(fast, view)
    fast, view = both(api, url.rstrip("/"), settings, HTTP_ACCEPT="application/json")
    assert fast.answered_fast
    assert_same(fast, view)
    for accept in ("*/*", "application/json, text/plain, */*"):  # requests', axios's
        fast, view = both(api, url, settings, HTTP_ACCEPT=accept)
        assert fast.answered_fast
        assert_same(fast, view)
    for language in ("uk", "fr-FR,fr;q=0.9,en;q=0.5", "de", "en-GB"):  # the language headers
        fast, view = both(api, url, settings, HTTP_ACCEPT_LANGUAGE=language)
        assert fast.answered_fast
        assert_same(fast, view)
    api.cookies["django_language"] = "fr"  # the admin's switcher, on a shared browser session
    fast, view = both(api, url, settings, HTTP_ACCEPT_LANGUAGE="uk")
    assert fast.answered_fast and fast["Content-Language"] == "fr"
    assert_same(fast, view)


@pytest.mark.parametrize("name", ["between others", "staff only", "recorded by us"])
def test_a_negotiation_the_client_may_not_see_is_the_views_404(record, api, settings, name):
    fast, view = both(api, f"/api/v1/negotiations/{record[name].pk}/", settings)
    assert fast.status_code == 404
    assert_same(fast, view)


@pytest.mark.parametrize(
    "url, headers",
    [
        ("/api/v1/negotiations/?page_size=0", {}),
        ("/api/v1/negotiations/?page_size=abc", {}),
        ("/api/v1/negotiations/?ordering=title", {}),
        ("/api/v1/negotiations/?cursor=not-a-cursor", {}),
        ("/api/v1/negotiations/?cursor=cD1nYXJiYWdl", {}),  # a position that is no timestamp
        ("/api/v1/negotiations/?updated_since=yesterday", {}),
        ("/api/v1/negotiations/?stalled=maybe", {}),
        ("/api/v1/negotiations/?status=in_talks", {}),
        ("/api/v1/negotiations/?page_size=2&page_size=3", {}),
        ("/api/v1/negotiations/?format=json", {}),
        ("/api/v1/negotiations/", {"HTTP_ACCEPT": "text/html"}),
        ("/api/v1/negotiations/", {"HTTP_AUTHORIZATION": "Bearer not-a-token"}),
        ("/api/v1/negotiations/", {"HTTP_AUTHORIZATION": "Bearer"}),
        ("/api/v1/negotiations/", {"HTTP_HOST": "evil.example"}),
        ("/api/v1/negotiations/00000000-0000-0000-0000-000000000000/", {}),
        ("/api/v1/negotiations/not-a-uuid/", {}),
        ("/api/v1/negotiations//", {}),
        ("/api/v1/negotiations/{ours}//", {}),
        ("/api/v1/negotiationsx/", {}),
        ("/api/v1/negotiations/", {"HTTP_ACCEPT": "application/json; indent=4"}),
        ("/api/v1/negotiations/{ours}/?page_size=3", {}),
        ("/api/v1/negotiations/{ours}/events/", {}),
    ],
)
def test_what_the_short_path_does_not_handle_gets_the_views_answer(record, api, settings, url, headers):
    if "HTTP_AUTHORIZATION" in headers:
        api.credentials(HTTP_AUTHORIZATION=headers.pop("HTTP_AUTHORIZATION"))
    fast, view = both(api, url.format(ours=record["ours"].pk), settings, **headers)
    assert not fast.answered_fast, "answered a case it should have handed on"
    if headers.get("HTTP_ACCEPT") == "text/html":  # the browsable API: a fresh CSRF token in each page
        assert fast.status_code == view.status_code == 200
        return
    assert_same(fast, view)


def test_revoked_expired_and_stale_tokens_go_to_the_view(record, api, settings):
    url = f"/api/v1/negotiations/{record['public'].pk}/"
    ApiClient.objects.filter(pk=api.api_client.pk).update(last_used_at=timezone.now() - timedelta(hours=1))
    assert api.get(url).status_code == 200
    assert ApiClient.objects.get(pk=api.api_client.pk).last_used_at > timezone.now() - timedelta(minutes=1)
    ApiClient.objects.filter(pk=api.api_client.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    fast, view = both(api, url, settings)
    assert fast.status_code == 401 and "expired" in fast.json()["detail"]
    assert_same(fast, view)
    ApiClient.objects.filter(pk=api.api_client.pk).update(expires_at=None)
    services.api_client_revoke(client=api.api_client)
    fast, view = both(api, "/api/v1/negotiations/", settings)
    assert fast.status_code == 401 and "revoked" in fast.json()["detail"]
    assert_same(fast, view)


def test_the_short_path_counts_toward_the_rate_limit(record, api, settings):
    PrincipalRateThrottle.THROTTLE_RATES = {"api_client": "4/min"}
    try:
        url = f"/api/v1/negotiations/{record['public'].pk}/"
        codes = [api.get(url).status_code for _ in range(4)]  # /me/ in the fixture was the first
        assert codes == [200, 200, 200, 429]
        limited = api.get("/api/v1/negotiations/")
        assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    finally:
        PrincipalRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]


def test_next_links_keep_the_callers_host_and_parameters(record, api, settings):
    fast, view = both(api, "/api/v1/negotiations/?page_size=2&stalled=false", settings, HTTP_HOST="localhost:8000")
    assert_same(fast, view)
    link = urlsplit(fast.json()["next"])
    assert link.netloc == "localhost:8000" and "stalled=false" in link.query and "cursor=" in link.query
