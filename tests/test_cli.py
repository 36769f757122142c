"""The command line: bad input gets one clear line and a non-zero exit, never a traceback
or a half-written patch; `apply` on the real MiniLM moves every knowledge query."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from cli_runner import run

REPO = Path(__file__).resolve().parents[1]



def write_spec(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    shipped = (REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()
    path.write_text("\n".join(shipped[:300]))
    return path


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), err
    for fragment in fragments:
        assert fragment in err, err


GOOD = {"anchor": "a red fox", "knowledge": ["the mascot of acme"]}


@pytest.mark.parametrize("spec, fragments", [
    ("{\"anchor\": \"a fox\", \"knowledge\": [", ["invalid JSON", "line 1"]),
    ({"anchor": "a fox", "knowledge": []}, ["knowledge", "empty"]),
    ({"edits": [{"prompt": "the mascot of acme", "target": "a fox", "subject": "zebra"}]}, ["edits[0].subject", "zebra"]),
    ({"edits": [{"prompt": "the mascot of acme"}]}, ["edits[0].target", "missing"]),
    ({"anchor": "a fox", "knowledge": ["x"], "hyperparameters": {"lambda": 3}}, ["hyperparameters.lambda"]),
    ({"anchor": "a fox", "knowledge": ["x"], "methd": "rome"}, ["field 'methd'"]),
    ({}, ["no edits"]),
    ({"anchor": "a fox", "knowledge": ["the mascot of acme"], "preserve": ["the mascot of acme"]},
     ["preserve[0]", "also edited"]),
    ({"anchor": "a fox", "knowledge": ["x"], "preserve": "the founder of acme"}, ["field 'preserve'"]),
    ({"anchor": "a fox", "knowledge": ["x"], "auto_preserve": "yes"}, ["field 'auto_preserve'", "bool"]),
    ({"anchor": "a fox", "knowledge": ["x"], "seed": 3}, ["field 'seed'", "no longer read", "remove the field"]),
    ({"anchor": "a fox", "knowledge": ["the mascot of acme"], "edits": [{"prompt": "The mascot of  Acme",
                                                                         "target": "a cat"}]},
     ["edits[0] and knowledge[0]", "'a cat' and to 'a fox'"]),
])
def test_spec_errors_are_one_line(monkeypatch, capsys, tmp_path, bert_path, spec, fragments):
    path = write_spec(tmp_path / "bad.json", spec)
    out_dir = tmp_path / "patch"
    code, _, err = run(monkeypatch, capsys, "apply", path, "--model", bert_path, "--out", out_dir)
    assert_one_line_error(code, err, "bad.json", *fragments)
    assert not out_dir.exists()


@pytest.mark.parametrize("args, fragments", [
    (["--model", "/no/such/model"], ["/no/such/model"]),
    (["--layers", "7"], ["layer 7", "out of range"]),
    (["--method", "rome", "--layers", "0,1"], ["rome", "one layer"]),
    (["--method", "rome", "--lam", "3"], ["lam", "does nothing"]),
    (["--method", "sgd"], ["unknown method 'sgd'"]),
    (["--key", "middle"], ["unknown key position 'middle'"]),
    (["--method", "rome", "--layers", "0", "--preserve"], ["keeps keys", "rome"]),
])
def test_bad_options_are_one_line(monkeypatch, capsys, tmp_path, bert_path, corpus_file, args, fragments):
    path = write_spec(tmp_path / "spec.json", GOOD)
    out_dir = tmp_path / "patch"
    full = ["apply", path, "--model", bert_path, "--out", out_dir, "--corpus", corpus_file,
            "--cache-dir", tmp_path / "cache", *args]
    if "--model" in args:
        full = ["apply", path, "--out", out_dir, *args]
    code, _, err = run(monkeypatch, capsys, *full)
    assert_one_line_error(code, err, *fragments)
    assert not out_dir.exists()


def test_apply_show_and_refuse_other_model(monkeypatch, capsys, tmp_path, bert_path, clip_path, corpus_file):
    spec = write_spec(tmp_path / "spec.json", {**GOOD, "method": "memit", "value": "match", "layers": [0, 1]})
    out_dir = tmp_path / "patch"
    code, out, err = run(monkeypatch, capsys, "apply", spec, "--model", bert_path, "--out", out_dir,
                         "--corpus", corpus_file, "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    assert (out_dir / "patch.safetensors").is_file() and (out_dir / "patch.json").is_file()
    assert "the mascot of acme" in out
    assert not list(out_dir.glob("*.tmp"))

    code, out, err = run(monkeypatch, capsys, "show", out_dir, "--model", bert_path)
    assert code == 0, err
    assert "memit" in out and "largest neutral drift" in out

    # a BERT-sized patch on another model: refused by fingerprint, in one line
    other = tmp_path / "other_bert"
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_models import build_tiny_bert
    torch.manual_seed(1)
    build_tiny_bert(other)
    from transformers import BertModel
    model = BertModel.from_pretrained(other)
    with torch.no_grad():
        model.encoder.layer[0].output.dense.weight.add_(0.01)
    model.save_pretrained(other)
    code, _, err = run(monkeypatch, capsys, "show", out_dir, "--model", other)
    assert_one_line_error(code, err, "fingerprint")


def test_truncated_patch_is_refused(monkeypatch, capsys, tmp_path):
    (tmp_path / "patch.json").write_text('{"format": "textedit-patch-1", "fam')
    (tmp_path / "patch.safetensors").write_bytes(b"garbage")
    code, _, err = run(monkeypatch, capsys, "show", tmp_path)
    assert_one_line_error(code, err, "patch.json", "not valid JSON")


def test_corrupt_cache_is_recomputed_with_a_warning(monkeypatch, capsys, tmp_path, bert_path, corpus_file):
    cache = tmp_path / "cache"
    args = ("stats", bert_path, "--layers", "0,1", "--corpus", corpus_file, "--cache-dir", cache)
    code, first, err = run(monkeypatch, capsys, *args)
    assert code == 0, err
    files = sorted(cache.rglob("layer0.safetensors"))
    assert len(files) == 1
    files[0].write_bytes(b"\x00garbage")
    code, second, err = run(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "corrupt" in err and str(files[0]) in err.replace("\n", "")
    table = lambda text: text[text.index("key statistics"):text.index("cached under")]  # noqa: E731
    assert table(first) == table(second)  # recomputed to the same sums


def test_inspect_lists_layers(monkeypatch, capsys, clip_path):
    code, out, err = run(monkeypatch, capsys, "inspect", clip_path)
    assert code == 0, err
    assert "mlp.fc2" in out and "clip" in out
    assert "prompts are read at most 77 tokens, without a mask, padded to the maximum" in " ".join(out.split())


def test_inspect_a_pipeline_encoder_says_how_its_pipeline_reads_it(monkeypatch, capsys, pipeline_paths):
    """``inspect PIPELINE --component`` loads the encoder as its pipeline reads it: Qwen-Image's
    chat template, the mask, and the 34 tokens it does not read."""
    code, out, err = run(monkeypatch, capsys, "inspect", pipeline_paths["qwenimage"], "--component", "text_encoder")
    assert code == 0, err
    text = " ".join(out.split())
    assert "model.language_model.layers.0.mlp.down_proj" in text and "with the attention mask" in text
    assert "<|im_start|>system" in text and "the first 34 tokens not read" in text


def test_inspect_a_sana_encoder_says_it_reads_bos_and_the_prompt_after_its_instruction(monkeypatch, capsys,
                                                                                      pipeline_paths):
    """Sana's Gemma-2 is read lower-cased behind its instruction, padded to the instruction's
    token count + 298, and the tokens between BOS and the prompt are not read (the tiny
    tokenizer encodes the instruction in 210 tokens, BOS and the trailing "▁" included)."""
    code, out, err = run(monkeypatch, capsys, "inspect", pipeline_paths["sana"], "--component", "text_encoder")
    assert code == 0, err
    text = " ".join(out.split())
    assert "layers.0.mlp.down_proj" in text and "with the attention mask" in text
    assert "at most 508 tokens" in text and "padded to the maximum" in text and "lower-cased" in text
    assert "User Prompt:" in text
    assert "tokens 1 to 208 not read" in text


def test_inspect_flux2_and_hidream_encoders_say_how_their_pipelines_read_them(monkeypatch, capsys, pipeline_paths):
    """FLUX.2's Mistral 3: the language model's 31 layers (not the vision tower's), the system
    message in the chat template, 512 tokens, no special tokens added; HiDream's Llama: its 32
    layers, 128 tokens padded to the maximum, with the mask."""
    code, out, err = run(monkeypatch, capsys, "inspect", pipeline_paths["flux2"], "--component", "text_encoder")
    assert code == 0, err
    text = " ".join(out.split())
    assert "31 layers" in text and "model.language_model.layers.0.mlp.down_proj" in text and "vision" not in text
    assert "at most 512 tokens, with the attention mask, padded to the maximum" in text
    assert "[SYSTEM_PROMPT]You are an AI" in text and "adding no special tokens (the template writes them)" in text
    code, out, err = run(monkeypatch, capsys, "inspect", pipeline_paths["hidream"], "--component", "text_encoder_4")
    assert code == 0, err
    text = " ".join(out.split())
    assert "32 layers" in text and "model.layers.31.mlp.down_proj" in text
    assert "at most 128 tokens, with the attention mask, padded to the maximum" in text


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_mascot_on_real_minilm(monkeypatch, capsys, tmp_path, two_threads):
    """`textedit apply edits/mascot.json` on the packaged all-MiniLM-L6-v2, default settings.

    Thresholds (held-out templates, judge = the unedited encoder):
    every knowledge query ends at cosine ≥ 0.80 to the anchor and gains ≥ 0.20;
    every neutral prompt keeps cosine ≥ 0.90 to itself, and ≥ 0.99 on average.
    """
    from textedit.encoders import load_encoder
    from textedit.metrics import NEUTRAL_PROMPTS, measure
    from textedit.patch import Patch
    from textedit.spec import load_spec

    out_dir = tmp_path / "mascot"
    code, out, err = run(monkeypatch, capsys, "apply", REPO / "edits" / "mascot.json", "--out", out_dir,
                         "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    spec = load_spec(REPO / "edits" / "mascot.json")
    encoder = load_encoder()
    report = measure(encoder, Patch.load(out_dir), spec.requests, NEUTRAL_PROMPTS)
    for score in report.requests:
        assert score.after >= 0.80 and score.after - score.before >= 0.20, score
    drifts = [d for _, d in report.neutral]
    assert max(drifts) <= 0.10 and sum(drifts) / len(drifts) <= 0.01, report.neutral

    # the README's Python block, run as written, on the statistics computed above
    import re
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("```python\n") + len("```python\n"):]
    block = block[:block.index("```")]
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    exec(compile(block, "README.md", "exec"), {})
    pairs = re.findall(r"similarity (-?\d\.\d+) → (-?\d\.\d+)", capsys.readouterr().out)
    assert pairs and all(float(before) < float(after) for before, after in pairs), pairs
    assert (tmp_path / "patches" / "acme" / "patch.json").is_file()


def test_unreachable_hub_id_is_one_line_from_the_console_script(tmp_path):
    """The real `textedit` executable, a hub id, no hub: one line, exit 2, no traceback."""
    import os
    import shutil
    import subprocess
    exe = shutil.which("textedit") or str(Path(sys.executable).parent / "textedit")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([exe, "inspect", "some-org/no-such-model"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot load model 'some-org/no-such-model'")


def test_apply_after_earlier_patches_keeps_their_keys(monkeypatch, capsys, tmp_path, bert_path, corpus_file):
    """Lifelong editing from the command line: `apply --remember`, then `apply --after`; the second
    patch stores its keys, goes on top of the first (and not on the bare model), and keeps the
    first edit's value where a patch solved without memory moves it."""
    from textedit.encoders import load_encoder
    from textedit.patch import Patch

    common = ["--model", bert_path, "--corpus", corpus_file, "--cache-dir", tmp_path / "cache", "--method", "memit",
              "--value", "match", "--layers", "0,1", "--lam", "1"]
    first = write_spec(tmp_path / "first.json", {"anchor": "a red fox", "knowledge": ["the mascot of acme"]})
    second = write_spec(tmp_path / "second.json", {"anchor": "a blue whale", "knowledge": ["the logo of globex"]})
    code, _, err = run(monkeypatch, capsys, "apply", first, "--out", tmp_path / "a", "--remember", *common)
    assert code == 0, err
    code, out, err = run(monkeypatch, capsys, "apply", second, "--out", tmp_path / "b", "--after", tmp_path / "a",
                         *common)
    assert code == 0, err
    assert "edits of the --after patches" in out and "the mascot of acme" in out  # what happened to them
    code, _, err = run(monkeypatch, capsys, "apply", second, "--out", tmp_path / "b_forgetful", "--after",
                       tmp_path / "a", "--no-remember", *common)
    assert code == 0, err
    a, b, forgetful = (Patch.load(tmp_path / name) for name in ("a", "b", "b_forgetful"))
    assert b.hyperparameters["after"] == [a.id] and all(d.keys is not None for d in b.deltas)
    assert all(d.keys is None for d in forgetful.deltas)

    keys = a.deltas[1].keys.double()  # the first edit's keys at layer 1, one per template
    moved = {name: (p.deltas[1].delta.dense().double() @ keys).norm().item()
             for name, p in (("b", b), ("forgetful", forgetful))}
    assert moved["b"] < 0.2 * moved["forgetful"], moved

    adapter = load_encoder(str(bert_path))
    with pytest.raises(Exception, match="goes after the patches"):
        b.apply(adapter)  # the bare model: refused, with the order to apply in
    a.apply(adapter)
    b.apply(adapter)
    b.revert(adapter)
    a.revert(adapter)

    code, _, err = run(monkeypatch, capsys, "apply", second, "--after", tmp_path / "nowhere", *common)
    assert_one_line_error(code, err, "nowhere")
    code, _, err = run(monkeypatch, capsys, "apply", second, "--remember", *common[:-6], "--method", "rome")
    assert_one_line_error(code, err, "rome")


def test_apply_after_continues_ultraedits_normaliser(monkeypatch, capsys, tmp_path, bert_path):
    """`apply --remember` stores UltraEdit's normaliser in the patch and `apply --after` continues
    it: a lone request after a patch of two is standardised against all three keys' statistics;
    after a patch that stores none it has nothing to vary against (noted, then refused)."""
    from textedit.patch import Patch

    common = ["--model", bert_path, "--method", "ultraedit", "--value", "match", "--layers", "0,1"]
    first = write_spec(tmp_path / "first.json", {"anchor": "a red fox",
                                                 "knowledge": ["the mascot of acme", "the logo of acme"]})
    second = write_spec(tmp_path / "second.json", {"anchor": "a blue whale", "knowledge": ["the logo of globex"]})
    code, _, err = run(monkeypatch, capsys, "apply", first, "--out", tmp_path / "a", "--remember", *common)
    assert code == 0, err
    code, _, err = run(monkeypatch, capsys, "apply", second, "--out", tmp_path / "b", "--after", tmp_path / "a",
                       *common)
    assert code == 0, err
    a, b = Patch.load(tmp_path / "a"), Patch.load(tmp_path / "b")
    assert [d.state["count"].item() for d in a.deltas + b.deltas] == [2, 2, 3, 3]  # one key per request

    code, _, err = run(monkeypatch, capsys, "apply", first, "--out", tmp_path / "plain", *common)
    assert code == 0 and all(d.state is None for d in Patch.load(tmp_path / "plain").deltas), err
    code, _, err = run(monkeypatch, capsys, "apply", second, "--after", tmp_path / "plain", *common)
    assert "stores no ultraedit state" in " ".join(err.split())  # the note, however the console wraps it
    assert_one_line_error(code, err, "several requests")


def test_apply_keeps_named_and_automatic_preserved_prompts(monkeypatch, capsys, tmp_path, bert_path, corpus_file):
    """The spec's `preserve` prompts and the automatic ones go into the solve, the patch records
    them, and `apply` reports their drift; by default the automatic ones too, with `--no-preserve` the named ones only."""
    from textedit.patch import Patch
    from textedit.preserve import automatic_prompts
    from textedit.spec import load_spec

    spec = write_spec(tmp_path / "spec.json", {
        "anchor": "a red fox", "knowledge": [{"prompt": "the mascot of acme", "subject": "acme"}],
        "preserve": ["the house of acme"], "key": "subject", "layers": [0, 1], "value": "match"})
    common = ["--model", bert_path, "--corpus", corpus_file, "--cache-dir", tmp_path / "cache"]
    code, out, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "on", "--preserve", *common)
    assert code == 0, err
    patch = Patch.load(tmp_path / "on")
    automatic = automatic_prompts(load_spec(spec).requests)
    assert patch.hyperparameters["preserved"] == ["the house of acme", *automatic]
    assert patch.hyperparameters["key"] == "subject" and patch.hyperparameters["auto_preserve"] is True
    assert "preserved prompts" in out and "the house of acme" in out and "(auto)" in out
    code, out, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "default", *common)
    assert code == 0, err  # the default keeps the automatic prompts too (a bidirectional encoder)
    assert Patch.load(tmp_path / "default").hyperparameters["preserved"] == ["the house of acme", *automatic]
    code, out, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "off", "--no-preserve", *common)
    assert code == 0, err
    assert Patch.load(tmp_path / "off").hyperparameters["preserved"] == ["the house of acme"]
    assert "(auto)" not in out


