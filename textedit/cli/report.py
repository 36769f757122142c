"""What ``apply``, ``erase`` and ``show`` print: the before/after tables, the efficacy floor's
record in one line, the erasure's report. What ``apply`` says while it runs (the floor, the
drift guard) is ``textedit.apply``'s notes."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from ..apply import erasure_json
from .options import out


def _floor_summary(floor: dict) -> str:
    """patch.json's floor record in one line: mode, margin, whether met, what it took."""
    from ..floor import list_misses  # deferred: a command imports what it computes with when it runs

    misses = [(m["prompt"], m["margin"]) for m in floor.get("misses", [])]
    return (f"{floor['mode']}, margin {floor['efficacy_floor']:g}: "
            + (f"missed by {len(misses)} request(s), worst {list_misses(misses, 1)}" if misses else "met")
            + f"; automatic kept prompts at {floor['strength']:g} of their weight at least, "
              f"{len(floor['tried'])} solve(s)")


def _requests_table(title: str, scores) -> Table:
    """Each request's similarity to its target before and after (``RequestScore`` list)."""
    table = Table(title=title)
    table.add_column("query")
    table.add_column("target")
    table.add_column("similarity before", justify="right")
    table.add_column("after", justify="right")
    for score in scores:
        gain = score.after - score.before
        table.add_row(score.prompt, score.target, f"{score.before:.3f}",
                      f"[{'green' if gain > 0 else 'red'}]{score.after:.3f}[/] ({gain:+.3f})")
    return table


#: automatic preserved prompts listed one by one after an edit (the most moved ones)
SHOWN_PRESERVED = 6


def _print_measure(title: str, report, named=(), kept_in_solve: bool = True) -> None:
    """The before/after table of a :class:`~textedit.metrics.EditReport`, the same-subject
    prompts (those the spec names, then the most moved automatic ones; preserved by the solve,
    or ``kept_in_solve=False``: only checked) and the neutral drift."""
    out.print(_requests_table(title, report.requests))
    if report.preserved:
        named = set(named)
        own = [p for p in report.preserved if p.prompt in named]
        auto = sorted((p for p in report.preserved if p.prompt not in named), key=lambda p: -p.drift)
        mean = sum(p.drift for p in report.preserved) / len(report.preserved)
        kept = Table(title=f"preserved prompts (must keep their meaning): {len(own)} named, {len(auto)} automatic, "
                           f"mean drift {mean:.4f}" if kept_in_solve else
                     f"same-subject prompts (not preserved by this edit; they must keep their meaning): "
                     f"{len(auto)}, mean drift {mean:.4f}")
        kept.add_column("prompt")
        kept.add_column("drift", justify="right")
        kept.add_column("toward the target", justify="right")
        for p in own + auto[:SHOWN_PRESERVED]:
            kept.add_row(p.prompt + ("" if p.prompt in named else " (auto)"), f"{p.drift:.4f}",
                         f"[{'red' if p.toward > 0.05 else 'green'}]{p.toward:+.3f}[/]")
        out.print(kept)
    drift = Table(title="neutral prompts (drift = 1 − cos(after, before))")
    drift.add_column("prompt")
    drift.add_column("drift", justify="right")
    for prompt, d in report.neutral:
        drift.add_row(prompt, f"{d:.4f}")
    out.print(drift)


def _erase_and_report(title: str, adapter, erasure, settings: dict, out_dir: Path, component: str | None,
                      corpus, cache_dir: Path | None) -> None:
    """:func:`textedit.erase.erase_with_report`, then write the patch and ``erasure.json`` and
    print erasure rate, preservation and drift."""
    from ..erase import erase_config, erase_with_report  # deferred: a command imports what it computes with when it runs

    patch, report = erase_with_report(adapter, erasure, erase_config(**settings), component=component, corpus=corpus,
                                      cache_dir=cache_dir, progress=True)
    patch.save(out_dir, extra={"erasure.json": erasure_json(report, erasure, patch)})
    _print_erasure(title, erasure, patch, report, out_dir)


def _print_erasure(title: str, erasure, patch, report, out_dir: Path) -> None:
    """An erasure's table (erasure rate, preservation, drift) and where its patch was written."""
    table = Table(title=f"{title}: {patch.method}, layers {patch.hyperparameters['layers']}, value "
                        f"{patch.hyperparameters['value']} (held-out contexts; judge: the unedited encoder)")
    for column in ("concept", "surrogate", "erased", "cos to concept", "cos to surrogate before → after"):
        table.add_column(column, justify="left" if column in ("concept", "surrogate") else "right")
    shown = report.concepts[:25]
    for s in shown:
        table.add_row(s.concept, repr(s.surrogate), f"{s.erased:.0%}", f"{s.to_concept:.3f}",
                      f"{s.to_surrogate_before:.3f} → {s.to_surrogate_after:.3f}")
    if len(report.concepts) > len(shown):
        table.add_row(f"… {len(report.concepts) - len(shown)} more in erasure.json", "", "", "", "")
    out.print(table)
    if report.preserved:
        kept = Table(title="preserved concepts")
        for column in ("concept", "kept", "drift"):
            kept.add_column(column, justify="left" if column == "concept" else "right")
        for s in report.preserved:
            kept.add_row(s.concept, f"{s.kept:.0%}", f"{s.drift:.4f}")
        out.print(kept)
    preservation = ("" if report.preservation_rate is None else
                    f", preservation {report.preservation_rate:.1%} (mean drift {report.preserved_drift:.4f})")
    out.print(f"erasure rate {report.erasure_rate:.1%} over {len(erasure.concepts)} concepts{preservation}, "
              f"neutral drift mean {report.mean_drift:.4f} max {report.max_drift:.4f}")
    out.print(f"patch {patch.id} written to {out_dir} ({report.seconds:.1f} s to edit)")
