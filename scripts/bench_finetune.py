"""Time the fine-tuning of notebook 05: one epoch of plain training, LSQ and gradual pruning on
the digits CNN, and the notebook's whole sweep (post-training, learning-rate choice, more seeds).

Prints a markdown section for BENCHMARKS.md (run by scripts/benchmark.py, or on its own). Torch and
BLAS use one thread, as in the notebook.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from threadpoolctl import threadpool_limits

from pvq.data import digits_loaders
from pvq.finetune import (BITS, LEARNING_RATES, METHODS, Budget, choose_learning_rates, compress,
                          fine_tune, sweep)
from pvq.train import train
from pvq.zoo import pretrained

REPEATS = 3
SEEDS = (0, 1, 2)


def median_seconds(task: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    task()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def notebook_sweep(budget: Budget) -> tuple[float, int]:
    """The notebook's runs, timed: (seconds, number of fine-tuning runs)."""
    baseline, loaders = pretrained("digits_cnn"), digits_loaders()
    start = time.perf_counter()
    sweep(baseline, loaders, budget=budget)
    selection = sweep(baseline, loaders, lrs=LEARNING_RATES, seeds=SEEDS[:1], budget=budget)
    for method, lr in choose_learning_rates(selection).items():
        sweep(baseline, loaders, methods=(method,), lrs=(lr,), seeds=SEEDS[1:], budget=budget)
    runs = len(METHODS) * len(BITS) * (len(LEARNING_RATES) + len(SEEDS) - 1)
    return time.perf_counter() - start, runs


def main() -> None:
    torch.set_num_threads(1)
    threadpool_limits(1)
    budget, loaders, baseline = Budget(), digits_loaders(), pretrained("digits_cnn")
    ptq_4 = compress(baseline, "quantization", 4)
    tasks = {
        "plain SGD (FP32)": lambda: train(pretrained("digits_cnn"), loaders.train,
                                          epochs=budget.epochs, lr=0.01, progress=False),
        "LSQ, 4 bits": lambda: fine_tune(ptq_4, "quantization", 4, loaders.train, lr=0.01,
                                         budget=budget),
        "GMP, 75 %": lambda: fine_tune(baseline, "pruning", 4, loaders.train, lr=0.1,
                                       budget=budget),
    }
    steps = len(loaders.train)
    print("## Fine-tuning (notebook 05)\n")
    print(f"digits CNN, {steps} steps of 32 images per epoch, one torch thread; a "
          f"{budget.epochs}-epoch run (BatchNorm re-estimation included) divided by "
          f"{budget.epochs}, median of {REPEATS}.\n")
    print("| training | time per epoch (s) |\n|---|---:|")
    for name, task in tasks.items():
        print(f"| {name} | {median_seconds(task) / budget.epochs:.3f} |")
    seconds, runs = notebook_sweep(budget)
    print(f"\nThe notebook's sweep ({runs} fine-tuning runs of {budget.epochs} epochs and 10 "
          f"post-training models): {seconds:.1f} s.")


if __name__ == "__main__":
    main()
