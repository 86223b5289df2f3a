#!/usr/bin/env python
"""`make bench`: the tracker beside its floor at 10k, 100k and 1M negotiations.

For each size it builds (or reuses) a PostgreSQL database filled by COPY, serves the
tracker and a bare WSGI floor through gunicorn, drives both with wrk on loopback, counts
queries per request, and times the stall scan beside the bare SQL that does the same
flagging. Environment: BENCH_SIZES (default 10000,100000,1000000), BENCH_SECONDS per
measurement (default 10), BENCH_DATABASE_URL (default DATABASE_URL or the local server).
"""
import contextlib
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10000,100000,1000000").split(",")]
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
BASE_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/tracker"
APP_PORT, FLOOR_PORT = 8801, 8802
NOW = datetime.now(timezone.utc).replace(microsecond=0)
OPEN = ["proposed", "in_talks", "agreed_in_principle", "lists_exchanged", "agreed", "implementing", "suspended"]
PATH = ["in_talks", "agreed_in_principle", "lists_exchanged", "agreed", "implementing", "completed"]


def db_url(size):
    parts = urlsplit(BASE_URL)
    return urlunsplit(parts._replace(path=f"/tracker_bench_{size}"))


def admin_url():
    return urlunsplit(urlsplit(BASE_URL)._replace(path="/postgres"))


#: Bump when `load` changes what it writes; schema changes are applied by migrating a reused dataset.
DATA_VERSION = "4"  # 4: covered groups held by the sides; wounded released in done transfers; handovers during implementation; verified counts


def schema_version():
    return DATA_VERSION


def app_env(size, **extra):
    return {
        **os.environ,
        "DATABASE_URL": db_url(size),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "false",
        "TRACKER_API_RATE": "100000000/min",
        "CELERY_BROKER_URL": "memory://",
        "TRACKER_KICK_ON_COMMIT": "false",
        **extra,
    }


# --- the dataset --------------------------------------------------------------------------


