"""Signals the record sends so that watchers (the tracker) can react without the record
importing them. They are sent inside the writing transaction: a receiver that writes
(an outbox row, a flag) commits or rolls back with the change that caused it.
"""
from django.dispatch import Signal

#: Sent after a status change row is written. Arguments: negotiation, change.
status_changed = Signal()

#: Sent after anything that can move a negotiation's activity or deadline: an event
#: written, edited or deleted, a field update. Arguments: negotiation.
negotiation_touched = Signal()

#: Sent after a handover is recorded or changed. Arguments: negotiation, handover, created.
handover_recorded = Signal()
