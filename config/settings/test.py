"""Test settings: the base settings, made fast and deterministic."""
from .base import *  # noqa: F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests send notifications by calling the dispatcher; a worker test turns this on for itself.
TRACKER_KICK_ON_COMMIT = False
TRACKER_WEBHOOK_ALLOW_PRIVATE = True
TRACKER_WEBHOOK_REQUIRE_HTTPS = False  # the tests' receivers are plain http on 127.0.0.1
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Most tests log staff in with force_login and no second factor; the two-factor tests
# (tests/admin/test_two_factor.py) turn the requirement on for themselves.
TRACKER_REQUIRE_2FA = False
