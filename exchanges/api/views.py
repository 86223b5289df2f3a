"""API v1 views: check who may do what, translate JSON, call a service."""
from django.db import connection, transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from .. import audit, policy, selectors, services
from ..soft_cache import cache_state
from ..filters import DetaineeGroupFilter, EventFilter, NegotiationFilter, PartyFilter, ReportedFigureFilter
from ..models import AccessLogEntry, ApiClient, DetaineeGroup, Event, Handover, Negotiation, Party, ReportedFigure, StatusChange
from . import idempotency, serializers
from .preconditions import check_if_match, etag_for, not_modified


class RecordViewSet(viewsets.GenericViewSet):
    """Create and update through the services; respond with the object as a list shows it.

    What the caller sees is `policy.restrict` of the view's records; before a write reads
    its input, the caller is asked `policy.require` (403 with the reason, nothing written;
    the services ask again). Every detail response carries an ETag; writes honour
    `If-Match` (412 when stale) and POSTs honour `Idempotency-Key`.
    """

    #: The kind of record the view serves: staff need its model permissions (permissions.py).
    policy_model = None

    def get_queryset(self):
        return policy.restrict(super().get_queryset(), self.request.user)

    def create_object(self, data):  # pragma: no cover - every writable subclass overrides it
        raise NotImplementedError

    def update_object(self, instance, data):  # pragma: no cover
        raise NotImplementedError

    def delete_object(self, instance):  # pragma: no cover
        raise NotImplementedError

    def require_sight(self):
        """404 when what the request hangs off is not visible to the caller (idempotency
        replays ask before replaying); top-level lists hang off nothing."""

    def require_create(self):
        """Refuse (403) before reading the body when the caller may not add here."""
        policy.require(self.request.user, "add", self.policy_model)

    def respond(self, instance, status_code=status.HTTP_200_OK):
        instance = self.get_queryset().get(pk=instance.pk)
        response = Response(self.get_serializer(instance).data, status=status_code)
        if hasattr(instance, "updated_at"):
            response["ETag"] = etag_for(instance)
        return response

    def filter_queryset(self, queryset):
        """Query-string filters narrow lists; a lookup by id ignores them (and their cost),
        and so does a list that asks for no filter (building the filter form is about a
        fifth of a plain list request's time)."""
        if self.action != "list":
            return queryset
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is not None and not set(self.request.query_params) & set(filterset_class.base_filters):
            return queryset
        return super().filter_queryset(queryset)

    def get_object_for_write(self):
        """The object, locked until the end of the write's transaction, its ETag checked."""
        instance = self.get_object()  # visibility: 404 for what the caller may not see
        instance = type(instance).objects.select_for_update().get(pk=instance.pk)
        check_if_match(self.request, instance)
        return instance

    def retrieve(self, request, *args, **kwargs):
        instance = self.get_object()
        if hasattr(instance, "updated_at") and not_modified(request, instance):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag_for(instance)})
        response = Response(self.get_serializer(instance).data)
        if hasattr(instance, "updated_at"):
            response["ETag"] = etag_for(instance)
        return response

    def create(self, request, *args, **kwargs):
        return idempotency.run(self, request, lambda: self._create(request))

    def _create(self, request):
        self.require_create()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.create_object(serializer.validated_data)
        return self.respond(instance, status.HTTP_201_CREATED)

    def update(self, request, *args, partial=False, **kwargs):
        with transaction.atomic():
            instance = self.get_object_for_write()
            policy.require(request.user, "change", instance)
            serializer = self.get_serializer(instance, data=request.data, partial=partial)
            serializer.is_valid(raise_exception=True)
            instance = self.update_object(instance, serializer.validated_data)
        return self.respond(instance)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.get_object_for_write()
            policy.require(request.user, "delete", instance)
            self.delete_object(instance)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PartyViewSet(mixins.ListModelMixin, RecordViewSet):
    """Negotiating parties: governments, de-facto authorities, mediators, the UN, the ICRC."""

    queryset = Party.objects.all()
    policy_model = Party
    serializer_class = serializers.PartySerializer
    filterset_class = PartyFilter
    cursor_ordering = ("name",)

    def create_object(self, data):
        return services.party_create(actor=self.request.user, **data)

    def update_object(self, instance, data):
        return services.party_update(party=instance, actor=self.request.user, **data)

    def delete_object(self, instance):
        services.party_delete(party=instance, actor=self.request.user)


