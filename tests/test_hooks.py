"""The hooks: record what modules read and write, stop a forward pass early, add to an output;
every hook is gone when its block ends, also on error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from textedit.hooks import add_to_output, record_inputs, record_outputs, stop_after


class Blocks(nn.Module):
    """Three linear layers in a row, saying which ran."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.first, self.middle, self.last = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)
        self.ran: list[str] = []

    def forward(self, x):
        self.ran.append("first")
        h = self.first(x)
        self.ran.append("middle")
        h = self.middle(h)
        self.ran.append("last")
        return self.last(h)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_records_are_what_each_module_reads_and_writes():
    model, x = Blocks(), torch.randn(2, 5, 3)
    modules = {"a": model.first, "b": model.last}
    with torch.no_grad(), record_inputs(modules) as inputs, record_outputs(modules) as outputs:
        y = model(x)
        assert _hooks(model) == 4
    assert _hooks(model) == 0
    torch.testing.assert_close(inputs["a"], x)
    torch.testing.assert_close(outputs["a"], model.first(x))
    torch.testing.assert_close(inputs["b"], model.middle(model.first(x)))
    torch.testing.assert_close(outputs["b"], y)


def test_record_inputs_takes_the_positional_argument_asked_for():
    class Two(nn.Module):
        def forward(self, a, b):
            return a + b

    two = Two()
    with record_inputs({"two": two}, arg=1) as seen:
        two(torch.zeros(1), torch.ones(1))
    assert torch.equal(seen["two"], torch.ones(1))


def test_stop_after_runs_nothing_past_the_module_and_none_stops_nothing():
    model = Blocks()
    with record_outputs({"middle": model.middle}) as seen, stop_after(model.middle):
        model(torch.randn(1, 3))
        pytest.fail("the forward pass went on past the module")  # never reached: the block ends there
    assert model.ran == ["first", "middle"] and seen["middle"].shape == (1, 4) and _hooks(model) == 0
    model.ran.clear()
    with stop_after(None):
        model(torch.randn(1, 3))
    assert model.ran == ["first", "middle", "last"]


def test_add_to_output_adds_during_the_block_only_also_to_a_tuple():
    model, x = Blocks(), torch.randn(2, 3)
    plain = model(x)
    shift = torch.tensor([1.0, 0.0, 0.0, -2.0])
    with torch.no_grad(), add_to_output(model.middle, lambda y: shift.expand_as(y)):
        shifted = model(x)
    torch.testing.assert_close(shifted - plain, (model.last.weight @ shift).expand_as(plain), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(x), plain)

    class Pair(nn.Module):  # returns a tuple, as a transformer block does: the delta goes to its first element
        def forward(self, x):
            return x, "extra"

    pair = Pair()
    with add_to_output(pair, lambda y: 2 * y):
        out = pair(torch.ones(2))
    assert torch.equal(out[0], torch.full((2,), 3.0)) and out[1] == "extra"


def test_hooks_are_removed_when_the_block_fails():
    model = Blocks()
    with pytest.raises(RuntimeError, match="boom"):
        with record_inputs({"a": model.first}), record_outputs({"b": model.last}), \
                add_to_output(model.middle, lambda y: y), stop_after(model.last):
            raise RuntimeError("boom")
    assert _hooks(model) == 0
