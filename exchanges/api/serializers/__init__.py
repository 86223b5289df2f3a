"""JSON in and out. Serializers translate and validate shapes; services do the writing."""
from .fields import StrictFieldsMixin
from .handovers import CommitmentSerializer, HandoverSerializer, ProgressSerializer, TransferSerializer
from .negotiations import (
    CoveredGroupSerializer,
    EventSerializer,
    NegotiationSerializer,
    ParticipantSerializer,
    StaffNegotiationSerializer,
    StatusChangeSerializer,
    negotiation_representation,
)
from .records import (
    ApiClientSerializer,
    DetaineeGroupSerializer,
    PartySerializer,
    ReportedFigureSerializer,
    ReportedFigureUpdateSerializer,
)

__all__ = [
    "CommitmentSerializer", "HandoverSerializer", "ProgressSerializer", "TransferSerializer",
    "StrictFieldsMixin", "CoveredGroupSerializer", "EventSerializer", "NegotiationSerializer", "ParticipantSerializer",
    "StaffNegotiationSerializer", "StatusChangeSerializer", "negotiation_representation", "ApiClientSerializer",
    "DetaineeGroupSerializer", "PartySerializer", "ReportedFigureSerializer", "ReportedFigureUpdateSerializer",
]  # fmt: skip
