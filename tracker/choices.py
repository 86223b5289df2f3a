"""Vocabularies of the stall tracker."""
from django.db import models
from django.utils.translation import gettext_lazy as _


class FlagKind(models.TextChoices):
    NO_ACTIVITY = "no_activity", _("No activity")
    DEADLINE_MISSED = "deadline_missed", _("Next step missed")


class FlagLevel(models.TextChoices):
    OVERDUE = "overdue", _("Overdue")
    VERY_OVERDUE = "very_overdue", _("Very overdue")


class Resolution(models.TextChoices):
    ACTIVITY = "activity", _("Activity resumed")
    DEADLINE_MOVED = "deadline_moved", _("Next step rescheduled or cleared")
    ENDED = "ended", _("Negotiation ended")


class RuleKey(models.TextChoices):
    URGENT = "urgent", _("No activity: urgent (and any negotiation covering seriously wounded)")
    HIGH = "high", _("No activity: high priority")
    ROUTINE = "routine", _("No activity: routine")
    DEADLINE = "deadline", _("Next step missed: days after the due date")


class WebhookEvent(models.TextChoices):
    STATUS_CHANGED = "negotiation.status_changed", "negotiation.status_changed"
    STALLED = "negotiation.stalled", "negotiation.stalled"
    UNSTALLED = "negotiation.unstalled", "negotiation.unstalled"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed (gave up)")
    CANCELLED = "cancelled", _("Cancelled")
