"""pvq.job_store: a result computed once per session, across processes, only for the same
function, arguments, library source and CPU kernels; nothing at all without a store."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from pvq import job_store
from pvq.parallel import parallel_map

_calls: list[int] = []


def _counted_square(x: int) -> int:
    _calls.append(x)
    return x * x


def test_a_job_store_serves_a_second_run_and_only_the_same_job(monkeypatch, tmp_path):
    monkeypatch.setenv("PVQ_JOB_STORE", str(tmp_path))
    _calls.clear()
    assert parallel_map(_counted_square, [2, 3], workers=1) == [4, 9]
    assert parallel_map(_counted_square, [3, 2, 5], workers=1) == [9, 4, 25]
    assert _calls == [2, 3, 5]  # computed once each; 5 was new
    assert len(list(tmp_path.glob("*.pt"))) == 3
    # another function with the same job is another result
    assert parallel_map(math.sqrt, [4.0], workers=1) == [2.0]


def test_without_a_store_every_run_computes(monkeypatch):
    monkeypatch.delenv("PVQ_JOB_STORE", raising=False)
    _calls.clear()
    parallel_map(_counted_square, [2], workers=1)
    parallel_map(_counted_square, [2], workers=1)
    assert _calls == [2, 2]


def _hold_then(path, result, seconds):
    """Another process of the session at work on a job: hold it, then store ``result`` (or
    nothing, as a process that died would) and let go."""
    hold = job_store.claim(path, wait=False)
    assert hold is not None
    time.sleep(seconds)
    if result is not None:
        job_store.save(path, result)
    os.close(hold)


@pytest.mark.parametrize("their_result, expected", [(999, [4, 999]), (None, [4, 9])])
def test_a_job_another_process_holds_is_waited_for_not_computed_twice(
        monkeypatch, tmp_path, their_result, expected):
    monkeypatch.setenv("PVQ_JOB_STORE", str(tmp_path))
    _calls.clear()
    theirs = job_store.path_for(_counted_square, 3)
    other = threading.Thread(target=_hold_then, args=(theirs, their_result, 0.5))
    other.start()
    time.sleep(0.1)
    try:
        assert parallel_map(_counted_square, [2, 3], workers=1) == expected
    finally:
        other.join()
    # the result they stored is taken as it is: 3 is computed here only if they left none
    assert _calls == ([2] if their_result is not None else [2, 3])


@job_store.stored
def _counted_views(n: int, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Views into one buffer, as ``pvq.transformer.compress_layers`` returns them."""
    _calls.append(n)
    buffer = model.weight.detach().flatten().repeat(n)
    return {f"part {i}": buffer[i * 4:(i + 1) * 4] for i in range(n)}


def test_a_stored_function_computes_once_per_session_and_keeps_views_shared(monkeypatch,
                                                                           tmp_path):
    monkeypatch.setenv("PVQ_JOB_STORE", str(tmp_path))
    _calls.clear()
    model = torch.nn.Linear(2, 2)
    first, again = _counted_views(3, model), _counted_views(3, model)
    assert _calls == [3]
    assert all(torch.equal(first[k], again[k]) for k in first)
    # one buffer on disk and after loading, not one copy per view
    parts = list(again.values())
    assert parts[0].untyped_storage().data_ptr() == parts[2].untyped_storage().data_ptr()
    with torch.no_grad():
        model.weight.add_(1.0)  # other arguments, another result
    _counted_views(3, model)
    assert _calls == [3, 3]


def test_without_a_store_a_stored_function_just_computes(monkeypatch):
    monkeypatch.delenv("PVQ_JOB_STORE", raising=False)
    _calls.clear()
    model = torch.nn.Linear(2, 2)
    _counted_views(2, model), _counted_views(2, model)
    assert _calls == [2, 2]


@job_store.stored
def _unkeepable(x: object) -> object:
    _calls.append(1)
    return threading.Lock()  # cannot be serialized


def test_what_cannot_be_serialized_is_computed_every_time(monkeypatch, tmp_path):
    monkeypatch.setenv("PVQ_JOB_STORE", str(tmp_path))
    _calls.clear()
    _unkeepable(1), _unkeepable(1)  # a result that cannot be kept
    _unkeepable(lambda: 0), _unkeepable(lambda: 0)  # arguments that cannot be keyed
    assert _calls == [1, 1, 1, 1]
    assert {path.suffix for path in tmp_path.iterdir()} <= {".lock"}  # nothing half-written


KEY_OF_A_MODEL = """
import torch
from pvq import job_store
torch.manual_seed(0)
model = torch.nn.Linear(3, 2)
model.names = {"query", "key", "value", "dense"}  # as a transformer's configuration holds sets
print(job_store.path_for(torch.nn.functional.linear, (model, {"x": 1.5})).name)
"""


def test_the_key_is_the_same_in_another_process(monkeypatch, tmp_path):
    monkeypatch.setenv("PVQ_JOB_STORE", str(tmp_path))
    keys = set()
    for seed in ("1", "2"):  # another order of the set's members
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        keys.add(subprocess.run([sys.executable, "-c", KEY_OF_A_MODEL], capture_output=True,
                                text=True, check=True).stdout)
    assert len(keys) == 1 and keys.pop().strip().endswith(".pt")


def test_a_partial_function_is_keyed_by_its_function_and_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("PVQ_JOB_STORE", str(tmp_path))
    _calls.clear()
    assert parallel_map(functools.partial(_counted_power, power=3), [2], workers=1) == [8]
    assert parallel_map(functools.partial(_counted_power, power=3), [2], workers=1) == [8]
    assert parallel_map(functools.partial(_counted_power, power=2), [2], workers=1) == [4]
    assert _calls == [2, 2]


def _counted_power(x: int, power: int) -> int:
    _calls.append(x)
    return x**power
