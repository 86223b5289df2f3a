"""API clients: created with a token shown once (only its digest is kept), changed,
revoked."""
import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from .. import audit, policy
from ..models import (
    ApiClient,
    AuditEntry,
)
from .base import TOKEN_PREFIX, _save, update_record


# API clients ------------------------------------------------------------------------


def hash_token(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def api_client_create(*, name, party, read_only=False, expires_at=None, actor=None):
    """Create a client and return `(client, token)`. The token is not stored and cannot be shown again."""
    policy.require(actor, "add", ApiClient)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(
        name=name,
        party=party,
        read_only=read_only,
        expires_at=expires_at,
        token_prefix=token[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(token),
    )
    _save(client)
    audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=client, after=audit.snapshot(client))
    return client, token


CLIENT_FIELDS = ("name", "read_only", "expires_at")


@transaction.atomic
def api_client_update(*, client, actor, **fields):
    policy.require(actor, "change", client)
    return update_record(client, actor=actor, fields=fields, allowed=CLIENT_FIELDS)


@transaction.atomic
def api_client_revoke(*, client, actor=None):
    policy.require(actor, "change", client)
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    if client.revoked_at is None:
        before = audit.snapshot(client)
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at", "updated_at"])
        audit.record(actor=actor, action=AuditEntry.Action.UPDATE, instance=client, before=before, after=audit.snapshot(client))
    return client
