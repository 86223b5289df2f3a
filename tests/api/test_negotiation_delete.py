"""Deleting a negotiation: a staff decision (Coordinators), only for one entered by
mistake, while nothing has happened in it. A client's DELETE is a 403 with the reason."""
from itertools import count

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from exchanges import services
from exchanges.models import AuditEntry, Negotiation, Participant
from tests.api.test_changes_feed import entries, sync
from tests.factories import NegotiationFactory
from tracker.models import Flag

pytestmark = pytest.mark.django_db

_numbers = count(1)


@pytest.fixture
def staff_login(django_user_model):
    """`staff_login(role, admin=False)` -> an API client (or an admin test client) logged in with that role."""

    def make(role, *, admin=False):
        user = django_user_model.objects.create_user(username=f"{role.lower()}-{next(_numbers)}", password="pw-staff-123", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client = Client() if admin else APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def mistaken(ukraine, russia):
    return NegotiationFactory(title="Entered twice", visibility="participants", participants=[(ukraine, "side"), (russia, "side")])


def url(negotiation):
    return f"/api/v1/negotiations/{negotiation.pk}/"


def test_a_client_deleting_a_negotiation_gets_403_with_the_reason_and_nothing_is_deleted(make_api, ukraine, outsider, mistaken):
    response = make_api(ukraine).delete(url(mistaken))
    assert response.status_code == 403 and "staff" in response.json()["detail"]
    assert make_api(ukraine, read_only=True).delete(url(mistaken)).status_code == 403
    assert make_api(outsider).delete(url(mistaken)).status_code == 404  # not seen: not there
    assert Negotiation.objects.filter(pk=mistaken.pk).exists()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.DELETE).exists()


def test_an_editor_may_not_delete_one(staff_login, mistaken):
    response = staff_login("Editor").delete(url(mistaken))
    assert response.status_code == 403 and "permission to delete" in response.json()["detail"]
    assert Negotiation.objects.filter(pk=mistaken.pk).exists()


def test_a_coordinator_deletes_one_entered_by_mistake_and_those_who_saw_it_are_told(staff_login, make_api, ukraine, outsider, mistaken):
    ua, out = make_api(ukraine), make_api(outsider)
    cursors = {"ua": sync(ua)[1], "out": sync(out)[1]}
    response = staff_login("Coordinator").delete(url(mistaken))
    assert response.status_code == 204, response.content
    assert not Negotiation.objects.filter(pk=mistaken.pk).exists()
    assert not Participant.objects.filter(negotiation_id=mistaken.pk).exists()
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DELETE, object_id=str(mistaken.pk))
    assert entry.actor_label.startswith("coordinator-") and entry.changes["title"][0] == "Entered twice"
    assert ua.get(url(mistaken)).status_code == 404
    assert ("negotiation", str(mistaken.pk), "deleted") in entries(sync(ua, cursors["ua"])[0])
    assert entries(sync(out, cursors["out"])[0]) == []


@pytest.mark.parametrize("history", ["status change", "event"])
def test_one_with_a_history_keeps_it_409(staff_login, ukraine, mistaken, history):
    if history == "status change":
        services.negotiation_change_status(negotiation=mistaken, to_status="in_talks", actor=None)
    else:
        services.event_create(negotiation=mistaken, actor=None, kind="meeting", occurred_at=timezone.now(), summary="Met")
    response = staff_login("Coordinator").delete(url(mistaken))
    assert response.status_code == 409 and "final status" in response.json()["detail"]
    assert Negotiation.objects.filter(pk=mistaken.pk).exists()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.DELETE).exists()


def test_in_the_admin_a_coordinator_deletes_one_with_its_flag_and_an_editor_cannot(staff_login, mistaken):
    Flag.objects.create(negotiation=mistaken, kind="no_activity", level="overdue", raised_at=timezone.now(), silent_since=timezone.now())
    delete = reverse("admin:exchanges_negotiation_delete", args=[mistaken.pk])
    assert staff_login("Editor", admin=True).post(delete, {"post": "yes"}).status_code == 403
    coordinator = staff_login("Coordinator", admin=True)
    confirm = coordinator.get(delete)
    assert confirm.status_code == 200 and "Entered twice" in confirm.content.decode()
    assert "permission" not in confirm.content.decode().split("<h1>", 1)[-1][:2000]  # no kind of its rows withheld
    assert coordinator.post(delete, {"post": "yes"}).status_code == 302
    assert not Negotiation.objects.filter(pk=mistaken.pk).exists() and not Flag.objects.exists()
    assert AuditEntry.objects.filter(action=AuditEntry.Action.DELETE, object_id=str(mistaken.pk)).exists()


def test_once_a_staff_only_negotiation_is_deleted_its_trail_stays_hidden_from_other_teams(staff_login, django_user_model):
    """The trail hides a staff-only negotiation's entries from staff outside its teams; once
    it is deleted there is nothing left to ask whether it was staff-only, so its entries
    are for logins that see every staff-only negotiation."""
    from exchanges.models import Team

    desk = Team.objects.create(name="Desk A")
    secret = NegotiationFactory(title="Quiet channel", visibility="staff_only", teams=[desk])
    services.negotiation_update(negotiation=secret, actor=None, next_step="Call")
    auditor = django_user_model.objects.create_user(username="auditor-x", password="pw-staff-123", is_staff=True)
    auditor.groups.add(Group.objects.get(name="Auditor"))
    client = Client()
    client.force_login(auditor)
    trail = reverse("admin:exchanges_auditentry_changelist")

    def listed():
        return [entry.negotiation_id for entry in client.get(trail).context["cl"].result_list]

    assert secret.pk not in listed()
    coordinator = django_user_model.objects.create_user(username="coord-x", password="pw-staff-123", is_staff=True)
    coordinator.groups.add(Group.objects.get(name="Coordinator"))
    desk.members.add(coordinator)
    api = APIClient()
    api.force_login(coordinator)
    assert api.delete(url(secret)).status_code == 204
    assert AuditEntry.objects.filter(negotiation_id=secret.pk).count() >= 2
    assert secret.pk not in listed() and "Quiet channel" not in client.get(trail).content.decode()
