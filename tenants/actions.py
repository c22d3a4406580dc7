"""Writes to organizations. Each is one function, inside one transaction, named do_<verb>_<noun>."""

from __future__ import annotations

import hashlib
import logging
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from redis.exceptions import RedisError

from core.crypto import encrypt, mask, reencrypt
from tenants.hosts import domain_for_slug, origin_of
from tenants.models import API_KEY_PREFIX_LENGTH, ApiKey, ApiScope, Domain, Organization, WidgetKey, schema_name_for

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


def do_create_widget_key(organization: Organization, *, assistant_id: int, name: str = "Website") -> WidgetKey:
    """A key for the organization's site. Its own host is allowed from the start, so the admin's live
    preview works; the admin adds their sites' origins. No identity secret yet: the admin makes one (and
    sees it, once) with "Rotate the identity secret" when the site has signed-in users to vouch for."""
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


def do_create_tenant(new: NewOrganization) -> Organization:
    """The organization's row, its schema (cloned from the template), its domain and its first admin,
    not yet ready: opening an organization (``aura.workflows.organizations.open_organization``) adds
    what the other apps give it, in the same transaction, and then marks it ready."""
    new.validate()
    with transaction.atomic():
        organization = Organization(name=new.name.strip(), slug=new.slug, schema_name=schema_name_for(new.slug))
        organization.save()
        Domain.objects.create(domain=domain_for_slug(new.slug), tenant=organization, is_primary=True)
        with tenant_context(organization):
            get_user_model().objects.create_superuser(
                username=new.admin_email, email=new.admin_email, password=new.admin_password
            )
    return organization


def do_mark_organization_ready(organization: Organization) -> None:
    organization.is_ready = True
    organization.save(update_fields=["is_ready"])


def do_ensure_platform_organization() -> Organization:
    """The public schema's own row and host: django-tenants routes the platform host through it."""
    platform, _ = Organization.objects.get_or_create(
        schema_name=PLATFORM_SCHEMA,
        defaults={"name": "AURA platform", "slug": "platform", "is_ready": True},
    )
    Domain.objects.get_or_create(domain=settings.AURA_BASE_DOMAIN, defaults={"tenant": platform, "is_primary": True})
    return platform


# ------------------------------------------------------------------ API keys
@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new key and its secret: the only moment the secret exists outside the caller's hands."""

    api_key: ApiKey
    secret: str  # the whole "sk_<prefix>_<secret>"; never stored


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_api_key_material() -> tuple[str, str]:
    alphabet = string.ascii_lowercase + string.digits
    prefix = "".join(secrets.choice(alphabet) for _ in range(API_KEY_PREFIX_LENGTH))
    return prefix, f"sk_{prefix}_{secrets.token_urlsafe(32)}"


@transaction.atomic
def do_create_api_key(
    organization: Organization,
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    created_by: str = "",
    rotated_from: ApiKey | None = None,
) -> IssuedApiKey:
    """Issue a key. Validates like the admin form (name, scopes, expiry in the future)."""
    prefix, raw = _new_api_key_material()
    key = ApiKey(
        organization=organization,
        name=name.strip(),
        prefix=prefix,
        key_hash=hash_api_key(raw),
        scopes=sorted(set(scopes), key=list(ApiScope.values).index) if isinstance(scopes, list) else scopes,
        expires_at=expires_at,
        created_by=created_by[:200],
        rotated_from=rotated_from,
    )
    key.full_clean()
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Choose a moment in the future."})
    key.save()
    logger.info("api key created org=%s prefix=%s by=%s", organization.slug, prefix, created_by)
    return IssuedApiKey(api_key=key, secret=raw)


@transaction.atomic
def do_revoke_api_key(key: ApiKey, *, acting: str = "") -> ApiKey:
    """Revoke now (idempotent). The lookup cache forgets the key, so the next request fails."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        logger.info("api key revoked org=%s prefix=%s by=%s", key.organization_id, key.prefix, acting)
    return key


MAX_ROTATION_GRACE = timedelta(days=7)


@transaction.atomic
def do_rotate_api_key(key: ApiKey, *, grace: timedelta = timedelta(0), acting: str = "") -> IssuedApiKey:
    """A new key with the same name, scopes and expiry; the old one stops now, or after ``grace``
    (at most a week) so deployments can switch over without an outage."""
    key = ApiKey.objects.select_for_update().select_related("organization").get(pk=key.pk)
    if key.revoked_at is not None or key.is_expired():
        raise ValidationError("A revoked or expired key cannot be rotated; create a new one.", code="key_inactive")
    if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise ValidationError({"grace_seconds": "Choose between 0 and 604800 seconds (a week)."})
    issued = do_create_api_key(
        key.organization,
        name=key.name,
        scopes=list(key.scopes),
        expires_at=key.expires_at,
        created_by=acting,
        rotated_from=key,
    )
    if grace:
        ends = timezone.now() + grace
        key.expires_at = ends if key.expires_at is None else min(key.expires_at, ends)
        key.save(update_fields=["expires_at"])
    else:
        do_revoke_api_key(key, acting=acting)
    return issued


def do_touch_api_key(key: ApiKey, *, now: datetime | None = None) -> None:
    """Record use at most once a minute per key: one Redis SET NX per request, an UPDATE a minute."""
    now = now or timezone.now()
    try:
        first_this_minute = caches["platform"].add(f"api-key-used:{key.pk}", 1, LAST_USED_RESOLUTION_S)
    except RedisError:
        first_this_minute = key.last_used_at is None or (now - key.last_used_at).total_seconds() >= 60
    if first_this_minute:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)


LAST_USED_RESOLUTION_S = 60


# ------------------------------------------------------------------ widget keys (API and admin)
@transaction.atomic
def do_save_widget_key(key: WidgetKey) -> WidgetKey:
    """Create or update a widget key, validated like the admin form. A new key without origins gets
    the organization's own host, as do_create_widget_key gives it."""
    if key.pk is None and not key.allowed_origins:
        key.allowed_origins = [origin_of(domain_for_slug(key.organization.slug))]
    key.full_clean(exclude=["organization"])
    key.save()
    return key


def do_delete_widget_key(key: WidgetKey) -> None:
    key.delete()  # WidgetKey.delete drops it from the lookup cache: it stops opening sessions at once


IDENTITY_SECRET_PREFIX = "ids_"


def new_identity_secret() -> str:
    return IDENTITY_SECRET_PREFIX + secrets.token_urlsafe(32)


def seal_identity_secret(key: WidgetKey, secret: str) -> None:
    """Put ``secret`` into ``key``, encrypted, with its masked hint (the caller saves)."""
    key.encrypted_identity_secret = encrypt(secret)
    key.identity_secret_hint = mask(secret)


@transaction.atomic
def do_rotate_widget_identity_secret(key: WidgetKey) -> str:
    """A new identity secret for the key, in force at once (hashes made with the old one stop verifying:
    those visitors are anonymous until the site sends hashes of the new one). Returned this once."""
    secret = new_identity_secret()
    seal_identity_secret(key, secret)
    key.save(update_fields=["encrypted_identity_secret", "identity_secret_hint"])  # save() drops the cached key
    return secret


@transaction.atomic
def do_reencrypt_widget_identity_secrets() -> int:
    """Re-seal every widget key's identity secret with the newest encryption key. Returns how many."""
    count = 0
    for key in WidgetKey.objects.select_for_update().exclude(encrypted_identity_secret=""):
        key.encrypted_identity_secret = reencrypt(key.encrypted_identity_secret)
        key.save(update_fields=["encrypted_identity_secret"])
        count += 1
    return count
