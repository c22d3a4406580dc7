"""``/api/v1/…`` and the schema. Each domain app contributes its resources through ``<app>/api/urls.py``'s
``register(router)``: to add a resource, write its viewset there and list the module here if new."""

from __future__ import annotations

from importlib import import_module

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
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

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
