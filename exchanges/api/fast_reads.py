"""A short way through for the API's hottest reads: an API client's `GET` of the
negotiations list and of one negotiation, the requests partner systems poll with.

Through DRF such a request spends most of its time in Python around its queries (token
lookup, permission, throttle, paginator, filter form, model instances). This middleware
answers the plain cases with one SQL statement that checks the token and reads the page
together, then the same representation (`serializers.negotiation_representation`), the
same cursor pagination (DRF's own `CursorPagination`, run over a tiny query object), the
same throttle (`PrincipalRateThrottle`), read log (`audit.log_reads`) and ETag.

Everything else goes to the normal view, unchanged, so every error answer is still the
view's: no or bad token, a revoked or expired one, one whose `last_used_at` is due for
refreshing, a query parameter it does not handle, a bad value, a missing or invisible
negotiation, a throttled client, HEAD, an `Accept` other than JSON, staff sessions,
SQLite. `TRACKER_FAST_READS=false` turns it off. `tests/api/test_fast_reads.py` pins its
answers (status, body and headers) equal to the view's.
"""
import functools
import re
import uuid
from datetime import datetime

import orjson
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, connection
from django.db.models.expressions import RawSQL
from django.http import HttpResponse
from django.utils import timezone, translation
from rest_framework.exceptions import ValidationError

from .. import audit, policy
from ..filters import NegotiationFilter
from ..models import ApiClient, Negotiation
from ..selectors import COMMITMENTS_JSON, GROUPS_JSON, PARTICIPANTS_JSON, PROGRESS_JSON
from ..services import hash_token
from .authentication import LAST_USED_RESOLUTION
from .pagination import CursorPagination
from .preconditions import etag, matches_none
from .serializers import negotiation_representation
from .views import NegotiationViewSet

PREFIX = "/api/v1/negotiations"
#: The routes answered here: the list and a detail by UUID, trailing slash optional (as in urls.py).
ROUTE = re.compile(r"/api/v1/negotiations(?:/(?P<pk>[0-9a-fA-F-]{36}))?/?\Z")
#: The list's query parameters answered here; any other sends the request to the view.
LIST_PARAMETERS = frozenset({"page_size", "cursor", "ordering", "updated_since", "stalled"})
#: Accept headers for which DRF's content negotiation certainly picks plain JSON; any
#: other (the browsable API, `; indent=4`, a list of types) goes to the view.
JSON_ACCEPTS = frozenset({"", "*/*", "application/json", "application/json, text/plain, */*"})  # the last: axios
#: Headers DRF and the later middleware add to these answers (pinned by the tests).
LIST_ALLOW, DETAIL_ALLOW = "GET, POST, HEAD, OPTIONS", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
ORDER_COLUMNS = {"created_at", "updated_at", "id"}
LABEL = Negotiation._meta.label_lower

FIELDS = (
    "id", "reference", "title", "summary", "status", "priority", "visibility", "opened_on", "next_step",
    "next_step_due", "last_activity_at", "stalled", "stalled_since", "created_at", "updated_at",
)  # fmt: skip
CLIENT_FIELDS = ("id", "name", "party_id", "revoked_at", "expires_at", "last_used_at")
TIMESTAMPS = {"last_activity_at", "stalled_since", "created_at", "updated_at"}
DAYS = {"opened_on", "next_step_due"}


