"""Two-factor login for staff: a TOTP app on the phone, and ten one-time backup codes.

A staff member with a confirmed device enters a code after the password before any admin
page; a member of a role listed in TRACKER_REQUIRE_2FA_ROLES (Coordinators and Auditors
by default: they see the trail, who is held where and who may see it) must enrol first,
and can do nothing else in the admin until then. TRACKER_REQUIRE_2FA=false turns the
second step off altogether (the local demo of `make run`). Devices are django-otp's;
the writes (enrolling, removing) are here, audited, each in one transaction.
"""
import re
from base64 import b32encode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Exists, OuterRef
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..roles import ROLES

#: How many backup codes an enrolment gives (each works once).
BACKUP_CODES = 10
#: The device names shown in the admin's device lists.
TOTP_NAME, BACKUP_NAME = "Authenticator app", "Backup codes"


def enabled():
    return getattr(settings, "TRACKER_REQUIRE_2FA", True)


def _required_groups():
    keys = {key.strip().lower() for key in getattr(settings, "TRACKER_REQUIRE_2FA_ROLES", ("coordinator", "auditor"))}
    return [ROLES[key][0] for key in sorted(keys) if key in ROLES], "superuser" in keys


def state(user):
    """(required, has_device) for a staff login, in one query, remembered on the user
    object for the rest of the request. Both False while the feature is off."""
    if not enabled() or not getattr(user, "is_authenticated", False):
        return False, False
    cached = getattr(user, "_two_factor_state", None)
    if cached is not None:
        return cached
    group_names, superusers = _required_groups()
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            in_role=Exists(Group.objects.filter(user=OuterRef("pk"), name__in=group_names)),
            has_totp=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
            has_backup=Exists(StaticDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
        )
        .values("in_role", "has_totp", "has_backup")
        .first()
    ) or {"in_role": False, "has_totp": False, "has_backup": False}
    required = bool(row["in_role"] or (superusers and user.is_superuser))
    result = (required, bool(row["has_totp"] or row["has_backup"]))
    try:
        user._two_factor_state = result
    except AttributeError:  # pragma: no cover - a user object that takes no attributes
        pass
    return result


def is_verified(user):
    """Whether this session entered a code (django-otp's middleware sets `otp_device`)."""
    return getattr(user, "otp_device", None) is not None


def pending(user):
    """What stands between this login and the admin: None, "verify" (a code is due) or
    "enrol" (the role requires a device it does not have)."""
    if not enabled() or not getattr(user, "is_authenticated", False) or is_verified(user):
        return None
    required, has_device = state(user)
    if has_device:
        return "verify"
    return "enrol" if required else None


def forget(user):
    """Drop the remembered state after enrolling or removing a device."""
    try:
        del user._two_factor_state
    except AttributeError:
        pass


def secret_text(device):
    """The key as an authenticator app takes it by hand: base32, in groups of four."""
    text = b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalise_code(code):
    """Codes are digits or base32 letters: spaces, dashes and anything else typed around
    them are dropped (and so never reach the database)."""
    return re.sub(r"[^a-z0-9]", "", (code or "").lower())[:32]


# Writes ---------------------------------------------------------------------------------


def totp_device_pending(*, user):
    """The login's unconfirmed authenticator device, created on first use, so that reloading
    the enrolment page keeps showing the same secret."""
    with transaction.atomic():
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def totp_device_confirm(*, request, user, code):
    """Confirm the pending device with a current code. Returns the backup codes (shown
    once), or None when the code is wrong. Any earlier device of the login is replaced."""
    from .. import audit
    from ..models import AuditEntry

    code = normalise_code(code)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
        if device is None or not code.isdigit() or not device.verify_token(code):
            return None
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        StaticDevice.objects.filter(user=user).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        backup = StaticDevice.objects.create(user=user, name=BACKUP_NAME, confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
        StaticToken.objects.bulk_create([StaticToken(device=backup, token=token) for token in codes])
        audit.record(
            actor=user, action=AuditEntry.Action.CREATE, instance=device,
            after={"user": user.get_username(), "name": device.name, "confirmed": True, "backup_codes": BACKUP_CODES},
        )  # fmt: skip
    otp_login(request, device)
    forget(user)
    return codes


def verify_code(*, user, code):
    """The device that accepts `code` (six digits: the app; else a backup code, which is
    used up), or None. Both kinds slow down after wrong codes (django-otp's throttling)."""
    code = normalise_code(code)
    if not code:
        return None
    model = TOTPDevice if code.isdigit() and len(code) <= 8 else StaticDevice
    with transaction.atomic():
        for device in model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"):
            if device.verify_token(code):
                return device
    return None


def devices_remove(*, user, actor):
    """Remove every two-factor device of `user` (the app and the backup codes go together:
    the login then enrols again, or, outside the required roles, logs in with its password
    alone). `actor` removes their own (the two-factor page asks a code first) or, as the
    policy allows, another login's (a lost phone); audited, one entry per device, never
    its key or codes. Returns how many confirmed devices were removed."""
    from .. import audit, policy
    from ..models import AuditEntry

    policy.require_two_factor_removal(actor, user)
    with transaction.atomic():
        totp = list(TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"))
        backup = list(StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"))
        for device in totp:
            audit.record(
                actor=actor, action=AuditEntry.Action.DELETE, instance=device,
                before={"user": user.get_username(), "name": device.name, "confirmed": True},
            )  # fmt: skip
        for device in backup:
            audit.record(
                actor=actor, action=AuditEntry.Action.DELETE, instance=device,
                before={"user": user.get_username(), "name": device.name, "confirmed": True, "backup_codes": device.token_set.count()},
            )  # fmt: skip
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
    forget(user)
    return len(totp) + len(backup)


def remaining_backup_codes(user):
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
