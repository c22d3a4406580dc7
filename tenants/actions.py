"""Writes to organizations. Each is one function, inside one transaction, named do_<verb>_<noun>."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django_tenants.utils import tenant_context

from tenants.models import Domain, Organization, WidgetKey, schema_name_for

logger = logging.getLogger(__name__)

PLATFORM_SCHEMA = "public"


@dataclass(frozen=True, slots=True)
class NewOrganization:
    """What it takes to open an organization; validated as a whole before anything is written."""

    name: str
    slug: str
    admin_email: str
    admin_password: str

    def validate(self) -> None:
        errors: dict[str, list[str]] = {}
        candidate = Organization(name=self.name.strip(), slug=self.slug, schema_name=schema_name_for(self.slug))
        try:
            candidate.full_clean(exclude=["schema_name"], validate_unique=False)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if self.slug and Organization.objects.filter(slug=self.slug).exists():
            errors.setdefault("slug", []).append(f"An organization with the slug “{self.slug}” already exists.")
        if self.slug and Domain.objects.filter(domain=domain_for_slug(self.slug)).exists():
            errors.setdefault("slug", []).append(f"The domain {domain_for_slug(self.slug)} is already taken.")
        if not self.admin_email:
            errors.setdefault("admin_email", []).append("The first admin's e-mail address is required.")
        else:
            try:
                validate_email(self.admin_email)
            except ValidationError as exc:
                errors.setdefault("admin_email", []).extend(exc.messages)
        try:
            validate_password(self.admin_password)
        except ValidationError as exc:
            errors.setdefault("admin_password", []).extend(exc.messages)
        if errors:
            raise ValidationError(errors)


def domain_for_slug(slug: str) -> str:
    return f"{slug}.{settings.AURA_BASE_DOMAIN}"


def origin_of(host: str) -> str:
    """The browser origin of a platform-served host: the platform URL's scheme and port."""
    scheme, _, rest = settings.AURA_PLATFORM_URL.partition("://")
    authority = rest.split("/", 1)[0]
    port = authority.rpartition(":")[2] if ":" in authority else ""
    return f"{scheme}://{host}{':' + port if port else ''}"


def do_create_widget_key(organization: Organization, *, assistant_id: int, name: str = "Website") -> WidgetKey:
    """A key for the organization's site. Its own host is allowed from the start, so the admin's live
    preview works; the admin adds their sites' origins."""
    return WidgetKey.objects.create(
        organization=organization,
        name=name,
        assistant_id=assistant_id,
        allowed_origins=[origin_of(domain_for_slug(organization.slug))],
    )


def do_allow_widget_origin(key: WidgetKey, origin: str) -> WidgetKey:
    if origin not in key.allowed_origins:
        key.allowed_origins = [*key.allowed_origins, origin]
        key.save(update_fields=["allowed_origins"])
    return key


def do_create_organization(new: NewOrganization, *, acting_user: AbstractBaseUser | None = None) -> Organization:
    """Create an organization with its schema (cloned from the template), domain, first admin,
    default assistant and subscription (the default plan's trial), and mark it ready. All or
    nothing: PostgreSQL DDL is transactional, so a failure at any step leaves neither a schema nor
    a row behind.
    """
    new.validate()
    from billing.actions import do_subscribe
    from voice.actions import do_create_default_assistant

    with transaction.atomic():
        organization = Organization(name=new.name.strip(), slug=new.slug, schema_name=schema_name_for(new.slug))
        organization.save()
        Domain.objects.create(domain=domain_for_slug(new.slug), tenant=organization, is_primary=True)
        with tenant_context(organization):
            get_user_model().objects.create_superuser(
                username=new.admin_email, email=new.admin_email, password=new.admin_password
            )
            assistant = do_create_default_assistant(organization_name=organization.name)
        do_create_widget_key(organization, assistant_id=assistant.pk)
        do_subscribe(organization)  # the default plan's trial
        organization.is_ready = True
        organization.save(update_fields=["is_ready"])
    logger.info(
        "organization created slug=%s schema=%s by=%s",
        organization.slug,
        organization.schema_name,
        getattr(acting_user, "pk", None),
    )
    return organization


def do_ensure_platform_organization() -> Organization:
    """The public schema's own row and host: django-tenants routes the platform host through it."""
    platform, _ = Organization.objects.get_or_create(
        schema_name=PLATFORM_SCHEMA,
        defaults={"name": "AURA platform", "slug": "platform", "is_ready": True},
    )
    Domain.objects.get_or_create(domain=settings.AURA_BASE_DOMAIN, defaults={"tenant": platform, "is_primary": True})
    return platform
