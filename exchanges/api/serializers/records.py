"""Parties, detainee groups and the figures claimed about them; the calling API client."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ...models.parties import MAX_ALIAS_LENGTH, MAX_ALIASES
from ...models import (
    ApiClient,
    DetaineeGroup,
    Party,
    ReportedFigure,
)
from ...selectors import figures_summary
from .fields import (
    COUNTRY_CODES,
    LONG_TEXT,
    StrictFieldsMixin,
    count_field,
    recorded_by_party_field,
    uuid_related,
)
from .negotiations import _day, _iso


class PartySerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A negotiating party: a government, a de-facto authority, a mediator, the UN, the ICRC..."""

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


class FigureSummarySerializer(serializers.Serializer):
    """What the figures claimed about one metric of a group add up to."""

    lowest = serializers.IntegerField()
    highest = serializers.IntegerField()
    reports = serializers.IntegerField(help_text="How many claims.")
    sources = serializers.IntegerField(help_text="How many distinct sources (parties, or source texts).")
    disputed = serializers.BooleanField(help_text="The claims disagree (lowest differs from highest).")


class DetaineeGroupSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A group of detainees held by one party, affiliated with another, with a summary of
    every figure claimed about it."""

    held_by = uuid_related(Party.objects.all())
    affiliated_with = uuid_related(Party.objects.all())
    estimated_count = count_field(required=False, allow_null=True)
    seriously_wounded_count = count_field(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=LONG_TEXT)
    figures_summary = serializers.SerializerMethodField(
        help_text="Per metric claimed (the keys are `FigureMetricEnum` values): lowest and highest value, reports, distinct sources, disputed."
    )
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

    @extend_schema_field(serializers.DictField(child=FigureSummarySerializer()))
    def get_figures_summary(self, group):
        return figures_summary(group.figures.all())

    def to_representation(self, group):
        """The same JSON DRF's fields would produce (tests/api/test_group_representation.py
        pins it), built directly: the groups list serialised 50 groups in 10 ms through the
        fields, the bulk of its time (BENCHMARKS.md, issue 17)."""
        return {
            "id": str(group.pk),
            "name": group.name,
            "held_by": _uuid(group.held_by_id),
            "affiliated_with": _uuid(group.affiliated_with_id),
            "category": group.category,
            "detained_since": _day(group.detained_since),
            "location": group.location,
            "estimated_count": group.estimated_count,
            "seriously_wounded_count": group.seriously_wounded_count,
            "notes": group.notes,
            "figures_summary": figures_summary(group.figures.all()),
            "recorded_by_party": _uuid(group.recorded_by_party_id),
            "created_at": _iso(group.created_at),
            "updated_at": _iso(group.updated_at),
        }


def _uuid(value):
    return None if value is None else str(value)


class ReportedFigureSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A figure claimed about a detainee group, with its source: kept side by side with the
    other claims, never overwritten."""

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


class ApiClientSerializer(serializers.ModelSerializer):
    """The calling client, as `GET /api/v1/me/` shows it."""

    class Meta:
        model = ApiClient
        fields = ["id", "name", "party", "read_only", "token_prefix", "expires_at", "last_used_at", "created_at"]
        read_only_fields = fields
