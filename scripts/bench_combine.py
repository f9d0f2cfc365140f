"""The two orders of pruning and quantization, post-training and trained, on the task with
headroom (issue 15, issue 16): the full protocol behind notebook 06's section 4.

- Network ``digits_cnn_small`` and the distorted digits (``pvq.data.distorted``), every
  Conv2d/Linear weight compressed, BatchNorm re-estimated.
- Format: 4-bit codes on half the weights (3 bits per weight with its bitmask), reached by
  prune-then-quantize (gradual pruning, then LSQ with the mask fixed), quantize-then-prune (LSQ,
  then gradual pruning of the quantized model) and both at once (quantization-aware pruning);
  against LSQ at 3 bits, quantization alone at the same storage. Every method gets the same
  number of epochs in all (an order: half per stage).
- Learning rate per method from ``combine.TRAINED_GRID`` (the union of notebook 5's grids,
  ``pvq.finetune.LEARNING_RATE_GRIDS``) on *calibration* accuracy averaged over
  ``SELECTION_SEEDS``, chosen by ``pvq.finetune.learning_rate_choice`` as in notebook 5; then
  every seed at the chosen rate (the selection seeds' runs reused). The picks are checked
  against those notebook 6 uses, ``combine.TRAINED_LEARNING_RATES``.
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
from pvq.finetune import learning_rate_choice, per_example_correct
from pvq.stats import paired_bootstrap
from pvq.train import evaluate
from pvq.zoo import pretrained

NAME = combine.HEADROOM_NETWORK
SELECTION_SEEDS = (0, 1)
SEEDS = (0, 1, 2, 3, 4)


def _setup() -> tuple:
    torch.set_num_threads(1)
    threadpool_limits(1)
    return pretrained(NAME), baseline_loaders(NAME)


def job(task: tuple[str, float, int, int]) -> dict:
    """One trained model (``combine.trained_correct``) as a record in the columns of
    ``pvq.finetune``'s runs: its calibration accuracy and per-example test correctness."""
    name, lr, seed, epochs = task
    _setup()
    method, bits, sparsity = combine.TRAINED_FORMATS[name]
    start = time.process_time()
    correct = combine.trained_correct((method, bits, sparsity, lr, seed, epochs))
    return {"method": name, "stage": "fine-tuned", "bits": bits, "lr": lr, "seed": seed,
            "cpu_s": time.process_time() - start,
            "calibration_accuracy": float(correct["calibration"].mean()),
            "test_correct": correct["test"]}


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
    parser.add_argument("--epochs", type=int, default=combine.TRAINED_EPOCHS,
                        help="in all, per method")
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--save", help="pickle the records here")
    args = parser.parse_args()
    seeds = tuple(range(args.seeds))
    start = time.perf_counter()
    context = get_context("fork")
    with context.Pool(args.workers) as pool:
        grid = pool.map(job, [(name, lr, seed, args.epochs) for name, lr, seed in
                              itertools.product(combine.TRAINED_FORMATS, combine.TRAINED_GRID,
                                                SELECTION_SEEDS)], chunksize=1)
        choice = learning_rate_choice(pd.DataFrame(grid))
        picks = choice["lr"].to_dict()
        rest = pool.map(job, [(name, picks[name], seed, args.epochs)
                              for name in combine.TRAINED_FORMATS
                              for seed in seeds if seed not in SELECTION_SEEDS], chunksize=1)
    grid = pd.DataFrame(grid)
    means = grid.groupby(["method", "lr"])["calibration_accuracy"].mean().unstack("method")
    records = pd.concat([grid, pd.DataFrame(rest)], ignore_index=True)
    if args.save:
        pd.to_pickle(records, args.save)
    chosen = pd.concat([records[(records["method"] == n) & (records["lr"] == lr)
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
    print("\nPicks: " + ", ".join(f"{n} {row.lr:g} (inside the grid: {row.inside})"
                                  for n, row in choice.iterrows()) + "; the rates notebook 6 "
          f"uses (combine.TRAINED_LEARNING_RATES): {picks == combine.TRAINED_LEARNING_RATES}.\n")
    correct = {n: np.stack(list(chosen[chosen["method"] == n].sort_values("seed")["test_correct"]))
               for n in combine.TRAINED_FORMATS}
    rows = []
    for n, c in correct.items():
        per_seed = c.mean(axis=1)
        rows.append({"method": n, "lr": picks[n], "test %": round(100 * per_seed.mean(), 1),
                     "std (pp)": round(100 * per_seed.std(ddof=1), 1), "seeds": len(per_seed)})
    print(markdown(pd.DataFrame(rows).set_index("method")))
    gaps = []
    for a, b in combine.TRAINED_PAIRS:
        gap = paired_bootstrap(correct[a], correct[b], groups=source)
        gaps.append({"A - B": f"{a} - {b}", "gap (pp)": round(100 * gap.gap, 1),
                     "95 % interval (pp)": f"[{100 * gap.low:.1f}, {100 * gap.high:.1f}]"})
    print("\nGaps paired on the same test images, seeds paired by number; two-way bootstrap "
          "over seeds and originals, 10,000 resamples:\n")
    print(markdown(pd.DataFrame(gaps).set_index("A - B")))


if __name__ == "__main__":
    main()
