"""``/api/v1/webhooks/`` (endpoints: CRUD, secret, roll-secret, ping) and ``/api/v1/webhook-deliveries/``
(list, detail with attempts, replay). Admin scope: endpoints hold signing secrets."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from tenants.api.base import UUID_ID, OrganizationModelViewSet, OrganizationReadOnlyViewSet
from tenants.models import ApiScope
from webhooks.actions import (
    NewEndpoint,
    do_delete_webhook_endpoint,
    do_replay_delivery,
    do_roll_webhook_secret,
    do_save_webhook_endpoint,
    do_send_ping,
)
from webhooks.api.serializers import (
    DeliveryFilterSerializer,
    NewWebhookEndpointSerializer,
    SigningSecretSerializer,
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
)
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.queries import endpoint_secret


class WebhookEndpointViewSet(OrganizationModelViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    read_scope = ApiScope.ADMIN
    write_scope = ApiScope.ADMIN

    @extend_schema(request=WebhookEndpointSerializer, responses={201: NewWebhookEndpointSerializer})
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = do_save_webhook_endpoint(WebhookEndpoint(organization=self.organization, **serializer.validated_data))
        assert isinstance(created, NewEndpoint)
        endpoint = created.endpoint
        endpoint.secret = created.secret
        return Response(NewWebhookEndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: BaseSerializer) -> None:
        endpoint = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(endpoint, field, value)
        serializer.instance = do_save_webhook_endpoint(endpoint)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        do_delete_webhook_endpoint(instance)

    @extend_schema(responses=SigningSecretSerializer)
    @action(detail=True, methods=["get"])
    def secret(self, request: Request, pk: str | None = None) -> Response:
        """The signing secret, in full."""
        return Response({"secret": endpoint_secret(self.get_object())})

    @extend_schema(request=None, responses=SigningSecretSerializer)
    @action(detail=True, methods=["post"], url_path="roll-secret")
    def roll_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new signing secret; the old one stops signing at once."""
        return Response({"secret": do_roll_webhook_secret(self.get_object())})

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def ping(self, request: Request, pk: str | None = None) -> Response:
        """Queue a ``ping`` event to this endpoint; follow it under webhook-deliveries."""
        delivery = do_send_ping(self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(parameters=[DeliveryFilterSerializer]),
    retrieve=extend_schema(responses=WebhookDeliveryDetailSerializer),
)
class WebhookDeliveryViewSet(OrganizationReadOnlyViewSet):
    queryset = WebhookDelivery.objects.all()
    serializer_class = WebhookDeliverySerializer
    read_scope = ApiScope.ADMIN
    write_scope = ApiScope.ADMIN
    lookup_value_regex = UUID_ID

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        queryset = super().get_queryset()
        if self.action == "list":
            filters = DeliveryFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            queryset = queryset.filter(**filters.validated_data)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("attempts")
        return queryset

    def get_serializer_class(self) -> type:
        return WebhookDeliveryDetailSerializer if self.action == "retrieve" else WebhookDeliverySerializer

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        """Send the same event (same id and body) again, as a new delivery."""
        delivery = do_replay_delivery(self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
