"""Time the tensor-level functions on transformer-sized weights: 10^6 to 10^8 values.

``pvq.quantize.mse_scale`` (target: under 2 s at 10^7 weights, 4 bits) and
``pvq.combine.compress`` (4 bits, 50 % sparsity, prune-then-quantize), on float32 N(0, 1) weights.
Prints a markdown section for BENCHMARKS.md (run by scripts/benchmark.py, or on its own;
``--quick`` leaves out 10^8).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from pvq.combine import compress
from pvq.quantize import mse_scale

MSE_SCALE_TARGET_SECONDS, TARGET_SIZE = 2.0, 10**7


def median_seconds(task: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    task()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out 10^8 weights")
    sizes = [10**6, 10**7] + ([] if parser.parse_args().quick else [10**8])
    rows = []
    for size in sizes:
        w = np.random.default_rng(0).standard_normal(size, dtype=np.float32)
        repeats = 3 if size <= 10**7 else 1
        rows.append((size, median_seconds(lambda: mse_scale(w, 4), repeats),
                     median_seconds(lambda: compress(w, bits=4, sparsity=0.5), repeats)))
        del w
    print("## Large tensors: scale search and compression (`pvq.quantize`, `pvq.combine`)\n")
    print(f"float32 N(0, 1) weights, 4 bits; `compress` at 50 % sparsity, prune-then-quantize; "
          f"median of 3 runs after a warm-up{' (one at 10^8)' if 10**8 in sizes else ''}; "
          f"{torch.get_num_threads()} threads available. Before "
          "the Lloyd polish worked on cell sums, `mse_scale` took 27.6 s at 10^7 weights and "
          "`compress` 11.9 s.\n")
    print("| weights | `mse_scale` (s) | `compress` (s) |")
    print("|---:|---:|---:|")
    for size, scale_seconds, compress_seconds in rows:
        print(f"| 10^{round(np.log10(size))} | {scale_seconds:.2f} | {compress_seconds:.2f} |")
    at_target = dict((size, seconds) for size, seconds, _ in rows)[TARGET_SIZE]
    verdict = "met" if at_target < MSE_SCALE_TARGET_SECONDS else "NOT met"
    print(f"\nTarget (`mse_scale` under {MSE_SCALE_TARGET_SECONDS:.0f} s at 10^7 weights): "
          f"{verdict}.")


if __name__ == "__main__":
    main()
