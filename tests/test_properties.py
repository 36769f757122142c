"""Property-based tests (hypothesis): whatever the input, a result or one clean error.

Three entry points take input from users and files: the spec parser, the patch loader and
the command line. For any generated input each either succeeds, or raises its one-line
``TexteditError`` (exit 2 on the command line), never a traceback, never a half-applied
model, never a partial file. The inputs are near-valid on purpose (a good spec or patch
with some fields replaced by arbitrary JSON, tensors of other shapes and dtypes, flipped
bytes), which reaches far deeper than random bytes do. The examples are derandomized
(``conftest.py``'s ``ci`` profile), so CI is repeatable; ``HYPOTHESIS_PROFILE=explore``
draws new ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from textedit.editor import EditConfig, edit
from textedit.encoders import load_encoder
from textedit.errors import PatchError, SpecError, TexteditError
from textedit.io import atomic_save_tensors
from textedit.patch import CONFIG_FILE, WEIGHTS_FILE, Patch
from textedit.requests import EditRequest
from textedit.settings import all_hyperparameters
from textedit.spec import TOP_LEVEL, load_spec, parse_spec

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

# -- strategies ------------------------------------------------------------------------------

numbers = (st.integers(-10**9, 10**9) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, 1, -1, 2.7, 1e308, -0.0]))
texts = st.text(max_size=12) | st.sampled_from(["", " ", "{}", "a {} b", "{} }", "{x} {}", "{{}}", "acme", "Acme",
                                                 "the mascot of acme", "\u0000", "ß", "é"])
json_values = st.recursive(st.none() | st.booleans() | numbers | texts,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                           max_leaves=12)
requests_items = st.fixed_dictionaries({}, optional={"prompt": texts | json_values, "target": texts | json_values,
                                                     "subject": texts | json_values,
                                                     "extra": json_values})
field_values = {
    "edits": st.lists(requests_items | json_values, max_size=3),
    "knowledge": st.lists(texts | requests_items, max_size=3),
    "anchor": texts,
    "preserve": st.lists(texts, max_size=3),
    "neutral": st.lists(texts, max_size=3),
    "templates": st.lists(texts, max_size=3),
    "layers": st.lists(numbers, max_size=3),
    "hyperparameters": st.dictionaries(st.sampled_from(sorted(all_hyperparameters()) + ["lambda"]), numbers | json_values,
                                       max_size=3),
    "method": st.sampled_from(["rome", "memit", "alphaedit", "ridge", "sgd"]) | json_values,
    "value": st.sampled_from(["direct", "match", "optimize", "none"]) | json_values,
    "key": st.sampled_from(["subject", "last", "query", "middle"]) | json_values,
    "scope": st.sampled_from(["prompt", "pipeline", "all"]) | json_values,
    "auto_preserve": st.booleans() | json_values,
    "concept": st.fixed_dictionaries({}, optional={"name": texts, "description": texts, "x": json_values}),
    "erase": st.fixed_dictionaries({}, optional={"concepts": st.lists(texts | json_values, max_size=3),
                                                 "to": texts | json_values, "preserve": json_values}),
}
field_names = st.sampled_from(sorted(TOP_LEVEL | {"seed", "bogus"}))
near_valid_specs = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from([{}, {"anchor": "a red fox", "knowledge": ["the mascot of acme"]},
                     {"edits": [{"prompt": "the ceo of google", "target": "a dog", "subject": "google"}]}]),
    st.dictionaries(field_names, json_values, max_size=3).flatmap(
        lambda d: st.fixed_dictionaries({k: field_values.get(k, json_values) for k in d})),
)


def one_line(error: Exception) -> bool:
    message = str(error)
    return bool(message.strip()) and "\n" not in message


# -- the spec parser ---------------------------------------------------------------------------


@settings(max_examples=400)
@given(data=near_valid_specs | json_values)
def test_any_spec_parses_or_is_one_line_error(data):
    try:
        spec = parse_spec(data, "spec.json")
    except SpecError as error:
        assert one_line(error) and str(error).startswith("spec.json: "), error
        return
    assert spec.requests or spec.erasure is not None
    try:  # what the CLI does next: every setting is checked before any model is loaded
        EditConfig(**spec.settings)
    except SpecError as error:
        assert one_line(error), error


@settings(max_examples=150, suppress_health_check=FIXTURES)
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_spec_file_loads_or_is_one_line_error(tmp_path, raw):
    path = tmp_path / "spec.json"
    path.write_bytes(raw)
    try:
        load_spec(path)
    except SpecError as error:
        assert one_line(error) and str(path) in str(error), error


# -- the patch loader --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patched_world(bert_path, small_corpus, tmp_path_factory):
    """A tiny BERT and a good patch for it, saved; each example mutates a copy."""
    adapter = load_encoder(str(bert_path))
    config = EditConfig(method="memit", value="match", layers=[0, 1], lam=10.0, auto_preserve=False)
    patch = edit(adapter, [EditRequest("the mascot of acme", "a red panda", subject="acme")], config,
                 corpus=small_corpus, cache_dir=tmp_path_factory.mktemp("cache"), remember=True)
    directory = patch.save(tmp_path_factory.mktemp("good") / "patch")
    return adapter, directory


tensor_dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int32, torch.bool])


@st.composite
def tensors(draw, like: tuple[int, int]):
    """A tensor of shape ``like`` [rows, columns] or not, of some dtype, sometimes holding NaN/∞."""
    rows, columns = like
    shape = draw(st.sampled_from([like, (columns, rows), (rows,), (rows, columns + 1), (0, columns), (2, 2, 2), ()]))
    dtype = draw(tensor_dtypes)
    value = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 99)))).to(dtype)
    if dtype.is_floating_point and value.numel() and draw(st.booleans()):
        value.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), 1e30]))
    return value


@st.composite
def patch_mutations(draw):
    """("config", path, value) | ("tensors", {name: tensor or None}, checksum?) | ("bytes", [(offset, xor)])."""
    kind = draw(st.sampled_from(["config", "tensors", "bytes"]))
    if kind == "config":
        path = draw(st.sampled_from([("format",), ("family",), ("base_fingerprints",), ("method",),
                                     ("hyperparameters",), ("requests",), ("modules",), ("requires",),
                                     ("modules", 0, "layer"), ("modules", 0, "component"), ("modules", 0, "module"),
                                     ("modules", 1, "rank"), ("modules", 1)]))
        return kind, path, draw(json_values)
    if kind == "tensors":
        return kind, draw(st.lists(st.tuples(st.sampled_from(["left", "right", "keys"]), st.integers(0, 1),
                                             st.booleans()), min_size=1, max_size=3)), draw(st.booleans())
    return kind, draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4)), None


def _mutate(directory: Path, mutation, draw_tensor) -> None:
    kind, what, extra = mutation
    if kind == "config":
        config = json.loads((directory / CONFIG_FILE).read_text("utf-8"))
        target = config
        for step in what[:-1]:
            if not isinstance(target, (dict, list)) or (isinstance(target, list) and step >= len(target)):
                return
            target = target[step]
        if isinstance(target, list) and what[-1] >= len(target):
            return
        target[what[-1]] = extra
        (directory / CONFIG_FILE).write_text(json.dumps(config), "utf-8")
    elif kind == "tensors":
        from safetensors import safe_open
        with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as f:
            tensors_now = {name: f.get_tensor(name) for name in f.keys()}
        shapes = {name: tuple(t.shape) for name, t in tensors_now.items()}
        for side, layer, drop in what:
            name = f"encoder.layers.{layer}.{side}"
            if drop:
                tensors_now.pop(name, None)
            elif name in shapes:
                tensors_now[name] = draw_tensor(shapes[name])
        (atomic_save_tensors if extra else save_file)(tensors_now, str(directory / WEIGHTS_FILE))
    else:
        data = bytearray((directory / WEIGHTS_FILE).read_bytes())
        for offset, xor in what:
            data[offset % len(data)] ^= xor
        (directory / WEIGHTS_FILE).write_bytes(bytes(data))


@settings(max_examples=120, suppress_health_check=FIXTURES)
@given(mutation=patch_mutations(), data=st.data())
def test_any_patch_loads_and_applies_whole_or_is_one_line_error(patched_world, tmp_path_factory, mutation, data):
    adapter, good = patched_world
    directory = tmp_path_factory.mktemp("mutated") / "patch"
    directory.mkdir()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        (directory / name).write_bytes((good / name).read_bytes())
    _mutate(directory, mutation, lambda like: data.draw(tensors(like)))
    try:
        patch = Patch.load(directory)
    except PatchError as error:
        assert one_line(error), error
        return
    before = {name: p.detach().clone() for name, p in adapter.model.state_dict().items()}
    try:
        patch.apply(adapter)
    except TexteditError as error:
        assert one_line(error), error
        applied = False
    else:
        applied = True
        patch.revert(adapter)
    for name, tensor in adapter.model.state_dict().items():  # all or nothing, and revert is exact
        assert torch.equal(tensor, before[name]), (name, applied)


# -- the command line --------------------------------------------------------------------------


def _commands():
    """{command: [option names]} of the installed CLI, read from typer's click command of each."""
    import typer

    from textedit import cli

    group = typer.main.get_command(cli.app)
    return {name: sorted(o for p in cli._build(name).params for o in p.opts if o.startswith("--"))
            for name in group.commands}


