"""A negotiation's status history (read-only: changed through the negotiation's "Change
status") and its events, each a list of its own."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .. import services
from ..models import Event, StatusChange
from .base import AuditedAdminMixin, ReadOnlyAdminMixin, RecordAdmin, adopt
from .counts import FlatListMixin
from .search import THROUGH_NEGOTIATION, IndexedSearchMixin, SearchSpec


@admin.register(StatusChange)
class StatusChangeAdmin(IndexedSearchMixin, FlatListMixin, ReadOnlyAdminMixin, RecordAdmin):
    list_display = ["negotiation", "sequence", "from_status", "to_status", "occurred_at", "recorded_at", "recorded_by"]
    list_filter = ["to_status", "from_status", ("occurred_at", admin.DateFieldListFilter)]
    list_select_related = ["negotiation", "recorded_by_user", "recorded_by_client"]
    search_fields = ["negotiation__reference", "negotiation__title", "note", "source"]
    search = SearchSpec(text=("note", "source"), related=(THROUGH_NEGOTIATION,))
    #: Newest first, along `status_change_recent` (the model's order joins the negotiation).
    ordering = ["-occurred_at", "-id"]

    @admin.display(description=_("recorded by"))
    def recorded_by(self, change):
        return change.recorded_by or _("system")


@admin.register(Event)
class EventAdmin(IndexedSearchMixin, FlatListMixin, AuditedAdminMixin, RecordAdmin):
    list_display = ["negotiation", "kind", "occurred_at", "short_summary", "source"]
    list_filter = ["kind", ("occurred_at", admin.DateFieldListFilter)]
    list_select_related = ["negotiation"]
    search_fields = ["negotiation__reference", "negotiation__title", "summary", "source"]
    search = SearchSpec(text=("summary", "source"), related=(THROUGH_NEGOTIATION,))
    #: Newest first, along `event_recent`.
    ordering = ["-occurred_at", "-created_at", "-id"]
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
            adopt(
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
