"""The admin as each staff role sees it: Django's model permissions (given by the roles)
decide which admins a login has; teams decide which staff-only negotiations it sees,
with everything hanging off them; reads of staff-only negotiations are logged."""
import json
from datetime import date, timedelta
from itertools import count

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from exchanges import services
from exchanges.models import AccessLogEntry, AuditEntry, Event, Negotiation, StatusChange, Team
from exchanges.selectors import status_by_month
from tests.factories import NegotiationFactory
from tracker.models import Flag
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db

_numbers = count(1)


@pytest.fixture
def login(django_user_model):
    """`login(role=None, teams=(), perms=())` -> a test client logged in as a new staff login
    in that role (a group made by the migrations), those teams and extra permissions."""

    def make(role=None, *, teams=(), perms=()):
        user = django_user_model.objects.create_user(
            username=f"{(role or 'nobody').lower()}-{next(_numbers)}", password="pw-staff-123", is_staff=True
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        for team in teams:
            team.members.add(user)
        for label in perms:
            app_label, codename = label.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def team(db):
    return Team.objects.create(name="Eastern desk")


@pytest.fixture
def secret(team, ukraine):
    """A staff-only negotiation of the Eastern desk, opened long enough ago to be flagged."""
    negotiation = NegotiationFactory(
        title="Back-channel talks",
        visibility="staff_only",
        teams=[team],
        participants=[(ukraine, "side")],
        opened_on=timezone.localdate() - timedelta(days=90),
    )
    services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None, occurred_at=timezone.now() - timedelta(days=80))
    services.event_create(
        negotiation=negotiation, actor=None, kind="meeting", occurred_at=timezone.now() - timedelta(days=79), summary="Met in secret"
    )
    negotiation.refresh_from_db()
    return negotiation


@pytest.fixture
def open_one(ukraine, russia):
    return NegotiationFactory(title="Open talks", visibility="all_partners", participants=[(ukraine, "side"), (russia, "side")])


def changelist(model):
    app = "tracker" if model in ("flag", "webhookdelivery", "emailnotification", "scanrun", "stallrule") else "exchanges"
    return reverse(f"admin:{app}_{model}_changelist")


#: The management forms of a new negotiation's inlines, none of them filled in.
NO_INLINE_ROWS = {
    f"{prefix}-{name}": "0"
    for prefix in ("participants", "covered_groups", "status_changes", "flags")
    for name in ("TOTAL_FORMS", "INITIAL_FORMS")
}


def form_data(response):
    """What a browser would send back from an admin change form, unchanged."""
    data = {}

    def put(name, value):
        if value is None:
            data[name] = ""
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, (list, tuple)):
            data[name] = [str(item) for item in value]
        elif isinstance(value, date):
            data[name] = value.isoformat()
        else:
            data[name] = str(value)

    form = response.context["adminform"].form
    for name in form.fields:
        put(form.add_prefix(name), form[name].value())
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = str(value)
        for inline_form in formset.forms:
            for name in inline_form.fields:
                put(inline_form.add_prefix(name), inline_form[name].value())
    return data


# Roles ---------------------------------------------------------------------------------


def test_a_login_without_permissions_is_told_so_and_opens_nothing(login, open_one):
    nobody = login()
    index = nobody.get(reverse("admin:index"))
    assert index.status_code == 200
    page = index.content.decode()
    assert "Your login has no permissions yet: ask a coordinator to give you a role." in page
    assert open_one.reference not in page and 'id="status-counts"' not in page and 'id="attention"' not in page
    for url in (
        changelist("negotiation"),
        reverse("admin:exchanges_negotiation_change", args=[open_one.pk]),
        reverse("admin:exchanges_negotiation_change_status", args=[open_one.pk]),
        reverse("admin:exchanges_negotiation_export"),
        reverse("admin:exchanges_reportedfigure_import"),
        changelist("auditentry"),
        changelist("accesslogentry"),
        changelist("flag"),
        changelist("team"),
    ):
        assert nobody.get(url).status_code == 403, url


