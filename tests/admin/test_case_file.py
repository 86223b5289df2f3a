"""A negotiation's page as a case file: where it stands at the top, its open flag as a
banner acknowledged there, the actions that come back to it, the timeline, parties,
groups and figures, flags and a readable history below; queries that do not grow."""
import re
from datetime import timedelta
from itertools import count

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exchanges import services
from exchanges.models import AuditEntry, Team
from tests.factories import NegotiationFactory, ReportedFigureFactory
from tracker.models import Flag
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db

_numbers = count(1)


@pytest.fixture
def login(django_user_model):
    """`login(role=None, teams=(), **names)` -> a test client logged in as a new staff login."""

    def make(role=None, *, teams=(), csrf=False, **names):
        user = django_user_model.objects.create_user(
            username=f"{(role or 'nobody').lower()}-{next(_numbers)}", password="pw-staff-123", is_staff=True, **names
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        for team in teams:
            team.members.add(user)
        client = Client(enforce_csrf_checks=csrf)
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def team(db):
    return Team.objects.create(name="Eastern desk")


@pytest.fixture
def stalled(ukraine, russia, icrc, garrison, team, django_user_model):
    """A silent negotiation, flagged by the scan, with a case officer, a team and a next step."""
    officer = django_user_model.objects.create_user(username="olena", first_name="Olena", last_name="Kovalenko", is_staff=True)
    officer.groups.add(Group.objects.get(name="Viewer"))
    negotiation = NegotiationFactory(
        title="Wounded for wounded",
        priority="urgent",
        participants=[(ukraine, "side"), (russia, "side"), (icrc, "facilitator")],
        groups=[garrison],
        teams=[team],
        case_officer=officer,
        next_step="Exchange the lists of wounded",
        opened_on=timezone.localdate() - timedelta(days=90),
    )
    services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None, occurred_at=timezone.now() - timedelta(days=80), note="Opened via ICRC")
    services.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=timezone.now() - timedelta(days=79), summary="Met in Geneva", parties=[icrc])
    scan_stalls()
    negotiation.refresh_from_db()
    assert negotiation.stalled
    return negotiation


def page_of(client, negotiation):
    response = client.get(reverse("admin:exchanges_negotiation_change", args=[negotiation.pk]))
    assert response.status_code == 200
    return response.content.decode()


def head_of(page):
    """The case file's head: everything before its first section."""
    return page[page.index('id="case-file"') : page.index('id="timeline"')]


def test_the_case_file_says_where_the_negotiation_stands_before_anything_else(login, stalled, team):
    page = page_of(login("Editor", teams=[team]), stalled)
    head = head_of(page)
    for shown in (stalled.reference, "Wounded for wounded", "In talks", "Urgent", "Olena Kovalenko", "Eastern desk", "Exchange the lists of wounded"):
        assert shown in head, shown
    assert 'class="status-badge status-stalled"' in head and "Stalled" in head
    assert "Flagged: No activity (" in head and "No activity for" in head
    assert page.index('id="case-file"') < page.index('id="details"') < page.index('name="title"')
    for section in ("timeline", "parties", "groups", "flags", "details"):
        assert f'id="{section}"' in page, section


def test_an_open_negotiation_is_blue_and_a_final_one_grey_never_green(login, public_negotiation):
    editor = login("Editor")
    assert 'status-badge status-open">Proposed' in head_of(page_of(editor, public_negotiation))
    services.negotiation_change_status(negotiation=public_negotiation, to_status="rejected", actor=None)
    head = head_of(page_of(editor, public_negotiation))
    assert 'status-badge status-final">Rejected' in head and "Change status" not in head


def test_stalled_is_never_a_green_tick_in_the_list_or_on_the_page(login, stalled, team):
    editor = login("Editor", teams=[team])
    listing = editor.get(reverse("admin:exchanges_negotiation_changelist")).content.decode()
    row = listing[listing.index(stalled.reference) :]
    row = row[: row.index("</tr>")]
    assert "status-stalled" in row and "icon-yes" not in row and "icon-no" not in row
    assert "icon-yes" not in page_of(editor, stalled)


