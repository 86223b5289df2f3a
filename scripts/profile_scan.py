"""Where a first stall scan's time goes, statement by statement, on a bench dataset.

    cd scripts && ../.venv/bin/python profile_scan.py 1000000

Resets the dataset's flags as `bench.py` does (a first deployment's full scan), runs
`scan_stalls()` with a timer around every SQL statement, and prints the statements by
time (what runs after commit, the change feed's numbering, included). The dataset must
exist already (`make bench`, or `bench.ensure_dataset(size)`).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench  # noqa: E402


def main(size):
    os.environ.update(bench.app_env(size))
    import django

    django.setup()
    from django.db import connection

    from tracker.services import scan_stalls

    timings = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((time.perf_counter() - started, " ".join(sql.split())))

    with connection.cursor() as cursor:
        bench.reset_flags(cursor)
    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        summary = scan_stalls()
    total = time.perf_counter() - started
    print(f"first scan {total:.2f} s, {len(timings)} statements, {sum(t for t, _ in timings):.2f} s of SQL; {summary}")
    for seconds, sql in sorted(timings, reverse=True)[:25]:
        print(f"{seconds:7.2f}  {sql[:220]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
