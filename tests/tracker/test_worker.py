"""A real Celery worker and beat, on the real broker, flag a silent negotiation and send
the webhooks, with nobody calling a task by hand."""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from exchanges import services as record
from tests.factories import NegotiationFactory
from tests.services import require_postgres, require_redis
from tracker.models import Flag, WebhookSubscription

from .receiver import Receiver

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WORKER_BROKER_DB = 15  # a Redis database of its own, emptied first


def wait_for(condition, what, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"Timed out after {timeout}s waiting for {what}")


@pytest.fixture
def celery_processes(tmp_path):
    require_postgres()
    require_redis()
    import redis

    base = settings.CELERY_BROKER_URL.rsplit("/", 1)[0]
    broker = f"{base}/{WORKER_BROKER_DB}"
    redis.Redis.from_url(broker).flushdb()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": broker,
        "TRACKER_SCAN_INTERVAL_SECONDS": "2",
        "TRACKER_DISPATCH_INTERVAL_SECONDS": "1",
        "TRACKER_WEBHOOK_ALLOW_PRIVATE": "true",
        "TRACKER_VAR_DIR": str(tmp_path),
        "DATABASE_CONN_MAX_AGE": "0",
    }
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    logs = [open(tmp_path / name, "w") for name in ("worker.log", "beat.log")]
    processes = [
        subprocess.Popen([*celery, "worker", "--loglevel", "INFO", "--concurrency", "2", "--hostname", f"test-{os.getpid()}@%h"], cwd=ROOT, env=env, stdout=logs[0], stderr=subprocess.STDOUT),
        subprocess.Popen([*celery, "beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")], cwd=ROOT, env=env, stdout=logs[1], stderr=subprocess.STDOUT),
    ]
    yield tmp_path
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    for log in logs:
        log.close()


def test_a_real_worker_and_beat_flag_the_silent_negotiation_then_unflag_it_after_an_event(ukraine, make_api, celery_processes):
    receiver = Receiver().start()
    try:
        api = make_api(ukraine)
        secret = api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["negotiation.stalled", "negotiation.unstalled"]}, format="json").json()["secret"]
        assert WebhookSubscription.objects.count() == 1
        negotiation = NegotiationFactory(
            title="Silent for three weeks", priority="urgent", visibility="all_partners",
            opened_on=timezone.localdate() - timedelta(days=21), participants=[(ukraine, "side")],
        )
        flag = wait_for(lambda: Flag.objects.filter(negotiation=negotiation, resolved_at__isnull=True).first(), "beat's scan to raise a flag")
        assert flag.kind == "no_activity" and flag.level == "very_overdue"
        negotiation.refresh_from_db()
        assert negotiation.stalled

        stalled = wait_for(lambda: receiver.requests[:1], "the worker to deliver negotiation.stalled")[0]
        assert Webhook(secret).verify(stalled["body"], stalled["headers"])["type"] == "negotiation.stalled"

        scans_before = (celery_processes / "worker.log").read_text().count("Task tracker.scan_stalls[")
        record.event_create(negotiation=negotiation, actor=None, kind="statement", occurred_at=timezone.now(), summary="Talks resume")
        flag.refresh_from_db()
        assert flag.resolved_at is not None and flag.resolution == "activity"
        unstalled = wait_for(lambda: receiver.requests[1:2], "the worker to deliver negotiation.unstalled")[0]
        assert Webhook(secret).verify(unstalled["body"], unstalled["headers"])["type"] == "negotiation.unstalled"
        # A later scan by beat must not raise it again.
        wait_for(
            lambda: (celery_processes / "worker.log").read_text().count("Task tracker.scan_stalls[") >= scans_before + 2,
            "two more scans",
        )
        assert not Flag.objects.filter(negotiation=negotiation, resolved_at__isnull=True).exists()
    finally:
        receiver.stop()
