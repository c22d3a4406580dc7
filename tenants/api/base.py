"""Base classes of every resource. Pick by where the model's table lives:

- ``TenantModelViewSet``: a model in the organization's own schema (assistants, conversations, tools…).
  The schema is the boundary: another organization's rows are not there to be found.
- ``OrganizationModelViewSet``: a public-schema model with an ``organization`` foreign key (widget
  keys, API keys, webhooks, invoices). Every query is filtered by the key's organization.

Both run in the key's tenant schema (set by ApiKeyAuthentication) and drop back to the public schema
when the response is ready. Writes go through the domain's ``do_<verb>_<noun>`` actions.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from rest_framework import mixins, viewsets
from rest_framework.response import Response

from tenants.api.authentication import ApiPrincipal
from tenants.models import ApiKey, ApiScope, Organization

# Path ids: digits that fit a bigint (anything longer is a 404, never a database error), or a UUID.
INT_ID = r"[0-9]{1,18}"
UUID_ID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class ApiViewMixin:
    """Scopes (``read_scope``, ``write_scope``, ``action_scopes``) and the tenant of the key."""

    read_scope: str = ApiScope.READ
    write_scope: str = ApiScope.WRITE
    action_scopes: dict[str, str] = {}
    lookup_value_regex = INT_ID

    @property
    def api_key(self) -> ApiKey:
        return self.request.auth

    @property
    def organization(self) -> Organization:
        return self.request.auth.organization

    @property
    def acting(self) -> str:
        """Who did it, for logs and ``created_by`` fields."""
        return str(ApiPrincipal(self.request.auth)) if isinstance(self.request.auth, ApiKey) else ""

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> Response:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            connection.set_schema_to_public()


class TenantModelViewSet(ApiViewMixin, viewsets.ModelViewSet):
    pass


class TenantReadOnlyViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    pass


class OrganizationScopedMixin(ApiViewMixin):
    def get_queryset(self) -> QuerySet[Model]:
        return super().get_queryset().filter(organization=self.organization)


class OrganizationModelViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    pass


class OrganizationReadOnlyViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    pass


class OrganizationListCreateRetrieveViewSet(
    OrganizationScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    pass
