"""The audit trail: who changed what, when, from which request; append-only."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from exchanges.models import AuditEntry
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db


def test_an_api_write_records_the_client_the_request_and_before_and_after(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    response = api.patch(f"/api/v1/negotiations/{public_negotiation.pk}/", {"title": "Renamed", "priority": "urgent"}, format="json", HTTP_X_REQUEST_ID="req-12345678")
    assert response.status_code == 200 and response["X-Request-ID"] == "req-12345678"
    entry = AuditEntry.objects.filter(model="exchanges.negotiation", action="update").get()
    assert entry.actor_type == "api_client" and entry.actor_id == str(api.api_client.pk)
    assert entry.channel == "api" and entry.request_id == "req-12345678"
    assert entry.changes["title"] == ["All-for-all", "Renamed"] and entry.changes["priority"] == ["routine", "urgent"]
    assert entry.negotiation_id == public_negotiation.pk


def test_status_changes_events_and_deletes_are_recorded(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    base = f"/api/v1/negotiations/{public_negotiation.pk}/"
    api.post(base + "status-changes/", {"to_status": "in_talks"}, format="json")
    event = api.post(base + "events/", {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": "Talks"}, format="json").json()
    api.delete(f"{base}events/{event['id']}/")
    actions = list(AuditEntry.objects.filter(negotiation_id=public_negotiation.pk).order_by("id").values_list("model", "action"))
    assert ("exchanges.statuschange", "create") in actions
    assert ("exchanges.event", "create") in actions and ("exchanges.event", "delete") in actions
    deleted = AuditEntry.objects.get(model="exchanges.event", action="delete")
    assert deleted.changes["summary"] == ["Talks", None]


def test_admin_task_and_command_writes_are_recorded_with_who(client, staff_user, confidential):
    client.force_login(staff_user)
    client.post(reverse("admin:exchanges_negotiation_change_status", args=[confidential.pk]), {"to_status": "in_talks", "occurred_at": (timezone.now() - timedelta(days=40)).strftime("%Y-%m-%d %H:%M:%S")})
    by_staff = AuditEntry.objects.get(model="exchanges.statuschange")
    assert (by_staff.actor_type, by_staff.actor_label, by_staff.channel) == ("staff", "staffer", "admin")
    scan_stalls()
    flag_entry = AuditEntry.objects.get(model="tracker.flag")
    assert flag_entry.actor_type == "system" and flag_entry.action == "create" and flag_entry.negotiation_id == confidential.pk
    call_command("load_demo")
    assert AuditEntry.objects.filter(model="exchanges.party", actor_type="system", action="create").exists()


def test_the_negotiation_page_shows_who_changed_what(client, staff_user, ukraine, make_api, public_negotiation):
    make_api(ukraine).patch(f"/api/v1/negotiations/{public_negotiation.pk}/", {"next_step": "Call Geneva"}, format="json")
    client.force_login(staff_user)
    page = client.get(reverse("admin:exchanges_negotiation_change", args=[public_negotiation.pk])).content.decode()
    assert "Who changed what" in page and "UA system (API client)" in page and "Call Geneva" in page
    listing = client.get(reverse("admin:exchanges_auditentry_changelist"), {"actor_type__exact": "api_client"})
    assert listing.status_code == 200 and "UA system (API client)" in listing.content.decode()


def test_the_trail_is_append_only(ukraine, make_api, public_negotiation):
    make_api(ukraine).patch(f"/api/v1/negotiations/{public_negotiation.pk}/", {"title": "x"}, format="json")
    entry = AuditEntry.objects.latest("id")
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().update(actor_label="someone else")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE exchanges_auditentry SET actor_label = 'forged'")
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM exchanges_auditentry")
    assert AuditEntry.objects.get(pk=entry.pk).actor_label == entry.actor_label


def test_reads_of_participants_negotiations_by_clients_are_logged_once_per_window(icrc, make_api, confidential, public_negotiation):
    api = make_api(icrc)
    for _ in range(3):
        api.get(f"/api/v1/negotiations/{confidential.pk}/")
        api.get("/api/v1/negotiations/")
    reads = AuditEntry.objects.filter(action="read")
    assert reads.count() == 1
    assert reads.get().negotiation_id == confidential.pk and reads.get().actor_id == str(api.api_client.pk)


def test_no_token_or_secret_reaches_the_trail(ukraine, make_api):
    api = make_api(ukraine)
    api.post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/x", "events": ["negotiation.stalled"]}, format="json")
    text = " ".join(str(entry.changes) for entry in AuditEntry.objects.all())
    assert api.token not in text and "whsec_" not in text and "token_hash" not in text
