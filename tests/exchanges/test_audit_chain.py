"""The audit trail and the access log are hash chains: each sealed entry's hash covers its
content and the entry before it, and `verify_audit` finds the first edited, removed or
missing one, on PostgreSQL and SQLite alike."""
import datetime
import hashlib
import io
import logging
import time
import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from exchanges import audit, chain
from exchanges.models import AccessLogEntry, AuditEntry
from exchanges.models.trail import TrailHead
from exchanges.tasks import seal_trail

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's triggers and locks")


def write_entries(party, count):
    for number in range(count):
        audit.record(actor=None, action=AuditEntry.Action.UPDATE, instance=party, before={"name": "old"}, after={"name": f"new {number}"})


def forge(statement, params=()):
    """Change the trail as someone holding the database's superuser would: past the trigger."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(statement, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")


def verify_audit(*args):
    """(exit status, output) of `manage.py verify_audit`."""
    out = io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except CommandError as error:
        return 1, out.getvalue() + str(error)
    return 0, out.getvalue()


def head(name="audit"):
    return str(TrailHead.objects.get(chain=name))


def test_entries_are_sealed_once_their_write_commits(ukraine, make_api, public_negotiation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = make_api(ukraine).patch(f"/api/v1/negotiations/{public_negotiation.pk}/", {"title": "Renamed"}, format="json")
    assert response.status_code == 200
    entries = list(AuditEntry.objects.order_by("seq").values_list("seq", "hash", "model"))
    assert [seq for seq, _hash, _model in entries] == list(range(1, len(entries) + 1))
    assert all(len(digest) == 64 for _seq, digest, _model in entries)
    assert head() == f"audit:{len(entries)}:{entries[-1][1]}"


def test_an_intact_trail_verifies_and_prints_its_heads(ukraine, staff_user, staff_only):
    write_entries(ukraine, 3)
    audit.log_staff_access(staff_user, [staff_only], channel=AccessLogEntry.Channel.API)
    sealed = seal_trail()
    assert sealed == {"audit": AuditEntry.objects.count(), "access": 1}
    status, output = verify_audit()
    assert status == 0, output
    assert f"audit trail: intact, {sealed['audit']} entries sealed. Head: {head('audit')}" in output
    assert f"access log: intact, 1 entries sealed. Head: {head('access')}" in output


def test_an_edited_entry_is_the_first_broken_link(ukraine):
    write_entries(ukraine, 4)
    chain.seal_all()
    second = AuditEntry.objects.get(seq=2)
    forge("UPDATE exchanges_auditentry SET actor_label = %s WHERE id = %s", ["someone else", second.pk])
    status, output = verify_audit()
    assert status == 1
    assert f"audit trail: NOT INTACT: entry #2 (id {second.pk}) does not match its hash" in output
    assert "access log: intact" in output


def test_a_deleted_entry_is_a_missing_link(ukraine):
    write_entries(ukraine, 5)
    chain.seal_all()
    forge("DELETE FROM exchanges_auditentry WHERE seq IN (2, 3)")
    status, output = verify_audit()
    assert status == 1 and "entries #2 to #3 are missing (removed after sealing): the chain goes from #1 to #4." in output


def test_a_truncated_trail_or_a_removed_end_shows_against_the_recorded_head(ukraine):
    write_entries(ukraine, 3)
    chain.seal_all()
    forge("DELETE FROM exchanges_auditentry WHERE seq = 3")
    status, output = verify_audit()
    assert status == 1 and "the recorded head is #3 but the chain ends at #2: entry #3 is missing" in output
    forge("DELETE FROM exchanges_auditentry")
    status, output = verify_audit()
    assert status == 1 and "the recorded head is #3 but the chain ends at #0: entries #1 to #3 are missing" in output


def test_a_rewritten_chain_fails_against_a_head_kept_elsewhere(ukraine):
    """Someone who edits an entry and recomputes every hash after it, and the head, leaves a
    chain that is consistent in itself: only a head copied out earlier shows it."""
    write_entries(ukraine, 3)
    chain.seal_all()
    anchored = head()
    write_entries(ukraine, 2)
    chain.seal_all()
    assert verify_audit("--expect-head", anchored)[0] == 0  # the chain still passes through it
    forge("UPDATE exchanges_auditentry SET actor_label = 'someone else' WHERE seq = 2")
    previous = AuditEntry.objects.get(seq=1).hash
    for entry in AuditEntry.objects.filter(seq__gte=2).order_by("seq"):
        previous = chain.link(previous, chain.AUDIT, entry.seq, [getattr(entry, name) for name in chain.AUDIT.fields])
        forge("UPDATE exchanges_auditentry SET hash = %s WHERE id = %s", [previous, entry.pk])
    forge("UPDATE exchanges_trailhead SET hash = %s WHERE chain = 'audit'", [previous])
    assert verify_audit()[0] == 0
    status, output = verify_audit("--expect-head", anchored)
    assert status == 1 and "entry #3 is not the anchored 3:" in output and "the chain was rewritten" in output


def test_an_anchor_beyond_the_end_means_entries_were_removed(ukraine):
    write_entries(ukraine, 3)
    chain.seal_all()
    anchored = head()
    forge("DELETE FROM exchanges_auditentry WHERE seq = 3")
    forge("UPDATE exchanges_trailhead SET seq = 2, hash = (SELECT hash FROM exchanges_auditentry WHERE seq = 2) WHERE chain = 'audit'")
    status, output = verify_audit("--expect-head", anchored)
    assert status == 1 and "the anchored head #3 lies beyond the end of the chain (#2)" in output
    assert verify_audit("--expect-head", "audit:3:nothex")[1].startswith("--expect-head 'audit:3:nothex' is not CHAIN:SEQ:HASH")


def test_entries_left_unsealed_are_reported_until_sealed(ukraine):
    write_entries(ukraine, 2)
    AuditEntry.objects.create(
        occurred_at=timezone.now() - datetime.timedelta(hours=1), action="read", model="exchanges.negotiation", object_id="1",
        object_repr="NEG-2024-0001", actor_type="system", actor_label="system",
    )
    status, output = verify_audit()
    assert status == 1 and "1 entries older than 10 minutes are not sealed yet" in output
    status, output = verify_audit("--seal")
    assert status == 0 and "Sealed 3 audit, 0 access entries." in output and "audit trail: intact, 3 entries sealed." in output


def test_the_stall_scans_bulk_entries_are_sealed_by_the_beat_task(client, staff_user, confidential):
    from tracker.services import scan_stalls

    client.force_login(staff_user)
    when = (timezone.now() - datetime.timedelta(days=40)).strftime("%Y-%m-%d %H:%M:%S")
    client.post(f"/admin/exchanges/negotiation/{confidential.pk}/change-status/", {"to_status": "in_talks", "occurred_at": when})
    scan_stalls()
    assert AuditEntry.objects.filter(model="tracker.flag", seq__isnull=True).exists()
    seal_trail()
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()
    assert verify_audit()[0] == 0


def test_the_sealer_stops_at_a_tampered_end_without_failing_writes(ukraine, caplog, django_capture_on_commit_callbacks):
    for number in range(2):  # written directly: a seal of them is not already due after this test's transaction
        AuditEntry.objects.create(action="read", model="exchanges.party", object_id=str(number), object_repr="UA", actor_type="system", actor_label="system")
    chain.seal_all()
    forge("DELETE FROM exchanges_auditentry WHERE seq = 2")
    with caplog.at_level(logging.ERROR, logger="exchanges.chain"), django_capture_on_commit_callbacks(execute=True):
        write_entries(ukraine, 1)
    assert "Not sealing the audit trail: The audit trail ends at #1" in caplog.text
    assert AuditEntry.objects.filter(seq__isnull=True).count() == 1  # written, left unsealed
    with pytest.raises(chain.ChainBroken):
        seal_trail()


def test_the_chain_covers_every_column_of_its_entries():
    for each in chain.CHAINS:
        columns = {field.attname for field in each.model._meta.concrete_fields} - {"seq", "hash"}
        assert columns == set(each.fields), f"add new columns of {each.model.__name__} to chain.{each.name.upper()}.fields"


def test_the_canonical_form_is_pinned_on_every_database():
    """The same entry hashes to the same bytes whether it was read back from PostgreSQL or
    SQLite (the suite runs on both): times in UTC, keys sorted, text escaped to ASCII."""
    kyiv = datetime.timezone(datetime.timedelta(hours=2))
    AuditEntry.objects.create(
        id=424242, occurred_at=datetime.datetime(2024, 3, 1, 12, 30, 5, 123456, tzinfo=kyiv), action="update",
        model="exchanges.negotiation", object_id="7", object_repr="Обмін «всіх на всіх»",
        negotiation_id=uuid.UUID("12345678-1234-5678-1234-567812345678"), actor_type="staff", actor_id="3",
        actor_label="olena", channel="admin", request_id="req-1", changes={"title": ["a", "b"], "priority": [None, 2]},
    )
    AccessLogEntry.objects.create(
        id=434343, occurred_at=datetime.datetime(2024, 3, 1, 10, 0, tzinfo=datetime.timezone.utc), user_id=3,
        user_label="olena", negotiation_id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        negotiation_repr="NEG-2024-0007", address="2001:db8::1", channel="page", request_id="",
    )
    chain.seal_all()
    expected_audit = (
        b'{"action":"update","actor_id":"3","actor_label":"olena","actor_type":"staff","chain":"audit","changes":'
        b'{"priority":[null,2],"title":["a","b"]},"channel":"admin","id":424242,"model":"exchanges.negotiation",'
        b'"negotiation_id":"12345678-1234-5678-1234-567812345678","object_id":"7","object_repr":'
        b'"\\u041e\\u0431\\u043c\\u0456\\u043d \\u00ab\\u0432\\u0441\\u0456\\u0445 \\u043d\\u0430 \\u0432\\u0441\\u0456\\u0445\\u00bb",'
        b'"occurred_at":"2024-03-01T10:30:05.123456+00:00","request_id":"req-1","seq":1}'
    )
    expected_access = (
        b'{"address":"2001:db8::1","chain":"access","channel":"page","id":434343,"negotiation_id":'
        b'"12345678-1234-5678-1234-567812345678","negotiation_repr":"NEG-2024-0007","occurred_at":'
        b'"2024-03-01T10:00:00.000000+00:00","request_id":"","seq":1,"user_id":3,"user_label":"olena"}'
    )
    assert AuditEntry.objects.get(id=424242).hash == hashlib.sha256(b"0" * 64 + expected_audit).hexdigest()
    assert AccessLogEntry.objects.get(id=434343).hash == hashlib.sha256(b"0" * 64 + expected_access).hexdigest()


@postgres_only
def test_the_trigger_lets_the_chain_columns_be_filled_once_and_nothing_else(ukraine):
    write_entries(ukraine, 1)
    entry = AuditEntry.objects.get()
    refused = [
        ("UPDATE exchanges_auditentry SET seq = 1, hash = %s, actor_label = 'forged' WHERE id = %s", ["a" * 64, entry.pk]),
        ("UPDATE exchanges_auditentry SET seq = 1 WHERE id = %s", [entry.pk]),
    ]
    for statement, params in refused:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    chain.seal_all()
    for statement, params in [
        ("UPDATE exchanges_auditentry SET hash = %s WHERE id = %s", ["b" * 64, entry.pk]),
        ("UPDATE exchanges_auditentry SET seq = NULL, hash = NULL WHERE id = %s", [entry.pk]),
        ("UPDATE exchanges_trailhead SET seq = 0 WHERE chain = 'audit'", []),
        ("DELETE FROM exchanges_trailhead", []),
    ]:
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    assert verify_audit()[0] == 0


@postgres_only
def test_a_sealer_never_waits_for_another(ukraine):
    write_entries(ukraine, 2)
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"], password=settings["PASSWORD"] or None,
        dbname=settings["NAME"], autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [chain.AUDIT.lock])
        started = time.monotonic()
        assert chain.seal(chain.AUDIT) == 0
        assert time.monotonic() - started < 1
        # Released by a statement the server answers: close() alone returns before the
        # backend has let go of the lock, and the next seal could still find it taken.
        other.execute("SELECT pg_advisory_unlock(%s)", [chain.AUDIT.lock])
    finally:
        other.close()
    assert chain.seal(chain.AUDIT) == 2
