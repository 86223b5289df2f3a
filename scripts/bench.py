#!/usr/bin/env python
"""`make bench`: the tracker beside its floor at 10k, 100k and 1M negotiations.

For each size it builds (or reuses) a PostgreSQL database filled by COPY, serves the
tracker and a bare WSGI floor through gunicorn, drives both with wrk on loopback, counts
queries per request, and times the stall scan beside the bare SQL that does the same
flagging; then every API list beside the negotiation list, and status changes and events
written through the API beside a bare INSERT and COMMIT, with the statements each write
takes; every admin page of `scripts/bench_admin_lists.py` (lists, filters, searches, the
negotiation and group pages, the dashboard) and the CSV export of every negotiation as
a worker runs it; last, a table of growth from the smallest size to the largest. Environment:
BENCH_SIZES (default 10000,1000000; 100000 may be added), BENCH_SECONDS per measurement
(default 10), BENCH_DATABASE_URL (default DATABASE_URL or the local server).

Parts alone, against a dataset already built (not migrated, nothing reset):
`scripts/bench.py --lists SIZE`, `--writes SIZE` (the writes go to 64 negotiations
and are removed afterwards, the negotiations restored; their audit entries stay) and
`--admin SIZE` (the admin pages and the export; nothing is left written).
"""
import json
import os
import re
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10000,1000000").split(",")]
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
BASE_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/tracker"
APP_PORT, FLOOR_PORT = 8801, 8802
NOW = datetime.now(timezone.utc).replace(microsecond=0)


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
    rows = load(db_url(size), size, NOW)
    with psycopg.connect(db_url(size), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CREATE TABLE bench_meta (version text, size int)")
        connection.execute("INSERT INTO bench_meta VALUES (%s, %s)", [version, size])
    print(f"  built the {size:,} dataset: {rows:,} rows in {time.monotonic() - started:.0f}s", flush=True)


# --- measurements -------------------------------------------------------------------------


def wrk(url, token=None, *, script=None, env=None, warm_up=True):
    command = ["wrk", "-t2", "-c8", f"-d{SECONDS}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    if script:
        command[1:1] = ["-s", str(script)]
    env = {**os.environ, **(env or {})}
    if warm_up:
        subprocess.run([*command[:-1], "-d2s", url], capture_output=True, env=env)
    finished = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    if finished.stderr:
        print(finished.stderr[-2000:], file=sys.stderr)
    out = finished.stdout

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


def in_django(size, mode, *args):
    """Run `python scripts/bench.py --<mode>` against the size's database; returns its JSON."""
    result = subprocess.run([sys.executable, __file__, f"--{mode}", str(size), *args], cwd=ROOT, env=app_env(size), capture_output=True, text=True)
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
        "flags list": "/api/v1/flags/", "webhooks list": "/api/v1/webhooks/", "changes list": "/api/v1/changes/",
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


from bench_data import load  # noqa: E402 - the dataset, by COPY
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


# --- the API lists and the writes --------------------------------------------------------


def api_client_token(size, name):
    out = subprocess.run(
        [sys.executable, "manage.py", "create_api_client", "--party", "B0", "--name", f"{name} {time.time()}"],
        cwd=ROOT, env=app_env(size), capture_output=True, text=True, check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def list_targets(size):
    """(negotiation, group) the lists under one hang off: the latest negotiation visible to
    all partners with a done handover (status changes, events, handovers), a group it covers."""
    import psycopg

    with psycopg.connect(db_url(size)) as connection:
        negotiation = connection.execute(
            "SELECT id FROM exchanges_negotiation n WHERE visibility = 'all_partners' AND EXISTS "
            "(SELECT 1 FROM exchanges_handover h WHERE h.negotiation_id = n.id AND h.state = 'done') "
            "AND EXISTS (SELECT 1 FROM exchanges_event e WHERE e.negotiation_id = n.id) "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()[0]
        group = connection.execute(
            "SELECT group_id FROM exchanges_coveredgroup WHERE negotiation_id = %s ORDER BY id LIMIT 1", [negotiation]
        ).fetchone()[0]
    return negotiation, group


def api_lists(size, token):
    """Every API list at page_size=50 as an API client, with wrk; the negotiation list first."""
    negotiation, group = list_targets(size)
    base = f"http://127.0.0.1:{APP_PORT}/api/v1/"
    urls = {
        "negotiations": "negotiations/",
        "parties": "parties/",
        "detainee-groups": "detainee-groups/",
        "figures": f"detainee-groups/{group}/figures/",
        "flags": "flags/",
        "status-changes": f"negotiations/{negotiation}/status-changes/",
        "events": f"negotiations/{negotiation}/events/",
        "handovers": f"negotiations/{negotiation}/handovers/",
        "changes": "changes/",
    }
    return {name: wrk(f"{base}{path}?page_size=50", token) for name, path in urls.items()}


def list_counts(size):
    """Rows behind the lists (an empty flags list measures nothing)."""
    import psycopg

    with psycopg.connect(db_url(size)) as connection:
        return {
            name: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for name, table in (("flags", "tracker_flag"), ("groups", "exchanges_detaineegroup"), ("changes", "exchanges_change"))
        }


#: Negotiations written to, each in_talks or suspended with the client's party B0 taking
#: part (its status changes go back and forth between the two).
WRITE_NEGOTIATIONS = 64
WRITE_KINDS = ("status-changes", "events")
RESTORED = "status, updated_at, last_activity_at, activity_count, usual_gap, agreed_at"


def write_targets(connection):
    """{negotiation id: status}."""
    rows = connection.execute(
        "SELECT n.id, n.status FROM exchanges_negotiation n JOIN exchanges_participant p ON p.negotiation_id = n.id "
        "JOIN exchanges_party party ON party.id = p.party_id AND party.short_name = 'B0' "
        "WHERE n.status IN ('in_talks', 'suspended') AND n.visibility <> 'staff_only' AND p.role <> 'observer' AND NOT n.stalled "
        "AND NOT EXISTS (SELECT 1 FROM tracker_flag f WHERE f.negotiation_id = n.id AND f.resolved_at IS NULL) "
        "ORDER BY n.id LIMIT %s",
        [WRITE_NEGOTIATIONS],
    ).fetchall()
    return {str(negotiation): status for negotiation, status in rows}


def write_statements(size, negotiation_id):
    """Statements of each write as an API client (the negotiation moved in_talks -> suspended ->
    in_talks, one event): from the write's BEGIN to its COMMIT, and the whole request."""
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from exchanges import services
    from exchanges.models import Party

    _client, token = services.api_client_create(name="bench writes", party=Party.objects.get(short_name="B0"))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", SERVER_NAME="localhost")
    url = f"/api/v1/negotiations/{negotiation_id}/"
    client.get(url)  # the client's first read of it is logged once, before
    bodies = {
        "status change": [("status-changes/", {"to_status": "suspended"}), ("status-changes/", {"to_status": "in_talks"})],
        "event": [("events/", {"kind": "meeting", "occurred_at": NOW.isoformat(), "summary": "bench"})],
    }
    counts = {}
    for name, writes in bodies.items():
        for path, body in writes:
            with CaptureQueriesContext(connection) as queries:
                response = client.post(url + path, body, content_type="application/json")
            assert response.status_code == 201, (path, response.status_code, response.content[:300])
            sql = [query["sql"] for query in queries.captured_queries]
            begin = sql.index("BEGIN")
            in_transaction = sql.index("COMMIT", begin) + 1 - begin
            savepoints = sum(1 for statement in sql if statement.startswith("SAVEPOINT"))
            seen = counts.get(name, {"transaction": 0, "request": 0, "savepoints": 0})
            counts[name] = {
                "transaction": max(seen["transaction"], in_transaction),
                "request": max(seen["request"], len(sql)),
                "savepoints": max(seen["savepoints"], savepoints),
            }
    print(json.dumps({"counts": counts, "client": str(_client.pk)}))


def api_writes(size):
    """Status changes and events per second through gunicorn, each beside the floor's bare
    INSERT and COMMIT of the same row; statements per write. Writes to WRITE_NEGOTIATIONS
    negotiations of the dataset and takes them out again (`undo_writes`)."""
    import psycopg
    from bench_floor import FLOOR_WRITE_TABLES

    with psycopg.connect(db_url(size), autocommit=True) as connection:
        statuses = write_targets(connection)
        ids = list(statuses)
        if len(ids) < 16 or "in_talks" not in statuses.values():
            return {"skipped": f"only {len(ids)} negotiations to write to"}
        saved = connection.execute(f"SELECT id, {RESTORED} FROM exchanges_negotiation WHERE id = ANY(%s::uuid[])", [ids]).fetchall()
        last_change = connection.execute("SELECT coalesce(max(id), 0) FROM exchanges_change").fetchone()[0]
        for copy, table in FLOOR_WRITE_TABLES:
            connection.execute(f"DROP TABLE IF EXISTS {copy}")
            connection.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
        connection.execute("CREATE SEQUENCE IF NOT EXISTS bench_floor_sequence")
    clients = []
    results = {}
    try:
        statements = in_django(size, "write-statements", next(pk for pk, status in statuses.items() if status == "in_talks"))
        clients.append(statements["client"])
        results["statements"] = statements["counts"]
        token = api_client_token(size, "bench writes")
        with psycopg.connect(db_url(size)) as connection:
            clients.append(str(connection.execute("SELECT id FROM exchanges_apiclient ORDER BY created_at DESC LIMIT 1").fetchone()[0]))
        app, floor = serve(size)
        try:
            lua = Path(os.environ.get("BENCH_LUA", ROOT / "scripts" / "bench_writes.lua"))
            occurred_at = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for kind in WRITE_KINDS:
                targets = ",".join(f"{pk}={status}" for pk, status in statuses.items())
                common = {"BENCH_WRITE_KIND": kind, "BENCH_WRITE_IDS": targets, "BENCH_OCCURRED_AT": occurred_at}
                # No warm-up round: a status change's round trip must start from in_talks.
                results[kind] = wrk(
                    f"http://127.0.0.1:{APP_PORT}/", script=lua, warm_up=False,
                    env={**common, "BENCH_TOKEN": token, "BENCH_WRITE_PREFIX": "/api/v1/negotiations/"},
                )
                results[f"floor {kind}"] = wrk(
                    f"http://127.0.0.1:{FLOOR_PORT}/", script=lua, warm_up=False,
                    env={**common, "BENCH_WRITE_PREFIX": "/floor/negotiations/"},
                )
        finally:
            for process in (app, floor):
                process.terminate()
                process.wait(timeout=30)
    finally:
        undo_writes(size, ids, saved, last_change, clients)
    return results


def undo_writes(size, ids, saved, last_change, clients):
    """Take the benchmark's writes out again: its status changes and events (written by its
    clients), their rows in the change log, the floor's tables; and put the negotiations'
    status and activity back. The audit entries stay (the trail is append-only)."""
    import psycopg
    from bench_floor import FLOOR_WRITE_TABLES

    with psycopg.connect(db_url(size)) as connection:
        for table in ("exchanges_statuschange", "exchanges_event"):
            if table == "exchanges_event":
                connection.execute(
                    "DELETE FROM exchanges_event_parties WHERE event_id IN "
                    "(SELECT id FROM exchanges_event WHERE recorded_by_client_id = ANY(%s::uuid[]))", [clients],
                )
            connection.execute(f"DELETE FROM {table} WHERE recorded_by_client_id = ANY(%s::uuid[])", [clients])
        connection.execute("DELETE FROM exchanges_change WHERE id > %s AND negotiation_id = ANY(%s::uuid[])", [last_change, ids])
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE exchanges_negotiation SET status = %s, updated_at = %s, last_activity_at = %s, activity_count = %s, "
                "usual_gap = %s, agreed_at = %s WHERE id = %s",
                [(*row[1:], row[0]) for row in saved],
            )
        for copy, _table in FLOOR_WRITE_TABLES:
            connection.execute(f"DROP TABLE IF EXISTS {copy}")
        connection.execute("DROP SEQUENCE IF EXISTS bench_floor_sequence")


# --- the admin pages and the export ------------------------------------------------------

#: Runs of each admin page (the median is the growth table's figure).
ADMIN_RUNS = int(os.environ.get("BENCH_ADMIN_RUNS", "5"))


def vacuum(size):
    """VACUUM ANALYZE, then a CHECKPOINT: the pages the vacuum dirtied are written out now,
    not by a checkpoint landing in the middle of the next measurement."""
    import psycopg

    with psycopg.connect(db_url(size), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")


def json_line(command, size):
    """Run a script against the size's database; returns the json of its last `json: ` line."""
    result = subprocess.run([sys.executable, *command, "--json"], cwd=ROOT, env=app_env(size), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stdout[-2000:] + result.stderr[-3000:])
    return json.loads([line for line in result.stdout.splitlines() if line.startswith("json: ")][-1][len("json: "):])


def admin_pages(size):
    """Every page of `scripts/bench_admin_lists.py` (the admin's lists, filters, searches,
    the negotiation and group pages, the dashboard) as a superuser, rolled back: ms and queries."""
    return json_line(["scripts/bench_admin_lists.py", "--runs", str(ADMIN_RUNS)], size)


def export_all(size):
    """The CSV export of every negotiation, run as the worker runs it (`scripts/bench_export.py`)."""
    return json_line(["scripts/bench_export.py", "--list", "exchanges.negotiation"], size)


def report_admin_and_export(all_results):
    lines = []
    if any(results.get("admin") for results in all_results.values()):
        sizes = [size for size, results in all_results.items() if results.get("admin")]
        lines += ["", f"## Admin pages (superuser, {ADMIN_RUNS} runs each, rolled back): median ms (fastest-slowest) and queries", ""]
        lines.append("| page | " + " | ".join(f"{size:,}" for size in sizes) + " |")
        lines.append("|---|" + "---:|" * len(sizes))
        labels = list(dict.fromkeys(label for size in sizes for label in all_results[size]["admin"]))
        for label in labels:
            cells = []
            for size in sizes:
                page = all_results[size]["admin"].get(label)
                cells.append(f"{page['median']:.0f} ({page['fastest']:.0f}-{page['slowest']:.0f}), {page['queries']} q" if page else "")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if any(results.get("export") for results in all_results.values()):
        lines += ["", "## CSV export of every negotiation (a worker's job, rows built in SQL)", ""]
        lines.append("| size | rows | of expected | seconds | first row s | rows/s | MB | peak RSS MiB |")
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size, results in all_results.items():
            export = results.get("export")
            if export:
                first = f"{export['first_row_s']:.1f}" if export.get("first_row_s") is not None else ""
                lines.append(
                    f"| {size:,} | {export['rows']:,} | {export['expected']:,} | {export['seconds']:.1f} | {first} | "
                    f"{export['rows'] / export['seconds']:,.0f} | {export['bytes'] / 1e6:,.1f} | {export['peak_mib']:.0f} |"
                )
    print("\n".join(lines))


def dataset_ready(size):
    """Whether the size's dataset is built at this DATA_VERSION (used as it is: not migrated)."""
    import psycopg

    try:
        with psycopg.connect(db_url(size)) as connection:
            row = connection.execute("SELECT version FROM bench_meta").fetchone()
    except psycopg.Error:
        return False
    return bool(row) and row[0] == schema_version()


def measure_lists(size):
    token = api_client_token(size, "bench lists")
    app, floor = serve(size)
    try:
        return {"lists": api_lists(size, token), "list rows": list_counts(size), "queries": in_django(size, "queries")}
    finally:
        for process in (app, floor):
            process.terminate()
            process.wait(timeout=30)


def report_lists_and_writes(all_results):
    lines = []
    if any(results.get("lists") for results in all_results.values()):
        lines += ["", "## API lists (page_size=50, API client of B0), beside the negotiation list", ""]
        lines.append("| size | list | req/s | p50 ms | p99 ms | vs negotiations | queries | non-2xx |")
        lines.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    query_names = {"negotiations": "negotiations list", "parties": "parties list", "detainee-groups": "groups list", "figures": "figures list",
                   "flags": "flags list", "status-changes": "status changes list", "events": "events list",
                   "handovers": "handovers list", "changes": "changes list"}  # fmt: skip
    for size, results in all_results.items():
        lists = results.get("lists")
        if not lists:
            continue
        reference = lists["negotiations"]["rps"]
        for name, figures in lists.items():
            queries = results.get("queries", {}).get(query_names[name], "")
            lines.append(
                f"| {size:,} | {name} | {figures['rps']:.0f} | {figures['p50']:.1f} | {figures['p99']:.1f} | "
                f"{figures['rps'] / reference:.2f}x | {queries} | {figures['errors']} |"
            )
        if results.get("list rows"):
            lines.append(f"| {size:,} | rows behind them | " + ", ".join(f"{name} {count:,}" for name, count in results["list rows"].items()) + " | | | | | |")
    if any(results.get("writes") for results in all_results.values()):
        lines += ["", f"## Writes through the API (wrk -t2 -c8, up to {WRITE_NEGOTIATIONS} negotiations), beside a bare INSERT + COMMIT", ""]
        lines.append("| size | write | writes/s | p50 ms | p99 ms | floor/s | vs floor | statements (transaction / request) | non-2xx |")
        lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for size, results in all_results.items():
        writes = results.get("writes")
        if not writes or "skipped" in writes:
            if writes:
                lines.append(f"| {size:,} | skipped: {writes['skipped']} | | | | | | | |")
            continue
        for kind, label in (("status-changes", "status change"), ("events", "event")):
            app, floor, count = writes[kind], writes[f"floor {kind}"], writes["statements"][label]
            lines.append(
                f"| {size:,} | {label} | {app['rps']:.0f} | {app['p50']:.1f} | {app['p99']:.1f} | {floor['rps']:.0f} | "
                f"{app['rps'] / floor['rps']:.3f}x | {count['transaction']} / {count['request']} | {app['errors']} |"
            )
    print("\n".join(lines))


def growth_table(all_results):
    """Every row measured at the smallest and the largest size: p50 latency growth (the goal:
    within 1.5x), and the queries or statements it takes at each."""
    sizes = list(all_results)
    if len(sizes) < 2:
        return
    small, large = all_results[sizes[0]], all_results[sizes[-1]]
    lines = ["", f"## Growth {sizes[0]:,} -> {sizes[-1]:,} (p50 latency; goal within 1.5x)", ""]
    lines.append("| row | p50 ms small | p50 ms large | growth | queries small / large | within 1.5x |")
    lines.append("|---|---:|---:|---:|---:|:---:|")

    def row(name, a, b, queries=""):
        growth = b["p50"] / a["p50"] if a["p50"] else float("inf")
        lines.append(f"| {name} | {a['p50']:.1f} | {b['p50']:.1f} | {growth:.2f}x | {queries} | {'yes' if growth <= 1.5 else 'no'} |")

    for name in ("list", "detail", "sync (updated_since)", "stalled=true"):
        if name in small.get("http", {}) and name in large.get("http", {}):
            row(f"negotiations {name}", small["http"][name], large["http"][name])
    for name in small.get("lists", {}):
        if name in large.get("lists", {}):
            key = {"detainee-groups": "groups list", "status-changes": "status changes list"}.get(name, f"{name} list")
            queries = f"{small.get('queries', {}).get(key, '')} / {large.get('queries', {}).get(key, '')}"
            row(f"API {name} list", small["lists"][name], large["lists"][name], queries)
    for kind, label in (("status-changes", "status change"), ("events", "event")):
        a, b = small.get("writes", {}), large.get("writes", {})
        if kind in a and kind in b:
            counts = f"{a['statements'][label]['transaction']} / {b['statements'][label]['transaction']} (transaction)"
            row(f"API write: {label}", a[kind], b[kind], counts)
    for label, page in small.get("admin", {}).items():
        if label in large.get("admin", {}):
            other = large["admin"][label]
            row(f"admin: {label}", {"p50": page["median"]}, {"p50": other["median"]}, f"{page['queries']} / {other['queries']}")
    if small.get("export") and large.get("export"):
        # An export grows with its rows: its figure is the time per 1,000 rows.
        per_k = [{"p50": export["seconds"] * 1000 / max(export["rows"], 1) * 1000} for export in (small["export"], large["export"])]
        complete = all(export["rows"] == export["expected"] for export in (small["export"], large["export"]))
        row(f"export every negotiation (ms per 1,000 rows; {'complete' if complete else 'INCOMPLETE'})", *per_k)
    if "scan" in small and "scan" in large:
        lines.append(f"| scan time | | | {large['scan']['first_s'] / small['scan']['first_s']:.2f}x | | |")
    print("\n".join(lines))


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
    # Before the scans: the negotiations written to must have no open flag (a write would
    # resolve it), so the flags an earlier run's scan left are cleared first; the writes
    # are taken out again, and the scans start from a reset anyway.
    with psycopg.connect(db_url(size), autocommit=True) as connection, connection.cursor() as cursor:
        reset_flags(cursor)
        cursor.execute("CHECKPOINT")
    results["writes"] = api_writes(size)
    results["floor scan"] = floor_scan(size)
    results["scan"] = in_django(size, "scan")
    # The scans leave dead row versions that autovacuum would clear in a deployment, and
    # would otherwise clear during the measurements below, on the same two cores: the lists
    # and the staff pages are measured on the tables as they stand after it, with the flags.
    vacuum(size)
    app, floor = serve(size)
    try:
        results["http"]["stalled=true"] = wrk(f"http://127.0.0.1:{APP_PORT}/api/v1/negotiations/?page_size=50&stalled=true", token)
        # After the scan, so that the flags list has the flags a first scan raises.
        results["lists"] = api_lists(size, token)
        results["list rows"] = list_counts(size)
    finally:
        for process in (app, floor):
            process.terminate()
            process.wait(timeout=30)
    results["admin"] = admin_pages(size)
    results["export"] = export_all(size)
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
    if len(sys.argv) >= 3 and sys.argv[1] in ("--queries", "--scan", "--write-statements"):
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
        if sys.argv[1] == "--write-statements":
            write_statements(int(sys.argv[2]), sys.argv[3])
        else:
            (django_queries if sys.argv[1] == "--queries" else django_scan)(int(sys.argv[2]))
        return
    if len(sys.argv) == 3 and sys.argv[1] in ("--lists", "--writes", "--admin"):
        # One part alone, against a dataset built already (no migration, no reset, no scan).
        size = int(sys.argv[2])
        if not dataset_ready(size):
            ensure_dataset(size)
        if sys.argv[1] == "--admin":
            results = {size: {"admin": admin_pages(size), "export": export_all(size)}}
        else:
            results = {size: measure_lists(size) if sys.argv[1] == "--lists" else {"writes": api_writes(size)}}
        print("raw: " + json.dumps({str(size): figures for size, figures in results.items()}))
        report_lists_and_writes(results)
        report_admin_and_export(results)
        return
    results = {}
    for size in SIZES:
        results[size] = measure(size)
    print(f"\nmachine: {os.cpu_count()} cores; {SECONDS}s per HTTP measurement; {NOW.isoformat()}")
    print("raw: " + json.dumps({str(size): figures for size, figures in results.items()}))
    report(results)
    report_lists_and_writes(results)
    report_admin_and_export(results)
    growth_table(results)


if __name__ == "__main__":
    main()
