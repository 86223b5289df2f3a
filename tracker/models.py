"""What the tracker keeps: stall rules, flags, and the outbox of notifications."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from exchanges.encryption import EncryptedTextField
from exchanges.models import ApiClient, Negotiation, TimestampedModel

from .choices import DeliveryStatus, FlagKind, FlagLevel, Resolution, RuleKey, WebhookEvent


class StallRule(models.Model):
    """How many days make a negotiation overdue and very overdue.

    For `urgent`, `high` and `routine`: days without activity, by priority (a negotiation
    covering seriously wounded detainees is held to `urgent`, Third Geneva Convention
    Art. 109). For `deadline`: days after `next_step_due`. For `rhythm` (off its rhythm):
    a negotiation with at least `min_activities` activities is overdue once silent for
    `gap_multiplier` times its usual (median) gap and at least `overdue_days`, very
    overdue at twice that and at least `very_overdue_days`. For `wounded`: days after it
    reached `agreed` while its covered groups' seriously wounded wait (Art. 109).
    """

    key = models.CharField(_("rule"), max_length=16, choices=RuleKey.choices, primary_key=True)
    overdue_days = models.PositiveIntegerField(_("overdue after (days)"))
    very_overdue_days = models.PositiveIntegerField(_("very overdue after (days)"))
    gap_multiplier = models.PositiveSmallIntegerField(
        _("times its usual gap"), default=3, help_text=_("Off its rhythm only: silent for this many times its median gap.")
    )
    min_activities = models.PositiveSmallIntegerField(
        _("activities needed"),
        default=5,
        help_text=_("Off its rhythm only: a negotiation needs this many activities before it has a rhythm."),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("stall rule")
        verbose_name_plural = _("stall rules")
        constraints = [
            models.CheckConstraint(condition=Q(overdue_days__gte=1), name="stall_rule_overdue_positive"),
            models.CheckConstraint(
                condition=Q(very_overdue_days__gt=F("overdue_days")), name="stall_rule_very_after_overdue"
            ),
            models.CheckConstraint(condition=Q(gap_multiplier__gte=2), name="stall_rule_multiplier_at_least_2"),
            models.CheckConstraint(condition=Q(min_activities__gte=3), name="stall_rule_min_activities_at_least_3"),
        ]

    def __str__(self):
        return f"{self.get_key_display()}: {self.overdue_days}/{self.very_overdue_days}"


DEFAULT_RULES = {
    "urgent": (7, 14), "high": (14, 28), "routine": (30, 60), "deadline": (1, 7), "rhythm": (7, 14), "wounded": (3, 7),
}  # fmt: skip
#: Off its rhythm: (times its usual gap, activities needed).
DEFAULT_RHYTHM = (3, 5)


class Flag(TimestampedModel):
    """A negotiation the tracker found stalled, for one reason (`kind`).

    At most one open flag per negotiation and kind (a partial unique index). It escalates
    from overdue to very overdue and resolves on its own when the reason goes away.
    """

    negotiation = models.ForeignKey(Negotiation, on_delete=models.CASCADE, related_name="flags", verbose_name=_("negotiation"))
    kind = models.CharField(_("kind"), max_length=32, choices=FlagKind.choices)
    level = models.CharField(_("level"), max_length=16, choices=FlagLevel.choices)
    raised_at = models.DateTimeField(_("raised at"))
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    silent_since = models.DateTimeField(
        _("silent since"), help_text=_("The negotiation's last activity when the flag was raised.")
    )
    due_on = models.DateField(_("next step was due"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("acknowledged by (staff)"),
    )
    acknowledged_by_client = models.ForeignKey(
        ApiClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("acknowledged by (API client)"),
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True, db_index=True)
    resolution = models.CharField(_("resolution"), max_length=16, choices=Resolution.choices, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        verbose_name = _("flag")
        verbose_name_plural = _("flags")
        constraints = [
            models.UniqueConstraint(
                fields=["negotiation", "kind"], condition=Q(resolved_at__isnull=True), name="flag_one_open_per_kind"
            ),
            models.CheckConstraint(condition=Q(kind__in=FlagKind.values), name="flag_kind_valid"),
            models.CheckConstraint(condition=Q(level__in=FlagLevel.values), name="flag_level_valid"),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True, resolution="") | Q(resolved_at__isnull=False) & ~Q(resolution=""),
                name="flag_resolution_matches",
            ),
        ]
        indexes = [
            models.Index(fields=["negotiation", "kind"], name="flag_open_by_negotiation", condition=Q(resolved_at__isnull=True)),
            # The API list's order (newest first) with its unique tie-breaker.
            models.Index(fields=["-created_at", "-id"], name="flag_list_order"),
            # The admin's list, newest first.
            models.Index(fields=["-raised_at", "-id"], name="flag_recent"),
        ]

    def __str__(self):
        return f"{self.negotiation.reference}: {self.get_kind_display()} ({self.get_level_display()})"

    @property
    def is_open(self):
        return self.resolved_at is None

    @property
    def acknowledged_by(self):
        return self.acknowledged_by_user or self.acknowledged_by_client

    @property
    def days_silent(self):
        """Whole days without activity: until now for an open flag, until resolution for a resolved one."""
        if self.resolved_at is not None:
            return max(0, (self.resolved_at - self.silent_since).days)
        return max(0, (timezone.now() - self.negotiation.last_activity_at).days)


def new_webhook_secret():
    import base64
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class WebhookSubscription(TimestampedModel):
    """A partner system's request to be told about events, signed per Standard Webhooks.

    The secret must be usable to sign, so it is stored encrypted (`exchanges.encryption`:
    a database dump holds no usable secret); it is never shown
    again after creation. A receiver answering 410 Gone disables the subscription.
    """

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="webhooks", verbose_name=_("API client"))
    url = models.URLField(_("URL"), max_length=2000)
    events = models.JSONField(_("events"), default=list)
    active = models.BooleanField(_("active"), default=True)
    secret = EncryptedTextField(default=new_webhook_secret, editable=False, verbose_name=_("signing secret"))
    disabled_reason = models.CharField(_("disabled because"), max_length=500, blank=True)
    # The circuit breaker (tracker/delivery.py): failed attempts in a row, and while it is
    # open (after TRACKER_WEBHOOK_BREAKER_FAILURES of them) nothing is sent until this time.
    consecutive_failures = models.PositiveIntegerField(_("failed attempts in a row"), default=0, editable=False)
    paused_until = models.DateTimeField(_("paused until (receiver failing)"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")

    def __str__(self):
        return f"{self.client.name} → {self.url}"


class WebhookDelivery(TimestampedModel):
    """One event for one subscription: written with the change that caused it, sent by a task.

    The payload is fixed when the event happens; retries re-sign it with a fresh
    timestamp under the same `message_id`, so receivers can de-duplicate.
    """

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("webhook subscription"))
    negotiation = models.ForeignKey(Negotiation, on_delete=models.CASCADE, related_name="+", verbose_name=_("negotiation"))
    event_type = models.CharField(_("event"), max_length=64, choices=WebhookEvent.choices)
    message_id = models.CharField(_("message id"), max_length=64, unique=True)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("leased until"))
    # Who holds the lease (a task id): the same task, redelivered after its worker died,
    # takes its interrupted delivery back at once instead of waiting for the lease to expire.
    leased_by = models.CharField(max_length=64, blank=True, editable=False)
    last_status_code = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=1000, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due", condition=Q(status="pending")),
        ]

    def __str__(self):
        return f"{self.event_type} → {self.subscription.url} ({self.get_status_display()})"


class DeliveryAttempt(models.Model):
    """One HTTP attempt of a delivery, kept for the admin: what was answered, how fast.

    Written as `started` before the request is sent, so an attempt cut short by a crash is
    in the log too: it is marked `interrupted` when its lease runs out without an outcome
    (the receiver may have had it: de-duplicate on `webhook-id`)."""

    class Outcome(models.TextChoices):
        STARTED = "started", _("Started (no answer yet)")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        INTERRUPTED = "interrupted", _("Interrupted (the worker stopped before the answer)")

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("webhook delivery"))
    attempted_at = models.DateTimeField(_("attempted at"), default=timezone.now)
    status_code = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=1000, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    response_excerpt = models.CharField(_("response"), max_length=500, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.STARTED)

    class Meta:
        ordering = ["attempted_at"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")


class EmailNotification(models.Model):
    """An email to a watching staff member: written with its cause, sent by a task."""

    id = models.BigAutoField(primary_key=True)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("recipient"))
    negotiation = models.ForeignKey(Negotiation, on_delete=models.CASCADE, related_name="+", verbose_name=_("negotiation"))
    subject = models.CharField(max_length=300, verbose_name=_("subject"))
    body = models.TextField(verbose_name=_("body"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    last_error = models.CharField(max_length=1000, blank=True, verbose_name=_("last error"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("email notification")
        verbose_name_plural = _("email notifications")
        indexes = [models.Index(fields=["created_at"], name="email_unsent", condition=Q(sent_at__isnull=True))]

    def __str__(self):
        return self.subject


class ScanRun(models.Model):
    """One run of the stall scan: as of when, whether it looked at every negotiation, and
    what it changed.

    The next scan starts from the last one and looks only at what may have changed since:
    negotiations whose silence or missed deadline crossed a threshold in between, and those
    (or their groups) written since. A full scan runs when there is no previous run, when
    the rules changed, when asked, and at least every TRACKER_FULL_SCAN_SECONDS.
    """

    id = models.BigAutoField(primary_key=True)
    as_of = models.DateTimeField(_("as of"), db_index=True)
    full = models.BooleanField(_("full scan"))
    examined = models.PositiveIntegerField(_("negotiations examined"), null=True, blank=True)
    summary = models.JSONField(_("summary"), default=dict)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta:
        ordering = ["-as_of", "-id"]
        verbose_name = _("scan run")
        verbose_name_plural = _("scan runs")

    def __str__(self):
        how = _("full") if self.full else _("incremental")
        return f"{self.as_of:%Y-%m-%d %H:%M:%S} ({how})"
