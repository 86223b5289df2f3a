"""Negotiations, their participants, covered groups and commitments (the agreement at a
glance and "Record handover" are in `agreement`, the status history and events in
`timeline`, the list's filters in `list_filters`)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .. import charts, policy, services
from ..choices import FINAL, NegotiationStatus, ParticipantRole, allowed_transitions
from ..filters import aliases_match
from ..models import (
    AuditEntry,
    Commitment,
    CoveredGroup,
    Negotiation,
    Participant,
    Party,
    StatusChange,
)
from ..spreadsheets import CsvExportMixin, RelatedCells, label_sql

from . import agreement, case_file
from .counts import FlatCountPaginator, FlatListMixin
from .search import IndexedSearchMixin, SearchSpec
from .list_filters import MineFilter, NextStepFilter, PartyTakingPartFilter, StaffLoginFilter, StalledFilter
from .base import AuditedAdminMixin, RecordAdmin, RecordTabularInline, ServiceDeleteMixin, adopt, changed_fields, is_saved


def _manages_access(request, negotiation=None):
    """Whether the login may change who takes part in and who sees a negotiation (or any)."""
    return policy.allows(request.user, "manage_access", negotiation if is_saved(negotiation) else Negotiation)


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


def status_badge(negotiation):
    """The status in a colour that says what it means: open, stalled or final."""
    state = case_file.status_state(negotiation)
    return format_html(
        '<span class="status-badge status-{}" title="{}">{}</span>',
        state, case_file.state_label(state), negotiation.get_status_display(),
    )


def stalled_mark(negotiation):
    """"Stalled" in words and in the alarm colour; nothing when it is not (never a tick)."""
    if not negotiation.stalled or negotiation.status in FINAL:
        return "–"
    return format_html('<span class="status-badge status-stalled">{}</span>', _("Stalled"))


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


def _participant_text():
    """"Government of Ukraine (Side)": a participant's party and role (in the current language)."""
    return Concat(F("party__name"), Value(" ("), label_sql("role", ParticipantRole.choices), Value(")"))


#: The export's cells listing a negotiation's participants and covered groups, in the order
#: they were added ("Government of Ukraine (Side); ICRC (Mediator)").
PARTICIPANTS_CELL = RelatedCells(Participant, "negotiation_id", _participant_text)
GROUPS_CELL = RelatedCells(CoveredGroup, "negotiation_id", lambda: F("group__name"))


