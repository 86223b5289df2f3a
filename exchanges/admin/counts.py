"""Counts for lists of a million rows: never a full COUNT(*).

Django's changelist counts its rows twice per page (the filtered list, and the whole
table for "N total"); at a million negotiations or five million status changes each count
reads the whole table and costs seconds. Here the whole table is the planner's estimate
(PostgreSQL's `pg_class.reltuples`, kept by ANALYZE and autovacuum) and a filtered list
is counted only up to `CAP + 1` rows: enough to page through the first hundred pages and
to say "more than 10,000".
"""
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

#: Rows counted exactly; past this, a filtered list says "more than" (CAP + 1 is returned).
CAP = 10_000


def estimated_rows(queryset):
    """The planner's estimate of the rows of an unfiltered queryset's table, or None where
    there is none (another database, a filtered queryset, a table never analysed)."""
    query = queryset.query
    if query.where or query.distinct or query.combinator or query.is_sliced:
        return None
    rows = planned_rows(queryset.model, queryset.db)
    return rows if rows is not None and rows > CAP else None  # a small table is counted exactly


def planned_rows(model, using="default"):
    """The planner's count of the model's table (`pg_class.reltuples`), or None where there
    is none (another database; -1 for a table never analysed)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return row[0] if row else None


def capped_count(queryset, cap=None):
    """How many rows, counted up to `cap + 1` (CAP + 1 by default; a COUNT over a LIMITed subquery)."""
    return queryset.order_by()[: (CAP if cap is None else cap) + 1].count()


class FlatCountPaginator(Paginator):
    """The changelist's paginator: `count` is the estimate for a whole big table and a
    count capped at CAP + 1 otherwise; `approximate` says which the page shows."""

    @cached_property
    def estimate(self):
        return estimated_rows(self.object_list)

    #: The same rows as `object_list`, in a form cheaper to count (a search's union of
    #: ids: `search.search`), or None.
    count_queryset = None

    @cached_property
    def count(self):
        if self.estimate is not None:
            return self.estimate
        return capped_count(self.object_list if self.count_queryset is None else self.count_queryset)

    @property
    def cap(self):
        return CAP

    @property
    def approximate(self):
        return self.estimate is not None or self.count > CAP


class FlatListMixin:
    """For a ModelAdmin over a big table: no count of the whole table, a capped or
    estimated count of the list (`FlatCountPaginator`)."""

    show_full_result_count = False
    paginator = FlatCountPaginator

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        counted = getattr(request, "_search_count_queryset", None)  # left by IndexedSearchMixin
        if counted is not None and counted.model is queryset.model and isinstance(paginator, FlatCountPaginator):
            paginator.count_queryset = counted
        return paginator
