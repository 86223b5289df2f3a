"""Handovers: the stages in which an agreement is carried out, with their transfers.

Recorded from the negotiation's page ("Record handover", exchanges.admin.agreement);
here they are listed, filtered, exported, changed and deleted, every write through
`exchanges.services` (the transfers inline replaces the list through `handover_update`).
"""
from django import forms
from django.contrib import admin
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .. import services
from ..choices import HandoverState
from ..models import Handover, Transfer
from ..spreadsheets import CsvExportMixin
from .agreement import PartiesOfTheNegotiationMixin, PartsWithinWholeForm, is_overdue
from .search import THROUGH_NEGOTIATION, IndexedSearchMixin, SearchSpec
from .base import AuditedAdminMixin, EditedWithParentMixin, RecordAdmin, RecordTabularInline, ServiceDeleteMixin, changed_fields, is_saved

DISPUTE_COUNTS = ("released_count", "received_count", "verified_count")


def disputed_transfer_q(prefix=""):
    """Transfers whose released, received and verified counts (those given) disagree: the
    same rule as `Transfer.disputed`, in SQL any database runs."""
    disagree = Q()
    for index, first in enumerate(DISPUTE_COUNTS):
        for second in DISPUTE_COUNTS[index + 1 :]:
            disagree |= Q(**{f"{prefix}{first}__isnull": False, f"{prefix}{second}__isnull": False}) & ~Q(
                **{f"{prefix}{first}": F(f"{prefix}{second}")}
            )
    return disagree


def has_disputed_transfer():
    return Exists(Transfer.objects.filter(disputed_transfer_q(), handover=OuterRef("pk")))


class HandoverForm(forms.ModelForm):
    """The handover's fields; the service checks them (with its own messages), and the
    one rule the database also holds is said on the field, not as a broken constraint."""

    def clean(self):
        data = super().clean()
        if data.get("state") == HandoverState.DONE and data.get("occurred_on") is None and "occurred_on" not in self.errors:
            self.add_error("occurred_on", _("Required once the handover is done."))
        return data


class TransferForm(PartsWithinWholeForm):
    parts = (
        ("seriously_wounded_count", "released_count"),
        ("civilians_count", "released_count"),
        ("seriously_wounded_count", "planned_count"),
        ("civilians_count", "planned_count"),
    )

    def clean(self):
        data = super().clean()
        source, target = data.get("from_party"), data.get("to_party")
        if source is not None and target is not None and source.pk == target.pk:
            self.add_error("to_party", _("A party does not transfer to itself."))
        return data


class TransferInline(PartiesOfTheNegotiationMixin, EditedWithParentMixin, RecordTabularInline):
    """The transfers of a handover, between parties taking part; the rows replace the list
    through `services.handover_update` (HandoverAdmin.save_related). Editable by whoever
    may change the handover (the policy, as the service asks it)."""

    model = Transfer
    parent_model = Handover
    form = TransferForm
    extra = 1
    fields = ["from_party", "to_party", *services.TRANSFER_COUNTS]
    party_fields = ("from_party", "to_party")

    def negotiation_of(self, handover):
        return handover.negotiation

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("from_party", "to_party")


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Planned, date passed")), ("no", _("Not overdue"))]

    def queryset(self, request, queryset):
        overdue = Q(state=HandoverState.PLANNED, planned_on__lt=timezone.localdate())
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


