"""Patches: ΔW per edited module as low-rank factors, saved as safetensors + JSON.

A patch directory holds

    patch.safetensors   ``{component}.layers.{i}.left`` [d_out, r] and ``.right`` [d_in, r]
                        with ΔW = left @ rightᵀ (float32); a remembering patch adds
                        ``.keys`` [d_in, n] (float32) or ``.state.{name}`` (float64), what
                        a later edit of its chain needs (``sequential.py``)
    patch.json          format, textedit version, encoder family, base fingerprint per
                        component, method, hyperparameters, requests, module list

Applying adds ΔW to the down-projection weights of the user's own model (in its dtype,
summed in float64); the original weights are kept aside so :meth:`Patch.revert` restores
them bit for bit. Patches stack and are reverted in reverse order. A patch refuses a model
whose fingerprint differs from the one it was made on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import huggingface_hub
import torch
from huggingface_hub.utils import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
from torch import nn

from .encoders.base import EncoderAdapter, adapter_for
from .errors import PatchError
from .io import parse_json, read_tensors, tensor_checksum, tensors_bytes, write_folder
from .solvers import LowRankDelta
from .version import __version__

PATCH_FORMAT = "textedit-patch-1"
WEIGHTS_FILE = "patch.safetensors"
CONFIG_FILE = "patch.json"
ENCODER = "encoder"  # component key of a patch made on a bare encoder
#: what a patch folder may hold beside its two files (so :meth:`Patch.save` may replace it): a model
#: card, the report ``textedit erase`` writes
PATCH_FOLDER_FILES = {WEIGHTS_FILE, CONFIG_FILE, "README.md", "erasure.json"}


@dataclass
class ModuleDelta:
    """ΔW for the linear module named ``module`` (relative to the encoder model) in block
    ``layer`` of ``component`` (``"encoder"`` for a bare one): the block's MLP down-projection
    for every method today, any other linear module of the block where a method edits one.

    ``keys [d_in, n]``: the keys the delta was solved for, one per request and template, kept
    by remembering patches (memit, alphaedit) so that later sequential edits can preserve
    them (``sequential.py``); ``None`` otherwise. ``state``: what a method that carries state
    (ultraedit's normaliser) left for the chain's next edit of this module, kept by remembering
    patches (``EditMethod.solve_in_chain``); ``None`` otherwise. ``tensor_prefix``: the name of its tensors
    in ``patch.safetensors``; ``None`` gives ``{component}.layers.{layer}`` (the down-projection,
    the name every patch has used), so a second module of the same block names its own.
    """

    component: str
    layer: int
    module: str
    delta: LowRankDelta
    keys: torch.Tensor | None = None
    tensor_prefix: str | None = None
    state: dict[str, torch.Tensor] | None = None

    @property
    def key(self) -> str:
        return self.tensor_prefix or f"{self.component}.layers.{self.layer}"


@dataclass
class Patch:
    """A set of low-rank weight deltas plus the metadata that says what they are."""

    deltas: list[ModuleDelta]
    base_fingerprints: dict[str, str]
    family: str
    method: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    version: str = __version__
    #: what a component needs before the patch fits, per component: a textual-inversion
    #: anchor ``{"token", "file", "sha256"}`` that was loaded into it when the edit was made
    requires: dict[str, dict] = field(default_factory=dict)
    #: the strength baked into ``left`` (:meth:`scaled`); 1: the edit as solved
    scale: float = 1.0

    # -- identity ----------------------------------------------------------------------

    @property
    def components(self) -> list[str]:
        return sorted({d.component for d in self.deltas})

    @property
    def id(self) -> str:
        """Content hash: equal patches (same spec and model) have equal ids."""
        h = hashlib.sha256(json.dumps(self._config(), sort_keys=True).encode())
        for d in self.deltas:
            h.update(d.delta.left.float().numpy().tobytes())
            h.update(d.delta.right.float().numpy().tobytes())
            if d.keys is not None:
                h.update(d.keys.float().numpy().tobytes())
            for name, tensor in sorted((d.state or {}).items()):
                h.update(f"{name}\0".encode() + tensor.double().numpy().tobytes())
        return h.hexdigest()[:16]

    def _config(self) -> dict:
        return {
            "format": PATCH_FORMAT,
            "textedit_version": self.version,
            "family": self.family,
            "base_fingerprints": self.base_fingerprints,
            "method": self.method,
            "hyperparameters": self.hyperparameters,
            "requests": self.requests,
            "modules": [{"component": d.component, "layer": d.layer, "module": d.module, "rank": d.delta.rank,
                         **({"tensors": d.tensor_prefix} if d.tensor_prefix else {})} for d in self.deltas],
            **({"requires": self.requires} if self.requires else {}),
            **({"scale": self.scale} if self.scale != 1 else {}),
        }

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None,
                    revision: str | None = None) -> str:
        """Upload the patch (``patch.json``, ``patch.safetensors`` and a model card) to the hub
        repo ``repo_id``, created if needed; returns the commit URL. ``Patch.load(repo_id)``
        reads it back."""
        api = huggingface_hub.HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            self.save(folder, extra={"README.md": self.model_card()})
            commit = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision,
                                       commit_message=f"textedit patch {self.id}")
        return str(commit)

    def model_card(self) -> str:
        """A README for a shared patch: what it edits, on which model, and how to load it."""
        lines = ["---", "library_name: textedit", "tags: [textedit, knowledge-editing, text-encoder]", "---", "",
                 f"# textedit patch {self.id}", "",
                 f"A {self.method} edit of {', '.join(self.components)} ({self.family}), made with textedit "
                 f"{self.version}" + (f" at strength {self.scale:g}" if self.scale != 1 else "") + ".", "",
                 "| prompt | now reads as |", "| --- | --- |",
                 *[f"| {r.get('prompt', '')} | {r.get('target', '')} |" for r in self.requests], "",
                 "```python", "from textedit import Patch", "", "patch = Patch.load(\"<this repo id>\")",
                 "patch.apply(pipe)   # or an encoder; patch.revert(pipe) undoes it bit for bit", "```", "",
                 f"Base fingerprints: {json.dumps(self.base_fingerprints, sort_keys=True)}.", ""]
        return "\n".join(lines)

    def stored(self) -> "Patch":
        """This patch as :meth:`save` writes it and :meth:`load` reads it back (factors and keys in
        float32): a chain that applies its patches stored continues from saved ones bit for bit."""
        deltas = [replace(d, delta=LowRankDelta(d.delta.left.float(), d.delta.right.float()),
                          keys=None if d.keys is None else d.keys.float()) for d in self.deltas]
        return replace(self, deltas=deltas)

    def scaled(self, scale: float) -> "Patch":
        """This edit at strength ``scale`` as a patch of its own: every ``left`` times ``scale``
        (stored keys and state unchanged), the strength recorded in ``scale`` (products over repeated
        scaling). ``patch.scaled(s).apply(m)`` changes ``m`` as ``patch.apply(m, scale=s)``."""
        _check_scale(scale)
        deltas = [replace(d, delta=LowRankDelta(d.delta.left * scale, d.delta.right)) for d in self.deltas]
        return replace(self, deltas=deltas, scale=self.scale * scale)

    @classmethod
    def combine(cls, patches: list["Patch"]) -> "Patch":
        """One patch holding the edits of several components (e.g. both CLIPs of SDXL).

        Each part must edit its own components with the same method; ``hyperparameters``
        become a dict keyed by component, ``requests`` the union of the parts' requests.
        """
        if len(patches) == 1:
            return patches[0]
        seen: set[str] = set()
        for part in patches:
            if seen & set(part.components):
                raise PatchError(f"two parts edit component {sorted(seen & set(part.components))[0]}")
            seen |= set(part.components)
            if part.method != patches[0].method:
                raise PatchError(f"cannot combine a {part.method} patch with a {patches[0].method} patch")
            if part.scale != patches[0].scale:
                raise PatchError(f"cannot combine a patch at strength {part.scale:g} with one at {patches[0].scale:g}")
        by_component = lambda field: {c: getattr(p, field) for p in patches for c in p.components}  # noqa: E731
        requests = [r for p in patches for r in p.requests]
        return cls(deltas=[d for p in patches for d in p.deltas],
                   base_fingerprints={c: f for p in patches for c, f in p.base_fingerprints.items()},
                   family="+".join(dict.fromkeys(p.family for p in patches)), method=patches[0].method,
                   hyperparameters=by_component("hyperparameters"),
                   requests=[r for i, r in enumerate(requests) if r not in requests[:i]],
                   requires={c: r for p in patches for c, r in p.requires.items()}, scale=patches[0].scale)

    # -- files -------------------------------------------------------------------------

    def save(self, directory: str | Path, extra: Mapping[str, str | bytes] | None = None) -> Path:
        """Write ``patch.safetensors`` and ``patch.json`` (and the ``extra`` files, name → text
        or bytes: a model card, ``erasure.json``) as the folder ``directory``, whole or not at
        all: written into a temporary sibling, fsynced and renamed into place; an earlier patch
        there is replaced, any other non-empty folder refused (``io.folder_written_whole``)."""
        directory = Path(directory)
        tensors = {}
        for d in self.deltas:
            tensors[f"{d.key}.left"] = d.delta.left.float()
            tensors[f"{d.key}.right"] = d.delta.right.float()
            if d.keys is not None:
                tensors[f"{d.key}.keys"] = d.keys.float()
            for name, tensor in (d.state or {}).items():  # float64: a chain continues from it exactly
                tensors[f"{d.key}.state.{name}"] = tensor.double()
        # each file names the other: the weights carry the patch id, patch.json the weights'
        # checksum, so a folder holding the halves of two patches is refused on load
        patch_id = self.id
        config = {**self._config(), "weights_sha256": tensor_checksum(tensors), "id": patch_id}
        files = {WEIGHTS_FILE: tensors_bytes(tensors, {"format": PATCH_FORMAT, PATCH_ID_KEY: patch_id}),
                 CONFIG_FILE: json.dumps(config, indent=2, ensure_ascii=False) + "\n", **(extra or {})}
        return write_folder(files, directory, "a patch", PATCH_FOLDER_FILES | set(extra or ()), PatchError)

    @classmethod
    def load(cls, directory: str | Path, revision: str | None = None) -> "Patch":
        """Read a patch directory, or a hub repo ``owner/name`` holding one (downloaded into,
        or read offline from, the Hugging Face cache; ``revision``: a branch, tag or commit).
        Every problem is a :class:`PatchError` naming the file or repo."""
        directory = Path(directory)
        if not directory.exists() and _HUB_ID.fullmatch(str(directory)):
            directory = _download(str(directory), revision)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise PatchError(f"patch '{directory}' has no {path.name}")
        try:
            text = config_path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise PatchError(f"'{config_path}' is not UTF-8 text") from None
        except OSError as exc:
            raise PatchError(f"'{config_path}' cannot be read: {exc.strerror or exc}") from None
        config = parse_json(text, PatchError, f"'{config_path}' is not valid JSON")  # nesting, digits: one line
        if not isinstance(config, dict) or config.get("format") != PATCH_FORMAT:
            raise PatchError(f"'{config_path}' is not a textedit patch (format must be '{PATCH_FORMAT}')")
        for name in ("family", "base_fingerprints", "method", "modules"):
            if name not in config:
                raise PatchError(f"'{config_path}' lacks the field '{name}'")
        tensors, metadata = read_tensors(weights_path, PatchError, "patch weights")  # checksum verified
        deltas = []
        try:
            for entry in config["modules"]:
                prefix = entry.get("tensors")
                if prefix is not None and not isinstance(prefix, str):
                    raise PatchError(f"'{config_path}': module entry {entry['module']!r}: 'tensors' must be a name")
                key = prefix or f"{entry['component']}.layers.{entry['layer']}"
                if f"{key}.left" not in tensors or f"{key}.right" not in tensors:
                    raise PatchError(f"'{weights_path}' lacks the tensors of {key}")
                delta = LowRankDelta(tensors[f"{key}.left"], tensors[f"{key}.right"])
                state = {name[len(f"{key}.state."):]: tensor for name, tensor in tensors.items()
                         if name.startswith(f"{key}.state.")}
                deltas.append(ModuleDelta(entry["component"], entry["layer"], entry["module"], delta,
                                          tensors.get(f"{key}.keys"), prefix, state or None))
        except (KeyError, TypeError, AttributeError) as exc:
            raise PatchError(f"'{config_path}': malformed module entry ({exc})") from None
        patch = cls(deltas, config["base_fingerprints"], config["family"], config["method"],
                    config.get("hyperparameters", {}), config.get("requests", []),
                    config.get("textedit_version", "unknown"), config.get("requires", {}), config.get("scale", 1.0))
        patch.validate(f"patch '{directory}'")
        _check_halves(directory, config, tensors, metadata)
        if "id" in config and config["id"] != patch.id:
            raise PatchError(f"patch '{directory}': patch.json says id {config['id']} but its content hashes to "
                             f"{patch.id}: the files were changed after it was written")
        return patch

    def validate(self, where: str = "patch") -> None:
        """Check the whole patch (metadata types, tensor ranks, shapes, dtypes, finiteness)
        before anything uses it; a problem is one :class:`PatchError` naming it."""
        def fail(message: str):
            raise PatchError(f"{where}: {message}")

        def mapping_of_strings(value, name: str):
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in value.items()):
                fail(f"'{name}' must map component names to strings")

        mapping_of_strings(self.base_fingerprints, "base_fingerprints")
        for name, value in (("family", self.family), ("method", self.method), ("textedit_version", self.version)):
            if not isinstance(value, str):
                fail(f"'{name}' must be a string")
        if not isinstance(self.hyperparameters, dict):
            fail("'hyperparameters' must be a JSON object")
        if not isinstance(self.requests, list) or not all(isinstance(r, dict) for r in self.requests):
            fail("'requests' must be a list of objects")
        if not isinstance(self.requires, dict) or not all(isinstance(v, dict) for v in self.requires.values()):
            fail("'requires' must map component names to objects")
        if not is_strength(self.scale):
            fail("'scale' must be a finite number")
        if not self.deltas:
            fail("it holds no deltas")
        seen = set()
        for d in self.deltas:
            if not isinstance(d.component, str) or not isinstance(d.layer, int) or isinstance(d.layer, bool) \
                    or d.layer < 0 or not isinstance(d.module, str):
                fail(f"module entry {d.component!r}/{d.layer!r} needs a component name, a layer ≥ 0 and a module "
                     "name")
            if d.key in seen or (d.component, d.module) in seen:
                fail(f"{d.key if d.key in seen else d.module} appears twice")
            seen.update({d.key, (d.component, d.module)})
            left, right = d.delta.left, d.delta.right
            state = [(f"state.{name}", tensor) for name, tensor in (d.state or {}).items()]
            for part, tensor in (("left", left), ("right", right), ("keys", d.keys), *state):
                if tensor is None:
                    continue
                if tensor.ndim != (1 if part.startswith("state.") else 2):
                    fail(f"{d.key}.{part} must be {1 if part.startswith('state.') else 2}-D, it has shape "
                         f"{tuple(tensor.shape)}")
                if not tensor.is_floating_point():
                    fail(f"{d.key}.{part} must hold floating-point numbers, not {tensor.dtype}")
                if not torch.isfinite(tensor).all():
                    fail(f"{d.key}.{part} holds NaN or Inf")
            if left.shape[1] != right.shape[1]:
                fail(f"{d.key}: left has rank {left.shape[1]} but right has rank {right.shape[1]}")
            if d.keys is not None and d.keys.shape[0] != right.shape[0]:
                fail(f"{d.key}: keys have {d.keys.shape[0]} dimensions, the module takes {right.shape[0]}")

    # -- applying ----------------------------------------------------------------------

    def _targets(self, target, component: str | None) -> dict[str, EncoderAdapter]:
        """Map each component of the patch to the adapter of the model it edits."""
        if isinstance(target, EncoderAdapter) or isinstance(target, nn.Module):
            adapter = target if isinstance(target, EncoderAdapter) else adapter_for(target, None)
            wanted = component or (self.components[0] if len(self.components) == 1 else None)
            if wanted is None:
                raise PatchError(f"this patch edits {', '.join(self.components)}: apply it to a pipeline or name "
                                 "the component")
            if wanted not in self.components:
                raise PatchError(f"this patch has no edits for component '{wanted}' (it has {', '.join(self.components)})")
            return {wanted: adapter}
        out = {}
        for name in self.components:  # a diffusers pipeline: components are attributes
            model = getattr(target, name, None)
            if model is None:
                raise PatchError(f"the pipeline has no component '{name}' that this patch edits")
            out[name] = adapter_for(model, None)
        return out

    def apply(self, target, component: str | None = None, *, scale: float = 1.0,
              check_fingerprint: bool = True) -> None:
        """Add ``scale · ΔW`` to an encoder (adapter or bare model) or to a pipeline's named
        components. ``scale`` is the edit's strength: 1 the edit as solved, 0.5 half way
        (the key's output moves half way to its target: ΔW is linear in the residual).

        All or nothing: the patch is validated, every component checked (fingerprint, layers,
        shapes, not already applied) and every new weight computed before the first is
        written; if writing fails half-way, the weights already written are put back."""
        self.validate()
        _check_scale(scale)
        targets = self._targets(target, component)
        patch_id = self.id  # a hash of every tensor: computed once
        fingerprints = {}
        for name, adapter in targets.items():
            if any(entry[0] == patch_id for entry in _state(adapter.model).get("stack", [])):
                raise PatchError(f"patch {patch_id} is already applied to {name}: revert it before applying it again")
            if check_fingerprint:
                # a patch fits the base model, or the patched model it was made on (sequential editing)
                base, current = _state(adapter.model).get("base_fingerprint"), adapter.fingerprint()
                expected = self.base_fingerprints.get(name)
                if expected not in (base, current):
                    current = base or current
                    needs = self.requires.get(name)
                    after = self.hyperparameters.get("after")
                    hint = (f"; it needs the anchor embedding '{needs['file']}' (token {needs['token']}, sha256 "
                            f"{needs['sha256'][:12]}…) loaded first" if needs else
                            f"; it goes after the patches {', '.join(after)}: apply them first, in that order"
                            if after else " (another model or other weights)")
                    raise PatchError(f"patch made on model {str(expected)[:12]}… cannot be applied to "
                                     f"{name} with fingerprint {current[:12]}…{hint}")
                fingerprints[name] = current
        # every new weight, computed before any is written
        writes = []  # (component, module name, module, original, updated)
        for name, adapter in targets.items():
            for d in self.deltas:
                if d.component == name:
                    module = _module(adapter, d)  # layer and shape checks
                    original = module.weight.detach().clone()
                    # formed on the weight's device from the factors (only they cross), in their dtype as before
                    updated = original.double() + scale * d.delta.dense(original.device).to(torch.float64)
                    if not torch.isfinite(updated).all():
                        raise PatchError(f"applying {d.key} would put NaN or Inf into the weights")
                    writes.append((name, d.module, module, original, updated.to(original.dtype)))
        done = []
        try:
            with torch.no_grad():
                for entry in writes:
                    entry[2].weight.copy_(entry[4])
                    done.append(entry)
        except BaseException:  # a failed or interrupted write: put back what was written
            with torch.no_grad():
                for entry in done:
                    entry[2].weight.copy_(entry[3])
            raise
        for name, adapter in targets.items():
            state = _state(adapter.model)
            if name in fingerprints:
                state.setdefault("base_fingerprint", fingerprints[name])
            state.setdefault("stack", []).append((patch_id, {module: original for c, module, _, original, _ in writes
                                                            if c == name}, scale))

    @contextlib.contextmanager
    def applied(self, target, component: str | None = None, *, scale: float = 1.0):
        """``with patch.applied(model, scale=s): ...``: the edit inside, reverted (bit-exact)
        on the way out, whatever happens inside."""
        self.apply(target, component, scale=scale)
        try:
            yield target
        finally:
            self.revert(target, component)

    def applied_scale(self, target, component: str | None = None) -> float | None:
        """The strength this patch is applied with to ``target`` (every component it edits
        there), or ``None`` where it is not applied."""
        scales = set()
        for adapter in self._targets(target, component).values():
            entries = [entry for entry in _state(adapter.model).get("stack", []) if entry[0] == self.id]
            if not entries:
                return None
            scales.add(entries[-1][2])
        return scales.pop() if len(scales) == 1 else None

    def revert(self, target, component: str | None = None) -> None:
        """Restore the weights this patch changed, bit for bit (last applied, first reverted)."""
        for name, adapter in self._targets(target, component).items():
            state = _state(adapter.model)
            stack = state.get("stack", [])
            if not stack or stack[-1][0] != self.id:
                applied = [entry[0] for entry in stack]
                if self.id in applied:
                    raise PatchError("revert the patches applied after this one first")
                raise PatchError(f"this patch is not applied to {name}")
            _, originals, _ = stack.pop()
            for d in self.deltas:
                if d.component == name:
                    with torch.no_grad():
                        _module(adapter, d).weight.copy_(originals[d.module])
            if not stack:
                state.pop("base_fingerprint", None)


#: a hub repo id (``owner/name``), as opposed to a local path that does not exist
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def _download(repo_id: str, revision: str | None) -> Path:
    """The local folder of hub repo ``repo_id``'s patch files (the cache when offline)."""
    try:
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision,
                                                      allow_patterns=[CONFIG_FILE, WEIGHTS_FILE]))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PatchError(f"patch '{repo_id}' is not a folder here, and not a hub repo that could be read "
                         f"({reason[:160]})") from None


