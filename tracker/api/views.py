"""API views for flags and webhook subscriptions."""
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from exchanges import audit, policy
from exchanges.api import idempotency
from exchanges.api.preconditions import etag_for
from exchanges.api.views import RecordViewSet
from exchanges.models import AccessLogEntry, ApiClient

from .. import services
from ..filters import FlagFilter
from ..models import Flag, WebhookDelivery, WebhookSubscription
from . import serializers


class FlagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What the tracker raised about negotiations the caller may see."""

    policy_model = Flag
    policy_actions = {"acknowledge": "acknowledge"}
    serializer_class = serializers.FlagSerializer
    filterset_class = FlagFilter
    cursor_ordering = ("-created_at", "-id")

    def require_sight(self):
        self.get_object()  # idempotency replays of acknowledge: 404 once the flag is out of sight

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        audit.log_staff_reads_of(self.request.user, page or [], channel=AccessLogEntry.Channel.API)
        return page

    def get_object(self):
        flag = super().get_object()
        audit.log_staff_reads_of(self.request.user, [flag], channel=AccessLogEntry.Channel.API)
        return flag

    def get_queryset(self):
        flags = Flag.objects.select_related("negotiation", "acknowledged_by_user", "acknowledged_by_client")
        return policy.restrict(flags, self.request.user)

    @extend_schema(request=None, responses=serializers.FlagSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Record that the flag has been seen (staff with the permission, or a read-write
        client whose party takes part other than as an observer). Idempotent."""
        def acknowledge():
            flag = self.get_object()
            policy.require(request.user, "acknowledge", flag)
            flag = services.flag_acknowledge(flag=flag, actor=request.user)
            return Response(self.get_serializer(self.get_queryset().get(pk=flag.pk)).data)

        return idempotency.run(self, request, acknowledge)


class WebhookSubscriptionViewSet(mixins.ListModelMixin, RecordViewSet):
    """The calling client's own webhook subscriptions."""

    policy_model = WebhookSubscription
    policy_actions = {"deliveries": "view"}
    queryset = WebhookSubscription.objects.all()
    serializer_class = serializers.WebhookSubscriptionSerializer
    cursor_ordering = ("-created_at", "-id")

    def create_object(self, data):
        if not isinstance(self.request.user, ApiClient):
            raise PermissionDenied(_("Subscriptions belong to API clients; staff add them in the admin."))
        return services.webhook_subscription_create(client=self.request.user, actor=self.request.user, **data)

    def update_object(self, instance, data):
        return services.webhook_subscription_update(subscription=instance, actor=self.request.user, **data)

    @extend_schema(responses={201: serializers.WebhookSubscriptionCreatedSerializer})
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def respond(self, instance, status_code=status.HTTP_200_OK):
        if status_code == status.HTTP_201_CREATED:
            data = serializers.WebhookSubscriptionCreatedSerializer(instance).data
            if isinstance(self.request.data, dict) and self.request.data.get("secret"):
                del data["secret"]  # write-only: the client's own secret is never sent back
            response = Response(data, status=status_code)
            response["ETag"] = etag_for(instance)
            return response
        return super().respond(instance, status_code)

    def delete_object(self, instance):
        services.webhook_subscription_delete(subscription=instance, actor=self.request.user)

    @extend_schema(responses=serializers.WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """Recent deliveries to this subscription, newest first, with their outcome: only
        those about negotiations the client may still see."""
        subscription = self.get_object()
        queryset = policy.restrict(WebhookDelivery.objects.filter(subscription=subscription), request.user)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializers.WebhookDeliverySerializer(page, many=True).data)
