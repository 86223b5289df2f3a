"""The staff's daily interface: every page renders, status changes go through the service."""
import pytest
from django.urls import reverse

from exchanges import services
from exchanges.models import ApiClient, Negotiation, Participant, StatusChange
from tests.factories import ReportedFigureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def test_every_changelist_renders_with_its_filters(staff, confidential, public_negotiation, garrison):
    for model in ("party", "detaineegroup", "reportedfigure", "negotiation", "statuschange", "event", "apiclient"):
        response = staff.get(reverse(f"admin:exchanges_{model}_changelist"))
        assert response.status_code == 200, model
    filtered = staff.get(reverse("admin:exchanges_negotiation_changelist"), {"status__exact": "proposed", "stalled": "no", "priority__exact": "routine"})
    assert filtered.status_code == 200 and confidential.reference in filtered.content.decode()
    search = staff.get(reverse("admin:exchanges_negotiation_changelist"), {"q": "All-for"})
    assert public_negotiation.reference in search.content.decode() and confidential.reference not in search.content.decode()


def test_the_negotiation_page_shows_participants_history_and_timeline(staff, confidential, ukraine):
    services.negotiation_change_status(negotiation=confidential, to_status="in_talks", actor=None, note="Opened via ICRC")
    services.event_create(negotiation=confidential, actor=None, kind="meeting", occurred_at=confidential.last_activity_at, summary="First meeting in Geneva", parties=[ukraine])
    page = staff.get(reverse("admin:exchanges_negotiation_change", args=[confidential.pk])).content.decode()
    assert "First meeting in Geneva" in page and "Opened via ICRC" in page
    assert "Change status" in page and ukraine.name in page


def test_changing_the_status_in_the_admin_goes_through_the_service(staff, staff_user, confidential):
    url = reverse("admin:exchanges_negotiation_change_status", args=[confidential.pk])
    assert staff.get(url).status_code == 200
    response = staff.post(url, {"to_status": "in_talks", "occurred_at": "2022-05-09 12:00:00", "note": "agreed to talk"}, follow=True)
    assert response.status_code == 200
    assert "Status changed" in response.content.decode()
    change = StatusChange.objects.get(negotiation=confidential)
    assert (change.from_status, change.to_status, change.recorded_by_user) == ("proposed", "in_talks", staff_user)


def test_an_illegal_or_future_change_in_the_admin_shows_a_message_not_an_error_page(staff, confidential):
    url = reverse("admin:exchanges_negotiation_change_status", args=[confidential.pk])
    illegal = staff.post(url, {"to_status": "completed", "occurred_at": "2022-05-09 12:00:00"})
    assert illegal.status_code == 200 and "Select a valid choice" in illegal.content.decode()
    future = staff.post(url, {"to_status": "in_talks", "occurred_at": "2999-01-01 00:00:00"})
    assert future.status_code == 200 and "Must not be in the future" in future.content.decode()
    assert not StatusChange.objects.filter(negotiation=confidential).exists()


def test_a_status_changed_elsewhere_meanwhile_shows_a_message(staff, confidential):
    url = reverse("admin:exchanges_negotiation_change_status", args=[confidential.pk])
    services.negotiation_change_status(negotiation=confidential, to_status="rejected", actor=None)
    response = staff.post(url, {"to_status": "in_talks", "occurred_at": "2022-05-09 12:00:00"}, follow=True)
    assert response.status_code == 200
    assert "final status" in response.content.decode()


def test_creating_a_negotiation_in_the_admin_assigns_a_reference_and_saves_participants(staff, ukraine, russia):
    data = {
        "title": "Admin-made",
        "summary": "",
        "priority": "high",
        "visibility": "all_partners",
        "opened_on": "2022-05-06",
        "next_step": "",
        "next_step_due": "",
        "participants-TOTAL_FORMS": "2",
        "participants-INITIAL_FORMS": "0",
        "participants-0-party": str(ukraine.pk),
        "participants-0-role": "side",
        "participants-1-party": str(russia.pk),
        "participants-1-role": "side",
        "covered_groups-TOTAL_FORMS": "0",
        "covered_groups-INITIAL_FORMS": "0",
        "status_changes-TOTAL_FORMS": "0",
        "status_changes-INITIAL_FORMS": "0",
        "flags-TOTAL_FORMS": "0",
        "flags-INITIAL_FORMS": "0",
    }
    response = staff.post(reverse("admin:exchanges_negotiation_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    negotiation = Negotiation.objects.get(title="Admin-made")
    assert negotiation.reference == "NEG-2022-0001" and negotiation.status == "proposed"
    assert set(Participant.objects.filter(negotiation=negotiation).values_list("party", flat=True)) == {ukraine.pk, russia.pk}


def test_the_group_page_shows_the_figures_side_by_side_with_the_dispute(staff, garrison, ukraine, russia):
    ReportedFigureFactory(group=garrison, value=1730, source_party=russia, source="Russian MoD")
    ReportedFigureFactory(group=garrison, value=265, source_party=ukraine, source="General Staff")
    page = staff.get(reverse("admin:exchanges_detaineegroup_change", args=[garrison.pk])).content.decode()
    assert "1,730" in page and "265" in page and "Disputed: 265 to 1,730" in page
    disputed = staff.get(reverse("admin:exchanges_detaineegroup_changelist"), {"disputed": "yes"}).content.decode()
    assert garrison.name in disputed


def test_adding_an_api_client_shows_the_token_once_and_stores_only_its_hash(staff, ukraine):
    response = staff.post(reverse("admin:exchanges_apiclient_add"), {"name": "UA sync", "party": str(ukraine.pk), "read_only": "on", "expires_at_0": "", "expires_at_1": ""}, follow=True)
    assert response.status_code == 200
    client = ApiClient.objects.get(name="UA sync")
    page = response.content.decode()
    token = page.split("user-select:all;font-size:1.1em'>")[1].split("<")[0]
    assert token.startswith("trk_") and client.token_hash == services.hash_token(token)
    assert client.read_only
    again = staff.get(reverse("admin:exchanges_apiclient_change", args=[client.pk])).content.decode()
    assert token not in again


def test_the_admin_revoke_action_stops_the_token(staff, ukraine, make_api):
    api = make_api(ukraine)
    staff.post(reverse("admin:exchanges_apiclient_changelist"), {"action": "revoke", "_selected_action": [str(api.api_client.pk)]})
    assert api.get("/api/v1/parties/").status_code == 401


def test_a_figure_is_recorded_from_the_group_page_link_and_its_assessment_edited_inline(staff, garrison, russia):
    page = staff.get(reverse("admin:exchanges_detaineegroup_change", args=[garrison.pk])).content.decode()
    add_url = reverse("admin:exchanges_reportedfigure_add") + f"?group={garrison.pk}"
    assert add_url in page
    response = staff.post(add_url, {"group": str(garrison.pk), "metric": "total", "value": "1730", "source_party": str(russia.pk), "source": "MoD", "reported_on": "2022-05-19", "reliability": "unverified", "notes": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    figure = garrison.figures.get()
    assert (figure.value, figure.source_party) == (1730, russia)


def test_a_negotiation_with_a_history_is_never_deleted_in_the_admin(staff, confidential):
    services.negotiation_change_status(negotiation=confidential, to_status="in_talks", actor=None)
    url = reverse("admin:exchanges_negotiation_delete", args=[confidential.pk])
    page = staff.get(url).content.decode()
    assert "close it with a final status" in page
    staff.post(url, {"post": "yes"})
    assert Negotiation.objects.filter(pk=confidential.pk).exists()
