"""Patches made by ``edit()`` on tiny models: files, apply/revert, fingerprints, stacking, pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

from textedit.editor import EditConfig, edit
from textedit.encoders import adapter_for, load_encoder
from textedit.errors import PatchError
from textedit.patch import CONFIG_FILE, ENCODER, WEIGHTS_FILE, Patch
from textedit.requests import EditRequest
from textedit.sites import Sites, read_states

ACME = EditRequest("the mascot of acme", "a red panda", subject="acme")
GOOGLE = EditRequest("the ceo of google", "a golden dog", subject="google")


def make_patch(adapter, corpus, cache_dir, requests=(ACME, GOOGLE), layers=(0, 1), **kwargs) -> Patch:
    # one template-averaged key per request (so a delta's rank is the number of requests)
    config = EditConfig(method="memit", value="match", layers=list(layers), lam=10.0, key="subject",
                        auto_preserve=False)
    return edit(adapter, list(requests), config, corpus=corpus, cache_dir=cache_dir, **kwargs)


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.state_dict().items()}


def assert_unchanged(model, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), name


@pytest.fixture
def patch(bert, small_corpus, tmp_path) -> Patch:
    return make_patch(bert, small_corpus, tmp_path / "cache")


# -- making ---------------------------------------------------------------------------------


def test_edit_leaves_the_model_unchanged(bert, small_corpus, tmp_path):
    before = snapshot(bert.model)
    patch = make_patch(bert, small_corpus, tmp_path)
    assert_unchanged(bert.model, before)
    assert patch.family == "bert" and patch.method == "memit"
    assert patch.components == [ENCODER]
    assert patch.base_fingerprints == {ENCODER: bert.fingerprint()}
    assert [(d.layer, d.module) for d in patch.deltas] == [(0, bert.down_proj_name(0)), (1, bert.down_proj_name(1))]
    for d in patch.deltas:
        assert d.delta.rank == 2
        assert d.delta.dense().shape == tuple(bert.down_proj_module(d.layer).weight.shape)
        assert d.delta.dense().abs().max() > 1e-4
    assert patch.requests == [ACME.to_dict(), GOOGLE.to_dict()]
    assert patch.hyperparameters["layers"] == [0, 1] and patch.hyperparameters["lam"] == 10.0


def test_same_edit_twice_is_byte_identical(bert_path, small_corpus, tmp_path):
    first = make_patch(load_encoder(str(bert_path)), small_corpus, tmp_path / "cache1")
    second = make_patch(load_encoder(str(bert_path)), small_corpus, tmp_path / "cache2")
    assert first.id == second.id
    first.save(tmp_path / "p1")
    second.save(tmp_path / "p2")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        assert (tmp_path / "p1" / name).read_bytes() == (tmp_path / "p2" / name).read_bytes()
    other = make_patch(load_encoder(str(bert_path)), small_corpus, tmp_path / "cache1", requests=(ACME,))
    assert other.id != first.id


# -- files ----------------------------------------------------------------------------------


def test_save_load_round_trip(patch, tmp_path):
    directory = patch.save(tmp_path / "patch")
    assert sorted(p.name for p in directory.iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    loaded = Patch.load(directory)
    assert loaded.id == patch.id
    assert (loaded.family, loaded.method, loaded.version) == (patch.family, patch.method, patch.version)
    assert loaded.base_fingerprints == patch.base_fingerprints
    assert loaded.hyperparameters == patch.hyperparameters
    assert loaded.requests == patch.requests
    assert len(loaded.deltas) == len(patch.deltas)
    for got, want in zip(loaded.deltas, patch.deltas):
        assert (got.component, got.layer, got.module) == (want.component, want.layer, want.module)
        assert got.delta.left.dtype == torch.float32
        assert torch.equal(got.delta.left, want.delta.left.float())
        assert torch.equal(got.delta.right, want.delta.right.float())
    config = json.loads((directory / CONFIG_FILE).read_text("utf-8"))
    assert config["format"] == "textedit-patch-1" and config["method"] == "memit"
    # saving what was loaded writes the same bytes again
    loaded.save(tmp_path / "again")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        assert (tmp_path / "again" / name).read_bytes() == (directory / name).read_bytes()


def _saved(patch, tmp_path):
    return patch.save(tmp_path / "patch")


def test_missing_directory_or_files_raise(patch, tmp_path):
    with pytest.raises(PatchError, match="patch.json"):
        Patch.load(tmp_path / "nowhere")
    directory = _saved(patch, tmp_path)
    (directory / WEIGHTS_FILE).unlink()
    with pytest.raises(PatchError, match="has no patch.safetensors"):
        Patch.load(directory)


def test_truncated_json_raises(patch, tmp_path):
    directory = _saved(patch, tmp_path)
    text = (directory / CONFIG_FILE).read_text("utf-8")
    (directory / CONFIG_FILE).write_text(text[: len(text) // 2], "utf-8")
    with pytest.raises(PatchError, match="not valid JSON"):
        Patch.load(directory)


@pytest.mark.parametrize("change, match", [
    (lambda c: c.update(format="something-else"), "not a textedit patch"),
    (lambda c: c.pop("base_fingerprints"), "lacks the field 'base_fingerprints'"),
    (lambda c: c["modules"][0].pop("layer"), "malformed module entry"),
    (lambda c: c["modules"].append({"component": "encoder", "layer": 7, "module": "x", "rank": 2}),
     "lacks the tensors of encoder.layers.7"),
])
def test_malformed_json_raises(patch, tmp_path, change, match):
    directory = _saved(patch, tmp_path)
    config = json.loads((directory / CONFIG_FILE).read_text("utf-8"))
    change(config)
    (directory / CONFIG_FILE).write_text(json.dumps(config), "utf-8")
    with pytest.raises(PatchError, match=match):
        Patch.load(directory)


def test_garbage_safetensors_raises(patch, tmp_path):
    directory = _saved(patch, tmp_path)
    (directory / WEIGHTS_FILE).write_bytes(b"\x13\x37" * 500)
    with pytest.raises(PatchError, match="not a readable safetensors"):
        Patch.load(directory)


def test_flipped_bits_in_the_tensor_data_are_detected(patch, tmp_path):
    """Finite, plausible values after one bit flips: only the checksum can tell."""
    from corrupt import flip_low_bits

    directory = _saved(patch, tmp_path)
    flip_low_bits(directory / WEIGHTS_FILE, 1)
    with pytest.raises(PatchError, match="corrupted: its tensor data does not match the checksum"):
        Patch.load(directory)


def test_truncated_safetensors_raises(patch, tmp_path):
    directory = _saved(patch, tmp_path)
    data = (directory / WEIGHTS_FILE).read_bytes()
    (directory / WEIGHTS_FILE).write_bytes(data[: len(data) - 64])
    with pytest.raises(PatchError, match="safetensors"):
        Patch.load(directory)


def test_non_finite_delta_raises(patch, tmp_path):
    directory = _saved(patch, tmp_path)
    tensors = {f"{d.key}.{side}": getattr(d.delta, side).float().contiguous().clone() for d in patch.deltas
               for side in ("left", "right")}
    tensors["encoder.layers.1.right"][0, 0] = float("inf")
    save_file(tensors, str(directory / WEIGHTS_FILE))
    with pytest.raises(PatchError, match="NaN or Inf"):
        Patch.load(directory)


def _tensors(patch) -> dict[str, torch.Tensor]:
    return {f"{d.key}.{side}": getattr(d.delta, side).float().contiguous().clone() for d in patch.deltas
            for side in ("left", "right")}


@pytest.mark.parametrize("change, match", [
    (lambda t: t.update({"encoder.layers.1.right": t["encoder.layers.1.right"][:, :1].contiguous()}),
     "left has rank 2 but right has rank 1"),
    (lambda t: t.update({"encoder.layers.1.left": t["encoder.layers.1.left"][:, 0].contiguous()}), "must be 2-D"),
    (lambda t: t.update({"encoder.layers.1.left": t["encoder.layers.1.left"].to(torch.int32)}), "floating-point"),
])
def test_malformed_tensors_raise_at_load(patch, tmp_path, change, match):
    directory = _saved(patch, tmp_path)
    tensors = _tensors(patch)
    change(tensors)
    save_file(tensors, str(directory / WEIGHTS_FILE))
    with pytest.raises(PatchError, match=match):
        Patch.load(directory)


def test_a_remembering_patch_carries_its_methods_state_exactly(bert, tmp_path):
    """UltraEdit's normaliser state travels as float64 ``.state.<name>`` tensors, counted in the
    id; a single edit stores none (its files as before); a malformed state is refused at load."""
    from safetensors.torch import load_file

    config = EditConfig(method="ultraedit", value="match", layers=[0, 1], key="subject")
    plain = edit(bert, [ACME, GOOGLE], config)
    remembering = edit(bert, [ACME, GOOGLE], config, remember=True)
    assert all(d.state is None for d in plain.deltas) and all(d.state is not None for d in remembering.deltas)
    assert remembering.id != plain.id
    directory = remembering.save(tmp_path / "patch")
    loaded = Patch.load(directory)
    assert loaded.id == remembering.id
    for got, want in zip(loaded.deltas, remembering.deltas):
        assert sorted(got.state) == sorted(want.state)
        assert all(got.state[name].dtype == torch.float64 and torch.equal(got.state[name], want.state[name])
                   for name in want.state)
    for change, match in [(lambda t: t["encoder.layers.1.state.key_mean"].fill_(float("nan")), "NaN or Inf"),
                          (lambda t: t.update({"encoder.layers.1.state.count": torch.ones(1, 1)}), "must be 1-D")]:
        tensors = load_file(str(directory / WEIGHTS_FILE))
        change(tensors)
        save_file(tensors, str(tmp_path / WEIGHTS_FILE))
        (tmp_path / WEIGHTS_FILE).replace(directory / WEIGHTS_FILE)
        with pytest.raises(PatchError, match=match):
            Patch.load(directory)


@pytest.mark.parametrize("field, value, match", [
    ("base_fingerprints", ["abc"], "'base_fingerprints' must map"),
    ("hyperparameters", [1, 2], "'hyperparameters' must be a JSON object"),
    ("requires", "anchor.safetensors", "'requires' must map"),
    ("requests", {"prompt": "x"}, "'requests' must be a list"),
])
def test_metadata_of_the_wrong_type_raises_at_load(patch, tmp_path, field, value, match):
    directory = _saved(patch, tmp_path)
    config = json.loads((directory / CONFIG_FILE).read_text("utf-8"))
    config[field] = value
    (directory / CONFIG_FILE).write_text(json.dumps(config), "utf-8")
    with pytest.raises(PatchError, match=match):
        Patch.load(directory)


def test_a_malformed_patch_never_half_applies(bert, patch):
    """Layer 0's delta is fine, layer 1's is not: apply refuses before writing anything, the
    model is unchanged, and a good patch still applies and reverts afterwards."""
    from textedit.patch import ModuleDelta
    from textedit.patch import ModuleDelta
    from textedit.solvers import LowRankDelta

    before = snapshot(bert.model)
    good, bad = patch.deltas
    for broken in (LowRankDelta(bad.delta.left, bad.delta.right[:-1]),  # wrong d_in for the module
                   LowRankDelta(bad.delta.left, bad.delta.right[:, :1]),  # rank mismatch
                   LowRankDelta(bad.delta.left * float("nan"), bad.delta.right)):
        half = Patch([good, ModuleDelta(bad.component, bad.layer, bad.module, broken)], patch.base_fingerprints,
                     patch.family, patch.method)
        with pytest.raises(PatchError):
            half.apply(bert)
        assert_unchanged(bert.model, before)
    patch.apply(bert)
    patch.revert(bert)
    assert_unchanged(bert.model, before)


def test_the_same_patch_is_not_applied_twice(bert, patch):
    patch.apply(bert)
    once = {d.layer: bert.down_proj_module(d.layer).weight.detach().clone() for d in patch.deltas}
    with pytest.raises(PatchError, match="already applied"):
        patch.apply(bert)
    assert all(torch.equal(bert.down_proj_module(layer).weight, w) for layer, w in once.items())
    patch.revert(bert)


# -- applying -------------------------------------------------------------------------------


def test_apply_changes_weights_and_revert_restores_them(bert, patch):
    before = snapshot(bert.model)
    originals = {d.layer: bert.down_proj_module(d.layer).weight.detach().clone() for d in patch.deltas}
    patch.apply(bert)
    for d in patch.deltas:
        weight = bert.down_proj_module(d.layer).weight.detach()
        assert not torch.equal(weight, originals[d.layer])
        expected = (originals[d.layer].double() + d.delta.dense()).float()
        assert torch.equal(weight, expected)
    changed = [name for name, p in bert.model.state_dict().items() if not torch.equal(p, before[name])]
    assert sorted(changed) == sorted(f"{bert.down_proj_name(d.layer)}.weight" for d in patch.deltas)
    patch.revert(bert)
    assert_unchanged(bert.model, before)
    with pytest.raises(PatchError, match="not applied"):
        patch.revert(bert)


def test_applied_patch_moves_the_key_stream_toward_the_target(bert, patch):
    queries = Sites.for_queries(bert, [ACME, GOOGLE], ("{}",))
    targets = Sites.for_targets(bert, [ACME, GOOGLE], ("{}",))
    target = read_states(bert, targets, [1])[1].streams
    before = (read_states(bert, queries, [1])[1].streams - target).norm(dim=1)
    patch.apply(bert)
    after = (read_states(bert, queries, [1])[1].streams - target).norm(dim=1)
    assert torch.all(after < before - 0.05)


def test_loaded_patch_applies_like_the_original(bert, patch, tmp_path):
    loaded = Patch.load(patch.save(tmp_path / "patch"))
    patch.apply(bert)
    direct = {d.layer: bert.down_proj_module(d.layer).weight.detach().clone() for d in patch.deltas}
    patch.revert(bert)
    loaded.apply(bert)
    for d in loaded.deltas:
        assert torch.allclose(bert.down_proj_module(d.layer).weight, direct[d.layer], atol=1e-6)


def test_apply_to_the_bare_model(bert, patch):
    """A bare ``BertModel`` takes the patch exactly as its adapter does: every edited
    down-projection becomes W + ΔW (rounded once to float32), nothing else changes, and the
    bookkeeping is the model's, whichever handle applied or reverts it."""
    before = snapshot(bert.model)
    patch.apply(bert)
    through_adapter = snapshot(bert.model)
    patch.revert(bert)
    patch.apply(bert.model)
    assert patch.applied_scale(bert) == patch.applied_scale(bert.model) == 1.0
    after = snapshot(bert.model)
    edited = {f"{bert.down_proj_name(d.layer)}.weight": d for d in patch.deltas}
    assert sorted(name for name in after if not torch.equal(after[name], before[name])) == sorted(edited)
    for name, d in edited.items():
        assert torch.equal(after[name], (before[name].double() + d.delta.dense()).float()), name
    assert all(torch.equal(after[name], through_adapter[name]) for name in after)
    patch.revert(bert)  # the bookkeeping lives on the model, whichever handle is used
    assert_unchanged(bert.model, before)


