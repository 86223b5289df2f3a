"""Negotiations (and the representation the fast read path shares), their status changes
and events."""
from datetime import timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from ...choices import NegotiationStatus, ParticipantRole, allowed_transitions
from ...models import (
    CoveredGroup,
    Event,
    Negotiation,
    Participant,
    Party,
    StatusChange,
    Team,
)
from .handovers import CommitmentSerializer, ProgressSerializer
from .fields import (
    LONG_TEXT,
    MEDIUM_TEXT,
    OffsetDateTimeField,
    RecordedByField,
    StrictFieldsMixin,
    VisibleGroupField,
    WholeItemMixin,
    count_field,
    recorded_by_party_field,
    uuid_related,
)


class ParticipantSerializer(WholeItemMixin, StrictFieldsMixin, serializers.ModelSerializer):
    """A party taking part in a negotiation, and its role."""

    party = uuid_related(Party.objects.all())
    role = serializers.ChoiceField(choices=ParticipantRole.choices)

    class Meta:
        model = Participant
        fields = ["party", "role"]


class CoveredGroupSerializer(WholeItemMixin, StrictFieldsMixin, serializers.ModelSerializer):
    """A detainee group a negotiation covers, with the counts proposed and released."""

    group = VisibleGroupField(pk_field=serializers.UUIDField())
    proposed_count = count_field(required=False, allow_null=True)
    released_count = count_field(required=False, allow_null=True)

    class Meta:
        model = CoveredGroup
        fields = ["group", "proposed_count", "released_count"]


class NegotiationSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A prisoner-exchange negotiation: its parties, the groups it covers, its status and what was
    committed and carried out. The status changes only through `status-changes/`."""

    participants = ParticipantSerializer(many=True, required=False)
    groups = CoveredGroupSerializer(many=True, required=False, source="covered_groups")
    commitments = CommitmentSerializer(
        many=True, required=False, help_text="What each releasing party undertook; sent on update it replaces the list."
    )
    progress = ProgressSerializer(many=True, read_only=True, help_text="For each releasing party, from the done handovers.")
    summary = serializers.CharField(required=False, allow_blank=True, max_length=LONG_TEXT)
    next_step = serializers.CharField(required=False, allow_blank=True, max_length=MEDIUM_TEXT)
    allowed_status_changes = serializers.SerializerMethodField(
        help_text="The statuses this negotiation may move to next (empty once final)."
    )

    refuse_changes_to = {
        "status": _("The status changes only through POST /api/v1/negotiations/{id}/status-changes/."),
    }

    class Meta:
        model = Negotiation
        fields = [
            "id",
            "reference",
            "title",
            "summary",
            "status",
            "allowed_status_changes",
            "priority",
            "visibility",
            "opened_on",
            "next_step",
            "next_step_due",
            "last_activity_at",
            "stalled",
            "stalled_since",
            "participants",
            "groups",
            "commitments",
            "progress",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "reference",
            "status",
            "last_activity_at",
            "stalled",
            "stalled_since",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=NegotiationStatus.choices)))
    def get_allowed_status_changes(self, negotiation):
        return allowed_transitions(negotiation.status)

    def to_representation(self, negotiation):
        return negotiation_representation(negotiation)


@extend_schema_serializer(component_name="Negotiation")  # the one schema of a negotiation, staff fields optional
class StaffNegotiationSerializer(NegotiationSerializer):
    """A prisoner-exchange negotiation: its parties, the groups it covers, its status and what was
    committed and carried out. The status changes only through `status-changes/`. `teams` and
    `case_officer` are for staff logins alone (absent from what an API client sees)."""

    teams = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Team.objects.all(),
        many=True,
        required=False,
        help_text="Staff logins only: the names of the staff teams that work on it. Absent from what an API "
        "client sees, and refused (400) from one.",
    )
    case_officer = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True),
        required=False,
        allow_null=True,
        help_text="Staff logins only: the staff username of its case officer, or null. Absent from what an API "
        "client sees, and refused (400) from one.",
    )

    class Meta(NegotiationSerializer.Meta):
        fields = [*NegotiationSerializer.Meta.fields, "teams", "case_officer"]

    def to_representation(self, negotiation):
        return {
            **negotiation_representation(negotiation),
            "teams": sorted(team.name for team in negotiation.teams.all()),
            "case_officer": negotiation.case_officer.get_username() if negotiation.case_officer_id else None,
        }


def negotiation_representation(negotiation):
    """The same JSON DRF's fields would produce, built directly: lists of 50 or 200
    negotiations are the hot path, and per-field dispatch dominated their cost. Also used
    by `fast_reads` on plain rows with the same attributes, so both paths answer alike."""
    return {
        "id": str(negotiation.pk),
        "reference": negotiation.reference,
        "title": negotiation.title,
        "summary": negotiation.summary,
        "status": negotiation.status,
        "allowed_status_changes": allowed_transitions(negotiation.status),
        "priority": negotiation.priority,
        "visibility": negotiation.visibility,
        "opened_on": _day(negotiation.opened_on),
        "next_step": negotiation.next_step,
        "next_step_due": _day(negotiation.next_step_due),
        "last_activity_at": _iso(negotiation.last_activity_at),
        "stalled": negotiation.stalled,
        "stalled_since": _iso(negotiation.stalled_since),
        "participants": _participants(negotiation),
        "groups": _groups(negotiation),
        "commitments": _commitments(negotiation),
        "progress": _progress(negotiation),
        "created_at": _iso(negotiation.created_at),
        "updated_at": _iso(negotiation.updated_at),
    }


def _participants(negotiation):
    if hasattr(negotiation, "participants_json"):  # fetched as JSON by selectors.negotiation_list
        return negotiation.participants_json
    return [{"party": str(p.party_id), "role": p.role} for p in negotiation.participants.all()]


def _groups(negotiation):
    if hasattr(negotiation, "groups_json"):
        return negotiation.groups_json
    return [
        {"group": str(g.group_id), "proposed_count": g.proposed_count, "released_count": g.released_count}
        for g in negotiation.covered_groups.all()
    ]


def _commitments(negotiation):
    if hasattr(negotiation, "commitments_json"):
        return negotiation.commitments_json
    return [
        {"party": str(c.party_id), "count": c.count, "seriously_wounded_count": c.seriously_wounded_count, "notes": c.notes}
        for c in negotiation.commitments.all()
    ]


def _progress(negotiation):
    if hasattr(negotiation, "progress_json"):  # computed in SQL (selectors.PROGRESS_JSON)
        return negotiation.progress_json
    from ...selectors import progress

    return progress(negotiation)


def _day(value):
    if value is None or isinstance(value, str):  # str: written by PostgreSQL (fast_reads)
        return value
    return value.isoformat()


def _iso(value):
    """As DRF writes a timestamp: ISO 8601 in UTC, with `Z`."""
    if value is None or isinstance(value, str):  # str: written the same way by PostgreSQL (fast_reads)
        return value
    text = value.astimezone(dt_timezone.utc).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class StatusChangeSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """One move of a negotiation's status, in order (`sequence`), with when it happened."""

    to_status = serializers.ChoiceField(choices=NegotiationStatus.choices)
    occurred_at = OffsetDateTimeField(
        required=False, help_text="When it happened; defaults to now; may be in the past, never in the future."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=LONG_TEXT)
    recorded_by = RecordedByField()

    refuse_changes_to = {
        name: _("Set by the tracker; do not send it.") for name in ("from_status", "sequence", "recorded_at")
    }

    class Meta:
        model = StatusChange
        fields = [
            "id",
            "negotiation",
            "sequence",
            "from_status",
            "to_status",
            "occurred_at",
            "recorded_at",
            "recorded_by",
            "note",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "negotiation",
            "sequence",
            "from_status",
            "recorded_at",
            "created_at",
            "updated_at",
        ]


class EventSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """An event on a negotiation's timeline: a meeting, a proposal, a statement..."""

    occurred_at = OffsetDateTimeField()
    summary = serializers.CharField(max_length=LONG_TEXT)
    parties = uuid_related(Party.objects.all(), many=True, required=False)
    recorded_by = RecordedByField()
    recorded_by_party = recorded_by_party_field()

    class Meta:
        model = Event
        fields = [
            "id",
            "negotiation",
            "kind",
            "occurred_at",
            "summary",
            "parties",
            "source",
            "recorded_by",
            "recorded_by_party",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "negotiation", "created_at", "updated_at"]
