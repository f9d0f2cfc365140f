"""Time pvq.bounds per chunk: the SDP bound, the exact branch and bound, SCIP and brute force.

Prints a markdown section for BENCHMARKS.md (run by scripts/benchmark.py, or on its own):

    .venv/bin/python scripts/bench_bounds.py [--quick] [--part times|gaps] [--csv PREFIX]

``times``:

1. Growth with n on synthetic correlated chunks (``pvq.bounds.synthetic_chunk``) at the 4-bit
   equivalent k = round(n / 4): branch and bound against SCIP's MIQP and against trying all
   C(n, k) supports, plus the SDP bound at b = 4.
2. Real layers (the course's digits networks and pretrained MiniLM layers): per 32-input chunk,
   b = 4 and k = 8 (the setting the paper's per-layer figure needs).

``gaps``: how near the optimum the field's one-shot algorithms come. Every course layer
(``pvq.layer_bounds.COURSE_LAYERS``) at b = 2, 3, 4, 32 seeded chunks per layer (4 with
--quick), the paper's scales and rule (``sweep_layers(..., count_scales=False)``, notebook 4's
bracket): GPTQ and round to nearest against the SDP bound at the same scales, SparseGPT and
magnitude pruning against the exact optimum at the same k (``optimality_gaps``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

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
from pvq.layer_bounds import COURSE_LAYERS, GAP_METHODS, optimality_gaps, sweep_layers
from pvq.quantize import mse_scale

BITS = 4
SCIP_LIMIT_S = 60.0
#: brute force is only timed while C(n, k) stays below this (10.5 million at n = 32, k = 8)
BRUTE_FORCE_SUPPORTS = 2_000_000
#: the gap table's bit-widths and chunks per layer (twice notebook 4's sample)
GAP_BITS = (2, 3, 4)
GAP_CHUNKS = 32
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


def gap_section(count: int, csv: str | None) -> None:
    start = time.perf_counter()
    sizes = {}  # layers with fewer chunks than count are swept whole
    for model, name in COURSE_LAYERS:
        W, _ = layer(model, name)
        sizes[model, name] = min(count, W.shape[0] * math.ceil(W.shape[1] / 32))
    chunks = pd.concat([sweep_layers([key for key in COURSE_LAYERS if sizes[key] == size],
                                     bit_widths=GAP_BITS, count=size, seed=0,
                                     count_scales=False)
                        for size in sorted(set(sizes.values()))], ignore_index=True)
    position = {key: i for i, key in enumerate(COURSE_LAYERS)}  # back in the course's order
    chunks = chunks.iloc[np.argsort([position[key] for key in zip(chunks.model, chunks.layer)],
                                    kind="stable")].reset_index(drop=True)
    seconds = time.perf_counter() - start
    if csv:
        chunks.to_csv(f"{csv}-gaps-chunks.csv", index=False)
    layers = optimality_gaps(chunks, by=["model", "layer", "bits"])
    per_chunk = optimality_gaps(chunks)
    outside = ~chunks.sparsegpt_in_box
    left = sorted(set(chunks.model[outside] + " " + chunks.layer[outside]))
    smaller = ", ".join(f"{model} {name}: {size}" for (model, name), size in sizes.items()
                        if size < count)
    smaller = f" (all of a smaller layer's: {smaller})" if smaller else ""
    print("## How near the optimum? GPTQ and SparseGPT against the certified bounds "
          "(`pvq.layer_bounds.optimality_gaps`)\n")
    print(f"Notebook 4's bracket on {count} seeded chunks per course layer{smaller} at b = "
          f"{', '.join(map(str, GAP_BITS))}: one MSE scale per input slice, k = floor(n b / 16) "
          f"non-zeros per chunk in the paper's box, nothing charged. Each method's layer error "
          f"(summed over the chunks) in dB above the certified bound of the same problem, "
          f"10 log10(sum error / sum bound): quantization's SDP bound at the same scales (GPTQ "
          f"is `pvq.obs`'s sweep run on those scales; best: the best of notebook 4's "
          f"heuristics, so its gap bounds the SDP's slack), pruning's exact optimum by branch "
          f"and bound (SparseGPT from `pvq.obs`; magnitude: the k largest weights unchanged; "
          f"+ refit: re-fitted by least squares). Every pruned chunk certified optimal: "
          f"{bool((chunks.prune_gap < 1e-6).all())}. SparseGPT's weights are not held to the "
          f"box: where they leave it ({int(outside.sum())} of {len(chunks)} chunk problems, "
          f"on {', '.join(left) or 'no layer'}) its bound is the exact optimum in the smallest "
          f"box that holds them. {len(chunks)} chunk problems in {seconds:.0f} s.\n")
    labels = list(GAP_METHODS)
    print("| layer | b | " + " | ".join(labels) + " |")
    print("|---|---:|" + "---:|" * len(labels))
    for (model, name, bits), row in layers.iterrows():
        print(f"| {model} {name} | {bits} | " + " | ".join(f"{row[m]:.1f}" for m in labels)
              + " |")
    summary = pd.DataFrame({"layers: median": layers.median(), "layers: max": layers.max(),
                            "chunks: median": per_chunk.median(),
                            "chunks: 90th percentile": per_chunk.quantile(0.9)}).T
    print(f"\nOver the {len(layers)} layer-and-bit-width cases and the {len(per_chunk)} chunks "
          f"(dB above the bound):\n")
    print("| | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for name, row in summary.iterrows():
        print(f"| {name} | " + " | ".join(f"{row[m]:.2f}" for m in labels) + " |")


def times_section(quick: bool) -> None:
    sizes = [8, 16, 24, 32] if quick else [8, 12, 16, 20, 24, 28, 32]
    seeds = 2 if quick else 5
    scip_sizes = {8, 16} if quick else {8, 12, 16, 20, 24, 28, 32}
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
    chunks_per_layer = 3 if quick else 8
    print(f"\n### Real layers (n = 32 inputs per chunk, b = {BITS}, k = 8; "
          f"{chunks_per_layer} random full 32-input chunks per layer: a layer's last input "
          f"slice may be narrower and is not drawn)\n")
    print("| layer | chunks | SDP mean (s) | B&B mean (s) | B&B max (s) | B&B nodes | "
          "SCIP (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    real_layer_rows(chunks_per_layer, scip_chunks=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, seeds and chunks")
    parser.add_argument("--part", choices=["times", "gaps"], help="only this section")
    parser.add_argument("--csv", help="also write the gap section's chunks to PREFIX-*.csv")
    args = parser.parse_args()
    if args.part in (None, "times"):
        times_section(args.quick)
    if args.part in (None, "gaps"):
        print()
        gap_section(4 if args.quick else GAP_CHUNKS, args.csv)


if __name__ == "__main__":
    main()
