"""What schemathesis found with every check in every phase: the server and the schema say
the same about empty filter values, page sizes, unknown fields and empty event lists."""
import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(ukraine, public_negotiation, garrison, make_api):
    return make_api(ukraine)


@pytest.mark.parametrize(
    "url, parameter",
    [
        ("/api/v1/detainee-groups/?updated_since=", "updated_since"),
        ("/api/v1/detainee-groups/?held_by=", "held_by"),
        ("/api/v1/negotiations/?party=", "party"),
        ("/api/v1/negotiations/?status=", "status"),
        ("/api/v1/negotiations/?stalled=", "stalled"),
        ("/api/v1/flags/?negotiation=", "negotiation"),
        ("/api/v1/flags/?open=", "open"),
        ("/api/v1/negotiations/?page_size=", "page_size"),
        ("/api/v1/changes/?page_size=", "page_size"),
        ("/api/v1/negotiations/?ordering=", "ordering"),
    ],
)
def test_a_typed_parameter_sent_empty_is_a_400_naming_it(api, url, parameter):
    response = api.get(url)
    assert response.status_code == 400, response.content
    assert parameter in response.json()


def test_figures_source_party_sent_empty_is_a_400(api, garrison):
    response = api.get(f"/api/v1/detainee-groups/{garrison.pk}/figures/?source_party=")
    assert response.status_code == 400
    assert "source_party" in response.json()


def test_free_text_search_may_be_empty(api):
    assert api.get("/api/v1/negotiations/?search=").status_code == 200
    assert api.get("/api/v1/parties/?search=").status_code == 200


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


def test_the_change_feed_documents_its_page_size_bounds(schema):
    parameters = schema["paths"]["/api/v1/changes/"]["get"]["parameters"]
    page_size = next(parameter for parameter in parameters if parameter["name"] == "page_size")
    assert page_size["schema"]["minimum"] == 1 and page_size["schema"]["maximum"] == 200


def test_request_bodies_are_closed(schema):
    """Unknown fields are refused (400), so every request body says so, and says that
    what the tracker sets may be sent back as read."""
    components = schema["components"]["schemas"]
    requests = {name: body for name, body in components.items() if name.endswith("Request")}
    assert requests
    for name, body in requests.items():
        assert body["additionalProperties"] is False, name
        assert "sent back as read" in body["description"], name


def test_an_unknown_field_is_refused_as_the_schema_says(api, public_negotiation):
    response = api.patch(f"/api/v1/negotiations/{public_negotiation.pk}/", {"colour": "red"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"colour": ["Unknown field."]}


def test_a_subscription_needs_at_least_one_event_in_the_schema_too(schema, api):
    events = schema["components"]["schemas"]["WebhookSubscriptionRequest"]["properties"]["events"]
    assert events["minItems"] == 1
    response = api.post("/api/v1/webhooks/", {"url": "https://example.org/hook", "events": []}, format="json")
    assert response.status_code == 400 and "events" in response.json()
