"""The staff interface. Every save goes through `exchanges.services`, like the API."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Count, Exists, OuterRef, Prefetch
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from . import charts, figure_import, services
from .choices import FINAL, FigureMetric, NegotiationStatus, Reliability, allowed_transitions
from .models import (
    ApiClient,
    AuditEntry,
    CoveredGroup,
    DetaineeGroup,
    Event,
    Negotiation,
    Participant,
    Party,
    ReportedFigure,
    StatusChange,
)
from .selectors import NEXT_STEP_WINDOWS, disputed_groups_q, figures_summary, next_step_q
from .spreadsheets import CsvExportMixin


def _changed(form, names):
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


def _adopt(obj, saved):
    """Make the admin's in-memory object the one the service saved (the admin redirects to obj.pk)."""
    obj.__dict__.update({key: value for key, value in saved.__dict__.items() if key != "_state"})
    obj._state.adding = False
    obj._state.db = saved._state.db


def render_audit(entries):
    """A table of audit entries: when, who, via, what, and each field's before → after."""
    entries = list(entries)
    if not entries:
        return _("No changes recorded.")

    def changes(entry):
        return format_html_join(
            "",
            "<div><code>{}</code>: {} → {}</div>",
            ((field, _short(values[0]), _short(values[1])) for field, values in entry.changes.items()),
        )

    rows = format_html_join(
        "",
        "<tr><td style='white-space:nowrap'>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                entry.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                entry.actor_label,
                entry.channel,
                entry.get_action_display(),
                entry.object_repr,
                changes(entry),
            )
            for entry in entries
        ),
    )
    return format_html(
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
        _("When"), _("Who"), _("Via"), _("Action"), _("Object"), _("Changes"), rows,
    )


def _short(value):
    text = "∅" if value in (None, "") else str(value)
    return text if len(text) <= 120 else text[:117] + "…"


