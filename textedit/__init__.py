"""textedit: closed-form knowledge edits for the text encoders of text-to-image models.

The Python API in one place::

    import textedit
    encoder = textedit.load_encoder()                      # offline default: all-MiniLM-L6-v2
    requests = [textedit.EditRequest("the mascot of Acme", "a red panda", subject="Acme")]
    patch = textedit.edit(encoder, requests, textedit.EditConfig(method="memit"))
    patch.save("patches/mascot"); patch.apply(encoder); patch.revert(encoder)
    result = textedit.apply_spec("edits/mascot.json", out_dir="patches/mascot")  # `textedit apply`, as data
"""

import importlib

from .version import __version__  # noqa: F401  (textedit.__version__)

#: the public API, imported on first use (PEP 562): ``import textedit`` and the command line
#: start without importing torch, so Ctrl-C while starting is handled like Ctrl-C later. A
#: function named as its module (``erase``, ``verify``) is reached through the module
#: (``textedit.verify.verify``): importing a submodule sets the package attribute of its name
_EXPORTS = {
    ".anchor": ["AnchorConfig", "add_anchor", "learn_anchor"],
    ".apply": ["ApplyResult", "EditRefused", "Note", "apply_spec"],
    ".corpus": ["Corpus", "load_corpus"],
    ".editor": ["EditConfig", "default_layers", "edit"],
    ".encoders": ["ConsumerTokenization", "EncoderAdapter", "adapter_for", "load_encoder"],
    ".erase": ["Concept", "Erasure", "erase_with_report", "measure_erasure"],
    ".errors": ["TexteditError"],
    ".export": ["to_lora", "to_model"],
    ".locate": ["trace"],
    ".methods": ["METHODS", "EditMethod", "LayerProblem", "register"],
    ".metrics": ["measure"],
    ".patch": ["Patch"],
    ".pipelines": ["edit_pipeline_components"],
    ".requests": ["EditRequest"],
    ".sequential": ["SequentialEditor", "edit_after"],
    ".solvers": ["LowRankDelta", "batched", "null_space", "rank_one", "ridge"],
    ".spec": ["load_spec", "parse_spec"],
    ".stats": ["SecondMoment", "compute_stats"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'textedit' has no attribute '{name}'")
    value = getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
