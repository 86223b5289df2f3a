"""The demo data: the Azovstal story and more, loaded twice without change, and the
demo staff login: a Coordinator in the demo teams, not a superuser."""
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from exchanges import policy
from exchanges.demo import DEMO_LOGIN_TEAMS
from exchanges.models import AuditEntry, DetaineeGroup, Negotiation, Party, Team
from exchanges.roles import ROLES

pytestmark = pytest.mark.django_db


def dump():
    return [serializers.serialize("json", model.objects.order_by("pk")) for model in (Party, DetaineeGroup, Negotiation, Team)]


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


def load_with_login():
    call_command("load_demo")
    out = StringIO()
    call_command("ensure_staff_login", "--username", "demo", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_the_demo_login_is_a_coordinator_in_the_demo_teams_not_a_superuser(monkeypatch):
    monkeypatch.delenv("TRACKER_STAFF_PASSWORD", raising=False)
    line = load_with_login()
    assert line.startswith("Staff login: demo / ")
    user = get_user_model().objects.get(username="demo")
    assert Client().login(username="demo", password=line.removeprefix("Staff login: demo / "))
    assert user.is_staff and user.is_active and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["Coordinator"]
    assert sorted(user.tracker_teams.values_list("name", flat=True)) == sorted(DEMO_LOGIN_TEAMS)
    assert user.get_all_permissions() == ROLES["coordinator"][1]


def test_every_demo_negotiation_has_teams_and_need_to_know_hides_one_from_the_demo_login():
    load_with_login()
    user = get_user_model().objects.get(username="demo")
    assert Team.objects.count() >= 2
    assert not Negotiation.objects.filter(teams__isnull=True).exists()
    hidden = Negotiation.objects.filter(visibility="staff_only").exclude(teams__name__in=DEMO_LOGIN_TEAMS)
    assert hidden.count() == 1
    visible = policy.negotiations_visible_to(user)
    assert not visible.filter(pk=hidden.get().pk).exists()
    # The login sees everything else, its own desks' staff-only negotiation included.
    assert set(visible.values_list("pk", flat=True)) == set(Negotiation.objects.exclude(pk=hidden.get().pk).values_list("pk", flat=True))
    assert visible.filter(visibility="staff_only").exists()


def test_loading_and_logging_in_twice_creates_nothing_twice():
    load_with_login()
    counts = {model: model.objects.count() for model in (Party, DetaineeGroup, Negotiation, Team, get_user_model(), AuditEntry)}
    teams = dump_teams()
    load_with_login()
    assert {model: model.objects.count() for model in counts} == counts
    assert dump_teams() == teams


def dump_teams():
    return sorted((n.title, tuple(sorted(n.teams.values_list("name", flat=True)))) for n in Negotiation.objects.all())


def test_negotiations_loaded_before_the_demo_had_teams_get_theirs():
    call_command("load_demo")
    Negotiation.teams.through.objects.all().delete()
    call_command("load_demo")
    assert not Negotiation.objects.filter(teams__isnull=True).exists()


def test_the_demo_carries_out_a_real_agreement_in_handovers():
    call_command("load_demo")
    negotiation = Negotiation.objects.get(title__startswith="1,000 for 1,000")
    handovers = list(negotiation.handovers.order_by("sequence"))
    assert [(h.sequence, h.state, h.occurred_on.isoformat()) for h in handovers] == [
        (1, "done", "2025-05-23"), (2, "done", "2025-05-24"), (3, "done", "2025-05-25"),
    ]  # fmt: skip
    assert all(h.source for h in handovers) and all(c.notes for c in negotiation.commitments.all())
    progress = {row["party"]: row for row in negotiation.progress}
    assert {row["committed"] for row in progress.values()} == {1000}
    assert {row["released"] for row in progress.values()} == {1000}
    assert {row["remaining"] for row in progress.values()} == {0}
    assert negotiation.status == "completed"


def test_the_demo_login_keeps_its_password_from_one_make_run_to_the_next(monkeypatch, settings, tmp_path):
    monkeypatch.delenv("TRACKER_STAFF_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path  # the runtime folder, where `make run` keeps it
    first, second = load_with_login(), load_with_login()
    assert first == second
    assert Client().login(username="demo", password=second.removeprefix("Staff login: demo / "))
    assert (tmp_path / "staff-login-password").stat().st_mode & 0o077 == 0  # its owner's alone


def test_the_demo_parties_are_found_by_the_names_people_use(client, staff_user):
    from exchanges.demo import load_demo

    load_demo()
    client.force_login(staff_user)
    for term, short_name in (("UAE", "AE"), ("Red Cross", "ICRC"), ("Turkey", "TR")):
        found = client.get("/api/v1/parties/", {"search": term}).json()["results"]
        assert [party["short_name"] for party in found] == [short_name], term