def test_the_open_flag_is_acknowledged_from_the_banner_and_the_page_comes_back(login, stalled, team):
    editor = login("Editor", teams=[team], csrf=True)
    page = page_of(editor, stalled)
    flag = Flag.objects.get(negotiation=stalled, resolved_at__isnull=True)
    url = reverse("admin:tracker_flag_acknowledge", args=[flag.pk])
    assert f'action="{url}"' in head_of(page) and "Acknowledge</button>" in head_of(page)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    case_file = reverse("admin:exchanges_negotiation_change", args=[stalled.pk])
    response = editor.post(url, {"csrfmiddlewaretoken": token, "next": case_file})
    assert response.status_code == 302 and response.url == case_file
    flag.refresh_from_db()
    assert flag.acknowledged_by_user == editor.user and flag.acknowledged_at is not None
    assert AuditEntry.objects.filter(model="tracker.flag", object_id=str(flag.pk), action="update", actor_id=str(editor.user.pk)).exists()
    head = head_of(editor.get(case_file).content.decode())
    assert "banner-acknowledged" in head and "Acknowledge</button>" not in head and "banner-very_overdue" not in head
    assert f"Acknowledged by {editor.user.username} on" in head


def test_acknowledging_takes_a_post_a_csrf_token_the_permission_and_the_team(login, stalled, team):
    flag = Flag.objects.get(negotiation=stalled, resolved_at__isnull=True)
    url = reverse("admin:tracker_flag_acknowledge", args=[flag.pk])
    assert login("Editor", teams=[team]).get(url).status_code == 405
    assert login("Editor", teams=[team], csrf=True).post(url).status_code == 403  # no token
    viewer = login("Viewer", teams=[team])
    assert viewer.post(url).status_code == 403
    assert "Acknowledge</button>" not in head_of(page_of(viewer, stalled))
    stalled.visibility = "staff_only"
    stalled.save(update_fields=["visibility"])
    assert login("Editor").post(url).status_code == 404  # not of its teams: as if absent
    flag.refresh_from_db()
    assert flag.acknowledged_at is None


