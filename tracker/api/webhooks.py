"""The webhooks the tracker sends, as the OpenAPI schema documents them (`webhooks`, and
`WebhookDelivery.payload`).

These serializers only describe JSON: `tracker.notify` builds the payloads
(`{"type", "timestamp", "data"}`) and `tracker.delivery` signs and sends them (Standard
Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`). A test builds each
payload with `tracker.notify` and checks it against these schemas.
"""

from drf_spectacular.utils import (
    OpenApiResponse,
    OpenApiWebhook,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers

from exchanges.api.serializers import ProgressSerializer, TransferSerializer
from exchanges.choices import HandoverState, NegotiationStatus, Priority

from ..choices import FlagKind, FlagLevel, Resolution, WebhookEvent


def const_field(value, **kwargs):
    """A string field that always holds `value` (a JSON Schema `const`)."""
    field_class = extend_schema_field({"type": "string", "const": value})(
        type("ConstField", (serializers.CharField,), {"__doc__": f"Always “{value}”."})
    )
    return field_class(**kwargs)


class WebhookNegotiationSerializer(serializers.Serializer):
    """The negotiation a webhook is about, as it stood when the event happened."""

    id = serializers.UUIDField()
    reference = serializers.CharField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=NegotiationStatus.choices)
    priority = serializers.ChoiceField(choices=Priority.choices)
    stalled = serializers.BooleanField()
    stalled_since = serializers.DateTimeField(allow_null=True)
    last_activity_at = serializers.DateTimeField()
    next_step_due = serializers.DateField(allow_null=True)


class WebhookStatusChangeSerializer(serializers.Serializer):
    """The status change recorded (as `GET .../status-changes/{id}/` shows it, without who recorded it)."""

    id = serializers.UUIDField()
    sequence = serializers.IntegerField()
    from_status = serializers.ChoiceField(choices=NegotiationStatus.choices)
    to_status = serializers.ChoiceField(choices=NegotiationStatus.choices)
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    note = serializers.CharField(allow_blank=True)
    source = serializers.CharField(allow_blank=True)


class WebhookFlagSerializer(serializers.Serializer):
    """The flag raised, escalated or resolved (as `GET /api/v1/flags/{id}/` shows it, in part)."""

    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=FlagKind.choices)
    level = serializers.ChoiceField(choices=FlagLevel.choices)
    raised_at = serializers.DateTimeField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    days_silent = serializers.IntegerField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.ChoiceField(choices=Resolution.choices, allow_null=True, help_text="Null while open.")


class WebhookHandoverSerializer(serializers.Serializer):
    """The handover recorded or changed, with its transfers."""

    id = serializers.UUIDField()
    sequence = serializers.IntegerField()
    state = serializers.ChoiceField(choices=HandoverState.choices)
    planned_on = serializers.DateField(allow_null=True)
    occurred_on = serializers.DateField(allow_null=True)
    location = serializers.CharField(allow_blank=True)
    verified_by = serializers.UUIDField(allow_null=True)
    source = serializers.CharField(allow_blank=True)
    transfers = TransferSerializer(many=True)


class StatusChangedDataSerializer(serializers.Serializer):
    negotiation = WebhookNegotiationSerializer()
    status_change = WebhookStatusChangeSerializer()


class StalledDataSerializer(serializers.Serializer):
    negotiation = WebhookNegotiationSerializer()
    flag = WebhookFlagSerializer()
    change = serializers.ChoiceField(
        choices=[("raised", "raised"), ("escalated", "escalated")],
        help_text="`raised`: a new flag; `escalated`: an open flag reached `very_overdue`.",
    )


class UnstalledDataSerializer(serializers.Serializer):
    negotiation = WebhookNegotiationSerializer()
    flag = WebhookFlagSerializer()
    change = const_field("resolved")


class HandoverRecordedDataSerializer(serializers.Serializer):
    negotiation = WebhookNegotiationSerializer()
    change = serializers.ChoiceField(choices=[("created", "created"), ("updated", "updated")])
    handover = WebhookHandoverSerializer()
    progress = ProgressSerializer(many=True, help_text="For each releasing party, after this handover.")


def _envelope(event, data_serializer, doc):
    return type(
        data_serializer.__name__.replace("DataSerializer", "WebhookSerializer"),
        (serializers.Serializer,),
        {
            "__doc__": doc,
            "type": const_field(event),
            "timestamp": serializers.DateTimeField(help_text="When the event happened."),
            "data": data_serializer(),
        },
    )


StatusChangedWebhookSerializer = _envelope(
    WebhookEvent.STATUS_CHANGED.value,
    StatusChangedDataSerializer,
    "`negotiation.status_changed`: a status change was recorded.",
)
StalledWebhookSerializer = _envelope(
    WebhookEvent.STALLED.value,
    StalledDataSerializer,
    "`negotiation.stalled`: a stall flag was raised, or escalated to very overdue.",
)
UnstalledWebhookSerializer = _envelope(
    WebhookEvent.UNSTALLED.value,
    UnstalledDataSerializer,
    "`negotiation.unstalled`: a stall flag was resolved (activity resumed, the deadline moved, the negotiation ended...).",
)
HandoverRecordedWebhookSerializer = _envelope(
    WebhookEvent.HANDOVER_RECORDED.value,
    HandoverRecordedDataSerializer,
    "`negotiation.handover_recorded`: a handover was recorded or changed; `progress` is after it.",
)

PAYLOADS = {
    WebhookEvent.STATUS_CHANGED.value: StatusChangedWebhookSerializer,
    WebhookEvent.STALLED.value: StalledWebhookSerializer,
    WebhookEvent.UNSTALLED.value: UnstalledWebhookSerializer,
    WebhookEvent.HANDOVER_RECORDED.value: HandoverRecordedWebhookSerializer,
}

#: Any webhook body, told apart by `type` (`WebhookDelivery.payload`).
WebhookPayloadSerializer = PolymorphicProxySerializer(
    component_name="WebhookPayload",
    serializers=PAYLOADS,
    resource_type_field_name="type",
)

RECEIVER_DESCRIPTION = (
    "Sent as a POST with a JSON body to the subscription's `url`, signed as Standard Webhooks "
    "specifies: verify `webhook-signature` (`v1,` + base64 HMAC-SHA256 of "
    "`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64 part of the subscription's "
    "`whsec_` secret) before trusting the body, and de-duplicate on `webhook-id` (delivery is at "
    "least once). Only about negotiations the subscribing client may see."
)


def _webhook(event, serializer):
    what = serializer.__doc__.split(": ", 1)[1]
    return OpenApiWebhook(
        name=event,
        decorator=extend_schema(
            summary=what[0].upper() + what[1:],
            description=RECEIVER_DESCRIPTION,
            tags=["webhooks"],
            request=serializer,
            responses={
                200: OpenApiResponse(description="Any 2xx answer: delivered."),
                410: OpenApiResponse(description="Gone: the subscription is disabled and nothing more is sent."),
            },
        ),
    )


STATUS_CHANGED = _webhook(WebhookEvent.STATUS_CHANGED.value, StatusChangedWebhookSerializer)
STALLED = _webhook(WebhookEvent.STALLED.value, StalledWebhookSerializer)
UNSTALLED = _webhook(WebhookEvent.UNSTALLED.value, UnstalledWebhookSerializer)
HANDOVER_RECORDED = _webhook(WebhookEvent.HANDOVER_RECORDED.value, HandoverRecordedWebhookSerializer)
