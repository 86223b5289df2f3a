"""Detainee groups and the figures claimed about them (with the CSV import)."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import charts, figure_import, policy, services
from ..choices import FigureMetric, Reliability
from ..models import (
    DetaineeGroup,
    ReportedFigure,
)
from ..selectors import disputed_groups_q, figures_summary
from ..spreadsheets import CsvExportMixin

from .counts import FlatListMixin
from .search import IndexedSearchMixin, Related, SearchSpec
from .base import AuditedAdminMixin, RecordAdmin, RecordTabularInline, ServiceDeleteMixin, adopt, changed_fields, may, is_saved, viewer_of


class FigureInline(RecordTabularInline):
    """Claims already recorded about the group: their substance is fixed, only the assessment
    (reliability, notes) changes. New claims are added with the link above the table."""

    model = ReportedFigure
    extra = 0
    fields = ["metric", "value", "source_party", "source", "reported_on", "reliability", "notes"]
    readonly_fields = ["metric", "value", "source_party", "source", "reported_on"]
    ordering = ["metric", "reported_on"]

    def get_queryset(self, request):
        """Each row shows its source party: read with the rows, not one query per figure."""
        return super().get_queryset(request).select_related("source_party")
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
class DetaineeGroupAdmin(IndexedSearchMixin, FlatListMixin, ServiceDeleteMixin, AuditedAdminMixin, RecordAdmin):
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
    search = SearchSpec(text=("name", "location", "notes"))
    autocomplete_fields = ["held_by", "affiliated_with"]
    readonly_fields = ["figures_side_by_side"]
    fieldsets = [
        (None, {"fields": ["name", "category", "held_by", "affiliated_with", "detained_since", "location"]}),
        (_("Working figures"), {"fields": ["estimated_count", "seriously_wounded_count", "notes"]}),
        (_("What each source claims"), {"fields": ["figures_side_by_side"]}),
    ]
    inlines = [FigureInline]

    def delete_service(self, group, actor):
        services.detainee_group_delete(group=group, actor=actor)

    def in_use(self, group):
        return services.group_in_use(group)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("figures")

    @admin.display(description=_("disputed"))
    def disputed(self, group):
        """"Disputed" in words and the alarm colour (a green tick would say all is well)."""
        if not any(entry["disputed"] for entry in figures_summary(group.figures.all()).values()):
            return "–"
        return format_html('<span class="status-badge status-stalled">{}</span>', _("Disputed"))

    @admin.display(description=_("figures side by side"))
    def figures_side_by_side(self, group):
        """One row per metric, one column per claim, the dispute spelled out."""
        if not is_saved(group):
            return _("Save the group, then record what each source reported.")
        add_link = ""
        if may(group, "add", ReportedFigure):
            add_url = reverse("admin:exchanges_reportedfigure_add") + f"?group={group.pk}"
            add_link = format_html('<p><a class="addlink" href="{}">{}</a></p>', add_url, _("Record a figure someone reported"))
        figures = list(
            policy.restrict(group.figures.select_related("source_party").order_by("metric", "reported_on"), viewer_of(group))
        )
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
                group=obj, actor=request.user, **changed_fields(form, services.GROUP_FIELDS)
            )
        else:
            data = {name: form.cleaned_data.get(name) for name in services.GROUP_FIELDS}
            adopt(obj, services.detainee_group_create(actor=request.user, **data))

    def save_formset(self, request, form, formset, change):
        """Only the assessment of recorded claims is editable here; it goes through the service."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if inline_form.has_changed() and inline_form.cleaned_data:
                services.figure_update(
                    figure=inline_form.instance,
                    actor=request.user,
                    **changed_fields(inline_form, services.FIGURE_MUTABLE_FIELDS),
                )


class FigureImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))


