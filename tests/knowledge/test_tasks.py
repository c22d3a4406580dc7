"""The index task runs in the schema it was queued from: in-process, and with a real worker."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from aura.celery import app
from knowledge.actions import do_add_document, do_delete_document
from knowledge.models import Document, Status
from knowledge.tasks import index_document
from tests.knowledge.conftest import BISTRO_FAQ
from tests.processes import python_module, running


@pytest.mark.django_db
def test_the_task_indexes_in_the_tenant_it_was_queued_from(in_alpha, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    document = do_add_document(file=SimpleUploadedFile("faq.md", BISTRO_FAQ.encode()))

    result = index_document.apply(args=[document.pk])  # the schema travels in the headers, as with delay()

    assert result.get() == Status.READY
    document.refresh_from_db()
    assert document.passage_count == 5


@pytest.fixture(scope="module")
def knowledge_worker(django_db_setup, django_db_blocker):
    def ready() -> bool:
        try:
            return bool(app.control.ping(timeout=0.5))
        except Exception:  # noqa: BLE001 - not up yet
            return False

    command = python_module(
        "celery", "-A", "aura", "worker", "--pool=solo", "--concurrency=1", "--loglevel=INFO",
        "--without-gossip", "--without-mingle", "--hostname=knowledge@%h",
    )  # fmt: skip
    with running(command, ready=ready, log_name="celery-knowledge-worker"):
        yield


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("knowledge_worker")
def test_an_upload_is_indexed_by_a_worker(alpha):
    with tenant_context(alpha.organization):
        document = do_add_document(file=SimpleUploadedFile("worker-faq.md", BISTRO_FAQ.encode()))
        try:
            deadline = time.monotonic() + 30
            while document.status == Status.PROCESSING and time.monotonic() < deadline:
                time.sleep(0.2)
                document.refresh_from_db()

            assert document.status == Status.READY, document.error
            assert document.passage_count == 5
        finally:  # tenant schemas are not flushed after transactional tests
            do_delete_document(document=Document.objects.get(pk=document.pk))