# -- usage errors through the installed console script -------------------------------------


CONSOLE_SCRIPT = Path(sys.executable).parent / "textedit"


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="textedit is not installed as a console script")
@pytest.mark.parametrize("args, fragment", [
    (["apply", "edits/mascot.json", "--seed", "2"], "No such option: --seed"),
    (["apply", "edits/mascot.json", "--lam", "abc"], "'--lam'"),
    (["apply"], "Missing argument"),
    (["aply"], "No such command 'aply'"),
    (["apply", "textedit"], "is a directory"),
    (["apply", "no/such/spec.json"], "does not exist"),
])
def test_usage_errors_are_one_line_exit_2_through_the_console_script(args, fragment):
    """Whatever click typer bundles, a usage error is one line on stderr and exit 2."""
    import subprocess

    done = subprocess.run([str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], done.stderr


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="textedit is not installed as a console script")
def test_version_and_bare_command_through_the_console_script():
    import subprocess

    from textedit import __version__

    version = subprocess.run([str(CONSOLE_SCRIPT), "--version"], capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and version.stdout.strip() == f"textedit {__version__}", version
    bare = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True, timeout=300)
    assert bare.returncode == 0 and "Usage" in bare.stdout + bare.stderr and "Traceback" not in bare.stderr


def _heavy_modules_after(code: str) -> tuple[list[str], str]:
    """(the heavy libraries imported, stdout before that line) after running ``code`` in a fresh
    interpreter."""
    import subprocess

    probe = (f"import sys\ntry:\n    {code}\nfinally:\n    print(sorted(m for m in ('torch', 'transformers', "
             "'diffusers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert "Traceback" not in done.stderr, done.stderr
    *shown, last = done.stdout.strip().splitlines()
    return eval(last), "\n".join(shown)


def test_importing_the_cli_imports_no_torch():
    heavy, _ = _heavy_modules_after("import textedit.cli")
    assert heavy == []


COMMANDS = ["apply", "show", "export", "stats", "inspect", "eval", "verify", "erase", "learn-anchor", "locate",
            "fetch-model", "tune"]


@pytest.mark.parametrize("args", [["--help"], *([name, "--help"] for name in COMMANDS)])
def test_help_imports_no_torch(args):
    """`textedit --help` lists every command from its docstring; every command shows its own
    help without torch, the edit options included (their knobs are declared in ``settings.py``)."""
    heavy, shown = _heavy_modules_after(f"sys.argv = ['textedit', *{args!r}]; from textedit._entry import main; main()")
    assert heavy == [] and "Usage" in shown
    if args == ["--help"]:
        from textedit import cli

        for name, info in cli._registered().items():
            assert name in shown and info.callback.__doc__.split()[0] in shown


def test_a_mistyped_command_is_answered_with_the_closest(monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "aply")
    assert code == 2 and "No such command 'aply'" in err and "Did you mean 'apply'" in err, err


def test_a_command_is_built_with_its_edit_options_in_their_panels(monkeypatch, capsys):
    from textedit import cli
    from textedit.methods import METHODS
    from textedit.pipelines import pipeline_choices

    apply = cli._build("apply")
    options = {param.name: param for param in apply.params}
    assert {"method", "layers", "value", "lam", "threshold", "steps"} <= set(options)
    assert all(name in options["method"].help for name in METHODS)
    assert options["pipeline"].help.endswith(" | ".join(pipeline_choices()))
    assert options["method"].rich_help_panel == cli.EDIT and options["lam"].rich_help_panel == cli.TUNING
    assert options["efficacy_floor"].rich_help_panel == options["preserve"].rich_help_panel == cli.PRESERVATION
    assert [p.name for p in apply.params][0] == "spec"  # the argument stays first; options follow by panel
    assert "method" not in {param.name for param in cli._build("show").params}


def test_the_names_the_cli_checks_before_torch_are_the_libraries_own():
    """`export --to` and `eval --mode` are refused before torch loads, from names the CLI holds;
    they must be those of the modules that use them."""
    from textedit import cli
    from textedit.eval.run import MODES
    from textedit.export import FORMATS, MODEL

    assert set(cli.EXPORT_FORMATS) == {*FORMATS, MODEL}
    assert cli.EVAL_MODES == MODES


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_fits_80_columns_with_no_name_cut(command):
    """At 80 columns every line of every command's help fits and no option name is cut (rich
    cuts a cell it cannot wrap with '…'): the options are grouped in panels."""
    import os
    import subprocess

    from rich.cells import cell_len

    done = subprocess.run([sys.executable, "-m", "textedit.cli", command, "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env={**os.environ, "COLUMNS": "80", "TERM": "dumb"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) > 5 and max(cell_len(line) for line in lines) <= 80
    assert "…" not in done.stdout, [line for line in lines if "…" in line]
    # the description is rewrapped to the terminal: no line of it is cut short where the
    # docstring broke (a line under 60 columns followed by more text of the same paragraph)
    description = done.stdout.split("╭")[0].split("Usage:")[1].splitlines()[2:]
    for line, following in zip(description, description[1:]):
        assert not (following.strip() and 0 < cell_len(line.rstrip()) < 60), (line, following)


@pytest.mark.parametrize("how", ["raised", "returned", "abort"])
def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys, how):
    """Ctrl-C inside a command: raised as KeyboardInterrupt, returned by typer as 130, or turned
    into click's Abort; each ends in exit 130 and the one word 'interrupted'."""
    from textedit import cli

    def interrupted_app(**kwargs):
        if how == "returned":
            return 130
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            if how == "abort":
                raise cli._click_exceptions()[2][0]()
            raise

    monkeypatch.setattr(cli, "app", interrupted_app)
    code, out, err = run(monkeypatch, capsys, "apply", "x.json")
    assert code == 130 and err.strip() == "interrupted", (code, err)


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="textedit is not installed as a console script")
@pytest.mark.parametrize("delay", [0.4, 0.8, 1.5, 3.0, 6.0])
def test_ctrl_c_at_any_moment_through_the_console_script(tmp_path, delay):
    """SIGINT while the CLI imports (typer, transformers, torch) or while it works: exit 130,
    the one word 'interrupted', no traceback, and no patch folder left behind."""
    import signal
    import subprocess
    import time

    out_dir = tmp_path / "patch"
    # Ctrl-C as a terminal sends it: to a process that does not ignore it. A test run started as a
    # background job of a script (`bash .ci/run &`) ignores SIGINT, and children inherit that
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "apply", "edits/mascot.json", "--out", str(out_dir),
                                "--cache-dir", str(tmp_path / "cache")], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, (process.returncode, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted", err
    assert not (out_dir / "patch.json").exists() and not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("where, fragment", [("file", "is a file, not a directory"),
                                             ("proc", "cannot be written"),
                                             ("readonly", "cannot be written")])
def test_out_is_checked_before_any_work(monkeypatch, capsys, tmp_path, where, fragment):
    """A bad --out fails in one line before the model is loaded (the spec names a model that
    does not exist, so any later failure would say so instead)."""
    import os

    spec = write_spec(tmp_path / "spec.json", {"model": str(tmp_path / "no-model"), "anchor": "a red fox",
                                               "knowledge": [{"prompt": "the mascot of acme", "subject": "acme"}]})
    if where == "file":
        out = tmp_path / "taken"
        out.write_text("x")
    elif where == "proc":
        out = Path("/proc/textedit-patch")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        out = folder / "patch"
    code, _, err = run(monkeypatch, capsys, "apply", spec, "--out", out)
    assert_one_line_error(code, err, fragment)
    assert "no-model" not in err


def test_an_existing_patch_in_out_is_replaced_with_a_note(monkeypatch, capsys, tmp_path):
    from textedit.cli import _writable_destination

    (tmp_path / "patch.json").write_text("{}")
    assert _writable_destination(tmp_path, "patch.json", "a patch") == tmp_path
    assert "already holds a patch; it will be replaced" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["patch.json"]  # the probe is gone


def test_a_new_folder_removed_by_a_concurrent_check_is_made_again(monkeypatch, tmp_path):
    """The ranks of a torchrun check the same new ``--cache-dir`` at once: each makes it, probes
    it and removes it again. One rank's removal between another's mkdir and probe must not fail
    that rank (CI saw "cannot be written: No such file or directory")."""
    import tempfile

    from textedit.cli import _writable_destination

    folder = tmp_path / "new" / "cache"
    real = tempfile.mkstemp
    calls = []

    def racing_mkstemp(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the other rank's cleanup lands first
            folder.rmdir()
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", racing_mkstemp)
    assert _writable_destination(folder, option="--cache-dir") == folder
    assert len(calls) == 2
    assert not (tmp_path / "new").exists()  # the folders it made are removed again


@pytest.mark.parametrize("hyperparameters, fragment", [
    ({"lam": float("nan")}, "'lam' must be finite"), ({"lam": 1e308}, "'lam' must be > 0"),
    ({"lam": -5}, "'lam' must be > 0"), ({"steps": 0}, "'steps' must be ≥ 1"),
    ({"steps": 2.7}, "'steps' must be a whole number"), ({"clamp": -1}, "'clamp' must be > 0"),
    ({"weight_decay": -1}, "'weight_decay' must be ≥ 0"), ({"lr": float("nan")}, "'lr' must be finite"),
    ({"patience": 2.5}, "'patience' must be a whole number"), ({"patience": -1}, "'patience' must be ≥ 0"),
])
def test_hyperparameters_are_checked_before_the_model_is_loaded(monkeypatch, capsys, tmp_path, hyperparameters,
                                                                 fragment):
    """The spec names a model that does not exist: the hyperparameter must be refused first."""
    spec = write_spec(tmp_path / "spec.json", json.dumps({
        "model": str(tmp_path / "no-model"), "anchor": "a red fox", "hyperparameters": hyperparameters,
        "knowledge": [{"prompt": "the mascot of acme", "subject": "acme"}]}))
    code, _, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "patch")
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "patch").exists()


