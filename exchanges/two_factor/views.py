"""The admin's two-factor pages: the code after the password, and enrolment/removal.

The admin site (tracker/admin_site.py) serves them and sends every other admin page here
while `two_factor.pending(user)` says a code or an enrolment is due.
"""
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.signals import user_login_failed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django_otp import login as otp_login

from .. import login_guard
from . import (
    BACKUP_CODES,
    devices_remove,
    forget,
    pending,
    remaining_backup_codes,
    secret_text,
    state,
    totp_device_confirm,
    totp_device_pending,
    verify_code,
)  # fmt: skip

MAX_CODE_LENGTH = 64


def _next(request, site):
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if target and target.isprintable() and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("admin:index", current_app=site.name)


def _code(request):
    return (request.POST.get("code") or "")[:MAX_CODE_LENGTH]


def _render(request, site, template, title, **context):
    return TemplateResponse(
        request, template, {**site.each_context(request), "title": title, "next": _next(request, site), **context}
    )


def _refuse(request, username):
    """A wrong code is a failed login: it counts toward the lockout (exchanges.login_guard)."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)


def redirect_if_pending(request, site):
    """Where an admin page must send this login instead of answering, or None."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return None  # the admin's own check sends it to the login page
    due = pending(user)
    if due is None:
        return None
    name = "admin:two_factor_verify" if due == "verify" else "admin:two_factor"
    query = f"?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}" if request.method == "GET" else ""
    return redirect(reverse(name, current_app=site.name) + query)


def verify(request, site):
    """The second step of the login: a code from the app, or a backup code."""
    user = request.user
    if pending(user) != "verify":
        return redirect(_next(request, site))  # nothing to verify (an enrolment due is asked there)
    error = ""
    if request.method == "POST":
        username = user.get_username()
        if login_guard.is_locked(username, request):
            error = _("Too many failed logins; try again later.")
        else:
            device = verify_code(user=user, code=_code(request))
            if device is not None:
                request.session.cycle_key()
                otp_login(request, device)
                forget(user)
                return redirect(_next(request, site))
            _refuse(request, username)
            error = _(
                "That code is not right. Enter the current six-digit code from your authenticator app, "
                "or one of your backup codes (after several wrong codes, wait a few seconds between tries)."
            )
    return _render(request, site, "admin/two_factor/verify.html", _("Two-factor authentication"), error=error)


def _qr_svg(uri):
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    # Generated here from the device's own URI; no user input reaches the markup.
    return mark_safe(image.to_string(encoding="unicode"))


def manage(request, site):
    """Enrol a device (QR code and secret, then a current code, then the backup codes,
    shown once) or, once enrolled, remove it after entering a code."""
    user = request.user
    due = pending(user)
    if due == "verify":
        return redirect(reverse("admin:two_factor_verify", current_app=site.name))
    required, has_device = state(user)
    title = _("Two-factor authentication")
    if has_device:
        return _manage_enrolled(request, site, title, required)
    error = ""
    if request.method == "POST" and request.POST.get("action") == "confirm":
        codes = totp_device_confirm(request=request, user=user, code=_code(request))
        if codes is not None:
            request.session.cycle_key()
            return _render(request, site, "admin/two_factor/backup_codes.html", title, codes=codes)
        error = _("That code is not right. Check that your phone's clock is set automatically and enter the code it shows now.")
    device = totp_device_pending(user=user)
    return _render(
        request, site, "admin/two_factor/enrol.html", title,
        qr_svg=_qr_svg(device.config_url), secret=secret_text(device), otpauth_uri=device.config_url,
        required=required, error=error, backup_count=BACKUP_CODES,
    )  # fmt: skip


def _manage_enrolled(request, site, title, required):
    user = request.user
    error = ""
    if request.method == "POST" and request.POST.get("action") == "remove":
        username = user.get_username()
        if login_guard.is_locked(username, request):
            error = _("Too many failed logins; try again later.")
        elif verify_code(user=user, code=_code(request)) is None:
            _refuse(request, username)
            error = _("That code is not right: the device was not removed.")
        else:
            devices_remove(user=user, actor=user)
            messages.success(request, _("Two-factor authentication was removed from your login."))
            return redirect(reverse("admin:two_factor", current_app=site.name))
    return _render(
        request, site, "admin/two_factor/enrolled.html", title,
        required=required, error=error, backup_left=remaining_backup_codes(user),
    )  # fmt: skip
