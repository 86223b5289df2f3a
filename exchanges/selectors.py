"""Reads of the record for pages and lists. Who may see what is `exchanges.policy`'s
answer; every read here starts from it.
"""
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, JSONField, OuterRef, Prefetch, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncMonth
from django.utils import timezone

from . import policy
from .soft_cache import soft
from .choices import OPEN, HandoverState, NegotiationStatus, Visibility
from .models import AuditEntry, Commitment, CoveredGroup, Handover, Transfer, DetaineeGroup, Event, Negotiation, Participant, ReportedFigure, StatusChange, StatusMonth


PARTICIPANTS_JSON = """SELECT coalesce(json_agg(json_build_object('party', p.party_id, 'role', p.role) ORDER BY p.id), '[]')::text
    FROM exchanges_participant p WHERE p.negotiation_id = exchanges_negotiation.id"""
GROUPS_JSON = """SELECT coalesce(json_agg(json_build_object('group', g.group_id, 'proposed_count', g.proposed_count,
    'released_count', g.released_count) ORDER BY g.id), '[]')::text
    FROM exchanges_coveredgroup g WHERE g.negotiation_id = exchanges_negotiation.id"""

COMMITMENTS_JSON = """SELECT coalesce(json_agg(json_build_object('party', c.party_id, 'count', c.count,
    'seriously_wounded_count', c.seriously_wounded_count, 'notes', c.notes) ORDER BY c.id), '[]')::text
    FROM exchanges_commitment c WHERE c.negotiation_id = exchanges_negotiation.id"""
#: `progress` (see `progress` below, its definition in Python): per releasing party, its
#: commitment and the sums over its transfers in done handovers; committed parties first
#: in the order recorded, then the others by id. A party's transfers are read once (its
#: handovers of any state name it; only done ones count).
PROGRESS_JSON = """SELECT coalesce(json_agg(json_build_object('party', r.party_id, 'committed', r.committed,
    'released', r.released, 'verified', r.verified,
    'remaining', CASE WHEN r.committed IS NULL THEN NULL ELSE greatest(r.committed - r.released, 0) END,
    'seriously_wounded_released', r.wounded, 'disputed', r.disputed) ORDER BY r.ord NULLS LAST, r.party_id), '[]')::text
    FROM (SELECT p.party_id, min(p.ord) AS ord, max(p.committed) AS committed, coalesce(sum(p.released), 0) AS released,
            coalesce(sum(p.verified), 0) AS verified, coalesce(sum(p.wounded), 0) AS wounded,
            coalesce(bool_or(p.disputed), false) AS disputed
        FROM (SELECT c.party_id, c.id AS ord, c.count AS committed, NULL::bigint AS released, NULL::bigint AS verified,
                NULL::bigint AS wounded, NULL::boolean AS disputed
            FROM exchanges_commitment c WHERE c.negotiation_id = exchanges_negotiation.id
            UNION ALL
            SELECT t.from_party_id, NULL, NULL, CASE WHEN h.state = 'done' THEN t.released_count END,
                CASE WHEN h.state = 'done' THEN t.verified_count END,
                CASE WHEN h.state = 'done' THEN t.seriously_wounded_count END,
                CASE WHEN h.state = 'done' THEN greatest(t.released_count, t.received_count, t.verified_count)
                    <> least(t.released_count, t.received_count, t.verified_count) END
            FROM exchanges_transfer t JOIN exchanges_handover h ON h.id = t.handover_id
            WHERE t.negotiation_id = exchanges_negotiation.id) p
        GROUP BY p.party_id) r"""