def test_other_weights_are_refused(bert, bert_path, patch):
    config = BertConfig.from_pretrained(str(bert_path))
    torch.manual_seed(1)
    other = adapter_for(BertModel(config).eval(), bert.tokenizer)
    before = snapshot(other.model)
    with pytest.raises(PatchError, match="fingerprint"):
        patch.apply(other)
    assert_unchanged(other.model, before)
    # one changed weight is enough
    with torch.no_grad():
        bert.model.get_input_embeddings().weight[10, 3] += 0.5
    with pytest.raises(PatchError, match="fingerprint"):
        patch.apply(bert)
    # unless the check is turned off on purpose
    patch.apply(other, check_fingerprint=False)
    assert not torch.equal(other.down_proj_module(0).weight, before[f"{other.down_proj_name(0)}.weight"])
    patch.revert(other)
    assert_unchanged(other.model, before)


def test_wrong_component_is_refused(bert, patch):
    with pytest.raises(PatchError, match="no edits for component 'text_encoder'"):
        patch.apply(bert, component="text_encoder")


def test_patches_stack_and_revert_in_reverse_order(bert, small_corpus, tmp_path):
    first = make_patch(bert, small_corpus, tmp_path, requests=(ACME,), layers=(0, 1))
    second = make_patch(bert, small_corpus, tmp_path, requests=(GOOGLE,), layers=(1,))
    assert first.id != second.id
    original = snapshot(bert.model)
    name1 = f"{bert.down_proj_name(1)}.weight"
    first.apply(bert)
    after_first = snapshot(bert.model)
    second.apply(bert)  # made on the same base model: accepted although the weights moved
    both = bert.down_proj_module(1).weight.detach()
    expected = original[name1].double() + first.deltas[1].delta.dense() + second.deltas[0].delta.dense()
    assert torch.allclose(both.double(), expected, atol=1e-6)
    assert not torch.equal(both, after_first[name1])
    with pytest.raises(PatchError, match="revert the patches applied after this one first"):
        first.revert(bert)
    assert torch.equal(bert.down_proj_module(1).weight, both)  # the refused revert changed nothing
    second.revert(bert)
    assert_unchanged(bert.model, after_first)
    first.revert(bert)
    assert_unchanged(bert.model, original)
    with pytest.raises(PatchError, match="not applied"):
        second.revert(bert)


