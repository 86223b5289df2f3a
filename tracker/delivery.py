"""Sending the outbox: signed webhooks (Standard Webhooks) and emails.

Deliveries are leased before sending, so two workers never send the same one at once
and a worker that dies mid-send only delays it until the lease runs out: delivery is
at least once, and receivers de-duplicate on `webhook-id`.
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
from .models import DeliveryAttempt, EmailNotification, WebhookDelivery

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
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


def check_url(url, *, resolve):
    """Refuse non-HTTP URLs, and URLs that reach private or loopback addresses unless
    TRACKER_WEBHOOK_ALLOW_PRIVATE is set. A host name that does not resolve yet passes
    at subscription time and is checked again before every send.

    Returns the address to connect to (the first one checked), so that the request goes
    to an address that was checked, not to whatever a second lookup answers (DNS
    rebinding); None when there is nothing to pin (private addresses allowed, or a name
    that does not resolve)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(_("Must be an http or https URL."))
    if parts.username or parts.password:
        raise UnsafeURL(_("Must not carry credentials."))
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


def lease_due_deliveries(*, now=None, limit=BATCH):
    """Claim up to `limit` due deliveries for sending; returns their ids."""
    now = now or timezone.now()
    with transaction.atomic():
        due = (
            WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .order_by("next_attempt_at")
        )
        ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
        WebhookDelivery.objects.filter(pk__in=ids).update(leased_until=now + LEASE)
    return ids


def deliver(delivery_id, *, now=None):
    """Make one attempt at one delivery and record it. Returns the delivery's new status."""
    try:
        delivery = WebhookDelivery.objects.select_related("subscription__client", "negotiation").filter(pk=delivery_id).first()
    except ImproperlyConfigured as error:  # its secret cannot be decrypted with the keys set
        logger.error("Webhook delivery %s: %s", delivery_id, error)
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
            leased_until=None, last_error=str(error)[:1000], next_attempt_at=timezone.now() + timedelta(minutes=5)
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
            status=DeliveryStatus.CANCELLED, leased_until=None, next_attempt_at=None, last_error=dropped, updated_at=timezone.now()
        )
        return DeliveryStatus.CANCELLED

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
        address = check_url(subscription.url, resolve=True)
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
    now = now or timezone.now()
    return _record(delivery, status_code=status_code, excerpt=excerpt, error=error, unsafe=unsafe, duration_ms=duration_ms, now=now)


@transaction.atomic
def _record(delivery, *, status_code, excerpt, error, unsafe, duration_ms, now):
    DeliveryAttempt.objects.create(
        delivery=delivery, attempted_at=now, status_code=status_code, error=error, duration_ms=duration_ms, response_excerpt=excerpt
    )
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error or ("" if status_code and status_code < 300 else excerpt[:1000])
    delivery.leased_until = None
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif status_code == 410:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        subscription = delivery.subscription
        subscription.active = False
        subscription.disabled_reason = _("The receiver answered 410 Gone on %(when)s.") % {"when": now.isoformat()}
        subscription.save(update_fields=["active", "disabled_reason", "updated_at"])
    elif unsafe or delivery.attempts > len(retry_schedule()):
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        delay = retry_schedule()[delivery.attempts - 1]
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        # The retry is asked for at its time, not at the dispatcher's next tick (which
        # still covers it if the broker is down).
        transaction.on_commit(lambda: notify.kick(countdown=delay), robust=True)
    delivery.save()
    return delivery.status


def redeliver(delivery, *, now=None):
    """Send a delivery again, whatever became of it (the admin's redeliver action)."""
    now = now or timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now, leased_until=None, delivered_at=None, updated_at=now
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
