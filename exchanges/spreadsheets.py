"""CSV out of the admin's lists, exactly as filtered, searched and sorted on screen: the
cells and columns, and the admin's "Export CSV" (`CsvExportMixin`). The jobs that write
the files are `exchanges.exports`.

Files open cleanly in Excel and LibreOffice (UTF-8 with a byte-order mark), and a cell
that a spreadsheet would run as a formula (=, +, -, @ first) is prefixed with an
apostrophe.

Rows are built in SQL: `values_list()` of the columns, choices turned into labels of the
user's language through a map made once per export, the cells that list related rows
(a negotiation's participants) as one subquery each. Nothing is looked up per row, so a
million rows cost one query.

An export is a read like any other: it needs the list's view permission, holds only the
rows the login may see (the admin's queryset is the policy's), and one that includes
staff-only negotiations is written to the access log.
"""
from datetime import date, datetime
from datetime import timezone as dt_timezone

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import models
from django.db.models import OuterRef, Subquery, TextField
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import exports
from .models import ExportJob

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")




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
    return guard(str(value))


def guard(text):
    """Text a spreadsheet would run as a formula, made plain text with an apostrophe."""
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def unguard(text):
    """Undo `cell`'s apostrophe when a file we wrote comes back in."""
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r":
        return text[1:]
    return text


# Cells built in SQL ---------------------------------------------------------------------


class JoinedCells(Subquery):
    """The `cell` column of a correlated subquery's rows, in its order, joined with "; ":
    one cell listing related rows (a negotiation's participants) without a query per row."""

    template = "ARRAY_TO_STRING(ARRAY(%(subquery)s), '; ')"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # SQLite's GROUP_CONCAT follows the rows' order in a subquery of FROM.
        return self.as_sql(
            compiler, connection, template="(SELECT GROUP_CONCAT(cell, '; ') FROM (%(subquery)s))", **extra_context
        )


class RelatedCells:
    """A cell listing a row's related rows ("Government of Ukraine (Side); ICRC (Mediator)"),
    built in SQL two ways: `per_row()`, a correlated subquery for each row of the list (a
    part of a big table: it reads only the rows listed), and `grouped()`, every row's cell
    at once, grouped by `key` (most of a big table: the related table is read in order,
    where a million subqueries read its pages in random order, most of them from disk;
    exports.WHOLE_TABLE_SHARE). `cell` returns the expression of one related row's text,
    called in the export's language; `order` orders them within a cell."""

    def __init__(self, model, key, cell, order="id"):
        self.model, self.key, self.cell, self.order = model, key, cell, order

    def per_row(self):
        related = self.model.objects.filter(**{self.key: OuterRef("pk")}).order_by(self.order)
        return JoinedCells(related.annotate(cell=self.cell()).values("cell"))

    def grouped(self):
        """(key, cell) for every row that has related rows (PostgreSQL)."""
        from django.contrib.postgres.aggregates import StringAgg

        rows = self.model.objects.order_by().values(self.key)
        return rows.annotate(cell=StringAgg(self.cell(), "; ", order_by=self.order)).values_list(self.key, "cell")


def label_sql(field_name, choices):
    """A choice field's label in the current language, as SQL (a CASE over the values)."""
    whens = [models.When(**{field_name: value}, then=models.Value(str(label))) for value, label in choices]
    return models.Case(*whens, default=models.F(field_name), output_field=models.CharField())


# Columns ----------------------------------------------------------------------------


def _field_at(model, lookup):
    """The model field a `values()` lookup ("negotiation__reference") ends at, or None."""
    field = None
    for name in lookup.split("__"):
        if model is None:
            return None
        try:
            field = model._meta.get_field("id" if name == "pk" else name)
        except FieldDoesNotExist:
            return None
        model = field.related_model
    return field


def _labels_converter(labels):
    """`labels` ({value: text}) guarded once; a value not among them is written as is."""
    guarded = {value: guard(str(text)) for value, text in labels.items()}
    guarded.setdefault(None, "")

    def convert(value):
        try:
            return guarded[value]
        except KeyError:
            return cell(value)

    return convert


def _datetime_cell(value):
    return "" if value is None else value.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date_cell(value):
    return "" if value is None else value.isoformat()


def _number_cell(value):
    return "" if value is None else str(value)


def _converter(field):
    """How a value of `field` becomes a cell, decided once per column (None: any value)."""
    if field is None:
        return cell
    if field.choices:
        return _labels_converter(dict(field.flatchoices))
    if isinstance(field, models.BooleanField):
        return _labels_converter({True: _("yes"), False: _("no")})
    if isinstance(field, models.DateTimeField):
        return _datetime_cell
    if isinstance(field, models.DateField):
        return _date_cell
    if isinstance(field, (models.IntegerField, models.DecimalField, models.FloatField)):
        return _number_cell
    return cell


