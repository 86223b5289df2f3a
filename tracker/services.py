"""The stall tracker's writes: the scan and flag resolution (acknowledgement, webhook
subscriptions and stall rules are in `writes`, re-exported here).

The scan is set-based: a handful of UPDATE and INSERT statements whatever the number of
negotiations, each idempotent, so it is safe to run twice, late, or concurrently (a
PostgreSQL advisory lock makes a concurrent scan wait and then find nothing to do; the
partial unique index on open flags is the last word either way).
"""
import itertools
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, CharField, Exists, OuterRef, Q, Value, When
from django.utils import timezone

from exchanges import audit, changes
from exchanges.choices import AGREED_STATUSES, FINAL, OPEN
from exchanges.models import AuditEntry, CoveredGroup, Negotiation
from exchanges.tasks import seal_trail_soon

from . import notify
from .conditions import conditions, gap_passed_between
from .choices import FlagKind, FlagLevel, Resolution, RuleKey
from .models import DEFAULT_RHYTHM, DEFAULT_RULES, Flag, ScanRun, StallRule

SCAN_LOCK_KEY = 7_310_109  # any constant shared by every scanner


def stall_rules():
    """`{key: (overdue_days, very_overdue_days)}`, the defaults filling any missing row;
    and under `rhythm_parameters` the rhythm rule's (times its usual gap, activities needed)."""
    rules = dict(DEFAULT_RULES)
    rules["rhythm_parameters"] = DEFAULT_RHYTHM
    for rule in StallRule.objects.all():
        rules[rule.key] = (rule.overdue_days, rule.very_overdue_days)
        if rule.key == RuleKey.RHYTHM:
            rules["rhythm_parameters"] = (rule.gap_multiplier, rule.min_activities)
    return rules


def _open_negotiations(negotiation_ids=None):
    queryset = Negotiation.objects.filter(status__in=OPEN)
    if negotiation_ids is not None:
        queryset = queryset.filter(pk__in=negotiation_ids)
    return queryset


def _lock_scan():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SCAN_LOCK_KEY])


def _resolve(open_flags, *, kind, still_due, now):
    """Resolve open flags whose reason has gone; returns how many."""
    resolved = open_flags.filter(negotiation__status__in=FINAL).update(
        resolved_at=now, resolution=Resolution.ENDED, updated_at=now
    )
    reason = {
        FlagKind.DEADLINE_MISSED: Resolution.DEADLINE_MOVED,
        FlagKind.WOUNDED_WAITING: Resolution.WOUNDED_RELEASED,
    }.get(kind, Resolution.ACTIVITY)
    resolved += open_flags.exclude(_for_negotiations_in(still_due)).update(
        resolved_at=now, resolution=reason, updated_at=now
    )
    return resolved


def _for_negotiations_in(negotiations):
    """Flags whose negotiation is in `negotiations`, as EXISTS: negated, PostgreSQL plans an
    anti-join, where NOT IN over a large set falls back to a per-row subplan."""
    return Exists(negotiations.filter(pk=OuterRef("negotiation_id")))


def _sync_stalled(now, negotiation_ids=None):
    """`stalled` follows the open flags; `stalled_since` is when it became stalled."""
    scope = Negotiation.objects.all() if negotiation_ids is None else Negotiation.objects.filter(pk__in=negotiation_ids)
    open_flags = Flag.objects.filter(negotiation=OuterRef("pk"), resolved_at__isnull=True)
    # Unmarking first: it looks at the negotiations stalled before this scan only (none at
    # a first scan), where after marking it would check every one just marked (1.0 s for
    # 148,000 at a million).
    scope.filter(stalled=True).exclude(Exists(open_flags)).update(stalled=False, stalled_since=None, updated_at=now)
    scope.filter(stalled=False).filter(Exists(open_flags)).update(stalled=True, stalled_since=now, updated_at=now)


