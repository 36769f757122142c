"""Edit requests: "the key of ``prompt`` (at ``subject``'s last token) should read as ``target``"."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EditRequest:
    """One knowledge edit.

    ``prompt``   the query whose meaning changes ("Canada's Prime Minister", "the mascot of Acme");
    ``target``   what it should mean afterwards ("Beyonce", the anchor "a red panda");
    ``subject``  substring of ``prompt`` whose last token carries the key (default: the whole
                 prompt, i.e. its last token);
    ``component`` pipeline component the request is for (``None``: the encoder being edited).
    """

    prompt: str
    target: str
    subject: str | None = None
    component: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def is_template(text) -> bool:
    """A context template: a string with ``{}`` exactly once and no other brace, so that
    ``text.format(prompt)`` can neither fail nor read anything but the prompt."""
    return isinstance(text, str) and text.count("{}") == 1 and not set("{}") & set(text.replace("{}", ""))
