"""The tracker's writes other than the scan: acknowledging a flag, webhook subscriptions,
stall rules. Each checks `exchanges.policy`, validates, writes in one transaction and is
audited; `tracker.services` re-exports them."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from exchanges import audit, policy
from exchanges import services as record_services
from exchanges.models import ApiClient, AuditEntry

from .choices import WebhookEvent
from .models import Flag, WebhookSubscription


@transaction.atomic
def flag_acknowledge(*, flag, actor):
    """Record that someone has seen the flag; the first acknowledgement stands."""
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    policy.require(actor, "acknowledge", flag)
    if flag.acknowledged_at is None:
        before = audit.snapshot(flag)
        flag.acknowledged_at = timezone.now()
        flag.acknowledged_by_user = actor if isinstance(actor, get_user_model()) else None
        flag.acknowledged_by_client = actor if isinstance(actor, ApiClient) else None
        flag.save(update_fields=["acknowledged_at", "acknowledged_by_user", "acknowledged_by_client", "updated_at"])
        audit.record(actor=actor, action=AuditEntry.Action.UPDATE, instance=flag, before=before, after=audit.snapshot(flag))
    return flag


# Webhook subscriptions ----------------------------------------------------------------

SUBSCRIPTION_FIELDS = ("url", "events", "active", "secret")


def _check_subscription(subscription):
    from .delivery import UnsafeURL, check_url

    errors = {}
    try:
        check_url(subscription.url, resolve=True)
    except UnsafeURL as exc:
        errors["url"] = [str(exc)]
    events = subscription.events
    if not isinstance(events, list) or not events:
        errors["events"] = [_("Give at least one event.")]
    elif any(event not in WebhookEvent.values for event in events):
        errors["events"] = [_("Known events: %(events)s.") % {"events": ", ".join(WebhookEvent.values)}]
    if errors:
        raise ValidationError(errors)
    subscription.events = sorted(set(events))


@transaction.atomic
def webhook_subscription_create(*, client, actor, **fields):
    """A client's new subscription; at most TRACKER_MAX_SUBSCRIPTIONS_PER_CLIENT (20) each."""
    policy.require(actor, "add", WebhookSubscription)
    ApiClient.objects.select_for_update().filter(pk=client.pk).first()  # counted one at a time
    cap = getattr(settings, "TRACKER_MAX_SUBSCRIPTIONS_PER_CLIENT", 20)
    if WebhookSubscription.objects.filter(client=client).count() >= cap:
        raise ValidationError(
            {"__all__": [_("A client may have at most %(n)d subscriptions: delete one first.") % {"n": cap}]}
        )
    fields = {name: value for name, value in fields.items() if value is not None}
    return record_services.create_record(
        WebhookSubscription(client=client), actor=actor, fields=fields, allowed=SUBSCRIPTION_FIELDS, check=_check_subscription
    )


@transaction.atomic
def webhook_subscription_update(*, subscription, actor, **fields):
    policy.require(actor, "change", subscription)

    def check(subscription):
        if fields.get("active"):
            subscription.disabled_reason = ""
        _check_subscription(subscription)

    return record_services.update_record(
        subscription, actor=actor, fields=fields, allowed=SUBSCRIPTION_FIELDS, check=check
    )


@transaction.atomic
def webhook_subscription_delete(*, subscription, actor):
    record_services.delete_record(subscription, actor=actor)


RULE_FIELDS = ("overdue_days", "very_overdue_days", "gap_multiplier", "min_activities")


@transaction.atomic
def stall_rule_update(*, rule, actor, **fields):
    """Change a stall rule (`overdue_days`, `very_overdue_days`, and for the rhythm rule
    `gap_multiplier` and `min_activities`); the next scan, a full one, applies it."""
    policy.require(actor, "change", rule)
    return record_services.update_record(rule, actor=actor, fields=fields, allowed=RULE_FIELDS)
