"""Reads of the record, with the visibility rules of API.md applied in one place.

A principal is a staff `User` (sees everything), an `ApiClient` (sees `all_partners`
negotiations, and `participants` ones where its party takes part or that its party
recorded), or anything else (sees nothing).
"""
from collections import defaultdict

from django.db import connection
from django.db.models import Exists, JSONField, OuterRef, Prefetch, Q
from django.db.models.expressions import RawSQL

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
    if connection.vendor == "postgresql":
        # A per-row check on the negotiation's own list of parties (jsonb @>): PostgreSQL
        # would otherwise hash all of the party's participations before returning a page.
        takes_part = Q(**{f"{prefix}party_ids__contains": [str(principal.party_id)]})
    else:
        takes_part = Exists(Participant.objects.filter(negotiation=OuterRef(f"{prefix}pk"), party=principal.party_id))
    return Q(**{f"{prefix}visibility": Visibility.ALL_PARTNERS}) | (
        Q(**{f"{prefix}visibility": Visibility.PARTICIPANTS})
        & (takes_part | Q(**{f"{prefix}created_by_party": principal.party_id}))
    )


def negotiations_visible_to(principal):
    return Negotiation.objects.filter(negotiation_visibility_q(principal))


def negotiation_can_see(principal, negotiation):
    return negotiations_visible_to(principal).filter(pk=negotiation.pk).exists()


PARTICIPANTS_JSON = """SELECT coalesce(json_agg(json_build_object('party', p.party_id, 'role', p.role) ORDER BY p.id), '[]')::text
    FROM exchanges_participant p WHERE p.negotiation_id = exchanges_negotiation.id"""
GROUPS_JSON = """SELECT coalesce(json_agg(json_build_object('group', g.group_id, 'proposed_count', g.proposed_count,
    'released_count', g.released_count) ORDER BY g.id), '[]')::text
    FROM exchanges_coveredgroup g WHERE g.negotiation_id = exchanges_negotiation.id"""


def negotiation_list(principal):
    """Negotiations for a list or detail page, with their participants and covered groups.

    On PostgreSQL the lists come back as JSON in the same query (one round trip per
    page); elsewhere two prefetches. Either way the count does not grow with the page.
    """
    queryset = negotiations_visible_to(principal)
    if connection.vendor == "postgresql":
        return queryset.annotate(
            participants_json=RawSQL(PARTICIPANTS_JSON, [], output_field=JSONField()),
            groups_json=RawSQL(GROUPS_JSON, [], output_field=JSONField()),
        )
    return queryset.prefetch_related(
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
