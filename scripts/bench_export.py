"""Times a CSV export job of an admin list on a big dataset, as a worker runs it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_bench_1000000 \\
        DJANGO_SETTINGS_MODULE=config.settings.base \\
        .venv/bin/python scripts/bench_export.py [--list exchanges.negotiation] [--query "status__exact=in_talks"]

Migrate first (`manage.py migrate exchanges 0019_export_jobs` adds only the jobs' table).
The export runs exactly as the `exchanges.export_csv` task does (`exports.run_export`,
autocommit, the rows read through a server-side cursor) for a temporary superuser, into a
temporary directory. The access-log entries of the staff-only negotiations the file
includes are written and timed inside a transaction that is rolled back, and the login,
its job and the file are deleted at the end: the dataset is left as it was.

Prints (`--json`: also as one json line, which `make bench` reads) the rows, seconds (and when the first row was written: the database preparing
the rows), rows per second, the file's size and the process's peak memory (RSS).
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ["TRACKER_KICK_ON_COMMIT"] = "false"
_var = tempfile.TemporaryDirectory(prefix="bench-export-")
os.environ["TRACKER_VAR_DIR"] = _var.name

import django  # noqa: E402

django.setup()

from django.apps import apps  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402

from exchanges import exports, spreadsheets  # noqa: E402
from exchanges.models import AccessLogEntry, ExportJob  # noqa: E402


class Rollback(Exception):
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", default="exchanges.negotiation", help="app_label.model_name of the admin list")
    parser.add_argument("--query", default="", help="the list's query string (filters, search, sort)")
    parser.add_argument("--language", default="en")
    parser.add_argument("--json", action="store_true", help="end with one line: json of the figures (for make bench)")
    args = parser.parse_args()

    user = get_user_model().objects.create_user(username=f"bench-export-{os.getpid()}", is_staff=True, is_superuser=True)
    staff_only = set()
    first_row = []
    real_log, real_cells = exports._log_staff_only, spreadsheets._Columns.cells

    def keep_staff_only(user, negotiation_ids, batch=2000):
        staff_only.update(negotiation_ids)

    def noted_cells(columns, values):
        if not first_row:
            first_row.append(time.perf_counter())
        return real_cells(columns, values)

    exports._log_staff_only, spreadsheets._Columns.cells = keep_staff_only, noted_cells
    try:
        job = ExportJob.objects.create(
            user=user, list_name=args.list, query_string=args.query, language=args.language, file_name="bench.csv"
        )
        started = time.perf_counter()
        result = exports.run_export(job.pk)
        seconds = time.perf_counter() - started
        job.refresh_from_db()
        if result.get("state") != "done":
            print(f"export {result}: {job.error}")
            return 1
        size = job.path.stat().st_size
        first = first_row[0] - started if first_row else None

        with transaction.atomic():
            log_started = time.perf_counter()
            real_log(user, staff_only)
            log_seconds = time.perf_counter() - log_started
            logged = AccessLogEntry.objects.filter(user_id=user.pk).count()
            transaction.set_rollback(True)

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"list              {args.list}?{args.query}")
        print(f"rows              {result['rows']:,} (expected {job.rows_expected:,})")
        print(f"seconds           {seconds:.1f}" + (f" (first row read at {first:.1f} s)" if first is not None else ""))
        print(f"rows/s            {result['rows'] / seconds:,.0f}")
        print(f"file size         {size / 1e6:,.1f} MB")
        print(f"peak RSS          {peak_mb:,.0f} MB")
        print(f"access log        {logged:,} entries in {log_seconds:.1f} s (rolled back)")
        # The job's `rows_expected` is the planner's estimate for a whole big table (its
        # progress bar): the file is complete when it holds every row the list counts.
        from django.contrib import admin

        request = exports.request_as(user, args.list, args.query)
        model_admin = admin.site._registry[apps.get_model(args.list)]
        counted = model_admin.get_changelist_instance(request).queryset.order_by().count()
        print(f"rows in the list  {counted:,}" + (" (the file has them all)" if counted == result["rows"] else " (THE FILE IS SHORT)"))
        if args.json:
            figures = {"rows": result["rows"], "expected": counted, "estimated": job.rows_expected, "seconds": seconds, "first_row_s": first, "bytes": size, "peak_mib": peak_mb}
            print("json: " + json.dumps(figures))
        return 0
    finally:
        exports._log_staff_only, spreadsheets._Columns.cells = real_log, real_cells
        for file in Path(_var.name, "exports").glob("*"):
            file.unlink()
        user.delete()  # and its job


if __name__ == "__main__":
    sys.exit(main())
