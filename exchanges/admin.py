"""The staff interface. Every save goes through `exchanges.services`, like the API.

Who sees and does what is `exchanges.policy`'s answer, here as everywhere: every admin and
inline reads through `policy.restrict` (lists, pages, inlines, autocompletes, filters),
asks `policy.allows` before offering a change or a delete, and Django's model permissions
(given by the staff roles) decide which admins a login has at all.
"""
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Count, Exists, F, Func, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from . import audit, charts, figure_import, policy, services
from .choices import FINAL, FigureMetric, NegotiationStatus, Reliability, allowed_transitions
from .models import (
    AccessLogEntry,
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
    Team,
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


def _viewer(obj):
    """The login an object was read for (`PolicyAdminMixin.get_object` notes it): display
    methods get no request, and must show only what that login may see and do."""
    return getattr(obj, "_admin_user", None)


def _may(obj, action, target, **context):
    """Whether the login `obj` was read for may do `action` to `target` (policy.allows)."""
    user = _viewer(obj)
    return user is not None and policy.allows(user, action, target, **context)


def _saved(obj):
    return obj is not None and not obj._state.adding


def _visible_negotiation_count(request, **link):
    """How many of the negotiations linked so (e.g. teams=OuterRef("pk")) the login may see:
    an annotation for a list's column, one subquery, never a count of hidden ones."""
    visible = policy.restrict(Negotiation.objects.filter(**link), request.user).order_by()
    count = Func(F("pk"), function="COUNT", output_field=models.IntegerField())
    return Coalesce(Subquery(visible.annotate(n=count).values("n")), 0)


class PolicyMixin:
    """Rows and choices through the policy, for admins and inlines alike."""

    def get_queryset(self, request):
        return policy.restrict(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Negotiation and "queryset" not in kwargs:
            kwargs["queryset"] = policy.restrict(Negotiation.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PolicyAdminMixin(PolicyMixin):
    """A ModelAdmin that shows only what the login may see and offers only what it may do.

    Model permissions decide the admin as a whole (Django's defaults, view included);
    `policy.allows` decides for the object at hand. A service's refusal (`policy.Refused`)
    is a 403; its validation errors show on the form, with what was typed, not as a 500.
    """

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._admin_user = request.user
        return obj

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (
            obj is None or policy.allows(request.user, "change", obj)
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (
            obj is None or policy.allows(request.user, "delete", obj)
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        try:
            with transaction.atomic():
                return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            # Nothing was written; show the form again, as typed, with the service's errors.
            request._service_errors = error
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, "_service_errors", None)
        if error is None:
            return form

        class RefusedForm(form):
            def clean(self):
                cleaned_data = super().clean()
                errors = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
                for field, field_errors in errors.items():
                    for message in field_errors:
                        self.add_error(field if field in self.fields else None, message)
                return cleaned_data

        return RefusedForm


class PolicyInlineMixin(PolicyMixin):
    """An inline whose rows are added, changed or deleted only as the policy allows for
    the negotiation (or other record) on the page."""

    def _allows(self, request, action, obj):
        negotiation = obj if isinstance(obj, Negotiation) and _saved(obj) else None
        return policy.allows(request.user, action, self.model, negotiation=negotiation)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._allows(request, "add", obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._allows(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._allows(request, "delete", obj)


class RecordAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """The base of every ModelAdmin here and in the tracker."""


class RecordTabularInline(PolicyInlineMixin, admin.TabularInline):
    """The base of every inline here and in the tracker."""


class AuditedAdminMixin:
    """Adds a read-only “Who changed what” section listing the object's audit entries, for
    logins that may read the audit trail."""

    audit_limit = 100

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "audit_trail"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        fieldsets = [(name, {**opts, "fields": [f for f in opts["fields"] if f != "audit_trail"]}) for name, opts in fieldsets]
        if obj is not None and policy.has_model_perm(request.user, AuditEntry):
            fieldsets.append((_("Who changed what"), {"fields": ["audit_trail"], "classes": ["collapse"]}))
        return fieldsets

    def audit_entries(self, obj):
        return AuditEntry.objects.filter(model=obj._meta.label_lower, object_id=str(obj.pk))

    @admin.display(description=_("audit trail"))
    def audit_trail(self, obj):
        user = _viewer(obj)
        if not _saved(obj) or not policy.has_model_perm(user, AuditEntry):
            return "-"
        return render_audit(policy.restrict(self.audit_entries(obj), user)[: self.audit_limit])


class ReadOnlyAdminMixin:
    """For append-only history: visible, never added, edited or deleted here (not even by
    a superuser)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Party)
class PartyAdmin(AuditedAdminMixin, RecordAdmin):
    list_display = ["name", "short_name", "kind", "country", "negotiation_count"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "short_name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            negotiation_count=_visible_negotiation_count(request, participants__party=OuterRef("pk"))
        )

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


class FigureInline(RecordTabularInline):
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
class DetaineeGroupAdmin(AuditedAdminMixin, RecordAdmin):
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
        if not _saved(group):
            return _("Save the group, then record what each source reported.")
        add_link = ""
        if _may(group, "add", ReportedFigure):
            add_url = reverse("admin:exchanges_reportedfigure_add") + f"?group={group.pk}"
            add_link = format_html('<p><a class="addlink" href="{}">{}</a></p>', add_url, _("Record a figure someone reported"))
        figures = list(
            policy.restrict(group.figures.select_related("source_party").order_by("metric", "reported_on"), _viewer(group))
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
class ReportedFigureAdmin(CsvExportMixin, AuditedAdminMixin, RecordAdmin):
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
            services.figure_update(figure=obj, actor=request.user, **_changed(form, services.FIGURE_MUTABLE_FIELDS))
        else:
            data = {name: form.cleaned_data.get(name) for name in services.FIGURE_FIELDS}
            _adopt(obj, services.figure_create(group=form.cleaned_data["group"], actor=request.user, **data))


def _manages_access(request, negotiation=None):
    """Whether the login may change who takes part in and who sees a negotiation (or any)."""
    return policy.allows(request.user, "manage_access", negotiation if _saved(negotiation) else Negotiation)


class ParticipantInline(RecordTabularInline):
    """Who takes part decides which API clients see the negotiation: editable only with the
    permission to manage access (Coordinators), read-only for everyone else."""

    model = Participant
    extra = 1
    autocomplete_fields = ["party"]

    def _allows(self, request, action, obj):
        return super()._allows(request, action, obj) and _manages_access(request, obj)


class CoveredGroupInline(RecordTabularInline):
    model = CoveredGroup
    extra = 1
    autocomplete_fields = ["group"]


class StatusHistoryInline(ReadOnlyAdminMixin, RecordTabularInline):
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
        """The parties taking part in a negotiation the login may see."""
        taking_part = Party.objects.filter(participations__negotiation__in=model_admin.get_queryset(request).order_by())
        return [(str(party.pk), str(party)) for party in taking_part.distinct()]

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
class NegotiationAdmin(CsvExportMixin, AuditedAdminMixin, RecordAdmin):
    csv_filename = "negotiations"
    csv_negotiation_field = "pk"
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
        "case_officer",
    ]
    list_select_related = ["case_officer"]
    list_filter = [
        "status",
        "priority",
        StalledFilter,
        NextStepFilter,
        "visibility",
        PartyTakingPartFilter,
        ("teams", admin.RelatedOnlyFieldListFilter),
        ("case_officer", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["reference", "title", "summary"]
    date_hierarchy = "opened_on"
    ordering = ["-last_activity_at"]
    filter_horizontal = ["watchers", "teams"]
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
        (_("Who works on it"), {"fields": ["case_officer", "teams"]}),
        (_("Next step"), {"fields": ["opened_on", "next_step", "next_step_due"]}),
        (_("Activity"), {"fields": ["last_activity_at", "stalled", "stalled_since", "watchers"]}),
        (_("Timeline"), {"fields": ["timeline"]}),
    ]
    inlines = [ParticipantInline, CoveredGroupInline, StatusHistoryInline]

    def has_delete_permission(self, request, obj=None):
        """A negotiation's history is the record: it is closed with a final status, never deleted."""
        return False

    def get_readonly_fields(self, request, obj=None):
        """Visibility and teams decide who sees it: only those who manage access change them."""
        fields = list(super().get_readonly_fields(request, obj))
        if not _manages_access(request, obj):
            fields += ["visibility", "teams"]
        return fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("teams", list(request.user.tracker_teams.values_list("pk", flat=True)))
        return initial

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "case_officer":
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Reading a staff-only negotiation's page is logged (the access log)."""
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            original = (getattr(response, "context_data", None) or {}).get("original")
            if original is not None:
                audit.log_staff_access(request.user, [original], channel=AccessLogEntry.Channel.PAGE)
        return response

    def audit_entries(self, negotiation):
        """Everything about the negotiation: itself, its history, events, flags and reads."""
        return AuditEntry.objects.filter(negotiation_id=negotiation.pk)

    @admin.display(description=_("status"))
    def status_and_action(self, negotiation):
        if not _saved(negotiation):
            return NegotiationStatus.PROPOSED.label
        label = negotiation.get_status_display()
        if negotiation.status in FINAL:
            return format_html("<strong>{}</strong> ({})", label, _("final"))
        if not _may(negotiation, "add", StatusChange, negotiation=negotiation):
            return format_html("<strong>{}</strong>", label)
        url = reverse("admin:exchanges_negotiation_change_status", args=[negotiation.pk])
        return format_html('<strong>{}</strong> &nbsp; <a class="button" href="{}">{}</a>', label, url, _("Change status…"))

    @admin.display(description=_("timeline"))
    def timeline(self, negotiation):
        """Status changes and events in one chronological table, read-only."""
        user = _viewer(negotiation)
        if not _saved(negotiation) or user is None:
            return "-"
        changes = list(policy.restrict(negotiation.status_changes.order_by("sequence"), user))
        events = list(policy.restrict(negotiation.events.prefetch_related("parties"), user))
        chart = charts.negotiation_timeline(negotiation, changes=changes, events=events, now=timezone.now())
        entries = [
            (change.occurred_at, _("Status"), f"{change.get_from_status_display()} → {change.get_to_status_display()}", change.note, change.source)
            for change in changes
        ] + [
            (event.occurred_at, event.get_kind_display(), event.summary, ", ".join(str(p) for p in event.parties.all()), event.source)
            for event in events
        ]
        entries.sort(key=lambda entry: entry[0])
        add_link = ""
        if _may(negotiation, "add", Event, negotiation=negotiation):
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
        """403 without the permission to record status changes here, 404 for a negotiation
        the login may not see."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        negotiation = self.get_object(request, object_id)
        if negotiation is None:
            raise Http404
        policy.require(request.user, "add", StatusChange, negotiation=negotiation)  # Refused: a 403
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
        """Fields and teams through the service; a field shown read-only is not in the form,
        so it is never sent (teams left out of a new one: the service gives the login's)."""
        if change:
            teams = list(form.cleaned_data["teams"]) if "teams" in form.changed_data else None
            services.negotiation_update(
                negotiation=obj, actor=request.user, teams=teams, **_changed(form, services.NEGOTIATION_FIELDS)
            )
        else:
            data = {name: form.cleaned_data[name] for name in services.NEGOTIATION_FIELDS if name in form.cleaned_data}
            teams = list(form.cleaned_data["teams"]) if "teams" in form.cleaned_data else None
            _adopt(obj, services.negotiation_create(actor=request.user, teams=teams, **data))

    def save_related(self, request, form, formsets, change):
        """Participants and covered groups go through the service as whole lists, from the
        inlines the login may edit (a read-only inline's rows are only what was shown)."""
        form.cleaned_data.pop("teams", None)  # written by the service in save_model
        form.save_m2m()
        obj = form.instance if change else None  # as the admin asked when it built the formsets
        editable = {
            inline.model
            for inline in self.get_inline_instances(request, obj)
            if inline.has_add_permission(request, obj)
            or inline.has_change_permission(request, obj)
            or inline.has_delete_permission(request, obj)
        }
        lists = {}
        for formset in formsets:
            # The admin's change message reads these; the service did the writing.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model not in editable:
                continue
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


@admin.register(StatusChange)
class StatusChangeAdmin(ReadOnlyAdminMixin, RecordAdmin):
    list_display = ["negotiation", "sequence", "from_status", "to_status", "occurred_at", "recorded_at", "recorded_by"]
    list_filter = ["to_status", "from_status"]
    list_select_related = ["negotiation", "recorded_by_user", "recorded_by_client"]
    search_fields = ["negotiation__reference", "negotiation__title", "note", "source"]
    date_hierarchy = "occurred_at"

    @admin.display(description=_("recorded by"))
    def recorded_by(self, change):
        return change.recorded_by or _("system")


@admin.register(Event)
class EventAdmin(AuditedAdminMixin, RecordAdmin):
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
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "negotiation"] if obj else fields

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
class ApiClientAdmin(AuditedAdminMixin, RecordAdmin):
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

    @admin.action(description=_("Revoke the selected clients' tokens"), permissions=["change"])
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
class AuditEntryAdmin(ReadOnlyAdminMixin, RecordAdmin):
    """The trail (for those with its view permission: Auditors, Coordinators), except the
    entries about negotiations the login may not see; nothing here can be changed or deleted."""

    list_display = ["occurred_at", "actor_label", "actor_type", "channel", "action", "model", "object_repr", "request_id"]
    list_filter = [ActionFilter, "model", "actor_type", "channel"]
    search_fields = ["object_repr", "object_id", "actor_label", "request_id", "=negotiation_id"]
    date_hierarchy = "occurred_at"
    readonly_fields = ["changes_table"]
    fields = ["occurred_at", "actor_type", "actor_id", "actor_label", "channel", "request_id", "action", "model", "object_id", "object_repr", "negotiation_id", "changes_table"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description=_("changes"))
    def changes_table(self, entry):
        return render_audit([entry])


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyAdminMixin, RecordAdmin):
    """Who read which staff-only negotiation, when, from where and how: for those with its
    view permission (Auditors); nothing here can be added, changed or deleted."""

    list_display = ["occurred_at", "user_label", "negotiation_repr", "channel", "address", "request_id"]
    list_filter = ["channel", ("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["negotiation_repr", "user_label", "=request_id"]
    date_hierarchy = "occurred_at"
    # The user and the negotiation are shown by label: the log keeps no foreign key
    # constraint, and either may be gone.
    fields = ["occurred_at", "user_label", "user_id", "negotiation_repr", "negotiation_id", "channel", "address", "request_id"]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description=_("staff login id"))
    def user_id(self, entry):
        return entry.user_id

    @admin.display(description=_("negotiation id"))
    def negotiation_id(self, entry):
        return entry.negotiation_id


def _team_snapshot(team):
    return audit.snapshot(team, members=sorted(team.members.values_list("username", flat=True)))


@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, RecordAdmin):
    """Teams of staff: a staff-only negotiation is seen by the staff of its teams. Managed by
    whoever has the team permissions (Coordinators)."""

    list_display = ["name", "description", "member_count", "negotiation_count"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "members"]
    filter_horizontal = ["members"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("members", distinct=True),
                negotiation_count=_visible_negotiation_count(request, teams=OuterRef("pk")),
            )
        )

    def save_model(self, request, obj, form, change):
        obj._audit_before = _team_snapshot(Team.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        """Who is in a team decides who sees its staff-only negotiations: kept in the trail."""
        super().save_related(request, form, formsets, change)
        team = form.instance
        action = AuditEntry.Action.UPDATE if change else AuditEntry.Action.CREATE
        audit.record(actor=request.user, action=action, instance=team, before=team._audit_before, after=_team_snapshot(team))

    def delete_model(self, request, obj):
        audit.record(actor=request.user, action=AuditEntry.Action.DELETE, instance=obj, before=_team_snapshot(obj))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for team in queryset:
            self.delete_model(request, team)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "members":  # staff logins (inactive ones too, so saving keeps them)
            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True).order_by("username")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, team):
        return team.member_count

    @admin.display(description=_("negotiations"), ordering="negotiation_count")
    def negotiation_count(self, team):
        return team.negotiation_count
