"""Routes each request to its organization's schema by host name, through the cached lookup."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_tenants.middleware.main import TenantMainMiddleware

from tenants.models import Organization
from tenants.queries import tenant_for_host


class TenantMiddleware(TenantMainMiddleware):
    def get_tenant(self, domain_model: type, hostname: str) -> Organization:
        tenant = tenant_for_host(hostname)
        if tenant is None or not (tenant.is_ready or tenant.is_platform):
            raise domain_model.DoesNotExist(hostname)
        return tenant

    def no_tenant_found(self, request: HttpRequest, hostname: str) -> HttpResponse:
        response = TemplateResponse(request, "404.html", {"host": hostname}, status=404)
        return response.render()
