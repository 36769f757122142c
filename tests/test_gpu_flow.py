"""``benchmarks/gpu_flow.py --smoke`` on the CPU: the whole flow (statistics, every registered
method, apply, export, verify on the tiny SD pipeline, learn-anchor with and without the LoRA) in
float32 and bfloat16, each step's figures checked, as CI's stand-in for the GPU run."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from textedit.methods import METHODS

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_flow.py"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[int, list[dict]]:
    """(exit status, rows) of the smoke run, in this process (torch is already imported)."""
    spec = importlib.util.spec_from_file_location("gpu_flow", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # (its dataclasses look their module up there)
    spec.loader.exec_module(script)
    out = tmp_path_factory.mktemp("gpu_flow")
    status = script.main(["--smoke", "--device", "cpu", "--json", str(out / "rows.json"), "--work", str(out / "work")])
    return status, json.loads((out / "rows.json").read_text())


def test_every_step_runs_in_both_dtypes_and_passes(smoke):
    status, rows = smoke
    assert status == 0, [r for r in rows if not r["ok"]]
    steps = {(r["step"], r["dtype"]) for r in rows}
    for dtype in ("float32", "bfloat16"):
        expected = {"load t5", "statistics t5", "apply memit t5", "export memit t5", "verify sd",
                    *(f"edit {m} t5" for m in METHODS)}
        assert {(s, dtype) for s in expected} <= steps
    assert {("learn-anchor sd", "float32"), ("learn-anchor sd + LoRA", "float32")} <= steps
    assert all(r["device"] == "cpu" and r["seconds"] >= 0 for r in rows)


def test_the_figures_say_what_the_checks_claim(smoke):
    """Finite patches that move their queries (memit's toward the targets), float64 sums close to
    the float32 ones, bfloat16's rounding visible where it belongs, a bit-exact revert, an
    export that reads as the applied patch, a verify that changes the conditioning."""
    _, rows = smoke
    fig = {(r["step"], r["dtype"]): r["figures"] for r in rows}
    for dtype in ("float32", "bfloat16"):
        for method in METHODS:
            edited = fig[(f"edit {method} t5", dtype)]
            assert edited["finite"] and edited["shift"] > 0 and math.isfinite(edited["delta_norm"])
        memit = fig[("edit memit t5", dtype)]
        assert memit["after"] > memit["before"] + 0.01, memit  # the queries reach toward their targets
        assert fig[("apply memit t5", dtype)]["revert_exact"]
        assert fig[("export memit t5", dtype)]["gap"] < 1e-2
        assert fig[("verify sd", dtype)]["finite"] and fig[("verify sd", dtype)]["conditioning_change"] > 1e-3
    assert fig[("statistics t5", "float32")]["error"] == 0.0  # the same sums as the CPU's float32 reference
    assert 0 < fig[("statistics t5", "bfloat16")]["error"] < 0.05  # bfloat16 keys: close, not equal
    assert fig[("apply memit t5", "float32")]["landed_error"] < 1e-6 < fig[("apply memit t5", "bfloat16")]["landed_error"]
    for lora in ("", " + LoRA"):
        anchor = fig[(f"learn-anchor sd{lora}", "float32")]
        assert anchor["finite"] and anchor["written"]
    assert fig[("learn-anchor sd + LoRA", "float32")]["after"] < fig[("learn-anchor sd + LoRA", "float32")]["before"]
