"""Every write to the record. Views, the admin, commands and tasks all call these.

Each function is keyword-only, validates, writes in one transaction, and raises
`django.core.exceptions.ValidationError` (a dict of field -> messages) for bad input,
or `IllegalStatusChange` for a move the transition table forbids. An `actor` is a
staff `User`, an `ApiClient`, or None for the system.
"""
from .base import (
    TOKEN_PREFIX,
    AlreadyRecorded,
    IllegalStatusChange,
    InUse,
    create_record,
    delete_record,
    update_record,
)
from .clients import CLIENT_FIELDS, api_client_create, api_client_revoke, api_client_update, hash_token
from .handovers import HANDOVER_FIELDS, TRANSFER_COUNTS, handover_create, handover_delete, handover_update
from .events import EVENT_FIELDS, event_create, event_delete, event_update
from .negotiations import (
    NEGOTIATION_FIELDS,
    negotiation_change_status,
    negotiation_create,
    negotiation_delete,
    negotiation_has_history,
    negotiation_update,
)
from .parties import (
    FIGURE_FIELDS,
    FIGURE_MUTABLE_FIELDS,
    GROUP_FIELDS,
    PARTY_FIELDS,
    detainee_group_create,
    detainee_group_delete,
    detainee_group_update,
    figure_create,
    figure_delete,
    figure_update,
    figures_import,
    group_in_use,
    party_create,
    party_delete,
    party_in_use,
    party_update,
)

__all__ = [
    "TOKEN_PREFIX", "AlreadyRecorded", "IllegalStatusChange", "InUse", "create_record", "delete_record", "update_record",
    "CLIENT_FIELDS", "api_client_create", "api_client_revoke", "api_client_update", "hash_token",
    "HANDOVER_FIELDS", "TRANSFER_COUNTS", "handover_create", "handover_delete", "handover_update",
    "EVENT_FIELDS", "NEGOTIATION_FIELDS", "event_create", "event_delete", "event_update",
    "negotiation_change_status", "negotiation_create", "negotiation_delete", "negotiation_has_history", "negotiation_update",
    "FIGURE_FIELDS", "FIGURE_MUTABLE_FIELDS", "GROUP_FIELDS", "PARTY_FIELDS", "detainee_group_create",
    "detainee_group_delete", "detainee_group_update", "figure_create", "figure_delete", "figure_update",
    "figures_import", "group_in_use", "party_create", "party_delete", "party_in_use", "party_update",
]  # fmt: skip
