"""Handovers in the staff admin: the agreement at a glance on the negotiation's page,
"Record handover", the handover admin (list, changes, deletes, CSV) and the commitments
inline; every write through the services."""
import csv
import io
from datetime import date, timedelta
from itertools import count

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exchanges import services
from exchanges.models import AuditEntry, Commitment, Handover, Transfer
from tests.admin.test_roles import form_data
from tests.factories import NegotiationFactory

pytestmark = pytest.mark.django_db

_numbers = count(1)


@pytest.fixture
def login(django_user_model):
    """`login(role)` -> a test client logged in as a new staff login in that role."""

    def make(role):
        user = django_user_model.objects.create_user(username=f"{role.lower()}-h{next(_numbers)}", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def exchange(ukraine, russia, icrc):
    """1,000 for 1,000: Ukraine committed 1,000, Russia all it holds; one done handover
    (Russia's count disputed), one planned whose date has passed, one planned ahead."""
    negotiation = NegotiationFactory(
        title="1,000 for 1,000",
        visibility="all_partners",
        opened_on=date(2025, 5, 16),
        participants=[(ukraine, "side"), (russia, "side"), (icrc, "facilitator")],
    )
    services.negotiation_update(
        negotiation=negotiation,
        actor=None,
        commitments=[{"party": ukraine, "count": 1000}, {"party": russia, "count": None, "notes": "All for all"}],
    )
    services.handover_create(
        negotiation=negotiation, actor=None, state="done", occurred_on=date(2025, 5, 23), location="Belarus–Ukraine border",
        verified_by=icrc,
        transfers=[
            {"from_party": ukraine, "to_party": russia, "released_count": 390, "received_count": 390, "verified_count": 390, "seriously_wounded_count": 12},
            {"from_party": russia, "to_party": ukraine, "released_count": 390, "received_count": 385},
        ],
    )  # fmt: skip
    today = timezone.localdate()
    services.handover_create(
        negotiation=negotiation, actor=None, planned_on=today - timedelta(days=3), location="Overdue crossing",
        transfers=[{"from_party": ukraine, "to_party": russia, "planned_count": 307}],
    )  # fmt: skip
    services.handover_create(negotiation=negotiation, actor=None, planned_on=today + timedelta(days=10), location="Later crossing")
    return negotiation


def page_url(negotiation):
    return reverse("admin:exchanges_negotiation_change", args=[negotiation.pk])


def record_url(negotiation):
    return reverse("admin:exchanges_negotiation_record_handover", args=[negotiation.pk])


# The agreement at a glance -----------------------------------------------------------------


def test_the_negotiation_page_shows_the_bars_an_overdue_handover_and_a_dispute(login, exchange, ukraine, russia):
    response = login("Viewer").get(page_url(exchange))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="agreement"' in page and page.count('class="agreement-bar') == 2
    sides = {side["name"]: side for side in response.context["agreement"]["sides"]}
    ua, ru = sides[ukraine], sides[russia]
    assert (ua["committed"], ua["released"], ua["verified"], ua["remaining"], ua["disputed"]) == (1000, 390, 390, 610, False)
    assert ua["released_width"] == "39.00" and ua["committed_width"] == "100.00"
    assert (ru["committed"], ru["released"], ru["remaining"], ru["open_ended"], ru["disputed"]) == (None, 390, None, True, True)
    assert page.count(">Remaining</dt>") == 1  # the open-ended side shows none
    assert "all it holds (open-ended)" in page
    overdue_day = (timezone.localdate() - timedelta(days=3)).isoformat()
    assert f"Overdue: planned for {overdue_day}" in page and page.count("handover-overdue") == 1
    assert "Disputed counts" in page and page.count("transfer-disputed") == 1
    assert page.index("Handover 1") < page.index("Handover 2") < page.index("Handover 3")
    assert "Belarus–Ukraine border" in page and "International Committee of the Red Cross" in page


def test_the_page_reads_the_agreement_in_the_same_number_of_queries_however_many_handovers(login, exchange, ukraine, russia, icrc):
    coordinator = login("Coordinator")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert coordinator.get(page_url(exchange)).status_code == 200
        return len(captured)

    before = queries()
    services.negotiation_update(
        negotiation=exchange, actor=None,
        commitments=[{"party": ukraine, "count": 1000}, {"party": russia, "count": 1000}, {"party": icrc, "count": 0}],
    )  # fmt: skip
    for day in (24, 25, 26):
        services.handover_create(
            negotiation=exchange, actor=None, state="done", occurred_on=date(2025, 5, day), verified_by=ukraine,
            transfers=[{"from_party": russia, "to_party": ukraine, "released_count": 10},
                       {"from_party": ukraine, "to_party": russia, "released_count": 10}],
        )  # fmt: skip
    assert queries() == before


# Recording a handover ----------------------------------------------------------------------


def record_data(ukraine, russia, **fields):
    """A done handover in both directions, as the form's four rows send it."""
    data = {
        "state": "done", "planned_on": "2025-05-24", "occurred_on": "2025-05-24", "location": "Border", "verified_by": "",
        "source": "Statements of both sides", "notes": "",
        "transfers-TOTAL_FORMS": "4", "transfers-INITIAL_FORMS": "0", "transfers-MIN_NUM_FORMS": "0", "transfers-MAX_NUM_FORMS": "50",
        "transfers-0-from_party": str(ukraine.pk), "transfers-0-to_party": str(russia.pk),
        "transfers-0-released_count": "307", "transfers-0-received_count": "307", "transfers-0-civilians_count": "7",
        "transfers-1-from_party": str(russia.pk), "transfers-1-to_party": str(ukraine.pk),
        "transfers-1-released_count": "307", "transfers-1-received_count": "307",
    }  # fmt: skip
    data.update(fields)
    return data


def test_recording_a_handover_returns_to_the_negotiation_page_and_writes_it_with_its_transfers(login, exchange, ukraine, russia, icrc):
    editor = login("Editor")
    page = editor.get(page_url(exchange)).content.decode()
    assert record_url(exchange) in page
    form = editor.get(record_url(exchange))
    assert form.status_code == 200
    rows = form.context["formset"].forms
    assert [(row.initial.get("from_party"), row.initial.get("to_party")) for row in rows[:2]] == [(ukraine, russia), (russia, ukraine)]
    assert {party.pk for party in rows[0].fields["from_party"].listed} == {ukraine.pk, russia.pk, icrc.pk}
    response = editor.post(record_url(exchange), record_data(ukraine, russia, verified_by=str(icrc.pk)))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert response["Location"] == page_url(exchange)
    handover = Handover.objects.get(negotiation=exchange, sequence=4)
    assert (handover.state, handover.occurred_on, handover.verified_by, handover.recorded_by_user) == ("done", date(2025, 5, 24), icrc, editor.user)
    transfers = list(handover.transfers.order_by("id").values_list("from_party", "to_party", "released_count", "received_count", "civilians_count"))
    assert transfers == [(ukraine.pk, russia.pk, 307, 307, 7), (russia.pk, ukraine.pk, 307, 307, None)]
    assert AuditEntry.objects.filter(model="exchanges.handover", object_id=str(handover.pk), action="create").exists()
    shown = editor.get(page_url(exchange)).content.decode()
    assert "Handover 4 recorded (Done)." in shown and "Handover 4" in shown


def test_rows_left_as_offered_are_not_recorded(login, exchange, ukraine, russia):
    data = record_data(ukraine, russia, state="planned", occurred_on="", planned_on="2030-01-01")
    for row in (0, 1):
        for name in ("released_count", "received_count", "civilians_count"):
            data[f"transfers-{row}-{name}"] = ""
    response = login("Editor").post(record_url(exchange), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not Handover.objects.get(negotiation=exchange, sequence=4).transfers.exists()


@pytest.mark.parametrize(
    "case",
    ["done without a date", "wounded above released", "a party that does not take part", "a direction twice"],
)
def test_bad_input_shows_the_error_on_the_form_and_writes_nothing(login, exchange, ukraine, russia, outsider, case):
    data = record_data(ukraine, russia)
    if case == "done without a date":
        data["occurred_on"] = ""
    elif case == "wounded above released":
        data["transfers-1-seriously_wounded_count"] = "400"
    elif case == "a party that does not take part":
        data["transfers-1-from_party"] = str(outsider.pk)
    else:
        data["transfers-1-from_party"], data["transfers-1-to_party"] = str(ukraine.pk), str(russia.pk)
    handovers, transfers = Handover.objects.count(), Transfer.objects.count()
    response = login("Editor").post(record_url(exchange), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was recorded." in page
    if case == "done without a date":
        assert response.context["form"].errors["occurred_on"] == ["Required once the handover is done."]
    elif case == "wounded above released":
        assert response.context["transfer_errors"] == ["Transfer 2: 400 of whom seriously wounded (seriously_wounded_count) is more than 307 released (released_count)."]
        assert page.index('id="transfer-errors"') < page.index('name="transfers-0-from_party"')
    elif case == "a party that does not take part":
        assert "Select a valid choice" in str(response.context["formset"].forms[1].errors["from_party"])
    else:
        assert "listed more than once" in response.context["transfer_errors"][0]
    assert response.context["form"]["location"].value() == "Border"  # what was typed stays
    assert (Handover.objects.count(), Transfer.objects.count()) == (handovers, transfers)


def test_a_viewer_does_not_see_the_action_and_is_refused_it(login, exchange, ukraine, russia):
    viewer = login("Viewer")
    response = viewer.get(page_url(exchange))
    assert response.status_code == 200 and response.context["record_handover_url"] is None
    assert record_url(exchange) not in response.content.decode() and "Record handover" not in response.content.decode()
    assert viewer.get(record_url(exchange)).status_code == 403
    assert viewer.post(record_url(exchange), record_data(ukraine, russia)).status_code == 403
    assert not Handover.objects.filter(negotiation=exchange, sequence=4).exists()


def test_a_staff_only_negotiation_of_another_team_is_not_found(login, ukraine):
    from exchanges.models import Team

    hidden = NegotiationFactory(visibility="staff_only", teams=[Team.objects.create(name="Other desk")], participants=[(ukraine, "side")])
    assert login("Editor").get(record_url(hidden)).status_code == 404


# The handover admin ------------------------------------------------------------------------


def test_the_handover_list_marks_the_overdue_and_the_disputed_and_filters_by_state(login, exchange):
    viewer = login("Viewer")
    listing = viewer.get(reverse("admin:exchanges_handover_changelist"))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert page.count('class="handover-overdue"') == 1 and page.count('class="handover-disputed"') == 1
    assert exchange.reference in page
    planned = viewer.get(reverse("admin:exchanges_handover_changelist"), {"state__exact": "planned"})
    assert sorted(h.sequence for h in planned.context["cl"].result_list) == [2, 3]
    overdue = viewer.get(reverse("admin:exchanges_handover_changelist"), {"overdue": "yes"})
    assert [h.sequence for h in overdue.context["cl"].result_list] == [2]
    disputed = viewer.get(reverse("admin:exchanges_handover_changelist"), {"disputed": "yes", "o": "7"})
    assert [h.sequence for h in disputed.context["cl"].result_list] == [1]
    assert viewer.get(reverse("admin:exchanges_handover_add")).status_code == 403


def test_a_handover_and_its_transfers_are_changed_through_the_service(login, exchange, ukraine, russia):
    handover = Handover.objects.get(negotiation=exchange, sequence=2)
    editor = login("Editor")
    url = reverse("admin:exchanges_handover_change", args=[handover.pk])
    page = editor.get(url)
    assert page.status_code == 200 and 'name="transfers-0-from_party"' in page.content.decode()
    data = form_data(page)
    data.update({"state": "done", "occurred_on": timezone.localdate().isoformat(), "transfers-0-released_count": "300"})
    data.update({"transfers-1-from_party": str(russia.pk), "transfers-1-to_party": str(ukraine.pk), "transfers-1-released_count": "300"})
    response = editor.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    handover.refresh_from_db()
    assert handover.state == "done" and handover.occurred_on == timezone.localdate()
    rows = list(handover.transfers.order_by("id").values_list("from_party", "to_party", "planned_count", "released_count"))
    assert rows == [(ukraine.pk, russia.pk, 307, 300), (russia.pk, ukraine.pk, None, 300)]
    entry = AuditEntry.objects.filter(model="exchanges.handover", object_id=str(handover.pk), action="update").get()
    assert entry.actor_label == editor.user.username


def test_saving_an_unchanged_handover_writes_nothing(login, exchange):
    handover = Handover.objects.get(negotiation=exchange, sequence=1)
    editor = login("Editor")
    url = reverse("admin:exchanges_handover_change", args=[handover.pk])
    before = AuditEntry.objects.count()
    assert editor.post(url, form_data(editor.get(url))).status_code == 302
    assert AuditEntry.objects.count() == before
    assert handover.transfers.count() == 2


def test_a_refused_change_shows_the_reason_and_changes_nothing(login, exchange, ukraine, russia):
    handover = Handover.objects.get(negotiation=exchange, sequence=2)
    editor = login("Editor")
    url = reverse("admin:exchanges_handover_change", args=[handover.pk])
    data = form_data(editor.get(url))
    data.update({"state": "done", "occurred_on": "", "transfers-0-seriously_wounded_count": "400"})
    response = editor.post(url, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Part of “Planned” (307), never more." in page
    data["transfers-0-seriously_wounded_count"] = ""
    response = editor.post(url, data)
    assert response.status_code == 200 and "Required once the handover is done." in response.content.decode()
    handover.refresh_from_db()
    assert handover.state == "planned" and handover.transfers.get().seriously_wounded_count is None


def test_deleting_a_handover_goes_through_the_service(login, exchange):
    handover = Handover.objects.get(negotiation=exchange, sequence=3)
    url = reverse("admin:exchanges_handover_delete", args=[handover.pk])
    assert login("Editor").post(url, {"post": "yes"}).status_code == 403
    response = login("Coordinator").post(url, {"post": "yes"})
    assert response.status_code == 302 and not Handover.objects.filter(pk=handover.pk).exists()
    assert AuditEntry.objects.filter(model="exchanges.handover", object_id=str(handover.pk), action="delete").exists()


def test_the_csv_export_has_a_row_per_transfer_with_the_handovers_fields(login, exchange, ukraine, russia):
    viewer = login("Viewer")

    def export(**params):
        with CaptureQueriesContext(connection) as captured:
            response = viewer.get(reverse("admin:exchanges_handover_export"), params)
            body = b"".join(response.streaming_content).decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(body))), len(captured)

    rows, queries = export()
    assert [(row["sequence"], row["from_party"], row["to_party"]) for row in rows] == [
        ("1", ukraine.name, russia.name), ("1", russia.name, ukraine.name), ("2", ukraine.name, russia.name), ("3", "", ""),
    ]  # fmt: skip
    first, disputed, overdue, later = rows
    assert (first["negotiation"], first["state"], first["occurred_on"], first["verified_by"]) == (exchange.reference, "Done", "2025-05-23", "International Committee of the Red Cross")
    assert (first["released_count"], first["seriously_wounded_count"], first["disputed"]) == ("390", "12", "no")
    assert (disputed["received_count"], disputed["disputed"]) == ("385", "yes")
    assert (overdue["state"], overdue["overdue"], overdue["planned_count"]) == ("Planned", "yes", "307")
    assert later["overdue"] == "no" and later["location"] == "Later crossing"
    only_planned, _queries = export(state__exact="planned")
    assert [row["sequence"] for row in only_planned] == ["2", "3"]
    services.handover_create(
        negotiation=exchange, actor=None, state="done", occurred_on=date(2025, 5, 26),
        transfers=[{"from_party": russia, "to_party": ukraine, "released_count": 5}, {"from_party": ukraine, "to_party": russia, "released_count": 5}],
    )  # fmt: skip
    more, more_queries = export()
    assert len(more) == 6 and more_queries == queries


@pytest.mark.parametrize("role", ["Viewer", "Editor", "Coordinator", "Auditor"])
def test_every_handover_page_answers_each_role_without_an_error(login, exchange, role):
    client = login(role)
    handover = Handover.objects.get(negotiation=exchange, sequence=1)
    for url in (
        reverse("admin:exchanges_handover_changelist"),
        reverse("admin:exchanges_handover_change", args=[handover.pk]),
        reverse("admin:exchanges_handover_history", args=[handover.pk]),
        reverse("admin:exchanges_handover_export"),
        page_url(exchange),
        record_url(exchange),
    ):
        status = client.get(url).status_code
        assert status in (200, 302, 403), (role, url, status)


# Commitments ---------------------------------------------------------------------------------


def test_commitments_edited_on_the_page_are_saved_through_the_service(login, exchange, ukraine, russia):
    editor = login("Editor")
    page = editor.get(page_url(exchange))
    assert 'name="commitments-0-party"' in page.content.decode()
    data = form_data(page)
    assert data["commitments-0-party"] == str(ukraine.pk) and data["commitments-1-count"] == ""
    data.update({"commitments-0-count": "1200", "commitments-1-count": "1000", "commitments-1-seriously_wounded_count": "50"})
    response = editor.post(page_url(exchange), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(Commitment.objects.filter(negotiation=exchange).order_by("id").values_list("party", "count", "seriously_wounded_count", "notes")) == [
        (ukraine.pk, 1200, None, ""), (russia.pk, 1000, 50, "All for all"),
    ]  # fmt: skip
    entry = AuditEntry.objects.filter(model="exchanges.negotiation", object_id=str(exchange.pk), action="update").latest("id")
    assert entry.actor_label == editor.user.username and "commitments" in entry.changes


def test_a_bad_commitment_shows_the_error_and_saves_nothing(login, exchange, ukraine, outsider):
    editor = login("Editor")
    data = form_data(editor.get(page_url(exchange)))
    data.update({"commitments-0-seriously_wounded_count": "5000"})
    response = editor.post(page_url(exchange), data)
    assert response.status_code == 200 and "Part of “Committed to release” (1000), never more." in response.content.decode()
    data.update({"commitments-0-seriously_wounded_count": "", "commitments-2-party": str(outsider.pk), "commitments-2-count": "5"})
    response = editor.post(page_url(exchange), data)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert list(Commitment.objects.filter(negotiation=exchange).values_list("count", flat=True)) == [1000, None]


def test_a_viewer_reads_the_commitments_but_cannot_change_them(login, exchange):
    page = login("Viewer").get(page_url(exchange)).content.decode()
    assert 'name="commitments-0-party"' not in page and "All for all" in page
