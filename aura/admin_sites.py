"""Two admin sites: platform staff on the platform host, each tenant's admins on the tenant's host.

The sites are separate so that the platform admin never lists tenant-schema models (their tables
do not exist in the public schema) and a tenant admin never sees platform data.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest


class PlatformAdminSite(admin.AdminSite):
    site_header = "AURA platform"
    site_title = "AURA platform admin"
    index_title = "Platform administration"


class TenantAdminSite(admin.AdminSite):
    site_header = "AURA"
    index_title = "Your organization"

    def each_context(self, request: HttpRequest) -> dict[str, object]:
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"{tenant.name} · AURA"
            context["site_title"] = f"{tenant.name} admin"
        return context


platform_admin = PlatformAdminSite(name="platform_admin")
tenant_admin = TenantAdminSite(name="tenant_admin")

for site in (platform_admin, tenant_admin):
    site.register(User, UserAdmin)
    site.register(Group, GroupAdmin)
