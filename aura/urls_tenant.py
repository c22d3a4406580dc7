"""URLs of a tenant's host (``<slug>.<AURA_BASE_DOMAIN>``), served in the tenant's schema."""

from django.urls import path

from aura import health
from core.admin_sites import tenant_admin

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", tenant_admin.urls),
]
