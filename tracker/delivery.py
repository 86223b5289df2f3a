"""Sending the outbox: signed webhooks (Standard Webhooks) and emails.

Each subscription is its own queue: a task sends one subscription's due deliveries in
order (`send_for_subscription`), at most TRACKER_WEBHOOK_CONCURRENCY at once (one while its
receiver fails), and a circuit breaker pauses a receiver that keeps failing, so a slow or
failing receiver holds at most one worker slot for a while, never the others' webhooks.

A delivery is leased before sending, so two workers never send the same one at once; the
attempt is logged as `started` before the request goes out, so one cut short by a crash is
in the log (marked `interrupted` once its lease runs out) and retried on the schedule.
Delivery is at least once: receivers de-duplicate on `webhook-id`.
"""
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import http.client
import ssl
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from exchanges.policy import may_see_negotiation

from . import notify
from .choices import DeliveryStatus
from .models import DeliveryAttempt, EmailNotification, WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)

BATCH = 100
MAX_EMAIL_ATTEMPTS = 10


class UnsafeURL(Exception):
    pass


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _allow_private():
    return bool(getattr(settings, "TRACKER_WEBHOOK_ALLOW_PRIVATE", False))


def _refuse_address(address):
    """Only globally routable unicast addresses: not private, loopback, link-local,
    shared (100.64.0.0/10, carrier-grade NAT), documentation, reserved or multicast ones;
    an IPv4 address written as IPv6 (::ffff:10.0.0.1) is judged as the IPv4 one."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        # An IPv4 address carried in IPv6 (mapped, 6to4, NAT64) is judged as that address.
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None
        )
        if embedded is not None:
            ip = embedded
    if not ip.is_global or ip.is_multicast:
        # The address itself is not repeated: it would map internal names for the caller.
        raise UnsafeURL(_("Points at a private, shared or loopback address."))


def check_url(url, *, resolve, sending=False):
    """Refuse non-HTTP URLs, plain http ones where TRACKER_WEBHOOK_REQUIRE_HTTPS is on (the
    default unless DEBUG; checked when a subscription is written, not at `sending`), and
    URLs that reach private or loopback addresses unless TRACKER_WEBHOOK_ALLOW_PRIVATE is
    set. A host name that does not resolve yet passes at subscription time and is checked
    again before every send.

    Returns the address to connect to (the first one checked), so that the request goes
    to an address that was checked, not to whatever a second lookup answers (DNS
    rebinding); None when there is nothing to pin (private addresses allowed, or a name
    that does not resolve)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(_("Must be an http or https URL."))
    if parts.scheme != "https" and not sending and getattr(settings, "TRACKER_WEBHOOK_REQUIRE_HTTPS", True):
        raise UnsafeURL(_("Must be an https URL: webhooks carry signed records and are not sent in clear text."))
    if parts.username or parts.password:
        raise UnsafeURL(_("Must not carry credentials."))
    try:
        port = parts.port  # urllib checks it as it reads it: past 65535, or not a number
    except ValueError:
        port = 0
    if port == 0:
        raise UnsafeURL(_("Has a port that is not a number from 1 to 65535."))
    if _allow_private():
        return None
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeURL(_("Points at a private, shared or loopback address."))
    try:
        _refuse_address(host)
        return host
    except ValueError:
        pass  # a name, not an address
    if not resolve:
        return None
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return None
    for info in infos:
        _refuse_address(info[4][0])
    return infos[0][4][0] if infos else None


