"""Times the admin's changelists (and the two pages with an N+1 history) on a big dataset.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_bench_1000000 \
        .venv/bin/python scripts/bench_admin_lists.py [--runs 3]

Each page is asked of the ModelAdmin's view directly (RequestFactory, as a superuser
saved inside the transaction, no session), inside a transaction that is rolled back, so the
dataset is left exactly as it was (a page that writes the access log writes nothing
here). Prints one row per page: the fastest, the median and the slowest of the runs, and
the number of queries of the last (`--json`: all of it as one json line at the end, which
`make bench` reads).

The searches (`?q=`) take their terms from the dataset: an exact reference and id of a
negotiation with a history, a number in titles, a party's short name, a word found
nowhere, two characters, a negotiation's whole title; the audit trail by an entry's, a record's and a negotiation's id.
The dashboard (the admin's home page) is measured with its chart's cache cleared before
each run ("cold"), kept ("warm"), and kept but after a status change recorded now (what
staff do all day); clearing needs the in-process cache (no CACHE_URL), so a shared Redis
is never cleared.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")

import django  # noqa: E402

django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.messages.storage.cookie import CookieStorage  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from exchanges.models import AccessLogEntry, AuditEntry, DetaineeGroup, Event, Negotiation, ReportedFigure, StatusChange  # noqa: E402
from tracker.models import Flag  # noqa: E402


class Rollback(Exception):
    pass


def saved_superuser():
    """A superuser saved inside the page's rolled-back transaction (pages read the login's
    rows: its recent actions, its teams, its finished exports)."""
    return get_user_model().objects.create(username="bench", is_staff=True, is_superuser=True, is_active=True)


def ask(view, path, query, user, *, before=None):
    """One page, rendered, its writes rolled back: (seconds, queries, status). `user` may
    be a function making the login inside the transaction; `before` runs first, untimed."""
    request = RequestFactory().get(path, query)
    request._messages = CookieStorage(request)
    request.session = {}
    result = {}
    try:
        with transaction.atomic():
            request.user = user() if callable(user) else user
            if before is not None:
                before()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = view(request)
                if hasattr(response, "render"):
                    response.render()
                result["seconds"] = time.perf_counter() - started
            result["queries"] = len(captured)
            result["status"] = response.status_code
            raise Rollback
    except Rollback:
        pass
    return result


def pages():
    """(label, model, kind, query or object id) of every page measured."""
    busy = (
        StatusChange.objects.values("negotiation_id").order_by("negotiation_id").first() or {}
    ).get("negotiation_id")
    party = Negotiation.objects.none()
    from exchanges.models import Party

    party = Party.objects.order_by("name").values_list("pk", flat=True).first()
    group = ReportedFigure.objects.values_list("group_id", flat=True).first() or DetaineeGroup.objects.values_list("pk", flat=True).first()
    rows = [
        ("negotiations", Negotiation, "list", {}),
        ("negotiations ?status=in_talks", Negotiation, "list", {"status__exact": "in_talks"}),
        ("negotiations ?party=", Negotiation, "list", {"party": str(party)} if party else {}),
        ("negotiations ?q=NEG", Negotiation, "list", {"q": "zzz-no-such"}),
        ("status changes", StatusChange, "list", {}),
        ("events", Event, "list", {}),
        ("audit entries", AuditEntry, "list", {}),
        ("access log", AccessLogEntry, "list", {}),
        ("flags", Flag, "list", {}),
        ("flags ?open=yes", Flag, "list", {"open": "yes"}),
        ("figures", ReportedFigure, "list", {}),
        ("groups", DetaineeGroup, "list", {}),
    ]
    if busy:
        rows.append(("negotiation page", Negotiation, "change", busy))
    if group:
        rows.append(("group page", DetaineeGroup, "change", group))
    rows += search_pages(busy)
    rows += [
        ("dashboard, chart cache cold", None, "dashboard-cold", None),
        ("dashboard, chart cache warm", None, "dashboard-warm", None),
        ("dashboard, warm, after a status change", None, "dashboard-write", None),
    ]
    return rows


def search_pages(busy):
    """(label, model, "list", {"q": term}) of the searches measured (terms from the data)."""
    from exchanges.models import Party

    negotiation = Negotiation.objects.filter(pk=busy).values("pk", "reference").first() if busy else None
    party = Party.objects.order_by("name").values_list("short_name", flat=True).last()
    entry = AuditEntry.objects.order_by("-occurred_at", "-id").values("pk", "object_id", "negotiation_id").first()
    group_name = DetaineeGroup.objects.order_by("-created_at", "-id").values_list("name", flat=True).first() or "group 4321"
    # A recent negotiation's whole title, with the most digits of its size, so that the
    # phrase is in no other title: one negotiation and its status changes at every size
    # ("123456" found none at 10,000 and one, with 6 changes, at a million).
    titles = Negotiation.objects.filter(status_changes__isnull=False).order_by("-created_at", "-id").values_list("title", flat=True)[:50]
    title = max(titles, key=len, default="Bench negotiation 123456")
    rows = []
    if negotiation:
        reference, negotiation_id = negotiation["reference"], str(negotiation["pk"])
        rows += [
            ("negotiations ?q=<reference>", Negotiation, "list", {"q": reference}),
            ("negotiations ?q=<id>", Negotiation, "list", {"q": negotiation_id}),
            ("status changes ?q=<reference>", StatusChange, "list", {"q": reference}),
            ("status changes ?q=<negotiation id>", StatusChange, "list", {"q": negotiation_id}),
            ("events ?q=<reference>", Event, "list", {"q": reference}),
            ("flags ?q=<reference>", Flag, "list", {"q": reference}),
            ("access log ?q=<reference>", AccessLogEntry, "list", {"q": reference}),
        ]
    rows += [
        ("negotiations ?q=<a negotiation's title>", Negotiation, "list", {"q": f'"{title}"'}),
        ("negotiations ?q=<party short name>", Negotiation, "list", {"q": party or "B49"}),
        ("negotiations ?q=zq (2 chars, none)", Negotiation, "list", {"q": "zq"}),
        ("status changes ?q=<a negotiation's title>", StatusChange, "list", {"q": f'"{title}"'}),
        # The latest group's whole name: one group at every size ("group 4321" found none
        # of 1,000 groups and 20 of 100,000, so the pages compared rendered 0 and 20 rows).
        ("groups ?q=<a group's name>", DetaineeGroup, "list", {"q": f'"{group_name}"'}),
        ("figures ?q=<a group's name>", ReportedFigure, "list", {"q": f'"{group_name}"'}),
    ]
    if entry:
        rows += [
            ("audit entries ?q=<entry id>", AuditEntry, "list", {"q": str(entry["pk"])}),
            ("audit entries ?q=<object id>", AuditEntry, "list", {"q": entry["object_id"]}),
        ]
        if entry["negotiation_id"]:
            rows.append(("audit entries ?q=<negotiation id>", AuditEntry, "list", {"q": str(entry["negotiation_id"])}))
    rows.append(("audit entries ?q=zzz-no-such", AuditEntry, "list", {"q": "zzz-no-such"}))
    return rows


def change_a_status():
    """A status change recorded now (rolled back with the page): what staff do all day."""
    from exchanges import services
    from exchanges.choices import allowed_transitions

    negotiation = Negotiation.objects.filter(status="in_talks").order_by("-last_activity_at", "-id").first()
    services.negotiation_change_status(negotiation=negotiation, to_status=allowed_transitions(negotiation.status)[0], actor=None)


def clear_chart_cache():
    """Empty the in-process cache (the chart's cached months); refused for a shared one."""
    from django.conf import settings
    from django.core.cache import cache

    if not settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        raise SystemExit("the dashboard's cold case clears the cache: run without CACHE_URL (in-process cache)")
    cache.clear()


def predates_the_hash_chain():
    """Datasets built before exchanges 0017 lack the trail's `seq` and `hash` columns: read
    the logs without them, and write no access-log row (it would be rolled back anyway)."""
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(cursor, AuditEntry._meta.db_table)}
    if "seq" in columns:
        return False
    from exchanges import audit

    audit.log_staff_access = lambda *args, **kwargs: None
    for manager in {type(AuditEntry._default_manager), type(AccessLogEntry._default_manager)}:
        manager.get_queryset = (lambda original: lambda self: original(self).defer("seq", "hash"))(manager.get_queryset)
    return True


