"""`GET /api/v1/changes/`: every create, update and delete a partner may see, in commit
order, with a cursor that never skips (see `exchanges.changes` and the partner guide)."""
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import changes, policy
from ..changes import TRACKED
from ..models import Change
from .pagination import MAX_PAGE_SIZE

DEFAULT_PAGE_SIZE = 50  # as every list
#: What a change can be about (`ChangeTypeEnum` in the schema).
CHANGE_TYPES = sorted(set(TRACKED.values()))


class ChangeSerializer(serializers.Serializer):
    """One create, update or delete (or `removed`: the client lost sight of a negotiation)."""

    type = serializers.ChoiceField(choices=CHANGE_TYPES)
    id = serializers.UUIDField()
    action = serializers.ChoiceField(choices=Change.Action.choices)
    at = serializers.DateTimeField()
    cursor = serializers.CharField(help_text="Pass as `after` to continue after this change.")
    negotiation = serializers.UUIDField(
        allow_null=True, help_text="For a status change, event, handover or flag: its negotiation (to fetch it)."
    )
    group = serializers.UUIDField(allow_null=True, help_text="For a figure: its detainee group (to fetch it).")


class ChangePageSerializer(serializers.Serializer):
    """A page of the change feed, oldest first."""

    results = ChangeSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Where to continue next time (`after`); null only while the feed is empty."
    )
    next = serializers.URLField(allow_null=True, help_text="This feed from `next_cursor`.")
    previous = serializers.URLField(
        allow_null=True, help_text="Always null: the feed is read forward, from the last cursor you kept (the lists' shape)."
    )


def represent(row):
    return {
        "type": row.object_type,
        "id": str(row.object_id),
        "action": row.action,
        "at": serializers.DateTimeField().to_representation(row.at),
        "cursor": changes.encode(row.position),
        "negotiation": str(row.negotiation_id) if row.negotiation_id and row.object_type in changes.NEGOTIATION_CHILDREN else None,
        "group": str(row.group_id) if row.group_id and row.object_type == "figure" else None,
    }


class ChangeFeedView(APIView):
    """The change feed: for an API client, every create, update and delete of an object it
    may see, oldest first, and `removed` when it lost sight of a negotiation (drop your
    copy of it and what hangs off it). A change that commits later never appears before a
    cursor already handed out; syncing again from your last cursor after a crash shows
    each change at least once, in order."""

    @extend_schema(
        parameters=[
            OpenApiParameter("after", OpenApiTypes.STR, description="A `cursor` or `next_cursor` from an earlier answer; omitted: from the start."),
            OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}, description=f"1 to {MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}."),
        ],
        responses={200: ChangePageSerializer},
    )
    def get(self, request):
        if not policy.is_client(request.user):
            raise PermissionDenied(_("The change feed is for API clients; staff read the audit trail."))
        after = request.query_params.get("after") or None
        size = request.query_params.get("page_size", str(DEFAULT_PAGE_SIZE))
        if not size.isdigit() or not 1 <= int(size) <= MAX_PAGE_SIZE:
            raise ValidationError({"page_size": [_("Must be a whole number from 1 to %(max)d.") % {"max": MAX_PAGE_SIZE}]})
        try:
            rows, position = changes.feed(request.user, after=after, limit=int(size))
        except changes.BadCursor:
            raise ValidationError({"after": [_("Not a cursor this feed handed out.")]}) from None
        results = [represent(row) for row in rows]
        next_cursor = changes.encode(position) if position else None
        next_url = None
        if next_cursor:
            query = request.query_params.copy()
            query["after"] = next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response(
            {"next": next_url, "previous": None, "results": results, "next_cursor": next_cursor}, status=status.HTTP_200_OK
        )
