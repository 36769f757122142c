"""Loading a pipeline of a known family, one of its text encoders, and what it holds.

One loader for every command that needs a whole pipeline (``verify`` draws with it,
``learn-anchor`` trains through it): the family's own pipeline class, safetensors only,
in a dtype chosen per device, with every failure one :class:`ModelLoadError` line.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch

from ..encoders import COMPONENT_TOKENIZERS, DTYPES, load_encoder
from ..encoders.base import EncoderAdapter
from ..errors import ModelLoadError, SpecError
from .families import Family, detect_family, read_model_index


def resolve_dtype(dtype: str | None, device: str, family: Family) -> torch.dtype:
    """A ``--dtype`` name as a torch dtype; ``None``: the family's default on ``device``."""
    if dtype is None:
        return family.default_dtype(device)
    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


@contextlib.contextmanager
def _quiet_diffusers() -> Iterator[None]:
    """No diffusers load bar or warnings while loading (they would break the CLI's one-line
    errors); the previous settings come back afterwards."""
    from diffusers.utils import logging as diffusers_logging  # deferred: diffusers takes seconds to import

    bar_was_on, verbosity = diffusers_logging.is_progress_bar_enabled(), diffusers_logging.get_verbosity()
    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(verbosity)
        if bar_was_on:
            diffusers_logging.enable_progress_bar()


def load_pipeline(ref: str | Path, family: Family, *, device: str = "cpu", dtype: torch.dtype | None = None):
    """``from_pretrained`` of the family's pipeline class (safetensors only), moved to ``device``.

    ``dtype`` ``None``: :meth:`Family.default_dtype` (float32 on the CPU, the model cards'
    half type on an accelerator). The pipeline's own progress bar is turned off."""
    import diffusers  # deferred: diffusers takes seconds to import, and only loading a pipeline needs it
    from diffusers.utils import deprecation_utils
    cls = getattr(diffusers, family.pipeline_class)
    # diffusers renamed torch_dtype to dtype (warning on the old name); older releases know only torch_dtype
    dtype_key = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
    local = Path(str(ref)).expanduser()
    try:
        with _quiet_diffusers():
            pipe = cls.from_pretrained(str(local) if local.is_dir() else str(ref), use_safetensors=True,
                                       **{dtype_key: dtype or family.default_dtype(device)})
        pipe = pipe.to(device)
    except Exception as exc:
        raise ModelLoadError(f"cannot load {family.title} pipeline '{ref}': "
                             f"{(str(exc).strip() or type(exc).__name__).splitlines()[0][:300]}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_pipeline_encoder(ref: str | Path, component: str, family: Family, *, dtype: str | torch.dtype | None = None,
                          device: str = "cpu") -> EncoderAdapter:
    """One text encoder of a pipeline, wrapped so it tokenizes and reads out as that pipeline does."""
    if component not in COMPONENT_TOKENIZERS:
        raise SpecError(f"unknown component '{component}': use one of {', '.join(COMPONENT_TOKENIZERS)} or all")
    reading = family.reading(component)
    entry = read_model_index(ref).get(component)  # the class the pipeline loads it as (a hub id's too)
    # several read layers are concatenated per token in the adapter's view, stacked ones too
    # (HiDream's Llama): per token the same numbers, which is all keys, targets and measures need
    adapter = load_encoder(ref, component=component, dtype=dtype, device=device,
                           hidden_state_index=reading.hidden_state if reading.hidden_state is not None else -1,
                           model_class=entry[1] if isinstance(entry, list) and len(entry) == 2 else None)
    adapter.consumer = reading.for_tokenizer(adapter.tokenizer).consumer  # a chat template comes from the tokenizer
    if reading.pads_with_eos:  # as the pipeline's __init__ does to its tokenizer (Llama 3.1 has no padding token)
        adapter.tokenizer.pad_token = adapter.tokenizer.eos_token
    return adapter


def pipeline_text_encoders(pipe, family: Family) -> list[tuple[str, object, torch.nn.Module]]:
    """``(component, tokenizer, text encoder)`` of every encoder of ``family`` that ``pipe``
    holds, in the family's order (an SD3 pipeline may have dropped its T5)."""
    return [(component, getattr(pipe, COMPONENT_TOKENIZERS[component]), getattr(pipe, component))
            for component in family.components if getattr(pipe, component, None) is not None]


def load_encoder_as_read(ref: str | Path, component: str | None = None, *, dtype: str | torch.dtype | None = None,
                         device: str = "cpu", trust_remote_code: bool = False) -> EncoderAdapter:
    """``load_encoder``, except that a text encoder of a local pipeline folder of a known family
    is read as that pipeline reads it (:func:`load_pipeline_encoder`: Qwen-Image's chat
    template, SDXL's penultimate state), so that ``--model PIPELINE --component C`` edits
    what ``--pipeline-path`` would."""
    folder = Path(str(ref)).expanduser()
    if component is not None and (folder / "model_index.json").is_file():
        try:
            family = detect_family(folder)
        except SpecError:  # a pipeline class textedit has no family for: its encoder read as it loads
            family = None
        if family is not None and component in family.readings and not trust_remote_code:
            return load_pipeline_encoder(folder, component, family, dtype=dtype, device=device)
    return load_encoder(ref, component=component, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
