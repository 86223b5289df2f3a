"""Signed webhooks from an outbox: nothing lost, only to those who may see, verifiable."""
import base64
import json
import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from exchanges import services as record
from tests.factories import NegotiationFactory
from tracker import delivery
from tracker.models import WebhookDelivery, WebhookSubscription
from tracker.services import scan_stalls
from tracker.tasks import dispatch_notifications

from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def subscribe(api, url, events=("negotiation.status_changed", "negotiation.stalled", "negotiation.unstalled")):
    response = api.post("/api/v1/webhooks/", {"url": url, "events": list(events)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def send_everything_due(now=None):
    """What the worker does: each subscription's due deliveries, one subscription after another."""
    delivery.send_due(now=now)


def test_a_stalled_delivery_reaches_the_receiver_and_its_signature_verifies(ukraine, make_api, receiver):
    api = make_api(ukraine)
    created = subscribe(api, receiver.url)
    assert created["secret"].startswith("whsec_")
    assert "secret" not in api.get(f"/api/v1/webhooks/{created['id']}/").json()
    negotiation = NegotiationFactory(visibility="participants", priority="urgent", opened_on=timezone.localdate() - timedelta(days=20), participants=[(ukraine, "side")])
    scan_stalls()
    send_everything_due()
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    payload = Webhook(created["secret"]).verify(request["body"], request["headers"])
    assert payload["type"] == "negotiation.stalled"
    assert payload["data"]["negotiation"]["id"] == str(negotiation.pk)
    assert payload["data"]["flag"]["kind"] == "no_activity" and payload["data"]["flag"]["level"] == "very_overdue"
    assert request["headers"]["webhook-id"].startswith("msg_")
    listed = api.get(f"/api/v1/webhooks/{created['id']}/deliveries/").json()["results"]
    assert listed[0]["status"] == "delivered" and listed[0]["attempts"] == 1


def test_with_the_receiver_down_the_delivery_arrives_once_it_comes_back(ukraine, make_api):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = Receiver(port=port)
    api = make_api(ukraine)
    secret = subscribe(api, down.url)["secret"]
    negotiation = NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side")])
    record.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    send_everything_due()
    pending = WebhookDelivery.objects.get()
    assert pending.status == "pending" and pending.attempts == 1 and pending.next_attempt_at > timezone.now()
    assert pending.attempt_log.get().error
    send_everything_due()  # not due yet: nothing is attempted
    assert WebhookDelivery.objects.get().attempts == 1
    down.start()
    try:
        send_everything_due(now=pending.next_attempt_at + timedelta(seconds=1))
    finally:
        down.stop()
    delivered = WebhookDelivery.objects.get()
    assert delivered.status == "delivered" and delivered.attempts == 2
    body = Webhook(secret).verify(down.requests[0]["body"], down.requests[0]["headers"])
    assert body["data"]["status_change"]["to_status"] == "in_talks"


def test_the_payload_is_fixed_at_the_time_of_the_event(ukraine, make_api, receiver):
    api = make_api(ukraine)
    subscribe(api, receiver.url)
    negotiation = NegotiationFactory(title="Before", visibility="all_partners", participants=[(ukraine, "side")])
    record.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    record.negotiation_update(negotiation=negotiation, actor=None, title="After")
    send_everything_due()
    body = json.loads(receiver.requests[0]["body"])
    assert body["data"]["negotiation"]["title"] == "Before"


def test_a_client_only_receives_events_about_negotiations_it_may_see(ukraine, outsider, make_api, receiver, confidential, staff_only):
    subscribe(make_api(outsider), receiver.url)
    for negotiation in (confidential, staff_only):
        record.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    assert WebhookDelivery.objects.count() == 0
    subscribe(make_api(ukraine), receiver.url)
    record.negotiation_change_status(negotiation=confidential, to_status="agreed_in_principle", actor=None)
    record.negotiation_change_status(negotiation=staff_only, to_status="agreed_in_principle", actor=None)
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().subscription.client.party == ukraine


def test_a_delivery_cancels_if_the_client_lost_sight_before_sending(ukraine, make_api, receiver, public_negotiation):
    subscribe(make_api(ukraine), receiver.url)
    record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
    record.negotiation_update(negotiation=public_negotiation, actor=None, visibility="staff_only")
    send_everything_due()
    assert receiver.requests == [] and WebhookDelivery.objects.get().status == "cancelled"


def test_410_gone_disables_the_subscription(ukraine, make_api, public_negotiation):
    gone = Receiver(status=410).start()
    try:
        created = subscribe(make_api(ukraine), gone.url)
        record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
        send_everything_due()
    finally:
        gone.stop()
    subscription = WebhookSubscription.objects.get(pk=created["id"])
    assert subscription.active is False and "410" in subscription.disabled_reason
    assert WebhookDelivery.objects.get().status == "failed"
    record.negotiation_change_status(negotiation=public_negotiation, to_status="suspended", actor=None)
    assert WebhookDelivery.objects.count() == 1


def test_retries_back_off_and_give_up_after_days(ukraine, make_api, public_negotiation, settings):
    bad = Receiver(status=500).start()
    try:
        subscribe(make_api(ukraine), bad.url)
        record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
        now = timezone.now()
        waits = []
        while (pending := WebhookDelivery.objects.get()).status == "pending":
            send_everything_due(now=now)
            pending.refresh_from_db()
            if pending.next_attempt_at:
                waits.append((pending.next_attempt_at - now).total_seconds())
                now = pending.next_attempt_at
    finally:
        bad.stop()
    assert waits == sorted(waits) and sum(waits) > 3 * 86400
    assert pending.status == "failed" and pending.attempts == len(settings.TRACKER_WEBHOOK_RETRY_SCHEDULE) + 1
    assert pending.attempt_log.count() == pending.attempts and pending.last_status_code == 500


def test_redeliver_sends_a_delivered_event_again(ukraine, make_api, receiver, public_negotiation):
    subscribe(make_api(ukraine), receiver.url)
    record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
    send_everything_due()
    delivery.redeliver(WebhookDelivery.objects.get())
    send_everything_due()
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["headers"]["webhook-id"] == receiver.requests[1]["headers"]["webhook-id"]


def test_subscriptions_are_private_to_their_client(ukraine, russia, make_api, receiver):
    mine = subscribe(make_api(ukraine), receiver.url)
    other = make_api(russia)
    assert other.get("/api/v1/webhooks/").json()["results"] == []
    assert other.get(f"/api/v1/webhooks/{mine['id']}/").status_code == 404
    assert other.patch(f"/api/v1/webhooks/{mine['id']}/", {"active": False}, format="json").status_code == 404
    assert other.delete(f"/api/v1/webhooks/{mine['id']}/").status_code == 404
    assert WebhookSubscription.objects.get(pk=mine["id"]).active


def test_private_addresses_are_refused_unless_allowed(ukraine, make_api, settings):
    settings.TRACKER_WEBHOOK_ALLOW_PRIVATE = False
    api = make_api(ukraine)
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest", "ftp://example.org/x", "http://100.64.0.1/x", "http://[::ffff:10.0.0.1]/x", "http://192.0.2.10/x", "http://0.0.0.0/x"):
        response = api.post("/api/v1/webhooks/", {"url": url, "events": ["negotiation.stalled"]}, format="json")
        assert response.status_code == 400 and "url" in response.json(), url
    assert api.post("/api/v1/webhooks/", {"url": "https://93.184.216.34/hook", "events": ["negotiation.stalled"]}, format="json").status_code == 201


@pytest.mark.parametrize(
    "body,field",
    [
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"url": "http://127.0.0.1/x", "events": ["negotiation.exploded"]}, "events"),
        ({"url": "not a url", "events": ["negotiation.stalled"]}, "url"),
        ({"url": "http://127.0.0.1/x", "events": ["negotiation.stalled"], "secret": "plain"}, "secret"),
        ({"url": "http://127.0.0.1/x", "events": ["negotiation.stalled"], "secret": "whsec_c2hvcnQ="}, "secret"),
    ],
)
def test_bad_subscriptions_get_400(ukraine, make_api, body, field):
    response = make_api(ukraine).post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert WebhookSubscription.objects.count() == 0


