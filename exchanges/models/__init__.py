"""The record: who negotiates, over whom, what was claimed, and what happened when.

Writes go through `exchanges.services`; reads with visibility rules through
`exchanges.selectors`. The database enforces what it can (see each Meta).
"""
from .base import MAX_COUNT, TimestampedModel
from .changes import Change
from .charts import StatusMonth
from .clients import ApiClient, IdempotencyKey
from .exports import ExportJob
from .handovers import Commitment, Handover, Transfer
from .negotiations import CoveredGroup, Event, Negotiation, Participant, ReferenceCounter, StatusChange
from .parties import DetaineeGroup, Party, ReportedFigure, Team
from .trail import AccessLogEntry, AppendOnlyModel, AppendOnlyQuerySet, AuditEntry

__all__ = [
    "MAX_COUNT", "TimestampedModel", "Change", "ApiClient", "IdempotencyKey", "ExportJob", "CoveredGroup", "Event", "Negotiation",
    "Participant", "ReferenceCounter", "StatusChange", "DetaineeGroup", "Party", "ReportedFigure", "Team",
    "Commitment", "Handover", "Transfer", "StatusMonth", "AccessLogEntry", "AppendOnlyModel", "AppendOnlyQuerySet", "AuditEntry",
]  # fmt: skip
