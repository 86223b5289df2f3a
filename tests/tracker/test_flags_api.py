"""Flags over the API: visible like their negotiations, filterable, acknowledged."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchanges import services as record
from tests.factories import NegotiationFactory
from tracker.models import Flag
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db


@pytest.fixture
def flagged(ukraine, russia):
    long_ago = timezone.localdate() - timedelta(days=100)
    shared = NegotiationFactory(title="Shared", visibility="all_partners", opened_on=long_ago, participants=[(ukraine, "side")])
    secret = NegotiationFactory(title="Secret", visibility="participants", opened_on=long_ago, next_step_due=long_ago, participants=[(russia, "side")])
    hidden = NegotiationFactory(title="Hidden", visibility="staff_only", opened_on=long_ago, participants=[(ukraine, "side")])
    quiet = NegotiationFactory(title="Fine", visibility="all_partners", participants=[(ukraine, "side")], opened_on=timezone.localdate())
    scan_stalls()
    return {"shared": shared, "secret": secret, "hidden": hidden, "quiet": quiet}


def test_a_client_sees_only_flags_of_negotiations_it_may_see(flagged, ukraine, russia, make_api, staff_api):
    ua = {f["negotiation"] for f in make_api(ukraine).get("/api/v1/flags/").json()["results"]}
    assert ua == {str(flagged["shared"].pk)}
    ru = make_api(russia).get("/api/v1/flags/").json()["results"]
    assert {(f["negotiation"], f["kind"]) for f in ru} == {
        (str(flagged["shared"].pk), "no_activity"),
        (str(flagged["secret"].pk), "no_activity"),
        (str(flagged["secret"].pk), "deadline_missed"),
    }
    assert len(staff_api.get("/api/v1/flags/").json()["results"]) == 4
    secret_flag = Flag.objects.filter(negotiation=flagged["secret"]).first()
    assert make_api(ukraine).get(f"/api/v1/flags/{secret_flag.pk}/").status_code == 404
    assert make_api(ukraine).post(f"/api/v1/flags/{secret_flag.pk}/acknowledge/").status_code == 404
    assert Flag.objects.get(pk=secret_flag.pk).acknowledged_at is None


def test_flag_fields_and_filters(flagged, russia, make_api):
    api = make_api(russia)
    flag = api.get("/api/v1/flags/", {"kind": "deadline_missed"}).json()["results"]
    assert len(flag) == 1
    body = flag[0]
    assert body["level"] == "very_overdue" and body["open"] is True and body["days_silent"] >= 99
    assert body["acknowledged_at"] is None and body["acknowledged_by"] is None and body["resolved_at"] is None
    assert len(api.get("/api/v1/flags/", {"negotiation": str(flagged["secret"].pk)}).json()["results"]) == 2
    record.event_create(negotiation=flagged["shared"], actor=None, kind="meeting", occurred_at=timezone.now(), summary="back")
    assert {f["negotiation"] for f in api.get("/api/v1/flags/", {"open": "false"}).json()["results"]} == {str(flagged["shared"].pk)}
    assert len(api.get("/api/v1/flags/", {"open": "true"}).json()["results"]) == 2
    assert api.get("/api/v1/flags/", {"kind": "nonsense"}).status_code == 400


def test_the_stalled_filter_follows_the_flags(flagged, ukraine, make_api):
    api = make_api(ukraine)
    stalled = api.get("/api/v1/negotiations/", {"stalled": "true"}).json()["results"]
    assert [n["id"] for n in stalled] == [str(flagged["shared"].pk)]
    assert stalled[0]["stalled"] is True and stalled[0]["stalled_since"] is not None
    assert [n["id"] for n in api.get("/api/v1/negotiations/", {"stalled": "false"}).json()["results"]] == [str(flagged["quiet"].pk)]


def test_acknowledging_records_who_and_when_once(flagged, ukraine, make_api, staff_api):
    flag = Flag.objects.get(negotiation=flagged["shared"])
    api = make_api(ukraine)
    assert make_api(ukraine, read_only=True).post(f"/api/v1/flags/{flag.pk}/acknowledge/").status_code == 403
    first = api.post(f"/api/v1/flags/{flag.pk}/acknowledge/")
    assert first.status_code == 200
    assert first.json()["acknowledged_by"]["type"] == "api_client" and first.json()["acknowledged_at"]
    again = staff_api.post(f"/api/v1/flags/{flag.pk}/acknowledge/")
    assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    assert again.json()["open"] is True