class DetaineeGroupViewSet(mixins.ListModelMixin, RecordViewSet):
    """Detainee groups, with a summary of every figure claimed about them."""

    queryset = DetaineeGroup.objects.prefetch_related("figures")
    policy_model = DetaineeGroup
    serializer_class = serializers.DetaineeGroupSerializer
    filterset_class = DetaineeGroupFilter
    cursor_ordering = ("-created_at", "-id")

    def create_object(self, data):
        return services.detainee_group_create(actor=self.request.user, **data)

    def update_object(self, instance, data):
        return services.detainee_group_update(group=instance, actor=self.request.user, **data)

    def delete_object(self, instance):
        services.detainee_group_delete(group=instance, actor=self.request.user)


GROUP_PK = OpenApiParameter("group_pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Detainee group id")
NEGOTIATION_PK = OpenApiParameter(
    "negotiation_pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Negotiation id"
)


@extend_schema_view(
    list=extend_schema(parameters=[GROUP_PK]),
    create=extend_schema(parameters=[GROUP_PK]),
    retrieve=extend_schema(parameters=[GROUP_PK]),
    partial_update=extend_schema(parameters=[GROUP_PK], request=serializers.ReportedFigureUpdateSerializer),
    destroy=extend_schema(parameters=[GROUP_PK]),
)
class ReportedFigureViewSet(mixins.ListModelMixin, RecordViewSet):
    """Figures reported about one group: claims with their source, never overwritten.

    Only `reliability` and `notes` can change after a claim is recorded; the party that
    recorded a claim may withdraw it (DELETE; it stays in the audit trail)."""

    policy_model = ReportedFigure
    serializer_class = serializers.ReportedFigureSerializer
    filterset_class = ReportedFigureFilter
    cursor_ordering = ("reported_on", "created_at")
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_group(self):
        if not hasattr(self, "_group"):
            self._group = get_object_or_404(policy.groups_visible_to(self.request.user), pk=self.kwargs["group_pk"])
        return self._group

    def require_sight(self):
        self.get_group()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ReportedFigure.objects.none()
        return ReportedFigure.objects.filter(group=self.get_group())

    def get_serializer_class(self):
        if self.action == "partial_update":
            return serializers.ReportedFigureUpdateSerializer
        return serializers.ReportedFigureSerializer

    def create_object(self, data):
        return services.figure_create(group=self.get_group(), actor=self.request.user, **data)

    def update_object(self, instance, data):
        return services.figure_update(figure=instance, actor=self.request.user, **data)

    def delete_object(self, instance):
        services.figure_delete(figure=instance, actor=self.request.user)


class NegotiationViewSet(mixins.ListModelMixin, RecordViewSet):
    """Negotiations the caller may see. The status is changed through `status-changes/`."""

    policy_model = Negotiation
    serializer_class = serializers.NegotiationSerializer
    filterset_class = NegotiationFilter
    cursor_ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "updated_at")
    def get_queryset(self):
        return selectors.negotiation_list(self.request.user)

    def get_serializer_class(self):
        # The schema documents the staff form: its `teams` and `case_officer` are optional,
        # and say they are for staff logins alone.
        if getattr(self, "swagger_fake_view", False) or policy.is_staff(self.request.user):
            return serializers.StaffNegotiationSerializer
        return serializers.NegotiationSerializer

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page:
            log_reads(self.request.user, page)
        return page

    def get_object(self):
        negotiation = super().get_object()
        log_reads(self.request.user, [negotiation])
        return negotiation

    @staticmethod
    def _lists(data):
        data = dict(data)
        if "covered_groups" in data:
            data["groups"] = data.pop("covered_groups")
        return data

    def create_object(self, data):
        return services.negotiation_create(actor=self.request.user, **self._lists(data))

    def update_object(self, instance, data):
        return services.negotiation_update(negotiation=instance, actor=self.request.user, **self._lists(data))

    def delete_object(self, instance):
        services.negotiation_delete(negotiation=instance, actor=self.request.user)


def log_reads(principal, negotiations):
    """The read logs: an API client's reads of `participants` negotiations (audit trail),
    a staff login's reads of `staff_only` ones (access log)."""
    if isinstance(principal, ApiClient):
        audit.log_reads(principal, negotiations)
    else:
        audit.log_staff_access(principal, negotiations, channel=AccessLogEntry.Channel.API)


#: The schema of a view of rows under one negotiation: every action takes its id.
under_a_negotiation = extend_schema_view(
    **{
        action: extend_schema(parameters=[NEGOTIATION_PK])
        for action in ("list", "create", "retrieve", "update", "partial_update", "destroy")
    }
)


