"""Patches as LoRA files the ecosystem loads: diffusers, peft, and kohya (ComfyUI, A1111).

A textedit delta ``ΔW = left @ rightᵀ`` on a down-projection is a LoRA on that linear layer:

    A = rightᵀ  [r, d_in]      (diffusers: ``lora_linear_layer.down``, peft: ``lora_A``, kohya: ``lora_down``)
    B = left    [d_out, r]     (``…up``, ``lora_B``, ``lora_up``)
    scaling = alpha / r = 1    (alpha = r: the LoRA adds exactly ΔW)

Three formats, each loaded by its own tool's code with no textedit installed:

* ``diffusers``: one ``.safetensors`` for ``pipe.load_lora_weights(path)``; keys
  ``<component>.<module>.lora_linear_layer.{down,up}.weight``. diffusers puts text-encoder
  LoRAs on CLIP encoders only (the q/k/v/out projections and ``fc1``/``fc2``), so a patch
  of a T5 (SD3's ``text_encoder_3``, FLUX's ``text_encoder_2``) or of a bare encoder is
  refused with a pointer to the peft format.
* ``peft``: a folder ``adapter_config.json`` + ``adapter_model.safetensors`` for
  ``PeftModel.from_pretrained(encoder, folder)`` on the bare encoder (any family); a patch of
  several components gets one such folder per component.
* ``kohya``: one ``.safetensors`` with ``lora_te_…`` (``lora_te1_…``/``lora_te2_…`` when the
  patch edits SDXL's second encoder) keys, ``lora_down``/``lora_up`` and ``.alpha``: what
  ComfyUI and the A1111 web UI read for SD 1.x/2.x/SDXL CLIP encoders.

Every file carries the patch's provenance (id, base fingerprints, method, requests, textedit
version, strength) in its safetensors metadata under ``textedit_patch``, so a LoRA stays
traceable to its edit.

A fourth target needs no LoRA support at all: :func:`to_model` writes the edited encoder
itself, ``W + ΔW`` merged into the base weights, as a transformers model folder
(``save_pretrained``, safetensors). It loads with ``from_pretrained`` wherever the base model
does: ``FluxPipeline.from_pretrained(base, text_encoder_2=T5EncoderModel.from_pretrained(
folder))``, Qwen-Image's Qwen2.5-VL (which no diffusers LoRA loader reaches), or a copy of the
pipeline folder with the component's folder replaced. ``textedit_patch.json`` beside the
weights names the patches merged.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Mapping, Sequence

import torch

from .encoders import COMPONENT_TOKENIZERS, EncoderAdapter
from .errors import PatchError
from .io import atomic_save_tensors, atomic_write_text, folder_written_whole, library_write, tensors_bytes, write_folder
from .patch import ENCODER, Patch

FORMATS = ("diffusers", "peft", "kohya")
#: ``export --to model``: the edited encoder itself (:func:`to_model`), not a LoRA
MODEL = "model"
#: how each format is loaded, for the CLI's message and docs/export.md
LOAD_CALLS = {"diffusers": "pipe.load_lora_weights('{out}')",
              "peft": "PeftModel.from_pretrained(encoder, '{out}')",
              "kohya": "ComfyUI / A1111 LoRA loaders, or pipe.load_lora_weights('{out}')"}
#: module-name endings diffusers' text-encoder LoRA loader targets (CLIP's linear layers)
DIFFUSERS_TEXT_MODULES = (".q_proj", ".k_proj", ".v_proj", ".out_proj", ".fc1", ".fc2")
PEFT_CONFIG, PEFT_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


def provenance(patch: Patch) -> dict[str, str]:
    """Safetensors metadata naming the edit a LoRA file comes from."""
    return {"format": "pt", "textedit_patch": json.dumps(
        {"id": patch.id, "textedit_version": patch.version, "method": patch.method, "family": patch.family,
         "base_fingerprints": patch.base_fingerprints, "requests": patch.requests, "scale": patch.scale},
        sort_keys=True, ensure_ascii=False)}


def _pipeline_deltas(patch: Patch, fmt: str):
    for d in patch.deltas:
        if d.component == "encoder":
            raise PatchError(f"patch {patch.id} edits a bare encoder, not a pipeline's: {fmt} files name pipeline "
                             f"components; export --to peft and load it with PeftModel.from_pretrained(encoder, PATH)")
        if not d.module.endswith(DIFFUSERS_TEXT_MODULES):
            raise PatchError(f"{fmt} loads text-encoder LoRAs onto CLIP encoders only, and {d.component} "
                             f"({d.module}) is not one: export --to peft and load it with "
                             f"PeftModel.from_pretrained(pipe.{d.component}, PATH/{d.component})")
        yield d


def diffusers_state_dict(patch: Patch) -> dict[str, torch.Tensor]:
    """``pipe.load_lora_weights`` keys: ``<component>.<module>.lora_linear_layer.{down,up}.weight``."""
    tensors = {}
    for d in _pipeline_deltas(patch, "diffusers"):
        tensors[f"{d.component}.{d.module}.lora_linear_layer.down.weight"] = d.delta.right.T.float().contiguous()
        tensors[f"{d.component}.{d.module}.lora_linear_layer.up.weight"] = d.delta.left.float().contiguous()
    return tensors


def kohya_state_dict(patch: Patch) -> dict[str, torch.Tensor]:
    """kohya-ss keys: ``lora_te[1|2]_text_model_encoder_layers_<i>_mlp_fc2.{lora_down.weight, lora_up.weight, alpha}``."""
    deltas = list(_pipeline_deltas(patch, "kohya"))
    components = {d.component for d in deltas}
    if not components <= {"text_encoder", "text_encoder_2"}:
        raise PatchError(f"kohya names the CLIP encoders of SD 1.x/2.x and SDXL (text_encoder, text_encoder_2), not "
                         f"{', '.join(sorted(components - {'text_encoder', 'text_encoder_2'}))}: export --to diffusers")
    two = "text_encoder_2" in components
    prefix = {"text_encoder": "lora_te1" if two else "lora_te", "text_encoder_2": "lora_te2"}
    tensors = {}
    for d in deltas:
        # kohya names modules as in CLIPTextModel with its ``text_model`` level, which recent
        # transformers flatten away
        module = d.module if d.module.startswith("text_model.") else f"text_model.{d.module}"
        key = f"{prefix[d.component]}_{module.replace('.', '_')}"
        tensors[f"{key}.lora_down.weight"] = d.delta.right.T.float().contiguous()
        tensors[f"{key}.lora_up.weight"] = d.delta.left.float().contiguous()
        tensors[f"{key}.alpha"] = torch.tensor(float(d.delta.rank))
    return tensors


def peft_adapters(patch: Patch) -> dict[str, tuple[dict, dict[str, torch.Tensor]]]:
    """Per component: ``(adapter_config, adapter weights)`` for ``PeftModel.from_pretrained``.

    One LoRA per edited module; each module's rank and alpha are its own (``rank_pattern``,
    ``alpha_pattern``), so every module adds exactly its ΔW."""
    out = {}
    for component in patch.components:
        deltas = [d for d in patch.deltas if d.component == component]
        ranks = {d.module: d.delta.rank for d in deltas}
        config = {"peft_type": "LORA", "task_type": None, "base_model_name_or_path": None,
                  "r": max(ranks.values()), "lora_alpha": max(ranks.values()),
                  "target_modules": sorted(ranks), "rank_pattern": ranks, "alpha_pattern": ranks,
                  "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
                  "init_lora_weights": True}
        tensors = {}
        for d in deltas:
            tensors[f"base_model.model.{d.module}.lora_A.weight"] = d.delta.right.T.float().contiguous()
            tensors[f"base_model.model.{d.module}.lora_B.weight"] = d.delta.left.float().contiguous()
        out[component] = (config, tensors)
    return out


def to_lora(patch: Patch, fmt: str, out: str | Path) -> list[Path]:
    """Write ``patch`` as a ``fmt`` LoRA at ``out`` (a file for diffusers/kohya, a folder for
    peft); returns the files written. Every check runs before the first file is written."""
    out = Path(out)
    if fmt not in FORMATS:
        raise PatchError(f"unknown export format '{fmt}': use one of {', '.join(FORMATS)}")
    meta = provenance(patch)
    if fmt in ("diffusers", "kohya"):
        tensors = diffusers_state_dict(patch) if fmt == "diffusers" else kohya_state_dict(patch)
        atomic_save_tensors(tensors, out, meta)
        return [out]
    adapters = peft_adapters(patch)
    files = {}  # the whole folder (one adapter, or one subfolder per component), written at once
    for component, (config, tensors) in adapters.items():
        folder = "" if len(adapters) == 1 else f"{component}/"
        files[folder + PEFT_WEIGHTS] = tensors_bytes(tensors, meta)
        files[folder + PEFT_CONFIG] = json.dumps(config, indent=2, sort_keys=True) + "\n"
    write_folder(files, out, "a peft adapter", _is_peft_export, PatchError)
    return [out / name for name in files]


def _is_peft_export(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier peft export (one adapter, or one per component)."""
    return (folder / PEFT_CONFIG).is_file() or any((sub / PEFT_CONFIG).is_file() for sub in folder.iterdir()
                                                   if sub.is_dir())


