"""Protection against password guessing on the admin login.

After TRACKER_LOGIN_MAX_FAILURES failed logins for one username from one address, or five
times as many from one address for any usernames, within TRACKER_LOGIN_LOCKOUT_SECONDS,
further attempts from that address are refused, even with the right password, until the
window has passed. The username alone is never locked: a stranger guessing a staff
member's password locks out only themselves. The address is the client's, behind the
trusted proxies (`client_address`).
"""
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.utils.translation import gettext as _
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

from .client_address import client_address
from .soft_cache import soft


def _keys(username, request):
    address = client_address(request) if request is not None else ""
    return f"login-fail:user:{(username or '').lower()}:ip:{address}", f"login-fail:ip:{address}"


def _limits():
    failures = getattr(settings, "TRACKER_LOGIN_MAX_FAILURES", 5)
    return failures, failures * 5, getattr(settings, "TRACKER_LOGIN_LOCKOUT_SECONDS", 900)


def is_locked(username, request):
    per_user, per_address, _window = _limits()
    user_key, address_key = _keys(username, request)
    counts = soft(lambda: cache.get_many([user_key, address_key]), {}, "login protection")
    return counts.get(user_key, 0) >= per_user or counts.get(address_key, 0) >= per_address


@receiver(user_login_failed)
def count_failure(sender, credentials, request=None, **kwargs):
    _, _, window = _limits()
    for key in _keys(credentials.get("username"), request):
        soft(lambda key=key: _count(key, window), None, "login protection")


def _count(key, window):
    cache.add(key, 0, window)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, window)


class GuardedModelBackend(ModelBackend):
    """The usual username/password check, refused while the username or address is locked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if is_locked(username, request):
            raise PermissionDenied(_("Too many failed logins; try again later."))
        return super().authenticate(request, username=username, password=password, **kwargs)
