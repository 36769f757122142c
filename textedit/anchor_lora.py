"""Stage 1's optional LoRA on the denoiser, as MoKus trains one beside the anchor's embedding.

LoRA (Hu et al. 2021) adds to each target linear map ``W [out, in]`` of the denoiser (the
UNet's or the transformer's attention projections) a low-rank update::

    y = W x + (α / r) · B (A x),    A [r, in],  B [out, r]

with ``A ~ N(0, 1/r²)`` and ``B = 0`` at the start (peft's ``init_lora_weights="gaussian"``, as
diffusers' LoRA training scripts), so training starts from the pipeline's own denoiser. Only
``A`` and ``B`` train; ``W`` stays frozen. The adapter is peft's, added the way diffusers'
scripts add it (``denoiser.add_adapter(LoraConfig(...))``), so it works for any denoiser a
:class:`~textedit.anchor.DenoisingObjective` trains through (``pipe.unet`` or
``pipe.transformer``): the objective calls the same module, now with the adapter in it.

The result is saved as diffusers saves it (``get_peft_model_state_dict`` and the pipeline
class's ``save_lora_weights``: ``pytorch_lora_weights.safetensors`` with keys
``unet.<module>.lora_A.weight``/``transformer.…`` and the ``LoraConfig`` as metadata, which is
where the loader reads ``α``), so ``pipe.load_lora_weights(folder)`` on a fresh pipeline
loads it. The file is then re-written with a sorted header and a checksum
(:func:`~textedit.io.atomic_save_tensors`): safetensors orders metadata by a hash map and
peft keeps ``target_modules`` as a set, so diffusers' own bytes vary from run to run.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .errors import ModelLoadError, SpecError, TexteditError
from .io import atomic_save_tensors, library_write, read_tensors

#: the file name of diffusers' LoRA weights (``diffusers.loaders.lora_base.LORA_WEIGHT_NAME_SAFE``)
LORA_FILE = "pytorch_lora_weights.safetensors"
#: the adapter name a LoRA learned beside an anchor is loaded under (``verify --anchor-lora``)
ADAPTER_NAME = "anchor"

#: the attention projections of a diffusers attention block (query, key, value, output)
ATTENTION = ("to_k", "to_q", "to_v", "to_out.0")
#: the same with the text stream's projections of a joint (MM-DiT) attention block
JOINT_ATTENTION = (*ATTENTION, "add_k_proj", "add_q_proj", "add_v_proj", "to_add_out")
#: default LoRA targets by denoiser class: the attention defaults of diffusers' LoRA training
#: scripts (train_text_to_image_lora, train_dreambooth_lora_sdxl, _qwen_image, _sd3); any
#: other denoiser gets ``ATTENTION``
LORA_TARGETS = {
    "UNet2DConditionModel": ATTENTION,
    "QwenImageTransformer2DModel": ATTENTION,
    "SD3Transformer2DModel": JOINT_ATTENTION,
    "FluxTransformer2DModel": JOINT_ATTENTION,
}


class LoraError(TexteditError):
    """A denoiser LoRA file that cannot be used (missing, unreadable, not for this pipeline)."""


@dataclass(frozen=True)
class LoraSettings:
    """``rank`` r, ``alpha`` α (the update is scaled by α / r), the target modules' names
    (peft matches a name against the end of each module path), the learning rate."""

    rank: int
    alpha: float
    targets: tuple[str, ...]
    lr: float

    def record(self) -> dict:
        return {"rank": self.rank, "alpha": self.alpha, "target_modules": list(self.targets), "lr": self.lr}


def lora_settings(denoiser: torch.nn.Module, rank: int, alpha: float | None, targets: Sequence[str] | None,
                  lr: float) -> LoraSettings:
    """Settings with the defaults filled in: ``α = r`` (scale 1, as diffusers' scripts), the
    denoiser's default targets (:data:`LORA_TARGETS`)."""
    return LoraSettings(rank, float(alpha if alpha is not None else rank),
                        tuple(targets) if targets else LORA_TARGETS.get(type(denoiser).__name__, ATTENTION), lr)


def require_peft(option: str) -> None:
    """One line naming the extra to install when ``option`` needs peft and it is missing."""
    try:
        import peft  # noqa: F401  # deferred: optional (textedit[lora]), and only a LoRA needs it
    except ImportError:
        raise TexteditError(f"{option} needs peft: pip install textedit[lora]") from None


def denoiser_component(pipe) -> str:
    """The pipeline component that denoises: ``unet`` (Stable Diffusion) or ``transformer``."""
    return "unet" if getattr(pipe, "unet", None) is not None else "transformer"


def add_denoiser_lora(pipe, settings: LoraSettings) -> list[torch.nn.Parameter]:
    """Add a fresh LoRA adapter to ``pipe``'s denoiser (its other weights frozen); return its
    parameters. Draws ``A`` from torch's global generator (seed it first). Refuses, in one
    line and before anything trains, targets that match no module and pipelines whose class
    cannot save or load a LoRA on that denoiser."""
    from peft import LoraConfig  # deferred: optional, and only a LoRA needs it

    name = denoiser_component(pipe)
    denoiser = getattr(pipe, name)
    if name not in getattr(type(pipe), "_lora_loadable_modules", ()):
        raise ModelLoadError(f"{type(pipe).__name__} has no diffusers LoRA loader for its {name}: "
                             "learn the anchor without --lora-rank")
    modules = [path for path, _ in denoiser.named_modules()]
    for target in settings.targets:
        if not any(path == target or path.endswith("." + target) for path in modules):
            raise SpecError(f"LoRA target '{target}' matches no module of the {type(denoiser).__name__}")
    denoiser.requires_grad_(False)
    try:
        denoiser.add_adapter(LoraConfig(r=settings.rank, lora_alpha=settings.alpha, init_lora_weights="gaussian",
                                        target_modules=list(settings.targets)))
    except ValueError as exc:  # peft: a target that is not a layer it can adapt
        raise SpecError(f"LoRA targets {', '.join(settings.targets)}: {str(exc).splitlines()[0]}") from None
    return [p for p in denoiser.parameters() if p.requires_grad]


def save_denoiser_lora(pipe, path: str | Path) -> None:
    """Write the denoiser's LoRA to ``path`` (a ``.safetensors`` file) in diffusers' format.

    diffusers' ``save_lora_weights`` writes it into a temporary folder beside ``path``; the
    same tensors and metadata are then written to ``path`` atomically with a sorted header.
    """
    from peft.utils import get_peft_model_state_dict  # deferred: optional, and only a LoRA needs it

    path = Path(path)
    name = denoiser_component(pipe)
    denoiser = getattr(pipe, name)
    config = denoiser.peft_config["default"].to_dict()
    # sets (target_modules) become sorted lists: diffusers would list them in hash order
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        library_write(path, type(pipe).save_lora_weights, folder,
                      **{f"{name}_lora_layers": get_peft_model_state_dict(denoiser),
                         f"{name}_lora_adapter_metadata": config})
        tensors, metadata = read_tensors(folder / LORA_FILE, LoraError, "LoRA weights")
        atomic_save_tensors(tensors, path, metadata)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def lora_file(path: str | Path) -> Path:
    """The LoRA weights file ``path`` names: the file itself, or ``LORA_FILE`` in a folder."""
    path = Path(path)
    file = path / LORA_FILE if path.is_dir() else path
    if not file.is_file():
        raise LoraError(f"anchor LoRA '{path}' does not exist" if not path.exists() else
                        f"anchor LoRA folder '{path}' has no {LORA_FILE}")
    return file


def load_anchor_lora(pipe, path: str | Path) -> Path:
    """Load the denoiser LoRA at ``path`` (a file or the folder holding ``LORA_FILE``) into
    ``pipe`` with diffusers' ``pipe.load_lora_weights``, under the adapter name ``anchor``, so
    that the pipeline draws with the look learned beside the anchor. Returns the file.

    One-line :class:`LoraError` when the file is unreadable, or holds no LoRA weights for
    this pipeline's denoiser (diffusers only warns about keys it does not recognise).
    """
    require_peft("--anchor-lora")
    file = lora_file(path)
    read_tensors(file, LoraError, "anchor LoRA")  # readable, and its checksum holds
    if not hasattr(pipe, "load_lora_weights"):
        raise LoraError(f"{type(pipe).__name__} cannot load a LoRA (it has no load_lora_weights)")
    name = denoiser_component(pipe)
    try:
        pipe.load_lora_weights(str(file), adapter_name=ADAPTER_NAME)
    except (ValueError, KeyError, RuntimeError) as exc:  # diffusers / peft: keys or shapes of another model
        raise LoraError(f"anchor LoRA '{file}' does not fit {type(pipe).__name__}'s {name}: "
                        f"{str(exc).splitlines()[0][:160]}") from None
    if ADAPTER_NAME not in getattr(getattr(pipe, name), "peft_config", {}):
        raise LoraError(f"anchor LoRA '{file}' holds no LoRA weights for {type(pipe).__name__}'s {name}")
    return file
