"""The jobs that write the admin's CSV exports (the cells and columns are
`exchanges.spreadsheets`).

A list of a million rows takes minutes to write, far past a web request's timeout (a
cut file that looks complete is worse than none), so "Export CSV" queues an `ExportJob`:
a worker rebuilds the list as the login who asked (the admin's changelist, from the
stored query string: the policy and the filters apply exactly as on screen), writes the
rows, counting them as it goes, under a temporary name, and renames the file only when it
is complete. The owner downloads it from the exports page. A small list (up to
`csv_inline_rows`) is written the same way at once and downloaded in the same request.
Beat marks exports whose worker died as interrupted and deletes old ones.
"""
import csv
import ipaddress
import logging
import os
import queue
import threading
import time
from datetime import timedelta
from functools import partial

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models, transaction
from django.http import FileResponse, HttpRequest, QueryDict
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.translation import gettext as _

from . import audit, policy, spreadsheets
from .choices import Visibility
from .models import AccessLogEntry, ExportJob, Negotiation
from .models.exports import exports_dir

logger = logging.getLogger(__name__)

#: Rows fetched from the database at a time.
CHUNK_SIZE = 2000
#: An export of at least this share of its table reads the cells listing related rows
#: (a negotiation's participants) for the whole table at once, in sequence, instead of a
#: subquery per row (spreadsheets.RelatedCells): a million subqueries read the related
#: tables' pages in random order, most from disk (1M negotiations: 57 s; grouped: 38 s).
WHOLE_TABLE_SHARE = 0.2
#: How often a running export writes its progress (and shows it is alive), at most: every
#: PROGRESS_EVERY rows, once PROGRESS_SECONDS have passed.
PROGRESS_SECONDS = 1.0
PROGRESS_EVERY = 1000
#: A running export without progress for this long lost its worker (killed, restarted):
#: it is marked interrupted and its partial file removed. Long enough for the database to
#: prepare the rows of a million-row list before the first one is written.
STALE_SECONDS = getattr(settings, "TRACKER_EXPORT_STALE_SECONDS", 900)
#: A queued export no worker took in this long (the broker was down) is interrupted too.
QUEUED_SECONDS = getattr(settings, "TRACKER_EXPORT_QUEUED_SECONDS", 3600)
#: Exports (files and jobs) are deleted after this many days.
KEEP_DAYS = getattr(settings, "TRACKER_EXPORT_KEEP_DAYS", 7)
#: Exports one login may have queued or running at once.
MAX_ACTIVE_PER_USER = 3


class ExportStopped(Exception):
    """The job is no longer running (interrupted meanwhile, or its owner deleted)."""


def _address(value):
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def export_queue(*, user, list_name, query_string, file_name, rows_expected=None, inline=False):
    """Record an export of a list for `user` and, after the commit, ask a worker to write
    it (unless `inline`: the caller writes it now). Returns (job, created): the same list's
    export already queued or running instead of a second one, (None, False) when the
    login has MAX_ACTIVE_PER_USER exports queued or running already."""
    context = audit.current_context()
    with transaction.atomic():
        # One export request of a login at a time: two clicks make one job.
        list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        active = ExportJob.objects.filter(user=user, state__in=ExportJob.ACTIVE)
        active = list(active.only("pk", "list_name", "query_string"))
        for job in active:
            if (job.list_name, job.query_string) == (list_name, query_string):
                return job, False
        if len(active) >= MAX_ACTIVE_PER_USER:
            return None, False
        job = ExportJob.objects.create(
            user=user,
            list_name=list_name,
            query_string=query_string,
            language=translation.get_language() or settings.LANGUAGE_CODE,
            file_name=file_name,
            rows_expected=rows_expected,
            address=_address(context.get("address")),
            request_id=context.get("request_id", "")[:64],
        )
        if not inline:
            transaction.on_commit(partial(export_kick, job.pk), robust=True)
    return job, True


def export_kick(job_id):
    """Ask a worker to write the export; with the broker down it stays queued, and is
    marked interrupted after QUEUED_SECONDS (the exports page says so)."""
    if not getattr(settings, "TRACKER_KICK_ON_COMMIT", True):
        return
    try:
        from .tasks import export_csv

        export_csv.apply_async(args=[str(job_id)], retry=False)
    except Exception:  # noqa: BLE001 - the broker being down must not fail the request
        logger.warning("Could not reach the broker; export %s stays queued.", job_id, exc_info=True)


def list_admin(list_name):
    """The ModelAdmin of an exportable list ("exchanges.negotiation"), or None."""
    from django.contrib import admin

    try:
        model = apps.get_model(list_name)
    except (LookupError, ValueError):
        return None
    model_admin = admin.site._registry.get(model)
    return model_admin if isinstance(model_admin, spreadsheets.CsvExportMixin) else None


