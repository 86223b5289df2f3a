"""Stall rules, flags and the notification outbox in the admin.

Like the record's admin (`exchanges.admin`), every list and page reads through the policy
and Django's model permissions decide which of them a login has.
"""
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from exchanges import policy
from exchanges.admin import ReadOnlyAdminMixin, RecordAdmin, RecordTabularInline, ServiceDeleteMixin, case_file
from exchanges.admin.base import safe_next
from exchanges.admin.counts import FlatListMixin
from exchanges.admin.history import person
from exchanges.admin.search import THROUGH_NEGOTIATION, IndexedSearchMixin, Related, SearchSpec
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


def _acknowledged_by(row):
    """The staff login or the API client (as its name and party) that acknowledged it."""
    if row["acknowledged_by_user__username"]:
        return row["acknowledged_by_user__username"]
    if row["acknowledged_by_client__name"]:
        party = row["acknowledged_by_client__party__short_name"] or row["acknowledged_by_client__party__name"]
        return f"{row['acknowledged_by_client__name']} ({party})"
    return ""


def _days_silent(row):
    """`Flag.days_silent` from the row's values: until now while open, until resolved."""
    if row["resolved_at"] is not None:
        return max(0, (row["resolved_at"] - row["silent_since"]).days)
    return max(0, (timezone.now() - row["negotiation__last_activity_at"]).days)


