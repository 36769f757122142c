"""The runnable examples of the docs run as written: docs/api.md's, and the worked extension
examples of docs/architecture.md (an encoder family, a pipeline family; adding a method is
tests/methods/test_registry.py's)."""

from __future__ import annotations

import pytest

import re
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_api_example_runs(tmp_path, monkeypatch, capsys):
    text = (DOCS / "api.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = code.replace("/tmp/textedit-example", str(tmp_path / "patch"))
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        exec(compile(code, "docs/api.md", "exec"), {})
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    scores = re.findall(r"→ '.*?': ([0-9.]+) → ([0-9.]+)", out)
    assert len(scores) == 2 and all(float(after) > float(before) + 0.1 for before, after in scores), out
    residual = float(re.search(r"residual after the update: (\S+)", out).group(1))
    assert residual < 1e-3, out


def architecture_example(section: str) -> str:
    """The Python block of ``section`` in docs/architecture.md, as written."""
    text = (DOCS / "architecture.md").read_text()
    return re.search(rf"## {re.escape(section)}\n.*?```python\n(.*?)```", text, re.S).group(1)


@pytest.fixture
def example_encoder_family():
    """The 'Adding an encoder family' example, executed as written; unregistered after."""
    from textedit.encoders import ADAPTERS

    registered = list(ADAPTERS)
    namespace: dict = {}
    exec(compile(architecture_example("Adding an encoder family"), "docs/architecture.md", "exec"), namespace)
    try:
        yield namespace["DistilBertAdapter"]
    finally:
        ADAPTERS[:] = registered


def test_a_new_encoder_family_is_one_file_the_package_imports():
    import pkgutil
    import sys

    import textedit.encoders

    modules = [m.name for m in pkgutil.iter_modules(textedit.encoders.__path__)]
    assert {"base", "bert", "clip", "decoder", "mpnet", "t5"} <= set(modules)
    assert all(f"textedit.encoders.{name}" in sys.modules for name in modules)


def test_the_documented_encoder_family_loads_reads_its_streams_and_edits(example_encoder_family, small_corpus,
                                                                       tmp_path):
    """A tiny DistilBERT (random biases and norm gains) loads through the example's adapter;
    the stream it reads is the sum the block normalises; ``edit`` (memit, value ``match``)
    closes the query's stream after the last edited layer on the target's, leaves the model
    as it was, and the patch reverts bit for bit."""
    from streams import stream_gaps_before_and_after
    from tiny_models import build_tiny_distilbert

    from textedit.editor import EditConfig
    from textedit.encoders import adapter_for, load_encoder
    from textedit.hooks import record_inputs
    from textedit.requests import EditRequest
    from textedit.sites import EDIT_TEMPLATES, Sites, read_states

    adapter = load_encoder(str(build_tiny_distilbert(tmp_path / "distilbert")))
    assert type(adapter) is example_encoder_family and adapter.family == "distilbert" and adapter.num_layers == 2
    assert type(adapter_for(adapter.model, adapter.tokenizer)) is example_encoder_family
    assert adapter.down_proj_module(1).bias.abs().min() > 0  # a forgotten bias would show

    requests = [EditRequest("the mascot of acme", "a red fox", "acme"),
                EditRequest("the symbol of google", "a blue whale", "google")]
    queries = Sites.for_queries(adapter, requests, EDIT_TEMPLATES, "subject")
    norm = {1: adapter.block(1).output_layer_norm}  # normalises z = a + v
    with record_inputs(norm) as normalised:
        adapter.forward(adapter.tokenize(queries.prompts))
    rows, tokens = queries.site_prompts(), torch.tensor(queries.positions)
    torch.testing.assert_close(read_states(adapter, queries, [1])[1].streams,
                               normalised[1][rows, tokens].double(), rtol=1e-5, atol=1e-5)

    config = EditConfig(method="memit", layers=[0, 1], value="match", key="subject", auto_preserve=False, lam=1.0)
    before, after, patch = stream_gaps_before_and_after(adapter, requests, config, 1, corpus=small_corpus,
                                                        cache_dir=tmp_path / "cache")
    assert patch.family == "distilbert"
    assert (after < 0.1 * before).all(), (before, after)

@pytest.fixture
def example_pipeline_family():
    """The 'Adding a pipeline family' example, executed as written; removed after."""
    from textedit.pipelines import FAMILIES

    namespace: dict = {}
    exec(compile(architecture_example("Adding a pipeline family"), "docs/architecture.md", "exec"), namespace)
    try:
        yield FAMILIES["lcm"]
    finally:
        FAMILIES.pop("lcm", None)


def test_the_documented_pipeline_family_reads_what_the_pipeline_conditions_on(example_pipeline_family, sd_path,
                                                                              tmp_path):
    """A tiny LatentConsistencyModelPipeline (the tiny SD's components, an LCM scheduler) is
    detected as the new family, by name too, and ``Reading.encode`` of its CLIP, tokenized as
    the pipeline does, is exactly its own ``encode_prompt``."""
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler, StableDiffusionPipeline

    from textedit.pipelines import detect_family, family_of, load_pipeline, pipeline_choices

    sd = StableDiffusionPipeline.from_pretrained(sd_path, use_safetensors=True)
    lcm = LatentConsistencyModelPipeline(vae=sd.vae, text_encoder=sd.text_encoder, tokenizer=sd.tokenizer,
                                         unet=sd.unet, scheduler=LCMScheduler.from_config(sd.scheduler.config),
                                         safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    lcm.save_pretrained(tmp_path / "lcm", safe_serialization=True)
    family = example_pipeline_family
    assert detect_family(tmp_path / "lcm") is family and detect_family(tmp_path / "lcm", "lcm") is family
    assert "lcm" in pipeline_choices()
    pipe = load_pipeline(tmp_path / "lcm", family)
    assert family_of(pipe) is family

    prompt = "a photo of the mascot of acme on the beach"
    reading = family.reading("text_encoder")
    ids = pipe.tokenizer([prompt], padding="max_length", max_length=reading.max_length, truncation=True,
                         return_tensors="pt").input_ids
    with torch.no_grad():
        states, pooled = reading.encode(pipe.text_encoder, ids)
        embeds = pipe.encode_prompt(prompt, "cpu", 1, False)[0]
    assert pooled is None and torch.equal(states, embeds)


BENCHMARKS = DOCS.parent / "benchmarks"


def test_every_benchmark_script_is_listed_in_the_index_with_sections_that_exist():
    """benchmarks/README.md groups the scripts by the question each answers: every
    ``benchmarks/*.py`` has its row (a new script cannot go unlisted), each row names a command
    that runs that script, and every docs section a row cites as holding its figures exists."""
    index = (BENCHMARKS / "README.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w.]+\.py)` \|.*$", index, re.M)}
    scripts = sorted(path.name for path in BENCHMARKS.glob("*.py"))
    assert len(scripts) > 20
    assert sorted(rows) == scripts, (f"not listed: {sorted(set(scripts) - set(rows))}; "
                                     f"listed but gone: {sorted(set(rows) - set(scripts))}")
    headings = {path.name: {line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")}
                for path in DOCS.glob("*.md")}
    for script, row in rows.items():
        assert f"benchmarks/{script}" in row or "imported, not run" in row, script
        # the last cell: `docs/a.md` § "heading" [and § "heading"] [and `docs/b.md` § "heading"] …
        figures = row.rstrip(" |").rsplit(" | ", 1)[1]
        doc, cited = None, 0
        for token in re.finditer(r'`docs/([\w.]+\.md)`|§ "(.+?)"(?=$| and | \()', figures):
            if token.group(1):
                doc = token.group(1)
                continue
            assert doc in headings and token.group(2) in headings[doc], \
                f"{script}: docs/{doc} has no section '{token.group(2)}'"
            cited += 1
        assert cited == figures.count("§") and (cited or figures.startswith("no table")), (script, figures)
