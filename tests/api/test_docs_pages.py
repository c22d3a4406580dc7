"""The API reference: served by the platform itself (no CDN, no web fonts), JSON on ?format=json, every
operation with a summary, and nothing written for the platform's own developers in it."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import api_client
from tests.conftest import require_tool


def _schema() -> dict:
    response = api_client(None).get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return json.loads(response.content)


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, operation) for path, item in schema["paths"].items() for method, operation in item.items()]


@pytest.mark.django_db
def test_format_json_gives_json_and_yaml_stays_the_default():
    assert "/api/v1/assistants/" in _schema()["paths"]
    default = api_client(None).get("/api/schema/")
    assert default["Content-Type"].startswith("application/vnd.oai.openapi")
    assert default.content.startswith(b"openapi:")
    assert api_client(None).get("/api/schema/?format=xml").status_code == 404


@pytest.mark.django_db
def test_every_operation_has_a_summary_and_no_developer_notes():
    schema = _schema()
    missing = [f"{method} {path}" for method, path, operation in _operations(schema) if not operation.get("summary")]
    assert not missing
    leaked = [
        f"{method} {path}"
        for method, path, operation in _operations(schema)
        if any(word in operation.get("description", "") for word in ("read_scope", "``", "action_scopes"))
    ]
    assert not leaked
    summaries = {operation["summary"] for _, _, operation in _operations(schema)}
    assert {"List assistants", "Create an assistant", "Delete a webhook endpoint"} <= summaries
    # The scope each operation needs is said in words a client understands.
    create = schema["paths"]["/api/v1/assistants/"]["post"]
    assert "`write` scope" in create["description"]
    assert "docs/" not in schema["info"]["description"], "the intro points at a file of the repository"


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_name_no_other_host(page):
    html = api_client(None).get(page).content.decode()
    assert "cdn." not in html and "fonts.g" not in html and "https://" not in html, html


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("page", "rendered"),
    [("/api/docs/", ".opblock-summary-path"), ("/api/redoc/", "[data-section-id^='operation/']")],
)
def test_docs_pages_render_with_no_network(daphne_server, page, rendered, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    require_tool("chromium", "browser tests drive Debian's chromium")
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []

    def only_this_machine(route):
        if urlsplit(route.request.url).hostname in ("localhost", "127.0.0.1"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            browser_page = browser.new_page()
            browser_page.route("**/*", only_this_machine)
            browser_page.goto(daphne_server.base_url + page)
            browser_page.locator(rendered).first.wait_for(timeout=20000)
            assert browser_page.locator(rendered).count() > 10
            assert "List assistants" in browser_page.content()
        finally:
            browser.close()
    assert elsewhere == []
