"""JSON in and out. Serializers translate and validate shapes; services do the writing."""
from datetime import timezone as dt_timezone

import pycountry
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import policy
from ..choices import NegotiationStatus, ParticipantRole, allowed_transitions
from ..filters import NO_OFFSET, lacks_offset
from ..models.parties import MAX_ALIAS_LENGTH, MAX_ALIASES
from ..models import (
    MAX_COUNT,
    ApiClient,
    CoveredGroup,
    DetaineeGroup,
    Event,
    Negotiation,
    Participant,
    Party,
    ReportedFigure,
    StatusChange,
    Team,
)
from ..selectors import figures_summary

#: Upper bounds on free text, so one request cannot store megabytes in a field.
LONG_TEXT = 20_000
MEDIUM_TEXT = 5_000

COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries) | {"XK"}


class StrictFieldsMixin:
    """Refuse fields the resource does not have, instead of silently dropping them.

    Read-only fields may be sent back unchanged (a GET body PUT back works), but a
    read-only field named in `refuse_changes_to` with a different value is refused:
    a partner who sends `status` must learn it did not change the status.
    """

    refuse_changes_to = {}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for name in data:
                if name not in self.fields:
                    errors[name] = [_("Unknown field.")]
                elif name in self.refuse_changes_to:
                    current = getattr(self.instance, name, None) if self.instance is not None else None
                    if current is not None:  # compared as the API writes it (a date as "2022-05-17")
                        current = self.fields[name].to_representation(current)
                    if data[name] != current:
                        errors[name] = [self.refuse_changes_to[name]]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def uuid_related(queryset, **kwargs):
    return serializers.PrimaryKeyRelatedField(queryset=queryset, pk_field=serializers.UUIDField(), **kwargs)


class VisibleGroupField(serializers.PrimaryKeyRelatedField):
    """A detainee group the caller may see; any other id is "does not exist" (400)."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return DetaineeGroup.objects.none()
        return policy.groups_visible_to(request.user)


def recorded_by_party_field():
    return serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, pk_field=serializers.UUIDField(),
        help_text="The party whose API client recorded it (null: staff); only that party may change it.",
    )  # fmt: skip


class OffsetDateTimeField(serializers.DateTimeField):
    """A timestamp with its offset (`Z` or `+03:00`): one without is ambiguous by hours, so
    it is refused (400), never guessed."""

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if lacks_offset(value):
            raise serializers.ValidationError(NO_OFFSET)
        return parsed


def count_field(**kwargs):
    return serializers.IntegerField(min_value=0, max_value=MAX_COUNT, **kwargs)


class RecordedByField(serializers.Field):
    """Who recorded a row: a staff user, an API client, or the system (null)."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, instance):
        if instance.recorded_by_client_id:
            client = instance.recorded_by_client
            return {"type": "api_client", "id": str(client.pk), "name": client.name}
        if instance.recorded_by_user_id:
            user = instance.recorded_by_user
            return {"type": "staff", "id": str(user.pk), "name": user.get_username()}
        return None


RecordedByField = extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {
            "type": {"type": "string", "enum": ["staff", "api_client"]},
            "id": {"type": "string"},
            "name": {"type": "string"},
        },
    }
)(RecordedByField)


class PartySerializer(StrictFieldsMixin, serializers.ModelSerializer):
    country = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=2, help_text="ISO 3166-1 alpha-2 code."
    )
    aliases = serializers.ListField(
        child=serializers.CharField(max_length=MAX_ALIAS_LENGTH),
        max_length=MAX_ALIASES,
        required=False,
        help_text="Other names, abbreviations and spellings in any script; `search` matches them.",
    )

    class Meta:
        model = Party
        fields = ["id", "name", "short_name", "kind", "country", "aliases", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_country(self, value):
        if not value:
            return None
        code = value.upper()
        if code not in COUNTRY_CODES:
            raise serializers.ValidationError(_("Not an ISO 3166-1 alpha-2 country code."))
        return code

    def validate_short_name(self, value):
        if value:
            clash = Party.objects.filter(short_name=value)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError(_("Another party already has this short name."))
        return value


class DetaineeGroupSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    held_by = uuid_related(Party.objects.all())
    affiliated_with = uuid_related(Party.objects.all())
    estimated_count = count_field(required=False, allow_null=True)
    seriously_wounded_count = count_field(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=LONG_TEXT)
    figures_summary = serializers.SerializerMethodField()
    recorded_by_party = recorded_by_party_field()

    class Meta:
        model = DetaineeGroup
        fields = [
            "id",
            "name",
            "held_by",
            "affiliated_with",
            "category",
            "detained_since",
            "location",
            "estimated_count",
            "seriously_wounded_count",
            "notes",
            "figures_summary",
            "recorded_by_party",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    @extend_schema_field(
        {
            "type": "object",
            "description": "Per metric: lowest and highest value claimed, reports, distinct sources, disputed.",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "lowest": {"type": "integer"},
                    "highest": {"type": "integer"},
                    "reports": {"type": "integer"},
                    "sources": {"type": "integer"},
                    "disputed": {"type": "boolean"},
                },
            },
        }
    )
    def get_figures_summary(self, group):
        return figures_summary(group.figures.all())


class ReportedFigureSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    value = count_field()
    source_party = uuid_related(Party.objects.all(), required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=LONG_TEXT)
    recorded_by_party = recorded_by_party_field()

    class Meta:
        model = ReportedFigure
        fields = [
            "id",
            "group",
            "metric",
            "value",
            "source_party",
            "source",
            "reported_on",
            "reliability",
            "notes",
            "recorded_by_party",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "group", "created_at", "updated_at"]


class ReportedFigureUpdateSerializer(ReportedFigureSerializer):
    """A claim's substance is fixed once recorded: only its assessment can change."""

    # Declared on the parent, so Meta.read_only_fields does not reach them.
    value = count_field(read_only=True)
    source_party = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True, pk_field=serializers.UUIDField())

    class Meta(ReportedFigureSerializer.Meta):
        read_only_fields = [
            "id",
            "group",
            "metric",
            "value",
            "source_party",
            "source",
            "reported_on",
            "created_at",
            "updated_at",
        ]

    refuse_changes_to = {
        name: _("A reported figure is never overwritten: record a new figure instead.")
        for name in ("metric", "value", "source", "reported_on")
    }

    def to_internal_value(self, data):
        if isinstance(data, dict) and "source_party" in data and self.instance is not None:
            current = str(self.instance.source_party_id) if self.instance.source_party_id else None
            if data["source_party"] != current:
                raise serializers.ValidationError({"source_party": [self.refuse_changes_to["value"]]})
        return super().to_internal_value(data)


class WholeItemMixin:
    """List items are whole objects even inside a PATCH: DRF's `partial` would otherwise
    let an item without its `party` or `group` through, and lists replace what is stored."""

    def run_validation(self, data=serializers.empty):
        if isinstance(data, dict):
            missing = [
                name for name, field in self.fields.items()
                if field.required and not field.read_only and name not in data
            ]
            if missing:
                raise serializers.ValidationError({name: [_("This field is required.")] for name in missing})
        return super().run_validation(data)


class ParticipantSerializer(WholeItemMixin, StrictFieldsMixin, serializers.ModelSerializer):
    party = uuid_related(Party.objects.all())
    role = serializers.ChoiceField(choices=ParticipantRole.choices)

    class Meta:
        model = Participant
        fields = ["party", "role"]


class CoveredGroupSerializer(WholeItemMixin, StrictFieldsMixin, serializers.ModelSerializer):
    group = VisibleGroupField(pk_field=serializers.UUIDField())
    proposed_count = count_field(required=False, allow_null=True)
    released_count = count_field(required=False, allow_null=True)

    class Meta:
        model = CoveredGroup
        fields = ["group", "proposed_count", "released_count"]


class NegotiationSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    participants = ParticipantSerializer(many=True, required=False)
    groups = CoveredGroupSerializer(many=True, required=False, source="covered_groups")
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


class StaffNegotiationSerializer(NegotiationSerializer):
    """What staff see and send: a client's view of a negotiation, and its `teams` (names)
    and `case_officer` (a staff username or null)."""

    teams = serializers.SlugRelatedField(slug_field="name", queryset=Team.objects.all(), many=True, required=False)
    case_officer = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True),
        required=False,
        allow_null=True,
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


class ApiClientSerializer(serializers.ModelSerializer):
    """The calling client, as `GET /api/v1/me/` shows it."""

    class Meta:
        model = ApiClient
        fields = ["id", "name", "party", "read_only", "token_prefix", "expires_at", "last_used_at", "created_at"]
        read_only_fields = fields