# -- pipelines ------------------------------------------------------------------------------


def test_patch_applies_to_a_stable_diffusion_pipeline(sd_path, small_corpus, tmp_path):
    from diffusers import StableDiffusionPipeline

    encoder = load_encoder(str(sd_path), component="text_encoder")
    request = EditRequest("a photo of the acme mascot", "a red panda", subject="acme mascot")
    patch = make_patch(encoder, small_corpus, tmp_path / "cache", requests=(request,), layers=(1,),
                       component="text_encoder")
    assert patch.components == ["text_encoder"] and patch.family == "clip"
    loaded = Patch.load(patch.save(tmp_path / "patch"))

    pipe = StableDiffusionPipeline.from_pretrained(str(sd_path))
    text_encoder = adapter_for(pipe.text_encoder, pipe.tokenizer)
    before = snapshot(pipe.text_encoder)
    name = f"{text_encoder.down_proj_name(1)}.weight"
    loaded.apply(pipe)
    weight = text_encoder.down_proj_module(1).weight.detach()
    assert not torch.equal(weight, before[name])
    assert torch.allclose(weight.double(), before[name].double() + loaded.deltas[0].delta.dense(), atol=1e-6)
    changed = [n for n, p in pipe.text_encoder.state_dict().items() if not torch.equal(p, before[n])]
    assert changed == [name]
    loaded.revert(pipe)
    assert_unchanged(pipe.text_encoder, before)
    # a bare-encoder patch names no pipeline component
    with pytest.raises(PatchError, match="no component 'encoder'"):
        make_patch(encoder, small_corpus, tmp_path / "cache", requests=(request,), layers=(1,)).apply(pipe)


