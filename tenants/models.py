"""Organizations and their domains. Public schema."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import connection, models
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.postgresql_backend.base import _check_schema_name
from django_tenants.utils import schema_exists

from tenants.schema_clone import clone_schema

SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"
# Slugs that would collide with platform hosts, schema names or PostgreSQL's own schemas.
RESERVED_SLUGS = frozenset(
    {"public", "www", "api", "admin", "static", "media", "platform", "staff", "app", "ws", "mail", "tenant-template"}
)


def validate_slug(value: str) -> None:
    if value in RESERVED_SLUGS or value.startswith("pg-"):
        raise ValidationError(f"“{value}” is reserved; choose another slug.", code="reserved")


slug_validators = [
    RegexValidator(
        SLUG_PATTERN,
        "Use 3–40 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen.",
        code="invalid_slug",
    ),
    validate_slug,
]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def default_business_hours() -> dict[str, list[list[str]]]:
    return {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}


def validate_time_zone(value: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"“{value}” is not a time zone; use a name such as Europe/Paris.") from None


def validate_business_hours(value: object) -> None:
    """Weekday → list of [opens, closes] in 24-hour HH:MM; closes after opens, ranges in order and apart."""
    if not isinstance(value, dict):
        raise ValidationError('Enter an object such as {"mon": [["09:00", "17:00"]]}.')
    problems = []
    for day, ranges in value.items():
        if day not in WEEKDAYS:
            problems.append(f"“{day}” is not a weekday; use {', '.join(WEEKDAYS)}.")
            continue
        if not isinstance(ranges, list):
            problems.append(f"{day}: enter a list of [opens, closes] pairs.")
            continue
        previous_close = ""
        for pair in ranges:
            if not (
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) and _TIME.match(t) for t in pair)
            ):
                problems.append(f"{day}: {pair!r} is not a pair of HH:MM times.")
            elif pair[0] >= pair[1]:
                problems.append(f"{day}: {pair[0]}–{pair[1]} closes before it opens.")
            elif pair[0] < previous_close:
                problems.append(f"{day}: {pair[0]}–{pair[1]} overlaps the range before it.")
            else:
                previous_close = pair[1]
    if problems:
        raise ValidationError(problems)


def schema_name_for(slug: str) -> str:
    """Slugs never contain underscores, so this mapping is one-to-one."""
    return "t_" + re.sub(r"-", "_", slug)


class Organization(TenantMixin):
    """A customer of the platform. Its data lives in its own PostgreSQL schema."""

    name = models.CharField(max_length=100)
    slug = models.CharField(max_length=40, unique=True, validators=slug_validators)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    business_hours = models.JSONField(
        default=default_business_hours,
        blank=True,
        validators=[validate_business_hours],
        help_text='Opening hours per weekday in the organization\'s time zone, e.g. {"mon": [["09:00", "17:30"]], '
        '"sat": [["10:00", "14:00"], ["16:00", "20:00"]]}. A missing day is closed.',
    )
    # Privacy (conversations.privacy): what is kept, and for how long.
    redact_personal_data = models.BooleanField(
        default=False,
        help_text="Replace card numbers, national ids, emails and phone numbers in transcripts before they are stored.",
    )
    record_audio = models.BooleanField(
        default=False, help_text="Store the visitor's speech of each turn as audio. Off: no audio is ever stored."
    )
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Delete conversations this many days after they started. Empty: keep them.",
    )
    is_ready = models.BooleanField(
        default=False, help_text="True once the schema, domain, first admin and default assistant all exist."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_platform(self) -> bool:
        return self.schema_name == "public"

    def create_schema(self, check_if_exists: bool = False, sync_schema: bool = True, verbosity: int = 1) -> bool:
        """Clone the migrated template schema, tables, rows and all (see tenants.schema_clone).

        django-tenants would follow its clone with a faked ``migrate_schemas`` run that finds nothing
        to do (the clone copies ``django_migrations``) at the cost of a migration-graph load. Without a
        template (``setup_platform`` creates it) fall back to migrating.
        """
        base_schema = settings.TENANT_BASE_SCHEMA
        if not (sync_schema and schema_exists(base_schema)):
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        _check_schema_name(self.schema_name)
        clone_schema(base_schema, self.schema_name)
        connection.set_schema_to_public()
        return True

    def save(self, *args: object, **kwargs: object) -> None:
        super().save(*args, **kwargs)
        from tenants.cache import forget_cached_hosts_of

        forget_cached_hosts_of(self)


class Domain(DomainMixin):
    """A host name that routes to one organization (``<slug>.<AURA_BASE_DOMAIN>`` or a custom one)."""

    def __str__(self) -> str:
        return self.domain

    def save(self, *args: object, **kwargs: object) -> None:
        from tenants.cache import forget_cached_host

        if self.pk:  # a renamed domain must stop routing under its old name at once
            old = Domain.objects.filter(pk=self.pk).values_list("domain", flat=True).first()
            if old:
                forget_cached_host(old)
        super().save(*args, **kwargs)
        forget_cached_host(self.domain)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        from tenants.cache import forget_cached_host

        forget_cached_host(self.domain)
        return super().delete(*args, **kwargs)


def _new_widget_key() -> str:
    import secrets

    return "pk_" + secrets.token_urlsafe(18)


class WidgetKey(models.Model):
    """The public key a tenant's web page embeds. Bound to one assistant and a list of origins."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="widget_keys")
    key = models.CharField(max_length=64, unique=True, default=_new_widget_key, editable=False)
    name = models.CharField(max_length=100, default="Website")
    assistant_id = models.BigIntegerField(help_text="The assistant (in the organization's schema) this key talks to.")
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text='Origins allowed to use this key, e.g. ["https://shop.example", "https://*.shop.example"].',
    )
    is_active = models.BooleanField(default=True)
    # Appearance, written into the embed snippet (a site can still override it with attributes or CSS).
    title = models.CharField(max_length=60, blank=True, help_text="Shown in the widget's header.")
    accent_color = models.CharField(
        max_length=7,
        default="#4f46e5",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #4f46e5.")],
    )
    placement = models.CharField(
        max_length=16,
        default="bottom-right",
        choices=[("bottom-right", "Bottom right"), ("bottom-left", "Bottom left"), ("inline", "In the page")],
    )
    # Identity verification (docs/widget.md): a site vouches for its signed-in user with an HMAC-SHA256 of
    # the user's id under this secret. Sealed with core.crypto; shown in full once, then only its hint.
    encrypted_identity_secret = models.TextField(blank=True, editable=False)
    identity_secret_hint = models.CharField(max_length=24, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key[:10]}…)"

    def save(self, *args: object, **kwargs: object) -> None:
        super().save(*args, **kwargs)
        from tenants.cache import forget_cached_widget_key

        forget_cached_widget_key(self.key)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        from tenants.cache import forget_cached_widget_key

        forget_cached_widget_key(self.key)  # a deleted key must stop opening sessions at once
        return super().delete(*args, **kwargs)

    def allows_origin(self, origin: str) -> bool:
        """One of the allowed origins, or the organization's own host (where its admin previews the key:
        only the platform serves pages there)."""
        from tenants.hosts import domain_for_slug, origin_of

        own = origin_of(domain_for_slug(self.organization.slug))
        return origin_allowed(origin, [*self.allowed_origins, own])