class _Columns:
    """An admin's `csv_columns` made ready for one export (in its language): the header,
    the `values_list()` lookups to read, and a function turning a row of them into cells."""

    def __init__(self, model_admin, queryset):
        model = model_admin.model
        lookups = []

        def position(lookup):
            if lookup not in lookups:
                lookups.append(lookup)
            return lookups.index(lookup)

        self.header = []
        plan = []  # (index of the value, or None for a function of the row; converter or function)
        for column in model_admin.csv_columns:
            header, source = (column, column) if isinstance(column, str) else column
            self.header.append(header)
            if callable(source):
                plan.append((None, source))
            else:
                field = None if source in queryset.query.annotations else _field_at(model, source)
                plan.append((position(source), _converter(field)))
        for lookup in model_admin.csv_row_values:
            position(lookup)
        # The included negotiations and whether they are staff-only, for the access log.
        self.negotiation_at = self.visibility_at = None
        field = model_admin.csv_negotiation_field
        if field is not None:
            self.negotiation_at = position("pk" if field == "pk" else f"{field}_id")
            self.visibility_at = position("visibility" if field == "pk" else f"{field}__visibility")
        self.lookups = lookups
        self.plan = plan
        self.needs_row = any(index is None for index, _convert in plan)

    def cells(self, values):
        if self.needs_row:
            row = dict(zip(self.lookups, values))
            return [convert(values[index]) if index is not None else cell(convert(row)) for index, convert in self.plan]
        return [convert(values[index]) for index, convert in self.plan]


# Mixin for ModelAdmins -----------------------------------------------------------------


class CsvExportMixin:
    """Adds "Export CSV" to a ModelAdmin's list: the rows the list shows, on every page.

    `csv_columns`: a lookup as `values()` takes it ("reference", "negotiation__title",
    or an annotation of `csv_queryset` or `csv_related_cells`), which is also its header, and whose
    choices are written as their labels in the user's language; or a (header, lookup) or
    (header, function) pair, the function taking the row as a dict of the lookups read
    (`csv_row_values` adds lookups the functions need). Never a per-row query.
    `csv_related_cells` maps an annotation (a column's lookup) to the `RelatedCells` that
    fills it. `csv_queryset` adds other annotations and ordering to the list's queryset (it
    runs in the user's language). `csv_negotiation_field` names the rows' negotiation ("pk"
    for negotiations themselves), so that the staff-only ones an export includes are logged.
    """

    change_list_template = "admin/csv_change_list.html"
    csv_columns = ()
    csv_row_values = ()
    csv_filename = "export"  # ASCII: it goes in a header
    csv_negotiation_field = None
    csv_related_cells = {}
    #: Lists of up to this many rows are written at once and downloaded in the request;
    #: bigger ones go to a worker (the exports page shows them).
    csv_inline_rows = 2000

    def csv_queryset(self, queryset):
        return queryset

    def csv_rows_queryset(self, queryset):
        """The list's queryset with every column: `csv_queryset`'s, and each related cell
        as a subquery per row."""
        queryset = self.csv_queryset(queryset)
        return queryset.annotate(**{name: cells.per_row() for name, cells in self.csv_related_cells.items()})

    def _csv_url_name(self, action):
        return f"{self.opts.app_label}_{self.opts.model_name}_{action}"

    def get_urls(self):
        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv_view), name=self._csv_url_name("export")),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        exports.notify_finished(request)
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
        """Queue the list's export (or write a small one at once and hand it over)."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        request._csv_export = True
        changelist_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        # A filter the list cannot apply: back to the list with the same address, where it
        # says which filter and shows the list without it (`PolicyAdminMixin.changelist_view`).
        from .admin.base import unknown_filter_values

        back_to_list = HttpResponseRedirect(f"{changelist_url}?{_with_error_flag(request.GET)}")
        if unknown_filter_values(self, request):
            return back_to_list
        try:
            changelist = self.get_changelist_instance(request)
            limit = self.csv_inline_rows
            rows = changelist.queryset.order_by()[: limit + 1].count() if limit else 1
        except (IncorrectLookupParameters, ValidationError, ValueError, TypeError, OverflowError):
            return back_to_list
        exports_url = reverse("admin:exchanges_exportjob_changelist")
        inline = rows <= limit
        job, created = exports.export_queue(
            user=request.user,
            list_name=self.opts.label_lower,
            query_string=request.GET.urlencode(),
            file_name=f"{self.csv_filename}-{timezone.localdate().isoformat()}.csv",
            rows_expected=rows if inline else None,
            inline=inline,
        )
        if job is None:
            waiting = ngettext(
                "You have %(count)d export being prepared: wait for it to finish.",
                "You have %(count)d exports being prepared: wait for one to finish.",
                exports.MAX_ACTIVE_PER_USER,
            )
            messages.warning(request, waiting % {"count": exports.MAX_ACTIVE_PER_USER})
            return HttpResponseRedirect(exports_url)
        if not created:
            messages.info(request, _("This export is already being prepared."))
            return HttpResponseRedirect(exports_url)
        if inline:
            exports.run_export(job.pk)
            job.refresh_from_db()
            if job.state == ExportJob.State.DONE:
                ExportJob.objects.filter(pk=job.pk).update(notified_at=timezone.now())
                return exports.download_response(job)
            return HttpResponseRedirect(exports_url)
        messages.info(request, _("The export is being prepared; this page shows its progress."))
        return HttpResponseRedirect(exports_url)


def _with_error_flag(params):
    """The list's address with Django's "invalid filter" flag, which the list answers by
    naming the filters it cannot apply and showing itself without them."""
    from django.contrib.admin.views.main import ERROR_FLAG

    params = params.copy()
    params[ERROR_FLAG] = "1"
    return params.urlencode()