def ensure_dataset(size):
    import psycopg

    version = schema_version()
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [f"tracker_bench_{size}"]).fetchone()
    if exists:
        try:
            with psycopg.connect(db_url(size)) as connection:
                row = connection.execute("SELECT version FROM bench_meta").fetchone()
            if row and row[0] == version:
                subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=app_env(size), check=True)
                with psycopg.connect(db_url(size), autocommit=True) as connection:
                    connection.execute("VACUUM ANALYZE")
                print(f"  reusing the {size:,} dataset (migrated)", flush=True)
                return
        except psycopg.Error:
            pass
    started = time.monotonic()
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "tracker_bench_{size}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "tracker_bench_{size}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=app_env(size), check=True)
    rows = load(size)
    with psycopg.connect(db_url(size), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CREATE TABLE bench_meta (version text, size int)")
        connection.execute("INSERT INTO bench_meta VALUES (%s, %s)", [version, size])
    print(f"  built the {size:,} dataset: {rows:,} rows in {time.monotonic() - started:.0f}s", flush=True)


def load(size):
    """COPY parties, groups, negotiations with participants, covered groups, status history
    and events, and the agreements carried out: commitments, handovers and their transfers.

    One connection per table, all committed at the end: foreign keys (Django's, and the
    deferred participant keys of commitments and transfers) are checked at commit, and
    the stack commits last-entered first, so entering children first makes every parent
    (parties, groups, negotiations, participants, handovers) commit before its children.
    """
    import psycopg
    from psycopg.types.json import Jsonb

    rnd = random.Random(size)
    parties = [(uuid.UUID(int=rnd.getrandbits(128)), f"B{n}") for n in range(50)]
    group_count = max(100, size // 10) // 50 * 50
    groups = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(group_count)]
    wounded = set(rnd.sample(range(group_count), group_count // 20))
    group_wounded = [0] * group_count  # seriously wounded held in each group
    tables = {
        "party": "exchanges_party (id, created_at, updated_at, name, short_name, kind, country, aliases)",
        "group": "exchanges_detaineegroup (id, created_at, updated_at, name, held_by_id, affiliated_with_id, category, detained_since, location, estimated_count, seriously_wounded_count, notes)",
        "negotiation": "exchanges_negotiation (id, created_at, updated_at, reference, title, summary, status, priority, visibility, opened_on, next_step, next_step_due, last_activity_at, stalled, stalled_since, created_by_party_id, party_ids, agreed_at, activity_count, usual_gap, handovers_recorded)",
        "participant": "exchanges_participant (negotiation_id, party_id, role)",
        "covered": "exchanges_coveredgroup (negotiation_id, group_id, proposed_count, released_count)",
        "change": "exchanges_statuschange (id, created_at, updated_at, negotiation_id, sequence, from_status, to_status, occurred_at, recorded_at, note, source)",
        "event": "exchanges_event (id, created_at, updated_at, negotiation_id, kind, occurred_at, summary, source)",
        "commitment": "exchanges_commitment (negotiation_id, party_id, count, seriously_wounded_count, notes)",
        "handover": "exchanges_handover (id, created_at, updated_at, negotiation_id, sequence, state, planned_on, occurred_on, location, verified_by_id, source, notes)",
        "transfer": "exchanges_transfer (handover_id, negotiation_id, from_party_id, to_party_id, planned_count, released_count, received_count, verified_count, seriously_wounded_count, civilians_count)",
    }
    connections = {name: psycopg.connect(db_url(size)) for name in tables}
    with contextlib.ExitStack() as stack:
        # Foreign keys are checked at commit, and the stack commits last-entered first:
        # entering children first makes parents (parties, groups, negotiations) commit first.
        for connection in reversed(list(connections.values())):
            stack.enter_context(connection)
        copies = {name: stack.enter_context(connections[name].cursor().copy(f"COPY {spec} FROM STDIN")) for name, spec in tables.items()}
        write = {name: copy.write_row for name, copy in copies.items()}
        total = 0
        for party, short in parties:
            write["party"]((party, NOW, NOW, f"Bench party {short}", short, "state", None, Jsonb([])))
        for n, group in enumerate(groups):
            estimate = rnd.randint(10, 2000)
            group_wounded[n] = rnd.randint(1, 9) if n in wounded else 0
            write["group"]((group, NOW - timedelta(days=1), NOW - timedelta(days=1), f"Bench group {n}", parties[n % 50][0], parties[(n + 1) % 50][0], "combatants", None, "", estimate, group_wounded[n], ""))
        kinds = ["meeting", "proposal", "statement", "counter_proposal", "verification"]
        for n in range(size):
            negotiation = uuid.UUID(int=rnd.getrandbits(128))
            age = rnd.randint(0, 1500)
            opened = (NOW - timedelta(days=age)).date()
            start = datetime(opened.year, opened.month, opened.day, tzinfo=timezone.utc)
            # Older negotiations have mostly ended; recent ones are mostly open.
            steps = rnd.randint(0, 6)
            if age > 180 and rnd.random() < 0.85:
                steps = 6
            times = sorted(start + timedelta(seconds=rnd.randint(0, max(1, age * 86400))) for _ in range(steps + rnd.randint(0, 6)))
            change_times, event_times = times[:steps], times[steps:]
            status, previous, agreed_at = "proposed", "proposed", None
            for sequence, when in enumerate(change_times, start=1):
                target = PATH[sequence - 1]
                if sequence == steps and steps < 6 and rnd.random() < 0.2:
                    target = rnd.choice(["suspended", "collapsed"]) if previous != "proposed" else "rejected"
                write["change"]((uuid.UUID(int=rnd.getrandbits(128)), when, when, negotiation, sequence, previous, target, when, when, "", ""))
                previous = status = target
                if target == "agreed":
                    agreed_at = when  # the latest change to `agreed` (there is one at most here)
                if target in ("suspended", "collapsed", "rejected"):
                    break
            for when in event_times:
                write["event"]((uuid.UUID(int=rnd.getrandbits(128)), when, when, negotiation, rnd.choice(kinds), when, "Bench event", ""))
            taking_part = rnd.sample(range(50), 3)
            sides = [(index, parties[index][0]) for index in taking_part if index % 3][:2]
            mediator = next((parties[index][0] for index in taking_part if not index % 3), None)
            # Covered groups: held by one of the two sides when there are two (what they
            # exchange); otherwise any group, as before.
            if len(sides) == 2:
                covered = {rnd.choice(sides)[0] + 50 * rnd.randrange(group_count // 50) for _ in range(rnd.randint(1, 2))}
            else:
                covered = set(rnd.sample(range(group_count), rnd.randint(1, 2)))
            proposed = {index: rnd.randint(1, 100) for index in sorted(covered)}
            handover_days, handovers = [], 0
            carried_out = rnd.random() < (0.5 if status == "completed" else 0.9)
            if agreed_at is not None and status in ("agreed", "implementing", "completed") and len(sides) == 2 and carried_out:
                handovers, handover_days, rows = agreement(rnd, negotiation, status, change_times, sides, mediator, proposed, group_wounded, write)
                total += rows
            moments = sorted([*times, *handover_days])
            gaps = sorted(later - earlier for earlier, later in zip(moments, moments[1:]))
            usual_gap = None if not gaps else (gaps[len(gaps) // 2] if len(gaps) % 2 else (gaps[len(gaps) // 2 - 1] + gaps[len(gaps) // 2]) / 2)
            last = max([start, *moments])
            created = start + timedelta(seconds=n % 86400)
            visibility = rnd.choices(["all_partners", "participants", "staff_only"], [60, 35, 5])[0]
            due = opened + timedelta(days=rnd.randint(5, 90)) if status in OPEN and rnd.random() < 0.5 else None
            party_ids = Jsonb(sorted(str(parties[index][0]) for index in taking_part))
            write["negotiation"]((negotiation, created, last, f"NEG-{opened.year}-{n + 1:07d}", f"Bench negotiation {n}", "", status, rnd.choice(["routine", "routine", "high", "urgent"]), visibility, opened, "", due, last, False, None, None, party_ids, agreed_at, len(moments), usual_gap, handovers))
            for party_index in taking_part:
                write["participant"]((negotiation, parties[party_index][0], "side" if party_index % 3 else "mediator"))
            for group_index, count in proposed.items():
                write["covered"]((negotiation, groups[group_index], count, None))
            total += 1 + 3 + len(proposed) + len(times)
    return total


def agreement(rnd, negotiation, status, change_times, sides, mediator, proposed, group_wounded, write):
    """An agreement carried out: each side's commitment (the groups it holds here and some
    others; one in ten open-ended), then 1-4 handovers, each side releasing to the other.

    Agreed: all still planned (one in ten postponed). Implementing: the first done and each
    later one four times in five, else planned, the done ones between the start of the
    implementation and now. Completed: all done, between the start of the implementation
    and the completion. A done transfer's counts disagree one time in ten (disputed). The
    seriously wounded a side holds here go first, in its first done handovers; one side in
    ten releases only half of them (wounded still waiting), and a side whose handovers so
    far are too small for them has some waiting too.
    Returns (handovers, the start of each done handover's day, rows written)."""
    begun = change_times[4] if status != "agreed" else None
    end = change_times[5] if status == "completed" else NOW
    count = rnd.randint(1, 4)
    if status == "agreed":
        states = ["postponed" if rnd.random() < 0.1 else "planned" for _ in range(count)]
    elif status == "implementing":
        states = ["done" if index == 0 or rnd.random() < 0.8 else "planned" for index in range(count)]
        states.sort(key=lambda state: state != "done")  # the done ones first
    else:
        states = ["done"] * count
    days = sorted((begun + (end - begun) * rnd.random()).date() for state in states if state == "done")
    rows, plan = 0, {}
    for side, party in sides:
        held = [index for index in proposed if index % 50 == side]
        holds_wounded = sum(group_wounded[index] for index in held)
        committed = max(sum(proposed[index] for index in held) + rnd.randint(0, 200), holds_wounded, 1)
        open_ended = rnd.random() < 0.1
        write["commitment"]((negotiation, party, None if open_ended else committed, None if open_ended else holds_wounded, ""))
        rows += 1
        # [per handover planned, wounded still to release]
        plan[side] = [max(1, committed // count), holds_wounded if rnd.random() < 0.9 else holds_wounded // 2]
    done_days = []
    for sequence, state in enumerate(states, start=1):
        handover = uuid.UUID(int=rnd.getrandbits(128))
        if state == "done":
            day = days[len(done_days)]
            occurred, planned_on = day, day - timedelta(days=rnd.randint(0, 7))
            done_days.append(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
            stamp = max(done_days[-1], begun)
        else:
            occurred, planned_on, stamp = None, NOW.date() + timedelta(days=rnd.randint(1, 60)), change_times[3]
        write["handover"]((handover, stamp, stamp, negotiation, sequence, state, planned_on, occurred, "Bench crossing", mediator if state == "done" else None, "", ""))
        rows += 1
        for (source, source_party), (_target, target_party) in (sides, sides[::-1]):
            planned, waiting = plan[source]
            if state == "done":
                released = planned if rnd.random() < 0.9 else planned - rnd.randint(0, planned // 5)
                wounded = min(waiting, released)
                plan[source][1] -= wounded
                received = released if rnd.random() < 0.9 else max(0, released - rnd.randint(1, 5))  # disputed
                verified = received if mediator else None
                counts = (planned, released, received, verified, wounded, rnd.randint(0, released // 10))
            else:
                counts = (planned, None, None, None, None, None)
            write["transfer"]((handover, negotiation, source_party, target_party, *counts))
            rows += 1
    return len(states), done_days, rows


# --- measurements -------------------------------------------------------------------------


def wrk(url, token=None):
    command = ["wrk", "-t2", "-c8", f"-d{SECONDS}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    subprocess.run([*command[:-1], "-d2s", url], capture_output=True)  # warm up
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def millis(label):
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": millis("50"),
        "p99": millis("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def port_taken(port):
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def serve(size):
    """gunicorn for the tracker and for the floor; refuses to measure a server it did not start."""
    taken = [port for port in (APP_PORT, FLOOR_PORT) if port_taken(port)]
    if taken:
        sys.exit(f"bench: port(s) {taken} already in use (a server left running?); stop it and run again")
    common = ["-w", "2", "--worker-class", "sync", "--log-level", "warning"]
    app = subprocess.Popen([str(BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{APP_PORT}", *common], cwd=ROOT, env=app_env(size, DATABASE_CONN_MAX_AGE="600"))
    floor = subprocess.Popen(
        [str(BIN / "gunicorn"), "bench_floor:application", "-b", f"127.0.0.1:{FLOOR_PORT}", *common],
        cwd=ROOT / "scripts", env={**os.environ, "FLOOR_DSN": db_url(size)},
    )
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{APP_PORT}/healthz", timeout=1)
            urllib.request.urlopen(f"http://127.0.0.1:{FLOOR_PORT}/floor/negotiations/?page_size=1", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    if app.poll() is not None or floor.poll() is not None:
        sys.exit("bench: gunicorn did not start (see its messages above)")
    return app, floor


def in_django(size, mode):
    """Run `python scripts/bench.py --<mode>` against the size's database; returns its JSON."""
    result = subprocess.run([sys.executable, __file__, f"--{mode}", str(size)], cwd=ROOT, env=app_env(size), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def django_queries(size):
    """Queries per request for every list and detail endpoint, as an API client."""
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from exchanges import services
    from exchanges.models import DetaineeGroup, Handover, Negotiation, Party

    party = Party.objects.get(short_name="B0")
    _client, token = services.api_client_create(name="bench queries", party=party)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", SERVER_NAME="localhost")
    negotiation = Negotiation.objects.filter(visibility="all_partners").order_by("-created_at").first()
    group = DetaineeGroup.objects.first()
    change = negotiation.status_changes.first() or Negotiation.objects.filter(visibility="all_partners", status_changes__isnull=False).first().status_changes.first()
    event = negotiation.events.first() or Negotiation.objects.filter(visibility="all_partners", events__isnull=False).first().events.first()
    handover = Handover.objects.filter(negotiation__visibility="all_partners", state="done").order_by("-created_at").first()
    urls = {
        "parties list": "/api/v1/parties/", "party detail": f"/api/v1/parties/{party.pk}/",
        "groups list": "/api/v1/detainee-groups/", "group detail": f"/api/v1/detainee-groups/{group.pk}/",
        "figures list": f"/api/v1/detainee-groups/{group.pk}/figures/",
        "negotiations list": "/api/v1/negotiations/", "negotiation detail": f"/api/v1/negotiations/{negotiation.pk}/",
        "status changes list": f"/api/v1/negotiations/{change.negotiation_id}/status-changes/",
        "status change detail": f"/api/v1/negotiations/{change.negotiation_id}/status-changes/{change.pk}/",
        "events list": f"/api/v1/negotiations/{event.negotiation_id}/events/",
        "event detail": f"/api/v1/negotiations/{event.negotiation_id}/events/{event.pk}/",
        "handovers list": f"/api/v1/negotiations/{handover.negotiation_id}/handovers/",
        "handover detail": f"/api/v1/negotiations/{handover.negotiation_id}/handovers/{handover.pk}/",
        "flags list": "/api/v1/flags/", "webhooks list": "/api/v1/webhooks/",
    }
    client.get("/api/v1/parties/")
    counts = {}
    for name, url in urls.items():
        sizes = []
        for page_size in (("5", "200") if "list" in name else ("",)):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, {"page_size": page_size} if page_size else {})
            assert response.status_code == 200, (url, response.status_code)
            sizes.append(len(queries))
        counts[name] = max(sizes)
    print(json.dumps(counts))


from bench_floor_scan import FLOOR_CHANGES, FLOOR_SCAN  # noqa: E402 - the scan's floor, in SQL


def reset_flags(cursor):
    """Back to the dataset as loaded, as a first deployment would find it: no flags, no
    scan run, nothing stamped by an earlier scan (the loader writes updated_at equal to
    last_activity_at), and no dead row versions left behind by the earlier scans."""
    cursor.execute("TRUNCATE tracker_flag CASCADE")
    cursor.execute("TRUNCATE exchanges_change")
    cursor.execute("TRUNCATE tracker_scanrun")
    cursor.execute(
        "UPDATE exchanges_negotiation SET stalled = false, stalled_since = NULL, updated_at = last_activity_at "
        "WHERE stalled OR updated_at <> last_activity_at"
    )
    cursor.execute("VACUUM ANALYZE exchanges_negotiation")


def django_scan(size):
    """The tracker's scan from a clean slate, then again with nothing to do; peak RSS."""
    import django

    django.setup()
    from django.db import connection

    from tracker.services import scan_stalls

    with connection.cursor() as cursor:
        reset_flags(cursor)
    started = time.perf_counter()
    first = scan_stalls()
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    second = scan_stalls()  # incremental: what crossed a threshold or was written since
    second_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scan_stalls(full=True)  # every negotiation again, nothing to change (the daily safety net)
    full_seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with connection.cursor() as cursor:
        by_kind = dict(flags_by_kind(cursor))
    print(json.dumps({"first_s": first_seconds, "second_s": second_seconds, "full_noop_s": full_seconds, "raised": first["raised"], "second": second, "peak_mib": peak_kib / 1024, "by_kind": by_kind}))


def floor_scan(size):
    import psycopg

    with psycopg.connect(db_url(size), autocommit=True) as connection:
        with connection.cursor() as cursor:
            reset_flags(cursor)
            started = time.perf_counter()
            cursor.execute(FLOOR_SCAN)
            cursor.execute(FLOOR_CHANGES)  # what a partner's change feed needs of it
            seconds = time.perf_counter() - started
            raised = connection.execute("SELECT count(*) FROM tracker_flag").fetchone()[0]
            by_kind = dict(flags_by_kind(cursor))
    return {"seconds": seconds, "raised": raised, "by_kind": by_kind}


def flags_by_kind(cursor):
    cursor.execute("SELECT kind, count(*) FROM tracker_flag WHERE resolved_at IS NULL GROUP BY kind ORDER BY kind")
    return cursor.fetchall()


# --- the run ------------------------------------------------------------------------------


DATASET_SHAPE = {
    "negotiations": "SELECT count(*) FROM exchanges_negotiation",
    "open negotiations": "SELECT count(*) FROM exchanges_negotiation WHERE status NOT IN ('completed', 'rejected', 'collapsed')",
    "agreed or implementing": "SELECT count(*) FROM exchanges_negotiation WHERE status IN ('agreed', 'implementing')",
    "with agreed_at": "SELECT count(*) FROM exchanges_negotiation WHERE agreed_at IS NOT NULL",
    "with a usual gap, 5+ activities": "SELECT count(*) FROM exchanges_negotiation WHERE usual_gap IS NOT NULL AND activity_count >= 5",
    "status changes + events": "SELECT (SELECT count(*) FROM exchanges_statuschange) + (SELECT count(*) FROM exchanges_event)",
    "commitments": "SELECT count(*) FROM exchanges_commitment",
    "negotiations with handovers": "SELECT count(DISTINCT negotiation_id) FROM exchanges_handover",
    "handovers done": "SELECT count(*) FROM exchanges_handover WHERE state = 'done'",
    "handovers planned or postponed": "SELECT count(*) FROM exchanges_handover WHERE state <> 'done'",
    "transfers": "SELECT count(*) FROM exchanges_transfer",
    "transfers disputed (done)": "SELECT count(*) FROM exchanges_transfer WHERE released_count <> received_count",
}


def dataset_shape(size):
    import psycopg

    with psycopg.connect(db_url(size)) as connection:
        return {name: connection.execute(sql).fetchone()[0] for name, sql in DATASET_SHAPE.items()}


def measure(size):
    print(f"\n== {size:,} negotiations ==", flush=True)
    ensure_dataset(size)
    results = {"dataset": dataset_shape(size), "queries": in_django(size, "queries")}
    token = subprocess.run([sys.executable, "manage.py", "create_api_client", "--party", "B0", "--name", f"bench {time.time()}"], cwd=ROOT, env=app_env(size), capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    import psycopg

    with psycopg.connect(db_url(size)) as connection:
        # The latest negotiation visible to all partners whose agreement is being carried out
        # (commitments and a done handover): its detail reads commitments and progress.
        detail_id = connection.execute(
            "SELECT id FROM exchanges_negotiation n WHERE visibility = 'all_partners' AND EXISTS "
            "(SELECT 1 FROM exchanges_handover h WHERE h.negotiation_id = n.id AND h.state = 'done') "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()[0]
    app, floor = serve(size)
    try:
        since = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        base = f"http://127.0.0.1:{APP_PORT}/api/v1/negotiations/"
        results["http"] = {
            "list": wrk(base + "?page_size=50", token),
            "floor list": wrk(f"http://127.0.0.1:{FLOOR_PORT}/floor/negotiations/?page_size=50"),
            "detail": wrk(f"{base}{detail_id}/", token),
            "floor detail": wrk(f"http://127.0.0.1:{FLOOR_PORT}/floor/negotiations/{detail_id}/"),
            "sync (updated_since)": wrk(f"{base}?page_size=50&updated_since={since}&ordering=updated_at", token),
        }
    finally:
        for process in (app, floor):
            process.terminate()
            process.wait(timeout=30)
    results["floor scan"] = floor_scan(size)
    results["scan"] = in_django(size, "scan")
    app, floor = serve(size)
    try:
        results["http"]["stalled=true"] = wrk(f"http://127.0.0.1:{APP_PORT}/api/v1/negotiations/?page_size=50&stalled=true", token)
    finally:
        for process in (app, floor):
            process.terminate()
            process.wait(timeout=30)
    return results


def report(all_results):
    lines = ["", "## HTTP (wrk -t2 -c8, gunicorn -w 2 sync, loopback)", ""]
    lines.append("| size | endpoint | req/s | p50 ms | p99 ms | vs floor | non-2xx |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|")
    for size, results in all_results.items():
        http = results["http"]
        for name, figures in http.items():
            floor = http.get("floor list") if name in ("list", "sync (updated_since)", "stalled=true") else http.get("floor detail") if name == "detail" else None
            ratio = f"{figures['rps'] / floor['rps']:.2f}x" if floor and not name.startswith("floor") else ""
            lines.append(f"| {size:,} | {name} | {figures['rps']:.0f} | {figures['p50']:.1f} | {figures['p99']:.1f} | {ratio} | {figures['errors']} |")
    lines += ["", "## Queries per request (API client; lists at page_size 5 and 200, the larger count shown)", ""]
    names = list(next(iter(all_results.values()))["queries"])
    lines.append("| endpoint | " + " | ".join(f"{size:,}" for size in all_results) + " |")
    lines.append("|---|" + "---:|" * len(all_results))
    for name in names:
        lines.append(f"| {name} | " + " | ".join(str(results["queries"][name]) for results in all_results.values()) + " |")
    lines += ["", "## Stall scan", ""]
    lines.append("| size | scan s | floor s | vs floor | flags raised | second scan ms (incremental) | full pass, nothing to do, ms | peak RSS MiB |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, results in all_results.items():
        scan, floor = results["scan"], results["floor scan"]
        lines.append(
            f"| {size:,} | {scan['first_s']:.2f} | {floor['seconds']:.2f} | {scan['first_s'] / floor['seconds']:.2f}x | {scan['raised']:,} (floor {floor['raised']:,}) | {scan['second_s'] * 1000:.0f} | {scan['full_noop_s'] * 1000:.0f} | {scan['peak_mib']:.0f} |"
        )
    kinds = sorted({kind for results in all_results.values() for kind in (*results["scan"]["by_kind"], *results["floor scan"]["by_kind"])})
    lines += ["", "Open flags after the first scan by kind, scan (floor):", ""]
    lines.append("| size | " + " | ".join(kinds) + " |")
    lines.append("|---:|" + "---:|" * len(kinds))
    for size, results in all_results.items():
        scan, floor = results["scan"]["by_kind"], results["floor scan"]["by_kind"]
        lines.append(f"| {size:,} | " + " | ".join(f"{scan.get(kind, 0):,} ({floor.get(kind, 0):,})" for kind in kinds) + " |")
    lines += ["", "## Datasets", ""]
    names = list(next(iter(all_results.values()))["dataset"])
    lines.append("| rows | " + " | ".join(f"{size:,}" for size in all_results) + " |")
    lines.append("|---|" + "---:|" * len(all_results))
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{results['dataset'][name]:,}" for results in all_results.values()) + " |")
    sizes = list(all_results)
    if len(sizes) > 1:
        small, large = all_results[sizes[0]], all_results[sizes[-1]]
        lines += ["", f"## Growth from {sizes[0]:,} to {sizes[-1]:,}", "", "| figure | growth |", "|---|---:|"]
        for name in ("list", "detail", "sync (updated_since)", "stalled=true"):
            lines.append(f"| {name} p50 latency | {large['http'][name]['p50'] / small['http'][name]['p50']:.2f}x |")
        lines.append(f"| scan time | {large['scan']['first_s'] / small['scan']['first_s']:.2f}x |")
        lines.append(f"| second scan time | {large['scan']['second_s'] / small['scan']['second_s']:.2f}x |")
        lines.append(f"| scan peak RSS | {large['scan']['peak_mib'] / small['scan']['peak_mib']:.2f}x |")
    print("\n".join(lines))


def main():
    if len(sys.argv) == 3 and sys.argv[1] in ("--queries", "--scan"):
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
        (django_queries if sys.argv[1] == "--queries" else django_scan)(int(sys.argv[2]))
        return
    results = {}
    for size in SIZES:
        results[size] = measure(size)
    print(f"\nmachine: {os.cpu_count()} cores; {SECONDS}s per HTTP measurement; {NOW.isoformat()}")
    print("raw: " + json.dumps({str(size): figures for size, figures in results.items()}))
    report(results)


if __name__ == "__main__":
    main()
