"""The diffusion model as downstream verifier (``textedit verify``).

``pipelines``  the families (SD 1.x/2.x, SDXL, SD3, FLUX) as data: which text encoders each
               reads and how; detection, loading, reach warnings, editing a pipeline's own
               encoders;
``generate``   the rows (anchor, query, neutral prompts) and drawing them with fixed seeds;
``verifier``   :func:`verify`: before/after images with the same seeds, and their scores;
``metrics``    pixel change, CLIP-T, CLIP-I;
``report``     the contact sheet, ``metrics.json`` and ``index.html``.
"""

from .generate import VERIFY_NEUTRAL, VERIFY_TEMPLATES, Row, Sampling, build_rows, read_prompts_file
from .metrics import CLIPScorer, pixel_change
from .pipelines import (FAMILIES, Family, Reading, ReachWarning, detect_family, edit_pipeline, family_of,
                        load_pipeline, load_pipeline_encoder, reach_warnings)
from .report import contact_sheet, write_report
from .verifier import VerifyResult, verify

__all__ = ["CLIPScorer", "FAMILIES", "Family", "ReachWarning", "Reading", "Row", "Sampling", "VERIFY_NEUTRAL",
           "VERIFY_TEMPLATES", "VerifyResult", "build_rows", "contact_sheet", "detect_family", "edit_pipeline",
           "family_of", "load_pipeline", "load_pipeline_encoder", "pixel_change", "reach_warnings",
           "read_prompts_file", "verify", "write_report"]
