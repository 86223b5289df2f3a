"""API lists that stay flat at a million rows: a choice filter on a record's own column
adds no DISTINCT (a join that cannot repeat rows needs none), and still finds each row
once; every cursor ordering ends with a unique tie-breaker."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exchanges import services
from exchanges.api import views as exchange_views
from exchanges.api.pagination import CursorPagination
from tests.factories import NegotiationFactory
from tracker.api import views as tracker_views

pytestmark = pytest.mark.django_db


@pytest.fixture
def talking(ukraine, russia, icrc):
    negotiations = [
        NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side"), (russia, "side"), (icrc, "facilitator")])
        for _ in range(3)
    ]
    for negotiation in negotiations[:2]:
        services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    return negotiations


def _get(api, url):
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.content
    return response, [query["sql"] for query in captured]


@pytest.mark.parametrize("who", ["staff", "client"])
def test_the_status_filter_adds_no_distinct_and_finds_each_negotiation_once(who, talking, staff_api, make_api, ukraine):
    api = staff_api if who == "staff" else make_api(ukraine)
    response, statements = _get(api, "/api/v1/negotiations/?status=in_talks&status=proposed&priority=routine")
    assert not [sql for sql in statements if "DISTINCT" in sql.upper() and "exchanges_negotiation" in sql], statements
    ids = [row["id"] for row in response.json()["results"]]
    assert sorted(ids) == sorted(str(negotiation.pk) for negotiation in talking)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "url", ["/api/v1/flags/?kind=no_activity&level=overdue", "/api/v1/detainee-groups/?category=combatants", "/api/v1/parties/?kind=state"]
)
def test_other_choice_filters_add_no_distinct(url, talking, staff_api):
    _response, statements = _get(staff_api, url)
    assert not [sql for sql in statements if "DISTINCT" in sql.upper()], statements


@pytest.mark.parametrize(
    "view", [exchange_views.NegotiationViewSet, exchange_views.DetaineeGroupViewSet, tracker_views.FlagViewSet]
)
def test_every_cursor_ordering_ends_with_the_unique_id(view):
    ordering = CursorPagination.unique(view.cursor_ordering)
    assert ordering[-1].lstrip("-") == "id"
    assert len({field.startswith("-") for field in ordering}) == 1  # one direction: one index walks it