def may_export_any(request):
    """Whether the login may view (and so export) at least one exportable list."""
    from django.contrib import admin

    return policy.is_staff(request.user) and any(
        model_admin.has_view_or_change_permission(request)
        for model_admin in admin.site._registry.values()
        if isinstance(model_admin, spreadsheets.CsvExportMixin)
    )


def request_as(user, list_name, query_string=""):
    """A GET of the list's page by `user` with the stored query string: what the admin
    needs to build the changelist exactly as it was on screen."""
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = f"/admin/{list_name.replace('.', '/')}/"
    request.GET = QueryDict(query_string)
    request.META = {"SERVER_NAME": "export", "SERVER_PORT": "80", "QUERY_STRING": query_string}
    request.user = user
    request.LANGUAGE_CODE = translation.get_language()
    request.session = {}
    return request


def may_export(user, model_admin, request):
    """Whether the login may still read the list: active staff with its view permission."""
    return policy.is_staff(user) and model_admin.has_view_or_change_permission(request)


def run_export(job_id):
    """Write a queued export: the body of the `exchanges.export_csv` task, also run in the
    request for a small list. Safe to run twice: only the run that takes the job from
    queued writes it. Returns a small summary, e.g. {"state": "done", "rows": 1000000}."""
    now = timezone.now()
    taken = ExportJob.objects.filter(pk=job_id, state=ExportJob.State.QUEUED).update(
        state=ExportJob.State.RUNNING, started_at=now, progress_at=now
    )
    if not taken:
        return {"state": "skipped"}
    job = ExportJob.objects.select_related("user").get(pk=job_id)
    exports_dir().mkdir(parents=True, exist_ok=True)
    token = audit.set_context(
        request_id=job.request_id, channel=audit.current_context().get("channel", "system"), address=job.address
    )
    try:
        with translation.override(job.language):
            rows = _write(job)
    except ExportStopped:
        _remove(job.partial_path, job.path)
        return {"state": "interrupted"}
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the job says so
        _remove(job.partial_path, job.path)
        if not isinstance(error, (PermissionDenied, IncorrectLookupParameters, ValidationError)):
            logger.exception("Export %s failed.", job.pk)
        with translation.override(job.language):
            message = _failure_message(error)
        ExportJob.objects.filter(pk=job.pk, state=ExportJob.State.RUNNING).update(
            state=ExportJob.State.FAILED, error=message[:1000], finished_at=timezone.now()
        )
        return {"state": "failed"}
    finally:
        audit.reset_context(token)
    return {"state": "done", "rows": rows}


def _failure_message(error):
    if isinstance(error, PermissionDenied):
        return _("You may no longer view this list.")
    if isinstance(error, (IncorrectLookupParameters, ValidationError)):
        return _("The list's filters could not be applied; export it again from the list.")
    return _("The file could not be written (%(error)s). Export again, or ask an administrator.") % {
        "error": type(error).__name__
    }


def _write(job):
    """Rebuild the list as the job's owner, write its rows, rename the file and mark the
    job done with the access log of the staff-only negotiations it includes."""
    model_admin = list_admin(job.list_name)
    request = request_as(job.user, job.list_name, job.query_string)
    if model_admin is None or not may_export(job.user, model_admin, request):
        raise PermissionDenied
    request._csv_export = True
    changelist = model_admin.get_changelist_instance(request)
    queryset = model_admin.csv_rows_queryset(changelist.queryset)
    columns = spreadsheets._Columns(model_admin, queryset)
    rows = queryset.values_list(*columns.lookups)
    expected = job.rows_expected
    if expected is None:
        from .admin.counts import estimated_rows

        expected = estimated_rows(changelist.queryset)
        if expected is None:
            expected = rows.count()
        _progress(job, rows_expected=expected)

    staff_only = set()
    written = 0
    last = time.monotonic()
    # Outside a transaction, PostgreSQL's cursor for the rows would be held past its
    # transaction (WITH HOLD): the whole list is then built before the first row comes
    # (37 s of a million-row export's 51). A thread of its own reads them in a transaction
    # instead, streamed in the list's order from its index, a chunk ahead of the writer:
    # the database prepares the next rows while this one writes the last (each took about
    # a third of the time alone). Progress is written here, on the writer's connection,
    # outside any transaction: others see it at once.
    streaming = connection.vendor == "postgresql" and not connection.in_atomic_block
    if streaming and model_admin.csv_related_cells and _most_of_table(model_admin.model, expected):
        rows = _GroupedCells(model_admin.csv_queryset(changelist.queryset), columns.lookups, model_admin.csv_related_cells)
    source = _read_ahead(rows) if streaming else rows.iterator(chunk_size=CHUNK_SIZE)
    try:
        with open(job.partial_path, "w", encoding="utf-8", newline="", buffering=1 << 20) as out:
            out.write("\ufeff")
            writer = csv.writer(out)
            writer.writerow(columns.header)
            for values in source:
                writer.writerow(columns.cells(values))
                if columns.visibility_at is not None and values[columns.visibility_at] == Visibility.STAFF_ONLY:
                    staff_only.add(values[columns.negotiation_at])
                written += 1
                if written % PROGRESS_EVERY == 0 and time.monotonic() - last >= PROGRESS_SECONDS:
                    _progress(job, rows_written=written)
                    last = time.monotonic()
    finally:
        if streaming:
            source.close()  # stops the reader, if it is still reading
    os.replace(job.partial_path, job.path)
    with transaction.atomic():
        done = ExportJob.objects.filter(pk=job.pk, state=ExportJob.State.RUNNING).update(
            state=ExportJob.State.DONE, rows_written=written, finished_at=timezone.now(), progress_at=timezone.now()
        )
        if not done:
            raise ExportStopped
        _log_staff_only(job.user, staff_only)
    return written


