"""Controlled vocabularies of the record, and the status transition table."""
from django.db import models
from django.utils.translation import gettext_lazy as _


class PartyKind(models.TextChoices):
    STATE = "state", _("State")
    DE_FACTO_AUTHORITY = "de_facto_authority", _("De-facto authority")
    INTERGOVERNMENTAL = "intergovernmental", _("Intergovernmental organisation")
    HUMANITARIAN = "humanitarian", _("Humanitarian organisation")
    OTHER = "other", _("Other")


class GroupCategory(models.TextChoices):
    COMBATANTS = "combatants", _("Combatants")
    CIVILIANS = "civilians", _("Civilians")
    MEDICAL_PERSONNEL = "medical_personnel", _("Medical personnel")
    MIXED = "mixed", _("Mixed")


class FigureMetric(models.TextChoices):
    TOTAL = "total", _("Total")
    SERIOUSLY_WOUNDED = "seriously_wounded", _("Seriously wounded")
    WOUNDED = "wounded", _("Wounded")
    RELEASED = "released", _("Released")
    DECEASED = "deceased", _("Deceased")
    MISSING = "missing", _("Missing")


class Reliability(models.TextChoices):
    UNVERIFIED = "unverified", _("Unverified")
    CORROBORATED = "corroborated", _("Corroborated")
    DISPUTED = "disputed", _("Disputed")
    VERIFIED = "verified", _("Verified")


class Priority(models.TextChoices):
    ROUTINE = "routine", _("Routine")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class Visibility(models.TextChoices):
    ALL_PARTNERS = "all_partners", _("All partners")
    PARTICIPANTS = "participants", _("Participants only")
    STAFF_ONLY = "staff_only", _("Staff only")


class ParticipantRole(models.TextChoices):
    SIDE = "side", _("Side")
    MEDIATOR = "mediator", _("Mediator")
    FACILITATOR = "facilitator", _("Facilitator")
    GUARANTOR = "guarantor", _("Guarantor")
    OBSERVER = "observer", _("Observer")


class EventKind(models.TextChoices):
    MEETING = "meeting", _("Meeting")
    PROPOSAL = "proposal", _("Proposal")
    COUNTER_PROPOSAL = "counter_proposal", _("Counter-proposal")
    REJECTION = "rejection", _("Rejection")
    STATEMENT = "statement", _("Statement")
    LIST_EXCHANGE = "list_exchange", _("List exchange")
    VERIFICATION = "verification", _("Verification")
    RELEASE = "release", _("Release")
    OTHER = "other", _("Other")


class NegotiationStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed")
    IN_TALKS = "in_talks", _("In talks")
    AGREED_IN_PRINCIPLE = "agreed_in_principle", _("Agreed in principle")
    LISTS_EXCHANGED = "lists_exchanged", _("Lists exchanged")
    AGREED = "agreed", _("Agreed")
    IMPLEMENTING = "implementing", _("Implementing")
    SUSPENDED = "suspended", _("Suspended")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    COLLAPSED = "collapsed", _("Collapsed")


S = NegotiationStatus

#: The only moves a status may make (API.md). Final statuses have none.
TRANSITIONS = {
    S.PROPOSED: (S.IN_TALKS, S.REJECTED, S.COLLAPSED),
    S.IN_TALKS: (S.AGREED_IN_PRINCIPLE, S.SUSPENDED, S.COLLAPSED),
    S.AGREED_IN_PRINCIPLE: (S.LISTS_EXCHANGED, S.IN_TALKS, S.SUSPENDED, S.COLLAPSED),
    S.LISTS_EXCHANGED: (S.AGREED, S.IN_TALKS, S.SUSPENDED, S.COLLAPSED),
    S.AGREED: (S.IMPLEMENTING, S.SUSPENDED, S.COLLAPSED),
    S.IMPLEMENTING: (S.COMPLETED, S.SUSPENDED, S.COLLAPSED),
    S.SUSPENDED: (S.IN_TALKS, S.COLLAPSED),
    S.COMPLETED: (),
    S.REJECTED: (),
    S.COLLAPSED: (),
}

FINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)
OPEN = frozenset(status for status in NegotiationStatus if status not in FINAL)


def allowed_transitions(status):
    """The statuses a negotiation in `status` may move to, in table order."""
    return [str(target) for target in TRANSITIONS[NegotiationStatus(status)]]


class HandoverState(models.TextChoices):
    PLANNED = "planned", _("Planned")
    DONE = "done", _("Done")
    POSTPONED = "postponed", _("Postponed")
    CANCELLED = "cancelled", _("Cancelled")


#: Where an agreement is being carried out: the statuses `wounded_waiting` watches.
AGREED_STATUSES = frozenset({NegotiationStatus.AGREED, NegotiationStatus.IMPLEMENTING})
