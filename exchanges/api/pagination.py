"""Cursor pagination: a stable order, and a cost that does not grow with the table.

Keyset pagination: every ordering ends with the row's id, and a cursor holds the values
of every ordering field of the row it follows, so the next page starts strictly after
that row whatever else ties with it or moves meanwhile (DRF's own cursor keeps only the
first field and skips ties by a count, which loses a row when a tied one moves).
"""
import datetime
import json
import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, _reverse_ordering

MAX_PAGE_SIZE = 200


class CursorPagination(pagination.CursorPagination):
    """`{"next", "previous", "results"}`; `?page_size=` up to 200 (default 50).

    A view sets `cursor_ordering`; views that list `ordering_fields` also accept
    `?ordering=`. Bad `page_size`, `ordering` or `cursor` values get 400, not a silent default.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-created_at",)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({"page_size": [_("Must be a whole number.")]}) from None
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"page_size": [_("Must be a whole number from 1 to %(max)d.") % {"max": self.max_page_size}]})
        return size

    def get_ordering(self, request, queryset, view):
        default = tuple(getattr(view, "cursor_ordering", self.ordering))
        allowed = getattr(view, "ordering_fields", ())
        raw = request.query_params.get("ordering")
        if raw is None or not allowed:
            return default
        if raw.removeprefix("-") not in allowed:
            choices = ", ".join(sorted(f"{sign}{name}" for name in allowed for sign in ("", "-")))
            raise ValidationError({"ordering": [_("Must be one of: %(choices)s.") % {"choices": choices}]})
        tiebreak = "-id" if raw.startswith("-") else "id"
        return (raw, tiebreak)

    @staticmethod
    def unique(ordering):
        """The ordering, ending with the id (in the first field's direction) if it does not."""
        if ordering[-1].lstrip("-") in ("id", "pk"):
            return tuple(ordering)
        return (*ordering, "-id" if ordering[0].startswith("-") else "id")

    # Keyset pages ----------------------------------------------------------------------

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.unique(self.get_ordering(request, queryset, view))
        self.cursor = self.decode_cursor(request)
        reverse = bool(self.cursor and self.cursor.reverse)
        position = self.parse_position(queryset, self.cursor.position) if self.cursor and self.cursor.position else None
        order = _reverse_ordering(self.ordering) if reverse else self.ordering
        queryset = queryset.order_by(*order)
        if position is not None:
            queryset = self.after(queryset, order, position)
        results = list(queryset[: self.page_size + 1])
        self.page = results[: self.page_size]
        more = len(results) > self.page_size
        if reverse:
            self.page.reverse()
            self.has_next, self.has_previous = position is not None, more
        else:
            self.has_next, self.has_previous = more, position is not None
        self.current_position = self.cursor.position if self.cursor else None
        if (self.has_previous or self.has_next) and self.template is not None:
            self.display_page_controls = True
        return self.page

    def after(self, queryset, order, values):
        """Rows strictly after `values` in `order` (each field in its own direction). The
        first field's bound is given on its own too, so the index is read from the
        position on, not from its start (a page's cost does not grow with its depth)."""
        first = order[0]
        condition = Q(**{f"{first.lstrip('-')}__{'lte' if first.startswith('-') else 'gte'}": values[0]})
        queryset = queryset.filter(condition)
        condition = Q()
        for index, field in enumerate(order):
            name = field.lstrip("-")
            step = Q(**{f"{name}__{'lt' if field.startswith('-') else 'gt'}": values[index]})
            for earlier, value in zip(order[:index], values[:index]):
                step &= Q(**{earlier.lstrip("-"): value})
            condition |= step
        return queryset.filter(condition)

    def parse_position(self, queryset, text):
        """The values a cursor holds, checked against the fields they are for (400 if not)."""
        try:
            values = json.loads(text)
            if not isinstance(values, list) or len(values) != len(self.ordering):
                raise ValueError
            if not all(isinstance(value, (str, int)) and not isinstance(value, bool) for value in values):
                raise ValueError  # null, a list, a float: never written by `position_of`
            fields = [queryset.model._meta.get_field(name.lstrip("-")) for name in self.ordering]
            values = [_checked(field.to_python(value)) for field, value in zip(fields, values)]
            if any(value is None for value in values):
                raise ValueError
            return values
        except (ValueError, TypeError, OverflowError, DjangoValidationError):
            raise ValidationError({"cursor": [_("Invalid cursor.")]}) from None

    def position_of(self, instance):
        return json.dumps([position_value(getattr(instance, name.lstrip("-"))) for name in self.ordering])

    def get_next_link(self):
        if not self.has_next:
            return None
        position = self.position_of(self.page[-1]) if self.page else self.current_position
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=position))

    def get_previous_link(self):
        if not self.has_previous:
            return None
        position = self.position_of(self.page[0]) if self.page else self.current_position
        return self.encode_cursor(Cursor(offset=0, reverse=True, position=position))

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": [_("Invalid cursor.")]}) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        if getattr(view, "ordering_fields", ()):
            parameters.append(
                {
                    "name": "ordering",
                    "required": False,
                    "in": "query",
                    "description": "Sort order (default newest first).",
                    "schema": {
                        "type": "string",
                        "enum": [f"{sign}{name}" for name in view.ordering_fields for sign in ("", "-")],
                    },
                }
            )
        return parameters


#: The range of a PostgreSQL bigint: a cursor's integer outside it is not one we wrote.
BIGINT = 2**63


def _checked(value):
    """A cursor's value as the database can compare it, or ValueError: a timestamp in UTC
    (an offset PostgreSQL refuses, +16:00, or one that carries it past year 1, never
    reaches a query), a text without NUL that UTF-8 can write, an integer within a bigint."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError  # `position_of` always writes the offset
        return value.astimezone(datetime.timezone.utc)  # OverflowError past the calendar's ends
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError
        value.encode("utf-8")  # a lone surrogate ("\ud800"): UnicodeEncodeError, a ValueError
    if isinstance(value, int) and not -BIGINT <= value < BIGINT:
        raise ValueError
    return value


def position_value(value):
    """A field's value as a cursor keeps it: timestamps as the API writes them (UTC, `Z`)."""
    if isinstance(value, datetime.datetime):
        text = value.astimezone(datetime.timezone.utc).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, (datetime.date, uuid.UUID)):
        return value.isoformat() if isinstance(value, datetime.date) else str(value)
    return value
