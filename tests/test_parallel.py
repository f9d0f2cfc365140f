"""pvq.parallel: the same results as a plain loop, in order, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