def _most_of_table(model, rows):
    """Whether `rows` are at least WHOLE_TABLE_SHARE of the model's table (the planner's
    count of it; a table never analysed is taken as small)."""
    from .admin.counts import planned_rows

    table = planned_rows(model)
    return table is not None and table > 0 and rows >= WHOLE_TABLE_SHARE * table


class _GroupedCells:
    """The rows `values_list(*lookups)` of `base` (the list: its filters and order) gives,
    with each cell of `related` (lookup -> RelatedCells) joined from its grouped read of
    the whole related table instead of a subquery per row. One statement; the list's order
    is kept by numbering its rows before the joins. Values come as the database gives them
    (no field converters: the lists that use this have none on their columns)."""

    def __init__(self, base, lookups, related):
        plain = [lookup for lookup in lookups if lookup not in related]
        keyed = plain if "pk" in plain else [*plain, "pk"]
        inner_sql, params = base.values_list(*keyed).query.sql_with_params()
        names = [f"c{index}" for index in range(len(keyed))]
        key = names[keyed.index("pk")]
        selected, joins, params = [], [], list(params)
        for lookup in lookups:
            if lookup in related:
                alias = f"r{len(joins)}"
                sql, more = related[lookup].grouped().query.sql_with_params()
                joins.append(f"LEFT JOIN ({sql}) AS {alias} (key, cell) ON {alias}.key = q.{key}")
                params += more
                selected.append(f"coalesce({alias}.cell, '')")
            else:
                selected.append(f"q.{names[plain.index(lookup)]}")
        self.sql = (
            f"SELECT {', '.join(selected)} FROM (SELECT i.*, row_number() OVER () AS row_number "
            f"FROM ({inner_sql}) AS i ({', '.join(names)})) AS q {' '.join(joins)} ORDER BY q.row_number"
        )
        self.params = params

    def iterator(self, chunk_size):
        """Streamed from a server-side cursor: call within a transaction."""
        with connection.chunked_cursor() as cursor:
            cursor.execute(self.sql, self.params)
            while chunk := cursor.fetchmany(chunk_size):
                yield from chunk


_END = object()


