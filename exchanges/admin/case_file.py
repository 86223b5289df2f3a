"""A negotiation's page as a case file: what it is and where it stands at the top, what
one does next as buttons, then its timeline, parties, groups and figures, flags and
history below.

Everything here is read through `exchanges.policy` for the login the page is for, in a
fixed number of queries whatever the number of events, status changes or figures. Other
apps add to the page through `PARTS` (the tracker adds the flags: `tracker.admin`), since
the record never imports the apps that watch it.
"""
from urllib.parse import urlencode

from django.db.models import Prefetch
from django.urls import reverse
from django.utils.translation import gettext as _

from .. import policy
from ..choices import FINAL, allowed_transitions
from ..models import (
    AuditEntry,
    CoveredGroup,
    DetaineeGroup,
    Event,
    Handover,
    Participant,
    Party,
    ReportedFigure,
    StatusChange,
)
from ..selectors import figures_summary
from . import history

#: Callables `(request, negotiation, case_file) -> dict` whose result is merged into the
#: case file: "banners" (lists, appended), "sections" (lists, appended), anything else set.
PARTS = []


def status_state(negotiation):
    """What the status colour says: "final", "stalled" or "open" (never stalled once final)."""
    if negotiation.status in FINAL:
        return "final"
    if negotiation.stalled:
        return "stalled"
    return "open"


def state_label(state):
    return {"final": _("Final"), "stalled": _("Stalled"), "open": _("Open")}[state]


def with_next(url, next_url, **params):
    """`url` with query parameters, and `next` to come back to (see ReturnToMixin)."""
    return f"{url}?{urlencode({**params, 'next': next_url})}"


def _actions(request, negotiation, url, groups):
    user = request.user
    actions = []
    if negotiation.status not in FINAL and allowed_transitions(negotiation.status) and policy.allows(
        user, "add", StatusChange, negotiation=negotiation
    ):
        actions.append({"id": "change-status", "label": _("Change status…"),
                        "url": reverse("admin:exchanges_negotiation_change_status", args=[negotiation.pk])})  # fmt: skip
    if policy.allows(user, "add", Event, negotiation=negotiation):
        actions.append({"id": "add-event", "label": _("Add event"),
                        "url": with_next(reverse("admin:exchanges_event_add"), url, negotiation=negotiation.pk)})  # fmt: skip
    if policy.allows(user, "add", ReportedFigure):
        params = {"group": groups[0]["group"].pk} if len(groups) == 1 else {}
        actions.append({"id": "add-figure", "label": _("Add figure"),
                        "url": with_next(reverse("admin:exchanges_reportedfigure_add"), url, **params)})  # fmt: skip
    if policy.allows(user, "add", Handover, negotiation=negotiation):
        actions.append({"id": "record-handover", "label": _("Record handover"),
                        "url": reverse("admin:exchanges_negotiation_record_handover", args=[negotiation.pk])})  # fmt: skip
    return actions


def _timeline(negotiation, user):
    """Status changes and events together, newest first (two queries, three with parties)."""
    changes = list(
        policy.restrict(negotiation.status_changes.all(), user)
        .select_related("recorded_by_user", "recorded_by_client")
        .order_by("sequence")
    )
    events = list(
        policy.restrict(negotiation.events.all(), user)
        .select_related("recorded_by_user", "recorded_by_client")
        .prefetch_related(Prefetch("parties", queryset=Party.objects.order_by("name")))
        .order_by("occurred_at", "id")
    )
    entries = [
        {
            "when": change.occurred_at,
            "kind": "status",
            "what": _("Status"),
            "text": f"{change.get_from_status_display()} → {change.get_to_status_display()}",
            "detail": change.note,
            "parties": "",
            "source": change.source,
            "who": change.recorded_by,
            "order": (change.occurred_at, 0, change.sequence),
        }
        for change in changes
    ] + [
        {
            "when": event.occurred_at,
            "kind": "event",
            "what": event.get_kind_display(),
            "text": event.summary,
            "detail": "",
            "parties": ", ".join(party.name for party in event.parties.all()),
            "source": event.source,
            "who": event.recorded_by_user or event.recorded_by_client,
            "order": (event.occurred_at, 1, event.pk),
            "url": reverse("admin:exchanges_event_change", args=[event.pk]),
        }
        for event in events
    ]
    entries.sort(key=lambda entry: entry["order"], reverse=True)
    return changes, events, entries


def _parties(negotiation, user):
    participants = policy.restrict(Participant.objects.filter(negotiation=negotiation), user)
    sees_parties = policy.has_model_perm(user, Party)
    return [
        {
            "party": participant.party,
            "role": participant.get_role_display(),
            "url": reverse("admin:exchanges_party_change", args=[participant.party_id]) if sees_parties else None,
        }
        for participant in participants.select_related("party").order_by("role", "party__name")
    ]


def _groups(negotiation, user):
    """Covered groups with what each source claims and whether they disagree: three queries."""
    if not policy.has_model_perm(user, DetaineeGroup):
        return []
    figures = policy.restrict(ReportedFigure.objects.all(), user) if policy.has_model_perm(user, ReportedFigure) else ReportedFigure.objects.none()
    covered = (
        policy.restrict(CoveredGroup.objects.filter(negotiation=negotiation), user)
        .select_related("group__held_by", "group__affiliated_with")
        .prefetch_related(Prefetch("group__figures", queryset=figures.select_related("source_party").order_by("metric", "reported_on", "id")))
        .order_by("group__name")
    )
    rows = []
    for coverage in covered:
        group = coverage.group
        claims = list(group.figures.all())
        summary = figures_summary(claims)
        rows.append(
            {
                "group": group,
                "coverage": coverage,
                "url": reverse("admin:exchanges_detaineegroup_change", args=[group.pk]),
                "metrics": [
                    {
                        "label": next(claim.get_metric_display() for claim in claims if claim.metric == metric),
                        "claims": [claim for claim in claims if claim.metric == metric],
                        **entry,
                    }
                    for metric, entry in summary.items()
                ],
                "disputed": any(entry["disputed"] for entry in summary.values()),
            }
        )
    return rows


def _history(negotiation, user):
    """The audit trail about the negotiation and all that hangs off it, readable; None for
    a login that may not read the trail."""
    if not policy.has_model_perm(user, AuditEntry):
        return None
    entries = policy.restrict(AuditEntry.objects.filter(negotiation_id=negotiation.pk), user)
    return history.readable(entries.exclude(action=AuditEntry.Action.READ)[: history.LIMIT])


def build(request, negotiation):
    """The case file's context for the change page."""
    user = request.user
    url = reverse("admin:exchanges_negotiation_change", args=[negotiation.pk])
    changes, events, timeline = _timeline(negotiation, user)
    groups = _groups(negotiation, user)
    state = status_state(negotiation)
    case_file = {
        "negotiation": negotiation,
        "url": url,
        "state": state,
        "state_label": state_label(state),
        "teams": list(negotiation.teams.order_by("name")),
        "case_officer": history.person(negotiation.case_officer) if negotiation.case_officer_id else None,
        "actions": _actions(request, negotiation, url, groups),
        "changes": changes,
        "events": events,
        "timeline": timeline,
        "parties": _parties(negotiation, user),
        "groups": groups,
        "history": _history(negotiation, user),
        "banners": [],
        "sections": [],
        "add_figure_urls": policy.allows(user, "add", ReportedFigure),
    }
    for part in PARTS:
        extra = part(request, negotiation, case_file) or {}
        for key, value in extra.items():
            if key in ("banners", "sections"):
                case_file[key].extend(value)
            else:
                case_file[key] = value
    return case_file
