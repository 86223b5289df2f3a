"""How an agreement is carried out: commitments (on the negotiation), handovers and their
transfers, and the progress read from them."""
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ...choices import HandoverState
from ...models import Commitment, Handover, Party, Transfer
from .fields import (
    LONG_TEXT,
    RecordedByField,
    StrictFieldsMixin,
    WholeItemMixin,
    count_field,
    recorded_by_party_field,
    uuid_related,
)


class CommitmentSerializer(WholeItemMixin, StrictFieldsMixin, serializers.ModelSerializer):
    """What a releasing party undertook to release under a negotiation."""

    party = uuid_related(Party.objects.all(), help_text="The releasing party.")
    count = count_field(
        required=False, allow_null=True, help_text="How many it undertook to release; null: all it holds (all for all)."
    )
    seriously_wounded_count = count_field(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=LONG_TEXT)

    class Meta:
        model = Commitment
        fields = ["party", "count", "seriously_wounded_count", "notes"]


class ProgressSerializer(serializers.Serializer):
    """For each releasing party: what it undertook and what its done handovers released."""

    party = serializers.UUIDField()
    committed = serializers.IntegerField(allow_null=True, help_text="Null: open-ended (all it holds) or not recorded.")
    released = serializers.IntegerField(help_text="As the releasing side announced, over done handovers.")
    verified = serializers.IntegerField(help_text="As the verifier counted, over done handovers.")
    remaining = serializers.IntegerField(allow_null=True, help_text="Committed less released, never below 0; null when open-ended.")
    seriously_wounded_released = serializers.IntegerField()
    disputed = serializers.BooleanField(help_text="A done transfer's released, received and verified counts disagree.")


class TransferSerializer(WholeItemMixin, StrictFieldsMixin, serializers.ModelSerializer):
    """Detainees handed over from one party to another in a handover, counted three ways."""

    from_party = uuid_related(Party.objects.all(), help_text="The releasing party.")
    to_party = uuid_related(Party.objects.all(), help_text="The receiving party.")
    planned_count = count_field(required=False, allow_null=True)
    released_count = count_field(required=False, allow_null=True, help_text="As the releasing side announced.")
    received_count = count_field(required=False, allow_null=True, help_text="As the receiving side announced.")
    verified_count = count_field(required=False, allow_null=True, help_text="As the verifier counted.")
    seriously_wounded_count = count_field(required=False, allow_null=True, help_text="Part of the released (or planned).")
    civilians_count = count_field(required=False, allow_null=True, help_text="Part of the released (or planned).")

    class Meta:
        model = Transfer
        fields = [
            "from_party", "to_party", "planned_count", "released_count", "received_count", "verified_count",
            "seriously_wounded_count", "civilians_count",
        ]  # fmt: skip


class HandoverSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A stage of carrying out an agreement: planned, done, postponed or cancelled."""

    state = serializers.ChoiceField(choices=HandoverState.choices, required=False)
    verified_by = uuid_related(Party.objects.all(), required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=LONG_TEXT)
    transfers = TransferSerializer(many=True, required=False)
    recorded_by = RecordedByField()
    recorded_by_party = recorded_by_party_field()

    refuse_changes_to = {"sequence": _("Assigned by the tracker in the order handovers are recorded; do not send it.")}

    class Meta:
        model = Handover
        fields = [
            "id", "negotiation", "sequence", "state", "planned_on", "occurred_on", "location", "verified_by", "source",
            "notes", "transfers", "recorded_by", "recorded_by_party", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "negotiation", "sequence", "created_at", "updated_at"]