def skip_missing_export_jobs():
    """A dataset migrated before exchanges 0019 has no export jobs table: the lists' "your
    export finished" message (one query per list) is left out there."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    if "exchanges_exportjob" in tables:
        return False
    from exchanges import exports

    exports.notify_finished = lambda request: None
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="measure only pages whose label contains this")
    parser.add_argument("--json", action="store_true", help="end with one line: json of every page's figures (for make bench)")
    args = parser.parse_args()
    measured = {}
    user = saved_superuser  # made inside each page's transaction: pages read the login's rows
    old = predates_the_hash_chain()
    if skip_missing_export_jobs():
        print("(before exchanges 0019: no export jobs table, the lists' export message left out)")
    print(f"database: {connection.settings_dict['NAME']}, {args.runs} runs each" + (" (before exchanges 0017: logs read without seq/hash)" if old else ""))
    print(f"{'page':<38} {'fastest ms':>10} {'median ms':>10} {'slowest ms':>10} {'queries':>8} {'status':>6}")
    for label, model, kind, arg in pages():
        if args.only and args.only not in label:
            continue
        before = None
        if kind.startswith("dashboard"):
            view, path, query, who = admin.site.index, "/admin/", {}, saved_superuser
            before = {"dashboard-cold": clear_chart_cache, "dashboard-write": change_a_status}.get(kind)
            if kind != "dashboard-cold":
                ask(view, path, query, who)  # fill the cache once
            runs = [ask(view, path, query, who, before=before) for _ in range(args.runs)]
            measured[label] = report(label, runs)
            continue
        model_admin = admin.site._registry[model]
        opts = model._meta
        if kind == "list":
            view, path, query = model_admin.changelist_view, f"/admin/{opts.app_label}/{opts.model_name}/", arg
        else:

            def view(request, object_id=str(arg), model_admin=model_admin):
                return model_admin.change_view(request, object_id)

            path, query = f"/admin/{opts.app_label}/{opts.model_name}/{arg}/change/", {}
        runs = [ask(view, path, query, user) for _ in range(args.runs)]
        measured[label] = report(label, runs)
    if args.json:
        print("json: " + json.dumps(measured))


def report(label, runs):
    """Print a page's row; its figures: fastest, median and slowest ms, queries, status."""
    times = sorted(run["seconds"] * 1000 for run in runs)
    figures = {"fastest": times[0], "median": statistics.median(times), "slowest": times[-1], "queries": runs[-1]["queries"], "status": runs[-1]["status"]}
    print(f"{label:<38} {figures['fastest']:>10.1f} {figures['median']:>10.1f} {figures['slowest']:>10.1f} {figures['queries']:>8} {figures['status']:>6}", flush=True)
    return figures


if __name__ == "__main__":
    main()