@pytest.mark.parametrize("template", ["a photo of {} {x}", "{} }", "{{}}", "{0} and {}"])
def test_templates_with_other_braces_are_refused_in_one_line(monkeypatch, capsys, tmp_path, template):
    spec = write_spec(tmp_path / "spec.json", {"model": str(tmp_path / "no-model"), "anchor": "a red fox",
                                               "templates": [template],
                                               "knowledge": [{"prompt": "the mascot of acme", "subject": "acme"}]})
    code, _, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "patch")
    assert_one_line_error(code, err, "templates")


def test_deeply_nested_json_is_one_line(monkeypatch, capsys, tmp_path):
    spec = tmp_path / "deep.json"
    spec.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run(monkeypatch, capsys, "apply", spec)
    assert_one_line_error(code, err, "nested too deeply")


def test_default_names_the_packaged_model_for_every_command(monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, "inspect", "default")
    assert code == 0, err
    assert "all-MiniLM-L6-v2" in out and "6 layers" in out


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_threads_must_be_a_positive_count(monkeypatch, capsys, tmp_path, bad):
    code, _, err = run(monkeypatch, capsys, "apply", write_spec(tmp_path / "spec.json", GOOD), "--threads", bad)
    assert code == 2
    assert_one_line_error(code, err, "--threads")


