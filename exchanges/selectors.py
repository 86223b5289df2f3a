"""Reads of the record, with the visibility rules of API.md applied in one place.

A principal is a staff `User` (sees everything), an `ApiClient` (sees `all_partners`
negotiations, and `participants` ones where its party takes part or that its party
recorded), or anything else (sees nothing).
"""
from collections import defaultdict

from django.db.models import Exists, OuterRef, Prefetch, Q

from .choices import Visibility
from .models import ApiClient, CoveredGroup, Event, Negotiation, Participant, StatusChange


def is_staff(principal):
    return bool(getattr(principal, "is_staff", False)) and not isinstance(principal, ApiClient)


def negotiation_visibility_q(principal, prefix=""):
    """A Q over negotiations (through `prefix`, e.g. "negotiation__") the principal may see."""
    if is_staff(principal):
        return Q()
    if not isinstance(principal, ApiClient):
        return Q(pk__in=[])
    takes_part = Exists(Participant.objects.filter(negotiation=OuterRef(f"{prefix}pk"), party=principal.party_id))
    return Q(**{f"{prefix}visibility": Visibility.ALL_PARTNERS}) | (
        Q(**{f"{prefix}visibility": Visibility.PARTICIPANTS})
        & (takes_part | Q(**{f"{prefix}created_by_party": principal.party_id}))
    )


def negotiations_visible_to(principal):
    return Negotiation.objects.filter(negotiation_visibility_q(principal))


def negotiation_can_see(principal, negotiation):
    return negotiations_visible_to(principal).filter(pk=negotiation.pk).exists()


def negotiation_list(principal):
    """Negotiations for a list or detail page: two prefetches, whatever the page size."""
    return negotiations_visible_to(principal).prefetch_related(
        Prefetch("participants", queryset=Participant.objects.order_by("id")),
        Prefetch("covered_groups", queryset=CoveredGroup.objects.order_by("id")),
    )


def status_change_list(negotiation):
    return StatusChange.objects.filter(negotiation=negotiation).select_related("recorded_by_user", "recorded_by_client")


def event_list(negotiation):
    return Event.objects.filter(negotiation=negotiation).prefetch_related("parties").select_related(
        "recorded_by_user", "recorded_by_client"
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
