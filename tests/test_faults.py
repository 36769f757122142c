"""Every write of every writing command, faulted: the N-th create, write, fsync, rename or mkdir
of ``apply``, ``export`` (peft, diffusers, ``--to model``), ``erase``, ``learn-anchor``,
``stats`` and ``verify`` fails with ENOSPC or EIO, or the process is killed there, for every N
(``faults.py``). After each, the destination holds the old whole result, the new whole result,
or nothing; a failure is one ``error:`` line (exit 2), never a traceback; the next run cleans
what a killed one left and writes the same bytes as a run that was never interrupted.

Then the real thing where the machine lets us mount one: a full tmpfs under ``--out``, and a
patch replaced on a nearly full one (the old patch stays whole and ``show`` accepts it).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from faults import KILLED, Faults, killed_state, leftovers, put, run_killed, tree

from cli_runner import run as run_cli
from textedit import cli

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Scenario:
    """A command writing ``dest`` (under its own folder ``work``): ``old`` makes the result the
    new run replaces, ``new`` is the run faulted. ``per_file``: a cache folder of independent
    files (statistics), where each file is absent or whole."""

    old: list
    new: list
    dest: Path
    per_file: bool = False


def tree_of(dest: Path) -> dict[str, bytes] | None:
    """:func:`faults.tree`, with the one field a result holds that is not its content: the
    seconds ``erasure.json`` records the edit took."""
    state = tree(dest)
    if state and "erasure.json" in state:
        record = json.loads(state["erasure.json"])
        record.pop("seconds", None)
        state["erasure.json"] = json.dumps(record).encode()
    return state


def _spec(path: Path, target: str, layers=(0,)) -> Path:
    path.write_text(json.dumps({"edits": [{"prompt": "the mascot of acme", "target": target, "subject": "acme"}],
                                "layers": list(layers), "value": "match", "method": "memit"}))
    return path


@pytest.fixture(scope="module")
def scenarios(bert_path, sd_path, images, tmp_path_factory) -> dict[str, Scenario]:
    """Inputs shared by every scenario: two specs, a small corpus with its statistics cached
    (outside the faulted folders), and two patches of each kind to export and verify."""
    root = tmp_path_factory.mktemp("faults")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:40]))
    cache = root / "cache"
    spec_a, spec_b = _spec(root / "a.json", "a red fox"), _spec(root / "b.json", "a blue whale")
    common = ["--corpus", corpus, "--cache-dir", cache, "--floor", "off", "--no-preserve"]
    patches = {}
    for name, spec, model in (("a", spec_a, ["--model", bert_path]), ("b", spec_b, ["--model", bert_path]),
                              ("sd_a", spec_a, ["--model", sd_path, "--component", "text_encoder"]),
                              ("sd_b", spec_b, ["--model", sd_path, "--component", "text_encoder"])):
        patches[name] = root / "patches" / name
        code = cli_code(["apply", spec, *model, *common, "--out", patches[name]])
        assert code == 0
    prompts = root / "prompts.txt"
    prompts.write_text("a photo of {}\na quiet lake\n")

    def work(name: str, dest: str) -> Path:
        (root / name).mkdir()
        return root / name / dest

    anchor = ["learn-anchor", images, "--token", "<x>", "--init", "dog", "--pipeline-path", sd_path, "--steps", 2,
              "--resolution", 32, "--checkpoint-every", 1]
    verify = ["--pipeline-path", sd_path, "--steps", 1, "--size", 32, "--seeds", 0, "--prompts", prompts]
    out = {name: work(name, dest) for name, dest in (("apply", "patch"), ("peft", "peft"), ("diffusers", "lora.safetensors"),
                                                    ("model", "merged"), ("erase", "patch"), ("learn-anchor", "anchor"),
                                                    ("stats", "cache"), ("verify", "report"))}
    return {
        "apply": Scenario(["apply", spec_a, "--model", bert_path, *common, "--out", out["apply"]],
                          ["apply", spec_b, "--model", bert_path, *common, "--out", out["apply"]], out["apply"]),
        "export-peft": Scenario(["export", patches["a"], "--to", "peft", "--out", out["peft"]],
                                ["export", patches["b"], "--to", "peft", "--out", out["peft"]], out["peft"]),
        "export-diffusers": Scenario(["export", patches["sd_a"], "--to", "diffusers", "--out", out["diffusers"]],
                                     ["export", patches["sd_b"], "--to", "diffusers", "--out", out["diffusers"]],
                                     out["diffusers"]),
        "export-model": Scenario(["export", patches["a"], "--to", "model", "--model", bert_path, "--out", out["model"]],
                                 ["export", patches["b"], "--to", "model", "--model", bert_path, "--out", out["model"]],
                                 out["model"]),
        "erase": Scenario(["erase", "zorblat", "--model", bert_path, *common[:4], "--layers", 0, "--out", out["erase"]],
                          ["erase", "acme", "--model", bert_path, *common[:4], "--layers", 0, "--out", out["erase"]],
                          out["erase"]),
        "learn-anchor": Scenario([*anchor, "--seed", 1, "--out", out["learn-anchor"]],
                                 [*anchor, "--seed", 0, "--out", out["learn-anchor"]], out["learn-anchor"]),
        "stats": Scenario(["stats", bert_path, "--layers", "0", "--corpus", corpus, "--cache-dir", out["stats"]],
                          ["stats", bert_path, "--layers", "0,1", "--corpus", corpus, "--cache-dir", out["stats"]],
                          out["stats"], per_file=True),
        "verify": Scenario(["verify", patches["sd_a"], *verify, "--out", out["verify"]],
                           ["verify", patches["sd_b"], *verify, "--out", out["verify"]], out["verify"]),
    }


def cli_code(args: list) -> int:
    """``textedit ARGS`` in this process (or a forked child); its exit code."""
    sys.argv = ["textedit", *map(str, args)]
    try:
        cli.main()
    except SystemExit as exc:
        return exc.code or 0
    return 0


def _files(state: dict | None) -> dict:
    """A statistics cache's files, without the temporary ones of a write that was cut."""
    return {name: data for name, data in (state or {}).items() if not Path(name).name.startswith(".")}


