"""The outbox: notifications written in the same transaction as what caused them.

Each event becomes one `WebhookDelivery` per subscribed client that may see the
negotiation, and one `EmailNotification` per staff member concerned who may see it
(`recipients`: the case officer, for stall flags its teams, and its watchers).
After the commit a task is asked to send them; if the broker is down the rows wait, and
the periodic dispatcher sends them later. Nothing is lost.
"""
import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from exchanges.models import Negotiation
from exchanges.policy import negotiations_visible_to
from exchanges.selectors import staff_concerned

from .choices import WebhookEvent
from .models import EmailNotification, WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)


def iso(value):
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def negotiation_data(negotiation):
    return {
        "id": str(negotiation.pk),
        "reference": negotiation.reference,
        "title": negotiation.title,
        "status": negotiation.status,
        "priority": negotiation.priority,
        "stalled": negotiation.stalled,
        "stalled_since": iso(negotiation.stalled_since),
        "last_activity_at": iso(negotiation.last_activity_at),
        "next_step_due": negotiation.next_step_due.isoformat() if negotiation.next_step_due else None,
    }


def flag_data(flag):
    return {
        "id": str(flag.pk),
        "kind": flag.kind,
        "level": flag.level,
        "raised_at": iso(flag.raised_at),
        "escalated_at": iso(flag.escalated_at),
        "days_silent": flag.days_silent,
        "acknowledged_at": iso(flag.acknowledged_at),
        "resolved_at": iso(flag.resolved_at),
        "resolution": flag.resolution or None,
    }


#: Longer waits are left to the dispatcher's tick: a message held back longer than the
#: broker's visibility timeout would be handed out again and again (Redis).
MAX_COUNTDOWN = 60


def kick(countdown=None):
    """Ask a worker to send what is due now (or in `countdown` seconds, up to a minute: a
    retry on its schedule); the periodic dispatcher covers a failure here, and longer waits."""
    if not getattr(settings, "TRACKER_KICK_ON_COMMIT", True) or (countdown or 0) > MAX_COUNTDOWN:
        return
    try:
        from .tasks import dispatch_notifications

        # No publish retries: with the broker down a write would wait for them (640 ms each,
        # measured); the periodic dispatcher sends what this kick would have.
        dispatch_notifications.apply_async(countdown=countdown, retry=False)
    except Exception:  # noqa: BLE001 - the broker being down must not fail the write
        logger.warning("Could not reach the broker; the periodic dispatcher will send the notifications.", exc_info=True)


def _admin_url(negotiation):
    base = getattr(settings, "TRACKER_SITE_URL", "").rstrip("/")
    return base + reverse("admin:exchanges_negotiation_change", args=[negotiation.pk])


def enqueue(events, *, now):
    """`events`: a list of `(event_type, negotiation, data, email_subject)`."""
    if not events:
        return
    deliveries = []
    subscriptions = (
        WebhookSubscription.objects.filter(active=True, client__revoked_at__isnull=True)
        .filter(Q(client__expires_at__isnull=True) | Q(client__expires_at__gt=now))
        .select_related("client")
        .defer("secret")  # not needed to write the outbox (and not decrypted for it)
    )
    seen_by_party = {}  # what a party's clients may see: one query per party, not per subscription
    for subscription in subscriptions:
        mine = [event for event in events if event[0] in subscription.events]
        if not mine:
            continue
        party_id = subscription.client.party_id
        if party_id not in seen_by_party:
            seen_by_party[party_id] = set(
                negotiations_visible_to(subscription.client)
                .filter(pk__in={event[1].pk for event in events})
                .values_list("pk", flat=True)
            )
        visible = seen_by_party[party_id]
        for event_type, negotiation, data, _subject in mine:
            if negotiation.pk not in visible:
                continue
            deliveries.append(
                WebhookDelivery(
                    subscription=subscription,
                    negotiation=negotiation,
                    event_type=event_type,
                    message_id=f"msg_{uuid.uuid4().hex}",
                    payload={"type": event_type, "timestamp": iso(now), "data": data},
                    next_attempt_at=now,
                )
            )
    WebhookDelivery.objects.bulk_create(deliveries)

    by_negotiation = staff_concerned(
        {event[1].pk for event in events}, teams=any(event[0] == WebhookEvent.STALLED for event in events)
    )
    emails = [
        EmailNotification(
            recipient=user,
            negotiation=negotiation,
            subject=subject[:300],
            body=f"{subject}\n\n{negotiation.reference} {negotiation.title}\n{_admin_url(negotiation)}\n",
            created_at=now,
        )
        for _type, negotiation, _data, subject in events
        for user in by_negotiation.get(negotiation.pk, [])
    ]
    EmailNotification.objects.bulk_create(emails)
    if deliveries or emails:
        transaction.on_commit(kick, robust=True)


