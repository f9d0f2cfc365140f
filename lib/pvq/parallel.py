"""Independent jobs on the machine's cores: a notebook on a 2-core laptop finishes sooner.

``parallel_map``: each worker is a fresh (spawned, not forked: a Jupyter kernel holds threads
and sockets) process with one torch and one BLAS thread, so a job computes exactly what it
computes in the notebook's own process; results come back in the order of the jobs. The workers
start once (importing torch takes seconds) and serve every later call until the process exits.

``thread_map``: the same on threads of this process, for jobs that spend their time in torch or
BLAS kernels (which release Python's lock): no second copy of torch or of a model in memory. The
torch and BLAS thread limits are the process's, so with one thread each (as the notebooks set
them) a job computes exactly what it computes alone.

With ``PVQ_JOB_STORE`` set (the test command does), ``parallel_map`` keeps each job's result
in that session's store (``pvq.job_store``): a notebook run twice in a session computes its
jobs once.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

from pvq import job_store
from pvq._validation import check_int

Job = TypeVar("Job")
Result = TypeVar("Result")

#: the course is written for a 2-core laptop (Binder gives 2 cores too)
DEFAULT_WORKERS = 2


def worker_count(workers: int | None = None) -> int:
    """``workers``, or ``PVQ_WORKERS`` from the environment, or 2; never more than the cores
    this process may use."""
    if workers is None:
        workers = int(os.environ.get("PVQ_WORKERS", DEFAULT_WORKERS))
    workers = check_int(workers, "workers", 1)
    return min(workers, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def _one_thread() -> None:
    import signal

    import torch
    from threadpoolctl import threadpool_limits

    # an interrupt (the kernel's stop button, or its shutdown) is for the process that asked
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    threadpool_limits(1)


@cache
def _pool(count: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(count, mp_context=get_context("spawn"), initializer=_one_thread)
    atexit.register(pool.shutdown, cancel_futures=True)
    return pool


def _jobs_and_count(function: object, jobs: Iterable[Job], workers: int | None
                    ) -> tuple[list[Job], int]:
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    jobs = list(jobs)
    return jobs, min(worker_count(workers), len(jobs))


def _map(function: Callable[[Job], Result], jobs: list[Job], count: int) -> Iterator[Result]:
    if count <= 1:
        yield from (function(job) for job in jobs)
        return
    try:
        yield from _pool(count).map(function, jobs)
    except BrokenProcessPool:
        _pool.cache_clear()  # a worker died (out of memory?): the next call starts afresh
        raise


def parallel_map(function: Callable[[Job], Result], jobs: Iterable[Job], *,
                 workers: int | None = None) -> list[Result]:
    """``[function(job) for job in jobs]`` on ``worker_count(workers)`` processes.

    ``function`` must be importable (defined in a module, not in a notebook). With one worker,
    or one job, everything runs here, in this process.
    """
    jobs, _ = _jobs_and_count(function, jobs, workers)
    paths = [job_store.path_for(function, job) for job in jobs]
    results: list[tuple[bool, object]] = [(False, None)] * len(jobs)
    holds: dict[int, int] = {}  # job -> the lock this process holds on it
    waiting = []  # jobs another process is computing
    for i, path in enumerate(paths):
        if path is None:
            continue
        hold = job_store.claim(path, wait=False)
        if hold is None:
            waiting.append(i)
            continue
        results[i] = job_store.load(path)
        if results[i][0]:
            os.close(hold)
        else:
            holds[i] = hold
    try:
        mine = [i for i, path in enumerate(paths) if path is None or i in holds]
        _compute(function, jobs, mine, paths, results, holds, workers)
        for i in waiting:
            holds[i] = job_store.claim(paths[i], wait=True)
            results[i] = job_store.load(paths[i])
            if not results[i][0]:  # its holder ended without a result
                _compute(function, jobs, [i], paths, results, holds, workers)
    finally:
        for hold in holds.values():
            os.close(hold)
    return [result for _, result in results]


def _compute(function: Callable[[Job], Result], jobs: list[Job], missing: list[int],
             paths: list[Path | None], results: list[tuple[bool, object]],
             holds: dict[int, int], workers: int | None) -> None:
    """Compute the jobs ``missing``, store each result as it arrives and release its hold."""
    computed = _map(function, [jobs[i] for i in missing], min(worker_count(workers),
                                                              len(missing)))
    for i, result in zip(missing, computed):
        results[i] = (True, result)
        if paths[i] is not None:
            job_store.save(paths[i], result)
            os.close(holds.pop(i))


def thread_map(function: Callable[[Job], Result], jobs: Iterable[Job], *,
               workers: int | None = None) -> list[Result]:
    """``[function(job) for job in jobs]`` on ``worker_count(workers)`` threads of this process.

    The jobs must not write to shared state (give each its own copy of what it changes). With one
    worker, or one job, everything runs in the calling thread.
    """
    jobs, count = _jobs_and_count(function, jobs, workers)
    if count <= 1:
        return [function(job) for job in jobs]
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(function, jobs))
