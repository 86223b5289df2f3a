"""A flag's JSON is built directly (FlagSerializer.to_representation, for the speed of the
list); it must stay exactly what DRF's fields would write, in every state a flag can be in."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers as drf
from rest_framework.renderers import JSONRenderer

from tests.factories import NegotiationFactory
from tracker.api.serializers import FlagSerializer
from tracker.models import Flag
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db


def _rendered(data):
    return json.loads(JSONRenderer().render(data))


def test_flags_in_every_state_read_as_drf_writes_them(ukraine, russia, make_api, staff_user):
    today = timezone.localdate()
    negotiations = [
        NegotiationFactory(opened_on=today - timedelta(days=days), participants=[(ukraine, "side"), (russia, "side")])
        for days in (40, 90, 200, 300)
    ]
    negotiations[0].next_step_due = today - timedelta(days=3)
    negotiations[0].save()
    scan_stalls()
    flags = list(Flag.objects.order_by("raised_at", "id"))
    assert len(flags) >= 4
    now = timezone.now().replace(microsecond=123456)
    Flag.objects.filter(pk=flags[0].pk).update(acknowledged_at=now, acknowledged_by_user=staff_user)
    api = make_api(ukraine)
    assert api.post(f"/api/v1/flags/{flags[1].pk}/acknowledge/").status_code == 200
    Flag.objects.filter(pk=flags[2].pk).update(resolved_at=now, resolution="activity", escalated_at=now - timedelta(days=1))
    listed = {row["id"]: row for row in api.get("/api/v1/flags/", {"page_size": 200}).json()["results"]}
    queryset = Flag.objects.select_related("negotiation", "acknowledged_by_user", "acknowledged_by_client")
    states = set()
    for flag in queryset:
        expected = _rendered(drf.ModelSerializer.to_representation(FlagSerializer(), flag))
        assert _rendered(FlagSerializer().to_representation(flag)) == expected
        assert listed[str(flag.pk)] == expected
        assert api.get(f"/api/v1/flags/{flag.pk}/").json() == expected
        states.add((expected["open"], (expected["acknowledged_by"] or {}).get("type"), expected["due_on"] is not None))
    assert {(True, "staff"), (True, "api_client"), (False, None)} <= {state[:2] for state in states}
    assert any(state[2] for state in states)
