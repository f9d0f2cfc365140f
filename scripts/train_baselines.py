"""Retrain the digits baselines from scratch and write the files ``pvq.zoo`` ships.

    .venv/bin/python scripts/train_baselines.py            # writes lib/pvq/data/
    .venv/bin/python scripts/train_baselines.py --check    # retrains, compares, writes nothing

Writes ``digits_cnn.pt`` and ``digits_mlp.pt`` (FP32 state dicts) and ``digits_baselines.json``
(recipe, parameter count, test and calibration accuracy). Deterministic: one thread,
deterministic kernels, seeded initialisation and batch order (``pvq.baselines``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

import torch

from pvq.baselines import RECIPES, train_baseline
from pvq.data import digits_loaders
from pvq.models import parameter_count
from pvq.train import evaluate
from pvq.zoo import BASELINES_FILE, DATA_PACKAGE, pretrained, weights_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the shipped weights instead of overwriting them")
    args = parser.parse_args()
    data_dir = Path(str(resources.files(DATA_PACKAGE)))
    loaders = digits_loaders()
    records, identical = {}, True
    for name, recipe in RECIPES.items():
        start = time.perf_counter()
        model = train_baseline(name)
        seconds = time.perf_counter() - start
        records[name] = {
            "recipe": recipe.as_dict(),
            "parameters": parameter_count(model),
            "test_accuracy": evaluate(model, loaders.test, progress=False),
            "calibration_accuracy": evaluate(model, loaders.calibration, progress=False),
        }
        print(f"{name}: {records[name]['parameters']} parameters, test accuracy "
              f"{records[name]['test_accuracy']:.4f}, trained in {seconds:.1f} s")
        if args.check:
            shipped = pretrained(name).state_dict()
            same = all(torch.equal(shipped[key], value)
                       for key, value in model.state_dict().items())
            print(f"  shipped weights {'reproduced bit for bit' if same else 'differ'}; "
                  f"shipped test accuracy {evaluate(pretrained(name), loaders.test):.4f}")
            identical &= same
        else:
            torch.save(model.state_dict(), data_dir / weights_file(name))
    if not args.check:
        (data_dir / BASELINES_FILE).write_text(json.dumps(records, indent=2) + "\n")
        print(f"wrote {data_dir}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