def progress(negotiation):
    """For each releasing party (those with a commitment, in the order recorded, then any
    other that releases in a handover, by id): `committed` (null: open-ended or not
    recorded), `released` and `verified` summed over its transfers in done handovers,
    `remaining` (committed less released, never below 0; null when open-ended),
    `seriously_wounded_released`, and `disputed` (a done transfer's released, received and
    verified counts disagree). Reads the commitments and handovers with their transfers
    (prefetched by `negotiation_list`); PROGRESS_JSON is the same in SQL."""
    committed = {c.party_id: c.count for c in sorted(negotiation.commitments.all(), key=lambda c: c.pk)}
    others, done = set(), []
    for handover in negotiation.handovers.all():
        for transfer in handover.transfers.all():
            if transfer.from_party_id not in committed:
                others.add(transfer.from_party_id)
            if handover.state == HandoverState.DONE:
                done.append(transfer)
    rows = []
    for party_id in [*committed, *sorted(others, key=str)]:
        mine = [t for t in done if t.from_party_id == party_id]
        released = sum(t.released_count or 0 for t in mine)
        count = committed.get(party_id)
        rows.append(
            {
                "party": str(party_id),
                "committed": count,
                "released": released,
                "verified": sum(t.verified_count or 0 for t in mine),
                "remaining": None if count is None else max(count - released, 0),
                "seriously_wounded_released": sum(t.seriously_wounded_count or 0 for t in mine),
                "disputed": any(t.disputed for t in mine),
            }
        )
    return rows


def negotiation_list(principal):
    """Negotiations for a list or detail page, with their participants and covered groups.

    On PostgreSQL the lists come back as JSON in the same query (one round trip per
    page); elsewhere two prefetches. Either way the count does not grow with the page.
    """
    queryset = policy.negotiations_visible_to(principal)
    if policy.is_staff(principal):
        queryset = queryset.select_related("case_officer").prefetch_related("teams")
    if connection.vendor == "postgresql":
        return queryset.annotate(
            participants_json=RawSQL(PARTICIPANTS_JSON, [], output_field=JSONField()),
            groups_json=RawSQL(GROUPS_JSON, [], output_field=JSONField()),
            commitments_json=RawSQL(COMMITMENTS_JSON, [], output_field=JSONField()),
            progress_json=RawSQL(PROGRESS_JSON, [], output_field=JSONField()),
        )
    return queryset.prefetch_related(
        Prefetch("participants", queryset=Participant.objects.order_by("id")),
        Prefetch("covered_groups", queryset=CoveredGroup.objects.order_by("id")),
        Prefetch("commitments", queryset=Commitment.objects.order_by("id")),
        Prefetch("handovers", queryset=Handover.objects.order_by("sequence").prefetch_related("transfers")),
    )


def status_change_list(negotiation):
    return StatusChange.objects.filter(negotiation=negotiation).select_related("recorded_by_user", "recorded_by_client")


def event_list(negotiation):
    return Event.objects.filter(negotiation=negotiation).prefetch_related("parties").select_related(
        "recorded_by_user", "recorded_by_client"
    )


def handover_list(negotiation):
    return (
        Handover.objects.filter(negotiation=negotiation)
        .select_related("recorded_by_user", "recorded_by_client")
        .prefetch_related(Prefetch("transfers", queryset=Transfer.objects.order_by("id")))
    )


def figures_summary(figures):
    """Per metric: the lowest and highest value claimed, how many claims and sources, and
    whether the sources disagree. `figures` is an iterable of ReportedFigure."""
    by_metric = defaultdict(list)
    for figure in figures:
        by_metric[figure.metric].append(figure)
    summary = {}
    for metric, claims in sorted(by_metric.items()):
        values = [claim.value for claim in claims]
        sources = {
            ("party", claim.source_party_id) if claim.source_party_id else ("text", claim.source.strip().lower())
            for claim in claims
            if claim.source_party_id or claim.source.strip()
        }
        summary[metric] = {
            "lowest": min(values),
            "highest": max(values),
            "reports": len(claims),
            "sources": len(sources),
            "disputed": min(values) != max(values),
        }
    return summary


def disputed_groups_q():
    """Groups with at least one metric on which two claims disagree."""
    other_value = ReportedFigure.objects.filter(group=OuterRef("group"), metric=OuterRef("metric")).exclude(
        value=OuterRef("value")
    )
    return Exists(ReportedFigure.objects.filter(group=OuterRef("pk")).filter(Exists(other_value)))


