"""The audit trail: recording who changed what, and from which request.

Services call `record(...)` in the same transaction as the change; once it commits, the
new entries are sealed into the trail's hash chain (`exchanges.chain`). The request id and
channel come from a context variable set per HTTP request (middleware) or per Celery
task (task signals); anything else is the system (a command, the shell).
"""
import contextvars
import datetime
import decimal
import ipaddress
import uuid
from collections import OrderedDict

from django.contrib.auth import get_user_model
from django.utils import timezone

from . import chain
from .models import AccessLogEntry, ApiClient, AuditEntry

_context = contextvars.ContextVar("audit_context", default={"request_id": "", "channel": "system", "address": None})

#: Never copied into the trail.
SECRET_FIELDS = {"token_hash", "secret", "password"}
#: Not worth a line of history.
NOISE_FIELDS = {"updated_at", "created_at", "last_used_at", "leased_until"}


def set_context(*, request_id, channel, address=None):
    """`address`: the caller's, as the server saw it; checked only when something logs it
    (every request sets the context, few write the access log)."""
    return _context.set({"request_id": request_id, "channel": channel, "address": address})


def _address(value):
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def reset_context(token):
    _context.reset(token)


def current_context():
    return _context.get()


def _plain(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    return value


def snapshot(instance, **extra):
    """The concrete field values of `instance`, JSON-safe, secrets left out."""
    values = {}
    for field in instance._meta.concrete_fields:
        if field.name in SECRET_FIELDS or field.name in NOISE_FIELDS:
            continue
        values[field.name] = _plain(getattr(instance, field.attname))
    values.update({name: _plain(value) for name, value in extra.items()})
    return values


def diff(before, after):
    keys = set(before or {}) | set(after or {})
    return {
        key: [(before or {}).get(key), (after or {}).get(key)]
        for key in sorted(keys)
        if (before or {}).get(key) != (after or {}).get(key)
    }


def actor_fields(actor):
    if isinstance(actor, ApiClient):
        return {"actor_type": "api_client", "actor_id": str(actor.pk), "actor_label": f"{actor.name} (API client)"}
    if isinstance(actor, get_user_model()):
        return {"actor_type": "staff", "actor_id": str(actor.pk), "actor_label": actor.get_username()}
    return {"actor_type": "system", "actor_id": "", "actor_label": "system"}


def _negotiation_id(instance):
    from .models import Negotiation

    if isinstance(instance, Negotiation):
        return instance.pk
    return getattr(instance, "negotiation_id", None)


def record(*, actor, action, instance, before=None, after=None, negotiation_id=None):
    """Append one entry. `before`/`after` are snapshots; only what differs is kept."""
    changes = diff(before, after)
    if action == AuditEntry.Action.UPDATE and not changes:
        return None
    context = _context.get()
    entry = AuditEntry.objects.create(
        action=action,
        model=instance._meta.label_lower,
        object_id=str(instance.pk),
        object_repr=str(instance)[:300],
        negotiation_id=negotiation_id or _negotiation_id(instance),
        changes=changes,
        request_id=context["request_id"],
        channel=context["channel"],
        **actor_fields(actor),
    )
    chain.seal_after_commit(chain.AUDIT)
    return entry


class _RecentReads:
    """Which (client, negotiation) reads this process logged lately, so that a client
    polling a negotiation writes one entry per window, not one per request."""

    def __init__(self, window=datetime.timedelta(minutes=10), size=50_000):
        self.window, self.size, self.seen = window, size, OrderedDict()

    def fresh(self, key, now):
        last = self.seen.get(key)
        if last is not None and now - last < self.window:
            return False
        self.seen[key] = now
        self.seen.move_to_end(key)
        while len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return True


recent_reads = _RecentReads()


def log_reads(client, negotiations):
    """Log an API client's reads of `participants` negotiations, cheaply (see _RecentReads)."""
    now = timezone.now()
    context = _context.get()
    entries = [
        AuditEntry(
            occurred_at=now,
            action=AuditEntry.Action.READ,
            model="exchanges.negotiation",
            object_id=str(negotiation.pk),
            object_repr=str(negotiation)[:300],
            negotiation_id=negotiation.pk,
            request_id=context["request_id"],
            channel=context["channel"],
            **actor_fields(client),
        )
        for negotiation in negotiations
        if negotiation.visibility == "participants" and recent_reads.fresh((client.pk, negotiation.pk), now)
    ]
    if entries:
        # One INSERT of all the rows, in the request's own autocommit: bulk_create would add
        # a BEGIN and a COMMIT round trip around it (two of a list request's five).
        fields = [field for field in AuditEntry._meta.concrete_fields if not field.primary_key]
        AuditEntry._base_manager._insert(entries, fields=fields)
        chain.seal_after_commit(chain.AUDIT)


def log_staff_access(user, negotiations, *, channel):
    """Write one access-log entry per `staff_only` negotiation a staff login read (an admin
    page, an API read, an export that includes it): who, which, when, from where, how."""
    from .choices import Visibility

    if user is None or isinstance(user, ApiClient):
        return
    context = _context.get()
    now = timezone.now()
    entries = [
        AccessLogEntry(
            occurred_at=now,
            user_id=user.pk,
            user_label=user.get_username(),
            negotiation_id=negotiation.pk,
            negotiation_repr=str(negotiation)[:300],
            address=_address(context.get("address")),
            channel=channel,
            request_id=context["request_id"],
        )
        for negotiation in negotiations
        if negotiation.visibility == Visibility.STAFF_ONLY
    ]
    if entries:
        AccessLogEntry.objects.bulk_create(entries)
        chain.seal_after_commit(chain.ACCESS)


def log_staff_reads_of(user, rows, *, channel):
    """The access log for a page that shows `rows`: negotiations, or rows that hang off
    one (`negotiation_id`: events, flags, status changes...). One query finds which of
    their negotiations are `staff_only`; those are logged as read."""
    from .models import Negotiation

    if user is None or isinstance(user, ApiClient):
        return
    ids = {row.pk if isinstance(row, Negotiation) else getattr(row, "negotiation_id", None) for row in rows}
    ids.discard(None)
    if ids:
        from .choices import Visibility

        shown = Negotiation.objects.filter(pk__in=ids, visibility=Visibility.STAFF_ONLY).only("pk", "reference", "title", "visibility")
        log_staff_access(user, shown, channel=channel)
