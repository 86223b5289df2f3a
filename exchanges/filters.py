"""Query-string filters for the API lists. Bad values get 400 naming the filter.

Choice filters on a record's own column say `distinct=False`: django-filter's
`MultipleChoiceFilter` adds DISTINCT by default (for joins that repeat rows), and over a
million negotiations DISTINCT sorts or hashes every matching row before the first page."""
import json
from datetime import timezone as dt_timezone

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField

from .choices import (
    EventKind,
    FigureMetric,
    GroupCategory,
    NegotiationStatus,
    PartyKind,
    Priority,
    Reliability,
    Visibility,
)
from .models import CoveredGroup, DetaineeGroup, Event, Negotiation, Participant, Party, ReportedFigure


NO_OFFSET = _("Give the offset too (for example 2022-05-16T10:00:00Z).")


def lacks_offset(value):
    """Whether `value` is a timestamp written without its offset (ambiguous by hours: the
    API refuses it rather than guess)."""
    try:
        parsed = parse_datetime(value.strip()) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible: the field's own check says so
        return False
    return parsed is not None and parsed.tzinfo is None


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 timestamp turned into UTC, so any offset Python accepts reaches the
    database as a time it can store; one outside the representable range is a 400."""

    def to_python(self, value):
        if lacks_offset(value):
            raise forms.ValidationError(NO_OFFSET)
        parsed = super().to_python(value)
        if parsed is None:
            return parsed
        try:
            return parsed.astimezone(dt_timezone.utc)
        except OverflowError:
            raise forms.ValidationError(_("Out of the representable range of dates.")) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class StrictBooleanField(forms.Field):
    """`true` or `false` (also `1` and `0`, any case); anything else is a 400 naming the
    filter, never silently ignored."""

    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise forms.ValidationError(_("Use true or false.")) from None


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


EMPTY_VALUE = _("Give a value, or leave the parameter out.")


class StrictFilterSet(django_filters.FilterSet):
    """A typed filter sent empty (`?party=`, `?updated_since=`) is a 400 naming it, not
    silently "no filter": the schema says what each takes, and an empty value is none of
    it. Free-text filters (`search`, `country`) may be empty."""

    def get_form_class(self):
        form_class = super().get_form_class()
        free_text = {name for name, filter_ in self.filters.items() if type(filter_) is django_filters.CharFilter}

        class StrictForm(form_class):
            def clean(form):
                cleaned = super().clean()
                getlist = getattr(form.data, "getlist", None)
                for name in form.fields:
                    if name in free_text or name not in form.data:
                        continue
                    values = getlist(name) if getlist else [form.data.get(name)]
                    if any(value == "" for value in values) and name not in form.errors:
                        form.add_error(name, EMPTY_VALUE)
                return cleaned

        return StrictForm


class PartyFilter(StrictFilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=PartyKind.choices, distinct=False)
    country = django_filters.CharFilter(field_name="country", lookup_expr="iexact", max_length=2)
    search = django_filters.CharFilter(method="filter_search", max_length=200, label=_("Name, short name or an alias contains"))

    class Meta:
        model = Party
        fields = ["kind", "country", "search"]

    def filter_search(self, queryset, name, value):
        """Name, short name or any alias (aliases compared as their JSON text, case aside)."""
        return queryset.filter(Q(name__icontains=value) | Q(short_name__icontains=value) | aliases_match(value))


def aliases_match(value):
    """Parties with an alias containing `value` (case aside). SQLite keeps JSON with
    non-ASCII letters escaped (`\\u041e`), so there the escaped spelling is matched too."""
    condition = Q(aliases__icontains=value)
    escaped = json.dumps(value)[1:-1]
    if escaped != value:
        condition |= Q(aliases__icontains=escaped)
    return condition


class DetaineeGroupFilter(StrictFilterSet):
    held_by = django_filters.UUIDFilter(field_name="held_by")
    affiliated_with = django_filters.UUIDFilter(field_name="affiliated_with")
    category = django_filters.MultipleChoiceFilter(choices=GroupCategory.choices, distinct=False)
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=200)

    class Meta:
        model = DetaineeGroup
        fields = ["held_by", "affiliated_with", "category", "updated_since", "search"]


class ReportedFigureFilter(StrictFilterSet):
    metric = django_filters.MultipleChoiceFilter(choices=FigureMetric.choices, distinct=False)
    reliability = django_filters.MultipleChoiceFilter(choices=Reliability.choices, distinct=False)
    source_party = django_filters.UUIDFilter(field_name="source_party")

    class Meta:
        model = ReportedFigure
        fields = ["metric", "reliability", "source_party"]


class NegotiationFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=NegotiationStatus.choices, distinct=False, label=_("Status (repeatable)"))
    stalled = StrictBooleanFilter()
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices, distinct=False)
    visibility = django_filters.MultipleChoiceFilter(choices=Visibility.choices, distinct=False)
    party = django_filters.UUIDFilter(method="filter_party", label=_("A party taking part"))
    group = django_filters.UUIDFilter(method="filter_group", label=_("A detainee group covered"))
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    search = django_filters.CharFilter(method="filter_search", max_length=200, label=_("Title or reference contains"))

    class Meta:
        model = Negotiation
        fields = ["status", "stalled", "priority", "visibility", "party", "group", "updated_since", "search"]

    def filter_party(self, queryset, name, value):
        return queryset.filter(Exists(Participant.objects.filter(negotiation=OuterRef("pk"), party=value)))

    def filter_group(self, queryset, name, value):
        return queryset.filter(Exists(CoveredGroup.objects.filter(negotiation=OuterRef("pk"), group=value)))

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(title__icontains=value) | Q(reference__icontains=value))


class EventFilter(StrictFilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EventKind.choices, distinct=False)
    occurred_after = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lte")

    class Meta:
        model = Event
        fields = ["kind", "occurred_after", "occurred_before"]


def mine_q(user, prefix=""):
    """Negotiations (through `prefix`) a staff login works on: as their case officer, or
    through one of its teams ("My work", the negotiation list's "mine" filter)."""
    from . import policy

    teams = Negotiation.teams.through.objects.filter(negotiation=OuterRef(f"{prefix}pk"), team__in=policy.team_ids(user))
    return Q(**{f"{prefix}case_officer": user.pk}) | Q(Exists(teams))
