"""Webhooks isolated per subscriber: a failing receiver is paused by its circuit breaker
and never holds up the others; every attempt, one cut short by a crash included, is in
the attempt log; retries keep to the schedule without overlong broker countdowns; https
only where required."""
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from exchanges import services as record
from tests.factories import NegotiationFactory
from tracker import delivery
from tracker.models import DeliveryAttempt, WebhookDelivery, WebhookSubscription

from .receiver import Receiver
from .test_webhooks import send_everything_due, subscribe

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


class WorkerKilled(BaseException):
    """What a -9 looks like from inside: nothing after the request runs."""


def negotiations_changing(party, count):
    negotiations = [NegotiationFactory(visibility="all_partners", participants=[(party, "side")]) for _ in range(count)]
    for negotiation in negotiations:
        record.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    return negotiations


def test_a_failing_receiver_is_paused_by_its_breaker_and_resumes_when_it_answers(ukraine, make_api, settings):
    settings.TRACKER_WEBHOOK_BREAKER_FAILURES, settings.TRACKER_WEBHOOK_BREAKER_SECONDS = 3, 60
    failing, healthy = Receiver(status=503).start(), Receiver().start()
    try:
        api = make_api(ukraine)
        created = subscribe(api, failing.url)
        subscribe(make_api(ukraine), healthy.url)
        negotiations_changing(ukraine, 6)
        now = timezone.now()
        send_everything_due(now=now)
        # Three failures in a row open the breaker: the other three are not even tried.
        assert len(failing.requests) == 3 and len(healthy.requests) == 6
        shown = api.get(f"/api/v1/webhooks/{created['id']}/").json()
        assert shown["consecutive_failures"] == 3 and shown["paused_until"] is not None
        send_everything_due(now=now + timedelta(seconds=30))  # still paused (the retries are due at +5 s)
        assert len(failing.requests) == 3
        failing.status = 204
        send_everything_due(now=now + timedelta(seconds=61))  # one probe succeeds; the rest follow
    finally:
        failing.stop()
        healthy.stop()
    assert len(failing.requests) == 3 + 6
    subscription = WebhookSubscription.objects.get(pk=created["id"])
    assert subscription.consecutive_failures == 0 and subscription.paused_until is None
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_failing_receiver_gets_one_request_at_a_time_while_a_healthy_one_gets_two(ukraine, make_api, settings):
    settings.TRACKER_WEBHOOK_CONCURRENCY = 2
    failing, healthy = Receiver(status=500).start(), Receiver().start()
    try:
        failing_id = subscribe(make_api(ukraine), failing.url)["id"]
        healthy_id = subscribe(make_api(ukraine), healthy.url)["id"]
        negotiations_changing(ukraine, 4)
        now = timezone.now()
        send_everything_due(now=now)  # four failures: not yet paused, but failing
        later = now + timedelta(seconds=6)
        leases = [delivery.lease_next(failing_id, lessee=f"task-{n}", now=later) for n in range(3)]
        assert sum(lease is not None for lease in leases) == 1  # failing: one at a time
    finally:
        failing.stop()
        healthy.stop()
    negotiations_changing(ukraine, 2)
    leases = [delivery.lease_next(healthy_id, lessee=f"task-{n}", now=later) for n in range(3)]
    assert sum(lease is not None for lease in leases) == 2  # healthy: its own concurrency


def test_an_attempt_cut_short_by_a_crash_is_logged_as_interrupted_and_sent_again_with_the_same_id(ukraine, make_api, public_negotiation, monkeypatch):
    receiver = Receiver().start()
    real_post = delivery._post

    def post_then_die(*args, **kwargs):
        real_post(*args, **kwargs)  # the receiver has it...
        raise WorkerKilled  # ...and the worker dies before writing the answer down

    try:
        api = make_api(ukraine)
        created = subscribe(api, receiver.url)
        record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
        subscription_id = WebhookSubscription.objects.get().pk
        now = timezone.now()
        monkeypatch.setattr(delivery, "_post", post_then_die)
        with pytest.raises(WorkerKilled):
            delivery.send_for_subscription(subscription_id, lessee="task-1", now=now)
        monkeypatch.setattr(delivery, "_post", real_post)
        assert list(DeliveryAttempt.objects.values_list("outcome", flat=True)) == ["started"]
        # The same task, redelivered by the broker, takes its delivery back at once.
        delivery.send_for_subscription(subscription_id, lessee="task-1", now=now + timedelta(seconds=1))
        assert list(DeliveryAttempt.objects.values_list("outcome", flat=True)) == ["interrupted"]
        send_everything_due(now=now + timedelta(seconds=6))  # retried on the schedule (5 s)
    finally:
        receiver.stop()
    assert [request["headers"]["webhook-id"] for request in receiver.requests] == [WebhookDelivery.objects.get().message_id] * 2
    attempts = list(DeliveryAttempt.objects.order_by("id").values_list("outcome", "error"))
    assert [outcome for outcome, _error in attempts] == ["interrupted", "succeeded"] and "may have received" in attempts[0][1]
    listed = api.get(f"/api/v1/webhooks/{created['id']}/deliveries/").json()["results"]
    assert listed[0]["status"] == "delivered" and listed[0]["attempts"] == 2