def test_patch_files_get_the_usual_permissions(patch, tmp_path):
    """Written through a temporary file and renamed, yet readable by others as `open` would make it."""
    import os

    mask = os.umask(0o022)
    try:
        directory = patch.save(tmp_path / "shared")
    finally:
        os.umask(mask)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        assert (directory / name).stat().st_mode & 0o777 == 0o644, name


def test_fingerprint_sees_every_element_of_the_editable_weights(tmp_path):
    """A change the strided sample would skip (element 1 of a 384 × 1536 down-projection) still
    changes the fingerprint, so a patch is not accepted on a model that is not its base."""
    minilm = load_encoder()
    weight = minilm.down_proj_module(3).weight
    assert weight.numel() > 2 * 65536
    before = minilm.fingerprint()
    with torch.no_grad():
        weight.view(-1)[1] += 0.5
    changed = minilm.fingerprint()
    with torch.no_grad():
        weight.view(-1)[1] -= 0.5
    assert changed != before and minilm.fingerprint() == before
    assert minilm.fingerprint() == load_encoder(dtype=torch.float16).fingerprint()  # dtype-independent


# -- strength and the context manager ---------------------------------------------------------


def test_scale_adds_that_fraction_of_the_delta_and_scaled_patches_match(patch, bert, tmp_path):
    module = bert.down_proj_module(1)
    original = module.weight.detach().clone()
    delta = next(d.delta for d in patch.deltas if d.layer == 1)
    expected = (original.double() + 0.5 * (delta.left.double() @ delta.right.double().T)).float()
    with patch.applied(bert, scale=0.5):
        half = module.weight.detach().clone()
        assert patch.applied_scale(bert) == 0.5
    torch.testing.assert_close(half, expected, rtol=0, atol=1e-6)
    assert torch.equal(module.weight, original) and patch.applied_scale(bert) is None
    halved = patch.scaled(0.5)
    assert halved.id != patch.id and halved.scale == 0.5
    directory = halved.save(tmp_path / "half")
    assert json.loads((directory / CONFIG_FILE).read_text("utf-8"))["scale"] == 0.5
    assert "scale" not in json.loads((patch.save(tmp_path / "full") / CONFIG_FILE).read_text("utf-8"))
    loaded = Patch.load(directory)
    assert loaded.scale == 0.5 and loaded.id == halved.id
    with loaded.applied(bert):
        torch.testing.assert_close(module.weight, half, rtol=0, atol=1e-6)


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), "0.5", True])
def test_scale_must_be_a_finite_number(patch, bert, scale):
    before = snapshot(bert.model)
    with pytest.raises(PatchError, match="scale must be a finite number"):
        patch.apply(bert, scale=scale)
    assert_unchanged(bert.model, before)


