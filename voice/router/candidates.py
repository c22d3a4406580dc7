"""A candidate is one provider and model the router may use, written ``provider:model``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PROVIDERS = ("simulated", "local", "openai", "xai", "openai_compatible")


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    model: str

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.model}"

    def __str__(self) -> str:
        return self.key


def parse_candidate(ref: str) -> Candidate:
    provider, sep, model = ref.strip().partition(":")
    if not sep or not model.strip():
        raise ValueError(f'"{ref}" is not "provider:model", e.g. "openai:gpt-4o-mini".')
    if provider not in PROVIDERS:
        raise ValueError(f'"{ref}": unknown provider "{provider}" (one of {", ".join(PROVIDERS)}).')
    return Candidate(provider, model.strip())


def parse_candidates(refs: Iterable[object]) -> list[Candidate]:
    candidates = []
    for ref in refs:
        if not isinstance(ref, str):
            raise ValueError(f'{ref!r} is not a text such as "openai:gpt-4o-mini".')
        candidates.append(parse_candidate(ref))
    return candidates


def chain(primary: Candidate, others: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """The primary first, then the others in order, each once."""
    seen = {primary}
    ordered = [primary]
    for candidate in others:
        if candidate not in seen:
            seen.add(candidate)
            ordered.append(candidate)
    return tuple(ordered)
