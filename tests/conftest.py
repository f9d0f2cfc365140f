"""Shared pytest fixtures."""

import pytest
import torch


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