def is_strength(scale) -> bool:
    """Whether ``scale`` can be an edit's strength: a finite real number (0, negative and >1 too)."""
    return not isinstance(scale, bool) and isinstance(scale, (int, float)) and math.isfinite(scale)


#: the safetensors metadata key holding the id of the patch the weights belong to
PATCH_ID_KEY = "textedit_patch_id"


def _check_halves(directory: Path, config: dict, tensors: dict, metadata: dict) -> None:
    """Refuse a folder whose ``patch.json`` and ``patch.safetensors`` come from two patches (a
    write interrupted between the two renames, or files copied together by hand). Patches
    written before 0.1.1 carry neither link and are read as they are."""
    recorded = config.get("weights_sha256")
    if recorded is not None and recorded != tensor_checksum(tensors):
        raise PatchError(f"patch '{directory}': {WEIGHTS_FILE} is not the weights {CONFIG_FILE} was written with "
                         f"(a folder mixing two patches?)")
    weights_id = metadata.get(PATCH_ID_KEY)
    if weights_id is not None and config.get("id") is not None and weights_id != config["id"]:
        raise PatchError(f"patch '{directory}': {WEIGHTS_FILE} belongs to patch {weights_id}, {CONFIG_FILE} to "
                         f"{config['id']} (a folder mixing two patches?)")


