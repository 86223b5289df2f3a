"""`make bench`'s API part: every API list beside the negotiation list, and status changes
and events written through the API beside a bare INSERT and COMMIT, with their statements."""
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from bench_common import APP_PORT, FLOOR_PORT, NOW, ROOT, app_env, db_url, in_django, serve, wrk

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


