"""``/api/v1/widget-keys/`` (CRUD) and ``/api/v1/api-keys/`` (list, create, revoke, rotate; admin scope)."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from tenants.actions import (
    IssuedApiKey,
    do_create_api_key,
    do_delete_widget_key,
    do_revoke_api_key,
    do_rotate_api_key,
    do_rotate_widget_identity_secret,
    do_save_widget_key,
)
from tenants.api.base import OrganizationListCreateRetrieveViewSet, OrganizationModelViewSet
from tenants.api.serializers import (
    ApiKeySerializer,
    IdentitySecretSerializer,
    IssuedApiKeySerializer,
    NewWidgetKeySerializer,
    RotateApiKeySerializer,
    WidgetKeySerializer,
)
from tenants.models import ApiKey, ApiScope, WidgetKey


class WidgetKeyViewSet(OrganizationModelViewSet):
    queryset = WidgetKey.objects.all()
    serializer_class = WidgetKeySerializer
    # The identity secret vouches for any signed-in user of the site: like API keys, admin scope.
    action_scopes = {"rotate_identity_secret": ApiScope.ADMIN}

    @extend_schema(request=WidgetKeySerializer, responses={201: NewWidgetKeySerializer})
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Create a widget key; the answer carries its identity secret, this once."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = do_save_widget_key(WidgetKey(organization=self.organization, **serializer.validated_data))
        secret = do_rotate_widget_identity_secret(key)
        return Response({**WidgetKeySerializer(key).data, "identity_secret": secret}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: IdentitySecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-identity-secret")
    def rotate_identity_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new identity secret, in force at once (hashes of the old one stop verifying). Shown this once."""
        key = self.get_object()
        secret = do_rotate_widget_identity_secret(key)
        return Response({"identity_secret": secret, "identity_secret_hint": key.identity_secret_hint})

    def perform_update(self, serializer: BaseSerializer) -> None:
        key = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(key, field, value)
        serializer.instance = do_save_widget_key(key)

    def perform_destroy(self, instance: WidgetKey) -> None:
        do_delete_widget_key(instance)


def _issued(issued: IssuedApiKey) -> dict[str, object]:
    key = issued.api_key
    key.key = issued.secret
    return IssuedApiKeySerializer(key).data


class ApiKeyViewSet(OrganizationListCreateRetrieveViewSet):
    """API keys of the organization. Only a key with the admin scope may see or change them."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    read_scope = ApiScope.ADMIN
    write_scope = ApiScope.ADMIN

    @extend_schema(request=ApiKeySerializer, responses={201: IssuedApiKeySerializer})
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = do_create_api_key(self.organization, **serializer.validated_data, created_by=self.acting)
        return Response(_issued(issued), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        key = do_revoke_api_key(self.get_object(), acting=self.acting)
        return Response(ApiKeySerializer(key).data)

    @extend_schema(request=RotateApiKeySerializer, responses={201: IssuedApiKeySerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        old = self.get_object()
        options = RotateApiKeySerializer(data=request.data)
        options.is_valid(raise_exception=True)
        grace = timedelta(seconds=options.validated_data["grace_seconds"])
        issued = do_rotate_api_key(old, grace=grace, acting=self.acting)
        return Response(_issued(issued), status=status.HTTP_201_CREATED)
