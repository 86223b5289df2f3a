"""API views for flags and webhook subscriptions."""
from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from exchanges.api import idempotency
from exchanges.api.preconditions import etag_for
from exchanges.api.views import RecordViewSet
from exchanges.models import ApiClient
from exchanges.selectors import is_staff, negotiation_visibility_q

from .. import services
from ..filters import FlagFilter
from ..models import Flag, WebhookDelivery, WebhookSubscription
from . import serializers


class FlagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What the tracker raised about negotiations the caller may see."""

    serializer_class = serializers.FlagSerializer
    filterset_class = FlagFilter
    cursor_ordering = ("-created_at", "-id")

    def get_queryset(self):
        return (
            Flag.objects.filter(negotiation_visibility_q(self.request.user, prefix="negotiation__"))
            .select_related("negotiation", "acknowledged_by_user", "acknowledged_by_client")
        )

    @extend_schema(request=None, responses=serializers.FlagSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Record that the flag has been seen (staff or a read-write client). Idempotent."""
        def acknowledge():
            flag = services.flag_acknowledge(flag=self.get_object(), actor=request.user)
            return Response(self.get_serializer(self.get_queryset().get(pk=flag.pk)).data)

        return idempotency.run(self, request, acknowledge)


class WebhookSubscriptionViewSet(mixins.ListModelMixin, RecordViewSet):
    """The calling client's own webhook subscriptions."""

    serializer_class = serializers.WebhookSubscriptionSerializer
    cursor_ordering = ("-created_at", "-id")

    def get_queryset(self):
        principal = self.request.user
        if isinstance(principal, ApiClient):
            return WebhookSubscription.objects.filter(client=principal)
        if is_staff(principal):
            return WebhookSubscription.objects.all()
        return WebhookSubscription.objects.none()

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
            response = Response(serializers.WebhookSubscriptionCreatedSerializer(instance).data, status=status_code)
            response["ETag"] = etag_for(instance)
            return response
        return super().respond(instance, status_code)

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            services.webhook_subscription_delete(subscription=self.get_object_for_write(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=serializers.WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """Recent deliveries to this subscription, newest first, with their outcome."""
        subscription = self.get_object()
        queryset = WebhookDelivery.objects.filter(subscription=subscription)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializers.WebhookDeliverySerializer(page, many=True).data)
