"""Query-string filters for flags."""
import django_filters

from exchanges.filters import StrictBooleanFilter, StrictFilterSet

from .choices import FlagKind, FlagLevel
from .models import Flag


class FlagFilter(StrictFilterSet):
    open = StrictBooleanFilter(field_name="resolved_at", lookup_expr="isnull", label="Open (not resolved)")
    kind = django_filters.MultipleChoiceFilter(choices=FlagKind.choices, distinct=False)
    level = django_filters.MultipleChoiceFilter(choices=FlagLevel.choices, distinct=False)
    negotiation = django_filters.UUIDFilter(field_name="negotiation")
    acknowledged = StrictBooleanFilter(field_name="acknowledged_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Flag
        fields = ["open", "kind", "level", "negotiation", "acknowledged"]
