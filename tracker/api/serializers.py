"""JSON for flags and webhook subscriptions."""
import base64
import binascii

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchanges.api.serializers import StrictFieldsMixin
from exchanges.api.serializers.fields import ActorSerializer
from exchanges.api.serializers.negotiations import _day, _iso

from ..choices import Resolution, WebhookEvent
from ..models import Flag, WebhookDelivery, WebhookSubscription
from .webhooks import WebhookPayloadSerializer


def _who(user, client):
    if client is not None:
        return {"type": "api_client", "id": str(client.pk), "name": client.name}
    if user is not None:
        return {"type": "staff", "id": str(user.pk), "name": user.get_username()}
    return None


class FlagSerializer(serializers.ModelSerializer):
    """A stall flag: what the tracker raised about a negotiation, escalated in place and
    resolved on its own when activity resumes, the deadline moves or the negotiation ends."""

    days_silent = serializers.IntegerField(read_only=True, help_text="Days without activity (until resolution once resolved).")
    acknowledged_by = serializers.SerializerMethodField()
    open = serializers.SerializerMethodField()
    resolution = serializers.ChoiceField(
        choices=Resolution.choices, allow_blank=True, read_only=True, help_text="Why it was resolved; empty while open."
    )

    class Meta:
        model = Flag
        fields = [
            "id",
            "negotiation",
            "kind",
            "level",
            "open",
            "raised_at",
            "escalated_at",
            "days_silent",
            "silent_since",
            "due_on",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolution",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ActorSerializer(allow_null=True))
    def get_acknowledged_by(self, flag):
        return _who(flag.acknowledged_by_user, flag.acknowledged_by_client)

    def get_open(self, flag) -> bool:
        return flag.resolved_at is None

    def to_representation(self, flag):
        """The JSON DRF's fields would write (tests/api/test_flag_representation.py pins it),
        built directly: the flags list spent most of its time serialising 50 flags through
        the fields (0.29x of the negotiation list at a million, the goal 0.3x)."""
        return {
            "id": str(flag.pk),
            "negotiation": str(flag.negotiation_id),
            "kind": flag.kind,
            "level": flag.level,
            "open": flag.resolved_at is None,
            "raised_at": _iso(flag.raised_at),
            "escalated_at": _iso(flag.escalated_at),
            "days_silent": flag.days_silent,
            "silent_since": _iso(flag.silent_since),
            "due_on": _day(flag.due_on),
            "acknowledged_at": _iso(flag.acknowledged_at),
            "acknowledged_by": _who(flag.acknowledged_by_user, flag.acknowledged_by_client),
            "resolved_at": _iso(flag.resolved_at),
            "resolution": flag.resolution,
            "created_at": _iso(flag.created_at),
            "updated_at": _iso(flag.updated_at),
        }


def _valid_secret(value):
    if not value.startswith("whsec_"):
        raise serializers.ValidationError(_("Must start with “whsec_” followed by base64 (Standard Webhooks)."))
    try:
        key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise serializers.ValidationError(_("The part after “whsec_” must be base64.")) from None
    if not 24 <= len(key) <= 64:
        raise serializers.ValidationError(_("The key must be 24 to 64 bytes."))
    return value


class WebhookSubscriptionSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A webhook subscription of the calling client: where to send which events."""

    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), allow_empty=False, min_length=1, max_length=len(WebhookEvent.values)
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        max_length=200,
        validators=[_valid_secret],
        help_text="`whsec_` + base64 key; generated when not given, and returned once in the creation response.",
    )

    class Meta:
        model = WebhookSubscription
        fields = [
            "id", "url", "events", "active", "secret", "disabled_reason", "consecutive_failures", "paused_until",
            "created_at", "updated_at",
        ]
        read_only_fields = ["id", "disabled_reason", "consecutive_failures", "paused_until", "created_at", "updated_at"]
        extra_kwargs = {
            "consecutive_failures": {"help_text": "Failed attempts in a row; 0 once one succeeds."},
            "paused_until": {
                "help_text": "While your receiver keeps failing, nothing is sent until this time; then one delivery is "
                "tried and a success resumes sending. Null: not paused."
            },
        }


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    """The creation response: the only time the secret is shown (a replay of the same
    `Idempotency-Key` answers without it: it is never kept)."""

    secret = serializers.CharField(
        read_only=True,
        required=False,
        help_text="The secret the tracker generated, shown in this response only: absent when you gave your own, "
        "and from an idempotent replay of it.",
    )


@extend_schema_field(WebhookPayloadSerializer)
class WebhookPayloadField(serializers.JSONField):
    """The body sent (`{"type", "timestamp", "data"}`), fixed when the delivery was written."""


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """One webhook to one subscription, and how sending it went."""

    payload = WebhookPayloadField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_type",
            "message_id",
            "negotiation",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "payload",
            "created_at",
        ]
        read_only_fields = fields