class AuditedAdminMixin:
    """Adds a read-only “Who changed what” section listing the object's audit entries."""

    audit_limit = 100

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "audit_trail"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        fieldsets = [(name, {**opts, "fields": [f for f in opts["fields"] if f != "audit_trail"]}) for name, opts in fieldsets]
        if obj is not None:
            fieldsets.append((_("Who changed what"), {"fields": ["audit_trail"], "classes": ["collapse"]}))
        return fieldsets

    def audit_entries(self, obj):
        return AuditEntry.objects.filter(model=obj._meta.label_lower, object_id=str(obj.pk))

    @admin.display(description=_("audit trail"))
    def audit_trail(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        return render_audit(self.audit_entries(obj)[: self.audit_limit])


class ReadOnlyAdminMixin:
    """For append-only history: visible, never added, edited or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Party)
class PartyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "short_name", "kind", "country", "negotiation_count"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "short_name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(negotiation_count=Count("participations"))

    @admin.display(description=_("negotiations"), ordering="negotiation_count")
    def negotiation_count(self, party):
        return party.negotiation_count

    def save_model(self, request, obj, form, change):
        data = _changed(form, services.PARTY_FIELDS) if change else {
            name: form.cleaned_data.get(name) for name in services.PARTY_FIELDS
        }
        if change:
            services.party_update(party=obj, actor=request.user, **data)
        else:
            _adopt(obj, services.party_create(actor=request.user, **data))


class FigureInline(admin.TabularInline):
    """Claims already recorded about the group: their substance is fixed, only the assessment
    (reliability, notes) changes. New claims are added with the link above the table."""

    model = ReportedFigure
    extra = 0
    fields = ["metric", "value", "source_party", "source", "reported_on", "reliability", "notes"]
    readonly_fields = ["metric", "value", "source_party", "source", "reported_on"]
    ordering = ["metric", "reported_on"]
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 40})}}

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DisputedFilter(admin.SimpleListFilter):
    title = _("figures")
    parameter_name = "disputed"

    def lookups(self, request, model_admin):
        return [("yes", _("Disputed")), ("no", _("Not disputed"))]

    def queryset(self, request, queryset):
        disputed = disputed_groups_q()
        if self.value() == "yes":
            return queryset.filter(disputed)
        if self.value() == "no":
            return queryset.exclude(disputed)
        return queryset


@admin.register(DetaineeGroup)
class DetaineeGroupAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "held_by",
        "affiliated_with",
        "category",
        "estimated_count",
        "seriously_wounded_count",
        "disputed",
    ]
    list_filter = ["category", DisputedFilter, "held_by", "affiliated_with"]
    list_select_related = ["held_by", "affiliated_with"]
    search_fields = ["name", "location", "notes"]
    autocomplete_fields = ["held_by", "affiliated_with"]
    readonly_fields = ["figures_side_by_side"]
    fieldsets = [
        (None, {"fields": ["name", "category", "held_by", "affiliated_with", "detained_since", "location"]}),
        (_("Working figures"), {"fields": ["estimated_count", "seriously_wounded_count", "notes"]}),
        (_("What each source claims"), {"fields": ["figures_side_by_side"]}),
    ]
    inlines = [FigureInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("figures")

    @admin.display(description=_("disputed"), boolean=True)
    def disputed(self, group):
        return any(entry["disputed"] for entry in figures_summary(group.figures.all()).values())

    @admin.display(description=_("figures side by side"))
    def figures_side_by_side(self, group):
        """One row per metric, one column per claim, the dispute spelled out."""
        if group is None or group.pk is None:
            return _("Save the group, then record what each source reported.")
        add_url = reverse("admin:exchanges_reportedfigure_add") + f"?group={group.pk}"
        add_link = format_html('<p><a class="addlink" href="{}">{}</a></p>', add_url, _("Record a figure someone reported"))
        figures = list(group.figures.select_related("source_party").order_by("metric", "reported_on"))
        if not figures:
            return format_html("{}<p>{}</p>", add_link, _("No figures reported yet."))
        summary = figures_summary(figures)
        rows = []
        for metric, entry in summary.items():
            claims = [figure for figure in figures if figure.metric == metric]
            cells = format_html_join(
                "",
                '<td style="padding:4px 12px"><strong>{}</strong><br>{}<br><small>{} · {}</small></td>',
                (
                    (
                        charts.grouped(figure.value),
                        figure.source_party or figure.source or "?",
                        figure.reported_on,
                        figure.get_reliability_display(),
                    )
                    for figure in claims
                ),
            )
            verdict = (
                format_html(
                    '<span style="color:#ba2121;font-weight:bold">{}</span>',
                    _("Disputed: %(low)s to %(high)s") % {"low": charts.grouped(entry["lowest"]), "high": charts.grouped(entry["highest"])},
                )
                if entry["disputed"]
                else _("Sources agree")
            )
            rows.append(
                format_html(
                    '<tr><th style="padding:4px 12px">{}</th>{}<td style="padding:4px 12px">{}</td></tr>',
                    claims[0].get_metric_display(),
                    cells,
                    verdict,
                )
            )
        return format_html("{}<table>{}</table>", add_link, format_html_join("", "{}", ((row,) for row in rows)))

    def save_model(self, request, obj, form, change):
        if change:
            services.detainee_group_update(
                group=obj, actor=request.user, **_changed(form, services.GROUP_FIELDS)
            )
        else:
            data = {name: form.cleaned_data.get(name) for name in services.GROUP_FIELDS}
            _adopt(obj, services.detainee_group_create(actor=request.user, **data))

    def save_formset(self, request, form, formset, change):
        """Only the assessment of recorded claims is editable here; it goes through the service."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if inline_form.has_changed() and inline_form.cleaned_data:
                services.figure_update(
                    figure=inline_form.instance,
                    actor=request.user,
                    **_changed(inline_form, services.FIGURE_MUTABLE_FIELDS),
                )


class FigureImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))


