"""Indexing in a worker. Queued inside the tenant's context (knowledge.actions), so it runs in that
tenant's schema: tenant-schemas-celery carries the schema name in a message header."""

from __future__ import annotations

from celery import shared_task

from knowledge.indexing import do_index_document


@shared_task(name="knowledge.index_document")
def index_document(document_id: int) -> str | None:
    """Thin: the work is in knowledge.indexing.do_index_document. Safe to run twice."""
    return do_index_document(document_id=document_id)
