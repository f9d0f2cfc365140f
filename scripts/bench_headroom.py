"""Fine-tuning with headroom (issue 16): LSQ against gradual magnitude pruning at equal
compression on the distorted digits (``pvq.data.distorted``), the full protocol.

- Network: ``digits_cnn_small`` (6,274 parameters), its shipped FP32 weights (``pvq.zoo``).
- Both methods compress every Conv2d/Linear weight: LSQ per tensor, weights only, all layers at b
  bits (first and last layer too: GMP prunes them uniformly as well, so the two spend the same
  bits per weight; the LSQ paper's 8-bit first and last layers would give LSQ extra bits);
  GMP to ``1 - b/16`` on the cubic schedule, uniform per layer. BatchNorm re-estimated.
- Learning rate per method from ``GRIDS`` on *calibration* accuracy averaged over the levels and
  ``SELECTION_SEEDS``; then ``SEEDS`` at the chosen rate (the selection seeds' runs reused).
- Gap LSQ - GMP per level: paired on the 3,600 test images, seeds paired by number, 95 %
  two-way bootstrap resampling seeds and *originals* (a test original's 10 copies together).
- Representations against the FP32 network (per-layer SNR, linear CKA on test images), beside the
  drift of fine-tuning the uncompressed network with the same budget and rate.

Prints a markdown section for BENCHMARKS.md. Torch and BLAS use one thread per worker process;
``--workers 2`` runs quantization, pruning and the FP32 drift in two processes.
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import get_context

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from pvq.baselines import baseline_loaders
from pvq.data import distorted_digits_split
from pvq.finetune import (Budget, choose_learning_rates, learning_rate_choice,
                          paired_gap_table, per_example_correct, representation_table, sweep,
                          uncompressed_runs)
from pvq.stats import paired_bootstrap
from pvq.zoo import pretrained

NAME = "digits_cnn_small"
BITS = (6, 4, 3)
#: per method, five rates a factor ~3 apart around where a first, one-epoch look put each
#: method's best (LSQ near 0.01, GMP near 0.3): the choice must land strictly inside
GRIDS = {"quantization": (0.001, 0.003, 0.01, 0.03, 0.1),
         "pruning": (0.01, 0.03, 0.1, 0.3, 1.0)}
#: ``--small``: four rates per method, two levels, two epochs (for a busy machine)
SMALL_GRIDS = {"quantization": (0.001, 0.003, 0.01, 0.03),
               "pruning": (0.03, 0.1, 0.3, 1.0)}
SELECTION_SEEDS = (0, 1)
SEEDS = (0, 1, 2, 3, 4)
BUDGET = Budget(epochs=3)
REPRESENTATION_IMAGES = 512


def _setup() -> tuple:
    torch.set_num_threads(1)
    threadpool_limits(1)
    return pretrained(NAME), baseline_loaders(NAME)


def _inputs() -> torch.Tensor:
    return torch.from_numpy(distorted_digits_split().x_test[:REPRESENTATION_IMAGES])


def _finish(baseline, records: pd.DataFrame, keep: pd.Series) -> tuple:
    """(records without their models, representations of the models ``keep`` selects); the
    records carry ``test_correct`` already (``pvq.finetune.run``)."""
    records = records.reset_index(drop=True)
    representations = representation_table(baseline, records[keep.to_numpy()], _inputs())
    return records.drop(columns="model"), representations


def method_runs(method: str) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Grid on calibration, the chosen rate on every seed, post-training; (records,
    representations of the chosen-rate and post-training models, seconds)."""
    start = time.perf_counter()
    baseline, loaders = _setup()
    common = {"methods": (method,), "bits": BITS, "budget": BUDGET}
    grid = sweep(baseline, loaders, lrs=GRIDS[method], seeds=SELECTION_SEEDS, **common)
    lr = choose_learning_rates(grid)[method]
    rest = sweep(baseline, loaders, lrs=(lr,), seeds=SEEDS[len(SELECTION_SEEDS):], **common)
    post = sweep(baseline, loaders, **common)
    records = pd.concat([grid, rest, post], ignore_index=True)
    keep = (records["lr"] == lr) | records["lr"].isna()
    return (*_finish(baseline, records, keep), time.perf_counter() - start)


