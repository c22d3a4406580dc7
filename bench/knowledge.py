"""Knowledge search as the search_knowledge tool runs it, over a tenant with many passages.

    .venv/bin/python -m bench.knowledge --documents 200 --json

Indexes ``--documents`` generated FAQ documents of about forty passages each (pasted text, indexed
by knowledge.actions as in the admin), then times ``search_passages`` for questions that match a
passage and questions that match nothing. Prints figures, and with --json one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from bench.common import fresh_platform, summary

TOPICS = (
    "vegan dishes",
    "parking",
    "private room",
    "gift cards",
    "wine list",
    "allergies",
    "delivery area",
    "opening hours",
    "terrace",
    "children's menu",
    "dogs",
    "birthday cakes",
    "wheelchair access",
    "wifi",
)
WORDS = (
    "fresh",
    "local",
    "seasonal",
    "house",
    "chef",
    "weekend",
    "evening",
    "group",
    "table",
    "order",
    "kitchen",
    "garden",
    "market",
    "bread",
    "cheese",
    "dessert",
    "coffee",
    "staff",
    "booking",
    "price",
)


def document_text(rng: random.Random, number: int) -> str:
    sections = []
    for section in range(40):
        topic = rng.choice(TOPICS)
        filler = " ".join(rng.choice(WORDS) for _ in range(40))
        sections.append(
            f"## {topic.title()} {number}-{section}\n\nAbout our {topic}: {filler}. "
            f"Ask the staff about {topic} at branch {number}."
        )
    return f"# Branch {number} FAQ\n\n" + "\n\n".join(sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    organization = fresh_platform("knowledge", AURA_KNOWLEDGE_SYNC_INDEX_CHARS="10000000")
    from django_tenants.utils import tenant_context

    from knowledge.actions import do_add_document
    from knowledge.models import Passage
    from knowledge.queries import format_hits_for_model, search_passages
    from voice.models import Assistant

    rng = random.Random(7)
    with tenant_context(organization):
        assistant_id = Assistant.objects.get(is_default=True).pk
        started = time.monotonic()
        for number in range(args.documents):
            do_add_document(title=f"Branch {number} FAQ", text=document_text(rng, number))
        indexing_s = time.monotonic() - started
        passages = Passage.objects.count()
        matching, missing = [], []
        for index in range(args.queries):
            topic = rng.choice(TOPICS)
            question = f"Do you have {topic} at branch {rng.randrange(args.documents)}?"
            began = time.perf_counter()
            hits = search_passages(question, assistant_id=assistant_id)
            format_hits_for_model(hits)
            matching.append((time.perf_counter() - began) * 1000)
            if index % 3 == 0:
                began = time.perf_counter()
                none = search_passages("What is the capital of Peru?", assistant_id=assistant_id)
                missing.append((time.perf_counter() - began) * 1000)
                assert not none, none
    result = {
        "documents": args.documents,
        "passages": passages,
        "indexing_s": round(indexing_s, 1),
        "passages_per_s": round(passages / indexing_s, 1),
        "search_matching_ms": summary(matching, 2),
        "search_no_match_ms": summary(missing, 2),
    }
    print(f"{passages} passages indexed in {indexing_s:.1f} s; search p95 {result['search_matching_ms']['p95']} ms")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
