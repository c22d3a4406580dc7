"""Indexing one document: extract, split, replace its passages in one transaction. Run by the
``knowledge.index_document`` task in a worker, or at once for small pasted text (``knowledge.actions``)."""

from __future__ import annotations

import logging

from django.contrib.postgres.search import SearchVector
from django.db import transaction
from django.utils import timezone

from knowledge.extraction import ExtractionError, extract, max_upload_bytes
from knowledge.models import Document, Kind, Passage, Status
from knowledge.splitting import split

logger = logging.getLogger(__name__)

UNEXPECTED_FAILURE = "Indexing failed unexpectedly. Try “Re-index”; if it fails again, contact support."


def _read_source(document: Document) -> bytes | str:
    if document.kind == Kind.PASTED:
        return document.text
    try:
        with document.file.open("rb") as handle:
            return handle.read(max_upload_bytes() + 1)
    except (FileNotFoundError, ValueError):
        raise ExtractionError(
            "The uploaded file is missing from storage; delete this document and upload it again."
        ) from None


def do_index_document(*, document_id: int) -> str | None:
    """Extract, split and index one document; returns its new status, or None if it was deleted meanwhile.

    The slow part (reading and extracting the file) runs outside any transaction; the passages are then
    replaced in one. A file that cannot be read marks the document failed, with the reason, and no passages.
    """
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        return None
    try:
        passages = split(extract(document.kind, _read_source(document)))
    except ExtractionError as exc:
        return _store_failure(document_id, str(exc))
    except Exception:  # a parser's surprise must not leave the document "processing" forever
        logger.exception("knowledge: indexing document %s failed", document_id)
        return _store_failure(document_id, UNEXPECTED_FAILURE)
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None:
            return None
        config = document.search_config
        document.passages.all().delete()
        Passage.objects.bulk_create(
            Passage(
                document=document,
                index=number,
                heading=passage.heading[:500],
                text=passage.text,
                words=passage.words,
                search_config=config,
            )
            for number, passage in enumerate(passages)
        )
        document.passages.update(
            search_vector=SearchVector("heading", weight="A", config=config)
            + SearchVector("text", weight="B", config=config)
        )
        document.status = Status.READY
        document.error = ""
        document.passage_count = len(passages)
        document.characters = sum(len(passage.text) for passage in passages)
        document.indexed_at = timezone.now()
        document.save(update_fields=["status", "error", "passage_count", "characters", "indexed_at", "updated_at"])
    return Status.READY


def _store_failure(document_id: int, message: str) -> str | None:
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None:
            return None
        document.passages.all().delete()
        document.status = Status.FAILED
        document.error = message
        document.passage_count = 0
        document.characters = 0
        document.save(update_fields=["status", "error", "passage_count", "characters", "updated_at"])
    return Status.FAILED