def _column(name):
    """Timestamps and days come back as the API writes them (serializers.negotiations._iso: UTC, `Z`,
    microseconds only when there are some; ISO days): reading them into Python objects
    and writing them out again was a third of a list request's time."""
    column = f"exchanges_negotiation.{name}"
    if name in TIMESTAMPS:
        utc = f"{column} AT TIME ZONE 'UTC'"
        return (
            f"CASE WHEN {column} = date_trunc('second', {column}) "
            f"""THEN to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
            f"""ELSE to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END AS {name}"""
        )
    if name in DAYS:
        return f"to_char({column}, 'YYYY-MM-DD') AS {name}"
    return column


# The client by its token digest, and beside it (LEFT JOIN LATERAL: one row with NULLs
# when nothing matches) the negotiations it may see.
STATEMENT = f"""SELECT {", ".join(f"c.{name}" for name in CLIENT_FIELDS)}, n.*
FROM exchanges_apiclient c LEFT JOIN LATERAL (
    SELECT {", ".join(_column(name) for name in FIELDS)},
        ({PARTICIPANTS_JSON}) AS participants_json, ({GROUPS_JSON}) AS groups_json,
        ({COMMITMENTS_JSON}) AS commitments_json, ({PROGRESS_JSON}) AS progress_json
    FROM exchanges_negotiation
    WHERE {{visibility}}{{where}}
    {{order}} LIMIT {{limit:d}} OFFSET {{offset:d}}
) n ON true
WHERE c.token_hash = %s"""


@functools.cache
def visibility_sql():
    """`policy.client_negotiation_q` compiled once, with the token's client's party
    (`c.party_id`) in place of a value: the rule has one definition, and a change to it
    changes this path too. Its values (the visibility choices) are written in as literals,
    so the planner sees them as it did when this SQL was written by hand."""
    query = Negotiation.objects.filter(policy.client_negotiation_q(RawSQL("c.party_id", ()))).query
    compiler = query.get_compiler(connection=connection)
    sql, params = query.where.as_sql(compiler, connection)
    pieces = sql.split("%s")
    if len(pieces) != len(params) + 1 or not all(re.fullmatch(r"[a-z_]+", str(value)) for value in params):
        raise ValueError(f"Unexpected visibility SQL: {sql} {params}")
    return "".join(piece + (f"'{params[index]}'" if index < len(params) else "") for index, piece in enumerate(pieces))


@functools.lru_cache(maxsize=256)
def _statement(where, order, limit, offset):
    """STATEMENT for these conditions, order and window (a few shapes, built once)."""
    return STATEMENT.format(
        visibility=visibility_sql(),
        where="".join(f" AND {condition}" for condition in where),
        order=f"ORDER BY {order}" if order else "",
        limit=limit,
        offset=offset,
    )


class Row:
    """A negotiation as read here: the attributes `negotiation_representation`,
    `audit.log_reads` and the paginator read from a model instance."""

    JSON = ("participants_json", "groups_json", "commitments_json", "progress_json")
    __slots__ = (*FIELDS, *JSON)

    def __init__(self, values):
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)
        for name in self.JSON:
            setattr(self, name, orjson.loads(getattr(self, name)))

    @property
    def pk(self):
        return self.id

    __str__ = Negotiation.__str__


class Paginator(CursorPagination):
    """The view's keyset pagination over a `Statement`: the position compared as one row
    value, `(created_at, id) < (%s, %s)`, which the (created_at, id) indexes serve."""

    def parse_position(self, statement, text):
        return super().parse_position(Negotiation.objects.none(), text)

    def after(self, statement, order, values):
        names = [field.lstrip("-") for field in order]
        directions = {field.startswith("-") for field in order}
        if len(directions) != 1 or not set(names) <= ORDER_COLUMNS:
            raise Delegate
        columns = ", ".join(f"exchanges_negotiation.{name}" for name in names)
        values_sql = ", ".join("%s::uuid" if name == "id" else "%s::timestamptz" for name in names)
        comparison = "<" if directions.pop() else ">"
        return statement.narrowed(f"({columns}) {comparison} ({values_sql})", *map(str, values), column=names[0])


class Delegate(Exception):
    """Not a plain case: the view answers."""


class Statement:
    """The little of a QuerySet the cursor pagination uses (`order_by`, a condition on the
    cursor's position, one slice), run as STATEMENT with the client's token."""

    def __init__(self, token_hash, where=(), params=(), order=(), found=None, compared=()):
        self.token_hash, self.where, self.params, self.order = token_hash, list(where), list(params), order
        self.found = {} if found is None else found  # shared by the paginator's copies: the client row
        self.compared = tuple(compared)  # the columns compared with a value

    def narrowed(self, condition, *params, column=None):
        compared = (*self.compared, column) if column else self.compared
        return Statement(
            self.token_hash, [*self.where, condition], [*self.params, *params], self.order, self.found, compared
        )

    def order_by(self, *fields):
        return Statement(self.token_hash, self.where, self.params, fields, self.found, self.compared)

    def __getitem__(self, window):
        start = window.start or 0
        return self.run(window.stop - start, start)

    def plan_fits_any_values(self):
        """Whether one plan serves every value of the parameters: a lookup by id, or a page
        whose compared columns are all its order's column (the index on that column, read
        from the value on). `updated_since` under another order is not: how many rows
        it keeps decides between two indexes, so that page is planned with its values."""
        if not self.order:
            return self.compared == ("id",)
        return all(column == self.order[0].lstrip("-") for column in self.compared)

    def run(self, limit, offset=0):
        order = ", ".join(
            f"exchanges_negotiation.{field.lstrip('-')} {'DESC' if field.startswith('-') else 'ASC'}"
            for field in self.order
            if field.lstrip("-") in ORDER_COLUMNS
        )
        sql = _statement(tuple(self.where), order, int(limit), int(offset))
        # Prepared and planned once per connection (config/db/base.py) when one plan fits.
        try:
            with connection.prepared_cursor() if self.plan_fits_any_values() else connection.cursor() as cursor:
                cursor.execute(sql, [*self.params, self.token_hash])
                rows = cursor.fetchall()
        except DataError:
            raise Delegate from None  # a value PostgreSQL refuses: the view answers (400)
        if not rows:
            raise Delegate  # no such token: the view answers 401
        self.found.update(zip(CLIENT_FIELDS, rows[0][: len(CLIENT_FIELDS)]))
        return [Row(row[len(CLIENT_FIELDS) :]) for row in rows if row[len(CLIENT_FIELDS)] is not None]


class FastReadMiddleware:
    """Placed after the request-id middleware (the read log records the request) and
    before the session and locale ones, whose only mark on these answers (the language
    headers) it writes itself; what it answers passes back through the request-id and
    security middleware like any other response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "GET" and request.path_info.startswith(PREFIX) and self.enabled():
            try:
                response = self.answer(request)
            except Delegate:
                response = None
            if response is not None:
                return response
        return self.get_response(request)

    @staticmethod
    def enabled():
        return settings.TRACKER_FAST_READS and hasattr(connection, "prepared_cursor")

    def answer(self, request):
        route = ROUTE.match(request.path_info)
        if route is None:
            return None
        header = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(header) != 2 or header[0].lower() != "bearer" or request.META.get("HTTP_ACCEPT", "") not in JSON_ACCEPTS:
            return None
        try:
            request.get_host()  # CommonMiddleware's check, which this answer skips
        except DisallowedHost:
            return None
        statement = Statement(hash_token(header[1]))
        if route["pk"] is None:
            return self.page(request, statement)
        if request.GET:
            return None
        try:
            pk = uuid.UUID(route["pk"])
        except ValueError:
            return None
        return self.detail(request, statement, pk)

    def page(self, request, statement):
        query = request.GET
        if not set(query) <= LIST_PARAMETERS or any(len(query.getlist(key)) != 1 or not query[key] for key in query):
            return None
        if "updated_since" in query:
            try:
                since = NegotiationFilter.base_filters["updated_since"].field.clean(query["updated_since"])
            except DjangoValidationError:  # the view's 400
                return None
            statement = statement.narrowed("exchanges_negotiation.updated_at >= %s", since, column="updated_at")
        if "stalled" in query:
            if query["stalled"] not in ("true", "false"):
                return None
            condition = "exchanges_negotiation.stalled" if query["stalled"] == "true" else "NOT exchanges_negotiation.stalled"
            statement = statement.narrowed(condition)
        paginator = Paginator()
        try:
            rows = paginator.paginate_queryset(statement, _Request(request), NegotiationViewSet)
        except ValidationError:
            return None
        client = self.client(statement)
        if client is None:
            return None
        data = paginator.get_paginated_response([negotiation_representation(row) for row in rows]).data
        if rows:
            audit.log_reads(client, rows)
        return self.respond(request, orjson.dumps(data), LIST_ALLOW)

    def detail(self, request, statement, pk):
        rows = statement.narrowed("exchanges_negotiation.id = %s", pk, column="id").run(1)
        if not rows:
            return None  # missing or not visible: the view's 404
        client = self.client(statement)
        if client is None:
            return None
        row = rows[0]
        tag = etag(LABEL, row.id, datetime.fromisoformat(row.updated_at))
        audit.log_reads(client, rows)
        if matches_none(request.META.get("HTTP_IF_NONE_MATCH"), tag):
            response = self.respond(request, b"", DETAIL_ALLOW, status=304)
            del response["Content-Type"]
        else:
            response = self.respond(request, orjson.dumps(negotiation_representation(row)), DETAIL_ALLOW)
        response["ETag"] = tag
        return response

    @staticmethod
    def client(statement):
        """The API client, when the view would accept it without writing: not revoked,
        not expired, `last_used_at` fresh; and not throttled (counted here, like the view)."""
        found = statement.found
        now = timezone.now()
        if not found or found["revoked_at"] is not None:
            return None
        if found["expires_at"] is not None and found["expires_at"] <= now:
            return None
        if found["last_used_at"] is None or found["last_used_at"] < now - LAST_USED_RESOLUTION:
            return None
        # from_db: no field defaults evaluated (a new id, timestamps) for an object only read.
        client = ApiClient.from_db(None, ["id", "name", "party_id"], [found["id"], found["name"], found["party_id"]])
        request = _Principal(client)
        for throttle_class in NegotiationViewSet.throttle_classes:
            if not throttle_class().allow_request(request, None):
                return None  # the view answers 429 with Retry-After (without counting twice)
        return client

    @staticmethod
    def respond(request, body, allow, status=200):
        response = HttpResponse(body, content_type="application/json", status=status)
        response["Allow"] = allow
        response["Vary"] = "Accept, Accept-Language"  # DRF's, then LocaleMiddleware's
        response["Content-Language"] = translation.get_language_from_request(request)
        response["X-Frame-Options"] = "DENY"
        response["Content-Length"] = str(len(body))
        return response


class _Request:
    """What the paginator reads from DRF's Request."""

    def __init__(self, request):
        self.query_params = request.GET
        self.build_absolute_uri = request.build_absolute_uri


class _Principal:
    """What the throttle reads from DRF's Request."""

    def __init__(self, client):
        self.user = client
        self.META = {}

