"""Celery tasks: thin, taking ids, calling services.

Every task is acknowledged late (CELERY_TASK_ACKS_LATE) and runs again when its worker is
killed: at once when a pool process dies, after the broker's visibility timeout
(CELERY_VISIBILITY_TIMEOUT_SECONDS, 300 s) when the whole worker does. Each is safe to
run twice."""
import os
import threading

from celery import Task, shared_task
from celery.signals import worker_ready

from . import delivery, notify, services

#: A kick (`apply_async(retry=False)`, after a write commits) gives up on the broker after
#: this long: one connection try, no reconnection loop. Kombu would otherwise retry the
#: connection for `broker_connection_timeout` (4 s) with sleeps of 2 s and 4 s between,
#: about 6 s a write while Redis is down (the broker drill); the dispatcher's tick sends
#: what the kick would have.
KICK_CONNECT_TIMEOUT = 0.5
#: And how long a publish on it may wait for an answer (a hung broker: SIGSTOP, a network
#: that drops packets).
KICK_SOCKET_TIMEOUT = 0.5

_kick_connections = threading.local()


def _kick_connection(app):
    """This thread's broker connection for kicks: made once (again after a failure or a
    fork), with one connection try and short socket timeouts."""
    held = getattr(_kick_connections, "held", None)
    if held is not None and held[0] == os.getpid():
        return held[1]
    connection = app.connection_for_write(
        connect_timeout=KICK_CONNECT_TIMEOUT,
        transport_options={
            "max_retries": 0,  # kombu's `default_channel`: no reconnection loop
            "socket_connect_timeout": KICK_CONNECT_TIMEOUT,  # redis
            "socket_timeout": KICK_SOCKET_TIMEOUT,
        },
    )
    _kick_connections.held = (os.getpid(), connection)
    return connection


def _drop_kick_connection():
    held = getattr(_kick_connections, "held", None)
    _kick_connections.held = None
    if held is not None and held[0] == os.getpid():
        try:
            held[1].release()
        except Exception:  # noqa: BLE001 - it is broken already
            pass


class KickedTask(Task):
    """A task that writes ask for after their commit with `apply_async(retry=False)`
    (tracker.notify.kick): such a publish tries the broker once, briefly, so that a write
    with the broker down takes milliseconds more, not seconds. Other publishes (`delay`,
    beat) keep Celery's connection pool and retries."""

    def apply_async(self, args=None, kwargs=None, **options):
        if (
            options.get("retry") is not False
            or options.get("connection") is not None
            or options.get("producer") is not None
            or self.app.conf.task_always_eager
        ):
            return super().apply_async(args, kwargs, **options)
        try:
            return super().apply_async(args, kwargs, connection=_kick_connection(self.app), **options)
        except Exception:
            _drop_kick_connection()  # reconnect next time: Redis may have restarted
            raise


@shared_task(name="tracker.scan_stalls")
def scan_stalls():
    """Raise, escalate and resolve stall flags (beat runs it every TRACKER_SCAN_INTERVAL_SECONDS)."""
    return services.scan_stalls()


@shared_task(name="tracker.dispatch_notifications", base=KickedTask)
def dispatch_notifications():
    """Send due emails, and start a sending task for each subscription with webhooks due
    (after each write, on a beat, and at a retry's time)."""
    delivery.release_expired_leases()
    subscriptions = delivery.subscriptions_with_due_work()
    for subscription_id in subscriptions:
        send_webhooks.delay(str(subscription_id))
    return {"webhooks": len(subscriptions), "emails": delivery.send_pending_emails()}


@shared_task(name="tracker.send_webhooks", bind=True)
def send_webhooks(self, subscription_id):
    """One subscription's due webhooks, in order, for at most TRACKER_WEBHOOK_RUN_SECONDS;
    then the worker goes to other tasks and this one continues from the back of the queue.

    Leases carry this task's id: redelivered after its pool process was killed, the task
    takes its interrupted delivery back at once."""
    sent, more = delivery.send_for_subscription(subscription_id, lessee=self.request.id)
    if more:
        send_webhooks.delay(subscription_id)
    return {"sent": sent, "more": more}


@worker_ready.connect
def catch_up(**kwargs):
    """A worker (re)started: send what is due now, and again once the leases a killed
    predecessor held have run out."""
    notify.kick()
    notify.kick(countdown=delivery.lease_seconds() + 1)
