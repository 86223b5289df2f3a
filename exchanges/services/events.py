"""Writes of a negotiation's timeline: its events."""
from django.db import transaction

from .. import audit, changes, policy, signals
from ..models import AuditEntry, Event, Negotiation
from .activity import ACTIVITY_FIELDS, _refresh_activity, touch_activity
from .base import _apply, _client_party, _not_in_future, _recorded_by, _save, _save_new_row

EVENT_FIELDS = ("kind", "occurred_at", "summary", "source")


@transaction.atomic
def event_create(*, negotiation, actor, parties=(), **fields):
    """Add an event to the timeline; it counts as activity at its real-world time.

    The negotiation is locked first (its activity is rewritten) and who may add to it
    asked once the lock is held; eleven statements from BEGIN to COMMIT with the audit
    entry and the change log (tests/api/test_write_statements.py)."""
    negotiation = Negotiation.objects.select_for_update().get(pk=negotiation.pk)
    policy.require(actor, "add", Event, negotiation=negotiation)
    event = Event(negotiation=negotiation, recorded_by_party=_client_party(actor), **_recorded_by(actor))
    _apply(event, fields, EVENT_FIELDS)
    _not_in_future("occurred_at", event.occurred_at)
    party_ids = list(dict.fromkeys(getattr(party, "pk", party) for party in parties))  # instances or ids, as set() takes
    with changes.together():
        _save_new_row(event)
        Event.parties.through.objects.bulk_create([Event.parties.through(event=event, party_id=pk) for pk in party_ids])
        audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=event, after=_event_snapshot(event, party_ids))
        _refresh_activity(negotiation)
        negotiation.save(update_fields=[*ACTIVITY_FIELDS, "updated_at"])
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
    return event


def _event_snapshot(event, party_ids=None):
    """`party_ids`: the event's, when the write has them in hand (no query)."""
    if party_ids is None:
        party_ids = event.parties.values_list("pk", flat=True)
    return audit.snapshot(event, parties=sorted(str(pk) for pk in party_ids))


@transaction.atomic
def event_update(*, event, actor, parties=None, **fields):
    event = Event.objects.select_for_update().get(pk=event.pk)
    policy.require(actor, "change", event)
    before = _event_snapshot(event)
    _apply(event, fields, EVENT_FIELDS)
    _not_in_future("occurred_at", event.occurred_at)
    _save(event)
    if parties is not None:
        event.parties.set(parties)
    audit.record(actor=actor, action=AuditEntry.Action.UPDATE, instance=event, before=before, after=_event_snapshot(event))
    touch_activity(event.negotiation)
    return event


@transaction.atomic
def event_delete(*, event, actor):
    """Remove an event from the timeline; it stays in the audit trail."""
    policy.require(actor, "delete", event)
    negotiation = event.negotiation
    audit.record(actor=actor, action=AuditEntry.Action.DELETE, instance=event, before=_event_snapshot(event))
    event.delete()
    touch_activity(negotiation)
