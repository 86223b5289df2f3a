"""Every bad input gets a 4xx naming the field, and leaves the database as it was."""
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import serializers as django_serializers
from django.utils import timezone

pytestmark = pytest.mark.django_db

MISSING = str(uuid.uuid4())
FUTURE = (timezone.now() + timedelta(days=2)).isoformat()
FUTURE_DATE = (timezone.localdate() + timedelta(days=2)).isoformat()


def snapshot():
    """Every row of the record, serialized: equal snapshots mean nothing was written."""
    rows = []
    for model in apps.get_app_config("exchanges").get_models():
        rows.append(django_serializers.serialize("json", model.objects.order_by("pk")))
    return rows


@pytest.fixture
def world(ukraine, russia, garrison, public_negotiation, make_api):
    type(garrison).objects.filter(pk=garrison.pk).update(recorded_by_party=ukraine)  # so it may change it
    return {"api": make_api(ukraine), "negotiation": public_negotiation, "group": garrison, "ua": ukraine, "ru": russia}


def cases(w):
    n, g, ua = w["negotiation"], w["group"], w["ua"]
    neg = f"/api/v1/negotiations/{n.pk}/"
    party = {"name": "New", "kind": "state"}
    group = {"name": "G", "held_by": str(ua.pk), "affiliated_with": str(ua.pk), "category": "civilians"}
    return [
        # (method, url, body, expected status, field named)
        ("post", "/api/v1/parties/", {"kind": "state"}, 400, "name"),
        ("post", "/api/v1/parties/", {**party, "kind": "empire"}, 400, "kind"),
        ("post", "/api/v1/parties/", {**party, "country": "XX"}, 400, "country"),
        ("post", "/api/v1/parties/", {**party, "country": "UKR"}, 400, "country"),
        ("post", "/api/v1/parties/", {**party, "name": "x" * 201}, 400, "name"),
        ("post", "/api/v1/parties/", {**party, "name": ua.name}, 400, "name"),
        ("post", "/api/v1/parties/", {**party, "short_name": "UA"}, 400, "short_name"),
        ("post", "/api/v1/parties/", {**party, "name": ["a"]}, 400, "name"),
        ("post", "/api/v1/parties/", {**party, "colour": "red"}, 400, "colour"),
        ("post", "/api/v1/detainee-groups/", {**group, "estimated_count": -1}, 400, "estimated_count"),
        ("post", "/api/v1/detainee-groups/", {**group, "estimated_count": "many"}, 400, "estimated_count"),
        ("post", "/api/v1/detainee-groups/", {**group, "estimated_count": 10, "seriously_wounded_count": 11}, 400, "seriously_wounded_count"),
        ("post", "/api/v1/detainee-groups/", {**group, "estimated_count": 10**12}, 400, "estimated_count"),
        ("post", "/api/v1/detainee-groups/", {**group, "held_by": MISSING}, 400, "held_by"),
        ("post", "/api/v1/detainee-groups/", {**group, "held_by": "not-a-uuid"}, 400, "held_by"),
        ("post", "/api/v1/detainee-groups/", {**group, "category": None}, 400, "category"),
        ("post", "/api/v1/detainee-groups/", {**group, "detained_since": FUTURE_DATE}, 400, "detained_since"),
        ("post", "/api/v1/detainee-groups/", {**group, "detained_since": "16/05/2022"}, 400, "detained_since"),
        ("patch", f"/api/v1/detainee-groups/{g.pk}/", {"seriously_wounded_count": 266}, 400, "seriously_wounded_count"),
        ("post", f"/api/v1/detainee-groups/{g.pk}/figures/", {"metric": "total", "value": -3, "reported_on": "2022-05-17"}, 400, "value"),
        ("post", f"/api/v1/detainee-groups/{g.pk}/figures/", {"metric": "rumoured", "value": 3, "reported_on": "2022-05-17"}, 400, "metric"),
        ("post", f"/api/v1/detainee-groups/{g.pk}/figures/", {"metric": "total", "value": 3}, 400, "reported_on"),
        ("post", f"/api/v1/detainee-groups/{g.pk}/figures/", {"metric": "total", "value": 3, "reported_on": FUTURE_DATE}, 400, "reported_on"),
        ("post", f"/api/v1/detainee-groups/{g.pk}/figures/", {"metric": "total", "value": 3, "reported_on": "2022-05-17", "reliability": "gospel"}, 400, "reliability"),
        ("post", f"/api/v1/detainee-groups/{g.pk}/figures/", {"metric": "total", "value": 3, "reported_on": "2022-05-17", "source_party": MISSING}, 400, "source_party"),
        ("post", f"/api/v1/detainee-groups/{MISSING}/figures/", {"metric": "total", "value": 3, "reported_on": "2022-05-17"}, 404, None),
        ("post", "/api/v1/negotiations/", {}, 400, "title"),
        ("post", "/api/v1/negotiations/", {"title": "   "}, 400, "title"),
        ("post", "/api/v1/negotiations/", {"title": "t" * 301}, 400, "title"),
        ("post", "/api/v1/negotiations/", {"title": "t", "summary": "s" * 20_001}, 400, "summary"),
        ("post", "/api/v1/negotiations/", {"title": "t", "priority": "asap"}, 400, "priority"),
        ("post", "/api/v1/negotiations/", {"title": "t", "opened_on": FUTURE_DATE}, 400, "opened_on"),
        ("post", "/api/v1/negotiations/", {"title": "t", "next_step_due": "soon"}, 400, "next_step_due"),
        ("post", "/api/v1/negotiations/", {"title": "t", "participants": [{"party": MISSING, "role": "side"}]}, 400, "participants"),
        ("post", "/api/v1/negotiations/", {"title": "t", "participants": [{"party": str(ua.pk), "role": "referee"}]}, 400, "participants"),
        ("post", "/api/v1/negotiations/", {"title": "t", "participants": [{"party": str(ua.pk), "role": "side"}, {"party": str(ua.pk), "role": "mediator"}]}, 400, "participants"),
        ("post", "/api/v1/negotiations/", {"title": "t", "participants": {"party": str(ua.pk)}}, 400, "participants"),
        ("post", "/api/v1/negotiations/", {"title": "t", "groups": [{"group": str(g.pk), "proposed_count": -5}]}, 400, "groups"),
        ("post", "/api/v1/negotiations/", {"title": "t", "groups": [{"group": str(g.pk)}, {"group": str(g.pk)}]}, 400, "groups"),
        ("post", "/api/v1/negotiations/", {"title": "t", "status": "agreed"}, 400, "status"),
        ("patch", neg, {"status": "completed"}, 400, "status"),
        ("patch", neg, {"title": None}, 400, "title"),
        ("patch", neg, {"participants": None}, 400, "participants"),
        ("patch", neg, {"groups": [{"proposed_count": 0, "released_count": 0}]}, 400, "groups"),
        ("patch", neg, {"participants": [{"role": "side"}]}, 400, "participants"),
        ("put", neg, {"summary": "no title"}, 400, "title"),
        ("post", neg + "status-changes/", {}, 400, "to_status"),
        ("post", neg + "status-changes/", {"to_status": "finished"}, 400, "to_status"),
        ("post", neg + "status-changes/", {"to_status": "completed"}, 409, "allowed"),
        ("post", neg + "status-changes/", {"to_status": "in_talks", "occurred_at": FUTURE}, 400, "occurred_at"),
        ("post", neg + "status-changes/", {"to_status": "in_talks", "occurred_at": "last tuesday"}, 400, "occurred_at"),
        ("post", neg + "status-changes/", {"to_status": "in_talks", "note": "n" * 20_001}, 400, "note"),
        ("post", neg + "status-changes/", {"to_status": "in_talks", "source": "s" * 1001}, 400, "source"),
        ("post", neg + "status-changes/", {"to_status": "in_talks", "from_status": "agreed"}, 400, "from_status"),
        ("post", neg + "events/", {"kind": "meeting", "summary": "x"}, 400, "occurred_at"),
        ("post", neg + "events/", {"kind": "party", "occurred_at": "2022-05-10T10:00:00Z", "summary": "x"}, 400, "kind"),
        ("post", neg + "events/", {"kind": "meeting", "occurred_at": FUTURE, "summary": "x"}, 400, "occurred_at"),
        ("post", neg + "events/", {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": ""}, 400, "summary"),
        ("post", neg + "events/", {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": "x", "parties": [MISSING]}, 400, "parties"),
        ("post", neg + "events/", {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": "x\x00y"}, 400, "summary"),
        ("post", f"/api/v1/negotiations/{MISSING}/status-changes/", {"to_status": "in_talks"}, 404, None),
        ("get", "/api/v1/negotiations/not-a-uuid/", None, 404, None),
        ("get", f"/api/v1/negotiations/{MISSING}/", None, 404, None),
        ("post", "/api/v1/negotiations/", ["title"], 400, "non_field_errors"),
    ]


def test_bad_input_gets_a_4xx_naming_the_field_and_changes_nothing(world):
    api = world["api"]
    api.get("/api/v1/parties/")  # the first call records the client's last use; later ones do not write
    failures = []
    for method, url, body, expected, field in cases(world):
        before = snapshot()
        response = getattr(api, method)(url, body, format="json") if body is not None else getattr(api, method)(url)
        after = snapshot()
        payload = response.json() if response["Content-Type"].startswith("application/json") else {}
        if response.status_code != expected or (field and field not in payload) or before != after:
            failures.append((method, url, body if len(str(body)) < 200 else "<long>", response.status_code, payload))
    assert failures == []


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"title": "x",}', b"not json", b'{"title": NaN}', b"\xff\xfe", b'{"title": "x"}' + b" garbage"],
)
def test_malformed_json_gets_400_and_writes_nothing(world, raw):
    world["api"].get("/api/v1/parties/")
    before = snapshot()
    response = world["api"].generic("POST", "/api/v1/negotiations/", raw, content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()
    assert snapshot() == before


def test_a_body_that_is_not_json_gets_415(world):
    response = world["api"].generic("POST", "/api/v1/negotiations/", "title=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_an_oversized_body_gets_413(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = world["api"].post("/api/v1/negotiations/", {"title": "x", "summary": "s" * 5000}, format="json")
    assert response.status_code == 413


def test_unknown_api_paths_answer_json_404(world):
    response = world["api"].get("/api/v1/nowhere/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_an_optional_text_or_list_sent_as_null_is_taken_as_empty_and_a_required_one_is_a_400(make_api, ukraine, russia):
    """"The rest may be omitted (empty or null)": clients generated in many languages send
    null for what they leave unset."""
    api = make_api(ukraine)
    party = api.post("/api/v1/parties/", {"name": "Qatar", "kind": "state", "short_name": None, "aliases": None, "country": None}, format="json")
    assert party.status_code == 201, party.content
    assert (party.json()["short_name"], party.json()["aliases"], party.json()["country"]) == ("", [], None)
    group = api.post("/api/v1/detainee-groups/", {"name": "Crew", "held_by": str(russia.pk), "affiliated_with": str(ukraine.pk), "category": "mixed", "location": None, "notes": None}, format="json")
    assert group.status_code == 201 and group.json()["location"] == "" and group.json()["notes"] == ""
    ours = [{"party": str(ukraine.pk), "role": "side"}]
    created = api.post("/api/v1/negotiations/", {"title": "Crew for crew", "summary": None, "next_step": None, "participants": ours}, format="json")
    assert created.status_code == 201 and created.json()["summary"] == ""
    event = api.post(f"/api/v1/negotiations/{created.json()['id']}/events/", {"kind": "meeting", "occurred_at": "2026-01-05T10:00:00Z", "summary": "Met", "parties": None, "source": None}, format="json")
    assert event.status_code == 201 and (event.json()["parties"], event.json()["source"]) == ([], ""), event.content
    untitled = api.post("/api/v1/negotiations/", {"title": None, "participants": ours}, format="json")
    assert untitled.status_code == 400 and "title" in untitled.json()
