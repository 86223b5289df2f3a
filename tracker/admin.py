"""Stall rules, flags and the notification outbox in the admin.

Like the record's admin (`exchanges.admin`), every list and page reads through the policy
and Django's model permissions decide which of them a login has.
"""
from operator import attrgetter

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from exchanges import policy
from exchanges.admin import NegotiationAdmin, ReadOnlyAdminMixin, RecordAdmin, RecordTabularInline, ServiceDeleteMixin
from exchanges.spreadsheets import CsvExportMixin

from . import delivery, notify, services
from .models import DeliveryAttempt, EmailNotification, Flag, ScanRun, StallRule, WebhookDelivery, WebhookSubscription


@admin.register(StallRule)
class StallRuleAdmin(RecordAdmin):
    list_display = ["key", "overdue_days", "very_overdue_days", "gap_multiplier", "min_activities", "updated_at"]
    list_editable = ["overdue_days", "very_overdue_days", "gap_multiplier", "min_activities"]
    readonly_fields = ["key"]

    def save_model(self, request, obj, form, change):
        services.stall_rule_update(rule=obj, actor=request.user, **{name: getattr(obj, name) for name in services.RULE_FIELDS})

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OpenFilter(admin.SimpleListFilter):
    title = _("open")
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", _("Open")), ("no", _("Resolved"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


def _acknowledged_by(flag):
    who = flag.acknowledged_by
    return str(who) if who else ""


@admin.register(Flag)
class FlagAdmin(CsvExportMixin, ReadOnlyAdminMixin, RecordAdmin):
    csv_filename = "flags"
    csv_negotiation_field = "negotiation"
    csv_columns = [
        ("negotiation", lambda flag: flag.negotiation.reference),
        ("title", lambda flag: flag.negotiation.title),
        "kind",
        "level",
        "days_silent",
        "silent_since",
        ("next_step_due", attrgetter("due_on")),
        "raised_at",
        "escalated_at",
        "acknowledged_at",
        ("acknowledged_by", _acknowledged_by),
        "resolved_at",
        "resolution",
    ]

    def csv_queryset(self, queryset):
        return queryset.select_related("negotiation", "acknowledged_by_user", "acknowledged_by_client__party")

    list_display = ["negotiation", "kind", "level", "silence", "raised_at", "acknowledged_at", "resolved_at", "resolution"]
    list_filter = [OpenFilter, "kind", "level", "resolution"]
    list_select_related = ["negotiation"]
    search_fields = ["negotiation__reference", "negotiation__title"]
    date_hierarchy = "raised_at"
    actions = ["acknowledge"]

    def get_actions(self, request):
        return {name: value for name, value in super().get_actions(request).items() if name == "acknowledge"}

    def has_acknowledge_permission(self, request):
        """Flags are never edited here, only acknowledged: that takes `tracker.change_flag`."""
        return policy.allows(request.user, "acknowledge", Flag)

    @admin.display(description=_("days silent"), ordering="negotiation__last_activity_at")
    def silence(self, flag):
        return flag.days_silent

    @admin.action(description=_("Acknowledge the selected flags"), permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        for flag in queryset:
            services.flag_acknowledge(flag=flag, actor=request.user)
        messages.success(request, _("Acknowledged."))


class FlagInline(ReadOnlyAdminMixin, RecordTabularInline):
    model = Flag
    fields = ["kind", "level", "silence", "raised_at", "escalated_at", "acknowledged_at", "resolved_at", "resolution"]
    readonly_fields = fields
    ordering = ["-raised_at"]
    verbose_name_plural = _("stall flags")

    @admin.display(description=_("days silent"))
    def silence(self, flag):
        return flag.days_silent


NegotiationAdmin.inlines = [*NegotiationAdmin.inlines, FlagInline]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ServiceDeleteMixin, RecordAdmin):
    list_display = ["client", "url", "events", "active", "disabled_reason", "created_at"]
    list_filter = ["active", "client__party"]
    list_select_related = ["client"]
    search_fields = ["url", "client__name"]
    autocomplete_fields = ["client"]
    fields = ["client", "url", "events", "active", "disabled_reason"]
    readonly_fields = ["disabled_reason"]

    def delete_service(self, subscription, actor):
        services.webhook_subscription_delete(subscription=subscription, actor=actor)

    def save_model(self, request, obj, form, change):
        data = {"url": form.cleaned_data["url"], "events": form.cleaned_data["events"], "active": form.cleaned_data["active"]}
        if change:
            services.webhook_subscription_update(subscription=obj, actor=request.user, **data)
            return
        subscription = services.webhook_subscription_create(client=form.cleaned_data["client"], actor=request.user, **data)
        obj.pk, obj.secret, obj._state.adding = subscription.pk, subscription.secret, False
        messages.warning(
            request,
            format_html(
                "{} <code style='user-select:all'>{}</code>",
                _("Give the receiver this signing secret now; it will not be shown again:"),
                subscription.secret,
            ),
        )


class AttemptInline(ReadOnlyAdminMixin, RecordTabularInline):
    model = DeliveryAttempt
    fields = ["attempted_at", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, RecordAdmin):
    list_display = ["event_type", "subscription", "negotiation", "status", "attempts", "last_status_code", "next_attempt_at", "created_at"]
    list_filter = ["status", "event_type"]
    list_select_related = ["subscription__client", "negotiation"]
    search_fields = ["message_id", "negotiation__reference", "subscription__url"]
    date_hierarchy = "created_at"
    inlines = [AttemptInline]
    actions = ["redeliver"]

    def get_actions(self, request):
        return {name: value for name, value in super().get_actions(request).items() if name == "redeliver"}

    def has_redeliver_permission(self, request):
        """Deliveries are never edited here, only sent again: that takes `tracker.change_webhookdelivery`."""
        return policy.allows(request.user, "change", WebhookDelivery)

    @admin.action(description=_("Redeliver the selected deliveries now"), permissions=["redeliver"])
    def redeliver(self, request, queryset):
        now = timezone.now()
        for webhook_delivery in queryset:
            policy.require(request.user, "change", webhook_delivery)
            delivery.redeliver(webhook_delivery, now=now)
        notify.kick()
        messages.success(request, _("Queued for redelivery."))


@admin.register(EmailNotification)
class EmailNotificationAdmin(ReadOnlyAdminMixin, RecordAdmin):
    list_display = ["subject", "recipient", "created_at", "sent_at", "attempts", "last_error"]
    list_filter = ["sent_at"]
    search_fields = ["subject", "recipient__username", "recipient__email"]


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdminMixin, RecordAdmin):
    """When the stall scan ran, how (full or incremental) and what it changed: kept 30 days."""

    list_display = ["as_of", "full", "examined", "duration_ms", "summary"]
    list_filter = ["full"]
    date_hierarchy = "as_of"
