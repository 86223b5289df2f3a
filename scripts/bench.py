#!/usr/bin/env python
"""`make bench`: the tracker beside its floor at 10k, 100k and 1M negotiations.

For each size it builds (or reuses) a PostgreSQL database filled by COPY, serves the
tracker and a bare WSGI floor through gunicorn, drives both with wrk on loopback, counts
queries per request, and times the stall scan beside the bare SQL that does the same
flagging; then every API list beside the negotiation list, and status changes and events
written through the API beside a bare INSERT and COMMIT, with the statements each write
takes; the CSV export of every negotiation as a worker runs it; then, every size in
alternation (the machine's speed drifts between one size's phase and the next), every
admin page of `scripts/bench_admin_lists.py` (lists, filters, searches, the negotiation and
group pages, the dashboard), BENCH_ADMIN_ROUNDS rounds (default 3), and the negotiations
list, detail and sync and the writes, BENCH_HTTP_ROUNDS rounds (default 2), medians of the
rounds; last, a table of growth from the smallest size to the largest. Environment:
BENCH_SIZES (default 10000,1000000; 100000 may be added), BENCH_SECONDS per measurement
(default 10), BENCH_DATABASE_URL (default DATABASE_URL or the local server).

Parts alone, against a dataset already built (not migrated, nothing reset):
`scripts/bench.py --lists SIZE`, `--writes SIZE` (the writes go to 64 negotiations
and are removed afterwards, the negotiations restored; their audit entries stay) and
`--admin SIZE` (the admin pages and the export; nothing is left written).

The parts live beside it: `bench_common.py` (datasets' addresses, gunicorn, wrk, running
a part inside Django), `bench_api.py` (the API lists and writes), `bench_staff.py` (the
admin pages and the export); `bench_data.py` loads a dataset, `bench_floor*.py` are floors.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import timedelta

from bench_common import APP_PORT, FLOOR_PORT, NOW, ROOT, SECONDS, SIZES, admin_url, app_env, db_url, in_django, schema_version, serve, wrk


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
from bench_api import api_lists, api_writes, list_counts, measure_lists, report_lists_and_writes, write_statements  # noqa: E402
from bench_staff import admin_pages, admin_pages_alternating, export_all, report_admin_and_export, vacuum  # noqa: E402


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


def dataset_ready(size):
    """Whether the size's dataset is built at this DATA_VERSION (used as it is: not migrated)."""
    import psycopg

    try:
        with psycopg.connect(db_url(size)) as connection:
            row = connection.execute("SELECT version FROM bench_meta").fetchone()
    except psycopg.Error:
        return False
    return bool(row) and row[0] == schema_version()



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
    token = api_token(size)
    # The scans start from a clean slate: the flags an earlier run's scan left are cleared.
    reset(size)
    results["http"] = {}
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
    results["export"] = export_all(size)
    return results


def api_token(size):
    return subprocess.run([sys.executable, "manage.py", "create_api_client", "--party", "B0", "--name", f"bench {time.time()}"], cwd=ROOT, env=app_env(size), capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]


def reset(size):
    import psycopg

    with psycopg.connect(db_url(size), autocommit=True) as connection, connection.cursor() as cursor:
        reset_flags(cursor)
        cursor.execute("CHECKPOINT")


def http_reads(size, token):
    """The negotiations list, detail and sync through gunicorn, each beside its floor."""
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
        return {
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


#: Rounds of the API reads and writes, each measuring every size once (alternating sizes).
HTTP_ROUNDS = int(os.environ.get("BENCH_HTTP_ROUNDS", "2"))


def _pooled(measured):
    """One wrk figure from several rounds': the median of each, the errors summed."""
    return {
        "rps": statistics.median(each["rps"] for each in measured),
        "p50": statistics.median(each["p50"] for each in measured),
        "p99": statistics.median(each["p99"] for each in measured),
        "errors": sum(each["errors"] for each in measured),
        "rounds": [each["p50"] for each in measured],
    }


def reads_and_writes_alternating(sizes):
    """The API's list, detail and sync reads and its writes at every size, once per round
    for HTTP_ROUNDS rounds, sizes in alternation (see bench_staff.admin_pages_alternating:
    the machine's speed drifts between one size's phase and the next). Each round starts
    from the dataset without flags (`reset`), as the writes need: a flagged negotiation's
    write would resolve its flag. Run after the scans and the admin pages."""
    tokens = {size: api_token(size) for size in sizes}
    rounds = {size: {"http": [], "writes": []} for size in sizes}
    for _round in range(HTTP_ROUNDS):
        for size in sizes:
            reset(size)
            rounds[size]["http"].append(http_reads(size, tokens[size]))
            rounds[size]["writes"].append(api_writes(size))
    pooled = {}
    for size, measured in rounds.items():
        http = {name: _pooled([each[name] for each in measured["http"]]) for name in measured["http"][0]}
        done = [each for each in measured["writes"] if "skipped" not in each]
        writes = measured["writes"][-1]
        if done:
            writes = {**done[-1], **{name: _pooled([each[name] for each in done]) for name in done[-1] if name != "statements"}}
        pooled[size] = {"http": http, "writes": writes}
    return pooled


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
    # Last, every size's admin pages in alternation (bench_staff.admin_pages_alternating).
    print("\n== admin pages, sizes in alternation ==", flush=True)
    for size, pages in admin_pages_alternating(SIZES).items():
        results[size]["admin"] = pages
    print("\n== API reads and writes, sizes in alternation ==", flush=True)
    for size, figures in reads_and_writes_alternating(SIZES).items():
        results[size]["http"].update(figures["http"])
        results[size]["writes"] = figures["writes"]
    print(f"\nmachine: {os.cpu_count()} cores; {SECONDS}s per HTTP measurement; {NOW.isoformat()}")
    print("raw: " + json.dumps({str(size): figures for size, figures in results.items()}))
    report(results)
    report_lists_and_writes(results)
    report_admin_and_export(results)
    growth_table(results)


if __name__ == "__main__":
    main()
