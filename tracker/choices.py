"""Vocabularies of the stall tracker."""
from django.db import models
from django.utils.translation import gettext_lazy as _


class FlagKind(models.TextChoices):
    NO_ACTIVITY = "no_activity", _("No activity")
    DEADLINE_MISSED = "deadline_missed", _("Next step missed")
    OFF_RHYTHM = "off_rhythm", _("Off its rhythm")
    WOUNDED_WAITING = "wounded_waiting", _("Seriously wounded waiting")


class FlagLevel(models.TextChoices):
    OVERDUE = "overdue", _("Overdue")
    VERY_OVERDUE = "very_overdue", _("Very overdue")


class Resolution(models.TextChoices):
    ACTIVITY = "activity", _("Activity resumed")
    DEADLINE_MOVED = "deadline_moved", _("Next step rescheduled or cleared")
    ENDED = "ended", _("Negotiation ended")
    WOUNDED_RELEASED = "wounded_released", _("No seriously wounded left waiting (released, fewer reported, or no agreement in force)")


class RuleKey(models.TextChoices):
    URGENT = "urgent", _("No activity: urgent (and any negotiation covering seriously wounded)")
    HIGH = "high", _("No activity: high priority")
    ROUTINE = "routine", _("No activity: routine")
    DEADLINE = "deadline", _("Next step missed: days after the due date")
    RHYTHM = "rhythm", _("Off its rhythm: silent for its usual gap times the multiplier, and at least these days")
    WOUNDED = "wounded", _("Seriously wounded waiting: days after the agreement")


class WebhookEvent(models.TextChoices):
    STATUS_CHANGED = "negotiation.status_changed", "negotiation.status_changed"
    STALLED = "negotiation.stalled", "negotiation.stalled"
    UNSTALLED = "negotiation.unstalled", "negotiation.unstalled"
    HANDOVER_RECORDED = "negotiation.handover_recorded", "negotiation.handover_recorded"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed (gave up)")
    CANCELLED = "cancelled", _("Cancelled")