def signature(secret, message_id, timestamp, body):
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the base64 key after `whsec_`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address, with the URL's host name for SNI and the certificate."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _post(url, body, headers, timeout, *, address=None):
    """POST `body` to `url`, connecting to `address` when given (the checked one); no
    proxy from the environment, no redirect followed (a 3xx is an answer like any other)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    host_header = parts.netloc.rsplit("@", 1)[-1]
    try:
        if https:
            connection = _PinnedHTTPSConnection(parts.hostname, port, address=address or parts.hostname, timeout=timeout)
        else:
            connection = http.client.HTTPConnection(address or parts.hostname, port, timeout=timeout)
        try:
            connection.request("POST", target, body=body, headers={**headers, "Host": host_header})
            response = connection.getresponse()
            return response.status, response.read(500).decode("utf-8", "replace"), ""
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, "", str(exc)[:1000] or type(exc).__name__


def retry_schedule():
    return list(getattr(settings, "TRACKER_WEBHOOK_RETRY_SCHEDULE", [5, 60, 300, 1800, 7200, 18000, 36000, 43200, 86400, 86400, 86400]))


def lease_seconds():
    """How long one attempt may hold its delivery: three times the receiver's timeout (the
    connection, the request and the answer each have it), at least 10 s. A worker that dies
    mid-attempt delays the delivery by this much at most."""
    return max(10, 3 * getattr(settings, "TRACKER_WEBHOOK_TIMEOUT_SECONDS", 5))


def _setting(name, default):
    return getattr(settings, name, default)


INTERRUPTED = _("Interrupted: the worker stopped before the receiver's answer was recorded; it may have received it.")


def _pending():
    return WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)


def _release(stale, *, now):
    """Give back deliveries whose lease ran out (or whose holder came back after its worker
    died): their `started` attempts are marked interrupted, and a last allowed attempt that
    was interrupted gives up. Returns the earliest retry among them."""
    released = list(stale.values_list("pk", "attempts", "next_attempt_at"))
    if not released:
        return None
    ids = [pk for pk, _attempts, _next in released]
    DeliveryAttempt.objects.filter(delivery_id__in=ids, outcome=DeliveryAttempt.Outcome.STARTED).update(
        outcome=DeliveryAttempt.Outcome.INTERRUPTED, error=INTERRUPTED
    )
    last = len(retry_schedule()) + 1
    WebhookDelivery.objects.filter(pk__in=ids).update(leased_until=None, leased_by="", updated_at=now)
    WebhookDelivery.objects.filter(pk__in=ids, attempts__gte=last).update(
        status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=INTERRUPTED
    )
    return min((when for _pk, attempts, when in released if when and attempts < last), default=None)


def release_expired_leases(*, now=None):
    """Across every subscription (the dispatcher's tick): attempts whose worker died."""
    now = now or timezone.now()
    with transaction.atomic():
        return _release(_pending().filter(leased_until__lt=now), now=now)


def subscriptions_with_due_work(*, now=None):
    """Subscriptions that have a delivery due, not being sent, and are not paused."""
    now = now or timezone.now()
    due = (
        _pending()
        .filter(next_attempt_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .exclude(subscription__paused_until__gt=now)
    )
    return list(due.order_by().values_list("subscription_id", flat=True).distinct())


def lease_next(subscription_id, *, lessee, now):
    """Claim the subscription's next due delivery for `lessee` (a task id); None when there
    is none, when it is paused (circuit open), or when it already has as many in flight as
    it may (TRACKER_WEBHOOK_CONCURRENCY; one while its receiver is failing).

    The subscription's row is locked while counting, so its concurrency holds across
    workers; each subscription is its own queue and never waits for another's."""
    with transaction.atomic():
        subscription = (
            WebhookSubscription.objects.select_for_update().filter(pk=subscription_id)
            .only("pk", "consecutive_failures", "paused_until").first()
        )
        if subscription is None:
            return None
        mine = _pending().filter(subscription_id=subscription_id)
        retry_at = _release(
            mine.filter(leased_until__isnull=False).filter(Q(leased_until__lt=now) | Q(leased_by=lessee)), now=now
        )
        if retry_at is not None and retry_at > now:
            countdown = (retry_at - now).total_seconds()
            transaction.on_commit(lambda: notify.kick(countdown=countdown), robust=True)
        if subscription.paused_until and subscription.paused_until > now:
            return None
        limit = 1 if subscription.consecutive_failures else max(1, _setting("TRACKER_WEBHOOK_CONCURRENCY", 2))
        if mine.filter(leased_until__gte=now).count() >= limit:
            return None
        candidate = (
            mine.filter(next_attempt_at__lte=now, leased_until__isnull=True)
            .order_by("next_attempt_at", "created_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is not None:
            WebhookDelivery.objects.filter(pk=candidate).update(
                leased_until=now + timedelta(seconds=lease_seconds()), leased_by=lessee
            )
        return candidate


def send_for_subscription(subscription_id, *, lessee=None, now=None, budget=None):
    """Send a subscription's due deliveries one after another, for at most `budget` seconds
    (TRACKER_WEBHOOK_RUN_SECONDS). Returns (sent, more): `more` when the budget ran out
    first, so that the caller hands the worker to others and continues later."""
    lessee = lessee or uuid.uuid4().hex
    budget = _setting("TRACKER_WEBHOOK_RUN_SECONDS", 10) if budget is None else budget
    deadline = time.monotonic() + budget
    sent = 0
    while time.monotonic() < deadline:
        delivery_id = lease_next(subscription_id, lessee=lessee, now=now or timezone.now())
        if delivery_id is None:
            return sent, False
        deliver(delivery_id, lessee=lessee, now=now)
        sent += 1
    return sent, True


def lease_due_deliveries(*, now=None, limit=BATCH):
    """Claim up to `limit` due deliveries at once, whatever their subscription, for
    `deliver(id)` (a shell, scripts/client_check.py; the worker sends per subscription)."""
    now = now or timezone.now()
    with transaction.atomic():
        _release(_pending().filter(leased_until__lt=now), now=now)
        due = (
            _pending().filter(next_attempt_at__lte=now, leased_until__isnull=True)
            .exclude(subscription__paused_until__gt=now).order_by("next_attempt_at")
        )
        ids = list(due.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)[:limit])
        WebhookDelivery.objects.filter(pk__in=ids).update(leased_until=now + timedelta(seconds=lease_seconds()), leased_by="")
    return ids


def send_due(*, now=None):
    """Everything due, every subscription in turn, in this process (tests, a shell)."""
    release_expired_leases(now=now)
    return sum(send_for_subscription(pk, now=now, budget=float("inf"))[0] for pk in subscriptions_with_due_work(now=now))


def deliver(delivery_id, *, lessee="", now=None):
    """Make one attempt at one delivery leased by `lessee`, and record it. Returns the
    delivery's new status.

    The attempt is written (`started`, with its retry already scheduled) and committed
    before anything is sent: if the worker dies during the request, the log still shows it,
    and it is retried on the schedule like a failed one."""
    try:
        delivery = WebhookDelivery.objects.select_related("subscription__client", "negotiation").filter(pk=delivery_id).first()
    except ImproperlyConfigured as error:  # its secret cannot be decrypted with the keys set
        logger.error("Webhook delivery %s: %s", delivery_id, error)
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
            leased_until=None, leased_by="", last_error=str(error)[:1000], next_attempt_at=timezone.now() + timedelta(minutes=5)
        )
        return DeliveryStatus.PENDING
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return delivery.status if delivery else None
    subscription = delivery.subscription
    client = subscription.client
    # Access follows the current participants: what the client may no longer see when the
    # delivery is due is dropped, never sent, and says why.
    if not subscription.active:
        dropped = _("Dropped: the subscription was deactivated before it was sent.")
    elif not client.is_active:
        dropped = _("Dropped: the API client was revoked or expired before it was sent.")
    elif not may_see_negotiation(client, delivery.negotiation):
        dropped = _("Dropped: the client may no longer see this negotiation.")
    else:
        dropped = None
    if dropped:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.CANCELLED, leased_until=None, leased_by="", next_attempt_at=None, last_error=dropped,
            updated_at=timezone.now(),
        )
        return DeliveryStatus.CANCELLED

    attempt = _start_attempt(delivery.pk, lessee=lessee, now=now or timezone.now())
    if attempt is None:
        return WebhookDelivery.objects.values_list("status", flat=True).get(pk=delivery.pk)
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "exchange-tracker-webhooks/1",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(subscription.secret, delivery.message_id, timestamp, body),
    }
    started = time.monotonic()
    try:
        address = check_url(subscription.url, resolve=True, sending=True)
        if address is None and not _allow_private():
            # The name did not resolve now: never connect by name (a second lookup could
            # answer an unchecked address); an attempt that failed, retried on schedule.
            status_code, excerpt, error = None, "", _("The host name does not resolve.")
        else:
            status_code, excerpt, error = _post(
                subscription.url, body, headers, getattr(settings, "TRACKER_WEBHOOK_TIMEOUT_SECONDS", 5), address=address
            )
        unsafe = False
    except UnsafeURL as exc:
        status_code, excerpt, error, unsafe = None, "", str(exc), True
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record(
        delivery.pk, attempt, lessee=lessee, status_code=status_code, excerpt=excerpt, error=error, unsafe=unsafe,
        duration_ms=duration_ms, now=now or timezone.now(),
    )


