"""Platform staff manage organizations and domains in the platform admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from aura.admin_sites import platform_admin
from tenants.actions import do_create_organization
from tenants.forms import OrganizationCreationForm
from tenants.models import Domain, Organization, WidgetKey


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Organization, site=platform_admin)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "schema_name", "primary_host", "is_ready", "created_at")
    list_filter = ("is_ready",)
    search_fields = ("name", "slug", "domains__domain")
    readonly_fields = ("schema_name", "slug", "is_ready", "created_at")
    inlines = [DomainInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return super().get_queryset(request).exclude(schema_name="public").prefetch_related("domains")

    @admin.display(description="Host")
    def primary_host(self, obj: Organization) -> str:
        return next((d.domain for d in obj.domains.all() if d.is_primary), "—")

    def get_form(self, request: HttpRequest, obj: Organization | None = None, **kwargs: Any) -> type[ModelForm]:
        if obj is None:
            kwargs["form"] = OrganizationCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Organization | None = None) -> list[str]:
        if obj is None:
            return ["name", "slug", "admin_email", "admin_password"]
        return ["name", "slug", "schema_name", "time_zone", "is_ready", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Organization | None = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Organization | None) -> list[type]:
        return [] if obj is None else self.inlines

    def save_model(self, request: HttpRequest, obj: Organization, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = do_create_organization(form.new_organization(), acting_user=request.user)
        obj.pk = created.pk
        obj.__dict__.update({k: v for k, v in created.__dict__.items() if not k.startswith("_")})

    def has_delete_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        return False  # deleting drops a schema: a deliberate operation, not a click


@admin.register(Domain, site=platform_admin)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    search_fields = ("domain", "tenant__name")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        for domain in queryset:  # one by one, so each host leaves the routing cache
            domain.delete()


@admin.register(WidgetKey, site=platform_admin)
class PlatformWidgetKeyAdmin(admin.ModelAdmin):
    """Staff see every organization's keys; tenants manage their own in their admin."""

    list_display = ("key", "organization", "name", "assistant_id", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("key", "organization__name")
    readonly_fields = ("key", "organization", "name", "assistant_id", "allowed_origins", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
