"""`create_staff_login`: one role (or none), its teams, a password on the last line."""
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from exchanges.models import AuditEntry, Team
from exchanges.roles import ROLES

pytestmark = pytest.mark.django_db


def run(*args, **options):
    out = StringIO()
    call_command("create_staff_login", *args, stdout=out, **options)
    return out.getvalue().strip().splitlines()


def password_of(lines):
    return lines[-1]


def login(username):
    return get_user_model().objects.get(username=username)


def test_the_last_line_is_a_password_that_logs_in(monkeypatch):
    monkeypatch.delenv("TRACKER_STAFF_PASSWORD", raising=False)
    lines = run("alice", "--role", "editor", "--team", "Eastern Europe desk")
    assert Client().login(username="alice", password=password_of(lines))
    user = login("alice")
    assert user.is_staff and user.is_active and not user.is_superuser
    assert " " not in password_of(lines) and len(password_of(lines)) >= 16


def test_each_run_prints_a_new_password_and_only_the_last_works(monkeypatch):
    monkeypatch.delenv("TRACKER_STAFF_PASSWORD", raising=False)
    first = password_of(run("alice"))
    second = password_of(run("alice"))
    assert first != second
    assert not Client().login(username="alice", password=first)
    assert Client().login(username="alice", password=second)


def test_the_password_comes_from_the_environment_when_set(monkeypatch):
    monkeypatch.setenv("TRACKER_STAFF_PASSWORD", "Chosen-pw-2026")
    assert password_of(run("alice", "--role", "viewer")) == "Chosen-pw-2026"
    assert Client().login(username="alice", password="Chosen-pw-2026")


def test_the_role_group_and_the_teams_are_set_and_missing_teams_created():
    Team.objects.create(name="Eastern Europe desk")
    run("alice", "--role", "coordinator", "--team", "Eastern Europe desk", "--team", "Protection unit")
    user = login("alice")
    assert list(user.groups.values_list("name", flat=True)) == ["Coordinator"]
    assert sorted(user.tracker_teams.values_list("name", flat=True)) == ["Eastern Europe desk", "Protection unit"]
    assert Team.objects.count() == 2
    name, permissions = ROLES["coordinator"]
    assert user.get_all_permissions() == permissions
    assert AuditEntry.objects.filter(model="exchanges.team", action="create", object_repr="Protection unit").exists()
    created = AuditEntry.objects.get(model="auth.user", action="create")
    assert created.changes["groups"] == [None, ["Coordinator"]] and "password" not in created.changes


def test_running_again_changes_the_role_and_the_teams():
    run("alice", "--role", "coordinator", "--team", "Eastern Europe desk", "--team", "Protection unit")
    lines = run("alice", "--role", "viewer", "--team", "Middle East desk")
    user = login("alice")
    assert list(user.groups.values_list("name", flat=True)) == ["Viewer"]
    assert list(user.tracker_teams.values_list("name", flat=True)) == ["Middle East desk"]
    assert user.get_all_permissions() == ROLES["viewer"][1]
    assert "Updated" in lines[0] and "removed from Coordinator" in lines[0]
    assert Client().login(username="alice", password=password_of(lines))
    changed = AuditEntry.objects.get(model="auth.user", action="update")
    assert changed.changes["groups"] == [["Coordinator"], ["Viewer"]]


def test_no_role_means_no_permission():
    run("alice", "--role", "editor")
    run("alice", "--team", "Protection unit")
    user = login("alice")
    assert user.groups.count() == 0
    assert user.get_all_permissions() == set()
    assert list(user.tracker_teams.values_list("name", flat=True)) == ["Protection unit"]


def test_an_existing_superuser_becomes_exactly_its_role():
    User = get_user_model()
    boss = User.objects.create_user(username="boss", password="x", is_staff=True, is_superuser=True, is_active=False)
    boss.groups.add(Group.objects.create(name="Old habits"))
    boss.user_permissions.add(Permission.objects.get(codename="delete_negotiation"))
    lines = run("boss", "--role", "auditor")
    boss = login("boss")
    assert not boss.is_superuser and boss.is_active and boss.is_staff
    assert boss.get_all_permissions() == ROLES["auditor"][1]
    assert "no longer a superuser" in lines[0]


def test_an_unknown_role_is_a_clear_error_and_writes_nothing():
    with pytest.raises(CommandError, match="Unknown role 'boss'.*viewer, editor, coordinator, auditor"):
        run("alice", "--role", "boss", "--team", "New desk")
    assert not get_user_model().objects.filter(username="alice").exists()
    assert not Team.objects.exists()


def test_a_bad_team_name_writes_nothing():
    with pytest.raises(CommandError, match="Team"):
        run("alice", "--role", "viewer", "--team", "Fine desk", "--team", "x" * 101)
    assert not get_user_model().objects.filter(username="alice").exists()
    assert not Team.objects.exists()


def test_a_bad_username_is_refused():
    with pytest.raises(CommandError, match="Username"):
        run("no spaces allowed", "--role", "viewer")


def test_the_role_name_is_case_insensitive():
    run("alice", "--role", "Coordinator")
    assert list(login("alice").groups.values_list("name", flat=True)) == ["Coordinator"]
