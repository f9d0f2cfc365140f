"""Time one Linear layer dense FP32, INT8, unstructured sparse (CSR) and row-pruned (pvq.hardware).

Prints a markdown section for BENCHMARKS.md (run by scripts/benchmark.py, or on its own).
"""

from __future__ import annotations

import math

import torch

from pvq.hardware import (
    SPARSITIES,
    TOKENS,
    break_even_sparsity,
    layer_input,
    linear_variants,
    speedups,
    time_variants,
)
from pvq.zoo import real_layer

LAYER = "blocks.1.mlp.fc2"
THREADS = 1


def main() -> None:
    torch.set_num_threads(THREADS)
    weight = torch.from_numpy(real_layer(LAYER).w).float()
    table = time_variants(linear_variants(weight, SPARSITIES),
                          layer_input(TOKENS, weight.shape[1]), rounds=5, min_run_time=0.1,
                          threads=THREADS)
    table["speed-up"] = speedups(table).to_numpy()
    out_features, in_features = weight.shape
    print("## Hardware: one Linear layer on this CPU (`pvq.hardware`)\n")
    print(f"all-MiniLM-L6-v2 `{LAYER}` ({in_features} inputs, {out_features} outputs), "
          f"{TOKENS} tokens, {THREADS} torch thread; `torch.utils.benchmark`, 5 interleaved rounds "
          "of blocks of at least 0.1 s; median and interquartile range per call.\n")
    print("| variant | median (us) | IQR (us) | speed-up over dense FP32 |")
    print("|---|---:|---:|---:|")
    for row in table.itertuples():
        print(f"| {row.name} | {row.median_us:.0f} | {row.iqr_us:.0f} | {row[-1]:.2f} |")
    for kind, label in (("csr", "unstructured CSR"), ("structured", "structured (rows)")):
        sparsity = break_even_sparsity(table, kind)
        verdict = "never, up to 99 %" if math.isnan(sparsity) else f"from {sparsity:.0%} sparsity"
        print(f"\n{label} beats dense FP32: {verdict}.", end="")
    print()


if __name__ == "__main__":
    main()
