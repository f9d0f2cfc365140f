"""How much a training result moves with the seed and with the CPU's kernels.

    .venv/bin/python scripts/bench_training_spread.py [--seeds 3]

Retrains each digits baseline (``pvq.baselines.RECIPES``, only the seed changed) under every
``ATEN_CPU_CAPABILITY`` this CPU supports (PyTorch picks its vectorised kernels by instruction
set; another CPU's kernels sum in another order) and prints a markdown section for
BENCHMARKS.md: the test accuracies, whether the weights are bit-identical across kernels, and the
largest distance to the shipped accuracy, which sets the retraining test's tolerance.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CAPABILITIES = ("default", "avx2", "avx512")


def supported_capabilities() -> list[str]:
    """The capabilities up to the native one (each CPU that has one has those before it)."""
    import torch

    native = torch.backends.cpu.get_cpu_capability().lower()
    return list(CAPABILITIES[: CAPABILITIES.index(native) + 1]) if native in CAPABILITIES \
        else ["default"]


def worker(seeds: int) -> None:
    """Train every baseline for seeds 0..seeds-1 in this process; one JSON line per run."""
    from pvq.baselines import (RECIPES, baseline_loaders, kernel_signature, state_sha256,
                               train_baseline)
    from pvq.train import evaluate

    for name in RECIPES:
        test = baseline_loaders(name).test
        for seed in range(seeds):
            model = train_baseline(name, seed=seed)
            print(json.dumps({"name": name, "seed": seed, **kernel_signature(),
                              "test_accuracy": evaluate(model, test, progress=False),
                              "sha256": state_sha256(model)}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.seeds)
        return 0
    import pandas as pd

    from pvq.zoo import baseline_record

    rows = []
    for capability in supported_capabilities():
        env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
        out = subprocess.run([sys.executable, __file__, "--worker", f"--seeds={args.seeds}"],
                             env=env, check=True, capture_output=True, text=True).stdout
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    runs = pd.DataFrame(rows)
    runs["distance"] = [abs(run.test_accuracy - baseline_record(run.name)["test_accuracy"])
                        for run in runs.itertuples()]
    print("## Training across seeds and CPU kernels (`pvq.baselines`)\n")
    print(f"Each baseline retrained with its recipe, seeds 0-{args.seeds - 1}, under every "
          "`ATEN_CPU_CAPABILITY` this CPU supports; accuracy on each baseline's own test set.\n")
    print("| network | seed | " + " | ".join(runs["cpu_capability"].unique()) +
          " | weights identical across kernels |")
    print("|---|---:|" + "---:|" * runs["cpu_capability"].nunique() + "---|")
    for (name, seed), group in runs.groupby(["name", "seed"], sort=False):
        accuracies = " | ".join(f"{accuracy:.4f}" for accuracy in group["test_accuracy"])
        print(f"| {name} | {seed} | {accuracies} | "
              f"{'yes' if group['sha256'].nunique() == 1 else 'no'} |")
    print()
    for name, group in runs.groupby("name", sort=False):
        print(f"{name}: largest distance to the shipped accuracy "
              f"{group['distance'].max():.4f}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