@transaction.atomic
def scan_stalls(*, now=None, full=False):
    """Raise, escalate and resolve flags; return what changed.

    Incremental when it can be (see `ScanRun`): only the negotiations that crossed a
    threshold since the last scan, or were written since, are looked at, so a scan with
    nothing to do costs a few index lookups whatever the number of negotiations.
    """
    started = time.monotonic()
    now = now or timezone.now()
    _lock_scan()
    rules = stall_rules()
    last = ScanRun.objects.order_by("-as_of", "-id").first()
    written = None if full or last is None else _written_since(last, now)
    scope = None if written is None else _incremental_scope(now, rules, last, written)
    if scope is None and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A full pass joins, sorts and hashes hundreds of thousands of rows, beyond the
            # default 4 MB (which sent the audit entries' plan to disk at a million).
            cursor.execute("SET LOCAL work_mem = %s", [SCAN_WORK_MEM])
    summary = _scan(now=now, rules=rules, scope=scope)
    summary["open"] = _open_count(scope, summary, last, written)
    if _many(summary):
        _analyze(Negotiation._meta.db_table)  # which are stalled now
    ScanRun.objects.create(
        as_of=now,
        full=scope is None,
        examined=None if scope is None else len(scope),
        summary=summary,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    ScanRun.objects.filter(as_of__lt=now - SCAN_RUN_RETENTION).delete()
    transaction.on_commit(changes.seal_all)  # what others wrote meanwhile (and elsewhere than PostgreSQL, its own)
    if _many(summary):
        transaction.on_commit(seal_trail_soon)  # chain its audit entries, in a worker
    return summary


SCAN_RUN_RETENTION = timedelta(days=30)
ANALYZE_AFTER = 5_000
SCAN_WORK_MEM = "64MB"


def _many(summary):
    """Thousands of flags appeared or closed at once (a first scan over an existing record):
    the planner's statistics are refreshed now rather than when autovacuum gets round to
    it, or the next statements plan their joins and anti-joins for the empty table it last
    saw (the audit entries of 225,000 flags: 4.1 s with stale statistics, 2.9 s fresh)."""
    return summary["raised"] + summary["resolved"] >= ANALYZE_AFTER and connection.vendor == "postgresql"


def _analyze(table):
    """ANALYZE `table`. Only its owner may, and the application connects as a role that owns
    nothing (`grant_app_role`), where a plain ANALYZE is skipped with a warning; so it goes
    through `tracker_analyze()`, which that command creates to run it as the owner. Without
    the function, or leave to run it: a plain ANALYZE (the owner's, or a warning)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(has_function_privilege(to_regprocedure('public.tracker_analyze(text)'), 'EXECUTE'), false)"
        )
        if cursor.fetchone()[0]:
            cursor.execute("SELECT public.tracker_analyze(%s)", [table])
        else:
            cursor.execute(f'ANALYZE "{table}"')


#: Writes stamped before a scan's "now" may commit after it read the table; look back this far.
SCAN_OVERLAP = timedelta(minutes=10)
#: Beyond this many negotiations to look at, one full pass is cheaper than a long id list
#: (measured: 10,000 ids made each of the scan's statements cost about 200 ms).
INCREMENTAL_LIMIT = 2_000


def _incremental_scope(now, rules, last, written):
    """The ids of the negotiations an incremental scan must look at, or None for a full scan."""
    if now <= last.as_of:
        return None
    if not ScanRun.objects.filter(full=True, as_of__gt=now - timedelta(seconds=settings.TRACKER_FULL_SCAN_SECONDS)).exists():
        return None
    if StallRule.objects.filter(updated_at__gt=last.as_of).exists():
        return None
    crossed = Q()
    for days in sorted({rules[key][index] for key in ("urgent", "high", "routine") for index in (0, 1)}):
        crossed |= Q(last_activity_at__gt=last.as_of - timedelta(days=days), last_activity_at__lte=now - timedelta(days=days))
    for days in sorted(set(rules["deadline"])):
        crossed |= Q(
            next_step_due__gt=last.as_of.date() - timedelta(days=days), next_step_due__lte=now.date() - timedelta(days=days)
        )
    for days in sorted(set(rules["wounded"])):
        crossed |= Q(
            status__in=AGREED_STATUSES,
            agreed_at__gt=last.as_of - timedelta(days=days),
            agreed_at__lte=now - timedelta(days=days),
        )
    # Off its rhythm: the silence crossed its multiple of the usual gap since the last run
    # (or one of the rule's days, while beyond that multiple).
    times, needed = rules["rhythm_parameters"]
    for factor, days in zip((1, 2), rules["rhythm"]):
        crossed |= (
            Q(activity_count__gte=needed, usual_gap__isnull=False, last_activity_at__lte=now - timedelta(days=days))
            & gap_passed_between(last.as_of, now, times * factor)
        )
        crossed |= Q(
            activity_count__gte=needed,
            last_activity_at__gt=last.as_of - timedelta(days=days),
            last_activity_at__lte=now - timedelta(days=days),
        )
    since = last.as_of - SCAN_OVERLAP
    sources = [
        _open_negotiations().filter(crossed).order_by().values_list("pk", flat=True),
        Negotiation.objects.filter(written).order_by().values_list("pk", flat=True),
        CoveredGroup.objects.filter(group__updated_at__gt=since).order_by().values_list("negotiation_id", flat=True),
    ]
    scope = set()
    for ids in sources:
        scope.update(ids[: INCREMENTAL_LIMIT + 1])
        if len(scope) > INCREMENTAL_LIMIT:
            return None
    return sorted(scope)


def _written_since(last, now):
    """A Q of rows written since the last run (and SCAN_OVERLAP before it), for negotiations
    and flags alike. The scans' own writes carry exactly their "now" and are not news:
    index ranges between those instants skip them (a full scan may have stamped 200,000 rows)."""
    since = last.as_of - SCAN_OVERLAP
    stamps = sorted({*ScanRun.objects.filter(as_of__gt=since).values_list("as_of", flat=True), now})
    written, lower = Q(), since
    for stamp in stamps:
        written |= Q(updated_at__gt=lower, updated_at__lt=stamp)
        lower = stamp
    return written | Q(updated_at__gt=lower)


def _scan(*, now, rules, scope):
    """The scan over every negotiation (`scope` None) or over the negotiations in `scope`."""
    summary = {"raised": 0, "escalated": 0, "deescalated": 0, "resolved": 0}
    if scope is not None and not scope:
        return summary
    for kind in FlagKind:
        overdue_q, very_q = conditions(kind, rules, now, few=scope is not None)
        candidates = _open_negotiations(scope)
        overdue = candidates.filter(overdue_q)
        very = candidates.filter(very_q)
        open_flags = Flag.objects.filter(kind=kind, resolved_at__isnull=True)
        if scope is not None:
            open_flags = open_flags.filter(negotiation_id__in=scope)
        summary["resolved"] += _resolve(open_flags, kind=kind, still_due=overdue, now=now)
        summary["escalated"] += open_flags.filter(level=FlagLevel.OVERDUE).filter(_for_negotiations_in(very)).update(
            level=FlagLevel.VERY_OVERDUE, escalated_at=now, updated_at=now
        )
        summary["deescalated"] += open_flags.filter(level=FlagLevel.VERY_OVERDUE).exclude(
            _for_negotiations_in(very)
        ).update(level=FlagLevel.OVERDUE, updated_at=now)
        new = overdue.exclude(Exists(Flag.objects.filter(negotiation=OuterRef("pk"), kind=kind, resolved_at__isnull=True)))
        summary["raised"] += _raise(new, kind=kind, very_q=very_q, now=now)
    if _many(summary):
        _analyze(Flag._meta.db_table)
    _sync_stalled(now, scope)
    _after_flag_changes(now=now, negotiation_ids=scope, numbered=True)
    return summary


def _open_count(scope, summary, last, written):
    """How many flags are open after this scan. A full scan counts them. An incremental
    scan carries the last run's count forward by what it raised and resolved, unless a
    flag was written outside the scans since (a write-time resolution, an
    acknowledgement, staff in the admin): then it counts too. Counting 200,000 open flags
    was 35-50 ms of a 40-65 ms scan with nothing to do at a million negotiations."""
    counted = Flag.objects.filter(resolved_at__isnull=True)
    if scope is None or not isinstance(last.summary.get("open"), int) or Flag.objects.filter(written).exists():
        return counted.count()
    return last.summary["open"] + summary["raised"] - summary["resolved"]


def _raise(new, *, kind, very_q, now):
    """Open a flag for each negotiation in `new`; returns how many were opened.

    On PostgreSQL one INSERT ... SELECT, so raising 200,000 flags holds none of them in
    memory; the partial unique index (ON CONFLICT DO NOTHING) has the last word on races.
    """
    deadline = kind == FlagKind.DEADLINE_MISSED
    if connection.vendor == "postgresql":
        rows = new.annotate(
            flag_level=Case(
                When(very_q, then=Value(FlagLevel.VERY_OVERDUE.value)),
                default=Value(FlagLevel.OVERDUE.value),
                output_field=CharField(),
            )
        ).values_list("pk", "last_activity_at", "next_step_due", "flag_level")
        select, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Flag._meta.db_table} "
                "(id, created_at, updated_at, negotiation_id, silent_since, due_on, level, kind, raised_at, resolution) "
                f"SELECT gen_random_uuid(), %s, %s, new.pk, new.silent, {'new.due' if deadline else 'NULL'}, new.level, %s, %s, '' "
                f"FROM ({select}) AS new (pk, silent, due, level) ON CONFLICT DO NOTHING",
                [now, now, kind.value, now, *params],
            )
            return cursor.rowcount
    very_ids = set(new.filter(very_q).values_list("pk", flat=True))
    rows = [
        Flag(
            negotiation_id=pk,
            kind=kind,
            level=FlagLevel.VERY_OVERDUE if pk in very_ids else FlagLevel.OVERDUE,
            raised_at=now,
            silent_since=last_activity_at,
            due_on=due if deadline else None,
        )
        for pk, last_activity_at, due in new.values_list("pk", "last_activity_at", "next_step_due")
    ]
    Flag.objects.bulk_create(rows, ignore_conflicts=True)
    if not rows:
        return 0
    # Stamped with the scan's "now", as the INSERT above does (auto_now wrote the clock's):
    # the next incremental scan tells the scans' writes from others' by that stamp.
    return Flag.objects.filter(kind=kind, raised_at=now).update(created_at=now, updated_at=now)


def resolve_flags_for(negotiation, *, now=None):
    """Resolve at once the flags a write made untrue (activity, a new due date, an ending).

    Raising and escalating wait for the scan, so replaying a back-dated history does not
    flag and unflag each step on the way.
    """
    now = now or timezone.now()
    open_flags = Flag.objects.filter(negotiation=negotiation, resolved_at__isnull=True)
    if not open_flags.exists():
        return 0
    rules = stall_rules()
    resolved = 0
    for kind in FlagKind:
        overdue_q, _very = conditions(kind, rules, now, few=True)
        still_due = _open_negotiations([negotiation.pk]).filter(overdue_q)
        resolved += _resolve(open_flags.filter(kind=kind), kind=kind, still_due=still_due, now=now)
    if resolved:
        _sync_stalled(now, [negotiation.pk])
        _after_flag_changes(now=now, negotiation_ids=[negotiation.pk])
    return resolved


AFTER_BATCH = 2000


def _after_flag_changes(*, now, negotiation_ids=None, numbered=False):
    """Audit and notify every flag raised, escalated or resolved at `now`, in batches so a
    scan that changes 200,000 flags needs no more memory than one that changes 2,000.

    On PostgreSQL the audit entries are one INSERT ... SELECT, and flags are read into
    Python only if someone is listening for the notifications.
    """
    changed = Flag.objects.filter(Q(raised_at=now) | Q(escalated_at=now) | Q(resolved_at=now))
    if negotiation_ids is not None:
        changed = changed.filter(negotiation__in=negotiation_ids)
    context = audit.current_context()
    in_sql = connection.vendor == "postgresql"
    if in_sql:
        _audit_in_sql(now=now, negotiation_ids=negotiation_ids, context=context)
    if not in_sql or notify.anyone_listening(negotiation_ids):
        flags = changed.select_related("negotiation").order_by("pk").iterator(chunk_size=AFTER_BATCH)
        while batch := list(itertools.islice(flags, AFTER_BATCH)):
            if not in_sql:
                _audit(batch, now=now, context=context)
            notify.flags_changed(batch, now=now)
    # The change log (`exchanges.changes`): every flag and negotiation the scan wrote
    # carries its "now" in updated_at. Last, as the scan numbers them in its transaction
    # and holds the feed's numbering from then until it commits.
    written_flags, stalled = Flag.objects.filter(updated_at=now), Negotiation.objects.filter(updated_at=now)
    if negotiation_ids is not None:
        written_flags, stalled = written_flags.filter(negotiation__in=negotiation_ids), stalled.filter(pk__in=negotiation_ids)
    numbered = numbered and changes.number_from_here()
    changes.record_rows("flag", written_flags, at=now, created_q=Q(raised_at=now), numbered=numbered)
    changes.record_rows("negotiation", stalled, at=now, numbered=numbered)


def _iso_sql(column):
    """SQL rendering a timestamptz the way Python's isoformat() renders it in UTC (for a
    statement run with parameters, hence the doubled %)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_part('microseconds', {utc})::bigint %% 1000000 = 0 "
        f"THEN '' ELSE to_char({utc}, '.US') END || '+00:00'"
    )