def test_adding_an_event_from_the_case_file_comes_back_to_it(login, stalled, team):
    editor = login("Editor", teams=[team])
    page = page_of(editor, stalled)
    add = re.search(r'id="add-event" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    case_file = reverse("admin:exchanges_negotiation_change", args=[stalled.pk])
    assert editor.get(add).status_code == 200
    data = {"negotiation": str(stalled.pk), "kind": "statement", "occurred_at_0": timezone.now().strftime("%Y-%m-%d"), "occurred_at_1": "00:00:00", "summary": "Called the mediator", "source": ""}
    response = editor.post(add, data)
    assert response.status_code == 302 and response.url == case_file
    assert "Called the mediator" in page_of(editor, stalled)


def test_adding_a_figure_from_the_case_file_comes_back_to_it(login, stalled, team, garrison, russia):
    editor = login("Editor", teams=[team])
    page = page_of(editor, stalled)
    add = re.search(r'id="add-figure" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert f"group={garrison.pk}" in add
    data = {"group": str(garrison.pk), "metric": "total", "value": "1730", "source_party": str(russia.pk), "source": "MoD", "reported_on": "2022-05-19", "reliability": "unverified", "notes": ""}
    response = editor.post(add, data)
    assert response.status_code == 302 and response.url == reverse("admin:exchanges_negotiation_change", args=[stalled.pk])


def test_a_next_address_elsewhere_is_ignored(login, stalled, team):
    editor = login("Editor", teams=[team])
    add = reverse("admin:exchanges_event_add") + "?next=https://evil.example/admin/"
    data = {"negotiation": str(stalled.pk), "kind": "statement", "occurred_at_0": "2022-06-01", "occurred_at_1": "00:00:00", "summary": "x", "source": ""}
    response = editor.post(add, data)
    assert response.status_code == 302 and "evil" not in response.url


def test_the_timeline_has_status_changes_and_events_newest_first_with_headings(login, stalled, team):
    services.event_create(negotiation=stalled, actor=None, kind="statement", occurred_at=timezone.now() - timedelta(days=1), summary="Latest call")
    page = page_of(login("Editor", teams=[team]), stalled)
    timeline = page[page.index('id="timeline"') : page.index('id="parties"')]
    timeline = timeline[timeline.index("<table") :]  # the chart's tooltips come first
    assert timeline.index("Latest call") < timeline.index("Met in Geneva") < timeline.index("Proposed → In talks")
    headings = re.findall(r"<th[^>]*>([^<]*)</th>", timeline[timeline.index("<thead>") : timeline.index("</thead>")])
    assert headings == ["When", "What", "Detail", "Parties", "Source", "Recorded by"]
    assert "International Committee of the Red Cross" in timeline  # the event's parties, under "Parties"


def test_parties_groups_and_their_disputed_figures_are_on_the_case_file(login, stalled, team, garrison, russia, ukraine):
    ReportedFigureFactory(group=garrison, value=1730, source_party=russia, source="Russian MoD")
    ReportedFigureFactory(group=garrison, value=265, source_party=ukraine, source="General Staff")
    page = page_of(login("Editor", teams=[team]), stalled)
    parties = page[page.index('id="parties"') : page.index('id="groups"')]
    assert "Government of Ukraine" in parties and "(Facilitator)" in parties
    groups = page[page.index('id="groups"') : page.index('id="flags"')]
    assert "Azovstal garrison" in groups and "Disputed: 265 to 1730" in groups.replace(",", "")


def test_the_history_is_readable_names_labels_before_and_after_who_by_name(login, stalled, team, django_user_model):
    coordinator = login("Coordinator", teams=[team], first_name="Iryna", last_name="Shevchenko")
    other = django_user_model.objects.create_user(username="petro", first_name="Petro", last_name="Melnyk", is_staff=True)
    other.groups.add(Group.objects.get(name="Viewer"))
    services.negotiation_update(negotiation=stalled, actor=coordinator.user, case_officer=other, priority="high")
    page = page_of(coordinator, stalled)
    history = page[page.index('id="history"') :]
    history = history[: history.index("</section>")]
    assert "Iryna Shevchenko" in history and "Olena Kovalenko → Petro Melnyk" in history
    assert "Urgent → High" in history and "Case officer" in history and "Priority" in history
    assert f"→ {other.pk}<" not in history and "&#x27;" not in history  # no ids, no raw lists
    assert "case_officer" not in history
    assert 'id="history"' not in page_of(login("Editor", teams=[team]), stalled)


def test_the_history_link_shows_the_audit_trail_not_an_empty_page(login, stalled, team, ukraine):
    coordinator = login("Coordinator", teams=[team], first_name="Iryna", last_name="Shevchenko")
    services.negotiation_update(negotiation=stalled, actor=coordinator.user, title="Wounded for wounded, second round")
    page = coordinator.get(reverse("admin:exchanges_negotiation_history", args=[stalled.pk])).content.decode()
    assert "Wounded for wounded → Wounded for wounded, second round" in page and "Iryna Shevchenko" in page
    assert "This object doesn’t have a change history" not in page
    event = stalled.events.get()
    event_page = coordinator.get(reverse("admin:exchanges_event_history", args=[event.pk])).content.decode()
    assert "Created" in event_page and "Met in Geneva" in event_page and "International Committee of the Red Cross" in event_page
    editor_page = login("Editor", teams=[team]).get(reverse("admin:exchanges_negotiation_history", args=[stalled.pk]))
    assert "Auditors and Coordinators" in editor_page.content.decode()


def _queries(client, negotiation):
    with CaptureQueriesContext(connection) as captured:
        page_of(client, negotiation)
    return len(captured)


def test_the_case_file_costs_the_same_queries_whatever_its_events_changes_and_figures(login, stalled, team, garrison, russia):
    coordinator = login("Coordinator", teams=[team])
    now = timezone.now()
    # One of each kind already there, by this login: what grows below is only their number.
    services.event_create(negotiation=stalled, actor=coordinator.user, kind="statement", occurred_at=now - timedelta(days=70), summary="First", parties=[russia])
    ReportedFigureFactory(group=garrison, value=99, source_party=russia, source="Source")
    services.negotiation_change_status(negotiation=stalled, to_status="suspended", actor=coordinator.user, occurred_at=now - timedelta(days=65))
    page_of(coordinator, stalled)  # caches (content types, permissions) warmed
    before = _queries(coordinator, stalled)
    for day in range(12):
        services.event_create(negotiation=stalled, actor=coordinator.user, kind="statement", occurred_at=now - timedelta(days=60 - day), summary=f"Call {day}", parties=[russia])
        ReportedFigureFactory(group=garrison, value=100 + day, source_party=russia, source=f"Source {day}")
    for to_status in ("in_talks", "suspended", "in_talks", "suspended"):
        services.negotiation_change_status(negotiation=stalled, to_status=to_status, actor=coordinator.user)
    after = _queries(coordinator, stalled)
    assert after <= before, (before, after)


def test_no_related_record_can_be_deleted_from_a_form(client, staff_user, stalled):
    client.force_login(staff_user)  # a superuser: every shortcut Django would offer
    for url in (
        reverse("admin:exchanges_negotiation_change", args=[stalled.pk]),
        reverse("admin:exchanges_event_change", args=[stalled.events.first().pk]),
        reverse("admin:exchanges_detaineegroup_add"),
        reverse("admin:exchanges_apiclient_add"),
    ):
        page = client.get(url).content.decode()
        assert "delete-related" not in page, url


def test_the_watchers_picker_names_what_it_chooses(client, staff_user, stalled):
    client.force_login(staff_user)
    page = client.get(reverse("admin:exchanges_negotiation_change", args=[stalled.pk])).content.decode()
    assert 'data-field-name="watchers"' in page and 'data-field-name="watched by"' not in page
