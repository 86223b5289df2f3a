"""List filters that offer their choices without reading the list.

Django's `RelatedOnlyFieldListFilter` and `AllValuesFieldListFilter` find their choices
with a `SELECT DISTINCT` over the whole list (three million participants, a million
negotiations, the audit trail), and `date_hierarchy` another over its dates: seconds per
page at a million. These list the choices from the small table they come from instead.
"""
import uuid

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from ..filters import mine_q
from ..models import Participant, Party
from ..selectors import NEXT_STEP_WINDOWS, next_step_q


class StaffLoginFilter(admin.RelatedFieldListFilter):
    """A staff login (case officer, reader of the access log): the staff logins, by name."""

    def field_choices(self, field, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True).order_by("username")
        return [(user.pk, str(user)) for user in staff]


class RecordKindFilter(admin.SimpleListFilter):
    """The kind of record an audit entry is about, from the models of the record and the
    tracker (not a DISTINCT over the trail)."""

    title = capfirst(apps.get_model("exchanges", "AuditEntry")._meta.get_field("model").verbose_name)
    parameter_name = "model"
    app_labels = ("exchanges", "tracker", "auth")

    def lookups(self, request, model_admin):
        models = [model for label in self.app_labels for model in apps.get_app_config(label).get_models()]
        choices = [(model._meta.label_lower, capfirst(model._meta.verbose_name)) for model in models]
        return sorted(choices, key=lambda choice: str(choice[1]))

    def queryset(self, request, queryset):
        return queryset.filter(model=self.value()) if self.value() else queryset


class KnownValuesFilter(admin.SimpleListFilter):
    """A text column whose values the code writes from a short known list (`values`, shown
    as written, as Django's own filter shows them); a value ending in ":" matches every
    value it begins ("task:" for each Celery task)."""

    values = ()

    def lookups(self, request, model_admin):
        return [(value, self.labels.get(value, value)) for value in self.values]

    labels = {}

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value.endswith(":"):
            return queryset.filter(**{f"{self.parameter_name}__startswith": value})
        return queryset.filter(**{self.parameter_name: value})


def known_values_filter(model, field_name, values):
    """A KnownValuesFilter for `model.field_name` (titled with the field's name); `values`
    is {value: label} (or a list of values shown as written)."""
    field = model._meta.get_field(field_name)
    labels = dict(values) if isinstance(values, dict) else {}
    return type(f"{field_name.title()}Filter", (KnownValuesFilter,), {
        "title": field.verbose_name, "parameter_name": field_name, "values": tuple(values), "labels": labels,
    })  # fmt: skip


# The negotiations list's own filters ------------------------------------------------


class MineFilter(admin.SimpleListFilter):
    """My work: negotiations where I am the case officer or one of my teams works."""

    title = _("whose")
    parameter_name = "mine"

    def lookups(self, request, model_admin):
        return [("yes", _("Mine (case officer or my teams)"))]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if self.value() != "yes":
            raise IncorrectLookupParameters(_("Use mine=yes."))
        return queryset.filter(mine_q(request.user))


class StalledFilter(admin.SimpleListFilter):
    title = _("stalled")
    parameter_name = "stalled"

    def lookups(self, request, model_admin):
        return [("yes", _("Stalled")), ("no", _("Not stalled"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(stalled=True)
        if self.value() == "no":
            return queryset.filter(stalled=False)
        return queryset


class NextStepFilter(admin.SimpleListFilter):
    """Open negotiations by their next step's due date, as the dashboard links to them."""

    title = _("next step")
    parameter_name = "next_step"

    def lookups(self, request, model_admin):
        return [
            ("overdue", _("Overdue")),
            ("week", _("Due in the coming week")),
            ("later", _("Due later")),
            ("none", _("No due date")),
        ]

    def queryset(self, request, queryset):
        if self.value() in NEXT_STEP_WINDOWS:
            return queryset.filter(next_step_q(self.value(), today=timezone.localdate()))
        return queryset


class PartyTakingPartFilter(admin.SimpleListFilter):
    title = _("party")
    parameter_name = "party"

    def lookups(self, request, model_admin):
        """Every party, from its own (small) table, as on every negotiation's page and to
        every API client: finding only those taking part in a negotiation the login may
        see was a DISTINCT over every participant (seconds at a million)."""
        return [(str(party.pk), str(party)) for party in Party.objects.order_by("name")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            party = uuid.UUID(self.value())
        except ValueError:  # a hand-edited address: the list's "invalid filter" page, not a 500
            raise IncorrectLookupParameters(_("Not a party id.")) from None
        return queryset.filter(Exists(Participant.objects.filter(negotiation=OuterRef("pk"), party=party)))
