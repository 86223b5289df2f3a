"""Admin lists that stay flat at a million rows: no count of a whole table, filters that
offer their choices without reading the list, and pages whose queries do not grow with
the status changes or figures they show."""
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exchanges import services
from exchanges.admin import counts
from tests.factories import NegotiationFactory, PartyFactory, ReportedFigureFactory

pytestmark = pytest.mark.django_db

BIG_LISTS = [
    "admin:exchanges_negotiation_changelist",
    "admin:exchanges_statuschange_changelist",
    "admin:exchanges_event_changelist",
    "admin:exchanges_auditentry_changelist",
    "admin:exchanges_accesslogentry_changelist",
    "admin:tracker_flag_changelist",
    "admin:exchanges_reportedfigure_changelist",
    "admin:exchanges_detaineegroup_changelist",
]


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def recorded(ukraine, russia, icrc, garrison):
    """A negotiation with a history, an event and a figure: every big list has a row."""
    negotiation = NegotiationFactory(
        participants=[(ukraine, "side"), (russia, "side"), (icrc, "facilitator")], groups=[garrison], visibility="staff_only"
    )
    services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None, occurred_at=timezone.now() - timedelta(days=3))
    services.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=timezone.now() - timedelta(days=2), summary="Met", parties=[icrc])
    ReportedFigureFactory(group=garrison, value=10, source_party=russia)
    return negotiation


def _sql_of(client, url, params=None):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200, (url, response.status_code)
    return [query["sql"] for query in captured], response


@pytest.mark.parametrize("name", BIG_LISTS)
def test_a_big_list_never_counts_a_whole_table(staff, recorded, name):
    statements, _response = _sql_of(staff, reverse(name))
    counts_ = [sql for sql in statements if "COUNT(" in sql.upper()]
    assert all("LIMIT" in sql.upper() for sql in counts_), counts_


@pytest.mark.parametrize("name", BIG_LISTS)
def test_a_big_list_reads_no_distinct_for_its_filters_or_dates(staff, recorded, name):
    statements, _response = _sql_of(staff, reverse(name))
    assert not [sql for sql in statements if "DISTINCT" in sql.upper()]


def test_a_filtered_list_is_counted_only_up_to_the_cap(staff, recorded, monkeypatch):
    for number in range(4):
        NegotiationFactory(title=f"Filtered {number}")
    monkeypatch.setattr(counts, "CAP", 2)
    response = staff.get(reverse("admin:exchanges_negotiation_changelist"), {"q": "Filtered"})
    changelist = response.context["cl"]
    assert changelist.result_count == 3  # CAP + 1: "more than two"
    assert changelist.paginator.approximate
    assert changelist.full_result_count is None
    assert "more than 2 negotiations" in response.content.decode()


def test_the_party_filter_offers_the_parties_without_reading_the_participants(staff, recorded, outsider):
    statements, response = _sql_of(staff, reverse("admin:exchanges_negotiation_changelist"))
    assert not [sql for sql in statements if "exchanges_participant" in sql]
    assert "Outside Observer State" in response.content.decode()


def test_the_party_filter_still_filters(staff, recorded, outsider):
    response = staff.get(reverse("admin:exchanges_negotiation_changelist"), {"party": str(outsider.pk)})
    assert response.context["cl"].result_count == 0
    response = staff.get(reverse("admin:exchanges_negotiation_changelist"), {"party": str(recorded.participants.first().party_id)})
    assert list(response.context["cl"].result_list) == [recorded]


def test_a_party_alone_is_counted_from_its_participations_for_a_login_that_sees_everything(
    staff, recorded, ukraine, django_user_model, client
):
    """Counted from the participants' index (no probe of each negotiation); the count is
    the list's, its staff-only negotiations included; a login that does not see every
    staff-only negotiation gets the list's own count, without them."""
    NegotiationFactory(participants=[(ukraine, "observer")], visibility="all_partners")
    url = reverse("admin:exchanges_negotiation_changelist")
    statements, response = _sql_of(staff, url, {"party": str(ukraine.pk), "o": "1"})
    counted = [sql for sql in statements if "COUNT(" in sql.upper()]
    assert counted and all("exchanges_negotiation" not in sql for sql in counted), counted
    assert response.context["cl"].result_count == 2 == len(response.context["cl"].result_list)

    from django.contrib.auth.models import Group

    editor = django_user_model.objects.create_user(username="outside-the-team", password="pw-staff-123", is_staff=True)
    editor.groups.add(Group.objects.get(name="Editor"))
    client.force_login(editor)
    statements, response = _sql_of(client, url, {"party": str(ukraine.pk)})
    assert response.context["cl"].result_count == 1  # not the staff-only one of a team it is not in
    assert any("exchanges_negotiation" in sql for sql in statements if "COUNT(" in sql.upper())


def test_the_date_filter_replaces_the_date_hierarchy(staff, recorded):
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)  # as Django's own links write it
    url = reverse("admin:exchanges_statuschange_changelist")
    response = staff.get(url, {"occurred_at__gte": str(today - timedelta(days=7)), "occurred_at__lt": str(today + timedelta(days=1))})
    assert response.status_code == 200 and response.context["cl"].result_count == 1
    assert staff.get(url, {"occurred_at__gte": "not a date"}, follow=True).status_code == 200  # never a 500


def _page_queries(client, url):
    client.get(url)  # caches warmed
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_negotiation_page_costs_the_same_whatever_the_number_of_status_changes(staff, recorded, django_user_model):
    def change_by_a_new_login(number, to_status):
        recorder = django_user_model.objects.create_user(username=f"recorder-{number}", is_staff=True, is_superuser=True)
        services.negotiation_change_status(negotiation=recorded, to_status=to_status, actor=recorder)

    url = reverse("admin:exchanges_negotiation_change", args=[recorded.pk])
    change_by_a_new_login(0, "suspended")  # one by a login already: what grows below is their number
    before = _page_queries(staff, url)
    for number, to_status in enumerate(["in_talks", "suspended", "in_talks", "suspended", "in_talks"], start=1):
        change_by_a_new_login(number, to_status)
    assert _page_queries(staff, url) == before


def test_the_group_page_costs_the_same_whatever_the_number_of_figures(staff, recorded, garrison):
    url = reverse("admin:exchanges_detaineegroup_change", args=[garrison.pk])
    before = _page_queries(staff, url)
    for number in range(8):
        ReportedFigureFactory(group=garrison, value=20 + number, source_party=PartyFactory(name=f"Source state {number}"), reported_on=date(2023, 1, 1 + number))
    assert _page_queries(staff, url) == before
