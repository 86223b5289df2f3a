"""`make bench`'s staff part: every admin page of `scripts/bench_admin_lists.py` and the CSV
export of every negotiation (`scripts/bench_export.py`), each run against a size's database."""
import json
import os
import statistics
import subprocess
import sys

from bench_common import ROOT, app_env, db_url

#: Runs of each admin page (the median is the growth table's figure).
ADMIN_RUNS = int(os.environ.get("BENCH_ADMIN_RUNS", "5"))
#: Rounds of `make bench`'s admin pages, each measuring every size once (alternating sizes).
ADMIN_ROUNDS = int(os.environ.get("BENCH_ADMIN_ROUNDS", "3"))


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


def admin_pages_alternating(sizes):
    """`admin_pages` of every size, once per round for ADMIN_ROUNDS rounds, sizes in
    alternation; per page, the median of the rounds' medians (fastest and slowest of all).

    The pages are mostly Python (their SQL takes a few ms at every size), so they follow
    this machine's speed, which drifts over the minutes between one size's phase and the
    next: the same pages at 10k measured 20-33 ms within ten minutes, and a run that
    measured each size once, ten minutes apart, showed "growth" of up to 2x that measuring
    both sizes again minutes later did not (BENCHMARKS.md, session 13). Alternating puts
    both sizes in every stretch of the machine's speed."""
    rounds = {size: [] for size in sizes}
    for _round in range(ADMIN_ROUNDS):
        for size in sizes:
            rounds[size].append(admin_pages(size))
    pooled = {}
    for size, measured in rounds.items():
        pooled[size] = {}
        for page in measured[0]:
            figures = [each[page] for each in measured if page in each]
            pooled[size][page] = {
                **figures[-1],
                "fastest": min(figure["fastest"] for figure in figures),
                "median": statistics.median(figure["median"] for figure in figures),
                "slowest": max(figure["slowest"] for figure in figures),
                "rounds": [figure["median"] for figure in figures],
            }
    return pooled


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


