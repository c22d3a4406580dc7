"""Admin pages whose actions span apps, registered here, above the apps, with the workflow they run."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser

from aura.onboarding import onboarding_panel
from aura.workflows.organizations import open_organization
from billing.admin import OrganizationAccountColumns
from core.admin_sites import platform_admin, tenant_admin
from tenants.actions import NewOrganization
from tenants.admin import OrganizationAdmin
from tenants.models import Organization


@admin.register(Organization, site=platform_admin)
class PlatformOrganizationAdmin(OrganizationAccountColumns, OrganizationAdmin):
    """Organizations with their account (billing's columns: plan, MRR, usage, admins, tenant admin link)."""

    def open_organization(self, new: NewOrganization, *, acting_user: AbstractBaseUser) -> Organization:
        return open_organization(new, acting_user=acting_user)


tenant_admin.index_panels.append(onboarding_panel)
