"""The demo data: the Azovstal story and more, loaded twice without change."""
from datetime import timedelta

import pytest
from django.core import serializers
from django.core.management import call_command
from django.utils import timezone

from exchanges.models import DetaineeGroup, Negotiation, Party

pytestmark = pytest.mark.django_db


def dump():
    return [serializers.serialize("json", model.objects.order_by("pk")) for model in (Party, DetaineeGroup, Negotiation)]


def test_load_demo_twice_changes_nothing():
    call_command("load_demo")
    first = dump()
    call_command("load_demo")
    assert dump() == first


def test_the_demo_tells_the_azovstal_story():
    call_command("load_demo")
    assert Party.objects.filter(short_name="ICRC", kind="humanitarian").exists()
    assert Party.objects.filter(short_name="UN", kind="intergovernmental").exists()
    garrison = DetaineeGroup.objects.get(name__contains="Azovstal")
    claims = {(f.source_party.short_name, f.metric, f.value) for f in garrison.figures.select_related("source_party")}
    assert {("RU", "total", 1730), ("UA", "total", 265), ("UA", "seriously_wounded", 52)} <= claims
    negotiation = Negotiation.objects.get(groups=garrison)
    roles = dict(negotiation.participants.values_list("party__short_name", "role"))
    assert roles["UN"] == "facilitator" and roles["ICRC"] == "facilitator"
    assert negotiation.events.filter(kind="rejection").exists() and negotiation.events.filter(kind="proposal").exists()
    assert negotiation.covered_groups.get().proposed_count == 52


def test_the_demo_has_other_statuses_and_one_silent_for_over_a_month():
    call_command("load_demo")
    assert Negotiation.objects.values("status").distinct().count() >= 3
    month_ago = timezone.now() - timedelta(days=30)
    assert Negotiation.objects.filter(last_activity_at__lt=month_ago).exclude(status__in=["completed", "rejected", "collapsed"]).exists()