def _check_scale(scale) -> None:
    if not is_strength(scale):
        raise PatchError(f"scale must be a finite number (1: the edit as solved), got {scale!r}")


def _state(model: nn.Module) -> dict:
    """Per-model bookkeeping of applied patches (lives and dies with the model object)."""
    if not hasattr(model, "_textedit_state"):
        object.__setattr__(model, "_textedit_state", {})
    return model._textedit_state


def _module(adapter: EncoderAdapter, d: ModuleDelta) -> nn.Linear:
    """The linear module ``d`` edits, found by its name in block ``d.layer``, shape checked."""
    if not 0 <= d.layer < adapter.num_layers:
        raise PatchError(f"patch edits layer {d.layer} but the model has layers 0..{adapter.num_layers - 1}")
    module = adapter.linear_module(d.module)
    if module is None or not adapter.in_block(d.module, d.layer):
        raise PatchError(f"patch edits '{d.module}' in layer {d.layer}, which is not a linear module of that layer "
                         f"in {adapter.name}")
    if tuple(module.weight.shape) != (d.delta.left.shape[0], d.delta.right.shape[0]):
        raise PatchError(f"patch delta for layer {d.layer} has shape {(d.delta.left.shape[0], d.delta.right.shape[0])}"
                         f" but the module weight is {tuple(module.weight.shape)}")
    return module
