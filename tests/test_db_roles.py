"""The application connects as a least-privilege PostgreSQL role (`manage.py grant_app_role`):
it runs the tracker, but cannot empty, switch off or go around the audit trail's protection,
nor change the schema. The tables' owner runs the migrations."""
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from exchanges import audit, chain
from exchanges.models import AuditEntry

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "app-role-test-password"
pytestmark = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="database roles are PostgreSQL's")


@pytest.fixture
def app_role(transactional_db, monkeypatch):
    """A fresh application role on the test database, dropped afterwards (roles belong to the
    whole server, so each test makes its own name)."""
    role = f"tracker_app_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("TRACKER_APP_DB_PASSWORD", PASSWORD)
    call_command("grant_app_role", role, stdout=io.StringIO())
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{role}"')
        cursor.execute(f'DROP ROLE "{role}"')


def connect_as(role):
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"], port=settings["PORT"] or 5432, dbname=settings["NAME"], user=role, password=PASSWORD, autocommit=True
    )


def database_url(role):
    settings = connection.settings_dict
    return f"postgres://{role}:{quote(PASSWORD)}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"


def refused(session, statement, params=()):
    """The error PostgreSQL answers `statement` with (None: it ran)."""
    try:
        session.execute(statement, params)
    except psycopg.Error as error:
        return error
    return None


def test_the_app_role_cannot_empty_disable_or_bypass_the_trail(app_role, ukraine):
    for number in range(3):
        audit.record(actor=None, action=AuditEntry.Action.UPDATE, instance=ukraine, before={"name": "x"}, after={"name": str(number)})
    chain.seal_all()
    entry = AuditEntry.objects.get(seq=2)
    with connect_as(app_role) as session:
        attributes = session.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert attributes == (False, False, False, False, False)
        no_privilege = [
            "TRUNCATE exchanges_auditentry",
            "TRUNCATE exchanges_accesslogentry",
            "ALTER TABLE exchanges_auditentry DISABLE TRIGGER ALL",
            "ALTER TABLE exchanges_auditentry DISABLE TRIGGER exchanges_auditentry_append_only",
            "SET session_replication_role = replica",
            f"UPDATE exchanges_auditentry SET actor_label = 'forged' WHERE id = {entry.pk}",
            f"DELETE FROM exchanges_auditentry WHERE id = {entry.pk}",
            "DELETE FROM exchanges_accesslogentry",
            "DELETE FROM exchanges_trailhead",
            "CREATE TABLE exchanges_backdoor (id int)",
            "DROP TABLE exchanges_auditentry",
            "ALTER TABLE exchanges_negotiation ADD COLUMN backdoor text",
            "TRUNCATE exchanges_negotiation",
        ]
        for statement in no_privilege:
            error = refused(session, statement)
            assert isinstance(error, psycopg.errors.InsufficientPrivilege), (statement, error)
        # The one update it holds (the sealer's), on a row already sealed: the trigger refuses.
        error = refused(session, f"UPDATE exchanges_auditentry SET hash = '{'f' * 64}' WHERE id = {entry.pk}")
        assert isinstance(error, psycopg.errors.RaiseException) and "append-only" in str(error)
    assert AuditEntry.objects.count() == 3 and AuditEntry.objects.get(pk=entry.pk).actor_label == "system"
    out = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"], cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "DATABASE_URL": database_url(app_role)},
    )
    assert out.returncode == 0 and "audit trail: intact, 3 entries sealed." in out.stdout, out.stdout + out.stderr


def test_the_tracker_runs_and_seals_its_trail_as_the_app_role(app_role):
    env = {**os.environ, "DATABASE_URL": database_url(app_role), "CELERY_BROKER_URL": "memory://"}
    demo = subprocess.run([sys.executable, "manage.py", "load_demo"], cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    assert demo.returncode == 0, demo.stderr
    scan = subprocess.run([sys.executable, "manage.py", "scan_stalls"], cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    assert scan.returncode == 0, scan.stderr
    verified = subprocess.run([sys.executable, "manage.py", "verify_audit", "--seal"], cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert AuditEntry.objects.filter(seq__isnull=True).count() == 0
    assert f"audit trail: intact, {AuditEntry.objects.count()} entries sealed." in verified.stdout


def test_tables_the_owner_creates_later_are_granted_to_the_app_role(app_role):
    with connection.cursor() as cursor:  # as the owner, as a later migration would
        cursor.execute("CREATE TABLE exchanges_later (id bigserial PRIMARY KEY, note text)")
    try:
        with connect_as(app_role) as session:
            session.execute("INSERT INTO exchanges_later (note) VALUES ('written by the app')")
            assert session.execute("SELECT note FROM exchanges_later").fetchone() == ("written by the app",)
            assert isinstance(refused(session, "TRUNCATE exchanges_later"), psycopg.errors.InsufficientPrivilege)
            assert isinstance(refused(session, "DROP TABLE exchanges_later"), psycopg.errors.InsufficientPrivilege)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE exchanges_later")


def test_a_role_with_more_than_it_needs_is_refused(transactional_db):
    role = f"tracker_app_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN CREATEDB')
    try:
        with pytest.raises(CommandError, match="has CREATEDB; an application role must not"):
            call_command("grant_app_role", role)
        with pytest.raises(CommandError, match="is the role running this command"):
            call_command("grant_app_role", connection.settings_dict["USER"])
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP ROLE "{role}"')


def reltuples(table):
    """The row count the planner's statistics hold for `table` (-1: never analyzed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


def test_the_stall_scan_refreshes_its_statistics_as_the_app_role(app_role, monkeypatch):
    """Only a table's owner may ANALYZE it: as the app role a plain ANALYZE is skipped with
    a warning, and the scan's bulk writes left the planner with the statistics of an
    empty table. It analyzes through the owner's `tracker_analyze()` instead."""
    from tests.tracker.test_stall_scan import silent
    from tracker import services as tracker_services
    from tracker.models import Flag

    for _ in range(3):
        silent(40)
    monkeypatch.setattr(tracker_services, "ANALYZE_AFTER", 1)  # "many" flags written: analyze
    with connect_as(app_role) as session:
        session.execute("ANALYZE tracker_flag")  # what the scan used to do: a warning, nothing else
        assert reltuples("tracker_flag") != 3
    with connection.cursor() as cursor:
        cursor.execute(f'SET ROLE "{app_role}"')
    try:
        tracker_services.scan_stalls()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert Flag.objects.count() == 3
    assert reltuples("tracker_flag") == 3
    assert reltuples("exchanges_negotiation") == 3


def test_the_analyze_function_analyzes_only_the_scans_tables(app_role):
    with connect_as(app_role) as session:
        error = refused(session, "SELECT tracker_analyze('exchanges_auditentry')")
        assert isinstance(error, psycopg.errors.InsufficientPrivilege) and "not a table the stall scan analyzes" in str(error)
        assert isinstance(refused(session, "SELECT tracker_analyze(NULL)"), psycopg.errors.InsufficientPrivilege)
        assert refused(session, "SELECT tracker_analyze('tracker_flag')") is None
    outsider = f"tracker_other_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE \"{outsider}\" LOGIN PASSWORD '{PASSWORD}'")
        cursor.execute(f'GRANT CONNECT ON DATABASE "{connection.settings_dict["NAME"]}" TO "{outsider}"')
    try:
        with connect_as(outsider) as session:  # a role the command did not grant it to
            assert isinstance(refused(session, "SELECT tracker_analyze('tracker_flag')"), psycopg.errors.InsufficientPrivilege)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{outsider}"')
            cursor.execute(f'DROP ROLE "{outsider}"')
