"""The OpenAPI schema tells everything: every operation's errors with their bodies, the
protocol's headers, every field typed, each enum named once, the webhooks. It validates
without warnings. (`tests/test_schema_responses.py` checks real answers against it;
`scripts/client_check.py` drives a client generated from it.)"""

import json

import pytest
import yaml  # noqa: F401  (installed with drf-spectacular)
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ERROR_STATUSES = {"400", "401", "403", "404", "409", "412", "413", "415", "422", "429"}
ERROR_BODIES = {"Error", "ValidationError", "IllegalStatusChange", "AlreadyRecorded", "IdempotencyKeyError"}
RECORD_DETAILS = (
    "/api/v1/parties/{id}/",
    "/api/v1/detainee-groups/{id}/",
    "/api/v1/detainee-groups/{group_pk}/figures/{id}/",
    "/api/v1/negotiations/{id}/",
    "/api/v1/negotiations/{negotiation_pk}/status-changes/{id}/",
    "/api/v1/negotiations/{negotiation_pk}/events/{id}/",
    "/api/v1/negotiations/{negotiation_pk}/handovers/{id}/",
    "/api/v1/webhooks/{id}/",
)
WEBHOOK_EVENTS = (
    "negotiation.status_changed",
    "negotiation.stalled",
    "negotiation.unstalled",
    "negotiation.handover_recorded",
)


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def header_parameters(operation):
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}


def body_names(response):
    """The component names a response's JSON body may be."""
    schema = response["content"]["application/json"]["schema"]
    refs = schema.get("oneOf", [schema])
    return [ref["$ref"].rsplit("/", 1)[-1] for ref in refs]


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/v1/parties/",
        "/api/v1/detainee-groups/",
        "/api/v1/detainee-groups/{group_pk}/figures/",
        "/api/v1/negotiations/",
        "/api/v1/negotiations/{negotiation_pk}/status-changes/",
        "/api/v1/negotiations/{negotiation_pk}/events/",
    ):
        assert f"{path}:" in text, path
    assert "bearerAuth" in text


def test_the_served_schema_is_openapi_3_1_with_the_webhooks():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    served = json.loads(response.content)
    assert served["openapi"] == "3.1.0"
    assert tuple(served["webhooks"]) == WEBHOOK_EVENTS


def test_every_operation_documents_401_403_and_429_with_bodies_and_every_response_its_request_id(schema):
    assert schema["components"]["headers"]["X-Request-ID"]["required"] is True
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        for status in ("401", "403", "429"):
            assert body_names(responses[status]) == ["Error"], (method, path, status)
        assert "Retry-After" in responses["429"]["headers"], (method, path)
        assert "WWW-Authenticate" in responses["401"]["headers"], (method, path)
        for status, response in responses.items():
            assert "X-Request-ID" in response.get("headers", {}), (method, path, status)
        assert "X-Request-ID" in header_parameters(operation), (method, path)


def test_every_error_response_has_a_typed_body_and_only_real_statuses_are_documented(schema):
    for path, method, operation in operations(schema):
        statuses = set(operation["responses"])
        assert statuses <= {"200", "201", "204", "304"} | ERROR_STATUSES, (method, path, statuses)
        for status in statuses & ERROR_STATUSES:
            names = body_names(operation["responses"][status])
            assert names and set(names) <= ERROR_BODIES, (method, path, status, names)
            assert operation["responses"][status]["description"], (method, path, status)
    # If-Match is optional: 428 (precondition required) is never answered.
    assert '"428"' not in json.dumps(schema)


def test_writes_document_if_match_and_412_and_reads_if_none_match_304_and_etag(schema):
    for path, method, operation in operations(schema):
        responses, headers = operation["responses"], header_parameters(operation)
        if method in ("PUT", "PATCH", "DELETE"):
            assert "If-Match" in headers and body_names(responses["412"]) == ["Error"], (method, path)
            assert "404" in responses, (method, path)
        else:
            assert "If-Match" not in headers and "412" not in responses, (method, path)
        if method in ("PUT", "PATCH"):
            assert {"400", "409", "413", "415"} <= set(responses), (method, path)
            assert "ETag" in responses["200"]["headers"], (method, path)
            assert "ValidationError" in body_names(responses["400"])
    for path in RECORD_DETAILS:
        get = schema["paths"][path]["get"]
        assert "If-None-Match" in header_parameters(get), path
        assert "ETag" in get["responses"]["200"]["headers"] and "ETag" in get["responses"]["304"]["headers"], path
        assert "content" not in get["responses"]["304"], path
    # Flags and `me` carry no ETag, so they do not answer 304.
    for path in ("/api/v1/flags/{id}/", "/api/v1/me/"):
        assert "304" not in schema["paths"][path]["get"]["responses"]
        assert "If-None-Match" not in header_parameters(schema["paths"][path]["get"])


