#!/usr/bin/env python
"""The edit's speed beside the previous code path, in one process: the mascot edit, and the
values of many world-knowledge requests in one batch.

    nice python benchmarks/edit_speed.py [--before 935fe5f] [--threads 1] [--repeats 2]
                                         [--limit 100] [--skip-world] [--skip-mascot] [--profile DIR]

``--before`` names a commit whose ``textedit`` package (``git archive``) is imported beside
this tree's as ``textedit_before``; each measurement runs the previous and the current code
alternately (wall and CPU seconds: on a shared machine the CPU seconds
of a one-thread run are the steadier figure) on the same model and cached statistics, so that load from other processes hits
both alike. Prints, in seconds and as ratios (before ÷ after):

* the mascot edit (``edits/mascot.json``, the default settings, statistics cached), best of
  ``--repeats``, with the time in ``_targets`` (the values) beside it, both patches' ids and
  how far ΔW moved (relative Frobenius difference per layer, after against before);
* ``--limit`` edited pairs of the world-knowledge benchmark's test split
  (``benchmarks/data/world_knowledge.json``) as one edit (the default settings, value
  ``optimize``), once each: the whole edit and its values.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BEFORE = "935fe5f"  # the head before the batched values and the float32 key sums


def import_before(rev: str, into: Path):
    """The package at commit ``rev`` imported as ``textedit_before`` (relative imports only)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "textedit"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    folder = into / "textedit"
    spec = importlib.util.spec_from_file_location("textedit_before", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["textedit_before"] = module
    spec.loader.exec_module(module)
    return "textedit_before"


class Side:
    """One code path: its package's editor, model and statistics, and a clock on its ``_targets``."""

    def __init__(self, name: str, label: str):
        self.label = label
        self.editor = importlib.import_module(f"{name}.editor")
        encoders, self.spec_module = importlib.import_module(f"{name}.encoders"), importlib.import_module(f"{name}.spec")
        self.stats_module = importlib.import_module(f"{name}.stats")
        self.adapter = encoders.load_encoder()
        self.values_seconds = 0.0
        targets = self.editor._targets

        def timed(*args, **kwargs):
            started = time.process_time()
            try:
                return targets(*args, **kwargs)
            finally:
                self.values_seconds += time.process_time() - started

        self.editor._targets = timed

    def requests(self, requests):
        cls = importlib.import_module(f"{self.editor.__package__}.requests").EditRequest
        return [cls(r.prompt, r.target, subject=r.subject) for r in requests]

    def edit(self, requests, settings: dict, preserve=()):
        config = self.editor.EditConfig(**settings)
        stats = self.stats_module.compute_stats(self.adapter, self.editor.resolve_layers(self.adapter, config), None)
        self.values_seconds = 0.0
        started, cpu = time.perf_counter(), time.process_time()
        patch = self.editor.edit(self.adapter, self.requests(requests), config, stats=stats, preserve=preserve)
        return patch, time.perf_counter() - started, time.process_time() - cpu, self.values_seconds


def moved(after, before) -> str:
    """Per layer ‖ΔW_after − ΔW_before‖ / ‖ΔW_before‖."""
    out = []
    for a, b in zip(after.deltas, before.deltas):
        da, db = a.delta.dense().double(), b.delta.dense().double()
        out.append(f"{a.layer}: {float((da - db).norm() / db.norm()):.1e}")
    return ", ".join(out)


def profile(sides, spec, folder: Path) -> None:
    """One mascot edit of each side under ``cProfile`` timed in CPU seconds; the top lines printed."""
    import cProfile
    import pstats

    folder.mkdir(parents=True, exist_ok=True)
    for side, name in zip(sides, ("before", "after")):
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(side.edit, spec.requests, spec.settings, spec.preserve)
        profiler.dump_stats(folder / f"{name}.prof")
        print(f"profile {name}: {folder / f'{name}.prof'}")
        pstats.Stats(str(folder / f"{name}.prof")).sort_stats("cumulative").print_stats(
            r"\(edit\)|_search|_targets|optimize_deltas|_optimize|kept_key_gram|token_key_gram|\.gram|run_backward|"
            r"addmm_|_nn.linear|memit.py.*solve|read_states|margins|embed\b")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help=f"the previous code path's commit (default {BEFORE})")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=100, help="world-knowledge requests in the batch (default 100)")
    parser.add_argument("--skip-mascot", action="store_true")
    parser.add_argument("--skip-world", action="store_true")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also profile one mascot edit of each side (cProfile, CPU time) into this folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from textedit.eval.world import load_world
    from textedit.spec import load_spec

    with tempfile.TemporaryDirectory() as folder:
        sides = [Side(import_before(args.before, Path(folder)), f"before ({args.before})"), Side("textedit", "after")]
        load = os.getloadavg()[0]
        print(f"# edit_speed: {args.threads} thread(s), {os.cpu_count()} cores, load average {load:.1f} at the start")
        if not args.skip_mascot:
            spec = load_spec(REPO / "edits" / "mascot.json")
            best = [(float("inf"),) * 3] * 2
            patches = [None, None]
            for _ in range(args.repeats):
                for i, side in enumerate(sides):
                    patch, *seconds = side.edit(spec.requests, spec.settings, spec.preserve)
                    patches[i] = patch
                    best[i] = tuple(min(a, b) for a, b in zip(best[i], seconds))
            print(f"mascot edit ({len(spec.requests)} statements, statistics cached), best of {args.repeats} "
                  f"(wall s; CPU s, of which the values):")
            for side, (wall, cpu, values), patch in zip(sides, best, patches):
                print(f"  {side.label:22s} wall {wall:7.2f}  CPU {cpu:7.2f}  values {values:6.2f}  patch {patch.id}")
            print(f"  before / after: wall ×{best[0][0] / best[1][0]:.2f}, CPU ×{best[0][1] / best[1][1]:.2f}, "
                  f"values ×{best[0][2] / best[1][2]:.2f}")
            print(f"  ΔW moved (after vs before, relative): {moved(patches[1], patches[0])}")
            if args.profile is not None:
                profile(sides, spec, args.profile)
        if not args.skip_world:
            cases = load_world(REPO / "benchmarks" / "data" / "world_knowledge.json", limit=args.limit, split="test")
            requests = [r for c in cases if c.edited for r in c.requests()]
            figures = []
            for side in sides:
                patch, *seconds = side.edit(requests, {})
                figures.append((*seconds, patch))
            print(f"world knowledge, {len(requests)} requests in one edit (test split), once each "
                  f"(wall s; CPU s, of which the values):")
            for side, (wall, cpu, values, patch) in zip(sides, figures):
                print(f"  {side.label:22s} wall {wall:7.1f}  CPU {cpu:7.1f}  values {values:6.1f}  patch {patch.id}")
            print(f"  before / after: wall ×{figures[0][0] / figures[1][0]:.2f}, CPU ×{figures[0][1] / figures[1][1]:.2f}, "
                  f"values ×{figures[0][2] / figures[1][2]:.2f}")
            print(f"  ΔW moved (after vs before, relative): {moved(figures[1][3], figures[0][3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
