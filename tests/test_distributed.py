"""Distributed statistics: ranks that each read their shard of the corpus end with the sums and
counts of one process over all of it (to float64 rounding), rank 0 alone writes the cache, and
`textedit stats` under torchrun with 2 gloo processes writes what one process computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from textedit.corpus import Corpus, load_corpus
from textedit.distributed import Shard, init_from_env
from textedit.encoders import load_encoder
from textedit.stats import StatsKey, compute_stats, consumer_tag

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n, world", [(0, 2), (1, 2), (7, 2), (40, 3), (5, 8)])
def test_shards_cover_the_corpus_once(n, world):
    shards = [Shard(rank, world).bounds(n) for rank in range(world)]
    assert shards[0][0] == 0 and shards[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
    assert max(e - b for b, e in shards) - min(e - b for b, e in shards) <= 1


@pytest.mark.parametrize("world", [None, "1"])
def test_single_process_needs_no_group(monkeypatch, world):
    """Without torchrun (no WORLD_SIZE, or 1) no process group starts and nothing is sharded."""
    import torch.distributed as dist
    from textedit.distributed import current_shard

    if world is None:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("WORLD_SIZE", world)
    assert init_from_env() is None
    assert not (dist.is_available() and dist.is_initialized())
    assert current_shard() is None


def test_a_world_without_torchrun_variables_is_one_line(monkeypatch):
    """WORLD_SIZE > 1 set by hand, without torchrun's RANK / MASTER_ADDR / MASTER_PORT."""
    from textedit.errors import TexteditError

    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TexteditError, match="RANK, MASTER_ADDR, MASTER_PORT is not set: launch with torchrun"):
        init_from_env()


def test_a_world_without_torch_distributed_is_one_line(monkeypatch):
    import textedit.distributed as distributed
    from textedit.errors import TexteditError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed.dist, "is_available", lambda: False)
    with pytest.raises(TexteditError, match="WORLD_SIZE > 1 but this torch build has no torch.distributed"):
        init_from_env()


#: one torchrun rank, light (torch and textedit.distributed only): start the group from the
#: environment, reduce in place, report as JSON, leave the group
GLOO_RANK = r"""
import json, torch, torch.distributed as dist
from textedit.distributed import Shard, current_shard, init_from_env, shutdown
shard = init_from_env()
sums = torch.arange(6, dtype=torch.float64).reshape(2, 3) * (shard.rank + 1) + 0.25
count = torch.tensor([2**53 + 1 + shard.rank])  # exact in int64, not in float64
reduced = shard.all_reduce_sum(sums)
shard.all_reduce_sum(count)
shard.barrier()
report = {"shard": [shard.rank, shard.world_size], "current": current_shard() == shard, "main": shard.is_main,
          "backend": dist.get_backend(), "in_place": reduced is sums, "sums": sums.tolist(), "count": int(count[0])}
shutdown()
report["left"] = not dist.is_initialized()
print(json.dumps(report))
"""


def test_gloo_group_from_torchrun_variables_sums_in_place(tmp_path):
    """Two processes with torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
    init_from_env starts a gloo group and names each process's shard, all_reduce_sum adds the
    ranks' float64 tensors in place and int64 counts exactly, and shutdown leaves the group."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "PYTHONPATH": str(REPO)}
    ranks = [subprocess.Popen([sys.executable, "-c", GLOO_RANK], env={**env, "RANK": str(rank)}, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(2)]
    outputs = [rank.communicate(timeout=120) for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0], [err[-2000:] for _, err in outputs]
    reports = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    expected = (torch.arange(6, dtype=torch.float64).reshape(2, 3) * 3 + 0.5).tolist()  # exact: dyadic
    for rank, report in enumerate(reports):
        assert report == {"shard": [rank, 2], "current": True, "main": rank == 0, "backend": "gloo", "in_place": True,
                          "sums": expected, "count": 2 * (2**53 + 1) + 1, "left": True}


class ThreadGroup:
    """A process group of threads: ``all_reduce_sum`` adds every rank's tensor, in rank order."""

    def __init__(self, world_size: int):
        self.gate = threading.Barrier(world_size, timeout=60)
        self.slots: list[torch.Tensor | None] = [None] * world_size

    def all_reduce_sum(self, rank: int, tensor: torch.Tensor) -> torch.Tensor:
        self.slots[rank] = tensor.clone()
        self.gate.wait()  # every rank's share is in
        total = self.slots[0].clone()
        for share in self.slots[1:]:
            total += share
        self.gate.wait()  # every rank has read the shares before any of them is replaced
        tensor.copy_(total)
        return tensor


@dataclass(frozen=True)
class ThreadShard(Shard):
    """:class:`Shard` whose collectives run in a :class:`ThreadGroup` instead of torch.distributed."""

    group: ThreadGroup = field(default=None, compare=False, repr=False)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.group.all_reduce_sum(self.rank, tensor)

    def barrier(self) -> None:
        self.group.gate.wait()


def prompts_done(path: Path) -> int | None:
    """How many prompts the statistics cache file at ``path`` covers (``None``: no file)."""
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as f:
        return int(f.metadata()["prompts_done"])