def disputed_groups(principal):
    """The disputed groups `principal` may see (None: the system, all of them)."""
    groups = DetaineeGroup.objects.filter(disputed_groups_q()).select_related("held_by", "affiliated_with")
    return policy.restrict(groups, principal)


#: The windows staff sort open negotiations into by their next step's due date.
NEXT_STEP_WINDOWS = ("overdue", "week", "later", "none")


def next_step_q(window, *, today):
    """Open negotiations whose next step is `overdue`, due this `week` (today to 7 days on),
    due `later`, or has no due date (`none`): one definition for the dashboard's counts and
    the list filter they link to."""
    week_end = today + timedelta(days=7)
    windows = {
        "overdue": Q(next_step_due__lt=today),
        "week": Q(next_step_due__gte=today, next_step_due__lte=week_end),
        "later": Q(next_step_due__gt=week_end),
        "none": Q(next_step_due__isnull=True),
    }
    return Q(status__in=OPEN) & windows[window]


def status_counts(principal):
    """{status: number of negotiations `principal` may see} for every status, zeros included.

    On PostgreSQL the sums of the monthly deltas the database keeps (`StatusMonth`: every
    negotiation enters `proposed` and each status change moves it, so what remains in each
    status is the count), rather than counting a million negotiations (230-860 ms)."""
    kept = _kept_deltas(principal)
    if kept is not None:
        _series, counts = _month_ends(kept, [])  # the running totals over every month
    else:
        negotiations = policy.restrict(Negotiation.objects.order_by(), principal)
        counts = dict(negotiations.values_list("status").annotate(n=Count("pk")))
    return {str(status): counts.get(str(status), 0) for status in NegotiationStatus}


def _month_start(day, back=0):
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


#: The chart's closed months are kept at most this long (a backstop: the writes that change
#: them are noticed at once, see `status_by_month`).
CLOSED_MONTHS_SECONDS = 6 * 3600
#: Writes made this long before the closed months were read are looked at again (their
#: transaction may still have been open then).
WRITE_MARGIN = timedelta(seconds=30)
#: Audited changes of a negotiation that move it to another month or scope.
RESCOPING_FIELDS = ["opened_on", "visibility", "teams", "participants"]


def _chart_scope(principal):
    """What decides which negotiations the principal sees: logins that see the same ones
    share cached counts, and no others."""
    if principal is None:
        return "system"
    if policy.is_client(principal):
        return f"party:{principal.party_id}"
    if not policy.has_model_perm(principal, Negotiation):
        return "none"
    if policy.sees_every_staff_only(principal):
        return "all"
    return "teams:" + ",".join(sorted(str(pk) for pk in policy.team_ids(principal)))


def _month_moment(month):
    """The first instant of a month in the current time zone (where TruncMonth cuts)."""
    return timezone.make_aware(datetime.combine(month, time.min))


def _status_deltas(principal, *, since=None, before=None, negotiation_ids=None):
    """{month start: {status: change}} over the negotiations the principal may see (of
    `negotiation_ids` when given): +1 in `proposed` the month one opened, and -1/+1 the
    month of each status change; only months in [since, before) when given. Two grouped
    queries."""
    def seen(prefix=""):
        """The negotiations (through `prefix`) the principal may see; all for the system."""
        visible = Q() if principal is None else policy.negotiation_visibility_q(principal, prefix)
        return visible if negotiation_ids is None else visible & Q(**{f"{prefix}pk__in": negotiation_ids})

    opened, moved = Negotiation.objects.filter(seen()), StatusChange.objects.filter(seen("negotiation__"))
    if since is not None:
        opened, moved = opened.filter(opened_on__gte=since), moved.filter(occurred_at__gte=_month_moment(since))
    if before is not None:
        opened, moved = opened.filter(opened_on__lt=before), moved.filter(occurred_at__lt=_month_moment(before))
    deltas = defaultdict(lambda: defaultdict(int))
    for row in opened.order_by().annotate(month=TruncMonth("opened_on")).values("month").annotate(n=Count("pk")):
        deltas[row["month"]][NegotiationStatus.PROPOSED.value] += row["n"]
    moves = moved.order_by().annotate(month=TruncMonth("occurred_at")).values("month", "from_status", "to_status")
    for row in moves.annotate(n=Count("pk")):
        month = row["month"].date() if hasattr(row["month"], "date") else row["month"]
        deltas[month][row["from_status"]] -= row["n"]
        deltas[month][row["to_status"]] += row["n"]
    return deltas


