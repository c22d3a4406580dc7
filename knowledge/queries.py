"""Reads of the knowledge base: what the assistant's ``search_knowledge`` tool calls. Run inside the
tenant's schema; from async code through ``tenants.tenancy.run_in_tenant``:

    hits = await run_in_tenant(tenant, search_passages, question, assistant_id=assistant.id)
    tool_result = format_hits_for_model(hits)

How a question is matched (docs/knowledge.md):
1. every word of the question, stemmed, must be in the passage (``websearch_to_tsquery``), ranked by
   ``ts_rank_cd`` (cover density: the words close together rank higher; heading words weigh more);
2. if no passage has them all, passages holding at least half of the question's content words (stop
   words such as "do", "you", "the" do not count) are ranked the same way;
3. below a minimum rank nothing is returned: an unrelated passage is worse than "I don't know".
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When

from knowledge.models import Document, Passage, Status, search_config_for

MIN_RANK = 0.01
MAX_QUERY_CHARS = 500
MAX_QUERY_WORDS = 24


@dataclass(frozen=True, slots=True)
class PassageHit:
    document_title: str
    heading: str
    text: str
    rank: float
    document_id: int
    passage_id: int


def assistants() -> QuerySet:
    """The organization's assistants, reached through the documents' relation to them (named
    "voice.Assistant" in the model): knowledge sits below voice and imports nothing of it."""
    return Document.assistants.field.related_model.objects.all()


def usable_documents(assistant_id: int) -> QuerySet[Document]:
    """Ready documents that this assistant may answer from (no assistants chosen: every assistant)."""
    return Document.objects.filter(status=Status.READY).filter(
        Q(assistants__isnull=True) | Q(assistants__id=assistant_id)
    )


def assistant_has_knowledge(assistant_id: int) -> bool:
    """Whether offering the search tool to this assistant's model makes sense at all."""
    return usable_documents(assistant_id).exists()


def _content_lexemes(config: str, query: str) -> list[str]:
    """The question's words as the index stores them: stemmed, stop words dropped."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector(%s::regconfig, %s))) AS lexeme",
            [config, query],
        )
        return sorted(row[0] for row in cursor.fetchall())[:MAX_QUERY_WORDS]


def _hits(passages: QuerySet[Passage], match: SearchQuery, limit: int) -> list[tuple[int, PassageHit]]:
    rows = (
        passages.filter(search_vector=match)
        .annotate(rank=SearchRank(F("search_vector"), match, cover_density=True))
        .filter(rank__gte=MIN_RANK)
        .order_by("-coverage", "-rank", "document_id", "index")
        .values("pk", "document_id", "document__title", "heading", "text", "rank", "coverage")[:limit]
    )
    return [
        (
            row["coverage"],
            PassageHit(
                document_title=row["document__title"],
                heading=row["heading"],
                text=row["text"],
                rank=float(row["rank"]),
                document_id=row["document_id"],
                passage_id=row["pk"],
            ),
        )
        for row in rows
    ]


def search_passages(query: str, *, assistant_id: int, limit: int = 3) -> list[PassageHit]:
    """The passages that best answer ``query`` for this assistant, best first; [] when none is relevant."""
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    if not query or limit <= 0:
        return []
    documents = usable_documents(assistant_id)
    configs = sorted({search_config_for(language) for language in documents.values_list("language", flat=True)})
    searches = []
    for config in configs:
        lexemes = _content_lexemes(config, query)
        if lexemes:  # a question of stop words only ("what is it?") matches nothing
            passages = Passage.objects.filter(document__in=documents.values("pk"), search_config=config)
            searches.append((config, lexemes, passages))

    every_word = [
        hit
        for config, lexemes, passages in searches
        for hit in _hits(
            passages.annotate(coverage=Value(len(lexemes), output_field=IntegerField())),
            SearchQuery(query, config=config, search_type="websearch"),
            limit,
        )
    ]
    found = every_word or [
        hit
        for config, lexemes, passages in searches
        for hit in _hits(
            _with_coverage(passages, lexemes).filter(coverage__gte=(len(lexemes) + 1) // 2),
            functools.reduce(operator.or_, (SearchQuery(lexeme, config="simple") for lexeme in lexemes)),
            limit,
        )
    ]
    found.sort(key=lambda pair: (-pair[0], -pair[1].rank))
    return [hit for _, hit in found[:limit]]


def _with_coverage(passages: QuerySet[Passage], lexemes: list[str]) -> QuerySet[Passage]:
    """How many of the question's words each passage holds (lexemes already stemmed: matched as they are)."""
    present = [
        Case(When(search_vector=SearchQuery(lexeme, config="simple"), then=Value(1)), default=Value(0))
        for lexeme in lexemes
    ]
    return passages.annotate(coverage=functools.reduce(operator.add, present))


NO_MATCH = (
    "The knowledge base has no information on this question. Do not guess and do not make up an answer: "
    "tell the visitor briefly that you do not know (or do not have that information), and offer to help "
    "with something else."
)


def format_hits_for_model(hits: list[PassageHit]) -> str:
    """The ``search_knowledge`` tool's result text, for the language model."""
    if not hits:
        return NO_MATCH
    parts = [
        "Passages from the knowledge base, best match first. Answer only from what they say, in your own "
        "words and briefly (this is spoken). If they do not answer the question, say that you do not know."
    ]
    for number, hit in enumerate(hits, start=1):
        source = f"{hit.document_title} — {hit.heading}" if hit.heading else hit.document_title
        parts.append(f"[{number}] Source: {source}\n{hit.text}")
    return "\n\n".join(parts)
