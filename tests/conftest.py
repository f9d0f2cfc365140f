"""Shared pytest fixtures, and the session's job store."""

import os
import shutil
import tempfile

import pytest
import torch


def pytest_configure(config):
    """One fresh job store per test session (``pvq.job_store``): a notebook run twice in the
    session (nbval, and its student edition in the browser) computes its heavy steps once.
    Set here, in the controlling process, so every worker, kernel and JupyterLab inherits it."""
    if not hasattr(config, "workerinput") and "PVQ_JOB_STORE" not in os.environ:
        config._pvq_job_store = tempfile.mkdtemp(prefix="pvq-jobs-")
        os.environ["PVQ_JOB_STORE"] = config._pvq_job_store


def pytest_unconfigure(config):
    store = getattr(config, "_pvq_job_store", None)
    if store:
        shutil.rmtree(store, ignore_errors=True)
        del os.environ["PVQ_JOB_STORE"]


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's torch code on one thread, restored afterwards.

    The tests' tensors are tiny: a thread hand-off costs more than it saves, and on two cores
    shared with another pytest-xdist worker, two OpenMP threads per process wait on each other
    (measured: ~0.3 s instead of ~1 ms per training step of a tiny CNN).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