class NegotiationChildViewSet(RecordViewSet):
    """Rows that belong to one negotiation; a negotiation the caller may not see is a 404."""

    def get_negotiation(self):
        if not hasattr(self, "_negotiation"):
            # Staff reach the rows of a negotiation with the rows' own view permission
            # (permissions.py) and the negotiation's team scope.
            negotiations = (
                Negotiation.objects.filter(policy.staff_negotiation_scope_q(self.request.user))
                if policy.is_staff(self.request.user)
                else policy.negotiations_visible_to(self.request.user)
            )
            self._negotiation = get_object_or_404(negotiations, pk=self.kwargs["negotiation_pk"])
            log_reads(self.request.user, [self._negotiation])
        return self._negotiation

    def require_sight(self):
        self.get_negotiation()

    def require_create(self):
        policy.require(self.request.user, "add", self.policy_model, negotiation=self.get_negotiation())


@extend_schema_view(
    list=extend_schema(parameters=[NEGOTIATION_PK]),
    create=extend_schema(parameters=[NEGOTIATION_PK], responses={201: serializers.StatusChangeSerializer}),
    retrieve=extend_schema(parameters=[NEGOTIATION_PK]),
)
class StatusChangeViewSet(mixins.ListModelMixin, NegotiationChildViewSet):
    """A negotiation's status history, oldest first. POST records a change (409 if illegal)."""

    policy_model = StatusChange
    serializer_class = serializers.StatusChangeSerializer
    cursor_ordering = ("sequence",)
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.StatusChange.objects.none()
        return selectors.status_change_list(self.get_negotiation())

    def create_object(self, data):
        return services.negotiation_change_status(
            negotiation=self.get_negotiation(), actor=self.request.user, **data
        )


@under_a_negotiation
class EventViewSet(mixins.ListModelMixin, NegotiationChildViewSet):
    """A negotiation's timeline, oldest first. Only the party that recorded an event
    changes or deletes it."""

    policy_model = Event
    serializer_class = serializers.EventSerializer
    filterset_class = EventFilter
    cursor_ordering = ("occurred_at", "created_at")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.Event.objects.none()
        return selectors.event_list(self.get_negotiation())

    def create_object(self, data):
        return services.event_create(negotiation=self.get_negotiation(), actor=self.request.user, **data)

    def update_object(self, instance, data):
        return services.event_update(event=instance, actor=self.request.user, **data)

    def delete_object(self, instance):
        services.event_delete(event=instance, actor=self.request.user)


@under_a_negotiation
class HandoverViewSet(mixins.ListModelMixin, NegotiationChildViewSet):
    """How an agreement is carried out, in order of `sequence`. Only the party that
    recorded a handover changes or deletes it; `transfers` sent replace the list."""

    policy_model = Handover
    serializer_class = serializers.HandoverSerializer
    cursor_ordering = ("sequence",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Handover.objects.none()
        return selectors.handover_list(self.get_negotiation())

    def create_object(self, data):
        return services.handover_create(negotiation=self.get_negotiation(), actor=self.request.user, **data)

    def update_object(self, instance, data):
        return services.handover_update(handover=instance, actor=self.request.user, **data)

    def delete_object(self, instance):
        services.handover_delete(handover=instance, actor=self.request.user)


@extend_schema(responses=serializers.ApiClientSerializer)
@api_view(["GET"])
def me(request):
    """The API client making the call (for staff logins: 404)."""
    if not isinstance(request.user, ApiClient):
        return Response({"detail": _("Not an API client.")}, status=status.HTTP_404_NOT_FOUND)
    return Response(serializers.ApiClientSerializer(request.user).data)


def _database_state():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        return "unavailable"
    return "ok"


def _broker_state():
    """Whether the Celery broker accepts a connection (one try, one second)."""
    from config.celery import app

    try:
        with app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=1)
    except Exception:  # noqa: BLE001 - any broker failure means it is unavailable
        return "unavailable"
    return "ok"


def healthz(request):
    """200 when the database answers; no authentication."""
    if _database_state() != "ok":
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Each dependency's state, for load balancers and operators: 503 only when the
    database does not answer (nothing can be served); without the cache or the broker the
    tracker still serves, `degraded` (rate limits let requests through; notifications wait
    in the outbox until the broker is back)."""
    checks = {"database": _database_state(), "cache": cache_state(), "broker": _broker_state()}
    if checks["database"] != "ok":
        overall = "unavailable"
    else:
        overall = "ok" if all(state == "ok" for state in checks.values()) else "degraded"
    return JsonResponse({"status": overall, **checks}, status=503 if overall == "unavailable" else 200)


@csrf_exempt  # an unknown path answers 404 to every method, never a CSRF page
def not_found(request, exception=None):
    """JSON 404 for unknown API paths, whatever the method; the admin keeps Django's page."""
    return JsonResponse({"detail": _("Not found.")}, status=404)
