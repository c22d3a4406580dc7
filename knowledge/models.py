"""Knowledge: documents a tenant's assistants answer from, split into passages sized for speech. Tenant schema."""

from __future__ import annotations

import uuid
from pathlib import PurePath

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import connection, models

# Assistant languages (ISO 639-1) that PostgreSQL ships a text-search configuration for; any other
# language is indexed with 'simple' (no stemming, no stop words), which still matches whole words.
SEARCH_CONFIGS = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}


def search_config_for(language: str) -> str:
    """The PostgreSQL text-search configuration for a language code ("en", "pt-BR"); 'simple' if unknown."""
    return SEARCH_CONFIGS.get(language.split("-")[0].split("_")[0].strip().lower(), "simple")


class Kind(models.TextChoices):
    MARKDOWN = "markdown", "Markdown"
    TEXT = "text", "Plain text"
    HTML = "html", "HTML"
    PDF = "pdf", "PDF"
    PASTED = "pasted", "Pasted text"


class Status(models.TextChoices):
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


def upload_path(document: Document, filename: str) -> str:
    """Each tenant's uploads in their own directory, under a random name (no clashes, nothing guessable)."""
    suffix = PurePath(filename).suffix.lower()[:10]
    return f"knowledge/{connection.schema_name}/{uuid.uuid4().hex}{suffix}"


class Document(models.Model):
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    file = models.FileField(upload_to=upload_path, blank=True, max_length=255)
    original_name = models.CharField(max_length=255, blank=True)
    text = models.TextField(blank=True, help_text="Pasted text (documents of kind 'pasted').")
    language = models.CharField(
        max_length=16, default="en", help_text='The language of the text ("en", "fr", ...); it decides stemming.'
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    error = models.TextField(blank=True, help_text="Why indexing failed, in words an admin can act on.")
    passage_count = models.PositiveIntegerField(default=0)
    characters = models.PositiveIntegerField(default=0, help_text="Characters of extracted text.")
    assistants = models.ManyToManyField(
        "voice.Assistant",
        blank=True,
        related_name="knowledge_documents",
        help_text="The assistants that may answer from this document. None selected: every assistant.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("title", "pk")

    def __str__(self) -> str:
        return self.title

    @property
    def search_config(self) -> str:
        return search_config_for(self.language)


class Passage(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="passages")
    index = models.PositiveIntegerField(help_text="Position in the document, from 0.")
    heading = models.CharField(max_length=500, blank=True, help_text="Heading path, e.g. 'Menu › Vegan dishes'.")
    text = models.TextField()
    words = models.PositiveIntegerField(default=0)
    search_config = models.CharField(max_length=32, default="english")
    search_vector = SearchVectorField(null=True)

    class Meta:
        ordering = ("document", "index")
        constraints = [models.UniqueConstraint(fields=("document", "index"), name="knowledge_passage_position")]
        indexes = [GinIndex(fields=["search_vector"], name="knowledge_passage_search")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.index}"
