"""List and detail endpoints run a fixed number of queries, whatever the page size."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exchanges import services
from tests.factories import DetaineeGroupFactory, NegotiationFactory, PartyFactory, ReportedFigureFactory
from tests.services import require_postgres

pytestmark = pytest.mark.django_db

#: At most this many queries for any list or detail request (auth included).
MAX_QUERIES = 4


@pytest.fixture
def busy(ukraine, russia, icrc):
    negotiations = []
    for n in range(12):
        groups = [DetaineeGroupFactory(held_by=russia, affiliated_with=ukraine) for _ in range(2)]
        for group in groups:
            ReportedFigureFactory(group=group, value=n)
            ReportedFigureFactory(group=group, value=n + 1, source_party=russia)
        negotiation = NegotiationFactory(
            visibility="all_partners", participants=[(ukraine, "side"), (russia, "side"), (icrc, "facilitator")], groups=groups
        )
        services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
        for _ in range(2):
            services.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=negotiation.last_activity_at, summary="m", parties=[ukraine, russia])
        services.negotiation_update(
            negotiation=negotiation, actor=None, commitments=[{"party": ukraine, "count": 10}, {"party": russia, "count": None}]
        )
        for state in ("done", "planned"):
            services.handover_create(
                negotiation=negotiation,
                actor=None,
                state=state,
                occurred_on=negotiation.opened_on if state == "done" else None,
                transfers=[
                    {"from_party": ukraine, "to_party": russia, "released_count": 4, "received_count": 3},
                    {"from_party": russia, "to_party": ukraine, "released_count": 4, "seriously_wounded_count": 1},
                ],
            )
        negotiations.append(negotiation)
    for _ in range(12):
        PartyFactory()
    return negotiations


def count(api, url):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


def test_every_list_and_detail_runs_a_fixed_number_of_queries(busy, ukraine, make_api):
    api = make_api(ukraine)
    api.get("/api/v1/parties/")  # records last_used once, outside the measured requests
    negotiation = busy[0]
    group = negotiation.covered_groups.first().group
    figure = group.figures.first()
    event = negotiation.events.first()
    change = negotiation.status_changes.first()
    lists = [
        "/api/v1/parties/",
        "/api/v1/detainee-groups/",
        f"/api/v1/detainee-groups/{group.pk}/figures/",
        "/api/v1/negotiations/",
        "/api/v1/negotiations/?stalled=false&status=in_talks",
        f"/api/v1/negotiations/{negotiation.pk}/status-changes/",
        f"/api/v1/negotiations/{negotiation.pk}/events/",
        f"/api/v1/negotiations/{negotiation.pk}/handovers/",
    ]
    handover = negotiation.handovers.first()
    details = [
        f"/api/v1/parties/{ukraine.pk}/",
        f"/api/v1/detainee-groups/{group.pk}/",
        f"/api/v1/detainee-groups/{group.pk}/figures/{figure.pk}/",
        f"/api/v1/negotiations/{negotiation.pk}/",
        f"/api/v1/negotiations/{negotiation.pk}/status-changes/{change.pk}/",
        f"/api/v1/negotiations/{negotiation.pk}/events/{event.pk}/",
        f"/api/v1/negotiations/{negotiation.pk}/handovers/{handover.pk}/",
    ]
    counts = {}
    for url in lists:
        joiner = "&" if "?" in url else "?"
        small, large = count(api, f"{url}{joiner}page_size=2"), count(api, f"{url}{joiner}page_size=200")
        assert small == large, (url, small, large)
        counts[url] = large
    for url in details:
        counts[url] = count(api, url)
    # SQLite (the embedded default) reads a negotiation's lists and progress with prefetches;
    # PostgreSQL, the production shape, as JSON in the same query.
    sqlite_prefetches = 0 if connection.vendor == "postgresql" else 3
    assert max(counts.values()) <= MAX_QUERIES + sqlite_prefetches, counts


def test_a_clients_first_read_of_confidential_negotiations_logs_it_within_the_same_budget(ukraine, russia, make_api):
    """On PostgreSQL, the production shape (SQLite reads the lists with two prefetches more)."""
    require_postgres()
    for _ in range(6):
        NegotiationFactory(visibility="participants", participants=[(ukraine, "side"), (russia, "side")])
    api = make_api(ukraine)
    api.get("/api/v1/parties/")
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/negotiations/?page_size=200")
    assert response.status_code == 200 and len(response.json()["results"]) == 6
    assert any("INSERT" in query["sql"] for query in queries.captured_queries)  # the read is logged...
    assert len(queries) <= MAX_QUERIES  # ...in one statement, with no transaction round trips around it
    from exchanges.models import AuditEntry

    assert AuditEntry.objects.filter(action="read", actor_id=str(api.api_client.pk)).count() == 6
