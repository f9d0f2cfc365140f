"""Time pvq.bounds per chunk: the SDP bound, the exact branch and bound, SCIP and brute force.

Prints a markdown section for BENCHMARKS.md (run by scripts/benchmark.py, or on its own):

    .venv/bin/python scripts/bench_bounds.py [--quick]

1. Growth with n on synthetic correlated chunks (``pvq.bounds.synthetic_chunk``) at the 4-bit
   equivalent k = round(n / 4): branch and bound against SCIP's MIQP and against trying all
   C(n, k) supports, plus the SDP bound at b = 4.
2. Real layers (the course's digits networks and pretrained MiniLM layers): per 32-input chunk,
   b = 4 and k = 8 (the setting the paper's per-layer figure needs).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

from pvq import zoo
from pvq.bounds import (
    equal_compression_k,
    layer_chunks,
    prune_branch_and_bound,
    prune_brute_force,
    prune_scip,
    pruning_box,
    quant_sdp_bound,
    synthetic_chunk,
)
from pvq.quantize import mse_scale

BITS = 4
SCIP_LIMIT_S = 60.0
#: brute force is only timed while C(n, k) stays below this (10.5 million at n = 32, k = 8)
BRUTE_FORCE_SUPPORTS = 2_000_000
REAL_LAYERS = [("digits_cnn", "conv2"), ("digits_cnn", "conv3"), ("digits_mlp", "fc2"),
               ("minilm", "blocks.1.attn.query"), ("minilm", "blocks.5.mlp.fc1"),
               ("minilm", "blocks.5.mlp.fc2")]


def seconds(task: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = task()
    return time.perf_counter() - start, result


def scaling_rows(sizes: list[int], seeds: int, scip_sizes: set[int]) -> list[str]:
    rows = []
    for n in sizes:
        k = equal_compression_k(n, BITS)
        sdp, bnb, nodes, scip, brute = [], [], [], [], []
        for seed in range(seeds):
            G, w = synthetic_chunk(n, seed, rows=8 * n)
            lower, upper = pruning_box(w)
            sdp.append(seconds(lambda: quant_sdp_bound(G, w, BITS, mse_scale(w, BITS)))[0])
            took, solution = seconds(lambda: prune_branch_and_bound(G, w, k, lower, upper))
            bnb.append(took)
            nodes.append(solution.nodes)
            if n in scip_sizes and seed == 0:
                took, (_, scip_error) = seconds(
                    lambda: prune_scip(G, w, k, lower, upper, time_limit=SCIP_LIMIT_S))
                scip.append(took)
                assert scip_error >= solution.error * (1 - 1e-6), "SCIP beat the exact search"
            if math.comb(n, k) <= BRUTE_FORCE_SUPPORTS:
                took, (_, brute_error) = seconds(lambda: prune_brute_force(G, w, k, lower, upper))
                brute.append(took)
                assert abs(brute_error - solution.error) <= 1e-7 * solution.error
        scip_cell = "-" if not scip else (f"> {SCIP_LIMIT_S:.0f} (limit)"
                                          if scip[0] >= SCIP_LIMIT_S else f"{scip[0]:.2f}")
        brute_cell = f"{statistics.mean(brute):.3f}" if brute else "-"
        rows.append(f"| {n} | {k} | {math.comb(n, k):,} | {statistics.mean(sdp):.2f} | "
                    f"{statistics.mean(bnb):.3f} | {max(bnb):.3f} | {statistics.mean(nodes):.0f} | "
                    f"{scip_cell} | {brute_cell} |")
        print(rows[-1], flush=True)
    return rows


def layer(model: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    if model == "minilm":
        return zoo.real_layer(name)
    return zoo.layer_matrices(zoo.pretrained(model), name)


def real_layer_rows(chunks_per_layer: int, scip_chunks: int) -> list[str]:
    rows = []
    k = equal_compression_k(32, BITS)
    for model, name in REAL_LAYERS:
        W, X = layer(model, name)
        lower, upper = pruning_box(W)
        every = layer_chunks(W, X)
        full = [c for c in every if c.w.size == 32]
        picked = np.random.default_rng(0).choice(len(full), chunks_per_layer, replace=False)
        sdp, bnb, nodes, scip = [], [], [], []
        for position, index in enumerate(picked):
            chunk = full[index]
            scale = mse_scale(chunk.w, BITS)
            sdp.append(seconds(lambda: quant_sdp_bound(chunk.G, chunk.w, BITS, scale))[0])
            took, solution = seconds(
                lambda: prune_branch_and_bound(chunk.G, chunk.w, k, lower, upper))
            bnb.append(took)
            nodes.append(solution.nodes)
            if position < scip_chunks:
                scip.append(seconds(lambda: prune_scip(chunk.G, chunk.w, k, lower, upper,
                                                       time_limit=SCIP_LIMIT_S))[0])
        scip_cell = "-" if not scip else ", ".join(
            f"> {SCIP_LIMIT_S:.0f}" if s >= SCIP_LIMIT_S else f"{s:.1f}" for s in scip)
        rows.append(f"| {model} {name} | {len(picked)} of {len(full)} full "
                    f"({len(every)} in all) | "
                    f"{statistics.mean(sdp):.2f} | {statistics.mean(bnb):.3f} | {max(bnb):.3f} | "
                    f"{statistics.mean(nodes):.0f} | {scip_cell} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, seeds and chunks")
    args = parser.parse_args()
    sizes = [8, 16, 24, 32] if args.quick else [8, 12, 16, 20, 24, 28, 32]
    seeds = 2 if args.quick else 5
    scip_sizes = {8, 16} if args.quick else {8, 12, 16, 20, 24, 28, 32}
    print("## Per-chunk bounds: solve times (`pvq.bounds`)\n")
    print(f"Wall time per chunk in seconds. SDP: the certified quantization bound at b = {BITS} "
          f"(cvxpy + Clarabel). Branch and bound: `prune_branch_and_bound` (perspective "
          f"relaxations by Clarabel, certified dual bounds, exhaustive leaves), including its "
          f"heuristic incumbent. SCIP: the paper's big-M MIQP through PySCIPOpt (limit "
          f"{SCIP_LIMIT_S:.0f} s). Brute force: every support of size k, vectorized.\n")
    print(f"### Growth with n (synthetic correlated chunks, 8n input rows, k = round(n/4), "
          f"mean over {seeds} seeds; SCIP on the first seed)\n")
    print("| n | k | supports C(n, k) | SDP (s) | B&B mean (s) | B&B max (s) | B&B nodes | "
          "SCIP (s) | brute force (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    scaling_rows(sizes, seeds, scip_sizes)
    chunks_per_layer = 3 if args.quick else 8
    print(f"\n### Real layers (n = 32 inputs per chunk, b = {BITS}, k = 8; "
          f"{chunks_per_layer} random full 32-input chunks per layer: a layer's last input "
          f"slice may be narrower and is not drawn)\n")
    print("| layer | chunks | SDP mean (s) | B&B mean (s) | B&B max (s) | B&B nodes | "
          "SCIP (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    real_layer_rows(chunks_per_layer, scip_chunks=1)


if __name__ == "__main__":
    main()