def test_posts_document_idempotency_key_with_422_and_409_and_nested_ones_404(schema):
    posts = [(path, operation) for path, method, operation in operations(schema) if method == "POST"]
    assert len(posts) == 9
    for path, operation in posts:
        responses = operation["responses"]
        key = header_parameters(operation)["Idempotency-Key"]
        assert key["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
        assert body_names(responses["422"]) == ["IdempotencyKeyError"], path
        assert "IdempotencyKeyError" in body_names(responses["409"]), path
        assert "IdempotencyKeyError" in body_names(responses["400"]), path
        assert "404" in responses, path
        success = responses.get("201") or responses["200"]
        assert "Idempotent-Replayed" in success["headers"], path
        if path.endswith("/acknowledge/"):
            assert "413" not in responses and "requestBody" not in operation
        else:
            assert {"413", "415"} <= set(responses) and "ETag" in responses["201"]["headers"], path
            assert "ValidationError" in body_names(responses["400"]), path
    status_changes = schema["paths"]["/api/v1/negotiations/{negotiation_pk}/status-changes/"]["post"]["responses"]
    assert body_names(status_changes["409"])[0] == "IllegalStatusChange"
    figures = schema["paths"]["/api/v1/detainee-groups/{group_pk}/figures/"]["post"]["responses"]
    assert body_names(figures["409"])[0] == "AlreadyRecorded"


def test_lists_document_400_and_nested_ones_404(schema):
    lists = {}
    for path, method, operation in operations(schema):
        body = operation["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if method == "GET" and body.get("$ref", "").rsplit("/", 1)[-1].startswith(("Paginated", "ChangePage")):
            lists[path] = operation
    assert len(lists) == 11
    for path, operation in lists.items():
        assert body_names(operation["responses"]["400"]) == ["ValidationError"], path
        assert ("404" in operation["responses"]) == ("{" in path), path  # what a nested list hangs off
    assert body_names(schema["paths"]["/api/v1/me/"]["get"]["responses"]["404"]) == ["Error"]  # a staff login


def test_the_error_bodies(schema):
    schemas = schema["components"]["schemas"]
    assert schemas["Error"]["required"] == ["detail"]
    assert schemas["ValidationError"]["additionalProperties"] == {"$ref": "#/components/schemas/FieldErrors"}
    assert schemas["ItemErrors"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert schemas["IllegalStatusChange"]["properties"]["allowed"]["items"] == {
        "$ref": "#/components/schemas/NegotiationStatusEnum"
    }
    assert schemas["AlreadyRecorded"]["properties"]["existing"] == {"type": "string", "format": "uuid"}
    assert schemas["IdempotencyKeyError"]["required"] == ["detail", "idempotency_key"]


def test_the_webhooks_and_their_payloads(schema):
    schemas = schema["components"]["schemas"]
    assert tuple(schema["webhooks"]) == WEBHOOK_EVENTS
    payloads = []
    for event, item in schema["webhooks"].items():
        post = item["post"]
        assert {p["name"]: p["required"] for p in post["parameters"]} == {
            "webhook-id": True, "webhook-timestamp": True, "webhook-signature": True,
        }  # fmt: skip
        assert set(post["responses"]) == {"200", "410"}
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        payload = schemas[ref.rsplit("/", 1)[-1]]
        assert payload["properties"]["type"] == {"type": "string", "const": event}
        assert set(payload["required"]) == {"type", "timestamp", "data"}
        payloads.append(ref)
    union = schemas["WebhookPayload"]
    assert [member["$ref"] for member in union["oneOf"]] == payloads
    assert union["discriminator"]["mapping"] == dict(zip(WEBHOOK_EVENTS, payloads))
    assert schemas["WebhookDelivery"]["properties"]["payload"]["allOf"] == [
        {"$ref": "#/components/schemas/WebhookPayload"}
    ]


def walk(node, where=()):
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from walk(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*where, index))


SUBSCHEMA_KEYS = ("items", "additionalProperties")
SUBSCHEMA_LISTS = ("oneOf", "anyOf", "allOf")


def schemas_in(schema):
    """Every schema object of the document: components, bodies, parameters, headers, and
    what they contain (properties, items, additionalProperties, oneOf/anyOf/allOf)."""
    roots = [(("components", "schemas", name), value) for name, value in schema["components"]["schemas"].items()]
    for where, node in walk(
        {"paths": schema["paths"], "webhooks": schema["webhooks"], "headers": schema["components"]["headers"]}
    ):
        if "schema" in node and isinstance(node["schema"], dict):
            roots.append(((*where, "schema"), node["schema"]))
    pending = roots
    while pending:
        where, node = pending.pop()
        yield where, node
        for name, value in node.get("properties", {}).items():
            pending.append(((*where, "properties", name), value))
        for key in SUBSCHEMA_KEYS:
            if isinstance(node.get(key), dict):
                pending.append(((*where, key), node[key]))
        for key in SUBSCHEMA_LISTS:
            for index, value in enumerate(node.get(key, [])):
                pending.append(((*where, key, index), value))


def test_every_field_is_typed_no_free_form_object(schema):
    for where, node in schemas_in(schema):
        assert set(node) & {"$ref", "type", "oneOf", "anyOf", "allOf", "enum", "const"}, where
        types = node.get("type", [])
        if "object" in (types if isinstance(types, list) else [types]):
            typed_extra = isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"]
            assert node.get("properties") or typed_extra, where
        assert node.get("additionalProperties") not in ({}, True), where
        assert "nullable" not in node, where  # OpenAPI 3.0's keyword; 3.1 spells it type: [..., "null"]
    schemas = schema["components"]["schemas"]
    for component, field in (
        ("Flag", "acknowledged_by"),
        ("StatusChange", "recorded_by"),
        ("Event", "recorded_by"),
        ("Handover", "recorded_by"),
    ):
        assert {"$ref": "#/components/schemas/Actor"} in schemas[component]["properties"][field]["oneOf"], (
            component,
            field,
        )
    assert schemas["DetaineeGroup"]["properties"]["figures_summary"]["additionalProperties"] == {
        "$ref": "#/components/schemas/FigureSummary"
    }


def test_each_enum_is_named_once(schema):
    seen = {}
    for where, node in walk(schema):
        if isinstance(node.get("enum"), list) and where[-2:-1] != ("examples",):
            values = frozenset(map(json.dumps, node["enum"]))
            assert values not in seen, f"{where} repeats the enum of {seen[values]}"
            seen[values] = where
    named = {where[-1] for where in seen.values() if where[:2] == ("components", "schemas")}
    for name in ("NegotiationStatusEnum", "PriorityEnum", "VisibilityEnum", "ParticipantRoleEnum", "HandoverStateEnum",
                 "FlagLevelEnum", "ChangeTypeEnum", "ChangeActionEnum", "ActorTypeEnum", "WebhookEventEnum"):  # fmt: skip
        assert name in named, name
    # Filters refer to the named enums rather than repeating them.
    status = next(p for p in schema["paths"]["/api/v1/negotiations/"]["get"]["parameters"] if p["name"] == "status")
    assert status["schema"]["items"] == {"$ref": "#/components/schemas/NegotiationStatusEnum"}


def test_security_is_listed_once_per_scheme(schema):
    assert set(schema["components"]["securitySchemes"]) == {"bearerAuth", "cookieAuth"}
    for path, method, operation in operations(schema):
        names = [name for requirement in operation["security"] for name in requirement]
        assert names == ["bearerAuth", "cookieAuth"], (method, path)


def test_components_describe_resources_not_the_code_s_mixins(schema):
    from exchanges.api.serializers.fields import StrictFieldsMixin, WholeItemMixin

    mixin_docs = [StrictFieldsMixin.__doc__.split("\n")[0], WholeItemMixin.__doc__.split("\n")[0]]
    for name, component in schema["components"]["schemas"].items():
        for doc in mixin_docs:
            assert doc not in component.get("description", ""), name
    for name in ("Party", "DetaineeGroup", "ReportedFigure", "Negotiation", "StatusChange", "Event", "Handover", "Flag",
                 "WebhookSubscription", "WebhookDelivery", "Participant", "Transfer", "Change"):  # fmt: skip
        assert schema["components"]["schemas"][name].get("description"), name
    for path, method, operation in operations(schema):
        assert "policy.restrict" not in operation.get("description", ""), (method, path)


def test_the_staff_only_fields_of_a_negotiation_are_documented_as_optional_and_for_staff(schema):
    """API.md: `teams` and `case_officer` are for staff only (absent from what a client
    sees); the schema documents them, never as required, in the one `Negotiation`."""
    components = schema["components"]["schemas"]
    assert not any(name.startswith("StaffNegotiation") for name in components)
    for name in ("Negotiation", "NegotiationRequest", "PatchedNegotiationRequest"):
        properties, required = components[name]["properties"], components[name].get("required", [])
        for field in ("teams", "case_officer"):
            assert field in properties and field not in required, (name, field)
            assert "Staff logins only" in properties[field]["description"]
    delete = schema["paths"]["/api/v1/negotiations/{id}/"]["delete"]["responses"]
    assert {"204", "403", "409"} <= set(delete)