def normalize_origin(origin: str) -> str:
    """Browsers send ``scheme://host[:port]``; people paste it with a trailing slash or capitals."""
    return (origin or "").strip().rstrip("/").lower()


def origin_allowed(origin: str, allowed: list[str]) -> bool:
    """Exact scheme://host[:port] match, or a ``*.`` wildcard for any subdomain (never the bare domain)."""
    origin = normalize_origin(origin)
    if not origin or origin == "null":
        return False
    for pattern in allowed:
        pattern = normalize_origin(pattern)
        if pattern == origin:
            return True
        if "://*." in pattern:
            scheme, _, suffix = pattern.partition("://*.")
            if origin.startswith(scheme + "://") and origin.endswith("." + suffix):
                return True
    return False


def clean_origin(value: str) -> str:
    """A normalized ``scheme://host[:port]`` (or ``scheme://*.host``), or ValidationError."""
    origin = normalize_origin(value)
    scheme, sep, rest = origin.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
        raise ValidationError(f"“{value.strip()}” is not an origin like https://shop.example or https://*.shop.example")
    return origin


class ApiScope(models.TextChoices):
    """What an API key may do. Each scope includes the ones before it: admin ⊃ write ⊃ read.
    ``calls:write`` (placing phone calls, which cost money) stands apart: only it, or admin, grants it."""

    READ = "read", "Read"
    WRITE = "write", "Read and write"
    ADMIN = "admin", "Admin (API keys, webhooks)"
    CALLS_WRITE = "calls:write", "Place phone calls"


_SCOPE_RANK = {ApiScope.READ: 1, ApiScope.WRITE: 2, ApiScope.ADMIN: 3}
API_KEY_PREFIX_LENGTH = 12


def validate_scopes(value: object) -> None:
    if not isinstance(value, list) or not value or any(scope not in ApiScope.values for scope in value):
        raise ValidationError(f"Choose one or more of: {', '.join(ApiScope.values)}.", code="invalid_scopes")


class ApiKey(models.Model):
    """A secret key an integration sends as ``Authorization: Bearer sk_<prefix>_<secret>``.

    Public schema: one indexed lookup by prefix finds the organization. Only a SHA-256 digest of
    the whole key is stored (the secret is 256 random bits, so a fast hash is as safe as a slow one
    and costs nothing on every request); the key is shown once, when it is created.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=API_KEY_PREFIX_LENGTH, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the whole key, hex.")
    scopes = models.JSONField(default=list, validators=[validate_scopes])
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_by = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (sk_{self.prefix}_…)"

    def save(self, *args: object, **kwargs: object) -> None:
        super().save(*args, **kwargs)
        from tenants.cache import forget_cached_api_key

        forget_cached_api_key(self.prefix)  # a revoked or changed key takes effect at once

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        from tenants.cache import forget_cached_api_key

        forget_cached_api_key(self.prefix)
        return super().delete(*args, **kwargs)

    @property
    def display_key(self) -> str:
        return f"sk_{self.prefix}_…"

    def grants(self, scope: str) -> bool:
        """True when one of the key's scopes includes ``scope`` (admin ⊃ write ⊃ read; admin ⊃ calls:write)."""
        if ApiScope(scope) not in _SCOPE_RANK:
            return scope in self.scopes or ApiScope.ADMIN in self.scopes
        needed = _SCOPE_RANK[ApiScope(scope)]
        return any(_SCOPE_RANK.get(granted, 0) >= needed for granted in self.scopes)

    def is_expired(self, now: object = None) -> bool:
        from django.utils import timezone

        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
