"""The progress bar every long step shows: one layout, built in one place.

``[bold]description``, the bar, ``done/total``, the columns a step adds (tokens/s, the
loss), the time elapsed and, where a step knows its pace, the time left. A bar made with
``disable=True`` takes tasks and updates and shows nothing, so a step with ``progress=False``
runs the same code without branching on it.
"""

from __future__ import annotations

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


def progress_bar(*columns: ProgressColumn, remaining: bool = False, **options) -> Progress:
    """A rich ``Progress`` in textedit's layout, with ``columns`` after the count and, with
    ``remaining``, the time left last. ``options`` go to ``Progress`` (``console``,
    ``transient``, ``disable``)."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *columns,
                    TimeElapsedColumn(), *([TimeRemainingColumn()] if remaining else []), **options)
