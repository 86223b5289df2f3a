"""Writes of parties, detainee groups and the figures claimed about them."""

from django.db import transaction
from django.utils import timezone

from .. import changes, policy, signals
from ..models import (
    DetaineeGroup,
    Event,
    Negotiation,
    Party,
    ReportedFigure,
)
from .base import AlreadyRecorded, _client_party, create_record, delete_record, update_record


# Parties ---------------------------------------------------------------------------

PARTY_FIELDS = ("name", "short_name", "kind", "country", "aliases")


@transaction.atomic
def party_create(*, actor, **fields):
    policy.require(actor, "add", Party)
    return create_record(Party(), actor=actor, fields=fields, allowed=PARTY_FIELDS)


@transaction.atomic
def party_update(*, party, actor, **fields):
    policy.require(actor, "change", party)
    return update_record(party, actor=actor, fields=fields, allowed=PARTY_FIELDS)


@transaction.atomic
def party_delete(*, party, actor):
    """Only a party nothing refers to (no participation, group, figure, event, client)."""
    delete_record(party, actor=actor, in_use=party_in_use)


def party_in_use(party):
    """Whether anything still names the party (a deletion would lose or break it)."""
    return (
        party.events.exists()
        or party.negotiations.exists()
        or party.groups_held.exists()
        or party.groups_affiliated.exists()
        or party.figures_reported.exists()
        or party.api_clients.exists()
        or DetaineeGroup.objects.filter(recorded_by_party=party).exists()
        or ReportedFigure.objects.filter(recorded_by_party=party).exists()
        or Event.objects.filter(recorded_by_party=party).exists()
    )


# Detainee groups and figures --------------------------------------------------------

GROUP_FIELDS = (
    "name",
    "held_by",
    "affiliated_with",
    "category",
    "detained_since",
    "location",
    "estimated_count",
    "seriously_wounded_count",
    "notes",
)


@transaction.atomic
def detainee_group_create(*, actor, **fields):
    policy.require(actor, "add", DetaineeGroup)
    group = DetaineeGroup(recorded_by_party=_client_party(actor))
    return create_record(group, actor=actor, fields=fields, allowed=GROUP_FIELDS)


@transaction.atomic
def detainee_group_update(*, group, actor, **fields):
    policy.require(actor, "change", group)
    sight = changes.parties_seeing_groups([group.pk]) if {"held_by", "affiliated_with"} & set(fields) else None
    group = update_record(group, actor=actor, fields=fields, allowed=GROUP_FIELDS)
    if sight is not None:
        changes.record_group_sight(sight)
    for negotiation in Negotiation.objects.filter(covered_groups__group=group):
        signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return group


@transaction.atomic
def detainee_group_delete(*, group, actor):
    """Only a group no negotiation covers and no figure describes (409 otherwise)."""
    delete_record(group, actor=actor, in_use=group_in_use)


def group_in_use(group):
    """Whether a negotiation covers the group or a figure describes it."""
    return group.coverage.exists() or group.figures.exists()


def _figures_changed(group_id):
    """A group shows its figures (`figures_summary`): its `updated_at`, and so its ETag and
    `updated_since`, move when one of them is recorded, reassessed or withdrawn."""
    DetaineeGroup.objects.filter(pk=group_id).update(updated_at=timezone.now())
    changes.record_updated("detainee_group", group_id, group_id=group_id)


def _refuse_repeated_claim(figure):
    same = ReportedFigure.objects.filter(
        group=figure.group_id,
        metric=figure.metric,
        value=figure.value,
        source_party=figure.source_party_id,
        source__iexact=(figure.source or "").strip(),
        reported_on=figure.reported_on,
    ).first()
    if same is not None:
        raise AlreadyRecorded(same)


FIGURE_FIELDS = ("metric", "value", "source_party", "source", "reported_on", "reliability", "notes")
#: Once recorded, a claim's substance is fixed; only the assessment of it may change.
FIGURE_MUTABLE_FIELDS = ("reliability", "notes")


@transaction.atomic
def figure_create(*, group, actor, **fields):
    policy.require(actor, "add", ReportedFigure)
    DetaineeGroup.objects.select_for_update().filter(pk=group.pk).first()  # one claim at a time per group
    figure = ReportedFigure(group=group, recorded_by_party=_client_party(actor))
    figure = create_record(figure, actor=actor, fields=fields, allowed=FIGURE_FIELDS, check=_refuse_repeated_claim)
    _figures_changed(figure.group_id)
    return figure


@transaction.atomic
def figures_import(*, rows, actor):
    """Record many claims at once, all or none (the CSV import); `rows` as figure_create takes them."""
    return [figure_create(actor=actor, **row) for row in rows]


@transaction.atomic
def figure_update(*, figure, actor, **fields):
    policy.require(actor, "change", figure)
    figure = update_record(figure, actor=actor, fields=fields, allowed=FIGURE_MUTABLE_FIELDS)
    _figures_changed(figure.group_id)
    return figure


@transaction.atomic
def figure_delete(*, figure, actor):
    """Withdraw a claim; its last state stays in the audit trail."""
    delete_record(figure, actor=actor)
    _figures_changed(figure.group_id)
