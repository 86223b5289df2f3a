"""List filters that offer their choices without reading the list.

Django's `RelatedOnlyFieldListFilter` and `AllValuesFieldListFilter` find their choices
with a `SELECT DISTINCT` over the whole list (three million participants, a million
negotiations, the audit trail), and `date_hierarchy` another over its dates: seconds per
page at a million. These list the choices from the small table they come from instead.
"""
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.utils.text import capfirst


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
