"""Both benchmark formats parse; malformed files fail with one line naming the problem."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from textedit.eval.benchmark import ROAD_COLUMNS, TIMED_COLUMNS, BenchmarkError, load_benchmark

REPO = Path(__file__).resolve().parents[2]
TIMED_VALIDATION = REPO.parent / "shared" / "data" / "timed" / "TIMED_validation_set.csv"
ROAD_SAMPLE = REPO / "tests" / "data" / "road_sample.csv"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def timed_row(old="A cat", new="A green cat") -> list[str]:
    cells = {"old": old, "new": new}
    for i in range(1, 6):
        cells[f"positive{i}"], cells[f"gt{i}"] = f"{old} number {i}", f"{new} number {i}"
        cells[f"negative{i}"], cells[f"gn{i}"] = f"A dog {i}", f"A green dog {i}"
    return [cells[c] for c in TIMED_COLUMNS]


@pytest.mark.skipif(not TIMED_VALIDATION.is_file(), reason="../shared/data/timed not beside the repository")
def test_timed_validation_set():
    fmt, cases = load_benchmark(TIMED_VALIDATION)
    assert fmt == "timed" and len(cases) == 8
    bear = cases[0]
    assert (bear.source, bear.old, bear.target) == ("A bear", "A bear", "A sand bear")
    assert len(bear.positives) == 5 and len(bear.negatives) == 5
    assert bear.positives[0].prompt == "A bear, pixel art" and bear.positives[0].new == "A sand bear, pixel art"
    assert bear.positives[0].old == bear.positives[0].prompt  # TIMED: the positive's old reading is itself
    assert bear.negatives[0].prompt == "A deer" and bear.negatives[0].new == "A sand deer"


def test_road_sample():
    fmt, cases = load_benchmark(ROAD_SAMPLE)
    assert fmt == "road" and len(cases) == 3
    pm = cases[0]
    assert (pm.source, pm.old, pm.target, pm.kind) == ("The Prime Minister of Canada", "Justin Trudeau", "Beyonce",
                                                      "Roles")
    assert pm.positives[0].old == "Justin Trudeau giving a speech" and pm.positives[0].new == "Beyonce giving a speech"
    assert pm.negatives[0].prompt == "The President of France" and pm.negatives[0].new == "Beyonce"
    mascot = cases[1]  # empty cells are skipped
    assert len(mascot.positives) == 4 and len(mascot.negatives) == 3


def test_limit(tmp_path):
    path = write_csv(tmp_path / "t.csv", TIMED_COLUMNS, [timed_row(), timed_row("A cow", "An icy cow")])
    assert [c.source for c in load_benchmark(path, limit=1)[1]] == ["A cat"]


def test_columns_in_any_order_and_extra_columns(tmp_path):
    header = list(reversed(TIMED_COLUMNS)) + ["note"]
    row = list(reversed(timed_row())) + ["anything"]
    fmt, cases = load_benchmark(write_csv(tmp_path / "t.csv", header, [row]))
    assert fmt == "timed" and cases[0].target == "A green cat"


@pytest.mark.parametrize("make, fragments", [
    (lambda p: write_csv(p, ["a", "b", "c"], [["1", "2", "3"]]), ["not a TIMED or RoAD", "positive1..5",
                                                                   "Positive_old1..5"]),
    (lambda p: write_csv(p, TIMED_COLUMNS[:-1], [timed_row()[:-1]]), ["TIMED", "gn5"]),
    (lambda p: write_csv(p, [c for c in ROAD_COLUMNS if c != "Positive_new3"], [["x"] * (len(ROAD_COLUMNS) - 1)]),
     ["RoAD", "Positive_new3"]),
    (lambda p: write_csv(p, TIMED_COLUMNS, [timed_row(), timed_row()[:5]]), ["row 2", "5 cells"]),
    (lambda p: write_csv(p, TIMED_COLUMNS, [timed_row(new="")]), ["row 1", "empty target"]),
    (lambda p: write_csv(p, TIMED_COLUMNS, []), ["no rows"]),
    (lambda p: (p.write_text(""), p)[1], ["empty file"]),
    (lambda p: (p.write_bytes(b"old,new\n\xff\xfe"), p)[1], ["not UTF-8"]),
])
def test_malformed_files(tmp_path, make, fragments):
    path = make(tmp_path / "bench.csv")
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(path)
    message = str(info.value)
    assert "\n" not in message and "bench.csv" in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file(tmp_path):
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_benchmark(tmp_path / "nope.csv")
