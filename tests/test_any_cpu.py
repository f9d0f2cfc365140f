"""Everything whose result depends on a training run is rerun on other CPU kernels.

``make test-kernels`` reruns ``TRAINING_TESTS`` (Makefile) under ``ATEN_CPU_CAPABILITY``; a test
or notebook that trains but is missing from that list would be checked on one CPU's kernels only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a call of a training function (model.train() only switches a mode)
TRAINS = re.compile(r"\b(train_baseline|fine_tune|sweep|post_training)\(|(?<![.\w])train\(")
TRAINING_MODULES = re.compile(r"from pvq\.(train|finetune|baselines|combine|qat|pruning_schedule)"
                              r" import|from pvq import .*\b(train|finetune|combine)\b")


def training_tests() -> set[str]:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(r"^TRAINING_TESTS := (.*)$", makefile, flags=re.MULTILINE)
    assert match, "Makefile has no TRAINING_TESTS"
    return set(match.group(1).split())


def test_every_listed_path_exists():
    missing = [path for path in training_tests() if not (ROOT / path).is_file()]
    assert not missing, missing


@pytest.mark.parametrize("twin", sorted((ROOT / "notebooks").glob("[0-9]*.py")),
                         ids=lambda path: path.stem)
def test_a_notebook_that_trains_is_rerun_on_other_kernels(twin):
    if TRAINS.search(twin.read_text()):
        assert f"notebooks/{twin.stem}.ipynb" in training_tests()


def test_a_test_module_that_trains_is_rerun_on_other_kernels():
    trains = {f"tests/{path.name}" for path in (ROOT / "tests").glob("test_*.py")
              if path.name != Path(__file__).name
              and TRAINING_MODULES.search(path.read_text()) and TRAINS.search(path.read_text())}
    assert trains <= training_tests(), sorted(trains - training_tests())


def test_the_checker_sees_training():
    assert TRAINS.search("model = fine_tune(baseline, loader)")
    assert TRAINS.search("model = combine.post_training(baseline, loader, bits=2)")
    assert not TRAINS.search("model.train()\nretrained = 3")