def _kept_deltas(principal, *, before=None):
    """What `_status_deltas(principal, before=before)` returns, from the monthly deltas the
    database keeps (`StatusMonth`, PostgreSQL): a few hundred rows whatever the size of the
    record, with the staff-only negotiations of the login's teams read from their own
    status changes when it does not see every staff-only one. None where they are not kept
    (elsewhere than PostgreSQL) or for an API client (its party's negotiations)."""
    if connection.vendor != "postgresql" or policy.is_client(principal):
        return None
    if principal is not None and not policy.has_model_perm(principal, Negotiation):
        return {}
    every = principal is None or policy.sees_every_staff_only(principal)
    kept = StatusMonth.objects.all()
    if before is not None:
        kept = kept.filter(month__lt=before)
    if not every:
        kept = kept.filter(staff_only=False)
    deltas = defaultdict(lambda: defaultdict(int))
    for month, status, delta in kept.values_list("month", "status", "delta"):
        deltas[month][status] += delta
    if not every:
        theirs = list(
            Negotiation.objects.filter(policy.negotiation_visibility_q(principal), visibility=Visibility.STAFF_ONLY)
            .values_list("pk", flat=True)
        )
        if theirs:
            for month, changes in _status_deltas(None, before=before, negotiation_ids=theirs).items():
                for status, delta in changes.items():
                    deltas[month][status] += delta
    return deltas


def _month_ends(deltas, starts):
    """From {month: {status: delta}}: the counts at the end of each month in `starts`, and
    the running totals over every month given (`base`)."""
    running = defaultdict(int)
    series = []
    pending = iter(sorted(deltas.items()))
    month, changes = next(pending, (None, {}))
    for start in [*starts, None]:
        while month is not None and (start is None or month <= start):
            for status, change in changes.items():
                running[status] += change
            month, changes = next(pending, (None, {}))
        if start is not None:
            series.append((start, {str(status): max(0, running[str(status)]) for status in NegotiationStatus}))
    return series, dict(running)


def _closed_months(principal, starts, current):
    """The counts at the end of each month in `starts` (all before `current`) and the
    running totals at the end of the last month before `current` (`base`), from the status
    changes."""
    read_at = timezone.now()
    series, base = _month_ends(_status_deltas(principal, before=current), starts)
    return {"series": series, "base": base, "read_at": read_at}


def _closed_months_changed(current, *, since):
    """Whether a write since `since` changed a month before `current`: a status change
    recorded with an earlier date, a negotiation recorded as opened earlier, or one whose
    opening date, visibility, teams or participants changed. Three reads along indexes
    (`created_at`, the trail's `occurred_at`) of the rows written since."""
    since = since - WRITE_MARGIN
    return (
        StatusChange.objects.filter(created_at__gte=since, occurred_at__lt=_month_moment(current)).exists()
        or Negotiation.objects.filter(created_at__gte=since, opened_on__lt=current).exists()
        or AuditEntry.objects.filter(
            occurred_at__gte=since, model="exchanges.negotiation", action=AuditEntry.Action.UPDATE,
            changes__has_any_keys=RESCOPING_FIELDS,
        ).exists()
    )  # fmt: skip