@transaction.atomic
def _start_attempt(delivery_id, *, lessee, now):
    """The attempt, logged as started, and the retry it would need, scheduled already; None
    when the lease is no longer this lessee's."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    if delivery.status != DeliveryStatus.PENDING or delivery.leased_by != lessee:
        return None
    schedule = retry_schedule()
    delivery.attempts += 1
    # A last attempt that is interrupted gives up once its lease runs out (`_release`).
    delay = schedule[delivery.attempts - 1] if delivery.attempts <= len(schedule) else lease_seconds()
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    delivery.save(update_fields=["attempts", "next_attempt_at", "updated_at"])
    return DeliveryAttempt.objects.create(delivery=delivery, attempted_at=now, outcome=DeliveryAttempt.Outcome.STARTED)


@transaction.atomic
def _record(delivery_id, attempt, *, lessee, status_code, excerpt, error, unsafe, duration_ms, now):
    """The attempt's outcome, the delivery's new state and the subscription's breaker."""
    succeeded = status_code is not None and 200 <= status_code < 300
    attempt.status_code, attempt.error, attempt.duration_ms = status_code, error, duration_ms
    attempt.response_excerpt = excerpt
    attempt.outcome = DeliveryAttempt.Outcome.SUCCEEDED if succeeded else DeliveryAttempt.Outcome.FAILED
    attempt.save(update_fields=["status_code", "error", "duration_ms", "response_excerpt", "outcome"])
    subscription_id = WebhookDelivery.objects.values_list("subscription_id", flat=True).get(pk=delivery_id)
    # The subscription first, then the delivery: the order lease_next locks them in.
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription_id)
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    delivery.last_status_code = status_code
    delivery.last_error = error or ("" if succeeded else excerpt[:1000])
    if delivery.leased_by == lessee:
        delivery.leased_until, delivery.leased_by = None, ""
    _trip_or_reset(subscription, succeeded=succeeded, now=now)
    if succeeded:  # whatever an attempt that took over an expired lease made of it meanwhile
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.status != DeliveryStatus.PENDING:
        pass  # delivered or cancelled meanwhile
    elif status_code == 410:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        subscription.active = False
        subscription.disabled_reason = _("The receiver answered 410 Gone on %(when)s.") % {"when": now.isoformat()}
    elif unsafe or delivery.attempts > len(retry_schedule()):
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        # Retried at the time _start_attempt scheduled; a worker is asked for it then (the
        # dispatcher's tick covers it if the broker is down, or the wait is long).
        delay = retry_schedule()[delivery.attempts - 1]
        transaction.on_commit(lambda: notify.kick(countdown=delay), robust=True)
    subscription.save(update_fields=["active", "disabled_reason", "consecutive_failures", "paused_until", "updated_at"])
    delivery.save()
    return delivery.status