def _whole(scenario: Scenario, state, old, new, when: str) -> None:
    """The invariant: ``state`` is the old result, the new one or nothing (a cache: every file
    whole, old or new)."""
    if scenario.per_file:
        files = _files(state)
        assert all(files[name] in ((old or {}).get(name), new.get(name)) for name in files), when
    else:
        assert state is None or state == old or state == new, (when, sorted(state or {}))


def _one_line_error(code: int, err: str, fault: int, where: Path, when: str) -> None:
    """Exit 2 and one ``error:`` line saying what failed (``fault``'s words) and where (a path
    under ``where``), no traceback."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err and lines and lines[-1].startswith("error: "), (when, code, err)
    assert os.strerror(fault) in lines[-1] and str(where) in lines[-1], (when, lines[-1])


#: faulted runs at once, each in its own copy of the destination's folder
LANES = 2

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills are forked children (POSIX)")


@pytest.mark.parametrize("name", ["apply", "export-peft", "export-diffusers", "export-model", "erase",
                                  "learn-anchor", "stats", "verify"])
def test_every_write_faulted_leaves_the_old_the_new_or_nothing(name, scenarios, monkeypatch, capsys, tmp_path):
    """For every N: killed at the N-th operation, the destination is old, new or nothing, and
    the next run writes the new bytes and leaves nothing beside them (run once for each disk
    state the kills leave: :func:`faults.killed_state`); failed there with ENOSPC
    (odd N) or EIO (even N), the run is one ``error:`` line and the destination old, new or
    nothing. N runs on :data:`LANES` forked workers at once."""
    scenario = scenarios[name]
    dest, work = scenario.dest, scenario.dest.parent
    run = lambda args: run_cli(monkeypatch, capsys, *args)  # noqa: E731
    put(None, dest)
    assert run(scenario.old)[0] == 0
    old = tree_of(dest) if not scenario.per_file else None  # a cache: the new run starts from none
    assert run(scenario.new)[0] == 0
    new = tree_of(dest)
    put(old, dest)
    with monkeypatch.context() as patched:  # the run to fault, counted
        counted = Faults(work).install(patched)
        code, _, err = run(scenario.new)
    assert code == 0 and tree_of(dest) == new, err
    operations = counted.log
    assert {op for op, _ in operations} >= {"write", "fsync", "rename"}, operations
    print(f"{name}: {len(operations)} operations faulted")  # shown with pytest -rP

    lanes = [work.with_name(f"{work.name}-lane{i}") for i in range(LANES)]
    busy: dict[int, tuple[int, Path]] = {}  # worker pid → (N, lane)
    failures = []

    def wait_one() -> None:
        pid, status = os.wait()
        at, lane = busy.pop(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            report = lane / "failure.txt"
            failures.append(report.read_text() if report.exists() else f"operation {at}: worker died ({status})")
        lanes.append(lane)

    for lane in lanes:
        lane.mkdir(exist_ok=True)
    for at in range(1, len(operations) + 1):
        if not lanes:
            wait_one()
        if failures:  # the first failure says it; the rest would only cost time
            break
        lane = lanes.pop(0)
        pid = _fork(lambda: _fault_at(at, scenario, lane, old, new, operations, monkeypatch, capsys), lane)
        busy[pid] = (at, lane)
    while busy:
        wait_one()
    assert not failures, failures[0]


def _fork(check, lane: Path) -> int:
    """``check()`` in a forked worker; a failure's traceback goes to ``lane/failure.txt``."""
    (lane / "failure.txt").unlink(missing_ok=True)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            check()
            code = 0
        except BaseException:  # noqa: BLE001 - reported to the parent through the file
            (lane / "failure.txt").write_text(traceback.format_exc())
        finally:
            os._exit(code)
    return pid


