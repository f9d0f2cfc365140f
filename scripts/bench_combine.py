"""The two orders of pruning and quantization, post-training and trained, on the task with
headroom (issue 15, issue 16): the full protocol behind notebook 06's section 4.

- Network ``digits_cnn_small`` and the distorted digits (``pvq.data.distorted``), every
  Conv2d/Linear weight compressed, BatchNorm re-estimated.
- Format: 4-bit codes on half the weights (3 bits per weight with its bitmask), reached by
  prune-then-quantize (gradual pruning, then LSQ with the mask fixed), quantize-then-prune (LSQ,
  then gradual pruning of the quantized model) and both at once (quantization-aware pruning);
  against LSQ at 3 bits, quantization alone at the same storage. Every method gets the same
  number of epochs in all (an order: half per stage).
- Learning rate per method from ``GRID`` on *calibration* accuracy averaged over
  ``SELECTION_SEEDS``; then every seed at the chosen rate (the selection seeds' runs reused).
- Gaps on the same 3,600 test images, seeds paired by number, 95 % two-way bootstrap over seeds
  and test *originals* (``pvq.stats.paired_bootstrap(..., groups=test_source)``).

Prints a markdown section for BENCHMARKS.md. One thread per worker; ``--workers 2`` runs the
jobs in two processes.
"""

from __future__ import annotations

import argparse
import itertools
import time
from multiprocessing import get_context

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from bench_headroom import markdown  # a sibling script: scripts/ is on the path
from pvq import combine
from pvq.baselines import baseline_loaders
from pvq.data import distorted_digits_split
from pvq.finetune import per_example_correct
from pvq.stats import paired_bootstrap
from pvq.train import evaluate
from pvq.zoo import pretrained

NAME = "digits_cnn_small"
#: (trained method of ``combine.TRAINED``, bits, sparsity) by name
METHODS = {"prune-then-quantize": ("prune-then-quantize", 4, 0.5),
           "quantize-then-prune": ("quantize-then-prune", 4, 0.5),
           "QAP (both at once)": ("joint", 4, 0.5),
           "LSQ INT3": ("joint", 3, 0.0)}
#: five rates a factor ~3 apart, spanning notebook 5's picks (LSQ 0.03, GMP 0.3) with room
GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
SELECTION_SEEDS = (0, 1)
SEEDS = (0, 1, 2, 3, 4)
EPOCHS = 2


def _setup() -> tuple:
    torch.set_num_threads(1)
    threadpool_limits(1)
    return pretrained(NAME), baseline_loaders(NAME)


def job(task: tuple[str, float, int, int]) -> dict:
    """One trained model: its calibration accuracy and per-example test correctness."""
    name, lr, seed, epochs = task
    baseline, loaders = _setup()
    method, bits, sparsity = METHODS[name]
    start = time.process_time()
    model = combine.fine_tune_combined(baseline, loaders.train, method=method, bits=bits,
                                       sparsity=sparsity, epochs=epochs, lr=lr, seed=seed)
    return {"name": name, "lr": lr, "seed": seed,
            "cpu_s": time.process_time() - start,
            "calibration": evaluate(model, loaders.calibration, progress=False),
            "test_correct": per_example_correct(model, loaders.test)}


