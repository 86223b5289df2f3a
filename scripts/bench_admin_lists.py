"""Times the admin's changelists (and the two pages with an N+1 history) on a big dataset.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_bench_1000000 \
        .venv/bin/python scripts/bench_admin_lists.py [--runs 3]

Each page is asked of the ModelAdmin's view directly (RequestFactory, as an unsaved
superuser: no session, no login row), inside a transaction that is rolled back, so the
dataset is left exactly as it was (a page that writes the access log writes nothing
here). Prints one row per page: the fastest and the slowest of the runs, and the number
of queries of the last.
"""
import argparse
import os
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


def superuser():
    return get_user_model()(username="bench", is_staff=True, is_superuser=True, is_active=True)


def ask(view, path, query, user):
    """One page, rendered, its writes rolled back: (seconds, queries, status)."""
    request = RequestFactory().get(path, query)
    request.user = user
    request._messages = CookieStorage(request)
    request.session = {}
    result = {}
    try:
        with transaction.atomic():
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
    return rows


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="measure only pages whose label contains this")
    args = parser.parse_args()
    user = superuser()
    old = predates_the_hash_chain()
    print(f"database: {connection.settings_dict['NAME']}, {args.runs} runs each" + (" (before exchanges 0017: logs read without seq/hash)" if old else ""))
    print(f"{'page':<34} {'fastest ms':>10} {'slowest ms':>10} {'queries':>8} {'status':>6}")
    for label, model, kind, arg in pages():
        if args.only and args.only not in label:
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
        times = [run["seconds"] * 1000 for run in runs]
        print(f"{label:<34} {min(times):>10.1f} {max(times):>10.1f} {runs[-1]['queries']:>8} {runs[-1]['status']:>6}")


if __name__ == "__main__":
    main()