def _first_to_see(state: str, seen: Path) -> bool:
    """Whether no worker has yet run the next run after a kill that left ``state``
    (:func:`faults.killed_state`); claimed atomically, so each state is run once."""
    seen.mkdir(exist_ok=True)
    try:
        os.close(os.open(seen / state, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _fault_at(at: int, scenario: Scenario, lane: Path, old, new, operations, monkeypatch, capsys) -> None:
    """In a worker: the kill, the next run and the failure at operation ``at``, in ``lane``."""
    dest = lane / scenario.dest.name
    args = [dest if a == scenario.dest else a for a in scenario.new]
    operation, path = operations[at - 1]
    when = f"operation {at} of {len(operations)}, {operation} {path}"
    put(old, dest)
    assert run_killed(lambda: cli_code(args), lane, at) == KILLED, when
    killed = tree_of(dest)
    _whole(scenario, killed, old, new, f"killed at {when}")
    if killed is None and old is not None:  # between the two renames: the old one waits beside
        assert any(tree_of(lane / aside) == old for aside in leftovers(dest) if aside.endswith(".old")), when

    if _first_to_see(killed_state(dest), lane.parent / f"{lane.name.split('-lane')[0]}-seen"):
        code, _, err = run_cli(monkeypatch, capsys, *args)  # the next run cleans up and writes the same bytes
        assert code == 0, (when, err)
        assert (_files(tree_of(dest)) if scenario.per_file else tree_of(dest)) == new, when
        assert leftovers(dest) == [] and not (scenario.per_file and _files(tree(dest)) != tree(dest)), when

    fault = (errno.ENOSPC, errno.EIO)[at % 2]
    put(old, dest)
    Faults(lane, at, fault).install(monkeypatch)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    failed = tree_of(dest)
    if code == 0:  # a fault the command may step over (mkdir of a folder that exists)
        assert failed == new, when
    else:
        _one_line_error(code, err, fault, lane, when)
        _whole(scenario, failed, old, new, f"{os.strerror(fault)} at {when}")
    assert leftovers(dest) == [], when  # a failure in this process tidies after itself


# -- a real full disk ------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """A folder to mount small tmpfs file systems on, unmounted afterwards (skipped where
    mounting is not allowed: not root, or a container without the capability)."""
    mounted = []

    def mount(size: str) -> Path:
        folder = tmp_path / f"fs{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
        mounted.append(folder)
        return folder

    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    yield mount
    for folder in mounted:
        for _ in range(20):  # a file still open in a finalizer keeps the file system busy for a moment
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


def _fill(disk: Path) -> None:
    """Take every free block of ``disk`` with one file, ``ballast``."""
    free = os.statvfs(disk)
    (disk / "ballast").write_bytes(b"\0" * (free.f_bavail * free.f_frsize))


def test_out_on_a_full_tmpfs_is_one_line_and_leaves_nothing(tmpfs, scenarios, monkeypatch, capsys):
    disk = tmpfs("8k")
    _fill(disk)
    out = disk / "patch"
    args = [a if a != scenarios["apply"].dest else out for a in scenarios["apply"].new]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    _one_line_error(code, err, errno.ENOSPC, out, "apply --out on a full 8 KB tmpfs")
    assert [p.name for p in disk.iterdir()] == ["ballast"]  # no folder, no half patch, no temporary sibling


def test_replacing_a_patch_on_a_nearly_full_tmpfs_keeps_the_old_one(tmpfs, scenarios, monkeypatch, capsys):
    from textedit.patch import Patch

    disk = tmpfs("24k")
    out = disk / "patch"
    apply = scenarios["apply"]
    old_args = [a if a != apply.dest else out for a in apply.old]
    assert run_cli(monkeypatch, capsys, *old_args)[0] == 0
    old = tree(out)
    _fill(disk)
    code, _, err = run_cli(monkeypatch, capsys, *[a if a != apply.dest else out for a in apply.new])
    _one_line_error(code, err, errno.ENOSPC, out, "replacing a patch on a full tmpfs")
    assert "kept as it was" in err
    assert tree(out) == old and sorted(p.name for p in disk.iterdir()) == ["ballast", "patch"]
    Patch.load(out)
    code, shown, err = run_cli(monkeypatch, capsys, "show", out)
    assert code == 0 and Patch.load(out).id in shown, err


def test_a_model_export_on_a_full_tmpfs_is_one_line_and_leaves_nothing(tmpfs, scenarios, monkeypatch, capsys):
    """transformers' save_pretrained writes through safetensors' own writer, whose full-disk
    error is not an OSError: still one line naming --out (``io.library_write``)."""
    disk = tmpfs("64k")
    _fill(disk)
    export = scenarios["export-model"]
    out = disk / "merged"
    code, _, err = run_cli(monkeypatch, capsys, *[a if a != export.dest else out for a in export.new])
    _one_line_error(code, err, errno.ENOSPC, out, "export --to model on a full tmpfs")
    assert [p.name for p in disk.iterdir()] == ["ballast"]