def test_applied_reverts_whatever_happens_inside(patch, bert):
    before = snapshot(bert.model)
    with pytest.raises(RuntimeError, match="inside"):
        with patch.applied(bert):
            assert not torch.equal(bert.down_proj_module(0).weight, before[bert.down_proj_name(0) + ".weight"])
            raise RuntimeError("inside")
    assert_unchanged(bert.model, before)


def test_measure_on_a_model_that_already_carries_the_patch(patch, bert):
    """The old README applied the patch and then measured: "before" was the edited model and
    "after" the patch twice. measure now takes the patch off for "before", and puts it back."""
    from textedit.metrics import measure

    requests = [EditRequest(**r) for r in patch.requests]
    clean = measure(bert, patch, requests)
    before = snapshot(bert.model)
    patch.apply(bert)
    applied_weights = snapshot(bert.model)
    held = measure(bert, patch, requests)
    assert [(s.before, s.after) for s in held.requests] == [(s.before, s.after) for s in clean.requests]
    assert patch.applied_scale(bert) == 1.0
    assert_unchanged(bert.model, applied_weights)
    patch.revert(bert)
    assert_unchanged(bert.model, before)
    half = measure(bert, patch, requests, scale=0.5)
    assert all(abs(h.after - s.before) < abs(s.after - s.before) for h, s in zip(half.requests, clean.requests))


