#!/usr/bin/env python
"""Benchmark one T5-XXL-sized MLP layer (d_model 4096, d_ff 10240): statistics, factor, solve.

    nice -n 15 python benchmarks/scale_large_layer.py [--tokens 12288] [--chunk 2048]
                                                      [--baseline-chunks 2] [--keys 1000]

Synthetic data (only speed and memory are measured here): keys of a gated MLP,
``gelu(a) * b`` with ``a, b`` standard normal, cast to bfloat16 as a bf16 encoder would
produce them; ``W`` a random bfloat16 [4096, 10240] down-projection. Phases, each timed with
its peak resident memory above the phase's start:

(a) statistics: ``SecondMoment.add_keys`` over ``tokens`` keys in chunks (the one
    d_ff × d_ff float64 sum, filled in bands of 384 rows) against the naive
    ``S += K.double().T @ K.double()`` (a full d_ff × d_ff product buffer per chunk), run on
    the first ``baseline-chunks`` chunks; both sums must agree to 1e-12 relative;
(b) the Cholesky factor of C (once per layer; ``SecondMoment.cholesky`` keeps it);
(c) the MEMIT solve for ``keys`` requests with the factor (``solvers.batched``), written
    back into the bf16 weight via float64, against MEMIT's reference
    ``torch.linalg.solve(λC + KKᵀ, K)`` (an LU of d_ff × d_ff per edit); the two ΔW must
    agree to 1e-8 relative.

Default sizes run in about 4 minutes on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scale_common import PeakMemory, gib, machine_line  # noqa: E402

from textedit.solvers import batched  # noqa: E402
from textedit.stats import SecondMoment  # noqa: E402


def gated_keys(n: int, d_ff: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, d_ff, generator=generator)
    b = torch.randn(n, d_ff, generator=generator)
    return (F.gelu(a) * b).to(torch.bfloat16)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--d-model", type=int, default=4096)
    parser.add_argument("--d-ff", type=int, default=10240)
    parser.add_argument("--tokens", type=int, default=12288, help="≥ d_ff, so that C is positive definite")
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--baseline-chunks", type=int, default=2)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--lam", type=float, default=50.0)
    args = parser.parse_args(argv)
    d_ff, d_model = args.d_ff, args.d_model
    buffer = d_ff * d_ff * 8
    print(f"# scale_large_layer: d_model {d_model}, d_ff {d_ff}, {args.tokens} tokens, {args.keys} keys")
    print(f"# {machine_line()}")
    print(f"# one d_ff × d_ff float64 buffer = {gib(buffer)}")
    g = torch.Generator().manual_seed(0)
    chunks = [args.chunk] * (args.tokens // args.chunk) + ([args.tokens % args.chunk] if args.tokens % args.chunk else [])

    # (a) naive baseline on the first chunks
    naive = torch.zeros(d_ff, d_ff, dtype=torch.float64)
    with PeakMemory() as naive_peak:
        for n in chunks[:args.baseline_chunks]:
            keys = gated_keys(n, d_ff, g).double()
            naive += keys.T @ keys
            del keys
    naive_tokens = sum(chunks[:args.baseline_chunks])

    g = torch.Generator().manual_seed(0)  # the same keys again
    moment = SecondMoment.zeros(d_ff)
    with PeakMemory() as band_peak:
        for i, n in enumerate(chunks):
            moment.add_keys(gated_keys(n, d_ff, g))
            if i + 1 == args.baseline_chunks:
                with torch.no_grad():
                    err = ((moment.sum - naive).norm() / naive.norm()).item()
                del naive
    assert err <= 1e-12, err
    band_rate = band_peak.seconds / args.tokens
    naive_rate = naive_peak.seconds / naive_tokens
    print(f"(a) statistics, band add_keys : {band_peak.seconds:7.1f} s for {args.tokens} tokens "
          f"({1e3 * band_rate:.2f} ms/token), peak +{gib(band_peak.extra)} "
          f"({band_peak.extra / buffer:.2f} buffers incl. the sum)")
    print(f"    naive K.T @ K (baseline)  : {naive_peak.seconds:7.1f} s for {naive_tokens} tokens "
          f"({1e3 * naive_rate:.2f} ms/token), peak +{gib(naive_peak.extra)} "
          f"({naive_peak.extra / buffer:.2f} buffers incl. the sum)")
    print(f"    ratio naive/band: time per token {naive_rate / band_rate:.2f}x, peak memory "
          f"{naive_peak.extra / band_peak.extra:.2f}x; sums agree to {err:.1e}")

    # (b) factor
    with PeakMemory() as factor_peak:
        moment.cholesky()
    print(f"(b) Cholesky factor of C      : {factor_peak.seconds:7.1f} s, peak +{gib(factor_peak.extra)}")

    # (c) solve for `keys` requests, bf16 weight, float64 solve, written back in bf16
    W = (torch.randn(d_model, d_ff, generator=g) / d_ff ** 0.5).to(torch.bfloat16)
    K = gated_keys(args.keys, d_ff, g).T.double()  # [d_ff, n]
    V = W.double() @ K + torch.randn(d_model, args.keys, generator=g, dtype=torch.float64)
    C = moment.mean
    with PeakMemory() as solve_peak:
        delta = batched(W, C, K, V, args.lam, factor=moment.cholesky())
        written = (W.double() + delta.dense()).to(W.dtype)
    assert written.dtype == torch.bfloat16 and torch.isfinite(written.float()).all()
    print(f"(c) MEMIT solve, {args.keys} keys, factor kept: {solve_peak.seconds:7.1f} s "
          f"(+ {factor_peak.seconds:.1f} s factor once per layer = "
          f"{solve_peak.seconds + factor_peak.seconds:.1f} s), peak +{gib(solve_peak.extra)}")
    with PeakMemory() as ref_peak:
        A = args.lam * C + K @ K.T
        reference = (V - W.double() @ K) @ torch.linalg.solve(A, K).T
        del A
    rel = ((delta.dense() - reference).norm() / reference.norm()).item()
    assert rel <= 1e-8, rel
    print(f"    reference linalg.solve(λC + KKᵀ, K): {ref_peak.seconds:7.1f} s, peak +{gib(ref_peak.extra)}; "
          f"ratio reference/solve {ref_peak.seconds / solve_peak.seconds:.2f}x (with factor "
          f"{ref_peak.seconds / (solve_peak.seconds + factor_peak.seconds):.2f}x); ΔW agree to {rel:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
