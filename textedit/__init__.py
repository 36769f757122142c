"""textedit: closed-form knowledge edits for the text encoders of text-to-image models.

The Python API in one place::

    import textedit
    encoder = textedit.load_encoder()                      # offline default: all-MiniLM-L6-v2
    requests = [textedit.EditRequest("the mascot of Acme", "a red panda", subject="Acme")]
    patch = textedit.edit(encoder, requests, textedit.EditConfig(method="memit"))
    patch.save("patches/mascot"); patch.apply(encoder); patch.revert(encoder)
"""

__version__ = "0.1.0"

from .corpus import Corpus, load_corpus  # noqa: E402
from .editor import EditConfig, default_layers, edit  # noqa: E402
from .encoders import ConsumerTokenization, EncoderAdapter, adapter_for, load_encoder  # noqa: E402
from .errors import TexteditError  # noqa: E402
from .metrics import measure  # noqa: E402
from .patch import Patch  # noqa: E402
from .requests import EditRequest  # noqa: E402
from .solvers import LowRankDelta, batched, null_space, rank_one, ridge  # noqa: E402
from .spec import load_spec, parse_spec  # noqa: E402
from .stats import SecondMoment, compute_stats  # noqa: E402

__all__ = ["Corpus", "ConsumerTokenization", "EditConfig", "EditRequest", "EncoderAdapter", "LowRankDelta", "Patch",
           "SecondMoment", "TexteditError", "adapter_for", "batched", "compute_stats", "default_layers", "edit",
           "load_corpus", "load_encoder", "load_spec", "measure", "null_space", "parse_spec", "rank_one", "ridge"]
