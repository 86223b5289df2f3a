"""Cursor pagination: a stable order, and a cost that does not grow with the table."""
from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

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
        if raw is None or raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({"page_size": [_("Must be a whole number.")]}) from None
        if size < 1:
            raise ValidationError({"page_size": [_("Must be at least 1.")]})
        return min(size, self.max_page_size)

    def get_ordering(self, request, queryset, view):
        default = tuple(getattr(view, "cursor_ordering", self.ordering))
        allowed = getattr(view, "ordering_fields", ())
        raw = request.query_params.get("ordering")
        if not raw or not allowed:
            return default
        if raw.lstrip("-") not in allowed:
            choices = ", ".join(sorted(f"{sign}{name}" for name in allowed for sign in ("", "-")))
            raise ValidationError({"ordering": [_("Must be one of: %(choices)s.") % {"choices": choices}]})
        tiebreak = "-id" if raw.startswith("-") else "id"
        return (raw, tiebreak)

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