def _read_ahead(queryset, *, depth=2):
    """The rows of `queryset`, read by a thread of its own in a transaction (so PostgreSQL
    streams them), CHUNK_SIZE at a time, up to `depth` chunks ahead of the consumer. An
    error there is raised here; closing this generator stops the thread and closes its
    connection."""
    chunks = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read():
        try:
            with transaction.atomic():
                chunk = []
                for values in queryset.iterator(chunk_size=CHUNK_SIZE):
                    chunk.append(values)
                    if len(chunk) == CHUNK_SIZE:
                        if not put(chunk):
                            return
                        chunk = []
                if chunk and not put(chunk):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            put(error)
        finally:
            connection.close()  # this thread's own

    reader = threading.Thread(target=read, name="export-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        reader.join(timeout=30)


def _progress(job, **fields):
    """Write progress; a job no longer running (interrupted meanwhile) stops the writer."""
    if not ExportJob.objects.filter(pk=job.pk, state=ExportJob.State.RUNNING).update(progress_at=timezone.now(), **fields):
        raise ExportStopped


def _log_staff_only(user, negotiation_ids, batch=2000):
    """One access-log entry per staff-only negotiation the file includes."""
    ids = list(negotiation_ids)
    for start in range(0, len(ids), batch):
        negotiations = Negotiation.objects.filter(pk__in=ids[start : start + batch]).only("pk", "reference", "title", "visibility")
        audit.log_staff_access(user, negotiations, channel=AccessLogEntry.Channel.EXPORT)


def _remove(*paths):
    for file in paths:
        try:
            os.remove(file)
        except FileNotFoundError:
            pass


def mark_interrupted(now=None):
    """Running exports whose worker stopped giving signs of life (STALE_SECONDS), and
    queued ones no worker took (QUEUED_SECONDS), become interrupted; their partial files
    are removed. Run on every read of the exports and by beat. Returns how many."""
    now = now or timezone.now()
    stale = models.Q(state=ExportJob.State.RUNNING, progress_at__lt=now - timedelta(seconds=STALE_SECONDS)) | models.Q(
        state=ExportJob.State.QUEUED, created_at__lt=now - timedelta(seconds=QUEUED_SECONDS)
    )
    ids = list(ExportJob.objects.filter(stale).values_list("pk", flat=True)[:1000])
    if not ids:
        return 0
    # Still stale when marked (its worker may have written progress meanwhile).
    count = ExportJob.objects.filter(stale, pk__in=ids).update(state=ExportJob.State.INTERRUPTED, finished_at=now)
    for job_id in ExportJob.objects.filter(pk__in=ids, state=ExportJob.State.INTERRUPTED).values_list("pk", flat=True):
        _remove(exports_dir() / f"{job_id}.csv.part", exports_dir() / f"{job_id}.csv")
    return count


def tend_exports(now=None):
    """Beat's upkeep of the exports: interrupted ones marked, those older than KEEP_DAYS
    deleted with their files, and files no job owns removed. Safe to run twice or late.
    Returns e.g. {"interrupted": 1, "deleted": 3, "orphans": 0}."""
    now = now or timezone.now()
    interrupted = mark_interrupted(now)
    old = ExportJob.objects.filter(created_at__lt=now - timedelta(days=KEEP_DAYS))
    old_ids = list(old.values_list("pk", flat=True)[:10000])
    ExportJob.objects.filter(pk__in=old_ids).delete()
    for job_id in old_ids:
        _remove(exports_dir() / f"{job_id}.csv", exports_dir() / f"{job_id}.csv.part")
    orphans = 0
    folder = exports_dir()
    if folder.is_dir():
        known = {str(pk) for pk in ExportJob.objects.exclude(state=ExportJob.State.INTERRUPTED).values_list("pk", flat=True)}
        cutoff = time.time() - 60  # a file just created by a job being recorded right now
        for file in folder.iterdir():
            if file.name.split(".", 1)[0] not in known and file.stat().st_mtime < cutoff:
                _remove(file)
                orphans += 1
    return {"interrupted": interrupted, "deleted": len(old_ids), "orphans": orphans}


def downloadable(job):
    """Whether the job's file is complete and there (never a partial one)."""
    return job.state == ExportJob.State.DONE and job.path.is_file()


def download_response(job):
    """The complete file, streamed, under the list's name and the day it was asked for."""
    response = FileResponse(
        open(job.path, "rb"), as_attachment=True, filename=job.file_name, content_type="text/csv; charset=utf-8"
    )
    return response


def list_label(list_name):
    try:
        return str(apps.get_model(list_name)._meta.verbose_name_plural)
    except (LookupError, ValueError):
        return list_name


def notify_finished(request):
    """A message on the owner's next list or exports page for each export that finished
    since: a link to the file, or why there is none. Each is told once (one query when
    there is nothing to tell; running exports whose worker died are found by beat and by
    the exports page)."""
    user = request.user
    if not getattr(user, "is_authenticated", False) or not hasattr(request, "_messages"):
        return
    finished = list(
        ExportJob.objects.filter(user=user, notified_at__isnull=True)
        .exclude(state__in=ExportJob.ACTIVE)
        .order_by("created_at")[:20]
    )
    for job in finished:
        label = list_label(job.list_name)
        if job.state == ExportJob.State.DONE:
            url = reverse("admin:exchanges_exportjob_download", args=[job.pk])
            messages.success(
                request,
                format_html(
                    _('Your export of {list} is ready: <a href="{url}">download {file}</a>.'), list=label, url=url, file=job.file_name
                ),
            )
        elif job.state == ExportJob.State.INTERRUPTED:
            messages.warning(request, _("Your export of %(list)s was interrupted; export it again.") % {"list": label})
        else:
            messages.error(request, _("Your export of %(list)s failed: %(error)s") % {"list": label, "error": job.error})
    if finished:
        ExportJob.objects.filter(pk__in=[job.pk for job in finished]).update(notified_at=timezone.now())
