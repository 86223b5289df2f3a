"""What every write shares: the errors services raise, and the create, update and
delete of an audited record."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import audit, policy
from ..choices import allowed_transitions
from ..models.base import EARLIEST
from ..models import (
    ApiClient,
    AuditEntry,
)


TOKEN_PREFIX = "trk_"


class InUse(Exception):
    """A record that others still refer to cannot be deleted (HTTP 409)."""


class AlreadyRecorded(ValidationError):
    """The same claim (group, metric, value, source, date) is already recorded: a retry
    over a poor connection does not double the record. The API answers 409 naming the
    first; forms show it as an error like any other."""

    def __init__(self, existing):
        self.existing = existing
        super().__init__(_("This claim is already recorded (same group, metric, value, source and date)."))


class IllegalStatusChange(Exception):
    """A status move the transition table does not allow (HTTP 409)."""

    def __init__(self, *, from_status, to_status):
        self.from_status = from_status
        self.to_status = to_status
        self.allowed = allowed_transitions(from_status)
        super().__init__(
            _("A negotiation cannot move from %(from)s to %(to)s.") % {"from": from_status, "to": to_status}
        )


def _recorded_by(actor):
    User = get_user_model()
    return {
        "recorded_by_user": actor if isinstance(actor, User) else None,
        "recorded_by_client": actor if isinstance(actor, ApiClient) else None,
    }


def _client_party(actor):
    return actor.party if isinstance(actor, ApiClient) else None


def delete_record(instance, *, actor, in_use=None, why=None, snapshot=audit.snapshot):
    """Delete a record the actor may delete (policy) and nothing refers to (`in_use(row)`,
    asked with the row locked), leaving its last state (`snapshot(row)`) in the audit
    trail; 409 (`InUse`, saying `why` when given) otherwise. Shared by every audited
    delete in both apps. Call inside a transaction."""
    policy.require(actor, "delete", instance)
    instance = type(instance).objects.select_for_update().get(pk=instance.pk)
    if in_use is not None and in_use(instance):
        raise InUse(why or _("%(what)s is still referred to by other records; it cannot be deleted.") % {"what": instance})
    audit.record(actor=actor, action=AuditEntry.Action.DELETE, instance=instance, before=snapshot(instance))
    try:
        with transaction.atomic():
            instance.delete()
    except (ProtectedError, RestrictedError):
        raise InUse(_("%(what)s is still referred to by other records; it cannot be deleted.") % {"what": instance}) from None


def _not_in_future(field, value, *, now=None):
    """A moment something happened: not in the future, not before 1900."""
    if value is not None and value > (now or timezone.now()):
        raise ValidationError({field: [_("Must not be in the future.")]})
    if value is not None and value.date() < EARLIEST:
        raise ValidationError({field: [_("Must not be before %(day)s.") % {"day": EARLIEST.isoformat()}]})


def _save(instance, *, update_fields=None):
    """Validate fields and constraints the way the database will, then save."""
    instance.full_clean()
    instance.save(update_fields=update_fields)
    return instance


def _save_new_row(instance):
    """INSERT a row a service built, validating what came from the caller (lengths,
    choices, required values) the way the database will, and not asking the database
    what it answers itself: whether the rows the foreign keys point at exist (the
    service has just read them: the negotiation it locked, the caller authenticated),
    whether a fresh uuid or a sequence read under the negotiation's lock is taken, and the
    check constraints the fields' own validation covers. Each of those is a SELECT, and
    the check constraints a SAVEPOINT around one (7 of a status change's 24 statements)."""
    relations = [field.name for field in instance._meta.concrete_fields if field.is_relation]
    instance.full_clean(exclude=relations, validate_unique=False, validate_constraints=False)
    instance.save(force_insert=True)
    return instance


def _apply(instance, fields, allowed):
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed.")] for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(instance, name, value)


def create_record(instance, *, actor, fields, allowed, check=None):
    """Set `fields` (only names in `allowed`) on a new instance, validate, save and audit it.
    Shared by every create in both apps; `check(instance)` adds rules of its own."""
    _apply(instance, fields, allowed)
    if check is not None:
        check(instance)
    _save(instance)
    audit.record(actor=actor, action=AuditEntry.Action.CREATE, instance=instance, after=audit.snapshot(instance))
    return instance


def update_record(instance, *, actor, fields, allowed, check=None):
    """Lock the row, apply `fields`, validate, save, and audit the before and after.
    Call inside a transaction."""
    instance = type(instance).objects.select_for_update().get(pk=instance.pk)
    before = audit.snapshot(instance)
    _apply(instance, fields, allowed)
    if check is not None:
        check(instance)
    _save(instance)
    audit.record(actor=actor, action=AuditEntry.Action.UPDATE, instance=instance, before=before, after=audit.snapshot(instance))
    return instance
