"""Stress the change feed: concurrent writers holding their transactions open for random
times, and a partner syncing `GET /api/v1/changes/` from its last cursor meanwhile, with
random pauses. Prints the changes written that the client may see, how many it saw, and
how many it missed (the goal: 0), saw twice, or saw out of order.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python scripts/changes_stress.py [--writers 8] [--writes 60]

It creates (and drops first) the database `tracker_changes_stress` on that server.
"""
import argparse
import os
import random
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "tracker_changes_stress"


def prepare_database():
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{DATABASE}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.update({"TRACKER_API_RATE": "100000000/min", "CELERY_BROKER_URL": "memory://", "TRACKER_KICK_ON_COMMIT": "false"})
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--writes", type=int, default=60, help="transactions per writer")
    args = parser.parse_args()
    prepare_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    from exchanges import changes, services
    from exchanges.models import Change, DetaineeGroup, Party

    call_command("migrate", verbosity=0)
    ua = services.party_create(actor=None, name="Stress Ukraine", short_name="SUA", kind="state")
    ru = services.party_create(actor=None, name="Stress Russia", short_name="SRU", kind="state")
    other = services.party_create(actor=None, name="Stress other", short_name="SOT", kind="state")
    client, token = services.api_client_create(name="stress sync", party=ua)
    negotiations = [
        services.negotiation_create(
            actor=None,
            title=f"Stress {n}",
            visibility=["all_partners", "participants"][n % 2],
            participants=[{"party": ua if n % 3 else other, "role": "side"}, {"party": ru, "role": "side"}],
        )
        for n in range(6)
    ]
    group = services.detainee_group_create(actor=None, name="Stress group", held_by=ru, affiliated_with=ua, category="combatants")
    stop_reading = threading.Event()
    errors = []

    def writer(index):
        rnd = random.Random(index)
        try:
            for n in range(args.writes):
                with transaction.atomic():
                    negotiation = rnd.choice(negotiations)
                    operation = rnd.randrange(4)
                    if operation == 0:
                        services.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=timezone.now(), summary=f"w{index} n{n}")
                    elif operation == 1:
                        services.negotiation_update(negotiation=negotiation, actor=None, next_step=f"w{index} n{n}")
                    elif operation == 2:
                        services.figure_create(group=DetaineeGroup.objects.get(pk=group.pk), actor=None, metric="total", value=index * 1000 + n, reported_on=timezone.localdate())
                    else:
                        services.party_create(actor=None, name=f"Party w{index} n{n}", kind="other")
                    time.sleep(rnd.random() * 0.05)  # hold the transaction open: commits land out of order
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"writer {index}: {exc!r}")
        finally:
            connection.close()

    seen, cursor_positions = [], []

    def sync(http, after):
        while True:
            response = http.get("/api/v1/changes/", {"after": after, "page_size": 50} if after else {"page_size": 50}, HTTP_AUTHORIZATION=f"Bearer {token}")
            if response.status_code != 200:
                errors.append(f"reader: HTTP {response.status_code} {response.content[:200]!r}")
                return after
            body = response.json()
            for entry in body["results"]:
                seen.append(entry)
                cursor_positions.append(changes.decode(entry["cursor"]))
            after = body["next_cursor"]
            if not body["results"]:
                return after

    caught_up = {}

    def reader():
        http, after, rnd = Client(), None, random.Random(99)
        try:
            while not stop_reading.is_set():
                after = sync(http, after)
                time.sleep(rnd.random() * 0.03)
            # The writers are done: sync until the last change is seen (or a minute).
            finished, deadline = time.monotonic(), time.monotonic() + 60
            changes.seal()
            visible = Change.objects.filter(changes.visible_to_client_q(client.party_id))
            last = visible.order_by("-position").values_list("position", flat=True).first()
            while time.monotonic() < deadline and (not cursor_positions or cursor_positions[-1] < last):
                after = sync(http, after)
                time.sleep(0.05)
            caught_up["seconds"] = time.monotonic() - finished
        finally:
            connection.close()

    started = time.monotonic()
    reading = threading.Thread(target=reader)
    reading.start()
    writers = [threading.Thread(target=writer, args=(index,)) for index in range(args.writers)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop_reading.set()
    reading.join()
    seconds = time.monotonic() - started

    changes.seal()
    written = list(Change.objects.filter(changes.visible_to_client_q(client.party_id)).values_list("position", flat=True))
    seen_positions = list(cursor_positions)
    missed = set(written) - set(seen_positions)
    duplicates = len(seen_positions) - len(set(seen_positions))
    out_of_order = sum(1 for earlier, later in zip(seen_positions, seen_positions[1:]) if later <= earlier)
    total = Change.objects.count()
    print(f"writers {args.writers} x {args.writes} transactions in {seconds:.1f}s; change rows {total:,} "
          f"(parties: {Party.objects.count():,})")
    print(f"caught up {caught_up.get('seconds', float('nan')):.2f}s after the last commit")
    print(f"changes the client may see: {len(written):,}  seen: {len(set(seen_positions)):,}  "
          f"missed: {len(missed)}  seen twice: {duplicates}  out of order: {out_of_order}")
    for error in errors[:5]:
        print("error:", error)
    for row in Change.objects.filter(position__in=sorted(missed)[:5]):
        print("missed:", row.position, row.pk, row.object_type, row.action, row.at.isoformat())
    return 1 if missed or out_of_order or errors else 0


if __name__ == "__main__":
    sys.exit(main())
