"""How the tracker hears about writes to the record (inside the writing transaction)."""
from . import notify, services


def on_status_changed(sender, *, negotiation, change, **kwargs):
    notify.status_changed(negotiation=negotiation, change=change)


def on_negotiation_touched(sender, *, negotiation, **kwargs):
    services.resolve_flags_for(negotiation)


def on_handover_recorded(sender, *, negotiation, handover, created, **kwargs):
    notify.handover_recorded(negotiation=negotiation, handover=handover, created=created)
