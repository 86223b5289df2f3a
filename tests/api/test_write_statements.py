"""A partner's status change and event cost at most twelve statements from BEGIN to COMMIT,
with the row lock, the policy check, the audit entry, the change log and the webhook
outbox (issue 17: they were 24 each; `make bench` prints the rate beside a bare INSERT)."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exchanges.models import AuditEntry, Change, Event, StatusChange
from tests.factories import NegotiationFactory
from tests.services import require_postgres

# The write's own transaction is what is counted: a test wrapped in one would turn it into a savepoint.
pytestmark = pytest.mark.django_db(transaction=True)

MAX_STATEMENTS = 12


def write_transaction(queries):
    """The statements from the write's BEGIN to its COMMIT, both included."""
    sql = [query["sql"] for query in queries.captured_queries]
    begin = sql.index("BEGIN")
    return sql[begin : sql.index("COMMIT", begin) + 1]


@pytest.fixture
def partner(ukraine, russia, make_api):
    require_postgres()
    negotiation = NegotiationFactory(visibility="participants", participants=[(ukraine, "side"), (russia, "side")])
    api = make_api(ukraine)
    api.get(f"/api/v1/negotiations/{negotiation.pk}/")  # the client's first read is logged once, before
    return api, negotiation


def test_a_status_change_takes_at_most_twelve_statements_with_its_audit_and_feed(partner):
    api, negotiation = partner
    with CaptureQueriesContext(connection) as queries:
        response = api.post(f"/api/v1/negotiations/{negotiation.pk}/status-changes/", {"to_status": "in_talks"}, format="json")
    assert response.status_code == 201, response.content
    statements = write_transaction(queries)
    assert len(statements) <= MAX_STATEMENTS, "\n".join(statements)
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    change = StatusChange.objects.get(pk=response.json()["id"])
    assert (change.sequence, change.from_status, change.to_status) == (1, "proposed", "in_talks")
    negotiation.refresh_from_db()
    assert (negotiation.status, negotiation.activity_count, negotiation.last_activity_at) == ("in_talks", 1, change.occurred_at)
    assert AuditEntry.objects.filter(model="exchanges.statuschange", object_id=str(change.pk), action="create").exists()
    feed = Change.objects.filter(negotiation_id=negotiation.pk, action__in=["created", "updated"]).order_by("id")
    assert list(feed.values_list("object_type", "action"))[-2:] == [("status_change", "created"), ("negotiation", "updated")]


def test_an_event_takes_at_most_twelve_statements_with_its_audit_and_feed(partner, russia):
    api, negotiation = partner
    body = {"kind": "meeting", "occurred_at": "2024-03-01T10:00:00Z", "summary": "Lists compared", "parties": [str(russia.pk)]}
    with CaptureQueriesContext(connection) as queries:
        response = api.post(f"/api/v1/negotiations/{negotiation.pk}/events/", body, format="json")
    assert response.status_code == 201, response.content
    statements = write_transaction(queries)
    assert len(statements) <= MAX_STATEMENTS, "\n".join(statements)
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    event = Event.objects.get(pk=response.json()["id"])
    assert [party.pk for party in event.parties.all()] == [russia.pk]
    negotiation.refresh_from_db()
    assert (negotiation.activity_count, negotiation.last_activity_at) == (1, event.occurred_at)
    entry = AuditEntry.objects.get(model="exchanges.event", object_id=str(event.pk), action="create")
    assert entry.changes["parties"] == [None, [str(russia.pk)]]
    feed = Change.objects.filter(negotiation_id=negotiation.pk, action__in=["created", "updated"]).order_by("id")
    assert list(feed.values_list("object_type", "action"))[-2:] == [("event", "created"), ("negotiation", "updated")]


def test_a_refused_status_change_writes_nothing(partner, make_api, icrc):
    """The policy is asked inside the write's transaction, once the row is locked: a party
    that does not take part is refused (403) and nothing is recorded."""
    _api, negotiation = partner
    negotiation.visibility = "all_partners"
    negotiation.save(update_fields=["visibility"])
    outsider = make_api(icrc)
    response = outsider.post(f"/api/v1/negotiations/{negotiation.pk}/status-changes/", {"to_status": "in_talks"}, format="json")
    assert response.status_code == 403, response.content
    assert not StatusChange.objects.filter(negotiation=negotiation).exists()