@admin.register(ReportedFigure)
class ReportedFigureAdmin(CsvExportMixin, AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["group", "metric", "value", "source_party", "source", "reported_on", "reliability"]
    list_filter = ["metric", "reliability", "source_party"]
    list_select_related = ["group", "source_party"]
    search_fields = ["group__name", "source", "notes"]
    date_hierarchy = "reported_on"
    autocomplete_fields = ["group", "source_party"]
    # The same columns the import reads, so an export edited in a spreadsheet comes back in.
    csv_filename = "reported-figures"
    csv_columns = [
        "group_id",
        ("group", lambda figure: figure.group.name),
        "metric",
        "value",
        ("source_party", lambda figure: figure.source_party.name if figure.source_party else ""),
        "source",
        "reported_on",
        "reliability",
        "notes",
    ]

    def csv_queryset(self, queryset):
        return queryset.select_related("group", "source_party")

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="exchanges_reportedfigure_import"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        context = {"csv_import_url": reverse("admin:exchanges_reportedfigure_import"), **(extra_context or {})}
        return super().changelist_view(request, context)

    def import_view(self, request):
        """Upload, check every row, then record all of them in one transaction or none."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = FigureImportForm(request.POST or None, request.FILES or None)
        problems = None
        if request.method == "POST" and form.is_valid():
            checked = figure_import.check(form.cleaned_data["file"].read(figure_import.MAX_BYTES + 1))
            if checked.problems:
                problems = sorted(checked.problems, key=lambda problem: problem.line)
            else:
                figures = services.figures_import(rows=checked.rows, actor=request.user)
                messages.success(
                    request, _("Imported %(n)d reported figures.") % {"n": len(figures)}
                )
                return HttpResponseRedirect(reverse("admin:exchanges_reportedfigure_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import reported figures from CSV"),
            "form": form,
            "problems": problems,
            "columns": figure_import.COLUMNS,
            "required": figure_import.REQUIRED,
            "max_rows": figure_import.MAX_ROWS,
            "metrics": FigureMetric.values,
            "reliabilities": Reliability.values,
            "export_url": reverse("admin:exchanges_reportedfigure_export"),
        }
        return TemplateResponse(request, "admin/exchanges/reportedfigure/import.html", context)

    def get_readonly_fields(self, request, obj=None):
        return ["group", "metric", "value", "source_party", "source", "reported_on"] if obj else []

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            services.figure_update(figure=obj, actor=request.user, **_changed(form, services.FIGURE_MUTABLE_FIELDS))
        else:
            data = {name: form.cleaned_data.get(name) for name in services.FIGURE_FIELDS}
            _adopt(obj, services.figure_create(group=form.cleaned_data["group"], actor=request.user, **data))


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 1
    autocomplete_fields = ["party"]


class CoveredGroupInline(admin.TabularInline):
    model = CoveredGroup
    extra = 1
    autocomplete_fields = ["group"]


class StatusHistoryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StatusChange
    fields = ["sequence", "from_status", "to_status", "occurred_at", "recorded_at", "recorded_by", "note", "source"]
    readonly_fields = fields
    verbose_name_plural = _("status history (append-only)")
    ordering = ["sequence"]

    @admin.display(description=_("recorded by"))
    def recorded_by(self, change):
        return change.recorded_by or _("system")


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
        return [(str(party.pk), str(party)) for party in Party.objects.filter(participations__isnull=False).distinct()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(Exists(Participant.objects.filter(negotiation=OuterRef("pk"), party=self.value())))
        return queryset


class ChangeStatusForm(forms.Form):
    to_status = forms.ChoiceField(label=_("New status"))
    occurred_at = forms.DateTimeField(
        label=_("Occurred at"),
        help_text=_("When it happened (UTC). Leave as is for now; back-date a change learnt later."),
    )
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    source = forms.CharField(label=_("Source"), max_length=1000, required=False)

    def __init__(self, *args, negotiation, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_status"].choices = [
            (value, NegotiationStatus(value).label) for value in allowed_transitions(negotiation.status)
        ]
        self.fields["occurred_at"].initial = timezone.now().replace(microsecond=0)


def _participants_cell(negotiation):
    return "; ".join(f"{participant.party.name} ({participant.get_role_display()})" for participant in negotiation.participants.all())


def _groups_cell(negotiation):
    return "; ".join(covered.group.name for covered in negotiation.covered_groups.all())


@admin.register(Negotiation)
class NegotiationAdmin(CsvExportMixin, AuditedAdminMixin, admin.ModelAdmin):
    csv_filename = "negotiations"
    csv_columns = [
        "reference",
        "title",
        "status",
        "priority",
        "visibility",
        "opened_on",
        "last_activity_at",
        "stalled",
        "stalled_since",
        "next_step",
        "next_step_due",
        ("participants", _participants_cell),
        ("groups", _groups_cell),
        "summary",
    ]

    def csv_queryset(self, queryset):
        return queryset.prefetch_related(
            Prefetch("participants", queryset=Participant.objects.select_related("party").order_by("id")),
            Prefetch("covered_groups", queryset=CoveredGroup.objects.select_related("group").order_by("id")),
        )

    list_display = [
        "reference",
        "title",
        "status",
        "priority",
        "visibility",
        "stalled",
        "last_activity_at",
        "next_step_due",
    ]
    list_filter = ["status", "priority", StalledFilter, NextStepFilter, "visibility", PartyTakingPartFilter]
    search_fields = ["reference", "title", "summary"]
    date_hierarchy = "opened_on"
    ordering = ["-last_activity_at"]
    filter_horizontal = ["watchers"]
    readonly_fields = [
        "reference",
        "status_and_action",
        "last_activity_at",
        "stalled",
        "stalled_since",
        "timeline",
    ]
    fieldsets = [
        (None, {"fields": ["reference", "title", "summary", "status_and_action", "priority", "visibility"]}),
        (_("Next step"), {"fields": ["opened_on", "next_step", "next_step_due"]}),
        (_("Activity"), {"fields": ["last_activity_at", "stalled", "stalled_since", "watchers"]}),
        (_("Timeline"), {"fields": ["timeline"]}),
    ]
    inlines = [ParticipantInline, CoveredGroupInline, StatusHistoryInline]

    def has_delete_permission(self, request, obj=None):
        """A negotiation's history is the record: it is closed with a final status, never deleted."""
        return False

    def audit_entries(self, negotiation):
        """Everything about the negotiation: itself, its history, events, flags and reads."""
        return AuditEntry.objects.filter(negotiation_id=negotiation.pk)

    @admin.display(description=_("status"))
    def status_and_action(self, negotiation):
        if negotiation is None or negotiation.pk is None:
            return NegotiationStatus.PROPOSED.label
        label = negotiation.get_status_display()
        if negotiation.status in FINAL:
            return format_html("<strong>{}</strong> ({})", label, _("final"))
        url = reverse("admin:exchanges_negotiation_change_status", args=[negotiation.pk])
        return format_html('<strong>{}</strong> &nbsp; <a class="button" href="{}">{}</a>', label, url, _("Change status…"))

    @admin.display(description=_("timeline"))
    def timeline(self, negotiation):
        """Status changes and events in one chronological table, read-only."""
        if negotiation is None or negotiation.pk is None:
            return "-"
        changes = list(negotiation.status_changes.order_by("sequence"))
        events = list(negotiation.events.prefetch_related("parties"))
        chart = charts.negotiation_timeline(negotiation, changes=changes, events=events, now=timezone.now())
        entries = [
            (change.occurred_at, _("Status"), f"{change.get_from_status_display()} → {change.get_to_status_display()}", change.note, change.source)
            for change in changes
        ] + [
            (event.occurred_at, event.get_kind_display(), event.summary, ", ".join(str(p) for p in event.parties.all()), event.source)
            for event in events
        ]
        entries.sort(key=lambda entry: entry[0])
        add_url = reverse("admin:exchanges_event_add") + f"?negotiation={negotiation.pk}"
        add_link = format_html('<p><a class="addlink" href="{}">{}</a></p>', add_url, _("Add an event"))
        if not entries:
            return format_html("{}<p>{}</p>", add_link, _("Nothing recorded yet."))
        rows = format_html_join(
            "",
            '<tr><td style="white-space:nowrap">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            ((when.strftime("%Y-%m-%d %H:%M"), kind, text, extra, source) for when, kind, text, extra, source in entries),
        )
        return format_html(
            '{}{}<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th></th><th>{}</th></tr></thead><tbody>{}</tbody></table>',
            chart,
            add_link,
            _("When"),
            _("What"),
            _("Detail"),
            _("Source"),
            rows,
        )

    def get_urls(self):
        return [
            path(
                "<uuid:object_id>/change-status/",
                self.admin_site.admin_view(self.change_status_view),
                name="exchanges_negotiation_change_status",
            ),
            *super().get_urls(),
        ]

    def change_status_view(self, request, object_id):
        negotiation = get_object_or_404(Negotiation, pk=object_id)
        if not self.has_change_permission(request, negotiation):
            return HttpResponseRedirect(reverse("admin:exchanges_negotiation_changelist"))
        change_url = reverse("admin:exchanges_negotiation_change", args=[negotiation.pk])
        if negotiation.status in FINAL:
            messages.warning(request, _("This negotiation is %(status)s: a final status cannot change.") % {"status": negotiation.get_status_display()})
            return HttpResponseRedirect(change_url)
        form = ChangeStatusForm(request.POST or None, negotiation=negotiation)
        if request.method == "POST" and form.is_valid():
            try:
                services.negotiation_change_status(negotiation=negotiation, actor=request.user, **form.cleaned_data)
            except services.IllegalStatusChange as exc:
                labels = {"from": NegotiationStatus(exc.from_status).label, "to": NegotiationStatus(exc.to_status).label}
                allowed = ", ".join(str(NegotiationStatus(status).label) for status in exc.allowed) or "-"
                messages.error(
                    request,
                    _("A negotiation cannot move from %(from)s to %(to)s.") % labels
                    + " "
                    + _("Allowed: %(allowed)s.") % {"allowed": allowed},
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                messages.success(request, _("Status changed to %(status)s.") % {"status": NegotiationStatus(form.cleaned_data["to_status"]).label})
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": negotiation,
            "negotiation": negotiation,
            "form": form,
            "title": _("Change the status of %(ref)s") % {"ref": negotiation.reference},
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/exchanges/negotiation/change_status.html", context)

    def save_model(self, request, obj, form, change):
        if change:
            services.negotiation_update(
                negotiation=obj, actor=request.user, **_changed(form, services.NEGOTIATION_FIELDS)
            )
        else:
            data = {name: form.cleaned_data.get(name) for name in services.NEGOTIATION_FIELDS}
            _adopt(obj, services.negotiation_create(actor=request.user, **data))

    def save_related(self, request, form, formsets, change):
        """Participants and covered groups go through the service as whole lists."""
        form.save_m2m()
        lists = {}
        for formset in formsets:
            # The admin's change message reads these; the service did the writing.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            rows = [
                inline.cleaned_data
                for inline in formset.forms
                if inline.cleaned_data and not inline.cleaned_data.get("DELETE")
            ]
            if formset.model is Participant and formset.has_changed():
                lists["participants"] = [{"party": row["party"], "role": row["role"]} for row in rows if row.get("party")]
            elif formset.model is CoveredGroup and formset.has_changed():
                lists["groups"] = [
                    {"group": row["group"], "proposed_count": row.get("proposed_count"), "released_count": row.get("released_count")}
                    for row in rows
                    if row.get("group")
                ]
        if lists:
            services.negotiation_update(negotiation=form.instance, actor=request.user, **lists)

    @transaction.atomic
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)