def status_by_month(principal, *, today, months=12):
    """How many of the negotiations `principal` may see stood in each status at the end of
    each of the last `months` months (the current one: today), from the record's real-world
    dates.

    A negotiation counts as `proposed` from the month it opened; each status change moves
    one from its `from_status` to its `to_status` in the month it occurred.

    On PostgreSQL every month is a running sum of the monthly deltas the database keeps
    (`StatusMonth`, a few hundred rows, current to the last commit): one read, no cache.
    Elsewhere the months before the current one are a grouped read of the status changes,
    cached per scope (what the principal may see:
    logins that see the same negotiations share them, no other) under a key that writes do
    not change, and read again only when a write changed them (`_closed_months_changed`:
    a status change back-dated into an earlier month, a negotiation opened in one, a
    negotiation's visibility, teams, participants or opening date changed) or after
    `CLOSED_MONTHS_SECONDS`. The current month is counted afresh on every call from the
    rows dated in it (indexes on the dates), so a change made now shows at once. Without
    the cache (Redis down) every call reads everything: slower, never an error.
    """
    current = _month_start(today)
    starts = [_month_start(today, back) for back in range(months - 1, -1, -1)]
    following = _month_start(current + timedelta(days=31))
    kept = _kept_deltas(principal, before=following)
    if kept is not None:
        return _month_ends(kept, starts)[0]
    scope = _chart_scope(principal)
    key = f"exchanges:status_by_month:{scope}:{current.isoformat()}:{months}"
    closed = soft(lambda: cache.get(key), None, "the status chart's cache")
    if closed is None or _closed_months_changed(current, since=closed["read_at"]):
        closed = _closed_months(principal, starts[:-1], current)
        soft(lambda: cache.set(key, closed, CLOSED_MONTHS_SECONDS), None, "the status chart's cache")
    now = _status_deltas(principal, since=current, before=following).get(current, {})
    running = {str(status): closed["base"].get(str(status), 0) + now.get(str(status), 0) for status in NegotiationStatus}
    return [*closed["series"], (current, {status: max(0, count) for status, count in running.items()})]


def staff_concerned(negotiation_ids, *, teams):
    """{negotiation id: [users]}: the staff to email about these negotiations, in order:
    the case officer, then (with `teams`) the members of its teams, then its watchers;
    each active, with an address, and only if they may see the negotiation."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    wanted = {}  # negotiation id -> [user ids], in order
    # The case officers and the watchers in one query (a row per watcher, or one without).
    watched = {}
    rows = Negotiation.objects.filter(pk__in=negotiation_ids).filter(Q(case_officer__isnull=False) | Q(watchers__isnull=False))
    for negotiation_id, officer_id, watcher_id in rows.order_by("watchers__username").values_list("pk", "case_officer", "watchers"):
        if officer_id is not None and negotiation_id not in wanted:
            wanted[negotiation_id] = [officer_id]
        if watcher_id is not None:
            watched.setdefault(negotiation_id, []).append(watcher_id)
    if teams:
        members = Negotiation.teams.through.objects.filter(negotiation__in=negotiation_ids).values_list(
            "negotiation", "team__members"
        )
        for negotiation_id, user_id in members.order_by("team__name", "team__members__username"):
            if user_id is not None:
                wanted.setdefault(negotiation_id, []).append(user_id)
    for negotiation_id, user_ids in watched.items():
        wanted.setdefault(negotiation_id, []).extend(user_ids)
    users = User.objects.in_bulk({user_id for ids in wanted.values() for user_id in ids})
    users = {pk: user for pk, user in users.items() if user.is_active and user.email}
    visible = {
        pk: set(policy.negotiations_visible_to(user).filter(pk__in=negotiation_ids).values_list("pk", flat=True))
        for pk, user in users.items()
    }
    concerned = {}
    for negotiation_id, user_ids in wanted.items():
        for user_id in dict.fromkeys(user_ids):
            if user_id in users and negotiation_id in visible[user_id]:
                concerned.setdefault(negotiation_id, []).append(users[user_id])
    return concerned
