"""Small things a partner developer met, each refused or answered as the docs say."""
import pytest

from exchanges.models import ReportedFigure, StatusChange
from tests.factories import NegotiationFactory
from tracker.models import WebhookSubscription

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url, parameter", [
    ("/api/v1/negotiations/?stalled=yes", "stalled"),
    ("/api/v1/flags/?open=maybe", "open"),
    ("/api/v1/flags/?acknowledged=no", "acknowledged"),
])  # fmt: skip
def test_a_boolean_filter_refuses_what_it_does_not_understand(ukraine, make_api, url, parameter):
    response = make_api(ukraine).get(url)
    assert response.status_code == 400 and parameter in response.json()


def test_boolean_filters_take_true_false_1_and_0(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    for value, expected in (("true", 0), ("FALSE", 1), ("1", 0), ("0", 1)):
        assert len(api.get("/api/v1/negotiations/", {"stalled": value}).json()["results"]) == expected


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "get"])
def test_an_unknown_api_path_answers_json_404_to_every_method(ukraine, make_api, method):
    response = getattr(make_api(ukraine), method)("/api/v1/nowhere/", {}, format="json")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_timestamps_without_an_offset_are_refused(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/"
    naive = "2022-05-16T10:00:00"
    response = api.post(url + "status-changes/", {"to_status": "in_talks", "occurred_at": naive}, format="json")
    assert response.status_code == 400 and "occurred_at" in response.json()
    response = api.post(url + "events/", {"kind": "meeting", "occurred_at": naive, "summary": "Met"}, format="json")
    assert response.status_code == 400 and "occurred_at" in response.json()
    assert api.get("/api/v1/negotiations/", {"updated_since": naive}).status_code == 400
    assert not StatusChange.objects.exists()
    ok = api.post(url + "status-changes/", {"to_status": "in_talks", "occurred_at": "2022-05-16T10:00:00+03:00"}, format="json")
    assert ok.status_code == 201 and ok.json()["occurred_at"] == "2022-05-16T07:00:00Z"


def test_the_same_claim_posted_twice_is_refused_with_409_naming_the_first(ukraine, russia, garrison, make_api):
    api = make_api(ukraine)
    url = f"/api/v1/detainee-groups/{garrison.pk}/figures/"
    claim = {"metric": "total", "value": 265, "source_party": str(ukraine.pk), "source": "Ministry of Defence", "reported_on": "2022-05-17"}
    first = api.post(url, claim, format="json")
    assert first.status_code == 201
    again = api.post(url, {**claim, "source": " ministry of defence "}, format="json")
    assert again.status_code == 409 and again.json()["existing"] == first.json()["id"]
    other_source = api.post(url, {**claim, "source": "ICRC"}, format="json")
    assert other_source.status_code == 201  # another source saying the same is corroboration, kept
    assert ReportedFigure.objects.count() == 2


def test_a_client_holds_a_limited_number_of_subscriptions(ukraine, make_api, settings):
    settings.TRACKER_MAX_SUBSCRIPTIONS_PER_CLIENT = 2
    api = make_api(ukraine)
    body = {"url": "http://127.0.0.1:9/hook", "events": ["negotiation.stalled"]}
    assert [api.post("/api/v1/webhooks/", body, format="json").status_code for _ in range(3)] == [201, 201, 400]
    assert WebhookSubscription.objects.count() == 2


def test_an_open_flag_has_an_empty_resolution_the_schema_allows(ukraine, make_api, public_negotiation):
    from django.utils import timezone

    from tracker.models import Flag

    Flag.objects.create(negotiation=public_negotiation, kind="no_activity", level="overdue", raised_at=timezone.now(), silent_since=timezone.now())
    flag = make_api(ukraine).get("/api/v1/flags/").json()["results"][0]
    assert flag["resolution"] == ""
    schema = make_api(ukraine).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    resolution = schema["components"]["schemas"]["Flag"]["properties"]["resolution"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in resolution["oneOf"]


# Hostile input: a clear 4xx, never a 500, nothing written --------------------------------


def test_json_nested_too_deeply_is_a_400(ukraine, make_api):
    from exchanges.models import Negotiation

    api = make_api(ukraine)
    for depth in (40, 5000):
        body = "[" * depth + "]" * depth
        response = api.generic("POST", "/api/v1/negotiations/", body, content_type="application/json")
        assert response.status_code == 400 and "deeply" in response.json()["detail"], depth
    assert not Negotiation.objects.exists()


@pytest.mark.parametrize("raw", [
    b'{"title": "x\\ud800y", "participants": []}',
    b'{"ti\\udfffle": "x"}',
    b'{"title": "x", "priority": "\\ud83d"}',
])  # fmt: skip
def test_a_lone_surrogate_is_a_400_and_an_idempotency_key_stays_free(ukraine, make_api, raw):
    from exchanges.models import IdempotencyKey, Negotiation

    api = make_api(ukraine)
    response = api.generic("POST", "/api/v1/negotiations/", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-s")
    assert response.status_code == 400 and "Unicode" in response.json()["detail"]
    assert not Negotiation.objects.exists()
    ours = {"title": "x", "participants": [{"party": str(ukraine.pk), "role": "side"}]}
    assert api.post("/api/v1/negotiations/", ours, format="json", HTTP_IDEMPOTENCY_KEY="k-s2").status_code == 201
    assert not IdempotencyKey.objects.filter(key="k-s", response_status__gte=500).exists()


@pytest.mark.parametrize("field, value", [
    ("opened_on", "0001-01-01"), ("opened_on", "1899-12-31"), ("next_step_due", "9999-12-31"), ("next_step_due", "1800-01-01"),
])  # fmt: skip
def test_dates_out_of_a_sane_range_are_refused(ukraine, make_api, field, value):
    from exchanges.models import Negotiation

    ours = [{"party": str(ukraine.pk), "role": "side"}]
    response = make_api(ukraine).post("/api/v1/negotiations/", {"title": "x", "participants": ours, field: value}, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Negotiation.objects.exists()


def test_moments_before_1900_are_refused(ukraine, make_api, public_negotiation):
    url = f"/api/v1/negotiations/{public_negotiation.pk}/events/"
    response = make_api(ukraine).post(url, {"kind": "meeting", "occurred_at": "1850-01-01T00:00:00Z", "summary": "x"}, format="json")
    assert response.status_code == 400 and "occurred_at" in response.json()


def test_a_chunked_body_is_refused_with_411_not_read_as_empty(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    response = api.generic(
        "PATCH", f"/api/v1/negotiations/{public_negotiation.pk}/", b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert response.status_code == 411 and "Content-Length" in response.json()["detail"]