class DisputedFilter(admin.SimpleListFilter):
    title = _("counts")
    parameter_name = "disputed"

    def lookups(self, request, model_admin):
        return [("yes", _("Disputed")), ("no", _("Not disputed"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(has_disputed_transfer())
        if self.value() == "no":
            return queryset.exclude(has_disputed_transfer())
        return queryset


def _csv_disputed(row):
    counts = {row[f"transfers__{name}"] for name in DISPUTE_COUNTS} - {None}
    return len(counts) > 1


def _csv_overdue(row):
    return row["state"] == HandoverState.PLANNED and row["planned_on"] is not None and row["planned_on"] < timezone.localdate()


#: The CSV's columns (`CsvExportMixin.csv_columns`): a lookup read with `values_list()`
#: (the state as its label), or (header, lookup or function of the row).
CSV_COLUMNS = [
    ("negotiation", "negotiation__reference"),
    ("negotiation_title", "negotiation__title"),
    "sequence",
    "state",
    "planned_on",
    "occurred_on",
    ("overdue", _csv_overdue),
    "location",
    ("verified_by", "verified_by__name"),
    "source",
    "notes",
    ("from_party", "transfers__from_party__name"),
    ("to_party", "transfers__to_party__name"),
    *((name, f"transfers__{name}") for name in services.TRANSFER_COUNTS),
    ("disputed", _csv_disputed),
]


@admin.register(Handover)
class HandoverAdmin(IndexedSearchMixin, CsvExportMixin, ServiceDeleteMixin, AuditedAdminMixin, RecordAdmin):
    list_display = [
        "negotiation_reference", "sequence", "state", "planned_on", "occurred_on", "overdue_mark", "disputed_mark",
    ]  # fmt: skip
    list_display_links = ["sequence"]
    form = HandoverForm
    list_filter = ["state", OverdueFilter, DisputedFilter]
    list_select_related = ["negotiation"]
    search_fields = ["negotiation__reference", "negotiation__title", "location", "source", "notes"]
    search = SearchSpec(text=("location", "source", "notes"), related=(THROUGH_NEGOTIATION,))
    ordering = ["-negotiation__reference", "sequence"]
    autocomplete_fields = ["verified_by"]
    fields = [
        "negotiation_link", "sequence", "state", "planned_on", "occurred_on", "location", "verified_by", "source", "notes",
        "recorded_by",
    ]  # fmt: skip
    readonly_fields = ["negotiation_link", "sequence", "recorded_by"]
    inlines = [TransferInline]

    # One row per transfer (a handover without any: one row), read with values() in one
    # query; the handover's fields repeat on each of its rows.
    csv_filename = "handovers"
    csv_negotiation_field = "negotiation"
    csv_columns = CSV_COLUMNS
    csv_row_values = ["state", "planned_on", *(f"transfers__{name}" for name in DISPUTE_COUNTS)]

    def csv_queryset(self, queryset):
        return queryset.order_by(*queryset.query.order_by, "transfers__id")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(disputed=has_disputed_transfer())

    def has_add_permission(self, request):
        """Recorded from the negotiation's page ("Record handover"), where the parties are known."""
        return False

    @admin.display(description=_("negotiation"), ordering="negotiation__reference")
    def negotiation_reference(self, handover):
        return handover.negotiation.reference

    @admin.display(description=_("negotiation"))
    def negotiation_link(self, handover):
        if not is_saved(handover):
            return "-"
        url = reverse("admin:exchanges_negotiation_change", args=[handover.negotiation_id])
        return format_html('<a href="{}">{}</a> {}', url, handover.negotiation.reference, handover.negotiation.title)

    @admin.display(description=_("recorded by"))
    def recorded_by(self, handover):
        return handover.recorded_by or _("system")

    @admin.display(description=_("overdue"), ordering="planned_on")
    def overdue_mark(self, handover):
        if not is_overdue(handover, timezone.localdate()):
            return ""
        return format_html('<strong class="handover-overdue" style="color:#ba2121">{}</strong>', _("Overdue"))

    @admin.display(description=_("counts"), ordering="disputed")
    def disputed_mark(self, handover):
        if not getattr(handover, "disputed", False):
            return ""
        return format_html('<strong class="handover-disputed" style="color:#ba2121">{}</strong>', _("Disputed"))

    def delete_service(self, handover, actor):
        services.handover_delete(handover=handover, actor=actor)

    def save_model(self, request, obj, form, change):
        pass  # written with its transfers in save_related, through the service

    def save_related(self, request, form, formsets, change):
        """The handover's changed fields and, when the inline changed, its transfers as a
        whole list, in one call of the service (none when nothing changed: no audit entry,
        no webhook, no activity)."""
        transfers = None
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            editable = "from_party" in formset.form.base_fields  # not a read-only inline
            if formset.model is Transfer and editable and formset.has_changed():
                transfers = [
                    {
                        "from_party": row["from_party"],
                        "to_party": row["to_party"],
                        **{name: row.get(name) for name in services.TRANSFER_COUNTS},
                    }
                    for row in (inline.cleaned_data for inline in formset.forms)
                    if row and not row.get("DELETE") and row.get("from_party") and row.get("to_party")
                ]
        fields = changed_fields(form, services.HANDOVER_FIELDS)
        if fields or transfers is not None:
            services.handover_update(handover=form.instance, actor=request.user, transfers=transfers, **fields)
