"""The one progress bar layout: description, bar, count, the step's own columns, time."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from textedit.progress import progress_bar


def test_the_layout_with_a_step_column_and_the_time_left():
    plain = progress_bar()
    assert [type(c) for c in plain.columns] == [TextColumn, BarColumn, MofNCompleteColumn, TimeElapsedColumn]
    speed = TransferSpeedColumn()
    full = progress_bar(speed, remaining=True)
    assert [type(c) for c in full.columns] == [TextColumn, BarColumn, MofNCompleteColumn, TransferSpeedColumn,
                                               TimeElapsedColumn, TimeRemainingColumn]
    assert full.columns[3] is speed


def test_a_bar_shows_the_count_and_a_disabled_one_shows_nothing():
    shown = io.StringIO()
    with progress_bar(console=Console(file=shown, force_terminal=True, width=100)) as bar:
        task = bar.add_task("statistics", total=4)
        bar.advance(task, 3)
    assert "statistics" in shown.getvalue() and "3/4" in shown.getvalue()
    hidden = io.StringIO()
    with progress_bar(console=Console(file=hidden, force_terminal=True), disable=True) as bar:
        task = bar.add_task("statistics", total=4)
        bar.advance(task, 4)  # takes tasks and updates all the same
        assert bar.tasks[0].completed == 4
    assert hidden.getvalue() == ""
