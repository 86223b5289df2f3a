"""CSV out of the admin's lists, exactly as filtered, searched and sorted on screen.

Files open cleanly in Excel and LibreOffice (UTF-8 with a byte-order mark), are streamed
row by row (a million rows never sit in memory), and a cell that a spreadsheet would run
as a formula (=, +, -, @ first) is prefixed with an apostrophe.

An export is a read like any other: it needs the list's view permission, holds only the
rows the login may see (the admin's queryset is the policy's), and one that includes
staff-only negotiations is written to the access log.
"""
import csv
from datetime import date, datetime
from datetime import timezone as dt_timezone
from operator import attrgetter, methodcaller

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import audit
from .choices import Visibility
from .models import AccessLogEntry, Negotiation

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value):
        return value


def cell(value):
    """One value as spreadsheets should show it, never as something they would execute."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime):
        return value.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def unguard(text):
    """Undo `cell`'s apostrophe when a file we wrote comes back in."""
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r":
        return text[1:]
    return text


def csv_response(filename, header, rows):
    """A streamed CSV download. `rows` is an iterable of lists of raw values."""
    language = translation.get_language()

    def lines():
        writer = csv.writer(_Echo())
        yield "\ufeff"
        yield writer.writerow(header)
        with translation.override(language):
            for row in rows:
                yield writer.writerow([cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CsvExportMixin:
    """Adds "Export CSV" to a ModelAdmin's list: the rows the list shows, on every page.

    Subclasses define `csv_columns`: an attribute name (its header too; a field with
    choices is written as its label in the user's language) or a (header, function of the
    object) pair; and may override `csv_queryset` to add joins for those functions.
    `csv_negotiation_field` names the rows' negotiation ("pk" for negotiations themselves),
    so that the staff-only ones an export includes are logged.
    """

    change_list_template = "admin/csv_change_list.html"
    csv_columns = ()
    csv_filename = "export"  # ASCII: it goes in a header
    csv_chunk_size = 1000
    csv_negotiation_field = None

    def csv_queryset(self, queryset):
        return queryset

    def _csv_column(self, column):
        if not isinstance(column, str):
            return column
        try:
            choices = self.model._meta.get_field(column).choices
        except FieldDoesNotExist:
            choices = None
        if choices:
            return column, methodcaller(f"get_{column}_display")
        return column, attrgetter(column)

    def _csv_url_name(self, action):
        return f"{self.opts.app_label}_{self.opts.model_name}_{action}"

    def get_urls(self):
        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv_view), name=self._csv_url_name("export")),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        context = {"csv_export_url": reverse(f"admin:{self._csv_url_name('export')}"), **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_changelist(self, request, **kwargs):
        changelist = super().get_changelist(request, **kwargs)
        if not getattr(request, "_csv_export", False):
            return changelist

        class ExportChangeList(changelist):
            def get_results(self, request):
                """The export reads the whole queryset itself: skip the page and its counts."""
                self.result_count = self.full_result_count = None
                self.result_list, self.can_show_all, self.multi_page = [], True, False

        return ExportChangeList

    def export_csv_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        request._csv_export = True
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist") + "?e=1")
        queryset = self.csv_queryset(changelist.queryset)
        self._log_staff_only(request, changelist.queryset)
        columns = [self._csv_column(column) for column in self.csv_columns]
        rows = ([getter(obj) for _header, getter in columns] for obj in queryset.iterator(chunk_size=self.csv_chunk_size))
        filename = f"{self.csv_filename}-{timezone.localdate().isoformat()}.csv"
        return csv_response(filename, [header for header, _getter in columns], rows)

    def _log_staff_only(self, request, queryset):
        """One access-log entry per staff-only negotiation the export includes (one query)."""
        if self.csv_negotiation_field is None:
            return
        included = queryset.order_by().values(self.csv_negotiation_field)
        staff_only = Negotiation.objects.filter(visibility=Visibility.STAFF_ONLY, pk__in=included).only(
            "pk", "reference", "title", "visibility"
        )
        audit.log_staff_access(request.user, staff_only, channel=AccessLogEntry.Channel.EXPORT)
