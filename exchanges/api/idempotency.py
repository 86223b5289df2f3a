"""`Idempotency-Key` on POST: a retried request returns the first response, creates nothing.

The same key with another body gets 422; while the first request is still running, 409.
Keys are kept per caller for 24 hours (IDEMPOTENCY_TTL). The stored response is written
in the same transaction as the work, so a crash leaves either both or neither; a key whose
request died keeps a lease that runs out after LEASE, then a retry may take it over.
"""
import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from ..models import ApiClient, IdempotencyKey

IDEMPOTENCY_TTL = timedelta(hours=24)
LEASE = timedelta(seconds=60)
HEADER = "Idempotency-Key"


def _owner(principal):
    kind = "client" if isinstance(principal, ApiClient) else "user"
    return f"{kind}:{principal.pk}"


def _fingerprint(request):
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _problem(message, code):
    return Response({"detail": message, "idempotency_key": [message]}, status=code)


def run(view, request, handler):
    """Run `handler()` (which returns a Response) at most once per caller and key.

    What the request is about must still be visible to the caller (`view.require_sight`,
    404 otherwise) before anything is replayed: a client that lost a negotiation does not
    get its stored responses back."""
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    getattr(view, "require_sight", lambda: None)()
    if not 1 <= len(key) <= 255:
        return _problem(_("Idempotency-Key must be 1 to 255 characters."), status.HTTP_400_BAD_REQUEST)
    owner, fingerprint, now = _owner(request.user), _fingerprint(request), timezone.now()

    IdempotencyKey.objects.filter(owner=owner, key=key, created_at__lt=now - IDEMPOTENCY_TTL).delete()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(
                owner=owner, key=key, request_hash=fingerprint, created_at=now, lease_until=now + LEASE
            )
    except IntegrityError:
        with transaction.atomic():
            record = IdempotencyKey.objects.select_for_update().get(owner=owner, key=key)
            if record.request_hash != fingerprint:
                return _problem(
                    _("This Idempotency-Key was used with a different request."), status.HTTP_422_UNPROCESSABLE_ENTITY
                )
            if record.response_status is not None:
                _require_still_visible(view, record)
                response = Response(record.response_body, status=record.response_status)
                response["Idempotent-Replayed"] = "true"
                return response
            if record.lease_until and record.lease_until > now:
                return _problem(_("A request with this Idempotency-Key is still running."), status.HTTP_409_CONFLICT)
            record.lease_until = now + LEASE
            record.save(update_fields=["lease_until"])

    try:
        with transaction.atomic():
            response = handler()
            if response.status_code >= 500:
                raise _Discard(response)
            _store(record, response)
    except _Discard as discarded:
        IdempotencyKey.objects.filter(pk=record.pk).delete()
        return discarded.response
    except Exception as exc:  # an API error (4xx) is a response too, and is replayed
        try:
            response = view.handle_exception(exc)
        except Exception:
            IdempotencyKey.objects.filter(pk=record.pk).delete()
            raise
        if response.status_code < 500 and response.status_code not in (409, 429):
            _store(record, response)
        else:
            IdempotencyKey.objects.filter(pk=record.pk).delete()
        return response
    return response


def _require_still_visible(view, record):
    """A stored creation is replayed only while what it created is still the caller's to
    see (a client that lost the negotiation since gets 404, as for any read of it)."""
    body = record.response_body
    if 200 <= record.response_status < 300 and isinstance(body, dict) and "id" in body:
        if not view.get_queryset().filter(pk=body["id"]).exists():
            raise NotFound()


class _Discard(Exception):
    def __init__(self, response):
        self.response = response


#: Shown once, in the creating response itself, never kept to be shown again.
NEVER_STORED = ("secret", "token")


def _store(record, response):
    """Keep the response to replay it, less any secret it showed (a replay answers the
    same, without the secret: it was shown once)."""
    rendered = JSONRenderer().render(response.data) if response.data is not None else None
    if rendered is not None and b"\\u0000" in rendered:
        # PostgreSQL's jsonb holds no NUL character, which an error can echo (an unknown
        # field's name, a refused value): such an answer is not kept, and a retry is
        # evaluated afresh, as after a 409.
        IdempotencyKey.objects.filter(pk=record.pk).delete()
        return
    body = json.loads(rendered) if rendered is not None else None
    if isinstance(body, dict):
        body = {name: value for name, value in body.items() if name not in NEVER_STORED}
    IdempotencyKey.objects.filter(pk=record.pk).update(response_status=response.status_code, response_body=body, lease_until=None)


def purge_expired(now=None):
    """Forget keys older than 24 hours; returns how many."""
    deleted, _by_model = IdempotencyKey.objects.filter(created_at__lt=(now or timezone.now()) - IDEMPOTENCY_TTL).delete()
    return deleted
