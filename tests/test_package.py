"""The public API (``textedit/__init__.py``): small, complete, and loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import textedit


def test_every_exported_name_resolves_to_the_object_of_its_module():
    import importlib

    for name in textedit.__all__:
        module = importlib.import_module(textedit._MODULE_OF[name], "textedit")
        assert getattr(textedit, name) is getattr(module, name), name


def test_the_api_covers_each_feature():
    wanted = {"load_encoder", "edit", "EditConfig", "Patch", "Erasure", "erase_with_report", "SequentialEditor",
              "edit_after", "edit_pipeline_components", "trace", "to_lora", "register", "METHODS",
              "batched", "null_space", "rank_one", "ridge", "learn_anchor", "AnchorConfig", "add_anchor"}
    assert wanted <= set(textedit.__all__)
    import importlib

    assert callable(importlib.import_module("textedit.erase").erase)
    assert callable(importlib.import_module("textedit.verify").verify)


def test_no_exported_name_is_also_a_submodule():
    import pkgutil

    submodules = {m.name for m in pkgutil.iter_modules(textedit.__path__)}
    assert not submodules & set(textedit.__all__)


def test_import_textedit_loads_no_torch():
    code = "import sys, textedit; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"
