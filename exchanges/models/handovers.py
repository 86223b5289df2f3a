"""How an agreement is carried out: what each releasing party undertook (`Commitment`),
and the handovers (tranches, stages, rounds) with each direction's counts (`Transfer`).

The database holds the rules it can: counts >= 0, parts (seriously wounded, civilians)
never above the whole, one sequence number per negotiation, a done handover has its
date, a party never transfers to itself. That a committing or transferring party takes
part in the negotiation is a deferred foreign key to the participants on PostgreSQL
(migration 0011); the services check it first, so a client gets a 400, not an error.
"""
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from ..choices import HandoverState
from .base import TimestampedModel
from .negotiations import Negotiation
from .parties import Party, recorded_by_party_field


def _count(label):
    return models.PositiveIntegerField(label, null=True, blank=True)


def _part_within(part, whole, name):
    """`part` never above `whole` when both are known."""
    return models.CheckConstraint(
        condition=Q(**{f"{part}__isnull": True}) | Q(**{f"{whole}__isnull": True}) | Q(**{f"{part}__lte": F(whole)}),
        name=name,
    )


class Commitment(models.Model):
    """How many one releasing party undertook to release (`count` null: all it holds, as
    in "all for all"), and how many of them seriously wounded."""

    id = models.BigAutoField(primary_key=True)
    negotiation = models.ForeignKey(
        Negotiation, on_delete=models.CASCADE, related_name="commitments", verbose_name=_("negotiation")
    )
    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="+", verbose_name=_("releasing party"))
    count = _count(_("committed to release"))
    seriously_wounded_count = _count(_("of whom seriously wounded"))
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("commitment")
        verbose_name_plural = _("commitments")
        constraints = [
            models.UniqueConstraint(fields=["negotiation", "party"], name="commitment_one_per_party"),
            _part_within("seriously_wounded_count", "count", "commitment_wounded_within_count"),
        ]

    def __str__(self):
        count = _("all") if self.count is None else self.count
        return f"{self.party}: {count}"


class Handover(TimestampedModel):
    """One stage of carrying out an agreement. `sequence` numbers a negotiation's handovers
    1, 2, 3... in the order they are recorded."""

    negotiation = models.ForeignKey(
        Negotiation, on_delete=models.CASCADE, related_name="handovers", verbose_name=_("negotiation")
    )
    sequence = models.PositiveIntegerField(_("sequence"), editable=False)
    state = models.CharField(_("state"), max_length=16, choices=HandoverState.choices, default=HandoverState.PLANNED)
    planned_on = models.DateField(_("planned on"), null=True, blank=True)
    occurred_on = models.DateField(
        _("occurred on"), null=True, blank=True, help_text=_("Required once done; never in the future.")
    )
    location = models.CharField(_("location"), max_length=300, blank=True)
    verified_by = models.ForeignKey(
        Party,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("verified by"),
        help_text=_("Usually the ICRC."),
    )
    source = models.CharField(_("source"), max_length=1000, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    recorded_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("recorded by (staff)"),
    )
    recorded_by_client = models.ForeignKey(
        "ApiClient", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("recorded by (API client)"),
    )
    recorded_by_party = recorded_by_party_field(
        _("The party whose API client recorded it: only that party may change or delete it.")
    )

    class Meta:
        ordering = ["negotiation", "sequence"]
        verbose_name = _("handover")
        verbose_name_plural = _("handovers")
        constraints = [
            models.UniqueConstraint(fields=["negotiation", "sequence"], name="handover_sequence_unique"),
            models.CheckConstraint(condition=Q(state__in=HandoverState.values), name="handover_state_valid"),
            models.CheckConstraint(
                condition=~Q(state=HandoverState.DONE) | Q(occurred_on__isnull=False), name="handover_done_has_date"
            ),
        ]
        indexes = [
            models.Index(fields=["negotiation", "occurred_on"], name="handover_done_on", condition=Q(state="done")),
        ]

    def __str__(self):
        return _("Handover %(sequence)s (%(state)s)") % {"sequence": self.sequence, "state": self.get_state_display()}

    @property
    def recorded_by(self):
        return self.recorded_by_user or self.recorded_by_client


class Transfer(models.Model):
    """The people one party hands to another in a handover, as each side and the verifier
    counted them: `released` as the releasing side announced, `received` as the receiving
    side announced, `verified` as the verifier counted."""

    id = models.BigAutoField(primary_key=True)
    handover = models.ForeignKey(Handover, on_delete=models.CASCADE, related_name="transfers", verbose_name=_("handover"))
    #: The handover's negotiation, kept beside it so the database can check that both
    #: parties take part in it (a foreign key to the participants on PostgreSQL).
    negotiation = models.ForeignKey(Negotiation, on_delete=models.CASCADE, related_name="+", editable=False)
    from_party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="+", verbose_name=_("releasing party"))
    to_party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="+", verbose_name=_("receiving party"))
    planned_count = _count(_("planned"))
    released_count = _count(_("released"))
    received_count = _count(_("received"))
    verified_count = _count(_("verified"))
    seriously_wounded_count = _count(_("of whom seriously wounded"))
    civilians_count = _count(_("of whom civilians"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        constraints = [
            models.UniqueConstraint(fields=["handover", "from_party", "to_party"], name="transfer_one_per_direction"),
            models.CheckConstraint(condition=~Q(from_party=F("to_party")), name="transfer_not_to_itself"),
            _part_within("seriously_wounded_count", "released_count", "transfer_wounded_within_released"),
            _part_within("civilians_count", "released_count", "transfer_civilians_within_released"),
            _part_within("seriously_wounded_count", "planned_count", "transfer_wounded_within_planned"),
            _part_within("civilians_count", "planned_count", "transfer_civilians_within_planned"),
        ]
        indexes = [models.Index(fields=["negotiation", "from_party"], name="transfer_by_releasing_party")]

    def __str__(self):
        return f"{self.from_party} → {self.to_party}"

    @property
    def disputed(self):
        """The released, received and verified counts (those given) disagree."""
        counts = {c for c in (self.released_count, self.received_count, self.verified_count) if c is not None}
        return len(counts) > 1
