"""The tenant admin: upload, paste, see passages and failures, re-index, delete, try a question."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_tenants.utils import tenant_context

from knowledge.models import Document, Status
from tests.conftest import PASSWORD
from tests.knowledge.conftest import BISTRO_FAQ
from voice.models import Assistant

pytestmark = pytest.mark.django_db

DOCUMENTS = "/admin/knowledge/document/"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def alpha_admin(alpha) -> Client:
    client = Client(HTTP_HOST=alpha.host)
    response = client.post("/admin/login/", {"username": alpha.admin_email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def _in_alpha(alpha, fn):
    with tenant_context(alpha.organization):
        return fn()


def test_pasted_text_is_indexed_and_its_passages_are_shown(alpha, alpha_admin):
    response = alpha_admin.post(f"{DOCUMENTS}add/", {"title": "", "text": BISTRO_FAQ, "language": "en"}, follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "is ready: 5 passages" in page
    document = _in_alpha(alpha, lambda: Document.objects.get())
    assert (document.title, document.status) == ("Bistro Verde FAQ", Status.READY)

    detail = alpha_admin.get(f"{DOCUMENTS}{document.pk}/change/").content.decode()
    assert 'id="passages"' in detail
    assert "Bistro Verde FAQ › Menu › Vegan dishes" in detail
    assert "red lentil curry" in detail
    assert "Re-index" in detail


def test_an_upload_is_queued_and_shown_as_processing(alpha, alpha_admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = alpha_admin.post(
            f"{DOCUMENTS}add/",
            {"file": SimpleUploadedFile("faq.md", BISTRO_FAQ.encode()), "language": "en"},
            follow=True,
        )

    assert response.status_code == 200
    assert "is being indexed in the background" in response.content.decode()
    assert len(callbacks) == 1
    listing = alpha_admin.get(DOCUMENTS).content.decode()
    assert "Processing…" in listing and "Every assistant" in listing


def test_an_upload_for_one_assistant_lists_it(alpha, alpha_admin):
    assistant = _in_alpha(alpha, lambda: Assistant.objects.get(name="Alpha assistant"))

    alpha_admin.post(
        f"{DOCUMENTS}add/",
        {"title": "Hours", "text": "We open at nine.", "language": "en", "assistants": [assistant.pk]},
    )

    assert "Alpha assistant" in alpha_admin.get(DOCUMENTS).content.decode()


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("menu.pdf", b"<html>not a pdf"), "is named .pdf but is not a PDF"),
        (SimpleUploadedFile("menu.docx", b"PK\x03\x04"), "is not a file AURA can read"),
        (None, "Upload a file or paste text"),
    ],
)
def test_bad_uploads_are_refused_on_the_form_and_store_nothing(alpha, alpha_admin, upload, message):
    data = {"language": "en", **({"file": upload} if upload else {})}

    response = alpha_admin.post(f"{DOCUMENTS}add/", data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not _in_alpha(alpha, lambda: Document.objects.exists())


def test_a_failed_document_shows_why_in_the_list(alpha, alpha_admin):
    def make_failed() -> None:
        Document.objects.create(title="Scan", kind="pdf", status=Status.FAILED, error="The PDF has no text layer.")

    _in_alpha(alpha, make_failed)

    listing = alpha_admin.get(DOCUMENTS).content.decode()
    assert "Failed" in listing and "The PDF has no text layer." in listing


def test_reindex_from_the_detail_page(alpha, alpha_admin):
    alpha_admin.post(f"{DOCUMENTS}add/", {"text": BISTRO_FAQ, "language": "en"})
    document = _in_alpha(alpha, lambda: Document.objects.get())

    assert alpha_admin.get(f"{DOCUMENTS}{document.pk}/reindex/").status_code == 405
    response = alpha_admin.post(f"{DOCUMENTS}{document.pk}/reindex/", follow=True)

    assert response.redirect_chain[-1][0] == f"{DOCUMENTS}{document.pk}/change/"
    assert "is ready: 5 passages" in response.content.decode()


def test_delete_removes_the_document(alpha, alpha_admin):
    alpha_admin.post(f"{DOCUMENTS}add/", {"text": BISTRO_FAQ, "language": "en"})
    document = _in_alpha(alpha, lambda: Document.objects.get())

    response = alpha_admin.post(f"{DOCUMENTS}{document.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not _in_alpha(alpha, lambda: Document.objects.exists())


def test_try_a_question_shows_the_passages_that_would_be_found(alpha, alpha_admin):
    alpha_admin.post(f"{DOCUMENTS}add/", {"text": BISTRO_FAQ, "language": "en"})
    assistant = _in_alpha(alpha, lambda: Assistant.objects.get(name="Alpha assistant"))

    page = alpha_admin.get(
        f"{DOCUMENTS}try/", {"question": "Do you have vegan dishes?", "assistant": assistant.pk}
    ).content.decode()

    assert 'id="hits"' in page
    assert "Bistro Verde FAQ › Menu › Vegan dishes" in page
    assert "[1] Source: Bistro Verde FAQ — Bistro Verde FAQ › Menu › Vegan dishes" in page


def test_try_a_question_without_a_match_says_the_assistant_will_not_know(alpha, alpha_admin):
    alpha_admin.post(f"{DOCUMENTS}add/", {"text": BISTRO_FAQ, "language": "en"})
    assistant = _in_alpha(alpha, lambda: Assistant.objects.get(name="Alpha assistant"))

    page = alpha_admin.get(
        f"{DOCUMENTS}try/", {"question": "What is the capital of Peru?", "assistant": assistant.pk}
    ).content.decode()

    assert 'id="no-hits"' in page
    assert "has no information on this question" in page


def test_the_list_links_to_try_a_question(alpha_admin):
    assert f"{DOCUMENTS}try/" in alpha_admin.get(DOCUMENTS).content.decode()


def test_another_tenants_admin_cannot_see_the_documents(alpha, alpha_admin, beta):
    alpha_admin.post(f"{DOCUMENTS}add/", {"title": "Secret menu", "text": BISTRO_FAQ, "language": "en"})
    beta_admin = Client(HTTP_HOST=beta.host)
    beta_admin.post("/admin/login/", {"username": beta.admin_email, "password": PASSWORD})

    assert "Secret menu" not in beta_admin.get(DOCUMENTS).content.decode()
