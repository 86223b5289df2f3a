"""The audit trail and the access log: read-only, for those who may read them."""
from django.contrib import admin
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..models import (
    AccessLogEntry,
    AuditEntry,
)
from .base import ReadOnlyAdminMixin, RecordAdmin, render_audit
from .counts import FlatListMixin
from .search import IndexedSearchMixin, SearchSpec
from .list_filters import RecordKindFilter, StaffLoginFilter, known_values_filter


class ActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return AuditEntry.Action.choices

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


#: What `audit.actor_fields` and the request middleware write, as staff read it.
ACTOR_TYPES = {"staff": _("staff login"), "api_client": _("API client"), "system": _("system")}
CHANNELS = {"admin": _("admin"), "api": _("API"), "web": _("web"), "system": _("system"), "task:": _("background task")}


def channel_label(channel):
    """A channel in words: "background task (tracker.scan_stalls)" for a Celery task's."""
    if channel and channel.startswith("task:"):
        return format_lazy("{} ({})", CHANNELS["task:"], channel[len("task:"):])
    return CHANNELS.get(channel, channel)


@admin.register(AuditEntry)
class AuditEntryAdmin(IndexedSearchMixin, FlatListMixin, ReadOnlyAdminMixin, RecordAdmin):
    """The trail (for those with its view permission: Auditors, Coordinators), except the
    entries about negotiations the login may not see; nothing here can be changed or deleted."""

    logs_reads = False

    list_display = ["occurred_at", "actor_label", "actor_kind", "via", "action", "model", "object_repr", "request_id"]
    list_filter = [
        ActionFilter,
        RecordKindFilter,
        # What `audit.actor_fields` and the request middleware write (not a DISTINCT over the trail).
        known_values_filter(AuditEntry, "actor_type", ACTOR_TYPES),
        known_values_filter(AuditEntry, "channel", CHANNELS),
        ("occurred_at", admin.DateFieldListFilter),
    ]
    search_fields = ["object_repr", "object_id", "actor_label", "request_id", "=negotiation_id"]
    #: An id (the entry's, the record's, its negotiation's) or a request id exactly, from
    #: their indexes; words in what the record was called or who acted (trigram indexes).
    search = SearchSpec(text=("object_repr", "actor_label"), ids=("pk", "object_id", "negotiation_id"), codes=("request_id",))
    readonly_fields = ["changes_table"]
    fields = ["occurred_at", "actor_kind", "actor_id", "actor_label", "via", "request_id", "action", "model", "object_id", "object_repr", "negotiation_id", "changes_table"]

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description=_("actor type"), ordering="actor_type")
    def actor_kind(self, entry):
        return ACTOR_TYPES.get(entry.actor_type, entry.actor_type)

    @admin.display(description=_("via"), ordering="channel")
    def via(self, entry):
        return channel_label(entry.channel)

    @admin.display(description=_("changes"))
    def changes_table(self, entry):
        return render_audit([entry])


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(IndexedSearchMixin, FlatListMixin, ReadOnlyAdminMixin, RecordAdmin):
    """Who read which staff-only negotiation, when, from where and how: for those with its
    view permission (Auditors); nothing here can be added, changed or deleted."""

    logs_reads = False

    list_display = ["occurred_at", "user_label", "negotiation_repr", "channel", "address", "request_id"]
    list_filter = ["channel", ("user", StaffLoginFilter), ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["negotiation_repr", "user_label", "=request_id"]
    search = SearchSpec(text=("negotiation_repr", "user_label"), ids=("pk", "negotiation"), codes=("request_id",))
    # The user and the negotiation are shown by label: the log keeps no foreign key
    # constraint, and either may be gone.
    fields = ["occurred_at", "user_label", "user_id", "negotiation_repr", "negotiation_id", "channel", "address", "request_id"]
    readonly_fields = fields

    @admin.display(description=_("staff login id"))
    def user_id(self, entry):
        return entry.user_id

    @admin.display(description=_("negotiation id"))
    def negotiation_id(self, entry):
        return entry.negotiation_id
