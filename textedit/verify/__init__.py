"""The diffusion model as downstream verifier (``textedit verify``).

``generate``   the rows (anchor, query, neutral prompts) and drawing them with fixed seeds;
``verifier``   :func:`verify`: before/after images with the same seeds, and their scores;
``metrics``    pixel change, CLIP-T, CLIP-I;
``report``     the contact sheet, ``metrics.json`` and ``index.html``.

The pipelines themselves (families, loading, reach warnings, editing a pipeline's own
encoders) are :mod:`textedit.pipelines`.
"""

from .generate import VERIFY_NEUTRAL, VERIFY_TEMPLATES, Row, Sampling, build_rows, read_prompts_file
from .metrics import CLIPScorer, pixel_change
from .report import contact_sheet, write_report
from .verifier import VerifyResult, verify

__all__ = ["CLIPScorer", "Row", "Sampling", "VERIFY_NEUTRAL", "VERIFY_TEMPLATES", "VerifyResult", "build_rows",
           "contact_sheet", "pixel_change", "read_prompts_file", "verify", "write_report"]
