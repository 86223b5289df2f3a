#!/usr/bin/env python
"""`make client-check`: a client generated from the served OpenAPI schema handles every
documented answer, so a schema regression fails the build.

In a temporary directory: a fresh SQLite database, a party and an API client
(`create_api_client`), gunicorn on a free loopback port; the schema fetched from
`/api/v1/schema/`; a client generated from it with openapi-python-client (any generator
warning fails); then, with that client only: create a negotiation (201, with an ETag; its
`Idempotency-Key` replayed, and reused with another body: 422), an illegal status change
(409, parsed as `IllegalStatusChange`), a legal one, If-None-Match (304), a PATCH with a
stale If-Match (412, parsed), bad input (400, `ValidationError`), a negotiation out of sight
(404), a bad token (401), the list, a sync through `changes/`, and the webhook the status
change caused: sent by the outbox to a receiver here, its signature verified with the
`standardwebhooks` library, its body parsed with the generated model, and the same payload
read back typed from `deliveries/`.

Every step prints what it did; the first failure stops the run with exit status 1.
"""

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PACKAGE = "tracker_api_client"
DELIVER_OUTBOX = (
    "from tracker import delivery\n"
    "print(sum(1 for i in delivery.lease_due_deliveries() if delivery.deliver(i) == 'delivered'))"
)


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def step(message):
    print(f"  ok  {message}", flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    """A webhook receiver on loopback that keeps what it is sent."""

    def __init__(self):
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tracker"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Server:
    """A fresh tracker: SQLite in `workdir`, one party with an API client, gunicorn."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "TRACKER_VAR_DIR": str(workdir),
            "CELERY_BROKER_URL": "memory://",
            "TRACKER_KICK_ON_COMMIT": "false",  # the outbox is sent by this script (DELIVER_OUTBOX)
            "TRACKER_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on loopback
            "TRACKER_API_RATE": "1000000/min",
            "TRACKER_FAST_READS": os.environ.get("TRACKER_FAST_READS", "true"),
        }
        self.process = None
        self.log = None

    def manage(self, *args, code=None):
        command = [sys.executable, "manage.py", *args] + (["-c", code] if code else [])
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise CheckFailed(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def prepare(self):
        self.manage("migrate", "--noinput", "-v0")
        self.manage(
            "shell",
            code=(
                "from exchanges import services\n"
                "services.party_create(actor=None, name='Client Check Republic', short_name='CCR', kind='state')"
            ),
        )
        token = self.manage("create_api_client", "--party", "CCR").strip().splitlines()[-1]
        step("fresh SQLite database migrated; party CCR and its API client created (create_api_client)")
        return token

    def start(self):
        self.log = open(self.workdir / "gunicorn.log", "w")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "2", "--timeout", "60"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        for _ in range(120):
            if self.process.poll() is not None:
                raise CheckFailed(f"gunicorn exited with {self.process.returncode}; log: {self.log.name}")
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)
                step(f"gunicorn serving {self.url}")
                return
            except OSError:
                time.sleep(0.25)
        raise CheckFailed(f"gunicorn did not answer within 30 s; log: {self.log.name}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.log is not None:
            self.log.close()


def generate_client(server, workdir):
    with urllib.request.urlopen(f"{server.url}/api/v1/schema/?format=json", timeout=30) as response:
        schema = json.loads(response.read())
    expect(schema["openapi"].startswith("3.1"), f"the served schema is OpenAPI {schema['openapi']}, not 3.1")
    path = workdir / "schema.json"
    path.write_text(json.dumps(schema))
    step(f"schema fetched from /api/v1/schema/ (OpenAPI {schema['openapi']}, {len(schema['paths'])} paths, "
         f"{len(schema.get('webhooks', {}))} webhooks)")  # fmt: skip
    config = workdir / "generator.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    output = workdir / "client" / PACKAGE
    result = subprocess.run(
        [str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(path), "--meta", "none",
         "--config", str(config), "--output-path", str(output), "--fail-on-warning"],
        capture_output=True, text=True,
    )  # fmt: skip
    text = result.stdout + result.stderr
    if result.returncode != 0 or "Warning" in text:
        raise CheckFailed(f"openapi-python-client did not generate a clean client:\n{text}")
    sys.path.insert(0, str(output.parent))
    package = importlib.import_module(PACKAGE)
    models = importlib.import_module(f"{PACKAGE}.models")
    step(f"client generated by openapi-python-client without warnings ({len(models.__all__)} models) and imported")
    return package


def api(name):
    """A generated endpoint module, e.g. api("negotiations.negotiations_create")."""
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def scenario(server, token, receiver):
    from standardwebhooks.webhooks import Webhook

    client_module = importlib.import_module(f"{PACKAGE}.client")
    m = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    client = client_module.AuthenticatedClient(
        base_url=server.url, token=token, raise_on_unexpected_status=True, timeout=30
    )

    me = api("me.me_retrieve").sync_detailed(client=client)
    expect(me.status_code == 200 and isinstance(me.parsed, m.ApiClient), f"GET me/: {me.status_code} {me.content!r}")
    own = me.parsed.party
    expect(me.headers.get("X-Request-ID"), "no X-Request-ID on GET me/")
    step(f"GET /api/v1/me/ -> 200 ApiClient (party {own})")

    other = api("parties.parties_create").sync_detailed(
        client=client, body=m.PartyRequest(name="Client Check Kingdom", kind=m.PartyKindEnum.STATE)
    )
    expect(
        other.status_code == 201 and isinstance(other.parsed, m.Party),
        f"POST parties/: {other.status_code} {other.content!r}",
    )
    step("POST /api/v1/parties/ -> 201 Party")

    subscription = api("webhooks.webhooks_create").sync_detailed(
        client=client,
        body=m.WebhookSubscriptionRequest(url=receiver.url, events=[m.WebhookEventEnum.NEGOTIATION_STATUS_CHANGED]),
    )
    expect(
        subscription.status_code == 201 and isinstance(subscription.parsed, m.WebhookSubscriptionCreated),
        f"POST webhooks/: {subscription.status_code} {subscription.content!r}",
    )
    secret = subscription.parsed.secret
    step("POST /api/v1/webhooks/ -> 201 WebhookSubscriptionCreated (with its whsec_ secret)")

    create = api("negotiations.negotiations_create")
    body = m.NegotiationRequest(
        title="Client check: wounded for wounded",
        visibility=m.VisibilityEnum.PARTICIPANTS,
        participants=[
            m.ParticipantRequest(party=own, role=m.ParticipantRoleEnum.SIDE),
            m.ParticipantRequest(party=other.parsed.id, role=m.ParticipantRoleEnum.SIDE),
        ],
    )
    key = f"client-check-{uuid.uuid4().hex}"
    created = create.sync_detailed(client=client, body=body, idempotency_key=key)
    expect(
        created.status_code == 201 and isinstance(created.parsed, m.Negotiation),
        f"POST negotiations/: {created.status_code} {created.content!r}",
    )
    negotiation = created.parsed
    expect(created.headers.get("ETag"), "no ETag on the 201")
    expect(negotiation.status == m.NegotiationStatusEnum.PROPOSED, f"a new negotiation is {negotiation.status}")
    step(f"POST /api/v1/negotiations/ -> 201 Negotiation {negotiation.reference} with an ETag")

    replayed = create.sync_detailed(client=client, body=body, idempotency_key=key)
    expect(
        replayed.status_code == 201
        and replayed.parsed.id == negotiation.id
        and replayed.headers.get("Idempotent-Replayed") == "true",
        f"the replay: {replayed.status_code} {replayed.content!r}",
    )
    step("the same POST with the same Idempotency-Key -> 201, replayed, nothing created")
    body.title = "Another body"
    reused = create.sync_detailed(client=client, body=body, idempotency_key=key)
    expect(
        reused.status_code == 422
        and isinstance(reused.parsed, m.IdempotencyKeyError)
        and reused.parsed.idempotency_key,
        f"the key reused: {reused.status_code} {reused.content!r}",
    )
    step("the key reused with another body -> 422 parsed as IdempotencyKeyError")

    change = api("negotiations.negotiations_status_changes_create")
    illegal = change.sync_detailed(
        negotiation.id, client=client, body=m.StatusChangeRequest(to_status=m.NegotiationStatusEnum.COMPLETED)
    )
    expect(
        illegal.status_code == 409 and isinstance(illegal.parsed, m.IllegalStatusChange),
        f"an illegal status change: {illegal.status_code} parsed={illegal.parsed!r} {illegal.content!r}",
    )
    expect(m.NegotiationStatusEnum.IN_TALKS in illegal.parsed.allowed, f"allowed: {illegal.parsed.allowed}")
    step(
        f"POST status-changes/ proposed -> completed -> 409 IllegalStatusChange (allowed: {', '.join(illegal.parsed.allowed)})"
    )
    moved = change.sync_detailed(
        negotiation.id,
        client=client,
        body=m.StatusChangeRequest(to_status=m.NegotiationStatusEnum.IN_TALKS, note="Talks open"),
    )
    expect(
        moved.status_code == 201 and isinstance(moved.parsed, m.StatusChange),
        f"a legal status change: {moved.status_code} {moved.content!r}",
    )
    expect(
        isinstance(moved.parsed.recorded_by, m.Actor) and moved.parsed.recorded_by.type_ == m.ActorTypeEnum.API_CLIENT,
        f"recorded_by: {moved.parsed.recorded_by!r}",
    )
    step("POST status-changes/ proposed -> in_talks -> 201 StatusChange (recorded_by an Actor)")

    retrieve = api("negotiations.negotiations_retrieve")
    read = retrieve.sync_detailed(negotiation.id, client=client)
    expect(
        read.status_code == 200 and isinstance(read.parsed, m.Negotiation),
        f"GET negotiation: {read.status_code} {read.content!r}",
    )
    expect(read.parsed.status == m.NegotiationStatusEnum.IN_TALKS, f"status after the change: {read.parsed.status}")
    etag = read.headers["ETag"]
    unchanged = retrieve.sync_detailed(negotiation.id, client=client, if_none_match=etag)
    expect(
        unchanged.status_code == 304 and unchanged.parsed is None,
        f"If-None-Match: {unchanged.status_code} {unchanged.content!r}",
    )
    step("GET negotiations/{id}/ -> 200 with an ETag; with If-None-Match -> 304")

    patch = api("negotiations.negotiations_partial_update")
    patched = patch.sync_detailed(
        negotiation.id, client=client, body=m.PatchedNegotiationRequest(summary="First edit"), if_match=etag
    )
    expect(
        patched.status_code == 200 and isinstance(patched.parsed, m.Negotiation),
        f"PATCH with If-Match: {patched.status_code} {patched.content!r}",
    )
    stale = patch.sync_detailed(
        negotiation.id, client=client, body=m.PatchedNegotiationRequest(summary="Second edit"), if_match=etag
    )
    expect(
        stale.status_code == 412 and isinstance(stale.parsed, m.Error) and stale.parsed.detail,
        f"PATCH with a stale If-Match: {stale.status_code} {stale.content!r}",
    )
    step("PATCH with the current If-Match -> 200; with the stale one -> 412 parsed as Error")

    body = m.NegotiationRequest(
        title="Bad", participants=[m.ParticipantRequest(party=uuid.uuid4(), role=m.ParticipantRoleEnum.SIDE)]
    )
    bad = create.sync_detailed(client=client, body=body)
    expect(
        bad.status_code == 400
        and isinstance(bad.parsed, m.ValidationError)
        and "participants" in bad.parsed.additional_properties,
        f"bad input: {bad.status_code} parsed={bad.parsed!r} {bad.content!r}",
    )
    step(f"POST negotiations/ naming an unknown party -> 400 ValidationError ({bad.parsed.additional_keys})")

    missing = retrieve.sync_detailed(uuid.uuid4(), client=client)
    expect(
        missing.status_code == 404 and isinstance(missing.parsed, m.Error),
        f"out of sight: {missing.status_code} {missing.content!r}",
    )
    step("GET a negotiation that does not exist -> 404 parsed as Error")

    stranger = client_module.AuthenticatedClient(
        base_url=server.url, token="not-a-token", raise_on_unexpected_status=True
    )
    refused = api("negotiations.negotiations_list").sync_detailed(client=stranger)
    expect(
        refused.status_code == 401 and isinstance(refused.parsed, m.Error),
        f"a bad token: {refused.status_code} {refused.content!r}",
    )
    step("GET negotiations/ with a bad token -> 401 parsed as Error")

    listed = api("negotiations.negotiations_list").sync_detailed(
        client=client,
        page_size=50,
        ordering=importlib.import_module(f"{PACKAGE}.models").NegotiationsListOrdering.UPDATED_AT,
    )
    expect(
        listed.status_code == 200 and isinstance(listed.parsed, m.PaginatedNegotiationList)
        and [n.id for n in listed.parsed.results] == [negotiation.id],
        f"the list: {listed.status_code} {listed.content!r}",
    )  # fmt: skip
    step("GET negotiations/?ordering=updated_at -> 200 PaginatedNegotiationList with the negotiation")

    changes = api("changes.changes_retrieve")
    seen, after = [], types.UNSET
    for _ in range(20):
        page = changes.sync_detailed(client=client, after=after)
        expect(
            page.status_code == 200 and isinstance(page.parsed, m.ChangePage),
            f"changes/: {page.status_code} {page.content!r}",
        )
        seen.extend(page.parsed.results)
        if not page.parsed.results:
            break
        after = page.parsed.next_cursor
    kinds = {(c.type_, c.action) for c in seen if c.id == negotiation.id or c.negotiation == negotiation.id}
    expect(
        (m.ChangeTypeEnum.NEGOTIATION, m.ChangeActionEnum.CREATED) in kinds,
        f"the feed lacks the negotiation's creation: {kinds}",
    )
    expect(
        (m.ChangeTypeEnum.STATUS_CHANGE, m.ChangeActionEnum.CREATED) in kinds,
        f"the feed lacks the status change: {kinds}",
    )
    step(f"GET changes/ followed to the end -> {len(seen)} changes, the negotiation's among them; next_cursor {after}")

    sent = int(server.manage("shell", code=DELIVER_OUTBOX).strip().splitlines()[-1])
    expect(sent == 1 and len(receiver.requests) == 1, f"{sent} webhooks delivered, {len(receiver.requests)} received")
    request = receiver.requests[0]
    verified = Webhook(secret).verify(request["body"], request["headers"])
    payload = m.StatusChangedWebhook.from_dict(verified)
    expect(
        payload.data.negotiation.id == negotiation.id
        and payload.data.status_change.to_status == m.NegotiationStatusEnum.IN_TALKS,
        f"the webhook's payload: {verified}",
    )
    step(
        "the outbox sent negotiation.status_changed; signature verified (standardwebhooks); body parsed as StatusChangedWebhook"
    )

    deliveries = api("webhooks.webhooks_deliveries_list").sync_detailed(subscription.parsed.id, client=client)
    expect(
        deliveries.status_code == 200 and isinstance(deliveries.parsed, m.PaginatedWebhookDeliveryList),
        f"deliveries/: {deliveries.status_code} {deliveries.content!r}",
    )
    item = deliveries.parsed.results[0]
    expect(
        isinstance(item.payload, m.StatusChangedWebhook) and item.payload.data.status_change.id == moved.parsed.id,
        f"a delivery's payload: {item.payload!r}",
    )
    expect(item.status == m.WebhookDeliveryStatusEnum.DELIVERED, f"the delivery is {item.status}")
    step("GET webhooks/{id}/deliveries/ -> the delivery, delivered, its payload typed as StatusChangedWebhook")


def main():
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tracker-client-check-"))
    print(f"Client check in {workdir}", flush=True)
    server, receiver, failed = Server(workdir), None, True
    try:
        token = server.prepare()
        server.start()
        generate_client(server, workdir)
        receiver = Receiver()
        scenario(server, token, receiver)
        failed = False
    except CheckFailed as failure:
        print(f"FAIL {failure}", flush=True)
    except Exception:  # noqa: BLE001 - a crash of the generated client is a failure like any other
        print("FAIL the generated client raised:", flush=True)
        traceback.print_exc()
    finally:
        if receiver is not None:
            receiver.stop()
        server.stop()
    seconds = time.monotonic() - started
    if failed:
        print(f"\nclient check FAILED after {seconds:.0f} s; kept {workdir} (schema.json, client/, gunicorn.log)")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nclient check passed in {seconds:.0f} s: the generated client handled every answer above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
