"""What the admin's home page shows: what needs attention today, each part linking to its list.

Reads only; every list is capped (the page must stay quick on a poor connection) and
says how many more there are. Each part is for those who may see what it counts, and
counts only that (`exchanges.policy`): negotiations, their next steps and the monthly
chart with the negotiation view permission and within the login's teams; flags with the
flag view permission; disputed groups with the group view permission.
"""
from datetime import timedelta

from django.db.models import F

from django.urls import reverse
from django.utils.http import urlencode

from exchanges import charts, policy, selectors
from exchanges.admin.counts import capped_count
from exchanges.choices import OPEN, FigureMetric, NegotiationStatus
from exchanges.filters import mine_q
from exchanges.models import DetaineeGroup, Negotiation
from exchanges.selectors import figures_summary

from .choices import FlagLevel
from .models import Flag

LIMIT = 15
#: Overdue next steps and open flags are counted up to this many, then shown as "more
#: than": the 85,000
#: overdue of a million negotiations were all read on every visit (26 ms on a vacuumed
#: table, 194-277 ms with the dead rows a scan leaves; capped: under 1 ms).
COUNT_CAP = 1_000


def _url(name, **params):
    url = reverse(name)
    return f"{url}?{urlencode(params)}" if params else url


def build(*, user, today):
    sees = {
        "negotiations": policy.has_model_perm(user, Negotiation),
        "flags": policy.has_model_perm(user, Flag),
        "groups": policy.has_model_perm(user, DetaineeGroup),
    }
    dashboard = {"today": today, "week_end": today + timedelta(days=7), "sees": sees, "headline": {}}
    parts = [
        (sees["negotiations"], lambda: _my_work(user, today, sees_flags=sees["flags"])),
        (sees["negotiations"], lambda: _negotiations(user, today)),
        (sees["flags"], lambda: _flags(user)),
        (sees["groups"], lambda: _disputed(user)),
    ]
    for seen, part in parts:
        if seen:
            values = part()
            dashboard["headline"].update(values.pop("headline"))
            dashboard.update(values)
    return dashboard


def _my_work(user, today, *, sees_flags):
    """What is mine: open negotiations where I am the case officer or my teams work, the
    stalled and the most pressing first, with their open flags and next steps due by the
    end of the week (three queries)."""
    week_end = today + timedelta(days=7)
    mine = policy.restrict(Negotiation.objects.filter(status__in=OPEN), user).filter(mine_q(user))
    rows = list(mine.order_by("-stalled", F("next_step_due").asc(nulls_last=True), "reference")[:LIMIT])
    flags = {}
    if sees_flags and rows:
        open_flags = policy.restrict(Flag.objects.filter(resolved_at__isnull=True, negotiation__in=rows), user)
        for flag in open_flags.order_by("kind"):
            flags.setdefault(flag.negotiation_id, []).append(flag)
    count = mine.count()
    return {
        "mine": [
            {
                "negotiation": negotiation,
                "flags": flags.get(negotiation.pk, []),
                "due_this_week": negotiation.next_step_due is not None and negotiation.next_step_due <= week_end,
                "overdue": negotiation.next_step_due is not None and negotiation.next_step_due < today,
            }
            for negotiation in rows
        ],
        "mine_more": max(0, count - len(rows)),
        "mine_url": _url("admin:exchanges_negotiation_changelist", mine="yes"),
        "headline": {"mine": count},
    }


def _negotiations(user, today):
    counts = selectors.status_counts(user)
    statuses = [
        {
            "value": str(status),
            "label": status.label,
            "count": counts[str(status)],
            "open": status in OPEN,
            "color": charts.STATUS_COLORS[str(status)],
            "url": _url("admin:exchanges_negotiation_changelist", status__exact=str(status)),
        }
        for status in NegotiationStatus
    ]
    visible = policy.restrict(Negotiation.objects.all(), user)
    overdue = visible.filter(selectors.next_step_q("overdue", today=today))
    due = visible.filter(selectors.next_step_q("week", today=today))
    overdue_count, overdue_capped = _capped_count(overdue)
    due_count = due.count()
    return {
        "statuses": statuses,
        "overdue": list(overdue.order_by("next_step_due", "reference")[:LIMIT]),
        "overdue_more": max(0, overdue_count - LIMIT),
        "overdue_capped": overdue_capped,
        "overdue_url": _url("admin:exchanges_negotiation_changelist", next_step="overdue"),
        "due": list(due.order_by("next_step_due", "reference")[:LIMIT]),
        "due_more": max(0, due_count - LIMIT),
        "due_url": _url("admin:exchanges_negotiation_changelist", next_step="week"),
        "status_chart": charts.status_over_time(selectors.status_by_month(user, today=today, months=12)),
        "headline": {
            "overdue_steps": overdue_count,
            "due_steps": due_count,
            "open": sum(entry["count"] for entry in statuses if entry["open"]),
        },
    }


def _flags(user):
    open_flags = policy.restrict(Flag.objects.filter(resolved_at__isnull=True), user).select_related("negotiation")
    flags = list(open_flags.order_by("negotiation__last_activity_at", "kind")[:LIMIT])
    # Counted up to COUNT_CAP, as the overdue steps: the 224,000 open flags of a million
    # negotiations took 26-35 ms a figure to count in full, where staff read "more than 1,000".
    flag_count, flags_capped = _capped_count(open_flags)
    very_overdue, very_overdue_capped = _capped_count(open_flags.filter(level=FlagLevel.VERY_OVERDUE))
    return {
        "flags": flags,
        "flags_more": max(0, flag_count - len(flags)),
        "flags_capped": flags_capped,
        "very_overdue_capped": very_overdue_capped,
        # Open flags sorted by their "days silent" column (the 4th), longest silence first.
        "flags_url": _url("admin:tracker_flag_changelist", open="yes", o="4"),
        "headline": {
            "flags": flag_count,
            "very_overdue": very_overdue,
            # Acknowledged flags are known about: only the others ring the alarm.
            "unacknowledged": open_flags.filter(acknowledged_at__isnull=True).exists(),
        },
    }


def _capped_count(queryset):
    """(how many, up to COUNT_CAP; whether there are more)."""
    count = capped_count(queryset, cap=COUNT_CAP)
    return min(count, COUNT_CAP), count > COUNT_CAP


def _disputed(user):
    disputed = selectors.disputed_groups(user).prefetch_related("figures").order_by("name")
    rows = []
    for group in disputed[:LIMIT]:
        summary = figures_summary(group.figures.all())
        rows.append(
            {
                "group": group,
                "disputes": [
                    (FigureMetric(metric).label, charts.grouped(entry["lowest"]), charts.grouped(entry["highest"]))
                    for metric, entry in summary.items()
                    if entry["disputed"]
                ],
            }
        )
    disputed_count = disputed.count()
    return {
        "disputed": rows,
        "disputed_more": max(0, disputed_count - len(rows)),
        "disputed_url": _url("admin:exchanges_detaineegroup_changelist", disputed="yes"),
        "headline": {"disputed": disputed_count},
    }
