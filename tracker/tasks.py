"""Celery tasks: thin, taking ids, calling services.

Every task is acknowledged late (CELERY_TASK_ACKS_LATE) and runs again when its worker is
killed: at once when a pool process dies, after the broker's visibility timeout
(CELERY_VISIBILITY_TIMEOUT_SECONDS, 300 s) when the whole worker does. Each is safe to
run twice."""
from celery import shared_task
from celery.signals import worker_ready

from . import delivery, notify, services


@shared_task(name="tracker.scan_stalls")
def scan_stalls():
    """Raise, escalate and resolve stall flags (beat runs it every TRACKER_SCAN_INTERVAL_SECONDS)."""
    return services.scan_stalls()


@shared_task(name="tracker.dispatch_notifications")
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
