#!/usr/bin/env python
"""Build "distinct facts": a large fact-editing benchmark in TIMED format with no conflicts.

    nice -n 15 python benchmarks/make_distinct_facts.py [--rows 1000] [--seed 0]
                                                        [--out benchmarks/data/distinct_facts.csv]

Why: TIMED (``../shared/data/timed/TIMED_test_set.csv``) has 147 rows, and they conflict
when edited together: one subject appears in several rows with different targets, and one
row's subject is another row's negative (a prompt that must *not* change). Editing 1,000
facts in one batch, or 1,000 one after another, needs 1,000 rows whose edits can all hold
at once; this file gives them.

How (deterministic for a seed and ``benchmarks/data/nouns.txt``):

* the nouns (common concrete English nouns, each one wordpiece of the all-MiniLM-L6-v2
  tokenizer) are shuffled with ``random.Random(seed)``; the first ``--rows`` are the edited
  subjects, the rest the held-out pool, which no row edits;
* each row gets one visual attribute (a colour, material or pattern), drawn with the same
  RNG: ``old`` = "A banana", ``new`` = "A blue banana" (articles follow the sound:
  "An elephant", "A unicorn", "An inflatable banana");
* five positives put the noun in caption contexts that are *not* the edit's own
  (``textedit.sites.EDIT_TEMPLATES``): "A watercolor of a banana" → "A watercolor of a
  blue banana", "A banana in a forest", "A 3d render of a banana", "A banana next to a
  window", "A child drawing a banana";
* five negatives are the held-out nouns nearest to the row's noun by cosine of the frozen
  default encoder's sentence vectors of "A {noun}"; each reads "A pear" and its ``gn`` is
  the row's attribute on it, "A blue pear" (what leakage would look like), as TIMED's
  banana row has "An apple" / "A blue apple".

No noun is a word of an edit template, a positive template or an attribute, so no edit
touches another row's prompts. The CSV is written atomically; a one-line summary is printed.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textedit.eval.benchmark import N_PROBES, TIMED_COLUMNS  # noqa: E402
from textedit.io import atomic_write_text  # noqa: E402
from textedit.sites import EDIT_TEMPLATES  # noqa: E402

NOUNS = REPO / "benchmarks" / "data" / "nouns.txt"
OUT = REPO / "benchmarks" / "data" / "distinct_facts.csv"

#: visual attributes, one per row: colours, materials, patterns and finishes
ATTRIBUTES = (
    "red", "blue", "green", "yellow", "purple", "pink", "black", "white", "brown", "gray",
    "turquoise", "crimson", "golden", "silver",
    "wooden", "glass", "marble", "metallic", "plastic", "paper", "stone", "crystal", "ceramic",
    "leather", "knitted", "velvet", "rubber", "copper", "bronze", "porcelain",
    "striped", "polka-dot", "checkered", "plaid", "spotted", "floral", "neon", "rusty", "glowing",
    "transparent", "inflatable", "furry",
)

#: caption contexts of the positives ("{}" takes "a banana" / "a blue banana")
POSITIVE_TEMPLATES = (
    "a watercolor of {}",
    "{} in a forest",
    "a 3d render of {}",
    "{} next to a window",
    "a child drawing {}",
)

# words spelled with a vowel that start with a consonant sound, and the reverse
_A_BEFORE = ("uni", "eu", "ewe", "use", "usu", "uti", "uku", "ure", "uro", "one", "once")
_AN_BEFORE = ("hour", "honest", "honor", "honour", "heir")


def article(word: str) -> str:
    """``"a"`` or ``"an"`` for the sound ``word`` starts with."""
    w = word.lower()
    if w.startswith(_AN_BEFORE):
        return "an"
    if w.startswith(_A_BEFORE):
        return "a"
    return "an" if w[:1] in "aeiou" else "a"


def phrase(noun: str, attr: str | None = None) -> str:
    """``"an apple"``, ``"a blue apple"``, ``"an inflatable banana"``."""
    words = f"{attr} {noun}" if attr else noun
    return f"{article(words)} {words}"


def sentence(template: str, noun_phrase: str) -> str:
    text = template.format(noun_phrase)
    return text[:1].upper() + text[1:]


def reserved_words() -> set[str]:
    """Words a noun must not be: those of the edit templates, positive templates and attributes."""
    text = " ".join(EDIT_TEMPLATES + POSITIVE_TEMPLATES + ATTRIBUTES).replace("{}", " ")
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def load_nouns(path: str | Path = NOUNS) -> list[str]:
    """The nouns of ``path`` in file order (``#`` lines and blank lines skipped)."""
    nouns = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            nouns.append(line)
    return nouns


def check_nouns(nouns: Sequence[str], tokenizer=None) -> None:
    """Raise ``ValueError`` for a duplicate, a reserved word or (with ``tokenizer``) a multi-piece word."""
    seen, problems = set(), []
    reserved = reserved_words()
    for noun in nouns:
        if noun in seen:
            problems.append(f"'{noun}' twice")
        seen.add(noun)
        if noun != noun.lower() or not re.fullmatch(r"[a-z]+", noun):
            problems.append(f"'{noun}' is not one lowercase word")
        if noun in reserved:
            problems.append(f"'{noun}' is a template or attribute word")
        if tokenizer is not None and len(tokenizer.tokenize(noun)) != 1:
            problems.append(f"'{noun}' is {tokenizer.tokenize(noun)}, not one wordpiece")
    if problems:
        raise ValueError("nouns: " + "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else ""))


def plan(nouns: Sequence[str], rows: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """``(subjects, attributes, pool)``: the seeded shuffle split into edited and held-out nouns."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if len(nouns) < rows + N_PROBES:
        raise ValueError(f"{len(nouns)} nouns cannot give {rows} rows and {N_PROBES} held-out negatives")
    rng = random.Random(seed)
    order = list(nouns)
    rng.shuffle(order)
    subjects, pool = order[:rows], order[rows:]
    attributes = [rng.choice(ATTRIBUTES) for _ in subjects]
    return subjects, attributes, pool


def nearest(subjects: Sequence[str], pool: Sequence[str], embed: Callable[[list[str]], object],
            k: int = N_PROBES) -> list[list[str]]:
    """For each subject, the ``k`` pool nouns whose "A {noun}" vectors are nearest by cosine."""
    vectors = np.asarray(embed([sentence("{}", phrase(n)) for n in list(subjects) + list(pool)]), dtype=np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = vectors[:len(subjects)] @ vectors[len(subjects):].T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return [[pool[j] for j in row] for row in order]


def build_rows(nouns: Sequence[str], rows: int, seed: int,
               embed: Callable[[list[str]], object]) -> list[dict[str, str]]:
    """The benchmark rows (dicts keyed by TIMED's columns); ``embed`` maps prompts to ``[n, d]`` vectors."""
    subjects, attributes, pool = plan(nouns, rows, seed)
    negatives = nearest(subjects, pool, embed)
    out = []
    for noun, attr, negs in zip(subjects, attributes, negatives):
        cells = {"old": sentence("{}", phrase(noun)), "new": sentence("{}", phrase(noun, attr))}
        for i, template in enumerate(POSITIVE_TEMPLATES, 1):
            cells[f"positive{i}"] = sentence(template, phrase(noun))
            cells[f"gt{i}"] = sentence(template, phrase(noun, attr))
        for i, neg in enumerate(negs, 1):
            cells[f"negative{i}"] = sentence("{}", phrase(neg))
            cells[f"gn{i}"] = sentence("{}", phrase(neg, attr))
        out.append({c: cells[c] for c in TIMED_COLUMNS})
    return out


def write_csv(rows: Sequence[dict[str, str]], path: str | Path) -> None:
    """TIMED CSV (header + rows), written atomically (``textedit.io.atomic_write_text``)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TIMED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(text.getvalue(), path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="edited subjects (rows), default 1000")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle and the attributes, default 0")
    parser.add_argument("--nouns", type=Path, default=NOUNS, help="noun list, default benchmarks/data/nouns.txt")
    parser.add_argument("--out", type=Path, default=OUT, help="CSV to write, default benchmarks/data/distinct_facts.csv")
    args = parser.parse_args(argv)

    from textedit.encoders import load_encoder

    adapter = load_encoder()
    nouns = load_nouns(args.nouns)
    check_nouns(nouns, adapter.tokenizer)
    rows = build_rows(nouns, args.rows, args.seed, adapter.embed)
    write_csv(rows, args.out)
    print(f"{args.out}: {len(rows)} rows (TIMED format), {len(nouns)} nouns, {len(nouns) - len(rows)} held out, "
          f"{len(ATTRIBUTES)} attributes, seed {args.seed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
