"""Secrets the tracker must be able to use again (webhook signing secrets) are kept
encrypted at rest, so a database dump holds no usable secret. (API tokens need no
decryption: only their SHA-256 digest is stored.)

Keys come from TRACKER_ENCRYPTION_KEYS: comma-separated Fernet keys (AES-128-CBC with
HMAC-SHA256; make one with `python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`). The first encrypts; every one decrypts, so a key
is rotated by putting the new one first, running `python manage.py rotate_encryption_keys`
(re-encrypts every stored secret with it), then dropping the old one. Unset, one key is
derived from DJANGO_SECRET_KEY (local runs; production should set its own keys, kept
apart from the database and its backups).
"""
import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "enc:v1:"


def _box():
    raw = [key.strip() for key in getattr(settings, "TRACKER_ENCRYPTION_KEYS", "").split(",") if key.strip()]
    if not raw:
        derived = hashlib.sha256(b"tracker-encryption:" + settings.SECRET_KEY.encode()).digest()
        raw = [base64.urlsafe_b64encode(derived).decode()]
    try:
        return MultiFernet([Fernet(key) for key in raw])
    except ValueError as error:
        raise ImproperlyConfigured(f"TRACKER_ENCRYPTION_KEYS holds a key that is not a Fernet key: {error}") from None


def encrypt(text):
    return PREFIX + _box().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(stored):
    """The plain text of a stored value (a value stored before encryption is returned as
    it is, until `rotate_encryption_keys` encrypts it)."""
    if not stored.startswith(PREFIX):
        return stored
    try:
        return _box().decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with TRACKER_ENCRYPTION_KEYS: was a key dropped too early?"
        ) from None


class EncryptedTextField(models.TextField):
    """Text encrypted in the database, plain in Python."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "" or value.startswith(PREFIX):
            return value
        return encrypt(value)