def test_a_crashed_attempt_is_retried_once_its_lease_runs_out_by_any_worker(ukraine, make_api, public_negotiation, monkeypatch):
    receiver = Receiver().start()
    try:
        subscribe(make_api(ukraine), receiver.url)
        record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
        now = timezone.now()
        monkeypatch.setattr(delivery, "_post", lambda *args, **kwargs: (_ for _ in ()).throw(WorkerKilled()))
        with pytest.raises(WorkerKilled):
            delivery.send_for_subscription(WebhookSubscription.objects.get().pk, lessee="task-1", now=now)
        monkeypatch.undo()
        send_everything_due(now=now + timedelta(seconds=6))  # due, but still leased: nothing sent
        assert receiver.requests == []
        send_everything_due(now=now + timedelta(seconds=delivery.lease_seconds() + 1))
    finally:
        receiver.stop()
    assert len(receiver.requests) == 1
    assert list(DeliveryAttempt.objects.order_by("id").values_list("outcome", flat=True)) == ["interrupted", "succeeded"]


def test_retries_longer_than_a_minute_are_left_to_the_dispatcher_not_held_in_the_broker(ukraine, make_api, public_negotiation, settings, monkeypatch, django_capture_on_commit_callbacks):
    """A countdown longer than Redis's visibility timeout would be handed out again and
    again; retries at 5 and 60 s are asked for, the one at 300 s is not."""
    from tracker import tasks

    settings.TRACKER_KICK_ON_COMMIT = True
    settings.TRACKER_WEBHOOK_BREAKER_FAILURES = 100
    asked = []
    monkeypatch.setattr(tasks.dispatch_notifications, "apply_async", lambda countdown=None, **kwargs: asked.append(countdown))
    bad = Receiver(status=503).start()
    try:
        subscribe(make_api(ukraine), bad.url)
        record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
        now = timezone.now()
        for _ in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                send_everything_due(now=now)
            now = WebhookDelivery.objects.get().next_attempt_at
    finally:
        bad.stop()
    assert [countdown for countdown in asked if countdown] == [5, 60]
    assert WebhookDelivery.objects.get().attempts == 3


def test_plain_http_urls_are_refused_where_https_is_required(ukraine, make_api, settings):
    settings.TRACKER_WEBHOOK_REQUIRE_HTTPS = True
    api = make_api(ukraine)
    response = api.post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["negotiation.stalled"]}, format="json")
    assert response.status_code == 400 and "https" in response.json()["url"][0]
    created = api.post("/api/v1/webhooks/", {"url": "https://127.0.0.1:9/hook", "events": ["negotiation.stalled"]}, format="json")
    assert created.status_code == 201
    changed = api.patch(f"/api/v1/webhooks/{created.json()['id']}/", {"url": "http://127.0.0.1:9/hook"}, format="json")
    assert changed.status_code == 400 and "url" in changed.json()


def test_production_requires_https_and_redis_hands_out_a_killed_workers_tasks_within_minutes():
    env = {**os.environ, "DJANGO_DEBUG": "", "TRACKER_WEBHOOK_ALLOW_PRIVATE": "", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "TRACKER_WEBHOOK_REQUIRE_HTTPS": ""}
    script = "import config.settings.base as s; print(s.TRACKER_WEBHOOK_REQUIRE_HTTPS, s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'], s.CELERY_TASK_ACKS_LATE)"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True" and int(out[1]) <= 600 and out[2] == "True"