def post_training_orders() -> pd.DataFrame:
    """Every matched pair at budgets 4, 3 and 2 bits per weight, both orders, no training."""
    baseline, loaders = _setup()
    source = distorted_digits_split().test_source
    rows = []
    for budget in (4, 3, 2):
        for bits, sparsity in combine.matched_formats(budget):
            if bits is None or sparsity == 0:
                continue
            correct = {order: per_example_correct(combine.post_training(
                baseline, loaders.train, bits=bits, sparsity=sparsity, order=order),
                loaders.test) for order in combine.ORDERS}
            gap = paired_bootstrap(*correct.values(), groups=source)
            rows.append({"budget": budget, "format": f"INT{bits}, {100 * sparsity:.4g} %",
                         **{order: 100 * c.mean() for order, c in correct.items()},
                         "PtQ - QtP (pp)": 100 * gap.gap,
                         "95 % interval (pp)": f"[{100 * gap.low:.1f}, {100 * gap.high:.1f}]"})
    return pd.DataFrame(rows).set_index(["budget", "format"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="in all, per method")
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--save", help="pickle the records here")
    args = parser.parse_args()
    seeds = tuple(range(args.seeds))
    start = time.perf_counter()
    context = get_context("fork")
    with context.Pool(args.workers) as pool:
        grid = pool.map(job, [(name, lr, seed, args.epochs) for name, lr, seed in
                              itertools.product(METHODS, GRID, SELECTION_SEEDS)], chunksize=1)
        grid = pd.DataFrame(grid)
        means = grid.groupby(["name", "lr"])["calibration"].mean().unstack("name")
        picks = {name: float(means[name].idxmax()) for name in METHODS}
        rest = pool.map(job, [(name, picks[name], seed, args.epochs) for name in METHODS
                              for seed in seeds if seed not in SELECTION_SEEDS], chunksize=1)
    records = pd.concat([grid, pd.DataFrame(rest)], ignore_index=True)
    if args.save:
        pd.to_pickle(records, args.save)
    chosen = pd.concat([records[(records["name"] == n) & (records["lr"] == lr)
                                & records["seed"].isin(seeds)] for n, lr in picks.items()])
    source = distorted_digits_split().test_source
    baseline, loaders = _setup()
    print("## Combining both: the orders, post-training and trained (`scripts/bench_combine.py`)\n")
    print(f"`{NAME}` on the distorted digits (3,600 test images from 360 originals); FP32 test "
          f"accuracy {100 * evaluate(baseline, loaders.test, progress=False):.1f} %. "
          f"{args.epochs} epochs per trained model ({args.epochs // 2} per stage for an order), "
          f"{len(loaders.train)} steps of 64 images per epoch, one thread per worker, "
          f"{args.workers} workers; wall time {time.perf_counter() - start:.0f} s, mean CPU "
          f"time per model {records['cpu_s'].mean():.1f} s.\n")
    print("Post-training, every matched pair (b-bit codes pruned to the budget with a bitmask), "
          "test accuracy (%) and the gap paired on the same images, bootstrap over originals:\n")
    print(markdown(post_training_orders().round(1)))
    print(f"\nLearning rate: mean calibration accuracy (%) over seeds {SELECTION_SEEDS}:\n")
    print(markdown((100 * means).round(2)))
    inside = {n: GRID[0] < lr < GRID[-1] for n, lr in picks.items()}
    print("\nPicks: " + ", ".join(f"{n} {lr:g} (inside the grid: {inside[n]})"
                                  for n, lr in picks.items()) + ".\n")
    correct = {n: np.stack(list(chosen[chosen["name"] == n].sort_values("seed")["test_correct"]))
               for n in METHODS}
    rows = []
    for n, c in correct.items():
        per_seed = c.mean(axis=1)
        rows.append({"method": n, "lr": picks[n], "test %": round(100 * per_seed.mean(), 1),
                     "std (pp)": round(100 * per_seed.std(ddof=1), 1), "seeds": len(per_seed)})
    print(markdown(pd.DataFrame(rows).set_index("method")))
    pairs = [("prune-then-quantize", "quantize-then-prune"),
             ("QAP (both at once)", "prune-then-quantize"),
             ("QAP (both at once)", "quantize-then-prune"),
             ("LSQ INT3", "QAP (both at once)"), ("LSQ INT3", "prune-then-quantize"),
             ("LSQ INT3", "quantize-then-prune")]
    gaps = []
    for a, b in pairs:
        gap = paired_bootstrap(correct[a], correct[b], groups=source)
        gaps.append({"A - B": f"{a} - {b}", "gap (pp)": round(100 * gap.gap, 1),
                     "95 % interval (pp)": f"[{100 * gap.low:.1f}, {100 * gap.high:.1f}]"})
    print("\nGaps paired on the same test images, seeds paired by number; two-way bootstrap "
          "over seeds and originals, 10,000 resamples:\n")
    print(markdown(pd.DataFrame(gaps).set_index("A - B")))


if __name__ == "__main__":
    main()
