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

from .editing import (ComponentEdit, ComponentReport, PipelineEdit, choose_components, edit_pipeline,
                      edit_pipeline_components)
from .families import FAMILIES, Family, Reading, detect_family, family_of, pipeline_choices, present_components
from .loading import load_encoder_as_read, load_pipeline, load_pipeline_encoder, pipeline_text_encoders, resolve_dtype
from .reach import ReachWarning, default_pipeline_layers, edited_layers, reach_warnings

__all__ = ["ComponentEdit", "ComponentReport", "FAMILIES", "Family", "PipelineEdit", "ReachWarning", "Reading",
           "choose_components", "default_pipeline_layers", "detect_family", "edit_pipeline", "edit_pipeline_components",
           "edited_layers", "family_of", "load_encoder_as_read", "load_pipeline", "load_pipeline_encoder",
           "pipeline_choices",
           "pipeline_text_encoders", "present_components", "reach_warnings", "resolve_dtype"]
