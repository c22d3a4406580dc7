"""search_passages: what the assistant finds, and what it does not."""

from __future__ import annotations

import pytest

from knowledge.actions import do_add_document, do_update_document
from knowledge.models import Status
from knowledge.queries import NO_MATCH, PassageHit, format_hits_for_model, search_passages

pytestmark = pytest.mark.django_db


def test_a_question_with_a_matching_passage_finds_it_first(bistro_faq, assistant):
    hits = search_passages("Do you have vegan dishes?", assistant_id=assistant.pk)

    assert hits, "the vegan passage should be found"
    assert hits[0].heading == "Bistro Verde FAQ › Menu › Vegan dishes"
    assert "lentil curry" in hits[0].text
    assert hits[0].document_title == "Bistro FAQ"
    assert hits[0].rank > 0


def test_a_question_the_documents_do_not_answer_finds_nothing(bistro_faq, assistant):
    assert search_passages("What is the capital of Peru?", assistant_id=assistant.pk) == []


@pytest.mark.parametrize(
    ("question", "heading"),
    [
        ("When are you open on Sunday?", "Opening hours"),
        ("Is the restaurant closed on Mondays?", "Opening hours"),
        ("Where can I park my car?", "Parking"),
        ("Can I book a table for a big group?", "Reservations"),
        ("I am allergic to nuts", "Allergies"),
    ],
)
def test_questions_in_other_words_find_their_passage(bistro_faq, assistant, question, heading):
    hits = search_passages(question, assistant_id=assistant.pk)

    assert hits and hits[0].heading.endswith(heading), [(h.heading, h.rank) for h in hits]


@pytest.mark.parametrize(
    "question",
    ["Can I bring my dog?", "Do you sell gift cards?", "What is it?", "", "   ", "Who won the football match?"],
)
def test_unrelated_or_empty_questions_find_nothing(bistro_faq, assistant, question):
    assert search_passages(question, assistant_id=assistant.pk) == []


def test_limit_bounds_the_hits(bistro_faq, assistant):
    hits = search_passages("bistro menu vegan parking hours", assistant_id=assistant.pk, limit=2)

    assert len(hits) <= 2


def test_a_document_restricted_to_another_assistant_is_not_used(bistro_faq, assistant, other_assistant):
    do_update_document(document=bistro_faq, title=bistro_faq.title, language="en", assistant_ids=[other_assistant.pk])

    assert search_passages("vegan dishes", assistant_id=assistant.pk) == []
    assert search_passages("vegan dishes", assistant_id=other_assistant.pk)


def test_a_document_open_to_every_assistant_is_used_by_each(bistro_faq, assistant, other_assistant):
    assert search_passages("vegan dishes", assistant_id=assistant.pk)
    assert search_passages("vegan dishes", assistant_id=other_assistant.pk)


def test_documents_not_ready_are_not_searched(bistro_faq, assistant):
    bistro_faq.status = Status.PROCESSING
    bistro_faq.save()

    assert search_passages("vegan dishes", assistant_id=assistant.pk) == []


def test_a_document_in_an_unknown_language_is_searched_without_stemming(in_alpha, assistant):
    do_add_document(title="Kiswahili", text="Tuna chakula cha mboga kila siku.", language="sw")

    hits = search_passages("chakula cha mboga", assistant_id=assistant.pk)

    assert [hit.document_title for hit in hits] == ["Kiswahili"]


def test_a_french_document_is_stemmed_in_french(in_alpha, assistant):
    do_add_document(
        title="Carte", text="Nous proposons des plats végétariens tous les jours, midi et soir.", language="fr"
    )

    hits = search_passages("plat végétarien", assistant_id=assistant.pk)

    assert [hit.document_title for hit in hits] == ["Carte"]


def test_other_tenants_documents_are_invisible(beta, bistro_faq, assistant):
    from django_tenants.utils import tenant_context

    from voice.models import Assistant

    with tenant_context(beta.organization):
        beta_assistant = Assistant.objects.get(name="Beta assistant")
        assert search_passages("vegan dishes", assistant_id=beta_assistant.pk) == []


def test_the_tool_result_names_its_sources():
    hits = [
        PassageHit("Bistro FAQ", "Menu › Vegan dishes", "We have a lentil curry.", 0.5, 1, 1),
        PassageHit("Price list", "", "The curry costs 14 euros.", 0.2, 2, 9),
    ]

    text = format_hits_for_model(hits)

    assert "[1] Source: Bistro FAQ — Menu › Vegan dishes\nWe have a lentil curry." in text
    assert "[2] Source: Price list\nThe curry costs 14 euros." in text
    assert "say that you do not know" in text


def test_the_tool_result_without_hits_tells_the_model_to_say_it_does_not_know():
    text = format_hits_for_model([])

    assert text == NO_MATCH
    assert "do not know" in text and "Do not guess" in text
