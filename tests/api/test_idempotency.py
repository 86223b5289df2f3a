"""Idempotency-Key: a retried POST returns the first response and creates nothing new."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchanges.api.idempotency import purge_expired
from exchanges.models import IdempotencyKey, Negotiation, StatusChange

pytestmark = pytest.mark.django_db


def new(title, party):
    """A negotiation a client of `party` may create: its own party takes part."""
    return {"title": title, "participants": [{"party": str(party.pk), "role": "side"}]}


def test_a_repeated_post_returns_the_first_response_and_creates_nothing(ukraine, make_api):
    api = make_api(ukraine)
    first = api.post("/api/v1/negotiations/", new("Once", ukraine), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/negotiations/", new("Once", ukraine), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Negotiation.objects.filter(title="Once").count() == 1


def test_the_same_key_with_another_body_gets_422(ukraine, make_api):
    api = make_api(ukraine)
    api.post("/api/v1/negotiations/", new("A", ukraine), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post("/api/v1/negotiations/", new("B", ukraine), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert not Negotiation.objects.filter(title="B").exists()


def test_while_the_first_is_running_a_retry_gets_409(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/status-changes/"
    body = {"to_status": "in_talks"}
    api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    IdempotencyKey.objects.filter(key="k-3").update(response_status=None, response_body=None, lease_until=timezone.now() + timedelta(seconds=30))
    assert api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-3").status_code == 409
    assert StatusChange.objects.count() == 1


def test_status_changes_retried_with_a_key_are_recorded_once(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/status-changes/"
    responses = [api.post(url, {"to_status": "in_talks"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4") for _ in range(3)]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert StatusChange.objects.count() == 1


def test_an_error_response_is_replayed_too(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/status-changes/"
    first = api.post(url, {"to_status": "completed"}, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert first.status_code == 409
    # a 409 is not stored: the retry is evaluated afresh
    assert api.post(url, {"to_status": "completed"}, format="json", HTTP_IDEMPOTENCY_KEY="k-5").status_code == 409
    bad = api.post("/api/v1/negotiations/", {"title": ""}, format="json", HTTP_IDEMPOTENCY_KEY="k-6")
    assert bad.status_code == 400
    assert api.post("/api/v1/negotiations/", {"title": ""}, format="json", HTTP_IDEMPOTENCY_KEY="k-6")["Idempotent-Replayed"] == "true"


def test_keys_belong_to_one_client_and_expire_after_24_hours(ukraine, russia, make_api):
    mine, theirs = make_api(ukraine), make_api(russia)
    mine.post("/api/v1/negotiations/", new("Mine", ukraine), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert theirs.post("/api/v1/negotiations/", new("Theirs", russia), format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = mine.post("/api/v1/negotiations/", new("Mine", ukraine), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert purge_expired() == 1


def test_an_oversized_key_gets_400(ukraine, make_api):
    response = make_api(ukraine).post("/api/v1/negotiations/", {"title": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400 and "idempotency_key" in response.json()


def test_a_webhook_secret_is_never_kept_in_the_idempotency_store(ukraine, make_api):
    api = make_api(ukraine)
    body = {"url": "http://127.0.0.1:9/hook", "events": ["negotiation.stalled"]}
    first = api.post("/api/v1/webhooks/", body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    assert first.status_code == 201 and first.json()["secret"].startswith("whsec_")
    again = api.post("/api/v1/webhooks/", body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert "secret" not in again.json() and again.json()["id"] == first.json()["id"]
    assert first.json()["secret"] not in str(IdempotencyKey.objects.get(key="hook-1").response_body)