def fp32_runs(lrs: tuple[float, ...]) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """The uncompressed network fine-tuned with the same budget, at ``lrs``, every seed."""
    start = time.perf_counter()
    baseline, loaders = _setup()
    records = uncompressed_runs(baseline, loaders, lrs=lrs, seeds=SEEDS, budget=BUDGET)
    return (*_finish(baseline, records, records["lr"].notna()),
            time.perf_counter() - start)


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (index first; column tuples joined by a space)."""
    def text(value: object) -> str:
        return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)

    header = [text(frame.index.name or ""), *map(text, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(text, [index, *row])) + " |"
              for index, row in zip(frame.index, frame.itertuples(index=False))]
    return "\n".join(lines)


def selection(records: pd.DataFrame) -> pd.DataFrame:
    """The runs the learning rate was chosen on (the selection seeds: the other seeds exist
    only at the chosen rate and must not move the choice)."""
    return records[records["seed"].isin(SELECTION_SEEDS)]


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def report(records: pd.DataFrame, representations: pd.DataFrame, seconds: dict) -> None:
    baseline, loaders = _setup()
    source = distorted_digits_split().test_source
    fp32_correct = per_example_correct(baseline, loaders.test)
    fp32 = paired_bootstrap(fp32_correct, np.zeros_like(fp32_correct), groups=source)
    compressed = records[records["method"] != "fp32"]
    choice = learning_rate_choice(selection(compressed))
    print("## Fine-tuning with headroom (issue 16, `scripts/bench_headroom.py`)\n")
    print(f"`{NAME}` on the distorted digits (4,724 training, 1,024 calibration, 3,600 test "
          f"images, the test ones made from the 360 test originals only). FP32 test accuracy "
          f"{_percent(fp32.gap)} % (95 % bootstrap over originals "
          f"{_percent(fp32.low)}-{_percent(fp32.high)}). Fine-tuning: {BUDGET.epochs} epochs "
          f"of {len(loaders.train)} steps of 64 images, every layer compressed, BatchNorm "
          f"re-estimated. Wall time per worker (one thread): "
          + ", ".join(f"{task} {value:.0f} s" for task, value in seconds.items()) + ".\n")
    calibration = (compressed[compressed["stage"] == "fine-tuned"]
                   .query("seed in @SELECTION_SEEDS")
                   .groupby(["method", "lr"])["calibration_accuracy"].mean().unstack("method"))
    print(f"Learning rate: mean calibration accuracy (%) over bits {BITS} and seeds "
          f"{SELECTION_SEEDS}:\n")
    print(markdown((100 * calibration).round(2)))
    print()
    print(markdown(choice))
    print()
    chosen = pd.concat([compressed[compressed["lr"].isna()]] + [
        compressed[(compressed["method"] == m) & (compressed["lr"] == lr)]
        for m, lr in choice["lr"].items()])
    gaps = paired_gap_table(chosen, groups=source)
    post = chosen[chosen["lr"].isna()].pivot(index="bits", columns="method",
                                             values="test_accuracy")
    spread = (chosen[chosen["stage"] == "fine-tuned"].groupby(["bits", "method"])
              ["test_accuracy"].std(ddof=1).unstack("method"))
    table = pd.DataFrame({
        "sparsity %": 100 * gaps["sparsity"], "PTQ %": 100 * post["quantization"],
        "one-shot %": 100 * post["pruning"],
        "LSQ % (std)": [f"{_percent(a)} ({_percent(s)})" for a, s in
                        zip(gaps["quantization"], spread["quantization"].loc[gaps.index])],
        "GMP % (std)": [f"{_percent(a)} ({_percent(s)})" for a, s in
                        zip(gaps["pruning"], spread["pruning"].loc[gaps.index])],
        "LSQ - GMP (pp)": 100 * gaps["gap"],
        "95 % interval (pp)": [f"[{100 * lo:.1f}, {100 * hi:.1f}]"
                               for lo, hi in zip(gaps["low"], gaps["high"])],
        "seeds": gaps["seeds"]}, index=gaps.index)
    print("Test accuracy (mean over seeds, sample std), gap paired on the same test images; "
          "interval: two-way bootstrap over seeds and test originals, 10,000 resamples:\n")
    print(markdown(table.round(1)))
    print()
    fp32_tuned = records[records["method"] == "fp32"]
    rows = []
    for label, frame in [("LSQ", representations[(representations["method"] == "quantization")
                                                  & (representations["stage"] == "fine-tuned")]),
                         ("GMP", representations[(representations["method"] == "pruning")
                                                 & (representations["stage"] == "fine-tuned")])]:
        for bits, by_bits in frame.groupby("bits"):
            rows.append(by_bits.groupby("layer", sort=False)[["snr_db", "cka"]].mean()
                        .assign(model=f"{label} {bits} b"))
    for method, lr in choice["lr"].items():
        drift = representations[(representations["method"] == "fp32")
                                & (representations["lr"] == lr)]
        rows.append(drift.groupby("layer", sort=False)[["snr_db", "cka"]].mean()
                    .assign(model=f"FP32 fine-tuned, lr {lr:g}"))
    reps = pd.concat(rows).reset_index().pivot(index="model", columns="layer")
    print(f"Representations against the FP32 network on {REPRESENTATION_IMAGES} test images, "
          "mean over seeds (SNR in dB, linear CKA); the FP32 rows are the drift of fine-tuning "
          "without compression at each method's chosen rate:\n")
    print(markdown(reps.round(2)))
    drift_accuracy = fp32_tuned.groupby("lr")["test_accuracy"].mean()
    print("\nFP32 fine-tuned test accuracy by rate (%): "
          + ", ".join(f"{lr:g}: {_percent(a)}" for lr, a in drift_accuracy.items()) + ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="processes (2 cores: 2)")
    parser.add_argument("--save", help="pickle the records and representations here")
    parser.add_argument("--small", action="store_true",
                        help="SMALL_GRIDS, bits (6, 4) and 2 epochs: a third of the work")
    args = parser.parse_args()
    if args.small:  # read by the workers, which fork after this
        global GRIDS, BITS, BUDGET
        GRIDS, BITS, BUDGET = SMALL_GRIDS, (6, 4), Budget(epochs=2)
    tasks = ("quantization", "pruning")
    if args.workers > 1:
        with get_context("fork").Pool(args.workers) as pool:
            results = pool.map(method_runs, tasks, chunksize=1)
    else:
        results = [method_runs(task) for task in tasks]
    picks = learning_rate_choice(selection(pd.concat([r[0] for r in results])))["lr"]
    results.append(fp32_runs(tuple(sorted(set(picks)))))
    tasks += ("fp32",)
    records = pd.concat([r[0] for r in results], ignore_index=True)
    representations = pd.concat([r[1] for r in results], ignore_index=True)
    if args.save:
        pd.to_pickle({"records": records, "representations": representations}, args.save)
    report(records, representations, dict(zip(tasks, (r[2] for r in results))))


if __name__ == "__main__":
    main()