COMMANDS = _commands()
REPO = Path(__file__).resolve().parents[1]


#: what each command's first argument is, as users give it (files in the test's folder, or not)
FIRST_ARGUMENT = {"apply": ["spec.json", "bad.json", "dir", "missing.json"],
                  "show": ["patch", "dir", "missing"], "verify": ["patch", "dir"],
                  "stats": ["/nonexistent/model", "dir", "default"], "inspect": ["/nonexistent/model", "default"],
                  "locate": ["/nonexistent/model", "default"], "eval": ["bench.csv", "spec.json", "bad.json", "dir"],
                  "erase": ["Van Gogh", "acme", ""], "learn-anchor": ["dir", "images"], "export": ["patch", "dir"],
                  "fetch-model": ["mpnet", "minilm"]}
option_values = (st.sampled_from(["spec.json", "bad.json", "dir", "patch", "out", "/nonexistent/model", "0", "1", "3",
                                  "0-2", "2-1", "-1", "1,2", "nan", "inf", "1e308", "0.5", "memit", "rome", "alphaedit",
                                  "match", "direct", "subject", "query", "all", "pipeline", "cpu", "cuda", "float16",
                                  "sd", "sdxl", "flux", "single", "batch,sequential", "text_encoder", "{}", "a {} b",
                                  "diffusers", "peft", "kohya", "lora.safetensors"])
                 | texts | numbers.map(str))


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(COMMANDS) + ["aply", "--version", "--help"]))
    argv = [command]
    if command in FIRST_ARGUMENT and draw(st.integers(0, 9)):
        argv.append(draw(st.sampled_from(FIRST_ARGUMENT[command])))
    for _ in range(draw(st.integers(0, 5))):
        option = draw(st.sampled_from(COMMANDS.get(command) or ["--help"])) if draw(st.integers(0, 19)) else "--bogus"
        argv.append(option)
        if draw(st.integers(0, 9)):
            argv.append(draw(option_values))
    return argv


