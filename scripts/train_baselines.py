"""Retrain the digits baselines from scratch and write the files ``pvq.zoo`` ships.

    .venv/bin/python scripts/train_baselines.py            # writes lib/pvq/data/
    .venv/bin/python scripts/train_baselines.py --check    # retrains, compares, writes nothing
    .venv/bin/python scripts/train_baselines.py --record   # records this machine's retraining
    .venv/bin/python scripts/train_baselines.py --only digits_cnn_small   # one baseline only

Writes ``digits_cnn.pt`` and ``digits_mlp.pt`` (FP32 state dicts) and ``digits_baselines.json``
(recipe, parameter count, test and calibration accuracy, the kernels it was trained on and the
weights' SHA-256). Deterministic on one machine: one thread, deterministic kernels, seeded
initialisation and batch order (``pvq.baselines``). Another CPU's kernels give other weights, so
``--record`` adds this machine's retraining (kernel signature, SHA-256, test accuracy) to the
``reproductions`` that the retraining test compares bit for bit where the signature matches;
run it once per ``ATEN_CPU_CAPABILITY`` value.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

import torch

from pvq.baselines import RECIPES, baseline_loaders, kernel_signature, state_sha256, train_baseline
from pvq.models import parameter_count
from pvq.train import evaluate
from pvq.zoo import BASELINES_FILE, DATA_PACKAGE, pretrained, weights_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="compare with the shipped weights instead of overwriting them")
    mode.add_argument("--record", action="store_true",
                      help="add this machine's retraining to the recorded reproductions")
    parser.add_argument("--only", choices=sorted(RECIPES), action="append",
                        help="train (and write or record) only this baseline; repeatable")
    args = parser.parse_args()
    names = args.only or list(RECIPES)
    data_dir = Path(str(resources.files(DATA_PACKAGE)))
    if args.record:
        return record_reproductions(data_dir / BASELINES_FILE, names)
    existing = data_dir / BASELINES_FILE
    records = json.loads(existing.read_text()) if existing.is_file() else {}
    identical = True
    for name in names:
        recipe, loaders = RECIPES[name], baseline_loaders(name)
        start = time.perf_counter()
        model = train_baseline(name)
        seconds = time.perf_counter() - start
        records[name] = {
            "recipe": recipe.as_dict(),
            "parameters": parameter_count(model),
            "test_accuracy": evaluate(model, loaders.test, progress=False),
            "calibration_accuracy": evaluate(model, loaders.calibration, progress=False),
            "trained_on": kernel_signature(),
            "sha256": state_sha256(model),
        }
        records[name]["reproductions"] = [reproduction(model, records[name]["test_accuracy"])]
        print(f"{name}: {records[name]['parameters']} parameters, test accuracy "
              f"{records[name]['test_accuracy']:.4f}, trained in {seconds:.1f} s")
        if args.check:
            shipped = pretrained(name).state_dict()
            same = all(torch.equal(shipped[key], value)
                       for key, value in model.state_dict().items())
            shipped_accuracy = evaluate(pretrained(name), loaders.test, progress=False)
            print(f"  shipped weights {'reproduced bit for bit' if same else 'differ'}; "
                  f"shipped test accuracy {shipped_accuracy:.4f}")
            identical &= same
        else:
            torch.save(model.state_dict(), data_dir / weights_file(name))
    if not args.check:
        (data_dir / BASELINES_FILE).write_text(json.dumps(records, indent=2) + "\n")
        print(f"wrote {data_dir}")
    return 0 if identical else 1


def reproduction(model: torch.nn.Module, test_accuracy: float) -> dict:
    """This machine's kernel signature with what its retraining gave."""
    return {**kernel_signature(), "sha256": state_sha256(model), "test_accuracy": test_accuracy}


def record_reproductions(path: Path, names: list[str]) -> int:
    """Retrain the ``names`` baselines here and store (or replace) this signature's
    reproduction."""
    records = json.loads(path.read_text())
    for name in names:
        test = baseline_loaders(name).test
        found = reproduction(model := train_baseline(name), evaluate(model, test, progress=False))
        print(f"{name}: {found}")
        keep = [entry for entry in records[name]["reproductions"]
                if any(entry[key] != found[key] for key in kernel_signature())]
        records[name]["reproductions"] = [*keep, found]
    path.write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