@admin.register(ReportedFigure)
class ReportedFigureAdmin(IndexedSearchMixin, FlatListMixin, CsvExportMixin, AuditedAdminMixin, RecordAdmin):
    list_display = ["group", "metric", "value", "source_party", "source", "reported_on", "reliability"]
    list_filter = ["metric", "reliability", "source_party", ("reported_on", admin.DateFieldListFilter)]
    list_select_related = ["group", "source_party"]
    search_fields = ["group__name", "source", "notes"]
    search = SearchSpec(text=("source", "notes"), related=(Related("group", "exchanges.DetaineeGroup", SearchSpec(text=("name",))),))
    #: Newest first, along `figure_recent`.
    ordering = ["-reported_on", "-created_at", "-id"]
    autocomplete_fields = ["group", "source_party"]
    # The same columns the import reads, so an export edited in a spreadsheet comes back in.
    csv_filename = "reported-figures"
    csv_columns = [
        "group_id",
        ("group", "group__name"),
        "metric",
        "value",
        ("source_party", "source_party__name"),
        "source",
        "reported_on",
        "reliability",
        "notes",
    ]

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="exchanges_reportedfigure_import"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        context = {"csv_import_url": reverse("admin:exchanges_reportedfigure_import"), **(extra_context or {})}
        return super().changelist_view(request, context)

    def import_view(self, request):
        """Upload and check every row; then a preview, the file kept in the session under a
        token; then the confirm (the token posted back to this URL): the file checked again
        and all of it recorded in one transaction, or none."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        changelist_url = reverse("admin:exchanges_reportedfigure_changelist")
        import_url = reverse("admin:exchanges_reportedfigure_import")
        confirming = request.method == "POST" and "token" in request.POST
        form = FigureImportForm(None if confirming else request.POST or None, None if confirming else request.FILES or None)
        problems = None
        if confirming:
            confirmed = figure_import.confirm(request.session, request.POST["token"], user=request.user)
            if not confirmed.found:
                messages.error(
                    request,
                    _(
                        "This import is no longer waiting for confirmation: it was already confirmed, or it has expired. "
                        "Nothing more was recorded; check the list of figures before sending the file again."
                    ),
                )
                return HttpResponseRedirect(import_url)
            if not confirmed.problems:
                count = len(confirmed.figures)
                messages.success(request, ngettext("Imported %(n)d reported figure.", "Imported %(n)d reported figures.", count) % {"n": count})
                return HttpResponseRedirect(changelist_url)
            problems = confirmed.problems
        elif request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            raw = upload.read(figure_import.MAX_BYTES + 1)
            checked = figure_import.check(raw)
            if checked.problems:
                problems = sorted(checked.problems, key=lambda problem: problem.line)
            else:
                token = figure_import.keep_pending(request.session, raw, user=request.user, name=upload.name or "")
                shown = checked.rows[: figure_import.PREVIEW_ROWS]
                context = {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "title": _("Check the figures before importing them"),
                    "token": token,
                    "file_name": upload.name or "",
                    "total": len(checked.rows),
                    "rows": [figure_import.describe(row) for row in shown],
                    "more": len(checked.rows) - len(shown),
                    "import_url": import_url,
                    "max_age_minutes": figure_import.PENDING_MAX_AGE // 60,
                }
                return TemplateResponse(request, "admin/exchanges/reportedfigure/import_preview.html", context)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import reported figures from CSV"),
            "form": form,
            "problems": problems,
            "rechecked": confirming,
            "columns": figure_import.COLUMNS,
            "required": figure_import.REQUIRED,
            "max_rows": figure_import.MAX_ROWS,
            "metrics": FigureMetric.values,
            "reliabilities": Reliability.values,
            "export_url": reverse("admin:exchanges_reportedfigure_export") if self.has_view_or_change_permission(request) else None,
        }
        return TemplateResponse(request, "admin/exchanges/reportedfigure/import.html", context)

    def get_readonly_fields(self, request, obj=None):
        """A recorded claim's substance is fixed; only its assessment changes."""
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "group", "metric", "value", "source_party", "source", "reported_on"] if obj else fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            services.figure_update(figure=obj, actor=request.user, **changed_fields(form, services.FIGURE_MUTABLE_FIELDS))
        else:
            data = {name: form.cleaned_data.get(name) for name in services.FIGURE_FIELDS}
            adopt(obj, services.figure_create(group=form.cleaned_data["group"], actor=request.user, **data))
