"""Adding, re-indexing and deleting documents; bad files leave nothing half-indexed."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.actions import (
    do_add_document,
    do_delete_document,
    do_reindex_document,
    do_update_document,
)
from knowledge.extraction import ExtractionError
from knowledge.indexing import UNEXPECTED_FAILURE, do_index_document
from knowledge.models import Document, Kind, Passage, Status
from knowledge.queries import search_passages
from tests.knowledge.conftest import BISTRO_FAQ
from tests.knowledge.pdfs import pdf_with_lines

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def test_small_pasted_text_is_ready_at_once(bistro_faq):
    assert bistro_faq.status == Status.READY
    assert bistro_faq.kind == Kind.PASTED
    assert bistro_faq.passage_count == 5 == bistro_faq.passages.count()
    assert bistro_faq.characters == sum(len(p.text) for p in bistro_faq.passages.all())
    assert bistro_faq.indexed_at is not None


def test_the_title_of_pasted_text_defaults_to_its_first_line(in_alpha):
    document = do_add_document(text="# Opening hours\n\nWe open at nine.")

    assert document.title == "Opening hours"


def test_an_upload_is_stored_and_indexed_after_the_commit_by_the_worker_task(
    in_alpha, assistant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        document = do_add_document(file=_upload("bistro-faq.md", BISTRO_FAQ.encode()))

    assert document.status == Status.PROCESSING
    assert document.title == "Bistro faq"
    assert document.original_name == "bistro-faq.md"
    assert document.file.name.startswith("knowledge/t_alpha/") and document.file.name.endswith(".md")
    assert len(callbacks) == 1, "one index task queued when the upload commits"
    assert search_passages("vegan dishes", assistant_id=assistant.pk) == []

    assert do_index_document(document_id=document.pk) == Status.READY

    document.refresh_from_db()
    assert (document.status, document.passage_count) == (Status.READY, 5)
    assert search_passages("vegan dishes", assistant_id=assistant.pk)


def test_a_pdf_upload_is_indexed(in_alpha, assistant):
    data = pdf_with_lines(["Vegan dishes", "", "We serve a red lentil curry and a falafel wrap every day."])
    document = do_add_document(file=_upload("menu.pdf", data))

    do_index_document(document_id=document.pk)

    document.refresh_from_db()
    assert document.status == Status.READY, document.error
    assert [hit.document_title for hit in search_passages("lentil curry", assistant_id=assistant.pk)] == ["Menu"]


def test_an_html_upload_takes_its_title_from_the_page(in_alpha):
    page = b"<html><head><title>Our menu</title></head><body><p>Soup of the day.</p></body></html>"

    document = do_add_document(file=_upload("index.html", page))

    assert document.title == "Our menu"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("menu.docx", b"PK\x03\x04", "is not a file AURA can read"),
        ("menu.pdf", b"<html>not a pdf</html>", "not a PDF"),
        ("empty.md", b"", "empty"),
    ],
)
def test_files_refused_at_once_store_nothing(in_alpha, name, data, message):
    with pytest.raises(ExtractionError, match=message):
        do_add_document(file=_upload(name, data))

    assert not Document.objects.exists()


def test_a_file_over_the_limit_is_refused(in_alpha, settings):
    settings.AURA_KNOWLEDGE_MAX_UPLOAD_MB = 1

    with pytest.raises(ExtractionError, match=r"2\.0 MB; the limit is 1 MB"):
        do_add_document(file=_upload("big.txt", b"word " * (2 * 1024 * 1024 // 5)))

    assert not Document.objects.exists()


def test_neither_or_both_of_file_and_text_is_refused(in_alpha):
    with pytest.raises(ExtractionError, match="one of the two"):
        do_add_document(text="   ")
    with pytest.raises(ExtractionError, match="one of the two"):
        do_add_document(text="Hello.", file=_upload("a.txt", b"Hello."))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("menu.pdf", b"%PDF-1.4\n%%EOF garbage", "could not be read"),
        ("menu.txt", "Caf\xe9".encode("latin-1"), "not UTF-8 text"),
        ("menu.html", b"<script>only()</script>", "no text"),
    ],
)
def test_a_file_that_fails_to_index_is_marked_failed_with_the_reason_and_no_passages(in_alpha, name, data, message):
    document = do_add_document(file=_upload(name, data))

    assert do_index_document(document_id=document.pk) == Status.FAILED

    document.refresh_from_db()
    assert document.status == Status.FAILED
    assert message in document.error
    assert (document.passage_count, document.passages.count()) == (0, 0)


def test_an_unexpected_error_fails_the_document_instead_of_leaving_it_processing(in_alpha, monkeypatch):
    document = do_add_document(file=_upload("faq.md", b"Hello there."))
    monkeypatch.setattr("knowledge.indexing.split", lambda sections: 1 / 0)

    assert do_index_document(document_id=document.pk) == Status.FAILED

    document.refresh_from_db()
    assert document.error == UNEXPECTED_FAILURE


def test_a_file_missing_from_storage_fails_clearly(in_alpha):
    document = do_add_document(file=_upload("faq.md", b"Hello there."))
    document.file.storage.delete(document.file.name)

    do_index_document(document_id=document.pk)

    document.refresh_from_db()
    assert "missing from storage" in document.error


def test_reindexing_replaces_the_passages(bistro_faq, django_capture_on_commit_callbacks):
    before = set(bistro_faq.passages.values_list("pk", flat=True))

    do_reindex_document(document=bistro_faq)

    bistro_faq.refresh_from_db()
    after = set(bistro_faq.passages.values_list("pk", flat=True))
    assert bistro_faq.status == Status.READY
    assert len(after) == 5 and not before & after


def test_reindexing_an_upload_marks_it_processing_until_the_task_runs(in_alpha, django_capture_on_commit_callbacks):
    document = do_add_document(file=_upload("faq.md", BISTRO_FAQ.encode()))
    do_index_document(document_id=document.pk)

    with django_capture_on_commit_callbacks() as callbacks:
        do_reindex_document(document=document)

    assert document.status == Status.PROCESSING
    assert len(callbacks) == 1


def test_a_failed_reindex_removes_the_old_passages(in_alpha):
    document = do_add_document(file=_upload("faq.md", BISTRO_FAQ.encode()))
    do_index_document(document_id=document.pk)
    document.file.save("faq.md", ContentFile("Caf\xe9".encode("latin-1")), save=True)

    do_index_document(document_id=document.pk)

    document.refresh_from_db()
    assert document.status == Status.FAILED
    assert not Passage.objects.filter(document=document).exists()


def test_changing_the_language_reindexes_with_its_stemming(bistro_faq):
    do_update_document(document=bistro_faq, title="FAQ", language="fr")

    bistro_faq.refresh_from_db()
    assert bistro_faq.title == "FAQ"
    assert set(bistro_faq.passages.values_list("search_config", flat=True)) == {"french"}


def test_deleting_a_document_removes_its_passages_and_its_file(in_alpha, django_capture_on_commit_callbacks):
    document = do_add_document(file=_upload("faq.md", BISTRO_FAQ.encode()))
    do_index_document(document_id=document.pk)
    storage, name = document.file.storage, document.file.name

    with django_capture_on_commit_callbacks(execute=True):
        do_delete_document(document=document)

    assert not Document.objects.exists() and not Passage.objects.exists()
    assert not storage.exists(name)


def test_indexing_a_document_deleted_meanwhile_does_nothing(in_alpha):
    assert do_index_document(document_id=987654) is None