@pytest.mark.parametrize("url", ["https://hooks.example.org:99999/x", "https://93.184.216.34:65536/x", "https://93.184.216.34:0/x"])
def test_a_port_out_of_range_is_a_400_on_the_url_never_a_500(ukraine, make_api, url):
    """Found by a partner-style probe: urllib raises as it reads such a port (500)."""
    api = make_api(ukraine)
    response = api.post("/api/v1/webhooks/", {"url": url, "events": ["negotiation.stalled"]}, format="json")
    assert response.status_code == 400 and "port" in response.json()["url"][0], response.content
    created = api.post("/api/v1/webhooks/", {"url": "https://93.184.216.34/hook", "events": ["negotiation.stalled"]}, format="json").json()
    response = api.patch(f"/api/v1/webhooks/{created['id']}/", {"url": url}, format="json")
    assert response.status_code == 400 and "url" in response.json()
    assert WebhookSubscription.objects.get().url == "https://93.184.216.34/hook"


def test_a_secret_the_client_gave_is_never_sent_back(ukraine, make_api):
    """Write-only: only a secret the tracker generated is shown, once."""
    api = make_api(ukraine)
    own = "whsec_" + base64.b64encode(b"k" * 32).decode()
    response = api.post("/api/v1/webhooks/", {"url": "https://93.184.216.34/hook", "events": ["negotiation.stalled"], "secret": own}, format="json")
    assert response.status_code == 201 and "secret" not in response.json() and own not in response.content.decode()
    generated = api.post("/api/v1/webhooks/", {"url": "https://93.184.216.34/other", "events": ["negotiation.stalled"]}, format="json").json()
    assert generated["secret"].startswith("whsec_") and generated["secret"] != own