def _audit_in_sql(*, now, negotiation_ids, context):
    """The same entries `_audit` writes, as one statement over the flags changed at `now`
    (of `negotiation_ids`, or all): read where they are, not as `id IN` a second read of
    the same table (a hash join of 225,000 flags against themselves at a first scan)."""
    def labels(choices, column):
        cases = " ".join("WHEN %s THEN %s" for _choice in choices)
        return f"CASE {column} {cases} END", [item for value, label in choices.choices for item in (value, str(label))]

    kind_sql, kind_params = labels(FlagKind, "f.kind")
    level_sql, level_params = labels(FlagLevel, "f.level")
    scope, scope_params = ("", []) if negotiation_ids is None else (" AND f.negotiation_id = ANY(%s)", [list(negotiation_ids)])
    created = (
        "jsonb_build_object('id', jsonb_build_array(NULL, f.id::text), 'negotiation', jsonb_build_array(NULL, f.negotiation_id::text), "
        "'kind', jsonb_build_array(NULL, f.kind), 'level', jsonb_build_array(NULL, f.level), "
        f"'raised_at', jsonb_build_array(NULL, {_iso_sql('f.raised_at')}), "
        f"'silent_since', jsonb_build_array(NULL, {_iso_sql('f.silent_since')}), 'resolution', jsonb_build_array(NULL, f.resolution)) "
        "|| CASE WHEN f.due_on IS NULL THEN '{}'::jsonb "
        "ELSE jsonb_build_object('due_on', jsonb_build_array(NULL, to_char(f.due_on, 'YYYY-MM-DD'))) END"
    )
    sql = (
        f"INSERT INTO {AuditEntry._meta.db_table} (occurred_at, action, model, object_id, object_repr, negotiation_id, "
        "actor_type, actor_id, actor_label, channel, request_id, changes) "
        "SELECT %s, CASE WHEN f.resolved_at = %s OR f.escalated_at = %s THEN 'update' ELSE 'create' END, 'tracker.flag', "
        f"f.id::text, left(n.reference || ': ' || {kind_sql} || ' (' || {level_sql} || ')', 300), f.negotiation_id, "
        "%s, %s, %s, %s, %s, "
        "CASE WHEN f.resolved_at = %s THEN jsonb_build_object('resolved_at', jsonb_build_array(NULL, %s::text), "
        "'resolution', jsonb_build_array('', f.resolution)) "
        "WHEN f.escalated_at = %s THEN jsonb_build_object('level', jsonb_build_array('overdue', f.level)) "
        f"ELSE {created} END "
        f"FROM {Flag._meta.db_table} f JOIN {Negotiation._meta.db_table} n ON n.id = f.negotiation_id "
        f"WHERE (f.raised_at = %s OR f.escalated_at = %s OR f.resolved_at = %s){scope}"
    )
    actor = audit.actor_fields(None)
    params = [
        now, now, now, *kind_params, *level_params,
        actor["actor_type"], actor["actor_id"], actor["actor_label"], context["channel"], context["request_id"],
        now, now.isoformat(), now, now, now, now, *scope_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _audit(flags, *, now, context):
    """The audit entries of flags changed by a scan, in one bulk insert (elsewhere than PostgreSQL)."""
    entries = []
    for flag in flags:
        if flag.resolved_at == now:
            action, changes = AuditEntry.Action.UPDATE, {"resolved_at": [None, flag.resolved_at.isoformat()], "resolution": ["", flag.resolution]}
        elif flag.escalated_at == now:
            action, changes = AuditEntry.Action.UPDATE, {"level": ["overdue", flag.level]}
        else:
            action, changes = AuditEntry.Action.CREATE, audit.diff({}, audit.snapshot(flag))
        entries.append(
            AuditEntry(
                occurred_at=now, action=action, model="tracker.flag", object_id=str(flag.pk), object_repr=str(flag)[:300],
                negotiation_id=flag.negotiation_id, changes=changes, request_id=context["request_id"],
                channel=context["channel"], **audit.actor_fields(None),
            )
        )
    AuditEntry.objects.bulk_create(entries)


# Acknowledging flags, webhook subscriptions and stall rules live in `writes`.
from .writes import (  # noqa: E402 - re-exported: callers use tracker.services
    RULE_FIELDS,
    SUBSCRIPTION_FIELDS,
    flag_acknowledge,
    stall_rule_update,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_update,
)

__all__ = [
    "RULE_FIELDS", "SUBSCRIPTION_FIELDS", "flag_acknowledge", "stall_rule_update", "webhook_subscription_create",
    "webhook_subscription_delete", "webhook_subscription_update", "scan_stalls", "resolve_flags_for", "stall_rules",
]  # fmt: skip