def status_changed(*, negotiation, change):
    data = {
        "negotiation": negotiation_data(negotiation),
        "status_change": {
            "id": str(change.pk),
            "sequence": change.sequence,
            "from_status": change.from_status,
            "to_status": change.to_status,
            "occurred_at": iso(change.occurred_at),
            "recorded_at": iso(change.recorded_at),
            "note": change.note,
            "source": change.source,
        },
    }
    subject = _("[Tracker] %(reference)s: %(from)s → %(to)s") % {
        "reference": negotiation.reference,
        "from": change.get_from_status_display(),
        "to": change.get_to_status_display(),
    }
    enqueue([(WebhookEvent.STATUS_CHANGED, negotiation, data, subject)], now=change.recorded_at)


def handover_data(handover):
    from exchanges.services import TRANSFER_COUNTS

    return {
        "id": str(handover.pk),
        "sequence": handover.sequence,
        "state": handover.state,
        "planned_on": handover.planned_on.isoformat() if handover.planned_on else None,
        "occurred_on": handover.occurred_on.isoformat() if handover.occurred_on else None,
        "location": handover.location,
        "verified_by": str(handover.verified_by_id) if handover.verified_by_id else None,
        "source": handover.source,
        "transfers": [
            {"from_party": str(t.from_party_id), "to_party": str(t.to_party_id), **{name: getattr(t, name) for name in TRANSFER_COUNTS}}
            for t in handover.transfers.order_by("id")
        ],
    }


def handover_recorded(*, negotiation, handover, created):
    """`negotiation.handover_recorded`: a handover recorded or changed, with each releasing
    party's progress after it."""
    from exchanges.selectors import progress

    data = {
        "negotiation": negotiation_data(negotiation),
        "change": "created" if created else "updated",
        "handover": handover_data(handover),
        "progress": progress(negotiation),
    }
    subject = _("[Tracker] %(reference)s: handover %(sequence)d %(change)s (%(state)s)") % {
        "reference": negotiation.reference,
        "sequence": handover.sequence,
        "change": _("recorded") if created else _("updated"),
        "state": handover.get_state_display(),
    }
    enqueue([(WebhookEvent.HANDOVER_RECORDED, negotiation, data, subject)], now=handover.updated_at)


def anyone_listening(negotiation_ids=None):
    """Whether any active subscription or watching staff member could receive stall events
    about these negotiations (`None`: about any negotiation)."""
    stall_events = [WebhookEvent.STALLED.value, WebhookEvent.UNSTALLED.value]
    if any(
        set(events) & set(stall_events)
        for events in WebhookSubscription.objects.filter(active=True).values_list("events", flat=True)
    ):
        return True
    watches = Negotiation.watchers.through.objects.all()
    staffed = Negotiation.objects.filter(Q(case_officer__isnull=False) | Q(teams__isnull=False))
    if negotiation_ids is not None:
        watches = watches.filter(negotiation__in=negotiation_ids)
        staffed = staffed.filter(pk__in=negotiation_ids)
    return watches.exists() or staffed.exists()


def flags_changed(changed, *, now):
    """Notify about each flag in `changed`, raised, escalated or resolved at `now`."""
    if not changed or not anyone_listening({flag.negotiation_id for flag in changed}):
        return
    events = []
    for flag in changed:
        negotiation = flag.negotiation
        data = {"negotiation": negotiation_data(negotiation), "flag": flag_data(flag)}
        if flag.resolved_at == now:
            data["change"] = "resolved"
            subject = _("[Tracker] %(reference)s: %(kind)s resolved (%(resolution)s)") % {
                "reference": negotiation.reference,
                "kind": flag.get_kind_display(),
                "resolution": flag.get_resolution_display(),
            }
            events.append((WebhookEvent.UNSTALLED, negotiation, data, subject))
        else:
            data["change"] = "escalated" if flag.escalated_at == now else "raised"
            subject = _("[Tracker] %(reference)s stalled: %(kind)s, %(level)s (%(days)d days without activity)") % {
                "reference": negotiation.reference,
                "kind": flag.get_kind_display(),
                "level": flag.get_level_display().lower(),
                "days": flag.days_silent,
            }
            events.append((WebhookEvent.STALLED, negotiation, data, subject))
    enqueue(events, now=now)