def run_ranks(monkeypatch, world_size: int, work) -> list:
    """``work(rank)`` in one thread per rank, each seeing its own shard as the running group
    (``textedit.stats.current_shard``); returns their results in rank order."""
    group, local = ThreadGroup(world_size), threading.local()
    monkeypatch.setattr("textedit.stats.current_shard", lambda: getattr(local, "shard", None))
    results, errors = [None] * world_size, []

    def main(rank):
        local.shard = ThreadShard(rank, world_size, group)
        try:
            results[rank] = work(rank)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(exc)
            group.gate.abort()  # the other ranks stop waiting for this one

    threads = [threading.Thread(target=main, args=(rank,)) for rank in range(world_size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("world_size, batch_size", [(2, 5), (3, 1), (2, 3)])
def test_sharded_ranks_end_with_the_single_process_statistics(monkeypatch, tmp_path, bert_path, world_size,
                                                              batch_size):
    """Each rank reads only its shard (40 prompts: 20 + 20, or 13 + 13 + 14) and every rank returns
    the statistics one process computes over the whole corpus: the same token count, and sums equal
    to float64 rounding where the shards' batches coincide with the single run's (so the float32
    keys do), to the float32 noise of other padding (≈ 1e-9) where they do not (20 prompts in
    batches of 3: each shard ends in a short batch). A partial cache from an interrupted
    single-process run is not resumed (it covers a prefix, not a shard), and rank 0 alone writes
    the cache, once per layer, with the summed statistics."""
    import textedit.stats as stats_module

    corpus = Corpus(tuple(load_corpus(limit=40).prompts), "test-40")
    single = compute_stats(load_encoder(str(bert_path)), [0, 1], corpus, batch_size=batch_size, use_cache=False)

    interrupted, calls = load_encoder(str(bert_path)), []
    real_forward = interrupted.forward

    def failing_forward(batch, **kwargs):
        calls.append(len(batch))
        if len(calls) > 2:
            raise RuntimeError("simulated interruption")
        return real_forward(batch, **kwargs)

    interrupted.forward = failing_forward
    with pytest.raises(RuntimeError, match="simulated"):
        compute_stats(interrupted, [1], corpus, batch_size=batch_size, cache_dir=tmp_path, checkpoint_seconds=0)
    fingerprint = interrupted.fingerprint()
    reading = consumer_tag(interrupted.consumer)
    partial = StatsKey(fingerprint, 1, corpus.hash, "prompt", "float32", reading).path(tmp_path)
    assert prompts_done(partial) == 2 * batch_size  # a prefix waits to be resumed

    writes, read, cached_on_return = [], {}, {}
    real_write = stats_module._write_cache
    paths = [StatsKey(fingerprint, layer, corpus.hash, "prompt", "float32", reading).path(tmp_path) for layer in (0, 1)]

    def spy_write(path, key, moment, done, total):
        writes.append((stats_module.current_shard().rank, key.layer, done, moment.count))
        time.sleep(0.2)  # a slow disk: a rank that does not wait for rank 0 returns before the cache exists
        real_write(path, key, moment, done, total)

    monkeypatch.setattr(stats_module, "_write_cache", spy_write)

    # each rank hooks its own copy of the model, loaded here: transformers' loading patches
    # torch globally while it runs, so loading in several threads at once can leave the patch
    # in place and every later model's tied weights on the meta device
    adapters = [load_encoder(str(bert_path)) for _ in range(world_size)]

    def work(rank):
        adapter = adapters[rank]
        real = adapter.forward

        def forward(batch, **kwargs):
            read.setdefault(rank, []).append(len(batch))
            return real(batch, **kwargs)

        adapter.forward = forward
        result = compute_stats(adapter, [0, 1], corpus, batch_size=batch_size, cache_dir=tmp_path,
                               checkpoint_seconds=0)  # a checkpoint every batch, if a rank wrote any
        cached_on_return[rank] = [prompts_done(path) for path in paths]
        return result

    results = run_ranks(monkeypatch, world_size, work)
    shard_sizes = {2: [20, 20], 3: [13, 13, 14]}[world_size]
    assert [sum(read[rank]) for rank in range(world_size)] == shard_sizes
    starts = [sum(shard_sizes[:rank]) for rank in range(world_size)]
    tol = 1e-12 if all(start % batch_size == 0 and size % batch_size == 0 for start, size in zip(starts, shard_sizes)) \
        else 1e-8
    for layer in (0, 1):
        scale = float(single[layer].sum.abs().max())
        for rank, result in enumerate(results):
            assert result[layer].count == single[layer].count, (rank, layer)
            assert result[layer].sum.dtype == torch.float64
            assert torch.allclose(result[layer].sum, single[layer].sum, rtol=0, atol=tol * scale), (rank, layer)
    assert sorted(writes) == [(0, 0, len(corpus), single[0].count), (0, 1, len(corpus), single[1].count)]
    assert cached_on_return == {rank: [len(corpus), len(corpus)] for rank in range(world_size)}
    for layer, path in zip((0, 1), paths):
        with safe_open(str(path), framework="pt") as f:
            assert int(f.metadata()["count"]) == single[layer].count
            assert int(f.metadata()["prompts_done"]) == len(corpus)
            assert torch.equal(f.get_tensor("sum"), results[0][layer].sum)


@pytest.mark.slow
def test_torchrun_two_gloo_processes_match_one(tmp_path, bert_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:64]))
    cache = tmp_path / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "textedit.cli", "stats", str(bert_path), "--layers", "0,1", "--corpus", str(corpus),
               "--cache-dir", str(cache), "--batch-size", "8"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("key statistics of") == 1  # rank 0 alone reports
    assert "summed over 2 processes" in result.stdout

    from textedit.corpus import load_corpus
    single = compute_stats(load_encoder(str(bert_path)), [0, 1], load_corpus(corpus), use_cache=False,
                           batch_size=8)  # same batches as the two shards of 32: same float32 keys
    for layer in (0, 1):
        [path] = cache.rglob(f"layer{layer}.safetensors")
        with safe_open(str(path), framework="pt") as f:
            meta, total = f.metadata(), f.get_tensor("sum")
        assert int(meta["count"]) == single[layer].count and int(meta["prompts_done"]) == 64
        scale = single[layer].sum.abs().max()
        assert torch.allclose(total, single[layer].sum, rtol=0, atol=1e-10 * float(scale))
