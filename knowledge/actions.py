"""Writes to knowledge documents. Run inside the tenant's schema.

Adding or re-indexing a document marks it "processing" and queues ``knowledge.index_document``
(tenant-aware Celery: the schema travels in the message), except small pasted texts, which are indexed
at once so the admin sees the result on the next page. Indexing replaces a document's passages in one
transaction: search sees the old passages or the new ones, never a mix, and a failure leaves none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import partial
from pathlib import PurePath

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from knowledge.extraction import ExtractionError, check_upload, html_title, max_upload_bytes
from knowledge.indexing import do_index_document
from knowledge.models import Document, Kind, Status
from knowledge.tasks import index_document

logger = logging.getLogger(__name__)


def _title_from_filename(name: str) -> str:
    stem = PurePath(name).stem
    return re.sub(r"[-_]+", " ", stem).strip().capitalize()[:200] or "Untitled document"


def _title_from_text(text: str) -> str:
    first = next((line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()), "")
    return (first[:80] + "…" if len(first) > 80 else first) or "Pasted text"


def _indexes_at_once(document: Document) -> bool:
    return document.kind == Kind.PASTED and len(document.text) <= settings.AURA_KNOWLEDGE_SYNC_INDEX_CHARS


def _queue_indexing(document: Document) -> None:
    """Index now (small pasted text) or after the commit, in a worker."""
    if _indexes_at_once(document):
        do_index_document(document_id=document.pk)
        document.refresh_from_db()
        return
    transaction.on_commit(partial(index_document.delay, document.pk), robust=True)


@transaction.atomic
def do_add_document(
    *,
    title: str = "",
    file: File | None = None,
    text: str = "",
    language: str = "en",
    assistant_ids: Iterable[int] = (),
) -> Document:
    """Store an uploaded file or pasted text and start indexing it.

    Raises ExtractionError, before anything is stored, for what can be known at once: both or neither of
    file and text, an unknown file type, an empty or too big file, a ".pdf" that is not a PDF.
    """
    text = text.strip()
    if (file is None) == (not text):
        raise ExtractionError("Upload a file or paste text (one of the two).")
    if file is not None:
        name = PurePath(file.name or "").name
        head = file.read(1024)
        file.seek(0)
        kind = check_upload(name, file.size, head)
        if not title and kind == Kind.HTML and file.size <= max_upload_bytes():
            title = html_title(file.read().decode("utf-8", "replace"))
            file.seek(0)
        document = Document(title=(title or _title_from_filename(name))[:200], kind=kind, original_name=name)
        document.file.save(name, file, save=False)
    else:
        if len(text.encode()) > max_upload_bytes():
            raise ExtractionError(f"The text is larger than {settings.AURA_KNOWLEDGE_MAX_UPLOAD_MB} MB.")
        document = Document(title=(title or _title_from_text(text))[:200], kind=Kind.PASTED, text=text)
    document.language = language or "en"
    document.save()
    document.assistants.set(assistant_ids)
    _queue_indexing(document)
    return document


@transaction.atomic
def do_update_document(
    *, document: Document, title: str, language: str, assistant_ids: Iterable[int] | None = None
) -> Document:
    """Rename, change the language (re-indexes: stemming depends on it) or the assistants allowed."""
    stored_language = Document.objects.values_list("language", flat=True).get(pk=document.pk)
    language_changed = stored_language != language  # the admin's form may have set it on the instance already
    document.title = title[:200]
    document.language = language
    document.save(update_fields=["title", "language", "updated_at"])
    if assistant_ids is not None:
        document.assistants.set(assistant_ids)
    if language_changed:
        do_reindex_document(document=document)
    return document


@transaction.atomic
def do_reindex_document(*, document: Document) -> Document:
    """Extract and split again (after a change of language, or to retry a failure)."""
    Document.objects.filter(pk=document.pk).update(status=Status.PROCESSING, error="", updated_at=timezone.now())
    document.refresh_from_db()
    _queue_indexing(document)
    return document


@transaction.atomic
def do_delete_document(*, document: Document) -> None:
    """Delete the document, its passages and, once the deletion is committed, its stored file."""
    file_name, storage = document.file.name, document.file.storage
    document.delete()
    if file_name:
        transaction.on_commit(partial(storage.delete, file_name), robust=True)
