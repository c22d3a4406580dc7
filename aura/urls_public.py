"""URLs of the platform host (the public schema)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views import defaults

from aura import health
from aura.demo import demo_page
from core.admin_sites import platform_admin
from core.api import errors as api_errors
from telephony import views as telephony_views
from voice import views as voice_views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", platform_admin.urls),
    path("widget/session", voice_views.widget_session, name="widget-session"),
    path("demo/", demo_page, name="demo"),
    path("telephony/twilio/voice", telephony_views.twilio_voice, name="twilio-voice"),
    path("telephony/twilio/status", telephony_views.twilio_status, name="twilio-status"),
    path("api/", include("aura.urls_api")),
]


# Under /api/ every error is JSON in the API's error shape, also where DRF never ran (an unknown URL).
def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_errors.not_found(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_errors.server_error(request)
    return defaults.server_error(request)