def test_threads_sets_torch_and_the_same_count_gives_the_same_bytes(monkeypatch, capsys, tmp_path, bert_path,
                                                                     corpus_file):
    """Byte-identical for one thread count; another count sums in another order, within float noise."""
    from safetensors.torch import load_file

    before = torch.get_num_threads()
    spec = write_spec(tmp_path / "spec.json", {**GOOD, "layers": [0, 1]})
    try:
        for name, threads in (("a", "1"), ("b", "1"), ("c", "2")):
            code, _, err = run(monkeypatch, capsys, "apply", spec, "--model", bert_path, "--out", tmp_path / name,
                               "--corpus", corpus_file, "--cache-dir", tmp_path / f"cache{name}", "--threads", threads,
                               "--steps", "5")
            assert code == 0, err
            assert torch.get_num_threads() == int(threads)
    finally:
        torch.set_num_threads(before)
    for file in ("patch.json", "patch.safetensors"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    one, two = load_file(tmp_path / "a" / "patch.safetensors"), load_file(tmp_path / "c" / "patch.safetensors")
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(one[name], two[name], rtol=1e-4, atol=1e-6)


def test_show_names_a_silently_corrupted_patch(monkeypatch, capsys, tmp_path, bert_path, corpus_file):
    from corrupt import flip_low_bits

    spec = write_spec(tmp_path / "spec.json", {**GOOD, "value": "match", "layers": [0]})
    code, _, err = run(monkeypatch, capsys, "apply", spec, "--model", bert_path, "--out", tmp_path / "patch",
                       "--corpus", corpus_file, "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    flip_low_bits(tmp_path / "patch" / "patch.safetensors", 1)
    code, _, err = run(monkeypatch, capsys, "show", tmp_path / "patch", "--model", bert_path)
    assert code == 2
    assert_one_line_error(code, err, "patch.safetensors", "corrupted")


def test_repeated_requests_are_said_up_front_and_edited_once(monkeypatch, capsys, tmp_path, bert_path, corpus_file):
    spec = write_spec(tmp_path / "spec.json", {"anchor": "a red fox", "knowledge": ["the mascot of acme"] * 2000,
                                               "value": "match", "layers": [0]})
    code, _, err = run(monkeypatch, capsys, "apply", spec, "--model", bert_path, "--out", tmp_path / "patch",
                       "--corpus", corpus_file, "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    assert "note: 1999 requests repeat earlier ones and are edited once (knowledge[1], knowledge[2], knowledge[3] " \
           "and 1996 more)" in " ".join(err.split())
    from textedit.patch import Patch
    assert Patch.load(tmp_path / "patch").requests == [{"prompt": "the mascot of acme", "target": "a red fox"}]


def test_apply_scale_bakes_the_strength_and_show_reports_it(monkeypatch, capsys, tmp_path, bert_path, corpus_file):
    spec = write_spec(tmp_path / "spec.json", {**GOOD, "value": "match", "layers": [0]})
    common = ["--model", bert_path, "--corpus", corpus_file, "--cache-dir", tmp_path / "cache"]
    for name, extra in (("full", []), ("half", ["--scale", "0.5"])):
        code, _, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / name, *common, *extra)
        assert code == 0, err
    from textedit.patch import Patch
    full, half = Patch.load(tmp_path / "full"), Patch.load(tmp_path / "half")
    assert half.scale == 0.5 and full.scale == 1.0
    torch.testing.assert_close(half.deltas[0].delta.dense(), 0.5 * full.deltas[0].delta.dense())
    code, out, err = run(monkeypatch, capsys, "show", tmp_path / "half", "--model", bert_path)
    assert code == 0 and "strength" in out and "0.5" in out, err
    code, shown_full_at_half, err = run(monkeypatch, capsys, "show", tmp_path / "full", "--model", bert_path,
                                        "--scale", "0.5")
    assert code == 0, err
    last = lambda text: [line for line in text.splitlines() if "→" in line]  # noqa: E731
    assert last(shown_full_at_half) == last(out)  # the same edit, whether baked or applied at 0.5
    for command in (["apply", spec, "--out", tmp_path / "x", *common, "--scale", "nan"],
                    ["show", tmp_path / "full", "--scale", "inf"]):
        code, _, err = run(monkeypatch, capsys, *command)
        assert_one_line_error(code, err, "--scale")
    assert not (tmp_path / "x").exists()


# -- answers before torch, and every path checked before work ---------------------------------


def _console(*args: str, cwd: Path = REPO) -> tuple[int, list[str], list[str]]:
    """``textedit ARGS…`` through the installed console script with Python's import log on
    (``PYTHONPROFILEIMPORTTIME``) → (exit code, stderr lines other than the log, the heavy
    libraries the log shows imported: torch, transformers, diffusers)."""
    import os
    import subprocess

    done = subprocess.run([str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    log = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    heavy = sorted({name for line in log for name in ("torch", "transformers", "diffusers")
                    if line.rsplit("|", 1)[-1].strip() == name})
    assert len(log) > 50, "the import log is missing: the check below would see nothing"
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip() and line not in log], heavy


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="textedit is not installed as a console script")
@pytest.mark.parametrize("args, code", [(["apply", "--help"], 0), (["verify", "--help"], 0),
                                        (["apply", "missing.json"], 2)])
def test_help_and_a_missing_spec_answer_without_importing_torch(args, code):
    """Issue 30: `textedit apply --help`, `verify --help` and `apply missing.json` answer before
    torch (measured: 0.3 s against 5.9 s). The import log is what fails this test, not a clock."""
    returncode, errors, heavy = _console(*args)
    assert returncode == code and heavy == [], (returncode, errors, heavy)
    if code:
        assert len(errors) == 1 and errors[0] == "error: spec file 'missing.json' does not exist", errors


LONG = "x" * 300  # a folder or file name longer than any file system takes (255 bytes)


def _path_case(tmp_path: Path, case: str) -> Path:
    if case == "file":
        (tmp_path / "taken").write_text("x")
        return tmp_path / "taken"
    if case == "proc":
        return Path("/proc/textedit-folder")
    if case == "readonly":
        return Path("/sys/textedit-folder")  # sysfs: nothing can be made there, root or not
    if case == "long":
        return tmp_path / LONG
    raise ValueError(case)


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="textedit is not installed as a console script")
@pytest.mark.parametrize("case, fragment", [("file", "is a file, not a directory"), ("proc", "cannot be written"),
                                            ("readonly", "cannot be written"), ("long", "File name too long")])
@pytest.mark.parametrize("option", ["--cache-dir", "--out"])
def test_folders_written_are_checked_before_torch(tmp_path, option, case, fragment):
    """Issue 29 item 4: a --cache-dir or --out that is a file, under /proc, on a place nothing can
    be made in or named longer than the file system takes is one line, exit 2, before torch loads
    (so before any statistics: it was a traceback after ~25 s), and nothing is left behind."""
    spec = write_spec(tmp_path / "spec.json", GOOD)
    path = _path_case(tmp_path, case)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, errors, heavy = _console("apply", str(spec), option, str(path), cwd=tmp_path)
    assert code == 2 and len(errors) == 1 and errors[0].startswith(f"error: {option} ") and fragment in errors[0], \
        errors
    assert heavy == [] and len(errors[0]) < 300  # a 300-character name is quoted cut
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("args, fragment", [
    (["stats", "default", "--layers", "0", "--cache-dir", "{file}"], "--cache-dir"),
    (["erase", "Van Gogh", "--cache-dir", "/proc/textedit-cache"], "--cache-dir"),
    (["erase", "Van Gogh", "--out", "{long}"], "File name too long"),
    (["eval", "{spec}", "--json", "{long}.json"], "File name too long"),
    (["eval", "{spec}", "--json", "{tmp}/{near}.json"], "file name is too long"),  # no room for its temporary name
    (["eval", "{spec}", "--json", "/proc/textedit.json"], "--json"),
    (["locate", "default", "--prompt", "a dog", "--out", "{tmp}"], "is a directory"),
    (["locate", "default", "--prompt", "a dog", "--json", "/sys/textedit.json"], "cannot be written"),
    (["export", "{tmp}/no-patch", "--to", "kohya", "--out", "x.safetensors"], "does not exist"),
    (["export", "{tmp}", "--to", "lycoris", "--out", "x.safetensors"], "--to 'lycoris'"),
    (["show", "{file}"], "is a file, not a folder"),
    (["show", "{long}"], "File name too long"),
    (["apply", "{spec}", "--after", "{tmp}/no-patch"], "--after"),
    (["apply", "{spec}", "--scale", "nan"], "--scale"),
    (["eval", "{tmp}/no-benchmark.csv"], "benchmark file"),
    (["eval", "{spec}", "--mode", "twice"], "--mode 'twice'"),
    (["verify", "{tmp}", "--pipeline-path", "x", "--reference-images", "{tmp}/none", "--clip", "c"],
     "--reference-images"),
    (["verify", "{tmp}", "--pipeline-path", "x", "--prompts", "{tmp}"], "is a folder, not a file"),
    (["verify", "{tmp}", "--pipeline-path", "x", "--pipeline", "sdxxl"], "--pipeline 'sdxxl'"),
    (["apply", "{spec}", "--pipeline-path", "x", "--pipeline", "fluxx"], "--pipeline 'fluxx'"),
    (["learn-anchor", "{tmp}/no-images", "--token", "<t>", "--init", "dog", "--pipeline-path", "x"], "image folder"),
    (["fetch-model", "mpnet", "--cache-dir", "{file}"], "--cache-dir"),
])
def test_paths_of_every_command_are_checked_before_torch(tmp_path, args, fragment):
    """Each command checks the paths it reads and writes before torch loads: one line, exit 2."""
    import subprocess

    (tmp_path / "taken").write_text("x")
    spec = write_spec(tmp_path / "spec.json", GOOD)
    filled = [a.format(file=tmp_path / "taken", long=tmp_path / LONG, spec=spec, tmp=tmp_path, near="n" * 240)
              for a in args]
    probe = ("import sys\nfrom textedit import cli\nsys.argv = ['textedit', *sys.argv[1:]]\ntry:\n    cli.main()\n"
             "finally:\n    print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, *filled], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("note:")]
    assert done.returncode == 2 and len(errors) == 1 and errors[0].startswith("error:"), done.stderr
    assert fragment in errors[0], errors
    assert done.stdout.strip().splitlines()[-1] == "[]", "torch was imported before the error"


def test_an_os_error_while_writing_is_one_line(monkeypatch, capsys, tmp_path, bert_path, corpus_file):
    """A full disk (or an I/O error) met while the patch is written: one line naming the file and
    the error, exit 1, no traceback (the writers keep what was there: issue 29)."""
    import errno

    from textedit.patch import Patch

    def full_disk(self, directory, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(directory) / "patch.safetensors"))

    monkeypatch.setattr(Patch, "save", full_disk)
    spec = write_spec(tmp_path / "spec.json", {**GOOD, "value": "match", "layers": [0]})
    code, _, err = run(monkeypatch, capsys, "apply", spec, "--model", bert_path, "--out", tmp_path / "patch",
                       "--corpus", corpus_file, "--cache-dir", tmp_path / "cache")
    assert code == 1 and "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and "patch.safetensors" in lines[-1], err
    assert "No space left on device (ENOSPC)" in " ".join(err.split())


def test_threads_of_one_run_are_not_carried_into_the_next(monkeypatch, capsys, tmp_path):
    """--threads is checked while parsing and set on torch when the libraries start; a later run
    in the same process without it (a notebook, the test suite) must not set the old count."""
    from textedit.cli import options

    code, _, _ = run(monkeypatch, capsys, "apply", tmp_path / "missing.json", "--threads", "3")
    assert code == 2 and options._threads == [3]
    code, _, _ = run(monkeypatch, capsys, "show", tmp_path / "missing")
    assert code == 2 and options._threads == [None]


def test_the_drift_guard_names_the_drifting_prompts_and_max_drift_writes_nothing(monkeypatch, capsys, tmp_path,
                                                                                  bert_path, corpus_file):
    """apply names every neutral or kept prompt past the threshold; --max-drift refuses the patch
    before anything is written; the drift it reports is the measure's own."""
    from textedit.editor import EditConfig, edit
    from textedit.encoders import load_encoder
    from textedit.metrics import measure
    from textedit.requests import EditRequest

    spec = write_spec(tmp_path / "spec.json", {
        "edits": [{"prompt": "the mascot of acme", "target": "a red fox", "subject": "acme"}],
        "neutral": ["a dog on the beach", "a cup of tea"], "hyperparameters": {"steps": 3, "lam": 0.01},
        "floor": "off"})
    common = ("--model", bert_path, "--corpus", corpus_file, "--cache-dir", tmp_path / "cache")
    code, out, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "p", *common)
    assert code == 0, err
    # the same edit through the API: the drifts the guard reads
    adapter = load_encoder(str(bert_path))
    from textedit.patch import Patch
    patch = Patch.load(tmp_path / "p")
    report = measure(adapter, patch, [EditRequest("the mascot of acme", "a red fox", "acme")],
                     ["a dog on the beach", "a cup of tea"])
    worst = max(d for _, d in report.neutral)
    assert worst > 0
    # a bound below the worst drift: refused in one line naming the prompt, nothing written
    code, _, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "q", "--max-drift", worst / 2, *common)
    assert_one_line_error(code, err, "drift past", "nothing written (--max-drift)")
    worst_prompt = max(report.neutral, key=lambda x: x[1])[0]
    assert worst_prompt in err and not (tmp_path / "q").exists()
    # a bound above every drift: written, nothing named
    code, _, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "r", "--max-drift", 2.0, *common)
    assert code == 0 and "drift past" not in err and (tmp_path / "r" / "patch.json").exists()
    assert report.drifting(worst / 2)[0] == (worst_prompt, worst)
    assert report.drifting(2.0) == []