def test_watching_staff_are_emailed_when_the_status_changes_or_it_stalls(staff_user, public_negotiation):
    staff_user.email = "watcher@ngo.example"
    staff_user.save()
    public_negotiation.watchers.add(staff_user)
    record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None, occurred_at=timezone.now() - timedelta(days=45))
    scan_stalls()
    result = dispatch_notifications()
    assert result["emails"] == 2
    subjects = sorted(message.subject for message in mail.outbox)
    assert any("Proposed → In talks" in subject for subject in subjects)
    assert any("stalled" in subject and "No activity" in subject for subject in subjects)
    assert mail.outbox[0].to == ["watcher@ngo.example"]
    assert dispatch_notifications()["emails"] == 0


def test_a_delivery_connects_to_the_address_that_was_checked_not_a_second_lookup(monkeypatch, settings):
    """DNS rebinding: the name resolves to a public address when checked, then to a private
    one; the request must go to the address checked, without a second lookup."""
    settings.TRACKER_WEBHOOK_ALLOW_PRIVATE = False
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))]])
    monkeypatch.setattr(delivery.socket, "getaddrinfo", lambda *args, **kwargs: next(answers))
    connected = []

    class Connection:
        def __init__(self, host, port, timeout):
            connected.append((host, port))

        def request(self, method, target, body, headers):
            connected.append(headers["Host"])
            raise OSError("stop here")

        def close(self):
            pass

    monkeypatch.setattr(delivery.http.client, "HTTPConnection", Connection)
    address = delivery.check_url("http://hooks.example.org:8080/in?x=1", resolve=True)
    status, _excerpt, error = delivery._post("http://hooks.example.org:8080/in?x=1", b"{}", {}, 1, address=address)
    assert connected == [("93.184.216.34", 8080), "hooks.example.org:8080"] and status is None and "stop here" in error


def test_a_name_that_resolves_to_a_shared_or_private_address_is_refused(monkeypatch, settings):
    settings.TRACKER_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(delivery.socket, "getaddrinfo", lambda *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("100.64.0.5", 443))])
    with pytest.raises(delivery.UnsafeURL):
        delivery.check_url("https://hooks.example.org/in", resolve=True)


def test_a_failed_delivery_asks_for_its_retry_at_the_scheduled_time(ukraine, make_api, public_negotiation, settings, monkeypatch, django_capture_on_commit_callbacks):
    """Not at the dispatcher's next tick: the worker is asked to dispatch again after the
    schedule's first delay (5 s), then the next (60 s)."""
    from tracker import tasks

    settings.TRACKER_KICK_ON_COMMIT = True
    asked = []
    monkeypatch.setattr(tasks.dispatch_notifications, "apply_async", lambda countdown=None, **kwargs: asked.append(countdown))
    bad = Receiver(status=503).start()
    try:
        subscribe(make_api(ukraine), bad.url)
        record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
        now = timezone.now()
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                send_everything_due(now=now)
            now = WebhookDelivery.objects.get().next_attempt_at
    finally:
        bad.stop()
    assert [countdown for countdown in asked if countdown] == settings.TRACKER_WEBHOOK_RETRY_SCHEDULE[:2]


def test_a_name_that_does_not_resolve_at_send_time_is_never_connected_to_by_name(ukraine, make_api, public_negotiation, monkeypatch, settings):
    settings.TRACKER_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(delivery.socket, "getaddrinfo", lambda *args, **kwargs: (_ for _ in ()).throw(socket.gaierror("no answer")))
    subscribe(make_api(ukraine), "https://hooks.example.org/in")
    record.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
    monkeypatch.setattr(delivery, "_post", lambda *args, **kwargs: pytest.fail("connected by name"))
    send_everything_due()
    pending = WebhookDelivery.objects.get()
    assert pending.status == "pending" and pending.attempts == 1 and "does not resolve" in pending.last_error


@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "2002:a00:1::1", "::ffff:169.254.169.254"])
def test_ipv4_addresses_carried_in_ipv6_are_judged_as_ipv4(address):
    with pytest.raises(delivery.UnsafeURL):
        delivery._refuse_address(address)
