"""Hooking, in a few context managers (after baukit's nethook).

Everything textedit reads from or writes into a running encoder goes through these:

* :func:`record_inputs` / :func:`record_outputs` capture what a module reads or writes
  (the *key* is the input of an MLP down-projection, the *value* its output);
* :func:`stop_after` ends the forward pass once a module has run, so statistics for
  layers 0..i never pay for layers i+1..L;
* :func:`add_to_output` adds a vector to a module's output at chosen token positions
  (the ``optimize`` value strategy trains that vector).

Hooks are removed when the ``with`` block ends, also on error, so nothing leaks
between edits.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Mapping

import torch
from torch import nn


class StopForward(Exception):
    """Raised by :func:`stop_after` to cut a forward pass short; swallowed by it too."""


@contextlib.contextmanager
def record_inputs(modules: Mapping[str, nn.Module], arg: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Record positional argument ``arg`` of each module's forward, keyed like ``modules``.

    For ``nn.Linear`` ``arg=0`` is the input activations ``[batch, tokens, d_in]``. Each call
    overwrites the previous record, so use one forward pass per ``with`` block or read
    the dict between passes.
    """
    records: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in modules.items():
        def hook(_module, args, _name=name):
            records[_name] = args[arg]
        handles.append(module.register_forward_pre_hook(hook))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def record_outputs(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output tensor of each module's forward, keyed like ``modules``."""
    records: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in modules.items():
        def hook(_module, _args, output, _name=name):
            records[_name] = output
        handles.append(module.register_forward_hook(hook))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def stop_after(module: nn.Module | None) -> Iterator[None]:
    """Stop the forward pass right after ``module`` has run (no-op for ``None``).

    The model call inside the block raises :class:`StopForward`, which this context
    swallows, so code after the call inside the block does not run::

        with record_inputs(mods) as keys, stop_after(deepest):
            model(**batch)
        use(keys)
    """
    if module is None:
        yield
        return

    def hook(_module, _args, _output):
        raise StopForward

    handle = module.register_forward_hook(hook)
    try:
        yield
    except StopForward:
        pass
    finally:
        handle.remove()


@contextlib.contextmanager
def add_to_output(module: nn.Module, delta_fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the output ``y`` of ``module`` with ``y + delta_fn(y)`` during the block.

    ``delta_fn`` returns a tensor of ``y``'s shape (zero where nothing is added); it is
    how a trainable vector is injected at chosen token positions. A module that returns a
    tuple (a transformer block) has the delta added to its first element, the hidden states.
    """
    def hook(_module, _args, output):
        if isinstance(output, tuple):
            return (output[0] + delta_fn(output[0]),) + output[1:]
        return output + delta_fn(output)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