@admin.register(Negotiation)
class NegotiationAdmin(ServiceDeleteMixin, IndexedSearchMixin, FlatListMixin, CsvExportMixin, AuditedAdminMixin, RecordAdmin):
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
        ("participants", "csv_participants"),
        ("groups", "csv_groups"),
        "summary",
    ]

    csv_related_cells = {"csv_participants": PARTICIPANTS_CELL, "csv_groups": GROUPS_CELL}

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """A list filtered by a party alone, for a login that sees every negotiation, is
        counted from the participants' (party, negotiation) index: a party takes part in a
        negotiation once, so its rows there are the list's. Counting the list itself probed
        each of up to CAP + 1 negotiations by id (1M: 20 ms against 2)."""
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        party_alone = set(request.GET) - {ORDER_VAR, PAGE_VAR} == {PartyTakingPartFilter.parameter_name}
        if party_alone and policy.sees_every_staff_only(request.user) and isinstance(paginator, FlatCountPaginator):
            # The value is a party's id: the filter refused any other before the list was built.
            paginator.count_queryset = Participant.objects.filter(party=request.GET[PartyTakingPartFilter.parameter_name])
        return paginator

    list_display = [
        "reference",
        "title",
        "status_column",
        "priority",
        "visibility",
        "stalled_column",
        "last_activity_at",
        "next_step_due",
        "case_officer",
    ]
    list_select_related = ["case_officer"]
    list_filter = [
        MineFilter,
        "status",
        "priority",
        StalledFilter,
        NextStepFilter,
        "visibility",
        PartyTakingPartFilter,
        ("teams", admin.RelatedFieldListFilter),
        ("case_officer", StaffLoginFilter),
        ("opened_on", admin.DateFieldListFilter),
    ]
    search_fields = ["reference", "title", "summary"]
    search = SearchSpec(text=("reference", "title", "summary"), references=("reference",))
    ordering = ["-last_activity_at", "-id"]
    filter_horizontal = ["watchers", "teams"]
    filter_labels = {"watchers": _("watchers")}
    audit_section = False  # the case file's "Who changed what"
    readonly_fields = ["last_activity_at", "stalled_column", "stalled_since"]
    fieldsets = [
        (None, {"fields": ["title", "summary", "priority", "visibility"]}),
        (_("Who works on it"), {"fields": ["case_officer", "teams"]}),
        (_("Next step"), {"fields": ["opened_on", "next_step", "next_step_due"]}),
        (_("Activity"), {"fields": ["last_activity_at", "stalled_column", "stalled_since", "watchers"]}),
    ]
    inlines = [ParticipantInline, agreement.CommitmentInline, CoveredGroupInline]

    # Deleting (Coordinators): only one entered by mistake, while nothing has happened in
    # it; a negotiation's history is the record, closed with a final status, never deleted.
    in_use_label = _("%(record)s (it has a recorded history: close it with a final status instead)")
    deletes_own_rows = True  # its participants, covered groups, commitments and flags

    def delete_service(self, negotiation, actor):
        services.negotiation_delete(negotiation=negotiation, actor=actor)

    def in_use(self, negotiation):
        return services.negotiation_has_history(negotiation)

    def get_inlines(self, request, obj):
        """Commitments once the negotiation exists: their parties must take part first."""
        inlines = super().get_inlines(request, obj)
        return inlines if is_saved(obj) else [inline for inline in inlines if inline is not agreement.CommitmentInline]

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

    def audit_entries(self, negotiation):
        """Everything about the negotiation: itself, its history, events, flags and reads."""
        return AuditEntry.objects.filter(negotiation_id=negotiation.pk)

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, negotiation):
        return status_badge(negotiation)

    @admin.display(description=_("stalled"), ordering="stalled")
    def stalled_column(self, negotiation):
        return stalled_mark(negotiation)

    def search_extra(self, request, term):
        """Besides the reference, title and summary (`search`): the name, short name or any
        alias of a party taking part ("ICRC", "Red Cross", "UAE"). The parties are few: they
        are read first, and their negotiations are given as ids (`search.search`), never a
        join (no DISTINCT)."""
        parties = Party.objects.filter(Q(name__icontains=term) | Q(short_name__icontains=term) | aliases_match(term))
        party_ids = list(parties.values_list("pk", flat=True))
        if not party_ids:
            return None
        ids = Participant.objects.filter(party__in=party_ids).values("negotiation_id")
        # One party takes part once in a negotiation: its ids are distinct already, and
        # the capped count reads no more of them than it needs (`search.search`).
        return ids if len(party_ids) == 1 else ids.distinct()

    def get_urls(self):
        return [
            path(
                "<uuid:object_id>/change-status/",
                self.admin_site.admin_view(self.change_status_view),
                name="exchanges_negotiation_change_status",
            ),
            path(
                "<uuid:object_id>/record-handover/",
                self.admin_site.admin_view(self.record_handover_view),
                name="exchanges_negotiation_record_handover",
            ),
            *super().get_urls(),
        ]

    def record_handover_view(self, request, object_id):
        return agreement.record_handover_view(self, request, object_id)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The change page is the case file (change_form.html): where the negotiation
        stands and what to do next at the top, then its timeline, parties, groups, flags,
        history, the agreement at a glance and the form."""
        if is_saved(obj):
            context.update(agreement.page_context(request, obj))
            board = case_file.build(request, obj)
            board["chart"] = charts.negotiation_timeline(obj, changes=board["changes"], events=board["events"], now=timezone.now())
            context["case_file"] = board
        return super().render_change_form(request, context, add, change, form_url, obj)

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
                negotiation=obj, actor=request.user, teams=teams, **changed_fields(form, services.NEGOTIATION_FIELDS)
            )
        else:
            data = {name: form.cleaned_data[name] for name in services.NEGOTIATION_FIELDS if name in form.cleaned_data}
            teams = list(form.cleaned_data["teams"]) if "teams" in form.cleaned_data else None
            adopt(obj, services.negotiation_create(actor=request.user, teams=teams, **data))

    def save_related(self, request, form, formsets, change):
        """Participants, covered groups and commitments go through the service as whole lists, from the
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
            elif formset.model is Commitment and formset.has_changed():
                lists["commitments"] = agreement.commitments_from(formset)
        if lists:
            services.negotiation_update(negotiation=form.instance, actor=request.user, **lists)
