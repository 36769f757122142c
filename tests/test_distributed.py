"""Distributed statistics: `textedit stats` under torchrun with 2 gloo processes writes the
same sums and counts as one process (to float64 rounding)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from textedit.distributed import Shard, init_from_env
from textedit.encoders import load_encoder
from textedit.stats import compute_stats

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
