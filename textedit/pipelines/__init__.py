"""Diffusion pipelines: what each family reads from its text encoders, and editing them there.

``families``  the families (SD 1.x/2.x, SDXL, SD3, FLUX, Qwen-Image) as data: which text
              encoders each reads and how (:class:`Reading`: template, mask, hidden state,
              tokens read), detection from ``model_index.json``;
``loading``   one loader for a whole pipeline (``verify``, ``learn-anchor``), one for a
              single encoder as its pipeline reads it, the encoders a pipeline holds;
``reach``     which outputs an edit of a layer reaches, the warnings, the default layers;
``conditioning`` what the denoiser receives for a prompt, for ``verify``'s conditioning scores;
``editing``   editing a pipeline's own encoders: :func:`edit_pipeline` (one part per
              component) and :func:`edit_pipeline_components` (``apply --pipeline-path``:
              the parts measured and combined into one patch).

Used by ``textedit apply --pipeline-path``, :mod:`textedit.verify` and :mod:`textedit.anchor`.
"""

import importlib

#: the package's API by module, imported on first use (PEP 562), as ``textedit/__init__.py``
#: does: ``families`` imports no torch, so the command line reads the families (``--pipeline``'s
#: choices) without importing the editing and loading code, which import torch
_EXPORTS = {
    ".editing": ["ComponentEdit", "ComponentReport", "PipelineEdit", "choose_components", "edit_pipeline",
                 "edit_pipeline_components"],
    ".families": ["FAMILIES", "Family", "Reading", "detect_family", "family_of", "pipeline_choices",
                  "present_components"],
    ".loading": ["load_encoder_as_read", "load_pipeline", "load_pipeline_encoder", "pipeline_text_encoders",
                 "resolve_dtype"],
    ".reach": ["ReachWarning", "default_pipeline_layers", "edited_layers", "reach_warnings"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module '{__name__}' has no attribute '{name}'")
    value = getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
