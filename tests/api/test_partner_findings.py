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