@admin.register(Flag)
class FlagAdmin(IndexedSearchMixin, FlatListMixin, CsvExportMixin, ReadOnlyAdminMixin, RecordAdmin):
    csv_filename = "flags"
    csv_negotiation_field = "negotiation"
    csv_columns = [
        ("negotiation", "negotiation__reference"),
        ("title", "negotiation__title"),
        "kind",
        "level",
        ("days_silent", _days_silent),
        "silent_since",
        ("next_step_due", "due_on"),
        "raised_at",
        "escalated_at",
        "acknowledged_at",
        ("acknowledged_by", _acknowledged_by),
        "resolved_at",
        "resolution",
    ]
    csv_row_values = [
        "resolved_at", "silent_since", "negotiation__last_activity_at", "acknowledged_by_user__username",
        "acknowledged_by_client__name", "acknowledged_by_client__party__short_name", "acknowledged_by_client__party__name",
    ]  # fmt: skip

    list_display = ["negotiation_reference", "kind", "level", "silence", "raised_at", "acknowledged_at", "resolved_at", "resolution"]
    list_filter = [OpenFilter, "kind", "level", "resolution", ("raised_at", admin.DateFieldListFilter)]
    list_select_related = ["negotiation"]
    search_fields = ["negotiation__reference", "negotiation__title"]
    search = SearchSpec(related=(THROUGH_NEGOTIATION,))
    #: Newest first, along `flag_recent`.
    ordering = ["-raised_at", "-id"]
    actions = ["acknowledge"]

    def get_actions(self, request):
        return {name: value for name, value in super().get_actions(request).items() if name == "acknowledge"}

    def has_acknowledge_permission(self, request):
        """Flags are never edited here, only acknowledged: that takes `tracker.change_flag`."""
        return policy.allows(request.user, "acknowledge", Flag)

    @admin.display(description=_("days silent"), ordering="negotiation__last_activity_at")
    def silence(self, flag):
        return flag.days_silent

    @admin.display(description=_("negotiation"), ordering="negotiation__reference")
    def negotiation_reference(self, flag):
        """The reference only, linked to the case file: the column stays narrow at 1366 px
        (the title is on the case file), so the timestamps stay in sight."""
        url = reverse("admin:exchanges_negotiation_change", args=[flag.negotiation_id])
        return format_html('<a href="{}" title="{}">{}</a>', url, flag.negotiation.title, flag.negotiation.reference)

    def get_urls(self):
        return [
            path("<path:object_id>/acknowledge/", self.admin_site.admin_view(self.acknowledge_view), name="tracker_flag_acknowledge"),
            *super().get_urls(),
        ]

    def acknowledge_view(self, request, object_id):
        """Acknowledge one flag (POST, with the CSRF token: the admin's views check it) and
        go back to the case file it was shown on."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        flag = self.get_object(request, object_id)  # through policy.restrict: 404 if unseen
        if flag is None:
            raise Http404
        policy.require(request.user, "acknowledge", flag)  # Refused: a 403, nothing written
        services.flag_acknowledge(flag=flag, actor=request.user)  # one transaction, audited
        messages.success(request, gettext("Flag acknowledged: %(flag)s.") % {"flag": flag})
        return HttpResponseRedirect(
            safe_next(request) or reverse("admin:exchanges_negotiation_change", args=[flag.negotiation_id])
        )

    @admin.action(description=_("Acknowledge the selected flags"), permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        for flag in queryset:
            services.flag_acknowledge(flag=flag, actor=request.user)
        messages.success(request, _("Acknowledged."))


def _why(flag):
    """Why a flag is raised, in a sentence staff can act on."""
    if flag.kind == "deadline_missed" and flag.due_on:
        return gettext("The next step was due %(date)s.") % {"date": formats.date_format(flag.due_on, "SHORT_DATE_FORMAT")}
    days = flag.days_silent
    return ngettext("No activity for %(days)d day.", "No activity for %(days)d days.", days) % {"days": days}


def _acknowledged(flag):
    who = flag.acknowledged_by_user
    name = person(who) if who else (str(flag.acknowledged_by_client) if flag.acknowledged_by_client_id else gettext("someone"))
    return gettext("Acknowledged by %(who)s on %(date)s.") % {
        "who": name, "date": formats.date_format(flag.acknowledged_at, "SHORT_DATE_FORMAT"),
    }  # fmt: skip


def flags_on_the_case_file(request, negotiation, _case_file):
    """The negotiation's open flags as banners at the top of its case file (acknowledged
    ones quietly, not in the alarm colour), with Acknowledge for those who may; and every
    flag, open and resolved, in a section below. One query."""
    user = request.user
    if not policy.has_model_perm(user, Flag):
        return {}
    flags = list(
        policy.restrict(Flag.objects.filter(negotiation=negotiation), user)
        .select_related("acknowledged_by_user", "acknowledged_by_client")
        .order_by("-raised_at", "kind")
    )
    for flag in flags:
        flag.negotiation = negotiation  # days_silent reads it; no query per flag
        flag.why = _why(flag)
        flag.acknowledged_text = _acknowledged(flag) if flag.acknowledged_at else ""
    may_acknowledge = policy.allows(user, "acknowledge", Flag, negotiation=negotiation)
    banners = []
    for flag in flags:
        if flag.resolved_at is not None:
            continue
        headline = gettext("Flagged: %(kind)s (%(level)s).") % {"kind": flag.get_kind_display(), "level": flag.get_level_display()}
        acknowledged = flag.acknowledged_at is not None
        banners.append(
            {
                "id": f"flag-{flag.pk}",
                "level": "acknowledged" if acknowledged else flag.level,
                "message": " ".join([headline, flag.why, flag.acknowledged_text]).strip(),
                "acknowledge_url": None if acknowledged or not may_acknowledge else reverse("admin:tracker_flag_acknowledge", args=[flag.pk]),
            }
        )
    section = {
        "id": "flags", "title": gettext("Flags"), "html": render_to_string("admin/exchanges/negotiation/flags.html", {"flags": flags}),
    }  # fmt: skip
    return {"banners": banners, "sections": [section]}


case_file.PARTS.append(flags_on_the_case_file)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ServiceDeleteMixin, RecordAdmin):
    list_display = ["client", "url", "events", "active", "disabled_reason", "created_at"]
    list_filter = ["active", "client__party"]
    list_select_related = ["client"]
    search_fields = ["url", "client__name"]
    autocomplete_fields = ["client"]
    fields = ["client", "url", "events", "active", "disabled_reason"]
    readonly_fields = ["disabled_reason"]
    # A URL typed without its scheme is taken as https, as webhooks require (and as
    # Django 6 will do; until then it warns).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

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
    fields = ["attempted_at", "outcome", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, RecordAdmin):
    list_display = ["event_type", "subscription", "negotiation", "status", "attempts", "last_status_code", "next_attempt_at", "created_at"]
    list_filter = ["status", "event_type"]
    list_select_related = ["subscription__client", "negotiation"]
    search_fields = ["message_id", "negotiation__reference", "subscription__url"]
    #: The message id exactly (unique index); a negotiation or a subscription's address.
    search = SearchSpec(
        codes=("message_id",),
        related=(THROUGH_NEGOTIATION, Related("subscription", "tracker.WebhookSubscription", SearchSpec(text=("url",)))),
    )
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
class EmailNotificationAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, RecordAdmin):
    list_display = ["subject", "recipient", "created_at", "sent_at", "attempts", "last_error"]
    list_filter = ["sent_at"]
    search_fields = ["subject", "recipient__username", "recipient__email"]
    search = SearchSpec(text=("subject",), related=(Related("recipient", settings.AUTH_USER_MODEL, SearchSpec(text=("username", "email"))),))


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdminMixin, RecordAdmin):
    """When the stall scan ran, how (full or incremental) and what it changed: kept 30 days."""

    list_display = ["as_of", "full", "examined", "duration_ms", "summary"]
    list_filter = ["full"]
    date_hierarchy = "as_of"
