"""Opening an organization: what tenants, voice and billing each add, in one transaction."""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django_tenants.utils import tenant_context

from billing.actions import do_subscribe
from tenants.actions import NewOrganization, do_create_tenant, do_create_widget_key, do_mark_organization_ready
from tenants.models import Organization
from voice.actions import do_create_default_assistant

logger = logging.getLogger(__name__)


def open_organization(new: NewOrganization, *, acting_user: AbstractBaseUser | None = None) -> Organization:
    """Create an organization with its schema (cloned from the template), domain, first admin,
    default assistant, widget key and subscription (the default plan's trial), and mark it ready.
    All or nothing: PostgreSQL DDL is transactional, so a failure at any step leaves neither a
    schema nor a row behind.
    """
    with transaction.atomic():
        organization = do_create_tenant(new)
        with tenant_context(organization):
            assistant = do_create_default_assistant(organization_name=organization.name)
        do_create_widget_key(organization, assistant_id=assistant.pk)
        do_subscribe(organization)  # the default plan's trial
        do_mark_organization_ready(organization)
    logger.info(
        "organization created slug=%s schema=%s by=%s",
        organization.slug,
        organization.schema_name,
        getattr(acting_user, "pk", None),
    )
    return organization
