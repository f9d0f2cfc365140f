"""pvq.parallel: the same results as a plain loop, in order, and clear errors."""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np
import pytest

from pvq import parallel
from pvq.parallel import parallel_map, thread_map, worker_count
from pvq.quantize import mse_scale


def _scale(seed: int) -> float:
    return mse_scale(np.random.default_rng(seed).standard_t(3, size=4096), 3)


def test_the_workers_compute_what_a_loop_computes_in_order():
    jobs = list(range(6))
    assert parallel_map(_scale, jobs, workers=2) == [_scale(seed) for seed in jobs]


def test_the_threads_compute_what_a_loop_computes_in_order():
    jobs = list(range(6))
    assert thread_map(_scale, jobs, workers=2) == [_scale(seed) for seed in jobs]


def test_one_worker_runs_here():
    assert parallel_map(math.sqrt, [4.0, 9.0], workers=1) == [2.0, 3.0]


def test_worker_count_is_capped_by_the_cores(monkeypatch):
    monkeypatch.setenv("PVQ_WORKERS", "64")
    assert 1 <= worker_count() <= 64
    monkeypatch.setenv("PVQ_WORKERS", "1")
    assert worker_count() == 1


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_worker_counts_are_refused(workers):
    with pytest.raises((ValueError, TypeError), match="workers"):
        worker_count(workers)


@pytest.mark.parametrize("mapper", [parallel_map, thread_map])
def test_the_function_must_be_callable(mapper):
    with pytest.raises(TypeError, match="function"):
        mapper(3, [1, 2])


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
    assert len(list(tmp_path.glob("*.pkl"))) == 3
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
    hold = parallel._claim(path, wait=False)
    assert hold is not None
    time.sleep(seconds)
    if result is not None:
        parallel._store(path, result)
    os.close(hold)


@pytest.mark.parametrize("their_result, expected", [(999, [4, 999]), (None, [4, 9])])
def test_a_job_another_process_holds_is_waited_for_not_computed_twice(
        monkeypatch, tmp_path, their_result, expected):
    monkeypatch.setenv("PVQ_JOB_STORE", str(tmp_path))
    _calls.clear()
    theirs = parallel._store_path(_counted_square, 3)
    other = threading.Thread(target=_hold_then, args=(theirs, their_result, 0.5))
    other.start()
    time.sleep(0.1)
    try:
        assert parallel_map(_counted_square, [2, 3], workers=1) == expected
    finally:
        other.join()
    # the result they stored is taken as it is: 3 is computed here only if they left none
    assert _calls == ([2] if their_result is not None else [2, 3])
