"""What an erasure is, declared without torch: the concepts, their surrogates, the kept
concepts and the contexts they are rebound in (``erase.py`` solves and measures them).

``textedit erase`` and the spec parser build an :class:`Erasure` before any library is
loaded, so an empty, repeated or self-surrogate concept is answered at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from .errors import SpecError
from .requests import EditRequest, is_template

if TYPE_CHECKING:  # the annotation's type: an erasure is declared without torch (the CLI checks it first)
    from .encoders.base import EncoderAdapter

#: the phrases an erased concept is rebound in; each ends with the concept (``erase.py`` says why)
ERASE_CONTEXTS = (
    "{}",
    "a painting by {}",
    "a photo of {}",
    "the style of {}",
    "artwork by {}",
    "a picture of {}",
)


def fill(template: str, text: str) -> str:
    """``template`` with ``text`` in place of ``{}``, spaces tidied (``text`` may be ``""``)."""
    return re.sub(r"\s+", " ", template.format(text)).strip()


@dataclass(frozen=True)
class Concept:
    """A concept to erase and the surrogate it is rebound to (``""``: the empty prompt)."""

    name: str
    to: str = ""


@dataclass
class Erasure:
    """What to erase and what to keep. ``concepts`` share one edit (one batched solve)."""

    concepts: list[Concept]
    preserve: list[str] = field(default_factory=list)
    contexts: Sequence[str] = ERASE_CONTEXTS

    def __post_init__(self):
        names = [c.name.strip() for c in self.concepts]
        if not names:
            raise SpecError("nothing to erase: give at least one concept")
        for concept in self.concepts:
            if not concept.name.strip():
                raise SpecError("an erase concept is empty")
            if concept.to.strip().lower() == concept.name.strip().lower():
                raise SpecError(f"concept '{concept.name}' cannot be its own surrogate")
        seen: set[str] = set()
        for name in names:
            if name.lower() in seen:
                raise SpecError(f"concept '{name}' is listed twice")
            seen.add(name.lower())
        for kept in self.preserve:
            if not kept.strip():
                raise SpecError("a preserved concept is empty")
            if kept.strip().lower() in seen:
                raise SpecError(f"'{kept.strip()}' is both erased and preserved: remove it from the preserve list")
        if any(not is_template(c) or not c.endswith("{}") for c in self.contexts):
            raise SpecError("every erase context must end with '{}', contain it once and no other brace")

    def requests(self, adapter: EncoderAdapter | None = None) -> list[EditRequest]:
        """Erase requests (concept-major), then preserve requests.

        With ``adapter``, first check that every concept has tokens in its tokenizer.
        """
        if adapter is not None:
            for name in [c.name for c in self.concepts] + list(self.preserve):
                check_has_tokens(adapter, name)
        out = []
        for concept in self.concepts:
            for context in self.contexts:
                target = fill(context, concept.to)
                if target:
                    out.append(EditRequest(fill(context, concept.name), target, subject=concept.name.strip()))
        for kept in self.preserve:
            for context in self.contexts:
                prompt = fill(context, kept)
                out.append(EditRequest(prompt, prompt, subject=kept.strip()))
        return out


def check_has_tokens(adapter: EncoderAdapter, text: str) -> None:
    """Raise :class:`SpecError` if ``text`` tokenizes to nothing but special tokens."""
    batch = adapter.tokenize([text])
    if not any(b > a for (a, b), real in zip(batch.offsets[0], batch.attention_mask[0]) if real):
        raise SpecError(f"concept {text!r} has no tokens in {adapter.name}'s tokenizer")


def parse_concept_list(text: str) -> list[str]:
    """Concepts from a comma-separated list or a file's lines (blank lines and ``#`` comments skipped)."""
    parts = text.splitlines() if "\n" in text else text.split(",")
    return [p.strip() for p in parts if p.strip() and not p.strip().startswith("#")]
