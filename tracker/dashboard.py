"""What the admin's home page shows: what needs attention today, each part linking to its list.

Reads only; every list is capped (the page must stay quick on a poor connection) and
says how many more there are.
"""
from datetime import timedelta

from django.urls import reverse
from django.utils.http import urlencode

from exchanges import charts, selectors
from exchanges.choices import OPEN, FigureMetric, NegotiationStatus
from exchanges.models import Negotiation
from exchanges.selectors import figures_summary

from .models import Flag

LIMIT = 15


def _url(name, **params):
    url = reverse(name)
    return f"{url}?{urlencode(params)}" if params else url


def build(*, today):
    counts = selectors.status_counts()
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
    open_flags = Flag.objects.filter(resolved_at__isnull=True).select_related("negotiation")
    flags = list(open_flags.order_by("negotiation__last_activity_at", "kind")[:LIMIT])
    overdue = Negotiation.objects.filter(selectors.next_step_q("overdue", today=today))
    due = Negotiation.objects.filter(selectors.next_step_q("week", today=today))
    disputed = selectors.disputed_groups().prefetch_related("figures").order_by("name")
    disputed_rows = []
    for group in disputed[:LIMIT]:
        summary = figures_summary(group.figures.all())
        disputed_rows.append(
            {
                "group": group,
                "disputes": [
                    (FigureMetric(metric).label, charts.grouped(entry["lowest"]), charts.grouped(entry["highest"]))
                    for metric, entry in summary.items()
                    if entry["disputed"]
                ],
            }
        )
    flag_count = open_flags.count()
    overdue_count = overdue.count()
    due_count = due.count()
    disputed_count = disputed.count()
    return {
        "today": today,
        "week_end": today + timedelta(days=7),
        "headline": {
            "flags": flag_count,
            "very_overdue": open_flags.filter(level="very_overdue").count(),
            "overdue_steps": overdue_count,
            "due_steps": due_count,
            "disputed": disputed_count,
            "open": sum(entry["count"] for entry in statuses if entry["open"]),
        },
        "statuses": statuses,
        "flags": flags,
        "flags_more": max(0, flag_count - len(flags)),
        # Open flags sorted by their "days silent" column (the 4th), longest silence first.
        "flags_url": _url("admin:tracker_flag_changelist", open="yes", o="4"),
        "overdue": list(overdue.order_by("next_step_due", "reference")[:LIMIT]),
        "overdue_more": max(0, overdue_count - LIMIT),
        "overdue_url": _url("admin:exchanges_negotiation_changelist", next_step="overdue"),
        "due": list(due.order_by("next_step_due", "reference")[:LIMIT]),
        "due_more": max(0, due_count - LIMIT),
        "due_url": _url("admin:exchanges_negotiation_changelist", next_step="week"),
        "disputed": disputed_rows,
        "disputed_more": max(0, disputed_count - len(disputed_rows)),
        "disputed_url": _url("admin:exchanges_detaineegroup_changelist", disputed="yes"),
        "status_chart": charts.status_over_time(selectors.status_by_month(today=today, months=12)),
    }
