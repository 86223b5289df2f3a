"""When a negotiation is overdue for each kind of flag, as query conditions the scan
(`tracker.services`) applies over every open negotiation or over a few."""
import datetime
from datetime import timedelta

from django.db import connection
from django.db.models import (
    BooleanField, DateTimeField, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum, Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThan

from exchanges.choices import AGREED_STATUSES, HandoverState
from exchanges.models import CoveredGroup, Negotiation, Transfer

from .choices import FlagKind


def _covers_wounded(*, few=False):
    """Negotiations covering a group with seriously wounded detainees.

    Over every negotiation as `pk IN (...)`: PostgreSQL hashes the subquery once, where a
    correlated EXISTS inside the OR of every priority would run per row and per branch.
    Over a few (`few`: an incremental scan, one negotiation's write) as a correlated
    EXISTS, rather than hashing all 75,000 such negotiations of a million to check three.
    """
    if few:
        return Exists(CoveredGroup.objects.filter(negotiation=OuterRef("pk"), group__seriously_wounded_count__gt=0))
    return Q(pk__in=CoveredGroup.objects.filter(group__seriously_wounded_count__gt=0).values("negotiation_id"))


#: Negotiations where, some days after agreement, one releasing party's covered groups
#: hold more seriously wounded than its done handovers released (per party: one side
#: releasing all its wounded does not hide the other's). Not correlated, so it reads the
#: same inside any subquery; only agreed or implementing negotiations are grouped.
WOUNDED_WAITING_SQL = """SELECT cg.negotiation_id FROM exchanges_coveredgroup cg
    JOIN exchanges_detaineegroup g ON g.id = cg.group_id
    JOIN exchanges_negotiation n ON n.id = cg.negotiation_id
    WHERE n.status IN ('agreed', 'implementing') AND n.agreed_at <= %s AND g.seriously_wounded_count > 0
    GROUP BY cg.negotiation_id, g.held_by_id
    HAVING sum(g.seriously_wounded_count) > coalesce((
        SELECT sum(t.seriously_wounded_count) FROM exchanges_transfer t
        JOIN exchanges_handover h ON h.id = t.handover_id AND h.state = 'done'
        WHERE t.negotiation_id = cg.negotiation_id AND t.from_party_id = g.held_by_id), 0)"""

#: Beyond this many waiting negotiations, the scan's statements read the grouped set as a
#: subquery rather than as a list of ids (about 2,900 of a million in the benchmark).
WOUNDED_LIST_LIMIT = 20_000


def _wounded_waiting(now, days, *, few):
    """`(overdue_q, very_overdue_q)` of `wounded_waiting`.

    Over a few negotiations (`few`) a correlated EXISTS per negotiation and holding party,
    rather than grouping every agreed negotiation of a million to check three (418 ms
    against 0.1 ms at 1M). Over all of them, the grouped set is computed once, and the
    kind's five statements (resolve, escalate, de-escalate, raise) read its ids.
    """
    agreed = [Q(status__in=AGREED_STATUSES, agreed_at__lte=now - timedelta(days=day)) for day in days]
    if few:
        released = (
            Transfer.objects.filter(
                negotiation=OuterRef("negotiation"), from_party=OuterRef("group__held_by"), handover__state=HandoverState.DONE
            )
            .order_by()
            .values("from_party")
            .annotate(released=Sum("seriously_wounded_count"))
            .values("released")
        )
        waiting = Exists(
            CoveredGroup.objects.filter(negotiation=OuterRef("pk"), group__seriously_wounded_count__gt=0)
            .order_by()
            .values("negotiation", "group__held_by")
            .annotate(wounded=Sum("group__seriously_wounded_count"))
            .filter(wounded__gt=Coalesce(Subquery(released), 0))
        )
        return tuple(condition & waiting for condition in agreed)
    since = now - timedelta(days=min(days))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT negotiation_id FROM ({WOUNDED_WAITING_SQL}) AS waiting LIMIT %s", [since, WOUNDED_LIST_LIMIT + 1])
        ids = [row[0] for row in cursor.fetchall()]
    if len(ids) > WOUNDED_LIST_LIMIT:
        waiting = Q(pk__in=RawSQL(WOUNDED_WAITING_SQL, [since]))
    else:
        # None waiting: a condition that is never true but still renders as SQL (an empty
        # IN would raise EmptyResultSet in the raise's INSERT ... SELECT).
        waiting = Q(pk__in=ids) if ids else Q(pk__isnull=True)
    return tuple(condition & waiting for condition in agreed)


def _silent_beyond_gap(now, times):
    """Silent for more than `times` its usual gap between activities."""
    silence = ExpressionWrapper(F("usual_gap") * times, output_field=DurationField())
    quiet_after = ExpressionWrapper(F("last_activity_at") + silence, output_field=DateTimeField())
    return Q(GreaterThan(Value(now, output_field=DateTimeField()), quiet_after))


def _utc_wall(moment):
    return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def gap_passed_between(since, now, times):
    """Silent for `times` its usual gap by `now` but not yet at `since`: the moment
    `last_activity_at + usual_gap * times` falls in [since, now).

    On PostgreSQL written as a range on the expression that migration exchanges 0016
    indexes for the default multipliers (3 and 6), in UTC wall time (the same instant;
    timestamptz + interval cannot be indexed): 366 ms to 0.2 ms at a million negotiations.
    Another multiplier gives the same answer without the index."""
    if connection.vendor != "postgresql":
        return _silent_beyond_gap(now, times) & ~_silent_beyond_gap(since, times)
    table = connection.ops.quote_name(Negotiation._meta.db_table)
    passed = f"(({table}.\"last_activity_at\" AT TIME ZONE 'UTC') + {table}.\"usual_gap\" * {int(times)})"
    return Q(RawSQL(f"{passed} >= %s AND {passed} < %s", [_utc_wall(since), _utc_wall(now)], output_field=BooleanField()))


def conditions(kind, rules, now, *, few=False):
    """`(overdue_q, very_overdue_q)` over open negotiations.

    No activity: by priority, a negotiation covering seriously wounded detainees held to
    the urgent thresholds (Third Geneva Convention, Art. 109). Deadline: days after due.
    Off its rhythm: at least the rule's number of activities, and silent for more than
    its multiple of the usual gap and at least its days (twice that gap, and its second
    days, for very overdue), so a negotiation that was always slow is not flagged.
    Wounded waiting: see WOUNDED_WAITING_SQL, after the rule's days since agreement.
    """
    if kind == FlagKind.OFF_RHYTHM:
        times, needed = rules["rhythm_parameters"]
        has_rhythm = Q(activity_count__gte=needed, usual_gap__isnull=False)
        return tuple(
            has_rhythm
            & Q(last_activity_at__lte=now - timedelta(days=days))
            & _silent_beyond_gap(now, times * factor)
            for days, factor in zip(rules["rhythm"], (1, 2))
        )
    if kind == FlagKind.WOUNDED_WAITING:
        return _wounded_waiting(now, rules["wounded"], few=few)
    if kind == FlagKind.DEADLINE_MISSED:
        today = now.date()
        overdue, very = rules["deadline"]
        return (
            Q(next_step_due__lte=today - timedelta(days=overdue)),
            Q(next_step_due__lte=today - timedelta(days=very)),
        )
    levels = []
    wounded = _covers_wounded(few=few)
    for index in (0, 1):
        condition = (Q(priority="urgent") | wounded) & Q(
            last_activity_at__lte=now - timedelta(days=rules["urgent"][index])
        )
        for priority in ("high", "routine"):
            condition |= (
                Q(priority=priority)
                & ~wounded
                & Q(last_activity_at__lte=now - timedelta(days=rules[priority][index]))
            )
        levels.append(condition)
    return tuple(levels)