def _trip_or_reset(subscription, *, succeeded, now):
    """The circuit breaker: a success closes it; TRACKER_WEBHOOK_BREAKER_FAILURES failures
    in a row open it for TRACKER_WEBHOOK_BREAKER_SECONDS, after which one delivery is tried
    (half open) and another failure opens it again."""
    if succeeded:
        subscription.consecutive_failures, subscription.paused_until = 0, None
        return
    subscription.consecutive_failures += 1
    if subscription.consecutive_failures >= _setting("TRACKER_WEBHOOK_BREAKER_FAILURES", 5):
        pause = _setting("TRACKER_WEBHOOK_BREAKER_SECONDS", 60)
        subscription.paused_until = now + timedelta(seconds=pause)
        transaction.on_commit(lambda: notify.kick(countdown=pause), robust=True)


def redeliver(delivery, *, now=None):
    """Send a delivery again, whatever became of it (the admin's redeliver action)."""
    now = now or timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now, leased_until=None, leased_by="", delivered_at=None, updated_at=now
    )


def send_pending_emails(*, limit=BATCH):
    """Send unsent emails; a failure is retried at the next dispatch, up to ten times."""
    sent = 0
    with transaction.atomic():
        batch = list(
            EmailNotification.objects.filter(sent_at__isnull=True, attempts__lt=MAX_EMAIL_ATTEMPTS)
            .select_related("recipient", "negotiation")
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("created_at")[:limit]
        )
        for email in batch:
            if not may_see_negotiation(email.recipient, email.negotiation):
                # Written when the recipient could see it; since then they lost it.
                email.attempts = MAX_EMAIL_ATTEMPTS
                email.last_error = _("Dropped: the recipient may no longer see this negotiation.")
                email.save(update_fields=["attempts", "last_error"])
                continue
            email.attempts += 1
            try:
                send_mail(email.subject, email.body, settings.DEFAULT_FROM_EMAIL, [email.recipient.email])
            except Exception as exc:  # noqa: BLE001 - any mail failure is recorded and retried
                email.last_error = str(exc)[:1000]
            else:
                email.sent_at = timezone.now()
                sent += 1
            email.save(update_fields=["attempts", "last_error", "sent_at"])
    return sent
