"""Webhook signing secrets are encrypted at rest: a database dump holds none usable, the
worker still signs with them, and keys rotate without losing any."""
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from tracker.models import WebhookSubscription

pytestmark = pytest.mark.django_db


def stored(subscription):
    """The value as a database dump would show it."""
    with connection.cursor() as cursor:
        column = WebhookSubscription._meta.pk.get_db_prep_value(subscription.pk, connection)  # SQLite: undashed text
        cursor.execute("SELECT secret FROM tracker_webhooksubscription WHERE id = %s", [column])
        return cursor.fetchone()[0]


def test_the_secret_is_stored_encrypted_and_read_back_plain(ukraine, make_api):
    created = make_api(ukraine).post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/h", "events": ["negotiation.stalled"]}, format="json").json()
    subscription = WebhookSubscription.objects.get(pk=created["id"])
    assert subscription.secret == created["secret"]
    raw = stored(subscription)
    assert raw.startswith("enc:v1:") and created["secret"] not in raw and created["secret"][6:20] not in raw


def test_keys_rotate_without_losing_a_secret(ukraine, make_api, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TRACKER_ENCRYPTION_KEYS = old
    created = make_api(ukraine).post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/h", "events": ["negotiation.stalled"]}, format="json").json()
    subscription = WebhookSubscription.objects.get(pk=created["id"])
    before = stored(subscription)
    settings.TRACKER_ENCRYPTION_KEYS = f"{new},{old}"  # the new key first: both decrypt
    assert WebhookSubscription.objects.get(pk=subscription.pk).secret == created["secret"]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))
    assert stored(subscription) != before
    settings.TRACKER_ENCRYPTION_KEYS = new  # the old key dropped
    assert WebhookSubscription.objects.get(pk=subscription.pk).secret == created["secret"]
    assert Fernet(new.encode()).decrypt(stored(subscription)[len("enc:v1:"):].encode()).decode() == created["secret"]