def test_a_viewer_reads_but_adds_changes_and_acknowledges_nothing(login, open_one):
    scan_stalls()  # open_one has been silent since 2022
    viewer = login("Viewer")
    listing = viewer.get(changelist("negotiation"))
    assert listing.status_code == 200 and open_one.reference in listing.content.decode()
    assert viewer.get(reverse("admin:exchanges_negotiation_add")).status_code == 403
    page = viewer.get(reverse("admin:exchanges_negotiation_change", args=[open_one.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert "Change status" not in page.content.decode() and "Add an event" not in page.content.decode()
    assert viewer.get(reverse("admin:exchanges_negotiation_change_status", args=[open_one.pk])).status_code == 403
    flags = viewer.get(changelist("flag"))
    assert flags.status_code == 200 and flags.context["cl"].result_count == 1
    assert flags.context["action_form"] is None
    assert viewer.get(reverse("admin:exchanges_reportedfigure_import")).status_code == 403
    for model in ("auditentry", "accesslogentry", "apiclient", "webhookdelivery", "emailnotification", "scanrun"):
        assert viewer.get(changelist(model)).status_code == 403, model


def test_an_editor_acknowledges_flags_a_viewer_cannot(login):
    NegotiationFactory(title="Silent", opened_on=timezone.localdate() - timedelta(days=90))
    scan_stalls()
    editor = login("Editor")
    flags = editor.get(changelist("flag"))
    assert [value for value, _label in flags.context["action_form"].fields["action"].choices if value] == ["acknowledge"]
    flag = flags.context["cl"].result_list[0]
    login("Viewer").post(changelist("flag"), {"action": "acknowledge", "_selected_action": [str(flag.pk)]})
    flag.refresh_from_db()
    assert flag.acknowledged_at is None
    editor.post(changelist("flag"), {"action": "acknowledge", "_selected_action": [str(flag.pk)]})
    flag.refresh_from_db()
    assert flag.acknowledged_by_user == editor.user


def test_redelivering_takes_the_delivery_change_permission(login):
    looker = login(perms=["tracker.view_webhookdelivery"])
    assert looker.get(changelist("webhookdelivery")).context["action_form"] is None
    coordinator = login("Coordinator")
    choices = coordinator.get(changelist("webhookdelivery")).context["action_form"].fields["action"].choices
    assert "redeliver" in [value for value, _label in choices]


def test_an_auditor_reads_the_trail_and_the_access_log_but_no_negotiation(login, open_one):
    auditor = login("Auditor")
    trail = auditor.get(changelist("auditentry"))
    assert trail.status_code == 200 and open_one.reference in trail.content.decode()
    assert auditor.get(changelist("accesslogentry")).status_code == 200
    assert auditor.get(changelist("negotiation")).status_code == 403
    assert auditor.get(reverse("admin:exchanges_negotiation_change", args=[open_one.pk])).status_code == 403
    index = auditor.get(reverse("admin:index")).content.decode()
    assert "no permissions yet" not in index and 'id="status-counts"' not in index


def test_the_access_log_is_never_written_in_the_admin_not_even_by_a_superuser(client, staff_user, login, secret, team):
    login("Editor", teams=[team]).get(reverse("admin:exchanges_negotiation_change", args=[secret.pk]))
    entry = AccessLogEntry.objects.get()
    client.force_login(staff_user)
    assert client.get(reverse("admin:exchanges_accesslogentry_add")).status_code == 403
    page = client.get(reverse("admin:exchanges_accesslogentry_change", args=[entry.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(reverse("admin:exchanges_accesslogentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert AccessLogEntry.objects.count() == 1


def test_the_who_changed_what_section_is_for_those_who_read_the_audit_trail(login, open_one):
    url = reverse("admin:exchanges_negotiation_change", args=[open_one.pk])
    assert "Who changed what" not in login("Editor").get(url).content.decode()
    assert "Who changed what" in login("Coordinator").get(url).content.decode()


# Visibility and participants: Coordinators only -----------------------------------------


def test_an_editor_cannot_change_visibility_teams_or_participants(login, open_one, icrc, team):
    editor = login("Editor")
    url = reverse("admin:exchanges_negotiation_change", args=[open_one.pk])
    page = editor.get(url)
    html = page.content.decode()
    assert 'name="visibility"' not in html and 'name="teams"' not in html
    assert 'name="participants-0-party"' not in html and "Government of Ukraine" in html
    assert 'name="title"' in html and 'name="case_officer"' in html
    data = form_data(page)
    data.update({"title": "Open talks, renamed", "visibility": "staff_only", "teams": [str(team.pk)]})
    data.update({"participants-TOTAL_FORMS": "1", "participants-INITIAL_FORMS": "0", "participants-0-party": str(icrc.pk), "participants-0-role": "observer"})
    response = editor.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    open_one.refresh_from_db()
    assert open_one.title == "Open talks, renamed" and open_one.visibility == "all_partners"
    assert not open_one.teams.exists()
    assert set(open_one.parties.values_list("short_name", flat=True)) == {"UA", "RU"}


def test_a_coordinator_changes_visibility_teams_and_participants(login, open_one, icrc, team):
    coordinator = login("Coordinator", teams=[team])
    url = reverse("admin:exchanges_negotiation_change", args=[open_one.pk])
    page = coordinator.get(url)
    html = page.content.decode()
    assert 'name="visibility"' in html and 'name="teams"' in html and 'name="participants-0-party"' in html
    data = form_data(page)
    data.update({"visibility": "staff_only", "teams": [str(team.pk)]})
    data.update({"participants-2-party": str(icrc.pk), "participants-2-role": "facilitator"})
    response = coordinator.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    open_one.refresh_from_db()
    assert open_one.visibility == "staff_only" and list(open_one.teams.all()) == [team]
    assert set(open_one.parties.values_list("short_name", flat=True)) == {"UA", "RU", "ICRC"}
    assert AuditEntry.objects.filter(object_id=str(open_one.pk), action="update", actor_label=coordinator.user.username).exists()


def test_an_editor_records_a_negotiation_for_their_own_teams(login, team, django_user_model):
    officer = django_user_model.objects.create_user(username="officer", is_staff=True)
    officer.groups.add(Group.objects.get(name="Viewer"))  # a case officer must see the negotiation
    django_user_model.objects.create_user(username="not-staff")
    editor = login("Editor", teams=[team])
    page = editor.get(reverse("admin:exchanges_negotiation_add"))
    assert 'name="visibility"' not in page.content.decode()
    officers = page.context["adminform"].form.fields["case_officer"].queryset
    assert officer in officers and not officers.filter(username="not-staff").exists()
    data = {
        "title": "Recorded by an editor", "summary": "", "priority": "routine", "opened_on": "2022-05-06",
        "next_step": "", "next_step_due": "", "case_officer": str(officer.pk), **NO_INLINE_ROWS,
    }  # fmt: skip
    response = editor.post(reverse("admin:exchanges_negotiation_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    negotiation = Negotiation.objects.get(title="Recorded by an editor")
    assert negotiation.visibility == "participants" and negotiation.case_officer == officer
    assert list(negotiation.teams.all()) == [team]


def test_a_refused_save_shows_the_reason_on_the_form_not_an_error_page(login):
    coordinator = login("Coordinator")  # in no team
    data = {
        "title": "Nobody's", "summary": "", "priority": "routine", "visibility": "staff_only", "opened_on": "2022-05-06",
        "next_step": "", "next_step_due": "", "case_officer": "", **NO_INLINE_ROWS,
    }  # fmt: skip
    response = coordinator.post(reverse("admin:exchanges_negotiation_add"), data)
    assert response.status_code == 200
    assert "you could no longer see the negotiation" in response.content.decode()
    assert response.context["adminform"].form["title"].value() == "Nobody's"
    assert not Negotiation.objects.filter(title="Nobody's").exists()


# Teams and staff-only negotiations -------------------------------------------------------


def test_a_staff_only_negotiation_and_what_hangs_off_it_are_hidden_from_other_teams(login, secret, open_one, team):
    scan_stalls()
    outsider = login("Coordinator")
    member = login("Coordinator", teams=[team])
    for model, shown in (("negotiation", secret.reference), ("statuschange", secret.reference), ("event", secret.reference),
                         ("flag", secret.reference), ("auditentry", "Back-channel talks")):  # fmt: skip
        assert shown not in outsider.get(changelist(model)).content.decode(), model
        assert shown in member.get(changelist(model)).content.decode(), model
    change_url = reverse("admin:exchanges_negotiation_change", args=[secret.pk])
    hidden = outsider.get(change_url, follow=True)
    assert "doesn’t exist" in hidden.content.decode() or hidden.status_code == 404
    assert outsider.get(reverse("admin:exchanges_negotiation_change_status", args=[secret.pk])).status_code == 404
    event = Event.objects.get(negotiation=secret)
    assert "doesn’t exist" in outsider.get(reverse("admin:exchanges_event_change", args=[event.pk]), follow=True).content.decode()
    assert member.get(change_url).status_code == 200


def test_the_negotiation_autocomplete_offers_only_negotiations_the_login_sees(login, secret, open_one, team):
    url = reverse("admin:autocomplete")
    params = {"app_label": "exchanges", "model_name": "event", "field_name": "negotiation", "term": "talks"}

    def offered(client):
        response = client.get(url, params)
        assert response.status_code == 200
        return {result["id"] for result in json.loads(response.content)["results"]}

    assert offered(login("Editor")) == {str(open_one.pk)}
    assert offered(login("Editor", teams=[team])) == {str(open_one.pk), str(secret.pk)}
    assert login("Auditor").get(url, params).status_code == 403


def test_an_event_cannot_be_added_to_a_negotiation_the_login_does_not_see(login, secret):
    editor = login("Editor")
    data = {"negotiation": str(secret.pk), "kind": "meeting", "occurred_at_0": "2022-05-09", "occurred_at_1": "12:00:00", "summary": "Sneaked in", "source": ""}
    response = editor.post(reverse("admin:exchanges_event_add"), data)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Event.objects.filter(summary="Sneaked in").exists()


def test_the_dashboard_counts_only_what_the_login_sees(login, secret, open_one, team):
    scan_stalls()

    def dashboard(client):
        response = client.get(reverse("admin:index"))
        assert response.status_code == 200
        return response.context["dashboard"], response.content.decode()

    outsider, outsider_page = dashboard(login("Viewer"))
    member, member_page = dashboard(login("Viewer", teams=[team]))
    assert sum(status["count"] for status in outsider["statuses"]) == 1
    assert sum(status["count"] for status in member["statuses"]) == 2
    assert outsider["headline"]["flags"] == 1 and member["headline"]["flags"] == 2  # open_one is silent too
    assert secret.reference not in outsider_page and secret.reference in member_page
    # The monthly chart is cached per scope: neither sees the other's counts.
    today = timezone.localdate()
    assert status_by_month(login("Viewer", teams=[team]).user, today=today)[-1][1]["in_talks"] == 1
    assert status_by_month(login("Viewer").user, today=today)[-1][1]["in_talks"] == 0


def test_each_part_of_the_dashboard_needs_the_permission_for_what_it_counts(login, open_one):
    flags_only = login(perms=["tracker.view_flag"])
    page = flags_only.get(reverse("admin:index"))
    html = page.content.decode()
    assert 'id="open-flags"' in html
    assert 'id="status-counts"' not in html and 'id="status-chart"' not in html and 'id="disputed-groups"' not in html
    groups_only = login(perms=["exchanges.view_detaineegroup"]).get(reverse("admin:index")).content.decode()
    assert 'id="disputed-groups"' in groups_only and 'id="open-flags"' not in groups_only


# The access log ---------------------------------------------------------------------------


def test_reading_a_staff_only_negotiation_page_is_logged_once(login, secret, open_one, team):
    member = login("Viewer", teams=[team])
    assert member.get(reverse("admin:exchanges_negotiation_change", args=[secret.pk])).status_code == 200
    entry = AccessLogEntry.objects.get()
    assert (entry.user, entry.negotiation_id, entry.channel) == (member.user, secret.pk, "page")
    member.get(reverse("admin:exchanges_negotiation_change", args=[open_one.pk]))
    assert AccessLogEntry.objects.count() == 1
    assert not AccessLogEntry.objects.filter(negotiation_id=open_one.pk).exists()


def test_every_admin_page_that_shows_a_staff_only_negotiation_is_logged(login, secret, open_one, team):
    scan_stalls()
    member = login("Coordinator", teams=[team])
    event, flag = secret.events.get(), Flag.objects.get(negotiation=secret)
    pages = {
        "history": reverse("admin:exchanges_negotiation_history", args=[secret.pk]),
        "change status": reverse("admin:exchanges_negotiation_change_status", args=[secret.pk]),
        "its event": reverse("admin:exchanges_event_change", args=[event.pk]),
        "its flag": reverse("admin:tracker_flag_change", args=[flag.pk]),
        "negotiation list": changelist("negotiation"),
        "event list": changelist("event"),
        "flag list": changelist("flag"),
        "dashboard": reverse("admin:index"),
    }
    for name, url in pages.items():
        before = AccessLogEntry.objects.count()
        assert member.get(url).status_code == 200, name
        logged = AccessLogEntry.objects.order_by("-id")[: AccessLogEntry.objects.count() - before]
        assert [(e.negotiation_id, e.channel, e.user_id) for e in logged] == [(secret.pk, "page", member.user.pk)], name
    auditor = login("Auditor", teams=[team])
    before = AccessLogEntry.objects.count()
    auditor.get(changelist("accesslogentry"))
    auditor.get(changelist("auditentry"))
    assert AccessLogEntry.objects.count() == before  # reading the logs is not reading the record


def test_an_export_that_includes_staff_only_negotiations_is_logged(login, secret, open_one, team):
    scan_stalls()
    member = login("Viewer", teams=[team])
    exported = b"".join(member.get(reverse("admin:exchanges_negotiation_export")).streaming_content).decode()
    assert secret.reference in exported
    assert list(AccessLogEntry.objects.values_list("negotiation_id", "channel")) == [(secret.pk, "export")]
    member.get(reverse("admin:tracker_flag_export"))
    assert AccessLogEntry.objects.filter(channel="export").count() == 2
    outsider = login("Viewer")
    exported = b"".join(outsider.get(reverse("admin:exchanges_negotiation_export")).streaming_content).decode()
    assert secret.reference not in exported and open_one.reference in exported
    assert not AccessLogEntry.objects.filter(user=outsider.user).exists()


def test_the_access_log_lists_and_searches_for_an_auditor_of_the_team(login, secret, team):
    member = login("Viewer", teams=[team])
    member.get(reverse("admin:exchanges_negotiation_change", args=[secret.pk]))
    auditor = login("Auditor", teams=[team])
    listing = auditor.get(changelist("accesslogentry"), {"q": secret.reference, "channel__exact": "page"})
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    assert member.user.username in listing.content.decode()
    assert login("Auditor").get(changelist("accesslogentry")).context["cl"].result_count == 0


# Teams ----------------------------------------------------------------------------------------


def test_a_coordinator_manages_teams_and_the_change_is_audited(login, django_user_model):
    analyst = django_user_model.objects.create_user(username="analyst", is_staff=True)
    coordinator = login("Coordinator")
    response = coordinator.post(reverse("admin:exchanges_team_add"), {"name": "Western desk", "description": "", "members": [str(analyst.pk)]})
    assert response.status_code == 302, response.content.decode()[:3000]
    team = Team.objects.get(name="Western desk")
    assert list(team.members.all()) == [analyst]
    entry = AuditEntry.objects.get(model="exchanges.team", object_id=str(team.pk))
    assert entry.action == "create" and entry.changes["members"] == [None, ["analyst"]]
    viewer = login("Viewer")
    assert viewer.get(changelist("team")).status_code == 200
    assert viewer.get(reverse("admin:exchanges_team_add")).status_code == 403


def test_the_team_list_counts_only_negotiations_the_login_sees(login, secret, team):
    def shown(client):
        return {row.name: row.negotiation_count for row in client.get(changelist("team")).context["cl"].result_list}

    assert shown(login("Viewer")) == {"Eastern desk": 0}
    assert shown(login("Viewer", teams=[team])) == {"Eastern desk": 1}


def test_status_changes_in_the_admin_need_the_permission_and_the_team(login, secret, team):
    url = reverse("admin:exchanges_negotiation_change_status", args=[secret.pk])
    assert login("Viewer", teams=[team]).get(url).status_code == 403
    editor = login("Editor", teams=[team])
    assert editor.get(url).status_code == 200
    editor.post(url, {"to_status": "suspended", "occurred_at": timezone.now().strftime("%Y-%m-%d %H:%M:%S")})
    assert StatusChange.objects.filter(negotiation=secret, to_status="suspended", recorded_by_user=editor.user).exists()


@pytest.mark.parametrize("role", [None, "Viewer", "Editor", "Coordinator", "Auditor", "superuser"])
def test_every_admin_page_answers_each_role_without_an_error(login, role, secret, open_one, team, garrison, make_api, staff_user):
    from django.contrib import admin

    from tests.factories import ReportedFigureFactory

    ReportedFigureFactory(group=garrison)
    make_api(open_one.parties.first())
    scan_stalls()
    login("Viewer", teams=[team]).get(reverse("admin:exchanges_negotiation_change", args=[secret.pk]))  # an access log entry
    if role == "superuser":
        client = Client()
        client.force_login(staff_user)
    else:
        client = login(role)
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        urls = [reverse("admin:%s_%s_changelist" % info), reverse("admin:%s_%s_add" % info)]
        obj = model._default_manager.first()
        if obj is not None:
            urls += [reverse("admin:%s_%s_change" % info, args=[obj.pk]), reverse("admin:%s_%s_history" % info, args=[obj.pk])]
        for url in urls:
            status = client.get(url).status_code
            assert status in (200, 302, 403), (role, url, status)
            if status == 200 and url.endswith("/add/"):
                assert model_admin.has_add_permission(client.get(url).wsgi_request), (role, url)


def test_admin_deletes_go_through_the_services(login, ukraine, russia, open_one):
    from exchanges.models import Party

    coordinator = login("Coordinator")
    lonely = Party.objects.create(name="Lonely state", kind="state")
    page = coordinator.get(reverse("admin:exchanges_party_delete", args=[ukraine.pk]))
    assert page.status_code == 200 and "still referred to" in page.content.decode()
    coordinator.post(reverse("admin:exchanges_party_delete", args=[ukraine.pk]), {"post": "yes"})
    assert Party.objects.filter(pk=ukraine.pk).exists()
    response = coordinator.post(reverse("admin:exchanges_party_delete", args=[lonely.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Party.objects.filter(pk=lonely.pk).exists()
    assert AuditEntry.objects.filter(model="exchanges.party", object_id=str(lonely.pk), action="delete").exists()
