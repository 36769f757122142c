"""Hooking, in a few context managers (after baukit's nethook).

Everything textedit reads from or writes into a running encoder goes through these:

* :func:`record_inputs` / :func:`record_outputs` capture what a module reads or writes
  (the *key* is the input of an MLP down-projection, the *value* its output);
* :func:`stop_after` ends the forward pass once a module has run, so statistics for
  layers 0..i never pay for layers i+1..L;
* :func:`add_to_output` adds a vector to a module's output at chosen token positions
  (the ``optimize`` value strategy trains that vector);
* :func:`replay_outputs` runs some modules once and has them return those outputs again
  without computing (``optimize`` runs the blocks below its layer once, not at every step).

Hooks are removed when the ``with`` block ends, also on error, so nothing leaks
between edits.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, ContextManager, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


class StopForward(Exception):
    """Raised by :func:`stop_after` to cut a forward pass short; swallowed by it too."""


def record_inputs(modules: Mapping[str, nn.Module], arg: int = 0) -> ContextManager[dict[str, torch.Tensor]]:
    """Record positional argument ``arg`` of each module's forward, keyed like ``modules``.

    For ``nn.Linear`` ``arg=0`` is the input activations ``[batch, tokens, d_in]``. Each call
    overwrites the previous record, so use one forward pass per ``with`` block or read
    the dict between passes.
    """
    return _recording(modules, lambda module, store: module.register_forward_pre_hook(
        lambda _module, args: store(args[arg])))


def record_outputs(modules: Mapping[str, nn.Module]) -> ContextManager[dict[str, torch.Tensor]]:
    """Record the output tensor of each module's forward, keyed like ``modules``."""
    return _recording(modules, lambda module, store: module.register_forward_hook(
        lambda _module, _args, output: store(output)))


@contextlib.contextmanager
def _recording(modules: Mapping[str, nn.Module], attach: Callable) -> Iterator[dict[str, torch.Tensor]]:
    """``attach(module, store)`` hooks ``module`` to hand what it sees to ``store`` (which returns
    ``None``, so the hook changes nothing); the records, keyed like ``modules``, are yielded."""
    records: dict[str, torch.Tensor] = {}
    with _hooked([attach(module, functools.partial(records.__setitem__, name)) for name, module in modules.items()]):
        yield records


@contextlib.contextmanager
def _hooked(handles: list[RemovableHandle]) -> Iterator[None]:
    """The block runs with the hooks of ``handles`` in place; they are removed when it ends, also on error."""
    try:
        yield
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

    with _hooked([module.register_forward_hook(hook)]):
        try:
            yield
        except StopForward:
            pass


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

    with _hooked([module.register_forward_hook(hook)]):
        yield


@contextlib.contextmanager
def replay_outputs(modules: Sequence[nn.Module], run: Callable[[], object]) -> Iterator[None]:
    """Run ``run()`` once without gradients, stopped after the last of ``modules``, recording
    what each of ``modules`` returns; inside the block every one of them returns its recorded
    output again (the same tensors) instead of computing.

    For the blocks below a layer whose input does not change between passes: later passes
    over the same batch pay only for the blocks above. ``modules`` must run in the order
    given, and every later pass must feed the same inputs (``run``'s batch), or the replayed
    outputs are wrong. Forward hooks on the modules still fire; nothing of theirs computes.
    An empty ``modules`` replays nothing and does not call ``run``.
    """
    if not modules:
        yield
        return
    with torch.no_grad(), record_outputs(dict(enumerate(modules))) as recorded, stop_after(modules[-1]):
        run()
    missing = [i for i in range(len(modules)) if i not in recorded]
    if missing:
        raise RuntimeError(f"replay_outputs: modules {missing} did not run")
    with replaying(modules, [recorded[i] for i in range(len(modules))]):
        yield


@contextlib.contextmanager
def replaying(modules: Sequence[nn.Module], outputs: Sequence) -> Iterator[None]:
    """Inside the block each of ``modules`` returns its entry of ``outputs`` (recorded earlier)
    without computing; forward hooks on the modules still fire."""
    # an instance attribute ``forward`` shadows the class's: ``module(...)`` then returns the
    # record. One that is already there (accelerate's hooks put one) is put back afterwards
    before = [module.__dict__.get("forward") for module in modules]
    try:
        for module, output in zip(modules, outputs):
            module.forward = functools.partial(_recorded, output)
        yield
    finally:
        for module, previous in zip(modules, before):
            if previous is None:
                del module.forward
            else:
                module.forward = previous


def _recorded(output, *_args, **_kwargs):
    """A module's forward that ignores its inputs and returns ``output`` (``replaying``)."""
    return output