#: the provenance file :func:`to_model` writes beside the merged weights
MODEL_PROVENANCE = "textedit_patch.json"


def to_model(patch: Patch, encoders: Mapping[str, EncoderAdapter], out: str | Path, *,
             history: Sequence[Patch] = ()) -> list[Path]:
    """Write each encoder ``patch`` edits with the edit merged into its weights, as a
    transformers model folder; returns the folders written.

    ``encoders``: the base model of each component the patch edits (``"encoder"`` for a bare
    encoder, else the pipeline's component names), in the dtype to write (load with
    ``dtype=None`` to keep the checkpoint's own). ``history``: the patches ``patch`` was made
    after (``apply --after``), merged first, in order. Every fingerprint is checked as
    :meth:`Patch.apply` checks it, and the encoders are reverted bit for bit afterwards.

    Layout: a bare encoder's folder is ``out`` itself, with its tokenizer; a pipeline's
    components go to ``out/<component>``, as a pipeline folder lays them out. A patch made
    with a learned anchor token (``patch.requires``) needs it added to the encoder first
    (:func:`~textedit.anchor.add_anchor`; the fingerprint check says so otherwise); the
    component's tokenizer, which then holds the token, goes to ``out/<its tokenizer folder>``.
    ``out`` is written whole or not at all: everything goes to a temporary folder beside it,
    renamed into place at the end; an earlier export there is replaced, any other existing
    folder is refused.
    """
    out = Path(out)
    missing = [c for c in patch.components if c not in encoders]
    if missing:
        raise PatchError(f"patch {patch.id} edits {', '.join(missing)}: give the base encoder of each")
    record = {"merged": [json.loads(provenance(p)["textedit_patch"]) for p in (*history, patch)]}
    folders = []
    with folder_written_whole(out, "a textedit model export", lambda f: _is_model_export(f, patch.components),
                              PatchError) as staging:
        for component in patch.components:
            adapter = encoders[component]
            folder = staging if component == ENCODER else staging / component
            with contextlib.ExitStack() as applied:  # merged in order, reverted in reverse on the way out
                for p in (*history, patch):
                    if component in p.components:
                        applied.enter_context(p.applied(adapter, component))
                library_write(out, adapter.model.save_pretrained, folder)
            # a bare encoder goes with its tokenizer; a pipeline's only where it learned an anchor
            # token (a row of the encoder and an entry of the tokenizer: both go)
            anchored = any(component in p.requires for p in (*history, patch))
            if adapter.tokenizer is not None and (component == ENCODER or anchored):
                library_write(out, adapter.tokenizer.save_pretrained, folder if component == ENCODER
                               else staging / COMPONENT_TOKENIZERS[component])
            atomic_write_text(json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                              folder / MODEL_PROVENANCE)
            folders.append(out if component == ENCODER else out / component)
    return folders


def _is_model_export(folder: Path, components: Sequence[str]) -> bool:
    """Whether ``folder`` holds an earlier :func:`to_model` export (which may be replaced)."""
    return (folder / MODEL_PROVENANCE).is_file() or any((folder / c / MODEL_PROVENANCE).is_file()
                                                         for c in components)