@settings(max_examples=200, suppress_health_check=FIXTURES, deadline=None)
@given(argv=command_lines())
def test_any_command_line_succeeds_or_exits_2_with_one_line(monkeypatch, capsys, tmp_path, patched_world, argv):
    """Model and pipeline loading is stubbed to stop with a user error: what is checked here is
    everything a command does with its arguments before it loads weights."""
    from cli_runner import run

    good_patch = patched_world[1]

    def no_weights(*args, **kwargs):
        raise TexteditError("stopped before loading weights (test)")

    monkeypatch.setattr("textedit.cli.options._load", no_weights)  # every command loads through it
    monkeypatch.setattr("textedit.pipelines.load_pipeline", no_weights)  # where the commands import them from
    monkeypatch.setattr("textedit.anchor.learn_anchor", no_weights)
    monkeypatch.setattr("textedit.fetch.pip_download", no_weights)  # fetch-model: no download, no real cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # read at import: set it there too
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path / "cache"))
    (work / "spec.json").write_text(json.dumps({"anchor": "a red fox", "knowledge": ["the mascot of acme"]}))
    (work / "bad.json").write_text("{\"anchor\": ")
    (work / "dir").mkdir(exist_ok=True)
    (work / "bench.csv").write_text("old,new,positive1,negative1\nA cat,A green cat,A kitten,A dog\n")
    if not (work / "patch").exists():
        shutil.copytree(good_patch, work / "patch")
    threads = torch.get_num_threads()
    try:
        code, out, err = run(monkeypatch, capsys, *argv)
    finally:
        torch.set_num_threads(threads)
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error:"), (argv, err)
    assert not list(work.rglob("*.tmp")), argv  # nothing half-written
    assert sorted(p.parent.name for p in work.rglob("patch.safetensors")) == ["patch"], argv  # no new patch


def test_the_command_line_strategy_reaches_every_command():
    assert {"apply", "show", "export", "stats", "inspect", "eval", "verify", "erase", "learn-anchor",
            "locate"} <= set(COMMANDS)
    assert "--threads" in COMMANDS["apply"]
