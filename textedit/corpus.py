"""Prompt corpora for key statistics: the shipped default and user files (txt / jsonl)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import SpecError

DEFAULT_CORPUS = Path(__file__).parent / "data" / "corpus.txt"
JSONL_FIELDS = ("prompt", "text", "caption")


@dataclass(frozen=True)
class Corpus:
    """A list of prompts and the hash that keys statistics computed on it."""

    prompts: tuple[str, ...]
    name: str

    @property
    def hash(self) -> str:
        h = hashlib.sha256()
        for prompt in self.prompts:  # length-prefixed, so ("a\nb",) and ("a", "b") differ
            data = prompt.encode()
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.prompts)


def load_corpus(path: str | Path | None = None, limit: int | None = None) -> Corpus:
    """Read a corpus: ``None`` for the shipped default, else a ``.txt`` or ``.jsonl`` file.

    txt: one prompt a line, blank lines skipped. jsonl: one JSON string or object a line,
    the prompt under ``prompt``, ``text`` or ``caption``. ``limit`` keeps the first N.
    """
    path = Path(path).expanduser() if path is not None else DEFAULT_CORPUS
    if not path.is_file():
        raise SpecError(f"corpus file '{path}' does not exist")
    prompts: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SpecError(f"corpus file '{path}' is not UTF-8 text") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if path.suffix == ".jsonl":
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(f"corpus file '{path}' line {number}: invalid JSON ({exc.msg})") from None
            if isinstance(item, dict):
                item = next((item[f] for f in JSONL_FIELDS if f in item), None)
            if not isinstance(item, str) or not item.strip():
                raise SpecError(f"corpus file '{path}' line {number}: expected a string or an object with one of "
                                f"{', '.join(JSONL_FIELDS)}")
            line = item.strip()
        prompts.append(line)
        if limit is not None and len(prompts) >= limit:
            break
    if not prompts:
        raise SpecError(f"corpus file '{path}' holds no prompts")
    return Corpus(tuple(prompts), name=str(path))