@admin.register(StatusChange)
class StatusChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["negotiation", "sequence", "from_status", "to_status", "occurred_at", "recorded_at", "recorded_by"]
    list_filter = ["to_status", "from_status"]
    list_select_related = ["negotiation", "recorded_by_user", "recorded_by_client"]
    search_fields = ["negotiation__reference", "negotiation__title", "note", "source"]
    date_hierarchy = "occurred_at"

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff

    @admin.display(description=_("recorded by"))
    def recorded_by(self, change):
        return change.recorded_by or _("system")


@admin.register(Event)
class EventAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["negotiation", "kind", "occurred_at", "short_summary", "source"]
    list_filter = ["kind"]
    list_select_related = ["negotiation"]
    search_fields = ["negotiation__reference", "negotiation__title", "summary", "source"]
    date_hierarchy = "occurred_at"
    autocomplete_fields = ["negotiation", "parties"]
    fields = ["negotiation", "kind", "occurred_at", "summary", "parties", "source"]

    @admin.display(description=_("summary"))
    def short_summary(self, event):
        return event.summary if len(event.summary) < 80 else event.summary[:77] + "…"

    def get_readonly_fields(self, request, obj=None):
        return ["negotiation"] if obj else []

    def save_model(self, request, obj, form, change):
        pass  # written with its parties in save_related, through the service

    def save_related(self, request, form, formsets, change):
        data = {name: form.cleaned_data.get(name) for name in services.EVENT_FIELDS}
        data["source"] = data["source"] or ""
        if change:
            services.event_update(event=form.instance, actor=request.user, parties=form.cleaned_data["parties"], **data)
        else:
            _adopt(
                form.instance,
                services.event_create(
                    negotiation=form.cleaned_data["negotiation"],
                    actor=request.user,
                    parties=form.cleaned_data["parties"],
                    **data,
                ),
            )

    def delete_model(self, request, obj):
        services.event_delete(event=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for event in queryset:
            services.event_delete(event=event, actor=request.user)


class ApiClientForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ["name", "party", "read_only", "expires_at"]


@admin.register(ApiClient)
class ApiClientAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = ApiClientForm
    list_display = ["name", "party", "read_only", "token_prefix", "state", "expires_at", "last_used_at"]
    list_filter = ["read_only", "party"]
    list_select_related = ["party"]
    search_fields = ["name", "party__name", "party__short_name", "token_prefix"]
    autocomplete_fields = ["party"]
    readonly_fields = ["token_prefix", "revoked_at", "last_used_at", "created_at"]
    actions = ["revoke"]

    @admin.display(description=_("state"))
    def state(self, client):
        if client.revoked_at:
            return _("revoked")
        if client.expires_at and client.expires_at <= timezone.now():
            return _("expired")
        return _("active")

    def save_model(self, request, obj, form, change):
        if change:
            services.api_client_update(client=obj, actor=request.user, **_changed(form, services.CLIENT_FIELDS))
            return
        client, token = services.api_client_create(
            name=form.cleaned_data["name"],
            party=form.cleaned_data["party"],
            read_only=form.cleaned_data["read_only"],
            expires_at=form.cleaned_data["expires_at"],
            actor=request.user,
        )
        _adopt(obj, client)
        messages.warning(
            request,
            format_html(
                "{} <code style='user-select:all;font-size:1.1em'>{}</code>",
                _("Copy this token now: it is stored only as a hash and will not be shown again."),
                token,
            ),
        )

    @admin.action(description=_("Revoke the selected clients' tokens"))
    def revoke(self, request, queryset):
        for client in queryset:
            services.api_client_revoke(client=client, actor=request.user)
        messages.success(request, _("%(n)d client(s) revoked.") % {"n": queryset.count()})

    def has_delete_permission(self, request, obj=None):
        return False


class ActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return AuditEntry.Action.choices

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The whole trail, filterable; nothing here can be changed or deleted."""

    list_display = ["occurred_at", "actor_label", "actor_type", "channel", "action", "model", "object_repr", "request_id"]
    list_filter = [ActionFilter, "model", "actor_type", "channel"]
    search_fields = ["object_repr", "object_id", "actor_label", "request_id", "=negotiation_id"]
    date_hierarchy = "occurred_at"
    readonly_fields = ["changes_table"]
    fields = ["occurred_at", "actor_type", "actor_id", "actor_label", "channel", "request_id", "action", "model", "object_id", "object_repr", "negotiation_id", "changes_table"]
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description=_("changes"))
    def changes_table(self, entry):
        return render_audit([entry])
