"""Platform staff manage organizations and domains in the platform admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from core.admin_sites import StaffPage, platform_admin, tenant_admin
from tenants.actions import NewOrganization, do_create_api_key, do_revoke_api_key, do_rotate_api_key
from tenants.forms import ApiKeyCreationForm, OrganizationCreationForm, OrganizationSettingsForm, time_zone_datalist
from tenants.models import ApiKey, Domain, Organization, WidgetKey


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class OrganizationAdmin(admin.ModelAdmin):
    """Organizations on the platform admin. Opening one spans apps (assistant, widget key,
    subscription): the composition root registers this page with the function that does it
    (``aura/admin.py``), so this app needs none of theirs."""

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
        created = self.open_organization(form.new_organization(), acting_user=request.user)
        obj.pk = created.pk
        obj.__dict__.update({k: v for k, v in created.__dict__.items() if not k.startswith("_")})

    def open_organization(self, new: NewOrganization, *, acting_user: AbstractBaseUser) -> Organization:
        raise NotImplementedError("registered by the composition root with the function that opens an organization")

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


@admin.register(ApiKey, site=tenant_admin)
class ApiKeyAdmin(admin.ModelAdmin):
    """A tenant's API keys: issue one (its secret is shown once), revoke, rotate. Never deleted: a
    revoked key stays listed, so its last use can still be read."""

    list_display = ("name", "display_key", "scope_list", "state", "expires_at", "last_used_at", "created_at")
    readonly_fields = (
        "name",
        "display_key",
        "scope_list",
        "state",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "rotated_from",
        "created_by",
        "created_at",
    )
    actions = ["revoke_keys", "rotate_keys"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).filter(organization=request.tenant)

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, **kwargs: Any) -> type[ModelForm]:
        if obj is None:
            kwargs["form"] = ApiKeyCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return ["name", "scopes", "expires_at"] if obj is None else list(self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm, change: bool) -> None:
        if change:
            return  # nothing of an issued key changes but its state (the actions)
        issued = do_create_api_key(
            request.tenant,
            name=form.cleaned_data["name"],
            scopes=list(form.cleaned_data["scopes"]),
            expires_at=form.cleaned_data.get("expires_at"),
            created_by=f"admin:{request.user.get_username()}",
        )
        obj.pk = issued.api_key.pk
        obj.__dict__.update({k: v for k, v in issued.api_key.__dict__.items() if not k.startswith("_")})
        _show_secret(request, issued.api_key.name, issued.secret)

    @admin.display(description="Key")
    def display_key(self, obj: ApiKey) -> str:
        return obj.display_key

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="State")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        return "expired" if obj.is_expired() else "active"

    @admin.action(description="Revoke the selected keys now")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        acting = f"admin:{request.user.get_username()}"
        for key in queryset:
            do_revoke_api_key(key, acting=acting)
        self.message_user(request, f"Revoked {len(queryset)} key(s); they stop working at once.")

    @admin.action(description="Rotate the selected keys (new secret, the old one revoked)")
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        acting = f"admin:{request.user.get_username()}"
        for key in queryset:
            if key.revoked_at or key.is_expired():
                self.message_user(request, f"{key} is not active; not rotated.", messages.WARNING)
                continue
            issued = do_rotate_api_key(key, acting=acting)
            _show_secret(request, issued.api_key.name, issued.secret)


def _show_secret(request: HttpRequest, name: str, secret: str) -> None:
    messages.warning(request, f"The API key “{name}” is {secret} — copy it now: it will not be shown again.")


def organization_settings(request: HttpRequest) -> HttpResponse:
    """The organization's own settings, edited by its admins on its host (the row lives in the public schema)."""
    if not (request.user.is_superuser or request.user.has_perm("voice.change_assistant")):
        raise PermissionDenied("Only the organization's admins change its settings.")
    organization = Organization.objects.get(pk=request.tenant.pk)
    form = OrganizationSettingsForm(request.POST or None, instance=organization)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved. New conversations use them.")
        return redirect(request.path)
    context = {
        **tenant_admin.each_context(request),
        "title": "Organization settings",
        "form": form,
        "time_zones": time_zone_datalist(),
    }
    return TemplateResponse(request, "admin/tenants/organization_settings.html", context)


tenant_admin.add_page(StaffPage("settings/", "organization_settings", "Organization settings", organization_settings))
