"""Two admin sites: platform staff on the platform host, each tenant's admins on the tenant's host.

The sites are separate so that the platform admin never lists tenant-schema models (their tables
do not exist in the public schema) and a tenant admin never sees platform data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse


@dataclass(frozen=True)
class StaffPage:
    """An admin page that is not a model (provider health, billing dashboards, a tenant's usage)."""

    route: str
    name: str
    title: str
    view: Callable[..., HttpResponse]


class _PagesMixin:
    """Pages that are not models, listed on the index page (``add_page``)."""

    name: str

    def add_page(self, page: StaffPage) -> None:
        self.staff_pages.append(page)

    def get_urls(self) -> list[URLPattern]:
        pages = [path(page.route, self.admin_view(page.view), name=page.name) for page in self.staff_pages]
        return pages + super().get_urls()

    def each_context(self, request: HttpRequest) -> dict[str, object]:
        context = super().each_context(request)
        context["staff_pages"] = self.staff_pages
        return context

    pages_section = ""  # when set: the titled pages are a section of the index and the sidebar, first

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        pages = [page for page in self.staff_pages if page.title]
        if not self.pages_section or app_label is not None or not pages or not request.user.is_staff:
            return apps
        links = [
            {
                "name": page.title,
                "object_name": page.name,
                "admin_url": reverse(f"{self.name}:{page.name}"),
                "add_url": None,
                "view_only": True,
                "perms": {"view": True},
            }
            for page in pages
        ]
        section = {
            "name": self.pages_section,
            # A shared app's label: django-tenants' app list greys out labels it does not know.
            "app_label": "billing",
            "app_url": links[0]["admin_url"],
            "has_module_perms": True,
            "models": links,
        }
        return [section, *apps]


class PlatformAdminSite(_PagesMixin, admin.AdminSite):
    site_header = "AURA platform"
    site_title = "AURA platform admin"
    index_title = "Platform administration"
    index_template = "admin/platform_index.html"
    pages_section = "Dashboards"
    site_url = None  # no "View site": the platform host has no site of its own to view

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.staff_pages: list[StaffPage] = []


class TenantAdminSite(_PagesMixin, admin.AdminSite):
    site_header = "AURA"
    index_title = "Your organization"
    index_template = "admin/tenant_index.html"
    site_url = None  # no "View site": an organization's host serves only this admin

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.staff_pages: list[StaffPage] = []  # the tenant's own pages (usage and billing)
        # What the home page shows above the apps (the onboarding checklist): each callable returns
        # template context for the index; the composition root registers them (it may read every app).
        self.index_panels: list[Callable[[HttpRequest], dict[str, object]]] = []

    def index(self, request: HttpRequest, extra_context: dict[str, object] | None = None) -> HttpResponse:
        context: dict[str, object] = {}
        for panel in self.index_panels:
            context.update(panel(request))
        return super().index(request, {**context, **(extra_context or {})})

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
