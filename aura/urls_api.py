"""``/api/v1/…`` and the schema. Each domain app contributes its resources through ``<app>/api/urls.py``'s
``register(router)``: to add a resource, write its viewset there and list the module here if new."""

from __future__ import annotations

from importlib import import_module

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

RESOURCE_MODULES = (
    "voice.api.urls",  # assistants, HTTP tools
    "tenants.api.urls",  # widget keys, API keys
    "conversations.api.urls",  # conversations (and text conversations), leads, hand-offs, visitors
    "billing.api.urls",  # usage, invoices
    "webhooks.api.urls",  # webhook endpoints and deliveries
    "knowledge.api.urls",  # knowledge documents
    "telephony.api.urls",  # phone calls
)

router = SimpleRouter()
for module in RESOURCE_MODULES:
    import_module(module).register(router)


class SchemaView(SpectacularAPIView):
    """The schema in YAML, or JSON with ``?format=json`` (or by ``Accept``). The API itself reads no
    ``format`` parameter (``URL_FORMAT_OVERRIDE`` is off: exports have their own), so this view does."""

    def get_format_suffix(self, **kwargs: object) -> str | None:
        return self.request.GET.get("format") or super().get_format_suffix(**kwargs)


# The reference pages load nothing from elsewhere (ReDoc's footer would fetch its maker's logo).
DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)


class OwnAssetsOnly:
    def finalize_response(self, request: Request, response: Response, *args: object, **kwargs: object) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_POLICY
        return response


class SwaggerView(OwnAssetsOnly, SpectacularSwaggerSplitView):
    """Swagger UI from the platform's own static files; its set-up script is a request of its own."""


class RedocView(OwnAssetsOnly, SpectacularRedocView):
    """ReDoc from the platform's own static files, without the web fonts the stock page loads."""

    template_name = "api/redoc.html"


urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", RedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
