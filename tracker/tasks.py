"""Celery tasks: thin, taking ids, calling services."""
from celery import shared_task

from . import delivery, services


@shared_task(name="tracker.scan_stalls")
def scan_stalls():
    """Raise, escalate and resolve stall flags (beat runs it every TRACKER_SCAN_INTERVAL_SECONDS)."""
    return services.scan_stalls()


@shared_task(name="tracker.dispatch_notifications")
def dispatch_notifications():
    """Send due emails and fan out due webhook deliveries (after each write, and on a beat)."""
    leased = delivery.lease_due_deliveries()
    for delivery_id in leased:
        deliver_webhook.delay(str(delivery_id))
    return {"webhooks": len(leased), "emails": delivery.send_pending_emails()}


@shared_task(name="tracker.deliver_webhook")
def deliver_webhook(delivery_id):
    return delivery.deliver(delivery_id)
