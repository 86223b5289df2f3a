"""For every endpoint that takes an id, a client that may not see the object gets 404 on
read and on write, and the object is unchanged; lists, filters, search and webhooks
never leak it either."""
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import serializers as django_serializers
from django.utils import timezone

from exchanges import services as record
from tests.factories import NegotiationFactory
from tracker.models import Flag, WebhookDelivery
from tracker.services import scan_stalls

from ..tracker.receiver import Receiver

pytestmark = pytest.mark.django_db


def snapshot():
    rows = []
    for label in ("exchanges", "tracker"):
        for model in apps.get_app_config(label).get_models():
            if model._meta.model_name in ("auditentry", "idempotencykey", "apiclient"):
                continue
            rows.append(django_serializers.serialize("json", model.objects.order_by("pk")))
    return rows


@pytest.fixture
def hidden(ukraine, russia, icrc, garrison):
    """Two negotiations a Ukrainian client may not see, each with history, an event and a flag."""
    long_ago = timezone.localdate() - timedelta(days=90)
    between_others = NegotiationFactory(title="Between others", visibility="participants", opened_on=long_ago, next_step_due=long_ago, participants=[(russia, "side"), (icrc, "mediator")], groups=[garrison])
    internal = NegotiationFactory(title="Internal only", visibility="staff_only", opened_on=long_ago, participants=[(ukraine, "side")], groups=[garrison])
    objects = {}
    for name, negotiation in (("participants", between_others), ("staff_only", internal)):
        change = record.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None, occurred_at=timezone.now() - timedelta(days=80))
        event = record.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=timezone.now() - timedelta(days=79), summary="secret meeting")
        objects[name] = {"negotiation": negotiation, "change": change, "event": event}
    scan_stalls()
    for entry in objects.values():
        entry["flag"] = Flag.objects.filter(negotiation=entry["negotiation"]).first()
    return objects


def requests_for(o):
    n = f"/api/v1/negotiations/{o['negotiation'].pk}/"
    e = f"{n}events/{o['event'].pk}/"
    f = f"/api/v1/flags/{o['flag'].pk}/"
    return [
        ("get", n, None),
        ("head", n, None),
        ("patch", n, {"title": "leak"}),
        ("put", n, {"title": "leak"}),
        ("get", n + "status-changes/", None),
        ("post", n + "status-changes/", {"to_status": "suspended"}),
        ("get", f"{n}status-changes/{o['change'].pk}/", None),
        ("get", n + "events/", None),
        ("post", n + "events/", {"kind": "statement", "occurred_at": "2022-05-10T10:00:00Z", "summary": "x"}),
        ("get", e, None),
        ("patch", e, {"summary": "leak"}),
        ("put", e, {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": "leak"}),
        ("delete", e, None),
        ("get", f, None),
        ("post", f + "acknowledge/", None),
    ]


@pytest.mark.parametrize("which", ["participants", "staff_only"])
@pytest.mark.parametrize("read_only", [False, True])
def test_every_endpoint_with_an_id_answers_404_and_changes_nothing(hidden, ukraine, make_api, which, read_only):
    api = make_api(ukraine, read_only=read_only)
    api.get("/api/v1/parties/")
    before = snapshot()
    leaks = []
    for method, url, body in requests_for(hidden[which]):
        response = getattr(api, method)(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{method}-{url}") if body is not None else getattr(api, method)(url)
        expected = {404} if method in ("get", "head") or not read_only else {403, 404}
        if response.status_code not in expected:
            leaks.append((method, url, response.status_code))
        if response.status_code == 403 and hidden[which]["negotiation"].title in response.content.decode():
            leaks.append((method, url, "403 names the negotiation"))
    assert leaks == []
    assert snapshot() == before


@pytest.mark.parametrize("which", ["participants", "staff_only"])
def test_lists_filters_and_search_never_show_it(hidden, ukraine, garrison, russia, make_api, which):
    api = make_api(ukraine)
    negotiation = hidden[which]["negotiation"]
    queries = [
        {}, {"search": negotiation.reference}, {"search": negotiation.title}, {"party": str(russia.pk)}, {"party": str(ukraine.pk)},
        {"group": str(garrison.pk)}, {"status": "in_talks"}, {"stalled": "true"}, {"updated_since": "2000-01-01T00:00:00Z"},
        {"ordering": "updated_at"}, {"page_size": 200},
    ]
    for params in queries:
        body = api.get("/api/v1/negotiations/", params).content.decode()
        assert str(negotiation.pk) not in body and negotiation.reference not in body, params
    for params in ({}, {"negotiation": str(negotiation.pk)}, {"open": "true"}, {"kind": "deadline_missed"}):
        body = api.get("/api/v1/flags/", params).content.decode()
        assert str(negotiation.pk) not in body, params
    assert negotiation.reference not in api.get(f"/api/v1/detainee-groups/{garrison.pk}/").content.decode()


def test_webhooks_never_carry_it(hidden, ukraine, make_api):
    receiver = Receiver().start()
    try:
        api = make_api(ukraine)
        api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["negotiation.status_changed", "negotiation.stalled", "negotiation.unstalled"]}, format="json")
        for entry in hidden.values():
            record.negotiation_change_status(negotiation=entry["negotiation"], to_status="suspended", actor=None)
            record.event_create(negotiation=entry["negotiation"], actor=None, kind="statement", occurred_at=timezone.now(), summary="x")
        scan_stalls(now=timezone.now() + timedelta(days=60))
        assert WebhookDelivery.objects.count() == 0
    finally:
        receiver.stop()


def test_a_participant_and_staff_do_see_it(hidden, russia, make_api, staff_api):
    assert make_api(russia).get(f"/api/v1/negotiations/{hidden['participants']['negotiation'].pk}/").status_code == 200
    assert make_api(russia).get(f"/api/v1/negotiations/{hidden['staff_only']['negotiation'].pk}/").status_code == 404
    for entry in hidden.values():
        assert staff_api.get(f"/api/v1/negotiations/{entry['negotiation'].pk}/").status_code == 200