# -- sharing through the hub -------------------------------------------------------------------


def _hub_cache(tmp_path, patch, repo_id="alice/acme-patch", commit="0123456789abcdef0123456789abcdef01234567"):
    """A Hugging Face cache folder holding ``repo_id`` at ``commit``, laid out as the hub client lays it out."""
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    patch.save(repo / "snapshots" / commit)
    return tmp_path / "hub"


def test_load_a_hub_repo_id_through_the_hub_client_offline(patch, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)  # no network: the real client reads its cache
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(_hub_cache(tmp_path, patch)))
    monkeypatch.chdir(tmp_path)  # no local folder named alice/acme-patch
    loaded = Patch.load("alice/acme-patch")
    assert loaded.id == patch.id
    with pytest.raises(PatchError, match="'bob/nothing' is not a folder here, and not a hub repo"):
        Patch.load("bob/nothing")


def test_push_to_hub_uploads_the_patch_and_a_card(patch, tmp_path, monkeypatch):
    """The real upload code runs against a stand-in for the hub API (nothing leaves the machine)."""
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, private=False, exist_ok=False):
            calls.append(("create", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, revision=None, commit_message=""):
            names = sorted(p.name for p in Path(folder_path).iterdir())
            uploaded = Patch.load(folder_path)
            calls.append(("upload", repo_id, names, uploaded.id, commit_message,
                          (Path(folder_path) / "README.md").read_text()))
            return "https://huggingface.co/alice/acme-patch/commit/abc"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    url = patch.push_to_hub("alice/acme-patch", private=True)
    assert url.endswith("/commit/abc")
    assert calls[1] == ("create", "alice/acme-patch", True, True)
    _, repo, names, uploaded, message, card = calls[2]
    assert names == ["README.md", CONFIG_FILE, WEIGHTS_FILE] and uploaded == patch.id and patch.id in message
    assert "the mascot of acme" in card and "Patch.load" in card


def test_a_patch_addresses_any_linear_module_of_a_layer_by_name(bert_path, small_corpus, tmp_path):
    """A delta on the attention's output projection rides beside the down-projection's delta of
    the same layer: saved under its own tensor names, loaded, applied exactly, reverted bit for
    bit; a module outside its layer or without a 2-D weight is refused in one line."""
    from dataclasses import replace

    from textedit.patch import ModuleDelta
    from textedit.patch import ModuleDelta
    from textedit.solvers import LowRankDelta

    adapter = load_encoder(str(bert_path))
    patch = make_patch(adapter, small_corpus, tmp_path, layers=(1,))
    out_proj = adapter.attention_out_module(1)
    name = f"{adapter.down_proj_name(1).rsplit('.', 2)[0]}.{adapter.attention_out}"
    assert adapter.model.get_submodule(name) is out_proj
    g = torch.Generator().manual_seed(0)
    extra = LowRankDelta(torch.randn(out_proj.weight.shape[0], 2, generator=g),
                         torch.randn(out_proj.weight.shape[1], 2, generator=g))
    patch = replace(patch, deltas=[*patch.deltas, ModuleDelta(ENCODER, 1, name, extra, tensor_prefix=f"encoder.{name}")])
    patch.save(tmp_path / "two")
    loaded = Patch.load(tmp_path / "two")
    assert loaded.id == patch.id and [d.module for d in loaded.deltas] == [d.module for d in patch.deltas]
    before = snapshot(adapter.model)
    loaded.apply(adapter)
    expected = (before[f"{name}.weight"].double() + extra.dense().double()).float()
    assert torch.equal(out_proj.weight.detach(), expected)
    down = adapter.down_proj_module(1).weight.detach()
    assert not torch.equal(down, before[f"{adapter.down_proj_name(1)}.weight"])
    loaded.revert(adapter)
    assert_unchanged(adapter.model, before)

    for wrong, layer in ((name, 0), (name.replace(".dense", ".LayerNorm"), 1)):  # another layer; not linear
        bad = replace(patch, deltas=[ModuleDelta(ENCODER, layer, wrong, LowRankDelta(extra.left, extra.right))])
        with pytest.raises(PatchError, match="not a linear module of that layer"):
            bad.apply(adapter)
    assert_unchanged(adapter.model, before)


def test_a_folder_mixing_two_patches_is_refused_in_one_line(tmp_path):
    """patch.json records the weights' checksum and the weights the patch id: the halves of two
    patches in one folder (a replace interrupted between its two renames) are refused, as is a
    patch.json changed after it was written; each patch alone loads."""
    import shutil

    from textedit.patch import ModuleDelta
    from textedit.solvers import LowRankDelta

    def make(seed: int) -> Patch:
        g = torch.Generator().manual_seed(seed)
        delta = LowRankDelta(torch.randn(4, 1, generator=g, dtype=torch.float64),
                             torch.randn(3, 1, generator=g, dtype=torch.float64))
        return Patch([ModuleDelta("encoder", 0, "layer.0.dense", delta)], {"encoder": "f" * 32}, "bert", "memit",
                     {"layers": [0]}, [{"prompt": f"p{seed}", "target": "t"}])

    one, two = make(1).save(tmp_path / "one"), make(2).save(tmp_path / "two")
    assert Patch.load(one).id == make(1).id and Patch.load(two).id == make(2).id
    written = json.loads((one / "patch.json").read_text())
    assert written["id"] == make(1).id and len(written["weights_sha256"]) == 64
    mixed = tmp_path / "mixed"
    shutil.copytree(one, mixed)
    shutil.copy(two / "patch.safetensors", mixed / "patch.safetensors")
    with pytest.raises(PatchError, match="is not the weights patch.json was written with") as caught:
        Patch.load(mixed)
    assert "\n" not in str(caught.value)
    no_checksum = {k: v for k, v in written.items() if k != "weights_sha256"}  # the id link alone
    (mixed / "patch.json").write_text(json.dumps(no_checksum))
    with pytest.raises(PatchError, match=f"belongs to patch {make(2).id}, patch.json to {make(1).id}"):
        Patch.load(mixed)
    edited = tmp_path / "edited"
    shutil.copytree(one, edited)
    (edited / "patch.json").write_text(json.dumps({**written, "method": "alphaedit"}))
    with pytest.raises(PatchError, match="content hashes to"):
        Patch.load(edited)


@pytest.mark.parametrize("text, fragment", [
    ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
    ('{"format": "textedit-patch-1", "scale": ' + "9" * 5000 + "}", "4300 digits"),
])
def test_a_patch_json_nested_too_deep_or_holding_a_5000_digit_integer_is_one_line(patch, tmp_path, monkeypatch,
                                                                                  capsys, text, fragment):
    """Patch.load raises PatchError (never RecursionError or ValueError); show and export say
    it in one line, exit 2."""
    from cli_runner import run

    directory = _saved(patch, tmp_path)
    (directory / CONFIG_FILE).write_text(text, "utf-8")
    with pytest.raises(PatchError, match=f"patch.json' is not valid JSON: .*{fragment}") as caught:
        Patch.load(directory)
    assert len(str(caught.value)) < 300
    for args in (["show", directory], ["export", directory, "--to", "peft", "--out", tmp_path / "peft"]):
        code, _, err = run(monkeypatch, capsys, *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and "Traceback" not in err and lines[-1].startswith("error:") and fragment in lines[-1], err
    assert not (tmp_path / "peft").exists()


def test_save_replaces_an_earlier_patch_whole_and_refuses_any_other_folder(patch, bert, small_corpus, tmp_path):
    """The folder is written beside its place and renamed: an earlier patch (with its report) is
    replaced as a whole, nothing is left beside it, and a folder holding anything else is
    refused untouched. Extra files (a model card, erasure.json) are part of the same folder."""
    other = make_patch(bert, small_corpus, tmp_path / "cache", requests=(ACME,), layers=(0,))
    directory = patch.save(tmp_path / "patch", extra={"erasure.json": "{}\n"})
    assert sorted(p.name for p in directory.iterdir()) == ["erasure.json", CONFIG_FILE, WEIGHTS_FILE]
    other.save(directory)
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]  # the old report went with it
    assert Patch.load(directory).id == other.id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "patch"]  # no temporary sibling left

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(PatchError, match="holds other files than a patch: give a new or empty folder"):
        patch.save(mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert Patch.load(patch.save(tmp_path / "empty")).id == patch.id
