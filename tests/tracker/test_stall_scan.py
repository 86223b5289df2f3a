"""The stall scan: thresholds by priority, Art. 109, deadlines, escalation, resolution."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchanges import services as record
from tests.factories import DetaineeGroupFactory, NegotiationFactory
from tracker.models import Flag, ScanRun, StallRule
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db


def silent(days, **fields):
    """A negotiation whose last activity was `days` ago (an event then)."""
    negotiation = NegotiationFactory(opened_on=timezone.localdate() - timedelta(days=days + 1), **fields)
    record.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=timezone.now() - timedelta(days=days), summary="last word")
    return negotiation


def open_flags(negotiation=None):
    flags = Flag.objects.filter(resolved_at__isnull=True)
    if negotiation is not None:
        flags = flags.filter(negotiation=negotiation)
    return {(flag.negotiation_id, flag.kind, flag.level) for flag in flags}


@pytest.mark.parametrize(
    "priority,days,level",
    [
        ("urgent", 6, None), ("urgent", 7, "overdue"), ("urgent", 14, "very_overdue"),
        ("high", 13, None), ("high", 14, "overdue"), ("high", 28, "very_overdue"),
        ("routine", 29, None), ("routine", 30, "overdue"), ("routine", 60, "very_overdue"),
    ],
)
def test_no_activity_thresholds_by_priority(priority, days, level):
    negotiation = silent(days, priority=priority)
    scan_stalls()
    expected = {(negotiation.pk, "no_activity", level)} if level else set()
    assert open_flags(negotiation) == expected
    negotiation.refresh_from_db()
    assert negotiation.stalled is bool(level)
    assert (negotiation.stalled_since is not None) is bool(level)


def test_a_negotiation_covering_seriously_wounded_is_held_to_urgent_thresholds():
    wounded = DetaineeGroupFactory(estimated_count=265, seriously_wounded_count=52)
    unhurt = DetaineeGroupFactory(estimated_count=40, seriously_wounded_count=0)
    art_109 = silent(8, priority="routine", groups=[wounded])
    ordinary = silent(8, priority="routine", groups=[unhurt])
    scan_stalls()
    assert open_flags(art_109) == {(art_109.pk, "no_activity", "overdue")}
    assert open_flags(ordinary) == set()


def test_final_statuses_are_never_stalled():
    negotiation = silent(100, priority="urgent")
    record.negotiation_change_status(negotiation=negotiation, to_status="rejected", actor=None, occurred_at=timezone.now() - timedelta(days=90))
    scan_stalls()
    assert open_flags(negotiation) == set()


def test_a_missed_next_step_is_overdue_the_day_after_and_very_overdue_a_week_after():
    today = timezone.localdate()
    on_time = NegotiationFactory(opened_on=today, next_step_due=today)
    day_after = NegotiationFactory(opened_on=today, next_step_due=today - timedelta(days=1))
    week_after = NegotiationFactory(opened_on=today, next_step_due=today - timedelta(days=7))
    scan_stalls()
    assert open_flags() == {(day_after.pk, "deadline_missed", "overdue"), (week_after.pk, "deadline_missed", "very_overdue")}
    assert Flag.objects.get(negotiation=week_after).due_on == week_after.next_step_due
    assert not Flag.objects.filter(negotiation=on_time).exists()


def test_an_overdue_flag_escalates_rather_than_a_second_one_opening():
    negotiation = silent(8, priority="urgent")
    scan_stalls()
    flag = Flag.objects.get(negotiation=negotiation)
    summary = scan_stalls(now=timezone.now() + timedelta(days=7))
    assert summary["escalated"] == 1 and summary["raised"] == 0
    flag.refresh_from_db()
    assert flag.level == "very_overdue" and flag.escalated_at is not None
    assert Flag.objects.filter(negotiation=negotiation).count() == 1


def test_new_activity_resolves_the_flag_at_once_and_unstalls():
    negotiation = silent(40, priority="routine")
    scan_stalls()
    record.event_create(negotiation=negotiation, actor=None, kind="statement", occurred_at=timezone.now(), summary="talks resume")
    flag = Flag.objects.get(negotiation=negotiation)
    assert flag.resolution == "activity" and flag.resolved_at is not None
    assert flag.days_silent >= 40
    negotiation.refresh_from_db()
    assert negotiation.stalled is False and negotiation.stalled_since is None


def test_an_event_recorded_today_but_held_long_ago_does_not_resolve_the_flag():
    negotiation = silent(40, priority="routine")
    scan_stalls()
    record.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=timezone.now() - timedelta(days=35), summary="late report")
    assert open_flags(negotiation) == {(negotiation.pk, "no_activity", "overdue")}


def test_moving_the_deadline_resolves_the_deadline_flag():
    today = timezone.localdate()
    negotiation = NegotiationFactory(opened_on=today, next_step_due=today - timedelta(days=2))
    scan_stalls()
    record.negotiation_update(negotiation=negotiation, actor=None, next_step_due=today + timedelta(days=5))
    flag = Flag.objects.get(negotiation=negotiation)
    assert flag.resolution == "deadline_moved"


def test_ending_the_negotiation_resolves_its_flags():
    negotiation = silent(40, priority="routine", next_step_due=timezone.localdate() - timedelta(days=3))
    scan_stalls()
    assert len(open_flags(negotiation)) == 2
    record.negotiation_change_status(negotiation=negotiation, to_status="collapsed", actor=None, occurred_at=timezone.now() - timedelta(days=39))
    assert open_flags(negotiation) == set()
    assert set(Flag.objects.filter(negotiation=negotiation).values_list("resolution", flat=True)) == {"ended"}


def test_running_the_scan_twice_leaves_exactly_the_same_flags():
    for days, priority in ((8, "urgent"), (20, "high"), (70, "routine"), (3, "urgent")):
        silent(days, priority=priority)
    first = scan_stalls()
    state = {(f.pk, f.level, f.resolved_at) for f in Flag.objects.all()}
    second = scan_stalls()
    assert first["raised"] == 3
    assert second == {"raised": 0, "escalated": 0, "deescalated": 0, "resolved": 0, "open": 3}
    assert {(f.pk, f.level, f.resolved_at) for f in Flag.objects.all()} == state


def test_stall_rules_edited_by_staff_take_effect():
    negotiation = silent(10, priority="routine")
    scan_stalls()
    assert open_flags(negotiation) == set()
    StallRule.objects.update_or_create(key="routine", defaults={"overdue_days": 5, "very_overdue_days": 9})
    scan_stalls()
    assert open_flags(negotiation) == {(negotiation.pk, "no_activity", "very_overdue")}


def test_the_scan_runs_a_fixed_number_of_statements_however_many_negotiations(django_assert_max_num_queries):
    for days in range(30, 60):
        silent(days, priority="high")
    # Four flag kinds, each a handful of set-based statements, whatever the number of rows
    # (SQLite raises each kind's flags in three statements where PostgreSQL uses one).
    with django_assert_max_num_queries(45):
        scan_stalls()
    assert len(open_flags()) == 30
    with django_assert_max_num_queries(45):
        scan_stalls(now=timezone.now() + timedelta(days=90))


def test_a_scan_after_a_scan_looks_only_at_what_may_have_changed(settings):
    settings.TRACKER_FULL_SCAN_SECONDS = 30 * 86400
    quiet = silent(10, priority="urgent")
    scan_stalls()
    assert ScanRun.objects.get().full is True
    crossing = silent(6, priority="urgent")  # crosses the 7-day threshold tomorrow
    summary = scan_stalls(now=timezone.now() + timedelta(days=1, hours=1))
    run = ScanRun.objects.order_by("-as_of").first()
    assert run.full is False and run.examined >= 1
    assert summary["raised"] == 1 and open_flags(crossing) == {(crossing.pk, "no_activity", "overdue")}
    assert open_flags(quiet) == {(quiet.pk, "no_activity", "overdue")}


def test_an_incremental_scan_sees_a_priority_raised_since_the_last_scan():
    negotiation = silent(10, priority="routine")
    scan_stalls()
    assert open_flags(negotiation) == set()
    record.negotiation_update(negotiation=negotiation, actor=None, priority="urgent")
    scan_stalls(now=timezone.now() + timedelta(minutes=5))
    assert ScanRun.objects.order_by("-as_of").first().full is False
    assert open_flags(negotiation) == {(negotiation.pk, "no_activity", "overdue")}


def test_an_incremental_scan_sees_seriously_wounded_reported_in_a_covered_group():
    group = DetaineeGroupFactory(seriously_wounded_count=0)
    negotiation = silent(10, priority="routine", groups=[group])
    scan_stalls()
    assert open_flags(negotiation) == set()
    record.detainee_group_update(group=group, actor=None, seriously_wounded_count=3)
    scan_stalls(now=timezone.now() + timedelta(minutes=5))
    assert open_flags(negotiation) == {(negotiation.pk, "no_activity", "overdue")}


def test_an_incremental_scan_catches_a_deadline_passing_and_escalating(settings):
    settings.TRACKER_FULL_SCAN_SECONDS = 30 * 86400
    today = timezone.localdate()
    negotiation = NegotiationFactory(opened_on=today, next_step_due=today)
    scan_stalls()
    assert open_flags(negotiation) == set()
    scan_stalls(now=timezone.now() + timedelta(days=1))
    assert open_flags(negotiation) == {(negotiation.pk, "deadline_missed", "overdue")}
    scan_stalls(now=timezone.now() + timedelta(days=7))
    assert open_flags(negotiation) == {(negotiation.pk, "deadline_missed", "very_overdue")}
    assert list(ScanRun.objects.order_by("as_of").values_list("full", flat=True)) == [True, False, False]


def test_a_full_scan_runs_when_rules_change_when_asked_and_daily(settings):
    silent(3, priority="routine")
    scan_stalls()
    StallRule.objects.update_or_create(key="routine", defaults={"overdue_days": 2, "very_overdue_days": 9})
    scan_stalls(now=timezone.now() + timedelta(minutes=1))
    scan_stalls(now=timezone.now() + timedelta(minutes=2), full=True)
    scan_stalls(now=timezone.now() + timedelta(minutes=3))
    scan_stalls(now=timezone.now() + timedelta(days=2))
    assert list(ScanRun.objects.order_by("as_of").values_list("full", flat=True)) == [True, True, True, False, True]
    assert len(open_flags()) == 1


def test_an_incremental_scan_with_nothing_to_do_reads_a_handful_of_statements(django_assert_max_num_queries):
    for days in range(30, 60):
        silent(days, priority="high")
    scan_stalls()
    with django_assert_max_num_queries(14):  # lock, rules, last run, 3 lookups, record the run...
        summary = scan_stalls(now=timezone.now() + timedelta(seconds=1))
    assert summary == {"raised": 0, "escalated": 0, "deescalated": 0, "resolved": 0, "open": 30}


def test_the_open_count_stays_exact_without_counting_when_only_scans_changed_flags():
    """An incremental scan carries the last run's open count forward by what it changed;
    a flag written outside the scans since (activity, staff) makes it count again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    quiet = [silent(days, priority="high") for days in (20, 40, 45)]
    assert scan_stalls()["open"] == 3
    yesterday = timezone.localdate() - timedelta(days=1)
    due = NegotiationFactory(opened_on=yesterday, next_step_due=yesterday)  # written since: in scope
    with CaptureQueriesContext(connection) as queries:
        summary = scan_stalls()
    assert summary["raised"] == 1 and summary["open"] == 4 == len(open_flags())
    assert ScanRun.objects.order_by("-as_of").first().full is False
    assert not any("COUNT(" in query["sql"] for query in queries.captured_queries)
    record.event_create(negotiation=quiet[1], actor=None, kind="meeting", occurred_at=timezone.now(), summary="talks resumed")
    assert scan_stalls()["open"] == 3 == len(open_flags())  # resolved when the event was recorded
    Flag.objects.filter(negotiation=due).update(resolved_at=timezone.now(), resolution="activity", updated_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        assert scan_stalls()["open"] == 2 == len(open_flags())
    assert any("COUNT(" in query["sql"] for query in queries.captured_queries)


def test_every_flag_change_of_a_scan_is_in_the_audit_trail_as_the_flag_itself_reads():
    from exchanges import audit
    from exchanges.models import AuditEntry

    today = timezone.localdate()
    late = NegotiationFactory(opened_on=today - timedelta(days=40), next_step_due=today - timedelta(days=3))
    scan_stalls()
    raised = {flag.pk: flag for flag in Flag.objects.all()}
    assert {flag.kind for flag in raised.values()} == {"no_activity", "deadline_missed"}
    for flag in raised.values():
        entry = AuditEntry.objects.get(model="tracker.flag", object_id=str(flag.pk))
        assert (entry.action, entry.negotiation_id, entry.actor_label) == ("create", late.pk, "system")
        assert entry.object_repr == str(flag)
        assert entry.changes == audit.diff({}, audit.snapshot(flag))
    later = timezone.now() + timedelta(days=30)
    scan_stalls(now=later)  # both escalate
    escalations = AuditEntry.objects.filter(model="tracker.flag", action="update")
    assert sorted(entry.changes["level"] for entry in escalations) == [["overdue", "very_overdue"]] * 2
    record.negotiation_change_status(negotiation=late, to_status="rejected", actor=None)
    resolved = AuditEntry.objects.filter(model="tracker.flag", action="update", changes__has_key="resolution")
    assert sorted(entry.changes["resolution"] for entry in resolved) == [["", "ended"]] * 2
