"""URLs of the platform host (the public schema)."""

from django.urls import path

from aura import health
from aura.admin_sites import platform_admin
from voice import views as voice_views
from voice.demo import demo_page

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", platform_admin.urls),
    path("widget/session", voice_views.widget_session, name="widget-session"),
    path("demo/", demo_page, name="demo"),
]
