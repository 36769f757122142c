"""Fact-editing benchmarks for text-to-image models, read from their public CSV formats.

Each row becomes one :class:`EvalCase`: the ``source`` prompt should take on ``target``
instead of ``old``; every positive prompt should then read as its new version, every
negative prompt should stay itself rather than read as its new version.

Two formats, told apart by their header:

    TIMED  (Orgad et al. 2023)  old, new, positive1..5, gt1..5, negative1..5, gn1..5
           source = old = old answer, target = new; positive_i → gt_i; negative_i ↛ gn_i
    RoAD   (ReFACT, Arad et al. 2023)  Prompt, Old, New, Positive{i}, Positive_old{i},
           Positive_new{i}, Negative{i}, Negative_new{i} (i = 1..5), Type, Oracle
           source = Prompt, old answer = Old, target = New;
           Positive_i reads as Positive_new_i rather than Positive_old_i; Negative_i ↛ Negative_new_i

Empty cells (fewer than five positives or negatives) are skipped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TexteditError
from ..requests import EditRequest, is_template


class BenchmarkError(TexteditError):
    """A benchmark file that cannot be read as TIMED or RoAD."""


@dataclass(frozen=True)
class Probe:
    """A prompt and the two readings it is scored between."""

    prompt: str
    old: str  # what it reads as before the edit
    new: str  # what it reads as if the edit reaches it


@dataclass
class EvalCase:
    """One benchmark row: an edit request plus the prompts that measure it."""

    row: int  # 1-based data row in the file (header excluded)
    source: str
    old: str
    target: str
    positives: list[Probe] = field(default_factory=list)
    negatives: list[Probe] = field(default_factory=list)
    kind: str | None = None  # RoAD's Type column

    def to_dict(self) -> dict:
        return {"row": self.row, "source": self.source, "old": self.old, "target": self.target,
                **({"type": self.kind} if self.kind else {})}

    def requests(self) -> list[EditRequest]:
        """The edit a case asks for: its source prompt (key at its last token) reads as the target."""
        return [EditRequest(self.source, self.target)]


N_PROBES = 5
TIMED_COLUMNS = ["old", "new"] + [f"{name}{i}" for i in range(1, N_PROBES + 1)
                                  for name in ("positive", "gt")] + [f"{name}{i}" for i in range(1, N_PROBES + 1)
                                                                      for name in ("negative", "gn")]
ROAD_COLUMNS = ["Prompt", "Old", "New"] + [f"{name}{i}" for i in range(1, N_PROBES + 1) for name in (
    "Positive", "Positive_old", "Positive_new")] + [f"{name}{i}" for i in range(1, N_PROBES + 1)
                                                     for name in ("Negative", "Negative_new")] + ["Type", "Oracle"]
FORMATS = {"timed": TIMED_COLUMNS, "road": ROAD_COLUMNS}
FORMAT_NAMES = {"timed": "TIMED", "road": "RoAD"}


def _timed_case(row: int, cell) -> EvalCase:
    old = cell("old")
    positives = [Probe(cell(f"positive{i}"), cell(f"positive{i}"), cell(f"gt{i}")) for i in range(1, N_PROBES + 1)]
    negatives = [Probe(cell(f"negative{i}"), cell(f"negative{i}"), cell(f"gn{i}")) for i in range(1, N_PROBES + 1)]
    return EvalCase(row, old, old, cell("new"), [p for p in positives if p.prompt and p.new],
                    [n for n in negatives if n.prompt and n.new])


def _road_case(row: int, cell) -> EvalCase:
    positives = [Probe(cell(f"Positive{i}"), cell(f"Positive_old{i}"), cell(f"Positive_new{i}"))
                 for i in range(1, N_PROBES + 1)]
    negatives = [Probe(cell(f"Negative{i}"), cell(f"Negative{i}"), cell(f"Negative_new{i}"))
                 for i in range(1, N_PROBES + 1)]
    return EvalCase(row, cell("Prompt"), cell("Old"), cell("New"),
                    [p for p in positives if p.prompt and p.old and p.new],
                    [n for n in negatives if n.prompt and n.new], kind=cell("Type") or None)


READERS = {"timed": _timed_case, "road": _road_case}


def detect_format(header: list[str], source: str = "<csv>") -> str:
    """``"timed"`` or ``"road"`` from a CSV header; anything else is a :class:`BenchmarkError`."""
    present = {h.strip() for h in header}
    for name, columns in FORMATS.items():
        if present >= set(columns):
            return name
    # name the closest format's missing columns, so a typo in one header cell is easy to find
    best = max(FORMATS, key=lambda name: len(present & set(FORMATS[name])))
    missing = [c for c in FORMATS[best] if c not in present]
    if len(present & set(FORMATS[best])) <= 2:
        raise BenchmarkError(
            f"{source}: not a TIMED or RoAD benchmark; expected the columns "
            f"TIMED: old,new,positive1..5,gt1..5,negative1..5,gn1..5 or RoAD: Prompt,Old,New,Positive1..5,"
            f"Positive_old1..5,Positive_new1..5,Negative1..5,Negative_new1..5,Type,Oracle")
    raise BenchmarkError(f"{source}: looks like {FORMAT_NAMES[best]} but lacks the "
                         f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")


def load_benchmark(path: str | Path, limit: int | None = None) -> tuple[str, list[EvalCase]]:
    """Read a TIMED or RoAD CSV → ``(format, cases)``; the first ``limit`` rows if given."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"benchmark file '{path}' does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise BenchmarkError(f"{path}: empty file")
            fmt = detect_format(header, str(path))
            index = {name.strip(): i for i, name in enumerate(header)}
            cases = []
            for number, values in enumerate(reader, start=1):
                if not any(v.strip() for v in values):
                    continue  # blank line
                if len(values) != len(header):
                    raise BenchmarkError(f"{path}: row {number} has {len(values)} cells, the header has "
                                         f"{len(header)}")

                def cell(name: str) -> str:
                    return values[index[name]].strip()

                case = READERS[fmt](number, cell)
                for column, text in (("source", case.source), ("old answer", case.old), ("target", case.target)):
                    if not text:
                        raise BenchmarkError(f"{path}: row {number} has an empty {column} cell")
                cases.append(case)
                if limit is not None and len(cases) >= limit:
                    break
    except UnicodeDecodeError:
        raise BenchmarkError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise BenchmarkError(f"{path}: malformed CSV: {exc}") from None
    if not cases:
        raise BenchmarkError(f"{path}: no rows")
    return fmt, cases


class JsonChecks:
    """The checks the loaders of benchmark JSON files (knowledge, world knowledge) make: each
    fails in one :class:`BenchmarkError` line naming the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, message: str):
        raise BenchmarkError(f"{self.path}: {where}: {message}")

    def strings(self, value, where: str, *, placeholder: bool = False) -> list[str]:
        """``value`` as a non-empty list of non-empty strings (stripped); with ``placeholder``
        each must be a template (``{}`` once, no other brace)."""
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(where, "expected a non-empty list of non-empty strings")
        if placeholder and not all(is_template(v) for v in value):
            self.fail(where, "every context must contain '{}' exactly once and no other brace")
        return [v.strip() for v in value]
