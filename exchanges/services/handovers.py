"""Writes of handovers and their transfers: how an agreement is carried out."""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import audit, policy, signals
from ..choices import HandoverState
from ..models import AuditEntry, Handover, Negotiation, Transfer
from ..models.base import EARLIEST, refuse_unlikely_plan
from .base import _apply, _client_party, _recorded_by, _save
from .activity import touch_activity

HANDOVER_FIELDS = ("state", "planned_on", "occurred_on", "location", "verified_by", "source", "notes")
TRANSFER_COUNTS = (
    "planned_count", "released_count", "received_count", "verified_count", "seriously_wounded_count", "civilians_count",
)  # fmt: skip


def _check_handover(handover, negotiation):
    errors = {}
    if handover.state not in HandoverState.values:
        errors["state"] = [_("“%(value)s” is not a handover state.") % {"value": handover.state}]
    occurred = handover.occurred_on
    if handover.state == HandoverState.DONE and occurred is None:
        errors["occurred_on"] = [_("Required once the handover is done.")]
    elif handover.state == HandoverState.PLANNED and occurred is not None:
        errors["occurred_on"] = [_("A planned handover has not occurred: leave it empty, or mark the handover done.")]
    elif occurred is not None and occurred > timezone.localdate():
        errors["occurred_on"] = [_("Must not be in the future.")]
    elif occurred is not None and occurred < max(EARLIEST, negotiation.opened_on):
        errors["occurred_on"] = [
            _("Must not be before the negotiation opened (%(day)s).") % {"day": negotiation.opened_on.isoformat()}
        ]
    refuse_unlikely_plan(errors, "planned_on", handover.planned_on)
    if errors:
        raise ValidationError(errors)


def _label(name):
    """A transfer count as staff and partners read it, with its field name: "of whom
    seriously wounded (seriously_wounded_count)"."""
    return f"{Transfer._meta.get_field(name).verbose_name} ({name})"


def _transfer_error(index, message):
    return ValidationError({"transfers": [_("Transfer %(n)d: %(message)s") % {"n": index + 1, "message": message}]})


def _replace_transfers(handover, transfers):
    """The transfers of a handover, replaced as a list: each between two different parties
    that take part in the negotiation, one per direction, the parts within the whole."""
    taking_part = set(handover.negotiation.participants.values_list("party_id", flat=True))
    directions = set()
    rows = []
    for index, entry in enumerate(transfers):
        source, target = entry["from_party"], entry["to_party"]
        if source.pk == target.pk:
            raise _transfer_error(index, _("a party does not transfer to itself."))
        for party in (source, target):
            if party.pk not in taking_part:
                raise _transfer_error(index, _("%(party)s does not take part in this negotiation.") % {"party": party})
        if (source.pk, target.pk) in directions:
            raise _transfer_error(index, _("%(from)s → %(to)s is listed more than once.") % {"from": source, "to": target})
        directions.add((source.pk, target.pk))
        counts = {name: entry.get(name) for name in TRANSFER_COUNTS}
        whole = "released_count" if handover.state == HandoverState.DONE else "planned_count"
        for part in ("seriously_wounded_count", "civilians_count"):
            if counts[part] is not None and counts[whole] is None and counts["released_count"] is None:
                raise _transfer_error(
                    index,
                    _("%(part)s are part of %(whole)s: give that count too.") % {"part": _label(part), "whole": _label(whole)},
                )
        for part in ("seriously_wounded_count", "civilians_count"):
            for whole in ("released_count", "planned_count"):
                if counts[part] is not None and counts[whole] is not None and counts[part] > counts[whole]:
                    raise _transfer_error(
                        index,
                        _("%(value)d %(part)s is more than %(total)d %(whole)s.")
                        % {"part": _label(part), "value": counts[part], "whole": _label(whole), "total": counts[whole]},
                    )
        rows.append(
            Transfer(handover=handover, negotiation_id=handover.negotiation_id, from_party=source, to_party=target, **counts)
        )
    for row in rows:
        row.full_clean(exclude=["handover", "negotiation"], validate_unique=False, validate_constraints=False)
    handover.transfers.all().delete()
    Transfer.objects.bulk_create(rows)


def _snapshot(handover):
    return audit.snapshot(
        handover,
        transfers=[
            [str(row["from_party"]), str(row["to_party"]), *(row[name] for name in TRANSFER_COUNTS)]
            for row in handover.transfers.order_by("id").values("from_party", "to_party", *TRANSFER_COUNTS)
        ],
    )


def _after_write(handover, *, created):
    touch_activity(handover.negotiation)
    signals.handover_recorded.send(sender=Handover, negotiation=handover.negotiation, handover=handover, created=created)


@transaction.atomic
def handover_create(*, negotiation, actor, transfers=(), **fields):
    """Record a handover; it takes the next sequence number of its negotiation (the
    negotiation row is locked, so two recorders never take the same one)."""
    policy.require(actor, "add", Handover, negotiation=negotiation)
    negotiation = Negotiation.objects.select_for_update().get(pk=negotiation.pk)
    handover = Handover(negotiation=negotiation, recorded_by_party=_client_party(actor), **_recorded_by(actor))
    _apply(handover, fields, HANDOVER_FIELDS)
    _check_handover(handover, negotiation)
    # Never reused, even after a deletion: staff and webhooks refer to "handover 2".
    negotiation.handovers_recorded += 1
    Negotiation.objects.filter(pk=negotiation.pk).update(handovers_recorded=negotiation.handovers_recorded)
    handover.sequence = negotiation.handovers_recorded
    _save(handover)
    _replace_transfers(handover, transfers)
    audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=handover, after=_snapshot(handover))
    _after_write(handover, created=True)
    return handover


@transaction.atomic
def handover_update(*, handover, actor, transfers=None, **fields):
    """Change a handover (its state as it is carried out, the counts as they come in);
    `transfers`, when given, replace the list."""
    # The negotiation first, as recording one does: its participants cannot change while
    # the transfers are checked against them.
    Negotiation.objects.select_for_update().filter(pk=handover.negotiation_id).first()
    handover = Handover.objects.select_for_update().select_related("negotiation").get(pk=handover.pk)
    policy.require(actor, "change", handover)
    before = _snapshot(handover)
    _apply(handover, fields, HANDOVER_FIELDS)
    _check_handover(handover, handover.negotiation)
    _save(handover)
    if transfers is not None:
        _replace_transfers(handover, transfers)
    audit.record(actor=actor, action=AuditEntry.Action.UPDATE, instance=handover, before=before, after=_snapshot(handover))
    _after_write(handover, created=False)
    return handover


@transaction.atomic
def handover_delete(*, handover, actor):
    """Remove a handover recorded in error; it stays in the audit trail. The sequence
    numbers of the others do not move."""
    policy.require(actor, "delete", handover)
    handover = Handover.objects.select_for_update().select_related("negotiation").get(pk=handover.pk)
    audit.record(actor=actor, action=AuditEntry.Action.DELETE, instance=handover, before=_snapshot(handover))
    negotiation = handover.negotiation
    handover.delete()
    touch_activity(negotiation)
